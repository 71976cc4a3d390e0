"""The pipeline: catalog -> series -> one dask graph per series -> the store.

The only module that builds graphs. Each step it wires is a small function elsewhere:
``catalog.load_catalog`` (ingest), :mod:`~gridflux.pipeline.plan` (series plans, fingerprints,
the store's template), ``tasks.process_span`` (a worker opens a series and, block by block,
computes totals and writes cube pieces), ``store.Store`` (template, region writes, manifest). A
series is one (member, variable) of the catalog. The driver only plans: it takes the inputs'
fingerprints (file sizes and times) and the months, which the catalog declares (``time_range``,
as DRS crawls record it) or which the driver reads from the files' time axes when it does not.
The data files are opened and read on the workers, so the driver's cost per series is
milliseconds and the series' opening runs in parallel with everything else. Series are
submitted in batches, so the scheduler never holds the whole archive; a failing series is
recorded in the manifest with its error and the others go on.

A run is a :class:`Run` whose phases are methods with explicit state: :meth:`Run.plan`,
:meth:`Run.make_template`, :meth:`Run.select`, :meth:`Run.prepare` (a series' tasks, submitted
by :meth:`Run.execute`), :meth:`Run.collect` (one series' outcome) and :meth:`Run.record`.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gridflux import __version__, config
from gridflux.errors import GridfluxError, StoreError, StoreWriteError
from gridflux.fields.masks import RegionMask
from gridflux.fields.timeaxis import Month
from gridflux.fields.totals import PROTOCOLS
from gridflux.ingest.remote import info_once
from gridflux.kernels.grids import CellBounds
from gridflux.pipeline import manifest as manifest_journal
from gridflux.pipeline.daily import add_daily, record_history, run_daily_series, split_daily
from gridflux.pipeline.plan import (
    PlanError,
    SeriesPlan,
    build_template,
    config_hash,
    declared_months,
    error_text,
    fingerprint_key,
    mask_key,
    months_outside,
    plan_or_skip,
    plan_series,
    target_grid,
    variable_kind,
)
from gridflux.pipeline.progress import Progress
from gridflux.pipeline.store import (
    DAILY_GROUP,
    Shape4,
    Store,
    StoreTemplate,
    TotalsTarget,
    variable_units,
)
from gridflux.pipeline.tasks import (
    STORE_FAULT_ERRNOS,
    SeriesJob,
    SpanFailure,
    SpanOutcome,
    adopt_opened,
    is_store_fault,
    process_batch,
    process_span,
)

__all__ = [
    "MAX_SERIES_PER_TASK",
    "SPLIT_MONTHS",
    "STORE_FAULT_ERRNOS",
    "TASKS_PER_SLOT",
    "Run",
    "RunSettings",
    "RunStopped",
    "RunSummary",
    "SeriesJob",
    "SeriesPlan",
    "SpanWork",
    "block_chunks",
    "is_store_fault",
    "mask_key",
    "plan_series",
    "run",
    "series_spans",
    "series_tasks",
    "span_blocks",
    "target_grid",
    "task_months_for",
]

log = logging.getLogger(__name__)

SPLIT_MONTHS = 120  # months per task when task-months is "auto" and series are split
#: a run's series are packed into at least this many tasks per worker thread (when it has that
#: many series), so that the last tasks to finish leave no worker idle for long
TASKS_PER_SLOT = 8
#: seconds the driver waits for the mask to be computed and copied to every worker before the
#: first task (a cluster still starting its workers, a copy that stalls: the run goes on without)
MASK_COPY_TIMEOUT = 60.0
#: at most this many series' spans in one task (bounds a task's result and its redo on a lost
#: worker)
MAX_SERIES_PER_TASK = 256


@dataclass
class RunSummary:
    """What a run did: counts, bytes, time, and every failure with its error."""

    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    pruned: list[str] = field(default_factory=list)  # removed from the store (``prune``)
    not_in_catalogs: list[str] = field(default_factory=list)  # in the store, kept (no ``prune``)
    grew: dict = field(default_factory=dict)  # what the store gained (GrowthPlan.describe)
    bytes_read: int = 0
    seconds: float = 0.0  # the whole run: catalog, mask, store, planning and computing
    compute_seconds: float = 0.0  # from the first submitted series to the last finished one
    #: this process's CPU seconds (all its threads) in the computing phase: with a cluster the
    #: driver's own (planning series late, submitting, collecting, a local scheduler), without one
    #: the whole computation
    compute_cpu_seconds: float = 0.0
    store: str = ""  # the store's URL, scrubbed (no user-info, no signing tokens)
    #: months with no data (every cell NaN or fill) per series: NaN in the store, never 0
    missing: dict[str, list[str]] = field(default_factory=dict)
    #: the one-line error that stopped the run early (the store refused a write), or ""
    stopped: str = ""
    #: what the user must know that is neither a failure nor missing data (daily cubes skipped)
    notes: list[str] = field(default_factory=list)
    #: series of ``done`` that were done before and were computed for the store's added regions
    #: only (their other values and their cube left as they were)
    regions_only: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed and not self.stopped

    def as_dict(self) -> dict:
        return {
            "done": len(self.done),
            "skipped": len(self.skipped),
            "failed": len(self.failed),
            "failures": self.failed,
            "missing_months": sum(len(v) for v in self.missing.values()),
            "missing": self.missing,
            "stopped": self.stopped,
            "notes": self.notes,
            "pruned": len(self.pruned),
            "not_in_catalogs": len(self.not_in_catalogs),
            "grew": self.grew,
            "regions_only": len(self.regions_only),
            "gb_read": self.bytes_read / 1e9,
            "seconds": self.seconds,
            "compute_seconds": self.compute_seconds,
            "compute_cpu_seconds": self.compute_cpu_seconds,
            "mb_per_s": self.bytes_read / 1e6 / self.seconds if self.seconds else 0.0,
        }


class RunStopped(StoreWriteError):
    """The store refused a write midway (disk full, read-only, quota): the run stopped submitting
    and recorded what it could. ``summary`` is the run's summary so far; the message is the store's
    one line."""

    def __init__(self, message: str, summary: RunSummary):
        super().__init__(message)
        self.summary = summary


#: workers write the totals of the series they compute where the store's totals chunks allow it
#: (layout 2: :meth:`~gridflux.pipeline.store.Store.worker_totals_layout`); False: the driver
#: writes every series' totals (what layout-1 stores always get)
WORKER_TOTALS = True


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


def regions_suffix(job: SeriesJob) -> str:
    """What a task's key adds for a series computed for some regions only (another result than
    the whole series' task of the same inputs and mask): ``-r`` and their indices."""
    if job.regions is None:
        return ""
    return "-r" + ".".join(str(r) for r in job.regions)


def series_tasks(
    job: SeriesJob, mask_d: Any, storage_options: dict | None, task_months: int | None
) -> list:
    """Delayed tasks of one series: one per span of blocks, each returning its blocks'
    ``(positions, totals, bytes)``. The graph does not depend on the data: ``ceil(months /
    task_months)`` tasks, plus one key for the job (three grids' bounds: shipped once per worker,
    not once per task) and the mask's key (``mask_d``: a delayed, or on a cluster the future of the
    mask computed once per run), which every series shares."""
    import dask

    name = f"{job.record.key}-{job.fingerprint_key}-{job.mask_key}{regions_suffix(job)}"
    # one graph key for the job: dask would otherwise unpack the dataclass into every span task;
    # traverse=False: the job holds no dask collections, and walking its fields (every month of the
    # series, the grids' bounds) is a measurable driver cost per series (docs/benchmarks.md)
    job_d = dask.delayed(job, pure=True, name=f"gridflux-job-{name}", traverse=False)
    step = dask.delayed(process_span, pure=True)
    return [
        step(job_d, blocks, mask_d, storage_options, dask_key_name=f"gridflux-span-{name}-{i}")
        for i, blocks in enumerate(span_blocks(job.positions, job.time_chunk, task_months))
    ]


