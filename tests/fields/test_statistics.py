"""Region means of intensive fields: exact against an independent area-weighted computation.

Truth: regions are boxes with whole-degree edges (unions of the 1 deg mask's cells), so the part
of each data cell inside a box is ``overlap(sin lat) * overlap(lon) / cell`` exactly, and the
mean is ``sum x f a / sum f a`` over finite cells with cell areas ``a`` from the rectangle
formula on the grid's true bounds (math.fsum, no gridflux code). Grid families: regular,
Gaussian, pole-centred, stored N->S, shifted longitudes (0..360 and -180..180 and 20..380),
missing bounds (regular and Gaussian: their bounds are recovered exactly).
"""

from __future__ import annotations

import math

import cftime
import numpy as np
import pytest
import xarray as xr

from gridflux.errors import InputError
from gridflux.fields.masks import RegionMask
from gridflux.fields.statistics import (
    choose_statistic,
    parse_sel,
    region_means,
    resample_month,
    select_levels,
    weighted_means,
)
from gridflux.kernels.grids import global_grid

R = 6371007.181
BOXES = {  # name: (south, north, west, east) in degrees, on the 1 deg mask grid (-180..180)
    "north": (45.0, 90.0, -180.0, 180.0),
    "box": (-30.0, 12.0, -60.0, 35.0),
    "dateline": (-10.0, 20.0, 150.0, 180.0),
}


def _mask() -> RegionMask:
    g = global_grid(1.0)
    lat_b, lon_b = g.lat_bounds, g.lon_bounds
    fr = []
    for s, n, w, e in BOXES.values():
        inlat = (lat_b[:, 0] >= s) & (lat_b[:, 1] <= n)
        inlon = (lon_b[:, 0] >= w) & (lon_b[:, 1] <= e)
        fr.append((inlat[:, None] & inlon[None, :]).astype(float))
    return RegionMask(names=tuple(BOXES), fractions=np.array(fr), grid=g)


def _lon_overlap(a_w, a_e, b_w, b_e):
    return sum(max(0.0, min(a_e, b_e + 360 * k) - max(a_w, b_w + 360 * k)) for k in range(-3, 4))


def _truth(x: np.ndarray, lat_b: np.ndarray, lon_b: np.ndarray) -> np.ndarray:
    """(t, region) exact means; x, lat_b, lon_b in any (the file's) order."""
    out = np.empty((x.shape[0], len(BOXES)))
    for r, (s, n, w, e) in enumerate(BOXES.values()):
        wts = np.zeros(x.shape[1:])
        for i, (la0, la1) in enumerate(lat_b):
            lo, hi = sorted((la0, la1))
            ds = max(0.0, math.sin(math.radians(min(hi, n))) - math.sin(math.radians(max(lo, s))))
            if ds == 0.0:
                continue
            for j, (lo0, lo1) in enumerate(lon_b):
                a, b = sorted((lo0, lo1))
                wts[i, j] = R * R * ds * math.radians(_lon_overlap(a, b, w, e))
        for t in range(x.shape[0]):
            ok = np.isfinite(x[t])
            num = math.fsum((x[t][ok] * wts[ok]).ravel())
            den = math.fsum(wts[ok].ravel())
            out[t, r] = num / den if den > 0 else np.nan
    return out


def _gauss_edges(n: int) -> tuple[np.ndarray, np.ndarray]:
    nodes, weights = np.polynomial.legendre.leggauss(n)
    centres = np.degrees(np.arcsin(nodes))
    s = np.concatenate([[-1.0], -1.0 + np.cumsum(weights)])
    s[-1] = 1.0
    edges = np.degrees(np.arcsin(np.clip(s, -1, 1)))
    return centres, np.stack([edges[:-1], edges[1:]], axis=1)


def _regular(d: float, lon0: float):
    lat_e = np.arange(-90.0, 90.0 + d / 2, d)
    lon_e = lon0 + np.arange(0.0, 360.0 + d / 2, d)
    lat_b = np.stack([lat_e[:-1], lat_e[1:]], 1)
    lon_b = np.stack([lon_e[:-1], lon_e[1:]], 1)
    return lat_b.mean(1), lat_b, lon_b.mean(1), lon_b


