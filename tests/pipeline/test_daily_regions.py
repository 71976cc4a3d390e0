"""The daily group gains regions as the root does (issue 16, points 4 and 5 for ``daily/``).

A mask with regions new to the group (in any order: regions are matched by label) appends them;
a daily series done with the same inputs is computed for the new regions only (spied: the
regions asked of the daily compute) and only their rows are written: the chunks of the regions
it held keep their bytes, inode and mtime; a second added region that falls in the region chunk
of the first is merged into it (the first keeps its values). The grown group, and the root,
equal the store built once with every region. A mask without one of the group's regions, or
with another geometry for one, is refused naming the region and ``--mask``.

Values of the new regions are checked against numpy truths written here from the files' values
and the rectangle geometry of the boxes (exact spherical overlaps).
"""

from __future__ import annotations

import hashlib
import math
import os

import numpy as np
import pytest

import gridflux.pipeline.daily as daily_mod
from gridflux.errors import StoreError
from gridflux.fields.masks import RegionMask
from gridflux.kernels.grids import EARTH_RADIUS, global_grid
from gridflux.pipeline.store import Store, open_store

from .conftest import BOXES, box_mask_fractions
from .test_daily_growth import _bits, _daily_files, _run, assert_same_daily, make_release
from .test_statistics_run import GRID, _means_truth

#: the regions added (whole-degree boxes: the 1-degree mask cells hold them exactly)
EXTRA = {
    "east": [(20.0, 40.0, 60.0, 140.0, 1.0)],
    "west": [(-30.0, 10.0, -80.0, -40.0, 0.6)],
}
ALL = {**BOXES, **EXTRA}
DAILY_KEYS = ["T.D1.hist.r1/nbp (daily)", "T.D1.hist.r1/tas (daily)", "T.D2.hist.r1/tas (daily)"]


def _mask_of(path, names, boxes=None):
    boxes = {n: (boxes or ALL)[n] for n in names}
    g = global_grid(1.0)
    RegionMask(tuple(names), box_mask_fractions(g, boxes), g).to_netcdf(path)
    return str(path)


def _weights(boxes) -> np.ndarray:
    """m2 of each source cell (GRID) inside the boxes (exact rectangle overlaps on the sphere)."""
    w = np.zeros(GRID.shape)
    for s, n, we, e, p in boxes:
        for i, (cs, cn) in enumerate(GRID.lat_bounds):
            dsin = max(0.0, math.sin(math.radians(min(cn, n))) - math.sin(math.radians(max(cs, s))))
            if dsin == 0.0:
                continue
            for j, (cw, ce) in enumerate(GRID.lon_bounds):
                dl = sum(
                    max(0.0, min(ce, e + 360.0 * k) - max(cw, we + 360.0 * k)) for k in (-1, 0, 1)
                )
                if dl:
                    w[i, j] += p * EARTH_RADIUS**2 * math.radians(dl) * dsin
    return w


@pytest.fixture()
def release(tmp_path):
    """The archive of the daily growth tests (two daily members, a monthly one; catalogs A, B)."""
    return make_release(tmp_path)


@pytest.fixture()
def spy(monkeypatch):
    """The daily series computed: (key, the regions asked: None for every region)."""
    seen: list[tuple[str, list[str] | None]] = []
    real = daily_mod.compute_series

    def counting(record, *args, **kw):
        seen.append((daily_mod.series_key(record), kw.get("regions")))
        return real(record, *args, **kw)

    monkeypatch.setattr(daily_mod, "compute_series", counting)
    return seen


