"""Budget recipes: data (YAML) plus small functions that combine budget items.

A recipe (``gridflux/budget/data/recipes/<name>.yaml``, or any YAML path) has

``parameters``
    numbers or arithmetic expressions of earlier parameters (``"1 - a / b"``);
``inputs``
    named items, each either a ``component`` (a row of the component tables), or a gridded
    ensemble with a ``store`` selection and the ``paper`` row that holds its published value;
``steps``
    ``{id, op, gases, terms}`` with ``op`` in :data:`OPERATIONS` (``copy``, ``sum``, ``mean``); a
    term is an item id or ``{item, gas, scale, optional}``; several steps may fill different gases
    of one item. ``propagation`` overrides the recipe's interval propagation for one step;
    ``paper_interval`` names a component whose interval replaces the computed one when the recipe
    runs on the paper's inputs (for published intervals that are not derivable);
``co2eq``
    rows converted to CO2-C equivalents with their total over gases;
``headline``
    the items of the printed summary.

Interval propagation for a linear combination ``y = sum_i w_i x_i`` of items with means ``m_i``
and 95 % bounds ``[l_i, h_i]`` (:data:`PROPAGATION_METHODS`):

``linear`` (the paper's rule)
    ``y_lo = sum_i (w_i l_i if w_i >= 0 else w_i h_i)`` and likewise ``y_hi``: bounds add as if the
    terms were perfectly correlated (the widest, conservative choice).
``quadrature``
    independent terms with asymmetric Gaussian-like half-widths:
    ``y_lo = y - sqrt(sum_i (w_i d_i^-)^2)``, ``y_hi = y + sqrt(sum_i (w_i d_i^+)^2)`` where
    ``d^-``/``d^+`` are each term's lower/upper half-widths (swapped for ``w_i < 0``).
``montecarlo``
    each *input* is sampled once from a split normal (mode ``m``, sigma ``(m - l)/1.96`` below
    and ``(h - m)/1.96`` above, so its own 2.5/97.5 % points are ``l`` and ``h``); samples flow
    through the steps (shared inputs stay correlated) and each result's interval is the 2.5 and
    97.5 % points of its samples; its central value stays ``sum_i w_i m_i``.
"""

from __future__ import annotations

import ast
import glob
import operator
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import yaml

from gridflux.budget.components import UNITS, Item
from gridflux.budget.ensemble import Estimate
from gridflux.budget.gwp import Metric, co2eq_factor, metric_label, resolve_metric
from gridflux.errors import BudgetError

RECIPE_DIR = os.path.join(os.path.dirname(__file__), "data", "recipes")
PROPAGATION_METHODS = ("linear", "quadrature", "montecarlo")
OPERATIONS = ("copy", "sum", "mean")
#: period-mean coverage rules: ``full`` (every year of the period), ``partial`` (any year; the
#: label states the years used)
COVERAGE_RULES = ("full", "partial")
Z95 = 1.959963984540054


