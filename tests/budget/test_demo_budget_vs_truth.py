"""The demo's headline budget, number by number, against the same budget built from planted truths.

The synthetic archive plants every series' monthly region totals in ``truth.csv`` (computed by
the synthetic writer from closed-form box overlaps, not by gridflux's regridding). The budget of
the pipeline's store must equal the budget of a totals array filled from those truths.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from gridflux.budget.api import compute_budget
from gridflux.pipeline.runner import run
from gridflux.pipeline.store import open_store
from gridflux.synthetic import build_archive


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo-budget")
    info = build_archive(root / "archive", size="tiny", echo=lambda *a, **k: None)
    store = root / "store.zarr"
    summary = run(info.catalog, info.mask, str(store), cubes=False, progress=False)
    assert summary.ok, summary.failed
    return store, info


def _truth_totals(store_totals: xr.DataArray, truth_csv) -> xr.DataArray:
    """A totals array shaped like the store's, filled only from truth.csv."""
    truth = pd.read_csv(truth_csv, dtype={"time": str})
    out = xr.full_like(store_totals, np.nan)
    t_index = {
        pd.Timestamp(t).strftime("%Y-%m"): i for i, t in enumerate(store_totals["time"].values)
    }
    m_index = {m: i for i, m in enumerate(store_totals["member"].values)}
    v_index = {v: i for i, v in enumerate(store_totals["variable"].values)}
    r_index = {r: i for i, r in enumerate(store_totals["region"].values)}
    vals = out.values
    for row in truth.itertuples(index=False):
        vals[m_index[row.member], v_index[row.variable], r_index[row.region], t_index[row.time]] = (
            row.value
        )
    return out.copy(data=vals)


@pytest.mark.slow
def test_every_headline_number_matches_the_planted_truth(demo_store):
    store, info = demo_store
    totals = open_store(store)["totals"].load()
    from_store = compute_budget(totals, "reccap2-permafrost", "GWP100").table
    from_truth = compute_budget(
        _truth_totals(totals, info.truth), "reccap2-permafrost", "GWP100"
    ).table
    assert len(from_store) == len(from_truth) > 20
    key = ["item", "gas", "unit"]
    merged = from_store.merge(from_truth, on=key, suffixes=("_store", "_truth"))
    assert len(merged) == len(from_store)
    for col in ("mean", "lo", "hi"):
        a, b = merged[f"{col}_store"].to_numpy(float), merged[f"{col}_truth"].to_numpy(float)
        np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
        ok = ~np.isnan(a)
        assert np.all(np.abs(a[ok] - b[ok]) <= 1e-9 * np.maximum(1.0, np.abs(b[ok]))), col
    assert (merged["n_store"].fillna(-1) == merged["n_truth"].fillna(-1)).all()
    # the headline rows computed from the store's ensembles are present and finite
    got = from_store.set_index(key)
    assert np.isfinite(got.loc[("bottom_up", "CO2", "Tg CO2-C/yr"), "mean"])
