"""The fast open path (no xarray) gives exactly what ``catalog.load_series`` gives.

For every series of the tiny synthetic archive (all its ensembles: deflated and unfiltered files,
several calendars, descending latitudes, 0..360 and -180..180 longitudes, raw units with scale
and per-month factors, per-land-area fields with sftlf fx files, multi-file series): the months,
seconds per month, grid, kind and every canonical block (whole fields and a band of latitude
rows) are compared with the xarray path bit for bit (``np.array_equal`` with NaNs equal, same
dtype)."""

from __future__ import annotations

import numpy as np
import pytest

from gridflux import config
from gridflux.ingest import catalog, fastopen
from gridflux.ingest.fastopen import DatasetView, FastSeries, open_fast


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    from gridflux.synthetic.archive import build_archive

    root = tmp_path_factory.mktemp("synth")
    build_archive(str(root), "tiny")
    return root


@pytest.fixture(scope="module")
def records(archive):
    cat = catalog.load_catalog(str(archive / "catalog.json"))
    return cat.series()


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b, equal_nan=True)


def test_every_synthetic_series_is_bit_identical(records):
    assert len(records) > 100
    kinds = set()
    for rec in records:
        fast = open_fast(rec)
        if rec.fixes:  # a fix-table entry (e.g. NorESM2-LM): normalization decides and records
            assert fast is None, rec.key
            continue
        assert isinstance(fast, FastSeries), rec.key  # the common case: no fallback
        slow = DatasetView(catalog.load_series(rec, chunks={"time": 12}))
        assert fast.months == slow.months, rec.key
        assert np.array_equal(fast.seconds, slow.seconds), rec.key
        assert fast.grid.fingerprint() == slow.grid.fingerprint(), rec.key
        assert np.array_equal(fast.grid.lat_bounds, slow.grid.lat_bounds)
        assert np.array_equal(fast.grid.lon_bounds, slow.grid.lon_bounds)
        assert fast.kind == slow.kind and fast.variable == slow.variable
        assert fast.shape == slow.shape and fast.value_dtype == slow.value_dtype, rec.key
        nt, nlat = fast.shape[0], fast.shape[1]
        band = slice(nlat // 3, nlat - 2)
        for i0 in range(0, nt, 12):
            i1 = min(nt, i0 + 12)
            for rows in (None, band):
                a, b = fast.read(i0, i1, rows), slow.read(i0, i1, rows)
                assert _same(a, b), (rec.key, i0, rows, a.dtype, b.dtype)
        # a block across two files of a multi-file series
        if len(fast.parts) > 1:
            t = fast.parts[0].t1
            assert _same(fast.read(t - 3, t + 3, band), slow.read(t - 3, t + 3, band))
        kinds.add(
            (
                fast.flip_lat,
                fast.month_factor is not None,
                fast.scale != 1.0,
                fast.land_fraction is not None,
                len(fast.parts) > 1,
            )
        )
    # the archive exercises each transformation (else this test would prove little)
    assert any(k[0] for k in kinds) and any(k[1] for k in kinds) and any(k[2] for k in kinds)
    assert any(k[3] for k in kinds) and any(k[4] for k in kinds)


def test_shared_grids_and_time_axes_are_parsed_once(records):
    fastopen._GRID_CACHE.clear()
    fastopen._TIME_CACHE.clear()
    fastopen._AXES_CACHE.clear()
    before = dict(fastopen.STATS)
    n_files = 0
    records = [rec for rec in records if not rec.fixes]  # those take the xarray path
    for rec in records:
        assert open_fast(rec) is not None
        n_files += len(rec.paths)
    parsed = fastopen.STATS["grid_parsed"] - before["grid_parsed"]
    cached = fastopen.STATS["grid_cached"] - before["grid_cached"]
    assert parsed + cached == len(records)
    assert parsed < len(records) / 4  # a handful of grids in the whole archive
    tparsed = fastopen.STATS["time_parsed"] - before["time_parsed"]
    assert tparsed < n_files / 2
    # the axes of a file layout are resolved once, whatever the files' time values
    aparsed = fastopen.STATS["axes_parsed"] - before["axes_parsed"]
    acached = fastopen.STATS["axes_cached"] - before["axes_cached"]
    assert aparsed + acached == n_files
    assert aparsed < n_files / 2


def test_uncommon_inputs_take_the_xarray_path(records, tmp_path):
    rec = records[0].model_copy()
    rec.raw_variable = "not_there"
    assert open_fast(rec) is None  # catalog.load_series explains the error
    rec = records[0].model_copy()
    rec.paths = [str(tmp_path / "missing.nc")]
    assert open_fast(rec) is None
    with config.set_options(**{"pipeline.fast-open": False}):
        assert open_fast(records[0]) is None


def _write(path, values, *, fill: bool, lat_desc: bool, units: str = "kg m-2 s-1"):
    import xarray as xr

    nt, nlat, nlon = values.shape
    lat = np.linspace(-90 + 90 / nlat, 90 - 90 / nlat, nlat)
    lat = lat[::-1] if lat_desc else lat
    lon = np.arange(nlon) * 360.0 / nlon + 180.0 / nlon
    ds = xr.Dataset(
        {"nbp": (("time", "lat", "lon"), values, {"units": units})},
        coords={
            "time": ("time", np.arange(nt) * 30.0 + 15.0, {"units": "days since 2000-01-01",
                                                             "calendar": "360_day"}),
            "lat": ("lat", lat, {"units": "degrees_north"}),
            "lon": ("lon", lon, {"units": "degrees_east"}),
        },
    )  # fmt: skip
    enc = {"nbp": {"zlib": True, "chunksizes": (1, nlat, nlon)}, "time": {"_FillValue": None}}
    enc["lat"] = {"_FillValue": None}
    enc["lon"] = {"_FillValue": None}
    if fill:
        enc["nbp"]["_FillValue"] = np.float32(-999.0)
    else:
        enc["nbp"]["_FillValue"] = None
    ds.to_netcdf(path, encoding=enc, engine="netcdf4")


@pytest.mark.parametrize("fill", [False, True])
def test_undeclared_and_declared_fill_values(tmp_path, fill):
    """A file without _FillValue whose missing cells hold 1e20 (masked by |x| >= 1e19), and one
    with a declared fill: fast and xarray paths agree bit for bit, and the missing cells are NaN."""
    from gridflux.ingest.catalog import SeriesRecord

    rng = np.random.default_rng(1)
    v = rng.random((14, 8, 12)).astype(np.float32)
    v[:, 0, :3] = 1e20 if not fill else -999.0
    v[2, 5, 5] = 2e19 if not fill else -999.0
    p = str(tmp_path / "f.nc")
    _write(p, v, fill=fill, lat_desc=True, units="g m-2 d-1")
    rec = SeriesRecord(key="a.nbp", member="a", variable="nbp", raw_variable="nbp", paths=[p])
    fast = open_fast(rec)
    assert isinstance(fast, FastSeries)
    slow = DatasetView(catalog.load_series(rec, chunks={"time": 12}))
    for i0, i1 in ((0, 12), (12, 14), (1, 5)):
        a, b = fast.read(i0, i1), slow.read(i0, i1)
        assert _same(a, b)
    a = fast.read(0, 14)
    assert np.isnan(a[:, -1, :3]).all() and np.isnan(a[2, 8 - 1 - 5, 5])  # latitude reversed
    assert np.isfinite(a).sum() == a.size - 14 * 3 - 1
