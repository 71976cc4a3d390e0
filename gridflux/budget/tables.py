"""Tidy budget tables (``item, gas, period, mean, lo, hi, n, unit``) and their CSV / Markdown forms."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from gridflux.budget.components import UNITS
from gridflux.budget.gwp import metric_label, normalize_metric
from gridflux.budget.recipes import RecipeResult, co2eq_rows

COLUMNS = ["item", "gas", "period", "mean", "lo", "hi", "n", "unit"]
GAS_ORDER = ["CO2", "CH4", "N2O", "C", "N", "total"]


def tidy_table(
    result: RecipeResult, metric: str | None = "GWP100", items: Sequence[str] | None = None
) -> pd.DataFrame:
    """Every computed item and gas as one row, then the CO2-C eq rows under ``metric``.

    Units: Tg CO2-C/yr, Tg CH4-C/yr, Tg N2O-N/yr (gases), Tg C/yr and Tg N/yr (element totals),
    ``Tg CO2-C eq/yr (<metric>)`` for the CO2-eq rows (gas = CO2, CH4, N2O or ``total``).
    Fluxes are positive to the atmosphere; lateral fluxes and stock changes positive = loss from land.
    """
    rows = []
    names = list(items) if items is not None else list(result.items)
    for name in names:
        item = result.items.get(name, {})
        for gas in sorted(item, key=GAS_ORDER.index):
            e = item[gas]
            rows.append([name, gas, e.period or "", e.mean, e.lo, e.hi, e.n, UNITS[gas]])
    if metric:
        unit = metric_label(metric)
        for row, eq in co2eq_rows(result, metric).items():
            for gas in sorted(eq, key=GAS_ORDER.index):
                e = eq[gas]
                rows.append([row, gas, e.period or "", e.mean, e.lo, e.hi, e.n, unit])
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


def headline_table(result: RecipeResult, metric: str = "GWP100") -> pd.DataFrame:
    """The recipe's headline items: one row each, columns per gas as ``mean (lo, hi)`` strings, and
    the total in CO2-C eq (``metric``) for items with greenhouse gases."""
    from gridflux.budget.gwp import co2eq_factor
    from gridflux.budget.recipes import combine

    metric = normalize_metric(metric)
    rows = []
    for name in result.recipe.headline:
        item = result.items.get(name, {})
        row = {"item": name, "label": result.recipe.label(name)}
        for gas in ("CO2", "CH4", "N2O", "C", "N"):
            e = item.get(gas)
            row[f"{gas} [{UNITS[gas]}]"] = fmt_interval(e.mean, e.lo, e.hi) if e else ""
        eq = [(item[g], co2eq_factor(g, metric)) for g in ("CO2", "CH4", "N2O") if g in item]
        method = result.propagation if result.propagation != "quadrature" else "linear"
        if method == "montecarlo" and not all(e.samples is not None for e, _ in eq):
            method = "linear"
        tot = combine(eq, method) if eq else None
        row[f"total [{metric_label(metric)}]"] = (
            fmt_interval(tot.mean, tot.lo, tot.hi) if tot else ""
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
