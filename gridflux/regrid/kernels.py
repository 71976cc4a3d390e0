"""Exact first-order conservative regridding between rectilinear lat-lon grids (numpy/scipy).

For cells bounded by parallels and meridians the overlap area of a source cell ``i`` and a
destination cell ``j`` is separable::

    area(j ∩ i) = R^2 * overlap_lon(j, i) [radians] * overlap_sin_lat(j, i)

so the whole weight matrix is the Kronecker product of two small sparse 1-D matrices. They are
built by interval intersection in milliseconds, are exact to rounding, and are applied as
``Wlat @ X @ Wlon.T`` without ever forming the 2-D matrix. Hand-written because no library
exposes the separable form: xESMF/ESMF and CDO build the full 2-D matrix from polygon clipping
(seconds, and an optional non-PyPI dependency), xarray-regrid uses float32 weights and an
approximate spherical correction (see docs/regridding.md).

Normalisations follow ESMF:

* ``destarea``: ``W[j, i] = area(j ∩ i) / area(j)``: missing or uncovered source area counts as
  zero (mass conserving: ``sum_j W[j,i] area(j) = area(i)`` for fully covered ``i``).
* ``fracarea``: ``destarea`` divided by the destination coverage fraction
  ``frac_b[j] = sum_i area(j ∩ i) valid_i / area(j)``: an average over the covered part only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from gridflux.errors import WeightsError
from gridflux.grids import EARTH_RADIUS, CellBounds, lon_widths_radians, sin_band_widths

NORMALIZATIONS = ("destarea", "fracarea")


def interval_overlaps(
    dst_lo: np.ndarray, dst_hi: np.ndarray, src_lo: np.ndarray, src_hi: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs of overlapping intervals between two sorted, non-overlapping interval lists.

    Returns ``(dst_index, src_index, overlap_length)`` with positive lengths only. Each list
    must be sorted by its lower ends with non-overlapping intervals (gaps allowed).
    """
    # for each destination interval, the source intervals with hi > dst_lo and lo < dst_hi
    start = np.searchsorted(src_hi, dst_lo, side="right")
    stop = np.searchsorted(src_lo, dst_hi, side="left")
    counts = np.maximum(stop - start, 0)
    rows = np.repeat(np.arange(dst_lo.size), counts)
    offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    cols = np.repeat(start, counts) + offsets
    length = np.minimum(dst_hi[rows], src_hi[cols]) - np.maximum(dst_lo[rows], src_lo[cols])
    keep = length > 0
    return rows[keep], cols[keep], length[keep]


def lat_overlap_matrix(dst: CellBounds, src: CellBounds) -> sp.csr_matrix:
    """``(dst.nlat, src.nlat)`` sparse matrix of ``sin``-latitude overlaps (dimensionless).

    ``sin(min(north)) - sin(max(south))`` of each overlapping pair of rows: exact, not a
    difference of two precomputed sines of other cells.
    """
    rows, cols, _ = interval_overlaps(dst.lat_bounds[:, 0], dst.lat_bounds[:, 1], src.lat_bounds[:, 0], src.lat_bounds[:, 1])
    north = np.minimum(dst.lat_bounds[rows, 1], src.lat_bounds[cols, 1])
    south = np.maximum(dst.lat_bounds[rows, 0], src.lat_bounds[cols, 0])
    vals = np.sin(np.radians(north)) - np.sin(np.radians(south))
    return sp.csr_matrix((vals, (rows, cols)), shape=(dst.nlat, src.nlat))


