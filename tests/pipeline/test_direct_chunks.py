"""Chunks written without zarr's machinery (``store.DirectChunks``, issue 19): for the workers'
totals and cube blocks, the same chunk files with the same bytes as zarr 3.1 writes for the same
values, checked against zarr itself -- on the totals layout (float64, chunks of one member and
variable, the regions the store was created with, 12 months; a grown store's regions in several
region chunks; a last time chunk that the array ends inside), on arrays of 1 to 5 dimensions in
float32 and float64, with each compressor a store has (zstd: xarray's default for totals; Blosc
lz4/zstd: the cubes'; none), all-NaN chunks not stored and older ones deleted; arrays of any other
layout left to zarr; and a whole run's store the same, file for file, as one written by zarr."""

from __future__ import annotations

import os

import numpy as np
import pytest
import zarr

from gridflux.pipeline import store as store_mod
from gridflux.pipeline.runner import run
from gridflux.pipeline.store import (
    DirectChunks,
    Store,
    StoreTemplate,
    TotalsTarget,
    blosc_compressors,
    write_totals_blocks,
)

from .growth_archive import TARGET, write_mask, write_release

COMPRESSORS = {
    "zstd": (zarr.codecs.ZstdCodec(),),  # zarr 3's default for float arrays (what totals get)
    "zstd-3-checksum": (zarr.codecs.ZstdCodec(level=3, checksum=True),),
    "blosc-lz4": blosc_compressors(3, "lz4", 1, 262144),  # the cubes' default
    "blosc-zstd": blosc_compressors(3, "zstd", 1, 0),
    "blosc-bitshuffle": (zarr.codecs.BloscCodec(cname="lz4", clevel=5, shuffle="bitshuffle"),),
    "none": None,
}


def chunk_files(array_dir: str) -> dict[str, bytes]:
    """Every file under an array's ``c/`` directory (its chunks), by relative path."""
    out = {}
    for dirpath, _dirs, files in os.walk(os.path.join(array_dir, "c")):
        for name in files:
            path = os.path.join(dirpath, name)
            with open(path, "rb") as f:
                out[os.path.relpath(path, array_dir)] = f.read()
    return out


def make_pair(tmp_path, shape, chunks, dtype, compressors, name="a"):
    """The same empty array ``name`` (fill NaN) in two stores: to write by zarr, and directly."""
    arrays = []
    for way in ("zarr", "direct"):
        g = zarr.open_group(str(tmp_path / way), mode="w")
        arrays.append(
            g.create_array(
                name,
                shape=shape,
                chunks=chunks,
                dtype=dtype,
                fill_value=np.nan,
                compressors=compressors,
            )
        )
    direct = DirectChunks.from_metadata(str(tmp_path / "direct" / name), name)
    assert direct is not None
    return arrays[0], direct


