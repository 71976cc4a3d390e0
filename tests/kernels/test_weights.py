"""Conservative weights against closed forms and an independent brute-force overlap computation."""

from __future__ import annotations

import math
import zlib

import numpy as np
import pytest
import scipy.sparse as sp

from gridflux.errors import WeightsError
from gridflux.kernels.conservative import _apply_weighted_sum, apply_separable, conservative_weights
from gridflux.kernels.grids import CellBounds, gaussian_grid, global_grid, regional_grid

from .reference import (
    brute_destarea_weights,
    integral_sinlat,
    integral_sinlat_coslon,
    mean_coslon,
    mean_sinlat,
    rect_area,
    ref_cell_areas,
    regular_edges,
)

GRIDS = {
    "1": lambda: global_grid(1.0),
    "1_lon0": lambda: global_grid(1.0, lon0=0.0),
    "0.5": lambda: global_grid(0.5),
    "0.5_lon0": lambda: global_grid(0.5, lon0=0.0),
    "2x2.5": lambda: global_grid(2.0, 2.5, lon0=-1.25),
    "4x5": lambda: global_grid(4.0, 5.0, lon0=-177.5),
    "4x5_lon0": lambda: global_grid(4.0, 5.0, lon0=2.5),
    "T63": lambda: gaussian_grid(96),
    "T63_180": lambda: gaussian_grid(96, lon0=-180.0),
    "2.5x3.75": lambda: global_grid(2.5, 3.75, lon0=0.0),
}

PAIRS = [
    ("1", "0.5"),
    ("1_lon0", "0.5"),
    ("T63", "1"),
    ("1", "T63"),
    ("2x2.5", "0.5_lon0"),
    ("4x5", "T63"),
    ("4x5_lon0", "T63_180"),
    ("0.5", "4x5_lon0"),
    ("T63_180", "2.5x3.75"),
    ("2.5x3.75", "0.5"),
]


def _areas(g: CellBounds) -> np.ndarray:
    """Independent cell areas (unit sphere)."""
    return ref_cell_areas(g.lat_bounds, g.lon_bounds, radius=1.0)


def _integral(x: np.ndarray, g: CellBounds) -> float:
    return math.fsum((x * _areas(g)).ravel())


@pytest.mark.parametrize("src_name,dst_name", PAIRS)
def test_global_integral_conserved(src_name, dst_name):
    src, dst = GRIDS[src_name](), GRIDS[dst_name]()
    rng = np.random.default_rng(zlib.crc32(f"{src_name}->{dst_name}".encode()))
    x = rng.uniform(0.5, 2.0, size=(3,) + src.shape)  # positive: no cancellation in the sums
    w = conservative_weights(src, dst)
    y = apply_separable(w, x, normalization="destarea")
    assert y.shape == (3,) + dst.shape and y.dtype == np.float64
    for t in range(3):
        assert _integral(y[t], dst) == pytest.approx(_integral(x[t], src), rel=1e-12)
    # full coverage: both normalisations agree and every fraction is 1
    np.testing.assert_allclose(w.dst_fraction, 1.0, rtol=0, atol=1e-12)
    np.testing.assert_allclose(w.src_fraction, 1.0, rtol=0, atol=1e-12)
    np.testing.assert_allclose(apply_separable(w, x, normalization="fracarea"), y, rtol=1e-12)


@pytest.mark.parametrize("name", ["1", "T63", "4x5", "2.5x3.75"])
def test_identity_on_equal_grids(name):
    g = GRIDS[name]()
    m = conservative_weights(g, g).to_coo().tocsr()
    diff = m - sp.identity(g.nlat * g.nlon, format="csr")
    assert m.shape == (g.nlat * g.nlon,) * 2
    assert abs(diff).max() < 1e-14


def test_same_cells_different_lon_origin_is_a_permutation():
    a = global_grid(2.0, 2.5, lon0=0.0)
    b = global_grid(2.0, 2.5, lon0=-180.0)
    m = conservative_weights(a, b).to_coo().tocsr()
    # dst column jx (west edge -180 + 2.5 jx) is src column (jx + 72) mod 144
    rows, cols = [], []
    for jy in range(a.nlat):
        for jx in range(144):
            rows.append(jy * 144 + jx)
            cols.append(jy * 144 + (jx + 72) % 144)
    expected = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=m.shape)
    assert abs(m - expected).max() < 1e-14


