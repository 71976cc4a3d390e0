"""Several catalogs in one run, and a protocol per series (issue 16, points 2 and 3)."""

from __future__ import annotations

import os

import numpy as np
import pytest
import xarray as xr
import yaml

from gridflux.errors import CatalogError
from gridflux.ingest.catalog import write_catalog
from gridflux.pipeline.runner import run

RTOL = 1e-10


def _rows(root):
    """The mini archive's catalog rows (from its CSV) as dicts."""
    import pandas as pd

    df = pd.read_csv(os.path.splitext(root / "catalog.json")[0] + ".csv", dtype=str)
    return df.fillna("").to_dict("records")


def _yaml_catalog(path, rows):
    """An intake YAML catalog (one source per file, traits as metadata)."""
    sources = {}
    for r in rows:
        md = {k: v for k, v in r.items() if k not in ("path", "format") and v not in ("", None)}
        sources[f"{r['source_id']}_{r['variable']}"] = {
            "driver": "netcdf",
            "args": {"urlpath": r["path"]},
            "metadata": md,
        }
    with open(path, "w") as f:
        yaml.safe_dump({"metadata": {"version": 1}, "sources": sources}, f)
    return str(path)


def _split(mini_archive, tmp_path):
    """Series A and B in an intake-esm catalog, C in an intake YAML, both beside the files."""
    root = mini_archive["root"]
    rows = _rows(root)
    ab = [r for r in rows if r["source_id"] in ("A", "B")]
    c = [r for r in rows if r["source_id"] == "C"]
    cat_ab = write_catalog(ab, root / "ab.json")
    cat_c = _yaml_catalog(root / "c.yaml", c)
    return str(cat_ab), cat_c, rows


def _truth_ok(store, truth):
    ds = xr.open_zarr(store)
    for (member, region), (months, expected) in truth.items():
        da = ds["totals"].sel(member=member, variable="npp", region=region).load()
        labels = [(int(t.year), int(t.month)) for t in da.indexes["time"]]
        got = np.array([da.values[labels.index(m)] for m in months])
        assert np.abs(got - expected).max() / np.abs(expected).max() < RTOL, (member, region)


def test_two_catalogs_of_two_formats_in_one_run(mini_archive, tmp_path):
    cat_ab, cat_c, _ = _split(mini_archive, tmp_path)
    store = tmp_path / "s.zarr"
    summary = run([cat_ab, cat_c], mini_archive["mask"], str(store), progress=False)
    assert summary.ok and len(summary.done) == 3
    _truth_ok(store, mini_archive["truth"])


def test_the_same_series_in_two_catalogs_is_an_error_naming_both(mini_archive, tmp_path):
    cat_ab, _, rows = _split(mini_archive, tmp_path)
    b = [r for r in rows if r["source_id"] == "B"]
    cat_b = _yaml_catalog(mini_archive["root"] / "b.yaml", b)
    with pytest.raises(CatalogError) as err:
        run([cat_ab, cat_b], mini_archive["mask"], str(tmp_path / "s.zarr"), progress=False)
    msg = str(err.value)
    assert "TEST.B.hist.r1/npp" in msg and cat_ab in msg and cat_b in msg
    assert msg.count("npp_B.nc") == 2  # the files of both rows
    assert not (tmp_path / "s.zarr").exists()  # refused before anything is written
