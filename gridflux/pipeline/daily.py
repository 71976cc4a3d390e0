"""Daily series on their daily axis: the store's ``daily/`` group (docs/store.md "Daily files").

A run without ``--resample`` sends every daily series here (:func:`split_daily`); monthly
series go to the store's root as before. Each daily series is opened with ``resample='day'``
(its steps kept, :func:`gridflux.fields.daily.daily_axis`), and its region statistic is
computed per day with the same kernels and weights as the monthly path:

- a mean: the exact area-weighted mean of the day's field (:func:`~gridflux.fields.totals.
  cell_means`, land-weighted when asked), in the variable's unit;
- a total of a flux: ``sum_i x_i w_ri * 86400 s / 1e9`` (Tg of the element in the day); of a
  stock: Tg at the day.

The group ``daily/`` has the root's layout: ``totals (member, variable, region, time)`` float64,
the member traits, ``calendar`` and ``protocol`` per member, ``variable_kind``,
``variable_units``, ``variable_statistic`` per variable; ``time`` holds 31 day slots per month
(labels ``YYYY-MM-DD``; a slot its member's calendar lacks stays NaN), its months from a chunk
boundary (as the root's, ``chunk-months``) to the last month of a daily series. One chunk per
(member, variable). The group's attribute ``gridflux_series`` (JSON) describes each series
(status, unit, calendar, days, missing days, history, error), read by ``store info``.

Growth: every run rewrites the group with the union of what it held and what the run computed
(members, variables and months appended; a series computed again replaces its values). The
new group is written beside the old one and swapped in (local stores); on object stores a
group that exists already is refused with one line. Regions must be those of the group.
Daily series are computed on the driver, one series at a time (their data are read in blocks
of a year); they are recomputed on every run (no resume by fingerprint yet). Cubes of daily
series are not written: a run with cubes names them in its summary's notes.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gridflux.errors import StoreError
from gridflux.fields.daily import DAY_SLOTS, calendar_slots, day_slots, slot_labels
from gridflux.fields.masks import RegionMask
from gridflux.fields.timeaxis import Month
from gridflux.fields.totals import (
    RegionCells,
    cell_means,
    cell_sums,
    no_data_months,
    protocol_weights,
)
from gridflux.pipeline.plan import axis_start, error_text, member_trait
from gridflux.pipeline.store import (
    DAILY_GROUP,
    MEMBER_TRAITS,
    TG_PER_KG,
    Store,
    open_store,
    plain_strings,
    variable_units,
)

#: days read at once (one block): memory is bounded by a year of one series' fields
BLOCK_DAYS = 366
log = logging.getLogger(__name__)


def is_daily(record: Any, storage_options: dict | None = None) -> bool:
    """Whether a series is daily: its table says so (``day``, ``CFday``...); without a table,
    its catalog ``time_range`` (``YYYYMMDD-YYYYMMDD``: daily; ``YYYYMM``: monthly), else the
    time steps of its first file (median step under 20 days). Sub-daily *tables* are not daily
    (the monthly path refuses them, naming ``--resample month``); a sub-daily file without a
    table comes here and is refused by :func:`~gridflux.fields.daily.daily_axis`, naming it."""
    from gridflux.ingest.catalog.variables import frequency

    freq = frequency(getattr(record, "table_id", "") or "")
    if freq:
        return freq == "day"
    ranges = [str(r).replace("_", "-").split("-") for r in getattr(record, "time_ranges", [])]
    if ranges and len(ranges) == len(record.paths):
        sizes = {len(p) for parts in ranges for p in parts if p.isdigit()}
        if sizes == {8}:
            return True
        if sizes and sizes <= {6}:
            return False
    return first_file_steps_days(record, storage_options) < 20.0


def first_file_steps_days(record: Any, storage_options: dict | None = None) -> float:
    """The median time step (days) of a series' first file, read from its time coordinate
    alone; ``inf`` when it cannot be read or has one step (then the series is not daily: the
    monthly path opens it and names any problem).

    A remote file is read in place with h5netcdf (its time variable only: no xarray dataset of
    the whole file) over :func:`gridflux.ingest.remote.metadata_file`: its metadata in the small
    blocks of the process's block cache that the series' open for planning then reuses without a
    request; not through an fsspec file, whose first read would fetch a whole default block
    (50 MiB on S3) of the object."""
    import xarray as xr

    from gridflux.ingest import remote

    if not record.paths or record.format != "netcdf":
        return float("inf")
    path = record.paths[0]
    try:
        if remote.is_remote(path):
            f = remote.metadata_file(path, storage_options)
            if f is None:  # a local cached copy
                with remote.open_netcdf(path, storage_options, decode_cf=False) as ds:
                    return steps_days(ds)
            import h5netcdf

            with f, h5netcdf.File(f, "r") as h:
                return steps_days(h)
        with xr.open_dataset(path, decode_times=False, decode_cf=False) as ds:
            return steps_days(ds)
    except Exception:  # noqa: BLE001 - an unreadable file fails on the monthly path, named
        return float("inf")


def steps_days(ds: Any) -> float:
    """Median step (days) of a raw dataset's time coordinate (``<unit> since <date>``): of an
    undecoded ``xr.Dataset`` or an ``h5netcdf.File`` (the same variables in the same order, the
    same attributes and raw values)."""
    names = [
        v
        for v in ds.variables
        if ds[v].ndim == 1
        and (
            v == "time"
            or attribute(ds[v], "standard_name") == "time"
            or attribute(ds[v], "axis") == "T"
        )
    ]
    if not names:
        return float("inf")
    t = ds[names[0]]
    unit = str(attribute(t, "units", "")).split(" since ")[0].strip().lower()
    per_day = {"days": 1.0, "day": 1.0, "d": 1.0, "hours": 24.0, "hour": 24.0, "h": 24.0,
               "minutes": 1440.0, "seconds": 86400.0, "s": 86400.0}  # fmt: skip
    v = np.asarray(t.values if hasattr(t, "values") else t[...], dtype=np.float64)
    if unit not in per_day or v.size < 2:
        return float("inf")
    return float(np.median(np.diff(v))) / per_day[unit]


def attribute(var: Any, name: str, default: Any = None) -> Any:
    """A variable's attribute as xarray's h5netcdf backend gives it: bytes decoded as UTF-8
    (h5netcdf returns a one-character text attribute such as ``axis = "T"`` as bytes)."""
    a = var.attrs.get(name, default)
    if isinstance(a, bytes):
        try:
            return a.decode("utf-8")
        except UnicodeDecodeError:
            return a
    return a


def split_daily(
    records: list, resample: str | None, storage_options: dict | None = None
) -> tuple[list, list]:
    """``(monthly, daily)`` series of a run: with ``resample`` every series is monthly (a daily
    one becomes months of its days); without it the daily ones keep their daily axis."""
    if resample:
        return list(records), []
    monthly: list = []
    daily: list = []
    for rec in records:
        (daily if is_daily(rec, storage_options) else monthly).append(rec)
    return monthly, daily


@dataclass
class DailySeries:
    """One daily series computed: its values per day and region, and what describes it."""

    record: Any
    kind: str  # flux | stock | mean
    units: str
    calendar: str
    dates: np.ndarray  # (t,) cftime
    values: np.ndarray  # (t, region) float64
    protocol: str
    missing_days: list[str] = field(default_factory=list)
    history: str = ""
    land_weighted: bool = False

    @property
    def first_key(self) -> int:
        return Month(self.dates[0].year, self.dates[0].month).key

    @property
    def last_key(self) -> int:
        return Month(self.dates[-1].year, self.dates[-1].month).key


def series_key(record: Any) -> str:
    """The daily series' id in summaries and ``store info``: ``member/variable (daily)``."""
    return f"{record.key} (daily)"


