"""The two clients of ``s3://`` objects (``remote.client``): obstore where the storage options
map to it faithfully, s3fs otherwise (issue 19 point 4).

The option mapping is checked against a closed table. The fault behaviours run on both clients
against moto's S3 server behind the shim of ``benchmarks/s3shim.py`` (503 ``SlowDown`` and cut
responses injected per key, every GET counted): the truths are the uploaded random bytes and the
shim's own request counts.
"""

from __future__ import annotations

import logging
import os
import sys

import numpy as np
import pytest

from gridflux import config
from gridflux.errors import InputError
from gridflux.ingest import objectstore, remote

pytest.importorskip("obstore", reason="obstore is not installed; pip install -e '.[dev]'")
pytest.importorskip("moto.server", reason="moto[server] is not installed; pip install -e '.[dev]'")
pytest.importorskip("flask", reason="moto's server needs flask; pip install -e '.[dev]'")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

from benchmarks.s3shim import LinkModel, SlowS3  # noqa: E402

BUCKET = "gridflux-client-test"
SIZE = 300_000
CLIENTS = ("auto", "fsspec")
KEY, SECRET = "AKIAPLANTEDOBSTORE42", "obstore-SECRET-planted-9q"
EP = "http://127.0.0.1:9000"


# -- the option mapping (no server) --------------------------------------------------------------
MAPPED = [
    # (options, the S3 settings that must come out)
    (
        {"key": "K1", "secret": "S1", "endpoint_url": EP},
        {"access_key_id": "K1", "secret_access_key": "S1", "endpoint": EP, "region": "us-east-1"},
    ),
    (
        {"key": "K1", "secret": "S1", "client_kwargs": {"endpoint_url": EP, "region_name": "r1"}},
        {"access_key_id": "K1", "endpoint": EP, "region": "r1"},
    ),
    (
        {"key": "K1", "secret": "S1", "token": "T1", "client_kwargs": {"region_name": "eu-west-1"}},
        {"session_token": "T1", "region": "eu-west-1"},
    ),
    (
        {"anon": True, "client_kwargs": {"region_name": "us-west-2"}},
        {"skip_signature": True, "region": "us-west-2"},
    ),
    (  # the timeouts, retries and pool size that remote.with_timeouts adds for s3fs
        {
            "key": "K1",
            "secret": "S1",
            "endpoint_url": EP,
            "config_kwargs": {
                "connect_timeout": 3,
                "read_timeout": 7.5,
                "retries": {"max_attempts": 6},
                "max_pool_connections": 32,
            },
        },
        {"skip_signature": False, "request_payer": False},
    ),
]
UNMAPPED = [
    ({}, "no credentials: s3fs's credential chain"),
    ({"key": "K1", "secret": "S1"}, "neither region nor endpoint"),
    ({"anon": True}, "neither region nor endpoint"),
    ({"profile": "work", "client_kwargs": {"region_name": "r1"}}, "a profile"),
    ({"key": "K1", "secret": "S1", "endpoint_url": EP, "profile": "p"}, "a profile beside keys"),
    ({"anon": True, "endpoint_url": EP, "requester_pays": True}, "requester pays"),
    ({"key": "K1", "secret": "S1", "endpoint_url": EP, "version_aware": True}, "versions"),
    ({"key": "K1", "secret": "S1", "endpoint_url": EP, "use_ssl": False}, "use_ssl"),
    ({"key": "K1", "secret": "S1", "endpoint_url": EP, "s3_additional_kwargs": {}}, "extra args"),
    (
        {"key": "K1", "secret": "S1", "endpoint_url": EP, "config_kwargs": {"s3": {}}},
        "other config_kwargs (addressing style)",
    ),
    (
        {"key": "K1", "secret": "S1", "client_kwargs": {"region_name": "r", "verify": False}},
        "other client_kwargs",
    ),
    ({"key": "K1", "endpoint_url": EP}, "a key without a secret"),
    ({"anon": True, "key": "K1", "secret": "S1", "endpoint_url": EP}, "anon beside keys"),
    ({"anon": "yes", "endpoint_url": EP}, "anon not a bool"),
    ({"token": "T1", "endpoint_url": EP}, "a token without keys"),
    (
        {
            "key": "K1",
            "secret": "S1",
            "endpoint_url": EP,
            "client_kwargs": {"endpoint_url": "http://other:1"},
        },
        "two endpoints",
    ),  # fmt: skip
    ({"key": "K1", "secret": "S1", "endpoint_url": "ftp://h"}, "not an http(s) endpoint"),
]


