"""The run / store info / export commands, through the real console script."""

from __future__ import annotations

import shutil
import subprocess
import sys

import numpy as np
import pandas as pd


def _gridflux(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "gridflux", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
    )


def test_run_info_export(mini_archive, tmp_path):
    store = tmp_path / "s.zarr"
    r = _gridflux(
        "run",
        mini_archive["catalog"],
        "--mask",
        mini_archive["mask"],
        "--store",
        store,
        "--cluster",
        "none",
        "--no-progress",
    )
    assert r.returncode == 0, r.stderr
    import re

    # the summary table's row: 3 done, 0 skipped, 0 failed
    assert re.search(r"│\s+3\s+│\s+0\s+│\s+0\s+│", r.stderr), r.stderr
    info = _gridflux("store", "info", store)
    assert info.returncode == 0 and info.stdout.count("done") >= 3
    out = tmp_path / "totals.csv"
    ex = _gridflux("export", store, "--totals", out)
    assert ex.returncode == 0, ex.stderr
    df = pd.read_csv(out, dtype={"time": str})
    assert list(df.columns) == [
        "source_id",
        "variable",
        "region",
        "time",
        "value",
        "unit",
        "protocol",
    ]
    assert set(df["unit"]) == {"Tg month-1"} and set(df["protocol"]) == {"regrid-data"}
    assert info.stdout.count("regrid-data") >= 3  # store info shows each series' protocol
    for (member, region), (months, expected) in mini_archive["truth"].items():
        sel = df[(df.source_id == member) & (df.region == region)].sort_values("time")
        assert list(sel["time"]) == [f"{y:04d}-{m:02d}" for y, m in months]
        assert np.abs(sel["value"].to_numpy() - expected).max() <= 1e-10 * np.abs(expected).max()


def test_run_exit_status_and_summary_name_failures(mini_archive, tmp_path):
    root = tmp_path / "arch"
    shutil.copytree(mini_archive["root"], root)
    (root / "npp_A.nc").write_bytes(b"not a netCDF file")
    summary = tmp_path / "summary.json"
    r = _gridflux(
        "run",
        root / "catalog.json",
        "--mask",
        root / "mask.nc",
        "--store",
        tmp_path / "s.zarr",
        "--cluster",
        "none",
        "--no-progress",
        "--summary-json",
        summary,
    )
    assert r.returncode == 1
    assert "failed TEST.A.hist.r1/npp" in r.stderr.replace("\n", " ") and "npp_A.nc" in r.stderr
    import json

    s = json.loads(summary.read_text())
    assert (s["done"], s["failed"], s["skipped"]) == (2, 1, 0)
    assert "npp_A.nc" in s["failures"]["TEST.A.hist.r1/npp"]
    assert 0 < s["compute_seconds"] <= s["seconds"]


def test_run_on_a_local_cluster_prints_a_localhost_dashboard(mini_archive, tmp_path):
    r = _gridflux(
        "run",
        mini_archive["catalog"],
        "--mask",
        mini_archive["mask"],
        "--store",
        tmp_path / "s.zarr",
        "--cluster",
        "local",
        "--workers",
        "2",
        "--no-cubes",
        "--no-progress",
    )
    assert r.returncode == 0, r.stderr
    assert "dask dashboard: http://127.0.0.1:" in r.stderr


def test_run_takes_several_catalogs_and_prunes_on_request(mini_archive, tmp_path):
    from gridflux.ingest.catalog import load_catalog, write_catalog

    rows = load_catalog(mini_archive["catalog"]).rows
    a = write_catalog([r for r in rows if r.source_id == "A"], mini_archive["root"] / "cli-a.json")
    bc = write_catalog(
        [r for r in rows if r.source_id != "A"], mini_archive["root"] / "cli-bc.json"
    )
    store = tmp_path / "s.zarr"
    common = ["--mask", mini_archive["mask"], "--store", store, "--cluster", "none"]
    r = _gridflux("run", a, bc, *common, "--no-progress", "--protocol", "regrid-mask")
    assert r.returncode == 0, r.stderr
    info = _gridflux("store", "info", store)
    assert info.stdout.count("regrid-mask") == 3, info.stdout
    # B and C left the catalogs: kept and named, then pruned on request
    r = _gridflux("run", a, *common, "--no-progress", "--protocol", "regrid-mask")
    assert r.returncode == 0 and "in none of the catalogs" in r.stderr, r.stderr
    r = _gridflux("run", a, *common, "--no-progress", "--protocol", "regrid-mask", "--prune")
    assert r.returncode == 0 and "pruned 2 series" in r.stderr, r.stderr
    info = _gridflux("store", "info", store)
    assert "TEST.B" not in info.stdout and "TEST.A.hist.r1/npp" in info.stdout
