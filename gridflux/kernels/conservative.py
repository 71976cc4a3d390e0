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
from functools import cached_property

import numpy as np

from gridflux.errors import WeightsError
from gridflux.kernels.grids import EARTH_RADIUS, CellBounds, lon_widths_radians, sin_band_widths

NORMALIZATIONS = ("destarea", "fracarea")
#: Bytes of float64 scratch per piece of a block (a few rows at a time) in
#: ``fields.totals.weighted_sums`` and ``fields.statistics``: small enough to stay in L2/L3 cache.
PIECE_BYTES = 2 * 1024 * 1024
#: Bytes of float64 scratch per piece of a block in the regrid (a run of whole time steps, sized by
#: the larger of the rows read and the rows written, so that a piece's products stay in L2 cache):
#: onto the clipped 0.5 deg target 0.12-0.23 ms per month at 512 KiB (one month per piece),
#: 0.37-0.46 at 2 MiB (docs/benchmarks.md, "The cube path"). The size does not change a result.
REGRID_PIECE_BYTES = 512 * 1024
#: Rows of a 1-D overlap matrix with at most this many entries are applied slot by slot
#: (:meth:`Overlap1D.apply`): one gather and multiply per slot, summed in the order
#: ``np.add.reduceat`` sums a segment of at most 8 terms (the first plus the sequential sum of the
#: rest), so the result is bit for bit that of the gather + ``reduceat`` product, 3-10x faster on
#: the up- and down-sampling a target grid meets (1-3 entries per row; figures:
#: docs/benchmarks.md, "The cube path"). Longer rows (a 0.05 deg source on a 0.5 deg target) keep
#: the ``reduceat``, which sums a longer segment pairwise.
SLOTS_MAX = 8


