"""Region statistics of any CF variable: which statistic (total or mean), and exact region means.

Extensive quantities (flux densities and stocks per unit area) give region *totals*
(:mod:`gridflux.fields.totals`); intensive ones (temperature, mixing ratios, moisture content,
precipitation as a rate) give area-weighted region *means*. Both use the same fused native
weights ``w`` (m2, :func:`gridflux.fields.totals.protocol_weights`), so the mean is linear too::

    mean_r(t) = sum_i x_i(t) w_ri / sum_i w_ri [x_i(t) finite]

**Missing values rule**: the denominator holds the weights of the cells whose value is finite
*at that time step* (per month for monthly data), so a cell without data is left out of both
sums and never counts as a zero. A region with no finite cell at a time step has mean NaN (and
:func:`weighted_means` reports the covered weight, so a caller can name the gap). Infinite
values are not missing: they propagate.

Optional land weighting multiplies ``w`` by the land fraction (sftlf, 0..1) before both sums.

Kernel part (numpy): :func:`weighted_means`. Choice from metadata: :func:`choose_statistic`.
Wrapper: :func:`region_means`. Level selection: :func:`parse_sel`, :func:`select_levels`.
Daily -> monthly: :func:`resample_month`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from gridflux.errors import InputError, MaskError
from gridflux.fields.masks import RegionMask
from gridflux.fields.timeaxis import days_in_month, key_label, keys_from_dates, month_starts
from gridflux.fields.totals import RegionCells, cell_means, per_region, protocol_weights
from gridflux.kernels.grids import CellBounds

Statistic = Literal["total", "mean"]
STATISTICS = ("total", "mean")

#: CF standard-name fragments of intensive quantities (region mean), checked before units.
MEAN_STANDARD_NAMES: tuple[str, ...] = (
    "temperature",
    "mole_fraction",
    "mass_fraction",
    "mixing_ratio",
    "humidity",
    "moisture_content",
    "precipitation_flux",
    "precipitation_rate",
    "evapotranspiration",
    "evaporation",
    "runoff_flux",
    "snowfall_flux",
    "area_fraction",
    "leaf_area_index",
    "wind",
    "air_pressure",
    "geopotential",
    "radiative_flux",
    "heat_flux",
    "salinity",
    "thickness",
    "amount_of_water",
    "content_of_water",
    "water_content",
    "lwe_thickness",
    "snow",
)
#: CF standard-name fragments of extensive quantities of an element or species (region total).
TOTAL_STANDARD_NAMES: tuple[str, ...] = (
    "mass_content_of_carbon",
    "mass_content_of_nitrogen",
    "carbon_mass_flux",
    "nitrogen_mass_flux",
    "mass_flux_of_carbon",
    "mass_flux_of_methane",
    "mass_flux_of_nitrous_oxide",
    "carbon_dioxide_flux",
    "primary_production",
    "respiration_carbon",
    "biome_production",
    "ecosystem_production",
)


@dataclass(frozen=True)
class StatisticChoice:
    """The statistic of a variable and why (for the manifest and ``catalog check``)."""

    statistic: Statistic
    reason: str


def _unit_dims(units: str) -> dict[str, float] | None:
    """pint dimensionality of a CF unit string (species tokens dropped), or None if unknown."""
    from gridflux.fields.units import SPECIES_TOKENS, unit_registry

    s = re.sub(r"\b(" + "|".join(map(re.escape, SPECIES_TOKENS)) + r")\b", " ", units)
    s = re.sub(r"(?<=[a-zA-Z])(-?\d+)", r"**\1", s.strip())  # "m-2" -> "m**-2"
    s = " * ".join(s.split()) or "dimensionless"
    if s in ("1", "%"):
        return {}
    try:
        return dict(unit_registry().Quantity(1.0, s).dimensionality)
    except Exception:  # noqa: BLE001 - pint raises several types for unknown symbols
        return None


def choose_statistic(
    attrs: dict,
    *,
    override: str | None = None,
    path: str | None = None,
    variable: str | None = None,
) -> StatisticChoice:
    """Total or mean for a variable, from its CF metadata, with an override winning.

    Order: ``override`` (the catalog's ``statistic`` column), ``cell_methods`` (``area: sum``
    -> total), ``standard_name`` (tables :data:`TOTAL_STANDARD_NAMES` then
    :data:`MEAN_STANDARD_NAMES`), then ``units``: a mass or amount per area (``kg m-2``,
    ``mol m-2 s-1``) is extensive (total); anything else (K, 1, %, kg kg-1, m s-1, Pa) is a mean.

    Raises
    ------
    InputError
        Unknown override, or no units and no standard_name to decide from.
    """
    if override is not None and str(override).strip():
        o = str(override).strip().lower()
        if o not in STATISTICS:
            raise InputError(
                f"statistic={override!r} is not known; expected one of {STATISTICS}",
                path=path,
                variable=variable,
                attribute="statistic",
            )
        return StatisticChoice(o, "catalog override")  # type: ignore[arg-type]
    cm = str(attrs.get("cell_methods", ""))
    if re.search(r"area:\s*sum", cm):
        return StatisticChoice("total", "cell_methods 'area: sum'")
    sn = str(attrs.get("standard_name", "")).lower()
    for frag in TOTAL_STANDARD_NAMES:
        if frag in sn:
            return StatisticChoice("total", f"standard_name {sn!r}")
    for frag in MEAN_STANDARD_NAMES:
        if frag in sn:
            return StatisticChoice("mean", f"standard_name {sn!r}")
    units = str(attrs.get("units", "")).strip()
    if not units:
        raise InputError(
            "has neither a standard_name nor units to choose a statistic from; set the "
            "catalog's statistic column (total or mean)",
            path=path,
            variable=variable,
            attribute="units",
        )
    dims = _unit_dims(units)
    if dims is None:
        raise InputError(
            f"units={units!r} are not known; set the catalog's statistic column (total or mean)",
            path=path,
            variable=variable,
            attribute="units",
        )
    per_area = dims.get("[length]") == -2
    amount = dims.get("[mass]") == 1 or dims.get("[substance]") == 1
    if per_area and amount:
        return StatisticChoice("total", f"units {units!r}: an amount per area")
    return StatisticChoice("mean", f"units {units!r}: intensive")


# -- kernel -------------------------------------------------------------------------------------
def weighted_means(
    block: np.ndarray, weights: np.ndarray, rows: slice | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Area-weighted means ``out[t, r] = sum_ij x w / sum_ij w [x finite]`` in float64.

    :func:`gridflux.fields.totals.cell_means` over the nonzero cells of ``weights`` inside
    ``rows``: a region's mean does not depend on the other regions computed with it.

    Parameters
    ----------
    block : (t, nlat, nlon) any float dtype; NaN = no data (left out of both sums)
    weights : (region, nlat, nlon) float64, m2 (any non-negative weights)
    rows : latitude rows to include (default: where weights are nonzero)

    Returns
    -------
    means : (t, region) float64, NaN where a region has no finite cell at that time
    covered : (t, region) float64, the weight (m2) of the finite cells, the denominator
    """
    if weights.shape[1:] != block.shape[1:]:
        raise MaskError(
            f"weights of shape {weights.shape[1:]} do not match data of shape {block.shape[1:]}"
        )
    return cell_means(block, RegionCells.from_weights(weights, rows))


