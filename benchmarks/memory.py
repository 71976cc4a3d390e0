"""Peak memory of a pipeline worker against the length of a member (issue 6: bounded memory).

    python benchmarks/memory.py [--json benchmarks/memory.json] [--quick]

For each case a one-worker LocalCluster runs ``gridflux.pipeline.runner.run`` on one member while a
thread samples the worker process's resident memory (psutil, every 20 ms; the kernel's own
high-water mark ``VmHWM`` of the worker is read at the end as well). Cases: totals only for a 0.5
deg member of 10 and 40 years (memory must not grow with length and stay <= 256 MB), and totals +
cubes for a 170-year 1 deg member (<= 1 GB). Inputs are written with the benchmark's CMOR-like
writer.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.inputs import FieldSpec, mask_fractions, write_field, write_region_mask  # noqa: E402

CASES = [
    # name, grid spec, months, cubes, limit MB
    ("0.5deg 10 years, totals", "latlon:0.5:0.5:-180", 120, False, 256),
    ("0.5deg 40 years, totals", "latlon:0.5:0.5:-180", 480, False, 256),
    ("1deg 170 years, totals + cubes", "latlon:1.0:1.0:0", 2040, True, 1024),
]


def _vm_hwm(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def measure(
    name: str, grid: str, months: int, cubes: bool, limit_mb: float, workdir: str, mask_path: str
) -> dict:
    import psutil

    from gridflux.compute.clusters import make_cluster
    from gridflux.ingest.catalog import write_catalog
    from gridflux.pipeline.runner import run

    path = os.path.join(workdir, f"rh_{grid.replace(':', '_')}_{months}.nc")
    if not os.path.exists(path):
        write_field(path, FieldSpec(name, grid, months))
    cat = write_catalog(
        [
            {
                "ensemble": "mem",
                "source_id": "M",
                "experiment": "historical",
                "member_id": "r1",
                "variable": "rh",
                "path": path,
            }
        ],
        os.path.join(workdir, f"cat-{months}-{grid.replace(':', '_')}.json"),
    )
    store = os.path.join(workdir, f"store-{months}-{int(cubes)}-{time.time_ns()}.zarr")
    with make_cluster("local", n_workers=1) as handle:
        pid = list(handle.client.run(os.getpid).values())[0]
        proc = psutil.Process(pid)
        base = proc.memory_info().rss
        peak = [base]
        stop = threading.Event()

        def sample() -> None:
            while not stop.is_set():
                try:
                    peak[0] = max(peak[0], proc.memory_info().rss)
                except psutil.Error:
                    return
                time.sleep(0.02)

        t = threading.Thread(target=sample, daemon=True)
        t.start()
        t0 = time.perf_counter()
        summary = run(cat, mask_path, store, client=handle.client, cubes=cubes, progress=False)
        seconds = time.perf_counter() - t0
        stop.set()
        t.join()
        hwm = _vm_hwm(pid)
    if not summary.ok:
        raise RuntimeError(f"{name}: {summary.failed}")
    peak_mb = max(peak[0], hwm) / 2**20
    return {
        "case": name,
        "months": months,
        "cubes": cubes,
        "seconds": seconds,
        "worker_rss_before_mb": base / 2**20,
        "worker_peak_rss_mb": peak_mb,
        "limit_mb": limit_mb,
        "ok": peak_mb <= limit_mb,
        "input_mb": os.path.getsize(path) / 2**20,
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", help="write the records here")
    ap.add_argument("--quick", action="store_true", help="only the 10-year 0.5 deg case")
    ap.add_argument(
        "--workdir", default=os.path.join(tempfile.gettempdir(), "gridflux-bench-memory")
    )
    args = ap.parse_args(argv)
    os.makedirs(args.workdir, exist_ok=True)
    from gridflux.kernels.grids import global_grid

    target = global_grid(0.5)
    mask_path = os.path.join(args.workdir, "mask.nc")
    write_region_mask(mask_path, target, ("north",), mask_fractions(target, 45.0)[None])
    cases = CASES[:1] if args.quick else CASES
    records = []
    for case in cases:
        rec = measure(*case, workdir=args.workdir, mask_path=mask_path)
        records.append(rec)
        print(
            f"{rec['case']:34s} input {rec['input_mb']:7.0f} MB  worker peak RSS "
            f"{rec['worker_peak_rss_mb']:6.0f} MB "
            f"(idle {rec['worker_rss_before_mb']:.0f} MB; limit {rec['limit_mb']:.0f})  "
            f"{rec['seconds']:.1f} s  "
            f"{'PASS' if rec['ok'] else 'FAIL'}",
            flush=True,
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(records, f, indent=1)


if __name__ == "__main__":
    main()
