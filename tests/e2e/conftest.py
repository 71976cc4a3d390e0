"""Fixtures of the end-to-end tests: the tiny synthetic archive and one undisturbed reference run.

* ``tiny_archive`` (session): ``gridflux.synthetic.build_archive(size="tiny")`` written once.
* ``reference_store`` (session): the whole tiny archive through ``gridflux.pipeline.runner.run`` on
  a
  LocalCluster with 2 worker processes (regrid-data, cubes on, default chunking): the store that
  the protocol, cube, reopen and worker-kill tests compare against.
* ``slurm_conf`` (session): re-exported from ``tests/compute/conftest.py`` (a running
  single-node SLURM or a skip that states why).
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from compute.conftest import slurm_conf  # noqa: F401  (re-exported fixture; tests/ is on sys.path)


@dataclass
class Reference:
    """The undisturbed run: where its store is and what ``run`` returned."""

    store: str
    summary: object


@pytest.fixture(scope="session")
def tiny_archive(tmp_path_factory):
    """ArchiveInfo of the tiny synthetic archive (catalog, mask, truth table)."""
    from gridflux.synthetic import build_archive

    return build_archive(tmp_path_factory.mktemp("tiny-archive"), size="tiny", echo=None)


@pytest.fixture(scope="session")
def reference_store(tiny_archive, tmp_path_factory) -> Reference:
    """The whole tiny archive run once, undisturbed, on 2 local worker processes."""
    from gridflux.compute.clusters import make_cluster
    from gridflux.pipeline.runner import run

    store = str(tmp_path_factory.mktemp("reference") / "store.zarr")
    with make_cluster("local", n_workers=2) as handle:
        handle.wait_for_workers(2, timeout=60)
        summary = run(
            tiny_archive.catalog, tiny_archive.mask, store, client=handle.client, progress=False
        )
    return Reference(store, summary)
