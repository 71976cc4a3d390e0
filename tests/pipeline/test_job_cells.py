"""The cells a worker derives per series (regions selected, weights times a land fraction) are
built once per series and keyed by what they come from, never shared between two series."""

from __future__ import annotations

import math

import numpy as np

from gridflux.fields.masks import RegionMask
from gridflux.kernels.grids import global_grid
from gridflux.pipeline.runner import mask_key
from gridflux.pipeline.tasks import BlockJob, job_cells, process_block


def _mask() -> RegionMask:
    g = global_grid(10.0, 10.0, -180.0)
    f = np.zeros((2, *g.shape))
    f[0, 12:15, :] = 1.0  # 30N..60N
    f[1, 15:17, 3:6] = 1.0  # 60N..80N, 150W..120W
    return RegionMask(("mid", "polar"), f, g)


def _job(mask: RegionMask, **kw) -> BlockJob:
    return BlockJob(
        src_grid=mask.grid,
        mask_key=mask_key(mask),
        protocol="regrid-mask",
        target=mask.grid,
        radius=6371007.181,
        kind="mean",
        **kw,
    )


def test_derived_cells_are_built_once_per_series_and_keyed_by_their_inputs():
    mask = _mask()
    lf_a = np.full(mask.grid.shape, 0.5)
    lf_b = np.full(mask.grid.shape, 0.25)
    job_a = _job(mask, land_fraction=lf_a, regions=(1,))
    first = job_cells(job_a, mask, lf_a)
    assert job_cells(job_a, mask, lf_a) is first  # the next block: the same object
    other = job_cells(_job(mask, land_fraction=lf_b, regions=(1,)), mask, lf_b)
    assert other is not first
    both = job_cells(_job(mask, land_fraction=lf_a), mask, lf_a)
    assert len(first) == 1 and len(both) == 2
    # the weights: the polar region's cell areas times the series' own land fraction
    area = job_cells(_job(mask), mask).weight[1]
    np.testing.assert_array_equal(first.weight[0], area * 0.5)
    np.testing.assert_array_equal(both.weight[1], area * 0.5)
    np.testing.assert_array_equal(other.weight[0], area * 0.25)
    assert math.isclose(float(area.sum()), float(_polar_area(mask)), rel_tol=1e-12)


def _polar_area(mask: RegionMask) -> float:
    """60N..80N x 30 deg of longitude on a sphere of radius R: R^2 dlon (sin 80 - sin 60)."""
    r = 6371007.181
    return r * r * math.radians(30.0) * (math.sin(math.radians(80)) - math.sin(math.radians(60)))


def test_a_land_weighted_mean_is_the_same_for_every_block_of_a_series():
    """x = 1 on land, 3 elsewhere; land fraction 1 in the polar box's west half, 0 east: the
    land-weighted polar mean is 1 in every block (the derived cells reused across blocks)."""
    mask = _mask()
    lf = np.zeros(mask.grid.shape)
    lf[15:17, 3] = 1.0
    x = np.where(lf > 0, 1.0, 3.0)[None].repeat(3, axis=0)
    job = _job(mask, land_fraction=lf, regions=(1,))
    for _ in range(2):
        _, means = process_block(x, np.full(3, 86400.0), np.arange(3), job, mask)
        assert means.shape == (3, 1) and np.all(means == 1.0)
