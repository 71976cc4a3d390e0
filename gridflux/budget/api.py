"""The budget layer's entry points: compute a recipe from a store or from the paper's inputs, and
write its tables and figures.

>>> import gridflux.budget as gb
>>> table = gb.budget_from_paper(metric="GWP100")            # tidy DataFrame
>>> table = gb.budget_from_store("demo.zarr", metric="GWP20")  # from a gridflux store
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import xarray as xr

from gridflux.budget.gwp import normalize_metric
from gridflux.budget.inputs import StoreInputs, paper_inputs, paper_interval_items, store_inputs
from gridflux.budget.recipes import Recipe, RecipeResult, load_recipe, run_recipe
from gridflux.budget.tables import headline_table, tidy_table, to_markdown
from gridflux.errors import BudgetError, StoreError

#: cube variables mapped when present in a store (first ones found, up to three)
MAP_VARIABLES = ("fco2", "nbp", "nep", "fch4", "fn2o", "npp", "rh")


@dataclass
class BudgetRun:
    """Everything one budget computation produced.

    ``table`` is the tidy table (``item, gas, period, mean, lo, hi, n, unit``), ``headline`` the
    printed summary, ``result`` the recipe items, ``store`` the store-side details (None with the
    paper's inputs), ``source`` the store path or ``"paper"``.
    """

    recipe: Recipe
    metric: str
    result: RecipeResult
    table: pd.DataFrame
    headline: pd.DataFrame
    store: StoreInputs | None = None
    totals: xr.DataArray | None = None
    source: str = "paper"
    store_path: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def open_totals(store: str | os.PathLike[str] | xr.Dataset | xr.DataArray) -> xr.DataArray:
    """The ``totals`` DataArray of a store given as a path/URL, an opened Dataset or the DataArray."""
    if isinstance(store, xr.DataArray):
        return store
    if isinstance(store, xr.Dataset):
        if "totals" not in store:
            raise StoreError(
                f"dataset has no 'totals' variable; variables: {list(store.data_vars)}"
            )
        from gridflux.pipeline.store import plain_strings

        return plain_strings(store)["totals"]
    path = os.fspath(store)
    if not os.path.exists(path) and "://" not in path:
        raise StoreError(
            f"store {path!r} does not exist; run `gridflux run` or `gridflux demo` first"
        )
    from gridflux.pipeline.store import open_store

    ds = open_store(path)
    if "totals" not in ds:
        raise StoreError(
            f"{path}: no 'totals' array; is it a gridflux store? variables: {list(ds.data_vars)}"
        )
    return ds["totals"]


def compute_budget(
    store: str | os.PathLike[str] | xr.Dataset | xr.DataArray | None = None,
    recipe: str | Recipe = "reccap2-permafrost",
    metric: str = "GWP100",
    inputs: str = "store",
    region: str | None = None,
    propagation: str | None = None,
    interval_method: str | None = None,
    seed: int = 0,
) -> BudgetRun:
    """Run a recipe on a store (``inputs="store"``) or on the paper's published results (``"paper"``).

    Parameters
    ----------
    store : path, Dataset or DataArray, optional
        The gridflux store (only ``totals`` and its member coords are read).
    recipe : name or Recipe
        ``reccap2-permafrost`` or a path to a recipe YAML.
    metric : str
        CO2-eq metric (``GWP20``, ``GWP100``, ``GWP500``, ``AR5-GWP100``...).
    inputs : {"store", "paper"}
    region : str, optional
        Region label in the store (the recipe's by default, ``permafrost``).
    propagation : {"linear", "quadrature", "montecarlo"}, optional
        Interval propagation (the recipe's default, ``linear``, otherwise).
    interval_method : str, optional
        Ensemble interval method (see :mod:`gridflux.budget.ensemble`).
    """
    r = load_recipe(recipe) if not isinstance(recipe, Recipe) else recipe
    metric = normalize_metric(metric)
    if inputs == "paper":
        res = run_recipe(
            r,
            paper_inputs(r),
            propagation=propagation,
            paper_intervals=paper_interval_items(r),
            seed=seed,
            inputs_mode="paper",
        )
        si, totals, source = None, None, "paper"
    elif inputs == "store":
        if store is None:
            raise BudgetError(
                "a store is needed for inputs='store'; pass a store path, or use inputs='paper'"
            )
        totals = open_totals(store)
        si = store_inputs(totals, r, region=region, interval_method=interval_method)
        res = run_recipe(r, si.items, propagation=propagation, seed=seed, inputs_mode="store")
        source = os.fspath(store) if isinstance(store, (str, os.PathLike)) else "dataset"
    else:
        raise BudgetError(f"inputs={inputs!r} is unknown; expected 'store' or 'paper'")
    return BudgetRun(
        r,
        metric,
        res,
        tidy_table(res, metric),
        headline_table(res, metric),
        si,
        totals,
        source,
        os.fspath(store) if isinstance(store, (str, os.PathLike)) else None,
    )


def budget_from_store(
    store: str | os.PathLike[str] | xr.Dataset | xr.DataArray,
    recipe: str = "reccap2-permafrost",
    metric: str = "GWP100",
    **kwargs: Any,
) -> pd.DataFrame:
    """The tidy budget table (``item, gas, period, mean, lo, hi, n, unit``) of a store."""
    return compute_budget(store, recipe, metric, inputs="store", **kwargs).table


def budget_from_paper(
    recipe: str = "reccap2-permafrost", metric: str = "GWP100", **kwargs: Any
) -> pd.DataFrame:
    """The tidy budget table from the paper's published ensemble results and component tables."""
    return compute_budget(None, recipe, metric, inputs="paper", **kwargs).table


def _cube_variables(path: str) -> list[str]:
    try:
        import zarr

        g = zarr.open_group(path, mode="r")
        if "cubes" not in g:
            return []
        return sorted(str(k) for k in g["cubes"].group_keys())
    except Exception:  # noqa: BLE001 - a store without readable cubes simply gets no map
        return []


def write_budget(
    run: BudgetRun, out_dir: str | os.PathLike[str], figures: bool = True
) -> dict[str, str]:
    """Write tables (CSV + Markdown) and figures of a budget run into ``out_dir``.

    Returns ``{name: path}`` of every file written.
    """
    from gridflux.budget import plots

    out = os.fspath(out_dir)
    os.makedirs(out, exist_ok=True)
    files: dict[str, str] = {}

    def put(name: str, df: pd.DataFrame) -> None:
        p = os.path.join(out, name)
        df.to_csv(p, index=False)
        files[name] = p

    put("budget.csv", run.table)
    put("headline.csv", run.headline)
    put("missing.csv", pd.DataFrame(run.result.missing, columns=["item", "gas", "reason"]))
    md = [
        f"# {run.recipe.title}",
        "",
        f"Inputs: {run.source}; metric: {run.metric}; interval propagation: {run.result.propagation}; "
        "fluxes positive to the atmosphere (lateral fluxes and stock changes: positive = loss from land).",
        "",
        "## Headline",
        "",
        to_markdown(run.headline),
        "## All items",
        "",
        to_markdown(run.table.assign(label=[run.recipe.label(i) for i in run.table["item"]])),
    ]
    if run.result.missing:
        md += ["## Items not computed", "", to_markdown(pd.DataFrame(run.result.missing))]
    if run.store is not None:
        s = run.store
        put("members.csv", s.members)
        put("incomplete_years.csv", s.incomplete_years)
        put("period_coverage.csv", s.coverage)
        put("comparisons.csv", s.comparisons)
        excl = s.members[s.members["status"] == "excluded"]
        if not excl.empty:
            md += ["## Excluded members", "", to_markdown(excl)]
        if not s.incomplete_years.empty:
            md += ["## Incomplete years (excluded)", "", to_markdown(s.incomplete_years)]
        if not s.comparisons.empty:
            md += ["## Mann-Whitney U tests between sub-ensembles", "", to_markdown(s.comparisons)]
    p = os.path.join(out, "budget.md")
    with open(p, "w") as f:
        f.write("\n".join(md))
    files["budget.md"] = p
    if figures:
        fig = os.path.join(out, "figures")
        files["budget_bars.png"] = plots.plot_budget_bars(
            run.result, os.path.join(fig, "budget_bars.png"), run.metric
        )
        files["bottom_up_vs_top_down.png"] = plots.plot_bottom_up_vs_top_down(
            run.result, os.path.join(fig, "bottom_up_vs_top_down.png")
        )
        if run.store is not None and run.totals is not None:
            files["annual_series.png"] = plots.plot_annual_series(
                run.store.annual, os.path.join(fig, "annual_series.png")
            )
            files["seasonal_cycle.png"] = plots.plot_seasonal_cycle(
                run.totals, os.path.join(fig, "seasonal_cycle.png"), region=run.recipe.region
            )
        if run.store_path:
            for var in [v for v in MAP_VARIABLES if v in _cube_variables(run.store_path)][:3]:
                cube = xr.open_zarr(run.store_path, group=f"cubes/{var}")[var]
                files[f"map_{var}.png"] = plots.plot_flux_map(
                    cube, os.path.join(fig, f"map_{var}.png")
                )
    return files
