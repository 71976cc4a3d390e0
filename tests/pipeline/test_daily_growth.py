"""The daily group grows (issue 16, points 4, 5, 7 for ``daily/``): a daily series done with
the same inputs and configuration is neither recomputed nor rewritten (its chunks keep their
bytes, inode and mtime); a run with nothing new leaves the group untouched; a changed input or
result-changing catalog field recomputes that series only; the grown group equals the group
built in one run from the final catalog, array for array (by label) and attribute for
attribute; a failed or pruned series leaves no values; a write killed midway is redone.

Values are checked against numpy truths (``sum x w / sum w`` per day over finite cells, and
``-sum f * 86400 * w / 1e9`` for a flux into the land) written here from the files' values and
the rectangle geometry of the mask (``region_cell_weights``); what is compared between stores is
the stores themselves, never a value gridflux computed standing in for a truth.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

import gridflux
import gridflux.pipeline.daily as daily_mod
from gridflux.ingest.catalog import write_catalog
from gridflux.pipeline.store import open_store

from .conftest import BOXES, region_cell_weights
from .growth_archive import killer_script
from .test_statistics_run import (
    GRID,
    _daily_dates,
    _mask,
    _means_truth,
    _monthly_dates,
    _row,
    _write,
)

# daily series: source -> (calendar, first (year, month, day), months); a year boundary inside,
# so that the group has two time chunks of 12 months from the start
DAILY = {
    "D1": ("noleap", (2000, 11, 1), 3),
    "D2": ("360_day", (2000, 12, 1), 2),
}
NEW_MEMBER = ("D3", ("standard", (2001, 11, 1), 3))  # past the axis' end: a new time chunk


def _label(d) -> str:
    return f"{d.year:04d}-{d.month:02d}-{d.day:02d}"


def _series(root: Path, source: str, cal: str, start, months: int, seed: int, var: str):
    rng = np.random.default_rng(seed)
    dates = _daily_dates(cal, start=start, months=months)
    shape = (len(dates),) + GRID.shape
    if var == "tas":
        x = (260.0 + 20.0 * rng.random(shape)).astype("f4").astype(np.float64)
        x[:, :5, :] = np.nan  # no data south of 75S
        _write(root / f"tas_{source}.nc", x, dates, cal, attrs={"standard_name": "air_temperature"})
        return dates, x, _row(source, "tas", f"tas_{source}.nc", table_id="day")
    x = (1e-8 * rng.standard_normal(shape)).astype("f4").astype(np.float64)
    _write(root / f"nbp_{source}.nc", x, dates, cal, name="nbp", units="kg m-2 s-1")
    return dates, x, _row(source, "nbp", f"nbp_{source}.nc", table_id="day", into_land="true")


@pytest.fixture()
def release(tmp_path):
    """Files and rows of the first catalog (A), and of what the second adds (B = A + new)."""
    return make_release(tmp_path)


def make_release(tmp_path):
    """The files and catalogs of :func:`release`."""
    root = tmp_path / "archive"
    root.mkdir()
    data, rows_a, rows_new = {}, [], []
    for k, (src, (cal, start, months)) in enumerate(DAILY.items()):
        for j, var in enumerate(("tas", "nbp")):
            dates, x, row = _series(root, src, cal, start, months, 10 * k + j, var)
            data[(src, var)] = (dates, x)
            rows_a.append(row)
    m = (250.0 + 30.0 * np.random.default_rng(3).random((12,) + GRID.shape)).astype("f4")
    _write(root / "tas_M.nc", m.astype(np.float64), _monthly_dates(12, "noleap"), "noleap")
    rows_a.append(_row("M", "tas", "tas_M.nc", table_id="Amon"))
    # B: a new daily member past the axis' end, a new variable of a stored daily member, and a
    # new monthly member
    src, (cal, start, months) = NEW_MEMBER
    dates, x, row = _series(root, src, cal, start, months, 77, "tas")
    data[(src, "tas")] = (dates, x)
    rows_new.append(row)
    dates, x, row = _series(root, "D2", "360_day", (2000, 12, 1), 2, 78, "nbp")
    rows_a = [r for r in rows_a if not (r["source_id"] == "D2" and r["variable"] == "nbp")]
    data[("D2", "nbp")] = (dates, x)
    rows_new.append(row)
    m2 = (240.0 + 30.0 * np.random.default_rng(4).random((12,) + GRID.shape)).astype("f4")
    _write(root / "tas_M2.nc", m2.astype(np.float64), _monthly_dates(12, "noleap"), "noleap")
    rows_new.append(_row("M2", "tas", "tas_M2.nc", table_id="Amon"))
    a = write_catalog(rows_a, root / "a.json")
    b = write_catalog(rows_a + rows_new, root / "b.json")
    return {
        "root": root,
        "a": str(a),
        "b": str(b),
        "rows_a": rows_a,
        "rows_b": rows_a + rows_new,
        "mask": _mask(root),
        "data": data,
    }


@pytest.fixture()
def spy(monkeypatch):
    """The daily series computed (their keys), in order."""
    seen: list[str] = []
    real = daily_mod.compute_series

    def counting(record, *args, **kw):
        seen.append(daily_mod.series_key(record))
        return real(record, *args, **kw)

    monkeypatch.setattr(daily_mod, "compute_series", counting)
    return seen


def _run(cat, mask, store, **kw):
    return gridflux.run(cat, mask, str(store), cubes=False, progress=False, **kw)


def _daily_files(store) -> dict[str, tuple[str, int, int]]:
    """Every file of the daily group -> (sha1, inode, mtime_ns)."""
    base = os.path.join(store, "daily")
    out = {}
    for dirpath, _dirs, files in os.walk(base):
        for f in files:
            path = os.path.join(dirpath, f)
            st = os.stat(path)
            with open(path, "rb") as fh:
                out[os.path.relpath(path, base)] = (
                    hashlib.sha1(fh.read()).hexdigest(),
                    st.st_ino,
                    st.st_mtime_ns,
                )
    return out


def _labelled_chunks(store) -> dict[tuple[str, str, str], tuple[str, int, int]]:
    """The daily totals' chunk files by label: (member, variable, first day of the chunk)."""
    ds = open_store(store, group="daily")
    members = [str(m) for m in ds["member"].values]
    variables = [str(v) for v in ds["variable"].values]
    labels = [str(t) for t in ds["time"].values]
    tc = int(ds["totals"].encoding["chunks"][3])
    out = {}
    for rel, info in _daily_files(store).items():
        parts = rel.split(os.sep)
        if parts[:2] != ["totals", "c"]:
            continue
        m, v, _r, t = (int(p) for p in parts[2:])
        out[(members[m], variables[v], labels[t * tc])] = info
    return out


