"""The pipeline: catalog -> series -> one dask graph per series -> the store.

The only module that builds graphs. Each step it wires is a small function elsewhere:
``catalog.load_catalog`` (ingest), ``steps.process_span`` (a worker opens a series and, block by
block, computes totals and writes cube pieces), ``store.Store`` (template, region writes,
manifest). A series is one (member, variable) of the catalog. The driver only plans: it takes the
inputs' fingerprints (file sizes and times) and the months, which the catalog declares
(``time_range``, as DRS crawls record it) or which the driver reads from the files' time axes
when it does not. The data files are opened and read on the workers, so the driver's cost per
series is milliseconds and the series' opening runs in parallel with everything else. Series are
submitted in batches, so the scheduler never holds the whole archive; a failing series is
recorded in the manifest with its error and the others go on.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gridflux import __version__, config
from gridflux.errors import GridfluxError, StoreError
from gridflux.fields.masks import RegionMask
from gridflux.kernels.grids import CellBounds, global_grid
from gridflux.pipeline import manifest as manifest_journal
from gridflux.pipeline.store import Store, StoreTemplate, continuous_months
from gridflux.pipeline.tasks import SeriesJob, process_span

log = logging.getLogger(__name__)

SPLIT_MONTHS = 120  # months per task when task-months is "auto" and series are split
TRAITS = (
    "ensemble",
    "source_id",
    "experiment",
    "member_id",
    "gas",
    "group",
    "forcing",
    "layered_c",
    "fire",
)


@dataclass
class SeriesPlan:
    """One series, opened lazily on the driver and ready to become tasks."""

    key: str
    member: str
    variable: str
    record: Any
    canonical: Any = None  # canonical xr.Dataset
    grid: CellBounds | None = None
    months: list[tuple[int, int]] = field(default_factory=list)
    fingerprint: dict | None = None
    error: str | None = None
    nbytes: int = 0
    previous_status: str | None = None
    skip: bool = False  # done earlier with the same inputs and configuration: not even opened
    planned: bool = True  # False: a placeholder, opened just before its tasks are submitted


@dataclass
class RunSummary:
    """What a run did: counts, bytes, time, and every failure with its error."""

    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    bytes_read: int = 0
    seconds: float = 0.0  # the whole run: catalog, mask, store, planning and computing
    compute_seconds: float = 0.0  # from the first submitted series to the last finished one
    store: str = ""

    @property
    def ok(self) -> bool:
        return not self.failed

    def as_dict(self) -> dict:
        return {
            "done": len(self.done),
            "skipped": len(self.skipped),
            "failed": len(self.failed),
            "failures": self.failed,
            "gb_read": self.bytes_read / 1e9,
            "seconds": self.seconds,
            "compute_seconds": self.compute_seconds,
            "mb_per_s": self.bytes_read / 1e6 / self.seconds if self.seconds else 0.0,
        }


# -- planning ---------------------------------------------------------------------------------
def target_grid(spec: str | CellBounds | None = None) -> CellBounds:
    """The regrid-data target grid: a CellBounds, ``"0.5"``, ``"1x1.25"`` (dlat x dlon) or config."""
    if isinstance(spec, CellBounds):
        return spec
    if spec is None:
        t = config.get("target-grid")
        return global_grid(float(t["dlat"]), float(t["dlon"]), float(t["lon0"]))
    parts = str(spec).lower().replace("deg", "").split("x")
    try:
        dlat = float(parts[0])
        dlon = float(parts[1]) if len(parts) > 1 else dlat
    except ValueError:
        raise GridfluxError(
            f"target grid {spec!r}: expected a resolution in degrees such as '0.5' or '1x1.25'"
        ) from None
    return global_grid(dlat, dlon, float(config.get("target-grid.lon0")))


def plan_series(
    record: Any,
    storage_options: dict | None,
    chunk_months: int | None = None,
    fingerprint: dict | None = None,
) -> SeriesPlan:
    """Open one series lazily and describe it (never raises: errors are recorded).

    ``fingerprint`` is the series' input fingerprint when the caller has already taken it."""
    from gridflux.fields.regrid import grid_of
    from gridflux.ingest import catalog

    plan = SeriesPlan(
        key=series_key(record), member=record.member, variable=record.variable, record=record
    )
    try:
        plan.fingerprint = fingerprint or catalog.fingerprint(
            record, storage_options=storage_options
        )
        ds = catalog.load_series(
            record,
            storage_options=storage_options,
            chunks={"time": int(config.get("pipeline.chunk-months", override=chunk_months))},
        )
        plan.canonical = ds
        plan.grid = grid_of(ds)
        times = ds["time"].values
        plan.months = [(int(t.year), int(t.month)) for t in times]
        da = ds[record.variable]
        plan.nbytes = int(da.dtype.itemsize * np.prod(da.shape))
    except Exception as exc:  # noqa: BLE001 - a failing member never sinks the others
        plan.error = _error_text(exc)
    return plan


