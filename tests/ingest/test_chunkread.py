"""Chunk reads (gridflux.ingest.chunkread: libdeflate for deflated chunks, byte ranges for
unfiltered ones)
against netCDF4's own reads of the same files."""

from __future__ import annotations

import os
import pickle

import netCDF4
import numpy as np
import pytest
import xarray as xr

from gridflux.ingest.chunkarray import DeflateChunkArray, chunk_variable
from gridflux.ingest.chunkread import ChunkReader, open_reader

SHAPE = (14, 23, 37)  # not a multiple of any chunk below: edge chunks are partial


def _write(
    path,
    *,
    dtype="f4",
    chunks=(1, 23, 37),
    zlib=True,
    shuffle=True,
    endian="native",
    fletcher32=False,
    contiguous=False,
    fill=None,
    scale=None,
    skip_steps=(),
    values=None,
):
    rng = np.random.default_rng(0)
    data = rng.normal(size=SHAPE) * 100 if values is None else values
    with netCDF4.Dataset(path, "w") as nc:
        for d, n in zip(("time", "lat", "lon"), SHAPE, strict=True):
            nc.createDimension(d, n)
        kw = dict(zlib=zlib, shuffle=shuffle, endian=endian, fletcher32=fletcher32, fill_value=fill)
        kw.update(contiguous=True) if contiguous else kw.update(chunksizes=chunks)
        v = nc.createVariable("x", dtype, ("time", "lat", "lon"), **kw)
        if scale:
            v.scale_factor, v.add_offset = scale
            v.set_auto_maskandscale(False)  # ``values`` are already packed
        for t in range(SHAPE[0]):
            if t not in skip_steps:
                v[t] = data[t]
    return data


def _netcdf4(path, key=slice(None)):
    with netCDF4.Dataset(path) as nc:
        v = nc["x"]
        v.set_auto_maskandscale(False)
        return np.asarray(v[key])


@pytest.mark.parametrize(
    "kw",
    [
        dict(),
        dict(shuffle=False),
        dict(dtype="f8"),
        dict(endian="big"),
        dict(chunks=(3, 7, 11)),
        dict(chunks=(5, 23, 37), dtype="i2"),
        dict(zlib=False, shuffle=False),  # unfiltered chunks: byte ranges
        dict(zlib=False, shuffle=False, chunks=(3, 7, 11), endian="big"),
        dict(zlib=False, shuffle=False, contiguous=True),
        dict(zlib=False, shuffle=False, contiguous=True, dtype="f8"),
    ],
)
def test_whole_and_partial_reads_equal_netcdf4(tmp_path, kw):
    path = str(tmp_path / "a.nc")
    _write(path, **kw)
    with ChunkReader(path, "x") as r:
        assert r.shape == SHAPE
        for key in [
            (slice(None),) * 3,
            (slice(2, 9), slice(0, 23), slice(0, 37)),
            (slice(13, 14), slice(5, 18), slice(30, 37)),
            (slice(0, 1), slice(22, 23), slice(0, 1)),
            (slice(0, 3), slice(10, 20), slice(0, 37)),
        ]:  # rows of whole lines: partial unshuffle
            got = r.read(tuple(slice(*k.indices(n)[:2]) for k, n in zip(key, SHAPE, strict=True)))
            want = _netcdf4(path, key)
            assert got.dtype == want.dtype and got.shape == want.shape
            assert np.array_equal(got, want)


@pytest.mark.parametrize("kw", [dict(), dict(zlib=False, shuffle=False)])
def test_unwritten_chunks_read_as_the_fill_value(tmp_path, kw):
    path = str(tmp_path / "a.nc")
    _write(path, fill=np.float32(-999.0), skip_steps=(3, 4), **kw)
    with ChunkReader(path, "x") as r:
        got = r.read((slice(0, 14), slice(0, 23), slice(0, 37)))
    assert np.array_equal(got, _netcdf4(path))
    assert np.all(got[3:5] == -999.0)


@pytest.mark.parametrize(
    "kw,why",
    [
        (dict(fletcher32=True), "checksum filter"),
        (dict(zlib=False, shuffle=False, fletcher32=True), "checksum filter alone"),
    ],
)
def test_unsupported_layouts_are_left_to_netcdf4(tmp_path, kw, why):
    path = str(tmp_path / "a.nc")
    _write(path, **kw)
    assert open_reader(path, "x") is None, why
    with pytest.raises(ValueError, match="cannot be read by chunk"):
        ChunkReader(path, "x")
    assert open_reader(str(tmp_path / "missing.nc"), "x") is None


