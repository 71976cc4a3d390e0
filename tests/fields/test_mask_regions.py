"""Every region of a mask file, read by its coordinates, or a clear error (issues 16.1, 20.1-2).

Truths are closed-form areas of latitude-longitude boxes; files are written with the netCDF4
library (no gridflux writer involved) in layouts found in the wild.
"""

from __future__ import annotations

import netCDF4
import numpy as np
import pytest

from gridflux.errors import MaskError
from gridflux.fields.masks import RegionMask
from gridflux.kernels.grids import EARTH_RADIUS, global_grid

G = global_grid(2.0)  # 90 x 180, lat -90..90, lon -180..180


def _box_area(s, n, w, e):
    return EARTH_RADIUS**2 * np.radians(e - w) * (np.sin(np.radians(n)) - np.sin(np.radians(s)))


def _box(s, n, w, e, value=1.0):
    """A (lat, lon) field on G: ``value`` inside [s, n] x [w, e] (cell-aligned), 0 elsewhere."""
    rows = (G.lat_bounds[:, 0] >= s) & (G.lat_bounds[:, 1] <= n)
    cols = (G.lon_bounds[:, 0] >= w) & (G.lon_bounds[:, 1] <= e)
    f = np.zeros(G.shape)
    f[np.ix_(rows, cols)] = value
    return f


def _write(path, variables, *, descending=True, region_names=None, extra=None):
    """A CF mask file on G stored north to south; ``variables`` maps name -> (dims, array)."""
    with netCDF4.Dataset(path, "w") as nc:
        nc.createDimension("lat", G.nlat)
        nc.createDimension("lon", G.nlon)
        nc.createDimension("bnds", 2)
        lat, lat_b = G.lat, G.lat_bounds
        if descending:
            lat, lat_b = lat[::-1], lat_b[::-1, ::-1]
        v = nc.createVariable("lat", "f8", ("lat",))
        v.standard_name, v.units, v.bounds = "latitude", "degrees_north", "lat_bnds"
        v[:] = lat
        v = nc.createVariable("lon", "f8", ("lon",))
        v.standard_name, v.units, v.bounds = "longitude", "degrees_east", "lon_bnds"
        v[:] = G.lon
        nc.createVariable("lat_bnds", "f8", ("lat", "bnds"))[:] = lat_b
        nc.createVariable("lon_bnds", "f8", ("lon", "bnds"))[:] = G.lon_bounds
        nc.createVariable("crs", "i4", ())[:] = 0  # 0-d metadata
        if region_names is not None:
            nc.createDimension("region", len(region_names))
            r = nc.createVariable("region", str, ("region",))
            for i, n in enumerate(region_names):
                r[i] = n
        for name, (dims, arr) in variables.items():
            for d, n in zip(dims, arr.shape, strict=True):
                if d not in nc.dimensions:
                    nc.createDimension(d, n)
            if "time" in dims and "time" not in nc.variables:
                t = nc.createVariable("time", "f8", ("time",))
                t.units, t.standard_name = "days since 2000-01-01", "time"
                t[:] = np.arange(arr.shape[0]) * 30.0
            a = np.asarray(arr, dtype=np.float64)
            if descending:
                a = a[..., ::-1, :]
            nc.createVariable(name, "f8", dims)[:] = a
        for k, fn in (extra or {}).items():
            fn(nc, k)
    return path


AREAS = {
    "north": _box_area(50, 90, -180, 180),
    "sahel": 0.5 * _box_area(10, 20, -20, 40),
    "tundra": _box_area(60, 80, 40, 180),
}


def _regions_file(tmp_path):
    north, sahel = _box(50, 90, -180, 180), _box(10, 20, -20, 40, 0.5)
    return _write(
        tmp_path / "m.nc",
        {
            "mask": (("region", "lat", "lon"), np.stack([north, sahel])),
            "tundra": (("lat", "lon"), _box(60, 80, 40, 180)),
        },
        region_names=["north", "sahel"],
    )


