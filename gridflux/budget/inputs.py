"""Recipe inputs: from a store's ``totals`` (gridded ensembles) or from the paper's published
results.

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
    Estimate,
    apply_exclusions,
    ensemble_estimate,
    group_first,
    mann_whitney,
    select_members,
)
from gridflux.budget.recipes import COVERAGE_RULES, Recipe
from gridflux.errors import BudgetError
from gridflux.pipeline.store import MEMBER_TRAITS

#: member coordinates that describe traits (read from the store's ``member`` coords)
TRAIT_COORDS = MEMBER_TRAITS


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


def resolve_ensembles(recipe: Recipe, ens: Any) -> list[Any] | None:
    """Ensemble entries of a selection: names, or ``{ensemble: name, <trait>: value}`` entries,
    with the recipe's ``ensemble_sets`` expanded."""
    if ens is None:
        return None
    if isinstance(ens, (str, dict)):
        ens = [ens]
    out: list[Any] = []
    for e in ens:
        if isinstance(e, str) and e in recipe.ensemble_sets:
            out.extend(recipe.ensemble_sets[e])
        else:
            out.append(e)
    return out


def select_from_sets(
    members: pd.DataFrame, entries: list[Any] | None, traits: Mapping[str, Any] | None = None
) -> pd.Index:
    """Members of any of ``entries`` (names or ``{ensemble, <trait>: value}``) having ``traits``."""
    if entries is None:
        return select_members(members, None, traits)
    names = [e for e in entries if isinstance(e, str)]
    picked = list(select_members(members, names, traits)) if names else []
    for e in entries:
        if isinstance(e, dict):
            restrict = {k: v for k, v in e.items() if k != "ensemble"}
            ens = e["ensemble"]
            picked += list(
                select_members(
                    members, [ens] if isinstance(ens, str) else ens, {**restrict, **(traits or {})}
                )
            )
    keep = set(picked)
    return pd.Index([m for m in members.index if m in keep], name=members.index.name)


def named_exclusions(members: pd.DataFrame, specs: list[Mapping[str, Any]]) -> dict[str, str]:
    """member -> reason for the recipe's ``exclusions`` (matched by traits or ``member`` id).

    Each spec is ``{<trait>: value or [values], ..., reason: text}``; a member matching every
    trait of a spec is excluded from every input and period. A spec that matches no member is
    reported by the caller (a renamed system must not silently come back).
    """
    out: dict[str, str] = {}
    for spec in specs:
        crit = {k: v for k, v in spec.items() if k not in ("reason", "member")}
        if "member" in spec:
            ids = spec["member"] if isinstance(spec["member"], list) else [spec["member"]]
            sel = [m for m in ids if m in members.index]
        else:
            ens = crit.pop("ensemble", None)
            if any(c not in members.columns for c in crit):
                continue
            sel = list(select_members(members, [ens] if isinstance(ens, str) else ens, crit))
        for m in sel:
            out[str(m)] = str(spec.get("reason", "excluded by name in the recipe"))
    return out


def _coverage_rule(s: Mapping[str, Any], recipe: Recipe, override: str | None) -> str:
    if override:
        if override not in COVERAGE_RULES:
            raise BudgetError(f"coverage {override!r} is unknown; expected one of {COVERAGE_RULES}")
        return override
    return str((s.get("coverage") or recipe.coverage).get("rule", "full"))


def quantile_layer_estimate(
    values: pd.Series, members: pd.DataFrame, layers: Mapping[str, str], period: str
) -> tuple[Estimate | None, str]:
    """One member published as quantile layers (e.g. CARDAMOM's 2.5 / 50 / 97.5 % files) as ONE
    estimate: mean = the median layer, interval = the 2.5 % and 97.5 % layers.

    ``layers``: ``{trait: member_id, lo: p025, mid: p50, hi: p975}``. Members are grouped by
    ``source_id``; several sources are averaged layer by layer (n = number of sources).
    Returns (estimate or None, problem text).
    """
    trait = layers.get("trait", "member_id")
    if trait not in members.columns:
        return None, f"members have no {trait!r} trait to tell the quantile layers apart"
    tab = members.reindex(values.index)
    key = tab["source_id"] if "source_id" in tab else pd.Series("", index=tab.index)
    lo_l, mid_l, hi_l = (
        layers.get(k, d) for k, d in (("lo", "p025"), ("mid", "p50"), ("hi", "p975"))
    )
    sets = []
    for _, g in tab.groupby(key):
        lab = {str(v): m for m, v in g[trait].items()}
        if not all(x in lab for x in (lo_l, mid_l, hi_l)):
            return None, f"quantile layers {lo_l}/{mid_l}/{hi_l} incomplete: have {sorted(lab)}"
        lo, mid, hi = (float(values[lab[x]]) for x in (lo_l, mid_l, hi_l))
        if not lo <= mid <= hi:
            return None, (
                f"quantile layers out of order ({lo_l}={lo:.4g}, {mid_l}={mid:.4g}, "
                f"{hi_l}={hi:.4g}): are the files swapped?"
            )
        sets.append((mid, lo, hi))
    if not sets:
        return None, "no member"
    a = np.array(sets)
    return Estimate(*(float(v) for v in a.mean(axis=0)), len(sets), period), ""


