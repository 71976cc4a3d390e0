"""Each region's totals and means are independent of the other regions computed with it, and of
the latitude rows a block holds (issue 16, point 5: a store that gains a region computes it alone,
and must get the bits a run of every region gets).

Truths: ``math.fsum`` of the products (to 1e-13), and the same kernel on one region alone (bit
for bit). The kernels sum a region's products over its own cells in C order with numpy's pairwise
sum, so these equalities are exact; a matrix product over all regions at once is not (its
blocking and the rows it visits change with the region set): see the last test.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from gridflux.errors import MaskError
from gridflux.fields.statistics import weighted_means
from gridflux.fields.totals import RegionCells, cell_means, cell_sums, weighted_sums


def _weights(rng, nr=6, ny=60, nx=90) -> np.ndarray:
    """``nr`` regions of random fractional weights in random latitude bands (some overlapping,
    one crossing the date line, one empty)."""
    w = np.zeros((nr, ny, nx))
    for k in range(nr - 1):
        r0 = int(rng.integers(0, ny - 12))
        r1 = int(rng.integers(r0 + 1, min(ny, r0 + 30)))
        c0 = int(rng.integers(0, nx))
        width = int(rng.integers(5, nx))
        cols = (c0 + np.arange(width)) % nx
        w[k][np.ix_(np.arange(r0, r1), cols)] = rng.uniform(0.05, 1.0, (r1 - r0, width)) * 1e9
    return w  # the last region has no cell


def _block(rng, nt=12, ny=60, nx=90, dtype=np.float32) -> np.ndarray:
    x = (rng.uniform(-1, 3, (nt, ny, nx)) * 1e-8).astype(dtype)
    x[2, 10:40, 5:30] = np.nan  # no data in some cells of one month
    x[5] = np.nan  # a month with no value at all
    return x


def _bits(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float64).view(np.uint64)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_region_alone_gets_the_bits_it_gets_with_any_other_regions(dtype):
    rng = np.random.default_rng(11)
    w = _weights(rng)
    x = _block(rng, dtype=dtype)
    cells = RegionCells.from_weights(w)
    whole = cell_sums(x, cells)
    means, covered = cell_means(x, cells)
    for k in range(w.shape[0]):
        alone = cell_sums(x, RegionCells.from_weights(w[k : k + 1]))
        assert np.array_equal(_bits(alone[:, 0]), _bits(whole[:, k])), k
        m, c = cell_means(x, cells.select([k]))
        assert np.array_equal(m[:, 0], means[:, k], equal_nan=True), k
        assert np.array_equal(_bits(c[:, 0]), _bits(covered[:, k])), k
    for subset in ([3, 0], [5, 1, 4], [2, 2]):  # any order, any subset, a region twice
        got = cell_sums(x, cells.select(subset))
        assert np.array_equal(_bits(got), _bits(whole[:, subset])), subset
        via_weights = weighted_sums(x, w[subset])
        assert np.array_equal(_bits(via_weights), _bits(whole[:, subset])), subset
    # and against an independent truth: fsum of the products, NaN cells left out
    xf = np.nan_to_num(x.astype(np.float64), nan=0.0)
    for t in (0, 2, 7):
        for k in range(w.shape[0]):
            want = math.fsum((xf[t] * w[k]).ravel())
            assert whole[t, k] == pytest.approx(want, rel=1e-13, abs=1e-300)
    assert (whole[5] == 0).all()  # no value at all: callers mark it (no_data_months)
    assert (whole[:, -1] == 0).all() and np.isnan(means[:, -1]).all()


def test_the_rows_a_block_holds_and_its_months_do_not_change_a_bit():
    """A block of only some rows (the union of the regions computed, or the cube's rows) and any
    number of months gives each region the same bits."""
    rng = np.random.default_rng(12)
    w = _weights(rng)
    x = _block(rng)
    cells = RegionCells.from_weights(w)
    whole = cell_sums(x, cells)
    means = cell_means(x, cells)[0]
    for k in range(w.shape[0]):
        one = cells.select([k])
        rows = one.rows
        for r0, r1 in ((rows.start, rows.stop), (max(0, rows.start - 3), min(60, rows.stop + 5))):
            if r1 <= r0:
                continue
            part = cell_sums(x[:, r0:r1], one, row0=r0)
            assert np.array_equal(_bits(part[:, 0]), _bits(whole[:, k])), (k, r0, r1)
            m = cell_means(x[:, r0:r1], one, row0=r0)[0]
            assert np.array_equal(m[:, 0], means[:, k], equal_nan=True), (k, r0, r1)
    # months one by one, or in uneven blocks: each month's sums are its own
    by_month = np.concatenate([cell_sums(x[t : t + 1], cells) for t in range(12)])
    assert np.array_equal(_bits(by_month), _bits(whole))
    uneven = np.concatenate([cell_sums(x[a:b], cells) for a, b in ((0, 5), (5, 7), (7, 12))])
    assert np.array_equal(_bits(uneven), _bits(whole))


def test_a_block_without_a_regions_rows_is_refused():
    w = np.zeros((1, 10, 4))
    w[0, 7, 1] = 1.0
    cells = RegionCells.from_weights(w)
    with pytest.raises(MaskError, match="outside the rows"):
        cell_sums(np.ones((1, 5, 4)), cells, row0=0)
    assert cell_sums(np.ones((1, 5, 4)), cells, row0=5).tolist() == [[1.0]]


def test_an_infinite_value_reaches_only_the_regions_whose_cells_hold_it():
    w = np.zeros((2, 4, 4))
    w[0, :2] = 1.0
    w[1, 2:] = 2.0
    x = np.ones((1, 4, 4))
    x[0, 3, 3] = np.inf
    got = cell_sums(x, RegionCells.from_weights(w))
    assert got[0, 0] == 8.0 and got[0, 1] == np.inf
    means = cell_means(x, RegionCells.from_weights(w))[0]
    assert means[0, 0] == 1.0 and means[0, 1] == np.inf


def test_a_land_fraction_scales_the_cells_weights():
    rng = np.random.default_rng(13)
    w = _weights(rng)
    lf = rng.uniform(0, 1, w.shape[1:])
    lf[:, ::3] = 0.0
    x = _block(rng, dtype=np.float64)
    got, covered = cell_means(x, RegionCells.from_weights(w).scaled(lf))
    want, want_cov = weighted_means(x, w * lf[None])
    np.testing.assert_allclose(got, want, rtol=1e-13)
    np.testing.assert_allclose(covered, want_cov, rtol=1e-13)
    with pytest.raises(MaskError):
        RegionCells.from_weights(w).scaled(lf[:-1])