@dataclass(frozen=True, eq=False)
class Overlap1D:
    """A small sparse ``(n_out, n_in)`` matrix in CSR form, numpy only.

    Written here rather than taken from ``scipy.sparse`` for two reasons measured in the
    benchmarks: importing ``scipy.sparse`` costs ~0.1 s per process (more than the fused totals of
    a 10-year 0.5 deg member), and applying a 1-D matrix along one axis of a block by gather +
    ``np.add.reduceat`` needs no transposed float64 copies of the block.
    """

    indptr: np.ndarray
    indices: np.ndarray
    data: np.ndarray
    shape: tuple[int, int]

    @classmethod
    def from_triplets(
        cls, rows: np.ndarray, cols: np.ndarray, vals: np.ndarray, shape: tuple[int, int]
    ) -> Overlap1D:
        """Build from (row, col, value) triplets; duplicate pairs are summed."""
        n_out, n_in = shape
        key = rows.astype(np.int64) * n_in + cols.astype(np.int64)
        uniq, inv = np.unique(key, return_inverse=True)
        data = np.bincount(inv, weights=vals, minlength=uniq.size).astype(np.float64)
        r, c = uniq // n_in, uniq % n_in
        indptr = np.concatenate([[0], np.cumsum(np.bincount(r, minlength=n_out))]).astype(np.int64)
        return cls(indptr, c.astype(np.int64), data, (int(n_out), int(n_in)))

    @property
    def rows(self) -> np.ndarray:
        return np.repeat(np.arange(self.shape[0]), np.diff(self.indptr))

    def scale_rows(self, factors: np.ndarray) -> Overlap1D:
        return Overlap1D(
            self.indptr,
            self.indices,
            self.data * np.repeat(factors, np.diff(self.indptr)),
            self.shape,
        )

    def transpose(self) -> Overlap1D:
        return Overlap1D.from_triplets(
            self.indices, self.rows, self.data, (self.shape[1], self.shape[0])
        )

    def row_sums(self) -> np.ndarray:
        return np.bincount(self.rows, weights=self.data, minlength=self.shape[0])

    def col_sums(self) -> np.ndarray:
        return np.bincount(self.indices, weights=self.data, minlength=self.shape[1])

    def toarray(self) -> np.ndarray:
        out = np.zeros(self.shape)
        np.add.at(out, (self.rows, self.indices), self.data)
        return out

    def column_range(self) -> tuple[int, int]:
        """The smallest ``[first, last)`` range of input indices that any row uses."""
        if self.indices.size == 0:
            return 0, 0
        return int(self.indices.min()), int(self.indices.max()) + 1

    def shift_columns(self, first: int, n_in: int) -> Overlap1D:
        """The same matrix acting on inputs ``first .. first + n_in`` only."""
        return Overlap1D(self.indptr, self.indices - first, self.data, (self.shape[0], n_in))

    def to_scipy(self):
        """The matrix as ``scipy.sparse.csr_matrix`` (imported here, only when asked for)."""
        import scipy.sparse as sp

        return sp.csr_matrix((self.data, self.indices, self.indptr), shape=self.shape)

    @cached_property
    def slots(self) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """The matrix as ``(count, cols, weights)`` padded to the longest row (``cols`` and
        ``weights`` of shape ``(slot, n_out)``; padding: column 0, weight 0, never added), or None
        when a row has more than :data:`SLOTS_MAX` entries."""
        counts = np.diff(self.indptr)
        k = int(counts.max()) if counts.size else 0
        if k > SLOTS_MAX:
            return None
        cols = np.zeros((k, self.shape[0]), dtype=np.int64)
        weights = np.zeros((k, self.shape[0]))
        for slot in range(k):
            rows = np.flatnonzero(counts > slot)
            cols[slot, rows] = self.indices[self.indptr[rows] + slot]
            weights[slot, rows] = self.data[self.indptr[rows] + slot]
        return counts, cols, weights

    def _checked_axis(self, x: np.ndarray, axis: int) -> int:
        """``axis`` as a non-negative index, after checking that it has the matrix's input
        length."""
        axis = axis % x.ndim
        if x.shape[axis] != self.shape[1]:
            raise WeightsError(
                f"axis {axis} of the data has {x.shape[axis]} cells, the weights expect "
                f"{self.shape[1]}"
            )
        return axis

    def apply(self, x: np.ndarray, axis: int = -1) -> np.ndarray:
        """``y[..., j, ...] = sum_i A[j, i] x[..., i, ...]`` along ``axis``, in float64.

        Only stored entries are multiplied (an inf reaches only the outputs it overlaps; a row
        without entries is +0). Rows of at most :data:`SLOTS_MAX` entries are summed slot by slot
        (:attr:`slots`), bit for bit as the gather + ``np.add.reduceat`` used for longer rows."""
        axis = self._checked_axis(x, axis)
        slots = self.slots
        if slots is not None:
            return self._apply_slots(x, axis, *slots)
        bshape = [1] * x.ndim
        bshape[axis] = self.data.size
        gathered = np.take(x, self.indices, axis=axis) * self.data.reshape(bshape)
        out_shape = list(x.shape)
        out_shape[axis] = self.shape[0]
        nonempty = np.flatnonzero(np.diff(self.indptr) > 0)
        if nonempty.size == self.shape[0]:
            return np.add.reduceat(gathered, self.indptr[:-1], axis=axis)
        out = np.zeros(out_shape)
        if nonempty.size:
            idx: list[slice | np.ndarray] = [slice(None)] * x.ndim
            idx[axis] = nonempty
            out[tuple(idx)] = np.add.reduceat(gathered, self.indptr[nonempty], axis=axis)
        return out

    def _apply_slots(
        self, x: np.ndarray, axis: int, counts: np.ndarray, cols: np.ndarray, weights: np.ndarray
    ) -> np.ndarray:
        """:meth:`apply` by slots: ``t_k = x[cols[k]] * weights[k]``, then ``t_0 + (t_1 + t_2 +
        ...)`` where a row has that many entries (``np.add.reduceat``'s order for <= 8 terms)."""
        bshape = [1] * x.ndim
        bshape[axis] = self.shape[0]
        nslot = cols.shape[0]
        out_shape = list(x.shape)
        out_shape[axis] = self.shape[0]
        out = np.empty(out_shape)
        if nslot == 0:
            out.fill(0.0)
            return out
        # in place, into two buffers: fresh temporaries of a block's size cost more (page faults)
        # than the arithmetic; the gathers keep the input's dtype, the products are float64
        gathered = np.empty(out_shape, dtype=x.dtype)
        rest = np.empty(out_shape) if nslot > 1 else out

        def term(k: int, into: np.ndarray) -> None:
            np.take(x, cols[k], axis=axis, out=gathered, mode="clip")  # indices valid: no checks
            np.multiply(gathered, weights[k].reshape(bshape), out=into)

        with np.errstate(invalid="ignore"):  # 0 * inf in padding slots, never added
            term(0, out)
            if not np.all(counts > 0):  # rows without entries are +0 (padding times inf is NaN)
                np.copyto(out, 0.0, where=(counts == 0).reshape(bshape))
            if nslot == 1:
                return out
            term(1, rest)
            if nslot > 2:
                more = np.empty(out_shape)
                for k in range(2, nslot):
                    term(k, more)
                    np.add(rest, more, out=rest, where=(counts > k).reshape(bshape))
            np.add(out, rest, out=out, where=(counts > 1).reshape(bshape))
        return out


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