def _family(name: str):
    if name == "regular":
        return _regular(2.5, -180.0)
    if name == "shifted-0-360":
        return _regular(1.875, 0.0)
    if name == "shifted-20":
        return _regular(3.0, 20.0)
    if name in ("gaussian", "gaussian-nobounds"):
        lat, lat_b = _gauss_edges(48)
        lon_b = np.stack([np.arange(96) * 3.75 - 1.875, np.arange(96) * 3.75 + 1.875], 1)
        return lat, lat_b, np.arange(96) * 3.75, lon_b
    if name == "pole-centred":
        lat = np.arange(-90.0, 90.1, 2.0)
        e = np.concatenate([[-90.0], lat[:-1] + 1.0, [90.0]])
        lon = np.arange(0.0, 360.0, 2.5)
        lon_b = np.stack([lon - 1.25, lon + 1.25], 1)
        return lat, np.stack([e[:-1], e[1:]], 1), lon, lon_b
    if name in ("n-to-s", "regular-nobounds"):
        lat, lat_b, lon, lon_b = _regular(2.0, -180.0)
        if name == "n-to-s":
            return lat[::-1], lat_b[::-1, ::-1], lon, lon_b
        return lat, lat_b, lon, lon_b
    raise KeyError(name)


FAMILIES = [
    "regular",
    "shifted-0-360",
    "shifted-20",
    "gaussian",
    "gaussian-nobounds",
    "pole-centred",
    "n-to-s",
    "regular-nobounds",
]