# ----------------------------------------------------------------------------- recipe files
@dataclass
class Recipe:
    """A parsed recipe (see the module docstring for the schema)."""

    name: str
    title: str
    region: str
    interval: dict[str, Any]
    propagation: str
    parameters: dict[str, float]
    ensemble_sets: dict[str, list[str]]
    inputs: dict[str, dict[str, Any]]
    steps: list[dict[str, Any]]
    co2eq: list[dict[str, Any]]
    headline: list[str]
    comparisons: list[dict[str, Any]] = field(default_factory=list)
    path: str = ""
    version: str = ""
    absent_by_design: dict[str, dict[str, str]] = field(default_factory=dict)
    coverage: dict[str, Any] = field(default_factory=lambda: {"rule": "full"})
    exclusions: list[dict[str, Any]] = field(default_factory=list)
    regions: dict[str, dict[str, Any]] = field(default_factory=dict)
    figures: dict[str, Any] = field(default_factory=dict)

    def is_absent_by_design(self, item: str, gas: str) -> bool:
        """Whether the recipe declares ``gas`` absent from ``item`` by design."""
        return gas in self.absent_by_design.get(item, {})

    def label(self, item: str) -> str:
        """Human label of an input or step id."""
        if item in self.inputs:
            return str(self.inputs[item].get("label", item))
        for s in self.steps:
            if s["id"] == item and "label" in s:
                return str(s["label"])
        return item

    def paper_rows(self) -> dict[str, dict[str, str]]:
        """item id -> {table: [row, ...]} for every input and step that reproduces a paper row."""
        out: dict[str, dict[str, list[str]]] = {}
        for name, spec in self.inputs.items():
            if "paper_rows" in spec:
                out[name] = {
                    t: (r if isinstance(r, list) else [r]) for t, r in spec["paper_rows"].items()
                }
        for s in self.steps:
            if "paper_rows" in s:
                out[s["id"]] = {
                    t: (r if isinstance(r, list) else [r]) for t, r in s["paper_rows"].items()
                }
        return out


def available_recipes() -> list[str]:
    """Names of the packaged recipes."""
    return sorted(
        os.path.splitext(os.path.basename(p))[0]
        for p in glob.glob(os.path.join(RECIPE_DIR, "*.yaml"))
    )


_BINOPS = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
}


def _eval_expr(expr: str, names: Mapping[str, float], where: str) -> float:
    """Evaluate ``+ - * /`` arithmetic of numbers and earlier parameter names (no other Python)."""

    def ev(node: ast.AST) -> float:
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
            return float(node.value)
        if isinstance(node, ast.Name):
            if node.id not in names:
                raise BudgetError(
                    f"{where}: parameter {node.id!r} is not defined before use; have "
                    f"{sorted(names)}"
                )
            return float(names[node.id])
        if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
            return _BINOPS[type(node.op)](ev(node.left), ev(node.right))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -ev(node.operand)
        raise BudgetError(
            f"{where}: expression {expr!r} may only use numbers, parameter names and + - * /"
        )

    try:
        return ev(ast.parse(str(expr), mode="eval"))
    except SyntaxError as exc:
        raise BudgetError(f"{where}: cannot parse expression {expr!r}") from exc


def load_recipe(name_or_path: str | os.PathLike[str]) -> Recipe:
    """Load a packaged recipe by name (``reccap2-permafrost``) or a recipe YAML by path."""
    path = str(name_or_path)
    if not os.path.exists(path):
        path = os.path.join(RECIPE_DIR, f"{name_or_path}.yaml")
        if not os.path.exists(path):
            raise BudgetError(
                f"recipe {name_or_path!r} is neither a file nor a packaged recipe; "
                f"packaged: {available_recipes()}"
            )
    with open(path) as f:
        raw = yaml.safe_load(f)
    if not isinstance(raw, dict):
        raise BudgetError(f"{path}: a recipe must be a YAML mapping")
    for key in ("name", "inputs", "steps"):
        if key not in raw:
            raise BudgetError(f"{path}: recipe lacks the key {key!r}")
    params: dict[str, float] = {}
    for k, v in (raw.get("parameters") or {}).items():
        params[k] = (
            float(v)
            if isinstance(v, (int, float))
            else _eval_expr(v, params, f"{path}: parameters.{k}")
        )
    prop = raw.get("propagation", "linear")
    if prop not in PROPAGATION_METHODS:
        raise BudgetError(
            f"{path}: propagation {prop!r} is unknown; expected one of {PROPAGATION_METHODS}"
        )
    recipe = Recipe(
        name=raw["name"],
        title=raw.get("title", raw["name"]),
        region=raw.get("region", "permafrost"),
        interval=dict(raw.get("interval") or {"method": "percentile", "level": 0.95}),
        propagation=prop,
        parameters=params,
        ensemble_sets={k: list(v) for k, v in (raw.get("ensemble_sets") or {}).items()},
        inputs=dict(raw["inputs"]),
        steps=list(raw["steps"]),
        co2eq=list(raw.get("co2eq") or []),
        headline=list(raw.get("headline") or []),
        comparisons=list(raw.get("comparisons") or []),
        path=path,
        version=str(raw.get("version", "")),
        absent_by_design={
            k: {g: str(why) for g, why in v.items()}
            for k, v in (raw.get("absent_by_design") or {}).items()
        },
        coverage=dict(raw.get("coverage") or {"rule": "full"}),
        exclusions=list(raw.get("exclusions") or []),
        regions=dict(raw.get("regions") or {}),
        figures=dict(raw.get("figures") or {}),
    )
    _validate(recipe)
    return recipe