def _of(chunks: dict, member: str, variable: str | None = None) -> dict:
    return {k: v for k, v in chunks.items() if k[0] == member and variable in (None, k[1])}


def _bits(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float64).view(np.uint64)


def assert_same_daily(grown, once) -> None:
    """The daily groups of two stores equal: every array bit for bit by label (member, variable,
    region, time), every coordinate, the group's attributes (its series' descriptions with their
    fingerprints; its labels with the regions by label, their geometry hashes), and the
    consolidated metadata of the grown store up to date."""
    import zarr

    a, b = open_store(grown, group="daily"), open_store(once, group="daily")
    for dim in ("member", "variable", "region"):
        assert sorted(a[dim].values.tolist()) == sorted(b[dim].values.tolist()), dim
    assert a["time"].values.tolist() == b["time"].values.tolist(), "time"
    b = b.reindex(member=a.member, variable=a.variable, region=a.region)
    assert np.array_equal(_bits(a["totals"].values), _bits(b["totals"].values)), "totals"
    assert set(a.coords) == set(b.coords)
    for name in a.coords:
        assert a[name].values.tolist() == b[name].values.tolist(), name
    assert a.attrs.keys() == b.attrs.keys()
    for key in a.attrs:
        if key == "gridflux_series":
            assert json.loads(a.attrs[key]) == json.loads(b.attrs[key])
        elif key == "gridflux_layout":  # the regions by label: a grown group appends them
            la, lb = json.loads(a.attrs[key]), json.loads(b.attrs[key])
            assert sorted(la.pop("regions")) == sorted(lb.pop("regions"))
            assert la == lb
        else:
            assert a.attrs[key] == b.attrs[key], key
    # every array of the grown group has the shape the root's consolidated metadata says (what
    # xarray reads), and so has it read without it
    plain = zarr.open_group(str(grown), path="daily", mode="r", use_consolidated=False)
    consolidated = zarr.open_group(str(grown), mode="r", use_consolidated=True)["daily"]
    for name, arr in plain.arrays():
        assert tuple(arr.shape) == tuple(consolidated[name].shape), name
        if name in a.variables:
            assert tuple(arr.shape) == a[name].shape, name