def lon_overlap_matrix(dst: CellBounds, src: CellBounds) -> sp.csr_matrix:
    """``(dst.nlon, src.nlon)`` sparse matrix of longitude overlaps in radians, modulo 360.

    The source columns are replicated at every multiple of 360 degrees that can meet the
    destination's range, so any two longitude origins (0..360 vs -180..180, a first cell across
    the dateline) match. Duplicate pairs (huge cells meeting twice around the globe) are summed.
    """
    s_lo, s_hi = src.lon_bounds[:, 0], src.lon_bounds[:, 1]
    d_lo, d_hi = dst.lon_bounds[:, 0], dst.lon_bounds[:, 1]
    k_min = int(np.floor((d_lo[0] - s_hi[-1]) / 360.0))
    k_max = int(np.ceil((d_hi[-1] - s_lo[0]) / 360.0))
    all_rows, all_cols, all_len = [], [], []
    for k in range(k_min, k_max + 1):
        r, c, length = interval_overlaps(d_lo, d_hi, s_lo + 360.0 * k, s_hi + 360.0 * k)
        all_rows.append(r)
        all_cols.append(c)
        all_len.append(length)
    rows = np.concatenate(all_rows)
    cols = np.concatenate(all_cols)
    vals = np.radians(np.concatenate(all_len))
    m = sp.coo_matrix((vals, (rows, cols)), shape=(dst.nlon, src.nlon)).tocsr()
    m.sum_duplicates()
    return m


@dataclass(frozen=True, eq=False)
class SeparableWeights:
    """Exact conservative weights ``W = Wlat ⊗ Wlon`` between two lat-lon grids.

    Attributes
    ----------
    src, dst : CellBounds
    lat : (dst.nlat, src.nlat) csr, ``sin``-latitude overlaps / destination row ``sin`` width
    lon : (dst.nlon, src.nlon) csr, longitude overlaps / destination column width
    radius : float, m
        Sphere radius for areas (does not change the weights, only ``overlap_areas``).

    ``W[(jy, jx), (iy, ix)] = lat[jy, iy] * lon[jx, ix]`` is the ``destarea`` weight: the
    fraction of destination cell ``j`` covered by source cell ``i``.
    """

    src: CellBounds
    dst: CellBounds
    lat: sp.csr_matrix
    lon: sp.csr_matrix
    radius: float = EARTH_RADIUS

    @property
    def dst_fraction(self) -> np.ndarray:
        """Fraction of each destination cell covered by the source grid, shape ``dst.shape``."""
        return np.outer(np.asarray(self.lat.sum(axis=1)).ravel(), np.asarray(self.lon.sum(axis=1)).ravel())

    @property
    def src_fraction(self) -> np.ndarray:
        """Fraction of each source cell that lies inside the destination grid, shape ``src.shape``."""
        lat_src = np.asarray(self.lat_overlap.sum(axis=0)).ravel() / sin_band_widths(self.src)
        lon_src = np.asarray(self.lon_overlap.sum(axis=0)).ravel() / lon_widths_radians(self.src)
        return np.outer(lat_src, lon_src)

    @property
    def lat_overlap(self) -> sp.csr_matrix:
        """Un-normalised ``sin``-latitude overlaps (dst.nlat, src.nlat)."""
        return sp.diags(sin_band_widths(self.dst)) @ self.lat

    @property
    def lon_overlap(self) -> sp.csr_matrix:
        """Un-normalised longitude overlaps in radians (dst.nlon, src.nlon)."""
        return sp.diags(lon_widths_radians(self.dst)) @ self.lon

    def to_coo(self) -> sp.coo_matrix:
        """The full ``(dst.size, src.size)`` destarea weight matrix (C order cells: lat major).

        Only for interchange (ESMF/SCRIP files) and tests: application never forms it.
        """
        return sp.kron(self.lat, self.lon, format="coo")


def conservative_weights(src: CellBounds, dst: CellBounds, radius: float = EARTH_RADIUS) -> SeparableWeights:
    """Exact first-order conservative (``destarea``) weights from ``src`` to ``dst``.

    Works for any pair of rectilinear lat-lon grids, including grids covering only part of the
    globe (destination cells outside the source get zero weight and ``dst_fraction`` < 1).
    """
    lat = lat_overlap_matrix(dst, src)
    lon = lon_overlap_matrix(dst, src)
    lat = sp.diags(1.0 / sin_band_widths(dst)) @ lat
    lon = sp.diags(1.0 / lon_widths_radians(dst)) @ lon
    return SeparableWeights(src=src, dst=dst, lat=lat.tocsr(), lon=lon.tocsr(), radius=radius)


