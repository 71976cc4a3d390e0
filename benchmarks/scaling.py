"""Ensemble scaling through gridflux's own entry point, next to
``xr.open_mfdataset(parallel=True)``.

``N`` members of the same 0.5 deg field (byte copies, not symlinks: HDF5 recognises a file
opened twice by its inode and shares one chunk cache between the handles, so symlinked members
would be served from memory) run through

* ``gridflux run CATALOG --mask M --store S --cluster local --workers W --no-cubes --summary-json
  F``
  timed three ways: the whole process (imports and the cluster start-up included), the run as its
  own summary reports it (``seconds``: catalog, mask, store, planning, computing; the cluster
  starts meanwhile) and its computing phase (``compute_seconds``: first submitted series to last
  finished);
* ``gridflux.pipeline.run(..., client=make_cluster("local", n_workers=W).client)`` in one process,
  timed by the run's own ``RunSummary.seconds``: ``cold`` is the first run on fresh workers
  (started with gridflux's worker preload: imports done, weights and opened files not), ``warm`` a
  second run into a new store on the same workers;
* the machine's own ceiling: the same fused totals as ``benchmarks/workers.py fused`` over the
  same member files in plain processes, no dask, no driver: one process doing all members vs two
  processes doing half each, started together (their loops begin at one agreed wall-clock time, so
  imports are not timed). Two independent processes are the most that 2 workers can reach; on a
  shared VM (memory bandwidth, vCPUs that are not whole cores) this is below 1;
* the hand-written alternative: ``xr.open_mfdataset(files, parallel=True, combine="nested",
  concat_dim="member")`` then ``(da * w).sum(("lat", "lon")).compute()`` on the same cluster kind,
  with the exact native weight field ``w`` (so only the graph differs, not the kernel).

Parallel efficiency is ``t1 / (2 * t2)``; per-member cost is ``t(N members) / N`` vs ``t(1
member)``.

``python benchmarks/scaling.py worker ...`` is the in-process part (run as a subprocess).
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import sys
import time

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.measure import run_measured  # noqa: E402

#: seconds between two RSS samples of a scaling run's process tree. Each sample walks the tree
#: (~1.2 ms of CPU with a 2-worker cluster): at the harness's default 25 ms that is ~5% of a core,
#: which on 2 cores the 2-worker run loses and the 1-worker run does not (the plain processes of
#: the ceiling are not sampled at all). The largest process's peak is exact anyway (GNU time).
SCALING_POLL = 0.5

PY = sys.executable
HERE = os.path.abspath(__file__)


def make_catalog(field: str, workdir: str, members: int, decades: int = 1) -> tuple[str, list[str]]:
    """``members`` series of ``decades`` consecutive files each and an intake-esm catalog of them.

    Every file is a byte copy of ``field`` (its months start in January 1850, noleap calendar)
    whose time axis is shifted by 10 years per decade, laid out as a CMIP archive splits a long
    run (``rh_..._185001-185912.nc``, ``rh_..._186001-186912.nc``, ...). Copies, because HDF5
    shares one open-file structure (and chunk cache) between handles of the same inode. The
    catalog sits above the files (``workdir/<name>.json``, files in ``workdir/files``): a
    catalog reads only inside its directory (docs/ingest.md).
    """
    import netCDF4

    from gridflux.ingest.catalog import write_catalog

    with netCDF4.Dataset(field) as nc:
        n = len(nc.dimensions["time"])
    if decades > 1 and n != 120:
        raise ValueError(f"{field}: multi-decade members need a 120-month field, not {n} months")
    files_dir = os.path.join(workdir, "files")
    os.makedirs(files_dir, exist_ok=True)
    paths, rows = [], []
    for i in range(members):
        for d in range(decades):
            y0, y1 = 1850 + 10 * d, 1850 + 10 * d + (n - 1) // 12
            time_range = f"{y0:04d}01-{y1:04d}{(n - 1) % 12 + 1:02d}"  # as a DRS crawl records it
            p = os.path.join(
                files_dir, f"rh_Lmon_BENCH{i:02d}_historical_r1i1p1f1_gr_{time_range}.nc"
            )
            if not (os.path.exists(p) and os.path.getsize(p) == os.path.getsize(field)):
                shutil.copyfile(field, p)
                if d:
                    _shift_time(p, 3650.0 * d)  # 10 noleap years
            paths.append(p)
            rows.append(
                {
                    "ensemble": "bench",
                    "source_id": f"BENCH{i:02d}",
                    "experiment": "historical",
                    "member_id": "r1i1p1f1",
                    "variable": "rh",
                    "path": p,
                    "gas": "CO2",
                    "time_range": time_range,
                }
            )
    name = f"bench-{members}" + (f"x{decades}" if decades > 1 else "")
    cat = write_catalog(
        rows,
        os.path.join(workdir, f"{name}.json"),
        description="gridflux scaling benchmark",
    )
    return cat, paths


def _shift_time(path: str, days: float) -> None:
    """Add ``days`` to a copy's time coordinate and its bounds (in place)."""
    import netCDF4

    with netCDF4.Dataset(path, "r+") as nc:
        for name in (
            "time",
            nc["time"].getncattr("bounds") if "bounds" in nc["time"].ncattrs() else None,
        ):
            if name:
                nc[name][:] = nc[name][:] + days