def test_xarray_view_decodes_like_the_netcdf4_engine(tmp_path):
    """Packed int16 with scale/offset and a _FillValue: the swapped array under xarray's CF decoding
    equals the netcdf4 engine's decoding, for every kind of index xarray passes down."""
    path = str(tmp_path / "a.nc")
    rng = np.random.default_rng(1)
    vals = rng.integers(-3000, 3000, size=SHAPE).astype("i2")
    vals[2, 3, 4] = -32767
    _write(
        path, dtype="i2", chunks=(2, 10, 37), fill=np.int16(-32767), scale=(0.01, 5.0), values=vals
    )
    ref = xr.open_dataset(path, engine="netcdf4")
    raw = xr.open_dataset(path, engine="netcdf4", decode_cf=False)
    raw["x"] = chunk_variable(raw["x"].variable, path, "x")
    assert isinstance(raw["x"].variable._data, xr.core.indexing.LazilyIndexedArray)
    fast = xr.decode_cf(raw)
    assert np.isnan(fast["x"].values[2, 3, 4])
    for sel in [
        dict(),
        dict(time=slice(3, 11)),
        dict(time=5),
        dict(lat=slice(None, None, -1)),
        dict(time=slice(12, 1, -3), lon=slice(2, 30, 4)),
        dict(lat=[0, 5, 22]),
    ]:
        np.testing.assert_array_equal(fast["x"].isel(sel).values, ref["x"].isel(sel).values)
    ref.close()


def test_backend_array_pickles_by_path(tmp_path):
    path = str(tmp_path / "a.nc")
    data = _write(path)
    arr = pickle.loads(pickle.dumps(DeflateChunkArray(path, "x")))
    assert arr._reader is None  # the copy opens its file when it first reads, not when unpickled
    assert arr.shape == SHAPE and arr.dtype == np.float32
    np.testing.assert_array_equal(
        arr[xr.core.indexing.BasicIndexer((slice(0, 2), slice(None), slice(None)))],
        data[:2].astype("f4"),
    )


def test_backend_array_token_follows_the_file(tmp_path):
    """dask's token (the name of the dask array xarray makes) is the same for the same file and
    changes when the file is rewritten."""
    import os

    from dask.base import tokenize

    path = str(tmp_path / "a.nc")
    _write(path)
    first = tokenize(DeflateChunkArray(path, "x"))
    assert tokenize(DeflateChunkArray(path, "x")) == first
    st = os.stat(path)
    _write(path, values=np.zeros(SHAPE))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))  # however coarse the clock
    assert tokenize(DeflateChunkArray(path, "x")) != first