def _tas_truth(data, key, label, region):
    dates, x = data[key]
    k = next(i for i, d in enumerate(dates) if _label(d) == label)
    return _means_truth(x[k][None], region_cell_weights(GRID, region))[0]


def _nbp_truth(data, key, label, region):
    """Tg C of the day, positive to the atmosphere (the file's flux is into the land), and the
    tolerance: relative to the sum of the signed terms' sizes."""
    dates, f = data[key]
    k = next(i for i, d in enumerate(dates) if _label(d) == label)
    terms = (f[k] * 86400.0 * region_cell_weights(GRID, region)).ravel() / 1e9
    return -math.fsum(terms.tolist()), 1e-12 * math.fsum(np.abs(terms).tolist())


def _value(store, member, variable, label, region):
    tot = open_store(store, group="daily")["totals"]
    return float(tot.sel(member=member, variable=variable, time=label, region=region).values)


def _daily_done(summary) -> list[str]:
    return sorted(k for k in summary.done if k.endswith("(daily)"))


def test_grown_equals_built_once_and_done_series_are_neither_recomputed_nor_rewritten(
    release, spy, tmp_path
):
    grown = str(tmp_path / "grown.zarr")
    s1 = _run(release["a"], release["mask"], grown)
    assert s1.ok, s1.failed
    assert len(spy) == 3 and len(_daily_done(s1)) == 3
    before = _labelled_chunks(grown)
    old_keys = sorted(spy)
    assert _of(before, "T.D1.hist.r1", "tas") and _of(before, "T.D2.hist.r1", "tas")

    spy.clear()
    s2 = _run(release["b"], release["mask"], grown)
    assert s2.ok, s2.failed
    # only the new daily series are computed; the stored ones are skipped, named as such
    assert sorted(spy) == ["T.D2.hist.r1/nbp (daily)", "T.D3.hist.r1/tas (daily)"]
    assert _daily_done(s2) == sorted(spy)
    assert sorted(k for k in s2.skipped if k.endswith("(daily)")) == old_keys
    assert s2.done.count("T.M2.hist.r1/tas") == 1  # the monthly member, to the root
    last = gridflux.pipeline.store.Store(grown).read_manifest()["history"][-1]["daily"]
    assert sorted(e["series"] for e in last["added"]) == sorted(spy)
    assert last["replaced"] == [] and last["recomputed"] == [] and last["failed"] == []
    after = _labelled_chunks(grown)
    for key in old_keys:
        member, variable = daily_mod.key_pair(key)
        old = _of(before, member, variable)
        assert old and {k: after.get(k) for k in old} == old, f"{key}: chunks rewritten"
    # the new member's chunks are new files, and the axis grew at its end (a new year)
    assert _of(after, "T.D3.hist.r1", "tas")
    labels = [str(t) for t in open_store(grown, group="daily")["time"].values]
    assert labels[0] == "2000-01-01" and labels[-1] == "2002-01-31"

    # the values of the new series are the numpy truths
    data = release["data"]
    for label in ("2001-11-05", "2002-01-31"):
        for r in BOXES:
            got = _value(grown, "T.D3.hist.r1", "tas", label, r)
            np.testing.assert_allclose(got, _tas_truth(data, ("D3", "tas"), label, r), 1e-12)
    for label in ("2000-12-30", "2001-01-01"):
        want, atol = _nbp_truth(data, ("D2", "nbp"), label, "north")
        got = _value(grown, "T.D2.hist.r1", "nbp", label, "north")
        np.testing.assert_allclose(got, want, atol=atol)
    assert np.isnan(_value(grown, "T.D3.hist.r1", "tas", "2001-10-31", "north"))

    once = str(tmp_path / "once.zarr")
    assert _run(release["b"], release["mask"], once).ok
    assert_same_daily(grown, once)

    # (b) nothing new: the group is not touched (every file: bytes, inode, mtime)
    files = _daily_files(grown)
    spy.clear()
    s3 = _run(release["b"], release["mask"], grown)
    assert s3.ok and spy == [] and _daily_done(s3) == []
    assert len([k for k in s3.skipped if k.endswith("(daily)")]) == 5
    assert _daily_files(grown) == files


