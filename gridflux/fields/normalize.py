"""Normalization of one raw variable to the canonical field of docs/architecture.md.

``normalize(ds, variable, ...)`` returns an ``xr.Dataset`` holding one lazy data variable with dims
``(time, lat, lon)`` plus ``lat_bnds``/``lon_bnds`` (a DataArray cannot carry 2-D bounds):
latitude ascending (a descending file is reversed with a lazy ``isel``), longitude increasing in
the file's own origin (a 0..360 file stays 0..360; a wrap is unwrapped, never rolled), bounds
bounds (the file's own or inferred, flagged in ``gridflux_history``), time as
cftime month starts in the source calendar with ``seconds_in_month``, values in kg of element
m-2 s-1 (stocks kg m-2) positive to the atmosphere, per unit grid-cell area.

Nothing is computed here: the data are multiplied lazily, and only when a conversion is needed,
so an already canonical file costs no extra pass.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import xarray as xr

from gridflux.errors import GridError, InputError
from gridflux.fields.axes import bounds_of, find_dim, lon_decreasing
from gridflux.fields.timeaxis import (
    canonical_calendar,
    check_month_keys,
    decode_dates,
    decode_month_keys,
    has_sub_monthly_steps,
    keys_from_dates,
    month_starts,
    seconds_in_month,
)
from gridflux.fields.units import ALIASES, CANONICAL_UNITS, VARIABLES, unit_factor
from gridflux.kernels import grids

#: Values at or beyond this magnitude are missing even when the file declares no fill value.
FILL_THRESHOLD = 1e19

__all__ = [
    "FILL_THRESHOLD",
    "land_area_basis",
    "normalize",
    "repaired_bounds",
    "resolve_variable",
]


def _is_dask(x: Any) -> bool:
    import dask

    return dask.is_dask_collection(x)


def _values(x: xr.DataArray) -> np.ndarray:
    return np.asarray(x.values)


def land_area_basis(
    cell_methods: Any,
    per_land_area: bool | None,
    default: bool | None = None,
    default_source: str = "",
) -> tuple[bool, str]:
    """Whether a field is per unit land area, and what says so.

    In this order: ``per_land_area`` (the catalog's column or the caller); the variable's
    ``cell_methods`` where it has an ``area:`` method (``area: mean where land`` -> True, any
    other ``area:`` method -> False); ``default`` (e.g. the CMIP table's convention: ``Lmon``);
    else False. The reason names the attribute, for the history and for errors.
    """
    if per_land_area is not None:
        return bool(per_land_area), "the catalog's per_land_area"
    cm = str(cell_methods or "")
    if "where land" in cm:
        return True, f"cell_methods {cm!r}"
    if "area:" in cm:
        return False, f"cell_methods {cm!r}"
    if default is not None:
        return bool(default), default_source or "the catalog's default"
    return False, "no cell_methods area method"


def _land_fraction(
    ds: xr.Dataset,
    land_fraction: Any,
    shape: tuple[int, int],
    path: str | None,
    name: str,
    why: str = "cell_methods",
) -> tuple[np.ndarray, str]:
    """sftlf as a (lat, lon) float64 fraction in [0, 1] in the file's own orientation."""
    lf = land_fraction
    if lf is None:
        for n in ("sftlf", "landfrac", "land_fraction"):
            if n in ds.variables:
                lf = ds[n]
                break
    if lf is None:
        attr = (
            "cell_methods"
            if why.startswith("cell_methods")
            else "per_land_area"
            if "per_land_area" in why
            else "table_id"
        )
        raise InputError(
            f"is taken per unit land area ({why}) but no land fraction is available; expected "
            "an 'sftlf' fx file in the catalog for this model or the land_fraction argument"
            + ("" if attr == "cell_methods" else f", or per_land_area false if {why} is wrong"),
            path=path,
            variable=name,
            attribute=attr,
        )
    units = str(getattr(lf, "attrs", {}).get("units", "")).strip()
    vals = np.asarray(lf.values if isinstance(lf, xr.DataArray) else lf, dtype=np.float64)
    vals = np.squeeze(vals)
    if vals.shape != shape:
        raise InputError(
            f"land fraction has shape {vals.shape}; expected the data's (lat, lon) shape {shape}",
            path=path,
            variable="sftlf",
            attribute="shape",
        )
    vals = np.where(np.isfinite(vals) & (np.abs(vals) < FILL_THRESHOLD), vals, 0.0)
    if (
        units == "%"
        or units.lower() in ("percent", "percentage")
        or (units == "" and vals.max() > 1.0 + 1e-6)
    ):
        vals = vals / 100.0
        how = "sftlf in % (/100)"
    else:
        how = "sftlf as a fraction"
    if vals.min() < -1e-6 or vals.max() > 1.0 + 1e-6:
        raise InputError(
            f"land fraction ranges {vals.min():g}..{vals.max():g}; expected 0..1 or 0..100 with "
            "units '%'",
            path=path,
            variable="sftlf",
            attribute="units",
        )
    return np.clip(vals, 0.0, 1.0), how


def repaired_bounds(
    lat: np.ndarray,
    lon: np.ndarray,
    lat_bv: np.ndarray | None,
    lon_bv: np.ndarray | None,
    *,
    rules: Mapping[str, str] | None = None,
    reasons: Mapping[str, str] | None = None,
    strict: bool = False,
    lat_dtype: Any = None,
) -> tuple[np.ndarray | None, np.ndarray | None, list[str]]:
    """The file's lat/lon bounds after the fix rules (:func:`gridflux.kernels.grids.repair_bounds`):
    latitude edges beyond +-90 clipped; bounds with gaps, overlaps or centres outside their cells
    dropped (None: inferred from the centres); per axis a fix table's rule instead.

    ``lat`` ascending and ``lon`` unwrapped, bounds in their order (degrees). Returns the
    bounds to use and one note per repair (``gridflux_fixes``). ``strict`` raises
    :class:`~gridflux.errors.GridError` instead of repairing.
    """
    rules = dict(rules or {})
    reasons = dict(reasons or {})
    tol = grids.latitude_precision(lat, lat_dtype)
    notes: list[str] = []
    out = []
    for axis, centres, b in (("lat", lat, lat_bv), ("lon", lon, lon_bv)):
        try:
            nb, done = grids.repair_bounds(
                centres, b, axis, rule=rules.get(axis), strict=strict, lat_tol=tol
            )
        except GridError as exc:
            if not reasons.get(axis):
                raise
            msg = str(exc).split(": ", 1)[-1]
            raise GridError(f"{msg} [{reasons[axis]}]", variable=exc.variable) from exc
        if done and reasons.get(axis):
            done = [f"{d} [{reasons[axis]}]" for d in done]
        notes += done
        out.append(nb)
    return out[0], out[1], notes


def _time_keys(
    ds: xr.Dataset, da: xr.DataArray, tdim: str, calendar: str | None, path: str | None
) -> tuple[np.ndarray, str]:
    """Month keys and canonical calendar of the time axis (numeric raw or decoded)."""
    if tdim not in ds.variables:
        raise InputError("has no time coordinate", path=path, variable=tdim, attribute="values")
    t = ds[tdim]
    vals = np.asarray(t.values)
    if vals.dtype.kind in "iuf":
        cal_attr = calendar or t.attrs.get("calendar") or t.encoding.get("calendar")
        cal = canonical_calendar(cal_attr, path=path, variable=tdim)
        bname = t.attrs.get("bounds")
        bounds = None
        if bname and bname in ds.variables:
            bounds = np.asarray(ds[bname].values)
        keys = decode_month_keys(
            vals, t.attrs.get("units"), cal, bounds=bounds, path=path, variable=tdim
        )
        return keys, cal
    if np.issubdtype(vals.dtype, np.datetime64):
        cal_attr = (
            calendar
            or t.encoding.get("calendar")
            or t.attrs.get("calendar")
            or ds.attrs.get("gridflux_calendar")
        )
        cal = canonical_calendar(cal_attr, path=path, variable=tdim)
        return keys_from_dates(vals), cal
    if vals.dtype == object and vals.size and hasattr(vals.flat[0], "calendar"):
        cal = canonical_calendar(calendar or vals.flat[0].calendar, path=path, variable=tdim)
        return keys_from_dates(vals), cal
    raise InputError(
        f"time values of dtype {vals.dtype} cannot be read; expected numbers with CF units or "
        "dates",
        path=path,
        variable=tdim,
        attribute="units",
    )


def resolve_variable(ds: xr.Dataset, variable: str, raw_name: str | None = None) -> tuple[str, str]:
    """(canonical name, name in the dataset) of a requested variable."""
    if variable in ALIASES:
        canonical = ALIASES[variable].canonical
    else:
        raise KeyError(variable)
    if raw_name is None:
        if variable in ds.data_vars:
            raw_name = variable
        else:
            found = [
                n
                for n in ds.data_vars
                if ALIASES.get(str(n), None) and ALIASES[str(n)].canonical == canonical
            ]
            raw_name = str(found[0]) if found else variable
    return canonical, raw_name


def normalize(
    ds: xr.Dataset,
    variable: str,
    *,
    raw_name: str | None = None,
    gas: str | None = None,
    path: str | None = None,
    land_fraction: Any = None,
    per_land_area: bool | None = None,
    units: str | None = None,
    mass_basis: str | None = None,
    into_land: bool | None = None,
    calendar: str | None = None,
    allow_gaps: bool = False,
    statistic: str | None = None,
    sel: str | None = None,
    bounds_rules: Mapping[str, str] | None = None,
    fix_reasons: Mapping[str, str] | None = None,
    strict: bool = False,
    land_default: bool | None = None,
    land_default_source: str = "",
    land_weighted: bool = False,
    mean_units: str | None = None,
    resample: str | None = None,
) -> xr.Dataset:
    """Turn one variable of a raw dataset into the canonical field.

    Parameters
    ----------
    ds : raw dataset (as opened by :func:`gridflux.ingest.catalog.open_series`, or by xarray with
        ``decode_times=False`` or decoded times)
    variable : canonical name (``nbp``) or a known raw alias (``netAtmosLandCO2Flux``)
    raw_name : the variable's name in ``ds`` when it differs (e.g. ``NBE_p50``)
    gas : gas counted by ``mol`` units (default: the variable's gas)
    path : file name(s) for messages (default: ``ds.encoding['source']``)
    land_fraction : sftlf (DataArray or array, % or fraction) for per-land-area variables
        (default: the dataset's ``sftlf`` variable)
    per_land_area : force (True/False) multiplication by the land fraction; default: detect
        ``where land`` in ``cell_methods``
    units : override of the file's ``units`` attribute (from the catalog)
    mass_basis : species of a bare mass unit (e.g. ``'CH4'``); default the element
    into_land : override the raw sign convention (True: positive into land, flip)
    calendar : override / supply the calendar (e.g. when the file lacks the attribute)
    allow_gaps : accept missing months (recorded in ``gridflux_gaps``) instead of raising
    statistic : ``'mean'`` for an intensive variable of any name (temperature, moisture...):
        its values keep their quantity (converted to :data:`~gridflux.fields.statistics.MEAN_UNITS`
        when listed), no sign or land-fraction change, ``gridflux_kind='mean'``
        (:mod:`gridflux.fields.statistics`); default: a carbon/N variable of the table (total)
    sel : level selection of a 4-D field, ``'plev=85000'`` or ``'depth=0:1'`` (a layer:
        integral for totals, thickness-weighted mean for means)
    bounds_rules : per axis (``lat``/``lon``) the rule of a fix table for the file's bounds
        (:data:`gridflux.kernels.grids.BOUNDS_RULES`); an axis not named gets the generic rules
        (:func:`repaired_bounds`)
    fix_reasons : per axis, the fix table's description of the defect (for the history)
    strict : refuse to repair anything (an error naming the defect instead)
    land_default : whether the field is per land area when neither ``per_land_area`` nor the
        variable's ``cell_methods`` (an ``area:`` method) say (e.g. from the CMIP table)
    land_default_source : where ``land_default`` comes from, for messages (e.g. "table Lmon")
    land_weighted : (means only) weight the region means by land fraction: the land fraction
        (``land_fraction``, else the dataset's ``sftlf``, % or fraction) is kept as the
        coordinate ``gridflux_land_fraction (lat, lon)`` (0..1, canonical order) for the weights
    mean_units : (means only) the unit to store the values in (the store's unit of the
        variable); default :func:`~gridflux.fields.statistics.mean_unit` (the table's, else the
        file's own units)
    resample : ``'month'``: a daily (sub-monthly) series becomes monthly means of its time steps
        in its own calendar (:func:`~gridflux.fields.statistics.resample_month`); a month
        missing days is a missing month. ``'day'``: a daily series keeps its steps (``time``
        their dates, ``seconds_in_month`` 86400 s per step: :func:`gridflux.fields.daily.
        daily_axis`). None: the series must be monthly (a daily one is refused, naming the
        option)

    Returns
    -------
    xr.Dataset
        The canonical field (docs/architecture.md): one lazy data variable named ``canonical``
        (float32 if the file's data are float32) with the field's attributes, plus the data
        variables ``lat_bnds (lat, bnds)`` and ``lon_bnds (lon, bnds)``.

    Raises
    ------
    InputError
        Naming file, variable and attribute for anything that cannot be normalized.
    """
    path = path or ds.attrs.get("gridflux_source") or ds.encoding.get("source")
    path = str(path) if path else None
    is_mean = statistic == "mean"
    try:
        if is_mean:
            canonical, raw = variable, raw_name or variable
        else:
            canonical, raw = resolve_variable(ds, variable, raw_name)
    except KeyError:
        raise InputError(
            f"is not a known variable; expected a canonical name {sorted(VARIABLES)} or an alias",
            path=path,
            variable=variable,
            attribute="name",
        ) from None
    if raw not in ds.data_vars:
        raise InputError(
            "is not in the file; expected one of its data variables "
            f"{sorted(map(str, ds.data_vars))}",
            path=path,
            variable=raw,
            attribute="name",
        )
    spec = None if is_mean else VARIABLES[canonical]
    history: list[str] = []
    if sel:
        from gridflux.fields.statistics import parse_sel, select_levels

        sel_level = parse_sel(sel)
        da = select_levels(ds, raw, sel_level, "mean" if is_mean else "total", path=path)
        history.append(f"level selection {da.attrs['gridflux_level']}")
    else:
        da = ds[raw]

    tdim = find_dim(da, ds, "time", path)
    ydim = find_dim(da, ds, "lat", path)
    xdim = find_dim(da, ds, "lon", path)
    extra = [d for d in da.dims if d not in (tdim, ydim, xdim)]
    for d in extra:
        if da.sizes[d] == 1:
            da = da.isel({d: 0}, drop=True)
        else:
            raise InputError(
                f"has an extra dimension {d!r} of size {da.sizes[d]}; expected (time, lat, lon) "
                f"(select a level or layer: --sel {d}=VALUE or --sel {d}=LO:HI)",
                path=path,
                variable=raw,
                attribute="dimensions",
            )
    da = da.transpose(tdim, ydim, xdim)
    shape2 = (da.sizes[ydim], da.sizes[xdim])

    # -- time ------------------------------------------------------------------------------
    keys, cal = _time_keys(ds, da, tdim, calendar, path)
    day_times = None  # resample='day': the daily steps kept (gridflux.fields.daily)
    if resample == "day":
        from gridflux.fields.daily import daily_axis

        day_times, secs, history_step = daily_axis(ds, tdim, cal, path, raw)
        history.append(history_step)
        check = check_month_keys(np.unique(keys), path=path, variable=tdim, allow_gaps=True)
    else:
        if resample is not None or has_sub_monthly_steps(keys):
            ds, da, keys, history_step = _monthly(ds, da, tdim, cal, resample, path, raw)
            history.append(history_step)
        check = check_month_keys(keys, path=path, variable=tdim, allow_gaps=allow_gaps)
        secs = seconds_in_month(keys, cal)

    # -- grid ------------------------------------------------------------------------------
    lat = np.asarray(ds[ydim].values if ydim in ds.variables else [], dtype=np.float64)
    lon = np.asarray(ds[xdim].values if xdim in ds.variables else [], dtype=np.float64)
    if lat.size != shape2[0] or lon.size != shape2[1]:
        raise InputError(
            "coordinate values are missing", path=path, variable=ydim, attribute="values"
        )
    lat_dtype = ds[ydim].dtype
    lat_b = bounds_of(ds, ydim)
    lon_b = bounds_of(ds, xdim)
    lat_bv = None if lat_b is None else _values(lat_b).astype(np.float64)
    lon_bv = None if lon_b is None else _values(lon_b).astype(np.float64)
    flip_lat = grids.is_descending(lat)
    flip_lon = lon_decreasing(lon)
    if flip_lat:
        lat = lat[::-1]
        lat_bv = None if lat_bv is None else lat_bv[::-1]
        history.append("latitude reversed to ascending")
    if flip_lon:
        lon = lon[::-1]
        lon_bv = None if lon_bv is None else lon_bv[::-1]
        history.append("longitude reversed to increasing")
    try:
        lon_u = grids.unwrap_longitudes(lon, xdim)
        lat_bv, lon_bv, fixes = repaired_bounds(
            lat,
            lon_u,
            lat_bv,
            lon_bv,
            rules=bounds_rules,
            reasons=fix_reasons,
            strict=strict,
            lat_dtype=lat_dtype,
        )
        grid = grids.CellBounds.from_centers(
            lat, lon_u, lat_bv, lon_bv, lat_name=ydim, lon_name=xdim, lat_dtype=lat_dtype
        )
    except GridError as exc:
        attr = "values" if exc.variable in (ydim, xdim) else "bounds"
        raise InputError(
            f"invalid grid ({exc}); expected strictly monotonic, contiguous coordinates"
            + ("" if not strict else " (strict: no repair)"),
            path=path,
            variable=exc.variable or ydim,
            attribute=attr,
        ) from exc
    if not np.array_equal(lon_u, lon):
        history.append("longitudes unwrapped to increase (no roll)")
    history.append(
        "lat bounds from file" if lat_bv is not None else "lat bounds INFERRED from centres"
    )
    history.append(
        "lon bounds from file" if lon_bv is not None else "lon bounds INFERRED from centres"
    )
    history.extend(f"FIXED {f}" for f in fixes)

    # -- values ----------------------------------------------------------------------------
    raw_units = units if units is not None else da.attrs.get("units")
    if is_mean:
        return _mean_field(
            ds,
            da,
            canonical,
            raw,
            raw_units,
            grid,
            lat,
            lon_u,
            keys,
            cal,
            secs,
            check,
            history,
            path,
            (tdim, ydim, xdim),
            (flip_lat, flip_lon),
            land=_land_weights(ds, land_fraction, shape2, path, raw) if land_weighted else None,
            to=mean_units,
            day_times=day_times,
        )
    if land_weighted:
        raise InputError(
            "is a region total; land weighting (land_weighted, --land-weighted) applies to "
            "region means (a flux per land area is multiplied by its land fraction: "
            "per_land_area)",
            path=path,
            variable=raw,
            attribute="land_weighted",
        )
    uf = unit_factor(raw_units, canonical, gas=gas, mass_basis=mass_basis, path=path, raw_name=raw)
    raw_into_land = (
        into_land
        if into_land is not None
        else (ALIASES[raw].into_land if raw in ALIASES else bool(spec and spec.into_land))
    )
    sign = -1.0 if raw_into_land else 1.0
    if sign < 0:
        history.append(f"sign flipped ({raw} is positive into the land)")
    if not uf.is_identity:
        history.append(uf.description)

    per_land_area, land_why = land_area_basis(
        da.attrs.get("cell_methods"), per_land_area, land_default, land_default_source
    )
    lf = None
    if per_land_area:
        lf, how = _land_fraction(ds, land_fraction, shape2, path, raw, land_why)
        history.append(f"per land area ({land_why}): multiplied by {how}")

    enc = da.encoding
    declared_fill = (
        ("_FillValue" in enc)
        or ("missing_value" in enc)
        or bool(da.attrs.get("gridflux_declared_fill", False))
    )
    needs_fill_mask = (not declared_fill) or bool(da.attrs.get("gridflux_unmasked_fill", False))

    out_dtype = np.float32 if da.dtype == np.float32 else np.float64
    if flip_lat:
        da = da.isel({ydim: slice(None, None, -1)})
    if flip_lon:
        da = da.isel({xdim: slice(None, None, -1)})
    if lf is not None:
        if flip_lat:
            lf = lf[::-1]
        if flip_lon:
            lf = lf[:, ::-1]

    data = da.variable.data
    if needs_fill_mask:
        data = _mask_fill(data)
        history.append(f"|x| >= {FILL_THRESHOLD:g} treated as missing")
    scale = sign * uf.scale
    # converted values stay float64: casting back to float32 would add ~3e-8 relative rounding per
    # cell, which survives into the totals (~1e-8); canonical-unit files keep their dtype
    if uf.per_month:
        data = _times_month_factor(data, scale / secs)
    elif scale != 1.0:
        data = data.astype(np.float64) * scale
    if lf is not None:
        data = data.astype(np.float64) * lf[None, :, :]
    if data.dtype != out_dtype and not (uf.per_month or scale != 1.0 or lf is not None):
        data = data.astype(out_dtype)

    times = month_starts(keys, cal) if day_times is None else day_times
    field = xr.Variable(("time", "lat", "lon"), data)
    out = xr.Dataset(
        {
            canonical: field,
            "lat_bnds": (("lat", "bnds"), grid.lat_bounds.copy()),
            "lon_bnds": (("lon", "bnds"), grid.lon_bounds.copy()),
        },
        coords={
            "time": xr.coding.cftimeindex.CFTimeIndex(times),
            "lat": ("lat", lat),
            "lon": ("lon", lon_u),
            "seconds_in_month": ("time", secs),
        },
    )
    out["lat"].attrs.update(standard_name="latitude", units="degrees_north", bounds="lat_bnds")
    out["lon"].attrs.update(standard_name="longitude", units="degrees_east", bounds="lon_bnds")
    out["seconds_in_month"].attrs.update(
        units="s", long_name=f"seconds in the month ({cal} calendar)"
    )

    miss = da.attrs.get("gridflux_missing_fraction")
    if miss is None and not _is_dask(da.variable.data):
        first = np.asarray(da.isel({tdim: 0}).values)
        miss = float(np.mean(~np.isfinite(first) | (np.abs(first) >= FILL_THRESHOLD)))
    assert spec is not None  # a mean field returned above (_mean_field)
    out[canonical].attrs.update(
        units=CANONICAL_UNITS[spec.kind],
        long_name=spec.long_name,
        gridflux_kind=spec.kind,
        gridflux_element=spec.element,
        gridflux_gas=spec.gas,
        gridflux_raw_variable=raw,
        gridflux_raw_units=str(raw_units),
        gridflux_calendar=cal,
        gridflux_history="; ".join(history) if history else "already canonical",
        gridflux_source=path or "",
        gridflux_missing_fraction=("not computed (lazy input)" if miss is None else float(miss)),
        gridflux_gaps=", ".join(check.gap_labels()),
        gridflux_sign_flipped=int(sign < 0),
        gridflux_fixes="; ".join(fixes),
    )
    out.attrs.update(gridflux_variable=canonical, gridflux_source=path or "")
    return out


def _times_month_factor(data: Any, factor: np.ndarray) -> Any:
    """``data * factor[:, None, None]`` in float64; on dask data one task per block (a numpy
    ``(time, 1, 1)`` operand would be split into extra getter tasks for every block)."""
    if not _is_dask(data):
        return np.asarray(data, dtype=np.float64) * factor[:, None, None]

    def block(x: np.ndarray, factor: np.ndarray, block_info: dict | None = None) -> np.ndarray:
        assert block_info is not None  # dask passes it to a function that names the argument
        t0, t1 = block_info[0]["array-location"][0]
        return x.astype(np.float64) * factor[t0:t1, None, None]

    return data.map_blocks(block, factor=np.asarray(factor, dtype=np.float64), dtype=np.float64)


def _mask_fill(data: Any) -> Any:
    """``data`` with ``|x| >= FILL_THRESHOLD`` replaced by NaN (lazy for dask arrays)."""
    if _is_dask(data):
        import dask.array as dsa

        return dsa.where(abs(data) >= FILL_THRESHOLD, np.nan, data)
    return np.where(np.abs(data) >= FILL_THRESHOLD, np.nan, data).astype(data.dtype, copy=False)


def _land_weights(
    ds: xr.Dataset, land_fraction: Any, shape: tuple[int, int], path: str | None, raw: str
) -> tuple[np.ndarray, str]:
    """The land fraction of a land-weighted mean (file orientation, 0..1) and how it was read."""
    if land_fraction is None and not any(
        n in ds.variables for n in ("sftlf", "landfrac", "land_fraction")
    ):
        raise InputError(
            "is to be land-weighted (land_weighted, --land-weighted) but no land fraction is "
            "available; expected an 'sftlf' fx row of this model in the catalog (the CMIP6 fx "
            "file beside the series in the DRS tree), or land_weighted false",
            path=path,
            variable=raw,
            attribute="land_weighted",
        )
    return _land_fraction(ds, land_fraction, shape, path, raw, "land_weighted")


def _monthly(
    ds: xr.Dataset,
    da: xr.DataArray,
    tdim: str,
    cal: str,
    resample: str | None,
    path: str | None,
    raw: str,
) -> tuple[xr.Dataset, xr.DataArray, np.ndarray, str]:
    """A daily (sub-monthly) field as monthly means of its steps (``resample='month'``), or the
    error that names the option. Returns the dataset and field on the monthly axis, its month
    keys and the history step."""
    from gridflux.fields.statistics import resample_month

    if resample != "month":
        if resample is not None:
            raise InputError(
                f"resample={resample!r} is not known; expected 'month'",
                path=path,
                variable=tdim,
                attribute="resample",
            )
        raise InputError(
            "has several time steps per month (daily or sub-daily data); normalize it with "
            "resample='day' (its daily axis, as `gridflux run` does for a daily series) or with "
            "--resample month (monthly means of the steps, totals from them)",
            path=path,
            variable=raw,
            attribute="time",
        )
    t = ds[tdim]
    bname = t.attrs.get("bounds")
    bounds = np.asarray(ds[bname].values) if bname and bname in ds.variables else None
    dates = decode_dates(
        np.asarray(t.values), t.attrs.get("units"), cal, bounds=bounds, path=path, variable=tdim
    )
    daily = da.assign_coords({tdim: xr.CFTimeIndex(dates)})
    monthly = resample_month(daily, tdim=tdim, complete=True)
    keys = keys_from_dates(monthly[tdim].values)
    bad = monthly.attrs.get("gridflux_incomplete_months", "")
    step = (
        f"resampled to months: mean of the {len(dates)} time steps of {len(keys)} months "
        f"({cal} calendar)" + (f"; months missing steps (no data): {bad}" if bad else "")
    )
    out = ds.drop_vars([v for v in ds.variables if tdim in ds[v].dims], errors="ignore")
    out = out.assign_coords({tdim: (tdim, monthly[tdim].values)})
    monthly = monthly.drop_vars(tdim)
    monthly.attrs = dict(da.attrs)
    monthly.encoding = dict(da.encoding)  # the declared fill values still tell masking
    return out, monthly, keys, step


def _mean_field(
    ds,
    da,
    name,
    raw,
    raw_units,
    grid,
    lat,
    lon,
    keys,
    cal,
    secs,
    check,
    history,
    path,
    dims,
    flips,
    *,
    land: tuple[np.ndarray, str] | None = None,
    to: str | None = None,
    day_times: np.ndarray | None = None,
) -> xr.Dataset:
    """The canonical field of an intensive variable (statistic ``mean``): values in ``to``
    (default :func:`~gridflux.fields.statistics.mean_unit`; pint conversion, affine for
    temperatures), fill values masked, no sign or land-fraction change; with ``land`` (a
    land-weighted mean) the land fraction as the coordinate ``gridflux_land_fraction``."""
    from gridflux.fields.statistics import check_mean_unit, mean_conversion, mean_unit

    tdim, ydim, xdim = dims
    flip_lat, flip_lon = flips
    to = to or mean_unit(name, str(raw_units or ""))
    check_mean_unit(to, raw_units, path=path, variable=raw)
    scale, offset, how = mean_conversion(raw_units, to, path=path, variable=raw)
    if flip_lat:
        da = da.isel({ydim: slice(None, None, -1)})
    if flip_lon:
        da = da.isel({xdim: slice(None, None, -1)})
    data = _mask_fill(da.variable.data)
    if scale != 1.0 or offset != 0.0:
        data = data.astype(np.float64) * scale + offset
        history.append(how)
    out = xr.Dataset(
        {
            name: xr.Variable(("time", "lat", "lon"), data),
            "lat_bnds": (("lat", "bnds"), grid.lat_bounds.copy()),
            "lon_bnds": (("lon", "bnds"), grid.lon_bounds.copy()),
        },
        coords={
            "time": xr.coding.cftimeindex.CFTimeIndex(
                month_starts(keys, cal) if day_times is None else day_times
            ),
            "lat": ("lat", lat),
            "lon": ("lon", lon),
            "seconds_in_month": ("time", secs),
        },
    )
    out["lat"].attrs.update(standard_name="latitude", units="degrees_north", bounds="lat_bnds")
    out["lon"].attrs.update(standard_name="longitude", units="degrees_east", bounds="lon_bnds")
    if land is not None:
        lf, lf_how = land
        lf = lf[::-1] if flip_lat else lf
        lf = lf[:, ::-1] if flip_lon else lf
        out = out.assign_coords(gridflux_land_fraction=(("lat", "lon"), np.ascontiguousarray(lf)))
        out["gridflux_land_fraction"].attrs.update(
            units="1", long_name="land fraction the region means are weighted by"
        )
        history.append(f"land-weighted mean: weights x land fraction ({lf_how})")
    out[name].attrs.update(
        gridflux_land_weighted=int(land is not None),
        units=to,
        long_name=str(da.attrs.get("long_name", name)),
        standard_name=str(da.attrs.get("standard_name", "")),
        gridflux_kind="mean",
        gridflux_statistic="mean",
        gridflux_raw_variable=raw,
        gridflux_raw_units=str(raw_units),
        gridflux_calendar=cal,
        gridflux_history="; ".join(history),
        # repairs of the files' defects, as the total branch records them (the history's FIXED)
        gridflux_fixes="; ".join(h[len("FIXED ") :] for h in history if h.startswith("FIXED ")),
        gridflux_source=path or "",
        gridflux_gaps=", ".join(check.gap_labels()),
        gridflux_level=str(da.attrs.get("gridflux_level", "")),
    )
    out.attrs.update(gridflux_variable=name, gridflux_source=path or "")
    return out
