"""The xarray/dask front: ``grid_of``, ``regrid`` and ``region_totals`` stay lazy, keep metadata and
give the closed-form answers; ``RegionMask`` validation, regridding, polygons and files.
"""

from __future__ import annotations

import math

import dask
import dask.array as da_
import numpy as np
import pytest
import xarray as xr
from kernels.reference import (  # tests/ is pytest's rootdir, not a package
    R_ESMF,
    integral_sinlat_coslon,
    mean_coslon,
    mean_sinlat,
    rect_area,
    ref_cell_areas,
)

from gridflux.errors import InputError, MaskError
from gridflux.fields.masks import RegionMask
from gridflux.fields.regrid import grid_of, regrid
from gridflux.fields.totals import region_totals
from gridflux.kernels.grids import CellBounds, gaussian_grid, global_grid

T63 = gaussian_grid(96, lon0=0.9375)  # lon edges at multiples of 1.875: 0 and 90 are edges
ONE = global_grid(1.0)


def _dataset(
    grid: CellBounds, values: np.ndarray, *, descending=False, chunks=None, name="fch4", bounds=True
):
    """A canonical-style Dataset: the field plus ``lat_bnds``/``lon_bnds`` data variables."""
    lat, lat_b = grid.lat, grid.lat_bounds
    if descending:
        lat, lat_b, values = lat[::-1], lat_b[::-1], values[..., ::-1, :]
    data = da_.from_array(values, chunks=chunks) if chunks else values
    dims = ("time", "lat", "lon")[-values.ndim :]
    lat_attrs = {"standard_name": "latitude", "units": "degrees_north"}
    lon_attrs = {"standard_name": "longitude", "units": "degrees_east"}
    data_vars = {name: (dims, data, {"units": "kg m-2 s-1", "note": "keep"})}
    if bounds:
        lat_attrs["bounds"], lon_attrs["bounds"] = "lat_bnds", "lon_bnds"
        data_vars["lat_bnds"] = (("lat", "bnds"), lat_b)
        data_vars["lon_bnds"] = (("lon", "bnds"), grid.lon_bounds)
    coords = {"lat": ("lat", lat, lat_attrs), "lon": ("lon", grid.lon, lon_attrs)}
    if "time" in dims:
        coords["time"] = ("time", np.arange(values.shape[0]))
    return xr.Dataset(data_vars, coords=coords)


def _dataarray(grid: CellBounds, values: np.ndarray, **kw) -> xr.DataArray:
    """The field alone (no bounds: pass ``grid=`` to gridflux, or let it infer from centres)."""
    name = kw.pop("name", "fch4")
    return _dataset(grid, values, name=name, **kw)[name]


def _sector_field(nt=3):
    """Exact cell means of sin(lat) cos(lon) on T63, scaled by 1, 2, 3 over time."""
    base = np.outer(mean_sinlat(T63.lat_bounds), mean_coslon(T63.lon_bounds))
    return np.stack([(t + 1) * base for t in range(nt)])


def _sector_mask() -> RegionMask:
    m = np.zeros(ONE.shape)
    rows = ONE.lat_bounds[:, 0] >= 0
    cols = (ONE.lon_bounds[:, 0] >= 0) & (ONE.lon_bounds[:, 1] <= 90)
    m[np.ix_(rows, cols)] = 1.0
    return RegionMask(("ne", "all"), np.stack([m, np.ones(ONE.shape)]), ONE)


# -- grid_of -----------------------------------------------------------------------------------
def test_grid_of_uses_file_bounds_and_descending_lat():
    x = np.zeros(T63.shape)
    g = grid_of(_dataset(T63, x, descending=True))
    np.testing.assert_array_equal(g.lat_bounds, T63.lat_bounds)
    np.testing.assert_array_equal(g.lon_bounds, T63.lon_bounds)


def test_grid_of_without_bounds_infers():
    g = grid_of(_dataarray(ONE, np.zeros(ONE.shape)))
    np.testing.assert_allclose(g.lat_bounds, ONE.lat_bounds, atol=1e-12)
    np.testing.assert_allclose(g.lon_bounds, ONE.lon_bounds, atol=1e-12)


def test_grid_of_error_names_dims():
    bad = xr.DataArray(np.zeros((2, 3)), dims=("y_", "x_"), name="v")
    with pytest.raises(InputError) as ei:
        grid_of(bad)
    assert "y_" in str(ei.value) and "'v'" in str(ei.value)


