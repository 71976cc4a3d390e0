"""The reccap2-permafrost recipe on the paper's Table 2/3/5 inputs reproduces Tables 4, 6 and 7.

The published tables are kept as fixtures in tests/budget/data/ (copies of ../shared/paper/*.csv),
so these tests run anywhere. Tolerances (PAPER.md): +-2 in Tables 4 and 6; in Table 7 within 2 %
or +-6 Tg CO2-C eq. Rows not derivable from the published inputs (the intervals of Table 6's two
"gas C and N" rows; Table 7's fires_data_driven row) are used as given.
"""

import os

import numpy as np
import pandas as pd
import pytest

from gridflux.budget.inputs import paper_inputs, paper_interval_items
from gridflux.budget.recipes import co2eq_rows, load_recipe, run_recipe

DATA = os.path.join(os.path.dirname(__file__), "data")
SHARED = os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "paper")
RECIPE = load_recipe("reccap2-permafrost")
RESULT = run_recipe(
    RECIPE, paper_inputs(RECIPE), paper_intervals=paper_interval_items(RECIPE), inputs_mode="paper"
)
T4_COLS = {"CO2": "co2", "CH4": "ch4", "N2O": "n2o"}
T6_COLS = {"CO2": "c_or_co2", "C": "c_or_co2", "CH4": "ch4", "N2O": "n_or_n2o", "N": "n_or_n2o"}


def _table(name):
    return pd.read_csv(os.path.join(DATA, name)).set_index("row")


def _cases(table, cols):
    """(row, item, gas, stat, published) for every printed cell of a paper table the recipe maps.

    A column prefix shared by two gases (Table 6's ``c_or_co2``: CO2 or C) is matched to the gas the
    item has; an item with neither still yields a case (which then fails).
    """
    t = _table({"table4": "table4_integrated.csv", "table6": "table6_totals.csv"}[table])
    prefixes = {}
    for gas, pre in cols.items():
        prefixes.setdefault(pre, []).append(gas)
    out = []
    for item, tabs in RECIPE.paper_rows().items():
        for row in tabs.get(table, []):
            for pre, gases in prefixes.items():
                gas = next((g for g in gases if g in RESULT.items[item]), gases[0])
                for stat in ("mean", "lo", "hi"):
                    v = t.loc[row, f"{pre}_{stat}"]
                    if not pd.isna(v):
                        out.append((row, item, gas, stat, float(v)))
    return out


def _value(item, gas, stat):
    return getattr(RESULT.items[item][gas], stat)


def test_every_table4_row_is_mapped():
    mapped = {r for tabs in RECIPE.paper_rows().values() for r in tabs.get("table4", [])}
    assert mapped == set(_table("table4_integrated.csv").index)


def test_every_table6_row_is_mapped():
    mapped = {r for tabs in RECIPE.paper_rows().values() for r in tabs.get("table6", [])}
    assert mapped == set(_table("table6_totals.csv").index)


@pytest.mark.parametrize(
    "row,item,gas,stat,published",
    _cases("table4", T4_COLS),
    ids=lambda v: str(v) if isinstance(v, str) else None,
)
def test_table4(row, item, gas, stat, published):
    assert gas in RESULT.items[item], f"{item} has no {gas} (table 4 row {row})"
    assert _value(item, gas, stat) == pytest.approx(published, abs=2.0), (
        f"table 4 {row} {gas} {stat}"
    )


def _t6_cases():
    return _cases("table6", T6_COLS)


@pytest.mark.parametrize(
    "row,item,gas,stat,published", _t6_cases(), ids=lambda v: str(v) if isinstance(v, str) else None
)
def test_table6(row, item, gas, stat, published):
    assert gas in RESULT.items[item], f"{item} has no {gas} (table 6 row {row})"
    assert _value(item, gas, stat) == pytest.approx(published, abs=2.0), (
        f"table 6 {row} {gas} {stat}"
    )


@pytest.mark.parametrize(
    "name,table,cols",
    [("table4_integrated.csv", "table4", T4_COLS), ("table6_totals.csv", "table6", T6_COLS)],
)
def test_every_printed_cell_is_checked(name, table, cols):
    t = _table(name)
    printed = sum(
        int(not pd.isna(t.loc[r, c]))
        for r in t.index
        for c in t.columns
        if c.endswith(("_mean", "_lo", "_hi"))
    )
    # table 4 lists the inland-waters row twice under two names; one item maps to both
    assert len(_cases(table, cols)) == printed


T7 = _table("table7_gwp100.csv")
EQ = co2eq_rows(RESULT, "GWP100")
T7_CASES = [
    (row, gas, stat, float(T7.loc[row, f"{gas.lower()}_{stat}"]))
    for row in T7.index
    for gas in ("CO2", "CH4", "N2O", "total")
    for stat in ("mean", "lo", "hi")
    if not pd.isna(T7.loc[row, f"{gas.lower()}_{stat}"])
]