@dataclass(frozen=True)
class SpanWork:
    """One span of a series as the driver packs it into a task (:func:`series_spans`).

    ``index`` is the span's place among the series' ``n_spans`` spans; ``nbytes`` the input bytes
    it reads as the driver knows them without opening a file (the files' sizes, pro rata of the
    span's months): what a task's spans are packed by (``gridflux.pipeline.task-bytes``)."""

    key: str
    index: int
    n_spans: int
    job: SeriesJob
    blocks: tuple[tuple[int, int], ...]
    nbytes: int


def series_spans(job: SeriesJob, task_months: int | None, file_bytes: int) -> list[SpanWork]:
    """The spans of one series (:func:`span_blocks`: one span of the whole series when
    ``task_months`` is None), each weighted by its share of the series' ``file_bytes``."""
    spans = span_blocks(job.positions, job.time_chunk, task_months)
    n_months = max(len(job.months), 1)
    return [
        SpanWork(
            key=job.record.key,
            index=i,
            n_spans=len(spans),
            job=job,
            blocks=blocks,
            nbytes=int(file_bytes * sum(b - a for a, b in blocks) / n_months),
        )
        for i, blocks in enumerate(spans)
    ]


def fingerprint_bytes(fingerprint: dict | None) -> int:
    """The bytes of a series' data files by its fingerprint (0 when it does not say)."""
    files = (fingerprint or {}).get("paths", [])
    return int(sum(f.get("size") or 0 for f in files if isinstance(f, dict)))


# -- running ----------------------------------------------------------------------------------
def series_protocol(record: Any, override: str | None = None) -> str:
    """The protocol of a series: ``override`` (``--protocol``, ``gridflux.pipeline.protocol``) if
    given, else the catalog's ``protocol`` of the series, else the default of its ensemble's kind
    (``gridflux.pipeline.protocols``; the kind is the catalog's ``ensemble_kind`` column, or the
    kind ``gridflux.pipeline.ensemble-kinds`` lists the ensemble under, else ``process``):
    inversions default to ``regrid-mask``, as the RECCAP2 paper computes them."""
    if override is not None:
        return override
    chosen = getattr(record, "protocol", None)
    if chosen:
        return str(chosen)
    kind = ensemble_kind(record)
    by_kind = config.get("pipeline.protocols") or {}
    protocol = by_kind.get(kind, by_kind.get("process", "regrid-data"))
    if protocol not in PROTOCOLS:
        raise GridfluxError(
            f"gridflux.pipeline.protocols.{kind} = {protocol!r}: expected one of {list(PROTOCOLS)}"
        )
    return str(protocol)


def ensemble_kind(record: Any) -> str:
    """The kind of a series' ensemble (``process``, ``inversion``, ...): the catalog's
    ``ensemble_kind`` column, or the kind ``gridflux.pipeline.ensemble-kinds`` lists its ensemble
    under, else ``process``."""
    traits = getattr(record, "traits", {}) or {}
    kind = traits.get("ensemble_kind")
    if kind:
        return str(kind)
    ensemble = traits.get("ensemble", "")
    for name, ensembles in (config.get("pipeline.ensemble-kinds") or {}).items():
        if ensemble in (ensembles or []):
            return str(name)
    return "process"


@dataclass(frozen=True, kw_only=True)
class RunSettings:
    """A run's settings, each an argument of :func:`run` or (when that is None) its
    ``gridflux.pipeline.*`` / ``gridflux.*`` value in dask's config (``gridflux.yaml``, the user's
    dask config, ``DASK_GRIDFLUX__*`` variables, :func:`gridflux.set_options`)."""

    target: CellBounds
    protocol: str | None  # every series' protocol (an override), or None: per series
    cubes: bool
    time_chunk: int  # months per block and per store time chunk
    task_setting: int | str  # "auto" or months per task (:func:`task_months_for`)
    batch_size: int  # series in flight at once
    task_bytes: int  # input bytes (file sizes) of short series packed into one task
    radius: float  # m
    zarr_format: int
    verify: bool = False  # hash the inputs' bytes into their fingerprints (``--verify``)
    sel: str | None = None  # level selection of 4-D fields (``--sel plev=85000``)

    @classmethod
    def resolve(
        cls,
        *,
        target: str | CellBounds | None = None,
        protocol: str | None = None,
        cubes: bool | None = None,
        chunk_months: int | None = None,
        task_months: int | str | None = None,
        zarr_format: int | None = None,
        batch_size: int | None = None,
        verify: bool | None = None,
        sel: str | None = None,
        task_bytes: int | None = None,
    ) -> RunSettings:
        """Each argument, or its configured value when it is None (a bad task-months fails here,
        before anything is written)."""
        time_chunk = int(config.get("pipeline.chunk-months", override=chunk_months))
        task_setting = config.get("pipeline.task-months", override=task_months)
        task_months_for(task_setting, 0, 1, time_chunk)
        chosen = config.get("pipeline.protocol", override=protocol)
        if chosen is not None and chosen not in PROTOCOLS:
            raise GridfluxError(f"protocol {chosen!r}: expected one of {list(PROTOCOLS)}")
        return cls(
            target=target_grid(target),
            protocol=chosen,
            cubes=bool(config.get("pipeline.cubes", override=cubes)),
            time_chunk=time_chunk,
            task_setting=task_setting,
            batch_size=int(config.get("pipeline.batch-members", override=batch_size)),
            task_bytes=task_bytes_setting(config.get("pipeline.task-bytes", override=task_bytes)),
            radius=float(config.get("earth-radius")),
            zarr_format=int(config.get("store.zarr-format", override=zarr_format)),
            verify=bool(config.get("pipeline.verify", override=verify)),
            sel=sel or None,
        )


def task_bytes_setting(value: Any) -> int:
    """``gridflux.pipeline.task-bytes`` as a number of bytes (an integer, or a size such as
    ``"64 MiB"``); at least 1.

    Raises
    ------
    GridfluxError
        When it is neither, naming the setting and the value."""
    try:
        if isinstance(value, str):
            import dask.utils

            nbytes = int(dask.utils.parse_bytes(value))
        else:
            nbytes = int(value)
    except (TypeError, ValueError):
        raise GridfluxError(
            f"pipeline.task-bytes must be a number of bytes such as 67108864 or '64 MiB', "
            f"got {value!r}"
        ) from None
    if nbytes < 1:
        raise GridfluxError(f"pipeline.task-bytes must be at least 1 byte, got {value!r}")
    return nbytes


@dataclass
class _SeriesInFlight:
    """A series whose spans are out: its plan, start time, number of spans, the spans' results so
    far (by span index) and their worker seconds."""

    plan: SeriesPlan
    t0: float
    n_spans: int
    results: dict[int, list] = field(default_factory=dict)
    seconds: float = 0.0


@dataclass
class _Batch:
    """One task's spans (of one or several series); ``alone``: a span resubmitted on its own after
    its batch failed as a whole (a lost worker), so that only a span that fails alone fails."""

    spans: list[SpanWork]
    alone: bool = False

    @property
    def series(self) -> int:
        return len({s.key for s in self.spans})