def test_a_changed_input_or_catalog_field_recomputes_that_series_only(release, spy, tmp_path):
    store = str(tmp_path / "s.zarr")
    assert _run(release["b"], release["mask"], store).ok
    before = _labelled_chunks(store)
    # D1's tas rewritten with other values (a new mtime and content)
    root, data = release["root"], release["data"]
    dates, x = data[("D1", "tas")]
    y = x + 3.0
    _write(root / "tas_D1.nc", y, dates, "noleap", attrs={"standard_name": "air_temperature"})
    data[("D1", "tas")] = (dates, y)
    spy.clear()
    s = _run(release["b"], release["mask"], store)
    assert s.ok and spy == ["T.D1.hist.r1/tas (daily)"] and _daily_done(s) == spy
    last = gridflux.pipeline.store.Store(store).read_manifest()["history"][-1]["daily"]
    assert last["replaced"] == [{"series": spy[0], "from": "", "to": ""}], last
    assert last["added"] == []
    after = _labelled_chunks(store)
    for (member, variable, first), info in before.items():
        if (member, variable) != ("T.D1.hist.r1", "tas"):
            assert after[(member, variable, first)] == info, (member, variable, first)
    got = _value(store, "T.D1.hist.r1", "tas", "2000-11-30", "box")
    np.testing.assert_allclose(got, _tas_truth(data, ("D1", "tas"), "2000-11-30", "box"), 1e-12)

    # a result-changing catalog field: nbp of D1 no longer "into the land" -> its sign flips
    rows = [dict(r) for r in release["rows_b"]]
    for r in rows:
        if r["source_id"] == "D1" and r["variable"] == "nbp":
            r["into_land"] = "false"
    flipped = write_catalog(rows, root / "flipped.json")
    spy.clear()
    s = _run(str(flipped), release["mask"], store)
    assert s.ok and spy == ["T.D1.hist.r1/nbp (daily)"]
    want, atol = _nbp_truth(data, ("D1", "nbp"), "2000-12-24", "north")
    np.testing.assert_allclose(
        _value(store, "T.D1.hist.r1", "nbp", "2000-12-24", "north"), -want, atol=atol
    )
    once = str(tmp_path / "once.zarr")
    assert _run(str(flipped), release["mask"], once).ok
    assert_same_daily(store, once)


