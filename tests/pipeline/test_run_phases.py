"""The phases of a run, each on its own: plan, template, select, prepare (submit), collect, record.

The numbers checked are the mini archive's own (its files' months, its members' traits) or
values handed to a phase here, never what the phase computed elsewhere.
"""

from __future__ import annotations

import json
import os
from types import SimpleNamespace

import numpy as np
import pytest
import xarray as xr

from gridflux.fields.masks import RegionMask
from gridflux.fields.timeaxis import continuous_months
from gridflux.ingest.catalog import load_catalog, series_id
from gridflux.pipeline.plan import SeriesPlan, build_template
from gridflux.pipeline.runner import Run, RunSettings, run
from gridflux.pipeline.store import Store
from gridflux.pipeline.tasks import process_span

A, B, C = (series_id(f"TEST.{s}.hist.r1", "npp") for s in "ABC")
# the mini archive's series: first month and number of months (tests/pipeline/conftest.py)
MONTHS = {A: ((2000, 1), 24), B: ((2000, 1), 36), C: ((2001, 1), 18)}


def _run(mini_archive, store, **settings) -> tuple[Run, list]:
    s = RunSettings.resolve(**settings)
    r = Run(
        settings=s,
        mask=RegionMask.from_file(mini_archive["mask"]),
        store=Store(str(store), None, s.zarr_format),
    )
    return r, load_catalog(mini_archive["catalog"]).series()