# -- regrid ------------------------------------------------------------------------------------
def test_regrid_lazy_attrs_bounds_and_closed_form(raise_if_dask_computes):
    x = _sector_field()
    da = _dataarray(T63, x, descending=True, chunks=(1, 96, 192))
    with raise_if_dask_computes():
        out = regrid(da, ONE, grid=T63)
    assert dask.is_dask_collection(out.data)
    assert out.dtype == np.float64
    assert out.dims == ("time", "lat", "lon") and out.shape == (3, 180, 360)
    assert out.attrs["units"] == "kg m-2 s-1" and out.attrs["note"] == "keep"
    assert out.name == "fch4"
    np.testing.assert_allclose(out["lat"].values, ONE.lat_bounds.mean(axis=1))
    y = out.values
    a = ref_cell_areas(ONE.lat_bounds, ONE.lon_bounds, radius=R_ESMF)
    rows = ONE.lat_bounds[:, 0] >= 0
    cols = (ONE.lon_bounds[:, 0] >= 0) & (ONE.lon_bounds[:, 1] <= 90)
    exact = integral_sinlat_coslon(0, 90, 0, 90, radius=R_ESMF)
    for t in range(3):
        got = math.fsum((y[t][np.ix_(rows, cols)] * a[np.ix_(rows, cols)]).ravel())
        assert got == pytest.approx((t + 1) * exact, rel=1e-12)
    # a regular target's centres give back the target grid
    np.testing.assert_allclose(grid_of(out).lat_bounds, ONE.lat_bounds, atol=1e-12)
    # Dataset input (bounds read from the Dataset) is lazy too and gives the same numbers
    with raise_if_dask_computes():
        out_ds = regrid(_dataset(T63, x, descending=True, chunks=(1, 96, 192)), ONE)
    assert dask.is_dask_collection(out_ds["fch4"].data)
    np.testing.assert_allclose(out_ds["fch4"].values, y, rtol=1e-14)


def test_regrid_dataset_keeps_bounds_and_fracarea_nan():
    x = np.ones((2,) + T63.shape)
    x[:, :10] = np.nan  # southern rows missing
    ds = _dataset(T63, x)
    out = regrid(ds, ONE, normalization="fracarea")
    assert "fch4" in out and "lat_bnds" in out.variables and "lon_bnds" in out.variables
    np.testing.assert_allclose(out["lat_bnds"].values, ONE.lat_bounds)
    v = out["fch4"].values
    covered = ~np.isnan(v)
    np.testing.assert_allclose(v[covered], 1.0, rtol=1e-12)
    # rows fully south of the T63 row-10 edge are NaN, rows north of it are 1
    edge = T63.lat_bounds[10, 0]
    south = ONE.lat_bounds[:, 1] <= edge
    assert np.all(np.isnan(v[:, south])) and np.all(~np.isnan(v[:, ~south]))


# -- region_totals -----------------------------------------------------------------------------
@pytest.mark.parametrize("protocol", ["regrid-data", "regrid-mask"])
def test_region_totals_closed_form_and_lazy(protocol, raise_if_dask_computes):
    x = _sector_field()
    da = _dataset(T63, x, descending=True, chunks=(1, 96, 192))
    mask = _sector_mask()
    with raise_if_dask_computes():
        tot = region_totals(
            da,
            mask,
            protocol=protocol,
            target=global_grid(0.5) if protocol == "regrid-data" else None,
        )
    assert dask.is_dask_collection(tot.data)
    assert tot.dims == ("time", "region") and list(tot["region"].values) == ["ne", "all"]
    assert tot.name == "fch4"
    assert tot.dtype == np.float64
    assert "m2" in tot.attrs["units"] and "kg m-2 s-1" in tot.attrs["units"]
    v = tot.values
    exact = integral_sinlat_coslon(0, 90, 0, 90, radius=R_ESMF)
    for t in range(3):
        assert v[t, 0] == pytest.approx((t + 1) * exact, rel=1e-12)
        # the whole globe: integral of sin(lat) cos(lon) vanishes; relative to the sector
        assert abs(v[t, 1]) < 1e-12 * exact


def test_region_totals_nan_counts_as_zero_and_dataset_input():
    x = np.ones((1,) + ONE.shape)
    x[0, 100:110, :] = np.nan
    ds = _dataset(ONE, x)
    m = np.zeros(ONE.shape)
    m[95:115, 10:20] = 0.25
    mask = RegionMask(("box",), m, ONE)
    tot = region_totals(ds, mask).values
    lat_b = ONE.lat_bounds
    expected = 0.25 * sum(
        rect_area(
            lat_b[i, 0], lat_b[i, 1], ONE.lon_bounds[10, 0], ONE.lon_bounds[19, 1], radius=R_ESMF
        )
        for i in list(range(95, 100)) + list(range(110, 115))
    )
    assert tot[0, 0] == pytest.approx(expected, rel=1e-12)