def compute_series(
    record: Any,
    mask: RegionMask,
    *,
    protocol: str,
    target: Any,
    radius: float,
    storage_options: dict | None = None,
    mean_units: str | None = None,
) -> DailySeries:
    """Open a daily series on its daily axis and compute its region statistic per day.

    Returns
    -------
    DailySeries with ``values (day, region)``: means in the variable's unit; totals in Tg of
    the element per day (fluxes: rate x 86400 s; sign positive to the atmosphere), Tg at the
    day (stocks). A day whose field has no value is NaN and named in ``missing_days``, as are
    the calendar's days between the first and the last that the files lack.
    """
    from gridflux.fields.axes import grid_of
    from gridflux.ingest.catalog.opening import load_series

    traits = dict(record.traits or {})
    traits["resample"] = "day"
    if mean_units:
        traits["mean_units"] = mean_units
    ds = load_series(record.model_copy(update={"traits": traits}), storage_options=storage_options)
    var = record.variable
    da = ds[var]
    kind = str(da.attrs.get("gridflux_kind", "mean"))
    w = protocol_weights(grid_of(ds), mask, protocol=protocol, target=target, radius=radius)
    lf = ds.coords.get("gridflux_land_fraction")
    if kind == "mean" and lf is not None:
        w = w * np.asarray(lf.values, dtype=np.float64)[None]
    cells = RegionCells.from_weights(w)  # each region summed over its own cells
    secs = np.asarray(ds["seconds_in_month"].values, dtype=np.float64)  # 86400 s per day
    nt = da.sizes["time"]
    values = np.full((nt, len(mask.names)), np.nan)
    empty_all = np.zeros(nt, dtype=bool)
    for i0 in range(0, nt, BLOCK_DAYS):
        i1 = min(i0 + BLOCK_DAYS, nt)
        block = np.asarray(da.isel(time=slice(i0, i1)).values)
        if kind == "mean":
            v = cell_means(block, cells)[0]
        else:
            v = cell_sums(block, cells)
            if kind == "flux":
                v = v * secs[i0:i1, None]
            v = v * TG_PER_KG
        empty = no_data_months(block)
        v[empty] = np.nan
        empty_all[i0:i1] = empty
        values[i0:i1] = v
    dates = np.asarray(ds.indexes["time"].to_numpy(), dtype=object)
    cal = str(da.attrs.get("gridflux_calendar") or dates[0].calendar)
    labels = [f"{d.year:04d}-{d.month:02d}-{d.day:02d}" for d in dates]
    missing = [lab for lab, e in zip(labels, empty_all, strict=True) if e]
    missing += absent_days(dates, cal)
    return DailySeries(
        record=record,
        kind=kind,
        units=str(da.attrs.get("units", "")),
        calendar=cal,
        dates=dates,
        values=values,
        protocol=protocol,
        missing_days=sorted(missing),
        history=str(da.attrs.get("gridflux_history", "")),
        land_weighted=bool(int(da.attrs.get("gridflux_land_weighted", 0) or 0)),
    )