def _dataset(name: str, nt: int = 3, nan: bool = True):
    lat, lat_b, lon, lon_b = _family(name)
    rng = np.random.default_rng(7)
    x = 250.0 + 40.0 * rng.standard_normal((nt, lat.size, lon.size))
    if nan:  # missing cells that differ per month (ocean-like and a hole)
        x[0, : lat.size // 3, :] = np.nan
        x[1, :, : lon.size // 5] = np.nan
    ds = xr.Dataset(
        {"ta": (("time", "lat", "lon"), x, {"units": "K", "standard_name": "air_temperature"})},
        coords={"lat": ("lat", lat), "lon": ("lon", lon)},
    )
    if "nobounds" not in name:
        ds["lat_bnds"] = (("lat", "bnds"), lat_b)
        ds["lon_bnds"] = (("lon", "bnds"), lon_b)
        ds["lat"].attrs["bounds"] = "lat_bnds"
        ds["lon"].attrs["bounds"] = "lon_bnds"
    ds["lat"].attrs.update(standard_name="latitude", units="degrees_north")
    ds["lon"].attrs.update(standard_name="longitude", units="degrees_east")
    return ds, x, lat_b, lon_b


@pytest.mark.parametrize("protocol", ["regrid-data", "regrid-mask"])
@pytest.mark.parametrize("family", FAMILIES)
def test_region_means_exact_on_every_grid_family(family, protocol):
    ds, x, lat_b, lon_b = _dataset(family)
    got = region_means(ds, _mask(), protocol=protocol, radius=R)
    want = _truth(x, lat_b, lon_b)
    assert got.dims == ("time", "region")
    assert got.attrs["statistic"] == "mean" and got.attrs["units"] == "K"
    np.testing.assert_allclose(got.values, want, rtol=1e-12, atol=0)


def test_missing_cells_leave_the_denominator():
    """A field constant where finite and NaN elsewhere has that constant as its mean (a NaN
    counted as zero, or its weight kept in the denominator, would pull the mean down)."""
    ds, x, _, _ = _dataset("regular")
    x2 = np.where(np.isfinite(x), 280.0, np.nan)
    ds["ta"].values[:] = x2
    got = region_means(ds, _mask(), radius=R).values
    np.testing.assert_allclose(got, 280.0, rtol=1e-14)


def test_region_without_data_is_nan_and_covered_weight_is_zero():
    w = np.ones((1, 2, 3))
    block = np.full((2, 2, 3), np.nan)
    block[1] = 5.0
    means, covered = weighted_means(block, w)
    assert np.isnan(means[0, 0]) and covered[0, 0] == 0.0
    assert means[1, 0] == 5.0 and covered[1, 0] == 6.0


def test_land_fraction_weights_the_mean():
    ds, x, lat_b, lon_b = _dataset("regular", nan=False)
    lf = np.zeros(x.shape[1:])
    lf[:, ::2] = 100.0  # every other column all land, in %
    got = region_means(ds, _mask(), radius=R, land_fraction=xr.DataArray(lf, attrs={"units": "%"}))
    want = _truth(np.where(lf[None] > 0, x, np.nan), lat_b, lon_b)
    np.testing.assert_allclose(got.values, want, rtol=1e-12)


def test_land_fraction_follows_a_north_to_south_file():
    ds, x, lat_b, lon_b = _dataset("n-to-s", nan=False)
    lf = np.zeros(x.shape[1:])
    lf[: x.shape[1] // 2] = 1.0  # northern half (rows stored first) is land
    got = region_means(ds, _mask(), radius=R, land_fraction=lf)
    want = _truth(np.where(lf[None] > 0, x, np.nan), lat_b, lon_b)
    np.testing.assert_allclose(got.values, want, rtol=1e-12)


def test_a_land_weighted_canonical_field_carries_its_land_fraction():
    """normalize(land_weighted=True) on a N->S file with sftlf in %: the canonical field's
    region means (region_means reads its gridflux_land_fraction) equal the land-masked truth."""
    from gridflux.fields.normalize import normalize

    ds, x, lat_b, lon_b = _dataset("n-to-s", nan=False)
    lf = np.zeros(x.shape[1:])
    lf[: x.shape[1] // 2] = 100.0  # northern half (rows stored first) is land, in %
    ds["sftlf"] = (("lat", "lon"), lf, {"units": "%"})
    ds["time"] = (
        "time",
        [15.0, 45.0, 74.0],
        {"units": "days since 2000-01-01", "calendar": "noleap"},
    )
    out = normalize(ds, "ta", statistic="mean", land_weighted=True, path="ta.nc")
    assert out["ta"].attrs["gridflux_land_weighted"] == 1
    assert "land-weighted" in out["ta"].attrs["gridflux_history"]
    got = region_means(out, _mask(), radius=R)
    want = _truth(np.where(lf[None] > 0, x, np.nan), lat_b, lon_b)
    np.testing.assert_allclose(got.values, want, rtol=1e-12)
    with pytest.raises(InputError, match="land_weighted"):
        normalize(ds.drop_vars("sftlf"), "ta", statistic="mean", land_weighted=True, path="a.nc")


# -- the statistic from metadata ---------------------------------------------------------------
@pytest.mark.parametrize(
    ("attrs", "stat"),
    [
        ({"standard_name": "air_temperature", "units": "K"}, "mean"),
        ({"standard_name": "precipitation_flux", "units": "kg m-2 s-1"}, "mean"),
        ({"standard_name": "mole_fraction_of_methane_in_air", "units": "1"}, "mean"),
        ({"standard_name": "mass_content_of_water_in_soil", "units": "kg m-2"}, "mean"),
        ({"standard_name": "specific_humidity", "units": "1"}, "mean"),
        ({"units": "degC"}, "mean"),
        ({"units": "kg kg-1"}, "mean"),
        ({"units": "%"}, "mean"),
        ({"units": "kg m-2 s-1"}, "total"),
        ({"units": "g C m-2 d-1"}, "total"),
        ({"units": "mol m-2 s-1"}, "total"),
        ({"units": "kg m-2"}, "total"),
        ({"standard_name": "soil_mass_content_of_carbon", "units": "kg m-2"}, "total"),
        ({"units": "K", "cell_methods": "area: sum time: mean"}, "total"),
    ],
)
def test_statistic_from_cf_metadata(attrs, stat):
    assert choose_statistic(attrs).statistic == stat


def test_statistic_override_wins_and_bad_override_names_the_attribute():
    assert choose_statistic({"units": "K"}, override="total").statistic == "total"
    with pytest.raises(InputError, match="statistic"):
        choose_statistic({"units": "K"}, override="median", path="f.nc", variable="tas")
    with pytest.raises(InputError, match="units"):
        choose_statistic({}, path="f.nc", variable="x")


# -- levels --------------------------------------------------------------------------------------
def test_sel_one_level_and_missing_level():
    plev = np.array([100000.0, 85000.0, 50000.0])
    da = xr.DataArray(np.arange(3 * 2 * 2.0).reshape(3, 2, 2), dims=("plev", "lat", "lon"))
    ds = xr.Dataset({"ta": da}, coords={"plev": plev})
    out = select_levels(ds, "ta", parse_sel("plev=85000"), "mean")
    np.testing.assert_array_equal(out.values, da.values[1])
    with pytest.raises(InputError, match="85000, 50000"):
        select_levels(ds, "ta", parse_sel("plev=70000"), "mean")
    with pytest.raises(InputError, match="sel"):
        parse_sel("plev")


def test_sel_layer_integral_of_stocks_and_mean_of_intensive():
    """Layers [0,0.1], [0.1,0.4], [0.4,1.0], [1,2]; 0:1 takes the first three whole; 0:0.7
    takes half of the third."""
    b = np.array([[0, 0.1], [0.1, 0.4], [0.4, 1.0], [1.0, 2.0]])
    x = np.array([1.0, 2.0, 4.0, 8.0])[:, None, None] * np.ones((4, 1, 1))
    ds = xr.Dataset(
        {"c": (("depth", "lat", "lon"), x), "depth_bnds": (("depth", "bnds"), b)},
        coords={"depth": ("depth", b.mean(1), {"bounds": "depth_bnds"})},
    )

    def one(text: str, stat: str) -> float:
        return float(select_levels(ds, "c", parse_sel(text), stat).values.item())

    assert one("depth=0:1", "total") == 7.0
    assert one("depth=0:0.7", "total") == pytest.approx(5.0, rel=1e-14)
    mean = one("depth=0:0.7", "mean")
    assert mean == pytest.approx((0.1 * 1 + 0.3 * 2 + 0.3 * 4) / 0.7, rel=1e-14)
    with pytest.raises(InputError, match="not covered"):
        select_levels(ds, "c", parse_sel("depth=0:3"), "total")


# -- daily -> monthly ----------------------------------------------------------------------------
@pytest.mark.parametrize(("calendar", "feb"), [("noleap", 28), ("360_day", 30), ("standard", 29)])
def test_resample_month_is_calendar_aware(calendar, feb):
    days = [cftime.datetime(2000, 1, 1, 12, calendar=calendar)]
    while True:
        nxt = days[-1] + (
            days[1] - days[0] if len(days) > 1 else __import__("datetime").timedelta(1)
        )
        if nxt.month == 4:
            break
        days.append(nxt)
    vals = np.array([d.day for d in days], dtype=float)  # mean of 1..n = (n+1)/2
    da = xr.DataArray(vals, dims=("time",), coords={"time": days})
    out = resample_month(da)
    np.testing.assert_allclose(
        out.values,
        [
            (31 + 1) / 2 if calendar != "360_day" else 15.5,
            (feb + 1) / 2,
            (31 + 1) / 2 if calendar != "360_day" else 15.5,
        ],
    )
    assert [t.month for t in out["time"].values] == [1, 2, 3]
    assert out.attrs["gridflux_incomplete_months"] == ""


def test_resample_month_incomplete_month_is_nan_and_named():
    days = [cftime.datetime(2001, 1, d, calendar="noleap") for d in range(1, 32)]
    days += [cftime.datetime(2001, 2, d, calendar="noleap") for d in range(1, 20)]
    da = xr.DataArray(np.ones(len(days)), dims=("time",), coords={"time": days})
    out = resample_month(da)
    assert out.values[0] == 1.0 and np.isnan(out.values[1])
    assert out.attrs["gridflux_incomplete_months"] == "2001-02"


# -- units ---------------------------------------------------------------------------------------
def test_mean_units_convert_with_pint_and_totals_name_the_species():
    from gridflux.fields.statistics import mean_conversion, total_unit

    assert mean_conversion("degC", "K")[:2] == (1.0, 273.15)
    assert mean_conversion("g kg-1", "1")[:2] == pytest.approx((1e-3, 0.0))
    assert mean_conversion("hPa", "Pa")[:2] == (100.0, 0.0)
    assert mean_conversion("K", "K")[:2] == (1.0, 0.0)
    with pytest.raises(InputError, match="cannot be converted"):
        mean_conversion("m", "K", path="f.nc", variable="ta")
    assert total_unit("C", "CO2") == "Tg C"
    assert total_unit("C", "CH4") == "Tg CH4-C"
    assert total_unit("N", "N2O") == "Tg N2O-N"


def test_normalize_a_mean_field_in_celsius_at_one_level():
    """A 4-D ta in degC, stored N->S: the canonical mean field is the 850 hPa level in K,
    latitude ascending, values otherwise untouched."""
    from gridflux.fields.normalize import normalize

    lat = np.array([45.0, 15.0, -15.0, -45.0])
    lon = np.array([0.0, 90.0, 180.0, 270.0])
    x = np.arange(2 * 3 * 4 * 4, dtype=float).reshape(2, 3, 4, 4)
    ds = xr.Dataset(
        {"ta": (("time", "plev", "lat", "lon"), x, {"units": "degC"})},
        coords={
            "time": (
                "time",
                [15.0, 45.0],
                {"units": "days since 2000-01-01", "calendar": "noleap"},
            ),
            "plev": ("plev", [100000.0, 85000.0, 50000.0]),
            "lat": ("lat", lat, {"standard_name": "latitude", "units": "degrees_north"}),
            "lon": ("lon", lon, {"standard_name": "longitude", "units": "degrees_east"}),
        },
    )
    out = normalize(ds, "ta", statistic="mean", sel="plev=85000", path="ta.nc")
    assert out["ta"].attrs["units"] == "K" and out["ta"].attrs["gridflux_kind"] == "mean"
    np.testing.assert_array_equal(out["ta"].values, x[:, 1, ::-1, :] + 273.15)
    with pytest.raises(InputError, match="extra dimension 'plev'.*--sel plev"):
        normalize(ds, "ta", statistic="mean", path="ta.nc")


def test_a_mean_is_never_stored_without_a_unit_or_under_a_non_unit():
    from gridflux.fields.statistics import check_mean_unit, mean_unit

    assert mean_unit("foo", " W  m-2 ") == "W m-2"  # the file's own, spaces normalised
    assert mean_unit("tas", "degC") == "K"  # the table's
    for good in ("W m-2", "kg m-2 s-1", "mol mol-1", "1", "%", "m s-1"):
        assert check_mean_unit(good, good) == good
    with pytest.raises(InputError, match=r"f\.nc.*'foo'.*units.*not a unit"):
        check_mean_unit("furlongs per fortnightish", "furlongs per fortnightish", path="f.nc",
                        variable="foo")  # fmt: skip
    with pytest.raises(InputError, match="no units attribute"):
        check_mean_unit("", None, path="f.nc", variable="foo")


def test_regrid_of_a_mean_field_averages_finite_cells_only():
    """gridflux.regrid's default (regrid.normalization: fracarea): two source cells, one NaN,
    into one target cell give the finite cell's value; destarea (the cubes of totals) halves
    it (the pipeline's cubes of means: tests/pipeline/test_statistics_run.py)."""
    from gridflux.fields.regrid import regrid
    from gridflux.kernels.grids import CellBounds

    src = CellBounds(np.array([[0.0, 10.0]]), np.array([[0.0, 10.0], [10.0, 20.0]]))
    dst = CellBounds(np.array([[0.0, 10.0]]), np.array([[0.0, 20.0]]))
    da = xr.DataArray(
        np.array([[[280.0, np.nan]]]),
        dims=("time", "lat", "lon"),
        coords={"lat": [5.0], "lon": [5.0, 15.0]},
        attrs={"gridflux_kind": "mean", "units": "K"},
    )
    assert float(regrid(da, dst, grid=src).values.squeeze()) == pytest.approx(280.0, rel=1e-15)
    got = regrid(da, dst, grid=src, normalization="destarea")
    assert float(got.values.squeeze()) == pytest.approx(140.0, rel=1e-12)


@pytest.mark.parametrize("calendar", ["noleap", "360_day", "standard"])
def test_decode_dates_of_daily_steps_uses_the_bounds_midpoint(calendar):
    from gridflux.fields.timeaxis import decode_dates, has_sub_monthly_steps, keys_from_dates

    # stamps at 00:00 of the next day (end of each day), bounds around each day
    days = np.arange(1.0, 62.0)
    bounds = np.stack([days - 1.0, days], axis=1)
    got = decode_dates(days, "days since 2000-01-01", calendar, bounds=bounds)
    assert (got[0].year, got[0].month, got[0].day, got[0].hour) == (2000, 1, 1, 12)
    keys = keys_from_dates(got)
    jan = 31 if calendar != "360_day" else 30
    assert int((keys == keys[0]).sum()) == jan and has_sub_monthly_steps(keys)
    with pytest.raises(InputError, match="cannot date daily"):
        decode_dates(days, "months since 2000-01-01", calendar)
