"""Ensemble statistics on hand-computed examples."""

import numpy as np
import pandas as pd
import pytest

from gridflux.budget.ensemble import (
    Estimate,
    apply_exclusions,
    ensemble_estimate,
    group_first,
    interval,
    mann_whitney,
    select_members,
)
from gridflux.errors import BudgetError


def test_percentile_interval_type7_by_hand():
    # n = 5: h = (n-1)p + 1 -> p=0.025: h=1.1 -> 1 + 0.1*(2-1) = 1.1 ; p=0.975: h=4.9 -> 4.9
    lo, hi = interval([5.0, 1.0, 3.0, 2.0, 4.0])
    assert lo == pytest.approx(1.1, abs=1e-12)
    assert hi == pytest.approx(4.9, abs=1e-12)


def test_interval_methods_by_hand():
    x = [0.0, 10.0]
    assert interval(x, "minmax") == (0.0, 10.0)
    lo, hi = interval(x, "normal")
    sd = np.sqrt(50.0)  # sample sd of {0, 10}
    assert lo == pytest.approx(5 - 1.959963984540054 * sd)
    assert hi == pytest.approx(5 + 1.959963984540054 * sd)
    # Hazen: p-quantile at position n p + 1/2 -> p=0.025, n=2: 0.55 -> below the first value:
    # clipped to 0
    assert interval(x, "percentile-hazen") == (0.0, 10.0)
    with pytest.raises(BudgetError, match="expected one of"):
        interval(x, "bogus")


def test_ensemble_estimate_drops_nan_and_counts():
    e = ensemble_estimate(np.array([1.0, np.nan, 3.0]))
    assert (e.mean, e.n) == (2.0, 2)
    # two values: lo = 1 + 0.025*(3-1) = 1.05, hi = 1 + 0.975*2 = 2.95
    assert (e.lo, e.hi) == pytest.approx((1.05, 2.95))
    assert np.isnan(ensemble_estimate(np.array([np.nan])).mean)


def test_group_first_averages_submissions_of_a_group():
    v = pd.Series({"a1": 1.0, "a2": 2.0, "a3": 6.0, "b1": 10.0, "c": 4.0})
    g = pd.Series({"a1": "A", "a2": "A", "a3": "A", "b1": "B", "c": ""})
    out = group_first(v, g)
    assert out["A"] == 3.0 and out["B"] == 10.0 and out["member:c"] == 4.0
    # ensemble of groups: mean of (3, 10, 4) = 17/3, not the member mean 23/5
    assert ensemble_estimate(out.to_numpy()).mean == pytest.approx(17 / 3)


def test_exclusion_ratio_to_others_reports_the_outlier():
    v = pd.Series({"s1": 0.10, "s2": 0.20, "s3": 3.0})
    kept, excl = apply_exclusions(v, [{"rule": "ratio_to_others", "factor": 10}])
    assert list(kept.index) == ["s1", "s2"]
    assert len(excl) == 1 and excl[0].member == "s3" and excl[0].rule == "ratio_to_others"
    # 2.0 is 13x the median of the others (0.15) -> excluded; 1.4 (9.3x) -> kept
    assert (
        len(
            apply_exclusions(
                pd.Series({"a": 0.1, "b": 0.2, "c": 1.4}),
                [{"rule": "ratio_to_others", "factor": 10}],
            )[1]
        )
        == 0
    )
    kept, excl = apply_exclusions(v, [{"rule": "members", "members": ["s1"]}])
    assert list(kept.index) == ["s2", "s3"] and excl[0].member == "s1"
    with pytest.raises(BudgetError, match="exclusion rule"):
        apply_exclusions(v, [{"rule": "nope"}])


def test_select_members_by_traits():
    m = pd.DataFrame(
        {
            "ensemble": ["PCN-MIP", "MsTMIP", "ISIMIP2a", "GCB-inversions"],
            "layered_c": [True, True, False, False],
            "fire": ["True", "False", "True", "False"],  # string forms are accepted
            "forcing": ["", "", "GSWP3", ""],
        },
        index=["m0", "m1", "m2", "m3"],
    )
    pm = ["PCN-MIP", "MsTMIP", "ISIMIP2a"]
    assert list(select_members(m, pm)) == ["m0", "m1", "m2"]
    assert list(select_members(m, pm, {"layered_c": True})) == ["m0", "m1"]
    assert list(select_members(m, pm, {"fire": True})) == ["m0", "m2"]
    assert list(select_members(m, pm, {"fire": True, "layered_c": True})) == ["m0"]
    assert list(select_members(m, pm, {"forcing": "gswp3"})) == ["m2"]
    with pytest.raises(BudgetError, match="trait 'colour'"):
        select_members(m, pm, {"colour": "red"})


def test_mann_whitney_by_hand():
    # no pair with a > b: U_a = 0; exact two-sided p = 2 / C(5, 2) = 0.2
    r = mann_whitney([1.0, 2.0, 3.0], [4.0, 5.0])
    assert r["U"] == 0.0 and r["p"] == pytest.approx(0.2) and (r["n_a"], r["n_b"]) == (3, 2)
    assert np.isnan(mann_whitney([], [1.0])["p"])


def test_estimate_scaling_swaps_bounds():
    e = Estimate(2.0, 1.0, 4.0).scaled(-2.0)
    assert (e.mean, e.lo, e.hi) == (-4.0, -8.0, -2.0)