def lat_overlap_matrix(dst: CellBounds, src: CellBounds) -> Overlap1D:
    """``(dst.nlat, src.nlat)`` sparse matrix of ``sin``-latitude overlaps (dimensionless).

    ``sin(min(north)) - sin(max(south))`` of each overlapping pair of rows: exact, not a
    difference of two precomputed sines of other cells.
    """
    rows, cols, _ = interval_overlaps(
        dst.lat_bounds[:, 0], dst.lat_bounds[:, 1], src.lat_bounds[:, 0], src.lat_bounds[:, 1]
    )
    north = np.minimum(dst.lat_bounds[rows, 1], src.lat_bounds[cols, 1])
    south = np.maximum(dst.lat_bounds[rows, 0], src.lat_bounds[cols, 0])
    vals = np.sin(np.radians(north)) - np.sin(np.radians(south))
    return Overlap1D.from_triplets(rows, cols, vals, (dst.nlat, src.nlat))


def lon_overlap_matrix(dst: CellBounds, src: CellBounds) -> Overlap1D:
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
        # shift the destination (usually a regular grid with round edges) into the source's frame:
        # its shifted edges stay exact more often than a shifted source's, keeping overlaps of
        # tiny cells near 360 degrees exact to rounding
        r, c, length = interval_overlaps(d_lo - 360.0 * k, d_hi - 360.0 * k, s_lo, s_hi)
        all_rows.append(r)
        all_cols.append(c)
        all_len.append(length)
    rows = np.concatenate(all_rows)
    cols = np.concatenate(all_cols)
    vals = np.radians(np.concatenate(all_len))
    return Overlap1D.from_triplets(rows, cols, vals, (dst.nlon, src.nlon))


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
    lat: Overlap1D
    lon: Overlap1D
    radius: float = EARTH_RADIUS

    @property
    def dst_fraction(self) -> np.ndarray:
        """Fraction of each destination cell covered by the source grid, shape ``dst.shape``."""
        return np.outer(self.lat.row_sums(), self.lon.row_sums())

    @property
    def src_fraction(self) -> np.ndarray:
        """Fraction of each source cell that lies inside the destination grid, shape
        ``src.shape``."""
        lat_src = self.lat_overlap.col_sums() / sin_band_widths(self.src)
        lon_src = self.lon_overlap.col_sums() / lon_widths_radians(self.src)
        return np.outer(lat_src, lon_src)

    @property
    def lat_overlap(self) -> Overlap1D:
        """Un-normalised ``sin``-latitude overlaps (dst.nlat, src.nlat)."""
        return self.lat.scale_rows(sin_band_widths(self.dst))

    @property
    def lon_overlap(self) -> Overlap1D:
        """Un-normalised longitude overlaps in radians (dst.nlon, src.nlon)."""
        return self.lon.scale_rows(lon_widths_radians(self.dst))

    @cached_property
    def cell_selection(self) -> tuple[np.ndarray, np.ndarray] | None:
        """``(source rows, source columns)`` when every destination cell lies within one source cell
        (the same cells: a 0.5 deg model on the 0.5 deg target, clipped or shifted in longitude; or
        a nested finer target: a 1 deg model on 0.5 deg), else None.

        A weight is then 1 up to the rounding of ``overlap / width`` (some are 1 - 2**-53): within 4
        float64 ulps of 1, a float32 value times it rounds back to the same float32, so picking the
        cells is bit-identical to the weighted sum whenever input and output are float32 (7x faster
        on a 0.5 deg month: 0.07 vs 0.5 ms)."""
        ops = (self.lat, self.lon)
        one_each = all(
            np.all(np.diff(op.indptr) == 1)
            and np.all(np.abs(op.data - 1.0) <= 4 * np.finfo(np.float64).eps)
            for op in ops
        )
        return (self.lat.indices, self.lon.indices) if one_each else None

    @cached_property
    def source_rows(self) -> tuple[int, int, Overlap1D]:
        """``(first, stop, lat)``: the source rows that reach the destination and the latitude
        matrix
        acting on those rows only."""
        r0, r1 = self.lat.column_range()
        return r0, r1, self.lat.shift_columns(r0, r1 - r0)

    def to_coo(self):
        """The full ``(dst.size, src.size)`` destarea weight matrix (C order cells: lat major),
        as ``scipy.sparse.coo_matrix``. Only for interchange (ESMF/SCRIP files) and tests:
        application never forms it."""
        import scipy.sparse as sp

        return sp.kron(self.lat.to_scipy(), self.lon.to_scipy(), format="coo")