def _validate(r: Recipe) -> None:
    known = set(r.inputs)
    for name, spec in r.inputs.items():
        if "component" not in spec and "store" not in spec and "paper" not in spec:
            raise BudgetError(f"{r.path}: input {name!r} needs 'component', or 'store' and 'paper'")
    for i, s in enumerate(r.steps):
        where = f"{r.path}: steps[{i}] (id {s.get('id')!r})"
        if s.get("op") not in OPERATIONS:
            raise BudgetError(
                f"{where}: op {s.get('op')!r} is unknown; expected one of {OPERATIONS}"
            )
        for g in s.get("gases", []):
            if g not in UNITS:
                raise BudgetError(f"{where}: gas {g!r} is unknown; expected one of {sorted(UNITS)}")
        for t in s.get("terms", []):
            item = t if isinstance(t, str) else t.get("item")
            if item not in known:
                raise BudgetError(f"{where}: term {item!r} is not an input or an earlier step")
            if (
                isinstance(t, dict)
                and isinstance(t.get("scale"), str)
                and t["scale"] not in r.parameters
            ):
                raise BudgetError(
                    f"{where}: scale {t['scale']!r} is not a recipe parameter; have "
                    f"{sorted(r.parameters)}"
                )
        if s.get("propagation", r.propagation) not in PROPAGATION_METHODS:
            raise BudgetError(
                f"{where}: propagation {s.get('propagation')!r}; expected one of "
                f"{PROPAGATION_METHODS}"
            )
        known.add(s["id"])
    for row in r.co2eq:
        if row.get("item") not in known:
            raise BudgetError(
                f"{r.path}: co2eq row {row.get('row')!r}: item {row.get('item')!r} is not defined"
            )
    for h in r.headline:
        if h not in known:
            raise BudgetError(f"{r.path}: headline item {h!r} is not defined")
    for item in r.absent_by_design:
        if item not in known:
            raise BudgetError(f"{r.path}: absent_by_design names {item!r}, which is not defined")
    if r.coverage.get("rule", "full") not in COVERAGE_RULES:
        raise BudgetError(
            f"{r.path}: coverage rule {r.coverage.get('rule')!r}; expected one of {COVERAGE_RULES}"
        )
    for name, spec in r.inputs.items():
        for g, o in (spec.get("origin") or {}).items():
            if o not in ("fossil", "non-fossil"):
                raise BudgetError(
                    f"{r.path}: input {name!r}: origin of {g} is {o!r}; "
                    "expected fossil or non-fossil"
                )


# ----------------------------------------------------------------------------- propagation (pure)
def _join_periods(es: list[Estimate]) -> str | None:
    ps: list[str] = []
    for e in es:
        for tok in (e.period or "").split("; "):
            if tok and tok not in ps:
                ps.append(tok)
    return "; ".join(ps) if ps else None