def _plan_or_skip(
    record: Any,
    entry: dict,
    chash: str,
    existing: bool,
    storage_options: dict | None,
    chunk_months: int | None = None,
    open_files: bool = True,
) -> SeriesPlan:
    """Skip a series that is done with unchanged inputs (fingerprint: file sizes and times, no data
    read) and configuration. Plan every other one: with ``open_files`` by opening it lazily
    (:func:`plan_series`), else from its fingerprint and the months its catalog rows declare."""
    from gridflux.ingest import catalog

    fp = None
    if existing and entry.get("status") == "done" and entry.get("config_hash") == chash:
        try:
            fp = catalog.fingerprint(record, storage_options=storage_options)
        except Exception:  # noqa: BLE001 - unreadable now: recorded below
            fp = None
        if fp is not None and fp == entry.get("fingerprint"):
            return SeriesPlan(
                key=series_key(record),
                member=record.member,
                variable=record.variable,
                record=record,
                fingerprint=fp,
                skip=True,
                nbytes=int(entry.get("bytes", 0)),
            )
    if open_files:
        return plan_series(record, storage_options, chunk_months, fingerprint=fp)
    plan = SeriesPlan(
        key=series_key(record),
        member=record.member,
        variable=record.variable,
        record=record,
        months=declared_months(record) or [],
    )
    try:
        plan.fingerprint = fp or catalog.fingerprint(record, storage_options=storage_options)
    except Exception as exc:  # noqa: BLE001 - a failing member never sinks the others
        plan.error = _error_text(exc)
    return plan


def _check_compatible(st: Store, template: StoreTemplate) -> list[tuple[int, int]]:
    """The existing store's month axis, after checking that this run's members, variables, regions
    and cube grid are the store's (each series' months are checked when it is opened)."""
    sig = st.signature()
    new = template.signature()
    for field_name in ("members", "variables", "regions", "cube_variables", "cube_grid"):
        if sig.get(field_name) != new.get(field_name):
            raise StoreError(
                f"store {st.url} was created for different {field_name} than this run selects "
                f"(store: {_brief(sig.get(field_name))}; run: {_brief(new.get(field_name))}); write to a new store "
                "(or delete this one) to change them"
            )
    return [(int(m[:4]), int(m[5:7])) for m in sig["months"]]


def _brief(value: Any) -> str:
    if isinstance(value, list) and len(value) > 4:
        return f"{value[:3]} ... ({len(value)} in all)"
    return str(value)


def series_key(record: Any) -> str:
    return f"{record.member}/{record.variable}"


def config_hash(
    mask: RegionMask, target: CellBounds, protocol: str, cubes: bool, radius: float
) -> str:
    """Hash of everything besides the inputs that changes a series' results."""
    h = hashlib.sha1()
    h.update(
        json.dumps(
            {
                "protocol": protocol,
                "cubes": cubes,
                "radius": radius,
                "target": target.fingerprint(),
                "regions": list(mask.names),
                "layout": 1,
            }
        ).encode()
    )
    h.update(mask.grid.fingerprint().encode())
    h.update(np.ascontiguousarray(mask.fractions).tobytes())
    return h.hexdigest()[:16]


