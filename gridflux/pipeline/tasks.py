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

import errno
import time
from collections import OrderedDict
from contextlib import closing
from dataclasses import dataclass
from typing import Any

import numpy as np

from gridflux.errors import StoreError, StoreWriteError
from gridflux.fields.masks import RegionMask
from gridflux.fields.regrid import cached_weights
from gridflux.fields.timeaxis import Month, span_label
from gridflux.fields.totals import (
    RegionCells,
    cell_means,
    cell_sums,
    no_data_months,
    protocol_weights,
)
from gridflux.kernels.conservative import SeparableWeights, apply_separable
from gridflux.kernels.grids import CellBounds
from gridflux.pipeline.readahead import read_blocks
from gridflux.pipeline.store import (
    TG_PER_KG,
    TotalsTarget,
    write_cube_block,
    write_totals_blocks,
)

_NATIVE_WEIGHTS: OrderedDict[tuple, RegionCells] = OrderedDict()
#: cells derived from native ones (regions selected, weights times a land fraction), by the ids
#: of what they come from, with those objects (compared by identity: an id may be reused)
_DERIVED_CELLS: OrderedDict[tuple, tuple[RegionCells, Any, RegionCells]] = OrderedDict()
#: source grids x protocols whose weights (each region's cells) a worker process keeps (least
#: recently used dropped; a 0.5 deg grid's cells for a partition of the land are a few MB)
NATIVE_WEIGHTS_MAX = 16
# the mask on a regrid-data target grid, by (mask key, target grid): the same for every source
_MASK_ON_TARGET: OrderedDict[tuple[str, str], RegionMask] = OrderedDict()
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
    #: (lat, lon) land fraction (0..1, canonical order) a land-weighted mean's weights are
    #: multiplied by; None: area weights only
    land_fraction: np.ndarray | None = None
    #: the mask's regions (indices) to compute, in this order; None: every region
    regions: tuple[int, ...] | None = None


def native_weights(job: BlockJob, mask: RegionMask) -> RegionCells:
    """Protocol weights on the series' native grid, as each region's cells, memoised per process
    by content (the source grid's edges, the mask's key, the protocol, the target's edges, the
    radius), so series that share a grid share them. For ``regrid-data`` the mask on the target
    grid, the costly part (a conservative regrid of the mask: ~45 ms on a 0.5 deg target) and the
    same for every source grid, is memoised on its own (:func:`mask_on_target`)."""
    target_fp = job.target.cache_key()
    key = (job.src_grid.cache_key(), job.mask_key, job.protocol, target_fp, job.radius)
    hit = _NATIVE_WEIGHTS.get(key)
    if hit is None:
        # protocol_weights brings the mask onto the target itself; a mask already on it is used
        # as it is (RegionMask.to_grid): the same weights, without regridding the mask again
        given = mask
        if job.protocol == "regrid-data":
            given = mask_on_target(mask, job.mask_key, job.target, target_fp)
        w = protocol_weights(
            job.src_grid, given, protocol=job.protocol, target=job.target, radius=job.radius
        )
        hit = RegionCells.from_weights(w)
        _NATIVE_WEIGHTS[key] = hit
        while len(_NATIVE_WEIGHTS) > NATIVE_WEIGHTS_MAX:
            _NATIVE_WEIGHTS.popitem(last=False)
    else:
        _NATIVE_WEIGHTS.move_to_end(key)
    return hit


def job_cells(
    job: BlockJob, mask: RegionMask, land_fraction: np.ndarray | None = None
) -> RegionCells:
    """The cells of the regions ``job`` computes (:func:`native_weights`, selected), their
    weights times ``land_fraction`` when given; memoised per process (the derived cells, their
    gather index and weight sums, are built once per series, not once per block)."""
    cells = native_weights(job, mask)
    if job.regions is None and land_fraction is None:
        return cells
    key = (id(cells), job.regions, id(land_fraction))
    hit = _DERIVED_CELLS.get(key)
    if hit is not None and hit[0] is cells and hit[1] is land_fraction:  # ids not reused
        return hit[2]
    derived = cells if job.regions is None else cells.select(job.regions)
    if land_fraction is not None:
        derived = derived.scaled(land_fraction)
    _DERIVED_CELLS[key] = (cells, land_fraction, derived)
    while len(_DERIVED_CELLS) > NATIVE_WEIGHTS_MAX:
        _DERIVED_CELLS.popitem(last=False)
    return derived


