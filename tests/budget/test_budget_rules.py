"""The paper's statistics as recipe data, and totals that never hide a missing gas.

Each test builds its expectation by hand from the small store of conftest.py (constant monthly
totals: a complete year is exactly 12 x the constant).
"""

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from gridflux.budget.api import compute_budget
from gridflux.budget.ensemble import interval
from gridflux.budget.inputs import quantile_layer_estimate
from gridflux.budget.recipes import load_recipe
from gridflux.cli import app

Z = 1.959963984540054


def test_student_t_interval_by_hand():
    from scipy import stats

    x = [0.0, 10.0, 20.0]
    lo, hi = interval(x, "student-t")
    t = stats.t.ppf(0.975, 2)  # 4.303
    assert (lo, hi) == pytest.approx((10 - t * 10, 10 + t * 10))
    assert t == pytest.approx(4.302652729911275)


def test_interval_method_per_ensemble(totals):
    run = compute_budget(totals)
    nbp = run.result.items["model_nbp"]["CO2"]  # percentile (type 7) of -72 -96 -48 -48
    assert (nbp.lo, nbp.hi) == pytest.approx(
        tuple(np.percentile([-72, -96, -48, -48], [2.5, 97.5]))
    )
    co2 = run.result.items["inversions_full_period"]["CO2"]  # normal: -480, -600
    assert (co2.lo, co2.hi) == pytest.approx(
        (-540 - Z * np.std([-480, -600], ddof=1), -540 + Z * np.std([-480, -600], ddof=1))
    )
    # an override applies to every ensemble
    run = compute_budget(totals, interval_method="minmax")
    assert run.result.items["inversions_full_period"]["CO2"].lo == pytest.approx(-600)


def _with_cardamom(totals, layers=(("p025", -2.0), ("p50", -1.0), ("p975", 0.5))):
    """Three CARDAMOM quantile-layer members (nbp only, monthly constants)."""
    import xarray as xr

    t = totals.reindex(variable=[*totals["variable"].values.tolist(), "nbp"])
    t = t.assign_coords(member_id=("member", [""] * t.sizes["member"]))
    cards = []
    for q, c in layers:
        m = xr.full_like(t.isel(member=[0]), np.nan)
        m.loc[dict(variable="nbp")] = c
        cards.append(
            m.assign_coords(
                member=[f"CARDAMOM.{q}"],
                ensemble=("member", ["CARDAMOM"]),
                source_id=("member", ["CARDAMOM"]),
                member_id=("member", [q]),
                layered_c=("member", [False]),
                fire=("member", [False]),
            )
        )
    return xr.concat([t, *cards], dim="member")


def test_cardamom_quantile_layers_are_one_member(totals):
    run = compute_budget(_with_cardamom(totals))
    e = run.result.items["cardamom_nbp"]["CO2"]
    assert (e.mean, e.lo, e.hi, e.n) == pytest.approx((-12.0, -24.0, 6.0, 1))
    # swapped 2.5 / 97.5 % files are an error that says so, not a silently wrong interval
    bad = _with_cardamom(totals, (("p025", 0.5), ("p50", -1.0), ("p975", -2.0)))
    run = compute_budget(bad)
    assert "cardamom_nbp" not in [k for k, v in run.result.items.items() if v]
    why = [m["reason"] for m in run.missing if m["item"] == "cardamom_nbp"]
    assert why and "swapped" in why[0]


def test_quantile_layer_kernel():
    members = pd.DataFrame(
        {"member_id": ["p025", "p50", "p975"], "source_id": ["C"] * 3}, index=["a", "b", "c"]
    )
    e, why = quantile_layer_estimate(
        pd.Series([1.0, 2.0, 4.0], index=["a", "b", "c"]), members, {}, "2001-2019"
    )
    assert (e.mean, e.lo, e.hi, e.n, why) == (2.0, 1.0, 4.0, 1, "")


