"""End-to-end pipeline tests on the mini archive: totals vs independent truths, cubes, resume,
failures."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import xarray as xr

from gridflux.errors import StoreError
from gridflux.pipeline.runner import run
from gridflux.pipeline.store import Store

RTOL = 1e-10


def _series_totals(store, member, region):
    ds = xr.open_zarr(store)
    da = ds["totals"].sel(member=member, variable="npp", region=region).load()
    return da


def _assert_matches_truth(store, truth):
    for (member, region), (months, expected) in truth.items():
        da = _series_totals(store, member, region)
        labels = [(int(t.year), int(t.month)) for t in da.indexes["time"]]
        got = np.array([da.values[labels.index(m)] for m in months])
        scale = np.abs(expected).max()
        assert np.abs(got - expected).max() / scale < RTOL, (member, region)
        # months outside the series stay NaN
        outside = [i for i, m in enumerate(labels) if m not in months]
        assert np.all(np.isnan(da.values[outside]))


def test_totals_equal_independent_truth(mini_archive, tmp_path):
    store = tmp_path / "s.zarr"
    summary = run(mini_archive["catalog"], mini_archive["mask"], str(store), progress=False)
    assert summary.ok and len(summary.done) == 3
    _assert_matches_truth(store, mini_archive["truth"])


def test_regrid_mask_protocol_agrees(mini_archive, tmp_path):
    a, b = tmp_path / "a.zarr", tmp_path / "b.zarr"
    run(mini_archive["catalog"], mini_archive["mask"], str(a), cubes=False, progress=False)
    run(
        mini_archive["catalog"],
        mini_archive["mask"],
        str(b),
        cubes=False,
        protocol="regrid-mask",
        progress=False,
    )
    ta = xr.open_zarr(a)["totals"].values
    tb = xr.open_zarr(b)["totals"].values
    ok = np.isfinite(ta)
    assert np.array_equal(ok, np.isfinite(tb))
    assert np.abs(ta[ok] - tb[ok]).max() / np.abs(ta[ok]).max() < 1e-12


def test_cubes_sum_back_to_totals(mini_archive, tmp_path):
    store = tmp_path / "s.zarr"
    run(mini_archive["catalog"], mini_archive["mask"], str(store), progress=False)
    grid = xr.open_zarr(store, group="grid")
    cube = xr.open_zarr(store, group="cubes/npp")["npp"]
    assert cube.dtype == np.float32
    tot = xr.open_zarr(store)["totals"].sel(variable="npp")
    area = grid["cell_area"].values
    for region in grid["region"].values:
        frac = grid["mask"].sel(region=region).values
        # float32 cube: agreement to float32 rounding, summed over ~1e5 cells
        from_cube = (cube.values.astype(np.float64) * frac * area).sum(axis=(2, 3))
        secs = np.array(
            [
                [
                    float(pd_days(t, "noleap" if m != "TEST.B.hist.r1" else "360_day")) * 86400.0
                    for t in cube.indexes["time"]
                ]
                for m in cube.member.values
            ]
        )
        expected = tot.sel(region=region).values
        ok = np.isfinite(expected)
        rel = np.abs(from_cube * secs / 1e9 - expected)[ok].max() / np.abs(expected[ok]).max()
        assert rel < 1e-6
    # the cube grid is the 0.5 deg target clipped to the mask's bounding box (rows 40N..80N)
    assert float(grid["lat_bnds"].min()) == 40.0 and float(grid["lat_bnds"].max()) == 80.0
    assert np.isclose(area.sum(), cell_areas_band(40.0, 80.0))


def pd_days(t, calendar):
    if calendar == "360_day":
        return 30
    return [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][t.month - 1]


def cell_areas_band(s, n):
    from gridflux.kernels.grids import EARTH_RADIUS

    return 2 * np.pi * EARTH_RADIUS**2 * (np.sin(np.radians(n)) - np.sin(np.radians(s)))


def test_store_layout_opens_with_plain_xarray(mini_archive, tmp_path):
    store = tmp_path / "s.zarr"
    run(mini_archive["catalog"], mini_archive["mask"], str(store), cubes=False, progress=False)
    ds = xr.open_zarr(store)
    assert ds["totals"].dims == ("member", "variable", "region", "time")
    assert ds["totals"].dtype == np.float64
    assert list(ds["layered_c"].values) == [True, False, False]
    assert list(ds["fire"].values) == [False, True, True]
    assert ds["totals"].attrs["sign_convention"].startswith("fluxes positive to the atmosphere")
    assert str(ds["variable_units"].values[0]) == "Tg C"
    assert str(ds["variable_statistic"].values[0]) == "total"


def _cube_compressor(store):
    import zarr

    (codec,) = zarr.open_array(store / "cubes" / "npp" / "npp", mode="r").compressors
    return codec


def test_zarr_format_2(mini_archive, tmp_path):
    store = tmp_path / "s2.zarr"
    run(mini_archive["catalog"], mini_archive["mask"], str(store), zarr_format=2, progress=False)
    assert (store / ".zgroup").exists()
    _assert_matches_truth(store, mini_archive["truth"])
    codec = _cube_compressor(store)  # numcodecs Blosc, as configured (auto: lz4 for a new store)
    assert (codec.cname, codec.clevel, codec.shuffle, codec.blocksize) == ("lz4", 1, 1, 262144)


@pytest.mark.parametrize("blocksize", [None, 0])
def test_cube_compressor_is_the_configured_blosc(mini_archive, tmp_path, blocksize):
    """lz4-1 + shuffle in 256 KiB Blosc blocks by default for a new store (``auto``,
    docs/store.md); 0 hands the choice back to Blosc."""
    from gridflux import config

    store = tmp_path / "s.zarr"
    with config.set_options(**({} if blocksize is None else {"store.cube-blocksize": blocksize})):
        run(mini_archive["catalog"], mini_archive["mask"], str(store), progress=False)
    codec = _cube_compressor(store)
    assert (codec.cname.value, codec.clevel, codec.shuffle.value) == ("lz4", 1, "shuffle")
    assert codec.blocksize == (262144 if blocksize is None else 0)
    _assert_matches_truth(store, mini_archive["truth"])


def test_rerun_skips_done_and_recomputes_changed(mini_archive, tmp_path):
    root = tmp_path / "arch"
    shutil.copytree(mini_archive["root"], root)
    store = tmp_path / "s.zarr"
    first = run(str(root / "catalog.json"), str(root / "mask.nc"), str(store), progress=False)
    assert len(first.done) == 3
    again = run(str(root / "catalog.json"), str(root / "mask.nc"), str(store), progress=False)
    assert len(again.skipped) == 3 and not again.done
    # change one input file: only that series is recomputed
    ds = xr.open_dataset(root / "npp_B.nc").load()
    ds["npp"] = ds["npp"] * 2
    ds.close()
    os.remove(root / "npp_B.nc")
    ds.to_netcdf(root / "npp_B.nc")
    third = run(str(root / "catalog.json"), str(root / "mask.nc"), str(store), progress=False)
    assert third.done == ["TEST.B.hist.r1/npp"] and len(third.skipped) == 2
    months, expected = mini_archive["truth"][("TEST.B.hist.r1", "north")]
    got = _series_totals(store, "TEST.B.hist.r1", "north").dropna("time").values
    assert np.abs(got - 2 * expected).max() / np.abs(expected).max() < RTOL


def test_failing_member_is_recorded_and_others_finish(mini_archive, tmp_path):
    root = tmp_path / "arch"
    shutil.copytree(mini_archive["root"], root)
    with open(root / "npp_C.nc", "r+b") as f:  # truncate: a corrupt file
        f.truncate(2000)
    store = tmp_path / "s.zarr"
    summary = run(str(root / "catalog.json"), str(root / "mask.nc"), str(store), progress=False)
    assert len(summary.done) == 2
    assert list(summary.failed) == ["TEST.C.hist.r1/npp"]
    assert "npp_C.nc" in summary.failed["TEST.C.hist.r1/npp"]
    man = Store(store).read_manifest()["series"]
    assert (
        man["TEST.C.hist.r1/npp"]["status"] == "failed"
        and "npp_C.nc" in man["TEST.C.hist.r1/npp"]["error"]
    )
    # repair the file: the re-run retries only the failed member
    shutil.copy(mini_archive["root"] / "npp_C.nc", root / "npp_C.nc")
    again = run(str(root / "catalog.json"), str(root / "mask.nc"), str(store), progress=False)
    assert again.done == ["TEST.C.hist.r1/npp"] and len(again.skipped) == 2
    _assert_matches_truth(store, mini_archive["truth"])


def test_second_run_on_store_in_use_fails_clearly(mini_archive, tmp_path):
    store = tmp_path / "s.zarr"
    st = Store(store)
    st.acquire_lock()  # this (live) process holds the store
    try:
        with pytest.raises(StoreError, match="in use by another gridflux run"):
            run(mini_archive["catalog"], mini_archive["mask"], str(store), progress=False)
    finally:
        st.release_lock()


def test_stale_lock_of_dead_process_is_taken_over(mini_archive, tmp_path):
    store = tmp_path / "s.zarr"
    store.mkdir()
    proc = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    dead_pid = int(proc.stdout)
    import socket

    (store / ".gridflux.lock").write_text(
        json.dumps({"host": socket.gethostname(), "pid": dead_pid})
    )
    summary = run(
        mini_archive["catalog"], mini_archive["mask"], str(store), cubes=False, progress=False
    )
    assert summary.ok


def test_graph_has_bounded_tasks_per_series(mini_archive, raise_if_dask_computes):
    """Planning and graph building compute nothing, and a series' tasks are its spans of blocks
    (``ceil(blocks / blocks per span)``), whatever its grid: the graph does not grow with cells."""
    import dask

    from gridflux.fields.masks import RegionMask
    from gridflux.ingest.catalog import load_catalog
    from gridflux.pipeline.runner import SeriesJob, mask_key, plan_series, series_tasks, target_grid

    cat = load_catalog(mini_archive["catalog"])
    mask = RegionMask.from_file(mini_archive["mask"])
    with raise_if_dask_computes():
        for rec in cat.series():
            plan = plan_series(rec, None)
            assert plan.error is None
            positions = np.arange(len(plan.months))
            for task_months, per_span in ((12, 1), (36, 3), (10_000, 10_000)):
                job = SeriesJob(
                    record=rec,
                    fingerprint_key="fp",
                    months=tuple(plan.months),
                    positions=positions,
                    mask_key=mask_key(mask),
                    protocol="regrid-data",
                    target=target_grid(),
                    radius=6371007.181,
                    time_chunk=12,
                )
                tasks = series_tasks(job, dask.delayed(mask), None, task_months)
                graph = {k: v for t in tasks for k, v in dict(t.__dask_graph__()).items()}
                n_blocks = -(-len(plan.months) // 12)
                assert len(tasks) == -(-n_blocks // per_span)
                assert len(graph) == len(tasks) + 2  # + the job and the mask


@pytest.mark.parametrize("cubes", [True, False])
def test_task_length_does_not_change_the_store(mini_archive, tmp_path, cubes):
    """One task per 12-month block, per 24 months or per series: identical totals and cubes (the
    rows-only read without cubes included)."""
    stores = []
    for task_months in (12, 24, 10_000):
        st = tmp_path / f"s{task_months}.zarr"
        assert run(
            mini_archive["catalog"],
            mini_archive["mask"],
            str(st),
            cubes=cubes,
            task_months=task_months,
            progress=False,
        ).ok
        stores.append(st)
    ref = xr.open_zarr(stores[0])["totals"].values
    assert np.isfinite(ref).sum() > 0
    for st in stores[1:]:
        np.testing.assert_array_equal(xr.open_zarr(st)["totals"].values, ref)
        if cubes:
            np.testing.assert_array_equal(
                xr.open_zarr(st, group="cubes/npp")["npp"].values,
                xr.open_zarr(stores[0], group="cubes/npp")["npp"].values,
            )


def test_totals_without_cubes_read_fewer_rows_and_are_the_same(mini_archive, tmp_path):
    """Without cubes workers read only the rows with nonzero weights; the sums are bit-identical."""
    a, b = tmp_path / "cubes.zarr", tmp_path / "nocubes.zarr"
    assert run(mini_archive["catalog"], mini_archive["mask"], str(a), cubes=True, progress=False).ok
    assert run(
        mini_archive["catalog"], mini_archive["mask"], str(b), cubes=False, progress=False
    ).ok
    np.testing.assert_array_equal(
        xr.open_zarr(a)["totals"].values, xr.open_zarr(b)["totals"].values
    )


def test_cubes_read_only_the_rows_that_reach_the_cube_and_are_the_same(
    mini_archive, tmp_path, monkeypatch
):
    """With cubes a block holds only the source rows that overlap the cube grid (the mask's bounding
    box, 40N..80N here), found independently from each grid's latitude bounds; totals and cubes are
    bit-identical to whole-field blocks."""
    from gridflux.pipeline import tasks as steps

    seen = []
    original = steps.process_block

    def recording(block, seconds, positions, job, mask, storage_options=None, rows_read=None, **kw):
        seen.append((job.src_grid, block.shape[1], rows_read))
        return original(
            block, seconds, positions, job, mask, storage_options, rows_read=rows_read, **kw
        )

    monkeypatch.setattr(steps, "process_block", recording)
    rows_store, whole_store = tmp_path / "rows.zarr", tmp_path / "whole.zarr"
    assert run(mini_archive["catalog"], mini_archive["mask"], str(rows_store), progress=False).ok
    assert (
        len({grid.shape for grid, _, _ in seen}) >= 3
    )  # several source grids (1 deg, Gaussian, ...)
    for grid, n_rows, rows_read in seen:
        lat_b = grid.lat_bounds
        overlapping = np.flatnonzero((lat_b[:, 1] > 40.0) & (lat_b[:, 0] < 80.0))
        assert rows_read == slice(int(overlapping[0]), int(overlapping[-1]) + 1)
        assert n_rows == overlapping.size < grid.nlat
    monkeypatch.setattr(steps, "rows_to_read", lambda job, mask: None)  # whole fields, as before
    seen.clear()
    assert run(mini_archive["catalog"], mini_archive["mask"], str(whole_store), progress=False).ok
    assert all(n_rows == grid.nlat for grid, n_rows, _ in seen)
    np.testing.assert_array_equal(
        xr.open_zarr(rows_store)["totals"].values, xr.open_zarr(whole_store)["totals"].values
    )
    a = xr.open_zarr(rows_store, group="cubes/npp")["npp"].values
    b = xr.open_zarr(whole_store, group="cubes/npp")["npp"].values
    assert np.count_nonzero(a) > 0
    np.testing.assert_array_equal(a.view(np.uint32), b.view(np.uint32))


def test_task_months_auto_gives_whole_series_when_there_are_enough_for_the_workers():
    from gridflux.errors import GridfluxError
    from gridflux.pipeline.runner import SPLIT_MONTHS, span_blocks, task_months_for

    assert task_months_for("auto", 4, 2) is None  # two series per worker thread: one task each
    assert task_months_for("auto", 3, 2) == SPLIT_MONTHS == 120  # fewer: spread in 120-month spans
    assert task_months_for(None, 2, 0) is None  # no worker yet (adaptive cluster): as for one
    assert (
        task_months_for(24, 1000, 2) == 24 and task_months_for("36", 1, 1) == 36
    )  # a number is used as is
    assert task_months_for(6, 1, 1, time_chunk=12) == 12  # but never less than one block
    for bad in ("often", 0):
        with pytest.raises(GridfluxError, match="pipeline.task-months must be"):
            task_months_for(bad, 1, 1)
    assert span_blocks(np.arange(5, 45), 12, None) == [((0, 7), (7, 19), (19, 31), (31, 40))]


def test_auto_task_months_submits_one_task_per_series(mini_archive, tmp_path, monkeypatch):
    """Three series (24, 36, 18 months) on one worker: one span task each; on two workers (fewer
    than two series per worker) they are split (spans of 12 months here), and both stores hold the
    planted truths."""
    from distributed import get_task_stream

    from gridflux.compute.clusters import make_cluster
    from gridflux.pipeline import runner as pipeline

    monkeypatch.setattr(pipeline, "SPLIT_MONTHS", 12)
    spans = {}
    with make_cluster("local", n_workers=1) as handle:
        for workers in (1, 2):
            handle.cluster.scale(workers)
            handle.wait_for_workers(workers, timeout=60)
            store = tmp_path / f"s{workers}.zarr"
            with get_task_stream(client=handle.client) as ts:
                summary = run(
                    mini_archive["catalog"],
                    mini_archive["mask"],
                    str(store),
                    client=handle.client,
                    progress=False,
                )
            assert summary.ok and len(summary.done) == 3
            spans[workers] = sorted(
                str(t["key"]) for t in ts.data if str(t["key"]).startswith("gridflux-span-")
            )
            _assert_matches_truth(store, mini_archive["truth"])
    assert len(spans[1]) == 3 and all(k.endswith("-0") for k in spans[1]), spans[1]
    assert len(spans[2]) == 2 + 3 + 2, spans[2]


def test_spans_align_to_store_chunks():
    """Blocks never straddle a store time chunk; spans group whole blocks, at most task_months."""
    from gridflux.pipeline.runner import span_blocks

    positions = np.arange(5, 5 + 40)  # the series starts 5 months into a 12-month store chunk
    spans = span_blocks(positions, 12, 24)
    blocks = [b for sp in spans for b in sp]
    assert blocks == [(0, 7), (7, 19), (19, 31), (31, 40)]
    assert [len(sp) for sp in spans] == [2, 2]  # 7 + 12 <= 24 < 7 + 12 + 12; then 12 + 9 <= 24
    assert span_blocks(np.arange(3), 12, 1) == [((0, 3),)]  # a block is never split


def _run_in_subprocess(catalog, mask, store):
    # each block sleeps 50 ms (slow storage) so that the kill lands in the middle of the run
    code = (
        "import sys, time; import gridflux.pipeline.runner as p, gridflux.pipeline.tasks as steps; "
        "orig = steps.process_block\n"
        "def slow(*a, **k):\n    time.sleep(0.05); return orig(*a, **k)\n"
        "steps.process_block = slow\n"
        f"s = p.run({catalog!r}, {mask!r}, {store!r}, progress=False, chunk_months=1)\n"
        "sys.exit(0 if s.ok else 1)"
    )
    return subprocess.Popen([sys.executable, "-c", code])


@pytest.mark.slow
def test_killed_driver_then_rerun_is_bit_identical(mini_archive, tmp_path):
    """SIGKILL the driver mid-run; the re-run gives totals and cubes identical to a clean run."""
    clean = tmp_path / "clean.zarr"
    run(mini_archive["catalog"], mini_archive["mask"], str(clean), progress=False, chunk_months=1)
    killed = tmp_path / "killed.zarr"
    proc = _run_in_subprocess(mini_archive["catalog"], mini_archive["mask"], str(killed))
    # wait until the store exists and some work is under way, then kill without warning
    deadline = time.time() + 60
    while time.time() < deadline:
        # finished series are journal lines beside manifest.json (gridflux/pipeline/manifest.py)
        lines = [f.read_text() for f in (killed / "manifest.json.d").glob("*.jsonl")]
        if (killed / "manifest.json").exists() and any('"done"' in t for t in lines):
            break
        time.sleep(0.02)
    time.sleep(0.3)  # inside the next series' blocks: its cube is half written
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert (killed / ".gridflux.lock").exists()  # the dead run left its lock behind
    statuses = [e["status"] for e in Store(str(killed)).read_manifest()["series"].values()]
    assert "pending" in statuses and "done" in statuses  # killed mid-run, not after
    summary = run(
        mini_archive["catalog"], mini_archive["mask"], str(killed), progress=False, chunk_months=1
    )
    assert summary.ok
    a, b = xr.open_zarr(clean), xr.open_zarr(killed)
    np.testing.assert_array_equal(a["totals"].values, b["totals"].values)
    ca = xr.open_zarr(clean, group="cubes/npp")["npp"].values
    cb = xr.open_zarr(killed, group="cubes/npp")["npp"].values
    np.testing.assert_array_equal(ca, cb)


def test_done_series_are_skipped_without_opening_their_files(mini_archive, tmp_path):
    root = tmp_path / "arch"
    shutil.copytree(mini_archive["root"], root)
    store = tmp_path / "s.zarr"
    assert (
        len(run(str(root / "catalog.json"), str(root / "mask.nc"), str(store), progress=False).done)
        == 3
    )
    # garble a file but keep its size and modification time: only opening it would notice
    path = root / "npp_A.nc"
    st = path.stat()
    path.write_bytes(b"\0" * st.st_size)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    again = run(str(root / "catalog.json"), str(root / "mask.nc"), str(store), progress=False)
    assert (
        sorted(again.skipped) == sorted(f"TEST.{s}.hist.r1/npp" for s in "ABC") and not again.failed
    )


def test_a_run_where_every_series_fails_reports_instead_of_crashing(mini_archive, tmp_path):
    root = tmp_path / "arch"
    shutil.copytree(mini_archive["root"], root)
    for s in "ABC":
        (root / f"npp_{s}.nc").write_bytes(b"garbage")
    summary = run(
        str(root / "catalog.json"), str(root / "mask.nc"), str(tmp_path / "s.zarr"), progress=False
    )
    assert len(summary.failed) == 3 and not summary.done
    assert all(f"npp_{k[5]}.nc" in err for k, err in summary.failed.items())
    man = Store(tmp_path / "s.zarr").read_manifest()["series"]
    assert {e["status"] for e in man.values()} == {"failed"}


def test_long_blocks_give_the_same_totals(mini_archive, tmp_path):
    """--chunk-months 60 (fewer, larger tasks for big clusters) changes nothing in the results."""
    store = tmp_path / "long.zarr"
    summary = run(
        mini_archive["catalog"], mini_archive["mask"], str(store), chunk_months=60, progress=False
    )
    assert summary.ok
    _assert_matches_truth(store, mini_archive["truth"])
    cube = xr.open_zarr(store, group="cubes/npp")["npp"]
    assert cube.encoding["chunks"][1] == 60


def test_catalog_time_ranges_stream_and_a_wrong_range_fails_only_its_series(mini_archive, tmp_path):
    """With every file's time_range in the catalog, series are opened one by one during the run;
    a series whose file holds months beyond what the catalog declared fails clearly."""
    import pandas as pd

    from gridflux.ingest.catalog import write_catalog

    root = tmp_path / "arch"
    shutil.copytree(mini_archive["root"], root)
    rows = pd.read_csv(root / "catalog.csv", dtype=str, keep_default_na=False).to_dict("records")
    declared = {
        "A": "200001-200112",
        "B": "200001-200112",
        "C": "200101-200206",
    }  # B really ends 2002-12
    for r in rows:
        r["time_range"] = declared[r["source_id"]]
    cat = write_catalog(rows, root / "ranged.json")
    summary = run(str(cat), str(root / "mask.nc"), str(tmp_path / "s.zarr"), progress=False)
    assert sorted(summary.done) == ["TEST.A.hist.r1/npp", "TEST.C.hist.r1/npp"]
    assert set(summary.failed) == {"TEST.B.hist.r1/npp"}
    err = summary.failed["TEST.B.hist.r1/npp"]
    assert "hold 36 months 2000-01..2002-12, but 24 months 2000-01..2001-12 were expected" in err
    assert "npp_B" in err and "time_range" in err
    assert "time_range" in summary.failed["TEST.B.hist.r1/npp"]
    months, expected = mini_archive["truth"][("TEST.A.hist.r1", "north")]
    got = _series_totals(tmp_path / "s.zarr", "TEST.A.hist.r1", "north").values[: len(months)]
    assert np.abs(got - expected).max() / np.abs(expected).max() < RTOL


_DIE_INSIDE_A_CHUNK_WRITE = """
import os, pathlib, sys
import numpy as np, zarr
arr = zarr.open_array(sys.argv[1], path="cubes/npp/npp", mode="r+")
# die as SIGKILL would: after zarr wrote the chunk's temp file, before it renamed it into place
pathlib.Path.replace = lambda self, target: os._exit(9)
arr[0, 0:1] = np.float32(7.0)
"""


def test_temp_files_of_a_write_killed_mid_chunk_are_removed_by_the_next_run(mini_archive, tmp_path):
    """A process that dies inside zarr's atomic chunk write leaves ``<chunk>.<uuid>.partial``; the
    next run on the store deletes it (and a dead driver's manifest temp) and changes nothing
    else."""
    store = tmp_path / "s.zarr"
    run(mini_archive["catalog"], mini_archive["mask"], str(store), progress=False)
    before = {
        p: p.read_bytes() for p in store.rglob("*") if p.is_file() and p.name != "manifest.json"
    }
    proc = subprocess.run(
        [sys.executable, "-c", _DIE_INSIDE_A_CHUNK_WRITE, str(store)], capture_output=True
    )
    assert proc.returncode == 9, proc.stderr.decode()
    partial = [p for p in store.rglob("*.partial")]
    assert partial and all(
        "/cubes/npp/npp/c/" in str(p) for p in partial
    )  # cube chunks' temp files
    (store / "manifest.json.tmp-999999").write_bytes(
        b"{}"
    )  # a driver killed while saving the manifest
    again = run(mini_archive["catalog"], mini_archive["mask"], str(store), progress=False)
    assert len(again.skipped) == 3 and not again.failed
    assert not list(store.rglob("*.partial")) and not (store / "manifest.json.tmp-999999").exists()
    after = {
        p: p.read_bytes() for p in store.rglob("*") if p.is_file() and p.name != "manifest.json"
    }
    assert after == before  # the interrupted write never reached the chunk itself


@pytest.mark.slow
def test_a_span_failing_on_a_cluster_fails_its_series_only(mini_archive, tmp_path):
    """On 2 worker processes, with one task per 12 months: the second span of series A meets a
    corrupt chunk (month 15), so A is failed with an error naming its file and chunk, its other span
    is dropped, and B (3 spans) and C (2 spans) are done and match the planted truths."""
    import h5py

    from gridflux.compute.clusters import make_cluster

    root = tmp_path / "arch"
    shutil.copytree(mini_archive["root"], root)
    with h5py.File(root / "npp_A.nc", "r") as h:
        info = h["npp"].id.get_chunk_info_by_coord((15,) + (0,) * (h["npp"].ndim - 1))
    with open(root / "npp_A.nc", "r+b") as f:  # scramble the middle of month 15's deflate stream
        f.seek(info.byte_offset + info.size // 2)
        f.write(b"\xff" * 64)
    store = tmp_path / "s.zarr"
    with make_cluster("local", n_workers=2) as handle:
        handle.wait_for_workers(2, timeout=60)
        summary = run(
            str(root / "catalog.json"),
            str(root / "mask.nc"),
            str(store),
            client=handle.client,
            task_months=12,
            progress=False,
        )
        # nothing is left on the scheduler (releases travel asynchronously: wait for them)
        deadline = time.monotonic() + 10
        while (
            left := handle.client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.tasks))
        ) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert left == 0
    assert sorted(summary.done) == ["TEST.B.hist.r1/npp", "TEST.C.hist.r1/npp"]
    assert list(summary.failed) == ["TEST.A.hist.r1/npp"]
    error = summary.failed["TEST.A.hist.r1/npp"]
    assert "npp_A.nc" in error and "chunk at (15, 0, 0)" in error, error
    truth = {k: v for k, v in mini_archive["truth"].items() if not k[0].startswith("TEST.A.")}
    _assert_matches_truth(store, truth)
    assert np.all(np.isnan(_series_totals(store, "TEST.A.hist.r1", "north").values))


def test_progress_bar_counts_series_and_shows_the_bytes_read():
    """The bar's total is the number of series (known before any file is opened); the bytes read
    are shown beside it as series finish (a streaming run learns them on the workers)."""
    from gridflux.pipeline.progress import Progress

    reporter = Progress(True, 3)
    try:
        for nbytes in (2_000_000, 500_000):
            reporter.advance("k", nbytes)
        task = reporter.bar.tasks[0]
        assert (task.total, task.completed) == (3, 2)
        assert task.fields["read"].startswith("2.5 MB read, ")
    finally:
        reporter.close()
    called = []
    cb = Progress(lambda n, total, key: called.append((n, total, key)), 2)
    cb.advance("a/b", 0)
    assert called == [(1, 2, "a/b")] and cb.bar is None


def test_rows_to_read_for_sources_that_miss_the_mask_or_the_cube(mini_archive):
    """A series north of the mask reads its overlap with the cube grid; one that reaches neither the
    mask nor the cube grid reads whole fields (its cube is zeros) rather than an empty block."""
    from gridflux.fields.masks import RegionMask
    from gridflux.kernels.grids import regional_grid
    from gridflux.pipeline.runner import mask_key, target_grid
    from gridflux.pipeline.tasks import BlockJob, process_block, rows_to_read

    mask = RegionMask.from_file(mini_archive["mask"])  # fractions 40N..80N
    target = target_grid()
    cube_grid = regional_grid(
        40.0, 80.0, -180.0, 180.0, 0.5, 0.5
    )  # the mask's bounding box on the target

    def job(src):
        return BlockJob(
            src_grid=src,
            mask_key=mask_key(mask),
            protocol="regrid-data",
            target=target,
            radius=6371007.181,
            kind="flux",
            cube_grid=cube_grid,
        )

    south = regional_grid(-60.0, -10.0, -180.0, 180.0, 2.0, 2.0)  # meets neither
    assert rows_to_read(job(south), mask) == slice(0, south.nlat)
    polar = regional_grid(70.0, 90.0, -180.0, 180.0, 2.0, 2.0)  # rows 70..80N hold mask and cube
    assert rows_to_read(job(polar), mask) == slice(0, 5)
    # the whole-field block of the southern source: zero totals, a zero cube, no error
    block = np.ones((2, *south.shape))
    _, totals = process_block(block, np.full(2, 86400.0), np.arange(2), job(south), mask)
    assert totals.shape == (2, len(mask.names)) and np.all(totals == 0.0)
