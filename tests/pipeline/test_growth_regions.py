"""A store that gains regions computes only them for its done series (issue 16, points 4 and 5).

The series are not recomputed (the summary's ``regions_only``, the manifest's history; their cube
chunks and the chunks of their stored regions keep their bytes, inode and mtime: not even
rewritten), the new regions' totals land in new region chunks (or, once the store's first new
region chunk has room, are merged into it with the values stored there kept), and the store is
bit-identical (every array, by label) to the store built once with every region. A driver killed
with SIGKILL in a region-only growth leaves a store the next run finishes to the same bits.
"""

from __future__ import annotations

import signal
import subprocess
import sys

import numpy as np
import pytest

from gridflux.pipeline import runner as runner_mod
from gridflux.pipeline.runner import run
from gridflux.pipeline.store import Store, open_store

from .growth_archive import (
    TARGET,
    assert_same_store,
    killer_script,
    run_call,
    write_mask,
    write_release,
)
from .test_growth_chunks import labelled_chunks

STATE = {("A", "npp"): (2000, 2, "v1"), ("B", "npp"): (2000, 2, "v1"), ("B", "rh"): (2001, 1, "v1")}


def _run(cat, mask, store, **kw):
    return run(cat, mask, str(store), target=TARGET, progress=False, **kw)


def _totals_bits(store) -> dict[tuple[str, str, str], np.ndarray]:
    ds = open_store(store)
    out = {}
    for m in ds.member.values.tolist():
        for v in ds.variable.values.tolist():
            for r in ds.region.values.tolist():
                vals = ds.totals.sel(member=m, variable=v, region=r).values
                out[(m, v, r)] = np.ascontiguousarray(vals, dtype=np.float64).view(np.uint64)
    return out


def test_regions_added_one_by_one_compute_only_them_and_keep_every_stored_chunk(tmp_path):
    grown = tmp_path / "grown.zarr"
    cat = write_release(tmp_path, "r0", STATE)
    assert _run(cat, write_mask(tmp_path, ("north", "box")), grown).ok  # 2 regions per chunk
    before = labelled_chunks(grown)
    bits_before = _totals_bits(grown)

    # "east": a new region chunk (rows 2-3 of the region axis, "west" to come in its second row)
    s = _run(cat, write_mask(tmp_path, ("north", "box", "east")), grown)
    assert s.ok and s.grew == {"regions": ["east"]}
    assert sorted(s.done) == sorted(s.regions_only) and len(s.done) == len(STATE)
    assert not s.skipped
    history = Store(grown).read_manifest()["history"][-1]
    assert [e["regions"] for e in history["regions_added"]] == [["east"]] * len(STATE)
    assert not history["recomputed"] and not history["added"] and not history["replaced"]
    after = labelled_chunks(grown)
    assert {k: after.get(k) for k in before} == before, "a stored chunk was rewritten"
    new = {k for k in after if k not in before}
    assert new and all(k[0] == "totals" and k[3] == "east" for k in new), new
    bits = _totals_bits(grown)
    assert all(np.array_equal(bits[k], b) for k, b in bits_before.items())
    entries = Store(grown).read_manifest()["series"]
    assert all(e["regions"] == ["north", "box", "east"] for e in entries.values())

    # "west" shares the chunk of "east": it is merged in, "east" keeps its values; every other
    # chunk stays as it was
    east_before = {k: v for k, v in _totals_bits(grown).items() if k[2] == "east"}
    before = after
    all4 = write_mask(tmp_path, ("north", "box", "east", "west"))
    s = _run(cat, all4, grown)
    assert s.ok and s.grew == {"regions": ["west"]} and len(s.regions_only) == len(STATE)
    after = labelled_chunks(grown)
    kept = {k: v for k, v in before.items() if k[3] != "east"}
    assert {k: after.get(k) for k in kept} == kept, "a stored chunk was rewritten"
    assert any(k[3] == "east+west" for k in after)
    bits = _totals_bits(grown)
    assert all(np.array_equal(bits[k], b) for k, b in east_before.items())
    assert all(
        np.isfinite(
            open_store(grown)
            .totals.sel(region="west", member=m, variable="npp")
            .sel(time=slice("2000-01", "2001-12"))
            .values
        ).all()
        for m in ("TEST.A.hist.r1", "TEST.B.hist.r1")
    )

    # a run with nothing new skips every series
    s = _run(cat, all4, grown)
    assert s.ok and sorted(s.skipped) == sorted(s.done + s.skipped) and not s.done

    once = tmp_path / "once.zarr"
    assert _run(cat, all4, once).ok
    assert_same_store(grown, once)