class Run:
    """One run of the pipeline over a set of series into a store, its state explicit.

    Phases, in order (:func:`run` calls them; each can be called and tested on its own):

    1. :meth:`plan` -- a :class:`SeriesPlan` per record: skipped (done with the same inputs and
       configuration), opened, or a placeholder planned just before submission (streaming);
    2. :meth:`make_template` -- the store's template (union of months), the store created or
       checked against it;
    3. :meth:`select` -- the series to compute; skipped and failed ones recorded;
    4. :meth:`prepare` -- one series' tasks (a placeholder planned first), submitted by
       :meth:`execute` in batches of ``batch_size`` series;
    5. :meth:`collect` -- one series' outcome into the store, the manifest and the summary (a
       failure touches no other series);
    6. :meth:`record` -- the final manifest.

    The store's lock is the caller's (:func:`run` holds it around the phases).
    """

    def __init__(
        self,
        *,
        settings: RunSettings,
        mask: RegionMask,
        store: Store,
        storage_options: dict | None = None,
        retry_failed: bool = True,
        prune: bool = False,
    ):
        import dask

        from gridflux.pipeline.growth import region_hashes

        self.settings = settings
        self.mask = mask
        self.store = store
        self.storage_options = storage_options
        self.retry_failed = retry_failed
        self.prune = prune
        self.region_hashes = region_hashes(mask)
        self.region_pos: np.ndarray = np.arange(len(mask.names))  # mask region -> store region
        self.previous: dict[str, dict] = {}  # manifest entries of this run's series before it
        self.records_keys: set[str] = set()  # the series of this run's catalogs
        self.history: dict[str, Any] = {
            "started": _utc_now(),
            "added": [],
            "replaced": [],
            "recomputed": [],
            "regions_added": [],
            "failed": [],
        }
        mask_on_target = mask.to_grid(settings.target)
        rows, cols = mask_on_target.bounding_rows_cols()
        self.cube_grid: CellBounds = settings.target.subset(rows, cols)
        self.mask_on_cube: np.ndarray = mask_on_target.fractions[:, rows, cols]
        self.chashes: dict[str, str] = {
            proto: with_selection(
                config_hash(settings.target, proto, settings.cubes, settings.radius),
                settings.sel,
            )
            for proto in PROTOCOLS
        }
        self.mkey = mask_key(mask)
        from gridflux.ingest.remote import scrub

        self.summary = RunSummary(store=scrub(store.url, store.storage_options))
        self.existing = False
        self.manifest: dict = {"series": {}}
        self.plans: list[SeriesPlan] = []
        self.months: list[Month] | None = None  # declared months (streaming), or None
        self.template: StoreTemplate | None = None
        self.member_index: dict[str, int] = {}
        self.var_index: dict[str, int] = {}
        self.axis_pos: dict[Month, int] = {}
        self.task_months: int | None = None  # months per task, set by execute
        # the mask as one graph key; on a cluster execute computes it once per run and the
        # series' tasks refer to its future, so that its bytes are not packed into every graph
        self.mask_delayed: Any = dask.delayed(mask, pure=True, name=f"gridflux-mask-{self.mkey}")
        self.mask_ref: Any = self.mask_delayed  # what the series' tasks take: delayed or future
        self.progress: Progress = Progress(None, 0)
        # finished series: one journal line each (O(1)), totals through an array opened once
        self.journal = manifest_journal.Journal(
            store.fs, f"{store.root}/{manifest_journal.JOURNAL_DIR}", store
        )
        self.totals_writer = manifest_journal.TotalsWriter(store)
        # the totals array's (shape, chunks) when workers write totals (set by make_template)
        self.worker_totals: tuple[Shape4, Shape4] | None = None
        # execution state (execute): series whose spans are out, spans prepared but not yet in
        # a task, batches to resubmit span by span, and series that failed while spans of them
        # were still out (by key: their plan and how many of their spans are still out)
        self.flight: dict[str, _SeriesInFlight] = {}
        self.ready: deque[SpanWork] = deque()
        self.retry: deque[_Batch] = deque()
        self.dropped: dict[str, tuple[SeriesPlan, int]] = {}
        self.protocols: dict[str, str] = {}  # by series key (protocol_of)
        self.in_process = False  # the tasks run in this process (execute without a client)
        # whether this run's series have files on this machine (whose HDF5 handles release closes)
        self.local_inputs = True

    # -- 1. plan ------------------------------------------------------------------------------
    def protocol_of(self, record: Any) -> str:
        """A series' protocol (:func:`series_protocol` under this run's override), looked up once
        per series (its manifest entries and config hash ask for it several times)."""
        key = getattr(record, "key", None)
        hit = self.protocols.get(key) if key is not None else None
        if hit is None:
            hit = series_protocol(record, self.settings.protocol)
            if key is not None:
                self.protocols[key] = hit
        return hit

    def chash_of(self, record: Any) -> str:
        """The configuration hash of a series (it depends on the series' protocol)."""
        return self.chashes[self.protocol_of(record)]

    def entry(self, key: str) -> dict:
        """The manifest's entry of a series ({} if it has none)."""
        return self.manifest["series"].get(key, {})

    def plan(self, records: list) -> list[SeriesPlan]:
        """A plan per record. When the store exists (its month axis is fixed) or the catalog
        declares every file's months, series are placeholders planned one by one just before
        their tasks are submitted, so that opening files on the driver overlaps with the workers'
        computing; otherwise every series is planned (opened) now."""
        self.existing = self.store.exists()
        self.manifest = self.store.read_manifest() if self.existing else {"series": {}}
        if not self.existing and self.store.fs.exists(f"{self.store.root}/{DAILY_GROUP}"):
            # the runs that wrote the daily group before this first monthly one
            history = self.store.read_manifest().get("history")
            if history:
                self.manifest["history"] = history
        self.manifest.setdefault("series", {})
        self.records_keys = {r.key for r in records}
        self.previous = {
            r.key: self.manifest["series"][r.key]
            for r in records
            if r.key in self.manifest["series"]
        }
        self.history["catalogs"] = sorted({str(getattr(r, "catalog", "")) for r in records})
        declared = [declared_months(r) for r in records]
        # the store's axis may grow: the months must be known before its template (a series
        # done with the same inputs keeps its months and is not opened)
        if all(d is not None for d in declared):
            self.plans = [SeriesPlan(record=r, planned=False) for r in records]
            self.months = [m for d in declared if d for m in d]
        else:
            self.plans = [
                plan_or_skip(
                    r,
                    self.entry(r.key),
                    self.chash_of(r),
                    self.existing,
                    self.storage_options,
                    self.settings.time_chunk,
                    verify=self.settings.verify,
                    regions=self.mask.names,
                )
                for r in records
            ]
            self.months = None
        return self.plans

    def nothing_to_compute(self) -> bool:
        """True (every series then recorded as failed) when no opened plan can be computed."""
        if self.months is not None or any(not p.error for p in self.plans):
            return False
        for p in self.plans:
            self.summary.failed[p.key] = p.error or "nothing to compute"
        for p in self.plans:
            self.manifest["series"][p.key] = self.entry_for(p, "failed", error=p.error)
        self.store.write_manifest(self.manifest)
        return True

    # -- 2. template --------------------------------------------------------------------------
    def make_template(self) -> StoreTemplate:
        """The store's template from the plans; a new store is created with it, an existing one
        checked against it (and its month axis kept)."""
        s = self.settings
        template = build_template(
            self.plans,
            self.mask,
            self.cube_grid,
            self.mask_on_cube,
            s.cubes,
            s.time_chunk,
            self.months,
            protocol_of=self.protocol_of,
        )
        template.region_hashes = dict(self.region_hashes)
        template.target = s.target.fingerprint()
        template.units = mean_units_of(self.plans, template, self.storage_options)
        if self.existing:
            # zarr format, chunking, codecs, target grid and the masks of the store's regions
            # must match, or the run is refused; then the store grows to hold this run's series
            self.store.check_settings(template)
            template = self.grow(template)
        else:
            self.store.create(template)
        for p in self.plans:  # each mean series is converted to its variable's stored unit
            if p.variable in template.units:
                if p.record.traits.get("mean_units") != template.units[p.variable]:
                    p.canonical = None  # opened without that unit: not one for a task to read
                p.record.traits["mean_units"] = template.units[p.variable]
        self.manifest["config_hash"] = dict(self.chashes)
        self.manifest["versions"] = versions()
        self.member_index = {m: i for i, m in enumerate(template.members)}
        self.var_index = {v: i for i, v in enumerate(template.variables)}
        self.axis_pos = {ym: i for i, ym in enumerate(template.months)}
        self.region_pos = np.array([template.regions.index(n) for n in self.mask.names])
        self.template = template
        self.worker_totals = (
            self.store.worker_totals_layout(s.time_chunk) if WORKER_TOTALS else None
        )
        if self.existing:
            self.prune_series()
        return template

    def grow(self, template: StoreTemplate) -> StoreTemplate:
        """Grow the existing store to hold this run's series (or refuse: :mod:`.growth`); with
        ``prune``, members and variables none of whose series is in the catalogs are dropped."""
        from gridflux.pipeline.growth import apply_growth, plan_growth

        gone = [k for k in self.manifest["series"] if k not in self.records_keys]
        drop_m: set[str] = set()
        drop_v: set[str] = set()
        if self.prune and gone:
            kept = [k.split("/", 1) for k in self.manifest["series"] if k in self.records_keys]
            kept_m = {m for m, _ in kept} | set(template.members)
            kept_v = {v for _, v in kept} | set(template.variables)
            drop_m = {k.split("/", 1)[0] for k in gone} - kept_m
            drop_v = {k.split("/", 1)[1] for k in gone} - kept_v
        growth = plan_growth(self.store, template, drop_m, drop_v)
        apply_growth(self.store, growth)
        self.summary.grew = growth.describe()
        self.history["grew"] = self.summary.grew
        return growth.template

    def prune_series(self) -> None:
        """Series in the store but in none of the catalogs: removed (values and manifest entry)
        with ``prune``, else kept and named in the summary."""
        assert self.template is not None
        gone = sorted(k for k in self.manifest["series"] if k not in self.records_keys)
        if not self.prune:
            self.summary.not_in_catalogs.extend(gone)  # after the daily group's (if any)
            if gone:
                log.warning(
                    "%d series of %s are in none of the catalogs and were kept (prune removes "
                    "them): %s",
                    len(gone),
                    self.store.url,
                    ", ".join(gone[:5]) + (" ..." if len(gone) > 5 else ""),
                )
            return
        for key in gone:
            member, variable = key.split("/", 1)
            if member in self.member_index and variable in self.var_index:
                self.store.clear_series(
                    self.member_index[member],
                    self.var_index[variable],
                    variable if variable in self.template.cube_variables else None,
                )
            del self.manifest["series"][key]
        self.summary.pruned.extend(gone)
        self.history["pruned"] = gone
        self.store.write_manifest(self.manifest)

    # -- 3. select ----------------------------------------------------------------------------
    def select(self) -> list[SeriesPlan]:
        """The series to compute. Skipped ones and ones that failed to open are recorded (and
        ones that failed in an earlier run, unless ``retry_failed``); the manifest is written."""
        todo: list[SeriesPlan] = []
        for p in self.plans:
            entry = self.entry(p.key)
            if p.skip:
                self.record_skipped(p)
                continue
            if p.error:
                self.clear_values(p)
                self.summary.failed[p.key] = p.error
                self.manifest["series"][p.key] = self.entry_for(p, "failed", error=p.error)
                continue
            if entry.get("status") == "failed" and not self.retry_failed:
                self.summary.failed[p.key] = entry.get("error", "failed earlier")
                continue
            if entry.get("status"):
                p.previous_status = entry["status"]
            if p.planned and p.only_regions is None:  # one computed for new regions stays done
                self.manifest["series"][p.key] = self.entry_for(p, "pending")
            todo.append(p)
        self.store.write_manifest(self.manifest)
        return todo

    def clear_values(self, p: SeriesPlan) -> None:
        """A failed series keeps no values of an earlier run or of its own blocks written before
        it failed: its totals (and cube) become NaN, so export and the budget skip it."""
        self.store.clear_series(
            self.member_index[p.member],
            self.var_index[p.variable],
            p.variable if self.settings.cubes else None,
        )

    def record_skipped(self, p: SeriesPlan, counted: bool = False) -> None:
        """A series done earlier with the same inputs and configuration. ``counted``: it is one of
        the series the progress counts (a placeholder found unchanged when planned late)."""
        self.summary.skipped.append(p.key)
        missing = self.entry(p.key).get("missing_months")
        if missing:  # named on every run, also when the series is not recomputed
            self.summary.missing[p.key] = list(missing)
        if counted:
            self.progress.advance(p.key, 0)

    # -- 4. submit ----------------------------------------------------------------------------
    def plan_late(self, p: SeriesPlan) -> SeriesPlan:
        """A placeholder's plan (from the catalog's declared months when it has them, else by
        opening it); a planned series as it is."""
        if p.planned:
            return p
        planned = plan_or_skip(
            p.record,
            self.entry(p.key),
            self.chash_of(p.record),
            self.existing,
            self.storage_options,
            self.settings.time_chunk,
            open_files=declared_months(p.record) is None,
            verify=self.settings.verify,
            regions=self.mask.names,
        )
        planned.previous_status = p.previous_status
        return planned

    def job_of(self, p: SeriesPlan) -> SeriesJob:
        """The worker's description of a planned series (its months checked against the store's
        axis: :class:`~gridflux.errors.StoreError` if any lies outside)."""
        s = self.settings
        assert self.template is not None, "make_template comes before the series' jobs"
        outside = months_outside(p.months, self.template.months)
        if outside:
            raise StoreError(
                f"{p.key}: {outside}; the catalog's time_range may be wrong, "
                "or write to a new store"
            )
        cubes = s.cubes and p.only_regions is None  # a cube does not depend on the regions
        return SeriesJob(
            record=p.record,
            fingerprint_key=fingerprint_key(p.fingerprint),
            months=tuple(p.months),
            positions=np.array([self.axis_pos[m] for m in p.months], dtype=np.int64),
            mask_key=self.mkey,
            protocol=self.protocol_of(p.record),
            target=s.target,
            radius=s.radius,
            time_chunk=s.time_chunk,
            cube_grid=self.cube_grid if cubes else None,
            store_url=self.store.url if cubes else None,
            zarr_format=self.store.zarr_format,
            member_index=self.member_index[p.member],
            totals=self.totals_target(p),
            regions=self.computed_regions(p),
        )

    def computed_regions(self, p: SeriesPlan) -> tuple[int, ...] | None:
        """The mask's regions (indices) a series' tasks compute: its ``only_regions`` (regions
        added to the store, for a series done before), or None: every region."""
        if p.only_regions is None:
            return None
        names = list(self.mask.names)
        return tuple(names.index(r) for r in p.only_regions)

    def region_rows(self, p: SeriesPlan) -> np.ndarray:
        """The store's region index of each region the series' tasks compute, in their order."""
        computed = self.computed_regions(p)
        return self.region_pos if computed is None else self.region_pos[list(computed)]

    def totals_target(self, p: SeriesPlan) -> TotalsTarget | None:
        """Where the workers write the series' totals (None: the driver writes them)."""
        if self.worker_totals is None:
            return None
        shape, chunks = self.worker_totals
        return TotalsTarget(
            url=self.store.url,
            zarr_format=self.store.zarr_format,
            shape=shape,
            chunks=chunks,
            variable_index=self.var_index[p.variable],
            region_pos=tuple(int(r) for r in self.region_rows(p)),
            merge=p.only_regions is not None,
        )

    def prepare(self, p: SeriesPlan) -> tuple[SeriesPlan, list[SpanWork] | None, float]:
        """One series' spans: ``(plan, spans, start time)``; the plan replaces a placeholder.

        ``spans`` (:func:`series_spans`: one for the whole series, or spans of ``task_months``)
        is None when the series turned out to be skipped (recorded) or failed to be planned
        (recorded by :meth:`collect`)."""
        t0 = time.perf_counter()
        try:
            late = not p.planned
            p = self.plan_late(p)
            if p.skip:
                self.record_skipped(p, counted=True)
                return p, None, t0
            if p.error:
                raise PlanError(p.error)
            if late and p.only_regions is None:
                self.manifest["series"][p.key] = self.entry_for(p, "pending")
            # the workers open the series; the driver keeps no file handle (a run in this
            # process hands its planning's open dataset to the task instead: files opened once)
            opened, p.canonical = p.canonical, None
            job = self.job_of(p)
            if self.in_process and opened is not None:
                adopt_opened(job, opened, self.storage_options)
            # recomputing: no stale months of an older version may survive (a series computed
            # for new regions only keeps its values: its entry stays done until they are in)
            if p.previous_status and p.only_regions is None:
                self.store.clear_series(
                    self.member_index[p.member],
                    self.var_index[p.variable],
                    p.variable if self.settings.cubes else None,
                )
            spans = series_spans(job, self.task_months, fingerprint_bytes(p.fingerprint))
        except StoreWriteError:
            raise  # the store cannot be written: the run stops (:meth:`stop`)
        except Exception as exc:  # noqa: BLE001 - a failing member never sinks the others
            self.collect(p, None, error_text(exc), time.perf_counter() - t0)
            return p, None, t0
        return p, spans, t0

    def next_batch(self, pending: deque[SeriesPlan], per_task: int) -> _Batch | None:
        """The next task's spans (None: nothing left). Series are prepared in order, as tasks are
        needed (a placeholder is planned now, so the driver's stat calls overlap the workers'
        computing); whole-series spans are packed until the next would take the task past
        ``task-bytes`` input bytes or ``per_task`` series; a span of a series split into
        several spans (``task-months``), and any span of at least ``task-bytes``, is a task of
        its own. Spans to resubmit alone (:meth:`requeue_alone`) come first."""
        if self.retry:
            return self.retry.popleft()
        spans: list[SpanWork] = []
        nbytes = 0
        while True:
            if not self.ready:
                if not pending:
                    break
                p, work, t0 = self.prepare(pending.popleft())
                if work:
                    self.flight[p.key] = _SeriesInFlight(p, t0, len(work))
                    self.ready.extend(work)
                continue
            nxt = self.ready[0]
            if spans and (
                nxt.n_spans > 1
                or nbytes + nxt.nbytes > self.settings.task_bytes
                or len(spans) >= per_task
            ):
                break
            spans.append(self.ready.popleft())
            nbytes += nxt.nbytes
            if nxt.n_spans > 1:
                break
        return _Batch(spans) if spans else None

    def requeue_alone(self, batch: _Batch) -> None:
        """A batch that failed as a whole (its worker died, or its result was lost): each of its
        spans is resubmitted as a task of its own, so that a span that takes its worker down fails
        alone and the others are computed."""
        self.retry.extend(_Batch([s], alone=True) for s in batch.spans if s.key in self.flight)

    def absorb(self, batch: _Batch, outcomes: list[SpanOutcome]) -> None:
        """A finished task's outcomes (:func:`~gridflux.pipeline.tasks.process_batch`), one per
        span: each span's results joined to its series; the series it completes, or that failed,
        are collected together (:meth:`collect_many`: one totals write, one journal append); a
        store fault (disk full, read-only) then stops the run (:meth:`raise_store_fault`)."""
        finished: list[tuple[SeriesPlan, list | None, str | None, float]] = []
        fault: BaseException | None = None
        for span, out in zip(batch.spans, outcomes, strict=True):
            s = self.flight.get(span.key)
            if s is None:  # another span of its series failed: nothing of this one is kept
                self.late_span(span, out)
                continue
            if out is None:  # not run: an earlier span of the task met a store fault
                continue
            if isinstance(out, SpanFailure):
                if out.fault is not None:  # the store's fault, not the series': stays pending
                    fault = fault or out.fault
                    continue
                del self.flight[span.key]
                # its spans not yet in a task are dropped; those out are ignored when they return
                unsent = sum(1 for r in self.ready if r.key == span.key)
                if unsent:
                    self.ready = deque(r for r in self.ready if r.key != span.key)
                left = s.n_spans - len(s.results) - 1 - unsent
                if left:
                    self.dropped[span.key] = (s.plan, left)
                finished.append((s.plan, None, out.text, time.perf_counter() - s.t0))
                continue
            seconds, result = out
            s.results[span.index] = result
            s.seconds += seconds
            if len(s.results) == s.n_spans:
                del self.flight[span.key]
                results = [s.results[i] for i in range(s.n_spans)]
                finished.append((s.plan, results, None, s.seconds))
        self.collect_many(finished)
        if fault is not None:
            self.raise_store_fault(fault)

    def late_span(self, span: SpanWork, out: SpanOutcome) -> None:
        """A span of a series that had already failed came back: with cubes, a span that ran may
        have written its cube blocks after the series' values were cleared, so they are cleared
        again (the failed series keeps no values)."""
        if span.key not in self.dropped:
            return
        p, left = self.dropped[span.key]
        if left > 1:
            self.dropped[span.key] = (p, left - 1)
        else:
            del self.dropped[span.key]
        wrote = self.settings.cubes or self.worker_totals is not None
        if out is not None and not isinstance(out, SpanFailure) and wrote:
            self.clear_values(p)

    # -- 5. collect ---------------------------------------------------------------------------
    def collect(
        self, p: SeriesPlan, results: list | None, error: str | None, seconds: float
    ) -> None:
        """One series' outcome (:meth:`collect_many` of one)."""
        self.collect_many([(p, results, error, seconds)])

    def collect_many(
        self, outcomes: list[tuple[SeriesPlan, list | None, str | None, float]]
    ) -> None:
        """Series' outcomes ``(plan, spans' results, error, seconds)``: a done series' totals
        into the store (``error`` None), or its error; either way into the manifest and the
        summary. No other series' entry or values are touched.

        The totals of all done series are written first: by the workers, before their tasks
        returned (layout 2: ``worker_totals``), else here in one call
        (:meth:`~gridflux.pipeline.manifest.TotalsWriter.write_many`); then their entries are
        appended to the journal ``manifest.json.d/`` in one write (O(series), independent of
        the store's size: gridflux/pipeline/manifest.py): a series is ``done`` in the manifest
        only once its totals are in the store, and a kill between the two leaves the batch's
        series pending (recomputed by the next run, never half-recorded)."""
        if not outcomes:
            return
        assert self.template is not None
        n_regions, n_months = len(self.template.regions), len(self.template.months)
        done: list[tuple[SeriesPlan, np.ndarray, list[str], float]] = []
        failed: list[tuple[SeriesPlan, str, float]] = []
        for p, results, error, seconds in outcomes:
            if error is not None:
                failed.append((p, error, seconds))
                continue
            values = np.full((n_regions, n_months), np.nan)
            rows = self.region_rows(p)
            p.nbytes = 0
            for pos, tot, nbytes, *fixes in (block for span in results or [] for block in span):
                values[np.ix_(rows, pos)] = tot.T
                p.nbytes += nbytes
                if fixes and not p.fixes:  # repairs done by the worker's normalization
                    p.fixes = list(fixes[0])
            missing = self.missing_months(p, values)
            if p.months and len(missing) == len(p.months):
                failed.append((p, self.no_data_error(p), seconds))
            else:
                done.append((p, values, missing, seconds))
        if self.worker_totals is None:  # else the workers wrote them before their spans returned
            self.totals_writer.write_many(
                [
                    (self.member_index[p.member], self.var_index[p.variable], self.merged(p, v))
                    for p, v, _, _ in done
                ]
            )
        records: list[tuple[str, dict]] = []
        for p, _values, missing, seconds in done:
            entry = self.entry_for(p, "done", seconds=seconds)
            if missing:
                entry["missing_months"] = missing
                self.summary.missing[p.key] = missing
            self.manifest["series"][p.key] = entry
            self.summary.done.append(p.key)
            if p.only_regions is not None:
                self.summary.regions_only.append(p.key)
            self.note_history(p)
            self.summary.bytes_read += p.nbytes
            records.append((p.key, entry))
        for p, error, seconds in failed:
            self.clear_values(p)
            entry = self.entry_for(p, "failed", error=error, seconds=seconds)
            self.manifest["series"][p.key] = entry
            self.summary.failed[p.key] = error
            self.history["failed"].append(
                {"series": p.key, "version": getattr(p.record, "version", ""), "error": error}
            )
            records.append((p.key, entry))
        # after the totals: a kill loses at most the lines being written
        self.journal.record_many(records)
        for p, *_ in done:
            self.progress.advance(p.key, p.nbytes)
        for p, *_ in failed:
            self.progress.advance(p.key, p.nbytes)

    def merged(self, p: SeriesPlan, values: np.ndarray) -> np.ndarray:
        """A series' totals as the driver writes them: ``values``, or for a series computed for
        new regions only, its stored totals with those regions' rows from ``values``."""
        if p.only_regions is None:
            return values
        rows = self.region_rows(p)
        out = self.store.series_totals(self.member_index[p.member], self.var_index[p.variable])
        out[rows] = values[rows]
        return out

    def missing_months(self, p: SeriesPlan, values: np.ndarray) -> list[str]:
        """The series' months (``YYYY-MM``) whose totals are NaN in every region: months whose
        field holds no value at all (:func:`gridflux.fields.totals.no_data_months`)."""
        from gridflux.fields.timeaxis import month_label

        empty = np.isnan(values).all(axis=0) if values.shape[0] else np.zeros(values.shape[1], bool)
        return [month_label(m) for m in p.months if empty[self.axis_pos[m]]]

    def no_data_error(self, p: SeriesPlan) -> str:
        """The one line of a series with no value in any month (all NaN, ``_FillValue`` or
        ``missing_value``): a series with no data fails, it never totals 0."""
        files = ", ".join(p.record.paths[:3]) + (" ..." if len(p.record.paths) > 3 else "")
        return (
            f"{files}: variable {p.variable!r}: no finite value in any of its {len(p.months)} "
            "months (every cell is NaN, _FillValue or missing_value); a series with no data is "
            "not zero: check the files, or leave the series out of the catalog"
        )

    def release(self) -> None:
        """Drop the plans' opened datasets, so that no input file stays open after the run (a
        Run is referenced from cycles, e.g. its progress callback: waiting for the garbage
        collector would keep files open, and locked against writers, after ``run`` returned)."""
        import gc

        for p in self.plans:
            p.canonical = None
        self.plans = []
        # the opened series' chunk readers sit in reference cycles (xarray's lazily indexed
        # arrays refer back to their backend array): collect them now, so that their HDF5
        # handles close before run returns and a writer may open the inputs. Only files on this
        # machine have such handles (a remote file's reader holds bytes, no handle, and goes with
        # the next automatic collection): a full collection costs 0.2-0.4 s in a process that
        # has imported the stack, a large part of a short run on object storage
        if self.local_inputs:
            gc.collect()

    # -- 6. record ----------------------------------------------------------------------------
    def record(self) -> None:
        """The final manifest, after removing temp files of interrupted writes (a worker killed
        mid-write whose task the scheduler reran elsewhere)."""
        leftovers = self.store.remove_partial_writes()
        if leftovers:
            log.info(
                "removed %d temporary file(s) of interrupted writes from %s",
                len(leftovers),
                self.store.url,
            )
        self.history["finished"] = _utc_now()
        self.history["done"] = len(self.summary.done)
        self.history["skipped"] = len(self.summary.skipped)
        self.manifest.setdefault("history", []).append(self.history)
        self.store.write_manifest(self.manifest)

    def raise_store_fault(self, exc: BaseException) -> None:
        """Raise a :class:`StoreWriteError` when a series' error is the store's (a worker's cube
        write refused: disk full, read-only, quota); return for any other error (the series
        fails alone)."""
        if isinstance(exc, StoreWriteError):
            raise exc
        if is_store_fault(exc):
            cause = exc
            while not isinstance(cause, OSError) and cause.__cause__ is not None:
                cause = cause.__cause__
            if isinstance(cause, OSError):
                raise self.store.write_error("a cube block", cause) from exc

    def stop(self, exc: StoreWriteError) -> RunStopped:
        """After the store refused a write midway: no more series are submitted (the caller has
        left :meth:`execute`), the state of every series that can be recorded is (series done so
        far stay done; series in flight stay pending, so a re-run recomputes them), and the
        summary names the error. Returns the :class:`RunStopped` to raise."""
        from gridflux.ingest.remote import scrub

        line = scrub(" ".join(str(exc).split()), self.store.storage_options)
        self.summary.stopped = line
        if self.template is not None:
            try:
                self.store.write_manifest(self.manifest)
            except StoreError as again:  # e.g. still full: the last manifest written stands
                log.info("the manifest could not be rewritten after the fault: %s", again)
        return RunStopped(line, self.summary)

    def note_history(self, p: SeriesPlan) -> None:
        """A computed series in this run's history: added (new to the store), replaced (its
        inputs or version changed; with both versions), recomputed (same inputs, another
        configuration, or retried) or ``regions_added`` (done before, computed for the regions
        added to the store only; with their names)."""
        before = self.previous.get(p.key)
        version = getattr(p.record, "version", "") or ""
        if p.only_regions is not None:
            self.history["regions_added"].append({"series": p.key, "regions": p.only_regions})
        elif before is None:
            self.history["added"].append({"series": p.key, "version": version})
        elif before.get("status") == "done" and (
            before.get("fingerprint") != p.fingerprint or before.get("version", "") != version
        ):
            self.history["replaced"].append(
                {"series": p.key, "from": before.get("version", ""), "to": version}
            )
        else:
            self.history["recomputed"].append(p.key)

    def entry_for(
        self,
        p: SeriesPlan,
        status: str,
        *,
        error: str | None = None,
        seconds: float | None = None,
    ) -> dict:
        """A series' manifest entry."""
        e: dict[str, Any] = {
            "status": status,
            "member": p.member,
            "variable": p.variable,
            "fingerprint": p.fingerprint,
            "config_hash": self.chash_of(p.record),
            "regions": list(self.mask.names),  # the regions its totals hold (the run's)
            "protocol": self.protocol_of(p.record),
            "version": getattr(p.record, "version", "") or "",
            "updated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "bytes": p.nbytes,
        }
        e.update(self.statistic_of(p.variable, p.record))
        if p.fixes:  # repairs of the files' defects (gridflux.ingest.fixes), kept in the store
            e["fixes"] = list(p.fixes)
        if error:
            e["error"] = error
        if seconds is not None:
            e["seconds"] = round(seconds, 4)
        return e

    def statistic_of(self, variable: str, record: Any = None) -> dict:
        """A series' statistic for its manifest entry: ``total`` or ``mean``, the run's level
        selection (``sel``) when there is one, ``resample`` and ``land_weighted`` when set, and
        a mean's stored ``units``."""
        out: dict = {}
        t = self.template
        if t is not None and variable in t.variables:
            kind = t.variable_kinds[t.variables.index(variable)]
            out["statistic"] = "mean" if kind == "mean" else "total"
            if kind == "mean":
                out["units"] = variable_units([variable], [kind], t.units)[0]
        if self.settings.sel:
            out["sel"] = self.settings.sel
        traits = getattr(record, "traits", None) or {}
        if traits.get("resample"):
            out["resample"] = str(traits["resample"])
        if getattr(record, "land_weighted", False) and out.get("statistic") == "mean":
            out["land_weighted"] = True
        return out

    # -- submitting and collecting ------------------------------------------------------------
    def execute(
        self, todo: list[SeriesPlan], client: Any, progress: bool | Callable | None = None
    ) -> None:
        """Compute ``todo``: in this process (``client`` None) or on the client's cluster, the
        spans of many short series packed into one task (:meth:`next_batch`), a bounded number of
        tasks in flight; each finished task's outcomes go to :meth:`absorb`."""
        n_slots = sum(client.nthreads().values()) if client is not None and todo else 1
        self.task_months = task_months_for(
            self.settings.task_setting, len(todo), n_slots, self.settings.time_chunk
        )
        per_task = series_per_task(len(todo), n_slots)
        log.info(
            "%d series on %d worker thread(s): %s, up to %d series (%d MB of files) per task",
            len(todo),
            n_slots,
            "whole series"
            if self.task_months is None
            else f"spans of at most {self.task_months} months",
            per_task,
            self.settings.task_bytes // 10**6,
        )
        mask_future = None
        if client is not None and todo:
            # every worker, also one a nanny restarts, has the task stack imported, its first
            # open done and netCDF-C's chunk cache limited before its first task
            client.register_plugin(_worker_setup_plugin(), name="gridflux-worker-setup")
            # held while the run lasts: the scheduler reruns it if the worker holding it dies
            mask_future = client.compute(self.mask_delayed)
        self.mask_ref = self.mask_delayed if mask_future is None else mask_future
        # started with the computing, so that its rate is of the reading (not the cluster's start)
        self.progress = Progress(progress, len(todo))
        t_compute, cpu_compute = time.perf_counter(), time.process_time()
        try:
            if client is None:
                self._execute_in_process(todo, per_task)
            else:
                # a copy of the mask on every worker: the scheduler assigns a task only to the
                # workers that hold its dependencies, so with one copy the first tasks all queued
                # on one worker while the others idled (work stealing is off; test_mask_copies)
                if n_slots > 1:
                    try:
                        client.replicate([mask_future], callback_timeout=MASK_COPY_TIMEOUT)
                    except Exception as exc:  # noqa: BLE001 - a speed-up: tasks fetch the mask
                        log.debug("the mask was not copied to every worker: %r", exc)
                self._execute_on_cluster(todo, client, per_task, n_slots)
        finally:
            self.progress.close()
            if mask_future is not None:
                mask_future.release()
                self.mask_ref = self.mask_delayed
        self.summary.compute_seconds = time.perf_counter() - t_compute
        self.summary.compute_cpu_seconds = time.process_time() - cpu_compute
        self.journal.flush()

    def _execute_in_process(self, todo: list[SeriesPlan], per_task: int) -> None:
        """The batches one after another in this process (no scheduler: the same task function a
        worker runs, called directly)."""
        from gridflux.pipeline.tasks import forget_opened

        pending = deque(todo)
        self.in_process = True
        try:
            while (batch := self.next_batch(pending, per_task)) is not None:
                items = [(s.job, s.blocks) for s in batch.spans]
                outcomes = process_batch(
                    items, self.mask, self.storage_options, self.store.storage_options
                )
                self.absorb(batch, outcomes)
        finally:
            self.in_process = False
            forget_opened()  # no file handle outlives an in-process run

    def _execute_on_cluster(
        self, todo: list[SeriesPlan], client: Any, per_task: int, n_slots: int
    ) -> None:
        """Submit batches as earlier ones finish: at least two tasks per worker thread in flight
        (so that no worker waits for the driver), and further ones only while fewer than
        ``batch_size`` series are in flight. One future per task; a task that fails as a whole
        (a lost worker) is resubmitted span by span (:meth:`requeue_alone`)."""
        from distributed import as_completed

        pending = deque(todo)
        out: dict[Any, _Batch] = {}  # by future key
        ac = as_completed()
        token = uuid.uuid4().hex[:8]
        count = 0

        def submit_next() -> None:
            nonlocal count
            while len(out) < 2 * n_slots or sum(b.series for b in out.values()) < (
                self.settings.batch_size
            ):
                batch = self.next_batch(pending, per_task)
                if batch is None:
                    return
                count += 1
                items = [(s.job, s.blocks) for s in batch.spans]
                try:
                    fut = client.submit(
                        process_batch,
                        items,
                        self.mask_ref,
                        self.storage_options,  # the inputs'
                        self.store.storage_options,  # the store's (cube writes)
                        key=self.task_key(batch, token, count),
                        pure=False,
                    )
                except Exception as exc:  # noqa: BLE001 - e.g. a job that does not pickle
                    self.absorb(batch, [SpanFailure(error_text(exc))] * len(batch.spans))
                    continue
                out[fut.key] = batch
                ac.add(fut)

        # a store fault (raise_store_fault) leaves this loop: the futures in flight, referenced
        # only here, are released with it and the scheduler drops their tasks
        submit_next()
        for fut in ac:
            batch = out.pop(fut.key)
            try:
                outcomes: list[SpanOutcome] | None = fut.result()
            except Exception as exc:  # noqa: BLE001 - the task as a whole: its worker was lost
                self.raise_store_fault(exc)
                if len(batch.spans) > 1:
                    self.requeue_alone(batch)
                    outcomes = None
                else:
                    outcomes = [SpanFailure(error_text(exc))]
            finally:
                fut.release()
            if outcomes is not None:
                self.absorb(batch, outcomes)
            submit_next()

    def task_key(self, batch: _Batch, token: str, count: int) -> str:
        """A task's key: a lone span's is its series, inputs, mask and span index (as the span
        tasks of :func:`series_tasks` are named); a batch's names its first series and size."""
        if len(batch.spans) == 1:
            s = batch.spans[0]
            job = s.job
            suffix = regions_suffix(job)
            return f"gridflux-span-{s.key}-{job.fingerprint_key}-{job.mask_key}{suffix}-{s.index}"
        first = batch.spans[0]
        return f"gridflux-batch-{token}-{count}-{first.key}-{len(batch.spans)}"