# -- xarray wrapper -----------------------------------------------------------------------------
def region_means(
    da,
    mask: RegionMask,
    *,
    protocol: str = "regrid-data",
    target: CellBounds | None = None,
    grid: CellBounds | None = None,
    radius: float | None = None,
    land_fraction: Any = None,
):
    """Exact area-weighted means of ``da`` over each region of ``mask``, per leading index.

    Parameters
    ----------
    da : DataArray (..., lat, lon), or a Dataset with one field variable (and its bounds);
        any intensive unit (K, 1, kg kg-1...), kept as is. NaN = no data (see the module rule).
    mask : RegionMask
    protocol, target, grid, radius : as :func:`gridflux.fields.totals.region_totals`
    land_fraction : optional (lat, lon) sftlf in the file's own order (fraction or %, by its
        ``units``): the weights become ``w * sftlf`` (mean over the land part of each cell);
        default: the field's coordinate ``gridflux_land_fraction`` when it has one (a canonical
        field normalized with ``land_weighted``), else no land weighting

    Returns
    -------
    DataArray (..., region) float64 in the units of ``da``, attribute ``statistic='mean'``.
    """
    import xarray as xr

    from gridflux import config
    from gridflux.fields.regrid import field_variables, find_latlon, grid_of, to_ascending_lat

    radius = float(config.get("earth-radius", override=radius))
    src = grid_of(da) if grid is None else grid
    ds = da if isinstance(da, xr.Dataset) else None
    if ds is not None:
        names = field_variables(ds)
        if len(names) != 1:
            raise MaskError(f"region_means needs one field variable; the Dataset has {names}")
        da = ds[names[0]]
    lat, lon = find_latlon(da)
    w = protocol_weights(src, mask, protocol=protocol, target=target, radius=radius)
    if land_fraction is not None:
        w = w * canonical_land_fraction(land_fraction, da, src.shape)[None]
    da = to_ascending_lat(da, ds)
    land_coord = da.coords.get("gridflux_land_fraction")
    if land_fraction is None and land_coord is not None:  # canonical order already
        w = w * np.asarray(land_coord.values, dtype=np.float64)[None]
    cells = RegionCells.from_weights(w)
    out = per_region(da, lat, lon, mask.names, lambda flat: cell_means(flat, cells)[0])
    out.attrs = {
        "long_name": f"area-weighted mean of {da.name or 'field'} over region",
        "units": str(da.attrs.get("units", "")),
        "statistic": "mean",
        "land_weighted": int(land_fraction is not None or land_coord is not None),
        "protocol": protocol,
        "earth_radius_m": radius,
    }
    return out.rename(da.name)


