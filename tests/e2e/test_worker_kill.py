"""A worker process SIGKILLed mid-run loses and duplicates nothing (issue 6, point 4).

The whole tiny archive runs on a LocalCluster of 2 worker processes. When a quarter of the series
are done, the progress callback (called on the driver between series) picks a worker that is
processing tasks at that moment and kills its process with SIGKILL; its nanny starts a new one and
the scheduler reschedules the lost tasks. A chunk write the kill interrupted leaves only zarr's temp
file (``<chunk>.<uuid>.partial``), which the run removes at its end. The store must then equal the
undisturbed reference run bit for bit: totals and every cube chunk, and every series done.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

pytestmark = [pytest.mark.slow]


def _chunk_files(store: str) -> dict[str, bytes]:
    """Every file of the zarr hierarchy (metadata and chunks) except the run's manifest and lock."""
    root = Path(store)
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file() and not p.name.startswith(("manifest.json", ".gridflux.lock")):
            out[str(p.relative_to(root))] = p.read_bytes()
    return out


def test_sigkill_of_a_worker_mid_run_loses_and_duplicates_nothing(
    tiny_archive, reference_store, tmp_path
):
    from gridflux.compute.clusters import make_cluster
    from gridflux.pipeline.runner import run

    store = str(tmp_path / "killed.zarr")
    kill: dict = {}
    with make_cluster("local", n_workers=2) as handle:
        client = handle.client
        handle.wait_for_workers(2, timeout=60)
        pids_before = client.run(os.getpid)  # worker address -> process id
        assert len(set(pids_before.values())) == 2 and os.getpid() not in pids_before.values()

        def progress(done: int, total: int, key: str) -> None:
            if kill or done < total // 4:
                return
            busy = {addr: keys for addr, keys in client.processing().items() if keys}
            if not busy:
                return  # try again after the next series
            addr = sorted(busy)[0]
            kill.update(
                addr=addr,
                pid=pids_before[addr],
                processing=list(busy[addr]),
                done=done,
                total=total,
            )
            os.kill(pids_before[addr], signal.SIGKILL)

        summary = run(
            tiny_archive.catalog, tiny_archive.mask, store, client=client, progress=progress
        )

        # the kill happened mid-run, on a worker with tasks in hand, and the nanny replaced the
        # process
        assert kill, (
            "the worker was never killed (no worker was processing tasks after a quarter of the "
            "series)"
        )
        assert kill["processing"] and kill["done"] < kill["total"]
        handle.wait_for_workers(2, timeout=60)
        pids_after = set(client.run(os.getpid).values())
        assert kill["pid"] not in pids_after and len(pids_after) == 2
        with pytest.raises(ProcessLookupError):
            os.kill(kill["pid"], 0)

    # every series done, none failed
    assert summary.failed == {}
    assert sorted(summary.done) == sorted(reference_store.summary.done)
    assert len(summary.done) == tiny_archive.n_series

    # totals bit-identical to the undisturbed run (NaN where a member has no such variable)
    got, ref = (
        xr.open_zarr(store)["totals"].values,
        xr.open_zarr(reference_store.store)["totals"].values,
    )
    np.testing.assert_array_equal(got, ref)
    assert np.isfinite(got).sum() == np.isfinite(ref).sum() > 0

    # every chunk file (cubes, totals, grid, metadata) byte-identical: nothing lost, nothing extra
    a, b = _chunk_files(store), _chunk_files(reference_store.store)
    extra, missing = sorted(set(a) - set(b)), sorted(set(b) - set(a))
    assert not extra and not missing, (
        f"files only in the killed run's store: {extra}; only in the reference: {missing}"
    )
    differing = [k for k in a if a[k] != b[k]]
    assert differing == []
    n_cube_chunks = sum(1 for k in a if k.startswith("cubes/") and "/c/" in k)
    assert n_cube_chunks > 0
    print(
        f"killed pid {kill['pid']} after {kill['done']}/{kill['total']} series while it held "
        f"{len(kill['processing'])} task(s); {len(a)} files ({n_cube_chunks} cube chunks) identical"
    )