def conservative_weights(
    src: CellBounds, dst: CellBounds, radius: float = EARTH_RADIUS
) -> SeparableWeights:
    """Exact first-order conservative (``destarea``) weights from ``src`` to ``dst``.

    Works for any pair of rectilinear lat-lon grids, including grids covering only part of the
    globe (destination cells outside the source get zero weight and ``dst_fraction`` < 1).
    """
    lat = lat_overlap_matrix(dst, src).scale_rows(1.0 / sin_band_widths(dst))
    lon = lon_overlap_matrix(dst, src).scale_rows(1.0 / lon_widths_radians(dst))
    return SeparableWeights(src=src, dst=dst, lat=lat, lon=lon, radius=radius)


def apply_separable(
    weights: SeparableWeights,
    data: np.ndarray,
    *,
    normalization: str = "destarea",
    out_dtype=np.float64,
) -> np.ndarray:
    """Regrid ``data[..., src.nlat, src.nlon]`` to ``[..., dst.nlat, dst.nlon]``.

    NaN source values are missing: with ``destarea`` they count as zero; with ``fracarea`` the
    result is the average over the valid covered part of each destination cell (NaN where no
    valid source covers it). Sums are formed in float64; ``out_dtype`` is the stored type (e.g.
    float32 for cubes). The block is processed a few time steps at a time, and only the source
    rows that reach the destination are touched, so no float64 copy of the whole block is made.
    To float32 with ``destarea``, where every destination cell lies within one source cell, the
    cells are picked instead (:attr:`SeparableWeights.cell_selection`, 3-10x faster): from float32
    (or float16) input the same bits as the weighted sum; from float64 input the float32 of the
    containing cell's value, which is the exact regridded value (its weight is 1; the weighted
    sum multiplies by a computed weight that may be ``1 - 2**-53``, which changes the float32 only
    for a value within one float64 ulp of a float32 rounding boundary).
    """
    if normalization not in NORMALIZATIONS:
        raise WeightsError(f"normalization {normalization!r} is not one of {NORMALIZATIONS}")
    src, dst = weights.src, weights.dst
    data = np.asarray(data)
    if data.shape[-2:] != src.shape:
        raise WeightsError(
            f"data has trailing shape {data.shape[-2:]} but the weights' source grid is "
            f"{src.shape} (lat, lon)"
        )
    lead = data.shape[:-2]
    x = data.reshape((-1,) + src.shape)
    picks = (
        weights.cell_selection
        if normalization == "destarea" and _float32_in_out(x.dtype, out_dtype)
        else None
    )
    if picks is not None:
        out = _apply_selection(x, picks, out_dtype)
    else:
        out = _apply_weighted_sum(weights, x, normalization, out_dtype)
    return out.reshape(lead + dst.shape)


