"""Exact spherical cell areas against closed forms (4 pi R^2, band areas, Gauss weights,
quadrature)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate

from gridflux.kernels.grids import (
    CDO_EARTH_RADIUS,
    EARTH_RADIUS,
    CellBounds,
    band_cap_area,
    cell_areas,
    gaussian_grid,
    gaussian_latitudes,
    global_grid,
    infer_lat_bounds,
    sin_band_widths,
)

from .reference import R_CDO, R_ESMF, rect_area, ref_cell_areas, sphere_area

GLOBAL_GRIDS = {
    "1deg_-180": lambda: global_grid(1.0),
    "1deg_0": lambda: global_grid(1.0, lon0=0.0),
    "1deg_-0.5": lambda: global_grid(1.0, lon0=-0.5),
    "0.5deg_-180": lambda: global_grid(0.5),
    "0.5deg_0": lambda: global_grid(0.5, lon0=0.0),
    "2x2.5_0": lambda: global_grid(2.0, 2.5, lon0=0.0),
    "2x2.5_-1.25": lambda: global_grid(2.0, 2.5, lon0=-1.25),
    "4x5_-177.5": lambda: global_grid(4.0, 5.0, lon0=-177.5),
    "4x5_2.5": lambda: global_grid(4.0, 5.0, lon0=2.5),
    "T63": lambda: gaussian_grid(96),
    "T63_lon0_180": lambda: gaussian_grid(96, lon0=180.0),
    "T31": lambda: gaussian_grid(48),
    "T255": lambda: gaussian_grid(256),
}


def test_constants_are_the_documented_radii():
    assert EARTH_RADIUS == R_ESMF
    assert CDO_EARTH_RADIUS == R_CDO


@pytest.mark.parametrize("name", sorted(GLOBAL_GRIDS))
def test_global_area_sums_to_sphere(name):
    grid = GLOBAL_GRIDS[name]()
    a = cell_areas(grid)
    assert a.shape == grid.shape
    assert np.all(a > 0)
    total = math.fsum(a.ravel())
    assert total == pytest.approx(sphere_area(R_ESMF), rel=1e-12)


@pytest.mark.parametrize("radius", [R_CDO, R_ESMF, 1.0])
def test_radius_parameter(radius):
    grid = global_grid(2.0, 2.5)
    total = math.fsum(cell_areas(grid, radius=radius).ravel())
    assert total == pytest.approx(4.0 * math.pi * radius**2, rel=1e-12)


def test_cdo_and_esmf_radius_ratio_is_the_squared_ratio():
    grid = gaussian_grid(96)
    ratio = cell_areas(grid, radius=R_CDO) / cell_areas(grid, radius=R_ESMF)
    np.testing.assert_allclose(ratio, (R_CDO / R_ESMF) ** 2, rtol=1e-14)


def test_pole_centred_181_rows_half_polar_cells():
    lat = np.arange(-90.0, 90.5, 1.0)  # 181 centres, poles included
    lat_b = infer_lat_bounds(lat)
    assert lat_b.shape == (181, 2)
    np.testing.assert_array_equal(lat_b[0], [-90.0, -89.5])
    np.testing.assert_array_equal(lat_b[-1], [89.5, 90.0])
    np.testing.assert_allclose(lat_b[1:-1, 1] - lat_b[1:-1, 0], 1.0, atol=1e-12)
    lon_b = np.column_stack([np.arange(360.0) - 0.5, np.arange(360.0) + 0.5])
    grid = CellBounds(lat_b, lon_b)
    a = cell_areas(grid)
    assert math.fsum(a.ravel()) == pytest.approx(sphere_area(), rel=1e-12)
    # the polar row is the cap north of 89.5 degrees
    cap = 2 * math.pi * R_ESMF**2 * (1 - math.sin(math.radians(89.5)))
    assert math.fsum(a[-1]) == pytest.approx(cap, rel=1e-12)
    assert math.fsum(a[0]) == pytest.approx(cap, rel=1e-12)


@pytest.mark.parametrize("s,n", [(-90, 90), (-30, 60), (0, 90), (60, 90), (-90, -75), (10, 11)])
def test_band_areas(s, n):
    grid = global_grid(1.0, lon0=0.0)
    a = cell_areas(grid)
    rows = (grid.lat_bounds[:, 0] >= s) & (grid.lat_bounds[:, 1] <= n)
    exact = 2 * math.pi * R_ESMF**2 * (math.sin(math.radians(n)) - math.sin(math.radians(s)))
    assert math.fsum(a[rows].ravel()) == pytest.approx(exact, rel=1e-12)
    assert band_cap_area(s, n) == pytest.approx(exact, rel=1e-14)
    assert band_cap_area(s, n, radius=R_CDO) == pytest.approx(
        exact * (R_CDO / R_ESMF) ** 2, rel=1e-14
    )


def test_cell_areas_match_independent_loop_on_irregular_grid():
    rng = np.random.default_rng(1)
    lat_e = np.sort(rng.uniform(-90, 90, 8))
    lon_e = np.sort(rng.uniform(-200, 150, 6))
    grid = CellBounds(
        np.column_stack([lat_e[:-1], lat_e[1:]]), np.column_stack([lon_e[:-1], lon_e[1:]])
    )
    np.testing.assert_allclose(
        cell_areas(grid, radius=R_CDO),
        ref_cell_areas(grid.lat_bounds, grid.lon_bounds, radius=R_CDO),
        rtol=1e-13,
    )


@pytest.mark.parametrize(
    "s,n,w,e", [(-90, -88.75, 0, 2.5), (40.3, 41.7, -179.0, 181.0), (-5, 5, 350, 360)]
)
def test_cell_area_equals_numerical_quadrature(s, n, w, e):
    """The closed form against scipy's dblquad of R^2 cos(lat) dlat dlon (independent of the
    formula)."""
    grid = CellBounds(np.array([[s, n]], float), np.array([[w, e]], float))
    val, err = integrate.dblquad(
        lambda phi, lam: math.cos(phi),
        math.radians(w),
        math.radians(e),
        math.radians(s),
        math.radians(n),
        epsabs=0,
        epsrel=1e-13,
    )
    assert cell_areas(grid, radius=1.0)[0, 0] == pytest.approx(val, rel=1e-12)
    assert rect_area(s, n, w, e) == pytest.approx(val, rel=1e-12)


@pytest.mark.parametrize("nlat", [4, 32, 48, 96, 160, 256])
def test_gaussian_sin_widths_are_gauss_weights(nlat):
    x, w = np.polynomial.legendre.leggauss(nlat)
    grid = gaussian_grid(nlat)
    np.testing.assert_allclose(sin_band_widths(grid), w, rtol=1e-12, atol=0)
    centres, edges = gaussian_latitudes(nlat)
    np.testing.assert_allclose(np.sin(np.radians(centres)), x, rtol=0, atol=1e-14)
    assert edges[0] == -90.0 and edges[-1] == 90.0
    # each centre lies inside its cell
    assert np.all((edges[:-1] < centres) & (centres < edges[1:]))
    # symmetric about the equator
    np.testing.assert_allclose(edges, -edges[::-1], atol=1e-12)


def test_gaussian_inferred_from_centres_gets_gauss_weights():
    x, w = np.polynomial.legendre.leggauss(96)
    lat = np.degrees(np.arcsin(x))
    b = infer_lat_bounds(lat)
    s = np.sin(np.radians(b))
    np.testing.assert_allclose(s[:, 1] - s[:, 0], w, rtol=1e-12)
    # descending order (as in ECHAM/ICON files): rows follow the input order
    bd = infer_lat_bounds(lat[::-1])
    sd = np.sin(np.radians(bd))
    np.testing.assert_allclose(np.abs(sd[:, 1] - sd[:, 0]), w[::-1], rtol=1e-12)


def test_t63_area_of_each_row_is_gauss_weight_times_2piR2():
    _, w = np.polynomial.legendre.leggauss(96)
    a = cell_areas(gaussian_grid(96))
    np.testing.assert_allclose(a.sum(axis=1), 2 * math.pi * R_ESMF**2 * w, rtol=1e-12)
