"""Warming-potential factors against hand values."""

import pytest

from gridflux.budget.gwp import available_metrics, co2eq_factor, gwp, normalize_metric
from gridflux.errors import BudgetError


@pytest.mark.parametrize(
    "metric,gas,value",
    [
        ("GWP100", "CH4", 29.8 * 16 / 44),  # 10.836...
        ("GWP100", "N2O", 273 * 12 / 28),  # 117.0
        ("GWP20", "CH4", 82.5 * 16 / 44),
        ("GWP500", "N2O", 130 * 12 / 28),
        ("GWP100-nonfossil", "CH4", 27.0 * 16 / 44),
        ("AR5-GWP100", "CH4", 28 * 16 / 44),
        ("AR5-GWP20", "N2O", 264 * 12 / 28),
        ("GWP100", "CO2", 1.0),
    ],
)
def test_factor(metric, gas, value):
    assert co2eq_factor(gas, metric) == pytest.approx(value, rel=1e-12)


def test_paper_factors_printed_in_paper_md():
    assert round(co2eq_factor("CH4", "GWP100"), 2) == 10.84
    assert round(co2eq_factor("N2O", "GWP100"), 1) == 117.0


def test_metric_names():
    assert normalize_metric("gwp-100") == "GWP100"
    assert gwp("N2O", "GWP20") == 273
    assert {"GWP20", "GWP100", "GWP500", "AR5-GWP100"} <= set(available_metrics())
    with pytest.raises(BudgetError, match="expected one of"):
        co2eq_factor("CH4", "AR5-GWP500")
