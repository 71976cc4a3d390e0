"""Property-based tests of the conservative weights over random rectilinear grids (hypothesis)."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gridflux.kernels.conservative import apply_separable, conservative_weights

from .reference import brute_destarea_weights, ref_cell_areas
from .strategies import grids

SETTINGS = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _areas(g):
    return ref_cell_areas(g.lat_bounds, g.lon_bounds, radius=1.0)


@SETTINGS
@given(src=grids(full=True), dst=grids(full=True), seed=st.integers(0, 2**32 - 1))
def test_mass_conserved_between_global_grids(src, dst, seed):
    x = np.random.default_rng(seed).uniform(0.1, 1.0, size=src.shape)
    w = conservative_weights(src, dst)
    y = apply_separable(w, x)
    assert math.isclose(
        math.fsum((y * _areas(dst)).ravel()), math.fsum((x * _areas(src)).ravel()), rel_tol=1e-11
    )
    np.testing.assert_allclose(w.dst_fraction, 1.0, atol=1e-11)
    np.testing.assert_allclose(w.src_fraction, 1.0, atol=1e-11)


@SETTINGS
@given(src=grids(), dst=grids(), seed=st.integers(0, 2**32 - 1))
def test_weights_rows_fractions_and_mass_on_partial_grids(src, dst, seed):
    w = conservative_weights(src, dst)
    m = w.to_coo()
    assert np.all(m.data >= 0)
    row_sums = np.zeros(dst.nlat * dst.nlon)
    np.add.at(row_sums, m.row, m.data)
    frac = w.dst_fraction
    np.testing.assert_allclose(row_sums, frac.ravel(), rtol=1e-12, atol=1e-13)
    # fractions of cells shifted by 360 degrees carry ~ulp(360)/width of rounding (5e-14 degrees
    # absolute): 1e-10 covers cells down to ~1e-3 degrees wide
    assert np.all(frac >= 0) and np.all(frac <= 1 + 1e-10)
    sf = w.src_fraction
    assert np.all(sf >= 0) and np.all(sf <= 1 + 1e-10)
    # destarea: destination mass == the source mass that lies inside the destination grid
    x = np.random.default_rng(seed).uniform(0.1, 1.0, size=src.shape)
    y = apply_separable(w, x)
    inside = math.fsum((x * sf * _areas(src)).ravel())
    assert math.isclose(math.fsum((y * _areas(dst)).ravel()), inside, rel_tol=1e-10, abs_tol=1e-14)
    # constant field, fracarea: 1 wherever anything covers, NaN elsewhere
    yf = apply_separable(w, np.ones(src.shape), normalization="fracarea")
    covered = frac > 0
    np.testing.assert_allclose(yf[covered], 1.0, rtol=1e-10)
    assert np.all(np.isnan(yf[~covered]))


@settings(max_examples=25, deadline=None)
@given(src=grids(max_cells=5), dst=grids(max_cells=5))
def test_matrix_equals_brute_force(src, dst):
    got = conservative_weights(src, dst).to_coo().toarray()
    ref = brute_destarea_weights(src.lat_bounds, src.lon_bounds, dst.lat_bounds, dst.lon_bounds)
    np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-13)
