"""Inputs and the store on S3, for real, against moto's S3 server on 127.0.0.1 (issue 6 point 5).

The test uploads a few series of the tiny synthetic archive -- multi-file CMIP6 series with their
land fraction, an inversion file, and one series converted to a zarr store -- plus their catalog
to a bucket, runs the pipeline on a LocalCluster of 2 worker processes with the store on S3 as
well, and checks the totals against the planted truths. It then proves that the distinctive fake
credentials appear in no object of the store and in no log line or output of the run.
"""

from __future__ import annotations

import logging
import os

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from .conftest import selected, stage, truth_subset

try:  # moto's server needs flask (both in the dev extra)
    import boto3
    import moto.server  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the environment
    pytest.skip(
        f"moto[server]/flask/boto3 are not installed ({exc}); pip install -e '.[dev]'",
        allow_module_level=True,
    )

KEY = "AKIAGRIDFLUXTESTKEY77"
SECRET = "SECRET-do-not-store-123"
QUERY = {"ensemble": ["LS3MIP", "GCB"], "source_id": ["CESM2", "CAMS"]}
ZARR_SOURCE = ("GCB", "MIROC4-ACTM")  # this series goes to S3 as a zarr store


@pytest.fixture
def s3_env(monkeypatch):
    """No credentials of the machine leak in; no instance-metadata lookups."""
    for k in list(os.environ):
        if k.startswith("AWS_"):
            monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)


def _client(endpoint):
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=KEY,
        aws_secret_access_key=SECRET,
        region_name="us-east-1",
    )


def _upload(client, bucket, root, prefix):
    for dirpath, _, files in os.walk(root):
        for fn in files:
            full = os.path.join(dirpath, fn)
            client.upload_file(full, bucket, f"{prefix}/{os.path.relpath(full, root)}")


def _objects(client, bucket, prefix=""):
    out = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            out[obj["Key"]] = client.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
    return out


def _stage_s3_archive(archive, dest):
    """A catalog of the QUERY series (netCDF) plus the ZARR_SOURCE series as a zarr store."""
    from gridflux.ingest.catalog import write_catalog

    cat, records, rels = selected(archive, QUERY)
    zrec = cat.series({"ensemble": ZARR_SOURCE[0], "source_id": ZARR_SOURCE[1]})
    assert len(zrec) == 1 and len(zrec[0].paths) == 1
    stage(archive, rels, dest)
    wanted = {os.path.join(archive.root, r) for r in rels}
    rows = [
        r.model_copy(update={"path": str(dest / os.path.relpath(r.path, archive.root))})
        for r in cat.rows
        if r.path in wanted
    ]
    src_nc = zrec[0].paths[0]
    zpath = dest / "zarr" / "MIROC4-ACTM_fco2.zarr"
    with xr.open_dataset(src_nc, decode_times=False) as ds:
        ds.load().to_zarr(zpath, zarr_format=3, consolidated=True)
    zrow = next(r for r in cat.rows if r.path == src_nc)
    rows.append(zrow.model_copy(update={"path": str(zpath), "format": "zarr"}))
    write_catalog(rows, dest / "catalog.json", description="S3 test subset")
    keys = [f"{r.member}/{r.variable}" for r in records] + [f"{zrec[0].member}/{zrec[0].variable}"]
    return sorted(keys)


