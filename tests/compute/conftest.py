"""Fixtures of the cluster tests (dask config isolation is tests/conftest.py's): a real single-node
SLURM, helpers.

``slurm_conf`` (session) returns the path of a ``slurm.conf`` whose daemons are up, and exports it
as ``SLURM_CONF`` for the whole session (so ``sbatch``/``squeue`` and dask-jobqueue, also in
subprocesses such as ``gridflux run --cluster slurm``, find it). In order:

1. ``GRIDFLUX_TEST_SLURM_CONF`` set (CI started SLURM with ``.ci/slurm.sh``): use it; if its daemons
   do
   not answer, the test FAILS (CI promised a SLURM).
2. ``SLURM_CONF`` set and its node answers: use it.
3. Running as root with ``slurmctld``/``slurmd``/``sinfo`` on PATH: start one with ``.ci/slurm.sh``
   in a
   temporary directory, stop it at the end of the session.
4. Otherwise skip, saying which condition failed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SLURM_SCRIPT = REPO / ".ci" / "slurm.sh"
DEPLOY = REPO / "deploy"


def _slurm_answers(conf: str) -> tuple[bool, str]:
    env = {**os.environ, "SLURM_CONF": conf}
    try:
        out = subprocess.run(
            ["sinfo", "-h", "-o", "%T"], env=env, capture_output=True, text=True, timeout=15
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, repr(exc)
    state = out.stdout.strip()
    ok = out.returncode == 0 and any(
        s.startswith(("idle", "mix", "alloc", "completing")) for s in state.split()
    )
    return ok, (state or out.stderr.strip())


@pytest.fixture(scope="session")
def slurm_conf(tmp_path_factory):
    """Path (str) of the slurm.conf of a running single-node SLURM; see the module docstring."""
    ci_conf = os.environ.get("GRIDFLUX_TEST_SLURM_CONF")
    started_dir = None
    if ci_conf:
        ok, state = _slurm_answers(ci_conf)
        if not ok:
            pytest.fail(
                f"GRIDFLUX_TEST_SLURM_CONF={ci_conf} is set but its SLURM does not answer: {state}"
            )
        conf = ci_conf
    elif os.environ.get("SLURM_CONF") and _slurm_answers(os.environ["SLURM_CONF"])[0]:
        conf = os.environ["SLURM_CONF"]
    else:
        missing = [
            exe for exe in ("slurmctld", "slurmd", "sinfo", "sbatch") if shutil.which(exe) is None
        ]
        if missing:
            pytest.skip(
                f"no running SLURM (SLURM_CONF unset) and {missing} not on PATH "
                "(apt-get install slurm-wlm)"
            )
        if os.geteuid() != 0:
            pytest.skip("no running SLURM (SLURM_CONF unset) and not root: slurmd must run as root")
        started_dir = tmp_path_factory.mktemp("slurm")
        out = subprocess.run(
            ["bash", str(SLURM_SCRIPT), "start", str(started_dir)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if out.returncode != 0:
            pytest.skip(f".ci/slurm.sh could not start SLURM: {out.stderr.strip()[-800:]}")
        conf = out.stdout.strip().splitlines()[-1]
    previous = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = conf
    try:
        yield conf
    finally:
        if previous is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = previous
        if started_dir is not None:
            subprocess.run(
                ["bash", str(SLURM_SCRIPT), "stop", str(started_dir)],
                capture_output=True,
                timeout=60,
            )


@pytest.fixture
def no_malloc_trim_env(monkeypatch):
    """Remove MALLOC_TRIM_THRESHOLD_ from os.environ for the test and restore the original after."""
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "placeholder")
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_")