def mask_key(mask: RegionMask) -> str:
    h = hashlib.sha1(np.ascontiguousarray(mask.fractions).tobytes())
    h.update(mask.grid.fingerprint().encode())
    return h.hexdigest()[:16]


def declared_months(record: Any) -> list[tuple[int, int]] | None:
    """The months a series' catalog rows declare (``time_range`` ``YYYYMM-YYYYMM`` or ``YYYY-YYYY``
    per file), or None when any row does not say: then the files must be opened to know."""
    ranges = list(getattr(record, "time_ranges", []) or [])
    if not ranges or len(ranges) != len(record.paths):
        return None
    months: list[tuple[int, int]] = []
    for r in ranges:
        parts = str(r).replace("_", "-").split("-")
        if len(parts) != 2 or not all(p.isdigit() and len(p) in (4, 6) for p in parts):
            return None
        (a, b) = parts
        first = (int(a[:4]), int(a[4:6]) if len(a) == 6 else 1)
        last = (int(b[:4]), int(b[4:6]) if len(b) == 6 else 12)
        months += continuous_months(first, last)
    return months


def build_template(
    plans: list[SeriesPlan],
    mask: RegionMask,
    cube_grid: CellBounds | None,
    mask_on_cube: np.ndarray | None,
    cubes: bool,
    time_chunk: int,
    months: list[tuple[int, int]] | None = None,
) -> StoreTemplate:
    """The store template for a set of series (failed ones keep their place: they may be fixed).

    ``months`` (the months the series cover) defaults to those of the opened plans."""
    members = sorted({p.member for p in plans})
    variables = sorted({p.variable for p in plans})
    first = {p.member: p for p in plans}
    traits = {t: [_trait(first[m].record, t) for m in members] for t in TRAITS}
    months = [m for p in plans for m in p.months] if months is None else months
    axis = continuous_months(min(months), max(months)) if months else []
    from gridflux.fields.units import VARIABLES

    kinds = [VARIABLES[v].kind if v in VARIABLES else "flux" for v in variables]
    cube_vars = [v for v in variables if cubes] if cube_grid is not None else []
    return StoreTemplate(
        members,
        traits,
        variables,
        kinds,
        list(mask.names),
        axis,
        cube_grid if cubes else None,
        mask_on_cube if cubes else None,
        cube_vars,
        time_chunk,
    )


def _trait(record: Any, name: str) -> Any:
    traits = getattr(record, "traits", {}) or {}
    v = traits.get(name, getattr(record, name, None))
    if name in ("layered_c", "fire"):
        return bool(v) if v not in (None, "") else False
    return "" if v is None else v


class _PlanError(Exception):
    """A series that could not be opened; its message is already the recorded error text."""


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, _PlanError):
        return str(exc)
    text = f"{type(exc).__name__}: {exc}"
    cause = exc.__cause__
    if cause is not None and str(cause) not in text:
        text += f" (caused by {type(cause).__name__}: {cause})"
    return text


# -- graph building ---------------------------------------------------------------------------
def block_chunks(positions: np.ndarray, time_chunk: int) -> tuple[int, ...]:
    """Time chunk sizes of a series so that no two blocks touch the same store chunk."""
    chunk_id = np.asarray(positions) // time_chunk
    breaks = np.flatnonzero(np.diff(chunk_id) != 0) + 1
    return tuple(int(len(r)) for r in np.split(chunk_id, breaks))