def test_verify_notices_content_changed_under_a_restored_mtime(release, spy, tmp_path):
    store = str(tmp_path / "v.zarr")
    q = {"source_id": ["D1", "D2"]}
    assert _run(release["a"], release["mask"], store, query=q, verify=True).ok
    spy.clear()
    assert _run(release["a"], release["mask"], store, query=q, verify=True).ok and spy == []
    path = release["root"] / "tas_D2.nc"
    st = os.stat(path)
    dates, x = release["data"][("D2", "tas")]
    y = x[:, ::-1, :].copy()  # other values, the same size
    _write(path, y, dates, "360_day", attrs={"standard_name": "air_temperature"})
    assert os.stat(path).st_size == st.st_size
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    spy.clear()
    s = _run(release["a"], release["mask"], store, query=q, verify=True)
    assert s.ok and spy == ["T.D2.hist.r1/tas (daily)"]
    want = _means_truth(y[5][None], region_cell_weights(GRID, "north"))[0]
    got = _value(store, "T.D2.hist.r1", "tas", _label(dates[5]), "north")
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_a_failed_or_pruned_series_leaves_no_values(release, spy, tmp_path):
    store = str(tmp_path / "f.zarr")
    assert _run(release["b"], release["mask"], store).ok
    before = _labelled_chunks(store)
    assert _of(before, "T.D2.hist.r1", "tas")
    os.remove(release["root"] / "tas_D2.nc")  # its input is gone: the series fails
    s = _run(release["b"], release["mask"], store)
    assert list(s.failed) == ["T.D2.hist.r1/tas (daily)"]
    assert np.isnan(
        open_store(store, group="daily")["totals"].sel(member="T.D2.hist.r1", variable="tas").values
    ).all()
    after = _labelled_chunks(store)
    assert not _of(after, "T.D2.hist.r1", "tas")  # its chunks are gone
    for label, info in before.items():
        if label[:2] != ("T.D2.hist.r1", "tas"):
            assert after[label] == info, label
    info = daily_mod.series_info(gridflux.pipeline.store.Store(store))
    assert info["T.D2.hist.r1/tas (daily)"]["status"] == "failed"
    files = _daily_files(store)
    s = _run(release["b"], release["mask"], store)  # failing again the same way: no write
    assert list(s.failed) == ["T.D2.hist.r1/tas (daily)"] and _daily_files(store) == files

    # D1 out of the catalog: kept and named without prune, removed with it
    rows = [r for r in release["rows_b"] if r["source_id"] != "D1"]
    cat = write_catalog(rows, release["root"] / "no_d1.json")
    s = _run(str(cat), release["mask"], store)
    assert sorted(s.not_in_catalogs) == ["T.D1.hist.r1/nbp (daily)", "T.D1.hist.r1/tas (daily)"]
    assert _of(_labelled_chunks(store), "T.D1.hist.r1")
    s = _run(str(cat), release["mask"], store, prune=True)
    assert sorted(s.pruned) == ["T.D1.hist.r1/nbp (daily)", "T.D1.hist.r1/tas (daily)"]
    assert not _of(_labelled_chunks(store), "T.D1.hist.r1")
    info = daily_mod.series_info(gridflux.pipeline.store.Store(store))
    assert not [k for k in info if k.startswith("T.D1.")]


def test_a_write_killed_midway_is_redone_to_the_group_built_once(
    release, spy, tmp_path, monkeypatch
):
    grown = str(tmp_path / "k.zarr")
    assert _run(release["a"], release["mask"], grown).ok
    # the next step replaces D1's tas (new content) and adds a member and a variable; the
    # driver dies after writing the first series' chunks
    root, data = release["root"], release["data"]
    dates, x = data[("D1", "tas")]
    _write(root / "tas_D1.nc", x - 5.0, dates, "noleap", attrs={"standard_name": "air_temperature"})
    real = daily_mod.series_row
    calls: list[int] = []

    def dying(s, layout):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt("killed")
        return real(s, layout)

    monkeypatch.setattr(daily_mod, "series_row", dying)
    with pytest.raises(KeyboardInterrupt):
        _run(release["b"], release["mask"], grown)
    monkeypatch.setattr(daily_mod, "series_row", real)
    info = daily_mod.series_info(gridflux.pipeline.store.Store(grown))
    assert info["T.D1.hist.r1/tas (daily)"]["status"] == "pending"
    spy.clear()
    s = _run(release["b"], release["mask"], grown)
    assert s.ok, s.failed
    assert sorted(spy) == [
        "T.D1.hist.r1/tas (daily)",
        "T.D2.hist.r1/nbp (daily)",
        "T.D3.hist.r1/tas (daily)",
    ]
    once = str(tmp_path / "once.zarr")
    assert _run(release["b"], release["mask"], once).ok
    assert_same_daily(grown, once)