def _apply_weighted_sum(
    weights: SeparableWeights, x: np.ndarray, normalization: str, out_dtype
) -> np.ndarray:
    """``x[t, src.nlat, src.nlon]`` -> ``[t, dst.nlat, dst.nlon]`` by the separable weighted sum."""
    src, dst = weights.src, weights.dst
    nt = x.shape[0]
    r0, r1, lat = weights.source_rows
    out = np.empty((nt,) + dst.shape, dtype=out_dtype)
    step = max(1, REGRID_PIECE_BYTES // (8 * max(1, r1 - r0, dst.nlat) * max(src.nlon, dst.nlon)))
    # only read (and only computed) under fracarea normalisation
    dst_frac = weights.dst_fraction if normalization == "fracarea" else np.ones(0)
    for t0 in range(0, nt, step):
        piece = x[t0 : t0 + step, r0:r1, :]
        missing = np.isnan(piece)
        has_missing = bool(missing.any())
        if has_missing:
            piece = np.where(missing, 0.0, piece)
        z = lat.apply(weights.lon.apply(piece, axis=-1), axis=-2)
        if normalization == "fracarea":
            if has_missing:
                valid = (~missing).astype(np.float64)
                frac = lat.apply(weights.lon.apply(valid, axis=-1), axis=-2)
            else:
                frac = np.broadcast_to(dst_frac, z.shape)
            z = _divide_by_coverage(z, frac)
        out[t0 : t0 + step] = z
    return out


def _divide_by_coverage(z: np.ndarray, frac: np.ndarray) -> np.ndarray:
    """``fracarea``: the destarea sums divided by the covered fraction, NaN where nothing covers."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(frac > 0, z / np.where(frac > 0, frac, 1.0), np.nan)


def _float32_in_out(in_dtype: np.dtype, out_dtype) -> bool:
    return np.dtype(out_dtype) == np.float32 and np.dtype(in_dtype) in (
        np.float16,
        np.float32,
        np.float64,
    )


def _apply_selection(x: np.ndarray, picks: tuple[np.ndarray, np.ndarray], out_dtype) -> np.ndarray:
    """``destarea`` regridding when each destination cell is one source cell: a gather (missing
    source cells count as zero, as in the weighted sum)."""
    rows, cols = picks
    if rows.size == 0 or cols.size == 0:
        return np.zeros(x.shape[:-2] + (rows.size, cols.size), dtype=out_dtype)
    # the rows reached, cast and cleaned before the gathers that widen them (the same values as
    # casting the gathered cells: each is one source value)
    lo, hi = int(rows.min()), int(rows.max()) + 1
    part = x[..., lo:hi, :].astype(out_dtype)
    np.nan_to_num(part, copy=False, nan=0.0, posinf=np.inf, neginf=-np.inf)
    return np.take(np.take(part, rows - lo, axis=-2), cols, axis=-1)


def native_weight_field(
    src: CellBounds,
    target: CellBounds,
    target_fraction: np.ndarray,
    radius: float = EARTH_RADIUS,
) -> np.ndarray:
    """Area weights (m2) on the source grid that fuse regrid -> mask -> area-sum into one dot
    product.

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
    lat_t, lon_t = lat.transpose(), lon.transpose()  # (ns_lat, nt_lat), (ns_lon, nt_lon)
    for k in range(mm.shape[0]):
        out[k] = radius**2 * lat_t.apply(lon_t.apply(mm[k], axis=-1), axis=-2)
    return out.reshape(lead + src.shape)
