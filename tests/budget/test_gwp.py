"""Warming potentials: packaged values, sets, per-source assignment, against hand values."""

import pytest

from gridflux.budget.gwp import (
    Metric,
    available_sets,
    co2eq_factor,
    gwp,
    metric_label,
    resolve_metric,
    values_table,
)
from gridflux.errors import BudgetError


@pytest.mark.parametrize(
    "horizon,gas,origin,gwp_set,value",
    [
        ("GWP100", "CH4", "fossil", "ar6-per-source", 29.8 * 16 / 44),
        ("GWP100", "CH4", "non-fossil", "ar6-per-source", 27.0 * 16 / 44),
        ("GWP100", "CH4", None, "ar6-per-source", 27.0 * 16 / 44),  # default origin: biogenic
        ("GWP20", "CH4", "fossil", "ar6-per-source", 82.5 * 16 / 44),
        ("GWP20", "CH4", "non-fossil", "ar6-per-source", 79.7 * 16 / 44),
        ("GWP500", "CH4", "fossil", "ar6-per-source", 10.0 * 16 / 44),
        ("GWP500", "CH4", "non-fossil", "ar6-per-source", 7.2 * 16 / 44),
        ("GWP20", "CH4", "non-fossil", "ar6-fossil", 82.5 * 16 / 44),
        ("GWP100", "CH4", "fossil", "ar6-nonfossil", 27.0 * 16 / 44),
        ("GWP100", "N2O", None, "ar6-per-source", 273 * 12 / 28),
        ("GWP500", "N2O", None, "ar6-per-source", 130 * 12 / 28),
        ("GWP100", "CH4", "non-fossil", "ar5", 28 * 16 / 44),
        ("GWP20", "N2O", None, "ar5", 264 * 12 / 28),
        # the paper: fossil at 100 years, non-fossil at 20 and 500, for every CH4 source
        ("GWP100", "CH4", "non-fossil", "reccap2-paper", 29.8 * 16 / 44),
        ("GWP20", "CH4", "fossil", "reccap2-paper", 79.7 * 16 / 44),
        ("GWP500", "CH4", "fossil", "reccap2-paper", 7.2 * 16 / 44),
        ("GWP500", "N2O", None, "reccap2-paper", 130 * 12 / 28),
        ("GWP100", "CO2", None, "ar5", 1.0),
    ],
)
def test_factor(horizon, gas, origin, gwp_set, value):
    assert co2eq_factor(gas, horizon, origin, gwp_set) == pytest.approx(value, rel=1e-12)


def test_paper_factors_printed_in_paper_md():
    assert round(co2eq_factor("CH4", "GWP100", gwp_set="reccap2-paper"), 2) == 10.84
    assert round(co2eq_factor("N2O", "GWP100"), 1) == 117.0


def test_override_applies_only_to_its_item():
    assert gwp("N2O", "GWP500", gwp_set="reccap2-paper") == 130
    assert gwp("N2O", "GWP500", gwp_set="reccap2-paper", item="top_down_plus_anthropogenic") == 273
    assert gwp("N2O", "GWP500", gwp_set="ar6-per-source", item="top_down_plus_anthropogenic") == 130


def test_metric_names_and_sets():
    assert resolve_metric("gwp-100") == Metric(100, "ar6-per-source")
    assert resolve_metric("GWP20", "ar5") == Metric(20, "ar5")
    assert resolve_metric("GWP100-nonfossil") == Metric(100, "ar6-nonfossil")
    assert resolve_metric("AR5-GWP20") == Metric(20, "ar5")
    assert set(available_sets()) == {
        "ar6-per-source",
        "ar6-fossil",
        "ar6-nonfossil",
        "ar5",
        "reccap2-paper",
    }
    assert metric_label("GWP20", "reccap2-paper") == "Tg CO2-C eq/yr (GWP20, reccap2-paper)"
    with pytest.raises(BudgetError, match="no 500-year values"):
        resolve_metric("GWP500", "ar5")
    with pytest.raises(BudgetError, match="expected one of"):
        resolve_metric("GWP100", "ar7")
    with pytest.raises(BudgetError, match="expected one of"):
        resolve_metric("GTP100")


def test_values_table_states_every_value_used():
    t = values_table("GWP500", "reccap2-paper")
    ch4 = t[(t["gas"] == "CH4")]
    assert set(ch4["gwp"]) == {7.2}
    over = t[t["item"] == "top_down_plus_anthropogenic"]
    assert len(over) == 1 and over["gwp"].iloc[0] == 273 and "GWP-100" in over["note"].iloc[0]


def test_per_source_ch4_of_a_mixed_item():
    """ar6-per-source: fossil CH4 (4.7) at 29.8, the biogenic rest at 27.0; reccap2-paper: all
    at 29.8."""
    from test_paper_reproduction import RESULT

    from gridflux.budget.recipes import co2eq_rows

    ch4 = RESULT.items["bottom_up_plus_anthropogenic"]["CH4"]
    eq = co2eq_rows(RESULT, "GWP100", "ar6-per-source")["bottom_up_plus_anthropogenic"]["CH4"]
    want = (ch4.mean - 4.7) * 27.0 * 16 / 44 + 4.7 * 29.8 * 16 / 44
    assert eq.mean == pytest.approx(want)
    want_lo = (ch4.lo - 3.4) * 27.0 * 16 / 44 + 3.4 * 29.8 * 16 / 44  # linear: lower bounds add
    assert eq.lo == pytest.approx(want_lo)
    eq = co2eq_rows(RESULT, "GWP100", "reccap2-paper")["bottom_up_plus_anthropogenic"]["CH4"]
    assert eq.mean == pytest.approx(ch4.mean * 29.8 * 16 / 44)
