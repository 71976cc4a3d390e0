#!/usr/bin/env python
"""Thousands of short series (issue 19, point 3): linear planning, bounded driver memory, resume.

    python benchmarks/many.py --series 10000                  # 10,000 series, 2 workers
    python benchmarks/many.py --series 200 --cluster none     # CI-sized (tests/benchmarks)

The archive is generated here: one CF file per series (``nbp``, kg m-2 s-1, float32, deflate +
shuffle, one month per chunk, 12 months of 2001, 10 x 10 deg global grid with bounds, noleap),
written once and byte-copied to every member (so every file shares one grid, calendar and units,
as the members of a release do), with a catalog that declares each file's ``time_range``. The
values of member ``i`` are those of the template, so every member's totals must be the
template's: the benchmark checks that every series is done with the same totals.

Measured, each a whole ``gridflux run`` process (``--no-cubes``):

1. ``--series N/10`` and ``--series N`` series on the same cluster kind: seconds and the driver's
   own CPU per series at both sizes (planning and scheduling are linear when the per-series
   figures agree), and the driver's peak RSS (``getrusage`` of the driver process; target 1 GB);
2. the same N-series run SIGKILLed once half of its series are recorded in the manifest journal
   (``manifest.json.d/``), then run again: the second run must skip every series the first
   recorded as done, compute only the others, and end with all N done.

Writes ``benchmarks/many.json`` (with ``--json``) and prints a summary.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from benchmarks.archive import GRIDFLUX_CHILD, _hwm  # noqa: E402

DEFAULT_CACHE = os.path.join(
    os.environ.get("XDG_CACHE_HOME", tempfile.gettempdir()), "gridflux-bench"
)


def write_template(path: str) -> None:
    import numpy as np
    import xarray as xr

    from gridflux.kernels.grids import global_grid

    g = global_grid(10.0, 10.0, -180.0)
    rng = np.random.default_rng(7)
    v = (rng.random((12, *g.shape)) * 1e-8).astype("f4")
    days = np.cumsum([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])
    t = 0.5 * (days[:-1] + days[1:])
    tb = np.stack([days[:-1], days[1:]], axis=1).astype("f8")
    ds = xr.Dataset(
        {
            "nbp": (("time", "lat", "lon"), v, {"units": "kg m-2 s-1"}),
            "time_bnds": (("time", "bnds"), tb),
            "lat_bnds": (("lat", "bnds"), g.lat_bounds),
            "lon_bnds": (("lon", "bnds"), g.lon_bounds),
        },
        coords={
            "time": ("time", t, {"units": "days since 2001-01-01", "calendar": "noleap",
                                 "bounds": "time_bnds", "standard_name": "time"}),
            "lat": ("lat", g.lat, {"units": "degrees_north", "bounds": "lat_bnds"}),
            "lon": ("lon", g.lon, {"units": "degrees_east", "bounds": "lon_bnds"}),
        },
    )  # fmt: skip
    enc = {k: {"_FillValue": None} for k in ("time", "lat", "lon", "time_bnds", "lat_bnds")}
    enc["lon_bnds"] = {"_FillValue": None}
    enc["nbp"] = {"zlib": True, "complevel": 1, "shuffle": True, "chunksizes": (1, *g.shape)}
    enc["nbp"]["_FillValue"] = np.float32(1e20)
    ds.to_netcdf(path, encoding=enc)


def build(cache: str, n: int) -> str:
    """The archive of ``n`` series (cached); returns its catalog JSON path."""
    from gridflux.ingest.catalog import write_catalog

    root = os.path.join(cache, f"many-{n}")
    cat = os.path.join(root, "catalog.json")
    if os.path.exists(os.path.join(root, ".complete")):
        return cat
    shutil.rmtree(root, ignore_errors=True)
    os.makedirs(os.path.join(root, "files"))
    template = os.path.join(root, "template.nc")
    write_template(template)
    rows = []
    for i in range(n):
        rel = f"files/m{i // 1000:02d}/nbp_m{i:05d}_200101-200112.nc"
        os.makedirs(os.path.join(root, os.path.dirname(rel)), exist_ok=True)
        shutil.copyfile(template, os.path.join(root, rel))
        rows.append(
            {
                "ensemble": "MANY",
                "source_id": f"m{i:05d}",
                "experiment": "hist",
                "member_id": "r1",
                "variable": "nbp",
                "path": rel,
                "time_range": "200101-200112",
            }
        )
    write_catalog(rows, cat, description=f"{n} short series (benchmarks/many.py)")
    open(os.path.join(root, ".complete"), "w").close()
    return cat


def mask_file(cache: str) -> str:
    """Two box regions (north of 45N; the tropics) on a 1 deg grid."""
    import numpy as np

    from gridflux.fields.masks import RegionMask
    from gridflux.kernels.grids import global_grid

    path = os.path.join(cache, "many-mask.nc")
    if not os.path.exists(path):
        g = global_grid(1.0)
        f = np.zeros((2, *g.shape))
        f[0, g.lat > 45] = 1.0
        f[1, np.abs(g.lat) < 23] = 1.0
        RegionMask(("north", "tropics"), f, g).to_netcdf(path)
    return path


def gridflux_argv(cat: str, mask: str, store: str, cluster: str, rusage: str, summary: str):
    argv = [sys.executable, "-c", GRIDFLUX_CHILD, rusage, "run", cat, "--mask", mask]
    argv += ["--store", store, "--no-cubes", "--no-progress", "--summary-json", summary]
    argv += ["--cluster", cluster] + (["--workers", "2"] if cluster == "local" else [])
    return argv


def journal_done(store: str) -> int:
    n = 0
    for f in glob.glob(os.path.join(store, "manifest.json.d", "*.jsonl")):
        with open(f) as fh:
            n += fh.read().count('"status": "done"')
    return n


def one_run(cat, mask, work, cluster, env, kill_at: int | None = None) -> dict:
    store = os.path.join(work, "store")
    rusage = os.path.join(work, "rusage.json")
    summary = os.path.join(work, "summary.json")
    for p in (rusage, summary):
        if os.path.exists(p):
            os.remove(p)
    t0 = time.perf_counter()
    p = subprocess.Popen(
        gridflux_argv(cat, mask, store, cluster, rusage, summary),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    hwm = 0
    killed_with = None
    while p.poll() is None:
        hwm = max(hwm, _hwm(p.pid))
        if kill_at is not None and journal_done(store) >= kill_at:
            os.killpg(p.pid, signal.SIGKILL)  # the driver and its workers, without warning
            p.wait()
            killed_with = journal_done(store)
            break
        time.sleep(0.05)
    err = p.stderr.read().decode()[-3000:]
    rec = {
        "seconds": time.perf_counter() - t0,
        "returncode": p.returncode,
        "root_hwm_mb": hwm / 1e6,
    }
    if killed_with is not None:
        rec["killed_with_done"] = killed_with
        return rec
    if p.returncode:
        rec["stderr"] = err
        return rec
    with open(summary) as f:
        rec.update(json.load(f))
    with open(rusage) as f:
        ru = json.load(f)
    rec["driver_cpu"] = ru["self_cpu"]
    rec["driver_peak_rss_mb"] = ru["self_maxrss_mb"]
    import numpy as np
    import zarr

    tot = np.asarray(zarr.open_array(store, path="totals", mode="r")[...])
    # every member holds the template's bytes: the same totals, all finite
    rec["totals_identical"] = bool(np.isfinite(tot).all() and (tot == tot[:1]).all())
    return rec


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--series", type=int, default=10000)
    p.add_argument("--cluster", default="local", help="local (2 workers) or none")
    p.add_argument("--cache", default=DEFAULT_CACHE)
    p.add_argument("--json", default=None)
    p.add_argument("--no-small", action="store_true", help="skip the N/10 run")
    p.add_argument("--no-resume", action="store_true", help="skip the SIGKILL + resume runs")
    a = p.parse_args(argv)
    env = os.environ.copy()
    env["PYTHONPATH"] = ROOT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    os.makedirs(a.cache, exist_ok=True)
    mask = mask_file(a.cache)
    n = a.series
    out: dict = {"series": n, "cluster": a.cluster}
    sizes = ([] if a.no_small else [max(n // 10, 10)]) + [n]
    for size in sizes:
        t = time.perf_counter()
        cat = build(a.cache, size)
        print(f"archive of {size} series: {time.perf_counter() - t:.1f} s", flush=True)
        work = tempfile.mkdtemp(prefix="many-", dir=a.cache)
        try:
            rec = one_run(cat, mask, work, a.cluster, env)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        if rec["returncode"]:
            raise SystemExit(f"gridflux run failed on {size} series:\n{rec.get('stderr')}")
        rec["ms_per_series"] = 1e3 * rec["seconds"] / size
        rec["driver_ms_per_series"] = 1e3 * rec["driver_cpu"] / size
        out[f"run_{size}"] = rec
        print(
            f"{size} series: {rec['seconds']:.1f} s whole ({rec['ms_per_series']:.1f} ms/series), "
            f"computing {rec['compute_seconds']:.1f} s, driver CPU {rec['driver_cpu']:.1f} s "
            f"({rec['driver_ms_per_series']:.2f} ms/series), driver peak RSS "
            f"{rec['driver_peak_rss_mb']:.0f} MB, done {rec['done']}, failed {rec['failed']}",
            flush=True,
        )
    if len(sizes) == 2:
        small, big = out[f"run_{sizes[0]}"], out[f"run_{sizes[1]}"]
        dn = sizes[1] - sizes[0]
        out["linearity"] = {
            # the cost of each series beyond the first N/10 (the fixed start-up cancels)
            "marginal_ms_per_series": 1e3 * (big["seconds"] - small["seconds"]) / dn,
            "marginal_driver_cpu_ms_per_series": 1e3
            * (big["driver_cpu"] - small["driver_cpu"])
            / dn,
            "marginal_computing_ms_per_series": 1e3
            * (big["compute_seconds"] - small["compute_seconds"])
            / dn,
            "computing_ms_per_series_small": 1e3 * small["compute_seconds"] / sizes[0],
            "computing_ms_per_series_big": 1e3 * big["compute_seconds"] / sizes[1],
        }
        print(f"linearity (per-series at {n} / at {sizes[0]}): {out['linearity']}")
    if not a.no_resume:
        cat = build(a.cache, n)
        work = tempfile.mkdtemp(prefix="many-", dir=a.cache)
        try:
            first = one_run(cat, mask, work, a.cluster, env, kill_at=n // 2)
            from gridflux.pipeline.store import Store

            man = Store(os.path.join(work, "store")).read_manifest()["series"]
            done_after_kill = sum(e.get("status") == "done" for e in man.values())
            second = one_run(cat, mask, work, a.cluster, env)
            ok = (
                second["returncode"] == 0
                and second["skipped"] == done_after_kill
                and second["done"] == n - done_after_kill
                and second["failed"] == 0
            )
            out["resume"] = {
                "killed_after_s": first["seconds"],
                "done_at_kill": done_after_kill,
                "second_run": {k: second.get(k) for k in ("seconds", "done", "skipped", "failed")},
                "ok": ok,
            }
            print(
                f"resume after SIGKILL at {done_after_kill}/{n} done: {out['resume']}", flush=True
            )
        finally:
            shutil.rmtree(work, ignore_errors=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=1)
    return out


if __name__ == "__main__":
    main()