def test_region_totals_radius_parameter():
    x = np.ones((1,) + ONE.shape)
    mask = RegionMask(("all",), np.ones(ONE.shape), ONE)
    tot = region_totals(_dataarray(ONE, x), mask, radius=6371000.0).values
    assert tot[0, 0] == pytest.approx(4 * math.pi * 6371000.0**2, rel=1e-12)


# -- RegionMask --------------------------------------------------------------------------------
def test_mask_values_outside_unit_interval():
    m = np.zeros((2,) + ONE.shape)
    m[1, 3, 4] = 100.0
    with pytest.raises(MaskError) as ei:
        RegionMask(("a", "b"), m, ONE)
    msg = str(ei.value)
    assert "'b'" in msg and "100" in msg and "[0, 1]" in msg
    m[1, 3, 4] = -0.5
    with pytest.raises(MaskError):
        RegionMask(("a", "b"), m, ONE)


def test_mask_shape_and_names_errors():
    with pytest.raises(MaskError) as ei:
        RegionMask(("a",), np.zeros((10, 10)), ONE)
    assert "(180, 360)" in str(ei.value)
    with pytest.raises(MaskError) as ei:
        RegionMask(("a", "a"), np.zeros((2,) + ONE.shape), ONE)
    assert "duplicate" in str(ei.value)
    mask = RegionMask(("a",), np.zeros(ONE.shape), ONE)
    with pytest.raises(MaskError) as ei:
        mask.region("b")
    assert "'b'" in str(ei.value) and "'a'" in str(ei.value)


def test_mask_to_grid_fraction_by_hand():
    """A box [60, 70] N x [10, 20] E on 1 deg, onto T63: each T63 cell gets its exact area
    fraction."""
    m = np.zeros(ONE.shape)
    m[150:160, 190:200] = 1.0
    mask = RegionMask(("box",), m, ONE)
    f = mask.to_grid(T63).fractions[0]
    expected = np.zeros(T63.shape)
    for i, (s, n) in enumerate(T63.lat_bounds):
        lo, hi = max(s, 60.0), min(n, 70.0)
        if hi <= lo:
            continue
        for j, (w, e) in enumerate(T63.lon_bounds):
            ov = max(0.0, min(e, 20.0) - max(w, 10.0))
            if ov > 0:
                expected[i, j] = rect_area(lo, hi, 0, ov) / rect_area(s, n, w, e)
    np.testing.assert_allclose(f, expected, atol=1e-13)
    assert mask.areas()["box"] == pytest.approx(rect_area(60, 70, 10, 20, radius=R_ESMF), rel=1e-12)


def test_mask_from_polygons_exact_box_and_dateline():
    pytest.importorskip("shapely", reason="polygon masks need the optional shapely extra")
    from shapely.geometry import box

    grid = global_grid(2.0, 2.5)
    mask = RegionMask.from_polygons(
        {"box": box(10.0, 60.0, 20.0, 70.0), "pacific": box(170.0, -10.0, 190.0, 10.0)}, grid
    )
    assert mask.areas()["box"] == pytest.approx(rect_area(60, 70, 10, 20, radius=R_ESMF), rel=1e-9)
    assert mask.areas()["pacific"] == pytest.approx(
        rect_area(-10, 10, 170, 190, radius=R_ESMF), rel=1e-9
    )
    # a polygon edge inside a cell: [60, 61] in a [60, 62] row -> sin-fraction, exact
    m2 = RegionMask.from_polygons({"thin": box(10.0, 60.0, 12.5, 61.0)}, grid)
    i, j = (60 + 90) // 2, int((10 + 180) / 2.5)
    exp = rect_area(60, 61, 10, 12.5) / rect_area(60, 62, 10, 12.5)
    assert m2.fractions[0, i, j] == pytest.approx(exp, rel=1e-9)


def test_mask_file_round_trip(tmp_path):
    m = np.zeros((2,) + ONE.shape)
    m[0, 100:120, 30:40] = 0.5
    m[1, 10:20] = 1.0
    mask = RegionMask(("a", "b"), m, ONE)
    path = tmp_path / "mask.nc"
    mask.to_netcdf(path)
    back = RegionMask.from_file(path)
    assert back.names == ("a", "b")
    np.testing.assert_array_equal(back.fractions, m)
    np.testing.assert_allclose(back.grid.lat_bounds, ONE.lat_bounds)
    with pytest.raises(MaskError) as ei:
        RegionMask.from_file(tmp_path / "nope.nc")
    assert "nope.nc" in str(ei.value)