@pytest.mark.slow
def test_pipeline_inputs_and_store_on_s3(
    tiny_archive, s3_endpoint, s3_env, tmp_path, caplog, capfd
):
    from distributed import Client, LocalCluster

    from gridflux.cli.demo import check_against_truth
    from gridflux.pipeline.runner import run

    bucket = "gridflux-test-run"
    client = _client(s3_endpoint)
    client.create_bucket(Bucket=bucket)
    keys = _stage_s3_archive(tiny_archive, tmp_path / "archive")
    _upload(client, bucket, tmp_path / "archive", "archive")
    so = {
        "key": KEY,
        "secret": SECRET,
        "endpoint_url": s3_endpoint,
        "client_kwargs": {"region_name": "us-east-1"},
    }
    store = f"s3://{bucket}/store.zarr"

    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger="gridflux")
    with (
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            host="127.0.0.1",
        ) as cluster,
        Client(cluster) as dask_client,
    ):
        summary = run(
            f"s3://{bucket}/archive/catalog.json",
            tiny_archive.mask,
            store,
            storage_options=so,
            store_options=so,
            client=dask_client,
        )
    assert not summary.failed, summary.failed
    assert sorted(summary.done) == keys and len(keys) == 4

    # totals == planted truths, read through gridflux's export
    truth_csv = truth_subset(tiny_archive, keys, tmp_path / "truth.csv")
    check = check_against_truth(store, truth_csv, rtol=1e-10, storage_options=so)
    assert check.ok and check.n_series == 4, f"{check} {check.missing} {check.mismatched}"

    # ... and through plain xarray, compared with the truth table directly
    ds = xr.open_zarr(store, storage_options=so)
    truth = pd.read_csv(truth_csv, dtype={"time": str})
    members = [str(m) for m in ds["member"].values]
    variables = [str(v) for v in ds["variable"].values]
    regions = [str(r) for r in ds["region"].values]
    times = pd.to_datetime(ds["time"].values).strftime("%Y-%m").tolist()
    tot = ds["totals"].values
    for row in truth.itertuples():
        got = tot[
            members.index(row.member),
            variables.index(row.variable),
            regions.index(row.region),
            times.index(row.time),
        ]
        assert got == pytest.approx(row.value, rel=1e-10, abs=1e-10 * abs(truth["value"]).max())
    # the zarr input's cube reached S3 from the workers: its months are filled, elsewhere NaN
    cube = xr.open_zarr(store, group="cubes/fco2", storage_options=so)["fco2"]
    i = members.index("GCB.MIROC4-ACTM.GCB2021.r1")
    assert np.isfinite(cube.isel(member=i).values).any()

    # credentials never appear: not in any object of the bucket but the inputs, not in logs or
    # output
    out, err = capfd.readouterr()
    texts = {
        "captured stdout": out.encode(),
        "captured stderr": err.encode(),
        "log records": "\n".join(r.getMessage() for r in caplog.records).encode(),
    }
    stored = _objects(client, bucket, "store.zarr")
    assert "store.zarr/manifest.json" in stored and len(stored) > 10
    manifest = stored["store.zarr/manifest.json"].decode()
    assert f"s3://{bucket}/archive/" in manifest  # the input paths are there ...
    for name, blob in {**stored, **texts}.items():
        for secret in (KEY, SECRET):
            assert secret.encode() not in blob, (
                f"{secret!r} found in {name}"
            )  # ... the credentials are not


def test_catalog_from_s3_with_the_users_credential_chain(
    tiny_archive, s3_endpoint, s3_env, monkeypatch, tmp_path
):
    """No key in the catalog or the options: credentials come from the environment (AWS_* here)."""
    from gridflux.ingest.catalog import fingerprint, load_catalog, open_series

    bucket = "gridflux-test-env"
    client = _client(s3_endpoint)
    client.create_bucket(Bucket=bucket)
    _, records, rels = selected(tiny_archive, {"ensemble": "GCB", "source_id": "CAMS"})
    stage(tiny_archive, rels + ["catalog.json", "catalog.csv"], tmp_path / "a")
    _upload(client, bucket, tmp_path / "a", "a")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    so = {"endpoint_url": s3_endpoint, "client_kwargs": {"region_name": "us-east-1"}}
    cat = load_catalog(f"s3://{bucket}/a/catalog.json", storage_options=so)
    rec = cat.series({"ensemble": "GCB", "source_id": "CAMS"})[0]
    assert rec.paths == [f"s3://{bucket}/a/{rels[0]}"]
    fp = fingerprint(rec, so)
    assert fp["paths"][0]["size"] == os.path.getsize(records[0].paths[0]) and fp["paths"][0].get(
        "etag"
    )
    ds = open_series(rec, storage_options=so)
    with xr.open_dataset(records[0].paths[0], decode_times=False) as local:
        raw = ds.attrs["gridflux_raw_variable"]
        np.testing.assert_array_equal(ds[raw].values, local[raw].values)


