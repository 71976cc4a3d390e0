"""A real single-node SLURM (slurmctld + slurmd on 127.0.0.1): dask workers as SLURM jobs.

Needs the ``slurm_conf`` fixture (tests/compute/conftest.py): a running SLURM, or root with
slurm-wlm installed; otherwise these tests skip and say why.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from gridflux.compute import clusters as gc

pytestmark = [pytest.mark.slurm]

# the settings that work on one node on loopback (INFRA.md)
SLURM_TEST_OPTIONS = dict(
    queue="debug",
    cores=1,
    processes=1,
    memory="2GB",
    scheduler_options={"host": "127.0.0.1", "dashboard_address": "127.0.0.1:0"},
    worker_extra_args=["--host", "127.0.0.1"],
    python=sys.executable,
)


def _squeue(conf: str) -> dict[str, tuple[str, str]]:
    """job id -> (name, state) of the jobs SLURM knows."""
    out = subprocess.run(
        ["squeue", "-h", "-t", "all", "-o", "%i|%j|%T"],
        env={**os.environ, "SLURM_CONF": conf},
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    rows = [line.split("|") for line in out.stdout.split("\n") if line.strip()]
    return {jid: (name, state) for jid, name, state in rows}


@pytest.mark.slow
def test_two_workers_as_slurm_jobs_compute_and_teardown(slurm_conf, tmp_path, no_malloc_trim_env):
    with gc.make_cluster(
        "slurm", n_workers=2, log_directory=str(tmp_path), **SLURM_TEST_OPTIONS
    ) as handle:
        handle.wait_for_workers(2, timeout=90)
        workers = handle.client.scheduler_info(n_workers=-1)["workers"]
        assert len(workers) == 2
        assert all(w["nthreads"] == 1 for w in workers.values())
        # each worker runs inside its own SLURM job ...
        job_of_worker = handle.client.run(lambda: os.environ.get("SLURM_JOB_ID"))
        job_ids = set(job_of_worker.values())
        assert None not in job_ids and len(job_ids) == 2
        # ... that SLURM reports as running, under the gridflux job name
        queue = _squeue(slurm_conf)
        assert {queue[j] for j in job_ids} == {("gridflux-worker", "RUNNING")}
        # the job script exported the nanny setting: no MALLOC_TRIM_THRESHOLD_ in the workers
        assert set(
            handle.client.run(lambda: os.environ.get("MALLOC_TRIM_THRESHOLD_")).values()
        ) == {None}
        # a computation whose tasks run on both jobs: sum of squares 1..200 = n(n+1)(2n+1)/6
        futures = handle.client.map(lambda x: x * x, range(1, 201))
        assert handle.client.submit(sum, futures).result(timeout=60) == 200 * 201 * 401 // 6
        # (lambdas travel by value: the workers cannot import this test module)
        ran_in = {
            handle.client.submit(
                lambda _: os.environ.get("SLURM_JOB_ID"), i, workers=[addr], pure=False
            ).result(timeout=60)
            for i, addr in enumerate(workers)
        }
        assert ran_in == job_ids
    # teardown cancels the jobs: none of them stays pending or running
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        states = {_squeue(slurm_conf).get(j, ("", "GONE"))[1] for j in job_ids}
        if states <= {"COMPLETING", "COMPLETED", "CANCELLED", "GONE"}:
            break
        time.sleep(0.5)
    assert states <= {"COMPLETING", "COMPLETED", "CANCELLED", "GONE"}, states


@pytest.mark.slow
def test_adaptive_slurm_scales_up_from_zero_jobs(slurm_conf, tmp_path, no_malloc_trim_env):
    opts = dict(SLURM_TEST_OPTIONS, minimum_jobs=0, maximum_jobs=2)
    with gc.make_cluster("slurm", log_directory=str(tmp_path), **opts) as handle:
        assert handle.client.scheduler_info()["workers"] == {}  # nothing submitted yet
        futures = handle.client.map(lambda x: x + 1, range(50))
        assert handle.client.submit(sum, futures).result(timeout=120) == sum(range(1, 51))
        jobs = set(handle.client.run(lambda: os.environ.get("SLURM_JOB_ID")).values())
        assert jobs and None not in jobs and len(jobs) <= 2


def test_driver_sbatch_script_runs_as_a_job(slurm_conf, tmp_path):
    """deploy/slurm/run.sbatch as a real batch job, with a stand-in for `gridflux` that records its
    arguments and environment (the real `gridflux run --cluster slurm` is tested by the
    pipeline)."""
    from .conftest import DEPLOY, REPO

    fake = tmp_path / "fake-gridflux"
    record = tmp_path / "record.txt"
    fake.write_text(
        f'#!/bin/sh\necho "$@" > {record}\necho "DASK_CONFIG=$DASK_CONFIG" >> {record}\n'
    )
    fake.chmod(0o755)
    env = {**os.environ, "SLURM_CONF": slurm_conf, "GRIDFLUX": str(fake)}
    out = subprocess.run(
        [
            "sbatch",
            "--wait",
            "-o",
            str(tmp_path / "driver-%j.out"),
            "--chdir",
            str(tmp_path),
            str(DEPLOY / "slurm" / "run.sbatch"),
            "cat.json",
            "mask.nc",
            "out.zarr",
        ],
        env=env,
        cwd=str(REPO),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, (
        out.stdout,
        out.stderr,
        [p.read_text() for p in tmp_path.glob("driver-*.out")],
    )
    lines = record.read_text().splitlines()
    assert lines[0] == "run cat.json --mask mask.nc --store out.zarr --cluster slurm"
    assert lines[1] == f"DASK_CONFIG={DEPLOY / 'slurm'}"