def apply_separable(weights: SeparableWeights, data: np.ndarray, *, normalization: str = "destarea") -> np.ndarray:
    """Regrid ``data[..., src.nlat, src.nlon]`` to ``[..., dst.nlat, dst.nlon]`` (float64).

    NaN source values are missing: with ``destarea`` they count as zero; with ``fracarea`` the
    result is the average over the valid covered part of each destination cell (NaN where no
    valid source covers it).
    """
    if normalization not in NORMALIZATIONS:
        raise WeightsError(f"normalization {normalization!r} is not one of {NORMALIZATIONS}")
    src, dst = weights.src, weights.dst
    data = np.asarray(data)
    if data.shape[-2:] != src.shape:
        raise WeightsError(
            f"data has trailing shape {data.shape[-2:]} but the weights' source grid is {src.shape} (lat, lon)"
        )
    lead = data.shape[:-2]
    x = data.reshape((-1,) + src.shape)
    valid = ~np.isnan(x)  # only NaN is missing; an inf propagates
    has_missing = not bool(valid.all())
    if has_missing:
        x = np.where(valid, x, 0.0)
    out = _apply_2d(weights, x)
    if normalization == "fracarea":
        frac = _apply_2d(weights, valid.astype(np.float64)) if has_missing else np.broadcast_to(weights.dst_fraction, out.shape)
        with np.errstate(invalid="ignore", divide="ignore"):
            out = np.where(frac > 0, out / np.where(frac > 0, frac, 1.0), np.nan)
    return out.reshape(lead + dst.shape)


def _apply_2d(weights: SeparableWeights, x: np.ndarray) -> np.ndarray:
    """``Wlat @ x[t] @ Wlon.T`` for every ``t`` of a (t, nlat, nlon) array, in float64."""
    nt = x.shape[0]
    src, dst = weights.src, weights.dst
    # longitude first: (t*nlat_s, nlon_s) @ Wlon.T -> (t*nlat_s, nlon_d)
    y = (weights.lon @ x.reshape(nt * src.nlat, src.nlon).T.astype(np.float64, copy=False)).T
    # then latitude: bring lat to the front -> (nlat_s, t*nlon_d)
    y = y.reshape(nt, src.nlat, dst.nlon).transpose(1, 0, 2).reshape(src.nlat, nt * dst.nlon)
    z = weights.lat @ y
    return np.ascontiguousarray(z.reshape(dst.nlat, nt, dst.nlon).transpose(1, 0, 2))


def native_weight_field(
    src: CellBounds,
    target: CellBounds,
    target_fraction: np.ndarray,
    radius: float = EARTH_RADIUS,
) -> np.ndarray:
    """Area weights (m2) on the source grid that fuse regrid -> mask -> area-sum into one dot product.

    ``target_fraction[..., target.nlat, target.nlon]`` is a (stack of) region fraction(s) on the
    target grid. The result ``w[..., src.nlat, src.nlon]`` satisfies, for any source field ``x``,
    ``sum(x * w) == sum(regrid_destarea(x) * target_fraction * cell_areas(target))``, because
    ``w[i] = sum_j target_fraction[j] * area(j ∩ i)``.
    """
    m = np.asarray(target_fraction, dtype=np.float64)
    if m.shape[-2:] != target.shape:
        raise WeightsError(f"mask has trailing shape {m.shape[-2:]}, target grid is {target.shape}")
    lat = lat_overlap_matrix(target, src)  # (nt_lat, ns_lat) sin overlaps
    lon = lon_overlap_matrix(target, src)  # (nt_lon, ns_lon) radians
    lead = m.shape[:-2]
    mm = m.reshape((-1,) + target.shape)
    out = np.empty((mm.shape[0],) + src.shape)
    for k in range(mm.shape[0]):
        out[k] = radius**2 * (lat.T @ (lon.T @ mm[k].T).T)
    return out.reshape(lead + src.shape)