def combine(terms: list[tuple[Estimate, float]], method: str = "linear") -> Estimate:
    """The linear combination ``sum_i w_i x_i`` of estimates with intervals by ``method``.

    Parameters
    ----------
    terms : list of (Estimate, weight)
    method : {"linear", "quadrature", "montecarlo"}
        See the module docstring. ``montecarlo`` needs ``samples`` on every estimate.
    """
    if method not in PROPAGATION_METHODS:
        raise BudgetError(
            f"propagation {method!r} is unknown; expected one of {PROPAGATION_METHODS}"
        )
    scaled = [e.scaled(w) for e, w in terms]
    mean = float(sum(e.mean for e in scaled))
    period = _join_periods([e for e, _ in terms])
    samples = None
    if all(e.samples is not None for e in scaled) and scaled:
        samples = np.sum([e.samples for e in scaled], axis=0)
    parts: dict[tuple[str, str], float] | None = None
    if scaled and all(e.parts is not None for e in scaled):
        parts = {}
        for e in scaled:
            for k, w in (e.parts or {}).items():
                parts[k] = parts.get(k, 0.0) + w
    if method == "linear":
        lo, hi = float(sum(e.lo for e in scaled)), float(sum(e.hi for e in scaled))
    elif method == "quadrature":
        lo = mean - float(np.sqrt(sum((e.mean - e.lo) ** 2 for e in scaled)))
        hi = mean + float(np.sqrt(sum((e.hi - e.mean) ** 2 for e in scaled)))
    else:
        if samples is None:
            raise BudgetError(
                "montecarlo propagation needs samples on every input; run the recipe with "
                "propagation='montecarlo' so that inputs are sampled"
            )
        lo, hi = (float(v) for v in np.percentile(samples, [2.5, 97.5]))
    return Estimate(mean, lo, hi, None, period, samples, parts)


def sample_estimate(e: Estimate, n: int, rng: np.random.Generator) -> np.ndarray:
    """Split-normal samples whose 2.5 / 97.5 % points are ``e.lo`` / ``e.hi`` and whose mode is
    ``e.mean``."""
    z = rng.standard_normal(n)
    s_lo = max(e.mean - e.lo, 0.0) / Z95
    s_hi = max(e.hi - e.mean, 0.0) / Z95
    return e.mean + np.where(z < 0, z * s_lo, z * s_hi)


# ----------------------------------------------------------------------------- running a recipe
@dataclass
class RecipeResult:
    """Items computed by a recipe.

    ``items``: id -> {gas: Estimate} in element-mass units (:data:`UNITS`), inputs first then steps
    in recipe order; ``missing``: rows ``{item, gas, reason}`` for every item-gas that could not be
    computed (an input without data, a term lacking a gas); ``by_design``: rows ``{item, gas,
    reason}`` of gases a step left out because the recipe declares them absent by design;
    ``propagation`` the method used.
    """

    recipe: Recipe
    items: dict[str, Item]
    missing: list[dict[str, str]]
    propagation: str
    inputs_mode: str = "paper"
    reports: dict[str, Any] = field(default_factory=dict)
    by_design: list[dict[str, str]] = field(default_factory=list)

    def missing_inputs(self, item: str, gas: str) -> list[str]:
        """The recipe inputs without data behind a missing ``item``/``gas`` (``input (gas)``)."""
        out: list[str] = []
        seen: set[tuple[str, str]] = set()

        def walk(name: str, g: str) -> None:
            if (name, g) in seen:
                return
            seen.add((name, g))
            if g in self.items.get(name, {}):
                return
            if name in self.recipe.inputs:
                out.append(f"{name} ({g})")
                return
            for s in self.recipe.steps:
                if s["id"] != name or g not in s.get("gases", []):
                    continue
                for t in s.get("terms", []):
                    spec = {"item": t} if isinstance(t, str) else dict(t)
                    tg = spec.get("gas", g)
                    if self.recipe.is_absent_by_design(spec["item"], tg):
                        continue
                    walk(spec["item"], tg)

        walk(item, gas)
        return out


