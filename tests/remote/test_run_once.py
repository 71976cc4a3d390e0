"""A run over object storage opens each file once (issue 19 point 4: "metadata read once per
file"), and its fixed costs are paid only where they are needed.

Against moto's S3 server behind the shim of ``benchmarks/s3shim.py`` (no delay), which counts
every object GET and its body bytes. Truths: byte counts in closed form (the mask's rows x
longitudes x 4 bytes per month, one field for the first time step) plus what one open of the file
fetches (measured alone, on an empty block cache); totals from netCDF4-python and numpy; calls
counted by wrapping the functions that open a series or ask the server about an object.
"""

from __future__ import annotations

import gc
import os
import sys

import numpy as np
import pytest

from gridflux.ingest import remote

pytest.importorskip("moto.server", reason="moto[server] is not installed; pip install -e '.[dev]'")
pytest.importorskip("flask", reason="moto's server needs flask; pip install -e '.[dev]'")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

from benchmarks.inputs import mask_fractions, write_region_mask  # noqa: E402
from benchmarks.objstore import SOUTH, month_seconds, weights, write_case  # noqa: E402
from benchmarks.s3shim import LinkModel, SlowS3  # noqa: E402

BUCKET = "gridflux-run-once"
RES, MONTHS = 2.0, 120  # 90 x 180 cells: 64 800 bytes a field, 7.8 MB in all
NLAT, NLON = 90, 180
NAME = "rh_Lmon_OBJ_historical_r1i1p1f1_gr_uncompressed.nc"


def _row(path: str) -> dict:
    return {
        "ensemble": "bench", "source_id": "OBJ", "experiment": "historical",
        "member_id": "r1i1p1f1", "variable": "rh", "gas": "CO2", "path": path,
    }  # fmt: skip


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    """The shimmed S3 server with one uncompressed monthly file and its catalog (no table, no
    time_range: the run checks its time steps and opens it on the driver to learn its months);
    ``(server, local file, S3 catalog URL, mask file)``."""
    from gridflux.ingest.catalog import write_catalog
    from gridflux.kernels.grids import global_grid

    d = tmp_path_factory.mktemp("runonce")
    p = str(d / NAME)
    write_case(p, "uncompressed", RES, MONTHS)
    grid = global_grid(RES, RES, -180.0)
    mask = str(d / "regions.nc")
    write_region_mask(mask, grid, ("north",), mask_fractions(grid, SOUTH)[None])
    write_catalog([_row(p)], str(d / "catalog.json"), description="run once")
    with SlowS3(LinkModel(latency=0.0, conn_mbps=1e5, link_mbps=1e5)) as srv:
        client = srv.client()
        client.create_bucket(Bucket=BUCKET)
        client.upload_file(p, BUCKET, f"run/{NAME}")
        client.upload_file(str(d / "catalog.json"), BUCKET, "run/catalog.json")
        client.upload_file(str(d / "catalog.csv"), BUCKET, "run/catalog.csv")
        yield srv, p, f"s3://{BUCKET}/run/catalog.json", mask


@pytest.fixture
def clean(s3):
    remote.clear_block_cache()
    s3[0].reset()
    yield


def _fetched(srv) -> tuple[int, int]:
    got = srv.stats()["keys"].get(f"{BUCKET}/run/{NAME}", {})
    return got.get("requests", 0), got.get("bytes", 0)


def _truth(path: str) -> np.ndarray:
    """Tg per month of the mask's region, from netCDF4-python and numpy."""
    import netCDF4

    w, _ = weights(RES)
    with netCDF4.Dataset(path) as nc:
        v = nc["rh"]
        v.set_auto_maskandscale(False)
        x = np.asarray(v[:], dtype=np.float64)
    kg_s = np.einsum("tij,ij->t", x, w)
    return kg_s * month_seconds(MONTHS) / 1e9


def _totals(store: str) -> np.ndarray:
    import xarray as xr

    with xr.open_zarr(store) as ds:
        return np.asarray(ds["totals"].values, dtype=np.float64).ravel()


def _counting(monkeypatch, module, name: str) -> list:
    calls: list = []
    orig = getattr(module, name)

    def wrapper(*args, **kwargs):
        calls.append(args[0] if args else None)
        return orig(*args, **kwargs)

    monkeypatch.setattr(module, name, wrapper)
    return calls