def store_inputs(
    totals: xr.DataArray,
    recipe: Recipe,
    region: str | None = None,
    interval_method: str | None = None,
    level: float | None = None,
    coverage: str | None = None,
) -> StoreInputs:
    """Compute a recipe's ensemble inputs from a store's ``totals`` (components from the tables).

    Parameters
    ----------
    totals : xr.DataArray (member, variable, region, time)
        The store's monthly totals (Tg element per month, positive to the atmosphere).
    recipe : Recipe
    region : str, optional
        Region label (the recipe's ``region`` by default). Component inputs are used only for
        the region they are declared for (the recipe's, unless ``regions:`` maps them).
    interval_method, level : optional
        Override every ensemble's interval (the recipe's per-input ``interval`` otherwise; see
        :data:`gridflux.budget.ensemble.INTERVAL_METHODS`).
    coverage : {"full", "partial"}, optional
        Override the recipe's coverage rule: ``full`` keeps a member in a period mean only when
        it has every year of the period (for ``YYYY-end``: from YYYY to its own last year).
    """
    region = region or recipe.region
    regions = [str(r) for r in totals["region"].values]
    if region not in regions:
        raise BudgetError(
            f"region {region!r} is not in the store's totals; regions there: {regions}"
        )
    lvl_default = float(level or recipe.interval.get("level", 0.95))
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
    excluded_by_name = named_exclusions(members, recipe.exclusions)
    tables = component_tables()
    comp_map = (recipe.regions.get(region) or {}).get("components") or {}
    items: dict[str, Item] = {}
    reasons: dict[str, str] = {}
    rows: list[dict[str, Any]] = []
    variables = [str(v) for v in pm.means["variable"].values]

    def row(name, gas, member, value, period, status, reason, group=""):
        rows.append(
            dict(
                input=name,
                gas=gas,
                member=member,
                group=group,
                value=value,
                period=period,
                status=status,
                reason=reason,
            )
        )

    for name, spec in recipe.inputs.items():
        if "component" in spec:
            if region == recipe.region:
                items[name] = component(spec["component"], tables)
            elif spec["component"] in comp_map or name in comp_map:
                items[name] = component(comp_map.get(name, comp_map.get(spec["component"])), tables)
            else:
                items[name] = {}
                reasons[name] = (
                    f"component {spec['component']!r} is declared for region {recipe.region!r}, "
                    f"not {region!r} (map it under the recipe's regions: {region}: components:)"
                )
            continue
        item: Item = {}
        for gas, s in specs[name].items():
            sel = select_from_sets(
                members, resolve_ensembles(recipe, s.get("ensembles")), s.get("traits")
            )
            var, per = s["variable"], s["period"]
            if var not in variables:
                for m in sel:
                    row(name, gas, m, np.nan, per, "no data", f"variable {var!r} not in store")
                reasons[name] = f"variable {var!r} not in the store"
                continue
            vals = pm.means.sel(variable=var, region=region, period=per).to_series()
            vals.index = vals.index.astype(str)
            vals = vals.reindex(sel)
            cov = pm.coverage[
                (pm.coverage["variable"] == var) & (pm.coverage["period"] == per)
            ].set_index("member")
            rule = _coverage_rule(s, recipe, coverage)
            for m in vals.index[~np.isfinite(vals.to_numpy(dtype=float))]:
                row(name, gas, m, np.nan, per, "no data", f"no complete year of {var} in {per}")
            vals = vals[np.isfinite(vals.to_numpy(dtype=float))]
            if rule == "full":
                short = [
                    m
                    for m in vals.index
                    if m in cov.index and cov.loc[m, "n_years"] < _expected_years(per, cov.loc[m])
                ]
                for m in short:
                    c = cov.loc[m]
                    row(
                        name,
                        gas,
                        m,
                        float(vals[m]),
                        per,
                        "partial coverage",
                        f"{int(c['n_years'])} of {_expected_years(per, c)} years of {per} "
                        f"({int(c['first'])}-{int(c['last'])}); the recipe needs full coverage",
                    )
                vals = vals.drop(short)
            for m in [m for m in vals.index if m in excluded_by_name]:
                row(name, gas, m, float(vals[m]), per, "excluded", excluded_by_name[m])
                vals = vals.drop(m)
            kept, excluded = apply_exclusions(vals, s.get("exclude", []))
            for ex in excluded:
                row(name, gas, ex.member, ex.value, per, "excluded", f"{ex.rule}: {ex.reason}")
            groups = (
                members["group"].reindex(kept.index)
                if "group" in members
                else pd.Series("", kept.index)
            )
            for m, v in kept.items():
                row(name, gas, m, float(v), per, "used", "", str(groups.get(m, "")))
            used_cov = cov[cov.index.isin(kept.index) & (cov["n_years"] > 0)]
            label = _period_label(per, used_cov.reset_index())
            ispec = dict(recipe.interval)
            ispec.update(s.get("interval") or {})
            if interval_method:
                ispec = {"method": interval_method, "level": lvl_default}
            method = str(ispec.get("method", "percentile"))
            lvl = float(ispec.get("level", lvl_default))
            if method == "quantile-layers":
                est, problem = quantile_layer_estimate(kept, members, s.get("layers") or {}, label)
                if est is not None:
                    item[gas] = est
                elif len(kept):
                    reasons[name] = f"{gas}: {problem}"
                continue
            values = group_first(kept, groups) if s.get("group_first") else kept
            if len(values):
                item[gas] = ensemble_estimate(values.to_numpy(), method, lvl, period=label)
            else:
                reasons.setdefault(
                    name, f"no member of {var} in {per} passed selection and coverage"
                )
        if not item and name not in reasons:
            sel_txt = ", ".join(
                f"{g}: {s_['variable']} in {s_['period']}" for g, s_ in specs[name].items()
            )
            reasons[name] = f"no selected member has data ({sel_txt})"
        items[name] = item
    for m, why in excluded_by_name.items():
        if not any(r["member"] == m for r in rows):
            row("*", "", m, np.nan, "", "excluded", why)
    for spec in recipe.exclusions:
        if not named_exclusions(members, [spec]):
            row("*", "", "(none)", np.nan, "", "exclusion unmatched", f"no member matches {spec}")
    comps = comparison_table(recipe, pm, members, region)
    cols = ["input", "gas", "member", "group", "value", "period", "status", "reason"]
    return StoreInputs(
        items,
        pd.DataFrame(rows, columns=cols),
        ann.incomplete,
        pm.coverage,
        comps,
        annual.sel(region=region),
        extra={"reasons": reasons, "region": region, "member_traits": members},
    )


