"""A failed series leaves no values behind, and ``--verify`` notices inputs rewritten in place
(issue 16, point 7). Before, a deleted input marked its series failed but left its old totals in
the store and in ``export``, and a file rewritten with its size and mtime restored was skipped."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import xarray as xr

import gridflux.pipeline.tasks as tasks_mod
from gridflux.pipeline.export import totals_table
from gridflux.pipeline.runner import run
from gridflux.pipeline.store import Store

B = "TEST.B.hist.r1"
RTOL = 1e-10


@pytest.fixture
def arch(mini_archive, tmp_path):
    root = tmp_path / "arch"
    shutil.copytree(mini_archive["root"], root)
    return root


def _run(root, store, **kw):
    return run(str(root / "catalog.json"), str(root / "mask.nc"), str(store), progress=False, **kw)


def _b_values(store):
    tot = xr.open_zarr(store)["totals"].sel(member=B).load().values
    cube = xr.open_zarr(store, group="cubes/npp")["npp"].sel(member=B).load().values
    return tot, cube


def test_deleted_input_clears_the_series_from_store_and_export(mini_archive, arch, tmp_path):
    store = tmp_path / "s.zarr"
    assert len(_run(arch, store).done) == 3
    tot, cube = _b_values(store)
    assert np.isfinite(tot).sum() and np.isfinite(cube).sum()  # B has values
    others = xr.open_zarr(store)["totals"].sel(member=[f"TEST.{s}.hist.r1" for s in "AC"]).load()
    (arch / "npp_B.nc").unlink()
    again = _run(arch, store)
    assert list(again.failed) == [f"{B}/npp"] and "npp_B.nc" in again.failed[f"{B}/npp"]
    tot, cube = _b_values(store)
    assert np.isnan(tot).all() and np.isnan(cube).all()
    assert B not in set(totals_table(store)["source_id"])
    assert Store(store).read_manifest()["series"][f"{B}/npp"]["status"] == "failed"
    # the other series are untouched
    after = xr.open_zarr(store)["totals"].sel(member=[f"TEST.{s}.hist.r1" for s in "AC"]).load()
    assert after.values.tobytes() == others.values.tobytes()


def test_series_failing_after_some_blocks_were_written_leaves_no_cube(
    mini_archive, arch, tmp_path, monkeypatch
):
    """B's first 12-month block is written to the cube, its second fails: nothing of B stays."""
    orig = tasks_mod.process_block
    seen = []

    def failing_second_block(block, seconds, positions, bjob, *a, **k):
        if bjob.member_index == 1:  # members A, B, C: B is 1
            seen.append(int(positions[0]))
            if len(seen) == 2:  # after one block of B was written
                raise OSError("disk gone while reading npp_B.nc")
        return orig(block, seconds, positions, bjob, *a, **k)

    monkeypatch.setattr(tasks_mod, "process_block", failing_second_block)
    store = tmp_path / "s.zarr"
    summary = _run(arch, store, chunk_months=12, task_months=12)
    assert list(summary.failed) == [f"{B}/npp"] and len(seen) == 2
    tot, cube = _b_values(store)
    assert np.isnan(tot).all() and np.isnan(cube).all()


def _rewrite_in_place_keeping_size_and_mtime(path, factor):
    """Scale the data of a file in place (netCDF4 ``r+``), then restore its mtime."""
    import netCDF4

    st = path.stat()
    with netCDF4.Dataset(path, "r+") as nc:
        nc["npp"][:] = nc["npp"][:] * factor
    assert path.stat().st_size == st.st_size  # same size (a precondition of the test)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_verify_recomputes_an_input_rewritten_with_size_and_mtime_restored(
    mini_archive, arch, tmp_path
):
    store = tmp_path / "s.zarr"
    assert len(_run(arch, store, verify=True).done) == 3
    _rewrite_in_place_keeping_size_and_mtime(arch / "npp_B.nc", 2.0)
    # without --verify the size and mtime are trusted: nothing is noticed (the documented limit)
    assert len(_run(arch, store).skipped) == 3
    again = _run(arch, store, verify=True)
    assert again.done == [f"{B}/npp"] and len(again.skipped) == 2
    _months, expected = mini_archive["truth"][(B, "north")]
    got = xr.open_zarr(store)["totals"].sel(member=B, variable="npp", region="north")
    got = got.dropna("time").values
    assert np.abs(got - 2 * expected).max() / np.abs(expected).max() < RTOL
    assert len(_run(arch, store, verify=True).skipped) == 3  # hashes stored: skipped again


def test_verify_on_a_store_done_without_it_recomputes_once(arch, tmp_path):
    store = tmp_path / "s.zarr"
    assert len(_run(arch, store).done) == 3
    assert len(_run(arch, store, verify=True).done) == 3  # no hashes to compare with
    assert len(_run(arch, store, verify=True).skipped) == 3
    assert len(_run(arch, store).skipped) == 3  # a run without --verify ignores the hashes


def test_cli_verify_flag(arch, tmp_path):
    store = tmp_path / "s.zarr"
    args = [sys.executable, "-m", "gridflux", "run", str(arch / "catalog.json"), "--mask"]
    args += [str(arch / "mask.nc"), "--store", str(store), "--cluster", "none", "--no-progress"]
    assert subprocess.run(args + ["--verify"], capture_output=True, timeout=300).returncode == 0
    _rewrite_in_place_keeping_size_and_mtime(arch / "npp_B.nc", 3.0)
    r = subprocess.run(args + ["--verify"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    man = Store(store).read_manifest()["series"][f"{B}/npp"]
    assert all(len(p["sha256"]) == 64 for p in man["fingerprint"]["paths"])
    assert (
        "--verify"
        in subprocess.run(
            [sys.executable, "-m", "gridflux", "run", "--help"], capture_output=True, text=True
        ).stdout
    )
