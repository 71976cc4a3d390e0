"""Recipe inputs: from a store's ``totals`` (gridded ensembles) or from the paper's published results.

Store mode (:func:`store_inputs`): monthly totals -> annual values (incomplete years dropped) ->
derived quantities (nep, nbp, cue, mrt) -> per-member period means -> for each recipe input the
members selected by ensemble and traits, with exclusions and group-first averaging -> mean and
interval. Every member used or excluded is listed in ``members`` so that a reader can trace a number
back to its members. Components (data-driven upscaling, inland waters, ...) come from the packaged
component tables in both modes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from gridflux.budget.annual import annual_totals, parse_period, period_means
from gridflux.budget.components import Item, component, component_tables
from gridflux.budget.derived import derive
from gridflux.budget.ensemble import (
    apply_exclusions,
    ensemble_estimate,
    group_first,
    mann_whitney,
    select_members,
)
from gridflux.budget.recipes import Recipe
from gridflux.errors import BudgetError
from gridflux.pipeline.store import MEMBER_TRAITS

#: member coordinates that describe traits (read from the store's ``member`` coords)
TRAIT_COORDS = MEMBER_TRAITS
TRAIT_COORDS = (
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


def member_table(da: xr.DataArray) -> pd.DataFrame:
    """One row per member with its trait coordinates (index = member id as str)."""
    cols = {
        c: np.asarray(da[c].values)
        for c in da.coords
        if da[c].dims == ("member",) and c != "member"
    }
    return pd.DataFrame(cols, index=pd.Index(da["member"].values.astype(str), name="member"))


def paper_inputs(recipe: Recipe, tables: pd.DataFrame | None = None) -> dict[str, Item]:
    """Recipe inputs from the paper's published ensemble results and the component tables."""
    t = component_tables() if tables is None else tables
    out: dict[str, Item] = {}
    for name, spec in recipe.inputs.items():
        key = spec.get("component", spec.get("paper"))
        out[name] = component(key, t) if key else {}
    return out


def paper_interval_items(recipe: Recipe, tables: pd.DataFrame | None = None) -> dict[str, Item]:
    """The components named by steps' ``paper_interval`` (published, non-derivable intervals)."""
    t = component_tables() if tables is None else tables
    names = {s["paper_interval"] for s in recipe.steps if s.get("paper_interval")}
    return {n: component(n, t) for n in names}


@dataclass
class StoreInputs:
    """Inputs computed from a store, with everything needed to report how.

    Attributes
    ----------
    items : id -> {gas: Estimate}
    members : DataFrame ``input, gas, member, group, value, period, status, reason`` (status =
        used | excluded | no data)
    incomplete_years : DataFrame of (member, variable, region, year, n_months) with 1-11 months
    coverage : DataFrame of period coverage per member (see :func:`period_means`)
    comparisons : DataFrame ``id, variable, period, n_a, n_b, U, p, mean_a, mean_b``
    annual : xr.DataArray (member, variable, year) for the recipe region, derived variables included
    """

    items: dict[str, Item]
    members: pd.DataFrame
    incomplete_years: pd.DataFrame
    coverage: pd.DataFrame
    comparisons: pd.DataFrame
    annual: xr.DataArray
    extra: dict[str, Any] = field(default_factory=dict)