def run_recipe(
    recipe: Recipe | str,
    inputs: Mapping[str, Item],
    propagation: str | None = None,
    paper_intervals: Mapping[str, Item] | None = None,
    n_samples: int = 20000,
    seed: int = 0,
    inputs_mode: str = "store",
) -> RecipeResult:
    """Evaluate a recipe's steps on its inputs.

    Parameters
    ----------
    recipe : Recipe or name
    inputs : mapping id -> {gas: Estimate}
        One entry per recipe input (missing ones are reported, not fatal).
    propagation : str, optional
        Overrides the recipe's default (steps with their own ``propagation`` keep it, except under
        ``montecarlo`` which applies to every step).
    paper_intervals : mapping, optional
        Component items for steps with ``paper_interval`` (used when running on the paper's inputs).
    n_samples, seed : int
        Monte Carlo sample count and random seed.

    Every estimate carries ``parts``: itself as a linear combination of the inputs, so that each
    source can later take its own warming potential (:func:`co2eq_estimate`).
    """
    r = load_recipe(recipe) if isinstance(recipe, str) else recipe
    method = propagation or r.propagation
    if method not in PROPAGATION_METHODS:
        raise BudgetError(
            f"propagation {method!r} is unknown; expected one of {PROPAGATION_METHODS}"
        )
    items: dict[str, Item] = {}
    missing: list[dict[str, str]] = []
    by_design: list[dict[str, str]] = []
    rng = np.random.default_rng(seed)
    for name in r.inputs:
        item = {
            g: replace(e, parts={(name, g): 1.0})
            for g, e in (inputs.get(name) or {}).items()
            if np.isfinite(e.mean)
        }
        if method == "montecarlo":
            item = {
                g: replace(e, samples=sample_estimate(e, n_samples, rng)) for g, e in item.items()
            }
        if not item:
            missing.append({"item": name, "gas": "*", "reason": "no input data"})
        items[name] = item
    for s in r.steps:
        out = items.setdefault(s["id"], {})
        step_method = "montecarlo" if method == "montecarlo" else s.get("propagation", method)
        for gas in s.get("gases", []):
            terms, why = [], None
            for t in s.get("terms", []):
                spec = {"item": t} if isinstance(t, str) else dict(t)
                src = items.get(spec["item"], {})
                g = spec.get("gas", gas)
                if g not in src:
                    if r.is_absent_by_design(spec["item"], g):
                        by_design.append(
                            {
                                "item": s["id"],
                                "gas": gas,
                                "reason": f"{spec['item']} has no {g} by design: "
                                + r.absent_by_design[spec["item"]][g],
                            }
                        )
                        continue
                    why = f"term {spec['item']!r} has no {g}"
                    break
                scale = spec.get("scale", 1.0)
                w = r.parameters[scale] if isinstance(scale, str) else float(scale)
                terms.append((src[g], w))
            if why or not terms:
                missing.append({"item": s["id"], "gas": gas, "reason": why or "no terms"})
                continue
            if s["op"] == "mean":
                terms = [(e, w / len(terms)) for e, w in terms]
            elif s["op"] == "copy" and len(terms) != 1:
                raise BudgetError(
                    f"{r.path}: step {s['id']!r}: 'copy' takes exactly one term, got {len(terms)}"
                )
            est = combine(terms, step_method)
            given = s.get("paper_interval")
            if (
                given
                and paper_intervals
                and given in paper_intervals
                and gas in paper_intervals[given]
            ):
                p = paper_intervals[given][gas]
                est = replace(est, lo=est.mean - (p.mean - p.lo), hi=est.mean + (p.hi - p.mean))
            out[gas] = est
    return RecipeResult(r, items, missing, method, inputs_mode, by_design=by_design)


GHGS = ("CO2", "CH4", "N2O")


def input_origin(recipe: Recipe, name: str, gas: str) -> str | None:
    """The declared origin (``fossil``/``non-fossil``) of ``gas`` in recipe input ``name``."""
    spec = recipe.inputs.get(name, {})
    return (spec.get("origin") or {}).get(gas)


