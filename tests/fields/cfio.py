"""Small CF-netCDF writers/readers for tests that talk to CDO and NCO (netCDF4 library only)."""

from __future__ import annotations

import os
import shutil
import subprocess

import numpy as np

from gridflux.kernels.grids import CellBounds


def write_cf(
    path: str | os.PathLike,
    grid: CellBounds,
    data: np.ndarray,
    *,
    name: str = "x",
    descending: bool = False,
    bounds: bool = True,
    swap_bounds_columns: bool = False,
    fill_value: float | None = None,
    lat_centres: np.ndarray | None = None,
    wrap_lon: bool = False,
) -> None:
    """Write ``data[..., lat, lon]`` (ascending lat, like ``grid``) as a CF file with lat/lon
    bounds.

    ``descending`` stores latitudes north to south (data and bounds flipped accordingly);
    ``bounds=False`` omits the bounds variables (readers must infer them); NaN values are
    written as ``fill_value`` (``_FillValue``/``missing_value``) when it is given;
    ``lat_centres`` (ascending) replaces the bounds midpoints as the latitude values (e.g. the
    Gaussian latitudes, which are not the midpoints of the Gauss-weight edges);
    ``wrap_lon`` stores longitude centres modulo 360 (each cell's bounds moved with it), so a
    grid whose first column is not at the smallest longitude wraps inside the file (e.g.
    181.875 ... 358.125, 1.875 ...).
    """
    import netCDF4

    lat = grid.lat if lat_centres is None else np.asarray(lat_centres, dtype=np.float64)
    lat_b, x = np.asarray(grid.lat_bounds), np.asarray(data, dtype=np.float64)
    if descending:
        lat, lat_b, x = lat[::-1], lat_b[::-1], x[..., ::-1, :]
    lon_c, lon_b = np.asarray(grid.lon), np.asarray(grid.lon_bounds)
    if wrap_lon:  # each cell moved by whole turns with its centre, as files store them
        turns = 360.0 * np.floor(lon_c / 360.0)
        lon_c, lon_b = lon_c - turns, lon_b - turns[:, None]
    if swap_bounds_columns:
        lat_b, lon_b = lat_b[:, ::-1], lon_b[:, ::-1]
    with netCDF4.Dataset(path, "w", format="NETCDF4") as nc:
        nc.Conventions = "CF-1.8"
        nc.createDimension("lat", grid.nlat)
        nc.createDimension("lon", grid.nlon)
        lead_dims = []
        if x.ndim == 3:
            nc.createDimension("time", x.shape[0])
            t = nc.createVariable("time", "f8", ("time",))
            t.units = "days since 2000-01-01"
            t.calendar = "standard"
            t[:] = np.arange(x.shape[0]) * 30.0
            lead_dims = ["time"]
        v = nc.createVariable("lat", "f8", ("lat",))
        v.units, v.standard_name, v.axis = "degrees_north", "latitude", "Y"
        v[:] = lat
        v = nc.createVariable("lon", "f8", ("lon",))
        v.units, v.standard_name, v.axis = "degrees_east", "longitude", "X"
        v[:] = lon_c
        if bounds:
            nc.createDimension("bnds", 2)
            nc["lat"].bounds = "lat_bnds"
            nc["lon"].bounds = "lon_bnds"
            nc.createVariable("lat_bnds", "f8", ("lat", "bnds"))[:] = lat_b
            nc.createVariable("lon_bnds", "f8", ("lon", "bnds"))[:] = lon_b
        if fill_value is not None:
            v = nc.createVariable(name, "f8", (*lead_dims, "lat", "lon"), fill_value=fill_value)
            v.missing_value = fill_value
            v[:] = np.where(np.isnan(x), fill_value, x)
        else:
            v = nc.createVariable(name, "f8", (*lead_dims, "lat", "lon"))
            v[:] = x


def read_var(path: str | os.PathLike, name: str = "x") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(data with NaN for missing, lat, lon)`` of one variable, as stored (no reordering)."""
    import netCDF4

    with netCDF4.Dataset(path) as nc:
        v = nc[name]
        v.set_auto_mask(True)
        data = np.ma.filled(v[:].astype(np.float64), np.nan)
        return data, np.asarray(nc["lat"][:], dtype=float), np.asarray(nc["lon"][:], dtype=float)


def griddes_lonlat(path: str | os.PathLike, grid: CellBounds) -> None:
    """A CDO grid description for a regular lat-lon grid (bounds are the midpoints, as CDO makes
    them)."""
    dlat = np.diff(grid.lat_bounds, axis=1).ravel()
    dlon = np.diff(grid.lon_bounds, axis=1).ravel()
    if np.ptp(dlat) > 1e-9 or np.ptp(dlon) > 1e-9:
        raise ValueError(f"{grid!r} is not regular: write a CF file with bounds instead")
    with open(path, "w") as f:
        f.write(
            "gridtype = lonlat\n"
            f"xsize = {grid.nlon}\nysize = {grid.nlat}\n"
            f"xfirst = {float(grid.lon[0])!r}\nxinc = {float(dlon[0])!r}\n"
            f"yfirst = {float(grid.lat[0])!r}\nyinc = {float(dlat[0])!r}\n"
        )


def run_tool(
    args: list[str], cwd: str | os.PathLike | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """Run an external tool; fail with its stderr if the exit status is not 0.

    CDO prints harmless ``HDF5-DIAG`` messages to stderr on files written by newer HDF5
    libraries, so stderr alone is not a failure.
    """
    full_env = None if env is None else {**os.environ, **env}
    proc = subprocess.run(args, cwd=cwd, env=full_env, capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        tail = "\n".join(
            line
            for line in proc.stderr.splitlines()
            if "HDF5" not in line and not line.startswith("  #")
        )
        raise AssertionError(
            f"{' '.join(map(str, args))} exited with {proc.returncode}:\n{tail[-2000:]}"
        )
    return proc


def which(tool: str) -> str | None:
    return shutil.which(tool)
