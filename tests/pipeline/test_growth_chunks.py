"""Done series are neither recomputed nor rewritten (issue 16, point 4): every stored chunk of a
series that a growth step leaves alone keeps its bytes -- its totals chunks (the store's first
regions, or regions added later, and ``chunk-months`` months each) and its cube chunks --
whether the store gains members, variables, months at the end (in place: the file is not even
rewritten), or months at the start (the chunk moves by whole chunks to a later index, its file
linked), or regions (the series are computed for the new region only: its totals land in new
chunks, see the last step).

Chunks are compared by label (member, variable, regions, first month of the chunk), since a
chunk's index changes when the axis starts earlier.
"""

from __future__ import annotations

import hashlib
import os

import numpy as np
import pytest

from gridflux.pipeline.runner import run
from gridflux.pipeline.store import Store, open_store

from .growth_archive import (
    STORE_WRITES,
    TARGET,
    assert_same_store,
    killer_script,
    run_call,
    write_mask,
    write_release,
)


def _run(cat, mask, store, **kw):
    return run(cat, mask, str(store), target=TARGET, progress=False, **kw)


def labelled_chunks(store) -> dict[tuple, tuple[str, int, int]]:
    """Every chunk file of totals and cubes by label -> (sha1, inode, mtime_ns).

    Totals: ``("totals", member, variable, regions of the chunk joined by "+", first month)``;
    cubes: ``("cube", variable, member, first month, lat tile, lon tile)``."""
    sig = Store(store).signature()
    members, variables, regions = sig["members"], sig["variables"], sig["regions"]
    months, tc = sig["months"], int(sig["time_chunk"])
    out: dict[tuple, tuple[str, int, int]] = {}

    def walk(array: str):
        base = os.path.join(store, array, "c")
        for dirpath, _dirs, files in os.walk(base):
            for f in files:
                path = os.path.join(dirpath, f)
                idx = tuple(int(p) for p in os.path.relpath(path, base).split(os.sep))
                with open(path, "rb") as fh:
                    digest = hashlib.sha1(fh.read()).hexdigest()
                st = os.stat(path)
                yield idx, (digest, st.st_ino, st.st_mtime_ns)

    import zarr

    rc = int(zarr.open_array(str(store), path="totals", mode="r").chunks[2])
    for (m, v, r, t), info in walk("totals"):
        chunk_regions = "+".join(regions[r * rc : (r + 1) * rc])
        out[("totals", members[m], variables[v], chunk_regions, months[t * tc])] = info
    for var in sig["cube_variables"]:
        for (m, t, y, x), info in walk(os.path.join("cubes", var, var)):
            out[("cube", var, members[m], months[t * tc], y, x)] = info
    return out


def _of(chunks: dict, member: str, variable: str | None = None) -> dict:
    """The chunks of one member (and variable)."""
    out = {}
    for label, info in chunks.items():
        m, v = (label[1], label[2]) if label[0] == "totals" else (label[2], label[1])
        if m == member and variable in (None, v):
            out[label] = info
    return out


def _bytes(chunks: dict) -> dict:
    return {k: v[0] for k, v in chunks.items()}


