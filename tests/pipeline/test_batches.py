"""Many short series in one task (issue 19): packing, failure isolation within a batch, batches
of done and new series, resume after a kill mid-batch, the batched totals write and journal append.

The mini archive has three series (A 24, B 36, C 18 months); a run packs them into one task when
``runner.TASKS_PER_SLOT`` (a run's series per worker thread per task) lets it. Every value checked
is the archive's planted truth (tests/pipeline/conftest.py) or a number written here.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys

import numpy as np
import pytest
import xarray as xr

import gridflux
from gridflux.errors import GridfluxError, StoreWriteError
from gridflux.ingest.catalog import series_id
from gridflux.pipeline import manifest as mj
from gridflux.pipeline import runner
from gridflux.pipeline.runner import run, series_per_task, task_bytes_setting
from gridflux.pipeline.store import Store

from .test_pipeline import _assert_matches_truth, _series_totals
from .test_store_faults import _refuse_array_writes_after

A, B, C = (series_id(f"TEST.{s}.hist.r1", "npp") for s in "ABC")


@pytest.fixture
def spy(monkeypatch):
    """Records the series keys of every batch the runner hands to ``process_batch`` (in this
    process: the in-process path, or a cluster of threads)."""
    calls: list[list[str]] = []
    real = runner.process_batch

    def process_batch(items, *args, **kwargs):
        calls.append([job.record.key for job, _ in items])
        return real(items, *args, **kwargs)

    monkeypatch.setattr(runner, "process_batch", process_batch)
    return calls


@pytest.fixture
def one_task(monkeypatch):
    """Every series of a run in as few tasks as task-bytes allows (here: one)."""
    monkeypatch.setattr(runner, "TASKS_PER_SLOT", 1)


def _corrupt_chunk(path, month: int) -> None:
    """Scramble the middle of the deflate stream of ``month``'s chunk of ``npp``."""
    import h5py

    with h5py.File(path, "r") as h:
        info = h["npp"].id.get_chunk_info_by_coord((month,) + (0,) * (h["npp"].ndim - 1))
    with open(path, "r+b") as f:
        f.seek(info.byte_offset + info.size // 2)
        f.write(b"\xff" * 64)


def test_tasks_per_run_and_task_bytes_setting():
    # enough tasks for every worker thread: 8 per thread (TASKS_PER_SLOT), at most 256 series
    assert runner.TASKS_PER_SLOT == 8 and runner.MAX_SERIES_PER_TASK == 256
    assert series_per_task(178, 2) == 11 and series_per_task(178, 1) == 22
    assert series_per_task(3, 1) == 1 and series_per_task(0, 4) == 1
    assert series_per_task(10**6, 2) == 256
    assert task_bytes_setting("64 MiB") == 64 * 2**20 == task_bytes_setting(64 * 2**20)
    assert task_bytes_setting("1 kB") == 1000
    for bad in ("often", 0, None):
        with pytest.raises(GridfluxError, match="pipeline.task-bytes must be"):
            task_bytes_setting(bad)
    assert runner.RunSettings.resolve().task_bytes == 64 * 2**20  # gridflux.yaml
    with gridflux.set_options(**{"pipeline.task-bytes": "2 MB"}):
        assert runner.RunSettings.resolve().task_bytes == 2_000_000
    assert runner.RunSettings.resolve(task_bytes=5).task_bytes == 5


def test_one_task_of_three_series_equals_three_tasks(mini_archive, tmp_path, spy, one_task):
    packed = tmp_path / "packed.zarr"
    s = run(mini_archive["catalog"], mini_archive["mask"], str(packed), cubes=True)
    assert s.ok and sorted(s.done) == [A, B, C]
    assert spy == [[A, B, C]]  # one task held the three series
    _assert_matches_truth(packed, mini_archive["truth"])
    # task-bytes below a file's size: one series per task, the same store bit for bit
    spy.clear()
    alone = tmp_path / "alone.zarr"
    with gridflux.set_options(**{"pipeline.task-bytes": 1}):
        assert run(mini_archive["catalog"], mini_archive["mask"], str(alone), cubes=True).ok
    assert spy == [[A], [B], [C]]
    a, b = xr.open_zarr(packed), xr.open_zarr(alone)
    np.testing.assert_array_equal(a["totals"].values, b["totals"].values)
    np.testing.assert_array_equal(
        xr.open_zarr(packed, group="cubes/npp")["npp"].values,
        xr.open_zarr(alone, group="cubes/npp")["npp"].values,
    )
    # each series has its own manifest entry, with the bytes it read and its worker seconds
    series = Store(str(packed)).read_manifest()["series"]
    months = {A: 24, B: 36, C: 18}
    for key in (A, B, C):
        e = series[key]
        assert e["status"] == "done" and e["seconds"] > 0
        # the bytes of its canonical values: float32, or float64 once units are converted
        assert e["bytes"] / (months[key] * np.prod(_grid_shape(mini_archive, key))) in (4, 8)


def _grid_shape(mini_archive, key):
    import netCDF4

    letter = key.split(".")[1]
    with netCDF4.Dataset(os.path.join(mini_archive["root"], f"npp_{letter}.nc")) as nc:
        return nc.variables["npp"].shape[1:]


def test_a_bad_series_in_a_batch_fails_alone(mini_archive, tmp_path, spy, one_task):
    """A corrupt chunk in A (month 15) fails A with one line naming its file and chunk; B and C,
    in the same task, are done and match the planted truths; A's values are all NaN."""
    root = tmp_path / "arch"
    shutil.copytree(mini_archive["root"], root)
    _corrupt_chunk(root / "npp_A.nc", 15)
    store = tmp_path / "s.zarr"
    s = run(str(root / "catalog.json"), str(root / "mask.nc"), str(store), cubes=True)
    assert spy == [[A, B, C]]
    assert sorted(s.done) == [B, C] and list(s.failed) == [A]
    error = s.failed[A]
    assert "npp_A.nc" in error and "chunk at (15, 0, 0)" in error and "\n" not in error
    truth = {k: v for k, v in mini_archive["truth"].items() if not k[0].startswith("TEST.A.")}
    _assert_matches_truth(store, truth)
    assert np.all(np.isnan(_series_totals(store, "TEST.A.hist.r1", "north").values))
    cube = xr.open_zarr(store, group="cubes/npp")["npp"].sel(member="TEST.A.hist.r1").values
    assert np.all(np.isnan(cube))  # A's first block was written, then cleared with its failure
    series = Store(str(store)).read_manifest()["series"]
    assert series[A]["status"] == "failed" and series[A]["error"] == error
    assert series[B]["status"] == series[C]["status"] == "done"


def test_a_batch_of_done_and_new_series(mini_archive, tmp_path, spy, one_task):
    """A is done in the store; the next run packs B and C into one task and leaves A (its
    manifest entry and its values) untouched."""
    store = tmp_path / "s.zarr"
    first = run(mini_archive["catalog"], mini_archive["mask"], str(store), query={"source_id": "A"})
    assert first.done == [A] and spy == [[A]]
    before = Store(str(store)).read_manifest()["series"][A]
    spy.clear()
    s = run(mini_archive["catalog"], mini_archive["mask"], str(store))
    assert s.skipped == [A] and sorted(s.done) == [B, C] and s.ok
    assert spy == [[B, C]]
    assert Store(str(store)).read_manifest()["series"][A] == before
    _assert_matches_truth(store, mini_archive["truth"])


KILL_IN_SERIES = """
import os, signal, sys
from gridflux.pipeline import runner, tasks
runner.series_per_task = lambda n_series, n_slots: 2  # tasks [A, B] and [C]
kill_key = sys.argv[4]
real = tasks.process_span
def process_span(job, *args, **kwargs):
    if job.record.key == kill_key:  # SIGKILL inside the series' task: no cleanup of any kind
        os.kill(os.getpid(), signal.SIGKILL)
    return real(job, *args, **kwargs)
tasks.process_span = process_span
runner.run(sys.argv[1], sys.argv[2], sys.argv[3], progress=False, cubes=True)
"""


@pytest.mark.parametrize(("kill_in", "done_before"), [(B, []), (C, [A, B])])
def test_sigkill_mid_batch_resumes_without_redoing_finished_batches(
    mini_archive, tmp_path, kill_in, done_before
):
    """Killed while computing B (inside the first task, after A): nothing of that task is
    recorded, so the re-run computes all three. Killed in C (the second task): A and B are done
    and skipped by the re-run. Either way the store equals a clean run's, bit for bit."""
    clean = tmp_path / "clean.zarr"
    assert run(mini_archive["catalog"], mini_archive["mask"], str(clean), cubes=True).ok
    killed = tmp_path / "killed.zarr"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    p = subprocess.run(
        [sys.executable, "-c", KILL_IN_SERIES, mini_archive["catalog"], mini_archive["mask"],
         str(killed), kill_in],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert p.returncode == -signal.SIGKILL, p.stderr[-2000:]
    m = Store(str(killed)).read_manifest()["series"]
    assert sorted(k for k, e in m.items() if e["status"] == "done") == done_before
    again = run(mini_archive["catalog"], mini_archive["mask"], str(killed), cubes=True)
    assert again.ok and again.skipped == done_before
    assert sorted(again.done) == sorted({A, B, C} - set(done_before))
    a, b = xr.open_zarr(clean), xr.open_zarr(killed)
    np.testing.assert_array_equal(a["totals"].values, b["totals"].values)
    np.testing.assert_array_equal(
        xr.open_zarr(clean, group="cubes/npp")["npp"].values,
        xr.open_zarr(killed, group="cubes/npp")["npp"].values,
    )


def test_a_store_fault_in_a_batch_stops_after_recording_the_series_before_it(
    mini_archive, tmp_path, monkeypatch, spy, one_task
):
    """The disk fills up during B's first cube write (A's two blocks were written): A is done,
    B and C stay pending, C is never started (no further write), nothing is 'failed'."""
    store = tmp_path / "s.zarr"
    calls = _refuse_array_writes_after(monkeypatch, "cubes/npp/npp", 2, errno.ENOSPC)
    with pytest.raises(runner.RunStopped) as info:
        run(mini_archive["catalog"], mini_archive["mask"], str(store), cubes=True)
    assert "cannot write a cube block: No space left on device" in str(info.value)
    assert calls["n"] == 3  # A's two blocks, B's refused first one; C not run
    summary = info.value.summary
    assert summary.done == [A] and not summary.failed
    series = Store(str(store)).read_manifest()["series"]
    assert series[A]["status"] == "done" and series[B]["status"] == series[C]["status"] == "pending"
    monkeypatch.undo()
    again = run(mini_archive["catalog"], mini_archive["mask"], str(store), cubes=True)
    assert again.ok and again.skipped == [A] and sorted(again.done) == [B, C]
    _assert_matches_truth(store, mini_archive["truth"])


_LOSING_SEEN: list[list[str]] = []


def _losing_batch(items, *args, **kwargs):
    """``process_batch`` whose tasks of several series, and A's task, fail as a whole (a module
    function: the cluster's threads run it by reference, so it fills this module's list)."""
    from gridflux.pipeline.tasks import process_batch

    keys = [job.record.key for job, _ in items]
    _LOSING_SEEN.append(keys)
    if len(keys) > 1 or keys == [A]:
        raise RuntimeError("worker lost")
    return process_batch(items, *args, **kwargs)


@pytest.mark.slow
def test_on_a_cluster_a_task_lost_as_a_whole_is_redone_span_by_span(
    mini_archive, tmp_path, monkeypatch, one_task
):
    """A task of three series fails as a whole (as when its worker dies): each series is
    resubmitted alone; A, whose lone task fails too, fails with that error, B and C are done."""
    from distributed import Client

    seen = _LOSING_SEEN
    seen.clear()
    monkeypatch.setattr(runner, "process_batch", _losing_batch)
    store = tmp_path / "s.zarr"
    with Client(processes=False, n_workers=1, threads_per_worker=1, dashboard_address=None) as c:
        s = run(mini_archive["catalog"], mini_archive["mask"], str(store), client=c)
    assert seen[0] == [A, B, C] and sorted(seen[1:]) == [[A], [B], [C]]
    assert sorted(s.done) == [B, C] and s.failed == {A: "RuntimeError: worker lost"}
    truth = {k: v for k, v in mini_archive["truth"].items() if not k[0].startswith("TEST.A.")}
    _assert_matches_truth(store, truth)


def test_totals_of_a_batch_in_one_call_also_into_shared_chunks(tmp_path, monkeypatch):
    """write_many puts each series' totals at its (member, variable), also when several series
    share a chunk (written in turn: no update lost); a refused write is the store's one line."""
    import zarr

    class FakeStore:  # what TotalsWriter uses of a Store
        url = str(tmp_path / "t.zarr")

        def zarr_store(self):
            return zarr.storage.LocalStore(self.url)

        def write_error(self, what, exc):
            return Store(self.url).write_error(what, exc)

    zarr.create_array(
        FakeStore.url, name="totals", shape=(5, 3, 2, 4), chunks=(2, 2, 2, 4), dtype="f8",
        fill_value=np.nan,
    )  # fmt: skip
    series = [(m, v, np.full((2, 4), 10.0 * m + v)) for m in range(5) for v in range(3)]
    writer = mj.TotalsWriter(FakeStore())
    writer.write_many(series[::2])
    writer.write_many(series[1::2])
    got = zarr.open_array(FakeStore.url, path="totals")[...]
    expected = np.broadcast_to(
        (10.0 * np.arange(5)[:, None] + np.arange(3))[..., None, None], got.shape
    )
    np.testing.assert_array_equal(got, expected)

    async def refuse(self, key, value):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), key)

    monkeypatch.setattr(zarr.storage.LocalStore, "set", refuse)
    with pytest.raises(StoreWriteError, match="cannot write totals: No space left on device"):
        mj.TotalsWriter(FakeStore()).write_many(series[:3])


