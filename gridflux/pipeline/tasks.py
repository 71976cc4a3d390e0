"""What workers run: open a series, then one read per time block -> its totals and its cube piece.

A task is a *span* of consecutive time blocks of one series (:func:`process_span`). The worker
opens the series itself (lazily, through the same ``catalog.load_series`` a user would call), so
the driver never touches the data files and its work per series stays a few milliseconds; opened
series are memoised per worker process, keyed by the inputs' fingerprint.

A block is ``(months, lat, lon)`` of one canonical series on its native grid
(:func:`process_block`). From the same in-memory block the step computes the region totals
(fused dot product with native-grid weights) and, if asked, the regridded cube on the clipped
target grid, which it writes straight into the store with a chunk-aligned region write. Weights
are rebuilt per worker process and memoised (exact separable weights cost milliseconds).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np

from gridflux.errors import StoreError
from gridflux.fields.masks import RegionMask
from gridflux.fields.regrid import cached_weights
from gridflux.fields.statistics import weighted_means
from gridflux.fields.timeaxis import span_label
from gridflux.fields.totals import (
    no_data_months,
    nonzero_rows,
    protocol_weights,
    weighted_sums,
)
from gridflux.kernels.conservative import SeparableWeights, apply_separable
from gridflux.kernels.grids import CellBounds
from gridflux.pipeline.store import TG_PER_KG, write_cube_block

_NATIVE_WEIGHTS: OrderedDict[tuple, tuple[np.ndarray, slice]] = OrderedDict()
_CUBE_WEIGHTS: OrderedDict[tuple, SeparableWeights] = OrderedDict()
# canonical datasets this worker process has opened
_OPENED: OrderedDict[tuple, Any] = OrderedDict()
OPENED_MAX = 8


@dataclass(frozen=True, kw_only=True)
class BlockJob:
    """What a worker needs to process the blocks of one series (small; pickled once per task)."""

    src_grid: CellBounds
    mask_key: str
    protocol: str
    target: CellBounds
    radius: float
    kind: str  # flux | stock (totals) | mean
    cube_grid: CellBounds | None = None
    store_url: str | None = None
    zarr_format: int = 3
    variable: str = ""
    member_index: int = 0


def native_weights(job: BlockJob, mask: RegionMask) -> tuple[np.ndarray, slice]:
    """Protocol weights on the series' native grid and their nonzero rows, memoised per process."""
    key = (
        job.src_grid.fingerprint(),
        job.mask_key,
        job.protocol,
        job.target.fingerprint(),
        job.radius,
    )
    hit = _NATIVE_WEIGHTS.get(key)
    if hit is None:
        w = protocol_weights(
            job.src_grid, mask, protocol=job.protocol, target=job.target, radius=job.radius
        )
        hit = (w, nonzero_rows(w))
        _NATIVE_WEIGHTS[key] = hit
        if len(_NATIVE_WEIGHTS) > 16:
            _NATIVE_WEIGHTS.popitem(last=False)
    return hit


def cube_weights(job: BlockJob, rows_read: slice | None) -> SeparableWeights:
    """Weights from the rows read of the series' grid to the cube grid, memoised per process (one
    lookup per block instead of a sub-grid and two hashes of its bounds)."""
    assert job.cube_grid is not None
    r0, r1, _ = (rows_read or slice(None)).indices(job.src_grid.nlat)
    key = (job.src_grid.fingerprint(), r0, r1, job.cube_grid.fingerprint(), job.radius)
    hit = _CUBE_WEIGHTS.get(key)
    if hit is None:
        src = (
            job.src_grid
            if (r0, r1) == (0, job.src_grid.nlat)
            else job.src_grid.subset(slice(r0, r1))
        )
        hit = cached_weights(src, job.cube_grid, job.radius)
        _CUBE_WEIGHTS[key] = hit
        if len(_CUBE_WEIGHTS) > 16:
            _CUBE_WEIGHTS.popitem(last=False)
    return hit


