"""Remote netCDF-4 read by chunk: only the byte ranges a selection needs (issue 19 point 4).

Against moto's S3 server behind the shim of ``benchmarks/s3shim.py`` (no delay here), which
counts every object GET and its body bytes. The truths are independent of the reader under test:
values from netCDF4-python reading the local file, byte counts in closed form (rows x longitudes x
4 bytes) or from HDF5's own chunk index of the local file.
"""

from __future__ import annotations

import os
import pickle
import sys

import numpy as np
import pytest

from gridflux import config
from gridflux.errors import InputError
from gridflux.ingest import remote
from gridflux.ingest.chunkread import selection_runs

pytest.importorskip("moto.server", reason="moto[server] is not installed; pip install -e '.[dev]'")
pytest.importorskip("flask", reason="moto's server needs flask; pip install -e '.[dev]'")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

from benchmarks.objstore import write_case  # noqa: E402
from benchmarks.s3shim import LinkModel, SlowS3  # noqa: E402

BUCKET = "gridflux-objstore-test"
RES, MONTHS = 2.0, 14  # 90 x 180 cells; 14 months: a block that ends inside a file
ROWS = slice(68, 90)  # 45N-90N
LAYOUTS = ("uncompressed", "chunked", "row-chunked", "deflated")


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    """The shimmed S3 server (no delay) with one file per layout; ``(server, {layout: path})``."""
    d = tmp_path_factory.mktemp("objstore")
    with SlowS3(LinkModel(latency=0.0, conn_mbps=1e5, link_mbps=1e5)) as srv:
        client = srv.client()
        client.create_bucket(Bucket=BUCKET)
        paths = {}
        for layout in LAYOUTS:
            p = str(d / f"{layout}.nc")
            write_case(p, layout, RES, MONTHS)
            client.upload_file(p, BUCKET, f"{layout}.nc")
            paths[layout] = p
        yield srv, paths


@pytest.fixture
def clean(s3):
    """Empty block cache and counters; fast retries."""
    remote.clear_block_cache()
    s3[0].reset()
    with config.set_options(**{"remote.backoff": 0.01, "remote.backoff-max": 0.02}):
        yield


def _local(path: str, months: slice, rows: slice) -> np.ndarray:
    import netCDF4

    with netCDF4.Dataset(path) as nc:
        v = nc["rh"]
        v.set_auto_maskandscale(False)
        return np.asarray(v[months, rows, :])


def _url(layout: str) -> str:
    return f"s3://{BUCKET}/{layout}.nc"