@pytest.mark.parametrize(("options", "want"), MAPPED)
def test_options_that_map_to_an_obstore_store(options, want):
    got = objectstore.store_settings(options, environ={})
    assert got is not None
    config_ = got["config"]
    for k, v in want.items():
        assert config_[k] == v, k
    assert config_["skip_signature"] is bool(options.get("anon"))
    assert config_["request_payer"] is False
    assert ("access_key_id" in config_) is not bool(options.get("anon"))
    if "endpoint" in config_:
        assert config_["aws_endpoint_url_s3"] == config_["endpoint"]
        assert got["client_options"]["allow_http"] is True
    ck = options.get("config_kwargs", {})
    assert got["client_options"].get("connect_timeout") == ck.get("connect_timeout")
    assert got["client_options"].get("read_timeout") == ck.get("read_timeout")


@pytest.mark.parametrize(("options", "why"), UNMAPPED, ids=[w for _, w in UNMAPPED])
def test_options_that_keep_s3fs(options, why):
    assert objectstore.store_settings(options, environ={}) is None, why


@pytest.mark.parametrize(
    ("env", "options", "mapped"),
    [
        ({"AWS_SESSION_TOKEN": "x"}, {"key": "K", "secret": "S", "endpoint_url": EP}, False),
        ({"AWS_SESSION_TOKEN": "x"}, {"key": "K", "secret": "S", "token": "T", "endpoint_url": EP},
         True),
        ({"AWS_ENDPOINT_URL_S3": "http://e:1"}, {"anon": True,
         "client_kwargs": {"region_name": "r"}}, False),
        ({"AWS_ENDPOINT_URL_S3": "http://e:1"}, {"anon": True, "endpoint_url": EP}, True),
        ({"AWS_SSE_CUSTOMER_KEY_BASE64": "x"}, {"anon": True, "endpoint_url": EP}, False),
        ({"AWS_REQUEST_PAYER": "true", "AWS_SKIP_SIGNATURE": "true"},
         {"key": "K", "secret": "S", "endpoint_url": EP}, True),
    ],
)  # fmt: skip
def test_environment_that_obstore_alone_would_read_keeps_s3fs(env, options, mapped):
    got = objectstore.store_settings(options, environ=env)
    assert (got is not None) is mapped
    if got is not None:  # explicit settings win over AWS_REQUEST_PAYER / AWS_SKIP_SIGNATURE
        assert got["config"]["request_payer"] is False
        assert got["config"]["skip_signature"] is bool(options.get("anon"))


def test_region_defaults_as_botocore_does():
    opts = {"key": "K", "secret": "S", "endpoint_url": EP}
    assert objectstore.store_settings(opts, environ={})["config"]["region"] == "us-east-1"
    env = {"AWS_DEFAULT_REGION": "ap-south-1"}
    assert objectstore.store_settings(opts, environ=env)["config"]["region"] == "ap-south-1"


@pytest.mark.parametrize(
    ("url", "where"),
    [
        ("s3://b/k.nc", ("b", "k.nc")),
        ("s3a://b/dir/x y.nc", ("b", "dir/x y.nc")),
        ("s3://b/k.nc?versionId=3", None),
        ("s3://b/", None),
        ("s3://u:p@b/k", None),
        ("https://b/k", None),
    ],
)
def test_s3_locations(url, where):
    assert objectstore.s3_location(url) == where


