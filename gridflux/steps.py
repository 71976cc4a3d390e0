"""The per-block step that workers run: one read of a time block -> its totals and its cube piece.

A block is ``(months, lat, lon)`` of one canonical series on its native grid. From the same
in-memory block the step computes the region totals (fused dot product with native-grid
weights) and, if asked, the regridded cube on the clipped target grid, which it writes straight
into the store with a chunk-aligned region write. Weights are rebuilt per worker process and
memoised (exact separable weights cost milliseconds).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from gridflux.grids import CellBounds
from gridflux.masks import RegionMask
from gridflux.regrid.kernels import apply_separable
from gridflux.regrid.xarray import cached_weights
from gridflux.store import TG_PER_KG, write_cube_block
from gridflux.totals import nonzero_rows, protocol_weights, weighted_sums

_NATIVE_WEIGHTS: OrderedDict[tuple, tuple[np.ndarray, slice]] = OrderedDict()


@dataclass(frozen=True)
class BlockJob:
    """What a worker needs to process the blocks of one series (small; pickled once per task)."""

    src_grid: CellBounds
    mask_key: str
    protocol: str
    target: CellBounds
    radius: float
    kind: str  # flux | stock
    cube_grid: CellBounds | None = None
    store_url: str | None = None
    zarr_format: int = 3
    variable: str = ""
    member_index: int = 0


def native_weights(job: BlockJob, mask: RegionMask) -> tuple[np.ndarray, slice]:
    """Protocol weights on the series' native grid and their nonzero rows, memoised per process."""
    key = (job.src_grid.fingerprint(), job.mask_key, job.protocol, job.target.fingerprint(), job.radius)
    hit = _NATIVE_WEIGHTS.get(key)
    if hit is None:
        w = protocol_weights(job.src_grid, mask, protocol=job.protocol, target=job.target, radius=job.radius)
        hit = (w, nonzero_rows(w))
        _NATIVE_WEIGHTS[key] = hit
        if len(_NATIVE_WEIGHTS) > 16:
            _NATIVE_WEIGHTS.popitem(last=False)
    return hit


def process_block(
    block: np.ndarray,
    seconds: np.ndarray,
    positions: np.ndarray,
    job: BlockJob,
    mask: RegionMask,
    storage_options: dict | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Totals (Tg per month, or Tg for stocks) of one block; writes its cube piece if asked.

    Parameters
    ----------
    block : (t, nlat, nlon) canonical values (kg m-2 s-1 or kg m-2), NaN = no data
    seconds : (t,) seconds of each month in the series' calendar
    positions : (t,) indices of the months on the store's common time axis
    job, mask : the series' job description and the region mask

    Returns
    -------
    positions, totals (t, region) float64
    """
    w, rows = native_weights(job, mask)
    sums = weighted_sums(block, w, rows)  # kg s-1 (flux) or kg (stock)
    if job.kind == "flux":
        sums = sums * np.asarray(seconds, dtype=np.float64)[:, None]
    totals = sums * TG_PER_KG
    if job.cube_grid is not None and job.store_url is not None:
        cube = apply_separable(cached_weights(job.src_grid, job.cube_grid, job.radius), block, normalization="destarea",
                               out_dtype=np.float32)
        for sl, part in _contiguous_runs(positions, cube):
            write_cube_block(job.store_url, storage_options or {}, job.zarr_format, job.variable, job.member_index, sl, part)
    return positions, totals


def _contiguous_runs(positions: np.ndarray, data: np.ndarray):
    """Split ``data`` along its first axis into runs of consecutive positions (slices of the axis)."""
    positions = np.asarray(positions)
    if positions.size == 0:
        return
    breaks = np.flatnonzero(np.diff(positions) != 1) + 1
    for idx in np.split(np.arange(positions.size), breaks):
        yield slice(int(positions[idx[0]]), int(positions[idx[-1]]) + 1), data[idx[0] : idx[-1] + 1]
