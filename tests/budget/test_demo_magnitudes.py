"""The synthetic demo looks like the region: its planted truths (annual totals of the permafrost
region, ensemble means) within a factor 1.5 of Hugelius et al. (2024), NBP a source in winter,
and CARDAMOM's quantile files in order. A unit error of x5 in the pipeline would then stand out
in the demo's headline."""

import numpy as np
import pandas as pd
import pytest

from gridflux.synthetic import build_archive

PROCESS = {"PCN-MIP", "MsTMIP", "LS3MIP", "ISIMIP2a", "ISIMIP2b", "ISIMIP3a", "ISIMIP3b"}
#: (group, variable) -> the paper's ensemble mean (Tables 2 and 5; PAPER.md), Tg element/yr
PAPER = {
    ("process", "fFire"): 130.0,  # Table 2 fire-enabled runs
    ("GMB-wetland", "fch4"): 12.0,  # Table 2 wetland models
    ("GMB", "fch4"): 15.0,  # Table 5 inversions, full period
    ("GCB", "fco2"): -587.0,  # Table 5
    ("CARDAMOM.p50", "nbp"): -870.0,  # Table 2
}


@pytest.fixture(scope="module")
def truth(tmp_path_factory):
    info = build_archive(tmp_path_factory.mktemp("mag") / "a", size="tiny", echo=None)
    t = pd.read_csv(info.truth, dtype={"time": str})
    t = t[t["region"] == "permafrost"].copy()
    t["year"] = t["time"].str[:4]
    t["month"] = t["time"].str[5:7].astype(int)
    return t


def _annual(t):
    a = t.groupby(["member", "variable", "year"])["value"].sum().reset_index()
    a = a.groupby(["member", "variable"])["value"].mean().reset_index()
    ens = a["member"].str.split(".").str[0]
    a["group"] = np.where(ens.isin(PROCESS), "process", ens)
    a.loc[a["member"].str.endswith(".p50"), "group"] = "CARDAMOM.p50"
    return a


@pytest.mark.parametrize("key", sorted(PAPER), ids=str)
def test_ensemble_means_within_a_factor_1_5_of_the_paper(truth, key):
    a = _annual(truth)
    got = a[(a["group"] == key[0]) & (a["variable"] == key[1])]["value"].mean()
    assert 1 / 1.5 <= got / PAPER[key] <= 1.5, f"{key}: {got:.4g} vs {PAPER[key]}"


def test_process_model_nep_and_nbp_like_table2(truth):
    a = _annual(truth).pivot_table(index="member", columns="variable", values="value")
    proc = a[[m.split(".")[0] in PROCESS for m in a.index]]
    nep = (proc["npp"] + proc["rh"]).mean()
    fire = proc.dropna(subset=["fFire"])
    nbp = (fire["npp"] + fire["rh"] + fire["fFire"]).mean()
    assert 1 / 1.5 <= nep / -450 <= 1.5 and 1 / 1.5 <= nbp / -350 <= 1.5


def test_nbp_is_a_source_in_winter_and_a_sink_in_summer(truth):
    proc = truth[truth["member"].str.split(".").str[0].isin(PROCESS)]
    m = proc.groupby(["variable", "month"])["value"].mean().unstack(0)
    nbp = m["npp"] + m["rh"]
    assert (nbp.loc[[1, 2, 11, 12]] > 0).all() and (nbp.loc[[6, 7, 8]] < 0).all()
    inv = truth[truth["variable"] == "fco2"].groupby("month")["value"].mean()
    assert (inv.loc[[1, 12]] > 0).all() and (inv.loc[[7]] < 0).all()


def test_cardamom_quantile_files_in_order(truth):
    c = truth[truth["member"].str.startswith("CARDAMOM")]
    w = c.pivot_table(index="time", columns="member", values="value")
    q = {k.rsplit(".", 1)[1]: w[k] for k in w.columns}
    assert (q["p025"] <= q["p50"]).all() and (q["p50"] <= q["p975"]).all()


def test_recipe_selects_the_52_synthetic_process_runs():
    from gridflux.budget.inputs import resolve_ensembles, select_from_sets
    from gridflux.budget.recipes import load_recipe
    from gridflux.synthetic.archive import archive_series

    runs = {}
    for s in archive_series("tiny"):
        runs[s.member] = {"ensemble": s.ensemble, "source_id": s.source_id, "forcing": s.forcing}
    members = pd.DataFrame.from_dict(runs, orient="index")
    r = load_recipe("reccap2-permafrost")
    assert len(select_from_sets(members, resolve_ensembles(r, "process_models"))) == 52
