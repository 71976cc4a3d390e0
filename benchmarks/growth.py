"""Growth is cheap (issue 16, point 6): adding one member to a store of N members costs about one
member's time, not N.

For each N: N members (one npp file each: 1 year on a 10 x 12 deg grid, the catalog declaring its
months, so planning opens no file) are run into a store (cubes on a 2 deg target grid, one region);
then a catalog with one member more is run on that store. The growth run is timed by phase
(:class:`gridflux.pipeline.runner.Run`: plan, template = growth, select, execute = computing the new
member, record), beside a run of that one member into a fresh store (one member's time). All runs
in this process (synchronous scheduler), so the numbers are the driver's work.

Each growth is run ``--repeat`` times (default 3) on copies of the built store and the median
reported (the VM is shared: single runs scatter by 2x).

Run: ``python benchmarks/growth.py [--sizes 12 500] [--repeat 3] [--out benchmarks/growth.json]``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PHASES = ("plan", "make_template", "select", "execute", "record")


def _archive(root: Path, n: int) -> tuple[str, str, str]:
    """Catalogs of ``n`` and ``n + 1`` members, and the mask."""
    import numpy as np

    from gridflux.fields.masks import RegionMask
    from gridflux.ingest.catalog import write_catalog
    from gridflux.kernels.grids import global_grid
    from tests.pipeline.conftest import box_mask_fractions, write_series

    grid = global_grid(10.0, 12.0, 0.0)
    first = root / "npp_0000.nc"
    rng = np.random.default_rng(0)
    write_series(first, grid, (rng.random((12,) + grid.shape) * 2e-8).astype("f4"), "noleap", 2000)
    rows = []
    for i in range(n + 1):
        path = root / f"npp_{i:04d}.nc"
        if i:
            shutil.copyfile(first, path)
        rows.append(
            dict(
                ensemble="BENCH",
                source_id=f"M{i:04d}",
                experiment="hist",
                member_id="r1",
                variable="npp",
                path=path.name,
                time_range="200001-200012",
            )
        )
    cat_n = write_catalog(rows[:n], root / "n.json")
    cat_n1 = write_catalog(rows, root / "n1.json")
    mgrid = global_grid(1.0)
    mask = root / "mask.nc"
    RegionMask(("north",), box_mask_fractions(mgrid)[:1], mgrid).to_netcdf(mask)
    return str(cat_n), str(cat_n1), str(mask)


def _timed_run(cat: str, mask: str, store: str) -> dict:
    """One run, its phases timed (seconds)."""
    from gridflux.pipeline import runner

    times = dict.fromkeys(PHASES, 0.0)
    originals = {p: getattr(runner.Run, p) for p in PHASES}

    def wrap(name):
        def timed(self, *a, **k):
            t0 = time.perf_counter()
            try:
                return originals[name](self, *a, **k)
            finally:
                times[name] += time.perf_counter() - t0

        return timed

    for p in PHASES:
        setattr(runner.Run, p, wrap(p))
    try:
        t0 = time.perf_counter()
        summary = runner.run(cat, mask, store, target="2", progress=False)
        total = time.perf_counter() - t0
    finally:
        for p, f in originals.items():
            setattr(runner.Run, p, f)
    assert summary.ok, summary.failed
    return {
        "seconds": total,
        "phases": times,
        "done": len(summary.done),
        "skipped": len(summary.skipped),
        "manifest_bytes": os.path.getsize(os.path.join(store, "manifest.json")),
    }


def measure(n: int, workdir: Path, repeat: int = 1) -> dict:
    """Build a store of ``n`` members, then add one member ``repeat`` times (each on a copy of
    the built store); the growth reported is the run of median time, ``grow_seconds`` all."""
    root = workdir / f"n{n}"
    root.mkdir()
    cat_n, cat_n1, mask = _archive(root, n)
    built = str(root / "built.zarr")
    t0 = time.perf_counter()
    _timed_run(cat_n, mask, built)
    build_s = time.perf_counter() - t0
    runs = []
    for i in range(max(repeat, 1)):
        store = str(root / f"store{i}.zarr")
        shutil.copytree(built, store)
        runs.append(_timed_run(cat_n1, mask, store))
        assert runs[-1]["done"] == 1 and runs[-1]["skipped"] == n
    runs.sort(key=lambda r: r["seconds"])
    grow = runs[len(runs) // 2]
    grow["other"] = grow["seconds"] - sum(grow["phases"].values())
    # one member into a fresh store: what adding a member should cost
    from gridflux.ingest.catalog import load_catalog, write_catalog

    one_cat = write_catalog(load_catalog(cat_n1).rows[-1:], root / "one.json")
    one = _timed_run(str(one_cat), mask, str(root / "one.zarr"))
    return {
        "members": n,
        "build_seconds": build_s,
        "grow": grow,
        "grow_seconds": [r["seconds"] for r in runs],
        "one_member_fresh": one,
        "grow_over_one_member": grow["seconds"] / one["seconds"],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[12, 500])
    ap.add_argument("--out", default=str(Path(__file__).with_name("growth.json")))
    ap.add_argument("--repeat", type=int, default=3, help="growth runs per N (median reported)")
    args = ap.parse_args(argv)
    out = []
    with tempfile.TemporaryDirectory(prefix="gridflux-growth-") as tmp:
        for n in args.sizes:
            r = measure(n, Path(tmp), args.repeat)
            out.append(r)
            g = r["grow"]
            print(
                f"N={n}: build {r['build_seconds']:.1f} s; +1 member {g['seconds']:.3f} s "
                f"(one member fresh {r['one_member_fresh']['seconds']:.3f} s, ratio "
                f"{r['grow_over_one_member']:.2f}); phases "
                + ", ".join(f"{k} {v:.3f}" for k, v in g["phases"].items())
                + f", other {g['other']:.3f}; manifest {g['manifest_bytes'] / 1e3:.0f} kB; "
                + "runs "
                + " ".join(f"{t:.3f}" for t in r["grow_seconds"])
            )
        if len(out) > 1:  # what a stored series costs a run: the slope between the sizes
            a, b = out[0], out[-1]
            slope = (b["grow"]["seconds"] - a["grow"]["seconds"]) / (b["members"] - a["members"])
            print(f"per stored series: {slope * 1e3:.2f} ms")
    with open(args.out, "w") as f:
        json.dump(
            {"results": out, "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())},
            f,
            indent=1,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