def test_a_run_opens_a_remote_file_once_and_fetches_its_rows(s3, clean, tmp_path, monkeypatch):
    from gridflux.ingest import catalog
    from gridflux.pipeline.runner import run

    srv, local, cat, mask = s3
    so = srv.storage_options
    # what one open of the file fetches (header, coordinates, attributes), alone
    with remote.open_netcdf(f"s3://{BUCKET}/run/{NAME}", so, decode_times=False):
        pass
    one_open_requests, one_open_bytes = _fetched(srv)
    remote.clear_block_cache()
    srv.reset()

    opened = _counting(monkeypatch, catalog, "load_series")
    collected = _counting(monkeypatch, gc, "collect")
    store = str(tmp_path / "s.zarr")
    s = run(cat, mask, store, cubes=False, storage_options=so, store_options=so, progress=False)
    assert s.failed == {} and len(s.done) == 1
    requests, nbytes = _fetched(srv)

    # opened once: on the driver to plan it, and the task read that dataset (in one process)
    assert len(opened) == 1
    rows = 90 - 68  # 45N-90N: rows 68..89 of 90 (the mask is zero south of 45N)
    row_bytes = MONTHS * rows * NLON * 4
    field = NLAT * NLON * 4  # the first time step, looked at once when the series is opened
    # the metadata once (not a whole default fsspec block of 50 MiB: the whole file), the mask's
    # rows of each month, the first step
    assert nbytes <= one_open_bytes + row_bytes + field
    assert nbytes < 0.45 * os.path.getsize(local)
    assert requests <= one_open_requests + MONTHS + 1
    # no full collection for a run without local inputs (nothing of it holds a file handle) ...
    assert collected == []
    # ... and the local mask it read can be rewritten at once
    import netCDF4

    with netCDF4.Dataset(mask, "a") as nc:
        nc.setncattr("touched", 1)
    np.testing.assert_allclose(_totals(store), _truth(local), rtol=1e-12, atol=0)


def test_remote_and_local_runs_are_bit_identical(s3, clean, tmp_path):
    from gridflux.ingest.catalog import write_catalog
    from gridflux.pipeline.runner import run

    srv, local, cat, mask = s3
    so = srv.storage_options
    local_cat = os.path.join(os.path.dirname(local), "local.json")  # beside the file: its root
    write_catalog([_row(local)], local_cat, description="local")
    a = run(cat, mask, str(tmp_path / "a.zarr"), cubes=False, storage_options=so, progress=False)
    b = run(local_cat, mask, str(tmp_path / "b.zarr"), cubes=False, progress=False)
    assert not a.failed and not b.failed
    np.testing.assert_array_equal(
        _totals(str(tmp_path / "a.zarr")), _totals(str(tmp_path / "b.zarr"))
    )


