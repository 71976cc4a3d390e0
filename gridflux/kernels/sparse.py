"""Sparse regridding weights of any pair of grids, in canonical cell order (numpy/scipy only).

:class:`SparseWeights` is the general ``(n_b, n_a)`` matrix that weight files (ESMF, SCRIP: read
and written by :mod:`gridflux.ingest.weightfiles`) hold; :class:`StorageOrder` says how a file
stores a lat-lon grid's cells relative to the canonical order (latitude and longitude ascending),
so that a file's numbering maps to and from the canonical one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from gridflux.errors import WeightsError
from gridflux.kernels.conservative import SeparableWeights
from gridflux.kernels.grids import cell_areas


@dataclass(frozen=True, eq=False)
class StorageOrder:
    """How a file stores the cells of a lat-lon grid, relative to the canonical order.

    Attributes
    ----------
    lat_reversed : the file's rows run north to south (the canonical rows reversed)
    lon_reversed : the file's columns run east to west
    lat, lon : the file's own centre values in its own order (degrees), or None; written as the
        cell centres of a weight file, so that tools build the destination as the file has it
    """

    lat_reversed: bool = False
    lon_reversed: bool = False
    lat: np.ndarray | None = None
    lon: np.ndarray | None = None

    @property
    def is_canonical(self) -> bool:
        return not (self.lat_reversed or self.lon_reversed)

    def file_to_canonical(self, shape: tuple[int, ...]) -> np.ndarray:
        """``f2c[f]``: the canonical flat index of the cell at the file's flat index ``f``."""
        idx = np.arange(int(np.prod(shape))).reshape(shape)
        if len(shape) == 2:
            idx = self.to_file_layout(idx)
        return idx.ravel()

    def canonical_to_file(self, shape: tuple[int, ...]) -> np.ndarray:
        """``c2f[c]``: the file's flat index of the canonical cell ``c``."""
        return np.argsort(self.file_to_canonical(shape), kind="stable")

    def to_file_layout(self, a: np.ndarray) -> np.ndarray:
        """An array with leading axes (lat, lon) in canonical order, laid out as the file has it."""
        if self.lat_reversed:
            a = a[::-1]
        if self.lon_reversed:
            a = a[:, ::-1]
        return a


CANONICAL = StorageOrder()


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
    src_order, dst_order : StorageOrder
        How the file the weights were read from stored each grid. The matrix and every array
        here are in canonical order whatever the file's order (see :func:`read_weights`).
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
    src_order: StorageOrder = CANONICAL
    dst_order: StorageOrder = CANONICAL

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
            self.src_order,
            self.dst_order,
        )

    def apply(self, data: np.ndarray) -> np.ndarray:
        """Regrid ``data[..., *src_shape]`` to ``[..., *dst_shape]`` in float64 (NaN counted as
        zero)."""
        data = np.asarray(data)
        k = len(self.src_shape)
        if data.shape[-k:] != tuple(self.src_shape):
            raise WeightsError(
                f"data has trailing shape {data.shape[-k:]} but the weight file's source grid is "
                f"{tuple(self.src_shape)}"
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
