"""The budget layer: from a store's monthly region totals (and component tables) to budgets.

Pure functions on pandas/xarray (no I/O except :func:`write_budget` and opening a store):

* :mod:`~gridflux.budget.annual` - annual sums, incomplete years, period means
* :mod:`~gridflux.budget.derived` - NEP, NBP, CUE, MRT per member
* :mod:`~gridflux.budget.ensemble` - ensemble mean and 95 % interval, sub-ensembles, group-first,
  exclusions, Mann-Whitney U
* :mod:`~gridflux.budget.components` - component tables (data-driven, inland waters, lateral ...)
* :mod:`~gridflux.budget.recipes` - recipes as data, interval propagation
* :mod:`~gridflux.budget.gwp` - warming potentials per source (AR6, AR5; sets) and CO2-C eq
* :mod:`~gridflux.budget.tables`, :mod:`~gridflux.budget.plots`, :mod:`~gridflux.budget.report` -
  outputs (tables, figures, one self-contained HTML report)

Names are imported lazily so that ``import gridflux.budget`` stays light.
"""

from __future__ import annotations

import importlib
from typing import Any

_API = {
    "budget_from_store": "gridflux.budget.api",
    "budget_from_paper": "gridflux.budget.api",
    "compute_budget": "gridflux.budget.api",
    "write_budget": "gridflux.budget.api",
    "open_totals": "gridflux.budget.api",
    "BudgetRun": "gridflux.budget.api",
    "annual_totals": "gridflux.budget.annual",
    "period_means": "gridflux.budget.annual",
    "derive": "gridflux.budget.derived",
    "Estimate": "gridflux.budget.ensemble",
    "ensemble_estimate": "gridflux.budget.ensemble",
    "interval": "gridflux.budget.ensemble",
    "group_first": "gridflux.budget.ensemble",
    "select_members": "gridflux.budget.ensemble",
    "apply_exclusions": "gridflux.budget.ensemble",
    "mann_whitney": "gridflux.budget.ensemble",
    "co2eq_factor": "gridflux.budget.gwp",
    "gwp": "gridflux.budget.gwp",
    "resolve_metric": "gridflux.budget.gwp",
    "values_table": "gridflux.budget.gwp",
    "co2eq_estimate": "gridflux.budget.recipes",
    "budget_figures": "gridflux.budget.plots",
    "write_report": "gridflux.budget.report",
    "load_recipe": "gridflux.budget.recipes",
    "run_recipe": "gridflux.budget.recipes",
    "co2eq_rows": "gridflux.budget.recipes",
    "combine": "gridflux.budget.recipes",
    "component": "gridflux.budget.components",
    "component_tables": "gridflux.budget.components",
    "tidy_table": "gridflux.budget.tables",
    "headline_table": "gridflux.budget.tables",
    "to_markdown": "gridflux.budget.tables",
}

__all__ = sorted(_API)


def __getattr__(name: str) -> Any:
    if name in _API:
        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'gridflux.budget' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
