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
``variable_units``, ``variable_statistic`` per variable (variable-length strings); ``time`` holds
31 day slots per month (labels ``YYYY-MM-DD``; a slot its member's calendar lacks stays NaN), its
months from a chunk boundary (as the root's, ``chunk-months``) to the last month of a daily
series. Chunks: one member, one variable, the regions the group was created with,
``chunk-months`` months of 31 slots (:data:`DAILY_LAYOUT` 2). The group's attribute
``gridflux_series`` (JSON) describes each series (status, unit, calendar, days, missing days,
history, error, and its ``fingerprint``, ``config_hash``, ``version`` and the ``regions`` it
holds), read by ``store info``; ``gridflux_layout`` (JSON) holds its labels and each region's
geometry hash (``region_hashes``): what runs plan from, written last, with ``gridflux_series``.

Resume: a series recorded ``done`` with the same fingerprint
(:func:`~gridflux.pipeline.fingerprint.series_fingerprint`, content hashes under ``verify``) and
configuration (:func:`daily_config_hash`: not the regions), holding every region of the run's
mask, is skipped without being opened; when nothing is computed, failed or pruned the group is
not written at all. (Entries written before the regions left the configuration hash had the mask
in it: such a group's series are computed once more, whole, by the first run that writes.)

Regions (as the root's, :mod:`gridflux.pipeline.growth`): the run's mask may add regions (in any
order; matched by label), appended after the group's. A done series with unchanged inputs whose
entry lacks some is computed for those regions only (:func:`compute_series` with ``regions``:
each region summed over its own cells, the bits a run of every region gets) and only their rows
are written, region by region: the chunks of its stored regions are not touched, and a region
written into a region chunk that already holds an added region is merged into it (zarr reads
the chunk back: the stored rows are kept). A mask without one of the group's regions, or with
another geometry for one (``region_hashes``), is refused (:func:`check_regions`) before
anything is computed. A series in none of the run's catalogs lacks the added regions until a run
holds it again (named in the run's notes).

Growth (:func:`write_group`): new members and variables (appended after the stored ones) and
months at the end are written in place: ``totals`` and the coordinates resized, the new or
recomputed series' chunks written, the chunk files of done series untouched; also on object
stores. Months before the group's first month, or a group of the older layout (one chunk per
series, no fingerprints), rewrite the group: on local stores beside it and swapped in (done
series copied by value), on object stores refused with one line. ``gridflux_series`` is written
last (stored series about to be rewritten in place are first marked ``pending``), so a run
killed midway leaves what it was writing undone; a group whose creation was killed (no
``gridflux_series``) is removed by the next run, and one whose arrays differ from its labels
(a growth killed while resizing) is put back to them by the next run. A failed series' values
are cleared; with ``prune`` the series of the group in none of the catalogs are cleared and
forgotten (else named in ``not_in_catalogs``). ``chunk-months`` must be the group's. Daily
series are computed on the driver, one series at a time (their data are read in blocks of a
year). Cubes of daily series are not written: a run with cubes names them in its summary's
notes.
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
from gridflux.pipeline.fingerprint import series_fingerprint, unchanged
from gridflux.pipeline.growth import region_hashes
from gridflux.pipeline.plan import (
    axis_start,
    config_hash,
    error_text,
    member_trait,
    regions_lacking,
)
from gridflux.pipeline.store import (
    BOOL_TRAITS,
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
    #: the regions of ``values``' columns (by label; the run's mask order)
    regions: list[str] = field(default_factory=list)
    #: computed for these regions only (added to the group; the series was done before with
    #: the same inputs): only their rows are written, the stored ones stay as they are
    only: bool = False

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
    regions: list[str] | None = None,
) -> DailySeries:
    """Open a daily series on its daily axis and compute its region statistic per day.

    ``regions`` (names of ``mask``'s regions): compute only these (regions added to the group
    for a series done before); None: every region of ``mask``. Each region is summed over its
    own cells (:class:`~gridflux.fields.totals.RegionCells`), so its values are the same bits
    whichever other regions are computed with it.

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
    names = list(mask.names) if regions is None else list(regions)
    if regions is not None:
        cells = cells.select([list(mask.names).index(r) for r in names])
    secs = np.asarray(ds["seconds_in_month"].values, dtype=np.float64)  # 86400 s per day
    nt = da.sizes["time"]
    values = np.full((nt, len(names)), np.nan)
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
        regions=names,
        only=regions is not None,
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
#: The daily group's layout: 2 = totals chunked by ``chunk-months`` months x 31 slots (every
#: region in a chunk), coordinates of variable-length strings, each series' fingerprint in
#: ``gridflux_series``: the group grows in place. A group without it (one chunk per series,
#: written by gridflux before) is rebuilt once, by the first run that writes to it.
DAILY_LAYOUT = 2
#: The coordinates of ``member`` besides its label: the member traits, calendar and protocol.
MEMBER_COORDS: tuple[str, ...] = (*MEMBER_TRAITS, "calendar", "protocol")
#: Suffixes of a local group's rebuild: written beside it, then swapped in.
NEXT, OLD = ".gridflux-next", ".gridflux-old"
TOTALS_ATTRS = {
    "long_name": "daily region total (or mean: variable_statistic)",
    "units": "per variable: variable_units (Tg of element per day, Tg for stocks, the "
    "variable's own unit for means)",
    "sign_convention": "fluxes positive to the atmosphere",
    "description": "rate x 86400 s / 1e9 per day; 31 day slots per month, a slot the "
    "member's calendar lacks is NaN",
}


@dataclass
class GroupState:
    """The labels and coordinates of a daily group (stored, or the one a write leaves) and, for
    a stored group, its series (``gridflux_series``) and layout; no values."""

    members: list[str]
    variables: list[str]
    regions: list[str]
    traits: dict[str, list]  # MEMBER_COORDS, one value per member
    kinds: list[str]
    units: list[str]
    first: int  # month key of the axis' first month (on a chunk boundary)
    nmonths: int
    time_chunk: int  # months per totals chunk (0: a group of layout 1)
    info: dict[str, dict] = field(default_factory=dict)
    layout: int = DAILY_LAYOUT
    #: the arrays agree with the labels (False: a growth killed while it resized or rewrote
    #: them, which the next write redoes)
    consistent: bool = True
    #: region -> hash of its geometry (:func:`~gridflux.pipeline.growth.region_hashes`); empty
    #: for a group written before regions could be added (it then takes the run's)
    region_hashes: dict[str, str] = field(default_factory=dict)

    @property
    def slots(self) -> int:
        return self.nmonths * DAY_SLOTS

    def labels(self) -> dict[str, Any]:
        """The labels as the group's attribute ``gridflux_layout`` holds them (JSON)."""
        return {
            "members": self.members,
            "variables": self.variables,
            "regions": self.regions,
            "traits": self.traits,
            "kinds": self.kinds,
            "units": self.units,
            "first": self.first,
            "nmonths": self.nmonths,
            "time_chunk": self.time_chunk,
            "region_hashes": self.region_hashes,
        }


def vlen(values: list[Any]) -> np.ndarray:
    """Strings as zarr's variable-length strings (an array that grows takes longer names)."""
    return np.asarray([str(v) for v in values], dtype=object)


def recover_swap(st: Store) -> None:
    """What a local rebuild killed midway left (call with the store's lock held): killed between
    moving the old group aside and moving the new one in, the old group is put back (the
    rebuild is redone by the next write); the new group it was writing, or the old one it had
    not yet deleted, is deleted."""
    if not st.is_local:
        return
    final = f"{st.root.rstrip('/')}/{DAILY_GROUP}"
    if not os.path.exists(final) and os.path.exists(final + OLD):
        os.replace(final + OLD, final)
    for leftover in (final + NEXT, final + OLD):
        if os.path.exists(leftover):
            shutil.rmtree(leftover)


def read_state(st: Store, repair: bool = False) -> GroupState | None:
    """The store's daily group (labels, coordinates, series; read with zarr, no values), or None
    when it has none, or one whose creation was interrupted (it has no ``gridflux_series`` yet:
    nothing in it was recorded done). With ``repair`` (a run, holding the store's lock) such a
    group is removed, and a local rebuild killed while swapping is undone
    (:func:`recover_swap`)."""
    import zarr

    if repair:
        recover_swap(st)
    path = f"{st.root.rstrip('/')}/{DAILY_GROUP}"
    st.fs.invalidate_cache(st.root)
    if not st.fs.exists(path):
        return None
    g: Any = zarr.open_group(st.zarr_store(), path=DAILY_GROUP, mode="r", use_consolidated=False)
    attrs = dict(g.attrs)
    if "gridflux_series" not in attrs or "totals" not in g:
        if repair:
            log.warning("removing the daily group of %s: its creation was interrupted", st.url)
            st.fs.rm(path, recursive=True)
        return None

    layout = int(attrs.get("gridflux_daily_layout", 1))
    info = json.loads(attrs["gridflux_series"])
    if "gridflux_layout" in attrs:  # written last with gridflux_series: the group's labels
        state = GroupState(**json.loads(attrs["gridflux_layout"]), info=info, layout=layout)
        state.consistent = not arrays_differ(g, state)
        return state

    def strs(name: str) -> list[str]:
        return [str(x) for x in np.asarray(g[name][...]).tolist()]

    members = strs("member")
    traits: dict[str, list] = {}
    for t in MEMBER_COORDS:
        vals = np.asarray(g[t][...]).tolist() if t in g else [""] * len(members)
        traits[t] = [bool(v) for v in vals] if t in BOOL_TRAITS else [str(v) for v in vals]
    totals = g["totals"]
    return GroupState(
        members=members,
        variables=strs("variable"),
        regions=strs("region"),
        traits=traits,
        kinds=strs("variable_kind"),
        units=strs("variable_units"),
        first=int(attrs["gridflux_first_month_key"]),
        nmonths=int(totals.shape[3]) // DAY_SLOTS,
        time_chunk=int(totals.chunks[3]) // DAY_SLOTS if layout == DAILY_LAYOUT else 0,
        info=info,
        layout=layout,
    )


def arrays_differ(g: Any, layout: GroupState) -> bool:
    """Whether the group's arrays differ from its labels: the shape of ``totals``, or any
    coordinate's values (read: they are small)."""
    shape = (len(layout.members), len(layout.variables), len(layout.regions), layout.slots)
    if tuple(g["totals"].shape) != shape:
        return True
    for name, (_dim, values) in coordinate_values(layout).items():
        if name not in g:
            return True
        arr = g[name]
        if tuple(arr.shape) != values.shape or np.asarray(arr[...]).tolist() != values.tolist():
            return True
    return False


def read_group(st: Store):
    """The store's daily group as an in-memory Dataset, or None when it has none."""
    if read_state(st) is None:
        return None
    ds = open_store(st.url, st.storage_options or None, group=DAILY_GROUP)
    return plain_strings(ds.load())


def series_info(st: Store) -> dict[str, dict]:
    """The ``gridflux_series`` attribute of the daily group (``{}`` without one)."""
    state = read_state(st)
    return {} if state is None else state.info


def grown_layout(
    state: GroupState | None,
    computed: list[DailySeries],
    regions: list[str],
    time_chunk: int,
    hashes: dict[str, str] | None = None,
) -> GroupState:
    """The group's labels after writing ``computed``: the stored members, variables and regions
    keep their places, new ones are appended (members and variables in the order computed, a
    member's traits, calendar and protocol, a variable's kind and unit from its first series;
    regions in the order of ``regions``, the run's mask, by label); the axis is the union of the
    stored months and the series', its first month on a ``time_chunk`` boundary. ``hashes``:
    the run's region geometry hashes (a stored region keeps its own: the run's is the same,
    or the run was refused)."""
    members = [] if state is None else list(state.members)
    variables = [] if state is None else list(state.variables)
    traits = {t: ([] if state is None else list(state.traits[t])) for t in MEMBER_COORDS}
    kinds = [] if state is None else list(state.kinds)
    units = [] if state is None else list(state.units)
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
            units.append(series_units(s))
    keys = [k for s in computed for k in (s.first_key, s.last_key)]
    if state is not None:
        keys += [state.first, state.first + state.nmonths - 1]
    first = axis_start(Month.from_key(min(keys)), time_chunk).key
    held = [] if state is None else list(state.regions)
    layout_regions = held + [r for r in regions if r not in held]
    stored_hashes = {} if state is None else dict(state.region_hashes)
    run_hashes = dict(hashes or {})
    return GroupState(
        members=members,
        variables=variables,
        regions=layout_regions,
        region_hashes={
            r: stored_hashes.get(r) or run_hashes.get(r, "")
            for r in layout_regions
            if stored_hashes.get(r) or run_hashes.get(r)
        },
        traits=traits,
        kinds=kinds,
        units=units,
        first=first,
        nmonths=max(keys) - first + 1,
        time_chunk=time_chunk,
    )


def series_units(s: DailySeries) -> str:
    """The unit a daily series is stored in (a mean's own; Tg of the element for a total)."""
    return s.units if s.kind == "mean" else variable_units([s.record.variable], [s.kind])[0]


def coordinate_values(layout: GroupState) -> dict[str, tuple[str, np.ndarray]]:
    """Every coordinate of the group: name -> (dimension, values)."""
    labels = slot_labels(layout.first, layout.nmonths)
    out: dict[str, tuple[str, np.ndarray]] = {
        "member": ("member", vlen(layout.members)),
        "variable": ("variable", vlen(layout.variables)),
        "region": ("region", vlen(layout.regions)),
        "time": ("time", vlen(labels)),
        "month": ("time", vlen([lab[:7] for lab in labels])),
        "day": ("time", np.tile(np.arange(1, DAY_SLOTS + 1, dtype=np.int64), layout.nmonths)),
        "variable_kind": ("variable", vlen(layout.kinds)),
        "variable_units": ("variable", vlen(layout.units)),
        "variable_statistic": (
            "variable",
            vlen(["mean" if k == "mean" else "total" for k in layout.kinds]),
        ),
    }
    for t in MEMBER_COORDS:
        tv = layout.traits[t]
        out[t] = ("member", np.asarray(tv, dtype=bool) if t in BOOL_TRAITS else vlen(tv))
    return out


def group_attrs(layout: GroupState) -> dict[str, Any]:
    """The group's attributes but ``gridflux_series`` (written last: until it is there, the
    group counts as not created, :func:`read_state`)."""
    return {
        "title": "gridflux store: daily series",
        "frequency": "day",
        "gridflux_first_month_key": layout.first,
        "gridflux_daily_layout": DAILY_LAYOUT,
    }


def totals_chunks_of(layout: GroupState) -> tuple[int, int, int, int]:
    """Chunks of the group's totals: one member and variable, every region, ``time_chunk``
    months of 31 slots (a new member, variable or year is new chunks)."""
    return (1, 1, max(len(layout.regions), 1), layout.time_chunk * DAY_SLOTS)


def create_group(target: Any, group: str | None, layout: GroupState, zarr_format: int) -> None:
    """Write an empty group (its coordinates, totals all NaN: no chunk) at ``target`` (a zarr
    store object or a local path) under ``group``."""
    import dask.array as dsa
    import xarray as xr

    shape = (len(layout.members), len(layout.variables), len(layout.regions), layout.slots)
    totals = xr.DataArray(
        dsa.full(shape, np.nan, chunks=-1, dtype=np.float64),
        dims=("member", "variable", "region", "time"),
        attrs=TOTALS_ATTRS,
    )
    ds = xr.Dataset({"totals": totals}, coords=coordinate_values(layout), attrs=group_attrs(layout))
    enc = {"totals": {"chunks": totals_chunks_of(layout), "_FillValue": np.nan}}
    ds.to_zarr(
        target,
        group=group,
        mode="w",
        compute=False,
        encoding=enc,
        zarr_format=zarr_format,
        consolidated=False,
        safe_chunks=False,  # the one dask chunk is never written
    )


def grow_in_place(g: Any, layout: GroupState) -> None:
    """Resize the group's totals to ``layout`` (metadata only: the chunks of stored series stay
    as they are) and rewrite the coordinates whose values changed."""
    totals = g["totals"]
    shape = (len(layout.members), len(layout.variables), len(layout.regions), layout.slots)
    if tuple(totals.shape) != shape:
        totals.resize(shape)
    if int(g.attrs.get("gridflux_first_month_key", layout.first)) != layout.first:
        raise StoreError("a daily group grows in place only at the end of its time axis")
    for name, (_dim, values) in coordinate_values(layout).items():
        arr = g[name]
        if tuple(arr.shape) == values.shape and np.asarray(arr[...]).tolist() == values.tolist():
            continue
        if tuple(arr.shape) != values.shape:
            arr.resize(values.shape)
        if values.size:
            arr[...] = values


def series_row(s: DailySeries, layout: GroupState) -> np.ndarray:
    """A computed series' values on the group's axis, ``(region, slot)``, each region in its row
    of the group (by label; NaN where it has none, and in the rows of regions not computed)."""
    row = np.full((len(layout.regions), layout.slots), np.nan)
    rows = np.asarray([layout.regions.index(r) for r in s.regions], dtype=np.intp)
    row[np.ix_(rows, day_slots(s.dates, layout.first))] = s.values.T
    return row


def write_series(
    g: Any,
    layout: GroupState,
    computed: list[DailySeries],
    cleared: list[tuple[str, str]],
    kept: Any = None,
) -> None:
    """Write the computed series' rows (every chunk of the series: a replaced series leaves no
    values of before), NaN over the ``cleared`` (member, variable) rows (failed or pruned
    series), and with ``kept = (old totals array, old state, keys to leave out)`` copy every
    other stored series by value (a rebuild).

    A series computed for added regions only (``only``) writes the rows of those regions alone
    (region by region: zarr merges a row into a chunk that holds other regions' rows, keeping
    their values; the chunks of the regions it held before are not touched)."""
    totals = g["totals"]
    if kept is not None:
        old, state, skip = kept
        shift = (state.first - layout.first) * DAY_SLOTS
        nr = len(state.regions)  # the layout's first regions are the stored ones, in order
        for mi, member in enumerate(state.members):
            for vi, variable in enumerate(state.variables):
                if (member, variable) in skip:
                    continue
                vals = np.asarray(old[mi, vi, :nr, : state.slots])
                if np.isnan(vals).all():
                    continue
                row = np.full((len(layout.regions), layout.slots), np.nan)
                row[: vals.shape[0], shift : shift + vals.shape[1]] = vals
                totals[layout.members.index(member), layout.variables.index(variable)] = row
    for s in computed:
        m, v = layout.members.index(s.record.member), layout.variables.index(s.record.variable)
        row = series_row(s, layout)
        if not s.only:
            totals[m, v] = row
            continue
        for r in s.regions:
            k = layout.regions.index(r)
            totals[m, v, k] = row[k]
    for member, variable in cleared:
        if member in layout.members and variable in layout.variables:
            m, v = layout.members.index(member), layout.variables.index(variable)
            totals[m, v] = np.full((len(layout.regions), layout.slots), np.nan)


def write_group(
    st: Store,
    state: GroupState | None,
    layout: GroupState,
    computed: list[DailySeries],
    cleared: list[tuple[str, str]],
    info: dict[str, dict],
    zarr_format: int,
) -> str:
    """Write the daily group: ``"created"`` (none before), ``"grown"`` in place (the stored
    series' chunks untouched), or ``"rebuilt"`` (a group of layout 1, or months before its
    first: written beside it and swapped in, on local stores only). ``gridflux_series`` is
    written last, so that a write killed midway leaves the series it was writing undone."""
    import zarr

    root = st.root.rstrip("/")
    if not (st.fs.exists(f"{root}/zarr.json") or st.fs.exists(f"{root}/.zgroup")):
        fmt: Any = zarr_format
        zarr.open_group(st.zarr_store(), mode="a", zarr_format=fmt)  # the store's root
    final = f"{root}/{DAILY_GROUP}"
    series = {
        "gridflux_series": json.dumps(info, sort_keys=True),
        "gridflux_layout": json.dumps(layout.labels(), sort_keys=True),
    }
    if state is None:
        create_group(st.zarr_store(), DAILY_GROUP, layout, zarr_format)
        g: Any = zarr.open_group(
            st.zarr_store(), path=DAILY_GROUP, mode="r+", use_consolidated=False
        )
        write_series(g, layout, computed, cleared)
        g.attrs.update(series)
        st.consolidate()
        return "created"
    old: Any = zarr.open_group(st.zarr_store(), path=DAILY_GROUP, mode="r+", use_consolidated=False)
    if state.layout == DAILY_LAYOUT and layout.first == state.first:
        # a series computed for added regions only is not rewritten (its stored rows stay): it
        # keeps its entry, which names the regions it holds, until the end
        writing = {(s.record.member, s.record.variable) for s in computed if not s.only}
        writing |= set(cleared)
        pending = {
            k: ({"status": "pending", "frequency": "day"} if key_pair(k) in writing else e)
            for k, e in state.info.items()
        }
        if pending != state.info:  # series rewritten in place: undone until the end
            old.attrs.update({"gridflux_series": json.dumps(pending, sort_keys=True)})
        grow_in_place(old, layout)
        write_series(old, layout, computed, cleared)
        old.attrs.update(series)
        st.consolidate()
        return "grown"
    if not st.is_local:
        raise StoreError(rewrite_refusal(st, state))
    import zarr.storage

    nxt = final + NEXT
    if os.path.exists(nxt):
        shutil.rmtree(nxt)
    create_group(nxt, None, layout, zarr_format)
    g = zarr.open_group(zarr.storage.LocalStore(nxt), mode="r+", use_consolidated=False)
    skip = {(s.record.member, s.record.variable) for s in computed if not s.only}
    skip |= set(cleared)
    write_series(g, layout, computed, cleared, kept=(old["totals"], state, skip))
    g.attrs.update(series)
    if os.path.exists(final + OLD):
        shutil.rmtree(final + OLD)
    os.replace(final, final + OLD)
    os.replace(nxt, final)
    shutil.rmtree(final + OLD)
    st.consolidate()  # the root's consolidated metadata names the group's arrays
    return "rebuilt"


def key_pair(key: str) -> tuple[str, str]:
    """``(member, variable)`` of a daily series id (``member/variable (daily)``)."""
    member, rest = key.split("/", 1)
    return member, rest.removesuffix(" (daily)")


def rewrite_refusal(st: Store, state: GroupState) -> str:
    why = (
        "it was written by an older gridflux (one chunk per series)"
        if state.layout != DAILY_LAYOUT
        else "months before its first month rewrite it"
    )
    return (
        f"store {st.url}: its daily group must be rewritten ({why}), which gridflux does on "
        "local stores only; write the daily series to a new store"
    )


def daily_config_hash(target: Any, protocol: str, radius: float) -> str:
    """Hash of what besides the inputs and the regions changes a daily series' values: its
    protocol, the target grid (regrid-data) and the earth's radius (the monthly series'
    :func:`~gridflux.pipeline.plan.config_hash` without cubes, which a daily series never has).

    The regions are not in it, as in the root's: a region's values depend on its own geometry
    only (:class:`~gridflux.fields.totals.RegionCells`), the group refuses another geometry for
    a region it holds (its ``gridflux_layout``'s ``region_hashes``), and each series' entry
    names the regions it holds (``regions``), so a group that gains a region computes only that
    region for its done series. (Entries written before held the mask in their hash: such a
    group's series are computed once more, by the first run that writes to it.)"""
    import hashlib

    h = hashlib.sha1(config_hash(target, protocol, False, radius).encode())
    h.update(b"daily: regions by entry")
    return h.hexdigest()[:16]


def check_regions(st: Store, state: GroupState | None, mask: RegionMask) -> dict[str, str]:
    """Refuse a mask the group cannot take (one of the group's regions missing, or another
    geometry for a region it holds), as the root does
    (:func:`~gridflux.pipeline.growth.plan_growth`); returns the mask's region hashes."""
    hashes = region_hashes(mask)
    if state is None:
        return hashes
    where = f"store {st.url}"
    missing = [r for r in state.regions if r not in hashes]
    if missing:
        raise StoreError(
            f"{where}: its daily group holds region(s) {missing} that this run's mask lacks "
            "(setting --mask / --regions); give the mask with every region of the store "
            "(regions are never dropped)"
        )
    for r in state.regions:
        if r in state.region_hashes and state.region_hashes[r] != hashes[r]:
            raise StoreError(
                f"{where}: region {r!r} of this run's mask has another geometry (fractions or "
                "grid) than the store's daily group (setting --mask); a store keeps its regions' "
                "masks: rename the region or write a new store"
            )
    return hashes


@dataclass
class DailyResult:
    """What the daily pass did (merged into the run's summary)."""

    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    missing: dict[str, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    pruned: list[str] = field(default_factory=list)
    not_in_catalogs: list[str] = field(default_factory=list)
    group: str = ""  # "", "created", "grown", "rebuilt": what was written
    #: done series computed for the regions added to the group only (also in ``done``)
    regions_only: list[str] = field(default_factory=list)
    #: for the manifest's history: series ``added`` (with versions), ``replaced`` (inputs or
    #: version changed: ``from`` and ``to`` versions), ``recomputed`` (same inputs, another
    #: configuration, or retried), ``failed`` (version and error), ``pruned``,
    #: ``regions_added`` (a done series computed for the regions added only: its regions)
    history: dict[str, list] = field(
        default_factory=lambda: {
            "added": [],
            "replaced": [],
            "recomputed": [],
            "failed": [],
            "pruned": [],
            "regions_added": [],
        }
    )


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
    verify: bool = False,
    prune: bool = False,
) -> DailyResult:
    """Compute the daily series that are new or changed and write them to the store's daily
    group (call with the store's lock held). ``protocol_of(record)`` gives a series' protocol.

    A series recorded done in the group with the same fingerprint (inputs and result fields:
    :func:`~gridflux.pipeline.fingerprint.series_fingerprint`, content hashes with ``verify``)
    and configuration (:func:`daily_config_hash`) is skipped, not even opened. When nothing is
    computed, failed or pruned, the group is not written at all. With ``prune``, the group's
    series that are not among ``records`` are removed (their values cleared).

    Regions of ``mask`` new to the group are appended to it (by label); a done, unchanged series
    whose entry lacks some of them is computed for those regions only and only their rows are
    written. A mask without one of the group's regions, or with another geometry for one, is
    refused (:func:`check_regions`) before anything is computed."""
    from gridflux.fields.statistics import MEAN_UNITS
    from gridflux.ingest.remote import scrub_tree

    out = DailyResult()
    regions = list(mask.names)
    state = read_state(st, repair=True)
    if not records and (state is None or not prune):
        return out
    hashes = check_regions(st, state, mask)
    if state is not None and state.layout == DAILY_LAYOUT and state.time_chunk != time_chunk:
        raise StoreError(
            f"store {st.url}: its daily group was created with chunk-months "
            f"{state.time_chunk}, this run has {time_chunk}; run with --chunk-months "
            f"{state.time_chunk} or write to a new store"
        )
    info: dict[str, dict] = {} if state is None else dict(state.info)
    stored_units: dict[str, str] = {}
    if state is not None:
        for v, k, u in zip(state.variables, state.kinds, state.units, strict=True):
            if k == "mean":
                stored_units[v] = u
    chashes: dict[str, str] = {}
    todo: list[tuple[Any, str, dict | None, str, list[str] | None]] = []
    for rec in records:
        key = series_key(rec)
        proto = protocol_of(rec)
        if proto not in chashes:
            chashes[proto] = daily_config_hash(target, proto, radius)
        try:
            fp: dict | None = series_fingerprint(rec, storage_options, verify)
        except Exception:  # noqa: BLE001 - unreadable now: computing it names the error
            fp = None
        entry = info.get(key, {})
        only: list[str] | None = None
        if (
            state is not None
            and state.layout == DAILY_LAYOUT
            and entry.get("status") == "done"
            and entry.get("config_hash") == chashes[proto]
            and unchanged(fp, entry.get("fingerprint"), verify)
        ):
            only = regions_lacking(entry, regions)  # None: the entry does not say: whole
            if only == []:
                out.skipped.append(key)
                if entry.get("missing_days"):  # named on every run, as a monthly series' months
                    out.missing[key] = list(entry["missing_days"])
                continue
        todo.append((rec, proto, fp, chashes[proto], only))
    if todo and state is not None and state.layout != DAILY_LAYOUT and not st.is_local:
        raise StoreError(rewrite_refusal(st, state))  # before any series is computed
    computed: list[DailySeries] = []
    cleared: list[tuple[str, str]] = []
    for rec, proto, fp, chash, only in todo:
        key = series_key(rec)
        try:
            s = compute_series(
                rec,
                mask,
                protocol=proto,
                target=target,
                radius=radius,
                storage_options=storage_options,
                mean_units=stored_units.get(rec.variable)
                if rec.variable not in MEAN_UNITS
                else None,
                regions=only,
            )
        except Exception as exc:  # noqa: BLE001 - a series fails alone, named with its error
            out.failed[key] = error_text(exc)
            info[key] = {"status": "failed", "error": out.failed[key], "frequency": "day"}
            version = getattr(rec, "version", "") or ""
            out.history["failed"].append(
                {"series": key, "version": version, "error": out.failed[key]}
            )
            if state is not None and state.info.get(key, {}).get("status") != "failed":
                cleared.append((rec.member, rec.variable))  # no values of an earlier run stay
            log.warning("daily series %s failed: %s", key, out.failed[key])
            continue
        if s.kind == "mean":
            stored_units.setdefault(rec.variable, s.units)
        computed.append(s)
        out.done.append(key)
        if s.missing_days:
            out.missing[key] = s.missing_days
        if only is not None:  # its entry stays, now naming the added regions too
            out.regions_only.append(key)
            out.history["regions_added"].append({"series": key, "regions": list(only)})
            info[key] = {**info[key], "regions": sorted({*info[key]["regions"], *only})}
            continue
        note_history(out.history, key, rec, fp, info.get(key))
        info[key] = scrub_tree(
            {
                "status": "done",
                "frequency": "day",
                "statistic": "mean" if s.kind == "mean" else "total",
                "units": series_units(s),
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
                "version": getattr(rec, "version", "") or "",
                "fingerprint": fp,
                "config_hash": chash,
                "regions": sorted(regions),
            },
            st.storage_options,
        )
    wanted = {series_key(r) for r in records}
    gone = sorted(k for k in info if k not in wanted)
    if prune:
        for key in gone:
            cleared.append(key_pair(key))
            del info[key]
        out.pruned = gone
        out.history["pruned"] = list(gone)
    else:
        out.not_in_catalogs = gone
    if cubes and computed:
        names = ", ".join(series_key(s.record) for s in computed)
        out.notes.append(
            f"cubes are not written for daily series (only their region statistics, in the "
            f"store's daily/ group): {names}"
        )
    if state is None and not computed:
        if out.failed:
            log.warning("no daily series computed: %s", ", ".join(out.failed))
        return out
    stored = set() if state is None else {(m, v) for m in state.members for v in state.variables}
    cleared = [c for c in cleared if c in stored]
    if (
        not computed
        and not cleared
        and state is not None
        and info == state.info
        and state.consistent
    ):
        return out  # nothing new or changed: the group is not touched
    layout = grown_layout(state, computed, regions, time_chunk, hashes)
    lacking = [k for k in out.not_in_catalogs if regions_lacking(info[k], layout.regions)]
    if lacking:
        out.notes.append(
            f"daily series not in this run's catalogs lack the regions added to the daily "
            f"group (NaN there until a run's catalogs hold them): {', '.join(lacking)}"
        )
    out.group = write_group(st, state, layout, computed, cleared, info, zarr_format)
    return out


def note_history(history: dict[str, list], key: str, rec: Any, fp: Any, before: Any) -> None:
    """A computed daily series in the run's history: added (new to the group), replaced (its
    inputs or version changed; with both versions) or recomputed (same inputs, another
    configuration, or retried), as the root's series (``Run.note_history``)."""
    version = getattr(rec, "version", "") or ""
    if not before:
        history["added"].append({"series": key, "version": version})
    elif before.get("status") == "done" and (
        not unchanged(fp, before.get("fingerprint")) or before.get("version", "") != version
    ):
        history["replaced"].append(
            {"series": key, "from": before.get("version", ""), "to": version}
        )
    else:
        history["recomputed"].append(key)


def record_history(st: Store, history: dict) -> None:
    """Append a run's record to the manifest's ``history`` (a run of daily series only, which
    writes no other manifest; called only when it wrote or failed something)."""
    manifest = st.read_manifest()
    manifest.setdefault("history", []).append(history)
    st.write_manifest(manifest)


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
        verify=s.verify,
        prune=run.prune,
    )


def add_daily(summary: Any, result: DailyResult) -> None:
    """Merge the daily pass' result into a run's summary (``done``, ``failed``, ``missing``:
    missing *days* of daily series, ``notes``)."""
    summary.done.extend(result.done)
    summary.regions_only.extend(result.regions_only)
    summary.skipped.extend(result.skipped)
    summary.failed.update(result.failed)
    summary.pruned.extend(result.pruned)
    summary.not_in_catalogs.extend(result.not_in_catalogs)
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
