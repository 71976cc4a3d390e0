"""Equivalent layouts of one field give the same totals (issue 20's review: held; pinned here).

One random field on a 2 x 2.5 degree grid written six ways: the reference (ascending latitude,
longitudes -180..180, bounds, ``(time, lat, lon)``, netCDF-4), descending latitude, longitudes
0..360, no bounds variables, transposed dimensions ``(time, lon, lat)`` and netCDF-3 classic. A
run over the six agrees with the independent truth (``conftest.region_cell_weights``) and the six
agree with each other to 1e-14 relative."""

from __future__ import annotations

import cftime
import numpy as np
import xarray as xr

from gridflux.kernels.grids import global_grid
from gridflux.pipeline.runner import run

from .conftest import BOXES, DAYS, SECONDS_PER_DAY, box_mask_fractions, region_cell_weights

GRID = global_grid(2.0, 2.5, -180.0)
NMON = 12


def _dataset(values, lat, lon, lat_b, lon_b, bounds=True):
    times = [cftime.datetime(2000, m + 1, 15, calendar="noleap") for m in range(NMON)]
    ds = xr.Dataset(
        {"npp": (("time", "lat", "lon"), values.astype("f4"), {"units": "kg m-2 s-1"})},
        coords={
            "time": times,
            "lat": ("lat", lat, {"units": "degrees_north", "standard_name": "latitude"}),
            "lon": ("lon", lon, {"units": "degrees_east", "standard_name": "longitude"}),
        },
    )
    if bounds:
        ds["lat_bnds"] = (("lat", "bnds"), lat_b)
        ds["lon_bnds"] = (("lon", "bnds"), lon_b)
        ds.lat.attrs["bounds"], ds.lon.attrs["bounds"] = "lat_bnds", "lon_bnds"
    ds.time.encoding.update(units="days since 2000-01-01", calendar="noleap")
    return ds


def test_six_layouts_of_one_field_agree(tmp_path):
    from gridflux.fields.masks import RegionMask
    from gridflux.ingest.catalog import write_catalog

    rng = np.random.default_rng(65)
    values = (rng.random((NMON,) + GRID.shape) * 2e-8).astype("f4")
    lat, lon, lat_b, lon_b = GRID.lat, GRID.lon, GRID.lat_bounds, GRID.lon_bounds
    half = GRID.nlon // 2  # 0..360: the eastern half first
    east = np.r_[lon[half:], lon[:half] + 360.0]
    east_b = np.r_[lon_b[half:], lon_b[:half] + 360.0]
    layouts = {
        "REF": (_dataset(values, lat, lon, lat_b, lon_b), "NETCDF4"),
        "DESC": (_dataset(values[:, ::-1], lat[::-1], lon, lat_b[::-1, ::-1], lon_b), "NETCDF4"),
        "EAST": (_dataset(np.roll(values, -half, axis=2), lat, east, lat_b, east_b), "NETCDF4"),
        "NOBNDS": (_dataset(values, lat, lon, lat_b, lon_b, bounds=False), "NETCDF4"),
        "TRANSP": (
            _dataset(values, lat, lon, lat_b, lon_b).transpose("time", "lon", "lat", ...),
            "NETCDF4",
        ),
        "NC3": (_dataset(values, lat, lon, lat_b, lon_b), "NETCDF3_CLASSIC"),
    }
    rows = []
    for src, (ds, fmt) in layouts.items():
        ds.to_netcdf(tmp_path / f"npp_{src}.nc", format=fmt)
        rows.append(
            dict(
                ensemble="TEST",
                source_id=src,
                experiment="hist",
                member_id="r1",
                variable="npp",
                path=f"npp_{src}.nc",
            )
        )
    cat = write_catalog(rows, tmp_path / "catalog.json")
    mgrid = global_grid(1.0)
    mask = RegionMask(tuple(BOXES), box_mask_fractions(mgrid), mgrid)
    store = tmp_path / "s.zarr"
    summary = run(str(cat), mask, str(store), cubes=False, progress=False)
    assert summary.ok and len(summary.done) == len(layouts), summary.failed
    totals = xr.open_zarr(store)["totals"].sel(variable="npp").load()
    secs = np.array([DAYS["noleap"][m] * SECONDS_PER_DAY for m in range(NMON)])
    for region in BOXES:
        w = region_cell_weights(GRID, region)
        want = -(values.astype(np.float64) * w).sum(axis=(1, 2)) * secs / 1e9
        ref = totals.sel(member="TEST.REF.hist.r1", region=region).values[:NMON]
        np.testing.assert_allclose(ref, want, rtol=1e-10)
        for src in layouts:
            got = totals.sel(member=f"TEST.{src}.hist.r1", region=region).values[:NMON]
            np.testing.assert_allclose(got, ref, rtol=1e-14, atol=0, err_msg=src)
