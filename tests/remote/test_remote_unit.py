"""gridflux.remote piece by piece: error classes, secret scrubbing, timeouts, the robust file,
simplecache caching, cut files, pickling, and zarr through the retrying store."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
import xarray as xr

from gridflux import config
from gridflux.errors import InputError
from gridflux.ingest import remote

from .faultserver import FaultServer

NC = "GCB/CAMS/CAMS_GCB2021_r1_land_flux_2000-2001.nc"


def _policy(**kw):
    base = dict(
        retries=3,
        backoff=0.001,
        backoff_max=0.01,
        timeout=1.0,
        connect_timeout=1.0,
        block_size=65536,
    )
    base.update(kw)
    return remote.RemotePolicy(**base)


# -- classification ---------------------------------------------------------------------------
def _aiohttp_status(status):
    import aiohttp
    from yarl import URL

    info = aiohttp.RequestInfo(URL("http://h/x"), "GET", {}, URL("http://h/x"))
    return aiohttp.ClientResponseError(info, (), status=status, message="m")


def _boto(code, status):
    from botocore.exceptions import ClientError

    return ClientError(
        {"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "GetObject",
    )


def _fnf_from(cause):
    try:
        raise FileNotFoundError("http://h/x") from cause
    except FileNotFoundError as exc:
        return exc


@pytest.mark.parametrize(
    ("exc", "transient"),
    [
        (ConnectionResetError(104, "reset"), True),
        (ConnectionRefusedError(111, "refused"), True),
        (TimeoutError(), True),
        (remote.ShortReadError("short"), True),
        (OSError(104, "Connection reset by peer"), True),
        (OSError(5, "I/O error"), False),
        (FileNotFoundError("gone"), False),
        (PermissionError("denied"), False),
        (ValueError("bad file"), False),
    ],
)
def test_transient_builtin_errors(exc, transient):
    assert remote.is_transient(exc) is transient


@pytest.mark.parametrize(
    ("status", "transient"),
    [
        (500, True),
        (502, True),
        (503, True),
        (504, True),
        (429, True),
        (408, True),
        (404, False),
        (403, False),
        (416, False),
    ],
)
def test_transient_http_status(status, transient):
    assert remote.is_transient(_aiohttp_status(status)) is transient
    # fsspec's HTTP info() raises FileNotFoundError *from* the response error: judged by the cause
    assert remote.is_transient(_fnf_from(_aiohttp_status(status))) is transient


@pytest.mark.parametrize(
    ("code", "status", "transient"),
    [
        ("SlowDown", 503, True),
        ("InternalError", 500, True),
        ("RequestTimeout", 400, True),
        ("NoSuchKey", 404, False),
        ("AccessDenied", 403, False),
        ("InvalidRange", 416, False),
    ],
)
def test_transient_s3_codes(code, status, transient):
    err = _boto(code, status)
    assert remote.is_transient(err) is transient
    try:  # s3fs translates ClientError into an OSError raised from it
        raise OSError("translated") from err
    except OSError as wrapped:
        assert remote.is_transient(wrapped) is transient


def test_retries_count_and_backoff_are_bounded(monkeypatch):
    calls, sleeps = [], []
    monkeypatch.setattr(remote.time, "sleep", sleeps.append)

    def flaky():
        calls.append(1)
        raise ConnectionResetError(104, "reset")

    pol = remote.RemotePolicy(retries=3, backoff=0.5, backoff_max=1.5)
    with pytest.raises(remote.RemoteReadError, match=r"https://h/x: read failed after 4 attempts"):
        remote.call_with_retries(flaky, url="https://h/x", what="read", policy=pol)
    assert len(calls) == 4 and len(sleeps) == 3
    # waits 0.5, 1.0, 1.5 (capped) times a jitter in [0.5, 1]
    for s, full in zip(sleeps, (0.5, 1.0, 1.5), strict=True):
        assert 0.5 * full <= s <= full


def test_permanent_error_is_not_retried(monkeypatch):
    calls = []
    monkeypatch.setattr(remote.time, "sleep", lambda s: None)

    def missing():
        calls.append(1)
        raise FileNotFoundError("nope")

    with pytest.raises(FileNotFoundError):
        remote.call_with_retries(
            missing, url="s3://b/k", what="read", policy=remote.RemotePolicy(retries=5)
        )
    assert len(calls) == 1


# -- secrets, options, policy -----------------------------------------------------------------
def test_scrub_removes_userinfo_tokens_and_option_secrets():
    so = {
        "key": "AKIAXYZ123",
        "secret": "SECRET-do-not-store-123",
        "endpoint_url": "http://127.0.0.1:9000",
        "s3": {"token": "tok-abcdef"},
    }
    text = (
        "https://alice:pw123@example.org/a.nc?X-Amz-Signature=deadbeef&x=1 failed with key "
        "AKIAXYZ123 "
        "secret SECRET-do-not-store-123 token tok-abcdef at http://127.0.0.1:9000"
    )
    out = remote.scrub(text, so)
    for s in ("pw123", "alice", "deadbeef", "AKIAXYZ123", "SECRET-do-not-store-123", "tok-abcdef"):
        assert s not in out
    assert "https://***@example.org/a.nc?X-Amz-Signature=***&x=1" in out
    assert "http://127.0.0.1:9000" in out  # an endpoint is not a secret


def test_timeouts_are_injected_and_user_settings_win():
    import aiohttp

    pol = remote.RemotePolicy(timeout=7.0, connect_timeout=3.0, retries=2)
    http = remote.with_timeouts("https://h/x", {}, pol)
    t = http["client_kwargs"]["timeout"]
    assert (
        isinstance(t, aiohttp.ClientTimeout)
        and t.sock_read == 7.0
        and t.sock_connect == 3.0
        and t.total is None
    )
    s3 = remote.with_timeouts("s3://b/k", {"config_kwargs": {"read_timeout": 99}}, pol)[
        "config_kwargs"
    ]
    assert s3 == {
        "read_timeout": 99,
        "connect_timeout": 3.0,
        "retries": {"max_attempts": 3, "mode": "standard"},
        "max_pool_connections": 2 * pol.concurrency,  # room for the concurrent range requests
    }


def test_per_protocol_sections():
    so = {
        "anon": True,
        "s3": {"endpoint_url": "http://e"},
        "https": {"headers": {"a": "b"}},
        "simplecache": {"cache_storage": "/c"},
    }
    assert remote.options_for("s3://b/k", so) == {"anon": True, "endpoint_url": "http://e"}
    assert remote.options_for("simplecache::https://h/x", so) == {
        "anon": True,
        "headers": {"a": "b"},
    }


def test_policy_from_packaged_defaults_and_overrides():
    pol = remote.RemotePolicy.from_config()
    assert (pol.retries, pol.backoff, pol.timeout, pol.block_size) == (5, 0.5, 60.0, 2097152)
    with config.set_options(**{"remote.retries": 1, "remote.timeout": 2.5}):
        pol = remote.RemotePolicy.from_config()
    assert (pol.retries, pol.timeout) == (1, 2.5)


def test_policy_keys_with_a_hyphen_come_from_environment_variables_too():
    """``DASK_GRIDFLUX__REMOTE__READ_AHEAD`` arrives in dask's config as ``read_ahead``: the
    policy must see it as ``read-ahead`` (it read the hyphenated key of a dict and kept its
    default)."""
    import subprocess
    import sys

    env = {
        **os.environ,
        "DASK_GRIDFLUX__REMOTE__READ_AHEAD": "0",
        "DASK_GRIDFLUX__REMOTE__METADATA_BLOCK_SIZE": "4096",
        "DASK_GRIDFLUX__REMOTE__BACKOFF_MAX": "7.5",
    }
    code = (
        "from gridflux.ingest import remote; p = remote.RemotePolicy.from_config(); "
        "print(p.read_ahead, p.metadata_block_size, p.backoff_max)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["0", "4096", "7.5"]
    with config.set_options(**{"remote.read_ahead": 3}):
        assert remote.RemotePolicy.from_config().read_ahead == 3


def test_unsupported_chain_is_refused():
    with pytest.raises(InputError, match="zip"):
        remote.split_chain("zip::https://h/a.zip")


# -- against a server -------------------------------------------------------------------------
def test_remote_file_reads_exact_bytes_through_faults(tiny_archive):
    local = open(os.path.join(tiny_archive.root, NC), "rb").read()
    with FaultServer(tiny_archive.root) as srv:
        srv.plan.fail_first[NC] = 2
        srv.plan.drop_once.add(NC)
        f = remote.RemoteFile(f"{srv.url}/{NC}", None, _policy())
        assert f.size == len(local)
        f.seek(100_000)
        assert f.read(70_000) == local[100_000:170_000]  # >= block size: one exact request
        f.seek(-1000, os.SEEK_END)
        assert f.read() == local[-1000:]
        f.seek(5)
        assert f.read(10) == local[5:15]
        g = pickle.loads(pickle.dumps(f))
        assert g.tell() == 15 and g.read(5) == local[15:20]
        assert [e[0] for e in srv.plan.events] == ["503", "503", "drop"]


def test_cut_file_is_a_clear_error(tiny_archive, tmp_path):
    """A file cut short (the server is honest about its short size): HDF5 sees the truncation."""
    from gridflux.ingest.catalog import open_one

    data = open(os.path.join(tiny_archive.root, NC), "rb").read()
    (tmp_path / "cut.nc").write_bytes(data[: len(data) // 2])
    with FaultServer(str(tmp_path)) as srv, pytest.raises(InputError) as err:
        open_one(f"{srv.url}/cut.nc", "netcdf", None)
    assert f"{srv.url}/cut.nc" in str(err.value) and "truncated" in str(err.value)


def test_lazy_remote_dataset_survives_pickling(tiny_archive):
    """What dask workers get: a chunked dataset on a RemoteFile, pickled and computed elsewhere."""
    remote._BLOCKS.clear()
    with xr.open_dataset(os.path.join(tiny_archive.root, NC), decode_times=False) as ds0:
        want = ds0["land_flux"].values
    with FaultServer(tiny_archive.root) as srv:
        ds = remote.open_netcdf(
            f"{srv.url}/{NC}", None, _policy(), decode_times=False, chunks={"time": 6}
        )
        blob = pickle.dumps(ds["land_flux"].data)
        remote._BLOCKS.clear()
        before = srv.plan.gets[NC]
        arr = pickle.loads(blob)
        np.testing.assert_array_equal(arr.compute(scheduler="sync"), want)
        assert srv.plan.gets[NC] > before  # really read again over HTTP


def test_simplecache_second_open_is_local(tiny_archive, tmp_path):
    cache = tmp_path / "cache"
    so = {"simplecache": {"cache_storage": str(cache)}}
    with xr.open_dataset(os.path.join(tiny_archive.root, NC), decode_times=False) as ds0:
        want = ds0["land_flux"].values
    with FaultServer(tiny_archive.root) as srv:
        url = f"simplecache::{srv.url}/{NC}"
        srv.plan.drop_once.add(NC)  # the download itself is retried
        with remote.open_netcdf(url, so, _policy(), decode_times=False) as ds:
            np.testing.assert_array_equal(ds["land_flux"].values, want)
        n1 = sum(srv.plan.requests.values())
        assert n1 >= 2 and srv.plan.gets[NC] >= 2
        with remote.open_netcdf(url, so, _policy(), decode_times=False) as ds:
            np.testing.assert_array_equal(ds["land_flux"].values, want)
        assert sum(srv.plan.requests.values()) == n1  # no request at all: read from the cache
        cached = remote.cache_path(url, so)
        assert cached.startswith(str(cache)) and os.path.getsize(cached) == os.path.getsize(
            os.path.join(tiny_archive.root, NC)
        )


def test_truncated_download_leaves_no_cache_entry(tiny_archive, tmp_path):
    so = {"simplecache": {"cache_storage": str(tmp_path / "cache")}}
    with FaultServer(tiny_archive.root) as srv:
        url = f"simplecache::{srv.url}/{NC}"
        srv.plan.truncate[NC] = 70_000
        with pytest.raises(remote.RemoteReadError, match="truncated"):
            remote.open_netcdf(url, so, _policy(), decode_times=False)
        assert not os.path.exists(remote.cache_path(url, so))
        assert [p for p in (tmp_path / "cache").rglob("*") if p.is_file()] == []


def test_zarr_over_http_retries_its_reads(tiny_archive, tmp_path):
    with xr.open_dataset(os.path.join(tiny_archive.root, NC), decode_times=False) as ds0:
        ds0 = ds0.load()
    # over plain HTTP nothing can be listed: a zarr store needs consolidated metadata there
    ds0.to_zarr(tmp_path / "x.zarr", zarr_format=3, consolidated=True)
    chunk_files = sorted(
        str(p.relative_to(tmp_path))
        for p in (tmp_path / "x.zarr" / "land_flux").rglob("*")
        if p.is_file() and p.name != "zarr.json"
    )
    assert chunk_files
    with FaultServer(str(tmp_path)) as srv:
        srv.plan.fail_first[chunk_files[0]] = 2
        srv.plan.fail_first["x.zarr/zarr.json"] = 1
        ds = remote.open_zarr(
            f"{srv.url}/x.zarr", None, _policy(), consolidated=None, decode_times=False
        )
        np.testing.assert_array_equal(ds["land_flux"].values, ds0["land_flux"].values)
        assert ("503", "GET", chunk_files[0]) in srv.plan.events
        assert ("503", "GET", "x.zarr/zarr.json") in srv.plan.events


# -- credentials in URLs and storage options (issue 20 point 4) -------------------------------
SIGNED = (
    "https://bucket.s3.amazonaws.com/a/b.nc?versionId=7&X-Amz-Algorithm=AWS4-HMAC-SHA256"
    "&X-Amz-Credential=AKIAQQ%2F20261205%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20261205T0"
    "&X-Amz-Expires=900&X-Amz-SignedHeaders=host&X-Amz-Security-Token=STS-TOK"
    "&X-Amz-Signature=f00dfeed"
)


@pytest.mark.parametrize(
    "url, secrets, identity",
    [
        (
            SIGNED,
            ["AKIAQQ", "STS-TOK", "f00dfeed"],
            "https://bucket.s3.amazonaws.com/a/b.nc?versionId=7",
        ),
        (
            "https://storage.googleapis.com/b/o.nc?X-Goog-Algorithm=GOOG4-RSA-SHA256"
            "&X-Goog-Credential=sa%40p.iam&X-Goog-Date=20261205T0&X-Goog-Expires=60"
            "&X-Goog-SignedHeaders=host&X-Goog-Signature=0badc0de",
            ["sa%40p.iam", "0badc0de"],
            "https://storage.googleapis.com/b/o.nc",
        ),
        (
            "https://acct.blob.core.windows.net/c/o.nc?sv=2022-11-02&se=2026-12-06&sr=b&sp=r"
            "&sig=AzUrE%2Bsig%3D",
            ["AzUrE%2Bsig%3D"],
            "https://acct.blob.core.windows.net/c/o.nc",
        ),
        (
            "http://alice:p%40ss@wor:d@host.org:8080/dir/f.nc?token=T0K&key=K3Y&access_token=A7",
            ["alice", "p%40ss", "wor:d", "T0K", "K3Y", "A7"],
            "http://host.org:8080/dir/f.nc",
        ),
        ("simplecache::s3://b/k.nc", [], "simplecache::s3://b/k.nc"),
        ("/local/path/x.nc", [], "/local/path/x.nc"),
    ],
)
def test_scrub_and_identity_of_credentialed_urls(url, secrets, identity):
    masked = remote.scrub(url)
    ident = remote.url_identity(url)
    for s in secrets:
        assert s not in masked and s not in ident
    assert ident == identity
    # the identity is what the manifest records: scrub_tree maps a URL string to it
    assert remote.scrub_tree({"p": [url]}) == {"p": [identity]}
    # signing again (other signature, date, token) keeps the identity
    resigned = url.replace("f00dfeed", "cafe0001").replace("20261205T0", "20261206T0")
    assert remote.url_identity(resigned) == identity
    # inside a sentence a URL is masked, the rest of the text kept
    text = remote.scrub_tree(f"failed to read {url} (404)")
    assert text.startswith("failed to read ") and text.endswith(" (404)")
    assert not [s for s in secrets if s in text]


def test_scrub_tree_keeps_numbers_and_masks_option_values():
    tree = {"size": 10, "ok": True, "none": None, "err": "key AKIA-OPT-123 refused", "x": 1.5}
    out = remote.scrub_tree(tree, {"s3": {"key": "AKIA-OPT-123"}})
    assert out == {"size": 10, "ok": True, "none": None, "err": "key *** refused", "x": 1.5}


def test_storage_options_from_file_env_or_inline(tmp_path, monkeypatch):
    f = tmp_path / "so.json"
    f.write_text('{"key": "AKIA-FILE", "secret": "S3CR3T", "endpoint_url": "http://127.0.0.1:9"}')
    assert remote.load_storage_options(f"@{f}")["secret"] == "S3CR3T"
    monkeypatch.setenv("GF_TEST_SO", '{"anon": true}')
    assert remote.load_storage_options(None, "GF_TEST_SO") == {"anon": True}
    monkeypatch.setenv("GF_TEST_SO", f"@{f}")
    assert remote.load_storage_options("", "GF_TEST_SO")["key"] == "AKIA-FILE"
    assert remote.load_storage_options('{"anon": true}', "GF_TEST_SO") == {"anon": True}
    monkeypatch.delenv("GF_TEST_SO")
    assert remote.load_storage_options(None, "GF_TEST_SO") is None
    # secrets inline on the command line are refused, and the message does not repeat them
    with pytest.raises(ValueError, match="visible to every user") as e:
        remote.load_storage_options('{"s3": {"secret": "S3CR3T-INLINE"}}', "GF_TEST_SO")
    assert "S3CR3T-INLINE" not in str(e.value) and "@FILE" in str(e.value)
    with pytest.raises(ValueError, match="not valid JSON"):
        remote.load_storage_options("{anon: true}")
    with pytest.raises(ValueError, match="JSON object"):
        remote.load_storage_options("[1]")
    with pytest.raises(ValueError, match="cannot read"):
        remote.load_storage_options(f"@{tmp_path / 'missing.json'}")


def test_cli_reads_storage_options_from_a_file_and_refuses_inline_secrets(tmp_path, monkeypatch):
    """``gridflux run --storage-options @FILE`` passes the file's options to the run; inline
    secrets stop the command before anything runs, without echoing the secret."""
    from typer.testing import CliRunner

    import gridflux.pipeline.runner as runner_mod
    from gridflux.cli import app

    seen = {}

    def fake_run(*args, **kwargs):
        seen.update(kwargs)
        return runner_mod.RunSummary(store="s")

    monkeypatch.setattr(runner_mod, "run", fake_run)
    # the command reads its mask and catalog before the run: a real mask, a stand-in catalog
    import numpy as np

    import gridflux.ingest.catalog as catalog_mod
    from gridflux.fields.masks import RegionMask
    from gridflux.kernels.grids import global_grid

    grid = global_grid(30.0)
    RegionMask(("all",), np.ones((1,) + grid.shape), grid).to_netcdf(tmp_path / "m.nc")
    monkeypatch.setattr(catalog_mod, "load_catalog", lambda *a, **k: object())
    f = tmp_path / "so.json"
    f.write_text('{"key": "AKIA-FILE", "secret": "S3CR3T"}')
    base = [
        "run",
        "cat.json",
        "--mask",
        str(tmp_path / "m.nc"),
        "--store",
        str(tmp_path / "s"),
        "--cluster",
        "none",
    ]
    res = CliRunner().invoke(app, [*base, "--storage-options", f"@{f}", "--no-progress"])
    assert res.exit_code == 0, res.output
    assert seen["storage_options"] == {"key": "AKIA-FILE", "secret": "S3CR3T"}
    monkeypatch.setenv("GRIDFLUX_STORE_OPTIONS", f"@{f}")
    res = CliRunner().invoke(app, [*base, "--no-progress"])
    assert res.exit_code == 0 and seen["store_options"]["key"] == "AKIA-FILE"
    res = CliRunner().invoke(app, [*base, "--storage-options", '{"secret": "S3CR3T-INLINE"}'])
    assert res.exit_code == 2 and "S3CR3T-INLINE" not in res.output


def test_fsspec_environment_configuration_reaches_remote_filesystems(monkeypatch):
    """fsspec's own configuration (``FSSPEC_<PROTOCOL>_<KWARG>`` variables, read when fsspec is
    imported, or files in ``~/.config/fsspec``) reaches the filesystems gridflux builds."""
    import fsspec.config

    conf = {}
    fsspec.config.set_conf_env(conf, {"FSSPEC_S3_KEY": "AKIA-ENV", "FSSPEC_S3_SECRET": "S-ENV"})
    monkeypatch.setattr(fsspec.config, "conf", conf)
    fs, _ = remote.filesystem("s3://bucket/key.nc", {"endpoint_url": "http://127.0.0.1:9"})
    assert fs.key == "AKIA-ENV" and fs.secret == "S-ENV"


def test_loaded_secrets_are_scrubbed_where_the_options_are_not_at_hand(tmp_path, capsys):
    """A secret loaded from a storage-options file is hidden in every scrubbed text, also without
    the options: an exception message that repeats it, through ``--debug``'s traceback."""
    from gridflux.cli import exits

    f = tmp_path / "so.json"
    f.write_text('{"s3": {"key": "AKIA-LOADED-7", "secret": "S3CR3T-LOADED-7"}}')
    remote.load_storage_options(f"@{f}")
    assert remote.scrub("signature of S3CR3T-LOADED-7 for AKIA-LOADED-7") == (
        "signature of *** for ***"
    )
    try:
        try:
            raise OSError("endpoint refused key AKIA-LOADED-7 / S3CR3T-LOADED-7")
        except OSError as inner:
            raise RuntimeError("write failed") from inner
    except RuntimeError as exc:
        saved, exits.DEBUG = exits.DEBUG, True
        try:
            exits.fail(exc)
        finally:
            exits.DEBUG = saved
    err = capsys.readouterr().err
    assert "endpoint refused key ***" in err and "Traceback" in err
    assert "AKIA-LOADED-7" not in err and "S3CR3T-LOADED-7" not in err
