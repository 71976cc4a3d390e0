"""A store on S3 grows like a local one (issue 16, points 4 and 5), against moto's S3 server on
127.0.0.1: members, variables, regions and months at the end in place (no stored object
rewritten); months at the start by the new layout written beside the store and copied into place
under a journal (:meth:`gridflux.pipeline.store.Store.rebuild`), so that a driver killed with
SIGKILL anywhere in it leaves a store that the next run finishes. Each grown store is compared,
array by array and by label, with the store built once locally from the final catalog."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys

import pytest

from gridflux.pipeline.runner import run

from .growth_archive import TARGET, assert_same_store, write_mask, write_release

try:  # moto's server needs flask (both in the dev extra)
    import boto3
    import moto.server  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the environment
    pytest.skip(
        f"moto[server]/flask/boto3 are not installed ({exc}); pip install -e '.[dev]'",
        allow_module_level=True,
    )

KEY, SECRET = "AKIAGRIDFLUXGROWTH01", "growth-secret"


@pytest.fixture
def s3(s3_endpoint, monkeypatch, request):
    """A fresh bucket and the store options to reach it (no machine credentials leak in)."""
    for k in list(os.environ):
        if k.startswith("AWS_"):
            monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    bucket = "grow-" + hashlib.sha1(request.node.name.encode()).hexdigest()[:12]
    client = boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        aws_access_key_id=KEY,
        aws_secret_access_key=SECRET,
        region_name="us-east-1",
    )
    client.create_bucket(Bucket=bucket)
    so = {
        "key": KEY,
        "secret": SECRET,
        "endpoint_url": s3_endpoint,
        "client_kwargs": {"region_name": "us-east-1"},
    }
    return client, bucket, so


def _objects(client, bucket: str, prefix: str) -> dict[str, bytes]:
    out = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            out[obj["Key"]] = client.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
    return out


def _download(client, bucket: str, prefix: str, dest) -> None:
    for key, data in _objects(client, bucket, prefix + "/").items():
        path = dest / key[len(prefix) + 1 :]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def _run(cat, mask, store, so, **kw):
    return run(cat, mask, store, target=TARGET, progress=False, store_options=so, **kw)


def _series_objects(objs: dict[str, bytes], member_index: int) -> dict[str, bytes]:
    """Chunk objects of one member (totals and cubes), by key."""
    out = {}
    for key, data in objs.items():
        parts = key.split("/")
        if "c" in parts and int(parts[parts.index("c") + 1]) == member_index:
            out[key] = data
    return out


def test_a_store_on_s3_grows_in_place_and_at_the_start(tmp_path, s3):
    client, bucket, so = s3
    store = f"s3://{bucket}/g.zarr"
    north = write_mask(tmp_path, ("north",))
    both = write_mask(tmp_path, ("north", "box"))
    state = {("A", "npp"): (2000, 2, "v1"), ("B", "npp"): (2000, 2, "v1")}
    assert _run(write_release(tmp_path, "r0", state), north, store, so).ok
    b_before = _series_objects(_objects(client, bucket, "g.zarr/"), 1)
    assert len(b_before) >= 4

    # in place: a member, a variable, a year at the end (A's new version); B is left alone
    state.update({("C", "npp"): (2000, 1, "v1"), ("A", "npp"): (2000, 3, "v2")})
    state[("B", "rh")] = (2000, 2, "v1")
    s = _run(write_release(tmp_path, "r1", state), north, store, so)
    assert s.ok and s.skipped == ["TEST.B.hist.r1/npp"], s.done
    assert s.grew["months_after"] == 12
    after = _objects(client, bucket, "g.zarr/")
    assert {k: after.get(k) for k in b_before} == b_before  # the same objects, the same bytes
    assert not any(".gridflux-next" in k for k in _objects(client, bucket, ""))

    # at the start (C's new version begins two years earlier) and a region: layout copied back
    state[("C", "npp")] = (1998, 3, "v2")
    cat = write_release(tmp_path, "r2", state)
    s = _run(cat, both, store, so)
    assert s.ok and s.grew == {
        "regions": ["box"],
        "months_before": 24,
        "axis": "1998-01..2002-12",
    }
    keys = set(_objects(client, bucket, ""))
    assert not any(".gridflux-next" in k or "gridflux-growth" in k for k in keys)
    grown = tmp_path / "grown.zarr"
    _download(client, bucket, "g.zarr", grown)
    once = tmp_path / "once.zarr"
    assert run(cat, both, str(once), target=TARGET, progress=False).ok
    assert_same_store(grown, once)


# the driver kills itself (SIGKILL) at the n-th server-side copy of the given kind: "relink" (the
# stored chunks copied to the new layout beside the store) or "copy-back" (the new layout copied
# into the store, after the journal)
_KILLER = """
import os, signal, s3fs
from gridflux.pipeline.runner import run
cp = s3fs.S3FileSystem._cp_file
n = [0]
async def cp_file(self, path1, path2, **kw):
    back = ".gridflux-next" not in path2
    if back == ({phase!r} == "copy-back"):
        n[0] += 1
        if n[0] == {at}:
            os.kill(os.getpid(), signal.SIGKILL)
    return await cp(self, path1, path2, **kw)
s3fs.S3FileSystem._cp_file = cp_file
run({cat!r}, {mask!r}, {store!r}, target={target!r}, progress=False, store_options={so!r})
"""


@pytest.mark.parametrize("phase,at", [("relink", 2), ("copy-back", 1), ("copy-back", 9)])
def test_a_growth_killed_on_s3_is_finished_by_the_next_run(tmp_path, s3, phase, at):
    client, bucket, so = s3
    store = f"s3://{bucket}/k.zarr"
    mask = write_mask(tmp_path, ("north",))
    state = {("A", "npp"): (2000, 2, "v1"), ("B", "npp"): (2000, 1, "v1")}
    assert _run(write_release(tmp_path, "r0", state), mask, store, so).ok
    state[("B", "npp")] = (1999, 2, "v2")  # the axis starts a year earlier: a layout growth
    cat = write_release(tmp_path, "r1", state)
    code = _KILLER.format(phase=phase, at=at, cat=cat, mask=mask, store=store, target=TARGET, so=so)
    proc = subprocess.run([sys.executable, "-c", code], timeout=300)
    assert proc.returncode == -signal.SIGKILL
    keys = set(_objects(client, bucket, "k.zarr"))
    journal = "k.zarr/gridflux-growth.json" in keys
    assert journal == (phase == "copy-back")  # killed after the journal, or before it
    assert any(k.startswith("k.zarr.gridflux-next/") for k in keys)
    # the next run (the killed driver's lock is stale: its process is gone) finishes the growth
    s = _run(cat, mask, store, so)
    assert s.ok, s.failed
    keys = set(_objects(client, bucket, ""))
    assert not any(".gridflux-next" in k or "gridflux-growth" in k for k in keys)
    grown = tmp_path / "grown.zarr"
    _download(client, bucket, "k.zarr", grown)
    once = tmp_path / "once.zarr"
    assert run(cat, mask, str(once), target=TARGET, progress=False).ok
    assert_same_store(grown, once)
