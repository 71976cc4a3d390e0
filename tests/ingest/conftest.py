"""Helpers for the ingest tests: tiny netCDF files written by hand with netCDF4."""

from __future__ import annotations

import netCDF4
import numpy as np
import pytest


def write_file(
    path,
    *,
    var="npp",
    units="kg m-2 s-1",
    data=None,
    lat=None,
    lon=None,
    time=None,
    time_units="days since 2000-01-01",
    calendar="noleap",
    cell_methods=None,
    lat_bounds=None,
    fill=1e20,
    nt=3,
):
    """Write a small CF file; returns its path. ``calendar=None`` leaves the attribute out."""
    lat = np.array([-45.0, 0.0, 45.0]) if lat is None else np.asarray(lat, dtype=float)
    lon = np.array([0.0, 90.0, 180.0, 270.0]) if lon is None else np.asarray(lon, dtype=float)
    if time is None:
        time = 15.0 + 30.0 * np.arange(nt)
    time = np.asarray(time, dtype=float)
    if data is None:
        data = np.arange(time.size * lat.size * lon.size, dtype=np.float32).reshape(
            time.size, lat.size, lon.size
        )
    with netCDF4.Dataset(path, "w") as nc:
        nc.createDimension("time", None)
        nc.createDimension("lat", lat.size)
        nc.createDimension("lon", lon.size)
        t = nc.createVariable("time", "f8", ("time",))
        t[:] = time
        t.units = time_units
        if calendar is not None:
            t.calendar = calendar
        v = nc.createVariable("lat", "f8", ("lat",))
        v[:] = lat
        v.units = "degrees_north"
        v = nc.createVariable("lon", "f8", ("lon",))
        v[:] = lon
        v.units = "degrees_east"
        if lat_bounds is not None:
            nc.createDimension("bnds", 2)
            nc["lat"].bounds = "lat_bnds"
            nc.createVariable("lat_bnds", "f8", ("lat", "bnds"))[:] = lat_bounds
        v = nc.createVariable(var, "f4", ("time", "lat", "lon"), fill_value=np.float32(fill))
        v[:] = data
        if units is not None:
            v.units = units
        if cell_methods:
            v.cell_methods = cell_methods
    return str(path)


@pytest.fixture
def ncfile(tmp_path):
    def make(name="f.nc", **kw):
        return write_file(tmp_path / name, **kw)

    return make