def canonical_land_fraction(lf: Any, da, shape: tuple[int, int]) -> np.ndarray:
    """sftlf as a 0..1 float64 array in the canonical (ascending) order of ``da``'s grid."""
    import xarray as xr

    from gridflux.fields.axes import storage_flips

    units = str(getattr(lf, "attrs", {}).get("units", "")).strip()
    vals = np.asarray(lf.values if isinstance(lf, xr.DataArray) else lf, dtype=np.float64)
    vals = np.squeeze(vals)
    if vals.shape != shape:
        raise InputError(
            f"land fraction has shape {vals.shape}; expected the data's (lat, lon) {shape}",
            variable="sftlf",
            attribute="shape",
        )
    vals = np.where(np.isfinite(vals), vals, 0.0)
    if units == "%" or (units == "" and vals.max() > 1.0 + 1e-6):
        vals = vals / 100.0
    flip_lat, flip_lon = storage_flips(da)
    if flip_lat:
        vals = vals[::-1]
    if flip_lon:
        vals = vals[:, ::-1]
    return np.clip(vals, 0.0, 1.0)


# -- level selection ----------------------------------------------------------------------------
@dataclass(frozen=True)
class LevelSelection:
    """``--sel`` of one vertical dimension: a value, or a layer ``[lo, hi]``."""

    dim: str
    value: float | None = None
    lo: float | None = None
    hi: float | None = None

    @property
    def is_layer(self) -> bool:
        return self.value is None


