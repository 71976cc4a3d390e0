"""In-suite mutation check: deliberate faults in the recipe, the arithmetic or the warming
potentials, each of which must make at least one reproduction check fail.

The checks are the same cell-by-cell comparisons with the paper as test_paper_reproduction.py
(Tables 4, 6, 7 and the CO2-eq totals printed in the text), plus, for faults in the store path,
the hand-computed numbers of the small store of conftest.py. A fault that no check notices means a
test suite that cannot fail where it matters.
"""

from __future__ import annotations

import copy

import pytest
from test_paper_reproduction import (
    PRINTED_TOTALS,
    RECIPE,
    RESULT,
    T4_COLS,
    T6_COLS,
    _cases,
    cell_ok,
    paper_result,
    t7_cases,
    t7_ok,
    totals_ok,
)

from gridflux.budget import gwp as gwp_mod
from gridflux.budget import recipes as recipes_mod


def reproduction_failures(result) -> list[str]:
    """Every reproduction check that fails on ``result`` (empty: the paper is reproduced)."""
    out = []
    for tab, cols in (("table4", T4_COLS), ("table6", T6_COLS)):
        for row, item, gas, stat, printed in _cases(tab, cols, result.recipe, result):
            ok, msg = cell_ok(result, item, gas, stat, printed)
            if not ok:
                out.append(f"{tab} {row}: {msg}")
    from gridflux.budget.recipes import co2eq_rows

    eq = co2eq_rows(result, "GWP100", "reccap2-paper")
    for row, gas, stat, printed in t7_cases():
        ok, msg = t7_ok(result, row, gas, stat, printed, eq)
        if not ok:
            out.append(f"table7 {row}: {msg}")
    for (horizon, item), printed in PRINTED_TOTALS.items():
        try:
            ok, msg = totals_ok(result, horizon, item, printed)
        except KeyError as exc:
            ok, msg = False, f"{horizon} {item}: no total ({exc})"
        if not ok:
            out.append(msg)
    return out


def store_failures(totals) -> list[str]:
    """The hand numbers of the small store (see test_store_budget.py) that a run does not give."""
    from gridflux.budget.api import compute_budget

    run = compute_budget(totals)
    it = run.result.items
    out = []
    checks = {
        "N2O mean without the named system": (it["inversions_full_period"]["N2O"].mean, 0.18),
        "CH4 inversions, 2 groups": (it["inversions_full_period"]["CH4"].mean, 27.0),
        "CH4 inversions n": (it["inversions_full_period"]["CH4"].n, 2),
        "model NBP of fire runs": (it["model_nbp"]["CO2"].mean, -66.0),
    }
    for name, (got, want) in checks.items():
        if got != pytest.approx(want):
            out.append(f"{name}: {got} vs {want}")
    return out


def _step(recipe, step_id, gas=None):
    for s in recipe.steps:
        if s["id"] == step_id and (gas is None or gas in s.get("gases", [])):
            return s
    raise KeyError(step_id)


def drop_n2o_n_from_n_stock_change(mp):
    r = copy.deepcopy(RECIPE)
    # the N stock change = lateral N only (the C stock change keeps its gas term)
    s = _step(r, "stock_change_bottom_up")
    s["gases"] = ["C"]
    r.steps.append(
        {"id": "stock_change_bottom_up", "op": "copy", "gases": ["N"], "terms": ["lateral"]}
    )
    return paper_result(r)


def top_down_n_times_4(mp):
    r = copy.deepcopy(RECIPE)
    _step(r, "top_down")["terms"] = [{"item": "inversions_full_period", "scale": 4.0}]
    return paper_result(r)


def inland_waters_sign_swapped(mp):
    r = copy.deepcopy(RECIPE)
    _step(r, "bottom_up", "CO2")["terms"] = [
        "bottom_up_vegetated",
        {"item": "inland_waters", "scale": -1.0},
    ]
    return paper_result(r)


def fossil_gwp_at_20_years(mp):
    sets = copy.deepcopy(gwp_mod.gwp_sets())
    sets["reccap2-paper"]["CH4"][20] = {"fossil": "fossil", "non-fossil": "fossil"}
    mp.setattr(gwp_mod, "gwp_sets", lambda: sets)
    return RESULT


def no_gwp500_n2o_override(mp):
    sets = copy.deepcopy(gwp_mod.gwp_sets())
    sets["reccap2-paper"]["overrides"] = []
    mp.setattr(gwp_mod, "gwp_sets", lambda: sets)
    return RESULT


def ch4_c_to_co2_c_eq_with_12_over_44(mp):
    mp.setitem(gwp_mod.ELEMENT_TO_CO2C_PER_GWP, "CH4", 12.0 / 44.0)
    return RESULT