def _store_specs(spec: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    st = spec["store"]
    if "variable" in st:
        if "gas" not in st:
            raise BudgetError(f"store selection {st} needs 'gas' (CO2, CH4 or N2O)")
        return {st["gas"]: dict(st)}
    return {g: dict(s) for g, s in st.items()}


def _resolve_ensembles(recipe: Recipe, ens: Any) -> list[str] | None:
    if ens is None:
        return None
    if isinstance(ens, str):
        ens = [ens]
    out: list[str] = []
    for e in ens:
        out.extend(recipe.ensemble_sets.get(e, [e]))
    return out


def _period_label(nominal: str, cov: pd.DataFrame) -> str:
    if cov.empty:
        return nominal
    first, last = int(cov["first"].min()), int(cov["last"].max())
    start, end = parse_period(nominal)
    if end is None:
        return f"{first}-{last}" if first == start else f"{first}-{last} (of {nominal})"
    if cov["n_years"].min() == end - start + 1:
        return nominal
    return f"{first}-{last} (of {nominal})"


def store_inputs(
    totals: xr.DataArray,
    recipe: Recipe,
    region: str | None = None,
    interval_method: str | None = None,
    level: float | None = None,
) -> StoreInputs:
    """Compute a recipe's ensemble inputs from a store's ``totals`` (components from the tables).

    Parameters
    ----------
    totals : xr.DataArray (member, variable, region, time)
        The store's monthly totals (Tg element per month, positive to the atmosphere).
    recipe : Recipe
    region : str, optional
        Region label (the recipe's ``region`` by default).
    interval_method, level : optional
        Override the recipe's ensemble interval (see :data:`gridflux.budget.ensemble.INTERVAL_METHODS`).
    """
    region = region or recipe.region
    regions = [str(r) for r in totals["region"].values]
    if region not in regions:
        raise BudgetError(
            f"region {region!r} is not in the store's totals; regions there: {regions}"
        )
    method = interval_method or recipe.interval.get("method", "percentile")
    lvl = float(level or recipe.interval.get("level", 0.95))
    tot = totals.sel(region=[region])
    ann = annual_totals(tot)
    annual = derive(ann.annual)
    specs = {name: _store_specs(spec) for name, spec in recipe.inputs.items() if "store" in spec}
    periods = sorted(
        {s["period"] for ss in specs.values() for s in ss.values()}
        | {c["period"] for c in recipe.comparisons}
    )
    pm = period_means(annual, periods)
    members = member_table(annual)
    tables = component_tables()
    items: dict[str, Item] = {}
    rows: list[dict[str, Any]] = []
    for name, spec in recipe.inputs.items():
        if "component" in spec:
            items[name] = component(spec["component"], tables)
            continue
        item: Item = {}
        for gas, s in specs[name].items():
            sel = select_members(
                members, _resolve_ensembles(recipe, s.get("ensembles")), s.get("traits")
            )
            var = s["variable"]
            if var not in [str(v) for v in pm.means["variable"].values]:
                for m in sel:
                    rows.append(
                        dict(
                            input=name,
                            gas=gas,
                            member=m,
                            group="",
                            value=np.nan,
                            period=s["period"],
                            status="no data",
                            reason=f"variable {var!r} not in store",
                        )
                    )
                continue
            vals = pm.means.sel(variable=var, region=region, period=s["period"]).to_series()
            vals.index = vals.index.astype(str)
            vals = vals.reindex(sel)
            for m in vals.index[~np.isfinite(vals.to_numpy(dtype=float))]:
                rows.append(
                    dict(
                        input=name,
                        gas=gas,
                        member=m,
                        group="",
                        value=np.nan,
                        period=s["period"],
                        status="no data",
                        reason=f"no complete year of {var} in {s['period']}",
                    )
                )
            vals = vals[np.isfinite(vals.to_numpy(dtype=float))]
            kept, excluded = apply_exclusions(vals, s.get("exclude", []))
            for ex in excluded:
                rows.append(
                    dict(
                        input=name,
                        gas=gas,
                        member=ex.member,
                        group="",
                        value=ex.value,
                        period=s["period"],
                        status="excluded",
                        reason=f"{ex.rule}: {ex.reason}",
                    )
                )
            groups = (
                members["group"].reindex(kept.index)
                if "group" in members
                else pd.Series("", kept.index)
            )
            for m, v in kept.items():
                rows.append(
                    dict(
                        input=name,
                        gas=gas,
                        member=m,
                        group=str(groups.get(m, "")),
                        value=float(v),
                        period=s["period"],
                        status="used",
                        reason="",
                    )
                )
            cov = pm.coverage[
                (pm.coverage["variable"] == var)
                & (pm.coverage["period"] == s["period"])
                & (pm.coverage["member"].isin(kept.index))
                & (pm.coverage["n_years"] > 0)
            ]
            label = _period_label(s["period"], cov)
            values = group_first(kept, groups) if s.get("group_first") else kept
            if len(values):
                item[gas] = ensemble_estimate(values.to_numpy(), method, lvl, period=label)
        items[name] = item
    comps = []
    for c in recipe.comparisons:
        ens = _resolve_ensembles(recipe, c.get("ensembles"))
        var, per = c["variable"], c["period"]
        if var not in [str(v) for v in pm.means["variable"].values]:
            continue
        vals = pm.means.sel(variable=var, region=region, period=per).to_series()
        vals.index = vals.index.astype(str)
        a = vals.reindex(select_members(members, ens, c.get("a"))).dropna()
        b = vals.reindex(select_members(members, ens, c.get("b"))).dropna()
        res = mann_whitney(a.to_numpy(), b.to_numpy())
        comps.append(
            dict(
                id=c["id"],
                variable=var,
                period=per,
                a=str(c.get("a")),
                b=str(c.get("b")),
                mean_a=float(a.mean()) if len(a) else np.nan,
                mean_b=float(b.mean()) if len(b) else np.nan,
                **res,
            )
        )
    cols = ["input", "gas", "member", "group", "value", "period", "status", "reason"]
    return StoreInputs(
        items,
        pd.DataFrame(rows, columns=cols),
        ann.incomplete,
        pm.coverage,
        pd.DataFrame(comps),
        annual.sel(region=region),
    )
