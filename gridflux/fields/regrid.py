"""The xarray/dask front of the regridding kernels (``gridflux.kernels.conservative``): ``regrid``.

Axes and bounds are found by :mod:`gridflux.fields.axes` (``grid_of``, ``find_latlon`` are
re-exported here for callers of the front). Works on DataArrays with any leading dimensions,
stays lazy on dask input (one task per input chunk, no Python loop over time steps) and keeps
attributes and CF bounds.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import numpy as np
import xarray as xr

from gridflux import config
from gridflux.errors import GridError, GridfluxError, WeightsError
from gridflux.fields.axes import canonical_order, find_latlon, grid_of
from gridflux.kernels.conservative import (
    NORMALIZATIONS,
    SeparableWeights,
    apply_separable,
    conservative_weights,
)
from gridflux.kernels.grids import CellBounds

BACKENDS = ("native", "xesmf")

_WEIGHTS_CACHE: OrderedDict[tuple[str, str, float], SeparableWeights] = OrderedDict()
_CACHE_SIZE = 32

#: kept for callers of the regrid front (``fields.totals``): the canonical (ascending) order
to_ascending_lat = canonical_order


def grid_coords(grid: CellBounds) -> dict[str, Any]:
    """CF centre coordinates of a grid, for building DataArrays on it."""
    return {
        "lat": (
            "lat",
            grid.lat,
            {"standard_name": "latitude", "units": "degrees_north", "bounds": "lat_bnds"},
        ),
        "lon": (
            "lon",
            grid.lon,
            {"standard_name": "longitude", "units": "degrees_east", "bounds": "lon_bnds"},
        ),
    }


def grid_dataset(grid: CellBounds) -> xr.Dataset:
    """A Dataset holding a grid's centres and CF bounds variables (``lat_bnds``, ``lon_bnds``)."""
    return xr.Dataset(
        {
            "lat_bnds": (("lat", "bnds"), np.asarray(grid.lat_bounds)),
            "lon_bnds": (("lon", "bnds"), np.asarray(grid.lon_bounds)),
        },
        coords=grid_coords(grid),
    )


def field_variables(ds: xr.Dataset) -> list[str]:
    """Data variables of a Dataset that are fields on its lat-lon grid (bounds excluded)."""
    lat, lon = find_latlon(ds)
    return [
        str(v)
        for v in ds.data_vars
        if lat in ds[v].dims and lon in ds[v].dims and "bnds" not in ds[v].dims
    ]


def cached_weights(
    src: CellBounds, dst: CellBounds, radius: float | None = None
) -> SeparableWeights:
    """Exact weights for a grid pair, memoised in-process (building them costs ~1 ms)."""
    radius = float(config.get("earth-radius", override=radius))
    key = (src.cache_key(), dst.cache_key(), radius)
    w = _WEIGHTS_CACHE.get(key)
    if w is None:
        w = conservative_weights(src, dst, radius)
        _WEIGHTS_CACHE[key] = w
        if len(_WEIGHTS_CACHE) > _CACHE_SIZE:
            _WEIGHTS_CACHE.popitem(last=False)
    return w


def _apply(data: np.ndarray, *, weights: SeparableWeights, normalization: str) -> np.ndarray:
    return apply_separable(weights, data, normalization=normalization)


def regrid(
    obj: xr.DataArray | xr.Dataset,
    target: CellBounds,
    *,
    grid: CellBounds | None = None,
    normalization: str | None = None,
    backend: str | None = None,
) -> xr.DataArray | xr.Dataset:
    """Conservatively regrid a field on a lat-lon grid to the lat-lon grid ``target``.

    Parameters
    ----------
    obj : DataArray (..., lat, lon) or Dataset
        Any latitude order, any longitude origin; lazy input stays lazy (one task per input
        chunk); NaN values are missing. A Dataset's own bounds variables define its grid and
        every field variable in it is regridded (the result carries the target's bounds).
    target : CellBounds
    grid : the source grid, for a DataArray whose bounds are not the midpoints of its centres
    normalization : ``destarea`` (missing counts as zero: mass-conserving) or ``fracarea``
        (average over the valid covered part). Default from ``gridflux.regrid.normalization``.
    backend : ``native`` (exact separable weights) or ``xesmf`` (needs ESMPy).

    Returns
    -------
    float64 DataArray or Dataset on ``target``, attributes kept.
    """
    normalization = config.get("regrid.normalization", override=normalization)
    backend = config.get("regrid.backend", override=backend)
    if normalization not in NORMALIZATIONS:
        raise WeightsError(f"normalization {normalization!r}: expected one of {NORMALIZATIONS}")
    if backend not in BACKENDS:
        raise WeightsError(f"regrid backend {backend!r}: expected one of {BACKENDS}")
    if isinstance(obj, xr.Dataset):
        src = grid_of(obj) if grid is None else grid
        out = xr.Dataset(
            {
                v: regrid(obj[v], target, grid=src, normalization=normalization, backend=backend)
                for v in field_variables(obj)
            },
            attrs=obj.attrs,
        )
        return out.merge(grid_dataset(target))
    if backend == "xesmf":
        from gridflux.fields.esmf import regrid_xesmf

        return regrid_xesmf(obj, target, grid=grid, normalization=normalization)

    da = obj
    lat, lon = find_latlon(da)
    src = grid_of(da) if grid is None else grid
    if src.shape != (da.sizes[lat], da.sizes[lon]):
        raise GridError(
            f"grid {src.shape} does not match the data's (lat, lon) sizes "
            f"{(da.sizes[lat], da.sizes[lon])}",
            variable=str(da.name),
        )
    da = canonical_order(da)
    weights = cached_weights(src, target)
    if da.chunks is not None:
        da = da.chunk({lat: -1, lon: -1})
    out = xr.apply_ufunc(
        _apply,
        da,
        kwargs={"weights": weights, "normalization": normalization},
        input_core_dims=[[lat, lon]],
        output_core_dims=[["lat", "lon"]],
        exclude_dims={lat, lon},
        dask="parallelized",
        output_dtypes=[np.float64],
        dask_gufunc_kwargs={"output_sizes": {"lat": target.nlat, "lon": target.nlon}},
        keep_attrs=True,
    )
    drop = [c for c in out.coords if {lat, lon} & set(out[c].dims)]
    out = out.drop_vars(drop, errors="ignore").assign_coords(grid_coords(target))
    out.attrs["regrid_method"] = (
        f"conservative ({normalization}), exact separable lat-lon overlaps (gridflux)"
    )
    return out