def test_store_in_a_missing_bucket_is_a_clear_error_and_no_bucket_is_created(
    tiny_archive, s3_endpoint, s3_env, tmp_path
):
    """issue 20 point 7: one StoreError naming the bucket; gridflux never creates buckets."""
    from gridflux.errors import StoreError
    from gridflux.pipeline.runner import run
    from gridflux.pipeline.store import Store

    client = _client(s3_endpoint)
    so = {
        "key": KEY,
        "secret": SECRET,
        "endpoint_url": s3_endpoint,
        "client_kwargs": {"region_name": "us-east-1"},
    }
    before = {b["Name"] for b in client.list_buckets()["Buckets"]}
    assert "gridflux-no-such-bucket" not in before
    with pytest.raises(StoreError) as info:
        run(
            tiny_archive.catalog,
            tiny_archive.mask,
            "s3://gridflux-no-such-bucket/run/store.zarr",
            query={"ensemble": "GCB", "source_id": "CAMS"},
            cubes=False,
            store_options=so,
        )
    msg = str(info.value)
    assert "bucket 'gridflux-no-such-bucket' does not exist" in msg
    assert "never creates buckets" in msg and SECRET not in msg and KEY not in msg
    assert {b["Name"] for b in client.list_buckets()["Buckets"]} == before
    # an existing bucket passes the check (and the lock still works there)
    client.create_bucket(Bucket="gridflux-bucket-exists")
    st = Store("s3://gridflux-bucket-exists/a/store.zarr", so)
    st.check_bucket()
    st.acquire_lock()
    st.release_lock()


@pytest.mark.parametrize("on_cluster", [False, True], ids=["in-process", "local-cluster"])
def test_inputs_on_s3_store_local_each_with_its_own_options(
    tiny_archive, s3_endpoint, s3_env, tmp_path, on_cluster
):
    """The inputs' storage options open the inputs and the store's write the store: S3 inputs
    (credentials only in ``storage_options``) into a local store (no options) give the planted
    truths, in process and on workers (the workers once got the store's options for both)."""
    from contextlib import nullcontext

    from distributed import Client, LocalCluster

    from gridflux.cli.demo import check_against_truth
    from gridflux.pipeline.runner import run

    bucket = f"gridflux-split-{int(on_cluster)}"
    client = _client(s3_endpoint)
    client.create_bucket(Bucket=bucket)
    keys = _stage_s3_archive(tiny_archive, tmp_path / "archive")
    _upload(client, bucket, tmp_path / "archive", "archive")
    so = {
        "key": KEY,
        "secret": SECRET,
        "endpoint_url": s3_endpoint,
        "client_kwargs": {"region_name": "us-east-1"},
    }
    store = str(tmp_path / "store.zarr")
    cluster = (
        LocalCluster(
            n_workers=1,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            host="127.0.0.1",
        )  # fmt: skip
        if on_cluster
        else nullcontext()
    )
    with cluster as c, Client(c) if on_cluster else nullcontext() as dask_client:
        summary = run(
            f"s3://{bucket}/archive/catalog.json",
            tiny_archive.mask,
            store,
            storage_options=so,
            client=dask_client,  # None: in this process
        )
    assert not summary.failed, summary.failed
    assert sorted(summary.done) == keys
    truth_csv = truth_subset(tiny_archive, keys, tmp_path / "truth.csv")
    check = check_against_truth(store, truth_csv, rtol=1e-10)
    assert check.ok and check.n_series == len(keys), f"{check} {check.missing} {check.mismatched}"
