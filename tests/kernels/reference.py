"""Independent reference computations for the kernel tests.

Written from the spherical-rectangle formula with plain Python loops and ``math``; nothing here
calls gridflux, so tests that compare gridflux against these helpers compare two independent
implementations of the same closed form.

All angles in degrees, areas in m2 (or in units of R^2 when ``radius=1``).
"""

from __future__ import annotations

import math

import numpy as np

R_ESMF = 6371007.181
R_CDO = 6371000.0


def sphere_area(radius: float = R_ESMF) -> float:
    """Closed-form area of the whole sphere."""
    return 4.0 * math.pi * radius**2


def rect_area(south: float, north: float, west: float, east: float, radius: float = 1.0) -> float:
    """Area of the spherical rectangle bounded by two parallels and two meridians."""
    return (
        radius**2
        * math.radians(east - west)
        * (math.sin(math.radians(north)) - math.sin(math.radians(south)))
    )


def ref_cell_areas(lat_edges_sn, lon_edges_we, radius: float = 1.0) -> np.ndarray:
    """Cell areas from (nlat, 2) and (nlon, 2) edge arrays: outer product of the rectangle
    formula."""
    lat_b = np.asarray(lat_edges_sn, dtype=float)
    lon_b = np.asarray(lon_edges_we, dtype=float)
    dsin = np.array([math.sin(math.radians(n)) - math.sin(math.radians(s)) for s, n in lat_b])
    dlon = np.array([math.radians(e - w) for w, e in lon_b])
    return radius**2 * dsin[:, None] * dlon[None, :]


def overlap_1d(a_lo: float, a_hi: float, b_lo: float, b_hi: float) -> float:
    """Length of the intersection of two intervals (0 if disjoint)."""
    return max(0.0, min(a_hi, b_hi) - max(a_lo, b_lo))


def lon_overlap_deg(a_w: float, a_e: float, b_w: float, b_e: float) -> float:
    """Overlap in degrees of two longitude intervals on the circle (each <= 360 wide).

    Tries every shift of ``b`` by a multiple of 360 that could meet ``a`` and adds them up.
    """
    total = 0.0
    for k in range(-3, 4):
        total += overlap_1d(a_w, a_e, b_w + 360.0 * k, b_e + 360.0 * k)
    return total


def brute_destarea_weights(src_lat, src_lon, dst_lat, dst_lon) -> np.ndarray:
    """Dense ``(dst.size, src.size)`` matrix of ``area(j ∩ i) / area(j)`` by looping over cell
    pairs.

    Cells are flattened in C order (latitude major), as gridflux's ``to_coo`` documents.
    """
    src_lat = np.asarray(src_lat, float)
    src_lon = np.asarray(src_lon, float)
    dst_lat = np.asarray(dst_lat, float)
    dst_lon = np.asarray(dst_lon, float)
    ns_lat, ns_lon = src_lat.shape[0], src_lon.shape[0]
    nd_lat, nd_lon = dst_lat.shape[0], dst_lon.shape[0]
    w = np.zeros((nd_lat * nd_lon, ns_lat * ns_lon))
    for jy in range(nd_lat):
        ds, dn = dst_lat[jy]
        for jx in range(nd_lon):
            dw, de = dst_lon[jx]
            a_dst = rect_area(ds, dn, dw, de)
            for iy in range(ns_lat):
                ss, sn = src_lat[iy]
                s_, n_ = max(ds, ss), min(dn, sn)
                if n_ <= s_:
                    continue
                sin_ov = math.sin(math.radians(n_)) - math.sin(math.radians(s_))
                for ix in range(ns_lon):
                    sw, se = src_lon[ix]
                    lon_ov = lon_overlap_deg(dw, de, sw, se)
                    if lon_ov > 0:
                        w[jy * nd_lon + jx, iy * ns_lon + ix] = (
                            math.radians(lon_ov) * sin_ov / a_dst
                        )
    return w


# -- exact cell means of analytic fields ------------------------------------------------------
def mean_sinlat(lat_b) -> np.ndarray:
    """Exact area-weighted mean of ``sin(lat)`` over each row ``[s, n]`` (shape (nlat,)).

    ``∫ sin φ cos φ dφ / ∫ cos φ dφ = (sin² n - sin² s) / (2 (sin n - sin s)) = (sin n + sin s) /
    2``.
    """
    lat_b = np.asarray(lat_b, float)
    out = np.empty(lat_b.shape[0])
    for k, (s, n) in enumerate(lat_b):
        ss, sn = math.sin(math.radians(s)), math.sin(math.radians(n))
        out[k] = (sn * sn - ss * ss) / (2.0 * (sn - ss))
    return out


def mean_coslon(lon_b) -> np.ndarray:
    """Exact mean of ``cos(lon)`` over each column ``[w, e]``: ``(sin e - sin w) / (e - w)``
    (radians)."""
    lon_b = np.asarray(lon_b, float)
    out = np.empty(lon_b.shape[0])
    for k, (w, e) in enumerate(lon_b):
        out[k] = (math.sin(math.radians(e)) - math.sin(math.radians(w))) / math.radians(e - w)
    return out


def integral_sinlat_coslon(s: float, n: float, w: float, e: float, radius: float = 1.0) -> float:
    """``∫∫ sin φ cos λ R² cos φ dφ dλ`` over ``[s, n] x [w, e]``."""
    ss, sn = math.sin(math.radians(s)), math.sin(math.radians(n))
    return (
        radius**2
        * 0.5
        * (sn * sn - ss * ss)
        * (math.sin(math.radians(e)) - math.sin(math.radians(w)))
    )


def integral_sinlat(
    s: float, n: float, w: float = 0.0, e: float = 360.0, radius: float = 1.0
) -> float:
    """``∫∫ sin φ R² cos φ dφ dλ`` over ``[s, n] x [w, e]``."""
    ss, sn = math.sin(math.radians(s)), math.sin(math.radians(n))
    return radius**2 * 0.5 * (sn * sn - ss * ss) * math.radians(e - w)


def regular_edges(start: float, stop: float, step: float) -> np.ndarray:
    """``(n, 2)`` bounds of consecutive cells of width ``step`` from ``start`` to ``stop``."""
    n = int(round((stop - start) / step))
    e = start + step * np.arange(n + 1)
    e[-1] = stop
    return np.column_stack([e[:-1], e[1:]])