def rows_to_read(job: BlockJob, mask: RegionMask) -> slice:
    """The latitude rows of the series' grid that a block must hold: those where a totals weight is
    nonzero and, with cubes, those that overlap the cube grid (the mask's bounding box), so a region
    north of 45N reads a quarter of a global field either way."""
    rows = native_weights(job, mask)[1]
    if job.cube_grid is None:
        return rows
    c0, c1, _ = cached_weights(job.src_grid, job.cube_grid, job.radius).source_rows
    if c1 <= c0:  # the series does not reach the cube grid (its cube is zeros): whole fields
        return slice(0, job.src_grid.nlat)
    if rows.stop <= rows.start:
        return slice(c0, c1)
    return slice(min(rows.start, c0), max(rows.stop, c1))


def process_block(
    block: np.ndarray,
    seconds: np.ndarray,
    positions: np.ndarray,
    job: BlockJob,
    mask: RegionMask,
    storage_options: dict | None = None,
    rows_read: slice | None = None,
    empty: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Totals (Tg per month, or Tg for stocks) of one block; writes its cube piece if asked.

    A month whose whole field holds no value (all NaN: ``_FillValue``, ``missing_value``) is a
    missing month: its totals are NaN for every region, and its cube piece NaN. NaN cells of a
    month with data elsewhere count as 0 (ocean cells of a land model).

    Parameters
    ----------
    block : (t, nlat, nlon) canonical values (kg m-2 s-1 or kg m-2), NaN = no data
    seconds : (t,) seconds of each month in the series' calendar
    positions : (t,) indices of the months on the store's common time axis
    job, mask : the series' job description and the region mask
    rows_read : the block holds only these latitude rows of the series' grid (they must cover
        :func:`rows_to_read`); None: whole fields
    empty : (t,) bool, the months whose whole field has no value (:func:`no_data_months` of the
        whole fields); None: taken from ``block`` (right when it holds whole fields)

    Returns
    -------
    positions, totals (t, region) float64
    """
    w, rows = native_weights(job, mask)
    if rows_read is not None:
        r0, r1, _ = rows_read.indices(w.shape[1])
        w = w[:, r0:r1]
        rows = slice(rows.start - r0, rows.stop - r0) if rows.stop > rows.start else slice(0, 0)
    if job.kind == "mean":  # intensive: exact area-weighted means in the field's own unit
        totals = weighted_means(block, w, rows)[0]
    else:
        sums = weighted_sums(block, w, rows)  # kg s-1 (flux) or kg (stock)
        if job.kind == "flux":
            sums = sums * np.asarray(seconds, dtype=np.float64)[:, None]
        totals = sums * TG_PER_KG
    empty = no_data_months(block) if empty is None else np.asarray(empty, dtype=bool)
    totals[empty] = np.nan  # a missing month is NaN, never 0
    if job.cube_grid is not None and job.store_url is not None:
        cube = apply_separable(
            cube_weights(job, rows_read),  # rows read: the same cells, the same overlaps
            block,
            normalization="destarea",
            out_dtype=np.float32,
        )
        cube[empty] = np.nan
        for sl, part in _contiguous_runs(positions, cube):
            write_cube_block(
                job.store_url,
                storage_options or {},
                job.zarr_format,
                job.variable,
                job.member_index,
                sl,
                part,
            )
    return positions, totals


def _contiguous_runs(positions: np.ndarray, data: np.ndarray):
    """Split ``data`` along its first axis into runs of consecutive positions (slices of the
    axis)."""
    positions = np.asarray(positions)
    if positions.size == 0:
        return
    breaks = np.flatnonzero(np.diff(positions) != 1) + 1
    for idx in np.split(np.arange(positions.size), breaks):
        yield slice(int(positions[idx[0]]), int(positions[idx[-1]]) + 1), data[idx[0] : idx[-1] + 1]


@dataclass(frozen=True, kw_only=True)
class SeriesJob:
    """What a worker needs to compute any span of one series (small; one graph key per series).

    ``months`` are the ``(year, month)`` the driver expects the series to hold (from the catalog's
    ``time_range`` or from opening it); ``positions`` their indices on the store's time axis;
    ``fingerprint_key`` identifies the inputs' versions (a changed file is opened afresh)."""

    record: Any  # catalog.SeriesRecord
    fingerprint_key: str
    months: tuple[tuple[int, int], ...]
    positions: np.ndarray
    mask_key: str
    protocol: str
    target: CellBounds
    radius: float
    time_chunk: int
    cube_grid: CellBounds | None = None
    store_url: str | None = None
    zarr_format: int = 3
    member_index: int = 0


