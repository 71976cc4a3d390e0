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


def _with_protocol(mini_archive, name, protocols):
    """The mini archive's catalog with a ``protocol`` column (source_id -> protocol or "")."""
    rows = _rows(mini_archive["root"])
    for r in rows:
        r["protocol"] = protocols.get(r["source_id"], "")
    return str(write_catalog(rows, mini_archive["root"] / name))


def _totals(store):
    ds = xr.open_zarr(store)
    return ds["totals"].sel(variable="npp").load()


def test_protocol_per_series_from_the_catalog_and_the_ensemble_kind(mini_archive, tmp_path):
    import gridflux
    from gridflux.pipeline.export import totals_table
    from gridflux.pipeline.store import Store, open_store

    # the references: every series with one protocol
    data, mask = tmp_path / "data.zarr", tmp_path / "mask.zarr"
    run(
        mini_archive["catalog"],
        mini_archive["mask"],
        str(data),
        protocol="regrid-data",
        cubes=False,
        progress=False,
    )
    run(
        mini_archive["catalog"],
        mini_archive["mask"],
        str(mask),
        protocol="regrid-mask",
        cubes=False,
        progress=False,
    )
    ref_d, ref_m = _totals(data), _totals(mask)
    assert not np.array_equal(ref_d.values, ref_m.values, equal_nan=True)  # they do differ

    cat = _with_protocol(mini_archive, "proto.json", {"B": "regrid-mask"})
    mixed = tmp_path / "mixed.zarr"
    # the ensemble TEST is of kind "inversion": its default protocol is regrid-mask ...
    with gridflux.set_options(
        **{
            "pipeline.ensemble-kinds": {"inversion": ["TEST"]},
            "pipeline.protocols": {"process": "regrid-data", "inversion": "regrid-data"},
        }
    ):
        s = run(cat, mini_archive["mask"], str(mixed), cubes=False, progress=False)
    assert s.ok
    got = _totals(mixed)
    for src, ref in (("A", ref_d), ("B", ref_m), ("C", ref_d)):  # ... B's catalog column wins
        m = f"TEST.{src}.hist.r1"
        assert np.array_equal(got.sel(member=m).values, ref.sel(member=m).values, equal_nan=True)
    man = Store(mixed).read_manifest()["series"]
    assert {k: e["protocol"] for k, e in man.items()} == {
        "TEST.A.hist.r1/npp": "regrid-data",
        "TEST.B.hist.r1/npp": "regrid-mask",
        "TEST.C.hist.r1/npp": "regrid-data",
    }
    ds = open_store(mixed)
    # the member coordinate: the protocol of the member's series (each series' own: manifest)
    assert ds["protocol"].sel(member="TEST.B.hist.r1").item() == "regrid-mask"
    assert ds["protocol"].sel(member="TEST.A.hist.r1").item() == "regrid-data"
    table = totals_table(mixed)
    assert set(table[table.source_id == "TEST.B.hist.r1"].protocol) == {"regrid-mask"}
    assert set(table[table.source_id == "TEST.A.hist.r1"].protocol) == {"regrid-data"}


def test_inversion_kind_defaults_to_regrid_mask_and_protocol_overrides(mini_archive, tmp_path):
    import gridflux

    ref = tmp_path / "ref.zarr"
    run(
        mini_archive["catalog"],
        mini_archive["mask"],
        str(ref),
        protocol="regrid-mask",
        cubes=False,
        progress=False,
    )
    kinds = {"pipeline.ensemble-kinds": {"inversion": ["TEST"]}}
    with gridflux.set_options(**kinds):
        inv = tmp_path / "inv.zarr"
        run(mini_archive["catalog"], mini_archive["mask"], str(inv), cubes=False, progress=False)
        assert np.array_equal(_totals(inv).values, _totals(ref).values, equal_nan=True)
        # --protocol beats both the catalog column and the kind
        cat = _with_protocol(mini_archive, "proto2.json", {"A": "regrid-mask"})
        over = tmp_path / "over.zarr"
        run(
            cat,
            mini_archive["mask"],
            str(over),
            protocol="regrid-data",
            cubes=False,
            progress=False,
        )
    plain = tmp_path / "plain.zarr"
    run(mini_archive["catalog"], mini_archive["mask"], str(plain), cubes=False, progress=False)
    assert np.array_equal(_totals(over).values, _totals(plain).values, equal_nan=True)


def test_a_bad_protocol_in_a_catalog_names_the_file_and_field(mini_archive):
    cat = _with_protocol(mini_archive, "bad.json", {"A": "regrid-both"})
    with pytest.raises(CatalogError, match=r"bad\.csv.*protocol.*regrid-both"):
        run(cat, mini_archive["mask"], "unused.zarr", progress=False)
