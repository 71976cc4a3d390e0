"""Network defaults closed (issue 20 point 6): every server a cluster starts listens on loopback.

The listening sockets of a started cluster are listed with psutil -- the driver (scheduler,
dashboard), its child processes (local nannies, workers, the fork server) and, for SLURM, the
worker processes that SLURM started (found by the pids the workers report) -- and none may be
bound to a wildcard address (0.0.0.0 or ::) or any address other than loopback. The keyword
rules of :func:`gridflux.compute.clusters.closed_network` (what opens a jobqueue cluster on
purpose) are tested without a scheduler.
"""

from __future__ import annotations

import ipaddress
import os
import sys

import psutil
import pytest

from gridflux.compute import clusters as gc


def listening(pids) -> list[tuple[int, str, int]]:
    """(pid, ip, port) of every TCP socket in LISTEN state of the processes ``pids``."""
    out = []
    for pid in set(pids):
        try:
            conns = psutil.Process(pid).net_connections(kind="inet")
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        out += [(pid, c.laddr.ip, c.laddr.port) for c in conns if c.status == psutil.CONN_LISTEN]
    return out


def not_loopback(socks) -> list[tuple[int, str, int]]:
    return [s for s in socks if not ipaddress.ip_address(s[1]).is_loopback]


def family(pid: int) -> list[int]:
    me = psutil.Process(pid)
    return [pid] + [p.pid for p in me.children(recursive=True)]


def test_the_socket_check_sees_a_wildcard_bind():
    """The check itself: a socket on 0.0.0.0 is found and reported (a planted open door)."""
    import socket

    with socket.socket() as s:
        s.bind(("0.0.0.0", 0))
        s.listen()
        socks = listening([os.getpid()])
        assert ("0.0.0.0", s.getsockname()[1]) in {(ip, port) for _, ip, port in socks}
        assert not_loopback(socks)


def test_local_cluster_listens_on_loopback_only(no_malloc_trim_env):
    with gc.make_cluster("local", n_workers=2) as handle:
        handle.wait_for_workers(2, timeout=60)
        worker_pids = set(handle.client.run(os.getpid).values())
        pids = family(os.getpid())
        assert worker_pids <= set(pids)
        socks = listening(pids)
        # scheduler + dashboard + per worker (nanny, worker, worker http) at least
        assert len(socks) >= 2 + 2 * 2, socks
        assert {pid for pid, _, _ in socks} >= worker_pids
        assert not not_loopback(socks), socks
        assert handle.dashboard_link.startswith("http://127.0.0.1:")


@pytest.mark.slurm
@pytest.mark.slow
def test_slurm_cluster_with_default_network_listens_on_loopback_only(
    slurm_conf, tmp_path, no_malloc_trim_env
):
    """No host, interface or dashboard option: the packaged defaults alone keep SLURM closed, and
    the single-node default still works (a worker joins and computes)."""
    with gc.make_cluster(
        "slurm",
        n_workers=1,
        queue="debug",
        cores=1,
        processes=1,
        memory="2GB",
        python=sys.executable,
        log_directory=str(tmp_path),
    ) as handle:
        handle.wait_for_workers(1, timeout=90)
        assert handle.client.submit(sum, [1, 2, 3]).result(timeout=60) == 6
        assert handle.cluster.scheduler_address.startswith("tcp://127.0.0.1:")
        worker_pids = set(handle.client.run(os.getpid).values())
        nanny_pids = set(handle.client.run(os.getppid).values())
        pids = family(os.getpid()) + list(worker_pids | nanny_pids)
        socks = listening(pids)
        assert {pid for pid, _, _ in socks} >= worker_pids | {os.getpid()}, socks
        assert len(socks) >= 2 + 2, socks  # scheduler, dashboard; worker, its http server
        assert not not_loopback(socks), socks


# -- the rules, without a scheduler ------------------------------------------------------------
def _kw(**kw):
    return gc.closed_network(dict(kw))


def test_jobqueue_default_is_loopback_for_scheduler_dashboard_and_workers():
    kw = _kw()
    assert kw["scheduler_options"] == {"host": "127.0.0.1", "dashboard_address": "127.0.0.1:0"}
    assert kw["worker_extra_args"] == [
        "--host",
        "127.0.0.1",
        "--dashboard-address",
        "127.0.0.1:0",
    ]
    assert "security" not in kw


@pytest.mark.parametrize(
    "given",
    [
        {"interface": "ib0"},
        {"scheduler_options": {"host": "10.1.2.3"}},
        {"scheduler_options": {"interface": "eth1"}},
    ],
)
def test_jobqueue_opened_on_purpose_keeps_the_dashboard_closed(given):
    kw = _kw(**given)
    sched = kw["scheduler_options"]
    assert sched.get("host") != "127.0.0.1"
    assert sched["dashboard_address"] == "127.0.0.1:0"  # the dashboard is opened separately
    # workers on other nodes must be reachable: they are not forced onto loopback
    assert "--host" not in kw["worker_extra_args"]
    assert kw["worker_extra_args"][-2:] == ["--dashboard-address", "127.0.0.1:0"]


def test_jobqueue_user_settings_win_and_tls_turns_on_security():
    kw = _kw(
        scheduler_options={"host": "10.1.2.3", "dashboard_address": ":8787"},
        worker_extra_args=["--host=10.1.2.4", "--no-dashboard"],
        tls=True,
    )
    assert kw["scheduler_options"] == {"host": "10.1.2.3", "dashboard_address": ":8787"}
    assert kw["worker_extra_args"] == ["--host=10.1.2.4", "--no-dashboard"]
    assert kw["security"] is True and "tls" not in kw


def test_packaged_jobqueue_profiles_render_a_closed_worker_command():
    pytest.importorskip("dask_jobqueue")
    for kind in ("slurm", "pbs"):
        script = gc.render_job_script(kind)
        assert "--host 127.0.0.1" in script and "--dashboard-address 127.0.0.1:0" in script
        assert gc.profile(kind)["tls"] is False


def test_kubernetes_open_service_type_is_warned(caplog):
    pytest.importorskip("dask_kubernetes")
    spec = gc.render_cluster_spec(image="img")
    assert spec["spec"]["scheduler"]["service"]["type"] == "ClusterIP"
    assert not [r for r in caplog.records if "scheduler-service-type" in r.getMessage()]
    gc.render_cluster_spec(image="img", scheduler_service_type="LoadBalancer")
    assert any("outside the cluster" in r.getMessage() for r in caplog.records)
