"""Regridding weights in the ESMF and SCRIP sparse formats: read, write, apply.

ESMF (``ESMF_RegridWeightGen``, ``ncremap -m``, xESMF ``filename=``) stores ``row``/``col``
(1-based destination/source cell indices), ``S`` (weights), ``frac_a/b``, ``area_a/b`` (steradians),
centres ``xc/yc`` and corners ``xv/yv`` in degrees, and ``src_grid_dims``/``dst_grid_dims``
(fastest-varying dimension first, i.e. ``[nlon, nlat]``). SCRIP (``cdo gencon``) stores
``dst_address``/``src_address`` (1-based), ``remap_matrix[:, 0]``, ``*_grid_frac``, ``*_grid_area``,
centres and corners usually in radians. Cells are numbered with longitude fastest, which is the C
order of ``(lat, lon)`` arrays, so a flattened numpy field lines up with the indices.

Cells are indexed in each file's own storage order: a grid stored north to south, or east to
west, is numbered as stored (as ``cdo gencon`` and ESMF number it), so that ``cdo remap`` and
``ncremap -m`` applied to the original files give what ``cdo remapcon`` gives.
:class:`StorageOrder` says how a file's order relates to gridflux's canonical one (latitude
ascending, longitude increasing); :func:`write_weights` writes in the files' order and
:func:`read_weights` maps a file's order back to the canonical one (found from the file's cell
centres), so a :class:`SparseWeights` always works on canonical fields.

Read either with :func:`read_weights`; apply with :meth:`SparseWeights.apply`. Weights read from a
file keep the file's normalisation (``fracarea`` for CDO and ESMF defaults);
:meth:`SparseWeights.as_destarea` converts with ``frac_b``.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import scipy.sparse as sp

from gridflux.errors import WeightsError
from gridflux.kernels.conservative import SeparableWeights
from gridflux.kernels.grids import CellBounds
from gridflux.kernels.sparse import CANONICAL, SparseWeights, StorageOrder, from_separable


def _cell_geometry(
    grid: CellBounds, order: StorageOrder
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Cell centres and ``(n, 4)`` corners (counter-clockwise from south-west), degrees, flattened
    in the file's storage order: lat, lon, xv, yv.

    Centres are the file's own values where ``order`` carries them (Gaussian latitudes, longitudes
    in the file's origin), else the midpoints of the bounds; each column's longitude bounds are
    moved by whole turns to surround its centre.
    """
    lat_c, lon_c = grid.lat, grid.lon
    if order.lat is not None and order.lat.size == grid.nlat:
        lat_c = order.lat[::-1] if order.lat_reversed else order.lat
    if order.lon is not None and order.lon.size == grid.nlon:
        lon_c = order.lon[::-1] if order.lon_reversed else order.lon
    lon_b = grid.lon_bounds + 360.0 * np.round((lon_c - grid.lon) / 360.0)[:, None]
    s, n = grid.lat_bounds[:, 0], grid.lat_bounds[:, 1]
    w, e = lon_b[:, 0], lon_b[:, 1]
    shape = grid.shape
    yv = np.broadcast_to(np.stack([s, s, n, n], axis=-1)[:, None, :], shape + (4,))
    xv = np.broadcast_to(np.stack([w, e, e, w], axis=-1)[None, :, :], shape + (4,))
    lat2 = np.broadcast_to(np.asarray(lat_c, dtype=np.float64)[:, None], shape)
    lon2 = np.broadcast_to(np.asarray(lon_c, dtype=np.float64)[None, :], shape)
    return tuple(  # type: ignore[return-value]
        np.ascontiguousarray(order.to_file_layout(a)).reshape(
            (grid.nlat * grid.nlon,) + a.shape[2:]
        )
        for a in (lat2, lon2, xv, yv)
    )


