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