def test_the_client_setting_and_what_chooses_the_store(monkeypatch):
    for k in list(os.environ):
        if k.startswith("AWS_"):
            monkeypatch.delenv(k, raising=False)
    so = {"key": "K", "secret": "S", "endpoint_url": EP}
    assert remote.RemotePolicy.from_config().client == "auto"  # the packaged default
    assert remote.object_store("s3://b/k", so) is not None
    assert remote.object_store("s3://b/k", so) is remote.object_store("s3://b/other", so)
    assert remote.object_store("s3://b/k", {**so, "secret": "S2"}) is not remote.object_store(
        "s3://b/k", so
    )
    assert remote.object_store("s3://b/k", {"s3": so, "https": {"x": 1}}) is not None
    assert remote.object_store("https://h/b/k", so) is None
    assert remote.object_store("s3://b/k", {**so, "profile": "p"}) is None
    with config.set_options(**{"remote.client": "fsspec"}):
        assert remote.RemotePolicy.from_config().client == "fsspec"
        assert remote.object_store("s3://b/k", so) is None
    with pytest.raises(ValueError, match="remote.client='rust'.*'auto', 'fsspec'"):
        remote.RemotePolicy(client="rust")
    # obstore not importable: auto keeps s3fs, silently (documented in docs/ingest.md)
    objectstore.clear_stores()
    monkeypatch.setitem(sys.modules, "obstore", None)
    monkeypatch.setitem(sys.modules, "obstore.store", None)
    assert not objectstore.available()
    assert remote.object_store("s3://b/k", so) is None


def _obstore_error(kind: str, text: str) -> Exception:
    import obstore.exceptions as oe

    return getattr(oe, kind)(text)


@pytest.mark.parametrize(
    ("kind", "text", "transient"),
    [
        ("GenericError", "Server returned non-2xx status code: 503 Service Unavailable: "
         "<Error><Code>SlowDown</Code></Error>", True),
        ("GenericError", "Server returned non-2xx status code: 429 Too Many Requests", True),
        ("GenericError", "Server returned non-2xx status code: 408 Request Timeout", True),
        ("GenericError", "non-2xx status code: 400 Bad Request: <Code>RequestTimeout</Code>", True),
        ("GenericError", "Server returned non-2xx status code: 416 Range Not Satisfiable", False),
        ("GenericError", "Server returned non-2xx status code: 400 Bad Request", False),
        ("GenericError", "HTTP error\n\nDebug source:\n HttpError {\n kind: Connect,", True),
        ("GenericError", "HTTP error\n\nDebug source:\n HttpError {\n kind: Timeout,", True),
        ("GenericError", "HTTP error\n\nDebug source:\n HttpError {\n kind: Decode,", True),
        ("GenericError", "HTTP error\n\nDebug source:\n HttpError {\n kind: Unknown,", False),
        ("PermissionDeniedError", "status code: 403 Forbidden", False),
        ("UnauthenticatedError", "status code: 401 Unauthorized", False),
    ],
)  # fmt: skip
def test_obstore_errors_are_classified_like_the_others(kind, text, transient):
    exc = _obstore_error(kind, text)
    assert remote.is_transient(exc) is transient
    wrapped = FileNotFoundError("not found")  # fsspec-style wrapping keeps the cause's class
    wrapped.__cause__ = exc
    assert remote.is_transient(wrapped) is transient
    assert remote.is_transient(FileNotFoundError("Object at location k not found")) is False


