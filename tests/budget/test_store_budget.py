"""Budget from a small hand-built store: numbers by hand, outputs and figures written, CLI."""

import os

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from gridflux.budget.api import budget_from_store, compute_budget, write_budget
from gridflux.cli import app
from gridflux.errors import BudgetError

F = 1 - 1.38 / 17.05


def _row(table, item, gas, unit_prefix="Tg"):
    r = table[(table["item"] == item) & (table["gas"] == gas) & ~table["unit"].str.contains("eq")]
    assert len(r) == 1, (item, gas)
    return r.iloc[0]


def test_store_inputs_by_hand(totals):
    t = budget_from_store(totals, metric="GWP100")
    assert list(t.columns) == ["item", "gas", "period", "mean", "lo", "hi", "n", "unit"]
    # fire runs pm0, pm2, pm3, pm4: 12 x (npp + rh + fFire) = -72, -96, -48, -48
    r = _row(t, "model_nbp", "CO2")
    assert (r["mean"], r["n"]) == (pytest.approx(-66.0), 4)
    assert r["lo"] == pytest.approx(-96 + 0.075 * 24) and r["hi"] == pytest.approx(-48.0)
    assert r["period"] == "2000-2003 (of 1980-end)"
    assert _row(t, "model_nbp_layered_c", "CO2")["mean"] == pytest.approx((-72 - 48) / 2)
    assert _row(t, "model_nep", "CO2")["n"] == 5
    # CH4 inversions: group A = mean(12, 24) = 18, group B = 36 -> 27 over 2 groups
    r = _row(t, "inversions_full_period", "CH4")
    assert (r["mean"], r["n"]) == (pytest.approx(27.0), 2)
    # inversions: mean -+ 1.96 sd (ddof 1) of the groups 18 and 36: sd = 9 sqrt(2)
    z = 1.959963984540054
    assert (r["lo"], r["hi"]) == pytest.approx((27 - z * 9 * 2**0.5, 27 + z * 9 * 2**0.5))
    # N2O: the system named in the recipe (MIROC4-N2O) is excluded: mean(0.12, 0.24)
    r = _row(t, "inversions_full_period", "N2O")
    assert (r["mean"], r["n"]) == (pytest.approx(0.18), 2)
    # integrated bottom-up CO2 with the store's model NBP and the packaged components
    want = ((-66 * F + 19) + (-340 + 121)) / 2 + 231
    assert _row(t, "bottom_up", "CO2")["mean"] == pytest.approx(want)
    # CO2-eq total of top-down at GWP100 (ar6-per-source: inversion CH4 is biogenic, 27.0)
    eq = t[(t["item"] == "natural_top_down") & (t["gas"] == "total")].iloc[0]
    assert eq["mean"] == pytest.approx(-540 + 27 * 27.0 * 16 / 44 + 0.18 * 273 * 12 / 28)
    assert eq["unit"] == "Tg CO2-C eq/yr (GWP100, ar6-per-source)"


def test_exclusions_missing_periods_and_comparisons_reported(totals):
    run = compute_budget(totals)
    m = run.store.members
    ex = m[m["status"] == "excluded"]
    assert set(ex["member"]) == {"n2o2"} and ex["reason"].str.contains("by name").all()
    # excluded from every period's input (the name, not a per-period ratio rule, decides)
    assert set(ex["input"]) == {"inversions_first_decade", "inversions_full_period"}
    missing = {(r["item"], r["gas"]) for r in run.result.missing}
    assert ("inversions_second_decade", "*") in missing  # 2010s: no data in a 2000-2003 store
    assert ("cardamom_nbp", "*") in missing
    c = run.store.comparisons.set_index("id")
    # the paper's comparisons are all reported; NPP flipped to positive into the land
    assert {
        "npp_layered_vs_bulk",
        "gpp_layered_vs_bulk",
        "ra_layered_vs_bulk",
        "cue_layered_vs_bulk",
        "mrt_layered_vs_bulk",
    } <= set(c.index)
    assert c.loc["npp_layered_vs_bulk", "mean_a"] == pytest.approx(12 * (30 + 25 + 35) / 3)
    assert c.loc["ra_layered_vs_bulk", "status"] == "no ra in the store"
    # CUE = npp/gpp: layered 0.5, 0.5, 0.5; bulk 0.4, 0.5
    assert c.loc["cue_layered_vs_bulk", "mean_b"] == pytest.approx(0.45)
    # layered (pm0, pm1, pm4): NEP = -120, -36, -84 ; bulk (pm2, pm3): -120, -60
    assert c.loc["nep_layered_vs_bulk", "mean_a"] == pytest.approx(-80.0)
    assert c.loc["nep_layered_vs_bulk", "mean_b"] == pytest.approx(-90.0)
    assert (c.loc["nep_layered_vs_bulk", "n_a"], c.loc["nep_layered_vs_bulk", "n_b"]) == (3, 2)