def parse_sel(text: str) -> LevelSelection:
    """``'plev=85000'`` (one level) or ``'depth=0:1'`` (a layer) -> :class:`LevelSelection`."""
    m = re.fullmatch(r"\s*([A-Za-z_][\w]*)\s*=\s*([^:]+?)\s*(?::\s*(.+?)\s*)?", text or "")
    if not m:
        raise InputError(
            f"--sel {text!r} cannot be read; expected DIM=VALUE (plev=85000) or DIM=LO:HI "
            "(depth=0:1)",
            attribute="sel",
        )
    try:
        a = float(m.group(2))
        b = None if m.group(3) is None else float(m.group(3))
    except ValueError:
        raise InputError(f"--sel {text!r}: the values are not numbers", attribute="sel") from None
    if b is None:
        return LevelSelection(m.group(1), value=a)
    return LevelSelection(m.group(1), lo=min(a, b), hi=max(a, b))


def select_levels(
    ds, name: str, sel: LevelSelection, statistic: Statistic, path: str | None = None
):
    """The variable ``name`` of ``ds`` with its vertical dimension taken away by ``sel``.

    One value: the level equal to it (relative 1e-6; no interpolation, an absent level is an
    error listing the levels). A layer ``lo:hi``: each level's cell (its bounds, e.g.
    ``depth_bnds``) overlapping ``[lo, hi]`` contributes its overlap fraction ``f``: for a total
    (stock per layer, kg m-2) the layer integral ``sum_k f_k x_k``; for a mean the
    thickness-weighted mean ``sum_k o_k x_k / sum_k o_k`` with overlap thickness ``o_k``.
    """
    from gridflux.fields.axes import bounds_of

    da = ds[name]
    if sel.dim not in da.dims:
        raise InputError(
            f"has no dimension {sel.dim!r} to select (--sel); its dimensions are {da.dims}",
            path=path,
            variable=name,
            attribute="dimensions",
        )
    levels = np.asarray(ds[sel.dim].values, dtype=np.float64)
    if not sel.is_layer:
        assert sel.value is not None  # one level (not a layer)
        hit = np.flatnonzero(np.isclose(levels, sel.value, rtol=1e-6, atol=0.0))
        if hit.size != 1:
            raise InputError(
                f"has no level {sel.dim}={sel.value:g}; its levels are "
                f"{', '.join(f'{v:g}' for v in levels)}",
                path=path,
                variable=sel.dim,
                attribute="values",
            )
        out = da.isel({sel.dim: int(hit[0])}, drop=True)
        out.attrs = dict(da.attrs, gridflux_level=f"{sel.dim}={levels[hit[0]]:g}")
        return out
    b = bounds_of(ds, sel.dim)
    if b is None:
        raise InputError(
            f"has no bounds, so the layer {sel.lo:g}:{sel.hi:g} cannot be integrated; "
            f"expected a bounds variable of {sel.dim!r}",
            path=path,
            variable=sel.dim,
            attribute="bounds",
        )
    bv = np.sort(np.asarray(b.values, dtype=np.float64), axis=1)
    assert sel.lo is not None and sel.hi is not None  # a layer
    overlap = np.clip(np.minimum(bv[:, 1], sel.hi) - np.maximum(bv[:, 0], sel.lo), 0.0, None)
    thick = bv[:, 1] - bv[:, 0]
    if overlap.sum() <= 0 or sel.hi > bv.max() + 1e-9 or sel.lo < bv.min() - 1e-9:
        raise InputError(
            f"layer {sel.lo:g}:{sel.hi:g} is not covered by the levels' bounds "
            f"{bv.min():g}..{bv.max():g}",
            path=path,
            variable=sel.dim,
            attribute="bounds",
        )
    import xarray as xr

    if statistic == "total":
        f = xr.DataArray(overlap / thick, dims=(sel.dim,))
        out = (da.astype(np.float64) * f).sum(sel.dim, skipna=False)
    else:
        f = xr.DataArray(overlap / overlap.sum(), dims=(sel.dim,))
        out = (da.astype(np.float64) * f).sum(sel.dim, skipna=False)
    out.attrs = dict(da.attrs, gridflux_level=f"{sel.dim}={sel.lo:g}:{sel.hi:g}")
    return out


