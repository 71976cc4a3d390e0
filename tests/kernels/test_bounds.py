"""Bounds inference and canonicalisation, and the errors bad coordinates must raise.

Expected bounds are written out by hand (or by a one-line arithmetic rule stated in the test).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from gridflux.errors import GridError, GridfluxError
from gridflux.kernels.grids import (
    CellBounds,
    cell_areas,
    gaussian_grid,
    global_grid,
    infer_lat_bounds,
    infer_lon_bounds,
    is_descending,
    regional_grid,
    unwrap_longitudes,
)

from .reference import regular_edges, sphere_area

LAT1 = np.arange(-89.5, 90.0, 1.0)  # 180 centres
LAT1_B = regular_edges(-90.0, 90.0, 1.0)


def _lon_mod(b: np.ndarray) -> np.ndarray:
    return np.mod(b, 360.0)


def _assert_canonical_lon(b: np.ndarray, span: float | None = 360.0) -> None:
    assert np.all(b[:, 1] > b[:, 0])
    np.testing.assert_allclose(b[1:, 0], b[:-1, 1], atol=1e-9)
    if span is not None:
        assert b[-1, 1] - b[0, 0] == pytest.approx(span, abs=1e-9)


# -- latitude -----------------------------------------------------------------------------------
def test_ascending_lat_centres():
    g = CellBounds.from_centers(LAT1, np.arange(0.5, 360.0, 1.0))
    np.testing.assert_allclose(g.lat_bounds, LAT1_B, atol=1e-12)
    assert not is_descending(LAT1)


def test_descending_lat_centres_give_ascending_bounds():
    lat = LAT1[::-1].copy()
    assert is_descending(lat)
    g = CellBounds.from_centers(lat, np.arange(0.5, 360.0, 1.0))
    np.testing.assert_allclose(g.lat_bounds, LAT1_B, atol=1e-12)
    # and infer_lat_bounds keeps the input order (north first)
    b = infer_lat_bounds(lat)
    np.testing.assert_allclose(np.sort(b, axis=1), LAT1_B[::-1], atol=1e-12)


@pytest.mark.parametrize("descending", [False, True])
@pytest.mark.parametrize("swap_columns", [False, True])
def test_given_lat_bounds_in_any_order(descending, swap_columns):
    lat = LAT1[::-1] if descending else LAT1
    b = LAT1_B[::-1] if descending else LAT1_B
    if swap_columns:
        b = b[:, ::-1]
    g = CellBounds.from_centers(lat, np.arange(0.5, 360.0, 1.0), lat_bounds=b.copy())
    np.testing.assert_array_equal(g.lat_bounds, LAT1_B)


@pytest.mark.parametrize("swap_columns", [False, True])
def test_given_lon_bounds_in_any_order(swap_columns):
    lon = np.arange(-179.5, 180.0, 1.0)
    b = regular_edges(-180.0, 180.0, 1.0)
    if swap_columns:
        b = b[:, ::-1].copy()
    g = CellBounds.from_centers(LAT1, lon, lon_bounds=b)
    np.testing.assert_array_equal(g.lon_bounds, regular_edges(-180.0, 180.0, 1.0))


def test_regional_lat_is_not_clipped_or_stretched():
    lat = np.arange(50.25, 70.0, 0.5)
    b = infer_lat_bounds(lat)
    np.testing.assert_allclose(b, regular_edges(50.0, 70.0, 0.5), atol=1e-12)


@pytest.mark.parametrize("step", [1.0, 2.0, 2.5])
def test_pole_centred_lat_gets_half_polar_cells(step):
    lat = np.arange(-90.0, 90.0 + step / 2, step)
    b = infer_lat_bounds(lat)
    h = step / 2
    np.testing.assert_allclose(b[0], [-90.0, -90.0 + h], atol=1e-12)
    np.testing.assert_allclose(b[-1], [90.0 - h, 90.0], atol=1e-12)
    np.testing.assert_allclose(b[1:-1], np.column_stack([lat[1:-1] - h, lat[1:-1] + h]), atol=1e-12)
    g = CellBounds(b, regular_edges(0.0, 360.0, 2.5))
    assert math.fsum(cell_areas(g, radius=1.0).ravel()) == pytest.approx(4 * math.pi, rel=1e-12)


def test_irregular_lat_midpoints():
    lat = np.array([-80.0, -50.0, -10.0, 0.0, 30.0])
    b = infer_lat_bounds(lat)
    # midpoints; outer edges half a step out (-95 clipped to -90; 30 + 15 = 45)
    expected = np.array([[-90.0, -65.0], [-65.0, -30.0], [-30.0, -5.0], [-5.0, 15.0], [15.0, 45.0]])
    np.testing.assert_allclose(b, expected, atol=1e-12)


def test_gaussian_detected_from_centres_descending_file():
    """ECHAM/ICON T63 files have descending Gaussian latitudes and no bounds."""
    x, w = np.polynomial.legendre.leggauss(96)
    lat_desc = np.degrees(np.arcsin(x))[::-1]
    g = CellBounds.from_centers(lat_desc, np.arange(192) * 1.875)
    s = np.sin(np.radians(g.lat_bounds))
    np.testing.assert_allclose(s[:, 1] - s[:, 0], w, rtol=1e-11)
    assert g.lat_bounds[0, 0] == -90.0 and g.lat_bounds[-1, 1] == 90.0
    np.testing.assert_allclose(g.lat_bounds, gaussian_grid(96).lat_bounds, atol=1e-12)


def test_near_gaussian_but_regular_is_not_gaussian():
    # regular 96-row grid: midpoints, not Gauss edges
    lat = np.arange(-90 + 180 / 192, 90, 180 / 96)
    b = infer_lat_bounds(lat)
    np.testing.assert_allclose(b, regular_edges(-90.0, 90.0, 180 / 96), atol=1e-9)


# -- longitude ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "lon,first_west",
    [
        (np.arange(0.5, 360.0, 1.0), 0.0),  # 0..360
        (np.arange(-179.5, 180.0, 1.0), -180.0),  # -180..180
        (np.arange(0.0, 360.0, 1.0), -0.5),  # first cell straddles 0
        (np.arange(-180.0, 180.0, 1.0), -180.5),  # first cell straddles the dateline
    ],
)
def test_global_lon_origins(lon, first_west):
    b = infer_lon_bounds(lon)
    expected = first_west + regular_edges(0.0, 360.0, 1.0)
    np.testing.assert_allclose(b, expected, atol=1e-9)
    _assert_canonical_lon(b)
    g = CellBounds.from_centers(LAT1, lon)
    assert g.is_global_lon
    assert math.fsum(cell_areas(g, radius=1.0).ravel()) == pytest.approx(4 * math.pi, rel=1e-12)


def test_lon_sequence_straddling_the_dateline():
    """Centres 179.5, -179.5, -178.5, ..., 178.5 (a file whose first column is east of 179 E)."""
    lon = np.concatenate([[179.5], np.arange(-179.5, 179.0, 1.0)])
    assert lon.size == 360
    g = CellBounds.from_centers(LAT1, lon)
    b = g.lon_bounds
    _assert_canonical_lon(b)
    # same cells modulo 360, in the file's order
    np.testing.assert_allclose(_lon_mod(b[:, 0]), _lon_mod(lon - 0.5), atol=1e-9)
    assert _lon_mod(b[0, 0]) == pytest.approx(179.0)
    # centres of the canonical cells are the file's centres modulo 360
    np.testing.assert_allclose(_lon_mod(g.lon), _lon_mod(lon), atol=1e-9)


def test_wrapped_lon_sequence_unwraps():
    lon = np.concatenate(
        [np.arange(350.0, 360.0, 10.0), np.arange(0.0, 350.0, 10.0)]
    )  # 350, 0, 10, ...
    u = unwrap_longitudes(lon)
    np.testing.assert_allclose(u, 350.0 + 10.0 * np.arange(36))
    b = infer_lon_bounds(lon)
    np.testing.assert_allclose(b, 345.0 + regular_edges(0.0, 360.0, 10.0), atol=1e-9)


def test_regional_lon_across_dateline():
    lon = np.array([170.0, 175.0, -180.0, -175.0, -170.0])
    g = CellBounds.from_centers(np.array([0.0, 5.0]), lon)
    np.testing.assert_allclose(g.lon_bounds, 167.5 + regular_edges(0.0, 25.0, 5.0), atol=1e-9)
    assert not g.is_global_lon


def test_given_wrapped_lon_bounds_of_dateline_cell():
    """A file with centres -180..179 and bounds [179.5, -179.5] for the first cell."""
    lon = np.arange(-180.0, 180.0, 1.0)
    b = np.column_stack([lon - 0.5, lon + 0.5])
    b[0] = [179.5, -179.5]
    g = CellBounds.from_centers(LAT1, lon, lon_bounds=b)
    _assert_canonical_lon(g.lon_bounds)
    np.testing.assert_allclose(g.lon_bounds, -180.5 + regular_edges(0.0, 360.0, 1.0), atol=1e-9)


def test_given_lon_bounds_in_0_360_with_centres_in_minus180_180():
    lon = np.arange(-179.5, 180.0, 1.0)
    b = np.mod(np.column_stack([lon - 0.5, lon + 0.5]), 360.0)
    b[b[:, 1] == 0.0, 1] = 360.0
    g = CellBounds.from_centers(LAT1, lon, lon_bounds=b)
    np.testing.assert_allclose(g.lon_bounds, regular_edges(-180.0, 180.0, 1.0), atol=1e-9)


def test_standard_constructors_have_the_documented_edges():
    g = global_grid(2.0, 2.5, lon0=0.0)
    np.testing.assert_allclose(g.lat_bounds, regular_edges(-90, 90, 2.0), atol=1e-12)
    np.testing.assert_allclose(g.lon_bounds, regular_edges(0, 360, 2.5), atol=1e-12)
    t = gaussian_grid(96, lon0=0.0)
    assert t.shape == (96, 192)
    np.testing.assert_allclose(t.lon, np.arange(192) * 1.875, atol=1e-12)
    assert t.lon_bounds[-1, 1] - t.lon_bounds[0, 0] == 360.0
    r = regional_grid(45.0, 90.0, -180.0, 180.0, 0.5, 0.5)
    assert r.shape == (90, 720)
    assert math.fsum(cell_areas(r, radius=1.0).ravel()) == pytest.approx(
        2 * math.pi * (1 - math.sin(math.radians(45))), rel=1e-12
    )


# -- errors -----------------------------------------------------------------------------------
def _err(excinfo) -> str:
    return str(excinfo.value)


def test_error_hierarchy():
    assert issubclass(GridError, GridfluxError) and issubclass(GridError, ValueError)


def test_non_monotonic_lat_names_variable_and_values():
    with pytest.raises(GridError) as ei:
        CellBounds.from_centers(np.array([0.0, 1.0, 0.5, 2.0]), np.arange(4.0), lat_name="latitude")
    msg = _err(ei)
    assert "latitude" in msg and "monotonic" in msg
    assert "0.5" in msg and "1" in msg
    assert ei.value.variable == "latitude"


def test_duplicate_lat_names_value():
    with pytest.raises(GridError) as ei:
        CellBounds.from_centers(np.array([0.0, 1.0, 1.0, 2.0]), np.arange(4.0))
    msg = _err(ei)
    assert "duplicate" in msg and "'lat'" in msg and "1" in msg


def test_duplicate_lon_names_value():
    with pytest.raises(GridError) as ei:
        CellBounds.from_centers(
            np.arange(3.0), np.array([10.0, 20.0, 20.0, 30.0]), lon_name="longitude"
        )
    msg = _err(ei)
    assert "duplicate" in msg and "longitude" in msg and "20" in msg


def test_non_monotonic_lon_is_an_error():
    with pytest.raises(GridError) as ei:
        CellBounds.from_centers(np.arange(3.0), np.array([10.0, 0.0, -10.0]))
    assert "'lon'" in _err(ei)


def test_overlapping_lat_bounds():
    with pytest.raises(GridError) as ei:
        CellBounds(np.array([[0.0, 1.0], [0.5, 2.0]]), np.array([[0.0, 1.0]]))
    msg = _err(ei)
    assert "lat_bnds" in msg and "overlap" in msg and "0.5" in msg


def test_gap_in_lat_bounds_from_file_names_file_variable():
    with pytest.raises(GridError) as ei:
        CellBounds.from_centers(
            np.array([0.5, 1.75]),
            np.array([0.5, 1.5]),
            lat_bounds=np.array([[0.0, 1.0], [1.5, 2.0]]),
            lat_name="latitude",
        )
    msg = _err(ei)
    assert "latitude_bnds" in msg and "gap" in msg and "1.5" in msg


def test_overlapping_lon_bounds_from_file():
    with pytest.raises(GridError) as ei:
        CellBounds.from_centers(
            np.array([0.5, 1.5]),
            np.array([0.5, 1.5, 2.5]),
            lon_bounds=np.array([[0.0, 1.0], [1.0, 2.2], [2.0, 3.0]]),
        )
    msg = _err(ei)
    assert "lon_bnds" in msg and "overlap" in msg and "2.2" in msg


def test_lon_gap():
    with pytest.raises(GridError) as ei:
        CellBounds(np.array([[0.0, 1.0]]), np.array([[0.0, 1.0], [2.0, 3.0]]))
    assert "lon_bnds" in _err(ei) and "gap" in _err(ei)


@pytest.mark.parametrize("bad", [90.5, 91.0, -95.0])
def test_lat_centre_beyond_90(bad):
    lat = np.array([0.0, 45.0, bad]) if bad > 0 else np.array([bad, 0.0, 45.0])
    with pytest.raises(GridError) as ei:
        CellBounds.from_centers(lat, np.arange(3.0))
    msg = _err(ei)
    assert "90" in msg and "'lat'" in msg and f"{bad:g}" in msg


def test_lat_bounds_beyond_90():
    with pytest.raises(GridError) as ei:
        CellBounds(np.array([[80.0, 90.5]]), np.array([[0.0, 1.0]]))
    assert "lat_bnds" in _err(ei) and "90.5" in _err(ei)


def test_lon_bounds_span_more_than_360():
    with pytest.raises(GridError) as ei:
        CellBounds(np.array([[0.0, 1.0]]), regular_edges(0.0, 370.0, 10.0))
    assert "lon_bnds" in _err(ei) and "370" in _err(ei)


def test_lon_centres_span_more_than_360():
    with pytest.raises(GridError) as ei:
        CellBounds.from_centers(np.arange(3.0), np.arange(0.0, 370.0, 10.0))  # 0 .. 360 inclusive
    assert "'lon'" in _err(ei) and "360" in _err(ei)


def test_reversed_bounds_row_in_cellbounds():
    with pytest.raises(GridError) as ei:
        CellBounds(np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]]))
    assert "lat_bnds" in _err(ei)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite(bad):
    with pytest.raises(GridError) as ei:
        CellBounds.from_centers(np.array([0.0, bad, 2.0]), np.arange(3.0))
    assert "'lat'" in _err(ei)


def test_bounds_shape_mismatch():
    with pytest.raises(GridError) as ei:
        CellBounds.from_centers(np.arange(3.0), np.arange(4.0), lat_bounds=np.zeros((2, 2)))
    assert "lat_bnds" in _err(ei) and "(3, 2)" in _err(ei)


def test_single_centre_without_bounds():
    with pytest.raises(GridError):
        infer_lat_bounds(np.array([10.0]))


def test_cellbounds_is_readonly_and_float64():
    g = CellBounds(np.array([[0, 1]], dtype=np.int32), np.array([[0, 1]], dtype=np.int32))
    assert g.lat_bounds.dtype == np.float64
    with pytest.raises(ValueError):
        g.lat_bounds[0, 0] = 5.0
    assert math.fsum(cell_areas(global_grid(1.0), radius=1.0).ravel()) == pytest.approx(
        sphere_area(1.0), rel=1e-12
    )