def test_months_before_the_start_rebuild_the_group_keeping_done_series(release, spy, tmp_path):
    grown = str(tmp_path / "e.zarr")
    assert _run(release["a"], release["mask"], grown).ok
    root = release["root"]
    dates, x, row = _series(root, "D0", "noleap", (1999, 12, 1), 2, 91, "tas")
    cat = write_catalog(release["rows_a"] + [row], root / "early.json")
    spy.clear()
    s = _run(str(cat), release["mask"], grown)
    assert s.ok and spy == ["T.D0.hist.r1/tas (daily)"]  # the stored series are not recomputed
    labels = [str(t) for t in open_store(grown, group="daily")["time"].values]
    assert labels[0] == "1999-01-01"
    got = _value(grown, "T.D0.hist.r1", "tas", "1999-12-31", "north")
    want = _means_truth(x[30][None], region_cell_weights(GRID, "north"))[0]
    np.testing.assert_allclose(got, want, rtol=1e-12)
    once = str(tmp_path / "once.zarr")
    assert _run(str(cat), release["mask"], once).ok
    assert_same_daily(grown, once)


def test_a_group_of_the_older_layout_is_rebuilt_once(release, spy, tmp_path):
    """A group written before layout 2 (one chunk per series, fixed-width strings, no
    fingerprints): its series are computed again once, the group rebuilt in the new layout."""
    import xarray as xr

    store = str(tmp_path / "old.zarr")
    assert _run(release["a"], release["mask"], store).ok
    ds = open_store(store, group="daily").load()
    info = {
        k: {kk: vv for kk, vv in e.items() if kk not in ("fingerprint", "config_hash")}
        for k, e in json.loads(ds.attrs["gridflux_series"]).items()
    }
    old = xr.Dataset(
        {"totals": ds["totals"]},
        coords={
            k: (v.dims, np.asarray(v.values, dtype=str) if v.dtype.kind in "OUT" else v.values)
            for k, v in ds.coords.items()
        },
        attrs={
            "title": "gridflux store: daily series",
            "frequency": "day",
            "gridflux_first_month_key": ds.attrs["gridflux_first_month_key"],
            "gridflux_series": json.dumps(info, sort_keys=True),
        },
    )
    old["totals"].encoding = {}
    shutil.rmtree(os.path.join(store, "daily"))
    nr, nt = old.sizes["region"], old.sizes["time"]
    old.to_zarr(
        store,
        group="daily",
        mode="w",
        encoding={"totals": {"chunks": (1, 1, nr, nt), "_FillValue": np.nan}},
    )
    spy.clear()
    s = _run(release["b"], release["mask"], store)
    assert s.ok and len(spy) == 5  # every daily series once
    once = str(tmp_path / "once.zarr")
    assert _run(release["b"], release["mask"], once).ok
    assert_same_daily(store, once)
    spy.clear()
    assert _run(release["b"], release["mask"], store).ok and spy == []