def absent_days(dates: np.ndarray, calendar: str) -> list[str]:
    """``YYYY-MM-DD`` of the calendar's days of the series' months (first to last) that no step
    holds: a file missing days, or cut within a month (NaN in the store, named)."""
    first = Month(dates[0].year, dates[0].month).key
    last = Month(dates[-1].year, dates[-1].month).key
    n = last - first + 1
    have = np.zeros(n * DAY_SLOTS, dtype=bool)
    have[day_slots(dates, first)] = True
    labels = slot_labels(first, n)
    return [labels[i] for i in np.flatnonzero(calendar_slots(first, n, calendar) & ~have)]


# -- the daily group ----------------------------------------------------------------------------
def read_group(st: Store):
    """The store's daily group as an in-memory Dataset, or None when it has none."""
    if not st.fs.exists(f"{st.root}/{DAILY_GROUP}"):
        return None
    ds = open_store(st.url, st.storage_options or None, group=DAILY_GROUP)
    return plain_strings(ds.load())


def series_info(st: Store) -> dict[str, dict]:
    """The ``gridflux_series`` attribute of the daily group (``{}`` without one)."""
    ds = read_group(st)
    if ds is None:
        return {}
    return json.loads(ds.attrs.get("gridflux_series", "{}"))


def build_group(
    old: Any,
    computed: list[DailySeries],
    info: dict[str, dict],
    regions: list[str],
    time_chunk: int,
):
    """The daily group's Dataset: what ``old`` held (None: nothing) with the ``computed`` series
    added or replaced; ``info`` the series descriptions (attribute ``gridflux_series``)."""
    import xarray as xr

    members: list[str] = [] if old is None else [str(m) for m in old["member"].values]
    variables: list[str] = [] if old is None else [str(v) for v in old["variable"].values]
    traits: dict[str, list] = {
        t: ([] if old is None else list(old[t].values))
        for t in (*MEMBER_TRAITS, "calendar", "protocol")
    }
    kinds = [] if old is None else [str(k) for k in old["variable_kind"].values]
    units = [] if old is None else [str(u) for u in old["variable_units"].values]
    for s in computed:
        rec = s.record
        if rec.member not in members:
            members.append(rec.member)
            for t in MEMBER_TRAITS:
                traits[t].append(member_trait(rec, t))
            traits["calendar"].append(s.calendar)
            traits["protocol"].append(s.protocol)
        if rec.variable not in variables:
            variables.append(rec.variable)
            kinds.append(s.kind)
            units.append(
                s.units if s.kind == "mean" else variable_units([rec.variable], [s.kind])[0]
            )
    keys = [s.first_key for s in computed] + [s.last_key for s in computed]
    first_old = last_old = None
    if old is not None:
        first_old = int(old.attrs["gridflux_first_month_key"])
        last_old = first_old + old.sizes["time"] // DAY_SLOTS - 1
        keys += [first_old, last_old]
    first = axis_start(Month.from_key(min(keys)), time_chunk).key
    nmonths = max(keys) - first + 1
    nm, nv, nr = len(members), len(variables), len(regions)
    tot = np.full((nm, nv, nr, nmonths * DAY_SLOTS), np.nan)
    if old is not None:
        assert first_old is not None
        shift = (first_old - first) * DAY_SLOTS
        vals = np.asarray(old["totals"].values)
        tot[: vals.shape[0], : vals.shape[1], :, shift : shift + vals.shape[3]] = vals
    for s in computed:
        m, v = members.index(s.record.member), variables.index(s.record.variable)
        tot[m, v] = np.nan  # a series computed again replaces its values
        tot[m, v][:, day_slots(s.dates, first)] = s.values.T
    labels = slot_labels(first, nmonths)
    coords: dict[str, Any] = {
        "member": np.asarray(members, dtype=str),
        "variable": np.asarray(variables, dtype=str),
        "region": np.asarray(regions, dtype=str),
        "time": np.asarray(labels, dtype=str),
        "month": ("time", np.asarray([lab[:7] for lab in labels], dtype=str)),
        "day": ("time", np.tile(np.arange(1, DAY_SLOTS + 1, dtype=np.int64), nmonths)),
        "variable_kind": ("variable", np.asarray(kinds, dtype=str)),
        "variable_units": ("variable", np.asarray(units, dtype=str)),
        "variable_statistic": (
            "variable",
            np.asarray(["mean" if k == "mean" else "total" for k in kinds], dtype=str),
        ),
    }
    for t, tv in traits.items():
        coords[t] = (
            "member",
            np.asarray(tv, dtype=bool) if t in ("layered_c", "fire") else np.asarray(tv, str),
        )
    totals = xr.DataArray(
        tot,
        dims=("member", "variable", "region", "time"),
        attrs={
            "long_name": "daily region total (or mean: variable_statistic)",
            "units": "per variable: variable_units (Tg of element per day, Tg for stocks, the "
            "variable's own unit for means)",
            "sign_convention": "fluxes positive to the atmosphere",
            "description": "rate x 86400 s / 1e9 per day; 31 day slots per month, a slot the "
            "member's calendar lacks is NaN",
        },
    )
    return xr.Dataset(
        {"totals": totals},
        coords=coords,
        attrs={
            "title": "gridflux store: daily series",
            "frequency": "day",
            "gridflux_first_month_key": first,
            "gridflux_series": json.dumps(info, sort_keys=True),
        },
    )