def task_months_for(
    setting: int | str | None, n_series: int, n_slots: int, time_chunk: int = 12
) -> int | None:
    """Months per task of a run (None: a whole series per task).

    An integer ``setting`` is used as is (at least one block). ``"auto"`` (the default) gives each
    series one task when the run has at least two series per worker thread (``n_slots``): a task
    opens its series, so a series split over two workers would be opened twice (with four 10-year
    files per member, 2 workers reached 0.81-0.85 parallel efficiency with 120-month tasks and
    0.96-0.98 with whole series). With fewer series the series are split into spans of
    :data:`SPLIT_MONTHS` months, so that a few long series still spread over the workers. Memory is
    bounded either way: a task reads its blocks one at a time."""
    if setting is None or str(setting).lower() == "auto":
        return None if n_series >= 2 * max(n_slots, 1) else max(time_chunk, SPLIT_MONTHS)
    try:
        months = int(setting)
    except (TypeError, ValueError):
        raise GridfluxError(
            f"pipeline.task-months must be 'auto' or a number of months, got {setting!r}"
        ) from None
    if months < 1:
        raise GridfluxError(f"pipeline.task-months must be at least 1 month, got {months}")
    return max(time_chunk, months)


def span_blocks(
    positions: np.ndarray, time_chunk: int, task_months: int | None
) -> list[tuple[tuple[int, int], ...]]:
    """A series' blocks ``(start, stop)`` (indices of its months; no two blocks touch the same store
    chunk), grouped into spans of consecutive blocks of at most ``task_months`` months (a span has
    at least one block; None: one span of all blocks)."""
    spans: list[tuple[tuple[int, int], ...]] = []
    span: list[tuple[int, int]] = []
    months = start = 0
    for n in block_chunks(positions, time_chunk):
        if span and task_months is not None and months + n > task_months:
            spans.append(tuple(span))
            span, months = [], 0
        span.append((start, start + n))
        months += n
        start += n
    if span:
        spans.append(tuple(span))
    return spans


def series_tasks(
    job: SeriesJob, mask_d: Any, storage_options: dict | None, task_months: int | None
) -> list:
    """Delayed tasks of one series: one per span of blocks, each returning its blocks'
    ``(positions, totals, bytes)``. The graph does not depend on the data: ``ceil(months /
    task_months)`` tasks, plus one key for the job (three grids' bounds: shipped once per worker,
    not once per task) and the mask's key (``mask_d``: a delayed, or on a cluster the future of the
    mask computed once per run), which every series shares."""
    import dask

    name = f"{job.record.key}-{job.fingerprint_key}-{job.mask_key}"
    # one graph key for the job: dask would otherwise unpack the dataclass into every span task;
    # traverse=False: the job holds no dask collections, and walking its fields (every month of the
    # series, the grids' bounds) cost the driver ~10 ms per series
    job_d = dask.delayed(job, pure=True, name=f"gridflux-job-{name}", traverse=False)
    step = dask.delayed(process_span, pure=True)
    return [
        step(job_d, blocks, mask_d, storage_options, dask_key_name=f"gridflux-span-{name}-{i}")
        for i, blocks in enumerate(span_blocks(job.positions, job.time_chunk, task_months))
    ]