def mask_on_target(
    mask: RegionMask, mask_key: str, target: CellBounds, target_fp: str | None = None
) -> RegionMask:
    """``mask.to_grid(target)``, memoised per process by the mask's key and the target's edges."""
    key = (mask_key, target_fp or target.cache_key())
    hit = _MASK_ON_TARGET.get(key)
    if hit is None:
        hit = _MASK_ON_TARGET[key] = mask.to_grid(target)
        while len(_MASK_ON_TARGET) > 4:
            _MASK_ON_TARGET.popitem(last=False)
    return hit


def cube_weights(job: BlockJob, rows_read: slice | None) -> SeparableWeights:
    """Weights from the rows read of the series' grid to the cube grid, memoised per process (one
    lookup per block instead of a sub-grid and two hashes of its bounds)."""
    assert job.cube_grid is not None
    r0, r1, _ = (rows_read or slice(None)).indices(job.src_grid.nlat)
    key = (job.src_grid.cache_key(), r0, r1, job.cube_grid.cache_key(), job.radius)
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
    north of 45N reads a quarter of a global field either way (and a task computing only some
    regions reads their rows)."""
    rows = job_cells(job, mask).rows
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
    store_options: dict | None = None,
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
    land = job.land_fraction if job.kind == "mean" else None  # land-weighted: area x fraction
    cells = job_cells(job, mask, land)
    row0 = 0 if rows_read is None else rows_read.indices(cells.shape[0])[0]
    if job.kind == "mean":  # intensive: exact area-weighted means in the field's own unit
        totals = cell_means(block, cells, row0)[0]
    else:
        sums = cell_sums(block, cells, row0)  # kg s-1 (flux) or kg (stock)
        if job.kind == "flux":
            sums = sums * np.asarray(seconds, dtype=np.float64)[:, None]
        totals = sums * TG_PER_KG
    empty = no_data_months(block) if empty is None else np.asarray(empty, dtype=bool)
    totals[empty] = np.nan  # a missing month is NaN, never 0
    if job.cube_grid is not None and job.store_url is not None:
        cube = apply_separable(
            cube_weights(job, rows_read),  # rows read: the same cells, the same overlaps
            block,
            normalization=cube_normalization(job.kind),
            out_dtype=np.float32,
        )
        cube[empty] = np.nan
        for sl, part in _contiguous_runs(positions, cube):
            write_cube_block(
                job.store_url,
                store_options or {},
                job.zarr_format,
                job.variable,
                job.member_index,
                sl,
                part,
            )
    return positions, totals


def cube_normalization(kind: str) -> str:
    """How a cube is regridded: ``destarea`` for totals (a missing source cell counts as zero
    flux, so the cube sums back to the totals), ``fracarea`` for means (each target cell is the
    average over the part of it covered by *finite* source cells, NaN where none is: an ocean
    cell of a land temperature is no data, never 0 K)."""
    return "fracarea" if kind == "mean" else "destarea"


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
    months: tuple[Month, ...]
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
    #: where the worker writes the span's totals itself (layout 2, :func:`write_totals_blocks`);
    #: None: the driver writes the series' totals when all its spans are done
    totals: TotalsTarget | None = None
    #: the mask's regions (indices) to compute, in this order (a done series computed for regions
    #: added to its store: no cube then); None: every region
    regions: tuple[int, ...] | None = None


def open_canonical(job: SeriesJob, storage_options: dict | None) -> Any:
    """The series' canonical field for reading blocks (``fastopen.FastSeries``, or a
    ``fastopen.DatasetView`` of ``catalog.load_series``), opened once per worker process and
    inputs' version.

    Raises :class:`~gridflux.errors.StoreError` when the files hold other months than expected."""
    from gridflux.ingest import fastopen

    key = opened_key(job)
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


def opened_key(job: SeriesJob) -> tuple:
    """What identifies a series opened by this process: its key, files, inputs' version and
    time chunks."""
    return (job.record.key, tuple(job.record.paths), job.fingerprint_key, job.time_chunk)


def adopt_opened(job: SeriesJob, ds: Any, storage_options: dict | None = None) -> bool:
    """Let this process's tasks read ``ds``, the canonical dataset the driver opened to plan the
    series (``catalog.load_series(record, chunks={"time": job.time_chunk})``), instead of opening
    its files a second time: a run in one process then opens (and, on object storage, fetches the
    metadata of) each file once. Only where :func:`open_canonical` would open the series the
    same way -- through ``load_series``, i.e. a series :mod:`gridflux.ingest.fastopen` does not
    take (remote, zarr, repaired files ...) -- and the months agree (otherwise the task opens it
    and names the difference), so what the task reads is the same. Returns whether it did."""
    from gridflux.ingest import fastopen

    if ds is None or fastopen.eligible(job.record, storage_options):
        return False
    key = opened_key(job)
    if key not in _OPENED:
        view = fastopen.DatasetView(ds)
        if view.months != tuple(job.months):
            return False
        _OPENED[key] = view
        while len(_OPENED) > OPENED_MAX:
            _OPENED.popitem(last=False)
    return True


def forget_opened() -> None:
    """Drop this process's opened series (their file handles close)."""
    _OPENED.clear()


