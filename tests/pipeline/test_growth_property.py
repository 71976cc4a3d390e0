"""Grown equals built once (issue 16, point 5): after any sequence of growth steps -- add a member,
add a variable, extend months at the start or the end, replace a version, add a region, each
possibly killed with SIGKILL at a chosen write and run again -- every array of the store is
bit-identical (by label) to the store built in one run from the final catalog and mask. A region
step computes only the new region for the series already done (their region's totals do not
depend on the other regions), and must still give the bits of the store built once."""

from __future__ import annotations

import signal
import subprocess
import sys

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from gridflux.pipeline.runner import run

from .growth_archive import (
    STORE_WRITES,
    TARGET,
    assert_same_store,
    killer_script,
    run_call,
    write_mask,
    write_release,
)

STEPS = ("member", "variable", "start", "end", "version", "region")
#: regions a store gains in this order, one per "region" step: the store starts with two (two
#: regions per totals chunk), so the first added region starts a new region chunk and the second
#: is merged into that chunk
REGIONS = ("north", "box", "east", "west")

# the driver kills itself (SIGKILL) at the n-th write: a zarr chunk or metadata write or resize,
# a manifest write, a link or rename of a rebuild (a growth run makes 70-190 of them); a run with
# fewer writes is not killed
KILL_WRITES = (*STORE_WRITES, "os.link", "os.replace")


def _apply(state: dict, regions: tuple, step: str, k: int) -> tuple[dict, tuple]:
    """One growth step on the catalog state {(src, var): (start, years, version)}."""
    state = dict(state)
    members = sorted({s for s, _ in state})
    src = members[k % len(members)]
    if step == "member":
        new = [m for m in "ABCD" if m not in members]
        if new:
            state[(new[k % len(new)], "npp")] = (2000, 1, "v1")
    elif step == "variable":
        state.setdefault((src, "rh"), (2000, 1, "v1"))
    else:
        key = (src, "npp")
        start, years, version = state[key]
        bump = f"v{int(version[1:]) + 1}"
        if step == "start":
            state[key] = (start - 1, years + 1, bump)
        elif step == "end":
            state[key] = (start, years + 1, bump)
        elif step == "version":
            state[key] = (start, years, bump)
        elif step == "region":
            regions = REGIONS[: len(regions) + 1]
    return state, regions


@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    steps=st.lists(
        st.tuples(st.sampled_from(STEPS), st.integers(0, 3), st.integers(0, 200)),
        min_size=1,
        max_size=3,
    )
)
# always run: two regions added one after the other (the second merged into the first's chunk),
# the second killed right before its series' region-only totals write (the 56th write of that
# run: the direct writer's attempt, which declines a merge; zarr's merge is the 57th) or after
# it, before the manifest's (59th); a region added with a new member
@example(steps=[("region", 0, 0), ("region", 1, 56)])
@example(steps=[("region", 0, 0), ("region", 1, 59)])
@example(steps=[("member", 1, 0), ("region", 0, 0), ("end", 2, 0)])
def test_grown_equals_built_once(tmp_path_factory, steps):
    root = tmp_path_factory.mktemp("grow")
    state = {("A", "npp"): (2000, 1, "v1")}
    regions: tuple = REGIONS[:2]
    grown = root / "grown.zarr"
    run(
        write_release(root, "r0", state),
        write_mask(root, regions),
        str(grown),
        target=TARGET,
        progress=False,
    )
    killed = False
    for i, (step, k, kill_at) in enumerate(steps):
        state, regions = _apply(state, regions, step, k)
        cat, mask = write_release(root, f"r{i + 1}", state), write_mask(root, regions)
        if kill_at and not killed:  # at most one kill per sequence (each costs a process start)
            killed = True
            code = killer_script(kill_at, run_call(cat, mask, str(grown), TARGET), KILL_WRITES)
            proc = subprocess.run([sys.executable, "-c", code], timeout=120)
            assert proc.returncode in (0, -signal.SIGKILL)
            # the lock of a killed driver is stale (its process is gone): the re-run takes it
        assert run(cat, mask, str(grown), target=TARGET, progress=False).ok
    once = root / "once.zarr"
    run(cat, mask, str(once), target=TARGET, progress=False)
    assert_same_store(grown, once)