# -- daily -> monthly ---------------------------------------------------------------------------
def resample_month(da, *, tdim: str = "time", complete: bool = True):
    """Monthly means of a (daily or sub-monthly) field, calendar-aware.

    Each month's value is the mean of its time steps (for a rate, the month's total is this
    mean times the month's seconds, so totals and means both come from it). The months follow
    the data's own calendar (cftime dates: 360_day months have 30 days, noleap Februaries 28).
    With ``complete`` a month missing time steps (fewer steps than its days, for daily data)
    is NaN, never a mean of a part: the months left out are listed in the result's attribute
    ``gridflux_incomplete_months``.

    Returns
    -------
    DataArray with ``time`` the month starts (cftime in the source calendar).
    """
    import cftime
    import xarray as xr

    t = da[tdim].values
    if t.size == 0:
        return da
    if np.issubdtype(np.asarray(t).dtype, np.datetime64):
        import pandas as pd

        dates = [
            cftime.datetime(x.year, x.month, x.day, x.hour, x.minute, x.second, calendar="standard")
            for x in pd.DatetimeIndex(t)
        ]
        cal = "standard"
    else:
        dates = list(t)
        cal = dates[0].calendar
    keys = keys_from_dates(np.asarray(dates, dtype=object))
    uniq, inverse = np.unique(keys, return_inverse=True)
    group = xr.DataArray(inverse, dims=(tdim,))
    counts = np.bincount(inverse)
    means = da.astype(np.float64).groupby(group.rename("month")).mean(tdim, skipna=False)
    means = means.rename({"month": tdim})
    starts = list(month_starts(uniq, cal))
    ndays = [days_in_month(int(k), cal) for k in uniq]
    incomplete = []
    if complete:
        step_days = _step_days(dates)
        expected = np.array([round(n / step_days) for n in ndays])
        bad = counts < expected
        incomplete = [key_label(k) for k, b in zip(uniq, bad, strict=True) if b]
        if bad.any():
            means = means.where(xr.DataArray(~bad, dims=(tdim,)))
    means = means.assign_coords({tdim: xr.CFTimeIndex(starts)})
    means.attrs = dict(da.attrs)
    means.attrs["gridflux_resample"] = "month: mean of the time steps (calendar months)"
    means.attrs["gridflux_incomplete_months"] = ",".join(incomplete)
    return means


def _step_days(dates: list) -> float:
    """The typical time step in days (median of the steps; one day for a single date)."""
    if len(dates) < 2:
        return 1.0
    steps = [(b - a).total_seconds() / 86400 for a, b in zip(dates[:-1], dates[1:], strict=True)]
    return float(np.median(steps))


# -- units of region statistics -----------------------------------------------------------------
#: Units region means are stored in (CMIP6 data request units); a file in other units of the
#: same dimension (degC, g kg-1, mm day-1...) is converted with pint. Others keep the file's.
MEAN_UNITS: dict[str, str] = {
    **dict.fromkeys(
        ("tas", "tasmax", "tasmin", "ts", "ta", "tsl", "tsn", "tob", "tos", "thetao"), "K"
    ),
    **dict.fromkeys(("hus", "huss"), "1"),
    **dict.fromkeys(("hur", "hurs", "clt", "treeFrac", "grassFrac", "cropFrac", "sftlf"), "%"),
    **dict.fromkeys(("pr", "prc", "prsn", "evspsbl", "mrro", "mrros", "tran"), "kg m-2 s-1"),
    **dict.fromkeys(("mrso", "mrsos", "snw", "prw", "mrfso", "lwsnl"), "kg m-2"),
    **dict.fromkeys(("psl", "ps"), "Pa"),
    **dict.fromkeys(("ua", "va", "uas", "vas", "sfcWind"), "m s-1"),
}
#: How the store and exports name a total's unit: Tg of the element, the species named when the
#: element is counted in a species other than CO2 (per month for fluxes: one value per month).
ELEMENT_LABEL = {("C", "CO2"): "C", ("C", "CH4"): "CH4-C", ("N", "N2O"): "N2O-N"}