def process_span(
    job: SeriesJob,
    blocks: tuple[tuple[int, int], ...],
    mask: RegionMask,
    storage_options: dict | None = None,
    store_options: dict | None = None,
) -> list[tuple[np.ndarray, np.ndarray, int, list[str]]]:
    """Open the series (memoised) and run :func:`process_block` on each ``(start, stop)`` block.

    ``blocks`` index the series' months; each is read once (a synchronous dask compute of that
    block only, so memory is bounded by one block). Returns ``(positions, totals, bytes)`` per
    block. ``storage_options`` open the inputs, ``store_options`` write the store's cubes and,
    when ``job.totals`` is set, its totals (a run may read from one object store and write to
    another, or to a local store): the span's totals are written after its last block, in one
    region write of the whole time chunks its blocks touch (:func:`write_totals_blocks`), before
    the span returns, so the driver records a series done only after its totals are written.
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
        land_fraction=getattr(ds, "mean_land_fraction", None) if ds.kind == "mean" else None,
        regions=job.regions,
    )
    # only the latitude rows the totals and the cube need are read (deflated chunks are still
    # inflated whole, but only those rows are unshuffled and copied)
    rows_read = rows_to_read(bjob, mask)
    bytes_per_month = int(ds.value_dtype.itemsize * np.prod(ds.shape[1:]))
    fixes = list(getattr(ds, "fixes", ()))
    whole_fields = rows_read is None or rows_read.indices(ds.shape[1])[:2] == (0, ds.shape[1])
    out = []
    with closing(
        read_blocks(lambda i0, i1: ds.read(i0, i1, rows_read), blocks, blocks_ahead(job))
    ) as it:
        for (i0, i1), block in it:
            empty = no_data_months(block)
            if empty.any() and not whole_fields:
                # no value in the rows read: a missing month only if the whole field has none
                # (rare, so those months alone are read again whole)
                for k in np.flatnonzero(empty):
                    whole = ds.read(i0 + k, i0 + k + 1, None)
                    empty[k] = bool(no_data_months(whole)[0])
            pos, tot = process_block(
                block,
                seconds[i0:i1],
                job.positions[i0:i1],
                bjob,
                mask,
                store_options,
                rows_read=rows_read,
                empty=empty,
            )
            out.append((pos, tot, bytes_per_month * (i1 - i0), fixes))
    if job.totals is not None:  # the span's chunks, all blocks in one write (layout 2)
        write_totals_blocks(
            job.totals, store_options or {}, job.member_index, [(p, t) for p, t, *_ in out]
        )
    return out


def blocks_ahead(job: SeriesJob) -> int:
    """Blocks of the series read ahead of the one being computed (:mod:`readahead`):
    ``remote.read-ahead`` for a series on object storage or a web server, 0 for local files."""
    from gridflux.ingest import remote

    if not any(remote.is_remote(p) for p in job.record.paths):
        return 0
    return remote.RemotePolicy.from_config().read_ahead


# -- batches of spans: one task for many short series -------------------------------------------
#: OS errors of the place the store lives, not of one series: a run stops on them
STORE_FAULT_ERRNOS = frozenset({errno.ENOSPC, errno.EROFS, getattr(errno, "EDQUOT", errno.ENOSPC)})


def is_store_fault(exc: BaseException | None) -> bool:
    """True when ``exc`` (e.g. a worker's failed cube write) says the store cannot be written."""
    return store_fault_of(exc) is not None


def store_fault_of(exc: BaseException | None) -> BaseException | None:
    """The :class:`~gridflux.errors.StoreWriteError`, or the OSError of a full or read-only file
    system, in ``exc``'s chain of causes (None: the error is the series' own)."""
    while exc is not None:
        if isinstance(exc, StoreWriteError):
            return exc
        if isinstance(exc, OSError) and exc.errno in STORE_FAULT_ERRNOS:
            return exc
        exc = exc.__cause__
    return None


@dataclass(frozen=True)
class SpanFailure:
    """A span's error as :func:`process_batch` returns it: its one line (``text``, as
    :func:`gridflux.pipeline.plan.error_text` writes it where it was raised, causes included) and,
    when the store refused a write (disk full, read-only, quota), the refusal (``fault``: a plain
    ``OSError`` or a :class:`~gridflux.errors.StoreWriteError`), on which the run stops."""

    text: str
    fault: BaseException | None = None


def span_failure(exc: BaseException) -> SpanFailure:
    """The :class:`SpanFailure` of an exception raised by a span (picklable: the chain of causes
    does not survive pickling, so the fault is taken out of it here)."""
    from gridflux.pipeline.plan import error_text

    fault = store_fault_of(exc)
    if isinstance(fault, OSError):  # plain: its subclass or attributes may not pickle
        fault = OSError(fault.errno, fault.strerror, fault.filename)
    elif fault is not None:
        fault = StoreWriteError(str(fault))
    return SpanFailure(error_text(exc), fault)


#: what :func:`process_batch` returns per item: ``(seconds, blocks' results)``, a
#: :class:`SpanFailure`, or None (not run: an earlier item met a store fault)
SpanOutcome = tuple[float, list] | SpanFailure | None


def process_batch(
    items: list[tuple[SeriesJob, tuple[tuple[int, int], ...]]],
    mask: RegionMask,
    storage_options: dict | None = None,
    store_options: dict | None = None,
) -> list[SpanOutcome]:
    """Run :func:`process_span` on each ``(job, blocks)`` item of a batch: the spans of many short
    series in one task, so that the per-task costs (scheduling, a result's round trip, the driver's
    bookkeeping) are paid once per batch instead of once per series.

    A failing item fails alone: its outcome is a :class:`SpanFailure` with its one error line, and
    the next item runs. Only a refused store write (disk full, read-only) ends the batch: the items
    after it are not run (None), so nothing more is written to a store that refuses writes.
    ``storage_options`` are the inputs', ``store_options`` the store's.

    Returns
    -------
    one outcome per item, in order: ``(seconds, [(positions, totals, bytes, fixes), ...])`` with
    the item's worker seconds, a :class:`SpanFailure`, or None (not run)
    """
    out: list[SpanOutcome] = []
    for k, (job, blocks) in enumerate(items):
        t0 = time.perf_counter()
        try:
            result = process_span(job, blocks, mask, storage_options, store_options)
        except Exception as exc:  # noqa: BLE001 - one failing series never sinks the others
            failure = span_failure(exc)
            out.append(failure)
            if failure.fault is not None:  # the store refuses writes: stop here
                out.extend([None] * (len(items) - k - 1))
                break
            continue
        out.append((time.perf_counter() - t0, result))
    return out