def _gridflux_cli() -> list[str]:
    exe = shutil.which("gridflux")
    return [exe] if exe else [PY, "-c", "from gridflux.cli import main; main()"]


# -- in-process part (subprocess) ---------------------------------------------------------------
def ceiling_worker(files: list[str], mask: str, weights_cache: str, start_at: float) -> dict:
    """Fused totals of ``files`` one after another in this process, no dask; the loop starts at the
    wall-clock time ``start_at`` (so that two such processes overlap) and is timed alone."""
    from types import SimpleNamespace

    from benchmarks.workers import method_fused

    # imports, and the weight field into the cache, before the agreed start
    method_fused(SimpleNamespace(field=files[0], mask=mask, weights_cache=weights_cache, months=12))
    delay = start_at - time.time()
    if delay > 0:
        time.sleep(delay)
    t0 = time.perf_counter()
    for f in files:
        method_fused(SimpleNamespace(field=f, mask=mask, weights_cache=weights_cache, months=None))
    return {"seconds": time.perf_counter() - t0, "late_s": max(0.0, -delay), "files": len(files)}


def _ceiling(
    files: list[str], mask: str, workdir: str, streams: int, log
) -> tuple[float, list[dict]] | None:
    """Seconds until the last of ``streams`` plain processes has done its share of ``files``, and
    each process's own report (loop seconds, how late it started, files done); None if one
    failed."""
    import subprocess

    cache = os.path.join(workdir, "ceiling-weights")
    start_at = time.time() + 2.0  # after every process's imports
    shares = [files[i::streams] for i in range(streams)]
    procs = [
        subprocess.Popen(
            [
                PY,
                HERE,
                "worker",
                "ceiling",
                "--mask",
                mask,
                "--weights-cache",
                cache,
                "--start-at",
                repr(start_at),
                "--files",
                *share,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for share in shares
    ]
    outs = [p.communicate() for p in procs]
    if any(p.returncode for p in procs):
        log(f"[red]ceiling ({streams} processes) failed:[/red] {outs[0][1][-600:]}")
        return None
    ds = [json.loads(o.strip().splitlines()[-1]) for o, _ in outs]
    if any(d["late_s"] > 0.05 for d in ds):
        log(f"ceiling: a process started its loop late ({[round(d['late_s'], 2) for d in ds]} s)")
    return max(d["late_s"] + d["seconds"] for d in ds), ds


def worker(argv: list[str]) -> None:
    import argparse

    p = argparse.ArgumentParser()
    p.add_argument("tool", choices=("gridflux", "mfdataset", "ceiling"))
    p.add_argument("--catalog")
    p.add_argument("--mask")
    p.add_argument("--store")
    p.add_argument("--files", nargs="*")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--weights-cache")
    p.add_argument("--start-at", type=float)
    a = p.parse_args(argv)
    if a.tool == "ceiling":
        print(json.dumps(ceiling_worker(a.files, a.mask, a.weights_cache, a.start_at)))
        return
    from gridflux.compute.clusters import make_cluster

    t0 = time.perf_counter()
    out: dict = {}
    with make_cluster("local", n_workers=a.workers) as h:
        h.wait_for_workers(a.workers)
        out["startup_s"] = time.perf_counter() - t0
        if a.tool == "gridflux":
            from gridflux.pipeline.runner import run

            for label in ("cold", "warm"):
                s = run(
                    a.catalog,
                    a.mask,
                    f"{a.store}-{label}.zarr",
                    cubes=False,
                    client=h.client,
                    progress=False,
                )
                out[f"{label}_s"] = s.seconds
                out[f"{label}_compute_s"] = s.compute_seconds
                out[f"{label}_done"] = len(s.done)
                out[f"{label}_failed"] = s.failed
        else:
            import numpy as np
            import xarray as xr

            from gridflux.fields.masks import RegionMask
            from gridflux.fields.regrid import grid_of
            from gridflux.fields.totals import protocol_weights
            from gridflux.kernels.grids import CDO_EARTH_RADIUS

            mask = RegionMask.from_file(a.mask)
            for label in ("cold", "warm"):
                t1 = time.perf_counter()
                ds = xr.open_mfdataset(
                    a.files,
                    parallel=True,
                    combine="nested",
                    concat_dim="member",
                    engine="netcdf4",
                    chunks={"time": 12},
                    coords="minimal",
                    compat="override",
                )
                w = protocol_weights(grid_of(ds), mask, target=mask.grid, radius=CDO_EARTH_RADIUS)[
                    0
                ]
                if ds["lat"].values[0] > ds["lat"].values[-1]:
                    w = w[::-1]
                wa = xr.DataArray(w, dims=("lat", "lon"))
                tot = (ds["rh"].astype(np.float64) * wa).sum(("lat", "lon")).compute()
                out[f"{label}_s"] = time.perf_counter() - t1
                out[f"{label}_shape"] = list(tot.shape)
    print(json.dumps(out))


# -- driver ------------------------------------------------------------------------------------
def _cli(cat: str, mask_nc: str, prefix: str, workers: int, log) -> dict | None:
    """``gridflux run`` as a whole process; its own summary gives the run and computing times."""
    summary = prefix + "-summary.json"
    m = run_measured(
        [
            *_gridflux_cli(),
            "run",
            cat,
            "--mask",
            mask_nc,
            "--store",
            prefix + ".zarr",
            "--cluster",
            "local",
            "--workers",
            str(workers),
            "--no-cubes",
            "--no-progress",
            "--summary-json",
            summary,
        ],
        poll=SCALING_POLL,
    )
    if not m.ok:
        log(f"[red]gridflux run CLI failed:[/red] {m.stderr[-600:]}")
        return None
    with open(summary) as f:
        s = json.load(f)
    return {
        "process_s": m.seconds,
        "run_s": s["seconds"],
        "compute_s": s["compute_seconds"],
        "peak_rss_mb": m.peak_rss_mb,
    }


def _in_process(
    tool: str, workers: int, cat: str, mask: str, store: str, files: list[str], log
) -> dict | None:
    argv = [PY, HERE, "worker", tool, "--workers", str(workers)]
    argv += (
        ["--catalog", cat, "--mask", mask, "--store", store]
        if tool == "gridflux"
        else ["--mask", mask, "--files", *files]
    )
    m = run_measured(argv, poll=SCALING_POLL)
    if not m.ok:
        log(f"[red]scaling {tool} ({workers} workers) failed:[/red] {m.stderr[-600:]}")
        return None
    d = json.loads(m.stdout.strip().splitlines()[-1])
    d["process_s"] = m.seconds
    d["peak_rss_mb"] = m.peak_rss_mb
    return d


TOOLS = ("gridflux", "mfdataset", "gridflux-cli", "ceiling")
#: the label of the reference runs: two plain processes without dask (benchmarks/report.py keys on
#: it)
CEILING_LABEL = "fused totals in independent processes"


def run_scaling(
    field: str,
    mask_nc: str,
    workdir: str,
    members: int,
    log,
    repeats: int = 2,
    decades: int = 1,
    tools: tuple[str, ...] = TOOLS,
) -> list[dict]:
    """Scaling records (see the module docstring) for members of ``decades`` files of ``field``.

    ``tools``: any of :data:`TOOLS` (``mfdataset`` only for single-file members)."""
    import netCDF4

    with netCDF4.Dataset(field) as nc:
        member_years = len(nc.dimensions["time"]) * decades / 12
    tag = f"{decades}" if decades > 1 else ""
    cat_n, files = make_catalog(field, os.path.join(workdir, f"many{tag}"), members, decades)
    cat_1, _ = make_catalog(field, os.path.join(workdir, f"one{tag}"), 1, decades)
    in_process = [t for t in tools if t == "gridflux" or (t == "mfdataset" and decades == 1)]
    runs: dict[tuple, list] = {}
    k = 0
    for _ in range(repeats):
        for workers in (1, 2):
            for tool in in_process:
                k += 1
                store = os.path.join(workdir, f"store{tag}-{k}")
                d = _in_process(tool, workers, cat_n, mask_nc, store, files, log)
                if d:
                    runs.setdefault((tool, workers, members), []).append(d)
            k += 1
            d = (
                _cli(cat_n, mask_nc, os.path.join(workdir, f"cli{tag}-{k}"), workers, log)
                if "gridflux-cli" in tools
                else None
            )
            if d:
                runs.setdefault(("gridflux-cli", workers, members), []).append(d)
        if "ceiling" in tools:
            for workers in (1, 2):
                measured = _ceiling(files, mask_nc, workdir, workers, log)
                if measured:
                    runs.setdefault(("ceiling", workers, members), []).append(
                        {"seconds": measured[0], "peak_rss_mb": None}
                    )
        k += 1
        d = (
            _in_process(
                "gridflux",
                1,
                cat_1,
                mask_nc,
                os.path.join(workdir, f"store1{tag}-{k}"),
                files[:decades],
                log,
            )
            if "gridflux" in tools
            else None
        )
        if d:
            runs.setdefault(("gridflux", 1, 1), []).append(d)
        d = (
            _cli(cat_1, mask_nc, os.path.join(workdir, f"cli1{tag}-{k}"), 1, log)
            if "gridflux-cli" in tools
            else None
        )
        if d:
            runs.setdefault(("gridflux-cli", 1, 1), []).append(d)
        log(f"scaling repeat done ({k} runs)")
    recs = []
    timings = {
        "gridflux": (
            ("cold_s", "in-process, cold workers"),
            ("warm_s", "in-process, warm workers"),
            ("cold_compute_s", "in-process, cold workers, computing phase"),
            ("process_s", "whole process"),
        ),
        "mfdataset": (
            ("cold_s", "in-process, cold workers"),
            ("warm_s", "in-process, warm workers"),
        ),
        "gridflux-cli": (
            ("compute_s", "computing phase (the run's own summary)"),
            ("run_s", "run (the run's own summary)"),
            ("process_s", "whole process"),
        ),
        "ceiling": (("seconds", "plain processes, no dask (the machine's ceiling)"),),
    }
    tool_label = {
        "gridflux": "gridflux pipeline.run",
        "mfdataset": "xr.open_mfdataset(parallel=True) + weighted sum",
        "gridflux-cli": "gridflux run (CLI)",
        "ceiling": CEILING_LABEL,
    }
    med: dict = {}
    for (tool, workers, n), ds in runs.items():
        for key, label in timings[tool]:
            vals = [d[key] for d in ds if key in d]
            if not vals:
                continue
            med[(tool, workers, n, key)] = statistics.median(vals)
            recs.append(
                {
                    "kind": "scaling",
                    "what": "run",
                    "tool": tool_label[tool],
                    "timing": label,
                    "members": n,
                    "member_years": member_years,
                    "workers": workers,
                    "seconds": statistics.median(vals),
                    "seconds_all": vals,
                    "peak_rss_mb": max(
                        (d["peak_rss_mb"] for d in ds if d["peak_rss_mb"]), default=None
                    ),
                    "startup_s": statistics.median(d["startup_s"] for d in ds)
                    if "startup_s" in ds[0]
                    else None,
                }
            )
    for tool, _ in tool_label.items():
        for key, label in timings[tool]:
            t1, t2 = med.get((tool, 1, members, key)), med.get((tool, 2, members, key))
            if t1 and t2:
                recs.append(
                    {
                        "kind": "scaling",
                        "what": "efficiency",
                        "tool": tool_label[tool],
                        "timing": label,
                        "members": members,
                        "member_years": member_years,
                        "t1": t1,
                        "t2": t2,
                        "efficiency": t1 / (2 * t2),
                    }
                )
            one = med.get((tool, 1, 1, key))
            if one and t1:
                recs.append(
                    {
                        "kind": "scaling",
                        "what": "per-member",
                        "tool": tool_label[tool],
                        "timing": label,
                        "members": members,
                        "member_years": member_years,
                        "per_member_many": t1 / members,
                        "per_member_one": one,
                        "ratio": (t1 / members) / one,
                    }
                )
    return recs


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "worker":
        worker(sys.argv[2:])
    else:
        print(__doc__)