@pytest.mark.parametrize(
    "src,dst",
    [
        (
            global_grid(0.5),
            global_grid(0.5).subset(slice(270, 360)),
        ),  # the clipped cube of a 0.5 deg model
        (global_grid(2.0, 2.5, lon0=0.0), global_grid(2.0, 2.5, lon0=-180.0)),  # shifted longitudes
        (gaussian_grid(32), gaussian_grid(32).subset(slice(3, 20), slice(10, 40))),
        (
            global_grid(1.0),
            global_grid(0.5).subset(slice(270, 360)),
        ),  # nested upsampling: a 1 deg model
    ],
)
def test_containing_cells_are_picked_bit_identically_in_float32(src, dst):
    """Where every destination cell lies within one source cell (the same cells, or a nested finer
    grid), float32 cubes are the containing source cells' values (missing as zero; -0, inf and
    subnormals kept) bit for bit as the weighted sum gives them, and the shortcut is taken."""
    w = conservative_weights(src, dst)
    assert w.cell_selection is not None
    rng = np.random.default_rng(3)
    x = (rng.normal(size=(5, *src.shape)) * 1e-8).astype("f4")
    x[0, :, :3] = np.nan
    x[1].flat[::97] = -0.0
    x[2].flat[::89] = np.inf
    x[3].flat[::83] = np.float32(1e-45)  # subnormal
    got = apply_separable(w, x, out_dtype=np.float32)
    want = _apply_weighted_sum(w, x, "destarea", np.float32)  # the weighted sum itself
    assert got.dtype == np.float32 and got.shape == (5, *dst.shape)
    np.testing.assert_array_equal(got.view(np.uint32), want.view(np.uint32))
    # an independent truth: the source cell containing each destination cell's centre, NaN as zero
    lat_c, lon_c = dst.lat_bounds.mean(axis=1), dst.lon_bounds.mean(axis=1)
    rows = np.array(
        [
            int(np.flatnonzero((src.lat_bounds[:, 0] < c) & (c < src.lat_bounds[:, 1]))[0])
            for c in lat_c
        ]
    )
    cols = np.array(
        [
            int(
                np.flatnonzero((src.lon_bounds[:, 0] - c) % 360 > (src.lon_bounds[:, 1] - c) % 360)[
                    0
                ]
            )
            for c in lon_c
        ]
    )
    np.testing.assert_array_equal(
        got, np.nan_to_num(x[:, rows][:, :, cols], nan=0.0, posinf=np.inf)
    )
    # float64 input (a field after a unit conversion): the float32 of the containing cell's value
    x64 = x.astype(np.float64) * (1.0 + 1e-9)
    got64 = apply_separable(w, x64, out_dtype=np.float32)
    want64 = np.nan_to_num(x64[:, rows][:, :, cols], nan=0.0, posinf=np.inf).astype(np.float32)
    np.testing.assert_array_equal(got64.view(np.uint32), want64.view(np.uint32))


def test_cell_selection_only_where_each_destination_cell_is_in_one_source_cell():
    assert conservative_weights(global_grid(0.5), global_grid(1.0)).cell_selection is None  # 4 -> 1
    assert (
        conservative_weights(gaussian_grid(32), global_grid(0.5)).cell_selection is None
    )  # not nested
    assert conservative_weights(global_grid(1.25, 1.875), global_grid(0.5)).cell_selection is None
    # float64 output or fracarea: the weighted sum (the shortcut is exact only when rounding to
    # float32)
    g = global_grid(2.0)
    w = conservative_weights(g, g)
    x = np.random.default_rng(0).normal(size=(2, *g.shape))
    np.testing.assert_array_equal(
        apply_separable(w, x), _apply_weighted_sum(w, x, "destarea", np.float64)
    )


@pytest.mark.parametrize("src_name,dst_name", [("T63", "1"), ("4x5", "T63"), ("1", "0.5")])
def test_constant_preserved_full_coverage(src_name, dst_name):
    src, dst = GRIDS[src_name](), GRIDS[dst_name]()
    y = apply_separable(conservative_weights(src, dst), np.full(src.shape, 3.25))
    np.testing.assert_allclose(y, 3.25, rtol=1e-13)


