"""The store lock is exclusive: many processes released at one barrier, exactly one holds it.

Local stores and S3 (moto's server on 127.0.0.1), with no lock and with a stale one (a dead
process on this host; on S3 also a heartbeat older than the timeout). Each trial forks
:data:`CONTENDERS` processes that wait on one ``multiprocessing.Barrier`` and then call
``Store.acquire_lock`` at once; every process reports, and only after all have reported does the
winner release. Nothing is random: the trials differ only in the operating system's scheduling.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import socket
import subprocess
import sys
import time

import pytest

from gridflux import config
from gridflux.errors import StoreError
from gridflux.pipeline.store import LOCK, Store

CONTENDERS = 8
CTX = multiprocessing.get_context("fork")


def _contend(url, options, barrier, results, done):
    """One contender: acquire at the barrier, report, hold until every contender reported."""
    st = Store(url, options)
    barrier.wait()
    try:
        st.acquire_lock()
        got = st.lock.token
    except StoreError:
        got = None
    results.put(got)
    done.wait()
    if got:
        st.release_lock()


def _trial(url, options=None, timeout=60):
    """Token of every contender that got the lock, and the lock's content while they held it."""
    barrier = CTX.Barrier(CONTENDERS)
    results = CTX.Queue()
    done = CTX.Event()
    procs = [
        CTX.Process(target=_contend, args=(url, options, barrier, results, done))
        for _ in range(CONTENDERS)
    ]
    for p in procs:
        p.start()
    winners = []
    for _ in procs:
        token = results.get(timeout=timeout)
        if token:
            winners.append(token)
    held = Store(url, options).lock_info() if winners else None
    done.set()
    for p in procs:
        p.join(timeout)
        assert p.exitcode == 0
    return winners, held


def _dead_pid() -> int:
    proc = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    return int(proc.stdout)


def _write_lock(st: Store, info: dict) -> None:
    st.fs.makedirs(st.root, exist_ok=True)
    st.fs.pipe(f"{st.root}/{LOCK}", json.dumps(info).encode())


@pytest.mark.parametrize("stale", [False, True], ids=["free", "stale-dead-pid"])
def test_local_lock_is_held_by_exactly_one_of_many(tmp_path, stale):
    for trial in range(12):
        url = str(tmp_path / f"s{trial}.zarr")
        if stale:
            _write_lock(Store(url), {"host": socket.gethostname(), "pid": _dead_pid()})
        winners, held = _trial(url)
        assert len(winners) == 1, f"trial {trial}: {len(winners)} processes held the lock"
        assert held["token"] == winners[0]
        assert not os.path.exists(os.path.join(url, LOCK))  # the winner released it
        leftovers = [n for n in os.listdir(url) if n.startswith(LOCK)]
        assert not leftovers, leftovers  # no temp files or takeover claims left behind


def test_live_lock_of_this_host_is_never_taken_over(tmp_path):
    url = str(tmp_path / "s.zarr")
    _write_lock(Store(url), {"host": socket.gethostname(), "pid": os.getppid(), "heartbeat": 0})
    winners, _ = _trial(url)
    assert winners == []


def test_a_takeover_claim_left_by_a_dead_process_does_not_wedge_the_store(tmp_path):
    """A contender that died after claiming the takeover of a stale lock, before replacing it."""
    from gridflux.pipeline.lock import CLAIM, version_tag

    url = str(tmp_path / "s.zarr")
    st = Store(url)
    _write_lock(st, {"host": socket.gethostname(), "pid": _dead_pid()})
    raw = open(os.path.join(url, LOCK), "rb").read()
    claim = os.path.join(url, f"{LOCK}{CLAIM}{version_tag(raw)}")
    with open(claim, "w") as f:
        json.dump({"host": socket.gethostname(), "pid": _dead_pid()}, f)
    winners, _ = _trial(url)
    assert len(winners) == 1


def test_remote_lock_with_an_old_heartbeat_is_stale_and_a_fresh_one_is_not(tmp_path):
    """(locally, with the lock of another host: only the heartbeat can tell)"""
    url = str(tmp_path / "s.zarr")
    other = {"host": "elsewhere", "pid": 1, "token": "x"}
    _write_lock(Store(url), {**other, "heartbeat": time.time()})
    with pytest.raises(StoreError, match="host elsewhere"):
        Store(url).acquire_lock()
    _write_lock(Store(url), {**other, "heartbeat": time.time() - 10})
    with config.set_options(**{"store.lock-timeout": 5.0}):
        st = Store(url)
        st.acquire_lock()
        assert st.lock_info()["token"] == st.lock.token
        st.release_lock()


