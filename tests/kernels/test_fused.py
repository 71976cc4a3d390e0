"""Fused region totals: the native weight field and both RECCAP2 protocols, on a non-nested pair.

Truths: (1) the regrid -> mask -> area-sum route computed step by step with independent areas;
(2) closed-form integrals of exact cell means over regions that are unions of cells;
(3) a brute-force sum over cell pairs on small random grids.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from gridflux.errors import MaskError
from gridflux.fields.masks import RegionMask
from gridflux.fields.totals import RegionCells, protocol_weights, weighted_sums
from gridflux.kernels.conservative import apply_separable, conservative_weights, native_weight_field
from gridflux.kernels.grids import CellBounds, gaussian_grid, global_grid

from .reference import (
    R_ESMF,
    brute_destarea_weights,
    integral_sinlat_coslon,
    mean_coslon,
    mean_sinlat,
    ref_cell_areas,
)

T63 = gaussian_grid(96)
MASK_GRID = global_grid(1.0)
TARGET = global_grid(0.5)


def _areas(g: CellBounds, radius: float = R_ESMF) -> np.ndarray:
    return ref_cell_areas(g.lat_bounds, g.lon_bounds, radius=radius)


def _random_mask(seed: int = 0) -> np.ndarray:
    """Two regions on the 1 deg grid: fractional random values north of 45 N, and a hard box."""
    rng = np.random.default_rng(seed)
    m = np.zeros((2,) + MASK_GRID.shape)
    north = MASK_GRID.lat_bounds[:, 0] >= 45.0
    m[0, north] = rng.uniform(0, 1, size=(north.sum(), MASK_GRID.nlon))
    m[0, north] *= rng.uniform(size=m[0, north].shape) < 0.7  # some exact zeros
    m[1, 120:140, 200:260] = 1.0
    return m


@pytest.fixture(scope="module")
def setup():
    mask = _random_mask()
    rng = np.random.default_rng(42)
    x = rng.uniform(-1e-8, 3e-8, size=(4,) + T63.shape)  # flux density with both signs, kg m-2 s-1
    # refine the 1 deg mask to the 0.5 deg target by hand (nested: every 0.5 cell copies its parent)
    mask05 = np.repeat(np.repeat(mask, 2, axis=1), 2, axis=2)
    return mask, mask05, x


def _route_a(x: np.ndarray, mask05: np.ndarray) -> np.ndarray:
    """Protocol (a) step by step: regrid data to 0.5 deg, multiply by mask and area, sum."""
    y = apply_separable(conservative_weights(T63, TARGET), x)
    a = _areas(TARGET)
    return np.array(
        [[math.fsum((y[t] * m * a).ravel()) for m in mask05] for t in range(x.shape[0])]
    )


def test_mask_refinement_by_hand_equals_conservative_regrid(setup):
    mask, mask05, _ = setup
    np.testing.assert_allclose(
        apply_separable(conservative_weights(MASK_GRID, TARGET), mask), mask05, atol=1e-15
    )


def test_native_weight_field_equals_regrid_then_mask_then_sum(setup):
    _, mask05, x = setup
    w = native_weight_field(T63, TARGET, mask05)
    assert w.shape == (2,) + T63.shape
    fused = np.einsum("tij,rij->tr", x, w)
    ref = _route_a(x, mask05)
    scale = np.abs(x).max() * np.array([(m * _areas(TARGET)).sum() for m in mask05])
    np.testing.assert_allclose(fused, ref, rtol=0, atol=1e-12 * scale.max())
    np.testing.assert_allclose(fused, ref, rtol=1e-11)


def test_protocol_b_agrees_with_protocol_a(setup):
    """(b): mask regridded conservatively from 1 deg to T63, summed with T63 areas."""
    mask, mask05, x = setup
    frac_native = apply_separable(conservative_weights(MASK_GRID, T63), mask)
    assert frac_native.min() >= 0 and frac_native.max() <= 1 + 1e-12
    a_native = _areas(T63)
    total_b = np.array(
        [[math.fsum((x[t] * f * a_native).ravel()) for f in frac_native] for t in range(x.shape[0])]
    )
    total_a = _route_a(x, mask05)
    np.testing.assert_allclose(total_b, total_a, rtol=1e-12)
    # and the weight fields themselves agree cell by cell
    w_a = native_weight_field(T63, TARGET, mask05)
    np.testing.assert_allclose(frac_native * a_native, w_a, rtol=1e-12, atol=1e-12 * a_native.max())


def test_protocol_weights_both_protocols(setup):
    mask, mask05, x = setup
    rm = RegionMask(("north", "box"), mask, MASK_GRID)
    wa = protocol_weights(T63, rm, protocol="regrid-data", target=TARGET)
    wb = protocol_weights(T63, rm, protocol="regrid-mask")
    a_native = _areas(T63)
    np.testing.assert_allclose(wa, wb, rtol=1e-12, atol=1e-12 * a_native.max())
    ref = _route_a(x, mask05)
    np.testing.assert_allclose(np.einsum("tij,rij->tr", x, wa), ref, rtol=1e-11)
    np.testing.assert_allclose(np.einsum("tij,rij->tr", x, wb), ref, rtol=1e-11)
    # default target is the mask's own grid
    w_default = protocol_weights(T63, rm, protocol="regrid-data")
    np.testing.assert_allclose(w_default, wa, rtol=1e-12, atol=1e-12 * a_native.max())
    with pytest.raises(MaskError) as ei:
        protocol_weights(T63, rm, protocol="bilinear")
    assert "bilinear" in str(ei.value) and "regrid-mask" in str(ei.value)


def test_closed_form_sector_total():
    """f = sin(lat) cos(lon) exact cell means on T63, region = [0, 90] N x [0, 90] E on the 1 deg
    mask.

    Both grids have edges at 0 and 90 in lat and lon (T63 with lon0 = 0.9375), so the total is
    exactly R^2 / 2 by both protocols and by the fused weights.
    """
    src = gaussian_grid(96, lon0=0.9375)
    m = np.zeros(MASK_GRID.shape)
    rows = MASK_GRID.lat_bounds[:, 0] >= 0
    cols = (MASK_GRID.lon_bounds[:, 0] >= 0) & (MASK_GRID.lon_bounds[:, 1] <= 90)
    m[np.ix_(rows, cols)] = 1.0
    rm = RegionMask(("sector",), m, MASK_GRID)
    x = np.outer(mean_sinlat(src.lat_bounds), mean_coslon(src.lon_bounds))
    exact = integral_sinlat_coslon(0, 90, 0, 90, radius=R_ESMF)
    assert exact == pytest.approx(R_ESMF**2 / 2, rel=1e-15)
    for protocol in ("regrid-data", "regrid-mask"):
        w = protocol_weights(
            src, rm, protocol=protocol, target=TARGET if protocol == "regrid-data" else None
        )
        assert float(np.sum(x * w[0])) == pytest.approx(exact, rel=1e-12)
        got = weighted_sums(x[None], w)
        assert got.shape == (1, 1)
        assert got[0, 0] == pytest.approx(exact, rel=1e-12)


@pytest.mark.parametrize("seed", range(5))
def test_native_weight_field_brute_force(seed):
    rng = np.random.default_rng(seed)

    def rgrid(nlat, nlon, full):
        lat_e = np.sort(
            np.concatenate(
                [
                    [-90.0 if full else -30.0],
                    rng.uniform(-30, 60, nlat - 1),
                    [90.0 if full else 60.0],
                ]
            )
        )
        lon0 = rng.uniform(-360, 360)
        span = 360.0 if full else 150.0
        lon_e = np.sort(
            np.concatenate([[lon0], rng.uniform(lon0, lon0 + span, nlon - 1), [lon0 + span]])
        )
        return CellBounds(
            np.column_stack([lat_e[:-1], lat_e[1:]]), np.column_stack([lon_e[:-1], lon_e[1:]])
        )

    src = rgrid(4, 5, True)
    target = rgrid(3, 6, seed % 2 == 0)
    m = rng.uniform(size=(2,) + target.shape)
    w = native_weight_field(src, target, m, radius=1.0)
    # w[r, i] = sum_j m[r, j] * area(j ∩ i) = sum_j m[r, j] * W[j, i] * area(j)
    wd = brute_destarea_weights(
        src.lat_bounds, src.lon_bounds, target.lat_bounds, target.lon_bounds
    )
    a_t = _areas(target, radius=1.0).ravel()
    ref = np.einsum("rj,ji->ri", m.reshape(2, -1) * a_t, wd).reshape((2,) + src.shape)
    np.testing.assert_allclose(w, ref, rtol=1e-11, atol=1e-15)


def test_native_weight_field_shape_error():
    with pytest.raises(Exception) as ei:
        native_weight_field(T63, TARGET, np.zeros((3, 4)))
    assert "(3, 4)" in str(ei.value)


# -- weighted_sums kernel -----------------------------------------------------------------------
def _ref_sums(block, weights):
    b = np.nan_to_num(np.asarray(block, dtype=np.float64), nan=0.0)
    return np.array([[math.fsum((b[t] * w).ravel()) for w in weights] for t in range(b.shape[0])])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_weighted_sums_matches_fsum(dtype):
    rng = np.random.default_rng(7)
    block = rng.uniform(-1, 2, size=(5, 96, 192)).astype(dtype)
    block[1, 10:20, 30:50] = np.nan
    weights = np.zeros((3, 96, 192))
    weights[0, 60:80] = rng.uniform(size=(20, 192)) * 1e9
    weights[1, 5:7, 3:9] = 2.5e9
    weights[2] = 1.0e9
    got = weighted_sums(block, weights)
    assert got.dtype == np.float64 and got.shape == (5, 3)
    np.testing.assert_allclose(got, _ref_sums(block, weights), rtol=1e-12)
    # float32 input is summed in float64: an exact float32 value times weight adds up exactly
    ones = np.ones((2, 96, 192), dtype=np.float32)
    np.testing.assert_allclose(weighted_sums(ones, weights)[:, 2], 96 * 192 * 1e9, rtol=1e-14)


def test_weighted_sums_large_time_axis_pieces():
    """More time steps than one scratch piece holds: the piecewise loop covers every row once."""
    rng = np.random.default_rng(8)
    block = rng.uniform(size=(40, 180, 360))
    weights = rng.uniform(size=(2, 180, 360))
    np.testing.assert_allclose(weighted_sums(block, weights), _ref_sums(block, weights), rtol=1e-12)
    # an explicit row slice restricts the sum
    rows = slice(10, 20)
    w2 = np.zeros_like(weights)
    w2[:, rows] = weights[:, rows]
    np.testing.assert_allclose(
        weighted_sums(block, weights, rows), _ref_sums(block, w2), rtol=1e-12
    )


def test_nonzero_rows():
    w = np.zeros((2, 10, 4))
    w[0, 3, 1] = 1.0
    w[1, 7, 0] = 2.0
    assert RegionCells.from_weights(w).rows == slice(3, 8)
    assert RegionCells.from_weights(np.zeros((2, 10, 4))).rows == slice(0, 0)
    assert weighted_sums(np.ones((1, 10, 4)), np.zeros((2, 10, 4))).tolist() == [[0.0, 0.0]]


def test_weighted_sums_shape_mismatch():
    with pytest.raises(MaskError) as ei:
        weighted_sums(np.ones((1, 10, 4)), np.ones((1, 10, 5)))
    assert "(10, 5)" in str(ei.value) and "(10, 4)" in str(ei.value)


def test_weighted_sums_inf_is_not_silently_zeroed():
    """Only NaN means "no data" (docstring and architecture contract); an infinite value is bad
    data (e.g. a float32 overflow in a unit conversion) and must not vanish from a mass total."""
    block = np.ones((1, 4, 4))
    block[0, 1, 1] = np.inf
    got = weighted_sums(block, np.ones((1, 4, 4)))
    assert not np.isfinite(got[0, 0]), (
        f"inf was counted as zero: total {got[0, 0]} (15 = the finite cells)"
    )