# -- partial coverage ---------------------------------------------------------------------------
REGIONAL_SRC = (-9.5, 21.5, 31.0, 61.0, 0.5, 0.5)  # south, north, west, east, dlat, dlon


def _hand_fraction(dst: CellBounds, s, n, w, e) -> np.ndarray:
    """Exact area fraction of each dst cell inside the rectangle [s, n] x [w, e] (lon mod 360)."""
    out = np.zeros(dst.shape)
    for jy, (ds, dn) in enumerate(dst.lat_bounds):
        lo, hi = max(ds, s), min(dn, n)
        if hi <= lo:
            continue
        for jx, (dw, de) in enumerate(dst.lon_bounds):
            ov = 0.0
            for k in (-1, 0, 1):
                ov += max(0.0, min(de, e + 360 * k) - max(dw, w + 360 * k))
            out[jy, jx] = rect_area(lo, hi, 0.0, ov) / rect_area(ds, dn, dw, de)
    return out


@pytest.mark.parametrize("dst_name", ["4x5", "4x5_lon0", "T63", "T63_180"])
def test_regional_source_dst_fraction_is_exact_area_fraction(dst_name):
    s, n, w, e, dlat, dlon = REGIONAL_SRC
    src = regional_grid(s, n, w, e, dlat, dlon)
    dst = GRIDS[dst_name]()
    wts = conservative_weights(src, dst)
    expected = _hand_fraction(dst, s, n, w, e)
    np.testing.assert_allclose(wts.dst_fraction, expected, rtol=1e-12, atol=1e-15)
    assert np.any((expected > 0) & (expected < 1))  # the test exercises partial cells
    np.testing.assert_allclose(
        wts.src_fraction, 1.0, atol=1e-12
    )  # the source lies inside the globe


def test_regional_source_one_cell_by_hand():
    s, n, w, e, dlat, dlon = REGIONAL_SRC
    src = regional_grid(s, n, w, e, dlat, dlon)
    dst = global_grid(4.0, 5.0, lon0=-180.0)
    frac = conservative_weights(src, dst).dst_fraction
    # dst cell [18, 22] x [60, 65] is covered by [18, 21.5] x [60, 61]
    jy, jx = (18 + 90) // 4, (60 + 180) // 5
    expected = (
        (math.sin(math.radians(21.5)) - math.sin(math.radians(18)))
        / (math.sin(math.radians(22)) - math.sin(math.radians(18)))
        * (1 / 5)
    )
    assert frac[jy, jx] == pytest.approx(expected, rel=1e-13)
    # a cell far away is not covered at all
    assert frac[0, 0] == 0.0


def test_partial_coverage_fracarea_averages_destarea_dilutes():
    s, n, w, e, dlat, dlon = REGIONAL_SRC
    src = regional_grid(s, n, w, e, dlat, dlon)
    dst = gaussian_grid(96)
    wts = conservative_weights(src, dst)
    frac = _hand_fraction(dst, s, n, w, e)
    x = np.full(src.shape, 7.0)
    y_frac = apply_separable(wts, x, normalization="fracarea")
    y_dest = apply_separable(wts, x, normalization="destarea")
    covered = frac > 0
    np.testing.assert_allclose(y_frac[covered], 7.0, rtol=1e-12)
    assert np.all(np.isnan(y_frac[~covered]))
    np.testing.assert_allclose(y_dest, 7.0 * frac, rtol=1e-12, atol=1e-14)
    # destarea conserves the source's mass
    assert _integral(y_dest, dst) == pytest.approx(_integral(x, src), rel=1e-12)


def test_partial_destination_src_fraction():
    """Global source onto a regional destination: src_fraction is the part of each source cell
    inside."""
    src = global_grid(4.0, 5.0, lon0=-180.0)
    dst = regional_grid(-9.5, 21.5, 31.0, 61.0, 0.5, 0.5)
    wts = conservative_weights(src, dst)
    np.testing.assert_allclose(wts.dst_fraction, 1.0, atol=1e-12)
    sf = wts.src_fraction
    # source cell [18, 22] x [60, 65] has [18, 21.5] x [60, 61] inside the destination
    jy, jx = (18 + 90) // 4, (60 + 180) // 5
    expected = rect_area(18, 21.5, 60, 61) / rect_area(18, 22, 60, 65)
    assert sf[jy, jx] == pytest.approx(expected, rel=1e-13)
    assert sf[0, 0] == 0.0
    assert np.all((sf >= 0) & (sf <= 1 + 1e-12))


