"""``gridflux run --cluster slurm``: the driver outside SLURM, 2 workers as SLURM jobs (issue 8,
point 2).

Needs the ``slurm_conf`` fixture (tests/compute/conftest.py): a running single-node SLURM, or root
with slurm-wlm installed to start one; otherwise the test skips and says why. The same selection
of the tiny archive is run through the same CLI on a LocalCluster; the stores must be equal
exactly (totals array-equal, every chunk file byte-identical).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from gridflux.synthetic import archive_series

pytestmark = [pytest.mark.slow, pytest.mark.slurm]

# 7 GCB inversions + 3 ISIMIP3b models: the series of 10 members on 4 grids
SELECT = "ensemble=ISIMIP3b,GCB"
# the console script installed with this interpreter (there is no ``python -m gridflux``)
GRIDFLUX = shutil.which("gridflux", path=os.path.dirname(sys.executable)) or shutil.which(
    "gridflux"
)
TIMEOUT = 240  # s for one gridflux run (job start, workers, 14 series)


def _jobs(conf: str) -> dict[int, tuple[str, str]]:
    """job id -> (name, state) of every job SLURM still remembers (running or finished)."""
    out = subprocess.run(
        ["squeue", "-h", "-t", "all", "-o", "%i|%j|%T"],
        env={**os.environ, "SLURM_CONF": conf},
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    rows = [line.split("|") for line in out.stdout.splitlines() if line.strip()]
    return {int(jid): (name, state) for jid, name, state in rows}


def _gridflux_run(
    archive, store: str, cwd: Path, *cluster_args: str
) -> subprocess.CompletedProcess:
    cmd = [
        GRIDFLUX,
        "run",
        archive.catalog,
        "--mask",
        archive.mask,
        "--store",
        store,
        "--select",
        SELECT,
        "--no-progress",
        *cluster_args,
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("DASK_")}
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT)


def _files(store: str) -> dict[str, bytes]:
    root = Path(store)
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != "manifest.json"
    }


@pytest.mark.skipif(
    GRIDFLUX is None, reason="the gridflux console script is not installed (pip install -e .)"
)
def test_gridflux_run_on_two_slurm_jobs_equals_local_cluster(slurm_conf, tiny_archive, tmp_path):
    before = set(_jobs(slurm_conf))
    slurm_dir, local_dir = tmp_path / "slurm", tmp_path / "local"
    slurm_dir.mkdir()
    local_dir.mkdir()
    slurm_store, local_store = str(slurm_dir / "store.zarr"), str(local_dir / "store.zarr")

    res = _gridflux_run(
        tiny_archive,
        slurm_store,
        slurm_dir,
        "--cluster",
        "slurm",
        "--workers",
        "2",
        "--queue",
        "debug",
        "--cores",
        "1",
        "--memory",
        "2GB",
        "--scheduler-host",
        "127.0.0.1",
    )
    assert res.returncode == 0, (
        f"gridflux run --cluster slurm failed:\n{res.stdout}\n{res.stderr[-4000:]}"
    )

    # two SLURM jobs were submitted for this run, both named gridflux-worker ...
    new = {jid: v for jid, v in _jobs(slurm_conf).items() if jid not in before}
    assert len(new) == 2 and {name for name, _ in new.values()} == {"gridflux-worker"}, new
    # ... and each ran a dask worker that registered with the driver's scheduler (the job's own log)
    for jid in new:
        log = slurm_dir / f"slurm-{jid}.out"
        assert log.exists(), (
            f"no output of SLURM job {jid} in {slurm_dir}: {sorted(os.listdir(slurm_dir))}"
        )
        text = log.read_text()
        assert "Registered to" in text and "tcp://127.0.0.1:" in text, text[-2000:]
    # ... and ended with the run (cancelled at teardown; none left pending or running)
    states = {_jobs(slurm_conf).get(j, ("", "GONE"))[1] for j in new}
    assert not states & {"PENDING", "RUNNING", "CONFIGURING"}, states

    res = _gridflux_run(
        tiny_archive, local_store, local_dir, "--cluster", "local", "--workers", "2"
    )
    assert res.returncode == 0, (
        f"gridflux run --cluster local failed:\n{res.stdout}\n{res.stderr[-4000:]}"
    )

    a, b = xr.open_zarr(slurm_store)["totals"], xr.open_zarr(local_store)["totals"]
    selected = [x for x in archive_series("tiny") if x.ensemble in ("ISIMIP3b", "GCB")]
    assert a.sizes["member"] == len({x.member for x in selected})
    assert np.isfinite(a.values).any(axis=(2, 3)).sum() == len(
        selected
    )  # every selected series computed
    assert np.array_equal(a.values, b.values, equal_nan=True)
    fa, fb = _files(slurm_store), _files(local_store)
    assert sorted(fa) == sorted(fb)
    assert [k for k in fa if fa[k] != fb[k]] == []