# -- running ----------------------------------------------------------------------------------
def run(
    catalog: str | Any,
    mask: str | RegionMask,
    store: str,
    *,
    query: dict | None = None,
    target: str | CellBounds | None = None,
    protocol: str | None = None,
    cubes: bool | None = None,
    chunk_months: int | None = None,
    task_months: int | str | None = None,
    client: Any = None,
    storage_options: dict | None = None,
    store_options: dict | None = None,
    zarr_format: int | None = None,
    batch_size: int | None = None,
    progress: bool | Callable | None = None,
    retry_failed: bool = True,
) -> RunSummary:
    """Compute the totals (and cubes) of every series of a catalog into a zarr store.

    Parameters
    ----------
    catalog : path/URL of an intake-esm catalog (or a loaded ``Catalog``)
    mask : RegionMask or path of a mask file
    store : path or URL of the zarr store (created on first run, resumed after)
    query : catalog selection, e.g. ``{"ensemble": "ISIMIP3b", "variable": ["npp", "rh"]}``
    target : regrid-data target grid (default 0.5 deg global)
    protocol : ``regrid-data`` (default) or ``regrid-mask``
    cubes : write regridded cubes as well as totals (default from config)
    chunk_months : months per block: one read and one store time chunk (default 12)
    task_months : months per task, consecutive blocks of one series; default ``"auto"``: a whole
        series per task when there are at least two series per worker thread, else 120
        (:func:`task_months_for`)
    client : a ``distributed.Client``, or a zero-argument callable returning one (called only when
        the series are planned, so a cluster can start while the driver opens the catalog); None
        computes in this process (synchronous scheduler)
    storage_options : fsspec options for the inputs (credentials stay in memory)
    store_options : fsspec options for the store
    batch_size : series in flight at once (default ``gridflux.pipeline.batch-members``)
    progress : True for a rich progress bar, or a callable ``(done, total, key)``

    Returns
    -------
    RunSummary (done / skipped / failed with errors, bytes read, wall time)
    """
    from gridflux.ingest import catalog as catalog_mod

    t_start = time.perf_counter()
    protocol = config.get("pipeline.protocol", override=protocol)
    cubes = bool(config.get("pipeline.cubes", override=cubes))
    time_chunk = int(config.get("pipeline.chunk-months", override=chunk_months))
    task_setting = config.get("pipeline.task-months", override=task_months)
    task_months_for(
        task_setting, 0, 1, time_chunk
    )  # a bad setting fails before anything is written
    batch_size = int(config.get("pipeline.batch-members", override=batch_size))
    radius = float(config.get("earth-radius"))
    target_g = target_grid(target)
    region_mask = mask if isinstance(mask, RegionMask) else RegionMask.from_file(mask)

    cat = (
        catalog
        if hasattr(catalog, "series")
        else catalog_mod.load_catalog(catalog, storage_options=storage_options)
    )
    records = cat.series(query)
    if not records:
        raise GridfluxError(f"the catalog selection {query or {}} matched no series")

    mask_on_target = region_mask.to_grid(target_g)
    rows, cols = mask_on_target.bounding_rows_cols()
    cube_grid = target_g.subset(rows, cols)
    mask_on_cube = mask_on_target.fractions[:, rows, cols]
    chash = config_hash(region_mask, target_g, protocol, cubes, radius)
    mkey = mask_key(region_mask)

    st = Store(store, store_options, zarr_format)
    st.acquire_lock()
    summary = RunSummary(store=st.url)
    try:
        existing = st.exists()
        manifest = st.read_manifest() if existing else {"series": {}}
        manifest.setdefault("series", {})
        # When the store exists (its month axis is fixed) or the catalog declares every file's
        # months, series are opened one by one just before their tasks are submitted, so opening
        # files on the driver overlaps with the workers' computing; otherwise all are opened first.
        declared = [declared_months(r) for r in records]
        stream = existing or all(d is not None for d in declared)
        if stream:
            plans = [
                SeriesPlan(
                    key=series_key(r), member=r.member, variable=r.variable, record=r, planned=False
                )
                for r in records
            ]
            months = [m for d in declared if d for m in d]
        else:
            plans = [
                _plan_or_skip(
                    r,
                    manifest["series"].get(series_key(r), {}),
                    chash,
                    existing,
                    storage_options,
                    time_chunk,
                )
                for r in records
            ]
            months = None
            if not any(not p.skip and not p.error for p in plans):
                for p in plans:
                    summary.failed[p.key] = p.error or "nothing to compute"
                st.write_manifest(
                    {"series": {p.key: _entry(p, "failed", chash, error=p.error) for p in plans}}
                )
                return summary
        template = build_template(
            plans, region_mask, cube_grid, mask_on_cube, cubes, time_chunk, months
        )
        if existing:
            template.months = _check_compatible(st, template)
        else:
            st.create(template)
        manifest["config_hash"] = chash
        manifest["versions"] = _versions()
        member_index = {m: i for i, m in enumerate(template.members)}
        var_index = {v: i for i, v in enumerate(template.variables)}
        axis_pos = {ym: i for i, ym in enumerate(template.months)}

        todo: list[SeriesPlan] = []
        for p in plans:
            entry = manifest["series"].get(p.key, {})
            if p.skip:
                summary.skipped.append(p.key)
                continue
            if p.error:
                summary.failed[p.key] = p.error
                manifest["series"][p.key] = _entry(p, "failed", chash, error=p.error)
                continue
            if entry.get("status") == "failed" and not retry_failed:
                summary.failed[p.key] = entry.get("error", "failed earlier")
                continue
            if entry.get("status"):
                p.previous_status = entry["status"]
            if p.planned:
                manifest["series"][p.key] = _entry(p, "pending", chash)
            todo.append(p)
        st.write_manifest(manifest)

        import dask

        # the mask as one graph key; on a cluster it is computed once per run and the series' tasks
        # refer to its future, so that its bytes are not packed into every series' graph again
        mask_ref = dask.delayed(region_mask, pure=True, name=f"gridflux-mask-{mkey}")

        def make_tasks(p: SeriesPlan) -> list | None:
            """The series' tasks, planning it first if it is a placeholder; None = skipped."""
            if not p.planned:
                planned = _plan_or_skip(
                    p.record,
                    manifest["series"].get(p.key, {}),
                    chash,
                    existing,
                    storage_options,
                    time_chunk,
                    open_files=declared_months(p.record) is None,
                )
                planned.previous_status = p.previous_status
                p.__dict__.update(planned.__dict__)
                if p.skip:
                    summary.skipped.append(p.key)
                    return None
                if p.error:
                    raise _PlanError(p.error)
                manifest["series"][p.key] = _entry(p, "pending", chash)
            p.canonical = None  # the workers open the series; the driver keeps no file handle
            outside = [m for m in p.months if m not in axis_pos]
            if outside:
                raise StoreError(
                    f"{p.key}: months {outside[0][0]:04d}-{outside[0][1]:02d}.. lie outside the store's time axis "
                    f"({template.months[0][0]:04d}-{template.months[0][1]:02d}..{template.months[-1][0]:04d}-"
                    f"{template.months[-1][1]:02d}); the catalog's time_range may be wrong, or write to a new store"
                )
            positions = np.array([axis_pos[m] for m in p.months], dtype=np.int64)
            fp_key = hashlib.sha1(
                json.dumps(p.fingerprint, sort_keys=True, default=str).encode()
            ).hexdigest()[:12]
            job = SeriesJob(
                p.record,
                fp_key,
                tuple(p.months),
                positions,
                mkey,
                protocol,
                target_g,
                radius,
                time_chunk,
                cube_grid if cubes else None,
                st.url if cubes else None,
                st.zarr_format,
                member_index[p.member],
            )
            if p.previous_status:  # recomputing: no stale months of an older version may survive
                st.clear_series(
                    member_index[p.member], var_index[p.variable], p.variable if cubes else None
                )
            return series_tasks(job, mask_ref, st.storage_options, task_months)

        def finish(p: SeriesPlan, results: list | None, error: str | None, seconds: float) -> None:
            if error is None:
                values = np.full((len(template.regions), len(template.months)), np.nan)
                p.nbytes = 0
                for pos, tot, nbytes in (block for span in results for block in span):
                    values[:, pos] = tot.T
                    p.nbytes += nbytes
                totals_writer.write(member_index[p.member], var_index[p.variable], values)
                manifest["series"][p.key] = _entry(p, "done", chash, seconds=seconds)
                summary.done.append(p.key)
                summary.bytes_read += p.nbytes
            else:
                manifest["series"][p.key] = _entry(p, "failed", chash, error=error, seconds=seconds)
                summary.failed[p.key] = error
            # O(1) per series: one journal line (gridflux/pipeline/manifest.py), after the totals
            journal.record(p.key, manifest["series"][p.key])
            reporter.advance(p)

        journal = manifest_journal.Journal(st.fs, f"{st.root}/{manifest_journal.JOURNAL_DIR}")
        totals_writer = manifest_journal.TotalsWriter(st)
        if callable(client) and not hasattr(client, "submit"):
            client = client() if todo else None
        n_slots = sum(client.nthreads().values()) if client is not None and todo else 1
        task_months = task_months_for(task_setting, len(todo), n_slots, time_chunk)
        log.info(
            "%d series on %d worker thread(s): %s",
            len(todo),
            n_slots,
            "one task per series"
            if task_months is None
            else f"tasks of at most {task_months} months",
        )
        mask_future = None
        if client is not None and todo:
            # every worker, also one a nanny restarts, has the task stack imported, its first open
            # done and netCDF-C's chunk cache limited before its first task
            client.register_plugin(_worker_setup_plugin(), name="gridflux-worker-setup")
            # held while the run lasts: the scheduler reruns it if the worker holding it dies
            mask_future = mask_ref = client.compute(mask_ref)
        # started with the computing, so that its rate is of the reading (not of the cluster's start)
        reporter = _Progress(progress, len(todo))
        t_compute = time.perf_counter()
        try:
            _execute(todo, make_tasks, finish, client, batch_size, skipped=reporter.advance)
        finally:
            reporter.close()
            if mask_future is not None:
                mask_future.release()
        summary.compute_seconds = time.perf_counter() - t_compute
        journal.flush()
        # a worker killed mid-write (the scheduler reran its task elsewhere) leaves a temp file
        leftovers = st.remove_partial_writes()
        if leftovers:
            log.info(
                "removed %d temporary file(s) of interrupted writes from %s", len(leftovers), st.url
            )
        st.write_manifest(manifest)
    finally:
        st.release_lock()
        summary.seconds = time.perf_counter() - t_start
    return summary