# -- masked source cells ------------------------------------------------------------------------
def test_masked_source_2x2_to_1x1_by_hand():
    src = CellBounds(np.array([[0.0, 10.0], [10.0, 20.0]]), np.array([[0.0, 10.0], [10.0, 20.0]]))
    dst = CellBounds(np.array([[0.0, 20.0]]), np.array([[0.0, 20.0]]))
    x = np.array([[1.0, 2.0], [np.nan, 4.0]])
    a00 = rect_area(0, 10, 0, 10)
    a01 = rect_area(0, 10, 10, 20)
    a11 = rect_area(10, 20, 10, 20)
    a_dst = rect_area(0, 20, 0, 20)
    wts = conservative_weights(src, dst)
    dest = apply_separable(wts, x, normalization="destarea")
    frac = apply_separable(wts, x, normalization="fracarea")
    assert dest[0, 0] == pytest.approx((a00 * 1 + a01 * 2 + a11 * 4) / a_dst, rel=1e-14)
    assert frac[0, 0] == pytest.approx((a00 * 1 + a01 * 2 + a11 * 4) / (a00 + a01 + a11), rel=1e-14)
    # the input was not modified
    assert np.isnan(x[1, 0])


def test_all_masked_cover_is_nan_with_fracarea_zero_with_destarea():
    src = global_grid(2.0, lon0=0.0)
    dst = global_grid(4.0, lon0=0.0)
    x = np.ones(src.shape)
    x[:2, :2] = np.nan  # exactly the source cells of dst cell (0, 0)
    wts = conservative_weights(src, dst)
    frac = apply_separable(wts, x, normalization="fracarea")
    dest = apply_separable(wts, x, normalization="destarea")
    assert np.isnan(frac[0, 0]) and dest[0, 0] == 0.0
    np.testing.assert_allclose(frac[1:], 1.0, rtol=1e-13)
    # half-masked dst cell (0,1): cells [-90,-88]x[4,6] masked, [-88,-86] valid
    x2 = np.ones(src.shape)
    x2[0, 2:4] = np.nan
    dest2 = apply_separable(wts, x2, normalization="destarea")
    expected = (math.sin(math.radians(-86)) - math.sin(math.radians(-88))) / (
        math.sin(math.radians(-86)) - math.sin(math.radians(-90))
    )
    assert dest2[0, 1] == pytest.approx(expected, rel=1e-13)
    assert apply_separable(wts, x2, normalization="fracarea")[0, 1] == pytest.approx(1.0, rel=1e-13)


def test_leading_dims_and_nan_pattern_varying_in_time():
    src = gaussian_grid(16)
    dst = global_grid(10.0, lon0=0.0)
    rng = np.random.default_rng(3)
    x = rng.uniform(1, 2, size=(2, 3) + src.shape)
    x[0, 1, 3:6, 4:9] = np.nan
    wts = conservative_weights(src, dst)
    y = apply_separable(wts, x, normalization="destarea")
    assert y.shape == (2, 3) + dst.shape
    for i in range(2):
        for j in range(3):
            xi = np.nan_to_num(x[i, j])
            assert _integral(y[i, j], dst) == pytest.approx(_integral(xi, src), rel=1e-12)
    # each time step regridded alone gives the same answer (no cross-talk of masks)
    yf = apply_separable(wts, x, normalization="fracarea")
    np.testing.assert_allclose(
        yf[0, 1], apply_separable(wts, x[0, 1], normalization="fracarea"), rtol=1e-14
    )
    np.testing.assert_allclose(
        yf[1, 2], apply_separable(wts, x[1, 2], normalization="fracarea"), rtol=1e-14
    )


