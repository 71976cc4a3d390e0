#!/usr/bin/env python
"""A worker's cost of opening every series of an archive: CPU seconds, fresh processes.

    python benchmarks/openseries.py                          # the small synthetic archive, 6 runs
    python benchmarks/openseries.py --trees /tmp/base .      # alternate two source trees

Each run is a fresh process that imports what a worker has imported at start (xarray, cf_xarray,
netCDF4, h5py, deflate), then opens every series of the archive's catalog with
``fastopen.open_fast`` and reads its first 12-month block: the per-series fixed costs of issue 19
point 1 (metadata, caches, the first uses of pint and of the axes rules) plus one block's decode,
without scheduling, store or manifest. Runs of several trees alternate, so a shared machine's load
falls on all of them; compare minima. The archive is built by ``benchmarks/archive.py`` (its
``--cache``).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

CHILD = """
import sys, time
import xarray, cf_xarray, netCDF4, h5py, deflate  # noqa: F401 - a worker's start-up imports
from gridflux.ingest import catalog, fastopen
recs = catalog.load_catalog(sys.argv[1]).series()
t = time.process_time()
n = 0
for r in recs:
    fs = fastopen.open_fast(r)
    if fs is not None:
        n += 1
        fs.read(0, min(12, fs.shape[0]))
        fs.close()
import gridflux
assert gridflux.__file__.startswith(sys.argv[2]), gridflux.__file__
print(time.process_time() - t, n, len(recs))
"""


def main(argv: list[str] | None = None) -> dict[str, list[float]]:
    from benchmarks.archive import DEFAULT_CACHE, build_archive

    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--size", default="small", choices=("tiny", "small"))
    p.add_argument("--cache", default=DEFAULT_CACHE)
    p.add_argument("--runs", type=int, default=6)
    p.add_argument("--trees", nargs="*", default=[ROOT], help="source trees to alternate")
    a = p.parse_args(argv)
    env = dict(os.environ, PYTHONPATH=ROOT)
    root = build_archive(a.cache, a.size, env)
    cat = os.path.join(root, "catalog.json")
    out: dict[str, list[float]] = {t: [] for t in a.trees}
    for _ in range(a.runs):
        for tree in a.trees:
            tree_path = os.path.abspath(tree)
            env = dict(os.environ, PYTHONPATH=tree_path)
            res = subprocess.run(  # cwd: `python -c` puts it first on sys.path
                [sys.executable, "-c", CHILD, cat, tree_path],
                env=env,
                cwd=tree_path,
                capture_output=True,
                text=True,
            )
            if res.returncode:
                raise SystemExit(res.stderr)
            cpu, n_fast, n = res.stdout.split()
            out[tree].append(float(cpu))
    for tree, cpus in out.items():
        cpus.sort()
        print(
            f"{tree}: {n_fast} of {n} series on the fast path; CPU s min {cpus[0]:.3f}, "
            f"all {' '.join(f'{c:.3f}' for c in cpus)}"
        )
    return out


if __name__ == "__main__":
    main()