def test_a_region_a_member_and_a_new_version_in_one_run(tmp_path):
    """Only the series done with unchanged inputs are computed for the new region alone: the new
    member and the new version are computed whole."""
    grown = tmp_path / "grown.zarr"
    assert _run(write_release(tmp_path, "r0", STATE), write_mask(tmp_path, ("north",)), grown).ok
    state = dict(STATE)
    state[("C", "npp")] = (2000, 1, "v1")
    state[("A", "npp")] = (2000, 2, "v2")
    cat, both = write_release(tmp_path, "r1", state), write_mask(tmp_path, ("north", "box"))
    s = _run(cat, both, grown)
    assert s.ok and s.grew == {"members": ["TEST.C.hist.r1"], "regions": ["box"]}
    assert sorted(s.regions_only) == ["TEST.B.hist.r1/npp", "TEST.B.hist.r1/rh"]
    assert len(s.done) == 4
    history = Store(grown).read_manifest()["history"][-1]
    assert [e["series"] for e in history["added"]] == ["TEST.C.hist.r1/npp"]
    assert [e["series"] for e in history["replaced"]] == ["TEST.A.hist.r1/npp"]
    once = tmp_path / "once.zarr"
    assert _run(cat, both, once).ok
    assert_same_store(grown, once)


def test_the_drivers_write_of_a_region_only_series_keeps_its_stored_regions(tmp_path, monkeypatch):
    """Where the driver writes the totals (not the workers), a series computed for a new region
    only is merged with its stored totals before the write."""
    monkeypatch.setattr(runner_mod, "WORKER_TOTALS", False)
    grown = tmp_path / "grown.zarr"
    cat = write_release(tmp_path, "r0", STATE)
    assert _run(cat, write_mask(tmp_path, ("north",)), grown).ok
    bits_before = _totals_bits(grown)
    both = write_mask(tmp_path, ("north", "box"))
    s = _run(cat, both, grown)
    assert s.ok and len(s.regions_only) == len(STATE)
    bits = _totals_bits(grown)
    assert all(np.array_equal(bits[k], b) for k, b in bits_before.items())
    once = tmp_path / "once.zarr"
    assert _run(cat, both, once).ok
    assert_same_store(grown, once)


# the driver kills itself (SIGKILL) at the n-th zarr or direct chunk write, resize, or manifest
# write, of a growth by a region (in-process workers: their totals writes count too; a merge into
# a stored chunk counts twice: the direct writer declines it, then zarr writes it): killer_script
@pytest.mark.parametrize(
    "added,at",
    # a growth by a region makes ~32 writes: the store's growth (1-28: resizes, coordinates, the
    # manifest), then one totals write per series (29-31: the new region's rows), the manifest
    [("east", n) for n in (1, 21, 28, 30, 32)] + [("west", n) for n in (30, 31)],
)
def test_a_region_only_growth_killed_at_a_write_is_finished_by_the_next_run(tmp_path, added, at):
    """Killed while adding "east" (a new region chunk), or "west" (merged into the chunk that
    holds "east")."""
    grown = tmp_path / "grown.zarr"
    cat = write_release(tmp_path, "r0", STATE)
    assert _run(cat, write_mask(tmp_path, ("north", "box")), grown).ok
    if added == "west":
        assert _run(cat, write_mask(tmp_path, ("north", "box", "east")), grown).ok
    regions = ("north", "box", "east") + (("west",) if added == "west" else ())
    before = labelled_chunks(grown)
    mask = write_mask(tmp_path, regions)
    code = killer_script(at, run_call(cat, mask, str(grown), TARGET))
    proc = subprocess.run([sys.executable, "-c", code], timeout=300)
    assert proc.returncode == -signal.SIGKILL
    s = _run(cat, mask, grown)
    assert s.ok and sorted(s.regions_only) == sorted(s.done)
    # whatever the kill left, no series was recomputed whole: every stored chunk as it was
    # (but the one "west" is merged into)
    after = labelled_chunks(grown)
    kept = {k: v for k, v in before.items() if k[0] == "cube" or "east" not in k[3]}
    assert {k: after.get(k) for k in kept} == kept
    once = tmp_path / "once.zarr"
    assert _run(cat, mask, once).ok
    assert_same_store(grown, once)


def test_two_regions_added_at_once_by_a_mask_in_another_order(tmp_path):
    """The mask's order is not the store's: each computed region lands in its own row (by label)."""
    grown = tmp_path / "grown.zarr"
    cat = write_release(tmp_path, "r0", STATE)
    assert _run(cat, write_mask(tmp_path, ("north",)), grown).ok
    s = _run(cat, write_mask(tmp_path, ("west", "north", "box")), grown)
    assert s.ok and s.grew == {"regions": ["west", "box"]} and len(s.regions_only) == len(STATE)
    history = Store(grown).read_manifest()["history"][-1]
    assert all(e["regions"] == ["west", "box"] for e in history["regions_added"])
    once = tmp_path / "once.zarr"
    assert _run(cat, write_mask(tmp_path, ("box", "west", "north")), once).ok
    assert_same_store(grown, once)


def test_the_run_summary_names_the_series_computed_for_the_new_regions_only(tmp_path):
    from rich.console import Console

    from gridflux.cli.run import print_summary

    grown = tmp_path / "grown.zarr"
    cat = write_release(tmp_path, "r0", STATE)
    assert _run(cat, write_mask(tmp_path, ("north",)), grown).ok
    s = _run(cat, write_mask(tmp_path, ("north", "box")), grown)
    assert s.as_dict()["regions_only"] == len(STATE) == s.as_dict()["done"]
    console = Console(record=True, width=200)
    print_summary(s, console)
    text = console.export_text()
    assert "store grew: regions +1 (box)" in text
    assert f"{len(STATE)} of the done series were done before and computed for the new regions" in (
        text
    )