def _execute(
    todo: list[SeriesPlan],
    make_tasks: Callable,
    finish: Callable,
    client: Any,
    batch_size: int,
    skipped: Callable | None = None,
) -> None:
    """Run the series' tasks, at most ``batch_size`` series in flight; record each outcome.

    ``make_tasks(plan)`` returns the series' tasks, or None when it turns out to be skipped
    (``skipped(plan)`` is then called instead of ``finish``)."""

    def prepare(p: SeriesPlan) -> tuple[list | None, float]:
        """The series' tasks (None if it failed to open, now recorded, or is skipped) and start time."""
        t0 = time.perf_counter()
        try:
            tasks = make_tasks(p)
        except Exception as exc:  # noqa: BLE001 - a failing member never sinks the others
            finish(p, None, _error_text(exc), time.perf_counter() - t0)
            return None, t0
        if tasks is None and skipped:
            skipped(p)
        return tasks, t0

    if client is None:
        from gridflux.pipeline.tasks import forget_opened

        try:
            _run_in_process(todo, prepare, finish)
        finally:
            forget_opened()  # no file handle outlives an in-process run
        return

    from distributed import as_completed

    pending = list(todo)
    in_flight: dict[str, _SeriesInFlight] = {}  # by series key
    series_of: dict[Any, str] = {}  # span future key -> series key
    ac = as_completed()

    def submit_next() -> None:
        while pending and len(in_flight) < batch_size:
            p = pending.pop(0)
            tasks, t0 = prepare(p)
            if tasks is None:
                continue
            try:  # the series' span tasks straight to the scheduler: no gathering task of its own
                futures = client.compute(tasks, optimize_graph=False)
            except Exception as exc:  # noqa: BLE001
                finish(p, None, _error_text(exc), time.perf_counter() - t0)
                continue
            in_flight[p.key] = _SeriesInFlight(p, t0, futures)
            for f in futures:
                series_of[f.key] = p.key
                ac.add(f)

    def retire(key: str) -> _SeriesInFlight:
        """Take a series out of flight: cancel its unfinished spans, release all its futures."""
        s = in_flight.pop(key)
        unfinished = [f for f in s.futures if not f.done()]
        if unfinished:
            client.cancel(unfinished)
        for f in s.futures:
            series_of.pop(f.key, None)
            f.release()
        return s

    submit_next()
    for fut in ac:
        key = series_of.get(fut.key)
        if key is None:  # a span of a series that already failed (cancelled with it)
            continue
        s = in_flight[key]
        try:
            s.results[fut.key] = fut.result()
        except Exception as exc:  # noqa: BLE001 - the series fails; its other spans are dropped
            retire(key)
            finish(s.plan, None, _error_text(exc), time.perf_counter() - s.t0)
        else:
            if len(s.results) < len(s.futures):
                continue
            retire(key)
            finish(s.plan, [s.results[f.key] for f in s.futures], None, time.perf_counter() - s.t0)
        submit_next()