# -- polar rows and the dateline ----------------------------------------------------------------
def test_polar_rows_pole_centred_source():
    """Pole-centred 2.5 deg source (half polar cells) to 1 deg: caps conserved exactly."""
    lat_b = np.vstack([[-90.0, -88.75], regular_edges(-88.75, 88.75, 2.5), [88.75, 90.0]])
    src = CellBounds(lat_b, regular_edges(-1.25, 358.75, 2.5))
    dst = global_grid(1.0)
    rng = np.random.default_rng(5)
    x = rng.uniform(1, 2, size=src.shape)
    y = apply_separable(conservative_weights(src, dst), x)
    assert _integral(y, dst) == pytest.approx(_integral(x, src), rel=1e-12)
    # dst polar row [89, 90] lies inside src polar row [88.75, 90]: values are zonal means... of the
    # overlapping source columns; a zonally constant polar row stays constant
    x[-1, :] = 4.0
    y = apply_separable(conservative_weights(src, dst), x)
    np.testing.assert_allclose(y[-1], 4.0, rtol=1e-13)


def test_dateline_straddling_regional_source():
    src = regional_grid(-10.0, 10.0, 170.0, 190.0, 1.0, 1.0)  # lon 170E .. 170W
    dst = global_grid(1.0, lon0=-180.0)
    wts = conservative_weights(src, dst)
    frac = wts.dst_fraction
    lon_w = dst.lon_bounds[:, 0]
    inside_lon = (lon_w >= 170.0) | (lon_w < -170.0)
    inside_lat = (dst.lat_bounds[:, 0] >= -10.0) & (dst.lat_bounds[:, 1] <= 10.0)
    expected = np.outer(inside_lat, inside_lon).astype(float)
    np.testing.assert_allclose(frac, expected, atol=1e-13)
    np.testing.assert_allclose(wts.src_fraction, 1.0, atol=1e-13)
    # values map to the right side of the dateline: src column 10 is [180, 181] = dst [-180, -179]
    x = np.zeros(src.shape)
    x[:, 10] = 1.0
    y = apply_separable(wts, x)
    assert np.all(y[inside_lat][:, 0] == pytest.approx(1.0))
    assert y.sum() == pytest.approx(20.0)


def test_dateline_straddling_destination_cell():
    src = global_grid(1.0, lon0=0.0)
    dst = CellBounds(np.array([[-1.0, 1.0]]), np.array([[178.0, 182.0]]))
    x = np.zeros(src.shape)
    x[:, 179] = 1.0  # [179, 180]
    x[:, 180] = 3.0  # [180, 181]
    y = apply_separable(conservative_weights(src, dst), x)
    assert y[0, 0] == pytest.approx((1.0 + 3.0) / 4.0, rel=1e-13)


# -- smooth analytic fields, closed-form integrals -----------------------------------------------
@pytest.mark.parametrize(
    "src_name,dst_name,band",
    [
        ("2x2.5", "0.5_lon0", (-30.0, 60.0)),
        ("2x2.5", "0.5_lon0", (60.0, 90.0)),  # polar cap
        ("4x5", "1", (-90.0, -50.0)),  # southern cap
        ("T63", "1", (0.0, 90.0)),  # non-nested: the equator is an edge of both
        ("1", "T63", (-90.0, 0.0)),
    ],
)
def test_sinlat_band_integral(src_name, dst_name, band):
    src, dst = GRIDS[src_name](), GRIDS[dst_name]()
    s, n = band
    x = np.repeat(mean_sinlat(src.lat_bounds)[:, None], src.nlon, axis=1)
    y = apply_separable(conservative_weights(src, dst), x)
    rows = (dst.lat_bounds[:, 0] >= s - 1e-9) & (dst.lat_bounds[:, 1] <= n + 1e-9)
    got = math.fsum((y[rows] * _areas(dst)[rows]).ravel())
    assert got == pytest.approx(integral_sinlat(s, n), rel=1e-12)
    # and the source itself integrates exactly over the same band (edges are shared)
    rows_s = (src.lat_bounds[:, 0] >= s - 1e-9) & (src.lat_bounds[:, 1] <= n + 1e-9)
    assert math.fsum((x[rows_s] * _areas(src)[rows_s]).ravel()) == pytest.approx(
        integral_sinlat(s, n), rel=1e-12
    )


