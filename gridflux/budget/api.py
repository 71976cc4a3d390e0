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

from gridflux.budget.gwp import Metric, resolve_metric
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
    metric: Metric
    result: RecipeResult
    table: pd.DataFrame
    headline: pd.DataFrame
    store: StoreInputs | None = None
    totals: xr.DataArray | None = None
    source: str = "paper"
    store_path: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    region: str = "permafrost"
    missing: list[dict[str, str]] = field(default_factory=list)
    paper_rule: RecipeResult | None = None

    @property
    def blank_totals(self) -> list[dict[str, str]]:
        """CO2-eq totals left blank because a gas they need is missing (with the reason)."""
        return [m for m in self.missing if m["gas"] == "total"]

    @property
    def title(self) -> str:
        """The run's title, naming its region (and, for another region than the recipe's, that
        the recipe was written for that one)."""
        if self.region == self.recipe.region:
            return f"{self.recipe.title} - region {self.region!r}"
        return (
            f"Budget of region {self.region!r} by the {self.recipe.name} recipe (written for "
            f"region {self.recipe.region!r}: only components declared for {self.region!r} used)"
        )

    @property
    def complete(self) -> bool:
        """True when every CO2-eq total the recipe defines could be given."""
        return not self.blank_totals


def open_totals(store: str | os.PathLike[str] | xr.Dataset | xr.DataArray) -> xr.DataArray:
    """The ``totals`` DataArray of a store given as a path/URL, an opened Dataset or the
    DataArray."""
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
    metric: str | Metric = "GWP100",
    inputs: str = "store",
    region: str | None = None,
    propagation: str | None = None,
    interval_method: str | None = None,
    seed: int = 0,
    gwp_set: str | None = None,
    coverage: str | None = None,
) -> BudgetRun:
    """Run a recipe on a store (``inputs="store"``) or on the paper's published results
    (``"paper"``).

    Parameters
    ----------
    store : path, Dataset or DataArray, optional
        The gridflux store (only ``totals`` and its member coords are read).
    recipe : name or Recipe
        ``reccap2-permafrost`` or a path to a recipe YAML.
    metric : str
        CO2-eq horizon (``GWP20``, ``GWP100``, ``GWP500``).
    gwp_set : str, optional
        Warming-potential set (``ar6-per-source`` by default; ``ar6-fossil``, ``ar6-nonfossil``,
        ``ar5``, ``reccap2-paper``), see :mod:`gridflux.budget.gwp`.
    inputs : {"store", "paper"}
    region : str, optional
        Region label in the store (the recipe's by default, ``permafrost``).
    propagation : {"linear", "quadrature", "montecarlo"}, optional
        Interval propagation (the recipe's default, ``linear``, otherwise).
    interval_method : str, optional
        Ensemble interval method for every ensemble (overrides the recipe's per-ensemble methods;
        see :mod:`gridflux.budget.ensemble`).
    coverage : {"full", "partial"}, optional
        Period-mean coverage rule (overrides the recipe's).

    Returns
    -------
    BudgetRun
        ``missing`` lists every item/gas not computed and every CO2-eq total left blank (with
        the inputs lacking); ``complete`` is False when a total is blank.
    """
    r = load_recipe(recipe) if not isinstance(recipe, Recipe) else recipe
    m = resolve_metric(metric, gwp_set)
    region = region or r.region
    if inputs == "paper":
        if region != r.region:
            raise BudgetError(
                f"the paper's inputs are for region {r.region!r} only; "
                f"--region {region!r} needs a store"
            )
        items = paper_inputs(r)
        kw: dict[str, Any] = dict(paper_intervals=paper_interval_items(r), inputs_mode="paper")
        si, totals, source = None, None, "paper"
    elif inputs == "store":
        if store is None:
            raise BudgetError(
                "a store is needed for inputs='store'; pass a store path, or use inputs='paper'"
            )
        totals = open_totals(store)
        si = store_inputs(
            totals, r, region=region, interval_method=interval_method, coverage=coverage
        )
        items = si.items
        kw = dict(inputs_mode="store")
        source = os.fspath(store) if isinstance(store, (str, os.PathLike)) else "dataset"
    else:
        raise BudgetError(f"inputs={inputs!r} is unknown; expected 'store' or 'paper'")
    res = run_recipe(r, items, propagation=propagation, seed=seed, **kw)
    paper_rule = None
    if res.propagation != "linear":
        paper_rule = run_recipe(r, items, propagation="linear", seed=seed, **kw)
    reasons = si.extra.get("reasons", {}) if si is not None else {}
    for row in res.missing:
        if row["gas"] == "*" and row["item"] in reasons:
            row["reason"] = reasons[row["item"]]
    missing = list(res.missing)
    table = tidy_table(res, m, missing=missing)
    return BudgetRun(
        r,
        m,
        res,
        table,
        headline_table(res, m, paper_rule=paper_rule),
        si,
        totals,
        source,
        os.fspath(store) if isinstance(store, (str, os.PathLike)) else None,
        region=region,
        missing=missing,
        paper_rule=paper_rule,
    )