def _expected_years(period: str, cov: Mapping[str, Any]) -> int:
    first, last = parse_period(period)
    if last is None:
        return int(cov["last"]) - first + 1
    return last - first + 1


COMPARISON_COLUMNS = [
    "id",
    "variable",
    "period",
    "a",
    "b",
    "n_a",
    "n_b",
    "mean_a",
    "mean_b",
    "U",
    "p",
    "status",
]


def comparison_table(recipe: Recipe, pm: Any, members: pd.DataFrame, region: str) -> pd.DataFrame:
    """The recipe's Mann-Whitney comparisons between sub-ensembles (one row each, also when a
    variable is not in the store: ``status`` says why no test was made)."""
    comps = []
    variables = [str(v) for v in pm.means["variable"].values]
    excluded = named_exclusions(members, recipe.exclusions)
    for c in recipe.comparisons:
        ens = resolve_ensembles(recipe, c.get("ensembles"))
        var, per = c["variable"], c["period"]
        base = dict(id=c["id"], variable=var, period=per, a=str(c.get("a")), b=str(c.get("b")))
        if (
            var not in variables
            or not np.isfinite(pm.means.sel(variable=var, region=region, period=per).values).any()
        ):
            comps.append({**base, "n_a": 0, "n_b": 0, "status": f"no {var} in the store"})
            continue
        vals = pm.means.sel(variable=var, region=region, period=per).to_series()
        vals.index = vals.index.astype(str)
        vals = vals.drop([m for m in excluded if m in vals.index])
        if c.get("flip"):
            vals = -vals
        a = vals.reindex(select_from_sets(members, ens, c.get("a"))).dropna()
        b = vals.reindex(select_from_sets(members, ens, c.get("b"))).dropna()
        res = mann_whitney(a.to_numpy(), b.to_numpy())
        status = "ok" if len(a) and len(b) else "a side has no member"
        comps.append(
            {
                **base,
                "mean_a": float(a.mean()) if len(a) else np.nan,
                "mean_b": float(b.mean()) if len(b) else np.nan,
                **res,
                "status": status,
            }
        )
    return pd.DataFrame(comps, columns=COMPARISON_COLUMNS)


def _period_label(nominal: str, cov: pd.DataFrame) -> str:
    """The years a period mean actually covers: ``nominal`` when every used member has all of
    them, else ``first-last (of nominal)``."""
    if cov.empty:
        return nominal
    first, last = int(cov["first"].min()), int(cov["last"].max())
    start, end = parse_period(nominal)
    if end is None:
        return f"{first}-{last}" if first == start else f"{first}-{last} (of {nominal})"
    if cov["n_years"].min() == end - start + 1:
        return nominal
    return f"{first}-{last} (of {nominal})"