def test_incomplete_year_in_store_is_excluded(totals):
    t = totals.copy()
    t.loc[dict(member="gcb0", variable="fco2", time="2003-06-01")] = np.nan
    run = compute_budget(t)
    inc = run.store.incomplete_years
    assert ((inc["member"] == "gcb0") & (inc["year"] == 2003) & (inc["n_months"] == 11)).any()
    # gcb0's mean is still -480 (3 complete years), so the ensemble mean is unchanged
    assert run.result.items["inversions_full_period"]["CO2"].mean == pytest.approx(-540.0)


def test_region_selection_and_errors(totals):
    run = compute_budget(totals, region="tundra")
    assert run.result.items["model_nbp"]["CO2"].mean == pytest.approx(-33.0)
    with pytest.raises(BudgetError, match="region 'nowhere'"):
        compute_budget(totals, region="nowhere")
    with pytest.raises(BudgetError, match="inputs='paper'"):
        compute_budget(None, inputs="store")


def test_outputs_and_figures_written(store_path, tmp_path):
    run = compute_budget(store_path, metric="GWP20")
    files = write_budget(run, tmp_path / "out")
    figs = (
        "gwp_bars",
        "component_bars",
        "integrated_budget",
        "seasonal_cycle",
        "annual_series",
        "map_CO2",
    )
    for name in (
        "budget.csv",
        "budget.md",
        "headline.csv",
        "members.csv",
        "incomplete_years.csv",
        "comparisons.csv",
        "gwp_values.csv",
        "report.html",
        *[f + ext for f in figs for ext in (".png", ".svg")],
    ):
        assert name in files and os.path.getsize(files[name]) > 0, name
    from PIL import Image

    for name in [n for n in files if n.endswith(".png")]:
        with Image.open(files[name]) as im:
            assert im.info["dpi"][0] == pytest.approx(200, abs=1), name
            arr = np.asarray(im.convert("RGB"), dtype=float) / 255
        assert arr.shape[0] > 300 and arr.shape[1] > 500
        assert np.std(arr) > 0.05, f"{name} looks blank"
    back = pd.read_csv(files["budget.csv"])
    assert len(back) == len(run.table) and (back["region"] == "permafrost").all()
    for name in [n for n in files if n.endswith(".csv")]:
        assert "region" in pd.read_csv(files[name]).columns, name
    assert "Members not used" in open(files["budget.md"]).read()
    assert "region 'permafrost'" in open(files["budget.md"]).read()


def test_cli_store_and_paper(store_path, tmp_path):
    runner = CliRunner()
    res = runner.invoke(
        app,
        ["budget", store_path, "--metric", "GWP100", "--out", str(tmp_path / "s"), "--no-figures"],
    )
    assert res.exit_code == 0, res.output
    assert "bottom_up" in res.output and "excluded" in res.output
    res = runner.invoke(
        app, ["budget", "--inputs", "paper", "--metric", "GWP20", "--out", str(tmp_path / "p")]
    )
    assert res.exit_code == 0, res.output
    t = pd.read_csv(tmp_path / "p" / "budget.csv")
    r = t[(t["item"] == "natural_top_down") & (t["gas"] == "CH4")].iloc[0]
    assert r["mean"] == pytest.approx(15 * 79.7 * 16 / 44)
    res = runner.invoke(app, ["budget", "--out", str(tmp_path / "x")])
    assert res.exit_code == 2 and "STORE is required" in res.output


def test_figures_average_the_members_the_tables_use(totals):
    """The series figures read the same members (exclusions applied) and average group-first:
    their period mean equals the table's ensemble mean."""
    from gridflux.budget.plots import annual_values, seasonal_values, series_selection

    run = compute_budget(totals)
    n2o = series_selection(run, "inversions_full_period", "N2O")
    assert "n2o2" not in n2o["members"] and len(n2o["members"]) == 2
    ch4 = series_selection(run, "inversions_full_period", "CH4")
    years, vals = annual_values(run, ch4)
    assert vals.shape[0] == 2  # two groups, not three submissions
    assert vals.mean() == pytest.approx(run.result.items["inversions_full_period"]["CH4"].mean)
    clim = seasonal_values(run, ch4)
    assert clim.shape == (2, 12) and 12 * clim.mean() == pytest.approx(27.0)
    nbp = series_selection(run, "model_nbp", "CO2")
    _, v = annual_values(run, nbp)
    assert v.mean() == pytest.approx(run.result.items["model_nbp"]["CO2"].mean)
