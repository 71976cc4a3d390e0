"""Derived per-member quantities (NEP, NBP, CUE, MRT) from annual values.

Sign convention: the store holds every flux positive to the atmosphere, so ``npp`` and ``gpp``
are negative numbers, ``rh`` and ``fFire`` positive. In that convention

* ``nep`` (= NEE, atmospheric) = npp + rh = -(NPP - SHR)
* ``nbp`` (atmospheric)        = npp + rh + fFire = -(NPP - SHR - Ffire)
* ``cue``                      = npp / gpp (a ratio; the signs cancel)
* ``mrt``                      = (cSoil + cLitter) / rh, in years (annual-mean stock over annual
  SHR)

so the derived fluxes keep the store's convention (a land sink is negative). Where a member
lacks a term the formula gives NaN; if the store already has the derived variable itself (e.g.
an LS3MIP member that reports ``nbp`` directly, already flipped to atmospheric sign by
normalization), that stored value fills the gap.

The formulas are data (:data:`DERIVED`): name -> numerator terms, denominator terms, kind, units.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

#: name -> (numerator variables summed, denominator variables summed or (), kind, units, doc)
DERIVED: dict[str, tuple[tuple[str, ...], tuple[str, ...], str, str, str]] = {
    "nep": (("npp", "rh"), (), "flux", "Tg C/yr", "NEE = -(NPP - SHR), positive to the atmosphere"),
    "nbp": (
        ("npp", "rh", "fFire"),
        (),
        "flux",
        "Tg C/yr",
        "-(NPP - SHR - Ffire), positive to the atmosphere",
    ),
    "cue": (("npp",), ("gpp",), "ratio", "1", "carbon-use efficiency NPP/GPP"),
    "mrt": (
        ("cSoil", "cLitter"),
        ("rh",),
        "time",
        "yr",
        "mean residence time (soil C + litter C)/SHR",
    ),
}


def _term(annual: xr.DataArray, name: str) -> xr.DataArray:
    names = [str(v) for v in annual["variable"].values]
    if name in names:
        return annual.sel(variable=name, drop=True)
    return xr.full_like(annual.isel(variable=0, drop=True), np.nan)


def derive(annual: xr.DataArray, names: tuple[str, ...] | None = None) -> xr.DataArray:
    """Append derived quantities to the ``variable`` dimension of annual (or period-mean) values.

    Parameters
    ----------
    annual : xr.DataArray with a ``variable`` dimension
        Annual fluxes (Tg element/yr, positive to the atmosphere) and annual-mean stocks (Tg).
    names : tuple of str, optional
        Which of :data:`DERIVED` to add (all by default).

    Returns
    -------
    xr.DataArray
        ``annual`` with the derived variables replacing any stored variable of the same name
        (stored values kept where the formula has a missing term).
    """
    names = tuple(DERIVED) if names is None else names
    present = [str(v) for v in annual["variable"].values]
    pieces = []
    for name in names:
        num, den, kind, units, _ = DERIVED[name]
        top = sum(_term(annual, v) for v in num)
        val = top / sum(_term(annual, v) for v in den) if den else top
        if name in present:
            val = val.fillna(annual.sel(variable=name, drop=True))
        piece = val.expand_dims(variable=[name]).assign_coords(
            variable_kind=("variable", [kind]), variable_units=("variable", [units])
        )
        if "variable_statistic" in annual.coords:  # derived budget terms are totals
            piece = piece.assign_coords(variable_statistic=("variable", ["total"]))
        pieces.append(piece)
    keep = annual.sel(variable=[v for v in present if v not in names])
    if "variable_kind" not in keep.coords:
        from gridflux.budget.annual import STOCK_VARIABLES

        keep = keep.assign_coords(
            variable_kind=(
                "variable",
                ["stock" if v in STOCK_VARIABLES else "flux" for v in keep["variable"].values],
            )
        )
    if "variable_units" not in keep.coords:
        keep = keep.assign_coords(
            variable_units=("variable", ["" for _ in keep["variable"].values])
        )
    out = xr.concat([keep, *pieces], dim="variable", coords="minimal", compat="override")
    out.attrs = dict(annual.attrs)
    return out