def test_a_corrupt_chunk_is_an_error_naming_file_variable_and_chunk(tmp_path):
    import h5py

    from gridflux.errors import InputError

    path = str(tmp_path / "a.nc")
    _write(path)
    with h5py.File(path, "r") as h:
        info = h["x"].id.get_chunk_info_by_coord((5, 0, 0))
    with open(path, "r+b") as f:  # scramble the middle of month 5's deflate stream
        f.seek(info.byte_offset + info.size // 2)
        f.write(b"\xff" * 64)
    with ChunkReader(path, "x") as r:
        np.testing.assert_array_equal(
            r.read((slice(0, 5), slice(0, 23), slice(0, 37))), _netcdf4(path, slice(0, 5))
        )
        with pytest.raises(InputError) as e:
            r.read((slice(4, 7), slice(0, 23), slice(0, 37)))
    msg = str(e.value)
    assert msg.startswith(f"{path}, variable 'x', attribute 'data': chunk at (5, 0, 0)"), msg
    assert "corrupt" in msg


def test_a_truncated_unfiltered_file_is_an_error_naming_file_variable_and_chunk(tmp_path):
    """Cut the file inside the last time step's chunk after the reader learned the chunk offsets."""
    import os

    from gridflux.errors import InputError

    path = str(tmp_path / "a.nc")
    _write(path, zlib=False, shuffle=False)
    with ChunkReader(path, "x") as r:
        np.testing.assert_array_equal(
            r.read((slice(0, 14), slice(0, 23), slice(0, 37))), _netcdf4(path)
        )
        os.truncate(path, r._chunk_offset((13, 0, 0)) + 10)
        with pytest.raises(InputError) as e:
            r.read((slice(12, 14), slice(0, 23), slice(0, 37)))
    msg = str(e.value)
    assert msg.startswith(
        f"{path}, variable 'x', attribute 'data': chunk at (13, 0, 0) is cut short (10 of"
    ), msg
    assert "truncated" in msg


# ------------------------------------------------------------------ a series' files joined along
# time


def _split_files(tmp_path, lengths=(5, 4, 5)):
    """One planted (14, 23, 37) field written as consecutive files of ``lengths`` months."""
    rng = np.random.default_rng(1)
    whole = rng.normal(size=SHAPE) * 100
    variables, t0 = [], 0
    for i, n in enumerate(lengths):
        path = str(tmp_path / f"part{i}.nc")
        with netCDF4.Dataset(path, "w") as nc:
            for d, size in zip(("time", "lat", "lon"), (n, *SHAPE[1:]), strict=True):
                nc.createDimension(d, size)
            v = nc.createVariable(
                "x", "f4", ("time", "lat", "lon"), zlib=True, shuffle=True, chunksizes=(1, 23, 37)
            )
            v[:] = whole[t0 : t0 + n]
        t0 += n
        with xr.open_dataset(path, engine="netcdf4", decode_cf=False) as ds:
            variables.append(chunk_variable(ds["x"].variable, path, "x"))
    return whole.astype("f4"), variables


@pytest.mark.parametrize(
    "key",
    [
        (slice(None), slice(None), slice(None)),
        (slice(3, 11), slice(2, 9), slice(None)),  # across all three files
        (slice(5, 9), slice(None), slice(4, 5)),  # exactly the middle file
        (7, slice(0, 23), slice(0, 37)),  # one month
        (-1, 4, slice(None)),
        (slice(1, 13, 4), slice(None), 3),  # stepped
        (slice(12, 2, -3), slice(None), slice(None)),
        (slice(6, 6), slice(None), slice(None)),  # empty
    ],
)
def test_time_concatenated_array_equals_the_planted_field(tmp_path, key):
    from xarray.core.indexing import BasicIndexer

    from gridflux.ingest.chunkarray import TimeConcatenatedArray

    whole, variables = _split_files(tmp_path)
    joined = TimeConcatenatedArray(variables)
    assert joined.shape == SHAPE and joined.dtype == np.float32
    np.testing.assert_array_equal(joined[BasicIndexer(key)], whole[key])


def test_a_rows_selection_reaches_every_file_read(tmp_path, monkeypatch):
    """Joined before dask: selecting latitude rows of the dask array reads only those rows of each
    month of each file (dask's concatenate would read whole fields)."""
    from gridflux.ingest.chunkarray import concat_time

    whole, variables = _split_files(tmp_path)
    reads = []
    original = ChunkReader.read

    def recording(self, key):
        reads.append((os.path.basename(self.path), key))
        return original(self, key)

    monkeypatch.setattr(ChunkReader, "read", recording)
    field = concat_time(variables).chunk({"time": (5, 4, 5), "lat": -1, "lon": -1})
    got = field.data[2:12, 10:20].compute(scheduler="sync")
    np.testing.assert_array_equal(got, whole[2:12, 10:20])
    assert {p for p, _ in reads} == {"part0.nc", "part1.nc", "part2.nc"}
    assert all(k[1] == slice(10, 20) for _, k in reads), reads
    assert sum(k[0].stop - k[0].start for _, k in reads) == 10  # each month read once


def test_files_of_other_shapes_cannot_be_joined(tmp_path):
    from gridflux.ingest.chunkarray import TimeConcatenatedArray

    _, variables = _split_files(tmp_path)
    with pytest.raises(ValueError, match="differ in shape beyond time"):
        TimeConcatenatedArray([variables[0], variables[1][:, :5]])


def test_flat_range_is_the_selection_of_a_c_ordered_chunk():
    """``_flat_range``'s ``a:b`` holds exactly the selected elements (checked on np.arange), and
    it declines every non-contiguous selection."""
    from itertools import product

    from gridflux.ingest.chunkread import _flat_range

    for chunks in ((4,), (3, 5), (2, 3, 4), (1, 4, 6)):
        flat = np.arange(int(np.prod(chunks)))
        block = flat.reshape(chunks)
        spans = [[(a, b) for a in range(c) for b in range(a + 1, c + 1)] for c in chunks]
        for sel in product(*spans):
            sub = tuple(slice(a, b) for a, b in sel)
            got = _flat_range(sub, chunks)
            want = block[sub].ravel()
            contiguous = bool(np.all(np.diff(want) == 1))
            if got is None:
                assert not contiguous, (chunks, sub)
            else:
                a, b = got
                np.testing.assert_array_equal(flat[a:b], want)


@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"chunks": (4, 8, 37)},
        {"shuffle": False, "chunks": (3, 23, 10)},
        {"zlib": False, "shuffle": False, "chunks": (2, 23, 37)},
        {"zlib": False, "shuffle": False, "contiguous": True},
    ],
)
def test_read_keeping_inflates_the_first_chunks_once(tmp_path, kw, monkeypatch):
    """A look at the first time step (``read_keeping``) and the first block read after it: the
    values of netCDF4, and the first step's chunks inflated (or read) once, not twice."""
    p = str(tmp_path / "k.nc")
    _write(p, **kw)
    decoded: list[tuple] = []
    for name in ("_decode", "_stored_chunk"):
        original = getattr(ChunkReader, name)

        def counting(self, origin, *args, _original=original):
            decoded.append(origin)
            return _original(self, origin, *args)

        monkeypatch.setattr(ChunkReader, name, counting)
    with ChunkReader(p, "x") as r:
        first = r.read_keeping((slice(0, 1), slice(0, SHAPE[1]), slice(0, SHAPE[2])))
        np.testing.assert_array_equal(first, _netcdf4(p, slice(0, 1)))
        kept = set(r._kept)
        assert kept and sorted(decoded) == sorted(kept)  # each of the first step's chunks once
        decoded.clear()
        block = (slice(0, 6), slice(3, 20), slice(0, SHAPE[2]))
        np.testing.assert_array_equal(r.read(block), _netcdf4(p, block))
        assert not r._kept  # used by the block, then dropped
        assert decoded and not set(decoded) & kept  # not inflated again
        whole = (slice(0, SHAPE[0]), slice(0, SHAPE[1]), slice(0, SHAPE[2]))
        np.testing.assert_array_equal(r.read(whole), _netcdf4(p))