def write_weights(
    path: str | os.PathLike,
    weights: SeparableWeights,
    *,
    normalization: str = "fracarea",
    fmt: str = "esmf",
    src_order: StorageOrder | None = None,
    dst_order: StorageOrder | None = None,
) -> None:
    """Write exact weights between two lat-lon grids as an ESMF (default) or SCRIP weight file.

    ESMF files are read by xESMF, ``ncremap -m`` and ESMF tools; SCRIP files (``fmt="scrip"``)
    by ``cdo remap,GRID,WEIGHTS`` (CDO does not read the ESMF layout).

    ``normalization='fracarea'`` (ESMF's and CDO's default) divides by the destination coverage
    ``frac_b`` so that the file is interchangeable with ``ESMF_RegridWeightGen`` / ``ncremap`` /
    ``cdo gencon`` output; ``destarea`` writes the raw area fractions. The file is written to a
    temporary name and moved into place, so a crash never leaves a half-written weight file.

    ``src_order``/``dst_order`` (:func:`gridflux.fields.axes.storage_order` of the source and
    destination files) number the cells as the files store them (default: canonical, latitude
    ascending), so that the file applies to the original files as ``cdo gencon``'s and ESMF's do.
    """
    src_order = CANONICAL if src_order is None else src_order
    dst_order = CANONICAL if dst_order is None else dst_order
    sw = from_separable(weights)
    m = sw.matrix.tocoo()
    s = m.data
    if normalization == "fracarea":
        fb = sw.frac_b[m.row]
        s = np.where(fb > 0, s / np.where(fb > 0, fb, 1.0), 0.0)
    elif normalization != "destarea":
        raise WeightsError(
            f"normalization {normalization!r} is not one of ('destarea', 'fracarea')"
        )
    writer = _WRITERS.get(fmt)
    if writer is None:
        raise WeightsError(f"weight file format {fmt!r} is not one of {tuple(_WRITERS)}")
    f2c_a = src_order.file_to_canonical(weights.src.shape)
    f2c_b = dst_order.file_to_canonical(weights.dst.shape)
    rows = dst_order.canonical_to_file(weights.dst.shape)[m.row]
    cols = src_order.canonical_to_file(weights.src.shape)[m.col]
    in_file_order = SparseWeights(
        sw.matrix,
        sw.src_shape,
        sw.dst_shape,
        sw.frac_a[f2c_a],
        sw.frac_b[f2c_b],
        sw.area_a[f2c_a],
        sw.area_b[f2c_b],
        sw.normalization,
        src_order=src_order,
        dst_order=dst_order,
    )
    tmp = f"{os.fspath(path)}.tmp-{os.getpid()}"
    writer(tmp, weights, in_file_order, rows, cols, s, normalization)
    os.replace(tmp, path)


def _set_header(nc: Any, conventions: str, normalization: str, grid_names: dict[str, str]) -> None:
    """Global attributes of both layouts, then the layout's own names of the two grids."""
    nc.title = "gridflux exact conservative weights (separable lat-lon overlaps)"
    nc.normalization = normalization
    nc.map_method = "Conservative remapping"
    nc.conventions = conventions
    for key, value in grid_names.items():
        nc.setncattr(key, value)


def _put(
    nc: Any,
    name: str,
    dims: tuple[str, ...],
    data: Any,
    units: str | None = None,
    dtype: str = "f8",
) -> None:
    """One variable, its units (if any) and its values."""
    v = nc.createVariable(name, dtype, dims)
    if units is not None:
        v.units = units
    v[:] = data


def _write_esmf(
    path: str,
    weights: SeparableWeights,
    sw: SparseWeights,
    rows: np.ndarray,
    cols: np.ndarray,
    s: np.ndarray,
    normalization: str,
) -> None:
    """The ESMF layout (``row``/``col``/``S``, centres and corners in degrees, 1-based indices)."""
    import netCDF4

    src, dst = weights.src, weights.dst
    with netCDF4.Dataset(path, "w", format="NETCDF4") as nc:
        _set_header(
            nc, "NCAR-CSM", normalization, {"domain_a": "source", "domain_b": "destination"}
        )
        nc.createDimension("n_a", sw.n_a)
        nc.createDimension("n_b", sw.n_b)
        nc.createDimension("n_s", rows.size)
        nc.createDimension("nv_a", 4)
        nc.createDimension("nv_b", 4)
        nc.createDimension("src_grid_rank", 2)
        nc.createDimension("dst_grid_rank", 2)
        nc.createVariable("src_grid_dims", "i4", ("src_grid_rank",))[:] = [src.nlon, src.nlat]
        nc.createVariable("dst_grid_dims", "i4", ("dst_grid_rank",))[:] = [dst.nlon, dst.nlat]
        for suffix, grid, area, frac, order in (
            ("a", src, sw.area_a, sw.frac_a, sw.src_order),
            ("b", dst, sw.area_b, sw.frac_b, sw.dst_order),
        ):
            n = f"n_{suffix}"
            lat2, lon2, xv, yv = _cell_geometry(grid, order)
            for name, data, dims, units in (
                (f"yc_{suffix}", lat2, (n,), "degrees"),
                (f"xc_{suffix}", lon2, (n,), "degrees"),
                (f"yv_{suffix}", yv, (n, f"nv_{suffix}"), "degrees"),
                (f"xv_{suffix}", xv, (n, f"nv_{suffix}"), "degrees"),
                (f"area_{suffix}", area, (n,), "square radians"),
                (f"frac_{suffix}", frac, (n,), "1"),
            ):
                _put(nc, name, dims, data, units)
            nc.createVariable(f"mask_{suffix}", "i4", (n,))[:] = 1
        nc.createVariable("row", "i4", ("n_s",))[:] = rows + 1
        nc.createVariable("col", "i4", ("n_s",))[:] = cols + 1
        nc.createVariable("S", "f8", ("n_s",))[:] = s