def test_coverage_full_by_default_partial_when_the_recipe_says_so(totals):
    r = load_recipe("reccap2-permafrost")
    assert r.coverage == {"rule": "partial"}
    run = compute_budget(totals)  # the recipe accepts partial coverage: labels say so
    assert run.result.items["inversions_full_period"]["CO2"].period == "2000-2003 (of 2000-2020)"
    run = compute_budget(totals, coverage="full")  # 4 of 21 years: nobody qualifies
    assert not run.result.items["inversions_full_period"]
    m = run.store.members
    short = m[
        (m["input"] == "inversions_full_period")
        & (m["status"] == "partial coverage")
        & (m["gas"] == "CO2")
    ]
    assert set(short["member"]) >= {"gcb0", "gcb1"}
    assert short["reason"].str.contains("4 of 21 years").all()
    r.coverage = {}  # a recipe without the key needs full coverage
    run = compute_budget(totals, recipe=r)
    assert not run.result.items["inversions_full_period"]


def test_isimip_forcing_restriction(totals):
    t = totals.copy()
    t = t.assign_coords(
        forcing=(
            "member",
            [
                "princeton" if m == "pm2" else f
                for m, f in zip(t["member"].values, t["forcing"].values, strict=True)
            ],
        )
    )
    run = compute_budget(t)
    used = run.store.members
    used = used[(used["input"] == "model_nbp") & (used["status"] == "used")]
    assert "pm2" not in set(used["member"])
    assert run.result.items["model_nbp"]["CO2"].mean == pytest.approx((-72 - 48 - 48) / 3)


def test_exclusion_by_name_is_fixed_for_all_periods(totals):
    t = totals.copy()
    # make the named system small in one period: a ratio rule would keep it; the name does not
    t.loc[dict(member="n2o2", variable="fn2o")] = 0.015
    run = compute_budget(t)
    m = run.store.members
    ex = m[(m["member"] == "n2o2") & (m["status"] != "no data")]  # 2010s: no data
    assert set(ex["input"]) == {"inversions_first_decade", "inversions_full_period"}
    assert set(ex["status"]) == {"excluded"}


def test_unmatched_exclusion_is_reported(totals):
    r = load_recipe("reccap2-permafrost")
    r.exclusions = [*r.exclusions, {"source_id": "NO-SUCH-SYSTEM", "reason": "x"}]
    run = compute_budget(totals, recipe=r)
    m = run.store.members
    assert (m["status"] == "exclusion unmatched").any()


def _drop(totals, variable):
    return totals.where(totals["variable"] != variable)


def test_total_blank_when_a_gas_is_missing(totals, tmp_path):
    run = compute_budget(_drop(totals, "fch4"))
    assert not run.complete
    blank = {m["item"]: m["reason"] for m in run.blank_totals}
    assert "natural_top_down" in blank and "CH4" in blank["natural_top_down"]
    assert "inversions_full_period (CH4)" in blank["natural_top_down"]
    h = run.headline.set_index("item")
    col = [c for c in h.columns if c.startswith("total")][0]
    assert h.loc["top_down", col] == "not given: CH4 missing"
    t = run.table
    tot = t[(t["item"] == "natural_top_down") & (t["gas"] == "total")]
    assert len(tot) == 1 and np.isnan(tot["mean"].iloc[0])
    # totals that need no CH4 by design are still given
    assert h.loc["anthropogenic", col] != ""
    # only rh in the store: no model NBP, so the bottom-up totals are blank too
    only_rh = totals.where(totals["variable"] == "rh")
    run = compute_budget(only_rh)
    assert {"natural_bottom_up", "natural_top_down"} <= {m["item"] for m in run.blank_totals}