def open_canonical(job: SeriesJob, storage_options: dict | None) -> Any:
    """The series' canonical field for reading blocks (``fastopen.FastSeries``, or a
    ``fastopen.DatasetView`` of ``catalog.load_series``), opened once per worker process and
    inputs' version.

    Raises :class:`~gridflux.errors.StoreError` when the files hold other months than expected."""
    from gridflux.ingest import fastopen

    key = (job.record.key, tuple(job.record.paths), job.fingerprint_key, job.time_chunk)
    ds = _OPENED.get(key)
    if ds is None:
        ds = fastopen.open_series_view(
            job.record, storage_options=storage_options, chunks={"time": job.time_chunk}
        )
        found = ds.months
        if found != tuple(job.months):
            files = ", ".join(job.record.paths[:2]) + (" ..." if len(job.record.paths) > 2 else "")
            raise StoreError(
                f"{job.record.key}: the files ({files}) hold {span_label(found)}, but "
                f"{span_label(job.months)} were expected (the catalog's time_range, or the months "
                "the store was planned with); fix the catalog or write to a new store"
            )
        _OPENED[key] = ds
        while len(_OPENED) > OPENED_MAX:
            _OPENED.popitem(last=False)
    else:
        _OPENED.move_to_end(key)
    return ds


def forget_opened() -> None:
    """Drop this process's opened series (their file handles close)."""
    _OPENED.clear()


def process_span(
    job: SeriesJob,
    blocks: tuple[tuple[int, int], ...],
    mask: RegionMask,
    storage_options: dict | None = None,
) -> list[tuple[np.ndarray, np.ndarray, int, list[str]]]:
    """Open the series (memoised) and run :func:`process_block` on each ``(start, stop)`` block.

    ``blocks`` index the series' months; each is read once (a synchronous dask compute of that
    block only, so memory is bounded by one block). Returns ``(positions, totals, bytes)`` per
    block.
    """
    ds = open_canonical(job, storage_options)
    seconds = ds.seconds
    bjob = BlockJob(
        src_grid=ds.grid,
        mask_key=job.mask_key,
        protocol=job.protocol,
        target=job.target,
        radius=job.radius,
        kind=ds.kind,
        cube_grid=job.cube_grid,
        store_url=job.store_url,
        zarr_format=job.zarr_format,
        variable=job.record.variable,
        member_index=job.member_index,
    )
    # only the latitude rows the totals and the cube need are read (deflated chunks are still
    # inflated whole, but only those rows are unshuffled and copied)
    rows_read = rows_to_read(bjob, mask)
    bytes_per_month = int(ds.value_dtype.itemsize * np.prod(ds.shape[1:]))
    fixes = list(getattr(ds, "fixes", ()))
    out = []
    for i0, i1 in blocks:
        block = ds.read(i0, i1, rows_read)
        empty = no_data_months(block)
        whole_fields = rows_read is None or rows_read.indices(ds.shape[1])[:2] == (0, ds.shape[1])
        if empty.any() and not whole_fields:
            # no value in the rows read: a missing month only if the whole field has none (rare,
            # so those months alone are read again whole)
            for k in np.flatnonzero(empty):
                whole = ds.read(i0 + k, i0 + k + 1, None)
                empty[k] = bool(no_data_months(whole)[0])
        pos, tot = process_block(
            block,
            seconds[i0:i1],
            job.positions[i0:i1],
            bjob,
            mask,
            storage_options,
            rows_read=rows_read,
            empty=empty,
        )
        out.append((pos, tot, bytes_per_month * (i1 - i0), fixes))
    return out