def test_every_stored_chunk_keeps_its_bytes_through_each_kind_of_growth(tmp_path):
    north = write_mask(tmp_path, ("north",))
    both = write_mask(tmp_path, ("north", "box"))
    A, B, C = "TEST.A.hist.r1", "TEST.B.hist.r1", "TEST.C.hist.r1"
    state = {("A", "npp"): (2000, 2, "v1"), ("B", "npp"): (2000, 2, "v1")}
    grown = tmp_path / "grown.zarr"
    assert _run(write_release(tmp_path, "r0", state), north, grown).ok
    before = labelled_chunks(grown)
    b_npp = _of(before, B, "npp")
    # a totals chunk per region and year, cube chunks per year
    assert sum(1 for k in b_npp if k[0] == "totals") == 2 and len(b_npp) > 2

    steps = [
        # (name, new state entries, mask, what the step must leave alone, in place)
        ("member", {("C", "npp"): (2000, 1, "v1")}, north, [(A, None), (B, None)], True),
        (
            "variable",
            {("B", "rh"): (2000, 2, "v1")},
            north,
            [(A, None), (B, None), (C, None)],
            True,
        ),
        ("end", {("A", "npp"): (2000, 4, "v2")}, north, [(B, None), (C, None)], True),
        ("start", {("C", "npp"): (1998, 3, "v2")}, north, [(A, None), (B, None)], False),
    ]
    for i, (name, change, mask, kept, in_place) in enumerate(steps):
        state.update(change)
        s = _run(write_release(tmp_path, f"r{i + 1}", state), mask, grown)
        assert s.ok, (name, s.failed)
        after = labelled_chunks(grown)
        for member, variable in kept:
            old = _of(before, member, variable)
            assert old, (name, member)
            new = {k: after.get(k) for k in old}
            assert _bytes(new) == _bytes(old), f"{name}: chunks of {member} changed"
            if in_place:  # not even rewritten: the same file
                assert new == old, f"{name}: chunks of {member} rewritten"
        assert len(s.skipped) == len(state) - len(change), (name, s.done)
        before = after
    assert Store(grown).read_manifest()["history"][-1]["grew"]["months_before"] == 24
    north_before = open_store(grown).totals.sel(region="north").load()

    # a new region: every series is computed for it alone (not recomputed): its totals land in
    # new region chunks, and every stored chunk, totals and cube, is left as it was (not even
    # rewritten); the stored region's values are the same to the bit
    s = _run(write_release(tmp_path, "r9", state), both, grown)
    assert s.ok and len(s.done) == len(state) and s.grew == {"regions": ["box"]}
    assert sorted(s.regions_only) == sorted(s.done)
    history = Store(grown).read_manifest()["history"][-1]
    assert {e["series"] for e in history["regions_added"]} == set(s.done)
    assert all(e["regions"] == ["box"] for e in history["regions_added"])
    assert not history["recomputed"] and not history["added"]
    after = labelled_chunks(grown)
    assert {k: after.get(k) for k in before} == before, "a stored chunk was rewritten"
    new_chunks = {k for k in after if k not in before}
    assert new_chunks and all(k[0] == "totals" and k[3] == "box" for k in new_chunks)
    ds = open_store(grown)
    north = ds.totals.sel(region="north").values
    np.testing.assert_array_equal(north, north_before.reindex_like(ds.totals.sel(region="north")))

    once = tmp_path / "once.zarr"
    assert _run(write_release(tmp_path, "r9", state), both, once).ok
    assert_same_store(grown, once)
    # built once, the store has the same cube chunks with the same bytes, by label (its totals
    # hold both regions in a chunk: a store keeps the regions per chunk it was created with)
    cubes = {k: v for k, v in after.items() if k[0] == "cube"}
    assert _bytes({k: v for k, v in labelled_chunks(once).items() if k[0] == "cube"}) == _bytes(
        cubes
    )


def test_a_layout_1_store_is_rebuilt_once_then_grows_in_place(tmp_path, monkeypatch):
    import gridflux.pipeline.store as store_mod

    mask = write_mask(tmp_path, ("north",))
    both = write_mask(tmp_path, ("north", "box"))
    state = {("A", "npp"): (2000, 2, "v1"), ("B", "npp"): (2000, 2, "v1")}
    grown = tmp_path / "grown.zarr"
    with monkeypatch.context() as m:  # a store of layout 1: one totals chunk per series
        m.setattr(store_mod, "totals_chunks", lambda t: (1, 1, len(t.regions), len(t.months)))
        assert _run(write_release(tmp_path, "r0", state), mask, grown).ok
    assert not Store(grown).grows_in_place(12)
    state[("A", "npp")] = (2000, 3, "v2")  # a year more at the end: rebuilt into layout 2
    s = _run(write_release(tmp_path, "r1", state), mask, grown)
    assert s.ok and s.skipped == ["TEST.B.hist.r1/npp"] and Store(grown).grows_in_place(12)
    before = labelled_chunks(grown)
    state[("C", "npp")] = (2000, 1, "v1")  # then in place
    cat = write_release(tmp_path, "r2", state)
    s = _run(cat, both, grown)
    assert s.ok and s.grew == {"members": ["TEST.C.hist.r1"], "regions": ["box"]}
    after = labelled_chunks(grown)
    cubes = {k: v for k, v in before.items() if k[0] == "cube"}
    # the new region is computed alone for the stored series: their cube chunks are not rewritten
    assert {k: after.get(k) for k in cubes} == cubes
    assert sorted(s.regions_only) == ["TEST.A.hist.r1/npp", "TEST.B.hist.r1/npp"]
    once = tmp_path / "once.zarr"
    assert _run(cat, both, once).ok
    assert_same_store(grown, once)


