"""Regridding weights in the ESMF and SCRIP sparse formats: read, write, apply.

ESMF (``ESMF_RegridWeightGen``, ``ncremap -m``, xESMF ``filename=``) stores ``row``/``col``
(1-based destination/source cell indices), ``S`` (weights), ``frac_a/b``, ``area_a/b`` (steradians),
centres ``xc/yc`` and corners ``xv/yv`` in degrees, and ``src_grid_dims``/``dst_grid_dims``
(fastest-varying dimension first, i.e. ``[nlon, nlat]``). SCRIP (``cdo gencon``) stores
``dst_address``/``src_address`` (1-based), ``remap_matrix[:, 0]``, ``*_grid_frac``, ``*_grid_area``,
centres and corners usually in radians. Cells are numbered with longitude fastest, which is the C
order of ``(lat, lon)`` arrays, so a flattened numpy field lines up with the indices.

Read either with :func:`read_weights`; apply with :meth:`SparseWeights.apply`. Weights read from a
file keep the file's normalisation (``fracarea`` for CDO and ESMF defaults); :meth:`SparseWeights.as_destarea`
converts with ``frac_b``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from gridflux.errors import WeightsError
from gridflux.kernels.conservative import SeparableWeights
from gridflux.kernels.grids import CellBounds, cell_areas


@dataclass(frozen=True, eq=False)
class SparseWeights:
    """A general sparse weight matrix ``(n_b, n_a)`` with its grids' shapes and fractions.

    Attributes
    ----------
    matrix : csr (n_b, n_a)
        ``dst = matrix @ src`` on flattened (C-order) fields.
    src_shape, dst_shape : tuple
        Shapes of the source and destination fields (e.g. ``(nlat, nlon)`` or ``(ny, nx)``).
    frac_a, frac_b : (n_a,), (n_b,)
        Fraction of each source cell used / of each destination cell covered.
    area_a, area_b : (n_a,), (n_b,) or None
        Cell areas in steradians (multiply by R^2 for m2).
    normalization : str
        ``destarea`` or ``fracarea``: how ``matrix`` was normalised.
    dst_lat, dst_lon : (n_b,) or None, degrees
        Destination cell centres (for building coordinates of the output).
    """

    matrix: sp.csr_matrix
    src_shape: tuple[int, ...]
    dst_shape: tuple[int, ...]
    frac_a: np.ndarray
    frac_b: np.ndarray
    area_a: np.ndarray | None = None
    area_b: np.ndarray | None = None
    normalization: str = "fracarea"
    dst_lat: np.ndarray | None = None
    dst_lon: np.ndarray | None = None

    @property
    def n_a(self) -> int:
        return int(np.prod(self.src_shape))

    @property
    def n_b(self) -> int:
        return int(np.prod(self.dst_shape))

    def as_destarea(self) -> SparseWeights:
        """The same weights normalised by destination area (missing source counts as zero)."""
        if self.normalization == "destarea":
            return self
        m = sp.diags(self.frac_b) @ self.matrix
        return SparseWeights(
            m.tocsr(),
            self.src_shape,
            self.dst_shape,
            self.frac_a,
            self.frac_b,
            self.area_a,
            self.area_b,
            "destarea",
            self.dst_lat,
            self.dst_lon,
        )

    def apply(self, data: np.ndarray) -> np.ndarray:
        """Regrid ``data[..., *src_shape]`` to ``[..., *dst_shape]`` in float64 (NaN counted as zero)."""
        data = np.asarray(data)
        k = len(self.src_shape)
        if data.shape[-k:] != tuple(self.src_shape):
            raise WeightsError(
                f"data has trailing shape {data.shape[-k:]} but the weight file's source grid is {tuple(self.src_shape)}"
            )
        lead = data.shape[:-k]
        x = data.reshape(-1, self.n_a)
        x = np.where(np.isfinite(x), x, 0.0)
        y = (self.matrix @ x.T.astype(np.float64, copy=False)).T
        return y.reshape(lead + tuple(self.dst_shape))


def from_separable(weights: SeparableWeights) -> SparseWeights:
    """Full sparse form of exact separable weights (destarea normalisation)."""
    m = weights.to_coo().tocsr()
    return SparseWeights(
        matrix=m,
        src_shape=weights.src.shape,
        dst_shape=weights.dst.shape,
        frac_a=weights.src_fraction.ravel(),
        frac_b=weights.dst_fraction.ravel(),
        area_a=cell_areas(weights.src, radius=1.0).ravel(),  # steradians, as ESMF writes areas
        area_b=cell_areas(weights.dst, radius=1.0).ravel(),
        normalization="destarea",
        dst_lat=np.repeat(weights.dst.lat, weights.dst.nlon),
        dst_lon=np.tile(weights.dst.lon, weights.dst.nlat),
    )


def _corners(grid: CellBounds) -> tuple[np.ndarray, np.ndarray]:
    """ESMF corner arrays ``(n, 4)`` counter-clockwise from south-west, degrees."""
    s, n = grid.lat_bounds[:, 0], grid.lat_bounds[:, 1]
    w, e = grid.lon_bounds[:, 0], grid.lon_bounds[:, 1]
    yv = np.stack(np.broadcast_arrays(s[:, None], s[:, None], n[:, None], n[:, None]), axis=-1)
    xv = np.stack(np.broadcast_arrays(w[None, :], e[None, :], e[None, :], w[None, :]), axis=-1)
    yv = np.broadcast_to(yv, grid.shape + (4,)).reshape(-1, 4)
    xv = np.broadcast_to(xv, grid.shape + (4,)).reshape(-1, 4)
    return xv, yv


def write_weights(
    path: str | os.PathLike,
    weights: SeparableWeights,
    *,
    normalization: str = "fracarea",
    fmt: str = "esmf",
) -> None:
    """Write exact weights between two lat-lon grids as an ESMF (default) or SCRIP weight file.

    ESMF files are read by xESMF, ``ncremap -m`` and ESMF tools; SCRIP files (``fmt="scrip"``)
    by ``cdo remap,GRID,WEIGHTS`` (CDO does not read the ESMF layout).

    ``normalization='fracarea'`` (ESMF's and CDO's default) divides by the destination coverage
    ``frac_b`` so that the file is interchangeable with ``ESMF_RegridWeightGen`` / ``ncremap`` /
    ``cdo gencon`` output; ``destarea`` writes the raw area fractions. The file is written to a
    temporary name and moved into place, so a crash never leaves a half-written weight file.
    """
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
    tmp = f"{os.fspath(path)}.tmp-{os.getpid()}"
    writer(tmp, weights, sw, m.row, m.col, s, normalization)
    os.replace(tmp, path)


def _cell_geometry(grid: CellBounds) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Flattened (C order) cell centres and ``(n, 4)`` corners of a grid, degrees: lat, lon, xv, yv."""
    xv, yv = _corners(grid)
    return np.repeat(grid.lat, grid.nlon), np.tile(grid.lon, grid.nlat), xv, yv


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
        for suffix, grid, area, frac in (
            ("a", src, sw.area_a, sw.frac_a),
            ("b", dst, sw.area_b, sw.frac_b),
        ):
            n = f"n_{suffix}"
            lat2, lon2, xv, yv = _cell_geometry(grid)
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
        for side, grid, area, frac in (
            ("src", weights.src, sw.area_a, sw.frac_a),
            ("dst", weights.dst, sw.area_b, sw.frac_b),
        ):
            n = grid.nlat * grid.nlon
            nc.createDimension(f"{side}_grid_size", n)
            nc.createDimension(f"{side}_grid_corners", 4)
            nc.createDimension(f"{side}_grid_rank", 2)
            nc.createVariable(f"{side}_grid_dims", "i4", (f"{side}_grid_rank",))[:] = [
                grid.nlon,
                grid.nlat,
            ]
            lat2, lon2, xv, yv = _cell_geometry(grid)
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
    """Read an ESMF (``row/col/S``) or SCRIP (``src_address/dst_address/remap_matrix``) weight file."""
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
            map_method = str(getattr(nc, "map_method", "")).lower()
            if "conserv" in map_method and "normalization" not in nc.ncattrs():
                norm = "fracarea"
        else:
            raise WeightsError(
                f"{path}: not an ESMF (row, col, S) or SCRIP (src_address, dst_address, remap_matrix) weight file; "
                f"variables found: {sorted(names)[:12]}"
            )
    n_a, n_b = int(np.prod(src_dims)), int(np.prod(dst_dims))
    if rows.size and (rows.min() < 0 or rows.max() >= n_b or cols.min() < 0 or cols.max() >= n_a):
        raise WeightsError(
            f"{path}: cell indices out of range for grids of {n_a} source and {n_b} destination cells"
        )
    matrix = sp.csr_matrix((s, (rows, cols)), shape=(n_b, n_a))
    if frac_b is None:
        frac_b = np.asarray((matrix > 0).sum(axis=1)).ravel().clip(0, 1).astype(float)
    if frac_a is None:
        frac_a = np.ones(n_a)
    if norm not in ("fracarea", "destarea"):
        norm = "fracarea" if "frac" in norm else "destarea"
    return SparseWeights(
        matrix, src_dims, dst_dims, frac_a, frac_b, area_a, area_b, norm, lat_b, lon_b
    )


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