def test_a_creation_killed_midway_leaves_no_group_and_is_redone(
    release, spy, tmp_path, monkeypatch
):
    store = str(tmp_path / "c.zarr")
    q = {"source_id": ["D1"]}

    def dying(s, layout):
        raise KeyboardInterrupt("killed")

    monkeypatch.setattr(daily_mod, "series_row", dying)
    with pytest.raises(KeyboardInterrupt):
        _run(release["a"], release["mask"], store, query=q)
    monkeypatch.undo()
    assert os.path.isdir(os.path.join(store, "daily"))  # created, no series recorded
    st = gridflux.pipeline.store.Store(store)
    assert daily_mod.series_info(st) == {} and daily_mod.read_state(st) is None
    assert os.path.isdir(os.path.join(store, "daily"))  # readers leave it alone
    s = _run(release["a"], release["mask"], store, query=q)
    assert s.ok and len(s.done) == 2
    (run,) = gridflux.pipeline.store.Store(store).read_manifest()["history"]  # daily only
    assert len(run["daily"]["added"]) == 2 and run["finished"]
    # a first monthly series later: the root's manifest keeps the daily runs' history
    s = _run(release["a"], release["mask"], store, query={"source_id": ["D1", "M"]})
    assert s.ok and s.done == ["T.M.hist.r1/tas"]
    first, second = gridflux.pipeline.store.Store(store).read_manifest()["history"]
    assert first == run and second["daily"]["added"] == [] and second["added"]
    once = str(tmp_path / "once.zarr")
    assert _run(release["a"], release["mask"], once, query=q).ok
    assert_same_daily(store, once)


def test_zarr_format_2_daily_group_grows_in_place(release, spy, tmp_path):
    grown = str(tmp_path / "g2.zarr")
    assert _run(release["a"], release["mask"], grown, zarr_format=2).ok
    d1 = os.path.join(grown, "daily", "totals")
    kept = {f: os.stat(os.path.join(d1, f)).st_mtime_ns for f in os.listdir(d1) if f[0] != "."}
    assert kept
    spy.clear()
    assert _run(release["b"], release["mask"], grown, zarr_format=2).ok and len(spy) == 2
    assert {f: os.stat(os.path.join(d1, f)).st_mtime_ns for f in kept} == kept
    once = str(tmp_path / "o2.zarr")
    assert _run(release["b"], release["mask"], once, zarr_format=2).ok
    assert_same_daily(grown, once)


def test_other_chunk_months_for_the_daily_group_are_refused_before_computing(
    release, spy, tmp_path
):
    from gridflux.errors import StoreError

    store = str(tmp_path / "cm.zarr")
    q = {"source_id": ["D1"]}
    assert _run(release["a"], release["mask"], store, query=q).ok
    files = _daily_files(store)
    spy.clear()
    with pytest.raises(StoreError, match=r"chunk-months 12, this run has 6"):
        _run(release["b"], release["mask"], store, query={"source_id": ["D1", "D3"]},
             chunk_months=6)  # fmt: skip
    assert spy == [] and _daily_files(store) == files


def test_a_rebuild_of_the_root_leaves_the_daily_group_files_as_they_are(release, tmp_path):
    store = str(tmp_path / "r.zarr")
    assert _run(release["a"], release["mask"], store).ok
    files = _daily_files(store)
    # a monthly series three years earlier: the root is rebuilt beside the store and swapped in
    m = np.full((12,) + GRID.shape, 280.0)
    _write(release["root"] / "tas_E.nc", m, _monthly_dates(12, "noleap", start=1997), "noleap")
    rows = release["rows_a"] + [_row("E", "tas", "tas_E.nc", table_id="Amon")]
    cat = write_catalog(rows, release["root"] / "early.json")
    s = _run(str(cat), release["mask"], store)
    assert s.ok and s.done == ["T.E.hist.r1/tas"]
    assert s.grew.get("months_before"), s.grew
    assert _daily_files(store) == files  # bytes, inodes and mtimes
    assert open_store(store, group="daily")["totals"].sizes["member"] == 2


# the driver kills itself (SIGKILL) at the n-th write of a daily growth: a zarr array write or
# resize, or an attribute update (the group's gridflux_series)
#: the writes a daily growth can be killed at
DAILY_WRITES = ("zarr.Array.__setitem__", "zarr.Array.resize", "Attributes.update")


def daily_killer(at: int, cat: str, mask: str, store: str, query: dict) -> str:
    """:func:`~.growth_archive.killer_script` of a daily run (it prints how many writes it made)."""
    call = (
        f"gridflux.run({cat!r}, {mask!r}, {store!r}, cubes=False, progress=False, query={query!r})"
    )
    return killer_script(at, call, DAILY_WRITES, report=True)