def total_unit(element: str, gas: str) -> str:
    """``Tg C``, ``Tg CH4-C`` or ``Tg N2O-N``: the unit of a monthly total (or a stock)."""
    return f"Tg {ELEMENT_LABEL.get((element, gas), element)}"


def mean_unit(variable: str, file_units: str | None = None) -> str:
    """The unit a region mean of ``variable`` is stored in (:data:`MEAN_UNITS`, else the
    file's own, spaces normalised)."""
    return MEAN_UNITS.get(variable, " ".join(str(file_units or "").split()))


def parse_unit(units: str):
    """A CF unit string as a pint unit (``m-2`` exponents, ``%``, ``1``; species tokens such
    as ``kg C`` are not units here).

    Raises
    ------
    ValueError
        The string is empty or not a unit pint (with CF spelling) knows.
    """
    from gridflux.fields.units import unit_registry

    ureg = unit_registry()
    s = " ".join(str(units or "").split())
    if not s:
        raise ValueError("empty unit")
    if s == "%":
        return ureg.Quantity(1.0, "percent").units
    if s == "1":
        return ureg.dimensionless
    s2 = re.sub(r"(?<=[a-zA-Z])(-?\d+)", r"**\1", s)
    try:
        return ureg.Unit(" * ".join(s2.split()))
    except Exception as exc:  # noqa: BLE001 - pint raises several types for unknown symbols
        raise ValueError(str(exc)) from exc


def check_mean_unit(
    to: str, file_units: str | None, *, path: str | None = None, variable: str | None = None
) -> str:
    """``to`` (the unit a region mean is stored in) when it is a unit, else an error: a mean is
    never stored without a unit or under a string that is not one (CF/udunits spelling, read
    with pint: ``K``, ``W m-2``, ``kg m-2 s-1``, ``mol mol-1``, ``1``, ``%``...).

    Raises
    ------
    InputError
        Naming the file, the variable and its ``units`` attribute, and the fix (the catalog's
        ``units`` column overrides the file's attribute).
    """
    if to in MEAN_UNITS.values():
        return to
    try:
        parse_unit(to)
    except ValueError as exc:
        got = f"units={file_units!r}" if file_units is not None else "no units attribute"
        raise InputError(
            f"{got} is not a unit (CF/udunits, read with pint: {exc}); a region mean needs its "
            "unit: set the catalog's units column (e.g. 'K', 'W m-2', '1')",
            path=path,
            variable=variable,
            attribute="units",
        ) from None
    return to


def mean_conversion(
    units: str | None, to: str, *, path: str | None = None, variable: str | None = None
) -> tuple[float, float, str]:
    """``(scale, offset, description)`` with ``value_to = value * scale + offset`` (pint; affine
    for temperatures: degC -> K adds 273.15). Identity when the units are equal or ``to`` is "".

    Raises
    ------
    InputError
        Units missing, unknown, or of another dimension than ``to``.
    """
    u = " ".join(str(units or "").split())
    if not to or u == to:
        return 1.0, 0.0, f"units {u!r} kept"
    if not u:
        raise InputError(
            f"units are missing; expected units convertible to {to!r}",
            path=path,
            variable=variable,
            attribute="units",
        )
    from gridflux.fields.units import unit_registry

    ureg = unit_registry()
    try:
        a, b = parse_unit(u), parse_unit(to)
        q0 = ureg.Quantity(0.0, a).to(b).magnitude
        q1 = ureg.Quantity(1.0, a).to(b).magnitude
    except Exception as exc:  # noqa: BLE001 - pint's several error types
        raise InputError(
            f"units={u!r} cannot be converted to {to!r} ({exc})",
            path=path,
            variable=variable,
            attribute="units",
        ) from exc
    scale, offset = float(q1 - q0), float(q0)
    return scale, offset, f"units {u!r} -> {to!r}: x {scale:.12g} + {offset:.12g}"