def write_group(st: Store, ds: Any, zarr_format: int, exists: bool) -> None:
    """Write the daily group: beside the old one and swapped in (local), or in place (a new group
    on an object store); an existing group on an object store is refused."""
    import zarr

    nr, nt = ds.sizes["region"], ds.sizes["time"]
    enc = {"totals": {"chunks": (1, 1, nr, nt), "_FillValue": np.nan}}
    root = st.root.rstrip("/")
    if not (st.fs.exists(f"{root}/zarr.json") or st.fs.exists(f"{root}/.zgroup")):
        fmt: Any = zarr_format
        zarr.open_group(st.zarr_store(), mode="a", zarr_format=fmt)  # the store's root
    if not st.is_local:
        if exists:
            raise StoreError(
                f"store {st.url}: growing its daily group rewrites it, which gridflux does on "
                "local stores only; write the daily series to a new store"
            )
        ds.to_zarr(
            st.url,
            group=DAILY_GROUP,
            mode="w",
            encoding=enc,
            zarr_format=zarr_format,
            storage_options=st.storage_options,
        )
        st.consolidate()
        return
    nxt = f"{root}/{DAILY_GROUP}.gridflux-next"
    if os.path.exists(nxt):
        shutil.rmtree(nxt)
    ds.to_zarr(nxt, mode="w", encoding=enc, zarr_format=zarr_format)
    final, old = f"{root}/{DAILY_GROUP}", f"{root}/{DAILY_GROUP}.gridflux-old"
    if os.path.exists(old):
        shutil.rmtree(old)
    if os.path.exists(final):
        os.replace(final, old)
    os.replace(nxt, final)
    if os.path.exists(old):
        shutil.rmtree(old)
    st.consolidate()  # the root's consolidated metadata names the group's arrays