def test_region_dimension_and_2d_variables_all_read(tmp_path):
    m = RegionMask.from_file(_regions_file(tmp_path))
    assert m.names == ("north", "sahel", "tundra")
    for name, area in m.areas().items():
        assert area == pytest.approx(AREAS[name], rel=1e-12), name
    # where, not only how much: the file is stored north to south
    rows = np.flatnonzero(m.region("tundra").any(axis=1))
    cols = np.flatnonzero(m.region("tundra").any(axis=0))
    assert (m.grid.lat_bounds[rows[0], 0], m.grid.lat_bounds[rows[-1], 1]) == (60.0, 80.0)
    assert (m.grid.lon_bounds[cols[0], 0], m.grid.lon_bounds[cols[-1], 1]) == (40.0, 180.0)


def test_two_2d_variables_named_by_the_variable(tmp_path):
    """The layout that lost 'tundra' without a word (issue 16)."""
    path = _write(
        tmp_path / "two.nc",
        {
            "mask": (("lat", "lon"), _box(50, 90, -180, 180)),
            "tundra": (("lat", "lon"), _box(60, 80, 40, 180)),
        },
    )
    m = RegionMask.from_file(path)
    assert m.names == ("mask", "tundra")
    assert m.areas()["tundra"] == pytest.approx(AREAS["tundra"], rel=1e-12)


def test_regions_select_and_unknown_region(tmp_path):
    path = _regions_file(tmp_path)
    m = RegionMask.from_file(path, regions=["tundra", "north"])
    assert m.names == ("tundra", "north")
    assert m.areas()["north"] == pytest.approx(AREAS["north"], rel=1e-12)
    with pytest.raises(
        MaskError, match=r"m\.nc: no region 'taiga'; the file holds north, sahel, tundra"
    ):
        RegionMask.from_file(path, regions=["taiga"])


def test_a_data_file_given_as_mask_names_the_time_axis(tmp_path):
    data = np.random.default_rng(0).uniform(0, 3e-8, (12,) + G.shape)
    path = _write(tmp_path / "nbp.nc", {"nbp": (("time", "lat", "lon"), data)})
    with pytest.raises(MaskError) as ei:
        RegionMask.from_file(path)
    msg = str(ei.value)
    assert "nbp.nc" in msg and "'nbp'" in msg and "time axis 'time' (12 steps)" in msg
    assert "100" not in msg


@pytest.mark.parametrize(
    "values,hint",
    [(100.0, "divide it by 100"), (-3.0, "not a fraction mask"), (250.0, "not a fraction mask")],
)
def test_values_outside_0_1_name_the_variable(tmp_path, values, hint):
    f = _box(60, 80, 40, 180, values)
    path = _write(
        tmp_path / "p.nc",
        {"mask": (("lat", "lon"), _box(50, 90, -180, 180)), "pct": (("lat", "lon"), f)},
    )
    with pytest.raises(MaskError, match=rf"p\.nc: variable 'pct': values range over .*{hint}"):
        RegionMask.from_file(path)


def test_a_variable_on_another_grid_is_named(tmp_path):
    def other_grid(nc, _):
        nc.createDimension("lat2", 3)
        nc.createDimension("lon2", 4)
        v = nc.createVariable("lat2", "f8", ("lat2",))
        v.standard_name, v.units = "latitude", "degrees_north"
        v[:] = [-60.0, 0.0, 60.0]
        v = nc.createVariable("lon2", "f8", ("lon2",))
        v.standard_name, v.units = "longitude", "degrees_east"
        v[:] = [-135.0, -45.0, 45.0, 135.0]
        nc.createVariable("coarse", "f8", ("lat2", "lon2"))[:] = np.full((3, 4), 0.5)

    path = _write(
        tmp_path / "g.nc",
        {"mask": (("lat", "lon"), _box(50, 90, -180, 180))},
        extra={"x": other_grid},
    )
    with pytest.raises(
        MaskError,
        match=r"g\.nc: variable 'coarse' is on CellBounds\(3 x 4.*not on the grid of 'mask'",
    ):
        RegionMask.from_file(path)


@pytest.mark.parametrize("fill", [np.nan, 0.0])
def test_a_region_with_no_cell_inside_is_an_error(tmp_path, fill):
    path = _write(
        tmp_path / "e.nc",
        {
            "mask": (("lat", "lon"), _box(50, 90, -180, 180)),
            "empty": (("lat", "lon"), np.full(G.shape, fill)),
        },
    )
    with pytest.raises(MaskError, match=r"e\.nc: variable 'empty'.*'empty'") as ei:
        RegionMask.from_file(path)
    assert ("NaN" if np.isnan(fill) else "no cell inside") in str(ei.value)
    # selecting the other region does not help: the file is read whole, so its fault is seen
    assert RegionMask.from_file(path, variable="mask").names == ("mask",)


