#!/usr/bin/env python
"""What the region kernels cost per 12-month block: each region over its own cells (gridflux's
``cell_sums``/``cell_means``) against one BLAS product of the block's rows with every region's
weights (``buf @ w.T``, the kernel before: fast, but its rounding depends on the other regions).

    python benchmarks/region_kernels.py

Shapes of ``gridflux synth --size small``: its process models' 1 and 2 degree global grids with its
3-region mask (``gridflux.synthetic.regions``), and a 10-region mask tiling 60S-80N; float32 blocks
of the rows where a weight is nonzero, ``regrid-mask`` weights. Times are CPU seconds of this
process (best of 7 rounds; robust on a shared machine), in ms per 12-month block. Figures:
docs/benchmarks.md, "Region kernels".
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def blas_sums(block: np.ndarray, w: np.ndarray) -> np.ndarray:
    """The kernel before: the block in float64 times every region's weights, one BLAS product."""
    nt = block.shape[0]
    buf = block.reshape(nt, -1).astype(np.float64)
    return buf @ w.reshape(w.shape[0], -1).T


def masks():
    from gridflux.fields.masks import RegionMask
    from gridflux.kernels.grids import global_grid
    from gridflux.synthetic.regions import REGIONS, mask_array

    m, _, _ = mask_array()
    yield "synth, 3 regions", RegionMask(tuple(REGIONS), m, global_grid(1.0))
    rng = np.random.default_rng(0)
    fr = np.zeros((10, 180, 360))
    k = 0
    for south, north in ((-60, 10), (10, 80)):
        for lon in range(5):
            shape = (north - south, 72)
            fr[k, 90 + south : 90 + north, lon * 72 : (lon + 1) * 72] = rng.uniform(0.2, 1, shape)
            k += 1
    yield "10 regions", RegionMask(tuple(f"r{i}" for i in range(10)), fr, global_grid(1.0))


def cpu_ms(fn, n: int = 100) -> float:
    best = float("inf")
    for _ in range(7):
        t = time.process_time()
        for _ in range(n):
            fn()
        best = min(best, (time.process_time() - t) / n)
    return best * 1e3


def main() -> None:
    from gridflux.fields.totals import RegionCells, cell_means, cell_sums, protocol_weights
    from gridflux.kernels.grids import global_grid

    print("mask               grid   cells   blas sums  cell_sums  cell_means  (ms per block)")
    for name, mask in masks():
        for res in (1.0, 2.0):
            src = global_grid(res)
            w = protocol_weights(src, mask, protocol="regrid-mask")
            cells = RegionCells.from_weights(w)
            rows = cells.rows
            wr = np.ascontiguousarray(w[:, rows])
            rng = np.random.default_rng(1)
            shape = (12, rows.stop - rows.start, src.nlon)
            block = (rng.uniform(0, 1e-8, shape)).astype(np.float32)
            got = cell_sums(block, cells, rows.start)
            np.testing.assert_allclose(got, blas_sums(block, wr), rtol=1e-12)
            r0 = rows.start
            t_blas = cpu_ms(lambda b=block, w=wr: blas_sums(b, w))
            t_sums = cpu_ms(lambda b=block, c=cells, r=r0: cell_sums(b, c, r))
            t_means = cpu_ms(lambda b=block, c=cells, r=r0: cell_means(b, c, r))
            print(
                f"{name:18s} {res:.0f} deg {cells.all_index.size:7d} {t_blas:10.3f} "
                f"{t_sums:10.3f} {t_means:11.3f}"
            )


if __name__ == "__main__":
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    main()
