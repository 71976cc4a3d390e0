"""Fused region totals: regrid -> mask -> area-sum as one dot product on the native grid.

Regridding, masking and the area-weighted sum are all linear, so the total of a source field
``x`` over a fractional region is ``sum_i x_i * w_i`` with a weight field ``w`` (m2) on the
source's native grid. Two protocols of the RECCAP2 method give ``w``:

* ``regrid-data`` (process models): regrid the data to the target grid (0.5 deg), multiply by
  the mask on the target grid and the target cell areas, sum. ``w_i = sum_j m_j area(j ∩ i)``.
* ``regrid-mask`` (inversions): regrid the mask to the native grid and sum there with native
  cell areas. ``w_i = frac_native_i * area_i = sum_k m_k area(k ∩ i)`` over mask cells ``k``.

With exact weights both are the same number whenever the target grid refines the mask's grid
(as 0.5 deg refines the 1 deg RECCAP2 mask); tests prove it on non-nested source grids.

Kernel part (numpy): :func:`protocol_weights`, :class:`RegionCells` (each region's own cells),
:func:`cell_sums`, :func:`cell_means`, :func:`weighted_sums`. Wrapper: :func:`region_totals`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np

from gridflux.errors import MaskError
from gridflux.fields.masks import RegionMask
from gridflux.kernels.conservative import PIECE_BYTES, native_weight_field
from gridflux.kernels.grids import EARTH_RADIUS, CellBounds, cell_areas

if TYPE_CHECKING:
    import xarray as xr

PROTOCOLS = ("regrid-data", "regrid-mask")


def protocol_weights(
    src: CellBounds,
    mask: RegionMask,
    *,
    protocol: str = "regrid-data",
    target: CellBounds | None = None,
    radius: float = EARTH_RADIUS,
) -> np.ndarray:
    """Native-grid area weights ``(region, src.nlat, src.nlon)`` in m2 for one protocol.

    ``target`` (``regrid-data`` only) is the grid the data would be regridded to; the mask is
    first brought onto it conservatively. It defaults to the mask's own grid.
    """
    if protocol == "regrid-data":
        target = mask.grid if target is None else target
        on_target = mask.to_grid(target)
        return native_weight_field(src, target, on_target.fractions, radius)
    if protocol == "regrid-mask":
        on_native = mask.to_grid(src)
        return on_native.fractions * cell_areas(src, radius)[None]
    raise MaskError(f"protocol {protocol!r}: expected one of {PROTOCOLS}")


def sparse_native_weights(
    weights, target: CellBounds, mask: RegionMask, radius: float = EARTH_RADIUS
) -> np.ndarray:
    """Native weights ``(region, *src_shape)`` (m2) of any source grid from a sparse weight file.

    ``weights`` (a :class:`~gridflux.ingest.weightfiles.SparseWeights`, e.g. read from ``cdo
    gencon`` or ESMF output) maps the source grid to ``target``; the mask is brought onto ``target``
    and ``w = W_destarea.T @ (mask * area_target)``, so ``sum(x * w)`` is the regrid-data total of
    ``x``.
    """
    if tuple(weights.dst_shape) != target.shape:
        raise MaskError(
            f"the weight file's destination grid {tuple(weights.dst_shape)} is not the target "
            f"{target.shape}"
        )
    m = (
        mask.to_grid(target).fractions.reshape(len(mask.names), -1)
        * cell_areas(target, radius).ravel()[None]
    )
    w = (weights.as_destarea().matrix.T @ m.T).T
    return np.asarray(w).reshape((len(mask.names),) + tuple(weights.src_shape))


def no_data_months(block: np.ndarray) -> np.ndarray:
    """``(t,)`` bool: True where a month's field holds no value at all (every cell NaN).

    Decoded ``_FillValue`` and ``missing_value`` are NaN, so a month of only fill is a month with
    no data: a *missing month*, whose totals are NaN (never 0). A month with data in some cells and
    only fill inside a region totals 0 for that region (e.g. ocean cells of a land model).
    Infinite values are data. Cheap: a sample of each month is looked at first, and only a month
    whose sample is all NaN is scanned whole.

    Parameters
    ----------
    block : (t, ...) array of any float dtype
    """
    nt = block.shape[0]
    flat = block.reshape(nt, -1)
    out = np.zeros(nt, dtype=bool)
    if flat.shape[1] == 0:
        out[:] = True
        return out
    step = max(1, flat.shape[1] // 4096)
    for t in range(nt):
        if np.isnan(flat[t, ::step]).all():
            out[t] = bool(np.isnan(flat[t]).all())
    return out


@dataclass(frozen=True, eq=False)
class RegionCells:
    """Each region's cells of nonzero weight on a (lat, lon) grid, in C order, with their weights.

    The region kernels (:func:`cell_sums`, :func:`cell_means`) sum over a region's own cells
    only, in this fixed order, so a region's result depends on its weights and the data in its
    cells alone: not on which other regions are computed with it, nor on which latitude rows a
    block holds (a store that gains a region computes that region alone and gets the bits a run
    of every region gets).

    Attributes
    ----------
    shape : (nlat, nlon) of the grid
    index : per region, the flat (C-order) indices of its cells on the whole grid (intp)
    weight : per region, the weights (m2, or any factor) of those cells (float64)
    """

    shape: tuple[int, int]
    index: tuple[np.ndarray, ...]
    weight: tuple[np.ndarray, ...]

    @classmethod
    def from_weights(cls, weights: np.ndarray, rows: slice | None = None) -> RegionCells:
        """The cells of ``weights (region, nlat, nlon)`` where a weight is nonzero (inside ``rows``
        only, when given)."""
        _, ny, nx = weights.shape
        r0, r1, _ = (rows or slice(None)).indices(ny)
        r1 = max(r0, r1)
        index, weight = [], []
        for wk in weights:
            part = np.ascontiguousarray(wk[r0:r1], dtype=np.float64).ravel()
            idx = np.flatnonzero(part)
            index.append(idx + r0 * nx)
            weight.append(part[idx])
        return cls((ny, nx), tuple(index), tuple(weight))

    def __len__(self) -> int:
        return len(self.index)

    @cached_property
    def all_index(self) -> np.ndarray:
        """Every region's cells, one region after the other (``bounds`` delimit them)."""
        return np.concatenate(self.index) if self.index else np.zeros(0, dtype=np.intp)

    @cached_property
    def all_weight(self) -> np.ndarray:
        """The weights of :attr:`all_index` (float64)."""
        if not self.weight:
            return np.zeros(0)
        return np.concatenate(self.weight).astype(np.float64, copy=False)

    @cached_property
    def bounds(self) -> list[int]:
        """Region ``k``'s cells are ``all_index[bounds[k]:bounds[k + 1]]``."""
        return [0] + np.cumsum([i.size for i in self.index]).astype(int).tolist()

    @cached_property
    def weight_sums(self) -> list[float]:
        """Each region's sum of weights (the pairwise sum of its weights, as a mean's
        denominator sums them when every cell has a value)."""
        return [float(w.sum()) for w in self.weight]

    @property
    def first_cell(self) -> int:
        return min((int(i[0]) for i in self.index if i.size), default=0)

    @property
    def last_cell(self) -> int:
        return max((int(i[-1]) for i in self.index if i.size), default=-1)

    @property
    def rows(self) -> slice:
        """The smallest row slice holding every region's cells (``slice(0, 0)``: none)."""
        if self.last_cell < 0:
            return slice(0, 0)
        return slice(self.first_cell // self.shape[1], self.last_cell // self.shape[1] + 1)

    def select(self, regions: Sequence[int]) -> RegionCells:
        """These regions only (indices into this object's regions), in the order given."""
        return RegionCells(
            self.shape,
            tuple(self.index[k] for k in regions),
            tuple(self.weight[k] for k in regions),
        )

    def scaled(self, factor: np.ndarray) -> RegionCells:
        """Every cell's weight times ``factor (nlat, nlon)`` at that cell (e.g. a land fraction:
        a cell of factor 0 stays a cell, of weight 0)."""
        flat = np.asarray(factor, dtype=np.float64).reshape(-1)
        if flat.size != self.shape[0] * self.shape[1]:
            raise MaskError(f"a factor of shape {np.shape(factor)} on a grid of {self.shape}")
        pairs = zip(self.index, self.weight, strict=True)
        return RegionCells(self.shape, self.index, tuple(w * flat[i] for i, w in pairs))


def _block_cells(block: np.ndarray, cells: RegionCells, row0: int) -> tuple[np.ndarray, np.ndarray]:
    """``block`` as ``(t, cells)`` and the indices into it of every region's cells, one region
    after the other (``block`` holds the grid's rows from ``row0``); refuses a region cell outside
    the rows the block holds."""
    nt, ny, nx = block.shape
    if nx != cells.shape[1] or row0 < 0 or row0 + ny > cells.shape[0]:
        raise MaskError(
            f"weights of shape {cells.shape} do not match data of shape {(ny, nx)} "
            f"(rows {row0}..{row0 + ny})"
        )
    lo, hi = row0 * nx, (row0 + ny) * nx
    idx = cells.all_index
    if idx.size and (cells.first_cell < lo or cells.last_cell >= hi):
        raise MaskError(
            f"the regions' cells lie in rows {cells.first_cell // nx}..{cells.last_cell // nx}, "
            f"outside the rows {row0}..{row0 + ny - 1} of the block"
        )
    return block.reshape(nt, ny * nx), (idx - lo if lo else idx)


def _month_groups(nt: int, ncells: int):
    """Runs of months whose products fit a scratch piece (a month's sum never depends on them)."""
    step = max(1, PIECE_BYTES // (8 * max(ncells, 1)))
    for t0 in range(0, nt, step):
        yield t0, min(t0 + step, nt)


def _products(flat: np.ndarray, idx: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The values ``(months, cells)`` of ``flat`` at ``idx`` and their products with ``w``
    (float64), both C-contiguous: numpy sums a row pairwise only when it is contiguous (a
    fancy-indexed ``flat[:, idx]`` is column-major, and its rows would be summed one by one)."""
    vals = np.empty((flat.shape[0], idx.size), dtype=flat.dtype)
    np.take(flat, idx, axis=1, out=vals, mode="clip")  # idx checked: no buffered copy
    prod = np.empty(vals.shape, dtype=np.float64)
    np.multiply(vals, w, out=prod)
    return vals, prod


def cell_sums(block: np.ndarray, cells: RegionCells, row0: int = 0) -> np.ndarray:
    """``out[t, r] = sum over r's cells of block[t, cell] * weight`` in float64, NaN counted as 0.

    Each region's products are taken in its cells' fixed order and added by numpy's pairwise sum
    over one contiguous run of a row (deterministic for a given length, no BLAS): a region's total
    is the same to the bit whichever regions are computed with it and whichever rows ``block``
    holds. (All regions' cells are gathered in one pass, one region after the other; each region
    sums its own run of the products.) Infinite values are not missing data: they propagate into
    the totals of the regions whose cells hold them. A month with no value at all is not detected
    here (``block`` may hold only some rows of the field): callers mark it with
    :func:`no_data_months`.

    Parameters
    ----------
    block : (t, rows, nlon) array, any float dtype (float32 is widened exactly), the grid's rows
        ``row0`` .. ``row0 + rows - 1``; they must hold every region's cells
    cells : RegionCells of the grid
    row0 : the grid row of ``block``'s first row

    Returns
    -------
    (t, region) float64: the units of ``block`` times the weights' (e.g. kg s-1 for kg m-2 s-1
    and m2)
    """
    flat, idx = _block_cells(block, cells, row0)
    nt = flat.shape[0]
    out = np.zeros((nt, len(cells)), dtype=np.float64)
    if idx.size == 0 or nt == 0:
        return out
    bounds = cells.bounds
    for t0, t1 in _month_groups(nt, idx.size):
        vals, prod = _products(flat[t0:t1], idx, cells.all_weight)
        for k in range(len(cells)):
            a, b = bounds[k], bounds[k + 1]
            if b == a:
                continue
            s = prod[:, a:b].sum(axis=1)
            bad = np.isnan(s)
            if bad.any():  # only NaN means "no data" (an inf stays an inf)
                sub = prod[bad, a:b]  # a copy
                np.copyto(sub, 0.0, where=np.isnan(vals[bad, a:b]))
                s[bad] = sub.sum(axis=1)
            out[t0:t1, k] = s
    return out


def cell_means(
    block: np.ndarray, cells: RegionCells, row0: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Weighted means ``sum x w / sum w`` over each region's cells whose value is finite (not NaN).

    Summed as :func:`cell_sums` sums (per region, its cells in a fixed order, pairwise), so a
    region's mean does not depend on the other regions or on the rows ``block`` holds.

    Parameters
    ----------
    block, cells, row0 : as :func:`cell_sums`; NaN = no data (left out of both sums)

    Returns
    -------
    means : (t, region) float64 in the units of ``block``, NaN where a region has no finite cell
    covered : (t, region) float64, the weight (m2) of the finite cells, the denominator
    """
    flat, idx = _block_cells(block, cells, row0)
    nt = flat.shape[0]
    num = np.zeros((nt, len(cells)), dtype=np.float64)
    den = np.zeros((nt, len(cells)), dtype=np.float64)
    if idx.size and nt:
        bounds, w = cells.bounds, cells.all_weight
        for t0, t1 in _month_groups(nt, idx.size):
            vals, prod = _products(flat[t0:t1], idx, w)
            missing = np.isnan(vals)
            kept = None
            if missing.any():  # zeros in place of the missing: the same order of the sums
                np.copyto(prod, 0.0, where=missing)
                kept = np.empty(prod.shape, dtype=np.float64)
                np.copyto(kept, w[None, :])
                np.copyto(kept, 0.0, where=missing)
            for k in range(len(cells)):
                a, b = bounds[k], bounds[k + 1]
                if b == a:
                    continue
                num[t0:t1, k] = prod[:, a:b].sum(axis=1)
                den[t0:t1, k] = cells.weight_sums[k] if kept is None else kept[:, a:b].sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)
    return means, den


def weighted_sums(block: np.ndarray, weights: np.ndarray, rows: slice | None = None) -> np.ndarray:
    """``out[t, r] = sum_ij block[t, i, j] * weights[r, i, j]`` in float64, NaN counted as zero.

    :func:`cell_sums` over the nonzero cells of ``weights`` inside ``rows`` (default: all): see
    there (a region's total does not depend on the other regions). Callers that sum many blocks
    with the same weights build the :class:`RegionCells` once and call :func:`cell_sums`.

    Parameters
    ----------
    block : (t, nlat, nlon) array, any float dtype
    weights : (region, nlat, nlon) float64
    rows : slice of latitude rows to include
    """
    if weights.shape[1:] != block.shape[1:]:
        raise MaskError(
            f"weights of shape {weights.shape[1:]} do not match data of shape {block.shape[1:]}"
        )
    return cell_sums(block, RegionCells.from_weights(weights, rows))


def per_region(da: xr.DataArray, lat: str, lon: str, names: Any, kernel: Any) -> xr.DataArray:
    """``kernel((n, nlat, nlon) float) -> (n, region)`` applied to every field of ``da`` (lazy on
    dask, whole lat-lon fields per block): a DataArray with ``region`` in place of ``(lat, lon)``.
    The one xarray wrapper of the region totals and the region means."""
    import xarray as xr  # here: workers import this module for its numpy kernels only

    def _fields(x: np.ndarray) -> np.ndarray:
        lead = x.shape[:-2]
        out = kernel(x.reshape((-1,) + x.shape[-2:]))
        return out.reshape(lead + (len(names),))

    if da.chunks is not None:
        da = da.chunk({lat: -1, lon: -1})
    out = xr.apply_ufunc(
        _fields,
        da,
        input_core_dims=[[lat, lon]],
        output_core_dims=[["region"]],
        dask="parallelized",
        output_dtypes=[np.float64],
        dask_gufunc_kwargs={"output_sizes": {"region": len(names)}},
    )
    return out.assign_coords(region=list(names))


def region_totals(
    da,
    mask: RegionMask,
    *,
    protocol: str = "regrid-data",
    target: CellBounds | None = None,
    grid: CellBounds | None = None,
    radius: float | None = None,
):
    """Area-integrated totals of ``da`` over each region of ``mask``, for every leading index.

    Parameters
    ----------
    da : DataArray (..., lat, lon), or a canonical Dataset with one field variable
        A density per unit cell area (e.g. kg m-2 s-1, positive to the atmosphere). NaN cells
        count as 0 (e.g. ocean cells of a land model), but a field with no value at all (every
        cell NaN: fill) has NaN totals for every region (a missing month, never 0).
        Lazy input stays lazy: one task per input chunk.
    mask : RegionMask
    protocol : ``regrid-data`` or ``regrid-mask`` (see module docstring)
    target : the regrid-data target grid (default: the mask's grid)
    grid : the source grid (default: from the Dataset's bounds or the centres)
    radius : sphere radius in m (default ``gridflux.earth-radius``)

    Returns
    -------
    DataArray (..., region) of float64: ``units`` of ``da`` times m2 (e.g. kg s-1).
    """
    import xarray as xr

    from gridflux import config
    from gridflux.fields.regrid import field_variables, find_latlon, grid_of, to_ascending_lat

    radius = float(config.get("earth-radius", override=radius))
    src = grid_of(da) if grid is None else grid
    if isinstance(da, xr.Dataset):
        names = field_variables(da)
        if len(names) != 1:
            raise MaskError(f"region_totals needs one field variable; the Dataset has {names}")
        da = da[names[0]]
    lat, lon = find_latlon(da)
    da = to_ascending_lat(da)
    w = protocol_weights(src, mask, protocol=protocol, target=target, radius=radius)
    cells = RegionCells.from_weights(w)

    def _kernel(flat: np.ndarray) -> np.ndarray:
        sums = cell_sums(flat, cells)
        sums[no_data_months(flat)] = np.nan  # no value anywhere: a missing field, not 0
        return sums

    out = per_region(da, lat, lon, mask.names, _kernel)
    units = da.attrs.get("units")
    out.attrs = {
        "long_name": f"area-integrated {da.name or 'field'} over region",
        "units": f"({units}) m2" if units else "m2",
        "protocol": protocol,
        "earth_radius_m": radius,
    }
    return out.rename(da.name)