@pytest.mark.parametrize("ahead", [0, 2])
def test_a_remote_series_is_read_ahead_as_configured(s3, clean, tmp_path, monkeypatch, ahead):
    """The task reads a remote series' blocks ``remote.read-ahead`` blocks ahead (0: none), with
    the same totals as the independent truth either way."""
    from gridflux import config
    from gridflux.pipeline import tasks
    from gridflux.pipeline.runner import run

    srv, local, cat, mask = s3
    so = srv.storage_options
    seen: list[tuple[int, int]] = []
    orig = tasks.read_blocks

    def spy(read, blocks, n):
        seen.append((len(blocks), n))
        return orig(read, blocks, n)

    monkeypatch.setattr(tasks, "read_blocks", spy)
    store = str(tmp_path / f"ahead{ahead}.zarr")
    with config.set_options(**{"remote.read-ahead": ahead}):
        s = run(cat, mask, store, cubes=False, storage_options=so, progress=False)
    assert not s.failed
    assert seen == [(MONTHS // 12, ahead)]  # one span of ten 12-month blocks
    np.testing.assert_allclose(_totals(store), _truth(local), rtol=1e-12, atol=0)


def test_local_series_are_not_read_ahead(tmp_path):
    from gridflux import config
    from gridflux.pipeline import tasks

    job = type("Job", (), {"record": type("R", (), {"paths": [str(tmp_path / "a.nc")]})()})()
    with config.set_options(**{"remote.read-ahead": 3}):
        assert tasks.blocks_ahead(job) == 0
        job.record.paths = [str(tmp_path / "a.nc"), "s3://bucket/b.nc"]
        assert tasks.blocks_ahead(job) == 3
    assert tasks.blocks_ahead(job) == 2  # the packaged default (gridflux.yaml)


def test_a_run_of_local_files_still_closes_them(tmp_path):
    """The purpose of Run.release's collection: the chunk readers of a series opened on the
    driver sit in reference cycles; with automatic collection off, the input must still be
    writable when run returns (it fails with an HDF error without the collection)."""
    import netCDF4

    from gridflux.ingest.catalog import write_catalog
    from gridflux.kernels.grids import global_grid
    from gridflux.pipeline.runner import run

    p = str(tmp_path / NAME)
    write_case(p, "deflated", RES, 12)
    grid = global_grid(RES, RES, -180.0)
    mask = str(tmp_path / "m.nc")
    write_region_mask(mask, grid, ("north",), mask_fractions(grid, SOUTH)[None])
    write_catalog([_row(p)], str(tmp_path / "c.json"), description="local")
    enabled = gc.isenabled()
    gc.disable()
    try:
        s = run(str(tmp_path / "c.json"), mask, str(tmp_path / "s.zarr"), cubes=False,
                progress=False)  # fmt: skip
        assert not s.failed
        with netCDF4.Dataset(p, "a") as nc:
            nc.setncattr("touched", 1)
    finally:
        if enabled:
            gc.enable()


def test_info_once_asks_each_object_once_within_its_scope(s3, clean, monkeypatch):
    srv, _, _, _ = s3
    so = srv.storage_options
    url = f"s3://{BUCKET}/run/{NAME}"
    asked: list[str] = []
    orig = remote.call_with_retries

    def counting(fn, *, url, what, **kwargs):
        if what == "metadata request":  # info's request to the server
            asked.append(url)
        return orig(fn, url=url, what=what, **kwargs)

    monkeypatch.setattr(remote, "call_with_retries", counting)
    size = os.path.getsize(s3[1])
    assert remote.info(url, so)["size"] == size
    assert remote.info(url, so)["size"] == size
    assert len(asked) == 2  # no scope: asked every time
    asked.clear()
    with remote.info_once():
        assert remote.info(url, so)["size"] == size
        with remote.info_once():  # nested: the outer scope's answers
            assert remote.RemoteFile(url, so).size == size
        for _ in range(2):  # a missing object: asked again (errors are not remembered)
            with pytest.raises(Exception, match="not found"):
                remote.info(f"s3://{BUCKET}/run/missing.nc", so)
    assert len(asked) == 3
    asked.clear()
    assert remote.info(url, so)["size"] == size  # the scope ended
    assert len(asked) == 1


def test_daily_check_of_a_remote_file_reads_its_metadata_only(s3, clean, tmp_path):
    """A record without table or time_range: its first file's time steps decide; read through
    the ranged reader (a few metadata blocks), not an fsspec file's first 50 MiB block."""
    import netCDF4

    from gridflux.ingest.catalog.schema import SeriesRecord
    from gridflux.pipeline.daily import is_daily

    srv, local, _, _ = s3
    so = srv.storage_options
    rec = SeriesRecord(
        key="m/rh", member="m", variable="rh", raw_variable="rh",
        paths=[f"s3://{BUCKET}/run/{NAME}"], format="netcdf",
    )  # fmt: skip
    assert is_daily(rec, so) is False
    meta = remote.RemotePolicy.from_config().metadata_block_size
    requests, nbytes = _fetched(srv)
    assert nbytes <= 2 * meta and requests <= 2
    # a daily file: 30 steps one day apart
    p = str(tmp_path / "daily.nc")
    with netCDF4.Dataset(p, "w") as nc:
        nc.createDimension("time", 30)
        nc.createDimension("lat", 2)
        nc.createDimension("lon", 3)
        t = nc.createVariable("time", "f8", ("time",))
        t.units, t.calendar = "days since 2000-01-01", "noleap"
        t[:] = np.arange(30) + 0.5
        nc.createVariable("rh", "f4", ("time", "lat", "lon"))[:] = 1.0
    srv.client().upload_file(p, BUCKET, "run/daily.nc")
    daily = rec.model_copy(update={"paths": [f"s3://{BUCKET}/run/daily.nc"]})
    assert is_daily(daily, so) is True


@pytest.mark.parametrize(
    ("name", "attrs", "step", "days"),
    [
        ("time", {"units": "days since 2000-01-01"}, 1.0, 1.0),
        ("t", {"units": "hours since 2000-01-01", "axis": "T"}, 6.0, 0.25),
        ("valid", {"units": "seconds since 2000-01-01", "standard_name": "time"}, 86400.0, 1.0),
        ("t", {"units": "days since 2000-01-01"}, 1.0, float("inf")),  # not a time axis
    ],
)
def test_steps_days_of_h5netcdf_and_xarray_agree(tmp_path, name, attrs, step, days):
    """The daily check reads remote files with h5netcdf, local ones with xarray: the same
    variables, attributes and values, so the same step (closed form: the step / unit per day)."""
    import h5netcdf
    import netCDF4
    import xarray as xr

    from gridflux.pipeline.daily import steps_days

    p = str(tmp_path / "steps.nc")
    with netCDF4.Dataset(p, "w") as nc:
        nc.createDimension(name, 10)
        nc.createDimension("lat", 2)
        v = nc.createVariable(name, "f8", (name,))
        v.setncatts(attrs)
        v[:] = np.arange(10) * step
        nc.createVariable("x", "f4", (name, "lat"))[:] = 1.0
    with xr.open_dataset(p, engine="h5netcdf", decode_times=False, decode_cf=False) as ds:
        a = steps_days(ds)
    with open(p, "rb") as f, h5netcdf.File(f, "r") as h:
        b = steps_days(h)
    assert a == b == days