def test_cli_exits_nonzero_unless_allow_partial(store_path, tmp_path):
    import xarray as xr

    ds = xr.open_zarr(store_path).load()
    ds["totals"] = _drop(ds["totals"], "fch4")
    p = str(tmp_path / "noch4.zarr")
    ds.to_zarr(p, mode="w")
    runner = CliRunner()
    res = runner.invoke(app, ["budget", p, "--out", str(tmp_path / "o"), "--no-figures"])
    assert res.exit_code == 1, res.output
    assert "no total" in res.output and "CH4" in res.output
    res = runner.invoke(
        app, ["budget", p, "--out", str(tmp_path / "o2"), "--no-figures", "--allow-partial"]
    )
    assert res.exit_code == 0, res.output


def test_other_region_uses_only_its_components(totals):
    run = compute_budget(totals, region="tundra")
    assert run.region == "tundra"
    assert not run.result.items["inland_waters"] and not run.result.items["fossil_fuels"]
    assert not run.complete  # bottom-up and anthropogenic totals need the permafrost components
    why = [m["reason"] for m in run.missing if m["item"] == "inland_waters"]
    assert why and "declared for region 'permafrost', not 'tundra'" in why[0]
    assert "region 'tundra'" in run.title and "northern permafrost" not in run.title


def test_cli_gwp_set_and_metric(tmp_path):
    runner = CliRunner()
    res = runner.invoke(
        app,
        [
            "budget",
            "--inputs",
            "paper",
            "--metric",
            "GWP20",
            "--gwp-set",
            "reccap2-paper",
            "--out",
            str(tmp_path / "p"),
            "--no-figures",
        ],
    )
    assert res.exit_code == 0, res.output
    t = pd.read_csv(tmp_path / "p" / "budget.csv")
    r = t[(t["item"] == "bottom_up_plus_anthropogenic") & (t["gas"] == "total")].iloc[0]
    assert abs(r["mean"] - 1394) < 3 and r["unit"] == "Tg CO2-C eq/yr (GWP20, reccap2-paper)"
    g = pd.read_csv(tmp_path / "p" / "gwp_values.csv")
    assert set(g.loc[g["gas"] == "CH4", "gwp"]) == {79.7}


def test_headline_shows_the_papers_rule_beside_the_chosen_one():
    run = compute_budget(None, inputs="paper", propagation="quadrature")
    cols = [c for c in run.headline.columns if c.startswith("total")]
    assert len(cols) == 2 and "quadrature" in cols[0] and "paper's rule" in cols[1]
    run = compute_budget(None, inputs="paper")
    assert len([c for c in run.headline.columns if c.startswith("total")]) == 1


def test_process_model_set_gives_the_papers_runs_from_the_shipped_isimip_catalog():
    """ISIMIP2a GSWP3 + ISIMIP2b IPSL-CM5A-LR = 14 runs, ISIMIP3 = the paper's 5 models once each:
    19 ISIMIP runs (unrestricted, the shipped catalog would give 44)."""
    import os

    from gridflux.budget.inputs import resolve_ensembles, select_from_sets

    cat = os.path.join(
        os.path.dirname(__file__), "..", "..", "catalogs", "isimip-carbon-monthly.csv"
    )
    runs = (
        pd.read_csv(cat, dtype=str, keep_default_na=False)
        .drop_duplicates(["ensemble", "source_id", "experiment", "member_id", "forcing"])
        .reset_index(drop=True)
    )
    runs.index = runs.index.astype(str)
    r = load_recipe("reccap2-permafrost")
    sel = runs.loc[select_from_sets(runs, resolve_ensembles(r, "process_models"))]
    n = sel.groupby("ensemble").size().to_dict()
    assert n == {"ISIMIP2a": 7, "ISIMIP2b": 7, "ISIMIP3a": 2, "ISIMIP3b": 3}
    assert set(sel.loc[sel["ensemble"].str.startswith("ISIMIP3"), "source_id"]) == {
        "jules",
        "orchidee-mict",
        "jsbach-wet",
        "jsbach-dry",
        "elm-eca",
    }
    assert len(runs) == 44