def test_heartbeat_is_refreshed_while_held(tmp_path):
    url = str(tmp_path / "s.zarr")
    with config.set_options(**{"store.lock-heartbeat": 0.05}):
        st = Store(url)
        st.acquire_lock()
        first = st.lock_info()["heartbeat"]
        deadline = time.time() + 30
        while st.lock_info()["heartbeat"] == first and time.time() < deadline:
            time.sleep(0.05)
        assert st.lock_info()["heartbeat"] > first
        assert st.lock_info()["token"] == st.lock.token
        st.release_lock()
    assert not os.path.exists(os.path.join(url, LOCK))


def test_a_run_whose_lock_was_taken_over_stops_writing_its_manifest(tmp_path):
    """A holder paused past the timeout (its lock taken over) finds out at its next heartbeat."""
    url = str(tmp_path / "s.zarr")
    with config.set_options(**{"store.lock-heartbeat": 0.05}):
        st = Store(url)
        st.acquire_lock()
        st.write_manifest({"series": {}})
        thief = {"token": "other", "host": "elsewhere", "pid": 1, "heartbeat": time.time()}
        with open(os.path.join(url, LOCK), "w") as f:
            json.dump(thief, f)
        deadline = time.time() + 30
        while not st.lock.lost and time.time() < deadline:
            time.sleep(0.05)
        with pytest.raises(StoreError, match="taken over by another run"):
            st.write_manifest({"series": {}})
        st.release_lock()
    assert Store(url).lock_info()["token"] == "other"  # the release left the new holder's lock


# -- S3 ------------------------------------------------------------------------------------------
try:  # moto's server needs flask (both in the dev extra)
    import boto3
    from moto.server import ThreadedMotoServer
except ImportError:  # pragma: no cover - depends on the environment
    ThreadedMotoServer = None

needs_moto = pytest.mark.skipif(ThreadedMotoServer is None, reason="moto[server] not installed")


def _serialized_moto_server():
    """moto's threaded S3 server with one request at a time: S3 applies a conditional write
    atomically, while moto checks the condition and writes in the request's thread without a
    lock, so concurrent requests are serialized here to give the contenders S3's semantics."""
    import threading

    from moto.server import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import make_server

    class Server(ThreadedMotoServer):
        def _server_entry(self) -> None:
            app = DomainDispatcherApplication(create_backend_app)
            one_at_a_time = threading.Lock()

            def serialized(environ, start_response):
                with one_at_a_time:
                    return list(app(environ, start_response))

            self._server = make_server(self._ip_address, self._port, serialized, True)
            self._server_ready_event.set()
            self._server.serve_forever()

    return Server(ip_address="127.0.0.1", port=0, verbose=False)


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    """A bucket on moto's S3 server (127.0.0.1, free port) and the store options to reach it."""
    server = _serialized_moto_server()
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    opts = {
        "key": "testing",
        "secret": "testing",
        "client_kwargs": {"endpoint_url": endpoint, "region_name": "us-east-1"},
    }
    boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    ).create_bucket(Bucket="locks")
    yield opts
    server.stop()


@needs_moto
@pytest.mark.parametrize("stale", [None, "heartbeat", "dead-pid"])
def test_s3_lock_is_held_by_exactly_one_of_many(s3, stale, monkeypatch):
    for k in list(os.environ):
        if k.startswith("AWS_"):
            monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    for trial in range(5):
        url = f"s3://locks/{stale}-{trial}.zarr"
        if stale == "heartbeat":  # a driver on another machine, killed 10 minutes ago
            _write_lock(
                Store(url, s3), {"host": "elsewhere", "pid": 1, "heartbeat": time.time() - 600}
            )
        elif stale == "dead-pid":
            _write_lock(Store(url, s3), {"host": socket.gethostname(), "pid": _dead_pid()})
        winners, held = _trial(url, s3)
        assert len(winners) == 1, f"trial {trial}: {len(winners)} processes held the lock"
        assert held["token"] == winners[0]
        assert not Store(url, s3).fs.exists(f"locks/{stale}-{trial}.zarr/{LOCK}")


@needs_moto
def test_s3_live_lock_is_refused(s3):
    url = "s3://locks/live.zarr"
    _write_lock(Store(url, s3), {"host": "elsewhere", "pid": 1, "heartbeat": time.time()})
    with pytest.raises(StoreError, match="in use by another gridflux run .*host elsewhere"):
        Store(url, s3).acquire_lock()
