"""Global warming potentials and conversion of element masses to CO2-C equivalents.

The metric values are data (``data/gwp.csv``: metric, gas, horizon, value, report, source). A budget
in element mass is converted to Tg CO2-C eq as

* CH4: 1 Tg CH4-C = 16/12 Tg CH4 -> x GWP -> Tg CO2 -> x 12/44 -> Tg CO2-C eq, i.e. x GWP * 16/44
* N2O: 1 Tg N2O-N = 44/28 Tg N2O -> x GWP -> Tg CO2 -> x 12/44, i.e. x GWP * 12/28
* CO2: 1 Tg CO2-C = 1 Tg CO2-C eq

(integer molar-mass ratios, as Hugelius et al. 2024 use: 29.8 * 16/44 = 10.836, 273 * 12/28 = 117.0).

Metric names: ``GWP20``, ``GWP100``, ``GWP500`` are AR6 (Forster et al. 2021, Table 7.15) with
the CH4-*fossil* values (82.5, 29.8, 10.0), which is the GWP-100 of 29.8 the paper uses for all
CH4; ``GWP20-nonfossil`` etc. use AR6's CH4-non-fossil values (79.7, 27.0, 7.2) that a strictly
biogenic accounting would choose; ``AR5-GWP20`` / ``AR5-GWP100`` are AR5 (Myhre et al. 2013,
Table 8.7, no climate-carbon feedback: CH4 84 / 28, N2O 264 / 265). N2O is 273 / 273 / 130 in AR6.
"""

from __future__ import annotations

import functools
import os

import pandas as pd

from gridflux.errors import BudgetError

_DATA = os.path.join(os.path.dirname(__file__), "data")

#: Tg of element -> Tg CO2-C eq per unit GWP (mass of the gas per mass of element x 12/44)
ELEMENT_TO_CO2C_PER_GWP: dict[str, float] = {
    "CO2": 1.0,  # already Tg CO2-C; GWP = 1
    "CH4": 16.0 / 44.0,  # (16/12) * (12/44)
    "N2O": 12.0 / 28.0,  # (44/28) * (12/44)
}


@functools.lru_cache(maxsize=1)
def metrics_table() -> pd.DataFrame:
    """The packaged table of warming potentials (one row per metric and gas)."""
    return pd.read_csv(os.path.join(_DATA, "gwp.csv"))


def available_metrics() -> list[str]:
    """Metric names accepted by :func:`co2eq_factor` (e.g. ``GWP100``)."""
    return sorted(metrics_table()["metric"].unique())


def normalize_metric(metric: str) -> str:
    """Accept ``GWP100``, ``gwp-100``, ``GWP_100`` ... and return the table's spelling."""
    key = str(metric).strip().upper().replace("_", "").replace(" ", "")
    for m in available_metrics():
        if m.upper().replace("-", "") == key.replace("-", ""):
            return m
    raise BudgetError(
        f"warming-potential metric {metric!r} is unknown; expected one of {available_metrics()}"
    )


def gwp(gas: str, metric: str = "GWP100") -> float:
    """The warming potential of ``gas`` (CO2, CH4, N2O) under ``metric`` (mass basis, kg/kg CO2)."""
    m = normalize_metric(metric)
    t = metrics_table()
    row = t[(t["metric"] == m) & (t["gas"] == gas)]
    if row.empty:
        raise BudgetError(
            f"no {m} value for gas {gas!r} in gwp.csv; gases there: {sorted(t['gas'].unique())}"
        )
    return float(row["gwp"].iloc[0])


def co2eq_factor(gas: str, metric: str = "GWP100") -> float:
    """Tg CO2-C eq per Tg of element of ``gas`` (Tg CO2-C, Tg CH4-C or Tg N2O-N).

    >>> round(co2eq_factor("CH4", "GWP100"), 4)
    10.8364
    >>> round(co2eq_factor("N2O", "GWP100"), 4)
    117.0
    """
    if gas not in ELEMENT_TO_CO2C_PER_GWP:
        raise BudgetError(
            f"gas {gas!r} has no CO2-eq conversion; expected one of {sorted(ELEMENT_TO_CO2C_PER_GWP)}"
        )
    return gwp(gas, metric) * ELEMENT_TO_CO2C_PER_GWP[gas]


def metric_label(metric: str) -> str:
    """Unit label of CO2-eq values under ``metric``, e.g. ``Tg CO2-C eq/yr (GWP100)``."""
    return f"Tg CO2-C eq/yr ({normalize_metric(metric)})"
