"""One axis finder (``gridflux.fields.axes``) for normalize, masks and the regrid front.

The truth is a hand-written grid (edges below); every spelling of the same file must give that
grid, through ``normalize`` and through ``grid_of`` alike, and every file one of them refuses the
other refuses too.
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from gridflux.errors import InputError
from gridflux.fields.axes import (
    bounds_of,
    canonical_order,
    cf_bounds,
    find_dim,
    find_latlon,
    grid_of,
)
from gridflux.fields.normalize import normalize

LAT_E = np.array([-90.0, -30.0, 0.0, 45.0, 90.0])  # irregular rows: midpoints would be wrong
LON_E = np.array([-180.0, -60.0, 60.0, 180.0])
LAT_B = np.column_stack([LAT_E[:-1], LAT_E[1:]])
LON_B = np.column_stack([LON_E[:-1], LON_E[1:]])
LAT_C = np.array([-60.0, -15.0, 22.5, 67.5])
LON_C = np.array([-120.0, 0.0, 120.0])
LAT_ATTRS = {"standard_name": "latitude", "units": "degrees_north"}
LON_ATTRS = {"standard_name": "longitude", "units": "degrees_east"}


def _file(
    lat_name="lat",
    lon_name="lon",
    *,
    lat_attrs=None,
    lon_attrs=None,
    descending=False,
    lon_decreasing=False,
    with_bounds=True,
) -> xr.Dataset:
    """A 2-month field ``rh`` on the truth grid, spelled as asked (values = row*10 + col)."""
    lat_c, lat_b = LAT_C, LAT_B
    lon_c, lon_b = LON_C, LON_B
    data = np.arange(4)[:, None] * 10.0 + np.arange(3)[None, :]
    data = np.stack([data, 2 * data])
    if descending:
        lat_c, lat_b, data = lat_c[::-1], lat_b[::-1, ::-1], data[:, ::-1]
    if lon_decreasing:
        lon_c, lon_b, data = lon_c[::-1], lon_b[::-1, ::-1], data[:, :, ::-1]
    la = dict(LAT_ATTRS if lat_attrs is None else lat_attrs)
    lo = dict(LON_ATTRS if lon_attrs is None else lon_attrs)
    ds = xr.Dataset(
        {"rh": (("time", lat_name, lon_name), data, {"units": "kg m-2 s-1"})},
        coords={
            "time": (
                "time",
                [15.0, 45.0],
                {"units": "days since 2000-01-01", "calendar": "noleap"},
            ),
            lat_name: (lat_name, lat_c, la),
            lon_name: (lon_name, lon_c, lo),
        },
    )
    if with_bounds:
        ds[lat_name].attrs["bounds"] = "yb"  # CF bounds attribute with an unusual name
        ds["yb"] = ((lat_name, "nv"), lat_b)
        ds[f"{lon_name}_bnds"] = ((lon_name, "nv"), lon_b)
    return ds


SPELLINGS = {
    "lat/lon": dict(),
    "LAT/LON": dict(lat_name="LAT", lon_name="LON"),
    "latitude/longitude": dict(lat_name="latitude", lon_name="longitude"),
    "Latitude/Longitude": dict(lat_name="Latitude", lon_name="Longitude"),
    "nav_lat/nav_lon": dict(lat_name="nav_lat", lon_name="nav_lon"),
    "LAT/LON no attributes": dict(lat_name="LAT", lon_name="LON", lat_attrs={}, lon_attrs={}),
    # attributes alone: names that no name list knows
    "standard_name only": dict(
        lat_name="rows",
        lon_name="cols",
        lat_attrs={"standard_name": "latitude"},
        lon_attrs={"standard_name": "longitude"},
    ),
    "units only": dict(
        lat_name="j",
        lon_name="i",
        lat_attrs={"units": "degrees_N"},
        lon_attrs={"units": "degree_east"},
    ),
    "axis only": dict(
        lat_name="yy", lon_name="xx", lat_attrs={"axis": "Y"}, lon_attrs={"axis": "X"}
    ),
    "north to south": dict(descending=True),
    "east to west": dict(lon_decreasing=True),
    "LAT descending, no bounds file": dict(lat_name="LAT", lon_name="LON", descending=True),
}


@pytest.mark.parametrize("name", SPELLINGS)
def test_every_spelling_gives_the_truth_grid_in_normalize_and_grid_of(name):
    ds = _file(**SPELLINGS[name])
    g = grid_of(ds)
    np.testing.assert_array_equal(g.lat_bounds, LAT_B)
    np.testing.assert_array_equal(g.lon_bounds, LON_B)
    out = normalize(ds, "rh", path="f.nc")
    np.testing.assert_array_equal(out["lat_bnds"].values, LAT_B)
    np.testing.assert_array_equal(out["lon_bnds"].values, LON_B)
    assert grid_of(out) == g
    # the data in canonical order: value = 10 * canonical row + canonical column
    truth = np.arange(4)[:, None] * 10.0 + np.arange(3)[None, :]
    np.testing.assert_array_equal(out["rh"].values[1], 2 * truth)
    np.testing.assert_array_equal(canonical_order(ds["rh"]).values[0], truth)
    lat, lon = find_latlon(ds["rh"], ds)
    assert (lat, lon) == (
        SPELLINGS[name].get("lat_name", "lat"),
        SPELLINGS[name].get("lon_name", "lon"),
    )
    assert find_dim(ds["rh"], ds, "time") == "time"


def test_inferred_bounds_agree_between_normalize_and_grid_of():
    ds = _file(lat_name="LAT", lon_name="LON", with_bounds=False)
    out = normalize(ds, "rh", path="f.nc")
    assert grid_of(out) == grid_of(ds)
    # midpoints of the centres, half a step beyond the outer ones, clipped to the pole
    np.testing.assert_allclose(grid_of(ds).lat_bounds[:, 0], [-82.5, -37.5, 3.75, 45.0])


REFUSED = {
    # index dimensions: a dimension named like an axis but with no values is not in degrees
    "y/x index dims": lambda: xr.Dataset(
        {"rh": (("time", "y", "x"), np.zeros((1, 4, 3)), {"units": "kg m-2 s-1"})},
        coords={"time": ("time", [15.0], {"units": "days since 2000-01-01"})},
    ),
    "lat dim without values": lambda: xr.Dataset(
        {"rh": (("time", "lat", "lon"), np.zeros((1, 4, 3)), {"units": "kg m-2 s-1"})},
        coords={"time": ("time", [15.0], {"units": "days since 2000-01-01"}), "lon": LON_C},
    ),
    "projection y in metres": lambda: _file(
        lat_name="y",
        lat_attrs={"axis": "Y", "units": "m", "standard_name": "projection_y_coordinate"},
    ),
    "rotated pole rlat": lambda: _file(
        lat_name="rlat",
        lat_attrs={"axis": "Y", "units": "degrees", "standard_name": "grid_latitude"},
    ),
    "curvilinear": lambda: _curvilinear(),
}


def _curvilinear() -> xr.Dataset:
    lat2, lon2 = np.meshgrid(LAT_C, LON_C, indexing="ij")
    return xr.Dataset(
        {"rh": (("time", "y", "x"), np.zeros((1, 4, 3)), {"units": "kg m-2 s-1"})},
        coords={
            "time": ("time", [15.0], {"units": "days since 2000-01-01"}),
            "lat": (("y", "x"), lat2, LAT_ATTRS),
            "lon": (("y", "x"), lon2, LON_ATTRS),
        },
    )


@pytest.mark.parametrize("name", REFUSED)
def test_both_readers_refuse_the_same_files(name):
    ds = REFUSED[name]()
    with pytest.raises(InputError, match="f.nc") as e1:
        normalize(ds, "rh", path="f.nc")
    with pytest.raises(InputError) as e2:
        grid_of(ds, path="f.nc")
    assert "f.nc" in str(e2.value)
    if name == "curvilinear":
        for e in (e1, e2):
            assert "curvilinear" in str(e.value) and "cdo remapcon" in str(e.value)
    if name == "lat dim without values":
        assert "no coordinate values" in str(e1.value)


def test_bounds_of_follows_the_cf_attribute_then_names():
    ds = _file()
    np.testing.assert_array_equal(bounds_of(ds, "lat").values, LAT_B)  # via lat:bounds = "yb"
    np.testing.assert_array_equal(bounds_of(ds, "lon").values, LON_B)  # via the name lon_bnds
    # stored (nv, lon) instead of (lon, nv): transposed back
    ds2 = ds.assign(lon_bnds=(("nv", "lon"), LON_B.T))
    np.testing.assert_array_equal(bounds_of(ds2, "lon").values, LON_B)
    assert bounds_of(ds.drop_vars(["yb", "lon_bnds"]), "lat") is None


def _bounds_cases():
    """Datasets whose variables and CF keys name bounds in every way cf_xarray reads them."""
    base = _file()  # lat:bounds = "yb", lon_bnds found by name only
    yield "file", base
    yield "no bounds", base.drop_vars(["yb", "lon_bnds"])
    enc = base.copy()
    enc["lon"].encoding["bounds"] = "lon_bnds"  # bounds in the encoding (as xarray decodes)
    yield "encoding", enc
    yield "missing", base.drop_vars("yb")  # lat:bounds names a variable that is not there
    # dimensions named like CF keys, and a second latitude (lat2) with bounds of its own: the CF
    # key "latitude" would name both, the variable "latitude" names its own
    cf = _file("latitude", "longitude")  # latitude:bounds = "yb"; longitude_bnds by name only
    cf = cf.assign_coords(
        lat2=("latitude", LAT_C + 0.5, {"standard_name": "latitude", "bounds": "lat2_b"})
    ).assign(lat2_b=(("latitude", "nv"), LAT_B + 0.5))
    yield "cf key names", cf
    rot = _file("rlat", "rlon")  # CF keys that are no variable: cf_xarray's mapping decides
    rot["rlat"].attrs.update(axis="Y", standard_name="grid_latitude")
    rot["rlon"].attrs.update(axis="X", standard_name="grid_longitude", bounds="rlon_bnds")
    yield "axes keys", rot
    data = base.copy()
    data["rh"].attrs["bounds"] = "yb"  # a data variable with a bounds attribute
    yield "data variable", data


@pytest.mark.parametrize("case", [name for name, _ in _bounds_cases()])
def test_cf_bounds_is_cf_xarrays_answer(case):
    """``cf_bounds`` reads a variable's ``bounds`` directly: for every variable and every CF key
    of the dataset it answers what ``ds.cf.bounds`` does (cf_xarray, the peer)."""
    ds = dict(_bounds_cases())[case]
    mapping = ds.cf.bounds
    keys = set(ds.variables) | set(ds.cf.keys()) | {"lat", "lon", "latitude", "X", "nothing"}
    for key in sorted(keys, key=str):
        assert cf_bounds(ds, key) == list(mapping.get(key, [])), key
    if case == "cf key names":  # the variable's own bounds, not lat2's
        assert cf_bounds(ds, "latitude") == ["yb"] and cf_bounds(ds, "lat2") == ["lat2_b"]
    if case == "axes keys":  # keys that are no variable, answered through cf_xarray
        assert cf_bounds(ds, "X") == ["rlon_bnds"] and cf_bounds(ds, "Y") == ["yb"]


def test_axes_has_no_import_of_the_regrid_front():
    """esmf and regrid both import from axes; axes imports neither (no cycle)."""
    import ast
    import inspect

    import gridflux.fields.axes as axes
    import gridflux.fields.esmf as esmf

    for mod in (axes, esmf):
        tree = ast.parse(inspect.getsource(mod))
        names = {
            n.module
            for n in ast.walk(tree)
            if isinstance(n, ast.ImportFrom) and n.module is not None
        }
        assert "gridflux.fields.regrid" not in names, mod.__name__
