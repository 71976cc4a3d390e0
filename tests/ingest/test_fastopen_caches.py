"""The fast open path's caches are keyed by content: a hit for files that share it, whatever their
paths and names, a miss when anything that decides the answer differs.

A wrong hit is a silent wrong answer, so each cache is also checked against a deliberately
too-coarse key (monkeypatched in): the same checks must then find a wrong answer, which shows
that they would catch a key that forgets something."""

from __future__ import annotations

import netCDF4
import numpy as np
import pytest

from gridflux.ingest import fastopen
from gridflux.ingest.catalog import SeriesRecord
from gridflux.ingest.fastopen import open_fast

NLAT, NLON = 6, 8


def _lat(shift: float = 0.0) -> np.ndarray:
    lat = -75.0 + 30.0 * np.arange(NLAT)
    lat[3] += shift
    return lat


def _write(
    path,
    *,
    raw: str = "nbp",
    nt: int = 12,
    since: str = "2000-01-01",
    calendar: str = "noleap",
    nbnds: int = 2,
    lat_bounds_attr: str = "lat_bnds",
    bounds: bool = True,
    lat_shift: float = 0.0,
) -> str:
    """A CF file (time, lat, lon) written with netCDF4 directly (every attribute controlled)."""
    lat = _lat(lat_shift)
    lon = 22.5 + 45.0 * np.arange(NLON)
    with netCDF4.Dataset(path, "w") as nc:
        nc.createDimension("time", nt)
        nc.createDimension("lat", NLAT)
        nc.createDimension("lon", NLON)
        t = nc.createVariable("time", "f8", ("time",))
        t.setncatts({"units": f"days since {since}", "calendar": calendar, "standard_name": "time"})
        t[:] = 15.0 + 30.0 * np.arange(nt)
        y = nc.createVariable("lat", "f8", ("lat",))
        y.setncatts({"units": "degrees_north", "standard_name": "latitude"})
        y[:] = lat
        x = nc.createVariable("lon", "f8", ("lon",))
        x.setncatts({"units": "degrees_east", "standard_name": "longitude"})
        x[:] = lon
        if bounds:
            nc.createDimension("bnds", nbnds)
            y.bounds = lat_bounds_attr
            x.bounds = "lon_bnds"
            edges = np.linspace(-90.0, 90.0, NLAT + 1)
            lat_b = np.stack([edges[:-1], edges[1:]], axis=1)
            lon_b = np.stack([lon - 22.5, lon + 22.5], axis=1)
            for name in ("lat_bnds", "lat_edges"):
                b = nc.createVariable(name, "f8", ("lat", "bnds"))
                b[:] = lat_b[:, [0, 1, 1][:nbnds]] if nbnds != 2 else lat_b
            b = nc.createVariable("lon_bnds", "f8", ("lon", "bnds"))
            b[:] = lon_b[:, [0, 1, 1][:nbnds]] if nbnds != 2 else lon_b
        v = nc.createVariable(raw, "f4", ("time", "lat", "lon"), zlib=True, chunksizes=(1, 6, 8))
        v.units = "kg m-2 s-1"
        v[:] = np.arange(nt * NLAT * NLON, dtype=np.float32).reshape(nt, NLAT, NLON)
    return str(path)


def _axes(path: str, raw: str = "nbp"):
    with netCDF4.Dataset(path) as nc:
        return fastopen._resolve_axes(nc, raw)


def _fresh() -> dict:
    for c in (fastopen._AXES_CACHE, fastopen._GRID_CACHE, fastopen._SERIES_TIME_CACHE):
        c.clear()
    return dict(fastopen.STATS)


def _delta(before: dict, what: str) -> tuple[int, int]:
    s = fastopen.STATS
    return s[f"{what}_parsed"] - before[f"{what}_parsed"], s[f"{what}_cached"] - before[
        f"{what}_cached"
    ]


# -- axes -----------------------------------------------------------------------------------------
def _axes_cases(tmp_path) -> list[tuple[str, str, tuple]]:
    """(file, field, the answer by construction), in an order where each later file would hit an
    earlier entry under a key that forgets the lengths or the attributes."""
    d = tmp_path
    (d / "other").mkdir(exist_ok=True)
    both = ("time", "lat", "lon", "lat_bnds", "lon_bnds")
    return [
        (_write(d / "a.nc"), "nbp", both),
        # another path, field name, length of time and reference date: the same layout
        (_write(d / "other" / "b.nc", raw="gpp", nt=30, since="1990-01-01"), "gpp", both),
        # the lat coordinate names other bounds (an attribute): lat_edges
        (_write(d / "c.nc", lat_bounds_attr="lat_edges"), "nbp", ("time", "lat", "lon") + (
            "lat_edges", "lon_bnds")),
        # a "bounds" dimension of 3: not bounds (the reader infers them)
        (_write(d / "e.nc", nbnds=3), "nbp", ("time", "lat", "lon", None, None)),
    ]  # fmt: skip


