"""The cube compressor's default (``store.cube-compressor: auto``): lz4 for a new store, and the
cube chunks' cells (whole rows, up to 720 columns); a store made with another codec (zstd, the
default before) and other tiles (90 x 180 cells, the layout before) keeps its own through resumes
and every kind of growth: new members and variables (arrays resized or added in place) and a new
region and months (the layout written anew, its cube chunks linked with their bytes)."""

from __future__ import annotations

import zarr

from gridflux import config
from gridflux.pipeline import store as store_mod
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


def _cube_tiles(store) -> dict[str, tuple[int, int]]:
    root = zarr.open_group(str(store), mode="r")
    return {
        var: tuple(root[f"cubes/{var}/{var}"].chunks[2:])
        for var in sorted(root["cubes"].group_keys())
    }


def test_a_new_store_gets_lz4(tmp_path):
    mask = write_mask(tmp_path)
    r1 = write_release(tmp_path, "r1", {("A", "npp"): (2000, 1, "v1")})
    assert _run(r1, mask, tmp_path / "s.zarr").ok
    assert _cube_codecs(tmp_path / "s.zarr") == {"npp": ["lz4"]}
    # the 2 deg target clipped to the mask's boxes: whole rows of the clipped grid per chunk
    root = zarr.open_group(str(tmp_path / "s.zarr"), mode="r")
    nlat, nlon = root["grid/lat"].shape[0], root["grid/lon"].shape[0]
    assert _cube_tiles(tmp_path / "s.zarr") == {"npp": (min(nlat, 90), min(nlon, 720))}


def test_an_older_store_keeps_its_codec_and_tiles_through_every_growth(tmp_path, monkeypatch):
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
    with monkeypatch.context() as m, config.set_options(**{"store.cube-compressor": "zstd"}):
        m.setattr(store_mod, "CUBE_TILE_LON", 7)  # tiles narrower than the clipped grid
        assert _run(r1, north, grown).ok
    old_tiles = _cube_tiles(grown)["npp"]
    assert old_tiles[1] == 7
    before = chunk_hashes(grown)
    s = _run(r1, north, grown)  # resumed under the default: not refused, nothing rewritten
    assert s.ok and s.skipped == ["TEST.A.hist.r1/npp"]
    assert {k: v for k, v in chunk_hashes(grown).items() if "/c/" in k} == {
        k: v for k, v in before.items() if "/c/" in k
    }
    s = _run(r2, north, grown)  # a member and a variable: resized and added in place
    assert s.ok and s.grew == {"members": ["TEST.B.hist.r1"], "variables": ["rh"]}
    assert _cube_codecs(grown) == {"npp": ["zstd"], "rh": ["zstd"]}
    assert _cube_tiles(grown) == {"npp": old_tiles, "rh": old_tiles}
    s = _run(r3, both, grown)  # a region and months: a new layout, the chunks linked
    assert s.ok and s.grew["regions"] == ["box"]
    assert _cube_codecs(grown) == {"npp": ["zstd"], "rh": ["zstd"]}
    assert _cube_tiles(grown) == {"npp": old_tiles, "rh": old_tiles}
    once = tmp_path / "once.zarr"
    assert _run(r3, both, once).ok
    assert _cube_codecs(once) == {"npp": ["lz4"], "rh": ["lz4"]}
    assert _cube_tiles(once)["npp"][1] > 7
    assert_same_store(grown, once)  # the same values, bit for bit, whatever the codec


def test_a_cube_declaration_killed_midway_is_declared_again(tmp_path):
    """A run killed while it declared a new variable's cube leaves its group without the array or
    a coordinate (and without values): the next run declares it again whole."""
    mask = write_mask(tmp_path)
    r1 = write_release(tmp_path, "r1", {("A", "npp"): (2000, 1, "v1")})
    r2 = write_release(
        tmp_path, "r2", {("A", "npp"): (2000, 1, "v1"), ("A", "rh"): (2000, 1, "v1")}
    )
    for leftover in ("time", "rh"):
        grown = tmp_path / f"grown-{leftover}.zarr"
        assert _run(r1, mask, grown).ok
        group = zarr.open_group(str(grown), mode="r+")
        group.create_array(f"cubes/rh/{leftover}", shape=(2,), dtype="f8")  # and nothing else
        s = _run(r2, mask, grown)
        assert s.ok and s.done == ["TEST.A.hist.r1/rh"]
    once = tmp_path / "once.zarr"
    assert _run(r2, mask, once).ok
    assert_same_store(grown, once)
