"""A small archive written here, with region totals computed independently of gridflux.

The mask is made of latitude-longitude boxes with a constant fraction each, so the exact
conservative total of a source field over a region is, per source cell ``i``,
``f_i * sum_boxes p_b * R^2 * overlap_lon(i, b) * overlap_sin_lat(i, b)`` -- rectangle
geometry written out below with plain loops, not gridflux's sparse kernels.
"""

from __future__ import annotations

import math
from pathlib import Path

import cftime
import numpy as np
import pytest
import xarray as xr

from gridflux.kernels.grids import EARTH_RADIUS, gaussian_grid, global_grid, regional_grid

# region -> list of boxes (south, north, west, east, fraction) on whole degrees
BOXES = {
    "north": [(50.0, 80.0, -180.0, 180.0, 1.0), (40.0, 50.0, -180.0, 180.0, 0.35)],
    "box": [
        (55.0, 65.0, -20.0, 80.0, 1.0),
        (60.0, 70.0, 170.0, 200.0, 0.5),
    ],  # second one crosses the dateline
}
SECONDS_PER_DAY = 86400.0
DAYS = {
    "noleap": [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31],
    "360_day": [30] * 12,
}


def box_mask_fractions(grid, regions: dict | None = None):
    """The BOXES mask (or ``regions``, boxes alike) on a 1-degree grid (cells aligned with the
    boxes)."""
    regions = BOXES if regions is None else regions
    f = np.zeros((len(regions),) + grid.shape)
    for k, boxes in enumerate(regions.values()):
        for s, n, w, e, p in boxes:
            rows = (grid.lat_bounds[:, 0] >= s) & (grid.lat_bounds[:, 1] <= n)
            lon_w = np.mod(grid.lon_bounds[:, 0] - w, 360.0)
            cols = lon_w + (grid.lon_bounds[:, 1] - grid.lon_bounds[:, 0]) <= (e - w) + 1e-9
            f[k][np.ix_(rows, cols)] = p
    return f


def _overlap_1d(a0, a1, b0, b1):
    return max(0.0, min(a1, b1) - max(a0, b0))


def _lon_overlap(w0, e0, w1, e1):
    """Overlap (degrees) of two longitude intervals modulo 360."""
    return sum(_overlap_1d(w0, e0, w1 + 360.0 * k, e1 + 360.0 * k) for k in (-2, -1, 0, 1, 2))


def region_cell_weights(grid, region):
    """m2 of each source cell inside ``region`` (exact rectangle overlaps on the sphere)."""
    w = np.zeros(grid.shape)
    for s, n, we, e, p in BOXES[region]:
        for i, (cs, cn) in enumerate(grid.lat_bounds):
            dsin = max(0.0, math.sin(math.radians(min(cn, n))) - math.sin(math.radians(max(cs, s))))
            if dsin == 0.0:
                continue
            for j, (cw, ce) in enumerate(grid.lon_bounds):
                dl = _lon_overlap(cw, ce, we, e)
                if dl:
                    w[i, j] += p * EARTH_RADIUS**2 * math.radians(dl) * dsin
    return w


def write_series(
    path,
    grid,
    values,
    calendar,
    start_year,
    *,
    descending=False,
    units="kg m-2 s-1",
    name="npp",
    bounds=True,
    deflate=False,
):
    """Write a CF file: ``values`` (months, lat, lon) float32 on ``grid`` (``deflate``: as CMOR
    writes, deflate level 1 + shuffle, one month per chunk)."""
    nmon = values.shape[0]
    times = [
        cftime.datetime(start_year + k // 12, k % 12 + 1, 15, calendar=calendar)
        for k in range(nmon)
    ]
    lat, lb = grid.lat, grid.lat_bounds
    data = values
    if descending:
        data, lat, lb = values[:, ::-1], lat[::-1], lb[::-1, ::-1]
    ds = xr.Dataset(
        {name: (("time", "lat", "lon"), data.astype("f4"), {"units": units})},
        coords={
            "time": times,
            "lat": ("lat", lat, {"units": "degrees_north", "standard_name": "latitude"}),
            "lon": ("lon", grid.lon, {"units": "degrees_east", "standard_name": "longitude"}),
        },
    )
    if bounds:
        ds["lat_bnds"] = (("lat", "bnds"), lb)
        ds["lon_bnds"] = (("lon", "bnds"), grid.lon_bounds)
        ds.lat.attrs["bounds"] = "lat_bnds"
        ds.lon.attrs["bounds"] = "lon_bnds"
    ds.time.encoding.update(units=f"days since {start_year}-01-01", calendar=calendar)
    if deflate:
        ds[name].encoding.update(
            zlib=True, complevel=1, shuffle=True, chunksizes=(1,) + data.shape[1:]
        )
    ds.to_netcdf(path)


SERIES = [
    # member source, grid, calendar, start, months, descending, sign (npp flips: positive into land)
    ("A", gaussian_grid(32), "noleap", 2000, 24, True),
    ("B", global_grid(2.0, 2.5, 0.0), "360_day", 2000, 36, False),
    ("C", regional_grid(30.0, 90.0, -180.0, 180.0, 1.5, 1.5), "noleap", 2001, 18, False),
]


@pytest.fixture(scope="session")
def mini_archive(tmp_path_factory):
    """Catalog, mask and independent truths for three npp series on three different grids."""
    from gridflux.fields.masks import RegionMask
    from gridflux.ingest.catalog import write_catalog

    root: Path = tmp_path_factory.mktemp("mini-archive")
    rng = np.random.default_rng(42)
    rows, truth = [], {}
    for k, (src, grid, cal, start, nmon, desc) in enumerate(SERIES):
        season = 1.0 + 0.5 * np.sin(2 * np.pi * np.arange(nmon) / 12.0)
        values = (rng.random((nmon,) + grid.shape) * 2e-8 * season[:, None, None]).astype("f4")
        fname = f"npp_{src}.nc"
        write_series(
            root / fname, grid, values, cal, start, descending=desc, deflate=src != "B"
        )  # both read paths
        rows.append(
            dict(
                ensemble="TEST",
                source_id=src,
                experiment="hist",
                member_id="r1",
                variable="npp",
                path=fname,
                layered_c=(k == 0),
                fire=(k != 0),
            )
        )
        secs = np.array([DAYS[cal][m % 12] * SECONDS_PER_DAY for m in range(nmon)])
        months = [(start + m // 12, m % 12 + 1) for m in range(nmon)]
        for region in BOXES:
            w = region_cell_weights(grid, region)
            # npp is positive into the land in the file: canonical (to atmosphere) is -values
            kg_per_s = -(values.astype(np.float64) * w).sum(axis=(1, 2))
            truth[(f"TEST.{src}.hist.r1", region)] = (months, kg_per_s * secs / 1e9)
    cat = write_catalog(rows, root / "catalog.json")
    mgrid = global_grid(1.0)
    RegionMask(tuple(BOXES), box_mask_fractions(mgrid), mgrid).to_netcdf(root / "mask.nc")
    return {"root": root, "catalog": str(cat), "mask": str(root / "mask.nc"), "truth": truth}
