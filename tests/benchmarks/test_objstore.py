"""benchmarks/objstore.py cannot rot: a small case (2 deg, 12 months, two layouts, one round)
runs every method against the shimmed S3 server; gridflux's reads are bit-identical to the whole
read, fetch fewer bytes than are stored on the unfiltered layout, and the pipeline's totals agree
with it. No speed is asserted."""

from __future__ import annotations

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

import pytest  # noqa: E402

pytest.importorskip("moto.server", reason="moto[server] is not installed; pip install -e '.[dev]'")
pytest.importorskip("flask", reason="moto's server needs flask; pip install -e '.[dev]'")

from benchmarks import objstore  # noqa: E402


def test_objstore_small_case(tmp_path):
    out = objstore.main(
        ["--res", "2", "--months", "12", "--rounds", "1", "--cases", "uncompressed,deflated",
         "--latency", "0.005", "--workdir", str(tmp_path / "w"), "--json",
         str(tmp_path / "objstore.json")]
    )  # fmt: skip
    recs = {(r["case"], r["method"]): r for r in out["records"]}
    assert len(recs) == 6
    for case in ("uncompressed", "deflated"):
        assert recs[(case, "gridflux-read")]["rows_identical"]
        assert recs[(case, "gridflux-read")]["totals_identical"]
        assert recs[(case, "gridflux-run")]["max_rel_diff"] < 1e-12
        assert recs[(case, "s3fs-xarray")]["fetched_fraction"] >= 0.99
    unc = recs[("uncompressed", "gridflux-read")]
    assert unc["bytes_fetched"] < unc["bytes_stored"]
    assert (tmp_path / "objstore.json").exists()
    assert "| uncompressed | gridflux-read |" in objstore.table(out)


def test_release_projection_closed_form():
    """The per-series/per-byte model of benchmarks/project.py on made-up costs, by hand."""
    from benchmarks import project

    archive = {
        "archive": {"series": 100, "size": "small"},
        "machine": {"when": "now"},
        "summary": [{"method": "raw", "cpu": 2.0}, {"method": "imports", "cpu": 1.0}],
        "per_series": {"worker_ms_per_series": 10.0, "driver_ms_per_series": 1.0},
    }
    objstore_json = {
        "model": {"latency": 0.02, "conn_mbps": 100, "link_mbps": 400},
        "grid_deg": 0.5,
        "months": 120,
        "when": "now",
        "records": [
            {"case": "uncompressed", "method": "gridflux-read", "fetched_fraction": 0.25,
             "open_seconds": 0.2, "fetch_seconds_per_gb": 20.0},
        ],
    }  # fmt: skip
    costs = project.measured_costs(archive, objstore_json, archive_decoded_gb=0.5)
    assert costs["c_decode_s_per_gb"] == 4.0 and costs["c_series_s"] == 0.01
    rows = project.project_release(
        costs, releases={"r": (1000, 500, 100.0, 80.0)}, cores=(1, 1000), fs_bandwidth=2.0,
        store_bandwidth=10.0,
    )  # fmt: skip
    local, s3 = rows
    work = 1000 * 0.01 + 100.0 * 4.0  # 410 core-seconds
    assert local["core_hours"] == work / 3600
    assert local["wall_s"][1] == 1.0 + work and local["bound"][1] == "compute"
    assert local["wall_s"][1000] == 40.0 and local["bound"][1000] == "I/O"  # 80 GB at 2 GB/s
    remote_work = 1000 * 0.01 + 500 * 0.2 + 0.25 * 80.0 * 20.0  # opens, fetching+decoding 20 GB
    assert s3["F"] == 0.25 and s3["wall_s"][1] == 1.0 + remote_work
    assert s3["wall_s"][1000] == 2.0 and s3["bound"][1000] == "I/O"  # 20 GB at 10 GB/s
    # the driver's serial work: 100,000 series x 1 ms, whatever the cores
    rows = project.project_release(costs, releases={"r": (100_000, 1, 1.0, 1.0)}, cores=(1024,))
    assert rows[0]["bound"][1024] == "driver" and rows[0]["wall_s"][1024] == 100.0
    # with the computing phase's figure: 2 ms per series, the other 8 ms x 100 series once
    archive["per_series"] = {
        "worker_ms_per_series": 10.0,
        "driver_ms_per_series": 10.0,
        "driver_computing_ms_per_series": 2.0,
    }
    costs = project.measured_costs(archive, objstore_json, archive_decoded_gb=0.5)
    assert costs["d_series_s"] == 0.002 and costs["d_fixed_s"] == 0.8
    rows = project.project_release(costs, releases={"r": (100_000, 1, 1.0, 1.0)}, cores=(1024,))
    assert rows[0]["bound"][1024] == "driver" and rows[0]["wall_s"][1024] == 0.8 + 200.0