def _chunks(store) -> dict[tuple[str, str, str, str], tuple[str, int, int]]:
    """The daily totals' chunk files by label -> (sha1, inode, mtime_ns): (member, variable,
    the regions of the chunk joined by "+", first day of the chunk)."""
    import zarr

    ds = open_store(store, group="daily")
    members = [str(m) for m in ds["member"].values]
    variables = [str(v) for v in ds["variable"].values]
    regions = [str(r) for r in ds["region"].values]
    labels = [str(t) for t in ds["time"].values]
    arr = zarr.open_array(os.path.join(store, "daily", "totals"), mode="r")
    rc, tc = int(arr.chunks[2]), int(arr.chunks[3])
    out = {}
    for rel, info in _daily_files(store).items():
        parts = rel.split(os.sep)
        if parts[:2] != ["totals", "c"]:
            continue
        m, v, r, t = (int(p) for p in parts[2:])
        chunk_regions = "+".join(regions[r * rc : (r + 1) * rc])
        out[(members[m], variables[v], chunk_regions, labels[t * tc])] = info
    return out


def _region_bits(store, region) -> dict[tuple[str, str], np.ndarray]:
    tot = open_store(store, group="daily")["totals"].sel(region=region)
    vals = tot.transpose("member", "variable", "time").values
    return {
        (str(m), str(v)): _bits(vals[i, j])
        for i, m in enumerate(tot["member"].values.tolist())
        for j, v in enumerate(tot["variable"].values.tolist())
    }


def _value(store, member, variable, label, region):
    tot = open_store(store, group="daily")["totals"]
    return float(tot.sel(member=member, variable=variable, time=label, region=region).values)


def _check_truths(store, data, region):
    """The region's daily values of D1 (tas, nbp) against the numpy truths."""
    w = _weights(ALL[region])
    dates, x = data[("D1", "tas")]
    dates_f, f = data[("D1", "nbp")]
    for k in (0, 17, len(dates) - 1):
        d = dates[k]
        label = f"{d.year:04d}-{d.month:02d}-{d.day:02d}"
        got = _value(store, "T.D1.hist.r1", "tas", label, region)
        np.testing.assert_allclose(got, _means_truth(x[k][None], w)[0], rtol=1e-12)
        terms = (f[k] * 86400.0 * w).ravel() / 1e9
        want = -math.fsum(terms.tolist())
        got = _value(store, "T.D1.hist.r1", "nbp", label, region)
        np.testing.assert_allclose(got, want, atol=1e-12 * math.fsum(np.abs(terms).tolist()))


def _assert_same_root(grown, once) -> None:
    """The root's totals (by label, bit for bit) and coordinates equal."""
    a, b = open_store(grown), open_store(once)
    for dim in ("member", "variable", "region", "time"):
        assert sorted(a[dim].values.tolist()) == sorted(b[dim].values.tolist()), dim
    b = b.reindex(member=a.member, variable=a.variable, region=a.region)
    assert np.array_equal(_bits(a["totals"].values), _bits(b["totals"].values)), "root totals"


