"""Component tables: budget parts that are not gridded ensembles (data-driven upscaling, inland
waters, abrupt-thaw wetlands, lateral fluxes, anthropogenic emissions, geological CH4), and the
paper's published ensemble results.

Each table is a long CSV (``component, gas, mean, lo, hi, unit, n, area_mkm2, period, source,
note``) under ``gridflux/budget/data/components/`` (the paper's ensembles in
``data/paper_ensembles.csv``). ``gas`` is CO2 / CH4 / N2O (fluxes in Tg CO2-C, Tg CH4-C,
Tg N2O-N per year, positive to the atmosphere) or C / N (element fluxes in Tg C, Tg N per year,
e.g. lateral export, positive = loss from land). A value published only in CO2-C equivalents
(unit ``Tg CO2-C eq/yr (<metric>[, <set>])``) is converted back to the gas' element mass with that
metric. A user's own table (same columns) can be added with ``extra=[path, ...]``.
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Iterable

import pandas as pd

from gridflux.budget.ensemble import Estimate
from gridflux.budget.gwp import co2eq_factor
from gridflux.errors import BudgetError

_DATA = os.path.join(os.path.dirname(__file__), "data")
COMPONENT_DIR = os.path.join(_DATA, "components")
PAPER_ENSEMBLES = os.path.join(_DATA, "paper_ensembles.csv")

#: gas -> canonical unit of budget values
UNITS: dict[str, str] = {
    "CO2": "Tg CO2-C/yr",
    "CH4": "Tg CH4-C/yr",
    "N2O": "Tg N2O-N/yr",
    "C": "Tg C/yr",
    "N": "Tg N/yr",
}

COLUMNS = (
    "component",
    "gas",
    "mean",
    "lo",
    "hi",
    "unit",
    "n",
    "area_mkm2",
    "period",
    "source",
    "note",
)
_EQ = re.compile(r"^Tg CO2-C eq/yr \((?P<metric>[^,)]+)(, (?P<set>[^)]+))?\)$")

Item = dict[str, Estimate]


def read_table(path: str) -> pd.DataFrame:
    """Read and validate one component CSV; adds a ``table`` column (file stem)."""
    df = pd.read_csv(path)
    missing = [
        c for c in ("component", "gas", "mean", "lo", "hi", "unit", "source") if c not in df.columns
    ]
    if missing:
        raise BudgetError(
            f"{path}: component table lacks columns {missing}; expected {list(COLUMNS)}"
        )
    for i, r in df.iterrows():
        unit = str(r["unit"])
        if unit != UNITS.get(str(r["gas"])) and not _EQ.match(unit):
            raise BudgetError(
                f"{path}: line {i + 2}: component {r['component']!r} gas {r['gas']!r} has unit "
                f"{unit!r}; expected {UNITS.get(str(r['gas']), sorted(UNITS.values()))!r} or "
                "'Tg CO2-C eq/yr (<metric>)'"
            )
        if not (r["lo"] <= r["mean"] <= r["hi"]):
            raise BudgetError(
                f"{path}: line {i + 2}: component {r['component']!r} gas {r['gas']!r}: expected "
                f"lo <= mean <= hi, got {r['lo']}, {r['mean']}, {r['hi']}"
            )
    df["table"] = os.path.splitext(os.path.basename(path))[0]
    return df


def component_tables(
    extra: Iterable[str] = (), include_paper_ensembles: bool = True
) -> pd.DataFrame:
    """All packaged component tables (plus ``extra`` CSV paths) as one long DataFrame."""
    paths = sorted(glob.glob(os.path.join(COMPONENT_DIR, "*.csv")))
    if include_paper_ensembles:
        paths.append(PAPER_ENSEMBLES)
    paths += list(extra)
    df = pd.concat([read_table(p) for p in paths], ignore_index=True)
    dup = df[df.duplicated(["component", "gas"], keep=False)]
    if not dup.empty:
        raise BudgetError(
            f"component tables define {sorted(set(dup['component']))} more than once "
            f"(tables {sorted(set(dup['table']))}); component names must be unique"
        )
    return df


def _row_estimate(r: pd.Series) -> Estimate:
    f = 1.0
    m = _EQ.match(str(r["unit"]))
    if m:
        # a value published in CO2-C eq: back to element mass with the set it was printed with
        f = 1.0 / co2eq_factor(str(r["gas"]), m.group("metric"), gwp_set=m.group("set"))
    n = None if pd.isna(r.get("n")) or r.get("n") == "" else int(r["n"])
    period = None if pd.isna(r.get("period")) else str(r["period"])
    return Estimate(float(r["mean"]) * f, float(r["lo"]) * f, float(r["hi"]) * f, n, period)


def component(name: str, tables: pd.DataFrame | None = None) -> Item:
    """One component as ``{gas: Estimate}`` in element-mass units (see :data:`UNITS`)."""
    t = component_tables() if tables is None else tables
    rows = t[t["component"] == name]
    if rows.empty:
        raise BudgetError(
            f"component {name!r} is not in the component tables; have "
            f"{sorted(t['component'].unique())}"
        )
    return {str(r["gas"]): _row_estimate(r) for _, r in rows.iterrows()}
