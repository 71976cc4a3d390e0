"""Annual sums, incomplete years, period means and derived quantities by hand."""

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from gridflux.budget.annual import annual_kernel, annual_totals, period_means
from gridflux.budget.derived import derive

NOLEAP_DAYS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]


def _totals(values, members, variables, start="2001-01-01", kinds=None):
    values = np.asarray(values, dtype=float)
    time = pd.date_range(start, periods=values.shape[-1], freq="MS")
    return xr.DataArray(
        values[:, :, None, :],
        dims=("member", "variable", "region", "time"),
        coords={
            "member": members,
            "variable": variables,
            "region": ["permafrost"],
            "time": time,
            "variable_kind": ("variable", kinds or ["flux"] * len(variables)),
            "ensemble": ("member", ["E"] * len(members)),
        },
    )


def test_annual_sum_360_day_and_noleap_members():
    """Monthly masses = rate x seconds of each month in the member's own calendar; annual = sum."""
    rate = 2.0e-6  # Tg C per second
    m360 = [rate * 30 * 86400] * 24  # 360_day: 12 months of 30 days
    mnoleap = [rate * d * 86400 for d in NOLEAP_DAYS] * 2  # noleap: 365 days
    res = annual_totals(_totals([[m360], [mnoleap]], ["m360", "mnoleap"], ["rh"]))
    a = res.annual.sel(region="permafrost", variable="rh")
    assert a.sel(member="m360").values == pytest.approx([rate * 360 * 86400] * 2, rel=1e-14)
    assert a.sel(member="mnoleap").values == pytest.approx([rate * 365 * 86400] * 2, rel=1e-14)
    assert res.incomplete.empty


def test_incomplete_years_excluded_and_reported():
    v = np.ones(36)
    v[14] = np.nan  # 2002-03 missing -> 2002 has 11 months
    v[30:] = np.nan  # 2003 has 6 months
    res = annual_totals(_totals([[v]], ["m"], ["npp"], start="2001-01-01"))
    a = res.annual.sel(member="m", variable="npp", region="permafrost").values
    assert a[0] == 12.0 and np.isnan(a[1]) and np.isnan(a[2])
    rep = res.incomplete.set_index("year")["n_months"].to_dict()
    assert rep == {2002: 11, 2003: 6}


def test_stocks_are_annual_means():
    v = np.arange(12, dtype=float)
    res = annual_totals(_totals([[v]], ["m"], ["cSoil"], kinds=["stock"]))
    assert float(res.annual.squeeze()) == pytest.approx(5.5)


def test_annual_kernel_counts():
    out, counts, years = annual_kernel(
        np.array([[1.0] * 12 + [2.0] * 12]), np.repeat([2000, 2001], 12)
    )
    assert (
        list(years) == [2000, 2001] and list(out[0]) == [12.0, 24.0] and list(counts[0]) == [12, 12]
    )


def test_period_means_open_end_fixed_and_no_data():
    # two members, annual values 2001..2004 = 1,2,3,4 and 10,20,(nan),(nan)
    monthly = np.zeros((2, 1, 48))
    for k, (a, b) in enumerate([(1, 10), (2, 20), (3, np.nan), (4, np.nan)]):
        monthly[0, 0, 12 * k : 12 * (k + 1)] = a / 12
        monthly[1, 0, 12 * k : 12 * (k + 1)] = b / 12
    ann = annual_totals(_totals(monthly, ["a", "b"], ["fco2"])).annual
    res = period_means(ann, ["1980-end", "2002-2004", "2010-2019"])
    m = res.means.sel(variable="fco2", region="permafrost")
    assert m.sel(member="a", period="1980-end") == pytest.approx(2.5)  # mean of 1..4
    assert m.sel(member="b", period="1980-end") == pytest.approx(15.0)  # to b's own end (2002)
    assert m.sel(member="a", period="2002-2004") == pytest.approx(3.0)
    assert m.sel(member="b", period="2002-2004") == pytest.approx(20.0)  # partial: 1 of 3 years
    assert np.isnan(m.sel(member="a", period="2010-2019"))
    cov = res.coverage.set_index(["member", "period"])
    assert (
        cov.loc[("b", "2002-2004"), "n_years"] == 1 and cov.loc[("b", "2002-2004"), "expected"] == 3
    )
    assert cov.loc[("a", "2010-2019"), "n_years"] == 0


def test_derived_quantities_sign_convention():
    # atmospheric sign: npp, gpp negative; rh, fFire positive
    vals = {"gpp": -100.0, "npp": -40.0, "rh": 30.0, "fFire": 5.0, "cSoil": 900.0, "cLitter": 60.0}
    names = list(vals)
    ann = xr.DataArray(
        np.array(list(vals.values()))[None, :, None, None],
        dims=("member", "variable", "region", "year"),
        coords={
            "member": ["m"],
            "variable": names,
            "region": ["r"],
            "year": [2001],
            "variable_kind": ("variable", ["flux"] * 4 + ["stock"] * 2),
        },
    )
    d = derive(ann).sel(member="m", region="r", year=2001)
    assert float(d.sel(variable="nep")) == pytest.approx(-10.0)  # -(NPP - SHR) = -(40 - 30)
    assert float(d.sel(variable="nbp")) == pytest.approx(
        -5.0
    )  # -(NPP - SHR - Ffire) = -(40 - 30 - 5)
    assert float(d.sel(variable="cue")) == pytest.approx(0.4)
    assert float(d.sel(variable="mrt")) == pytest.approx(32.0)  # (900 + 60) / 30 yr


def test_derived_falls_back_to_stored_variable():
    ann = xr.DataArray(
        np.array([[np.nan, np.nan, -7.0]])[:, :, None, None],
        dims=("member", "variable", "region", "year"),
        coords={"member": ["m"], "variable": ["npp", "rh", "nbp"], "region": ["r"], "year": [2001]},
    )
    assert float(derive(ann).sel(variable="nbp").squeeze()) == -7.0
