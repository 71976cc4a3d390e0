"""Shared pytest fixtures for the whole gridflux suite.

* An autouse fixture that isolates every test from the user's dask configuration
  (``~/.config/dask``, ``/etc/dask``, ``DASK_*`` environment variables) and restores
  ``dask.config.config`` afterwards, so that neither the machine nor one test leaks settings
  into another. gridflux's packaged defaults (registered with ``dask.config.update_defaults``)
  stay in place because ``dask.config.refresh`` re-applies ``dask.config.defaults``.
* An autouse fixture that clears ``gridflux.ingest.remote.LOADED_SECRETS`` around each test.
* ``raise_if_dask_computes`` fixture: ``gridflux.testing.raise_if_dask_computes``, a context
  manager that fails the test if a dask graph is computed inside the block (laziness proof).
"""

from __future__ import annotations

import copy
import os

import dask.config

# Register distributed's config defaults before any test snapshots dask.config: a test that first
# imports distributed would otherwise leave them out of the restored config for the tests after it.
import distributed  # noqa: F401,E402
import pytest
from hypothesis import settings as _hypothesis_settings  # noqa: E402

# Register gridflux's packaged defaults before any test refreshes the config (the import calls
# dask.config.update_defaults once; later refreshes re-apply them).
import gridflux.config  # noqa: F401

# CI runs the property tests with a fixed seed sequence (reproducible logs); locally they explore.
_hypothesis_settings.register_profile("ci", derandomize=True, deadline=None)
if os.environ.get("CI"):
    _hypothesis_settings.load_profile("ci")


@pytest.fixture(name="raise_if_dask_computes")
def _raise_if_dask_computes_fixture():
    """``gridflux.testing.raise_if_dask_computes`` (context-manager factory) as a fixture."""
    from gridflux.testing import raise_if_dask_computes

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


@pytest.fixture(autouse=True)
def _forget_loaded_secrets():
    """Each test starts with no loaded storage-option secrets (``remote.LOADED_SECRETS`` is
    process-wide: a secret one test loads would be scrubbed from every later test's text)."""
    from gridflux.ingest import remote

    remote.LOADED_SECRETS.clear()
    yield
    remote.LOADED_SECRETS.clear()


@pytest.fixture(scope="module")
def s3_endpoint():
    """moto's S3 server in a thread on 127.0.0.1:<free port>; stopped after the module (modules
    that use it skip themselves when moto[server] is not installed)."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()
