"""A local dask-gateway server started from deploy/gateway/dask_gateway_config.py, used through
``make_cluster("gateway")`` with the cluster options of deploy/gateway/gridflux-gateway.yaml."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
import yaml

from gridflux.compute import clusters as gc

from .conftest import DEPLOY

pytest.importorskip("dask_gateway", reason="dask-gateway not installed (pip install dask-gateway)")
pytest.importorskip(
    "dask_gateway_server",
    reason='dask-gateway-server not installed (pip install "dask-gateway-server[local]")',
)

pytestmark = [
    pytest.mark.network,
    # dask-gateway 2026.3's Gateway.__del__ closes a second time and raises on the stopped loop of
    # distributed 2026.8 ("Accessing the loop property while the loop is not running"): harmless
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def gateway_server(tmp_path):
    port = _free_port()
    env = {
        **os.environ,
        "GRIDFLUX_GATEWAY_DIR": str(tmp_path / "gateway"),
        "GRIDFLUX_GATEWAY_PORT": str(port),
    }
    log = open(tmp_path / "server.log", "w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from dask_gateway_server.app import main; main()",
            "-f",
            str(DEPLOY / "gateway" / "dask_gateway_config.py"),
        ],
        env=env,
        cwd=str(tmp_path),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    address = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{address}/api/health", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                log.flush()
                pytest.fail(
                    "dask-gateway-server did not start: "
                    f"{(tmp_path / 'server.log').read_text()[-2000:]}"
                )
            time.sleep(0.2)
        yield address
    finally:
        proc.terminate()  # the server stops its proxy and clusters
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.mark.slow
def test_gateway_cluster_runs_a_computation(gateway_server, no_malloc_trim_env):
    profile = yaml.safe_load((DEPLOY / "gateway" / "gridflux-gateway.yaml").read_text())
    options = profile["gridflux"]["cluster"]["gateway"]["cluster-options"]
    with gc.make_cluster(
        "gateway", n_workers=2, address=gateway_server, cluster_options=options
    ) as handle:
        handle.wait_for_workers(2, timeout=60)
        workers = handle.client.scheduler_info(n_workers=-1)["workers"]
        assert len(workers) == 2
        # the options of the deploy file reached the workers: 1 thread, 2 GiB memory limit
        assert {w["nthreads"] for w in workers.values()} == {1}
        assert {w["memory_limit"] for w in workers.values()} == {2 * 2**30}
        # and the server's environment: no MALLOC_TRIM_THRESHOLD_ in the workers
        assert set(
            handle.client.run(lambda: os.environ.get("MALLOC_TRIM_THRESHOLD_")).values()
        ) == {None}
        futures = handle.client.map(lambda x: x * x, range(1, 101))
        assert handle.client.submit(sum, futures).result(timeout=60) == 100 * 101 * 201 // 6
        name = handle.cluster.name
    # closing the handle shut the gateway cluster down
    from dask_gateway import Gateway

    with Gateway(gateway_server) as gateway:
        assert name not in [c.name for c in gateway.list_clusters()]


def test_gateway_rejects_an_unknown_cluster_option(gateway_server):
    from gridflux.errors import ClusterError

    with pytest.raises(
        ClusterError, match=r"'worker_gpus'.*offers \['worker_cores', 'worker_memory'\]"
    ):
        gc.make_cluster("gateway", address=gateway_server, cluster_options={"worker_gpus": 1})