def test_sinlat_coslon_sector_integral_non_nested():
    """f = sin(lat) cos(lon) as exact cell means on T63 (edges 0, 1.875, ...) to 1 deg.

    The sector [0, 90] x [0, 90] is a union of cells of both grids; its integral is R^2 / 2.
    """
    src = gaussian_grid(96, lon0=0.9375)  # lon edges at multiples of 1.875: 0 and 90 are edges
    dst = global_grid(1.0, lon0=-180.0)
    x = np.outer(mean_sinlat(src.lat_bounds), mean_coslon(src.lon_bounds))
    y = apply_separable(conservative_weights(src, dst), x)
    rows = dst.lat_bounds[:, 0] >= 0.0
    cols = (dst.lon_bounds[:, 0] >= 0.0) & (dst.lon_bounds[:, 1] <= 90.0)
    a = _areas(dst)
    got = math.fsum((y[np.ix_(rows, cols)] * a[np.ix_(rows, cols)]).ravel())
    assert got == pytest.approx(integral_sinlat_coslon(0, 90, 0, 90), rel=1e-12)
    assert integral_sinlat_coslon(0, 90, 0, 90) == pytest.approx(0.5, rel=1e-15)
    # whole globe: integral of sin(lat)cos(lon) is 0; check to rounding of the area scale
    assert abs(math.fsum((y * a).ravel())) < 1e-13 * 4 * math.pi


def test_coslon_sector_integral_across_dateline():
    """f = 1 + cos(lon) exact means on 4x5 (lon0=-177.5) to 0.5 deg; sector [170, 190] crosses
    180."""
    src = global_grid(4.0, 5.0, lon0=-177.5)  # edges -177.5 + 5k: 172.5 and 187.5 are edges
    dst = global_grid(0.5, lon0=0.0)
    x = np.outer(np.ones(src.nlat), 1.0 + mean_coslon(src.lon_bounds))
    y = apply_separable(conservative_weights(src, dst), x)
    w_, e_ = 172.5, 187.5
    cols = (dst.lon_bounds[:, 0] >= w_) & (dst.lon_bounds[:, 1] <= e_)
    rows = (dst.lat_bounds[:, 0] >= -30.0) & (dst.lat_bounds[:, 1] <= 30.0)
    a = _areas(dst)
    got = math.fsum((y[np.ix_(rows, cols)] * a[np.ix_(rows, cols)]).ravel())
    band = math.sin(math.radians(30)) - math.sin(math.radians(-30))
    exact = band * (math.radians(e_ - w_) + math.sin(math.radians(e_)) - math.sin(math.radians(w_)))
    assert got == pytest.approx(exact, rel=1e-12)


# -- brute force --------------------------------------------------------------------------------
def _random_grid(rng, nlat, nlon, lat_range=(-90.0, 90.0), lon0=None, lon_span=360.0) -> CellBounds:
    lat_e = np.sort(rng.uniform(*lat_range, nlat - 1))
    lat_e = np.concatenate([[lat_range[0]], lat_e, [lat_range[1]]])
    lon0 = rng.uniform(-360, 360) if lon0 is None else lon0
    lon_e = np.sort(rng.uniform(lon0, lon0 + lon_span, nlon - 1))
    lon_e = np.concatenate([[lon0], lon_e, [lon0 + lon_span]])
    return CellBounds(
        np.column_stack([lat_e[:-1], lat_e[1:]]), np.column_stack([lon_e[:-1], lon_e[1:]])
    )


@pytest.mark.parametrize("seed", range(8))
def test_to_coo_matches_brute_force(seed):
    rng = np.random.default_rng(100 + seed)
    full = seed % 2 == 0
    src = _random_grid(
        rng,
        rng.integers(2, 7),
        rng.integers(2, 8),
        lat_range=(-90.0, 90.0) if full else (-40.0, 70.0),
        lon_span=360.0 if full else 200.0,
    )
    dst = _random_grid(rng, rng.integers(2, 6), rng.integers(2, 9))
    w = conservative_weights(src, dst)
    got = w.to_coo().toarray()
    ref = brute_destarea_weights(src.lat_bounds, src.lon_bounds, dst.lat_bounds, dst.lon_bounds)
    np.testing.assert_allclose(got, ref, rtol=1e-11, atol=1e-14)
    np.testing.assert_allclose(w.dst_fraction.ravel(), ref.sum(axis=1), rtol=1e-11, atol=1e-14)
    # and applying the sparse matrix equals apply_separable
    x = rng.uniform(size=src.shape)
    np.testing.assert_allclose(
        apply_separable(w, x).ravel(), ref @ x.ravel(), rtol=1e-11, atol=1e-14
    )


