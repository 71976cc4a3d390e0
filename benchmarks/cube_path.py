#!/usr/bin/env python
"""What the cube path of a whole-archive run costs, part by part (issue 19 point 2).

    python benchmarks/cube_path.py                 # small synthetic archive (built once, cached)
    python benchmarks/cube_path.py --codecs-only   # the codec table alone

Runs ``gridflux run --cluster none`` (cubes on) in this process on ``gridflux synth --size small``
with the cube path's two steps timed per call in CPU seconds of the process (robust on a shared
machine, where wall seconds stretch with the load): the regrid (``tasks.apply_separable``) and the
chunk writes (``tasks.write_cube_block``), summed per source grid (the rows read) and input dtype,
in ms per month of cube. Then the Blosc codecs on the cube chunks the run wrote (one thread, as a
worker encodes): MB/s of float32 input and compression ratio. Figures: docs/benchmarks.md, "The
cube path".
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections import defaultdict

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def timed_run(archive: str, store: str) -> dict:
    import gridflux.pipeline.tasks as tasks
    from gridflux.pipeline.runner import run

    stats: dict = defaultdict(lambda: [0, 0.0, 0.0])
    apply0, write0 = tasks.apply_separable, tasks.write_cube_block
    last: dict = {}

    def apply(w, block, **kw):
        t = time.process_time()
        out = apply0(w, block, **kw)
        kind = "picked" if w.cell_selection is not None else "weighted sum"
        key = (f"{w.src.nlat} x {w.src.nlon}", str(block.dtype), kind)
        last["key"] = key
        stats[key][0] += block.shape[0]
        stats[key][1] += time.process_time() - t
        return out

    def write(*a):
        t = time.process_time()
        write0(*a)
        stats[last["key"]][2] += time.process_time() - t

    tasks.apply_separable, tasks.write_cube_block = apply, write
    try:
        t = time.perf_counter()
        s = run(
            os.path.join(archive, "catalog.json"),
            os.path.join(archive, "regions.nc"),
            store,
            cubes=True,
            progress=False,
        )
        wall = time.perf_counter() - t
    finally:
        tasks.apply_separable, tasks.write_cube_block = apply0, write0
    print(f"run: {len(s.done)} series, {wall:.1f} s (computing {s.compute_seconds:.1f} s)")
    print("| rows read x columns | dtype | regrid | months | regrid ms/month | write ms/month |")
    print("|---|---|---|---:|---:|---:|")
    tot = [0, 0.0, 0.0]
    for (grid, dtype, kind), (n, ta, tw) in sorted(stats.items(), key=lambda kv: -kv[1][0]):
        print(f"| {grid} | {dtype} | {kind} | {n} | {1e3 * ta / n:.2f} | {1e3 * tw / n:.2f} |")
        tot = [tot[0] + n, tot[1] + ta, tot[2] + tw]
    print(f"| all | | | {tot[0]} | {1e3 * tot[1] / tot[0]:.2f} | {1e3 * tot[2] / tot[0]:.2f} |")
    print(f"totals (CPU): regrid {tot[1]:.2f} s, write {tot[2]:.2f} s")
    return {"series": len(s.done), "months": tot[0], "regrid_s": tot[1], "write_s": tot[2]}


def codecs(store: str, n_chunks: int = 200) -> None:
    """Blosc codecs (one thread) on cube chunks of the store: MB/s of input and ratio."""
    import numpy as np
    import zarr
    from numcodecs import Blosc, blosc

    blosc.set_nthreads(1)
    root = zarr.open_group(store, mode="r")
    chunks = []
    for var in sorted(root["cubes"].group_keys()):
        arr = root[f"cubes/{var}/{var}"]
        ct, cy, cx = arr.chunks[1:]
        for m in range(arr.shape[0]):
            for t0 in range(0, arr.shape[1], ct):
                c = np.ascontiguousarray(arr[m, t0 : t0 + ct, :cy, :cx])
                if np.isfinite(c).any():
                    chunks.append(c)
    chunks = chunks[:: max(1, len(chunks) // n_chunks)]
    nbytes = sum(c.nbytes for c in chunks)
    print(f"| codec (Blosc, shuffle, 256 KiB blocks) | MB/s | ratio |   ({len(chunks)} chunks)")
    print("|---|---:|---:|")
    for cname, level in (("zstd", 1), ("lz4", 1), ("lz4", 5), ("blosclz", 5)):
        codec = Blosc(cname=cname, clevel=level, shuffle=Blosc.SHUFFLE, blocksize=262144)
        t = time.perf_counter()
        out = sum(len(codec.encode(c)) for c in chunks)
        dt = time.perf_counter() - t
        print(f"| {cname} {level} | {nbytes / dt / 1e6:.0f} | {nbytes / out:.2f} |")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--cache", default=os.path.join(tempfile.gettempdir(), "gridflux-bench"))
    p.add_argument("--codecs-only", action="store_true")
    a = p.parse_args(argv)
    from archive import build_archive

    env = os.environ.copy()
    env["PYTHONPATH"] = ROOT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    os.makedirs(a.cache, exist_ok=True)
    archive = build_archive(a.cache, "small", env)
    work = tempfile.mkdtemp(prefix="cube-path-", dir=a.cache)
    try:
        store = os.path.join(work, "store.zarr")
        if a.codecs_only:
            from gridflux.pipeline.runner import run

            run(
                os.path.join(archive, "catalog.json"),
                os.path.join(archive, "regions.nc"),
                store,
                progress=False,
            )
        else:
            timed_run(archive, store)
        codecs(store)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
