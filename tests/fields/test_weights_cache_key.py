"""The in-memory weights caches are keyed by the grid's edges *and* their shapes."""

from __future__ import annotations

import numpy as np

from gridflux.fields.regrid import cached_weights
from gridflux.kernels.conservative import apply_separable
from gridflux.kernels.grids import CellBounds, global_grid


def test_cache_key_tells_apart_grids_whose_edges_share_one_byte_sequence():
    """2 x 3 and 3 x 2 cells whose edges, read one after the other, are the same values: the
    stored fingerprint coincides, the in-memory cache key does not, and the weights cache gives
    each grid its own weights (a shared key would hand one grid the other's)."""
    a = CellBounds(np.array([[0, 10], [10, 20]]), np.array([[20, 30], [30, 40], [40, 50]]))
    b = CellBounds(np.array([[0, 10], [10, 20], [20, 30]]), np.array([[30, 40], [40, 50]]))
    assert a.fingerprint() == b.fingerprint()  # why the caches need more than the fingerprint
    assert a.cache_key() != b.cache_key()
    dst = global_grid(10.0)
    wa, wb = cached_weights(a, dst), cached_weights(b, dst)
    assert wa.src.lat_bounds.shape == (2, 2) and wb.src.lat_bounds.shape == (3, 2)
    # a field of ones on b, regridded to 10 deg cells (which b's cells tile exactly): ones
    # where b lies, NaN-free, each destination cell inside b gets exactly 1
    out = apply_separable(wb, np.ones((1, 3, 2)), normalization="destarea")
    lat_c = (dst.lat_bounds[:, 0] + dst.lat_bounds[:, 1]) / 2
    lon_c = (dst.lon_bounds[:, 0] + dst.lon_bounds[:, 1]) / 2
    inside = ((lat_c > 0) & (lat_c < 30))[:, None] & ((lon_c > 30) & (lon_c < 50))[None, :]
    np.testing.assert_allclose(out[0][inside], 1.0, rtol=1e-14)
    assert inside.sum() == 6 and np.all(out[0][~inside] == 0)
