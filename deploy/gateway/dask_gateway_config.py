"""dask-gateway server configuration for gridflux (a single machine, or as a template).

    dask-gateway-server -f deploy/gateway/dask_gateway_config.py

Runs clusters as local processes (UnsafeLocalBackend: every user runs as the server's user) with
no passwords (SimpleAuthenticator): for one machine or a test, never a shared service. On
Kubernetes use the dask-gateway Helm chart and copy the ``options_handler`` and ``cluster_options``
below into its ``gateway.extraConfig``.

Environment variables: GRIDFLUX_GATEWAY_DIR (sqlite db, its encryption key unless
DASK_GATEWAY_ENCRYPT_KEYS is set, and cluster directories; default ./gateway),
GRIDFLUX_GATEWAY_PORT (one port for the HTTP API, dashboards and scheduler connections; default
8000).
"""

import base64
import os
import sys

from dask_gateway_server.options import Float, Integer, Options

c = get_config()  # noqa: F821 - provided by traitlets when the server loads this file

state = os.path.abspath(os.environ.get("GRIDFLUX_GATEWAY_DIR", "gateway"))
os.makedirs(state, exist_ok=True)
port = int(os.environ.get("GRIDFLUX_GATEWAY_PORT", "8000"))

c.Proxy.address = f"127.0.0.1:{port}"
c.DaskGateway.backend_class = "dask_gateway_server.backends.local.UnsafeLocalBackend"
c.DaskGateway.authenticator_class = "dask_gateway_server.auth.SimpleAuthenticator"
c.DBBackendBase.db_url = f"sqlite:///{os.path.join(state, 'gateway.sqlite')}"
# a database on disk must be encrypted: DASK_GATEWAY_ENCRYPT_KEYS, else a key kept next to it
if not os.environ.get("DASK_GATEWAY_ENCRYPT_KEYS"):
    key_file = os.path.join(state, "encrypt.key")
    if not os.path.exists(key_file):
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(base64.b64encode(os.urandom(32)))
    with open(key_file, "rb") as f:
        c.DBBackendBase.db_encrypt_keys = [f.read().strip()]
c.LocalBackend.clusters_directory = os.path.join(state, "clusters")

# distributed >= 2026 ships no dask-scheduler/dask-worker scripts: start them as modules
c.ClusterConfig.scheduler_cmd = [sys.executable, "-m", "distributed.cli.dask_scheduler"]
c.ClusterConfig.worker_cmd = [sys.executable, "-m", "distributed.cli.dask_worker"]
# gridflux workers: one thread each, glibc's dynamic mmap threshold left on (docs/deploy.md)
c.ClusterConfig.worker_threads = 1
c.ClusterConfig.environment = {"DASK_DISTRIBUTED__NANNY__PRE_SPAWN_ENVIRON": '{"MALLOC_TRIM_THRESHOLD_": None}'}
c.ClusterConfig.idle_timeout = 3600


def options_handler(options):
    """Map the user's choices onto the worker resources (cores = processes, one thread each)."""
    return {
        "worker_cores": options.worker_cores,
        "worker_threads": 1,
        "worker_memory": int(options.worker_memory * 2**30),
    }


c.Backend.cluster_options = Options(
    Integer("worker_cores", default=1, min=1, max=4, label="Worker cores"),
    Float("worker_memory", default=2, min=0.5, max=16, label="Worker memory (GiB)"),
    handler=options_handler,
)