@dataclass
class _SeriesInFlight:
    """A submitted series: its plan, start time, span futures (in span order) and results so far."""

    plan: SeriesPlan
    t0: float
    futures: list
    results: dict = field(default_factory=dict)


def _run_in_process(todo: list[SeriesPlan], prepare: Callable, finish: Callable) -> None:
    """Each series' tasks on the synchronous scheduler, one series after another."""
    import dask

    for p in todo:
        tasks, t0 = prepare(p)
        if tasks is None:
            continue
        try:
            results = dask.compute(*tasks, scheduler="sync")
            finish(p, list(results), None, time.perf_counter() - t0)
        except Exception as exc:  # noqa: BLE001 - a failing member never sinks the others
            finish(p, None, _error_text(exc), time.perf_counter() - t0)


def _worker_setup_plugin():
    """A worker plugin that runs :func:`gridflux.compute.worker_setup.dask_setup` (imports, netCDF-C's chunk
    cache) on every worker, also one started later (a class made here so that ``distributed`` is
    imported only when a cluster is used; cloudpickle ships it by value)."""
    from distributed import WorkerPlugin

    from gridflux.compute.worker_setup import dask_setup

    class WorkerSetup(WorkerPlugin):
        def setup(self, worker) -> None:
            dask_setup(worker)

    return WorkerSetup()


