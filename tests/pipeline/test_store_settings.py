"""A setting that shapes the store either matches the existing store or the run is refused, naming
the setting (issue 16, point 7). Before this check a store made with ``--chunk-months 24`` and
resumed with 12 had two tasks write one cube chunk (cells silently NaN, exit 0)."""

from __future__ import annotations

import shutil

import pytest
import xarray as xr

from gridflux import config
from gridflux.errors import StoreError
from gridflux.pipeline.runner import run

from .test_store_template import assert_stores_equal


@pytest.fixture
def made(mini_archive, tmp_path):
    """A store made with default settings, plus a copy of it as it was."""
    store = tmp_path / "s.zarr"
    assert run(mini_archive["catalog"], mini_archive["mask"], str(store), progress=False).ok
    before = tmp_path / "before.zarr"
    shutil.copytree(store, before)
    return store, before


def _rerun(mini_archive, store, **kw):
    return run(mini_archive["catalog"], mini_archive["mask"], str(store), progress=False, **kw)


def test_other_chunk_months_on_resume_is_refused(mini_archive, tmp_path):
    store = tmp_path / "s.zarr"
    assert run(
        mini_archive["catalog"], mini_archive["mask"], str(store), progress=False, chunk_months=24
    ).ok
    with pytest.raises(StoreError, match=r"time chunks of 24 months.*asks for 12 \(--chunk-months"):
        _rerun(mini_archive, store, chunk_months=12)
    again = _rerun(mini_archive, store, chunk_months=24)
    assert len(again.skipped) == 3


@pytest.mark.parametrize("made_with,resumed_with", [(2, 3), (3, 2)])
def test_other_zarr_format_on_resume_is_refused(mini_archive, tmp_path, made_with, resumed_with):
    store = tmp_path / "s.zarr"
    assert run(
        mini_archive["catalog"],
        mini_archive["mask"],
        str(store),
        progress=False,
        zarr_format=made_with,
    ).ok
    with pytest.raises(StoreError, match=rf"zarr format {made_with}.*--zarr-format"):
        _rerun(mini_archive, store, zarr_format=resumed_with)


@pytest.mark.parametrize(
    "options",
    [
        {"store.cube-compressor": "zstd"},
        {"store.cube-compressor": "lz4", "store.cube-clevel": 5},
        {"store.cube-compressor": "lz4", "store.cube-blocksize": 0},
        {"store.cube-compressor": "none"},
    ],
)
def test_other_cube_codec_on_resume_is_refused(mini_archive, made, options):
    """The store was made with the default (``auto``: lz4, level 1, 256 KiB blocks); a codec set
    otherwise is refused."""
    store, before = made
    with config.set_options(**options):
        with pytest.raises(StoreError, match=r"compressed with .*store\.cube-compressor"):
            _rerun(mini_archive, store)
    assert_stores_equal(before, store)


def test_other_target_grid_on_resume_is_refused(mini_archive, made):
    store, before = made
    with pytest.raises(StoreError, match=r"another grid .*--target-grid"):
        _rerun(mini_archive, store, target="1")
    assert_stores_equal(before, store)


def test_other_mask_on_resume_is_refused(mini_archive, made, tmp_path):
    store, before = made
    mask = xr.load_dataset(mini_archive["mask"])
    name = next(v for v in mask.data_vars if mask[v].ndim == 3)
    mask[name] = mask[name] * 0.5  # same regions and bounding box, other fractions
    mask.to_netcdf(tmp_path / "half.nc")
    with pytest.raises(StoreError, match=r"another mask \(--mask\)"):
        run(mini_archive["catalog"], str(tmp_path / "half.nc"), str(store), progress=False)
    assert_stores_equal(before, store)


def test_same_settings_resume(mini_archive, made):
    store, _ = made
    assert len(_rerun(mini_archive, store).skipped) == 3