def _write_scrip(
    path: str,
    weights: SeparableWeights,
    sw: SparseWeights,
    rows: np.ndarray,
    cols: np.ndarray,
    s: np.ndarray,
    normalization: str,
) -> None:
    """The SCRIP layout as CDO writes it (centres and corners in radians, 1-based addresses)."""
    import netCDF4

    with netCDF4.Dataset(path, "w", format="NETCDF4") as nc:
        _set_header(
            nc, "SCRIP", normalization, {"source_grid": "source", "dest_grid": "destination"}
        )
        for side, grid, area, frac, order in (
            ("src", weights.src, sw.area_a, sw.frac_a, sw.src_order),
            ("dst", weights.dst, sw.area_b, sw.frac_b, sw.dst_order),
        ):
            n = grid.nlat * grid.nlon
            nc.createDimension(f"{side}_grid_size", n)
            nc.createDimension(f"{side}_grid_corners", 4)
            nc.createDimension(f"{side}_grid_rank", 2)
            nc.createVariable(f"{side}_grid_dims", "i4", (f"{side}_grid_rank",))[:] = [
                grid.nlon,
                grid.nlat,
            ]
            lat2, lon2, xv, yv = _cell_geometry(grid, order)
            for name, data, dims in (
                ("center_lat", lat2, (f"{side}_grid_size",)),
                ("center_lon", lon2, (f"{side}_grid_size",)),
                ("corner_lat", yv, (f"{side}_grid_size", f"{side}_grid_corners")),
                ("corner_lon", xv, (f"{side}_grid_size", f"{side}_grid_corners")),
            ):
                _put(nc, f"{side}_grid_{name}", dims, np.radians(data), "radians")
            nc.createVariable(f"{side}_grid_imask", "i4", (f"{side}_grid_size",))[:] = 1
            _put(nc, f"{side}_grid_area", (f"{side}_grid_size",), area, "square radians")
            _put(nc, f"{side}_grid_frac", (f"{side}_grid_size",), frac, "unitless")
        nc.createDimension("num_links", rows.size)
        nc.createDimension("num_wgts", 1)
        nc.createVariable("src_address", "i4", ("num_links",))[:] = cols + 1
        nc.createVariable("dst_address", "i4", ("num_links",))[:] = rows + 1
        nc.createVariable("remap_matrix", "f8", ("num_links", "num_wgts"))[:] = s[:, None]


_WRITERS = {"esmf": _write_esmf, "scrip": _write_scrip}