# -- the totals layout ----------------------------------------------------------------------------
def test_a_new_stores_totals_are_float64_in_zstd_and_written_directly(tmp_path):
    """The codec chain the totals of a real store have (xarray's ``to_zarr`` with zarr 3's
    defaults): ``bytes`` little-endian + ``zstd`` level 0 without checksum; written directly."""
    template = StoreTemplate(
        members=["a", "b"],
        traits={},
        variables=["nbp"],
        variable_kinds=["flux"],
        regions=["r1", "r2", "r3"],
        months=[(2000 + m // 12, m % 12 + 1) for m in range(30)],
    )
    Store(tmp_path / "s.zarr").create(template)
    arr = zarr.open_array(str(tmp_path / "s.zarr"), path="totals", mode="r")
    assert arr.dtype == np.float64 and arr.chunks == (1, 1, 3, 12)
    assert [c.to_dict() for c in arr.compressors] == [
        {"name": "zstd", "configuration": {"level": 0, "checksum": False}}
    ]
    direct = DirectChunks.from_metadata(str(tmp_path / "s.zarr" / "totals"), "totals")
    assert direct is not None and direct.shape == (2, 1, 3, 30) and direct.chunks == (1, 1, 3, 12)
    assert direct.dtype == np.dtype("<f8")


@pytest.mark.parametrize("codec", ["zstd", "blosc-lz4", "none"])
@pytest.mark.parametrize(
    "n_regions,region_chunk", [(3, 3), (7, 3)]
)  # (7, 3): a store created with 3 regions that grew to 7: three region chunks, the last partial
def test_worker_totals_are_the_chunks_zarr_writes(tmp_path, codec, n_regions, region_chunk):
    """``write_totals_blocks`` of spans against zarr's region write of the values built here: a
    span over two years, one ending inside the array's last (half) chunk, one of a series that
    lacks months of its chunk, one that rewrites a stored chunk with all-NaN values (the run
    computes other regions), and regions this run does not compute (NaN rows; with 7 regions the
    middle region chunk is all NaN: not stored)."""
    shape = (2, 2, n_regions, 30)  # 2 members, 2 variables, months 0..29: the last chunk is half
    chunks = (1, 1, region_chunk, 12)
    by_zarr, direct = make_pair(tmp_path, shape, chunks, "float64", COMPRESSORS[codec], "totals")
    rng = np.random.default_rng(7)
    run_regions = (0, 2) if n_regions == 3 else (0, 1, 6)  # the store's index of the run's regions
    spans = [
        # (member, variable, positions of each block on the store's months)
        (0, 0, [np.arange(0, 12), np.arange(12, 24)]),
        (0, 1, [np.arange(24, 30)]),  # ends inside the array's last chunk
        (1, 0, [np.arange(15, 24)]),  # the series starts in March of the 2nd year
        (1, 1, [np.arange(0, 12)]),  # all NaN (a series without data)
    ]
    # an older chunk where all-NaN values now go: both ways delete it
    by_zarr[1, 1, :, 0:12] = 1.0
    direct.write((1, 1, slice(None), slice(0, 12)), np.ones((n_regions, 12)))
    assert "c/1/1/0/0" in chunk_files(direct.array_dir)
    for m, v, positions in spans:
        blocks = [(pos, rng.normal(size=(len(pos), len(run_regions)))) for pos in positions]
        if (m, v) == (1, 1):
            blocks = [(pos, np.full_like(tot, np.nan)) for pos, tot in blocks]
        target = TotalsTarget(
            url=str(tmp_path / "direct"),
            zarr_format=3,
            shape=shape,
            chunks=chunks,
            variable_index=v,
            region_pos=run_regions,
        )
        write_totals_blocks(target, {}, m, blocks)
        # the same, by zarr: whole time chunks, NaN where the series has no month or the run
        # computes no region
        t0 = min(int(p[0]) for p, _ in blocks) // 12 * 12
        t1 = min((max(int(p[-1]) for p, _ in blocks) // 12 + 1) * 12, shape[3])
        values = np.full((n_regions, t1 - t0), np.nan)
        for pos, tot in blocks:
            for j, r in enumerate(run_regions):
                values[r, pos - t0] = tot[:, j]
        by_zarr[m, v, :, t0:t1] = values
    want = chunk_files(os.path.join(tmp_path, "zarr", "totals"))
    got = chunk_files(direct.array_dir)
    assert sorted(got) == sorted(want)
    assert got == want
    assert "c/1/1/0/0" not in got  # the all-NaN series: its older chunk deleted
    if n_regions == 7:  # regions 3..5 are not computed: their chunks are not stored
        assert not any(k.split("/")[3] == "1" for k in got)
    assert not any(".partial" in k for k in got)
    # read back by zarr: the values zarr holds
    back = zarr.open_array(str(tmp_path / "direct"), path="totals", mode="r")[...]
    np.testing.assert_array_equal(back, by_zarr[...])


def test_totals_of_a_store_of_another_shape_are_refused(tmp_path):
    """A run's target made for another shape of the array (another run grew the store): neither
    written directly nor by zarr, a StoreError naming both shapes."""
    _, direct = make_pair(tmp_path, (1, 1, 2, 24), (1, 1, 2, 12), "float64", None, "totals")
    target = TotalsTarget(
        url=str(tmp_path / "direct"),
        zarr_format=3,
        shape=(1, 1, 2, 36),
        chunks=(1, 1, 2, 12),
        variable_index=0,
        region_pos=(0, 1),
    )
    with pytest.raises(store_mod.StoreError, match=r"\(1, 1, 2, 24\).*\(1, 1, 2, 36\)"):
        write_totals_blocks(target, {}, 0, [(np.arange(12), np.ones((12, 2)))])
    assert chunk_files(direct.array_dir) == {}


# -- any array of the layout -----------------------------------------------------------------------
def _selections(rng, shape, chunks):
    """Random region writes: whole chunks (the array's edge chunks included), partial chunks,
    integer indices."""
    sel = []
    for n, c in zip(shape, chunks, strict=True):
        kind = rng.integers(4)
        if kind == 0 and n > 1:  # an integer index
            sel.append(int(rng.integers(n)))
        elif kind == 1:  # everything
            sel.append(slice(None))
        else:  # a run of whole chunks (or of any cells: partly covered chunks)
            nc = -(-n // c)
            a = int(rng.integers(nc))
            b = int(rng.integers(a, nc)) + 1
            lo, hi = a * c, min(b * c, n)
            if kind == 3:
                lo = int(rng.integers(lo, hi))
                hi = int(rng.integers(lo, hi)) + 1
            sel.append(slice(lo, hi))
    return tuple(sel)


@pytest.mark.parametrize("codec", sorted(COMPRESSORS))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_any_array_gets_the_chunks_zarr_writes(tmp_path, codec, dtype):
    """1- to 5-D arrays with edge chunks, random region writes of random values with NaN holes,
    all-NaN pieces and overwrites: each write directly (or, where it partly covers a stored
    chunk, refused: then by zarr, as :func:`write_cube_block` does) and by zarr, the same chunk
    files after every write."""
    rng = np.random.default_rng(11)
    cases = [
        ((25,), (10,)),
        ((7, 30), (3, 12)),
        ((3, 30, 9), (1, 12, 4)),
        ((2, 2, 7, 30), (1, 1, 3, 12)),
        ((2, 13, 5, 6, 3), (1, 12, 2, 4, 3)),
    ]
    for k, (shape, chunks) in enumerate(cases):
        case = tmp_path / str(k)
        by_zarr, direct = make_pair(case, shape, chunks, dtype, COMPRESSORS[codec])
        direct_arr = zarr.open_array(str(case / "direct"), path="a", mode="r+")
        refused = 0
        for _ in range(12):
            sel = _selections(rng, shape, chunks)
            out_shape = tuple(
                len(range(*s.indices(n)))
                for s, n in zip(sel, shape, strict=True)
                if isinstance(s, slice)
            )
            values = rng.normal(size=out_shape).astype(dtype)
            roll = rng.integers(4)
            if roll == 0:
                values[...] = np.nan  # all NaN: not stored, an older chunk deleted
            elif roll == 1 and values.size > 1:
                values.reshape(-1)[::3] = np.nan
            by_zarr[sel] = values
            if not direct.write(sel, values):
                refused += 1  # a stored chunk partly covered: zarr merges
                direct_arr[sel] = values
            want = chunk_files(os.path.join(case, "zarr", "a"))
            assert chunk_files(direct.array_dir) == want, (shape, sel)
        assert refused < 12
        np.testing.assert_array_equal(direct_arr[...], by_zarr[...])


@pytest.mark.parametrize(
    "kwargs",
    [
        {"zarr_format": 2, "fill_value": np.nan},  # zarr 2 format
        {"fill_value": 0.0},  # fill not NaN
        {"fill_value": np.nan, "dtype": "float16"},  # another data type
        {"fill_value": np.nan, "serializer": zarr.codecs.BytesCodec(endian="big")},
        {"fill_value": np.nan, "compressors": zarr.codecs.GzipCodec()},
        {"fill_value": np.nan, "shards": (2, 12)},  # sharding
        {"fill_value": np.nan, "chunk_key_encoding": {"name": "v2", "separator": "."}},
        {"fill_value": np.nan, "filters": zarr.codecs.TransposeCodec(order=(1, 0))},
    ],
)
def test_other_layouts_are_left_to_zarr(tmp_path, kwargs):
    kw = {"dtype": "float64", **kwargs}
    fmt = kw.pop("zarr_format", 3)
    g = zarr.open_group(str(tmp_path / "s"), mode="w", zarr_format=fmt)
    g.create_array("a", shape=(4, 24), chunks=(1, 12), **kw)
    assert DirectChunks.from_metadata(str(tmp_path / "s" / "a"), "a") is None
    assert store_mod.direct_chunks(str(tmp_path / "s"), 3, "a") is None


def test_a_store_url_or_zarr_2_is_left_to_zarr(tmp_path):
    make_pair(tmp_path, (1, 12), (1, 12), "float64", None)
    root = str(tmp_path / "direct")
    assert store_mod.direct_chunks(root, 3, "a") is not None
    assert store_mod.direct_chunks(f"file://{root}", 3, "a") is None
    assert store_mod.direct_chunks(root, 2, "a") is None


# -- a whole run ---------------------------------------------------------------------------------
def _array_files(store) -> dict[str, bytes]:
    """Every file of every array of a store (chunks and metadata), by relative path; not the
    manifest, its journal or the template marker (timings)."""
    out = {}
    for dirpath, _dirs, files in os.walk(store):
        for name in files:
            rel = os.path.relpath(os.path.join(dirpath, name), store)
            if rel.startswith(("manifest.json", store_mod.TEMPLATE_DONE)):
                continue
            with open(os.path.join(dirpath, name), "rb") as f:
                out[rel] = f.read()
    return out


@pytest.fixture
def zarr_writes(monkeypatch):
    """The array paths zarr's region writes of values went to (not the clears of a series to
    NaN before it is recomputed, which the driver leaves to zarr)."""
    paths: list[str] = []
    real = zarr.Array.__setitem__

    def setitem(self, key, value):
        if not (np.ndim(value) == 0 and np.isnan(value)):
            paths.append(self.path)
        return real(self, key, value)

    monkeypatch.setattr(zarr.Array, "__setitem__", setitem)
    return paths


def test_a_runs_store_is_the_store_zarr_writes(tmp_path, monkeypatch, zarr_writes):
    """A store built, then grown by a region (its totals then in two region chunks, every span's
    write covering both) with cubes, written directly, and the same written by zarr alone: every
    file of every array the same bytes; the direct one written without a region write of zarr
    into the totals or a cube."""
    north = write_mask(tmp_path, ("north",))
    both = write_mask(tmp_path, ("north", "box"))
    state = {("A", "npp"): (2000, 2, "v1"), ("B", "npp"): (2000, 3, "v1")}
    cat = write_release(tmp_path, "r0", state)
    state[("C", "npp")] = (2001, 1, "v1")
    grown_cat = write_release(tmp_path, "r1", state)
    stores = {}
    for direct in (True, False):
        monkeypatch.setattr(store_mod, "DIRECT_WRITES", direct)
        zarr_writes.clear()
        path = tmp_path / f"direct-{direct}.zarr"
        assert run(cat, north, str(path), target=TARGET, progress=False).ok
        s = run(grown_cat, both, str(path), target=TARGET, progress=False)
        assert s.ok and s.grew == {"members": ["TEST.C.hist.r1"], "regions": ["box"]}
        data_writes = [p for p in zarr_writes if p in ("totals", "cubes/npp/npp")]
        assert (data_writes == []) == direct, data_writes
        stores[direct] = _array_files(path)
    got, want = stores[True], stores[False]
    assert sorted(got) == sorted(want)
    differ = [k for k in want if got[k] != want[k]]
    assert differ == []
    totals = [k for k in got if k.startswith("totals/c/")]
    assert {k.split("/")[4] for k in totals} == {"0", "1"}  # both region chunks stored
    assert len(totals) == 2 * (2 + 3 + 1) and any(k.startswith("cubes/npp/npp/c/") for k in got)