def test_to_coo_wide_cells_meeting_twice_around_the_globe():
    """A 300-degree source cell and a 300-degree destination cell with shifted origins overlap
    twice."""
    src = CellBounds(np.array([[-90.0, 90.0]]), np.array([[0.0, 300.0], [300.0, 360.0]]))
    dst = CellBounds(np.array([[-90.0, 90.0]]), np.array([[-100.0, 200.0], [200.0, 260.0]]))
    got = conservative_weights(src, dst).to_coo().toarray()
    ref = brute_destarea_weights(src.lat_bounds, src.lon_bounds, dst.lat_bounds, dst.lon_bounds)
    # dst [-100, 200] meets src [0, 300] on [0, 200] and (as [260, 300] - 360) on [-100, -60]: 240
    # deg
    assert ref[0, 0] == pytest.approx(240.0 / 300.0)
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-15)


def test_mismatched_data_shape_is_an_error():
    w = conservative_weights(global_grid(10.0), global_grid(20.0))
    with pytest.raises(WeightsError) as ei:
        apply_separable(w, np.zeros((17, 36)))
    assert "(17, 36)" in str(ei.value) and "(18, 36)" in str(ei.value)
    with pytest.raises(WeightsError) as ei:
        apply_separable(w, np.zeros((18, 36)), normalization="bilinear")
    assert "bilinear" in str(ei.value) and "fracarea" in str(ei.value)


@pytest.mark.parametrize("normalization", ["destarea", "fracarea"])
def test_inf_is_not_treated_as_missing(normalization):
    """Only NaN means missing (apply_separable's docstring); +-inf is bad data and must show up."""
    src = global_grid(2.0, lon0=0.0)
    dst = global_grid(4.0, lon0=0.0)
    x = np.ones(src.shape)
    x[10, 10] = np.inf
    y = apply_separable(conservative_weights(src, dst), x, normalization=normalization)
    assert not np.isfinite(y[5, 5]), f"inf vanished: dst cell (5, 5) = {y[5, 5]}"


# -- slot-by-slot products for short rows (coarse sources) -----------------------------------------
def _coarse_to_fine():
    """T42-like Gaussian source onto a 5 x 6 deg regional target: not nested, a few entries per
    row, so both 1-D products go slot by slot; small enough for the brute-force reference."""
    src = gaussian_grid(16, lon0=0.0)
    dst = regional_grid(30.0, 90.0, -30.0, 60.0, 5.0, 6.0)
    return src, dst