def test_a_batch_journal_append_is_one_write_and_scrubbed_like_one_line_each(tmp_path):
    from gridflux.ingest.remote import scrub_tree

    st = Store(str(tmp_path / "s.zarr"), {"key": "AKIDSECRET1", "secret": "s3cr3tvalue"})
    st.fs.makedirs(st.root, exist_ok=True)
    j = mj.Journal(st.fs, f"{st.root}/{mj.JOURNAL_DIR}", st)
    entries = [
        (f"m{i}/npp", {
            "status": "done",
            "fingerprint": {"paths": [{"path": f"s3://u:pw@b/k{i}.nc?X-Amz-Signature=abc&v=1"}]},
            "error": "token AKIDSECRET1 and s3cr3tvalue in a message",
            "n": i,
        })
        for i in range(3)
    ]  # fmt: skip
    writes = []
    real = os.write
    os_write = lambda fd, data: writes.append(len(data)) or real(fd, data)  # noqa: E731
    try:
        os.write = os_write
        j.record_many(entries)
    finally:
        os.write = real
    assert len(writes) == 1
    (path,) = mj.journal_files(st.fs, j.directory)
    lines = [json.loads(x) for x in st.fs.cat(path).decode().splitlines()]
    assert [x["key"] for x in lines] == ["m0/npp", "m1/npp", "m2/npp"]
    for (_, entry), line in zip(entries, lines, strict=True):
        assert line["entry"] == scrub_tree(entry, st.storage_options)
        text = json.dumps(line)
        assert "AKIDSECRET1" not in text and "s3cr3tvalue" not in text and "pw@" not in text