def test_daily_group_gains_regions_computing_only_them_and_keeping_every_stored_chunk(
    release, spy, tmp_path
):
    root, data = release["root"], release["data"]
    grown = str(tmp_path / "grown.zarr")
    s = _run(release["a"], _mask_of(root / "m2.nc", ("north", "box")), grown)
    assert s.ok, s.failed
    assert sorted(k for k, _ in spy) == DAILY_KEYS and all(r is None for _, r in spy)
    before = _chunks(grown)
    assert before and all(k[2] == "north+box" for k in before)  # two regions per chunk
    bits_before = {r: _region_bits(grown, r) for r in ("north", "box")}

    # "east" with a mask in another order: each done daily series computed for "east" alone
    spy.clear()
    m3 = _mask_of(root / "m3.nc", ("box", "east", "north"))
    s = _run(release["a"], m3, grown)
    assert s.ok, s.failed
    assert sorted(spy) == [(k, ["east"]) for k in DAILY_KEYS]
    assert sorted(k for k in s.done if k.endswith("(daily)")) == DAILY_KEYS
    assert sorted(s.regions_only) == sorted([*DAILY_KEYS, "T.M.hist.r1/tas"])
    assert not [k for k in s.skipped if k.endswith("(daily)")]
    history = Store(grown).read_manifest()["history"][-1]["daily"]
    added = sorted(history["regions_added"], key=lambda e: e["series"])
    assert added == [{"series": k, "regions": ["east"]} for k in DAILY_KEYS]
    assert not history["added"] and not history["replaced"] and not history["recomputed"]
    after = _chunks(grown)
    assert {k: after.get(k) for k in before} == before, "a stored chunk was rewritten"
    new = [k for k in after if k not in before]
    assert new and all(k[2] == "east" for k in new), new
    for r, bits in bits_before.items():
        now = _region_bits(grown, r)
        assert all(np.array_equal(now[k], b) for k, b in bits.items()), r
    assert [str(r) for r in open_store(grown, group="daily")["region"].values] == [
        "north",
        "box",
        "east",
    ]
    info = daily_mod.series_info(Store(grown))
    assert all(info[k]["regions"] == ["box", "east", "north"] for k in DAILY_KEYS)
    _check_truths(grown, data, "east")
    once3 = str(tmp_path / "once3.zarr")
    assert _run(release["a"], m3, once3).ok
    assert_same_daily(grown, once3)
    _assert_same_root(grown, once3)

    # "west" falls in the region chunk of "east": merged into it, "east" keeps its values;
    # every other chunk stays as it was
    east_bits = _region_bits(grown, "east")
    before = after
    spy.clear()
    m4 = _mask_of(root / "m4.nc", ("west", "north", "east", "box"))
    s = _run(release["a"], m4, grown)
    assert s.ok and sorted(spy) == [(k, ["west"]) for k in DAILY_KEYS]
    after = _chunks(grown)
    kept = {k: v for k, v in before.items() if k[2] != "east"}
    assert {k: after.get(k) for k in kept} == kept, "a stored chunk was rewritten"
    assert any(k[2] == "east+west" for k in after)
    now = _region_bits(grown, "east")
    assert all(np.array_equal(now[k], b) for k, b in east_bits.items())
    _check_truths(grown, data, "west")
    _check_truths(grown, data, "east")

    # nothing new: the group is not touched
    files = _daily_files(grown)
    spy.clear()
    s = _run(release["a"], m4, grown)
    assert s.ok and spy == [] and _daily_files(grown) == files

    once4 = str(tmp_path / "once4.zarr")
    assert _run(release["a"], _mask_of(root / "o4.nc", ("box", "east", "north", "west")), once4).ok
    assert_same_daily(grown, once4)
    _assert_same_root(grown, once4)


def test_a_region_with_a_new_member_and_a_series_out_of_the_catalog(release, spy, tmp_path):
    """With a region added, a new member is computed whole, the done series for the region only;
    a series not in the run's catalogs is named (it lacks the region) and computed for the
    region alone when a catalog holds it again."""
    root = release["root"]
    grown = str(tmp_path / "g.zarr")
    q = {"source_id": ["D1", "D2"]}
    assert _run(release["a"], _mask_of(root / "m2.nc", ("north", "box")), grown, query=q).ok
    spy.clear()
    m3 = _mask_of(root / "m3.nc", ("north", "box", "east"))
    s = _run(release["b"], m3, grown, query={"source_id": ["D1", "D3"]})
    assert s.ok, s.failed
    assert sorted(spy) == [
        ("T.D1.hist.r1/nbp (daily)", ["east"]),
        ("T.D1.hist.r1/tas (daily)", ["east"]),
        ("T.D3.hist.r1/tas (daily)", None),
    ]
    assert s.not_in_catalogs == ["T.D2.hist.r1/tas (daily)"]
    assert any("lack the regions added" in n and "T.D2.hist.r1/tas" in n for n in s.notes)
    assert np.isnan(
        open_store(grown, group="daily")["totals"]
        .sel(member="T.D2.hist.r1", variable="tas", region="east")
        .values
    ).all()
    spy.clear()
    q3 = {"source_id": ["D1", "D2", "D3"]}
    s = _run(release["b"], m3, grown, query=q3)
    assert s.ok and sorted(spy) == [
        ("T.D2.hist.r1/nbp (daily)", None),  # new to the group
        ("T.D2.hist.r1/tas (daily)", ["east"]),
    ]
    once = str(tmp_path / "once.zarr")
    assert _run(release["b"], m3, once, query=q3).ok
    assert_same_daily(grown, once)


