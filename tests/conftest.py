"""Shared pytest fixtures for the whole gridflux suite.

* An autouse fixture that isolates every test from the user's dask configuration
  (``~/.config/dask``, ``/etc/dask``, ``DASK_*`` environment variables) and restores
  ``dask.config.config`` afterwards, so that neither the machine nor one test leaks settings
  into another. gridflux's packaged defaults (registered with ``dask.config.update_defaults``)
  stay in place because ``dask.config.refresh`` re-applies ``dask.config.defaults``.
* ``raise_if_dask_computes``: a context manager (also offered as a fixture) that fails the
  test if a dask graph is computed inside the block (laziness proof, after flox/xarray).
"""

from __future__ import annotations

import contextlib
import copy
import os
from collections.abc import Iterator

import dask
import dask.config
import pytest


class _CountingScheduler:
    """A dask scheduler that counts calls and raises once more than ``max_computes`` happen."""

    def __init__(self, max_computes: int = 0) -> None:
        self.total_computes = 0
        self.max_computes = max_computes

    def __call__(self, dsk, keys, **kwargs):  # noqa: ANN001 - dask scheduler signature
        self.total_computes += 1
        if self.total_computes > self.max_computes:
            raise RuntimeError(
                f"Too many dask computations were triggered: {self.total_computes} "
                f"(max allowed: {self.max_computes})"
            )
        return dask.get(dsk, keys, **kwargs)


@contextlib.contextmanager
def raise_if_dask_computes(max_computes: int = 0) -> Iterator[_CountingScheduler]:
    """Fail if more than ``max_computes`` dask computations run inside the block.

    Prefer ``gridflux.testing.raise_if_dask_computes`` once it exists; this is the suite's own.
    """
    scheduler = _CountingScheduler(max_computes)
    with dask.config.set(scheduler=scheduler):
        yield scheduler


@pytest.fixture(name="raise_if_dask_computes")
def _raise_if_dask_computes_fixture():
    """The :func:`raise_if_dask_computes` context-manager factory as a fixture."""
    return raise_if_dask_computes


@pytest.fixture(scope="session")
def _empty_dask_config_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    """An empty directory standing in for ``~/.config/dask``."""
    return str(tmp_path_factory.mktemp("dask-config"))


@pytest.fixture(autouse=True)
def _isolate_dask_config(_empty_dask_config_dir: str, monkeypatch: pytest.MonkeyPatch):
    """Run each test against dask/gridflux defaults only: no user files, no DASK_* variables."""
    saved = copy.deepcopy(dask.config.config)
    cfg_dir = _empty_dask_config_dir
    monkeypatch.setenv("DASK_CONFIG", str(cfg_dir))
    for key in list(os.environ):
        if key.startswith("DASK_") and key != "DASK_CONFIG":
            monkeypatch.delenv(key, raising=False)
    dask.config.refresh(paths=[str(cfg_dir)], env={})
    try:
        yield
    finally:
        dask.config.config.clear()
        dask.config.config.update(saved)
