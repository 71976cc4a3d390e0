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

Kernel part (numpy): :func:`protocol_weights`, :func:`weighted_sums`. Wrapper:
:func:`region_totals`.
"""

from __future__ import annotations

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


def nonzero_rows(weights: np.ndarray) -> slice:
    """The smallest row slice outside which every region's weight is zero."""
    rows = np.flatnonzero(np.any(weights != 0, axis=(0, 2)))
    if rows.size == 0:
        return slice(0, 0)
    return slice(int(rows[0]), int(rows[-1]) + 1)


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


def weighted_sums(block: np.ndarray, weights: np.ndarray, rows: slice | None = None) -> np.ndarray:
    """``out[t, r] = sum_ij block[t, i, j] * weights[r, i, j]`` in float64, NaN counted as zero.

    Infinite values are not missing data: they propagate into the totals. A month with no value
    at all is not detected here (``block`` may hold only some rows of the field): callers mark it
    with :func:`no_data_months` (:func:`region_totals` and the pipeline's blocks do).

    ``block`` may be float32: it is converted piece by piece (a few latitude rows at a time)
    into a small float64 scratch buffer, so no float64 copy of the whole block is made and the
    pass runs at memory speed. Only ``rows`` (default: the rows where weights are nonzero) are
    touched.

    Parameters
    ----------
    block : (t, nlat, nlon) array, any float dtype
    weights : (region, nlat, nlon) float64
    rows : slice of latitude rows to include
    """
    nt, ny, nx = block.shape
    nr = weights.shape[0]
    if weights.shape[1:] != (ny, nx):
        raise MaskError(
            f"weights of shape {weights.shape[1:]} do not match data of shape {(ny, nx)}"
        )
    rows = nonzero_rows(weights) if rows is None else rows
    r0, r1, _ = rows.indices(ny)
    out = np.zeros((nt, nr), dtype=np.float64)
    if r1 <= r0 or nt == 0:
        return out
    step = max(1, min(r1 - r0, PIECE_BYTES // (8 * nt * nx)))
    scratch = np.empty((nt, step * nx), dtype=np.float64)
    for y0 in range(r0, r1, step):
        y1 = min(y0 + step, r1)
        n = (y1 - y0) * nx
        buf = scratch[:, :n]
        np.copyto(buf.reshape(nt, y1 - y0, nx), block[:, y0:y1, :], casting="unsafe")
        w = weights[:, y0:y1, :].reshape(nr, n)
        part = buf @ w.T
        if np.isnan(part).any():  # only NaN means "no data"; an inf stays an inf
            np.copyto(buf, 0.0, where=np.isnan(buf))
            part = buf @ w.T
        out += part
    return out


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
    rows = nonzero_rows(w)

    def _kernel(flat: np.ndarray) -> np.ndarray:
        sums = weighted_sums(flat, w, rows)
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