def test_another_geometry_or_a_missing_region_is_refused_before_computing(release, spy, tmp_path):
    root = release["root"]
    store = str(tmp_path / "s.zarr")
    q = {"source_id": ["D1"]}  # daily series only: the daily group's own check
    assert _run(release["a"], _mask_of(root / "m2.nc", ("north", "box")), store, query=q).ok
    files = _daily_files(store)
    spy.clear()
    other = {**ALL, "north": [(50.0, 80.0, -180.0, 180.0, 1.0)]}  # 40-50N left out
    mask = _mask_of(root / "other.nc", ("north", "box", "east"), other)
    with pytest.raises(StoreError, match=r"region 'north' .*another geometry.*--mask") as e:
        _run(release["a"], mask, store, query=q)
    assert "\n" not in str(e.value) and "daily group" in str(e.value)
    with pytest.raises(StoreError, match=r"holds region\(s\) \['box'\] .*--mask"):
        _run(release["a"], _mask_of(root / "m1.nc", ("north", "east")), store, query=q)
    assert spy == [] and _daily_files(store) == files


def test_the_group_records_each_regions_geometry(release, tmp_path):
    root = release["root"]
    store = str(tmp_path / "h.zarr")
    q = {"source_id": ["D1"]}
    assert _run(release["a"], _mask_of(root / "m2.nc", ("north", "box")), store, query=q).ok
    hashes = daily_mod.read_state(Store(store)).region_hashes
    g = global_grid(1.0).fingerprint().encode()
    f = box_mask_fractions(global_grid(1.0), {n: ALL[n] for n in ("north", "box")})
    for k, name in enumerate(("north", "box")):
        h = hashlib.sha1(g)
        h.update(np.ascontiguousarray(f[k], dtype=np.float64).tobytes())
        assert hashes[name] == h.hexdigest()[:16]


@pytest.mark.parametrize(
    "added,at", [("east", n) for n in (1, 3, 5, 6, 10_000)] + [("west", n) for n in (3, 5)]
)
def test_a_region_growth_killed_at_any_write_is_finished_by_the_next_run(
    release, tmp_path, added, at
):
    """SIGKILL at the ``at``-th write (array write or resize, attribute update) of a growth by
    "east" (a new region chunk; 10 000: not killed), or by "west" (merged into the chunk of
    "east"); the next run computes the added region only, leaves the stored chunks as they were
    (but the one "west" is merged into) and gives the group built once."""
    import signal
    import subprocess
    import sys

    from .test_daily_growth import DAILY_ONLY, daily_killer

    root = release["root"]
    grown = str(tmp_path / "k.zarr")
    m2 = _mask_of(root / "m2.nc", ("north", "box"))
    assert _run(release["a"], m2, grown, query=DAILY_ONLY).ok
    m3 = _mask_of(root / "m3.nc", ("east", "north", "box"))
    if added == "west":
        assert _run(release["a"], m3, grown, query=DAILY_ONLY).ok
        east = _region_bits(grown, "east")
        m3 = _mask_of(root / "m4.nc", ("east", "west", "north", "box"))
    before = {k: v for k, v in _chunks(grown).items() if k[2] != "east"}
    code = daily_killer(at, release["a"], m3, grown, DAILY_ONLY)
    env = dict(os.environ, PYTHONPATH=os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-c", code], timeout=300, env=env,
                          capture_output=True, text=True)  # fmt: skip
    if at == 10_000:
        assert proc.returncode == 0, proc.stderr
        assert int(proc.stdout.split("WRITES")[1]) > 6  # the kills above fall inside
    else:
        assert proc.returncode == -signal.SIGKILL, proc.stderr
        s = _run(release["a"], m3, grown, query=DAILY_ONLY)
        assert s.ok and sorted(s.regions_only) == sorted(s.done) == DAILY_KEYS
    after = _chunks(grown)
    assert {k: after.get(k) for k in before} == before, "a stored chunk was rewritten"
    if added == "west":
        now = _region_bits(grown, "east")
        assert all(np.array_equal(now[k], b) for k, b in east.items())
    once = str(tmp_path / "once.zarr")
    assert _run(release["a"], m3, once, query=DAILY_ONLY).ok
    assert_same_daily(grown, once)


