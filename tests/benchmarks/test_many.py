"""benchmarks/many.py cannot rot: on 40 short series in one process it runs the N/10 and N runs
and the SIGKILL-at-half resume; every series is done with the template's totals, the resumed run
skips exactly the series the killed one recorded. No speed is asserted."""

from __future__ import annotations

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

from benchmarks import many  # noqa: E402


def test_many_short_series_and_resume(tmp_path):
    out = many.main(
        ["--series", "40", "--cluster", "none", "--cache", str(tmp_path), "--json",
         str(tmp_path / "many.json")]
    )  # fmt: skip
    for n in (10, 40):
        rec = out[f"run_{n}"]
        assert rec["done"] == n and rec["failed"] == 0
        assert rec["totals_identical"]
        assert rec["driver_peak_rss_mb"] > 0
    assert "marginal_driver_cpu_ms_per_series" in out["linearity"]
    res = out["resume"]
    assert res["ok"], res
    assert 20 <= res["done_at_kill"] < 40
    assert res["second_run"]["skipped"] == res["done_at_kill"]
    assert (tmp_path / "many.json").exists()
