"""The store's file system refuses writes midway (issue 20 point 7, the store.py part).

A disk that fills up (ENOSPC) or turns read-only (EROFS) after the run started: the manifest write
fails. The run ends with one StoreError line (no traceback from ``os.replace``), leaves no temp
file, and the same command run again completes with totals equal to the independent truths.
"""

from __future__ import annotations

import errno
import os

import pytest
from typer.testing import CliRunner

from gridflux.errors import StoreError
from gridflux.pipeline import store as store_mod
from gridflux.pipeline.runner import run

from .test_pipeline import _assert_matches_truth


def _refuse_manifest_after(monkeypatch, n_ok: int, err: int):
    """``os.replace`` of the manifest's temp file fails with ``err`` after ``n_ok`` successes."""
    real = os.replace
    calls = {"n": 0}

    def replace(src, dst, *a, **kw):
        if store_mod.MANIFEST in os.path.basename(str(src)):
            calls["n"] += 1
            if calls["n"] > n_ok:
                raise OSError(err, os.strerror(err), str(src))
        return real(src, dst, *a, **kw)

    monkeypatch.setattr(os, "replace", replace)
    return calls


@pytest.mark.parametrize("err", [errno.ENOSPC, errno.EROFS])
def test_manifest_write_refused_midway_is_one_error_and_a_rerun_completes(
    mini_archive, tmp_path, monkeypatch, err
):
    store = tmp_path / "s.zarr"
    calls = _refuse_manifest_after(monkeypatch, 1, err)  # the first (pending) write succeeds
    with pytest.raises(StoreError) as info:
        run(mini_archive["catalog"], mini_archive["mask"], str(store), progress=False)
    assert calls["n"] >= 2  # it failed after the series were computed, not at the start
    msg = str(info.value)
    assert msg.startswith(f"store {store}: cannot write manifest.json: {os.strerror(err)}")
    assert "\n" not in msg and "run the same command again" in msg
    leftovers = [f for f in os.listdir(store) if f.startswith(store_mod.MANIFEST + ".tmp")]
    assert leftovers == [] and not (store / store_mod.LOCK).exists()
    monkeypatch.undo()
    again = run(mini_archive["catalog"], mini_archive["mask"], str(store), progress=False)
    assert again.ok and len(again.done) + len(again.skipped) == 3
    _assert_matches_truth(store, mini_archive["truth"])


def test_cli_prints_one_error_line_without_traceback(mini_archive, tmp_path, monkeypatch):
    from gridflux.cli import app

    _refuse_manifest_after(monkeypatch, 0, errno.ENOSPC)
    store = tmp_path / "s.zarr"
    args = ["run", mini_archive["catalog"], "--mask", mini_archive["mask"], "--store", str(store)]
    res = CliRunner().invoke(app, [*args, "--cluster", "none", "--no-progress"])
    assert res.exit_code == 3, res.output  # ExitCode.STORE: the file system refused a write
    assert "No space left on device (errno 28)" in res.output and "Traceback" not in res.output


# -- the runner stops on a refused write midway (issue 20 point 7, the runner part) ------------
def _refuse_array_writes_after(monkeypatch, path: str, n_ok: int, err: int):
    """Writes into the zarr array ``path`` ("totals", or a cube's) fail with ``err`` after ``n_ok``
    successes, as the file system refuses them (raised where zarr, or ``store.DirectChunks`` for
    a worker's cube block or totals on a local store, writes the chunks)."""
    import zarr

    real = zarr.Array.__setitem__
    real_chunks = store_mod.DirectChunks.write
    calls = {"n": 0}

    def refuse(array_path):
        if array_path == path:
            calls["n"] += 1
            if calls["n"] > n_ok:
                raise OSError(err, os.strerror(err), f"{array_path}/c/0")

    def setitem(self, key, value):
        refuse(self.path)
        return real(self, key, value)

    def write(self, selection, data):
        refuse(self.path)
        return real_chunks(self, selection, data)

    monkeypatch.setattr(zarr.Array, "__setitem__", setitem)
    monkeypatch.setattr(store_mod.DirectChunks, "write", write)
    return calls