def _fetched(srv, layout: str) -> tuple[int, int]:
    got = srv.stats()["keys"].get(f"{BUCKET}/{layout}.nc", {})
    return got.get("requests", 0), got.get("bytes", 0)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_rows_are_bit_identical_and_only_their_bytes_are_fetched(s3, clean, layout):
    import h5py

    srv, paths = s3
    nlon = int(360 / RES)
    meta = remote.RemotePolicy.from_config().metadata_block_size
    with remote.chunk_reader(_url(layout), "rh", srv.storage_options) as r:
        r.chunk_entry((0, 0, 0))  # the chunk index is walked once, at the first read
        _, meta_bytes = _fetched(srv, layout)  # the file's metadata: header, coordinates, index
        before = _fetched(srv, layout)
        key = (slice(0, 12), ROWS, slice(0, nlon))
        got = r.read(key)
        requests, nbytes = (a - b for a, b in zip(_fetched(srv, layout), before, strict=True))
        planned = r.byte_ranges(key)
    np.testing.assert_array_equal(got, _local(paths[layout], slice(0, 12), ROWS))
    assert got.dtype == np.float32
    rows = ROWS.stop - ROWS.start
    if layout in ("uncompressed", "chunked"):
        # exactly the selected rows: one range of rows x nlon float32 per month
        want = 12 * rows * nlon * 4
        assert sum(b - a for a, b in planned) == want
        assert len(planned) == 12
    else:
        # the stored chunks that hold the rows, as the local file's own chunk index lists them
        with h5py.File(paths[layout]) as f:
            d = f["rh"]
            cr = d.chunks[1]
            want = sum(
                d.id.get_chunk_info_by_coord((t, r0, 0)).size
                for t in range(12)
                for r0 in range(ROWS.start // cr * cr, ROWS.stop, cr)
            )
        assert sum(b - a for a, b in planned) == want
    # what went over the wire: the planned ranges (less what the metadata blocks already held),
    # in one request per range at most
    assert nbytes <= want and requests <= len(planned)
    assert meta_bytes <= 4 * meta  # metadata: a few small blocks, read once


def test_open_netcdf_reads_rows_by_chunk_once_per_file(s3, clean):
    """The xarray path of a remote file: reading blocks of rows fetches exactly those rows; the
    metadata is fetched once, also by a second opening."""
    srv, paths = s3
    with remote.open_netcdf(_url("uncompressed"), srv.storage_options, decode_times=False) as ds:
        _, meta_bytes = _fetched(srv, "uncompressed")
        got = np.concatenate(
            [ds["rh"][i : i + 12, ROWS].values for i in range(0, MONTHS, 12)]
        )  # decoded: fill -> NaN (none here), float32
    _, total = _fetched(srv, "uncompressed")
    want = _local(paths["uncompressed"], slice(None), ROWS)
    np.testing.assert_array_equal(got, want)
    exact = MONTHS * (ROWS.stop - ROWS.start) * 180 * 4
    meta = remote.RemotePolicy.from_config().metadata_block_size
    # the rows, less those that the first metadata block already held
    assert exact - meta <= total - meta_bytes <= exact
    with remote.open_netcdf(_url("uncompressed"), srv.storage_options, decode_times=False):
        pass
    assert _fetched(srv, "uncompressed")[1] == total  # metadata from the block cache


def test_series_from_s3_equals_local(s3, clean, tmp_path):
    """load_series over S3 (by chunk) against the same series read locally: bit-identical
    canonical fields."""
    from gridflux.ingest.catalog import load_series
    from gridflux.ingest.catalog.schema import SeriesRecord

    srv, paths = s3
    out = {}
    for where, path in (("local", paths["deflated"]), ("s3", _url("deflated"))):
        rec = SeriesRecord(
            key="bench.OBJ/rh",
            member="bench.OBJ",
            variable="rh",
            raw_variable="rh",
            paths=[path],
            traits={"gas": "CO2"},
        )
        ds = load_series(rec, storage_options=srv.storage_options if where == "s3" else None)
        out[where] = np.asarray(ds[ds.attrs["gridflux_variable"]][:, ROWS].values)
    np.testing.assert_array_equal(out["s3"], out["local"])


def test_pickled_array_reads_again_without_its_reader(s3, clean):
    from dask.base import tokenize

    from gridflux.ingest.chunkarray import RemoteChunkArray

    srv, paths = s3
    arr = RemoteChunkArray(remote.RemoteFile(_url("chunked"), srv.storage_options), "rh")
    token = tokenize(arr)
    clone = pickle.loads(pickle.dumps(arr))
    requests = srv.stats()["requests"]
    assert tokenize(clone) == token and srv.stats()["requests"] == requests  # no request
    np.testing.assert_array_equal(
        clone.reader.read((slice(2, 5), ROWS, slice(0, 180))),
        _local(paths["chunked"], slice(2, 5), ROWS),
    )


@pytest.mark.parametrize("kind", ["503", "short"])
def test_failures_mid_range_are_retried(s3, clean, kind):
    """A 503 or a cut response on some of the concurrent range requests: retried, same values."""
    srv, paths = s3
    key = (slice(0, 12), ROWS, slice(0, 180))
    with remote.chunk_reader(_url("chunked"), "rh", srv.storage_options) as r:
        clean_read = r.read(key)  # metadata and chunk index now cached; data ranges are not
        n0 = _fetched(srv, "chunked")[0]
        r.read(key)
        n1 = _fetched(srv, "chunked")[0]
        srv.fault(kind, 3, "chunked.nc")
        got = r.read(key)
        n2 = _fetched(srv, "chunked")[0]
    np.testing.assert_array_equal(got, _local(paths["chunked"], slice(0, 12), ROWS))
    np.testing.assert_array_equal(clean_read, got)
    assert n2 - n1 == (n1 - n0) + 3  # each failed request was answered once more


def test_a_response_that_stays_short_names_the_url(s3, clean):
    srv, _ = s3
    with config.set_options(**{"remote.retries": 2}):
        with remote.chunk_reader(_url("chunked"), "rh", srv.storage_options) as r:
            srv.fault("short", 1000, "chunked.nc")
            with pytest.raises(remote.RemoteReadError) as err:
                r.read((slice(0, 12), ROWS, slice(0, 180)))
    msg = str(err.value)
    assert _url("chunked") in msg and "truncated" in msg and "3 attempts" in msg
    assert srv.storage_options["secret"] not in msg


@pytest.mark.parametrize("layout", ["uncompressed", "deflated"])
def test_truncated_object_is_an_input_error_naming_the_url(s3, clean, tmp_path, layout):
    """An object cut short (an interrupted upload): a clear error, never garbage or a hang."""
    from gridflux.ingest.catalog import open_one

    srv, paths = s3
    data = open(paths[layout], "rb").read()
    key = f"cut-{layout}.nc"
    srv.client().put_object(Bucket=BUCKET, Key=key, Body=data[: int(len(data) * 0.6)])
    url = f"s3://{BUCKET}/{key}"
    with pytest.raises(InputError) as err:
        ds = open_one(url, "netcdf", srv.storage_options)
        ds["rh"].values  # noqa: B018 - reading is what must fail, if opening did not
    assert url in str(err.value) and "truncated" in str(err.value)


def test_runs_and_request_plan_closed_form():
    # rows 270:360 of every step of a (12, 360, 720) chunk: 12 runs of 90 x 720 elements
    runs = selection_runs((slice(0, 12), slice(270, 360), slice(0, 720)), (12, 360, 720))
    assert runs == [(t * 259200 + 194400, t * 259200 + 259200) for t in range(12)]
    # whole steps merge into one run
    assert selection_runs((slice(2, 5), slice(0, 360), slice(0, 720)), (12, 360, 720)) == [
        (2 * 259200, 5 * 259200)
    ]
    # a column subset: one run per row
    assert len(selection_runs((slice(0, 1), slice(0, 3), slice(5, 7)), (1, 3, 10))) == 3
    # touching ranges merge, long ones split into equal requests no longer than the limit
    plan = remote.plan_requests([(10, 20), (0, 10), (30, 40), (35, 45)], max_request=100)
    assert plan == [(0, 20), (30, 45)]
    plan = remote.plan_requests([(0, 250)], max_request=100)
    assert plan == [(0, 84), (84, 168), (168, 250)]


@pytest.mark.parametrize("deflate", [False, True])
def test_odd_chunks_and_edges_match_netcdf4(s3, clean, tmp_path, deflate):
    """Chunks that do not divide the shape (partial edge chunks), a never-written chunk (fill
    value), and selections that cut chunks anywhere: the same values as netCDF4 reads locally."""
    import netCDF4

    srv, _ = s3
    path = str(tmp_path / f"odd-{deflate}.nc")
    rng = np.random.default_rng(7)
    data = rng.standard_normal((14, 23, 31)).astype(np.float32)
    with netCDF4.Dataset(path, "w") as nc:
        for d, n in zip(("time", "lat", "lon"), data.shape, strict=True):
            nc.createDimension(d, n)
        v = nc.createVariable(
            "rh", "f4", ("time", "lat", "lon"), chunksizes=(5, 7, 11), zlib=deflate,
            shuffle=deflate, fill_value=np.float32(-9.0),
        )  # fmt: skip
        v[:10] = data[:10]
        v[10:, :7, :] = data[10:, :7, :]  # chunks (10.., 7.., ..) are never written
    key = f"odd-{deflate}.nc"
    srv.client().upload_file(path, BUCKET, key)
    selections = [
        (slice(0, 14), slice(0, 23), slice(0, 31)),
        (slice(3, 12), slice(5, 20), slice(0, 31)),
        (slice(9, 14), slice(6, 23), slice(10, 12)),
        (slice(13, 14), slice(22, 23), slice(30, 31)),
    ]
    with remote.chunk_reader(f"s3://{BUCKET}/{key}", "rh", srv.storage_options) as r:
        for sel in selections:
            np.testing.assert_array_equal(r.read(sel), _local(path, *sel[:2])[..., sel[2]])
    assert _local(path, slice(12, 13), slice(10, 11))[0, 0, 0] == -9.0  # the fill is exercised
