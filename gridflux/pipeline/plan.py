"""Planning a run: which series to compute, what they hold, and the store they go to.

A :class:`SeriesPlan` describes one series (one member's variable) before its tasks exist: its
inputs' fingerprint (file sizes and times, no data read), its months (declared by the catalog's
``time_range`` or read from the files' time axes), or the error that stops it. A series that is
done with the same fingerprint and configuration hash (:func:`config_hash`) is skipped without
opening it (:func:`plan_or_skip`), or computed for the regions added to the store only.
:func:`build_template` turns the plans into the store's template (members, their traits,
variables, regions, the union of months).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gridflux import config
from gridflux.errors import GridfluxError
from gridflux.fields.masks import RegionMask
from gridflux.fields.timeaxis import Month, continuous_months, month_label, months_of_dates
from gridflux.kernels.grids import CellBounds, global_grid
from gridflux.pipeline.fingerprint import series_fingerprint, unchanged
from gridflux.pipeline.store import BOOL_TRAITS, MEMBER_TRAITS, StoreTemplate


@dataclass(kw_only=True)
class SeriesPlan:
    """One series, described on the driver and ready to become tasks.

    ``skip``: done earlier with the same inputs and configuration (not even opened).
    ``planned``: False for a placeholder, planned just before its tasks are submitted
    (:meth:`gridflux.pipeline.runner.Run.prepare` replaces it by its plan)."""

    record: Any  # catalog.SeriesRecord
    canonical: Any = None  # canonical xr.Dataset
    grid: CellBounds | None = None
    months: list[Month] = field(default_factory=list)
    fingerprint: dict | None = None
    error: str | None = None
    nbytes: int = 0
    previous_status: str | None = None
    skip: bool = False
    planned: bool = True
    #: repairs of the files' defects normalization did (the field's ``gridflux_fixes``)
    fixes: list[str] = field(default_factory=list)
    #: a series done with the same inputs and configuration whose totals lack these regions of
    #: the run's mask (added to the store): only they are computed, its stored values stay;
    #: None: the series is computed whole
    only_regions: list[str] | None = None

    @property
    def key(self) -> str:
        """The series id (``member/variable``, :func:`gridflux.ingest.catalog.series_id`)."""
        return self.record.key

    @property
    def member(self) -> str:
        return self.record.member

    @property
    def variable(self) -> str:
        return self.record.variable


class PlanError(Exception):
    """A series that could not be opened; its message is already the recorded error text."""


def error_text(exc: BaseException) -> str:
    """One line for a series' error: its type and message, and its cause when that adds to it."""
    if isinstance(exc, PlanError):
        return str(exc)
    text = f"{type(exc).__name__}: {exc}"
    cause = exc.__cause__
    if cause is not None and str(cause) not in text:
        text += f" (caused by {type(cause).__name__}: {cause})"
    from gridflux.ingest.remote import scrub

    return scrub(text)  # a cause may carry a signed URL into the summary


def target_grid(spec: str | CellBounds | None = None) -> CellBounds:
    """The regrid-data target grid: a CellBounds, ``"0.5"``, ``"1x1.25"`` (dlat x dlon), or None
    for ``gridflux.target-grid`` of the config."""
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
    verify: bool = False,
) -> SeriesPlan:
    """Open one series lazily and describe it (never raises: errors are recorded).

    ``fingerprint`` is the series' input fingerprint when the caller has already taken it;
    ``verify`` hashes the inputs' bytes into it
    (:func:`~gridflux.pipeline.fingerprint.series_fingerprint`)."""
    from gridflux.fields.regrid import grid_of
    from gridflux.ingest import catalog

    plan = SeriesPlan(record=record)
    try:
        plan.fingerprint = fingerprint or series_fingerprint(record, storage_options, verify)
        ds = catalog.load_series(
            record,
            storage_options=storage_options,
            chunks={"time": int(config.get("pipeline.chunk-months", override=chunk_months))},
        )
        plan.canonical = ds
        plan.grid = grid_of(ds)
        done = str(ds[record.variable].attrs.get("gridflux_fixes", ""))
        plan.fixes = [f for f in done.split("; ") if f]
        plan.months = list(months_of_dates(ds["time"].values))
        da = ds[record.variable]
        plan.nbytes = int(da.dtype.itemsize * np.prod(da.shape))
    except Exception as exc:  # noqa: BLE001 - a failing member never sinks the others
        plan.error = error_text(exc)
    return plan