def test_check_nonempty_of_a_mask_built_in_memory():
    m = RegionMask(("a", "b"), np.stack([_box(50, 90, -180, 180), np.zeros(G.shape)]), G)
    with pytest.raises(MaskError, match=r"'b' have no cell inside"):
        m.check_nonempty()


@pytest.mark.parametrize("ny", [45, 90, 180])
def test_curvilinear_mask_is_refused_naming_the_file(tmp_path, ny):
    """2-D lat/lon on y/x: never read with row/column indices as degrees (issue 20.2)."""
    nx = 2 * ny
    lat1 = -90 + (np.arange(ny) + 0.5) * 180.0 / ny
    lon1 = -180 + (np.arange(nx) + 0.5) * 360.0 / nx
    lat2, lon2 = np.meshgrid(lat1, lon1, indexing="ij")
    path = tmp_path / f"curv{ny}.nc"
    with netCDF4.Dataset(path, "w") as nc:
        nc.createDimension("y", ny)
        nc.createDimension("x", nx)
        v = nc.createVariable("lat", "f8", ("y", "x"))
        v.standard_name, v.units = "latitude", "degrees_north"
        v[:] = lat2
        v = nc.createVariable("lon", "f8", ("y", "x"))
        v.standard_name, v.units = "longitude", "degrees_east"
        v[:] = lon2
        m = nc.createVariable("mask", "f8", ("y", "x"))
        m.coordinates = "lat lon"
        m[:] = (lat2 > 50).astype(float)
    with pytest.raises(MaskError) as ei:
        RegionMask.from_file(path)
    msg = str(ei.value)
    assert f"curv{ny}.nc" in msg and "curvilinear" in msg and "cdo remapcon" in msg
    assert "beyond" not in msg


def test_index_dimensions_are_not_degrees(tmp_path):
    path = tmp_path / "idx.nc"
    with netCDF4.Dataset(path, "w") as nc:
        nc.createDimension("y", 90)
        nc.createDimension("x", 180)
        nc.createVariable("mask", "f8", ("y", "x"))[:] = np.ones((90, 180))
    with pytest.raises(MaskError, match=r"idx\.nc.*'mask'.*no latitude dimension"):
        RegionMask.from_file(path)


def test_cli_run_prints_and_selects_regions(tmp_path):
    """`gridflux run --regions` reads the mask first and prints the regions it will compute."""
    from typer.testing import CliRunner

    from gridflux.cli import app

    mask = _regions_file(tmp_path)
    args = [
        "run",
        str(tmp_path / "no-catalog.json"),
        "--mask",
        str(mask),
        "--store",
        str(tmp_path / "s.zarr"),
        "--cluster",
        "none",
        "--no-progress",
    ]
    res = CliRunner().invoke(app, args + ["--regions", "tundra,north"])
    assert "regions (2): tundra, north" in res.output
    res = CliRunner().invoke(app, args)
    assert "regions (3): north, sahel, tundra" in res.output
    res = CliRunner().invoke(app, args + ["--regions", "taiga"])
    out = " ".join(res.output.split())  # rich wraps long lines
    assert res.exit_code != 0 and "m.nc: no region 'taiga'" in out and "regions (" not in out


def test_180_rows_of_index_degrees_name_the_file(tmp_path):
    """1-D 'latitude' values 0..179 (row numbers written as degrees): the error names the file."""
    path = tmp_path / "rows.nc"
    with netCDF4.Dataset(path, "w") as nc:
        nc.createDimension("lat", 180)
        nc.createDimension("lon", 360)
        v = nc.createVariable("lat", "f8", ("lat",))
        v.standard_name, v.units = "latitude", "degrees_north"
        v[:] = np.arange(180.0)
        v = nc.createVariable("lon", "f8", ("lon",))
        v.standard_name, v.units = "longitude", "degrees_east"
        v[:] = np.arange(360.0)
        nc.createVariable("mask", "f8", ("lat", "lon"))[:] = np.ones((180, 360))
    with pytest.raises(MaskError, match=r"rows\.nc: variable 'mask': 'lat': latitude 91 is beyond"):
        RegionMask.from_file(path)