@pytest.mark.parametrize("err", [errno.ENOSPC, errno.EROFS])
def test_totals_write_refused_midway_stops_records_and_a_rerun_completes(
    mini_archive, tmp_path, monkeypatch, err
):
    import json

    from gridflux.pipeline.runner import RunStopped

    store = tmp_path / "s.zarr"
    # the clears of a new store's series are not written (nothing to clear): the first series'
    # totals are written, the second's are refused
    _refuse_array_writes_after(monkeypatch, "totals", 1, err)
    with pytest.raises(RunStopped) as info:
        run(mini_archive["catalog"], mini_archive["mask"], str(store), progress=False)
    summary = info.value.summary
    assert len(summary.done) == 1 and not summary.failed  # the refused series is not "failed"
    assert summary.stopped == str(info.value)
    assert str(info.value).startswith(f"store {store}: cannot write totals: {os.strerror(err)}")
    assert "\n" not in str(info.value)
    series = json.loads((store / store_mod.MANIFEST).read_text())["series"]
    assert series[summary.done[0]]["status"] == "done"  # recorded: the re-run skips it
    assert all(e["status"] != "done" for k, e in series.items() if k != summary.done[0])
    assert not (store / store_mod.LOCK).exists()
    monkeypatch.undo()
    again = run(mini_archive["catalog"], mini_archive["mask"], str(store), progress=False)
    assert again.ok and again.skipped == summary.done and len(again.done) == 2
    _assert_matches_truth(store, mini_archive["truth"])


def test_cube_write_refused_on_a_worker_stops_the_run(mini_archive, tmp_path, monkeypatch):
    from gridflux.pipeline.runner import RunStopped

    store = tmp_path / "s.zarr"
    calls = _refuse_array_writes_after(monkeypatch, "cubes/npp/npp", 1, errno.ENOSPC)
    with pytest.raises(RunStopped) as info:
        run(mini_archive["catalog"], mini_archive["mask"], str(store), progress=False, cubes=True)
    assert "cannot write a cube block: No space left on device (errno 28)" in str(info.value)
    assert not info.value.summary.failed  # a full disk is not the series' fault
    n_refused = calls["n"]
    assert n_refused == 2  # nothing more was submitted after the refused write
    monkeypatch.undo()
    again = run(mini_archive["catalog"], mini_archive["mask"], str(store), progress=False)
    assert again.ok and len(again.done) + len(again.skipped) == 3
    _assert_matches_truth(store, mini_archive["truth"])


def test_cli_prints_the_summary_and_one_error_line_when_stopped(
    mini_archive, tmp_path, monkeypatch
):
    from gridflux.cli import app

    _refuse_array_writes_after(monkeypatch, "totals", 1, errno.EROFS)
    store = tmp_path / "s.zarr"
    args = ["run", mini_archive["catalog"], "--mask", mini_archive["mask"], "--store", str(store)]
    res = CliRunner().invoke(app, [*args, "--cluster", "none", "--no-progress"])
    assert res.exit_code == 3, res.output  # ExitCode.STORE
    assert "gridflux run ->" in res.output  # the summary table
    errors = [line for line in res.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "cannot write totals: Read-only file system" in errors[0]
    assert "Traceback" not in res.output


def test_on_a_cluster_a_refused_cube_write_stops_the_run(mini_archive, tmp_path, monkeypatch):
    """The same on a dask cluster (threads in this process, so that the fault reaches the worker):
    the worker's OSError comes back through distributed and stops the run."""
    from distributed import Client

    from gridflux.pipeline.runner import RunStopped

    store = tmp_path / "s.zarr"
    _refuse_array_writes_after(monkeypatch, "cubes/npp/npp", 0, errno.EROFS)
    with Client(processes=False, n_workers=1, threads_per_worker=1, dashboard_address=None) as c:
        with pytest.raises(RunStopped) as info:
            run(
                mini_archive["catalog"],
                mini_archive["mask"],
                str(store),
                client=c,
                batch_size=1,
                progress=False,
            )
    assert "cannot write a cube block: Read-only file system" in str(info.value)
    assert not info.value.summary.failed and not info.value.summary.done
    monkeypatch.undo()
    again = run(mini_archive["catalog"], mini_archive["mask"], str(store), progress=False)
    assert again.ok and len(again.done) == 3
    _assert_matches_truth(store, mini_archive["truth"])
