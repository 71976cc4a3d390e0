"""Synthetic region masks made of lat-lon boxes, and the exact box overlaps that give planted
truths.

Pure numpy, written independently of ``gridflux.kernels.grids``/``regrid``/``totals``: the planted
truth of a source field ``f`` (canonical kg m-2 s-1) in a region is

    sum_boxes p_b * sum_i f_i * A(cell_i ∩ box_b),
    A(cell ∩ box) = R^2 * overlap_lon(radians) * overlap(sin lat),

computed here directly per box, with longitudes compared modulo 360.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Earth radius (m), the value of gridflux.kernels.grids.EARTH_RADIUS (ESMF / CMIP areacella).
R_EARTH = 6371007.181


@dataclass(frozen=True)
class Box:
    """A lat-lon box in whole degrees (``west < east`` within -180..180) with a constant fraction
    ``p``."""

    south: float
    north: float
    west: float
    east: float
    p: float


#: Regions as unions of non-overlapping boxes (a core at p=1, edge boxes at p=0.35), some
#: crossing the date line as two boxes.
REGIONS: dict[str, tuple[Box, ...]] = {
    "permafrost": (
        Box(60, 80, -170, -60, 1.0),
        Box(55, 60, -170, -60, 0.35),
        Box(60, 80, 60, 180, 1.0),
        Box(80, 84, 60, 180, 0.35),
        Box(60, 75, -180, -170, 1.0),
    ),
    "tundra": (
        Box(66, 80, -170, -60, 1.0),
        Box(64, 66, -170, -60, 0.35),
        Box(66, 78, 120, 180, 1.0),
        Box(66, 78, -180, -170, 1.0),
    ),
    "boreal": (
        Box(50, 66, -170, -60, 1.0),
        Box(48, 50, -170, -60, 0.35),
        Box(50, 66, 30, 180, 1.0),
        Box(46, 50, 30, 180, 0.35),
    ),
}


def lat_overlap_sin(lat_bounds: np.ndarray, south: float, north: float) -> np.ndarray:
    """``sin`` extent of each row ``[s, n]`` inside ``[south, north]`` (degrees in, unitless
    out)."""
    lo = np.maximum(lat_bounds[:, 0], south)
    hi = np.minimum(lat_bounds[:, 1], north)
    return np.where(hi > lo, np.sin(np.radians(hi)) - np.sin(np.radians(lo)), 0.0)


def lon_overlap_rad(lon_bounds: np.ndarray, west: float, east: float) -> np.ndarray:
    """Overlap (radians) of each column ``[w, e]`` with ``[west, east]``, modulo 360."""
    total = np.zeros(lon_bounds.shape[0])
    for k in range(-3, 4):
        lo = np.maximum(lon_bounds[:, 0], west + 360.0 * k)
        hi = np.minimum(lon_bounds[:, 1], east + 360.0 * k)
        total += np.where(hi > lo, hi - lo, 0.0)
    return np.radians(total)


def region_weights(
    lat_bounds: np.ndarray, lon_bounds: np.ndarray, boxes: tuple[Box, ...], radius: float = R_EARTH
) -> np.ndarray:
    """(nlat, nlon) m2: ``sum_b p_b * A(cell ∩ box_b)`` for source cells given by their bounds."""
    w = np.zeros((lat_bounds.shape[0], lon_bounds.shape[0]))
    for b in boxes:
        w += b.p * np.outer(
            lat_overlap_sin(lat_bounds, b.south, b.north),
            lon_overlap_rad(lon_bounds, b.west, b.east),
        )
    return radius**2 * w


def mask_array(
    regions: dict[str, tuple[Box, ...]] = REGIONS,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The region mask on the global 1-degree grid: (mask (region, 180, 360), lat centres, lon
    centres)."""
    lat = np.arange(-89.5, 90.0, 1.0)
    lon = np.arange(-179.5, 180.0, 1.0)
    out = np.zeros((len(regions), lat.size, lon.size))
    for r, boxes in enumerate(regions.values()):
        for b in boxes:
            rows = (lat > b.south) & (lat < b.north)
            cols = (lon > b.west) & (lon < b.east)
            block = out[r][np.ix_(rows, cols)]
            if np.any(block != 0):
                raise ValueError(f"boxes of region {list(regions)[r]!r} overlap")
            out[r][np.ix_(rows, cols)] = b.p
    return out, lat, lon


def write_latlon(
    nc,
    lat: np.ndarray,
    lon: np.ndarray,
    lat_b: np.ndarray | None = None,
    lon_b: np.ndarray | None = None,
) -> None:
    """CF ``lat``/``lon`` coordinate variables (dimensions already created) and, when given, their
    ``lat_bnds``/``lon_bnds`` (creating the ``bnds`` dimension if needed) in an open netCDF4
    file."""
    v = nc.createVariable("lat", "f8", ("lat",))
    v[:] = lat
    v.setncatts({"standard_name": "latitude", "units": "degrees_north", "axis": "Y"})
    v = nc.createVariable("lon", "f8", ("lon",))
    v[:] = lon
    v.setncatts({"standard_name": "longitude", "units": "degrees_east", "axis": "X"})
    if lat_b is None or lon_b is None:
        return
    if "bnds" not in nc.dimensions:
        nc.createDimension("bnds", 2)
    nc["lat"].bounds = "lat_bnds"
    nc["lon"].bounds = "lon_bnds"
    nc.createVariable("lat_bnds", "f8", ("lat", "bnds"))[:] = lat_b
    nc.createVariable("lon_bnds", "f8", ("lon", "bnds"))[:] = lon_b


def write_mask(path: str, regions: dict[str, tuple[Box, ...]] = REGIONS) -> str:
    """Write the REGION MASK netCDF: ``mask (region, lat, lon)`` float64 in [0, 1] + bounds."""
    import netCDF4

    m, lat, lon = mask_array(regions)
    with netCDF4.Dataset(path, "w") as nc:
        nc.createDimension("region", len(regions))
        nc.createDimension("lat", lat.size)
        nc.createDimension("lon", lon.size)
        nc.createDimension("bnds", 2)
        v = nc.createVariable("region", str, ("region",))
        for i, name in enumerate(regions):
            v[i] = name
        write_latlon(
            nc,
            lat,
            lon,
            np.column_stack([lat - 0.5, lat + 0.5]),
            np.column_stack([lon - 0.5, lon + 0.5]),
        )
        v = nc.createVariable("mask", "f8", ("region", "lat", "lon"))
        v[:] = m
        v.setncatts(
            {
                "long_name": "fraction of the cell in the region",
                "units": "1",
                "valid_min": 0.0,
                "valid_max": 1.0,
            }
        )
        nc.setncatts(
            {
                "title": "gridflux synthetic region mask (unions of lat-lon boxes)",
                "Conventions": "CF-1.8",
            }
        )
    return path