def read_weights(path: str | os.PathLike) -> SparseWeights:
    """Read an ESMF (``row/col/S``) or SCRIP (``src_address/dst_address/remap_matrix``) weight file.

    The result is in canonical order (latitude ascending, longitude increasing) whatever order
    the file numbers its cells in: a lat-lon grid whose centres (``yc``/``xc``, or SCRIP's
    ``*_grid_center_lat/lon``) run north to south or east to west is renumbered, and the file's
    order is kept in ``src_order``/``dst_order``. Curvilinear and unstructured grids keep their
    numbering.
    """
    import netCDF4

    try:
        nc = netCDF4.Dataset(os.fspath(path))
    except (OSError, RuntimeError) as exc:
        raise WeightsError(f"{path}: cannot open as a netCDF weight file: {exc}") from exc
    with nc:
        names = set(nc.variables)
        norm = str(getattr(nc, "normalization", "fracarea")).lower()
        if {"row", "col", "S"} <= names:
            rows = np.asarray(nc["row"][:], dtype=np.int64) - 1
            cols = np.asarray(nc["col"][:], dtype=np.int64) - 1
            s = np.asarray(nc["S"][:], dtype=np.float64)
            src_dims = _grid_dims(nc, "src_grid_dims", "n_a", path)
            dst_dims = _grid_dims(nc, "dst_grid_dims", "n_b", path)
            frac_a = _opt(nc, "frac_a")
            frac_b = _opt(nc, "frac_b")
            area_a, area_b = _opt(nc, "area_a"), _opt(nc, "area_b")
            lat_b, lon_b = _opt_deg(nc, "yc_b"), _opt_deg(nc, "xc_b")
            lat_a, lon_a = _opt_deg(nc, "yc_a"), _opt_deg(nc, "xc_a")
        elif {"src_address", "dst_address", "remap_matrix"} <= names:
            rows = np.asarray(nc["dst_address"][:], dtype=np.int64) - 1
            cols = np.asarray(nc["src_address"][:], dtype=np.int64) - 1
            s = np.asarray(nc["remap_matrix"][:], dtype=np.float64)
            s = s[:, 0] if s.ndim == 2 else s
            src_dims = _grid_dims(nc, "src_grid_dims", "src_grid_size", path)
            dst_dims = _grid_dims(nc, "dst_grid_dims", "dst_grid_size", path)
            frac_a, frac_b = _opt(nc, "src_grid_frac"), _opt(nc, "dst_grid_frac")
            area_a, area_b = _opt(nc, "src_grid_area"), _opt(nc, "dst_grid_area")
            lat_b, lon_b = _opt_deg(nc, "dst_grid_center_lat"), _opt_deg(nc, "dst_grid_center_lon")
            lat_a, lon_a = _opt_deg(nc, "src_grid_center_lat"), _opt_deg(nc, "src_grid_center_lon")
            map_method = str(getattr(nc, "map_method", "")).lower()
            if "conserv" in map_method and "normalization" not in nc.ncattrs():
                norm = "fracarea"
        else:
            raise WeightsError(
                f"{path}: not an ESMF (row, col, S) or SCRIP (src_address, dst_address, "
                "remap_matrix) weight file; "
                f"variables found: {sorted(names)[:12]}"
            )
    n_a, n_b = int(np.prod(src_dims)), int(np.prod(dst_dims))
    if rows.size and (rows.min() < 0 or rows.max() >= n_b or cols.min() < 0 or cols.max() >= n_a):
        raise WeightsError(
            f"{path}: cell indices out of range for grids of {n_a} source and {n_b} destination "
            "cells"
        )
    src_order = _order_from_centres(lat_a, lon_a, src_dims)
    dst_order = _order_from_centres(lat_b, lon_b, dst_dims)
    # the file's numbering -> canonical: indices through f2c, per-cell arrays through c2f
    rows = dst_order.file_to_canonical(dst_dims)[rows]
    cols = src_order.file_to_canonical(src_dims)[cols]
    c2f_a, c2f_b = src_order.canonical_to_file(src_dims), dst_order.canonical_to_file(dst_dims)
    frac_a, area_a = (None if x is None else x[c2f_a] for x in (frac_a, area_a))
    frac_b, area_b, lat_b, lon_b = (
        None if x is None else x[c2f_b] for x in (frac_b, area_b, lat_b, lon_b)
    )
    matrix = sp.csr_matrix((s, (rows, cols)), shape=(n_b, n_a))
    if frac_b is None:
        frac_b = np.asarray((matrix > 0).sum(axis=1)).ravel().clip(0, 1).astype(float)
    if frac_a is None:
        frac_a = np.ones(n_a)
    if norm not in ("fracarea", "destarea"):
        norm = "fracarea" if "frac" in norm else "destarea"
    return SparseWeights(
        matrix,
        src_dims,
        dst_dims,
        frac_a,
        frac_b,
        area_a,
        area_b,
        norm,
        lat_b,
        lon_b,
        src_order,
        dst_order,
    )


def _order_from_centres(
    lat: np.ndarray | None, lon: np.ndarray | None, shape: tuple[int, ...]
) -> StorageOrder:
    """The storage order of a rank-2 lat-lon grid from its flattened cell centres (degrees).

    Canonical for other ranks, for missing centres and for curvilinear grids (latitude not
    constant along rows or longitude not constant down columns).
    """
    if lat is None or lon is None or len(shape) != 2 or lat.size != int(np.prod(shape)):
        return CANONICAL
    y, x = lat.reshape(shape), lon.reshape(shape)
    turn = (x - x[:1, :] + 180.0) % 360.0 - 180.0  # longitude differences modulo a whole turn
    if not (np.allclose(y, y[:, :1], atol=1e-9) and np.allclose(turn, 0.0, atol=1e-9)):
        return CANONICAL
    rows, cols = y[:, 0], x[0, :]
    steps = (np.diff(cols) + 180.0) % 360.0 - 180.0
    lat_rev = rows.size > 1 and bool(rows[1] < rows[0])
    lon_rev = cols.size > 1 and bool(np.all(steps < 0))
    return StorageOrder(lat_rev, lon_rev, rows.copy(), cols.copy())


def _grid_dims(nc, name: str, size_dim: str, path) -> tuple[int, ...]:
    if name in nc.variables:
        dims = [int(d) for d in np.asarray(nc[name][:]).ravel()]
        return tuple(reversed(dims))  # file: fastest first -> numpy C order
    if size_dim in nc.dimensions:
        return (len(nc.dimensions[size_dim]),)
    raise WeightsError(f"{path}: missing {name!r}; cannot tell the grid shape")


def _opt(nc, name: str) -> np.ndarray | None:
    return np.asarray(nc[name][:], dtype=np.float64) if name in nc.variables else None


def _opt_deg(nc, name: str) -> np.ndarray | None:
    if name not in nc.variables:
        return None
    v = np.asarray(nc[name][:], dtype=np.float64)
    units = str(getattr(nc[name], "units", "degrees")).lower()
    return np.degrees(v) if units.startswith("rad") else v
