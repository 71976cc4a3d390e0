"""The pipeline over an HTTP archive that misbehaves (issue 8 point 4).

A server on 127.0.0.1 serves the tiny synthetic archive with byte ranges and injected faults:
the first requests of a file answer 503, one response is cut mid-body by a dropped connection,
one request stalls longer than the read timeout, and one object is truncated (HEAD declares the
full size, bodies stop early). The run must finish the retried series with totals equal to the
planted truths, fail the truncated one with an error naming its URL, never hang, and a re-run
once the full object is served must complete it while skipping the series already done.
"""

from __future__ import annotations

import time

import numpy as np
import xarray as xr

from gridflux.cli.demo import check_against_truth
from gridflux.pipeline.runner import run

from .conftest import selected, truth_subset
from .faultserver import FaultServer

QUERY = {
    "ensemble": ["LS3MIP", "GCB", "GNB"],
    "source_id": ["CESM2", "CAMS", "MIROC4-ACTM", "INVICAT"],
}
FAIL_503 = "GCB/CAMS/CAMS_GCB2021_r1_land_flux_2000-2001.nc"
STALL = "GCB/MIROC4-ACTM/MIROC4-ACTM_GCB2021_r1_land_flux_2000-2001.nc"
DROP = (
    "CMIP6/LS3MIP/INST0/CESM2/land-hist/r1i1p1f1/Lmon/npp/gn/v20190815/"
    "npp_Lmon_CESM2_land-hist_r1i1p1f1_gn_200007-200012.nc"
)
TRUNCATED = "GNB/INVICAT/INVICAT_GNB2021_r1_n2oflux_2000-2001.nc"
TRUNCATED_KEY = "GNB.INVICAT.GNB2021.r1/fn2o"


def test_faulty_http_archive_run_and_rerun(tiny_archive, fast_remote, tmp_path):
    _, records, rels = selected(tiny_archive, QUERY)
    keys = {f"{r.member}/{r.variable}" for r in records}
    assert len(keys) == 5 and TRUNCATED_KEY in keys
    assert {FAIL_503, STALL, DROP, TRUNCATED} <= set(rels)
    store = tmp_path / "store.zarr"
    good = sorted(keys - {TRUNCATED_KEY})
    with FaultServer(tiny_archive.root) as srv:
        plan = srv.plan
        plan.fail_first[FAIL_503] = 2  # HEAD and GET answer 503 once each
        plan.stall_once[STALL] = 3.0  # > remote.timeout = 1 s
        plan.drop_once.add(DROP)
        plan.truncate[TRUNCATED] = 3000  # HEAD says the full size; bodies end at byte 3000

        t0 = time.perf_counter()
        s1 = run(srv.url + "/catalog.json", tiny_archive.mask, str(store), query=QUERY, cubes=False)
        elapsed = time.perf_counter() - t0

        # every fault really happened
        kinds = [(k, p) for k, _, p in plan.events]
        assert kinds.count(("503", FAIL_503)) == 2
        assert (
            ("stall", STALL) in kinds
            and ("drop", DROP) in kinds
            and ("truncate", TRUNCATED) in kinds
        )
        # the stall was abandoned after the 1 s timeout and retried, not waited out many times over
        assert elapsed < 30.0
        assert plan.gets[STALL] >= 2

        assert sorted(s1.done) == good
        assert set(s1.failed) == {TRUNCATED_KEY}
        err = s1.failed[TRUNCATED_KEY]
        assert f"{srv.url}/{TRUNCATED}" in err
        assert "truncated" in err and "3000" in err
        # the retries of the truncated object are bounded: 1 attempt + remote.retries = 4
        assert plan.events.count(("truncate", "GET", TRUNCATED)) == 5

        truth_ok = truth_subset(tiny_archive, good, tmp_path / "truth-good.csv")
        check = check_against_truth(store, truth_ok, rtol=1e-10)
        assert check.ok, str(check) + f" missing={check.missing} mismatched={check.mismatched}"
        assert check.n_series == 4

        ds = xr.open_zarr(store)
        i = [str(m) for m in ds["member"].values].index("GNB.INVICAT.GNB2021.r1")
        j = [str(v) for v in ds["variable"].values].index("fn2o")
        assert np.isnan(ds["totals"].values[i, j]).all()

        # the server now serves the whole object: the re-run completes it and skips the others
        del plan.truncate[TRUNCATED]
        s2 = run(srv.url + "/catalog.json", tiny_archive.mask, str(store), query=QUERY, cubes=False)
        assert s2.done == [TRUNCATED_KEY]
        assert sorted(s2.skipped) == good and not s2.failed

    truth_all = truth_subset(tiny_archive, sorted(keys), tmp_path / "truth-all.csv")
    check = check_against_truth(store, truth_all, rtol=1e-10)
    assert check.ok and check.n_series == 5, str(check)


def test_retries_exhausted_is_a_clear_error(tiny_archive, fast_remote, tmp_path):
    """A server that keeps answering 503 fails the member after the configured attempts."""
    from gridflux import config

    with FaultServer(tiny_archive.root) as srv, config.set_options(**{"remote.retries": 2}):
        srv.plan.fail_first[FAIL_503] = 100
        s = run(
            srv.url + "/catalog.json",
            tiny_archive.mask,
            str(tmp_path / "s.zarr"),
            query={"ensemble": "GCB", "source_id": ["CAMS", "MIROC4-ACTM"]},
            cubes=False,
        )
        assert s.done == ["GCB.MIROC4-ACTM.GCB2021.r1/fco2"]
        err = s.failed["GCB.CAMS.GCB2021.r1/fco2"]
        assert f"{srv.url}/{FAIL_503}" in err and "3 attempts" in err and "503" in err
        # metadata request: 3 attempts of (HEAD + GET fallback inside fsspec) = 6 requests
        assert srv.plan.requests[FAIL_503] == 6


def test_missing_remote_file_is_not_retried(tiny_archive, fast_remote, tmp_path):
    """A 404 is permanent: no retries, a 'file not found' naming the URL; the other member runs."""
    import shutil

    from .conftest import stage

    root = tmp_path / "arch"
    stage(tiny_archive, [STALL], root)  # CAMS's file is absent from this copy of the archive
    for name in ("catalog.json", "catalog.csv"):
        shutil.copy(f"{tiny_archive.root}/{name}", root / name)
    with FaultServer(str(root)) as srv:
        s = run(
            srv.url + "/catalog.json",
            tiny_archive.mask,
            str(tmp_path / "s.zarr"),
            query={"ensemble": "GCB", "source_id": ["CAMS", "MIROC4-ACTM"]},
            cubes=False,
        )
        assert s.done == ["GCB.MIROC4-ACTM.GCB2021.r1/fco2"]
        err = s.failed["GCB.CAMS.GCB2021.r1/fco2"]
        assert "file not found" in err and f"{srv.url}/{FAIL_503}" in err
        assert srv.plan.requests[FAIL_503] == 2  # fsspec's HEAD, then its GET fallback; no retries