@dataclass
class DailyResult:
    """What the daily pass did (merged into the run's summary)."""

    done: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    missing: dict[str, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def run_daily(
    records: list,
    mask: RegionMask,
    st: Store,
    *,
    protocol_of: Any,
    target: Any,
    radius: float,
    time_chunk: int,
    zarr_format: int,
    cubes: bool = False,
    storage_options: dict | None = None,
) -> DailyResult:
    """Compute the daily series and write them to the store's daily group (call with the
    store's lock held). ``protocol_of(record)`` gives a series' protocol."""
    from gridflux.fields.statistics import MEAN_UNITS

    out = DailyResult()
    if not records:
        return out
    regions = list(mask.names)
    old = read_group(st)
    if old is not None and [str(r) for r in old["region"].values] != regions:
        raise StoreError(
            f"store {st.url}: its daily group holds the regions "
            f"{[str(r) for r in old['region'].values]}, this run's mask {regions}; write the "
            "daily series to a new store"
        )
    if old is not None and not st.is_local:  # before any series is computed
        raise StoreError(
            f"store {st.url}: growing its daily group rewrites it, which gridflux does on "
            "local stores only; write the daily series to a new store"
        )
    info: dict[str, dict] = {} if old is None else json.loads(old.attrs["gridflux_series"])
    stored_units: dict[str, str] = {}
    if old is not None:
        for v, k, u in zip(
            old["variable"].values,
            old["variable_kind"].values,
            old["variable_units"].values,
            strict=True,
        ):
            if str(k) == "mean":
                stored_units[str(v)] = str(u)
    computed: list[DailySeries] = []
    for rec in records:
        key = series_key(rec)
        try:
            s = compute_series(
                rec,
                mask,
                protocol=protocol_of(rec),
                target=target,
                radius=radius,
                storage_options=storage_options,
                mean_units=stored_units.get(rec.variable)
                if rec.variable not in MEAN_UNITS
                else None,
            )
        except Exception as exc:  # noqa: BLE001 - a series fails alone, named with its error
            out.failed[key] = error_text(exc)
            info[key] = {"status": "failed", "error": out.failed[key], "frequency": "day"}
            log.warning("daily series %s failed: %s", key, out.failed[key])
            continue
        if s.kind == "mean":
            stored_units.setdefault(rec.variable, s.units)
        computed.append(s)
        out.done.append(key)
        if s.missing_days:
            out.missing[key] = s.missing_days
        info[key] = {
            "status": "done",
            "frequency": "day",
            "statistic": "mean" if s.kind == "mean" else "total",
            "units": s.units if s.kind == "mean" else variable_units([rec.variable], [s.kind])[0],
            "calendar": s.calendar,
            "protocol": s.protocol,
            "days": int(len(s.dates)),
            "first_day": str(s.dates[0])[:10],
            "last_day": str(s.dates[-1])[:10],
            "missing_days": s.missing_days,
            "land_weighted": s.land_weighted,
            "sel": str(rec.traits.get("sel") or ""),
            "history": s.history,
            "cube": "not written (daily cubes are not built)" if cubes else "",
        }
    if cubes and computed:
        names = ", ".join(series_key(s.record) for s in computed)
        out.notes.append(
            f"cubes are not written for daily series (only their region statistics, in the "
            f"store's daily/ group): {names}"
        )
    if computed or (old is not None and out.failed):
        ds = build_group(old, computed, info, regions, time_chunk)
        write_group(st, ds, zarr_format, exists=old is not None)
    elif out.failed and old is None:
        log.warning("no daily series computed: %s", ", ".join(out.failed))
    return out


def run_daily_series(records: list, run: Any) -> DailyResult:
    """:func:`run_daily` with a :class:`~gridflux.pipeline.runner.Run`'s mask, store and
    settings (the zarr format of the existing store, else the run's)."""
    st = run.store
    s = run.settings
    return run_daily(
        records,
        run.mask,
        st,
        protocol_of=run.protocol_of,
        target=s.target,
        radius=s.radius,
        time_chunk=s.time_chunk,
        zarr_format=st.stored_format() or s.zarr_format,
        cubes=s.cubes,
        storage_options=run.storage_options,
    )


def add_daily(summary: Any, result: DailyResult) -> None:
    """Merge the daily pass' result into a run's summary (``done``, ``failed``, ``missing``:
    missing *days* of daily series, ``notes``)."""
    summary.done.extend(result.done)
    summary.failed.update(result.failed)
    summary.missing.update(result.missing)
    summary.notes.extend(result.notes)
    for note in result.notes:
        log.warning("%s", note)


def daily_table(store: str | os.PathLike, storage_options: dict | None = None):
    """Tidy rows of the daily group (none without one): ``source_id, variable, region, time
    (YYYY-MM-DD), statistic, value, unit, protocol, frequency ('day')``, without NaN rows (the
    slots a calendar lacks, the days without data)."""
    import pandas as pd

    st = Store(os.fspath(store), storage_options)
    ds = read_group(st)
    cols = ["source_id", "variable", "region", "time", "statistic", "value", "unit", "protocol"]
    if ds is None:
        return pd.DataFrame({c: [] for c in [*cols, "frequency"]})
    df = ds["totals"].to_dataframe(name="value").reset_index()
    df = df[np.isfinite(df["value"])]
    names = [str(v) for v in ds["variable"].values]
    units = dict(zip(names, map(str, ds["variable_units"].values), strict=True))
    stats = dict(zip(names, map(str, ds["variable_statistic"].values), strict=True))
    protocols = dict(
        zip(map(str, ds["member"].values), map(str, ds["protocol"].values), strict=True)
    )
    variable = df["variable"].astype(str)
    return pd.DataFrame(
        {
            "source_id": df["member"].astype(str),
            "variable": variable,
            "region": df["region"].astype(str),
            "time": df["time"].astype(str),
            "statistic": variable.map(stats),
            "value": df["value"].astype(float),
            "unit": variable.map(units),
            "protocol": df["member"].astype(str).map(protocols),
            "frequency": "day",
        }
    ).reset_index(drop=True)