def is_unchanged(entry: dict, chash: str, fingerprint: dict | None, verify: bool = False) -> bool:
    """Whether a manifest entry is a done series with this configuration and these inputs
    (content hashes compared only under ``verify``:
    :func:`~gridflux.pipeline.fingerprint.unchanged`)."""
    return (
        entry.get("status") == "done"
        and entry.get("config_hash") == chash
        and unchanged(fingerprint, entry.get("fingerprint"), verify)
    )


def regions_lacking(entry: dict, regions: Any) -> list[str] | None:
    """The ``regions`` (the run's) whose totals a done series' entry does not hold (its
    ``regions``: the store's regions when it was computed), in the run's order; None when the
    entry does not say (then the series is computed whole)."""
    held = entry.get("regions")
    if not isinstance(held, list):
        return None
    have = set(held)
    return [r for r in regions if r not in have]


def plan_or_skip(
    record: Any,
    entry: dict,
    chash: str,
    existing: bool,
    storage_options: dict | None,
    chunk_months: int | None = None,
    open_files: bool = True,
    verify: bool = False,
    regions: Any = None,
) -> SeriesPlan:
    """Skip a series that is done with unchanged inputs (fingerprint: file sizes and times, no data
    read) and configuration, and holds every region of ``regions`` (the run's mask; None: not
    asked). Plan every other one: with ``open_files`` by opening it lazily (:func:`plan_series`),
    else from its fingerprint and the months its catalog rows declare. A done, unchanged series
    that lacks some of ``regions`` (regions added to the store) is planned with ``only_regions``:
    only they are computed (a region's totals never depend on the other regions: the kernels of
    :mod:`gridflux.fields.totals`)."""
    fp = None
    only: list[str] | None = None
    if existing and entry.get("status") == "done" and entry.get("config_hash") == chash:
        try:
            fp = series_fingerprint(record, storage_options, verify)
        except Exception:  # noqa: BLE001 - unreadable now: recorded below
            fp = None
        if is_unchanged(entry, chash, fp, verify):
            lacking = [] if regions is None else regions_lacking(entry, regions)
            if lacking == []:
                return SeriesPlan(
                    record=record, fingerprint=fp, skip=True, nbytes=int(entry.get("bytes", 0))
                )
            only = lacking
    if open_files:
        plan = plan_series(record, storage_options, chunk_months, fingerprint=fp, verify=verify)
        plan.only_regions = only
        return plan
    plan = SeriesPlan(record=record, months=declared_months(record) or [], only_regions=only)
    try:
        plan.fingerprint = fp or series_fingerprint(record, storage_options, verify)
    except Exception as exc:  # noqa: BLE001 - a failing member never sinks the others
        plan.error = error_text(exc)
    return plan


def config_hash(target: CellBounds, protocol: str, cubes: bool, radius: float) -> str:
    """Hash of everything besides the inputs and the regions that changes a series' results.

    The regions are not in it: a region's totals depend on its own geometry only (the kernels of
    :mod:`gridflux.fields.totals` sum each region over its own cells), a store refuses another
    geometry for a region it holds (:func:`gridflux.pipeline.growth.plan_growth`), and each
    series' manifest entry names the regions it holds (``regions``), so a store that gains a
    region computes only that region for its done series (:func:`plan_or_skip`). ``kernel``
    names the way totals are summed: a store of an older one is recomputed (its values may
    differ in the last bits)."""
    h = hashlib.sha1()
    h.update(
        json.dumps(
            {
                "protocol": protocol,
                "cubes": cubes,
                "radius": radius,
                "target": target.fingerprint(),
                "layout": 1,
                "kernel": "region-cells",
            }
        ).encode()
    )
    return h.hexdigest()[:16]


def mask_key(mask: RegionMask) -> str:
    """A short hash of the mask's fractions and grid (the mask's graph key)."""
    h = hashlib.sha1(np.ascontiguousarray(mask.fractions).tobytes())
    h.update(mask.grid.fingerprint().encode())
    return h.hexdigest()[:16]