def _source_in_canonical_order(da: xr.DataArray, src_dims: tuple[str, ...], w) -> xr.DataArray:
    """The weights are canonical (``read_weights``): a lat-lon source with 1-D coordinates is put
    in canonical order by its coordinates; index dims are taken as stored in the weight file's
    source file (``w.src_order``), as CDO and ESMF take them."""
    ydim, xdim = src_dims
    has_coords = all(
        d in da.coords and da[d].ndim == 1 and da[d].dtype.kind in "iuf" for d in src_dims
    )
    if has_coords:
        lat: str | None
        lon: str | None
        try:
            lat, lon = find_latlon(da)
        except GridfluxError:
            lat = lon = None
        if (lat, lon) == (ydim, xdim):
            return canonical_order(da)
    flip = {}
    if w.src_order.lat_reversed:
        flip[ydim] = slice(None, None, -1)
    if w.src_order.lon_reversed:
        flip[xdim] = slice(None, None, -1)
    return da.isel(flip) if flip else da


def regrid_with_weights(
    da: xr.DataArray,
    weights,
    *,
    src_dims: tuple[str, ...] | None = None,
    target: CellBounds | None = None,
) -> xr.DataArray:
    """Apply a sparse weight file (ESMF or SCRIP, e.g. from ``cdo gencon``, ``ncremap -m`` or ESMF)
    to a field on any source grid: curvilinear ``(y, x)``, unstructured ``(cell,)``, or lat-lon.

    Parameters
    ----------
    da : DataArray whose trailing dimensions are the weight file's source grid (C order: the
        fastest-varying dimension last, as ESMF/SCRIP number cells). A lat-lon field with 1-D
        coordinates may be in any latitude order; index dims are taken in the order of the
        file the weights were made for.
    weights : :class:`~gridflux.kernels.sparse.SparseWeights`, e.g. read from a file with
        :func:`gridflux.ingest.weightfiles.read_weights` (this layer reads no files)
    src_dims : names of the source grid dimensions (default: the trailing ``len(src_shape)`` dims)
    target : the destination lat-lon grid (for exact coordinates and bounds); default: centres
        from the weight file

    Returns
    -------
    float64 DataArray with trailing dims ``(lat, lon)`` (or ``("cell",)`` for an unstructured
    destination) in canonical order (latitude ascending, whatever the destination file's
    order), lazy on dask input; NaN source values count as zero (the file's own normalisation is
    applied as it is).
    """
    from gridflux.kernels.sparse import SparseWeights

    if not isinstance(weights, SparseWeights):
        raise WeightsError(
            f"regrid_with_weights takes SparseWeights, got {type(weights).__name__}: read a weight "
            "file with gridflux.ingest.weightfiles.read_weights(path) first"
        )
    w = weights
    k = len(w.src_shape)
    src_dims = tuple(map(str, da.dims[-k:])) if src_dims is None else tuple(src_dims)
    if k == 2:
        da = _source_in_canonical_order(da, src_dims, w)
    if tuple(da.sizes[d] for d in src_dims) != tuple(w.src_shape):
        raise WeightsError(
            f"{da.name!r}: source dims {src_dims} have sizes "
            f"{tuple(da.sizes[d] for d in src_dims)} but the "
            f"weight file's source grid is {tuple(w.src_shape)}"
        )
    dst_dims = ("lat", "lon") if len(w.dst_shape) == 2 else ("cell",)
    if da.chunks is not None:
        da = da.chunk({d: -1 for d in src_dims})
    out = xr.apply_ufunc(
        lambda x: w.apply(x),
        da,
        input_core_dims=[list(src_dims)],
        output_core_dims=[list(dst_dims)],
        exclude_dims=set(src_dims),
        dask="parallelized",
        output_dtypes=[np.float64],
        dask_gufunc_kwargs={"output_sizes": dict(zip(dst_dims, w.dst_shape, strict=True))},
        keep_attrs=True,
    )
    drop = [c for c in out.coords if set(src_dims) & set(out[c].dims)]
    out = out.drop_vars(drop, errors="ignore")
    if target is not None:
        if target.shape != tuple(w.dst_shape):
            raise WeightsError(
                f"target grid {target.shape} does not match the weight file's destination "
                f"{tuple(w.dst_shape)}"
            )
        out = out.assign_coords(grid_coords(target))
    elif len(w.dst_shape) == 2 and w.dst_lat is not None and w.dst_lon is not None:
        out = out.assign_coords(
            lat=w.dst_lat.reshape(w.dst_shape)[:, 0], lon=w.dst_lon.reshape(w.dst_shape)[0, :]
        )
    out.attrs["regrid_method"] = f"sparse weights ({w.normalization})"
    return out