def test_months_before_the_start_and_a_region_in_one_run(release, spy, tmp_path):
    """A rebuild of the group (a member before its first month) that also adds a region: the
    done series are copied by value and computed for the region only."""
    from gridflux.ingest.catalog import write_catalog

    from .test_daily_growth import _series

    root = release["root"]
    grown = str(tmp_path / "e.zarr")
    q = {"source_id": ["D1", "D0"]}
    assert _run(release["a"], _mask_of(root / "m2.nc", ("north", "box")), grown, query=q).ok
    _dates, _x, row = _series(root, "D0", "noleap", (1999, 12, 1), 2, 91, "tas")
    cat = str(write_catalog(release["rows_a"] + [row], root / "early.json"))
    spy.clear()
    m3 = _mask_of(root / "m3.nc", ("east", "box", "north"))
    s = _run(cat, m3, grown, query=q)
    assert s.ok, s.failed
    assert sorted(spy) == [
        ("T.D0.hist.r1/tas (daily)", None),
        ("T.D1.hist.r1/nbp (daily)", ["east"]),
        ("T.D1.hist.r1/tas (daily)", ["east"]),
    ]
    assert str(open_store(grown, group="daily")["time"].values[0]) == "1999-01-01"
    _check_truths(grown, release["data"], "east")
    once = str(tmp_path / "once.zarr")
    assert _run(cat, m3, once, query=q).ok
    assert_same_daily(grown, once)


def test_a_group_written_before_region_growth_is_computed_once_and_then_grows(
    release, spy, tmp_path
):
    """A group whose entries' configuration hash held the mask (and whose labels hold no region
    geometry): its series are computed once more, whole, with a region added; the group then
    records every region's geometry and grows by regions as any other."""
    import json

    import zarr

    root = release["root"]
    store = str(tmp_path / "old.zarr")
    q = {"source_id": ["D1"]}
    assert _run(release["a"], _mask_of(root / "m2.nc", ("north", "box")), store, query=q).ok
    g = zarr.open_group(store, path="daily", mode="r+", use_consolidated=False)
    layout = json.loads(g.attrs["gridflux_layout"])
    del layout["region_hashes"]
    info = json.loads(g.attrs["gridflux_series"])
    for e in info.values():
        e["config_hash"] = "0123456789abcdef"  # a hash of before, with the mask in it
        del e["regions"]
    g.attrs.update(
        {
            "gridflux_layout": json.dumps(layout, sort_keys=True),
            "gridflux_series": json.dumps(info, sort_keys=True),
        }
    )
    spy.clear()
    m3 = _mask_of(root / "m3.nc", ("north", "box", "east"))
    assert _run(release["a"], m3, store, query=q).ok
    assert sorted(spy) == [("T.D1.hist.r1/nbp (daily)", None), ("T.D1.hist.r1/tas (daily)", None)]
    assert set(daily_mod.read_state(Store(store)).region_hashes) == {"north", "box", "east"}
    once = str(tmp_path / "once.zarr")
    assert _run(release["a"], m3, once, query=q).ok
    assert_same_daily(store, once)
    spy.clear()
    m4 = _mask_of(root / "m4.nc", ("north", "box", "east", "west"))
    assert _run(release["a"], m4, store, query=q).ok
    assert sorted(spy) == [
        ("T.D1.hist.r1/nbp (daily)", ["west"]),
        ("T.D1.hist.r1/tas (daily)", ["west"]),
    ]
