"""The cube compressor's default (``store.cube-compressor: auto``): lz4 for a new store, while a
store made with another codec (zstd, the default before) keeps its own through resumes and every
kind of growth: new members and variables (arrays resized or added in place) and a new region and
months (the layout written anew, its cube chunks linked with their bytes)."""

from __future__ import annotations

import zarr

from gridflux import config
from gridflux.pipeline.runner import run

from .growth_archive import TARGET, assert_same_store, chunk_hashes, write_mask, write_release


def _run(cat, mask, store, **kw):
    return run(cat, mask, str(store), progress=False, target=TARGET, **kw)


def _cube_codecs(store) -> dict[str, list[str]]:
    root = zarr.open_group(str(store), mode="r")
    out = {}
    for var in sorted(root["cubes"].group_keys()):
        arr = root[f"cubes/{var}/{var}"]
        out[var] = [c.to_dict()["configuration"]["cname"] for c in arr.compressors]
    return out


def test_a_new_store_gets_lz4(tmp_path):
    mask = write_mask(tmp_path)
    r1 = write_release(tmp_path, "r1", {("A", "npp"): (2000, 1, "v1")})
    assert _run(r1, mask, tmp_path / "s.zarr").ok
    assert _cube_codecs(tmp_path / "s.zarr") == {"npp": ["lz4"]}


def test_a_zstd_store_keeps_zstd_through_every_growth(tmp_path):
    north = write_mask(tmp_path, ("north",))
    both = write_mask(tmp_path, ("north", "box"))
    r1 = write_release(tmp_path, "r1", {("A", "npp"): (2000, 2, "v1")})
    r2 = write_release(
        tmp_path,
        "r2",
        {
            ("A", "npp"): (2000, 2, "v1"),
            ("B", "npp"): (2000, 2, "v1"),
            ("B", "rh"): (2001, 1, "v1"),
        },
    )
    r3 = write_release(
        tmp_path,
        "r3",
        {
            ("A", "npp"): (1998, 5, "v1"),
            ("B", "npp"): (2000, 2, "v1"),
            ("B", "rh"): (2001, 1, "v1"),
        },
    )
    grown = tmp_path / "grown.zarr"
    with config.set_options(**{"store.cube-compressor": "zstd"}):
        assert _run(r1, north, grown).ok
    before = chunk_hashes(grown)
    s = _run(r1, north, grown)  # resumed under the default: not refused, nothing rewritten
    assert s.ok and s.skipped == ["TEST.A.hist.r1/npp"]
    assert {k: v for k, v in chunk_hashes(grown).items() if "/c/" in k} == {
        k: v for k, v in before.items() if "/c/" in k
    }
    s = _run(r2, north, grown)  # a member and a variable: resized and added in place
    assert s.ok and s.grew == {"members": ["TEST.B.hist.r1"], "variables": ["rh"]}
    assert _cube_codecs(grown) == {"npp": ["zstd"], "rh": ["zstd"]}
    s = _run(r3, both, grown)  # a region and months: a new layout, the chunks linked
    assert s.ok and s.grew["regions"] == ["box"]
    assert _cube_codecs(grown) == {"npp": ["zstd"], "rh": ["zstd"]}
    once = tmp_path / "once.zarr"
    assert _run(r3, both, once).ok
    assert _cube_codecs(once) == {"npp": ["lz4"], "rh": ["lz4"]}
    assert_same_store(grown, once)  # the same values, bit for bit, whatever the codec