def _entry(
    p: SeriesPlan,
    status: str,
    chash: str,
    *,
    error: str | None = None,
    seconds: float | None = None,
) -> dict:
    e = {
        "status": status,
        "member": p.member,
        "variable": p.variable,
        "fingerprint": p.fingerprint,
        "config_hash": chash,
        "updated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "bytes": p.nbytes,
    }
    if error:
        e["error"] = error
    if seconds is not None:
        e["seconds"] = round(seconds, 4)
    return e


def _versions() -> dict:
    import importlib.metadata as md

    out = {"gridflux": __version__}
    for pkg in ("numpy", "scipy", "xarray", "dask", "distributed", "zarr", "netCDF4", "h5netcdf"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    return out


class _Progress:
    """A rich progress bar over series (with the bytes read and their rate beside it), or a user
    callback, or nothing. The bar counts series, whose number is known at the start; the bytes of
    a series are known only once its files are opened, which in a streaming run is on a worker."""

    def __init__(self, progress: bool | Callable | None, total: int):
        self.callback = progress if callable(progress) else None
        self.bar = None
        self.n = 0
        self.total = total
        self.bytes = 0
        self.t0 = time.perf_counter()
        if progress is True and total:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
            )

            self.bar = Progress(
                "series",
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[read]}"),
                TimeRemainingColumn(),
                transient=False,
            )
            self.task = self.bar.add_task("series", total=total, read=self._read_text())
            self.bar.start()

    def _read_text(self) -> str:
        seconds = max(time.perf_counter() - self.t0, 1e-9)
        amount = f"{self.bytes / 1e9:.2f} GB" if self.bytes >= 1e9 else f"{self.bytes / 1e6:.1f} MB"
        return f"{amount} read, {self.bytes / 1e6 / seconds:.0f} MB/s"

    def advance(self, p: SeriesPlan) -> None:
        self.n += 1
        self.bytes += p.nbytes
        if self.callback:
            self.callback(self.n, self.total, p.key)
        if self.bar is not None:
            self.bar.update(self.task, advance=1, read=self._read_text())

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
