"""Cube blocks written chunk by chunk without zarr's machinery (``store.DirectChunks``): the same
files with the same bytes as zarr writes, checked against zarr itself on arrays with edge chunks,
partly covered chunks, all-NaN chunks and every cube codec."""

from __future__ import annotations

import os

import numpy as np
import pytest
import zarr

from gridflux.pipeline import store as store_mod
from gridflux.pipeline.store import DirectChunks, blosc_compressors, write_cube_block

# (member, months) writes: whole chunks, a block ending inside the array's last chunk, blocks
# covering part of a chunk (first alone, then the rest merged into the stored chunk)
WRITES = [(0, slice(0, 12)), (0, slice(12, 24)), (0, slice(24, 30)), (1, slice(5, 12))]
MERGE = (1, slice(0, 5))  # the rest of a stored, partly written chunk: zarr merges it


def _files(root: str) -> dict[str, bytes]:
    base = os.path.join(root, "cubes", "v", "v")
    out = {}
    for dirpath, _dirs, files in os.walk(os.path.join(base, "c")):
        for name in files:
            path = os.path.join(dirpath, name)
            with open(path, "rb") as f:
                out[os.path.relpath(path, base)] = f.read()
    return out


def _make(root: str, cname: str | None, shape, chunks) -> None:
    g = zarr.open_group(root, mode="w")
    g.create_array(
        "cubes/v/v",
        shape=shape,
        chunks=chunks,
        dtype="float32",
        fill_value=np.nan,
        compressors=blosc_compressors(3, cname, 1, 262144),
        dimension_names=("member", "time", "lat", "lon"),
    )


@pytest.mark.parametrize("cname", ["lz4", "zstd", "none"])
@pytest.mark.parametrize(
    "shape,chunks",
    [((2, 30, 76, 360), (1, 12, 76, 180)), ((2, 30, 100, 200), (1, 12, 90, 180))],
)
def test_chunk_files_are_those_zarr_writes(tmp_path, cname, shape, chunks):
    rng = np.random.default_rng(5)
    data = rng.normal(size=shape[1:]).astype(np.float32)
    data[3, :7] = np.nan
    data[12:24] = np.nan  # a whole chunk of missing months: not stored
    by_zarr, direct = str(tmp_path / "zarr"), str(tmp_path / "direct")
    for root in (by_zarr, direct):
        _make(root, cname, shape, chunks)
    arr = zarr.open_array(by_zarr, path="cubes/v/v", mode="r+")
    # an older chunk where the all-NaN months now go: both ways delete it
    arr[0, 12:24] = 1.0
    write_cube_block(direct, {}, 3, "v", 0, slice(12, 24), np.ones((12, *shape[2:]), "f4"))
    for m, sl in [*WRITES, MERGE]:
        arr[m, sl] = data[sl]
        write_cube_block(direct, {}, 3, "v", m, sl, data[sl])
    want, got = _files(by_zarr), _files(direct)
    assert sorted(got) == sorted(want) and got == want
    # the values, read back by zarr, are the data (NaN where nothing was written)
    truth = np.full(shape, np.nan, dtype=np.float32)
    for m, sl in [*WRITES, MERGE]:
        truth[m, sl] = data[sl]
    back = zarr.open_array(direct, path="cubes/v/v", mode="r")[...]
    np.testing.assert_array_equal(back, truth)
    assert not any(".partial" in name for name in got)


def test_written_here_only_where_zarr_need_not_merge(tmp_path, monkeypatch):
    root = str(tmp_path / "s")
    _make(root, "lz4", (2, 24, 10, 20), (1, 12, 10, 20))
    calls = []
    real = zarr.Array.__setitem__

    def setitem(self, key, value):
        calls.append(key)
        return real(self, key, value)

    monkeypatch.setattr(zarr.Array, "__setitem__", setitem)
    block = np.ones((6, 10, 20), dtype=np.float32)
    write_cube_block(root, {}, 3, "v", 0, slice(0, 6), block)  # part of a chunk not yet stored
    write_cube_block(root, {}, 3, "v", 0, slice(12, 24), np.ones((12, 10, 20), "f4"))
    assert calls == []
    write_cube_block(root, {}, 3, "v", 0, slice(6, 12), 2 * block)  # the rest: zarr merges
    assert len(calls) == 1
    back = zarr.open_array(root, path="cubes/v/v", mode="r")[0, :12, 0, 0]
    np.testing.assert_array_equal(back, [1.0] * 6 + [2.0] * 6)


def test_a_resized_array_is_read_again(tmp_path):
    root = str(tmp_path / "s")
    _make(root, "lz4", (1, 12, 4, 4), (1, 12, 4, 4))
    block = np.full((12, 4, 4), 3.0, dtype=np.float32)
    write_cube_block(root, {}, 3, "v", 0, slice(0, 12), block)
    zarr.open_array(root, path="cubes/v/v", mode="r+").resize((3, 12, 4, 4))  # growth
    write_cube_block(root, {}, 3, "v", 2, slice(0, 12), block)
    back = zarr.open_array(root, path="cubes/v/v", mode="r")[...]
    np.testing.assert_array_equal(back[[0, 2]], np.stack([block, block]))
    assert np.isnan(back[1]).all()
    assert store_mod.DirectChunks.cached(root + "/cubes/v/v", "cubes/v/v").shape[0] == 3


def test_other_layouts_are_left_to_zarr(tmp_path):
    root = str(tmp_path / "s")
    g = zarr.open_group(root, mode="w")
    g.create_array("cubes/v/v", shape=(1, 12, 4, 4), chunks=(1, 12, 4, 4), dtype="float64")
    # fill 0 (zarr's default), not NaN
    assert DirectChunks.from_metadata(os.path.join(root, "cubes/v/v"), "cubes/v/v") is None
    g.create_array(
        "cubes/w/w",
        shape=(1, 12, 4, 4),
        chunks=(1, 12, 4, 4),
        dtype="float32",
        fill_value=np.nan,
        compressors=zarr.codecs.GzipCodec(),  # a compressor not written directly
    )
    assert DirectChunks.from_metadata(os.path.join(root, "cubes/w/w"), "cubes/w/w") is None
    block = np.full((12, 4, 4), 3.0, dtype=np.float32)
    write_cube_block(root, {}, 3, "w", 0, slice(0, 12), block)  # zarr writes it
    np.testing.assert_array_equal(zarr.open_array(root, path="cubes/w/w")[0], block)