# the driver kills itself (SIGKILL) at the n-th zarr or direct chunk write or resize of an in-place
# growth (a member, a variable, a region and a year at the end at once): killer_script
@pytest.mark.parametrize(
    "at,again",
    [(n, "same") for n in (1, 5, 14, 26, 40)] + [(2, "old"), (14, "old")],
)
def test_an_in_place_growth_killed_at_any_write_is_redone_by_the_next_run(tmp_path, at, again):
    """The next run is the same growth (``same``), or a run of the store's old catalog and mask
    (``old``): it grows nothing, and the arrays the killed growth resized are cut back."""
    import signal
    import subprocess
    import sys

    from .growth_archive import TARGET

    north = write_mask(tmp_path, ("north",))
    both = write_mask(tmp_path, ("north", "box"))
    state = {("A", "npp"): (2000, 2, "v1")}
    grown = tmp_path / "grown.zarr"
    assert _run(write_release(tmp_path, "r0", state), north, grown).ok
    state.update({("A", "npp"): (2000, 3, "v2"), ("B", "npp"): (2000, 1, "v1")})
    state[("A", "rh")] = (2000, 2, "v1")
    cat = write_release(tmp_path, "r1", state)
    code = killer_script(at, run_call(cat, both, str(grown), TARGET), STORE_WRITES[:3])
    proc = subprocess.run([sys.executable, "-c", code], timeout=300)
    assert proc.returncode == -signal.SIGKILL
    if again == "old":
        cat, both = write_release(tmp_path, "r0", {("A", "npp"): (2000, 2, "v1")}), north
    assert _run(cat, both, grown).ok
    once = tmp_path / "once.zarr"
    assert _run(cat, both, once).ok
    assert_same_store(grown, once)


# the driver kills itself (SIGKILL) right after the grid's mask was resized for a new region,
# before the region's row is written
_KILL_AFTER_MASK_RESIZE = """
import os, signal, zarr
from gridflux.pipeline.runner import run
resize = zarr.Array.resize
def hooked(self, *a, **k):
    out = resize(self, *a, **k)
    if self.path.endswith("mask"):
        os.kill(os.getpid(), signal.SIGKILL)
    return out
zarr.Array.resize = hooked
run({cat!r}, {mask!r}, {store!r}, target={target!r}, progress=False)
"""


def test_a_region_added_in_place_killed_after_the_masks_resize_gets_its_mask_row(tmp_path):
    import signal
    import subprocess
    import sys

    from .growth_archive import TARGET

    state = {("A", "npp"): (2000, 1, "v1")}
    grown = tmp_path / "grown.zarr"
    assert _run(write_release(tmp_path, "r0", state), write_mask(tmp_path, ("north",)), grown).ok
    cat, both = write_release(tmp_path, "r1", state), write_mask(tmp_path, ("north", "box"))
    code = _KILL_AFTER_MASK_RESIZE.format(cat=cat, mask=both, store=str(grown), target=TARGET)
    proc = subprocess.run([sys.executable, "-c", code], timeout=300)
    assert proc.returncode == -signal.SIGKILL
    assert _run(cat, both, grown).ok
    once = tmp_path / "once.zarr"
    assert _run(cat, both, once).ok
    assert_same_store(grown, once)  # the new region's row of the grid's mask included