def budget_from_store(
    store: str | os.PathLike[str] | xr.Dataset | xr.DataArray,
    recipe: str = "reccap2-permafrost",
    metric: str | Metric = "GWP100",
    **kwargs: Any,
) -> pd.DataFrame:
    """The tidy budget table (``item, gas, period, mean, lo, hi, n, unit``) of a store."""
    return compute_budget(store, recipe, metric, inputs="store", **kwargs).table


def budget_from_paper(
    recipe: str = "reccap2-permafrost", metric: str | Metric = "GWP100", **kwargs: Any
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
    run: BudgetRun, out_dir: str | os.PathLike[str], figures: bool = True, report: bool = True
) -> dict[str, str]:
    """Write tables (CSV + Markdown), figures (PNG 200 dpi + SVG) and ``report.html`` of a budget
    run into ``out_dir``. Every CSV has a ``region`` column and every title names the region.

    Returns ``{name: path}`` of every file written.
    """
    from gridflux.budget import plots
    from gridflux.budget.gwp import values_table

    out = os.fspath(out_dir)
    os.makedirs(out, exist_ok=True)
    files: dict[str, str] = {}
    region = run.region

    def put(name: str, df: pd.DataFrame) -> None:
        p = os.path.join(out, name)
        df = df.copy()
        if "region" in df.columns:
            df = df[df["region"].astype(str) == region] if len(df) else df
        else:
            df.insert(0, "region", region)
        df.to_csv(p, index=False)
        files[name] = p

    put("budget.csv", run.table)
    put("headline.csv", run.headline)
    put("missing.csv", pd.DataFrame(run.missing, columns=["item", "gas", "reason"]))
    put("gwp_values.csv", values_table(run.metric))
    title = run.title
    md = [
        f"# {title}",
        "",
        f"Inputs: {run.source}; metric: {run.metric.label}; interval propagation: "
        f"{run.result.propagation}; recipe {run.recipe.name} version {run.recipe.version or '-'}; "
        "fluxes positive to the atmosphere (lateral fluxes and stock changes: positive = loss "
        "from land).",
        "",
        "## Headline",
        "",
        to_markdown(run.headline),
    ]
    if run.blank_totals:
        md += [
            "**Totals not given (inputs missing):**",
            "",
            *[f"- {m['item']}: {m['reason']}" for m in run.blank_totals],
            "",
        ]
    md += [
        "## All items",
        "",
        to_markdown(run.table.assign(label=[run.recipe.label(i) for i in run.table["item"]])),
        f"## Warming potentials ({run.metric.label})",
        "",
        to_markdown(values_table(run.metric)),
    ]
    if run.missing:
        md += ["## Items not computed", "", to_markdown(pd.DataFrame(run.missing))]
    if run.result.by_design:
        md += ["## Gases absent by design", "", to_markdown(pd.DataFrame(run.result.by_design))]
    if run.store is not None:
        s = run.store
        put("members.csv", s.members)
        put("incomplete_years.csv", s.incomplete_years)
        put("period_coverage.csv", s.coverage)
        put("comparisons.csv", s.comparisons)
        excl = s.members[s.members["status"] != "used"]
        if not excl.empty:
            md += [
                "## Members not used (excluded, partial coverage, no data)",
                "",
                to_markdown(excl),
            ]
        if not s.incomplete_years.empty:
            md += ["## Incomplete years (excluded)", "", to_markdown(s.incomplete_years)]
        if not s.comparisons.empty:
            md += ["## Mann-Whitney U tests between sub-ensembles", "", to_markdown(s.comparisons)]
    p = os.path.join(out, "budget.md")
    with open(p, "w") as f:
        f.write("\n".join(md))
    files["budget.md"] = p
    if figures:
        files.update(plots.budget_figures(run, os.path.join(out, "figures")))
    if report:
        from gridflux.budget.report import write_report

        files["report.html"] = write_report(run, os.path.join(out, "report.html"), files)
    return files