def fingerprint_key(fingerprint: dict | None) -> str:
    """A short hash of a series' input fingerprint (a changed file gets a new key)."""
    text = json.dumps(fingerprint, sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def declared_months(record: Any) -> list[Month] | None:
    """The months a series' catalog rows declare (``time_range`` ``YYYYMM-YYYYMM`` or ``YYYY-YYYY``
    per file), or None when any row does not say: then the files must be opened to know."""
    ranges = list(getattr(record, "time_ranges", []) or [])
    if not ranges or len(ranges) != len(record.paths):
        return None
    months: list[Month] = []
    for r in ranges:
        parts = str(r).replace("_", "-").split("-")
        if len(parts) != 2 or not all(p.isdigit() and len(p) in (4, 6) for p in parts):
            return None
        (a, b) = parts
        try:
            first = Month.parse(a) if len(a) == 6 else Month(int(a), 1)
            last = Month.parse(b) if len(b) == 6 else Month(int(b), 12)
        except ValueError:  # a month outside 1-12: the files must be opened to know
            return None
        months += continuous_months(first, last)
    return months


def months_outside(months: list[Month], axis: list[Month]) -> str | None:
    """None if every month lies on the store's axis, else a sentence naming the first outside."""
    on_axis = set(axis)
    outside = [m for m in months if m not in on_axis]
    if not outside:
        return None
    return (
        f"months {month_label(outside[0])}.. lie outside the store's time axis "
        f"({month_label(axis[0])}..{month_label(axis[-1])})"
        if axis
        else f"months {month_label(outside[0])}.. lie outside the store's (empty) time axis"
    )


def build_template(
    plans: list[SeriesPlan],
    mask: RegionMask,
    cube_grid: CellBounds | None,
    mask_on_cube: np.ndarray | None,
    cubes: bool,
    time_chunk: int,
    months: list[Month] | None = None,
    protocol_of: Any = None,
) -> StoreTemplate:
    """The store template for a set of series (failed ones keep their place: they may be fixed).

    ``months`` (the months the series cover) defaults to those of the opened plans; the store's
    axis runs continuously from the first to the last of them, its first month moved back to a
    multiple of ``time_chunk`` months (counted from year 0), so that its chunks fall on the same
    months whatever the axis' extent (a store that grows keeps its chunks; :func:`axis_start`).
    ``protocol_of(record)`` gives each series' protocol (kept in the ``protocol`` coordinate)."""

    members = sorted({p.member for p in plans})
    variables = sorted({p.variable for p in plans})
    first = {p.member: p for p in plans}
    traits = {t: [member_trait(first[m].record, t) for m in members] for t in MEMBER_TRAITS}
    months = [m for p in plans for m in p.months] if months is None else months
    axis = continuous_months(axis_start(min(months), time_chunk), max(months)) if months else []
    kinds: list[str] = [
        variable_kind(v, next(p.record for p in plans if p.variable == v)) for v in variables
    ]
    cube_vars = [v for v in variables if cubes] if cube_grid is not None else []
    return StoreTemplate(
        members=members,
        traits=traits,
        variables=variables,
        variable_kinds=kinds,
        regions=list(mask.names),
        months=axis,
        cube_grid=cube_grid if cubes else None,
        mask_on_cube_grid=mask_on_cube if cubes else None,
        cube_variables=cube_vars,
        time_chunk=time_chunk,
        protocols={p.key: protocol_of(p.record) for p in plans} if protocol_of else {},
    )


def variable_kind(variable: str, record: Any) -> str:
    """``flux`` or ``stock`` (a total, :data:`~gridflux.fields.units.VARIABLES`) or ``mean`` (an
    intensive variable, or the catalog's ``statistic=mean``)."""
    from gridflux.fields.units import VARIABLES
    from gridflux.ingest.catalog.variables import classify

    if variable in VARIABLES:
        return VARIABLES[variable].kind
    traits = getattr(record, "traits", {}) or {}
    how = classify(
        variable,
        getattr(record, "table_id", ""),
        override=traits.get("statistic"),
        resample=traits.get("resample"),
    )
    return "mean" if how.statistic == "mean" else "flux"


def axis_start(first: Month, time_chunk: int) -> Month:
    """The store axis' first month for a series starting at ``first``: the start of the chunk
    (``time_chunk`` months counted from January of year 0) that holds ``first``."""
    return Month.from_key(Month(*first).key // time_chunk * time_chunk)


def member_trait(record: Any, name: str) -> Any:
    """A member's trait as the store holds it (booleans for :data:`BOOL_TRAITS`, "" if unset)."""
    traits = getattr(record, "traits", {}) or {}
    # the record's attribute only when the traits lack it (a missing attribute of a pydantic
    # record costs ~20 us, paid per member and trait by every run's template)
    v = traits[name] if name in traits else getattr(record, name, None)
    if name in BOOL_TRAITS:
        return bool(v) if v not in (None, "") else False
    return "" if v is None else v
