"""The whole-archive benchmark cannot rot: it runs on a few series of the tiny synthetic archive
(seconds), its records are well formed, every gridflux series is done, and its arithmetic (per-round
ratios, per-series costs, the RESULTS.md section) is checked on hand-made records. No speed is
asserted."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

from benchmarks import archive  # noqa: E402


def test_ratios_are_per_round_medians_and_costs_per_series():
    recs = [
        {"round": 0, "method": "raw", "seconds": 2.0, "cpu": 2.0, "decode_cpu": 1.8},
        {"round": 1, "method": "raw", "seconds": 4.0, "cpu": 2.0, "decode_cpu": 1.8},
        {"round": 0, "method": "imports", "seconds": 1.0, "cpu": 1.0},
        {"round": 1, "method": "imports", "seconds": 1.0, "cpu": 1.0},
        # ratios 3.0 and 1.5 (a load spike in round 1 hits raw as well): median 2.25
        {
            "round": 0,
            "method": "gridflux-1p",
            "seconds": 6.0,
            "cpu": 5.0,
            "compute_seconds": 4.0,
            "compute_cpu": 3.0,
        },
        {
            "round": 1,
            "method": "gridflux-1p",
            "seconds": 6.0,
            "cpu": 5.0,
            "compute_seconds": 2.0,
            "compute_cpu": 2.6,
        },
        {
            "round": 0,
            "method": "gridflux-2w",
            "seconds": 6.0,
            "cpu": 7.0,
            "driver_cpu": 1.5,
            "compute_cpu": 0.3,
        },
        {
            "round": 1,
            "method": "gridflux-2w",
            "seconds": 6.0,
            "cpu": 7.0,
            "driver_cpu": 1.5,
            "compute_cpu": 0.1,
        },
    ]
    rows = archive.summarize(recs, 100)
    get = {r["method"]: r for r in rows}
    assert get["gridflux-1p"]["ratio"] == pytest.approx(2.25)
    assert get["gridflux-1p"]["compute_ratio"] == pytest.approx((2.0 + 0.5) / 2)
    assert get["gridflux-1p"]["cpu_ratio"] == pytest.approx(2.5)
    costs = archive.per_series(rows, 100)
    assert costs["worker_ms_per_series"] == pytest.approx(1e3 * (5.0 - 1.0 - 2.0) / 100)
    assert costs["driver_ms_per_series"] == pytest.approx(1e3 * 0.5 / 100)
    # computing phase: medians of the runs' own CPU, less raw's decoding loop
    assert costs["worker_computing_ms_per_series"] == pytest.approx(1e3 * (2.8 - 1.8) / 100)
    assert costs["driver_computing_ms_per_series"] == pytest.approx(1e3 * 0.2 / 100)


def test_results_section_is_replaced_not_appended(tmp_path):
    p = tmp_path / "RESULTS.md"
    p.write_text("# Results\n\nkept\n")
    archive.write_results_md(str(p), "first")
    archive.write_results_md(str(p), "second")
    text = p.read_text()
    assert text.startswith("# Results\n\nkept\n")
    assert "second" in text and "first" not in text
    assert text.count(archive.RESULTS_BEGIN) == 1


def test_quick_run_on_a_tiny_archive(tmp_path):
    methods = ["raw", "gridflux-1p", "gridflux-1p-cubes", "xr-mfdataset"]
    if shutil.which("cdo"):
        methods.append("cdo-loop")
    out = tmp_path / "archive.json"
    md = tmp_path / "RESULTS.md"
    r = subprocess.run(
        [sys.executable, os.path.join(ROOT, "benchmarks", "archive.py"), "--size", "tiny",
         "--quick", "--no-warmup", "--select", "ensemble=GCB", "--methods", *methods,
         "--cache", str(tmp_path / "cache"), "--json", str(out), "--results-md", str(md)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads(out.read_text())
    n = res["archive"]["series"]
    assert n == 7  # GCB: 7 inversions' fco2 in the synthetic archive
    get = {row["method"]: row for row in res["summary"]}
    assert set(methods) <= set(get)
    assert get["raw"]["ratio"] == pytest.approx(1.0)
    for m in ("gridflux-1p", "gridflux-1p-cubes"):
        assert get[m]["done"] == n and get[m]["failed"] == 0, get[m]
        assert 0 < get[m]["compute_seconds"] < get[m]["seconds"]
        assert get[m]["ratio"] > 0
    assert get["xr-mfdataset"]["done"] + get["xr-mfdataset"]["failed"] == n
    if "cdo-loop" in get:
        assert get["cdo-loop"]["files"] == res["archive"]["files"]
    assert "worker_ms_per_series" in res["per_series"]
    assert isinstance(res["per_series"]["worker_computing_ms_per_series"], float)
    assert 0 < get["raw"]["decode_cpu"] <= get["raw"]["cpu"]
    assert archive.RESULTS_BEGIN in md.read_text()


def test_openseries_runs_on_a_tiny_archive(tmp_path):
    """benchmarks/openseries.py opens every series of the tiny archive in fresh processes and
    reports their CPU (no timed assertion)."""
    from benchmarks import openseries

    out = openseries.main(["--size", "tiny", "--cache", str(tmp_path / "cache"), "--runs", "1"])
    (cpus,) = out.values()
    assert len(cpus) == 1 and cpus[0] > 0
