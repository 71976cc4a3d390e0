"""Tidy budget tables (``item, gas, period, mean, lo, hi, n, unit``) and their CSV / Markdown
forms."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from gridflux.budget.components import UNITS
from gridflux.budget.gwp import Metric, metric_label, resolve_metric
from gridflux.budget.recipes import RecipeResult, co2eq_estimate, co2eq_rows, co2eq_total

COLUMNS = ["item", "gas", "period", "mean", "lo", "hi", "n", "unit"]
GAS_ORDER = ["CO2", "CH4", "N2O", "C", "N", "total"]


def tidy_table(
    result: RecipeResult,
    metric: str | Metric | None = "GWP100",
    items: Sequence[str] | None = None,
    missing: list[dict[str, str]] | None = None,
) -> pd.DataFrame:
    """Every computed item and gas as one row, then the CO2-C eq rows under ``metric``.

    Units: Tg CO2-C/yr, Tg CH4-C/yr, Tg N2O-N/yr (gases), Tg C/yr and Tg N/yr (element totals),
    ``Tg CO2-C eq/yr (<horizon>, <gwp set>)`` for the CO2-eq rows (gas = CO2, CH4, N2O or
    ``total``; a ``total`` row only where every gas the row needs is present, else a row with an
    empty value, and the reason appended to ``missing``).
    Fluxes are positive to the atmosphere; lateral fluxes and stock changes positive = loss from
    land.
    """
    rows = []
    names = list(items) if items is not None else list(result.items)
    for name in names:
        item = result.items.get(name, {})
        for gas in sorted(item, key=GAS_ORDER.index):
            e = item[gas]
            rows.append([name, gas, e.period or "", e.mean, e.lo, e.hi, e.n, UNITS[gas]])
    if metric:
        m = resolve_metric(metric)
        unit = metric_label(m)
        for row, eq in co2eq_rows(result, m, missing=missing).items():
            for gas in sorted(eq, key=GAS_ORDER.index):
                e = eq[gas]
                rows.append([row, gas, e.period or "", e.mean, e.lo, e.hi, e.n, unit])
            if "total" not in eq:
                rows.append([row, "total", "", np.nan, np.nan, np.nan, None, unit])
    df = pd.DataFrame(rows, columns=COLUMNS)
    df["n"] = df["n"].astype("Int64")
    return df


def fmt(v: float) -> str:
    """Compact number: 3 significant figures below 100, integers above."""
    if v is None or (isinstance(v, float) and not math.isfinite(v)) or pd.isna(v):
        return ""
    a = abs(v)
    if a >= 100:
        return f"{v:.0f}"
    if a >= 10:
        return f"{v:.1f}"
    if a >= 1:
        return f"{v:.2f}"
    return f"{v:.3g}"


def fmt_interval(mean: float, lo: float, hi: float) -> str:
    """``mean (lo, hi)`` with :func:`fmt`."""
    if pd.isna(mean):
        return ""
    return f"{fmt(mean)} ({fmt(lo)}, {fmt(hi)})"


#: headline text of a total that cannot be given because a gas is missing
NOT_GIVEN = "not given: {gases} missing"


def headline_total(result: RecipeResult, item: str, metric: Metric):
    """(Estimate or None, lacking gases) of an item's CO2-eq total, by the result's propagation.

    The gases needed are those of the recipe's co2eq row of ``item`` (all three greenhouse gases
    when there is none) minus those declared absent by design.
    """
    from gridflux.budget.recipes import GHGS, row_gases

    spec = next((r for r in result.recipe.co2eq if r["item"] == item), None)
    need = row_gases(result, spec) if spec else list(GHGS)
    have = result.items.get(item, {})
    if spec is None and not any(g in have for g in GHGS):
        return None, []
    eq = {g: co2eq_estimate(result, item, g, metric) for g in need if g in have}
    lacking = [g for g in need if g not in have]
    if lacking or not eq:
        return None, lacking
    return co2eq_total(eq, result.propagation), []


def headline_table(
    result: RecipeResult,
    metric: str | Metric = "GWP100",
    paper_rule: RecipeResult | None = None,
) -> pd.DataFrame:
    """The recipe's headline items: one row each, columns per gas as ``mean (lo, hi)`` strings, and
    the total in CO2-C eq (``metric``) for items with greenhouse gases.

    A total whose gases are not all present reads ``not given: CH4 missing``. With
    ``paper_rule`` (the same recipe run with the paper's linear propagation) and a result
    propagated otherwise, a second total column shows the paper's rule beside the chosen one.
    """
    m = resolve_metric(metric)
    rows = []
    label = metric_label(m)
    side = paper_rule is not None and paper_rule.propagation != result.propagation
    for name in result.recipe.headline:
        item = result.items.get(name, {})
        row = {"item": name, "label": result.recipe.label(name)}
        for gas in ("CO2", "CH4", "N2O", "C", "N"):
            e = item.get(gas)
            row[f"{gas} [{UNITS[gas]}]"] = fmt_interval(e.mean, e.lo, e.hi) if e else ""
        tot, lacking = headline_total(result, name, m)
        col = f"total, {result.propagation} [{label}]" if side else f"total [{label}]"
        row[col] = (
            fmt_interval(tot.mean, tot.lo, tot.hi)
            if tot
            else (NOT_GIVEN.format(gases=", ".join(lacking)) if lacking else "")
        )
        if side:
            ptot, _ = headline_total(paper_rule, name, m)
            row[f"total, linear (paper's rule) [{label}]"] = (
                fmt_interval(ptot.mean, ptot.lo, ptot.hi) if ptot else ""
            )
        rows.append(row)
    df = pd.DataFrame(rows)
    # drop empty gas columns
    return df[[c for c in df.columns if not (df[c] == "").all()]]


def to_markdown(df: pd.DataFrame, floatfmt=fmt) -> str:
    """A GitHub-flavoured Markdown table (no dependency on ``tabulate``)."""

    def cell(v):
        if isinstance(v, (float, np.floating)):
            return floatfmt(float(v))
        if v is None or v is pd.NA or (not isinstance(v, str) and pd.isna(v)):
            return ""
        return str(v).replace("|", "\\|")

    head = "| " + " | ".join(map(str, df.columns)) + " |"
    sep = "| " + " | ".join("---" for _ in df.columns) + " |"
    body = ["| " + " | ".join(cell(v) for v in r) + " |" for r in df.itertuples(index=False)]
    return "\n".join([head, sep, *body]) + "\n"