# -- both clients against the shimmed server -----------------------------------------------------
@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    """The shimmed S3 server (no delay) with one object of random bytes: ``(server, bytes)``."""
    data = np.random.default_rng(19).integers(0, 256, SIZE, dtype=np.uint8).tobytes()
    with SlowS3(LinkModel(latency=0.0, conn_mbps=1e5, link_mbps=1e5)) as srv:
        client = srv.client()
        client.create_bucket(Bucket=BUCKET)
        client.put_object(Bucket=BUCKET, Key="blob", Body=data)
        client.put_object(Bucket=BUCKET, Key="cut", Body=data[: SIZE // 3])
        yield srv, data


@pytest.fixture(params=CLIENTS)
def client(request, s3, monkeypatch):
    """Each test once per ``remote.client``, fast retries, counters and faults cleared.

    s3fs retries some errors itself (``S3FileSystem.retries``, 5) inside each of gridflux's
    attempts, and botocore too (``config_kwargs.retries``): both are set to one attempt here
    (:func:`_so`), so that both clients retry only at gridflux's level and the shim's request
    counts compare.
    """
    import s3fs

    monkeypatch.setattr(s3fs.S3FileSystem, "retries", 1)
    for k in list(os.environ):
        if k.startswith("AWS_"):
            monkeypatch.delenv(k, raising=False)
    s3[0].reset()
    remote.clear_block_cache()
    settings = {"remote.client": request.param, "remote.backoff": 0.01, "remote.retries": 3}
    with config.set_options(**settings, **{"remote.backoff-max": 0.02}):
        yield request.param


def _so(srv) -> dict:
    """The server's storage options, botocore's own retries off (``max_attempts`` counts retries
    after the first attempt; obstore maps these options too)."""
    return {**srv.storage_options, "config_kwargs": {"retries": {"max_attempts": 0}}}


def _url(key: str = "blob") -> str:
    return f"s3://{BUCKET}/{key}"


def _gets(srv, key: str = "blob") -> int:
    return srv.stats()["keys"].get(f"{BUCKET}/{key}", {}).get("requests", 0)


def _file(srv, key: str = "blob", size: int | None = None) -> remote.RemoteFile:
    f = remote.RemoteFile(_url(key), _so(srv), size=size)
    want = "obstore" if remote.RemotePolicy.from_config().client == "auto" else "fsspec"
    assert f.client == want  # the client under test is the one that sends the requests
    return f


RANGES = [(0, 1), (0, 4096), (12_345, 67_890), (SIZE - 10, SIZE), (SIZE - 10, SIZE + 50)]


def test_ranges_are_the_stored_bytes(s3, client):
    srv, data = s3
    f = _file(srv)
    for a, b in RANGES:
        assert f.fetch(a, b) == data[a:b]
    assert f.size == SIZE
    rng = np.random.default_rng(4)
    starts = np.sort(rng.integers(0, SIZE - 1, 40))
    ranges = [(int(a), int(min(SIZE, a + rng.integers(1, 30_000)))) for a in starts]
    got = f.fetch_ranges(ranges)
    assert all(got[r] == data[r[0] : r[1]] for r in ranges)
    assert _gets(srv) <= len(RANGES) + len(ranges)  # never more than one GET per range


def test_both_clients_fetch_identical_bytes_and_metadata(s3, client):
    """The same ranges, metadata and whole-object read through the other client."""
    srv, data = s3
    mine = _file(srv)
    other = "fsspec" if client == "auto" else "auto"
    got = {r: mine.fetch(*r) for r in RANGES}
    info = remote.info(_url(), _so(srv))
    whole = remote.read_bytes(_url(), _so(srv))
    with config.set_options(**{"remote.client": other}):
        theirs = _file(srv)
        assert {r: theirs.fetch(*r) for r in RANGES} == got
        info2 = remote.info(_url(), _so(srv))
        assert remote.read_bytes(_url(), _so(srv)) == whole == data
    for k in ("size", "ETag", "LastModified"):  # what fingerprints read: the same values
        assert info[k] == info2[k] and str(info[k]) == str(info2[k]), k
    assert info["size"] == SIZE


def test_read_bytes_through_obstore_is_one_get(s3, client):
    srv, data = s3
    assert remote.read_bytes(_url(), _so(srv)) == data
    if client == "auto":
        assert _gets(srv) == 1  # no HEAD first, no range requests


@pytest.mark.parametrize("n", [1, 3])
def test_503_is_retried_then_succeeds(s3, client, n):
    srv, data = s3
    f = _file(srv)
    srv.fault("503", n, "blob")
    assert f.fetch(1000, 150_000) == data[1000:150_000]
    assert _gets(srv) == n + 1  # each 503 answered once more, nothing else
    srv.fault("503", n, "blob")
    assert remote.read_bytes(_url(), _so(srv)) == data


def test_503_that_persists_is_a_remote_read_error(s3, client):
    srv, _ = s3
    f = _file(srv)
    srv.fault("503", 100, "blob")
    with pytest.raises(remote.RemoteReadError) as err:
        f.fetch(0, 1000)
    msg = str(err.value)
    assert _url() in msg and "4 attempts" in msg
    assert "reduce your request rate" in msg or "SlowDown" in msg  # the server's own words
    assert _gets(srv) == 4
    assert "Debug source" not in msg  # obstore's debug dump left out of the message


def test_short_body_is_retried_then_succeeds(s3, client):
    srv, data = s3
    f = _file(srv)
    srv.fault("short", 2, "blob")
    assert f.fetch(5000, 105_000) == data[5000:105_000]
    assert _gets(srv) == 3
    srv.fault("short", 1, "blob")
    assert remote.read_bytes(_url(), _so(srv)) == data


def test_a_body_that_stays_short_names_the_url(s3, client):
    srv, _ = s3
    f = _file(srv)
    srv.fault("short", 100, "blob")
    with pytest.raises(remote.RemoteReadError) as err:
        f.fetch(5000, 105_000)
    msg = str(err.value)
    assert _url() in msg and "got 50000 of 100000 bytes" in msg and "truncated" in msg
    assert _gets(srv) == 4
    with pytest.raises(remote.RemoteReadError, match=_url()):
        remote.read_bytes(_url(), _so(srv))


def test_missing_object_is_file_not_found_as_before(s3, client):
    srv, _ = s3
    url = _url("nowhere.nc")
    for call in (
        lambda: remote.info(url, _so(srv)),
        lambda: remote.RemoteFile(url, _so(srv)),
        lambda: remote.read_bytes(url, _so(srv)),
    ):
        with pytest.raises(InputError, match="file not found") as err:
            call()
        assert url in str(err.value)
        assert isinstance(err.value.__cause__, FileNotFoundError)
    with pytest.raises(FileNotFoundError):  # a read of a file whose size was given: not retried
        _file(srv, "nowhere.nc", size=100).fetch(0, 10)


@pytest.mark.parametrize(
    ("a", "b"), [(SIZE // 3 - 100, SIZE // 3 + 100), (SIZE // 2, SIZE // 2 + 9)]
)
def test_truncated_object_is_a_remote_read_error(s3, client, a, b):
    """An object shorter than the size its reader was given (e.g. by the catalog, or rewritten
    since): a range across or past its end is a short read, then an error naming the URL."""
    srv, _ = s3
    f = _file(srv, "cut", size=SIZE)
    with pytest.raises(remote.RemoteReadError) as err:
        f.fetch(a, b)
    got = max(0, SIZE // 3 - a)
    assert f"got {got} of {b - a} bytes" in str(err.value) and _url("cut") in str(err.value)


def test_truncated_netcdf_is_an_input_error(s3, client, tmp_path):
    """A netCDF object cut short (an interrupted upload): an InputError naming the URL."""
    import netCDF4

    from gridflux.ingest.catalog import open_one

    srv, _ = s3
    path = tmp_path / "f.nc"
    with netCDF4.Dataset(path, "w") as nc:
        nc.createDimension("t", 40)
        nc.createDimension("y", 50)
        nc.createDimension("x", 60)
        nc.createVariable("v", "f4", ("t", "y", "x"))[:] = np.ones((40, 50, 60), "f4")
    data = path.read_bytes()
    srv.client().put_object(Bucket=BUCKET, Key="cut.nc", Body=data[: int(len(data) * 0.6)])
    with pytest.raises(InputError) as err:
        ds = open_one(_url("cut.nc"), "netcdf", _so(srv))
        ds["v"].values  # noqa: B018 - reading is what must fail, if opening did not
    assert _url("cut.nc") in str(err.value) and "truncated" in str(err.value)


def test_obstore_path_never_shows_secrets(s3, client, caplog):
    """Errors, their causes, reprs and log lines of the obstore path hold neither key nor
    secret."""
    srv, _ = s3
    so = {**_so(srv), "key": KEY, "secret": SECRET}  # moto accepts any keys
    texts = []
    f = remote.RemoteFile(_url(), so)
    texts += [repr(f), f.name, str(remote.object_store(_url(), so))]
    if client == "auto":
        assert f.client == "obstore"
        texts.append(repr(remote.object_store(_url(), so)))
    caplog.set_level(logging.DEBUG)
    srv.fault("503", 100, "blob")
    failures = [
        lambda: f.fetch(0, 10),
        lambda: remote.read_bytes(_url(), so),
        lambda: remote.info(_url("gone"), so),
        lambda: remote.RemoteFile(
            _url(), {**so, "endpoint_url": "http://127.0.0.1:9"}, size=100
        ).fetch(0, 10),  # connection refused
    ]
    for call in failures:
        with pytest.raises(Exception) as err:  # noqa: PT011 - the types are asserted above
            call()
        e: BaseException | None = err.value
        while e is not None:
            texts += [str(e), repr(e)]
            e = e.__cause__ or e.__context__
    # gridflux's own log lines (botocore's DEBUG lines show the access key id of the
    # Authorization header: the user's logging choice, not gridflux's)
    texts += [r.getMessage() for r in caplog.records if r.name.startswith("gridflux")]
    assert len(texts) > 10
    for t in texts:
        assert KEY not in t and SECRET not in t


def _read_in_child(so: dict) -> tuple[str, bytes]:
    f = remote.RemoteFile(_url(), so)
    return f.client, f.fetch(100, 5000)


def test_a_process_forked_after_obstore_was_used_keeps_s3fs(s3, monkeypatch):
    """obstore's runtime does not survive a fork (its requests would hang): a forked child of a
    process that used it reads through s3fs, the same bytes."""
    import multiprocessing

    for k in list(os.environ):
        if k.startswith("AWS_"):
            monkeypatch.delenv(k, raising=False)
    srv, data = s3
    srv.reset()  # no fault left by an earlier test
    assert _read_in_child(srv.storage_options) == ("obstore", data[100:5000])  # the parent
    with multiprocessing.get_context("fork").Pool(1) as pool:
        got = pool.map_async(_read_in_child, [srv.storage_options] * 2).get(timeout=120)
    assert got == [("fsspec", data[100:5000])] * 2


def test_a_stalled_server_times_out_and_is_retried(client):
    """A server that accepts the connection and never answers: each attempt ends at the timeout
    (a transient error), and the retries end in a RemoteReadError naming the URL."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)  # connections complete in the backlog; nothing ever answers
        endpoint = f"http://127.0.0.1:{sock.getsockname()[1]}"
        so = {
            "key": KEY,
            "secret": SECRET,
            "endpoint_url": endpoint,
            "client_kwargs": {"region_name": "us-east-1"},
            "config_kwargs": {"retries": {"max_attempts": 0}},
        }
        settings = {"remote.timeout": 0.5, "remote.connect-timeout": 0.5, "remote.retries": 1}
        with config.set_options(**settings):
            f = remote.RemoteFile(_url(), so, size=SIZE)
            assert f.client == ("obstore" if client == "auto" else "fsspec")
            with pytest.raises(remote.RemoteReadError) as err:
                f.fetch(0, 100)
    msg = str(err.value)
    assert _url() in msg and "2 attempts" in msg
    assert isinstance(err.value.__cause__, Exception) and remote.is_transient(err.value.__cause__)