@pytest.mark.parametrize(
    "row,gas,stat,published", T7_CASES, ids=lambda v: str(v) if isinstance(v, str) else None
)
def test_table7_gwp100(row, gas, stat, published):
    got = getattr(EQ[row][gas], stat)
    assert abs(got - published) <= max(6.0, 0.02 * abs(published)), (
        f"table 7 {row} {gas} {stat}: {got} vs {published}"
    )


def test_table7_rows_all_present():
    assert set(EQ) == set(T7.index)


def test_hand_checks_of_paper_md_arithmetic():
    """The numbers PAPER.md spells out, recomputed by hand."""
    f = 1 - 1.38 / 17.05
    e = RESULT.items["model_nee_plus_abrupt_thaw"]["CO2"]
    assert (e.mean, e.lo, e.hi) == pytest.approx((-350 * f + 19, -1040 * f + 13, -150 * f + 26))
    e = RESULT.items["bottom_up_vegetated"]["CO2"]
    assert e.mean == pytest.approx(((-350 * f + 19) + (-340 + 121)) / 2)
    e = RESULT.items["bottom_up"]["CH4"]
    assert e.mean == pytest.approx(((12 + 19) + (25.6 + 1.8)) / 2 + 9.4)
    e = RESULT.items["anthropogenic"]["CH4"]  # quadrature of independent sources
    assert (e.lo, e.hi) == pytest.approx((5.44 - np.hypot(1.6, 0.1), 5.44 + np.hypot(1.6, 0.1)))


def test_fixtures_match_shared_paper_tables():
    if not os.path.isdir(SHARED):
        pytest.skip(
            f"the shared paper tables are not beside the repository ({SHARED}); fixtures used alone"
        )
    for name in os.listdir(DATA):
        if name.endswith(".csv"):
            assert pd.read_csv(os.path.join(DATA, name)).equals(
                pd.read_csv(os.path.join(SHARED, name))
            ), name


def test_propagation_options_on_a_two_term_sum():
    from gridflux.budget.ensemble import Estimate
    from gridflux.budget.recipes import combine, sample_estimate

    a, b = Estimate(10.0, 7.0, 14.0), Estimate(-5.0, -9.0, -4.0)
    lin = combine([(a, 1.0), (b, 1.0)], "linear")
    assert (lin.mean, lin.lo, lin.hi) == (5.0, -2.0, 10.0)
    q = combine([(a, 1.0), (b, 1.0)], "quadrature")
    assert (q.lo, q.hi) == pytest.approx((5 - np.hypot(3, 4), 5 + np.hypot(4, 1)))
    d = combine([(a, 1.0), (b, -1.0)], "linear")  # difference: bounds cross over
    assert (d.mean, d.lo, d.hi) == (15.0, 11.0, 23.0)
    rng = np.random.default_rng(0)
    ia = Estimate(10.0, 7.0, 14.0, samples=sample_estimate(a, 200_000, rng))
    ib = Estimate(0.0, -3.0, 3.0, samples=sample_estimate(Estimate(0.0, -3.0, 3.0), 200_000, rng))
    mc = combine([(ia, 1.0), (ib, 1.0)], "montecarlo")
    # each input alone reproduces its own bounds
    assert np.percentile(ia.samples, [2.5, 97.5]) == pytest.approx([7.0, 14.0], abs=0.05)
    # independent sum: inside the linear interval, wider than each part
    assert -3 + 7 < mc.lo < 7.0 and 14.0 < mc.hi < 14 + 3


@pytest.mark.parametrize("propagation", ["quadrature", "montecarlo"])
def test_other_propagations_narrow_the_interval_and_keep_means(propagation):
    res = run_recipe(RECIPE, paper_inputs(RECIPE), propagation=propagation, n_samples=5000)
    lin, other = RESULT.items["bottom_up"]["CO2"], res.items["bottom_up"]["CO2"]
    assert other.mean == pytest.approx(lin.mean)
    assert lin.lo < other.lo < other.mean < other.hi < lin.hi


def test_gwp20_changes_only_the_equivalents():
    eq20 = co2eq_rows(RESULT, "GWP20")
    ch4 = RESULT.items["bottom_up"]["CH4"].mean
    assert eq20["natural_bottom_up"]["CH4"].mean == pytest.approx(ch4 * 82.5 * 16 / 44)
    assert eq20["natural_bottom_up"]["CO2"].mean == pytest.approx(
        RESULT.items["bottom_up"]["CO2"].mean
    )
