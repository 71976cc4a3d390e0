"""Global warming potentials as data, per source, and conversion of element masses to CO2-C eq.

Two packaged tables:

* ``data/gwp.csv`` - the values: ``report`` (AR6, AR5), ``gas``, ``origin`` (CH4: ``fossil`` or
  ``non-fossil``), ``horizon_yr`` (20, 100, 500), ``gwp`` (kg CO2 per kg gas), ``source``.
  AR6: Forster et al. (2021), Table 7.15 (CH4-fossil 82.5 / 29.8 / 10.0, CH4-non-fossil
  79.7 / 27.0 / 7.2, N2O 273 / 273 / 130). AR5: Myhre et al. (2013), Table 8.7 without
  climate-carbon feedback (CH4 84 / 28, N2O 264 / 265; no 500-year values).
* ``data/gwp_sets.yaml`` - the *sets*: which row each gas takes at each horizon, for CH4 per the
  origin of the source (a recipe declares ``origin: {CH4: fossil}`` on fossil-fuel and geological
  inputs; every other CH4 input is non-fossil). Sets: ``ar6-per-source`` (default: non-fossil
  values for biogenic CH4, fossil values for fossil CH4), ``ar6-fossil``, ``ar6-nonfossil``,
  ``ar5`` and ``reccap2-paper`` (what Hugelius et al. 2024 printed, see docs/budget.md).

A metric is a horizon (``GWP20``, ``GWP100``, ``GWP500``) plus a set. Element masses become
Tg CO2-C eq as

* CH4: 1 Tg CH4-C = 16/12 Tg CH4 -> x GWP -> Tg CO2 -> x 12/44 -> Tg CO2-C eq, i.e. x GWP * 16/44
* N2O: 1 Tg N2O-N = 44/28 Tg N2O -> x GWP -> Tg CO2 -> x 12/44, i.e. x GWP * 12/28
* CO2: 1 Tg CO2-C = 1 Tg CO2-C eq

(integer molar-mass ratios, as the paper: 29.8 * 16/44 = 10.836, 273 * 12/28 = 117.0).
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from typing import Any

import pandas as pd
import yaml

from gridflux.errors import BudgetError

_DATA = os.path.join(os.path.dirname(__file__), "data")

#: Tg of element -> Tg CO2-C eq per unit GWP (mass of the gas per mass of element x 12/44)
ELEMENT_TO_CO2C_PER_GWP: dict[str, float] = {
    "CO2": 1.0,  # already Tg CO2-C; GWP = 1
    "CH4": 16.0 / 44.0,  # (16/12) * (12/44)
    "N2O": 12.0 / 28.0,  # (44/28) * (12/44)
}
HORIZONS = (20, 100, 500)
ORIGINS = ("fossil", "non-fossil")
DEFAULT_SET = "ar6-per-source"
#: legacy metric names (one string for horizon and set) -> (horizon, set)
LEGACY_METRICS: dict[str, tuple[int, str]] = {
    **{f"GWP{h}-NONFOSSIL": (h, "ar6-nonfossil") for h in HORIZONS},
    **{f"GWP{h}-FOSSIL": (h, "ar6-fossil") for h in HORIZONS},
    **{f"AR5-GWP{h}": (h, "ar5") for h in (20, 100)},
}


@functools.lru_cache(maxsize=1)
def metrics_table() -> pd.DataFrame:
    """The packaged table of warming potentials (one row per report, gas, origin and horizon)."""
    t = pd.read_csv(os.path.join(_DATA, "gwp.csv"), keep_default_na=False)
    t["horizon_yr"] = t["horizon_yr"].astype(int)
    t["gwp"] = t["gwp"].astype(float)
    return t


@functools.lru_cache(maxsize=1)
def gwp_sets() -> dict[str, dict[str, Any]]:
    """The packaged warming-potential sets (``data/gwp_sets.yaml``)."""
    with open(os.path.join(_DATA, "gwp_sets.yaml")) as f:
        return dict(yaml.safe_load(f))


def available_sets() -> list[str]:
    """Names accepted by ``gwp_set`` (e.g. ``ar6-per-source``)."""
    return list(gwp_sets())


@dataclass(frozen=True)
class Metric:
    """A CO2-equivalence metric: the time horizon (years) and the warming-potential set."""

    horizon: int
    gwp_set: str = DEFAULT_SET

    @property
    def name(self) -> str:
        """``GWP100`` etc."""
        return f"GWP{self.horizon}"

    @property
    def label(self) -> str:
        """``GWP100, ar6-per-source``."""
        return f"{self.name}, {self.gwp_set}"

    def __str__(self) -> str:
        return self.label


def resolve_metric(metric: str | Metric = "GWP100", gwp_set: str | None = None) -> Metric:
    """A :class:`Metric` from a horizon name (``GWP20``, ``gwp-100``, ``GWP_500``) and a set.

    Legacy one-string names (``GWP100-nonfossil``, ``AR5-GWP20``) carry their set; an explicit
    ``gwp_set`` that contradicts them is an error.
    """
    if isinstance(metric, Metric):
        if gwp_set and gwp_set != metric.gwp_set:
            return Metric(metric.horizon, _check_set(gwp_set))
        return metric
    key = str(metric).strip().upper().replace("_", "").replace(" ", "").replace("GWP-", "GWP")
    if key in LEGACY_METRICS:
        h, s = LEGACY_METRICS[key]
        if gwp_set and gwp_set != s:
            raise BudgetError(f"metric {metric!r} implies gwp set {s!r}, but {gwp_set!r} was given")
        return Metric(h, s)
    for h in HORIZONS:
        if key == f"GWP{h}":
            m = Metric(h, _check_set(gwp_set or DEFAULT_SET))
            _check_available(m)
            return m
    raise BudgetError(
        f"warming-potential metric {metric!r} is unknown; expected one of "
        f"{[f'GWP{h}' for h in HORIZONS]} (sets via gwp_set: {available_sets()})"
    )


def _check_set(name: str) -> str:
    if name not in gwp_sets():
        raise BudgetError(f"gwp set {name!r} is unknown; expected one of {available_sets()}")
    return name


def _check_available(m: Metric) -> None:
    report = gwp_sets()[m.gwp_set]["report"]
    t = metrics_table()
    if not ((t["report"] == report) & (t["horizon_yr"] == m.horizon)).any():
        have = sorted(set(t.loc[t["report"] == report, "horizon_yr"]))
        raise BudgetError(
            f"gwp set {m.gwp_set!r} ({report}) has no {m.horizon}-year values; horizons: {have}"
        )


def normalize_metric(metric: str | Metric) -> str:
    """The horizon name of ``metric`` (``GWP100``); kept for callers that want the string."""
    return resolve_metric(metric).name


def row_origin(gas: str, origin: str | None, metric: Metric, item: str | None = None) -> tuple:
    """(report, gwp.csv origin, horizon) of the value ``gas`` from a source of ``origin`` takes."""
    spec = gwp_sets()[metric.gwp_set]
    horizon = metric.horizon
    for o in spec.get("overrides") or ():
        if int(o["horizon"]) == metric.horizon and o["gas"] == gas and item in o.get("items", ()):
            horizon = int(o["use_horizon"])
    row_o = ""
    if gas == "CH4":
        o = origin or "non-fossil"
        if o not in ORIGINS:
            raise BudgetError(f"CH4 origin {o!r} is unknown; expected one of {ORIGINS}")
        m = spec.get("CH4", {})
        if metric.horizon in m or str(metric.horizon) in m:
            m = m.get(metric.horizon, m.get(str(metric.horizon)))
        row_o = m.get(o, o)
    return spec["report"], row_o, horizon


def gwp(
    gas: str,
    metric: str | Metric = "GWP100",
    origin: str | None = None,
    gwp_set: str | None = None,
    item: str | None = None,
) -> float:
    """The warming potential (kg CO2 per kg gas) of ``gas`` from a source of ``origin``.

    Parameters
    ----------
    gas : {"CO2", "CH4", "N2O"}
    metric : str or Metric
        Horizon name (``GWP100``) or a :class:`Metric`.
    origin : {"fossil", "non-fossil"}, optional
        Origin of the CH4 source (non-fossil by default); ignored for other gases.
    gwp_set : str, optional
        Set name (default ``ar6-per-source``).
    item : str, optional
        Budget item the value is for (only a set's ``overrides`` look at it).
    """
    m = resolve_metric(metric, gwp_set)
    report, row_o, horizon = row_origin(gas, origin, m, item)
    t = metrics_table()
    row = t[
        (t["report"] == report)
        & (t["gas"] == gas)
        & (t["origin"] == row_o)
        & (t["horizon_yr"] == horizon)
    ]
    if row.empty:
        raise BudgetError(
            f"gwp.csv has no {report} value for {gas} (origin {row_o or '-'}) at {horizon} years; "
            f"gases there: {sorted(t['gas'].unique())}"
        )
    return float(row["gwp"].iloc[0])


def co2eq_factor(
    gas: str,
    metric: str | Metric = "GWP100",
    origin: str | None = None,
    gwp_set: str | None = None,
    item: str | None = None,
) -> float:
    """Tg CO2-C eq per Tg of element of ``gas`` (Tg CO2-C, Tg CH4-C or Tg N2O-N).

    >>> round(co2eq_factor("CH4", "GWP100", "fossil"), 4)
    10.8364
    >>> round(co2eq_factor("N2O", "GWP100"), 4)
    117.0
    """
    if gas not in ELEMENT_TO_CO2C_PER_GWP:
        raise BudgetError(
            f"gas {gas!r} has no CO2-eq conversion; "
            f"expected one of {sorted(ELEMENT_TO_CO2C_PER_GWP)}"
        )
    return gwp(gas, metric, origin, gwp_set, item) * ELEMENT_TO_CO2C_PER_GWP[gas]


def metric_label(metric: str | Metric, gwp_set: str | None = None) -> str:
    """Unit label of CO2-eq values, e.g. ``Tg CO2-C eq/yr (GWP100, ar6-per-source)``."""
    return f"Tg CO2-C eq/yr ({resolve_metric(metric, gwp_set).label})"


def values_table(metric: str | Metric, gwp_set: str | None = None) -> pd.DataFrame:
    """The values a metric uses: ``gas, origin, gwp, co2eq_factor, report, horizon_yr, source``,
    plus one row per override of the set (``item`` column)."""
    m = resolve_metric(metric, gwp_set)
    t = metrics_table()
    rows = []
    for gas in ("CO2", "CH4", "N2O"):
        for origin in ORIGINS if gas == "CH4" else ("",):
            report, row_o, h = row_origin(gas, origin or None, m)
            r = t[
                (t["report"] == report)
                & (t["gas"] == gas)
                & (t["origin"] == row_o)
                & (t["horizon_yr"] == h)
            ].iloc[0]
            rows.append(
                dict(
                    metric=m.label,
                    gas=gas,
                    source_origin=origin,
                    item="",
                    value_used=f"{report} {gas}{' ' + row_o if row_o else ''} {h}-yr",
                    gwp=float(r["gwp"]),
                    co2eq_factor=float(r["gwp"]) * ELEMENT_TO_CO2C_PER_GWP[gas],
                    source=r["source"],
                    note="",
                )
            )
    for o in gwp_sets()[m.gwp_set].get("overrides") or ():
        if int(o["horizon"]) != m.horizon:
            continue
        for it in o.get("items", ()):
            g = gwp(o["gas"], m, None, None, it)
            rows.append(
                dict(
                    metric=m.label,
                    gas=o["gas"],
                    source_origin="",
                    item=it,
                    value_used=f"override: {o['gas']} at {o['use_horizon']}-yr",
                    gwp=g,
                    co2eq_factor=g * ELEMENT_TO_CO2C_PER_GWP[o["gas"]],
                    source="gwp_sets.yaml",
                    note=" ".join(str(o.get("note", "")).split()),
                )
            )
    return pd.DataFrame(rows)
