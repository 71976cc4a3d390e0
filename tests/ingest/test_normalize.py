"""normalize(): canonical orientation, units, sign, land fraction, time; laziness; no extra pass."""

import cftime
import dask
import numpy as np
import pytest
import xarray as xr

from gridflux.fields.normalize import normalize
from gridflux.ingest.catalog import SeriesRecord, load_series, open_series
from gridflux.testing import raise_if_dask_computes

DAY = 86400.0


def _record(paths, variable="npp", **kw):
    return SeriesRecord(
        key=f"E.M.x.r1.{variable}",
        member="E.M.x.r1",
        variable=variable,
        raw_variable=kw.pop("raw_variable", variable),
        paths=list(paths),
        **kw,
    )


def test_descending_lat_units_sign_and_time(ncfile):
    lat = [60.0, 20.0, -20.0, -60.0]
    data = np.random.default_rng(1).random((3, 4, 4)).astype(np.float32)
    p = ncfile(var="NPP", units="g C m-2 d-1", lat=lat, data=data, calendar="360_day")
    with raise_if_dask_computes():
        ds = open_series(_record([p], raw_variable="NPP"))
        out = normalize(ds, "npp", raw_name="NPP")
    da = out["npp"]
    assert da.dims == ("time", "lat", "lon") and dask.is_dask_collection(da.data)
    assert da.dtype == np.float64  # converted values are kept in float64 (no float32 re-rounding)
    np.testing.assert_array_equal(out.lat.values, [-60.0, -20.0, 20.0, 60.0])
    np.testing.assert_array_equal(out.lat_bnds.values[:, 0], [-80.0, -40.0, 0.0, 40.0])
    np.testing.assert_array_equal(out.lat_bnds.values[-1], [40.0, 80.0])
    # NPP positive into land -> negative canonical; g C m-2 d-1 -> kg m-2 s-1
    expected = -data[:, ::-1, :].astype(np.float64) * 1e-3 / DAY
    np.testing.assert_allclose(da.values, expected, rtol=1e-6)
    assert list(out.time.values) == [
        cftime.datetime(2000, m, 1, calendar="360_day") for m in (1, 2, 3)
    ]
    np.testing.assert_array_equal(out.seconds_in_month.values, [30 * DAY] * 3)
    assert (
        "INFERRED" in da.attrs["gridflux_history"]
        and "sign flipped" in da.attrs["gridflux_history"]
    )
    assert da.attrs["gridflux_kind"] == "flux" and da.attrs["gridflux_element"] == "C"
    assert da.attrs["gridflux_gas"] == "CO2" and p in da.attrs["gridflux_source"]


def test_lon_0_360_kept_not_rolled(ncfile):
    p = ncfile(var="rh", lon=[0.0, 90.0, 180.0, 270.0])
    out = load_series(_record([p], variable="rh"))
    np.testing.assert_array_equal(out.lon.values, [0.0, 90.0, 180.0, 270.0])
    np.testing.assert_array_equal(out.lon_bnds.values[0], [-45.0, 45.0])


def test_canonical_file_costs_no_extra_pass(ncfile):
    p = ncfile(var="rh", units="kg m-2 s-1", lat=[-45.0, 0.0, 45.0])
    ds = open_series(_record([p], variable="rh"))
    out = normalize(ds, "rh")
    assert out["rh"].data is ds["rh"].data  # the very same dask array: no task added
    assert out["rh"].attrs["gridflux_history"].count("units") == 0


def test_float_factor_precision_and_per_month_units(ncfile):
    data = np.full((3, 3, 4), 31.0, dtype=np.float32)
    p = ncfile(var="n2oflux", units="g N m-2 month-1", data=data, calendar="noleap")
    out = load_series(_record([p], variable="fn2o", raw_variable="n2oflux"))
    secs = np.array([31, 28, 31]) * DAY
    np.testing.assert_allclose(out["fn2o"].values[:, 0, 0], 31.0 * 1e-3 / secs, rtol=1e-7)


def test_per_land_area_multiplied_by_sftlf_percent(ncfile, tmp_path):
    data = np.ones((3, 3, 4), dtype=np.float32)
    p = ncfile(var="rh", data=data, cell_methods="area: mean where land")
    sft = xr.Dataset(
        {
            "sftlf": (
                ("lat", "lon"),
                np.array([[0, 50, 100, 25]] * 3, dtype=np.float32),
                {"units": "%"},
            )
        },
        coords={"lat": [-45.0, 0.0, 45.0], "lon": [0.0, 90.0, 180.0, 270.0]},
    )
    sp = str(tmp_path / "sftlf_fx.nc")
    sft.to_netcdf(sp)
    out = load_series(_record([p], variable="rh", fx_paths={"sftlf": sp}))
    np.testing.assert_allclose(out["rh"].values[0, 1], [0.0, 0.5, 1.0, 0.25])
    assert "sftlf in %" in out["rh"].attrs["gridflux_history"]


def test_fill_values_become_nan_with_missing_fraction(ncfile):
    data = np.ones((3, 3, 4), dtype=np.float32)
    data[:, 0, :2] = 1e20
    p = ncfile(var="rh", data=data, fill=-999.0)  # declared fill differs from the 1e20 written
    out = load_series(_record([p], variable="rh"))
    v = out["rh"].values
    assert np.isnan(v[:, 0, :2]).all() and np.isfinite(v[:, 1:]).all()
    assert out["rh"].attrs["gridflux_missing_fraction"] == pytest.approx(2 / 12)


def test_months_since_and_mid_year_split_files(ncfile):
    # file 1: Jan-Jul 2000 in 'months since', file 2: Aug 2000 - Mar 2001 in days; listed out of
    # order
    a = ncfile(
        "a.nc",
        var="rh",
        time=np.arange(7) + 0.5,
        time_units="months since 2000-01-01",
        calendar="standard",
    )
    t2 = cftime.date2num(
        [
            cftime.datetime(2000 + (7 + k) // 12, (7 + k) % 12 + 1, 10, calendar="standard")
            for k in range(8)
        ],
        "days since 1990-01-01",
        calendar="standard",
    )
    b = ncfile("b.nc", var="rh", time=t2, time_units="days since 1990-01-01", calendar="standard")
    with raise_if_dask_computes():
        ds = open_series(_record([b, a], variable="rh"), chunks={"time": 4})
        out = normalize(ds, "rh")
    assert out.sizes["time"] == 15
    assert out.time.values[6] == cftime.datetime(2000, 7, 1, calendar="standard")
    assert out.time.values[7] == cftime.datetime(2000, 8, 1, calendar="standard")
    # chunks aligned to 4-month blocks from the series start, split at the file boundary
    assert out["rh"].chunks[0] == (4, 3, 1, 4, 3)
    np.testing.assert_array_equal(out.seconds_in_month.values[:3], np.array([31, 29, 31]) * DAY)
