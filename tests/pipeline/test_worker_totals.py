"""Workers write the totals of the time blocks they compute (layout 2; issue 19: driver cost per
series): the store's files are those the driver's write of whole series made, byte for byte; a
layout-1 store (one totals chunk per series, shared by its blocks) keeps the driver's write; a
series that fails after a worker wrote some of its totals keeps none of them.

The mini archive (tests/pipeline/conftest.py) has A (24 months from 2000), B (36 from 2000) and
C (18 from 2001-01); the store's axis is 2000-01..2002-12, so C's last chunk is half its months.
"""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
import zarr

from gridflux.ingest.catalog import series_id
from gridflux.pipeline import manifest as mj
from gridflux.pipeline import runner
from gridflux.pipeline import store as store_mod
from gridflux.pipeline.runner import run

from .growth_archive import assert_same_store, chunk_hashes
from .test_batches import _corrupt_chunk
from .test_pipeline import _assert_matches_truth, _series_totals

A = series_id("TEST.A.hist.r1", "npp")


@pytest.fixture
def driver_writes(monkeypatch):
    """The series (keys by member index) whose totals the driver writes, per call."""
    calls: list[list[int]] = []
    real = mj.TotalsWriter.write_many

    def write_many(self, series):
        calls.append([m for m, _, _ in series])
        return real(self, series)

    monkeypatch.setattr(mj.TotalsWriter, "write_many", write_many)
    return calls


def _totals_files(store) -> dict[str, str]:
    return {k: v for k, v in chunk_hashes(store).items() if k.startswith("totals" + os.sep)}


@pytest.mark.parametrize("task_months", [None, 12])
def test_worker_written_totals_are_the_driver_written_store(
    mini_archive, tmp_path, monkeypatch, driver_writes, task_months
):
    """Built with the workers' writes and with the driver's: the same totals chunk files with
    the same bytes (all-NaN chunks not stored in either), every array equal bit for bit, and the
    planted truths; with the workers' writes the driver writes no totals. ``task_months`` 12:
    each year of a series is a task of its own (its chunks written by different tasks)."""
    cat, mask = mini_archive["catalog"], mini_archive["mask"]
    workers = tmp_path / "workers.zarr"
    assert run(cat, mask, str(workers), task_months=task_months, progress=False).ok
    assert driver_writes == []  # the driver wrote no totals
    driver_writes.clear()
    monkeypatch.setattr(runner, "WORKER_TOTALS", False)
    driver = tmp_path / "driver.zarr"
    assert run(cat, mask, str(driver), task_months=task_months, progress=False).ok
    assert sorted(m for c in driver_writes for m in c) == [0, 1, 2]
    got, want = _totals_files(workers), _totals_files(driver)
    assert got == want
    # 3 series x 2 regions in one chunk: A 2 chunks (2000, 2001), B 3, C 2 (2001, 2002 half)
    assert len([k for k in got if os.path.basename(k) != "zarr.json"]) == 7
    assert_same_store(workers, driver)
    _assert_matches_truth(workers, mini_archive["truth"])
    c = _series_totals(workers, "TEST.C.hist.r1", "north").values
    assert np.isnan(c[:12]).all() and np.isnan(c[30:]).all() and np.isfinite(c[12:30]).all()


def test_a_layout_1_store_keeps_the_drivers_write(mini_archive, tmp_path, monkeypatch):
    """One totals chunk per series (every block of a series in it): the workers write no totals
    (two tasks of a series would race on the chunk), the driver writes each series once."""
    writes: list[tuple] = []
    real = zarr.Array.__setitem__

    def setitem(self, key, value):
        if self.path == "totals":
            writes.append(key)
        return real(self, key, value)

    monkeypatch.setattr(zarr.Array, "__setitem__", setitem)
    monkeypatch.setattr(store_mod, "totals_chunks", lambda t: (1, 1, len(t.regions), len(t.months)))
    store = tmp_path / "s.zarr"
    cat, mask = mini_archive["catalog"], mini_archive["mask"]
    assert run(cat, mask, str(store), task_months=12, progress=False).ok
    assert zarr.open_array(str(store), path="totals").chunks == (1, 1, 2, 36)
    assert sorted(writes) == [(m, v) for m in range(3) for v in (0,)]  # whole series, driver
    _assert_matches_truth(store, mini_archive["truth"])


def test_a_series_failing_after_a_worker_wrote_its_first_year_keeps_no_totals(
    mini_archive, tmp_path
):
    """A's second year (month 15) is corrupt, its first year a task of its own that writes its
    totals: A fails and its totals are all NaN (no chunk of it stored); B and C are done."""
    root = tmp_path / "arch"
    shutil.copytree(mini_archive["root"], root)
    _corrupt_chunk(root / "npp_A.nc", 15)
    store = tmp_path / "s.zarr"
    s = run(
        str(root / "catalog.json"),
        str(root / "mask.nc"),
        str(store),
        task_months=12,
        progress=False,
    )
    assert list(s.failed) == [A] and len(s.done) == 2
    assert np.isnan(_series_totals(store, "TEST.A.hist.r1", "north").values).all()
    a = store / "totals" / "c" / "0"  # member 0 (A): chunks deleted by the clear, if any
    assert not [f for _, _, files in os.walk(a) for f in files]
    truth = {k: v for k, v in mini_archive["truth"].items() if not k[0].startswith("TEST.A.")}
    _assert_matches_truth(store, truth)