def _expected_months(key):
    first, n = MONTHS[key]
    return continuous_months(first, (first[0] + (first[1] - 1 + n - 1) // 12, (n - 1) % 12 + 1))


def test_plan_of_a_new_store_opens_every_series(mini_archive, tmp_path):
    r, records = _run(mini_archive, tmp_path / "s.zarr")
    plans = r.plan(records)
    assert [p.key for p in plans] == [A, B, C]
    assert all(p.planned and not p.skip and p.error is None for p in plans)
    for p in plans:
        assert p.months == _expected_months(p.key)
        assert p.fingerprint is not None
    assert r.months is None and not r.existing


def test_plan_skips_a_done_series_only_while_fingerprint_and_config_are_unchanged(
    mini_archive, tmp_path
):
    store = tmp_path / "s.zarr"
    assert run(mini_archive["catalog"], mini_archive["mask"], str(store), progress=False).ok
    r, records = _run(mini_archive, store)
    plans = r.plan(records)
    # on an existing store too, series whose months the catalog does not declare are planned at
    # once (the store's axis may grow); a done one is skipped without opening its files
    assert r.existing and all(p.planned and p.skip for p in plans)
    # a changed input file (its modification time) is planned again; the others stay skipped
    path = records[0].paths[0]
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    late = {p.key: p for p in r.plan(records)}
    assert not late[A].skip and late[A].months == _expected_months(A)
    assert late[B].skip and late[C].skip
    # another configuration (protocol): nothing is skipped
    r2, _ = _run(mini_archive, store, protocol="regrid-mask")
    assert not any(p.skip for p in r2.plan(records))


def test_template_holds_the_union_of_months_and_the_members_traits(mini_archive, tmp_path):
    r, records = _run(mini_archive, tmp_path / "s.zarr")
    r.plan(records)
    t = r.make_template()
    assert t.months == continuous_months((2000, 1), (2002, 12))  # B spans the others
    assert t.members == ["TEST.A.hist.r1", "TEST.B.hist.r1", "TEST.C.hist.r1"]
    assert t.traits["layered_c"] == [True, False, False] and t.traits["fire"] == [False, True, True]
    assert t.variables == ["npp"] and r.store.exists()
    # months with a gap between series: one continuous axis from the first to the last
    rec = SimpleNamespace(member="m1", variable="v", traits={}, key="m1/v")
    rec2 = SimpleNamespace(member="m2", variable="v", traits={"fire": "1"}, key="m2/v")
    plans = [
        SeriesPlan(record=rec, months=[(1999, 11), (1999, 12)]),
        SeriesPlan(record=rec2, months=[(2001, 2)]),
    ]
    t2 = build_template(plans, r.mask, None, None, False, 12)
    # the axis starts at the start of the 12-month chunk of the first month (January), so that a
    # store's chunks fall on the same months however its axis grows
    assert len(t2.months) == 26 and t2.months[0] == (1999, 1) and t2.months[-1] == (2001, 2)
    t3 = build_template(plans, r.mask, None, None, False, 24)  # chunks of 2 years from year 0
    assert t3.months[0] == (1998, 1) and t3.months[-1] == (2001, 2)
    assert t2.traits["fire"] == [False, True] and t2.traits["ensemble"] == ["", ""]


def test_select_records_plans_that_failed_and_earlier_failures(mini_archive, tmp_path):
    r, records = _run(mini_archive, tmp_path / "s.zarr")
    plans = r.plan(records)
    plans[0].error = "OSError: broken file"
    r.make_template()
    todo = r.select()
    assert [p.key for p in todo] == [B, C]
    assert r.summary.failed == {A: "OSError: broken file"}
    manifest = json.loads((tmp_path / "s.zarr" / "manifest.json").read_text())["series"]
    assert manifest[A]["status"] == "failed" and manifest[A]["error"] == "OSError: broken file"
    assert manifest[B]["status"] == manifest[C]["status"] == "pending"
    # the next run leaves a series that failed earlier alone unless asked to retry it
    r2, _ = _run(mini_archive, tmp_path / "s.zarr")
    r2.retry_failed = False
    r2.plan(records)
    r2.make_template()
    assert [p.key for p in r2.select()] == [B, C] and r2.summary.failed[A] == "OSError: broken file"


def test_prepare_makes_a_series_tasks_and_fails_months_outside_the_store(mini_archive, tmp_path):
    r, records = _run(mini_archive, tmp_path / "s.zarr")
    plans = r.plan(records)
    r.make_template()
    todo = r.select()
    r.task_months = 12
    p, spans, _ = r.prepare(todo[2])  # C: 18 months from 2001-01 = blocks of 12 and 6
    assert p.key == C and [s.blocks for s in spans] == [((0, 12),), ((12, 18),)]
    assert [(s.key, s.index, s.n_spans) for s in spans] == [(C, 0, 2), (C, 1, 2)]
    # each span weighs its share of the file's bytes (12 and 6 of 18 months)
    size = os.path.getsize(p.record.paths[0])
    assert [s.nbytes for s in spans] == [int(size * 12 / 18), int(size * 6 / 18)]
    results = [process_span(s.job, s.blocks, r.mask) for s in spans]
    positions = np.concatenate([pos for span in results for pos, *_ in span])
    np.testing.assert_array_equal(positions, np.arange(12, 12 + 18))  # 2001-01 is month 12
    # a series whose months lie outside the store's axis fails, recorded, without tasks
    bad = SeriesPlan(record=plans[0].record, months=[(1990, 1)], fingerprint={})
    p, spans, _ = r.prepare(bad)
    assert spans is None and "1990-01.. lie outside the store's time axis" in r.summary.failed[A]
    assert "(2000-01..2002-12)" in r.summary.failed[A]


def test_collect_records_one_series_without_touching_the_others(mini_archive, tmp_path):
    store = tmp_path / "s.zarr"
    r, records = _run(mini_archive, store)
    r.plan(records)
    r.make_template()
    # a layout-2 store: workers write the totals (tests/pipeline/test_worker_totals.py); here
    # the driver's path, as for a store of layout 1, writes what collect is handed
    assert r.worker_totals is not None
    r.worker_totals = None
    todo = {p.key: p for p in r.select()}
    # B done: totals (time, region) of two blocks handed in here land at their positions
    results = [
        [(np.array([0, 1]), np.array([[1.0, 2.0], [3.0, 4.0]]), 100)],
        [(np.array([35]), np.array([[5.0, 6.0]]), 50)],
    ]
    r.collect(todo[B], results, None, 0.5)
    r.collect(todo[A], None, "RuntimeError: worker died", 0.25)
    r.record()
    assert r.summary.done == [B] and r.summary.failed == {A: "RuntimeError: worker died"}
    assert r.summary.bytes_read == 150
    tot = xr.open_zarr(store)["totals"].sel(variable="npp").load()
    b = tot.sel(member="TEST.B.hist.r1").transpose("region", "time").values
    np.testing.assert_array_equal(b[:, [0, 1, 35]], [[1.0, 3.0, 5.0], [2.0, 4.0, 6.0]])
    assert np.isnan(np.delete(b, [0, 1, 35], axis=1)).all()
    assert np.isnan(tot.sel(member=["TEST.A.hist.r1", "TEST.C.hist.r1"]).values).all()
    manifest = json.loads((store / "manifest.json").read_text())["series"]
    assert manifest[B]["status"] == "done" and manifest[B]["bytes"] == 150
    assert manifest[A]["status"] == "failed" and manifest[A]["error"] == "RuntimeError: worker died"
    assert manifest[C]["status"] == "pending"


@pytest.mark.parametrize("cubes", [False])
def test_the_phases_in_order_give_the_run(mini_archive, tmp_path, cubes):
    """plan, template, select, execute, record by hand: the same store as ``run``."""
    by_run = tmp_path / "run.zarr"
    assert run(mini_archive["catalog"], mini_archive["mask"], str(by_run), cubes=cubes).ok
    store = tmp_path / "phases.zarr"
    r, records = _run(mini_archive, store, cubes=cubes)
    r.plan(records)
    r.make_template()
    r.execute(r.select(), None)
    r.record()
    assert sorted(r.summary.done) == [A, B, C]
    np.testing.assert_array_equal(
        xr.open_zarr(store)["totals"].values, xr.open_zarr(by_run)["totals"].values
    )