def test_coarse_source_uses_slot_products_equal_to_brute_force_weights():
    src, dst = _coarse_to_fine()
    w = conservative_weights(src, dst)
    assert (
        w.cell_selection is None and w.lon.slots is not None and w.source_rows[2].slots is not None
    )
    x = np.random.default_rng(3).normal(size=(4, *src.shape)).astype(np.float32)
    ref = brute_destarea_weights(src.lat_bounds, src.lon_bounds, dst.lat_bounds, dst.lon_bounds)
    want = (ref @ x.reshape(4, -1).astype(np.float64).T).T.reshape(4, *dst.shape)
    for out_dtype, rtol in ((np.float64, 1e-12), (np.float32, 1e-6)):
        got = apply_separable(w, x, out_dtype=out_dtype)
        assert got.dtype == out_dtype
        np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * np.abs(want).max())
    # fracarea over a fully covered target equals destarea
    np.testing.assert_allclose(
        apply_separable(w, x, normalization="fracarea"), want, rtol=1e-12, atol=1e-12
    )


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("normalization", ["destarea", "fracarea"])
def test_coarse_source_bad_cell_reaches_only_the_cells_it_overlaps(bad, normalization):
    """Only stored entries are multiplied (a dense product would spread a non-finite cell over its
    whole row: 0 * inf = NaN), so a NaN is missing and an inf shows up only where the cell
    overlaps."""
    src, dst = _coarse_to_fine()
    w = conservative_weights(src, dst)
    rng = np.random.default_rng(4)
    x = rng.normal(size=(3, *src.shape))
    iy, ix = int(np.flatnonzero(src.lat_bounds[:, 0] >= 45.0)[-1]), 3  # a cell inside the target
    clean = apply_separable(w, x, normalization=normalization)
    x[1, iy, ix] = bad
    got = apply_separable(w, x, normalization=normalization)
    ref = brute_destarea_weights(src.lat_bounds, src.lon_bounds, dst.lat_bounds, dst.lon_bounds)
    touched = (ref[:, iy * src.nlon + ix] > 0).reshape(dst.shape)
    assert 0 < touched.sum() < touched.size
    # other time steps: the same to rounding (the block took the sparse product, summing in another
    # order)
    np.testing.assert_allclose(got[[0, 2]], clean[[0, 2]], rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(got[1][~touched], clean[1][~touched], rtol=1e-13)
    if np.isnan(
        bad
    ):  # missing: with destarea it counts as zero; fracarea averages the rest (NaN if none)
        only_bad = (ref[:, iy * src.nlon + ix] > 1 - 1e-12).reshape(dst.shape)
        np.testing.assert_array_equal(
            np.isfinite(got[1]), ~only_bad if normalization == "fracarea" else True
        )
        x[1, iy, ix] = 0.0
        if normalization == "destarea":
            np.testing.assert_allclose(got[1], apply_separable(w, x)[1], rtol=1e-13, atol=1e-15)
    else:
        assert not np.any(np.isfinite(got[1][touched]))


@pytest.mark.parametrize("axis", [-1, -2])
def test_slot_product_is_the_reduceat_sum_bit_for_bit(axis):
    """Rows of 0..8 entries (padding never added: -0 and inf stay where they are): the slot-by-slot
    product equals, bit for bit, ``np.add.reduceat`` over the gathered products (the order it sums
    <= 8 terms in: the first plus the sequential sum of the rest), and the exact sum to rounding."""
    from gridflux.kernels.conservative import SLOTS_MAX, Overlap1D

    rng = np.random.default_rng(7)
    n_in = 40
    counts = np.array([0, 1, 2, 3, 8, 5, 1, 0, 4, 7, 6, 2, 1])
    rows = np.repeat(np.arange(counts.size), counts)
    cols = np.concatenate([rng.choice(n_in, c, replace=False) for c in counts])
    op = Overlap1D.from_triplets(rows, cols, rng.uniform(0.1, 1.0, rows.size), (counts.size, n_in))
    assert op.slots is not None and int(np.diff(op.indptr).max()) == SLOTS_MAX
    x = rng.normal(size=(3, n_in, 5)) if axis == -2 else rng.normal(size=(3, 5, n_in))
    x = x.astype(np.float32)
    x.reshape(-1)[::37] = -0.0
    x.reshape(-1)[::53] = np.inf
    got = op.apply(x, axis=axis)
    bshape = [1, 1, 1]
    bshape[axis] = op.data.size
    gathered = np.take(x, op.indices, axis=axis) * op.data.reshape(bshape)
    a = axis % 3
    want = np.zeros(got.shape)
    for j in np.flatnonzero(counts):
        sl = [slice(None)] * 3
        sl[a] = slice(op.indptr[j], op.indptr[j + 1])
        out = [slice(None)] * 3
        out[a] = j
        want[tuple(out)] = np.add.reduceat(gathered[tuple(sl)], [0], axis=a).squeeze(a)
    np.testing.assert_array_equal(got.view(np.uint64), want.view(np.uint64))
    dense = op.toarray()  # the exact sums (finite cells only), to rounding
    x64 = np.where(np.isfinite(x), x, 0.0).astype(np.float64)
    ref = np.einsum("ji,tiy->tjy", dense, x64) if a == 1 else np.einsum("ji,tyi->tyj", dense, x64)
    fin = np.isfinite(got)
    np.testing.assert_allclose(got[fin], ref[fin], rtol=1e-12, atol=1e-12)
