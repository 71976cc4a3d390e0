"""On a cluster every worker holds the run's mask before the first task is submitted (issue 19,
the 2-worker computing phase): the scheduler assigns a task only to the workers that hold its
dependencies, so with the mask on one worker every first task queued there while the other
worker idled (gridflux turns work stealing off) until the run had submitted enough tasks for
dask's queuing to give it one (measured on the small archive, 2 workers: the second started its
first task 0.4-0.8 s, one task's time, after the first)."""

from __future__ import annotations

import pytest

from gridflux.pipeline import runner
from gridflux.pipeline.runner import run

from .test_pipeline import _assert_matches_truth


@pytest.mark.parametrize("timeout", [None, 1e-6])
def test_every_worker_holds_the_mask_before_the_first_task(
    mini_archive, tmp_path, monkeypatch, timeout
):
    """A local cluster of 2 worker processes (as ``--workers 2``; processes: libhdf5 is not
    thread-safe): the mask's future is on both when the first task is submitted. A copy that
    does not finish in time (``timeout``) is given up: the run goes on and is complete."""
    from gridflux.compute.clusters import make_cluster

    if timeout is not None:
        monkeypatch.setattr(runner, "MASK_COPY_TIMEOUT", timeout)
    holders: list[set[str]] = []
    store = tmp_path / "s.zarr"
    with make_cluster("local", n_workers=2) as handle:
        c = handle.client
        handle.wait_for_workers(2)
        real = c.submit

        def submit(func, *args, **kwargs):
            if getattr(func, "__name__", "") == "process_batch":
                mask = args[1]  # process_batch(items, mask, ...): the mask's future
                holders.append(set(c.who_has([mask])[mask.key]))
            return real(func, *args, **kwargs)

        monkeypatch.setattr(c, "submit", submit)
        workers = set(c.scheduler_info()["workers"])
        s = run(mini_archive["catalog"], mini_archive["mask"], str(store), client=c)
    assert s.ok and len(s.done) == 3
    assert len(holders) == 3  # one task per series (3 series, 2 worker threads)
    assert len(workers) == 2
    if timeout is None:
        assert holders[0] == workers
    _assert_matches_truth(store, mini_archive["truth"])