def co2eq_estimate(
    result: RecipeResult, item: str, gas: str, metric: str | Metric, gwp_set: str | None = None
) -> Estimate | None:
    """One gas of one item in Tg CO2-C eq, each source at the warming potential of its origin.

    When all sources of the item share one factor the item's estimate is scaled (its interval as
    the recipe propagated it); when the factors differ (fossil and biogenic CH4 under
    ``ar6-per-source``) it is recombined from the inputs with their own factors by the result's
    propagation (for ``linear`` and ``montecarlo`` identical to scaling each part in place).
    """
    m = resolve_metric(metric, gwp_set)
    e = result.items.get(item, {}).get(gas)
    if e is None:
        return None
    if gas == "CO2":
        return e
    if not e.parts:
        return e.scaled(co2eq_factor(gas, m, None, item=item))
    f = {
        k: co2eq_factor(k[1], m, input_origin(result.recipe, k[0], k[1]), item=item)
        for k in e.parts
    }
    if len(set(f.values())) == 1:
        return e.scaled(next(iter(f.values())))
    method = result.propagation
    terms = [(result.items[k[0]][k[1]], w * f[k]) for k, w in e.parts.items()]
    out = combine(terms, method)
    return replace(out, period=e.period, n=e.n)


def co2eq_total(eq: Mapping[str, Estimate], method: str) -> Estimate:
    """The CO2-eq total over gases, propagated like the budget (``linear``, ``quadrature`` or
    ``montecarlo``; Monte Carlo sums the gases' samples)."""
    if method == "montecarlo" and not all(e.samples is not None for e in eq.values()):
        raise BudgetError("montecarlo propagation of a CO2-eq total needs samples on every gas")
    return combine([(e, 1.0) for e in eq.values()], method)


def row_gases(result: RecipeResult, row: Mapping[str, Any]) -> list[str]:
    """The gases a co2eq row's total needs: its ``gases`` (default all three) minus those the
    recipe declares absent by design for its item."""
    gases = list(row.get("gases", GHGS))
    return [g for g in gases if not result.recipe.is_absent_by_design(row["item"], g)]


def co2eq_rows(
    result: RecipeResult,
    metric: str | Metric = "GWP100",
    gwp_set: str | None = None,
    missing: list[dict[str, str]] | None = None,
) -> dict[str, Item]:
    """The recipe's ``co2eq`` rows: per-gas values in Tg CO2-C eq/yr and their ``total``.

    A ``total`` is given only when every gas the row needs (:func:`row_gases`) is present;
    otherwise it is left out and, if ``missing`` is a list, a row naming the missing inputs is
    appended to it. The total uses the result's propagation.
    """
    m = resolve_metric(metric, gwp_set)
    out: dict[str, Item] = {}
    for row in result.recipe.co2eq:
        need = row_gases(result, row)
        eq: Item = {}
        for g in need:
            e = co2eq_estimate(result, row["item"], g, m)
            if e is not None:
                eq[g] = e
        lacking = [g for g in need if g not in eq]
        if eq and not lacking:
            eq["total"] = co2eq_total(eq, result.propagation)
        elif lacking and missing is not None:
            inputs = [i for g in lacking for i in result.missing_inputs(row["item"], g)]
            missing.append(
                {
                    "item": row["row"],
                    "gas": "total",
                    "reason": f"CO2-eq total not given: {', '.join(lacking)} missing"
                    + (f" (inputs without data: {', '.join(inputs)})" if inputs else ""),
                }
            )
        out[row["row"]] = eq
    return out


def unit_of(gas: str, metric: str | Metric | None = None) -> str:
    """Unit string of a gas value (or of CO2-eq values when ``metric`` is given)."""
    return metric_label(metric) if metric else UNITS[gas]