DAILY_ONLY = {"source_id": ["D1", "D2", "D3"]}


@pytest.mark.parametrize(
    "at,again",
    [(n, "b") for n in (1, 3, 12, 28, 34, 10_000)] + [(6, "a"), (20, "a")],
)
def test_a_daily_growth_killed_at_any_write_is_redone_by_the_next_run(release, tmp_path, at, again):
    """A growth that replaces a series (new content; not with ``a``), adds a member past the
    axis' end and a variable, killed at its ``at``-th write (10 000: not killed, prints the
    count); the next run, of the same catalog (``b``) or of the store's first one (``a``: the
    arrays the killed growth resized are cut back, though it has nothing to compute), gives
    the group built once from its catalog."""
    import signal
    import subprocess
    import sys

    grown = str(tmp_path / "k.zarr")
    assert _run(release["a"], release["mask"], grown, query=DAILY_ONLY).ok
    if again == "b":  # a replaced series too (with "a" the re-run has nothing to compute)
        dates, x = release["data"][("D1", "tas")]
        _write(release["root"] / "tas_D1.nc", x * 1.01, dates, "noleap",
               attrs={"standard_name": "air_temperature"})  # fmt: skip
    code = daily_killer(at, release["b"], release["mask"], grown, DAILY_ONLY)
    env = dict(os.environ, PYTHONPATH=os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-c", code], timeout=300, env=env,
                          capture_output=True, text=True)  # fmt: skip
    if at == 10_000:
        assert proc.returncode == 0, proc.stderr
        print(proc.stdout)
        assert int(proc.stdout.split("WRITES")[1]) > 34  # the kills above fall inside
    else:
        assert proc.returncode == -signal.SIGKILL, proc.stderr
        assert _run(release[again], release["mask"], grown, query=DAILY_ONLY).ok
    once = str(tmp_path / "once.zarr")
    assert _run(release[again], release["mask"], once, query=DAILY_ONLY).ok
    assert_same_daily(grown, once)


def test_a_rebuild_killed_between_its_renames_is_put_back(release, spy, tmp_path, monkeypatch):
    """Months before the start rebuild the group beside it; killed after the old group was moved
    aside and before the new one was moved in, the next run puts the old one back and redoes
    the rebuild (the done series still not recomputed)."""
    import types

    grown = str(tmp_path / "w.zarr")
    q = {"source_id": ["D1", "D0"]}
    assert _run(release["a"], release["mask"], grown, query=q).ok
    dates, x, row = _series(release["root"], "D0", "noleap", (1999, 12, 1), 2, 91, "tas")
    cat = write_catalog(release["rows_a"] + [row], release["root"] / "early.json")
    calls: list[str] = []

    def replace(src, dst):
        calls.append(dst)
        if len(calls) == 2:  # the new group moved in
            raise KeyboardInterrupt("killed")
        return os.replace(src, dst)

    proxy = types.SimpleNamespace(**{k: getattr(os, k) for k in dir(os) if not k.startswith("__")})
    proxy.replace = replace
    monkeypatch.setattr(daily_mod, "os", proxy)
    with pytest.raises(KeyboardInterrupt):
        _run(str(cat), release["mask"], grown, query=q)
    monkeypatch.setattr(daily_mod, "os", os)
    assert not os.path.exists(os.path.join(grown, "daily"))
    assert os.path.exists(os.path.join(grown, "daily" + daily_mod.OLD))
    spy.clear()
    s = _run(str(cat), release["mask"], grown, query=q)
    assert s.ok and spy == ["T.D0.hist.r1/tas (daily)"], spy
    assert sorted(os.listdir(grown)) == sorted(
        n for n in os.listdir(grown) if not n.startswith("daily.")
    )
    once = str(tmp_path / "once.zarr")
    assert _run(str(cat), release["mask"], once, query=q).ok
    assert_same_daily(grown, once)