def series_per_task(n_series: int, n_slots: int) -> int:
    """How many series one task may hold: enough for :data:`TASKS_PER_SLOT` tasks per worker
    thread, at least 1 and at most :data:`MAX_SERIES_PER_TASK` (``task-bytes`` bounds it too)."""
    return max(1, min(MAX_SERIES_PER_TASK, n_series // (TASKS_PER_SLOT * max(n_slots, 1))))


def catalog_records(
    catalogs: str | Any | list, query: dict | None, storage_options: dict | None
) -> list:
    """The series of one or several catalogs (paths/URLs of intake-esm JSON/CSV or intake YAML,
    or loaded ``Catalog`` objects, mixed), in catalog order.

    Raises
    ------
    GridfluxError
        When the selection matches no series.
    CatalogError
        When one series is in two catalogs (naming both catalogs, the series and their files).
    """
    from gridflux.errors import CatalogError
    from gridflux.ingest import catalog as catalog_mod

    items = list(catalogs) if isinstance(catalogs, (list, tuple)) else [catalogs]
    if not items:
        raise GridfluxError("no catalog given; expected at least one catalog path or URL")
    records: list = []
    seen: dict[str, Any] = {}
    for item in items:
        cat = (
            item
            if hasattr(item, "series")
            else catalog_mod.load_catalog(item, storage_options=storage_options)
        )
        for rec in cat.series(query):
            first = seen.get(rec.key)
            if first is not None:
                raise CatalogError(
                    f"series {rec.key} is in two catalogs: {first.catalog} (files "
                    f"{_brief_paths(first.paths)}) and {rec.catalog} (files "
                    f"{_brief_paths(rec.paths)}); keep it in one of them"
                )
            seen[rec.key] = rec
            records.append(rec)
    if not records:
        where = ", ".join(str(getattr(c, "path", c)) for c in items)
        raise GridfluxError(f"the catalog selection {query or {}} matched no series in {where}")
    return records


def _brief_paths(paths: list[str]) -> str:
    return ", ".join(paths[:2]) + (f" and {len(paths) - 2} more" if len(paths) > 2 else "")


@info_once()  # an input object's size/ETag asked once per run (fingerprint, daily check, open)
def run(
    catalog: str | Any | list,
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
    prune: bool = False,
    verify: bool | None = None,
    sel: str | None = None,
    strict: bool | None = None,
    resample: str | None = None,
    land_weighted: bool | None = None,
) -> RunSummary:
    """Compute the totals (and cubes) of every series of a catalog into a zarr store.

    Every setting left None comes from dask's config under ``gridflux`` (``gridflux.yaml``, the
    user's dask config, ``DASK_GRIDFLUX__*`` variables, :func:`gridflux.set_options`).

    Parameters
    ----------
    catalog : path/URL of a catalog (intake-esm JSON/CSV or intake YAML), a loaded ``Catalog``,
        or a list of them (mixed formats); a series may be in only one of them
    mask : RegionMask or path of a mask file
    store : path or URL of the zarr store (created on first run, resumed after)
    query : catalog selection, e.g. ``{"ensemble": "ISIMIP3b", "variable": ["npp", "rh"]}``
    target : regrid-data target grid (default ``gridflux.target-grid``: 0.5 deg global)
    protocol : ``regrid-data`` or ``regrid-mask`` for every series (default
        ``gridflux.pipeline.protocol``, null: each series' own, :func:`series_protocol`)
    cubes : write regridded cubes as well as totals (default ``gridflux.pipeline.cubes``)
    chunk_months : months per block: one read and one store time chunk (default 12)
    task_months : months per task, consecutive blocks of one series; default ``"auto"``: a whole
        series per task when there are at least two series per worker thread, else 120
        (:func:`task_months_for`)
    client : a ``distributed.Client``, or a zero-argument callable returning one (called only when
        the series are planned, so a cluster can start while the driver opens the catalog); None
        computes in this process (synchronous scheduler)
    storage_options : fsspec options for the inputs (credentials stay in memory)
    store_options : fsspec options for the store
    zarr_format : of a new store (default ``gridflux.store.zarr-format``)
    batch_size : series in flight at once (default ``gridflux.pipeline.batch-members``)
    progress : True for a rich progress bar, or a callable ``(done, total, key)``
    retry_failed : compute series that failed in an earlier run again
    prune : remove from the store the series that are in none of the catalogs (else they are
        kept and named in the summary's ``not_in_catalogs``)
    verify : hash every input file's bytes into its series' fingerprint, for archives whose
        modification times cannot be trusted (default ``gridflux.pipeline.verify``)
    sel : level selection of 4-D fields, ``"plev=85000"`` (one level) or ``"depth=0:1"`` (a
        layer: integral of stocks, thickness-weighted mean of means); part of the config hash
    strict : refuse to repair the files' known defects (:mod:`gridflux.ingest.fixes`): such a
        series fails naming the defect (default ``gridflux.strict``); part of each series'
        fingerprint, so that changing it recomputes the series it concerns
    resample : ``"month"``: daily (sub-monthly) series become monthly means of their days in
        their own calendar (totals: the monthly mean rate x the month's seconds = the sum of the
        daily totals); a month missing days is a missing month (NaN, named). Without it a daily
        series keeps its daily axis: per-day means and totals in the store's ``daily/`` group
        (:mod:`gridflux.pipeline.daily`; monthly series of the run go to the root)
    land_weighted : weight the region means of every mean series by cell area x land fraction
        (the series' ``sftlf`` fx file; the catalog's ``land_weighted`` column says it per
        series); recorded in the manifest

    Returns
    -------
    RunSummary (done / skipped / failed with errors, bytes read, wall time)
    """
    t_start = time.perf_counter()
    settings = RunSettings.resolve(
        target=target,
        protocol=protocol,
        cubes=cubes,
        chunk_months=chunk_months,
        task_months=task_months,
        zarr_format=zarr_format,
        batch_size=batch_size,
        verify=verify,
        sel=sel,
    )
    region_mask = mask if isinstance(mask, RegionMask) else RegionMask.from_file(mask)
    region_mask.check_nonempty()  # a region with no cell inside is an error at start

    records = catalog_records(catalog, query, storage_options)
    apply_selection(records, settings.sel)
    apply_statistic_options(records, resample=resample, land_weighted=land_weighted)
    strict_fixes = bool(config.get("strict", override=strict))
    records = [rec.model_copy(update={"strict": strict_fixes}) for rec in records]
    records, daily_records = split_daily(records, resample, storage_options)  # -> daily/ group
    local_inputs = any(has_local_files(rec) for rec in [*records, *daily_records])

    st = Store(store, store_options, settings.zarr_format)
    r = Run(
        settings=settings,
        mask=region_mask,
        store=st,
        storage_options=storage_options,
        retry_failed=retry_failed,
        prune=prune,
    )
    r.local_inputs = local_inputs
    st.finish_rebuild()  # a growth killed while swapping the old store for the grown one
    st.acquire_lock()
    try:
        if daily_records or prune:  # prune: also daily series gone from the catalogs
            daily = run_daily_series(daily_records, r)
            add_daily(r.summary, daily)
            r.history["daily"] = daily.history
            if not records:  # daily series only: the root's monthly template is not written
                if daily.group or daily.failed or daily.pruned:
                    r.history["finished"] = _utc_now()
                    record_history(st, r.history)
                return r.summary
        r.plan(records)
        if r.nothing_to_compute():
            return r.summary
        r.make_template()
        todo = r.select()
        if callable(client) and not hasattr(client, "submit"):
            client = client() if todo else None
        r.execute(todo, client, progress)
        r.record()
    except StoreWriteError as exc:  # disk full or read-only midway: stop, record, say so
        raise r.stop(exc) from exc
    finally:
        r.release()
        st.release_lock()
        r.summary.seconds = time.perf_counter() - t_start
    return r.summary


def has_local_files(record: Any) -> bool:
    """Whether any file of a series (data or fx) is on this machine (not an object-storage or
    web URL)."""
    from gridflux.ingest.remote import is_remote

    paths = [*record.paths, *getattr(record, "fx_paths", {}).values()]
    return any(not is_remote(str(p)) for p in paths)


def with_selection(chash: str, sel: str | None) -> str:
    """The config hash of a run with a level selection (unchanged without one)."""
    if not sel:
        return chash
    import hashlib

    return hashlib.sha256(f"{chash}|sel={sel}".encode()).hexdigest()[: len(chash)]


def apply_selection(records: list, sel: str | None) -> None:
    """Give every series the run's level selection (read by the workers' ``load_series``)."""
    if sel:
        for rec in records:
            rec.traits["sel"] = sel


RESAMPLE = ("month",)


def apply_statistic_options(
    records: list, *, resample: str | None = None, land_weighted: bool | None = None
) -> None:
    """Give the series the run's ``resample`` (every series: a daily one becomes monthly, a
    monthly one is unchanged) and ``land_weighted`` (every *mean* series; a catalog's
    ``land_weighted`` column says it per series). Both are in the series' fingerprints
    (``SeriesRecord.statistic_options``), so changing them recomputes what they change."""
    if resample is not None and resample not in RESAMPLE:
        raise GridfluxError(f"resample {resample!r}: expected one of {list(RESAMPLE)}")
    for rec in records:
        if resample:
            rec.traits["resample"] = resample
        if land_weighted and variable_kind(rec.variable, rec) == "mean":
            rec.traits["land_weighted"] = True


def mean_units_of(
    plans: list[SeriesPlan], template: StoreTemplate, storage_options: dict | None
) -> dict[str, str]:
    """The unit each mean variable outside :data:`~gridflux.fields.statistics.MEAN_UNITS` is
    stored in: the catalog's ``units`` column, else the file's own ``units`` attribute of the
    first of its series (read from an opened plan, or from the file's metadata). An existing
    store's unit wins over it (growth keeps it); every series is converted to it. The first
    string that is a unit wins (a series whose units are not one fails, naming them); when no
    series has one, the first string found is kept and every series of the variable fails."""
    from gridflux.fields.statistics import MEAN_UNITS, parse_unit
    from gridflux.ingest.catalog.opening import variable_attribute

    def is_unit(u: str) -> bool:
        try:
            parse_unit(u)
        except ValueError:
            return False
        return True

    out: dict[str, str] = {}
    for v, kind in zip(template.variables, template.variable_kinds, strict=True):
        if kind != "mean" or v in MEAN_UNITS:
            continue
        for p in (p for p in plans if p.variable == v):
            units = p.record.units
            if not units and p.canonical is not None:
                units = p.canonical[v].attrs.get("gridflux_raw_units")
            if not units:
                try:
                    units = variable_attribute(p.record, "units", storage_options)
                except Exception:  # noqa: BLE001 - an unreadable series fails when computed
                    units = None
            units = " ".join(str(units or "").split())
            if units and units != "None":
                out.setdefault(v, units)
                if is_unit(units):
                    out[v] = units
                    break
    return out


def _worker_setup_plugin():
    """A worker plugin that runs :func:`gridflux.compute.worker_setup.dask_setup` (imports,
    netCDF-C's chunk cache) on every worker, also one started later (a class made here so that
    ``distributed`` is imported only when a cluster is used; cloudpickle ships it by value)."""
    from distributed import WorkerPlugin

    from gridflux.compute.worker_setup import dask_setup

    class WorkerSetup(WorkerPlugin):
        def setup(self, worker) -> None:
            dask_setup(worker)

    return WorkerSetup()


def _utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def versions() -> dict:
    """Versions of gridflux and the libraries its results depend on (recorded in the manifest)."""
    import importlib.metadata as md

    out = {"gridflux": __version__}
    for pkg in ("numpy", "scipy", "xarray", "dask", "distributed", "zarr", "netCDF4", "h5netcdf"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    return out
