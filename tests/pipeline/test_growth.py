"""A store that grows (issue 16, point 4): members, variables, regions and months are added to an
existing store; done series are neither recomputed nor rewritten; new versions replace old ones;
the manifest keeps the history; what a store cannot take is refused naming the setting."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest

from gridflux.errors import StoreError
from gridflux.pipeline.runner import run
from gridflux.pipeline.store import Store

from .growth_archive import TARGET, assert_same_store, chunk_hashes, write_mask, write_release


def _run(cat, mask, store, **kw):
    kw.setdefault("target", TARGET)
    return run(cat, mask, str(store), progress=False, **kw)


def _member_chunks(store, index: int, prefix: str = "") -> dict[str, str]:
    """Chunk files of member ``index`` (cubes and totals, paths starting with ``prefix``) ->
    sha1."""
    out = {}
    for rel, h in chunk_hashes(store).items():
        parts = rel.split("/")
        if parts[0] in ("totals", "cubes") and "c" in parts and rel.startswith(prefix):
            if int(parts[parts.index("c") + 1]) == index:
                out[rel] = h
    return out


def test_adding_a_member_computes_only_it_and_leaves_the_others_chunks(tmp_path):
    mask = write_mask(tmp_path)
    r1 = write_release(tmp_path, "r1", {("A", "npp"): (2000, 2, "v1")})
    r2 = write_release(
        tmp_path, "r2", {("A", "npp"): (2000, 2, "v1"), ("B", "npp"): (2000, 2, "v1")}
    )
    grown = tmp_path / "grown.zarr"
    assert _run(r1, mask, grown).ok
    before = _member_chunks(grown, 0)
    assert len(before) >= 3  # a totals chunk and cube chunks
    s = _run(r2, mask, grown)
    assert s.done == ["TEST.B.hist.r1/npp"] and s.skipped == ["TEST.A.hist.r1/npp"]
    assert s.grew == {"members": ["TEST.B.hist.r1"]}
    assert _member_chunks(grown, 0) == before  # byte-identical, not rewritten
    once = tmp_path / "once.zarr"
    _run(r2, mask, once)
    assert_same_store(grown, once)
    hist = Store(grown).read_manifest()["history"]
    assert [h["added"] for h in hist] == [
        [{"series": "TEST.A.hist.r1/npp", "version": "v1"}],
        [{"series": "TEST.B.hist.r1/npp", "version": "v1"}],
    ]


def test_months_at_both_ends_a_new_version_a_variable_and_a_region(tmp_path):
    north = write_mask(tmp_path, ("north",))
    both = write_mask(tmp_path, ("north", "box"))
    r1 = write_release(
        tmp_path, "r1", {("A", "npp"): (2000, 2, "v1"), ("B", "npp"): (2000, 2, "v1")}
    )
    # A: a new version that starts two years earlier and ends one year later; B unchanged
    r2 = write_release(
        tmp_path, "r2", {("A", "npp"): (1998, 5, "v2"), ("B", "npp"): (2000, 2, "v1")}
    )
    grown = tmp_path / "grown.zarr"
    _run(r1, north, grown)
    b_cubes = Counter(_member_chunks(grown, 1, "cubes").values())
    s = _run(r2, north, grown)
    assert s.done == ["TEST.A.hist.r1/npp"] and s.skipped == ["TEST.B.hist.r1/npp"]
    assert s.grew == {"months_before": 24, "months_after": 12, "axis": "1998-01..2002-12"}
    # B's cube chunks moved two chunks later with their bytes (its totals chunks too, compared
    # by label in tests/pipeline/test_growth_chunks.py)
    assert Counter(_member_chunks(grown, 1, "cubes").values()) == b_cubes
    hist = Store(grown).read_manifest()["history"][-1]
    assert hist["replaced"] == [{"series": "TEST.A.hist.r1/npp", "from": "v1", "to": "v2"}]
    once = tmp_path / "once.zarr"
    _run(r2, north, once)
    assert_same_store(grown, once)

    # a variable and a region: the stored series are computed for the new region only, rh whole
    r3 = write_release(
        tmp_path,
        "r3",
        {
            ("A", "npp"): (1998, 5, "v2"),
            ("B", "npp"): (2000, 2, "v1"),
            ("B", "rh"): (2001, 1, "v1"),
        },
    )
    s = _run(r3, both, grown)
    assert s.ok and sorted(s.done) == [
        "TEST.A.hist.r1/npp",
        "TEST.B.hist.r1/npp",
        "TEST.B.hist.r1/rh",
    ]
    assert s.grew == {"variables": ["rh"], "regions": ["box"]}
    assert sorted(s.regions_only) == ["TEST.A.hist.r1/npp", "TEST.B.hist.r1/npp"]
    once3 = tmp_path / "once3.zarr"
    _run(r3, both, once3)
    assert_same_store(grown, once3)


def test_what_a_store_cannot_take_is_refused_naming_the_setting(tmp_path):
    from gridflux.fields.masks import RegionMask

    north = write_mask(tmp_path, ("north",))
    both = write_mask(tmp_path, ("north", "box"))
    r1 = write_release(tmp_path, "r1", {("A", "npp"): (2000, 2, "v1")})
    store = tmp_path / "s.zarr"
    _run(r1, both, store)
    before = chunk_hashes(store)
    with pytest.raises(StoreError, match="target-grid"):
        _run(r1, both, store, target="4")
    with pytest.raises(StoreError, match="chunk-months"):
        _run(r1, both, store, chunk_months=24)
    with pytest.raises(StoreError, match="zarr-format"):
        _run(r1, both, store, zarr_format=2)
    with pytest.raises(StoreError, match="cubes"):
        _run(r1, both, store, cubes=False)
    with pytest.raises(StoreError, match=r"lacks.*--mask"):
        _run(r1, north, store)
    m = RegionMask.from_file(both)
    other = RegionMask(m.names, m.fractions * np.array([1.0, 0.5])[:, None, None], m.grid)
    with pytest.raises(StoreError, match=r"(another mask|region 'box'.*geometry).*--mask"):
        _run(r1, other, store)
    assert chunk_hashes(store) == before  # nothing written


def test_series_not_in_the_catalogs_are_kept_unless_pruned(tmp_path):
    mask = write_mask(tmp_path)
    r1 = write_release(
        tmp_path, "r1", {("A", "npp"): (2000, 2, "v1"), ("B", "npp"): (2000, 2, "v1")}
    )
    r2 = write_release(tmp_path, "r2", {("A", "npp"): (2000, 2, "v1")})
    store = tmp_path / "s.zarr"
    _run(r1, mask, store)
    s = _run(r2, mask, store)
    assert s.not_in_catalogs == ["TEST.B.hist.r1/npp"] and not s.pruned
    assert "TEST.B.hist.r1/npp" in Store(store).read_manifest()["series"]
    s = _run(r2, mask, store, prune=True)
    assert s.pruned == ["TEST.B.hist.r1/npp"]
    assert s.grew == {"dropped_members": ["TEST.B.hist.r1"]}
    man = Store(store).read_manifest()
    assert "TEST.B.hist.r1/npp" not in man["series"]
    assert man["history"][-1]["pruned"] == ["TEST.B.hist.r1/npp"]
    once = tmp_path / "once.zarr"
    _run(r2, mask, once)
    assert_same_store(store, once)


def test_a_second_growth_run_on_a_store_in_use_is_refused(tmp_path):
    mask = write_mask(tmp_path)
    r1 = write_release(tmp_path, "r1", {("A", "npp"): (2000, 2, "v1")})
    r2 = write_release(
        tmp_path, "r2", {("A", "npp"): (2000, 2, "v1"), ("B", "npp"): (2000, 2, "v1")}
    )
    store = tmp_path / "s.zarr"
    _run(r1, mask, store)
    st = Store(store)
    st.acquire_lock()  # a growth run in progress
    try:
        with pytest.raises(StoreError, match="in use"):
            _run(r2, mask, store)
    finally:
        st.release_lock()
    manifest = json.loads((store / "manifest.json").read_text())
    assert manifest["series"].keys() == {"TEST.A.hist.r1/npp"}


_KILL_IN_SWAP = """
import os, signal
from gridflux.pipeline.runner import run
replace = os.replace
def kill_before_second_rename(src, dst):
    if str(src).endswith(".gridflux-next"):  # the old store is already out of the way
        os.kill(os.getpid(), signal.SIGKILL)
    return replace(src, dst)
os.replace = kill_before_second_rename
run({cat!r}, {mask!r}, {store!r}, target={target!r}, progress=False)
"""


def test_a_driver_killed_between_the_renames_of_a_rebuild_is_finished_by_the_next_run(tmp_path):
    import signal
    import subprocess
    import sys

    mask = write_mask(tmp_path)
    r1 = write_release(tmp_path, "r1", {("A", "npp"): (2000, 2, "v1")})
    r2 = write_release(
        tmp_path, "r2", {("A", "npp"): (1999, 3, "v2"), ("B", "npp"): (2000, 2, "v1")}
    )
    store = tmp_path / "s.zarr"
    _run(r1, mask, store)
    code = _KILL_IN_SWAP.format(cat=r2, mask=mask, store=str(store), target=TARGET)
    proc = subprocess.run([sys.executable, "-c", code], timeout=120)
    assert proc.returncode == -signal.SIGKILL
    assert not store.exists() and (tmp_path / "s.zarr.gridflux-next").exists()
    s = _run(r2, mask, store)
    assert s.ok and not (tmp_path / "s.zarr.gridflux-old").exists()
    once = tmp_path / "once.zarr"
    _run(r2, mask, once)
    assert_same_store(store, once)
