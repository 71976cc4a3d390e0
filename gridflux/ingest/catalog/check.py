"""``gridflux catalog check``: open and normalize every series lazily, recording problems."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gridflux.errors import GridfluxError
from gridflux.ingest.catalog.collection import Catalog
from gridflux.ingest.catalog.opening import load_series, open_series
from gridflux.ingest.catalog.parsers import load_catalog
from gridflux.ingest.catalog.paths import AllowOutsideRoot
from gridflux.ingest.catalog.query import Query, canonical_of, matches, with_column
from gridflux.ingest.catalog.schema import CatalogRow, SeriesRecord
from gridflux.ingest.catalog.variables import classify_for_run, frequency


@dataclass
class SeriesCheck:
    """What ``gridflux catalog check`` reports for one series."""

    key: str
    variable: str
    raw_variable: str = ""
    files: int = 0
    grid: str = ""
    calendar: str = ""
    units: str = ""
    coverage: str = ""
    gaps: str = ""
    history: str = ""
    statistic: str = ""
    table_id: str = ""
    #: repairs of the files' defects (generic rules and fix table), as the history records them
    fixes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def check_series(
    record: SeriesRecord,
    storage_options: Mapping[str, Any] | None = None,
    *,
    scan_data: bool = False,
    strict: bool | None = None,
) -> SeriesCheck:
    """Open and normalize one series lazily; record problems instead of raising.

    ``scan_data``: also read every value once (a year at a time) and name the months whose field
    has no value at all (every cell NaN, ``_FillValue`` or ``missing_value``): missing months of a
    run (NaN in its store, never 0); a series with no value in any month is a problem.

    A series of a variable gridflux does not compute (:func:`classify`) is not opened: its
    ``statistic`` says why, and that is no problem of the files. Repairs of the files' defects
    (:mod:`gridflux.ingest.fixes`) are listed in ``fixes``; with ``strict`` (default
    ``record.strict``) a defect is a problem instead."""
    from gridflux.fields.timeaxis import key_label, keys_from_dates

    how = classify_for_run(record.variable, record.table_id)
    chk = SeriesCheck(
        record.key,
        record.variable,
        record.raw_variable,
        files=len(record.paths),
        statistic=how.label(),
        table_id=record.table_id,
    )
    if not how.computed:
        return chk
    daily = frequency(record.table_id) == "day"
    if daily:  # opened as `gridflux run` opens it: on its daily axis (the store's daily/ group)
        record = record.model_copy(update={"traits": {**(record.traits or {}), "resample": "day"}})
    try:
        ds = open_series(record, storage_options=storage_options)
        raw = ds.attrs["gridflux_raw_variable"]
        chk.units = str(record.units or ds[raw].attrs.get("units", ""))
        chk.calendar = ds.attrs.get("gridflux_calendar", "")
        keys = keys_from_dates(np.asarray(ds["time"].values))
        steps = f"{keys.size} days" if daily else f"{keys.size} months"
        chk.coverage = f"{key_label(keys[0])}..{key_label(keys[-1])} ({steps})"
        keys = np.unique(keys)
        canon = load_series(record, storage_options=storage_options, allow_gaps=True, strict=strict)
        da = canon[record.variable]
        south, north = float(canon.lat_bnds[0, 0]), float(canon.lat_bnds[-1, 1])
        chk.grid = f"{canon.sizes['lat']}x{canon.sizes['lon']} lat {south:g}..{north:g}"
        chk.gaps = da.attrs.get("gridflux_gaps", "")
        chk.history = da.attrs.get("gridflux_history", "")
        chk.fixes = [f for f in str(da.attrs.get("gridflux_fixes", "")).split("; ") if f]
        if chk.gaps:
            chk.problems.append(f"missing months: {chk.gaps}")
        if scan_data:
            empty = empty_months(da, keys)
            if empty and len(empty) == keys.size:
                chk.problems.append(
                    f"{', '.join(record.paths[:3])}: variable {record.raw_variable!r}: no finite "
                    "value in any month (all NaN, _FillValue or missing_value): a run fails it"
                )
            elif empty:
                shown = ", ".join(empty[:12]) + (
                    f" ... (+{len(empty) - 12})" if len(empty) > 12 else ""
                )
                chk.problems.append(
                    f"no data (every cell NaN or fill) in {len(empty)} month(s): {shown} "
                    "(missing months of a run: NaN in the store, not 0)"
                )
    except GridfluxError as exc:
        chk.problems.append(f"{type(exc).__name__}: {exc}")
    except Exception as exc:  # noqa: BLE001 - a failing series never stops the check of the others
        chk.problems.append(f"unexpected {type(exc).__name__}: {exc}")
    return chk


def empty_months(da: Any, keys: np.ndarray, months_per_read: int = 12) -> list[str]:
    """``YYYY-MM`` of the months of ``da`` (time, lat, lon; lazy) whose field holds no value,
    read ``months_per_read`` months at a time (:func:`gridflux.fields.totals.no_data_months`)."""
    from gridflux.fields.timeaxis import key_label
    from gridflux.fields.totals import no_data_months

    out: list[str] = []
    for t0 in range(0, da.sizes["time"], months_per_read):
        block = np.asarray(da.isel(time=slice(t0, t0 + months_per_read)).values)
        out += [key_label(keys[t0 + k]) for k in np.flatnonzero(no_data_months(block))]
    return out


def check_catalog(
    catalog: Catalog | str,
    *,
    storage_options: Mapping[str, Any] | None = None,
    query: Query | None = None,
    allow_outside_root: AllowOutsideRoot = False,
    scan_data: bool = False,
    strict: bool = False,
) -> list[SeriesCheck]:
    """Check every series of a catalog (each failure recorded, none stops the others); with
    ``strict`` a defect gridflux would repair is a problem (as ``gridflux run --strict`` fails).

    A catalog holding several CMIP6 tables is checked table by table (so that ``Amon`` and
    ``day`` files of one variable are two series here, where a run needs one selected)."""
    cat = (
        catalog
        if isinstance(catalog, Catalog)
        else load_catalog(
            catalog, storage_options=storage_options, allow_outside_root=allow_outside_root
        )
    )
    tables = sorted({r.table_id for r in cat.rows if not r.is_fx})
    asked = [query] if isinstance(query, Mapping) else list(query or [])
    if len(tables) < 2 or any("table_id" in q for q in asked):
        records = cat.series(query)
    else:
        records = [r for tab in tables for r in cat.series(with_column(query, "table_id", tab))]
    checks = [check_series(r, storage_options, scan_data=scan_data, strict=strict) for r in records]
    return checks + _fixed_fields(cat, query)


def _fixed_fields(cat: Catalog, query: Query | None) -> list[SeriesCheck]:
    """Rows of fixed-field tables that form no series (other than the paired ``sftlf`` /
    ``areacella``), named so that the check leaves nothing out without a word."""
    groups: dict[tuple[str, str, str], list[CatalogRow]] = {}
    for row in cat.rows:
        if row.is_fx or frequency(row.table_id) != "fx":
            continue
        if not matches(row.as_query_data(), query):
            continue
        member = ".".join([row.ensemble, row.source_id, row.experiment, row.member_id])
        groups.setdefault((member, row.variable, row.table_id), []).append(row)
    return [
        SeriesCheck(
            f"{member}.{var}",
            var,
            files=len(rows),
            statistic=classify_for_run(var, tab).label(),
            table_id=tab,
        )
        for (member, var, tab), rows in groups.items()
    ]


@dataclass
class VariableSummary:
    """One line of the per-variable summary of a catalog (``catalog build`` / ``check``).

    ``variable`` is the canonical name where gridflux knows one; ``names`` the names the rows
    carry (aliases such as ``Fire`` for ``fFire``)."""

    variable: str
    table_id: str
    files: int
    series: int
    statistic: str
    names: tuple[str, ...] = ()

    def line(self) -> str:
        tab = f" [{self.table_id}]" if self.table_id else ""
        alias = [n for n in self.names if n != self.variable]
        also = f" (as {', '.join(self.names)})" if alias else ""
        files = f"{self.files} file{'s' if self.files != 1 else ''}"
        series = f"{self.series} series"
        return f"{self.variable}{tab}{also}: {files}, {series} -> {self.statistic}"


def summarize_variables(rows: Iterable[Mapping[str, Any] | CatalogRow]) -> list[VariableSummary]:
    """Per (canonical variable, table): files, series and what gridflux makes of it
    (:func:`classify`)."""
    files: dict[tuple[str, str], int] = {}
    series: dict[tuple[str, str], set] = {}
    names: dict[tuple[str, str], set] = {}
    for r in rows:
        d = r.as_query_data() if isinstance(r, CatalogRow) else dict(r)
        name = str(d.get("variable") or "")
        k = (canonical_of(name), str(d.get("table_id") or ""))
        files[k] = files.get(k, 0) + 1
        member = tuple(
            str(d.get(c) or "") for c in ("ensemble", "source_id", "experiment", "member_id")
        )
        series.setdefault(k, set()).add(member)
        names.setdefault(k, set()).add(name)
    return [
        VariableSummary(
            v,
            t,
            n,
            len(series[(v, t)]),
            classify_for_run(v, t).label(),
            tuple(sorted(names[(v, t)])),
        )
        for (v, t), n in sorted(files.items(), key=lambda kv: (kv[0][0].lower(), kv[0][1]))
    ]


def summarize_checks(results: Iterable[SeriesCheck]) -> list[str]:
    """Per (variable, table) of checked series: how many, with problems, and the statistic
    gridflux gives them (what ``gridflux catalog check`` prints under its table)."""
    groups: dict[tuple[str, str], list[SeriesCheck]] = {}
    for r in results:
        groups.setdefault((r.variable, r.table_id), []).append(r)
    out = []
    for (var, tab), rs in sorted(groups.items(), key=lambda kv: (kv[0][0].lower(), kv[0][1])):
        bad = sum(not r.ok for r in rs)
        fixed = sum(bool(r.fixes) for r in rs)
        where = f" [{tab}]" if tab else ""
        problems = f", {bad} with problems" if bad else ""
        repaired = f", {fixed} with repaired files" if fixed else ""
        out.append(f"{var}{where}: {len(rs)} series{problems}{repaired} -> {rs[0].statistic}")
    return out