def _wrong_axes(cases) -> list[str]:
    return [p for p, raw, truth in cases if _axes(p, raw) != truth]


def test_axes_cache_by_content(tmp_path):
    cases = _axes_cases(tmp_path)
    before = _fresh()
    assert not _wrong_axes(cases)
    parsed, cached = _delta(before, "axes")
    assert (parsed, cached) == (3, 1)  # b.nc hit a.nc's entry; c.nc and e.nc missed
    # a second pass: all hits, the same answers
    assert not _wrong_axes(cases)
    assert _delta(before, "axes") == (3, 5)


@pytest.mark.parametrize("forget", ["lengths", "attributes"])
def test_axes_checks_catch_a_too_coarse_key(tmp_path, monkeypatch, forget):
    cases = _axes_cases(tmp_path)
    exact = fastopen.axes_key

    def coarse(dims, small):
        if forget == "lengths":
            small = [(n, d, (), dt, a) for n, d, _s, dt, a in small]
        else:
            small = [(n, d, s, dt, {}) for n, d, s, dt, _a in small]
        return exact(dims, small)

    monkeypatch.setattr(fastopen, "axes_key", coarse)
    _fresh()
    assert _wrong_axes(cases)  # the too-coarse key gives a wrong answer: the test has teeth
    _fresh()


# -- grids ----------------------------------------------------------------------------------------
def _record(path: str, raw: str = "nbp") -> SeriesRecord:
    return SeriesRecord(key=f"{path}.{raw}", member="m", variable="nbp", raw_variable=raw,
                        paths=[path])  # fmt: skip


def _grid_cases(tmp_path) -> list[tuple[str, np.ndarray]]:
    """Files without bounds (inferred from the centres): (file, interior latitude edges as the
    midpoints of consecutive centres, computed here)."""
    out = []
    for i, shift in enumerate((0.0, 0.0, 4.0)):
        p = _write(tmp_path / f"g{i}.nc", bounds=False, lat_shift=shift, nt=12 + i)
        lat = _lat(shift)
        out.append((p, 0.5 * (lat[:-1] + lat[1:])))
    return out


def _wrong_grids(cases) -> list[str]:
    wrong = []
    for p, edges in cases:
        fast = open_fast(_record(p))
        assert fast is not None
        if not np.allclose(fast.grid.lat_bounds[1:, 0], edges, rtol=0, atol=1e-12):
            wrong.append(p)
        fast.close()
    return wrong


def test_grid_cache_by_content(tmp_path):
    cases = _grid_cases(tmp_path)
    before = _fresh()
    assert not _wrong_grids(cases)
    # g1 (another path, another length of time) hit g0's grid; g2 (one latitude moved) missed
    assert _delta(before, "grid") == (2, 1)


def test_grid_checks_catch_a_too_coarse_key(tmp_path, monkeypatch):
    cases = _grid_cases(tmp_path)
    monkeypatch.setattr(
        fastopen, "grid_key", lambda lat, lon, lb, xb, y, x: repr((lat.shape, lon.shape, y, x))
    )
    _fresh()
    assert _wrong_grids(cases) == [cases[2][0]]
    _fresh()


# -- a series' months and seconds -----------------------------------------------------------------
FEB_2000 = np.array([12 * 2000 + 1], dtype=np.int64)  # February 2000: 29 days, or 28 in noleap


def _wrong_seconds() -> list[str]:
    truth = {"standard": 29 * 86400.0, "noleap": 28 * 86400.0, "360_day": 30 * 86400.0}
    return [c for c, s in truth.items() if fastopen._series_time(FEB_2000, c)[1][0] != s]


def test_series_time_cache_by_content(monkeypatch):
    before = _fresh()
    assert not _wrong_seconds()
    assert _delta(before, "series_time") == (3, 0)
    keys, secs, months = fastopen._series_time(FEB_2000.copy(), "noleap")  # a new array: a hit
    assert _delta(before, "series_time") == (3, 1)
    assert secs[0] == 28 * 86400.0 and months[0].label == "2000-02"
    assert not secs.flags.writeable  # shared between series: read-only
    monkeypatch.setattr(fastopen, "series_time_key", lambda keys, cal: repr(list(keys)))
    _fresh()
    assert _wrong_seconds()  # a key without the calendar answers Feb 2000 wrongly
    _fresh()


def test_axes_key_holds_array_attributes_by_content():
    """A long array attribute (whose repr elides the middle) and an object array enter the key
    by their values: one value changed, another key."""
    big = np.arange(5000.0)
    moved = big.copy()
    moved[2500] += 1.0
    assert repr(big) == repr(moved)  # what a repr-based key would have missed

    def key(a):
        return fastopen.axes_key(("t", "y", "x"), [("v", ("y",), (3,), "f8", {"flags": a})])

    assert key(big) == key(big.copy()) and key(big) != key(moved)
    words = np.array(["a", "b"], dtype=object)
    assert key(words) == key(words.copy())
    assert key(words) != key(np.array(["a", "c"], dtype=object))