def n2o_n_counted_as_one_n(mp):
    mp.setitem(gwp_mod.ELEMENT_TO_CO2C_PER_GWP, "N2O", 12.0 / 14.0)
    return RESULT


def no_area_correction(mp):
    r = copy.deepcopy(RECIPE)
    r.parameters["vegetated_fraction"] = 1.0
    return paper_result(r)


def inland_waters_not_added(mp):
    r = copy.deepcopy(RECIPE)
    _step(r, "bottom_up", "CO2")["terms"] = ["bottom_up_vegetated"]
    return paper_result(r)


def table6_anthropogenic_ch4_in_the_totals(mp):
    r = copy.deepcopy(RECIPE)
    _step(r, "anthropogenic", "CH4")["terms"] = ["fossil_fuels", "agriculture_waste"]
    return paper_result(r)


def quadrature_where_the_paper_sums_linearly(mp):
    return paper_result(RECIPE, propagation="quadrature")


def mean_of_sides_summed(mp):
    r = copy.deepcopy(RECIPE)
    _step(r, "bottom_up_vegetated")["op"] = "sum"
    return paper_result(r)


def interval_bounds_not_swapped_for_negative_weights(mp):
    from gridflux.budget.ensemble import Estimate

    def scaled(self, factor):
        return Estimate(
            self.mean * factor,
            self.lo * factor,
            self.hi * factor,
            self.n,
            self.period,
            None,
            None if self.parts is None else {k: w * factor for k, w in self.parts.items()},
        )

    mp.setattr(Estimate, "scaled", scaled)
    r = copy.deepcopy(RECIPE)
    # a difference in the recipe: the stock change written as lateral - (-gas C)
    _step(r, "stock_change_bottom_up")["terms"] = [
        {"item": "gas_c_and_n_bottom_up", "scale": -1.0},
        "lateral",
    ]
    return paper_result(r)


MUTATIONS = [
    drop_n2o_n_from_n_stock_change,
    top_down_n_times_4,
    inland_waters_sign_swapped,
    fossil_gwp_at_20_years,
    no_gwp500_n2o_override,
    ch4_c_to_co2_c_eq_with_12_over_44,
    n2o_n_counted_as_one_n,
    no_area_correction,
    inland_waters_not_added,
    table6_anthropogenic_ch4_in_the_totals,
    quadrature_where_the_paper_sums_linearly,
    mean_of_sides_summed,
]


def test_the_unmutated_budget_passes_every_check():
    assert reproduction_failures(RESULT) == []


@pytest.mark.parametrize("fault", MUTATIONS, ids=lambda f: f.__name__)
def test_each_fault_fails_a_reproduction_check(fault, monkeypatch):
    result = fault(monkeypatch)
    failures = reproduction_failures(result)
    assert failures, f"fault {fault.__name__!r} passes every reproduction check"


def test_sign_error_in_interval_scaling_is_caught(monkeypatch):
    """Bounds must swap under a negative weight: a stock change written as a difference catches
    a scaled() that forgets to."""
    from gridflux.budget.ensemble import Estimate

    e = Estimate(1.0, 0.0, 3.0).scaled(-1.0)
    assert (e.lo, e.hi) == (-3.0, 0.0)
    # with the fault, the same difference gives lo > hi and fails the reproduction
    r = copy.deepcopy(RECIPE)
    _step(r, "stock_change_bottom_up")["terms"] = [
        {"item": "gas_c_and_n_bottom_up", "scale": 1.0},
        "lateral",
    ]
    assert reproduction_failures(paper_result(r)) == []  # the same sum, written plainly
    assert reproduction_failures(interval_bounds_not_swapped_for_negative_weights(monkeypatch))


def _no_exclusion(totals, mp):
    r = copy.deepcopy(RECIPE)
    r.exclusions = []
    mp.setattr(recipes_mod, "load_recipe", lambda *a, **k: r)
    import gridflux.budget.api as api

    mp.setattr(api, "load_recipe", lambda *a, **k: r)
    return totals


def _no_group_first(totals, mp):
    r = copy.deepcopy(RECIPE)
    for spec in r.inputs.values():
        st = spec.get("store") or {}
        for s in st.values() if isinstance(st, dict) and "variable" not in st else [st]:
            if isinstance(s, dict):
                s.pop("group_first", None)
    import gridflux.budget.api as api

    mp.setattr(api, "load_recipe", lambda *a, **k: r)
    return totals


def test_the_unmutated_store_budget_passes(totals):
    assert store_failures(totals) == []


@pytest.mark.parametrize(
    "fault", [_no_exclusion, _no_group_first], ids=lambda f: f.__name__.strip("_")
)
def test_each_store_fault_fails_a_check(fault, totals, monkeypatch):
    assert store_failures(fault(totals, monkeypatch)), f"{fault.__name__} passes"
