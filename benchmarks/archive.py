#!/usr/bin/env python
"""Whole-archive throughput: gridflux on a synthetic archive of many short series (issue 19).

    python benchmarks/archive.py                       # small archive, warm-up + 2 rounds, CDO loop
    python benchmarks/archive.py --quick               # small archive, 1 round, no CDO loop
    python benchmarks/archive.py --size tiny --quick --select ensemble=GCB   # CI (seconds)
    python benchmarks/archive.py --profile             # cProfile of the one-process run, per series

The archive is ``gridflux synth --size SIZE`` (built once, cached in ``--cache``). Every method is a
whole process on the same files, in interleaved rounds (the method order rotates) after an
untimed warm-up that primes the page cache:

* ``raw``: the single-process raw decode of every 3-D+ variable of every data file (netCDF4,
  ``set_auto_maskandscale(False)``, ``v[:]``): the physical limit;
* ``gridflux-1p``: ``gridflux run --cluster none --no-cubes``;
* ``gridflux-2w``: ``gridflux run --workers 2 --no-cubes`` (local cluster);
* ``gridflux-1p-cubes``: ``gridflux run --cluster none`` (with cubes);
* ``cdo-loop``: a shell loop of the natural one-liner over every data file
  (``cdo -s fldsum -mul -remapcon,MASK FILE MASK OUT``; MASK is the first region of the mask as a
  2-D CF field with bounds); failures are counted, not fatal;
* ``xr-mfdataset``: the script users write: per series ``xr.open_mfdataset`` of its files, the
  mask interpolated (nearest) onto the native grid, ``(field * mask * area).sum(("lat", "lon"))``.

gridflux records carry the whole-process seconds and, from ``--summary-json``, the run's own
seconds and its computing phase (first submitted series to last finished). Ratios are medians of
the per-round ratios to ``raw`` of the same round; ``computing CPU x raw`` (one-process runs only:
their computing phase holds the whole computation) is the CPU of the computing phase over the CPU
of ``raw``, the figure that a loaded machine stretches least. CPU seconds come from ``wait4``
(the process and its reaped descendants); the driver's own CPU from ``getrusage(RUSAGE_SELF)`` at
exit.

Per-series costs (derived, in ms per series):

* ``worker_ms_per_series`` (one-process run): (CPU of ``gridflux-1p`` - CPU of ``imports`` - CPU of
  ``raw``) / series: what the run spends per series beyond importing and decoding the bytes;
* ``driver_ms_per_series`` (2-worker run): (the driver process's own CPU - CPU of ``imports``) /
  series; an upper bound (it holds the cluster start, the scheduler, catalog, mask and store).
* ``worker_computing_ms_per_series`` (one-process run): (CPU of its computing phase, the run's
  ``compute_cpu_seconds`` - CPU of ``raw``'s decoding loop) / series: what each series costs beyond
  decoding its bytes, the run's fixed costs (imports, catalog, mask, store template, first uses of
  libraries inside the computing phase included) spread over the series;
* ``driver_computing_ms_per_series`` (2-worker run): the driver process's CPU in the computing
  phase (planning series late, submitting tasks, collecting results, totals writes, the journal,
  the local scheduler's thread) / series.

``--profile`` measures them instead: the one-process run under cProfile, cumulative seconds per
series of the functions that open, normalize, read, write and record a series.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

DEFAULT_CACHE = os.path.join(
    os.environ.get("XDG_CACHE_HOME", tempfile.gettempdir()), "gridflux-bench"
)
METHODS = ("raw", "gridflux-1p", "gridflux-2w", "gridflux-1p-cubes", "cdo-loop", "xr-mfdataset")
GRIDFLUX = ("gridflux-1p", "gridflux-2w", "gridflux-1p-cubes")
FX = ("sftlf", "areacella")
RESULTS_BEGIN = "<!-- archive-benchmark:begin -->"
RESULTS_END = "<!-- archive-benchmark:end -->"

# -- the child processes ------------------------------------------------------------------------
RAW_DECODE = """
import sys, time, netCDF4
n = 0
cpu = time.process_time()
for path in open(sys.argv[1]).read().split():
    with netCDF4.Dataset(path) as ds:
        for v in ds.variables.values():
            if v.ndim >= 3:
                v.set_auto_maskandscale(False)
                n += v[:].nbytes
print(n, time.process_time() - cpu)
"""

IMPORTS = "import gridflux.cli, gridflux.pipeline.runner, gridflux.ingest.catalog, xarray, zarr"

# gridflux's CLI with the driver's own CPU (and that of its reaped children) written at exit
GRIDFLUX_CHILD = """
import atexit, json, resource, sys
out = sys.argv[1]
def _dump():
    s = resource.getrusage(resource.RUSAGE_SELF)
    c = resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(out, "w") as f:
        json.dump({"self_cpu": s.ru_utime + s.ru_stime, "children_cpu": c.ru_utime + c.ru_stime,
                   "self_maxrss_mb": s.ru_maxrss / 1024}, f)
atexit.register(_dump)
sys.argv = ["gridflux"] + sys.argv[2:]
from gridflux.cli import main
main()
"""

XR_MFDATASET = """
import csv, sys, time, numpy as np, xarray as xr
rows = list(csv.DictReader(open(sys.argv[1])))
root = sys.argv[2]
mask = xr.open_dataset(sys.argv[3])["mask"].load()
mask = mask.assign_coords(lon=mask.lon % 360).sortby("lon")
series = {}
for r in rows:
    key = (r["ensemble"], r["source_id"], r["experiment"], r["member_id"], r["variable"])
    series.setdefault(key, (r["raw_variable"] or r["variable"], []))[1].append(r["path"])
ok = failed = 0
for key, (var, paths) in series.items():
    try:
        ds = xr.open_mfdataset([root + "/" + p for p in paths], combine="by_coords")
        da = ds[var]
        w = mask.interp(lat=da.lat, lon=da.lon % 360, method="nearest").fillna(0.0)
        area = np.cos(np.deg2rad(da.lat))
        tot = (da * w * area).sum(("lat", "lon")).compute()
        ok += 1
    except Exception as exc:
        failed += 1
        print("FAILED", key, type(exc).__name__, exc, file=sys.stderr)
print(ok, failed)
"""


def _run(argv: list[str], env: dict, timeout: float = 3600.0) -> dict:
    """Run a whole process: wall seconds, CPU seconds of its tree (wait4), peak RSS of its root
    (polled ``VmHWM``), exit status and the tail of its output."""
    t0 = time.perf_counter()
    with (
        tempfile.TemporaryFile("w+") as out,
        tempfile.TemporaryFile("w+") as err,
    ):
        p = subprocess.Popen(argv, env=env, stdout=out, stderr=err)
        hwm = 0
        while True:
            pid, status, ru = os.wait4(p.pid, os.WNOHANG)
            if pid:
                break
            hwm = max(hwm, _hwm(p.pid))
            if time.perf_counter() - t0 > timeout:
                p.kill()
            time.sleep(0.05)
        seconds = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    return {
        "seconds": seconds,
        "cpu": ru.ru_utime + ru.ru_stime,
        "root_peak_rss_mb": max(hwm, ru.ru_maxrss * 1024) / 1e6 if hwm else None,
        "returncode": p.returncode,
        "stdout": stdout[-4000:],
        "stderr": stderr[-4000:],
    }


def _hwm(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


# -- the archive ----------------------------------------------------------------------------------
def build_archive(cache: str, size: str, env: dict) -> str:
    """``gridflux synth --size SIZE`` into the cache, once (a marker file says it is complete)."""
    root = os.path.join(cache, f"archive-{size}")
    marker = os.path.join(root, ".complete")
    if not os.path.exists(marker):
        shutil.rmtree(root, ignore_errors=True)
        r = subprocess.run(
            [sys.executable, "-m", "gridflux", "synth", "--size", size, root],
            env=env,
            capture_output=True,
            text=True,
        )
        if r.returncode:
            raise SystemExit(f"gridflux synth --size {size} failed:\n{r.stderr[-2000:]}")
        open(marker, "w").close()
    return root


def parse_select(items: list[str] | None) -> dict[str, list[str]]:
    out = {}
    for item in items or []:
        k, _, v = item.partition("=")
        out[k.strip()] = [x.strip() for x in v.split(",")]
    return out


def catalog_rows(root: str, select: dict[str, list[str]]) -> list[dict]:
    """The data rows (no fx) of the archive's catalog that ``select`` keeps."""
    with open(os.path.join(root, "catalog.csv")) as f:
        rows = list(csv.DictReader(f))
    return [
        r for r in rows if r["variable"] not in FX and all(r.get(k) in v for k, v in select.items())
    ]


def series_count(rows: list[dict]) -> int:
    keys = {
        (r["ensemble"], r["source_id"], r["experiment"], r["member_id"], r["variable"])
        for r in rows
    }
    return len(keys)


def cdo_mask(root: str, work: str) -> str:
    """The first region of the archive's mask as a 2-D CF field with bounds, for CDO."""
    import xarray as xr

    out = os.path.join(work, "mask_cdo.nc")
    if not os.path.exists(out):
        ds = xr.open_dataset(os.path.join(root, "regions.nc"))
        m = ds["mask"].isel(region=0, drop=True).astype("float64")
        o = xr.Dataset({"mask": m, "lat_bnds": ds["lat_bnds"], "lon_bnds": ds["lon_bnds"]})
        o["lat"].attrs.update(units="degrees_north", standard_name="latitude", bounds="lat_bnds")
        o["lon"].attrs.update(units="degrees_east", standard_name="longitude", bounds="lon_bnds")
        o.to_netcdf(out)
    return out


# -- the methods ----------------------------------------------------------------------------------
def method_argv(
    method: str, root: str, work: str, files_txt: str, rows_csv: str, select: list[str]
) -> tuple[list[str], str | None, str | None]:
    """(argv, store to remove before, summary JSON) of one method."""
    py = sys.executable
    if method == "raw":
        return [py, "-c", RAW_DECODE, files_txt], None, None
    if method == "imports":
        return [py, "-c", IMPORTS], None, None
    if method in GRIDFLUX:
        store = os.path.join(work, f"store-{method}")
        summary = os.path.join(work, f"{method}.summary.json")
        rusage = os.path.join(work, f"{method}.rusage.json")
        argv = [py, "-c", GRIDFLUX_CHILD, rusage, "run", os.path.join(root, "catalog.json")]
        argv += ["--mask", os.path.join(root, "regions.nc"), "--store", store]
        argv += ["--no-progress", "--summary-json", summary]
        argv += ["--cluster", "local", "--workers", "2"] if method == "gridflux-2w" else []
        argv += ["--cluster", "none"] if method != "gridflux-2w" else []
        argv += ["--no-cubes"] if method != "gridflux-1p-cubes" else []
        for s in select:
            argv += ["--select", s]
        return argv, store, summary
    if method == "cdo-loop":
        mask = cdo_mask(root, work)
        script = (
            'fail=0; n=0; while read f; do n=$((n+1)); cdo -s fldsum -mul -remapcon,"$1" "$f" "$1" '
            '"$2/cdo_out.nc" >/dev/null 2>"$2/cdo_err.txt" || { fail=$((fail+1)); '
            'echo "FAILED $f: $(grep -v HDF5 "$2/cdo_err.txt" | grep -iv "^ *#\\|major\\|minor" '
            '| head -1)" >&2; }; rm -f "$2/cdo_out.nc"; done < "$3"; echo "$n $fail"'
        )
        return ["bash", "-c", script, "cdo-loop", mask, work, files_txt], None, None
    if method == "xr-mfdataset":
        return (
            [py, "-c", XR_MFDATASET, rows_csv, root, os.path.join(root, "regions.nc")],
            None,
            None,
        )
    raise ValueError(method)


def run_method(method: str, root: str, work: str, files_txt: str, rows_csv: str, select, env):
    argv, store, summary = method_argv(method, root, work, files_txt, rows_csv, select)
    if store:
        shutil.rmtree(store, ignore_errors=True)
    if summary and os.path.exists(summary):
        os.remove(summary)
    rec = _run(argv, env)
    rec["method"] = method
    if summary and os.path.exists(summary):
        with open(summary) as f:
            s = json.load(f)
        rec.update(
            run_seconds=s["seconds"],
            compute_seconds=s["compute_seconds"],
            compute_cpu=s.get("compute_cpu_seconds"),
            done=s["done"],
            failed=s["failed"],
        )
        rusage = os.path.join(work, f"{method}.rusage.json")
        if os.path.exists(rusage):
            with open(rusage) as f:
                ru = json.load(f)
            rec.update(driver_cpu=ru["self_cpu"], driver_peak_rss_mb=ru["self_maxrss_mb"])
    if method == "raw" and rec["returncode"] == 0:
        rec["decode_cpu"] = float(rec["stdout"].split()[-1])  # the decoding loop's own CPU
    if method in ("cdo-loop", "xr-mfdataset") and rec["returncode"] == 0:
        parts = rec["stdout"].split()
        if method == "cdo-loop":
            rec["files"], rec["failed"] = int(parts[-2]), int(parts[-1])
        else:
            rec["done"], rec["failed"] = int(parts[-2]), int(parts[-1])
    if store:
        shutil.rmtree(store, ignore_errors=True)
    return rec


# -- the profile ----------------------------------------------------------------------------------
PROFILED = {
    "open series (tasks.open_canonical)": "open_canonical",
    "  fast path (fastopen.open_fast)": "open_fast",
    "  xarray path: catalog.load_series": "load_series",
    "  xarray path: normalize": "normalize",
    "read blocks (FastSeries.read / DatasetView.read)": "read",
    "totals and cube (process_block)": "process_block",
    "a series' tasks (process_span: all of the above)": "process_span",
    "store totals (TotalsWriter.write)": "write",
    "manifest journal (Journal.record)": "record",
    "full manifest writes (write_manifest)": "write_manifest",
    "graph (series_tasks)": "series_tasks",
    "fingerprint": "fingerprint",
}


def profile(root: str, work: str, select: list[str], env: dict, top: int = 25) -> dict:
    """The one-process run under cProfile: cumulative ms per series of its stages."""
    import pstats

    prof = os.path.join(os.path.dirname(work), "run.prof")  # kept for pstats
    store = os.path.join(work, "store-profile")
    shutil.rmtree(store, ignore_errors=True)
    argv = [sys.executable, "-m", "cProfile", "-o", prof, "-m", "gridflux", "run"]
    argv += [os.path.join(root, "catalog.json"), "--mask", os.path.join(root, "regions.nc")]
    argv += ["--store", store, "--cluster", "none", "--no-cubes", "--no-progress"]
    for s in select:
        argv += ["--select", s]
    rec = _run(argv, env)
    shutil.rmtree(store, ignore_errors=True)
    if rec["returncode"]:
        raise SystemExit(f"profiled run failed:\n{rec['stderr']}")
    st = pstats.Stats(prof)
    n = max(series_count(catalog_rows(root, parse_select(select))), 1)
    cum: dict[str, float] = defaultdict(float)
    for (fname, _line, func), (_cc, _nc, _tt, ct, callers) in st.stats.items():
        for label, name in PROFILED.items():
            if (
                func == name
                and "gridflux" in fname
                and not (
                    name in ("read", "write", "record")
                    and not fname.endswith(("fastopen.py", "manifest.py"))
                )
            ):
                # only outermost calls: a recursive or nested call is inside its caller's time
                if not any(c[2] == name for c in callers):
                    cum[label] += ct
    out = {"series": n, "seconds": rec["seconds"], "cpu": rec["cpu"]}
    out["ms_per_series"] = {k: round(1e3 * cum.get(k, 0.0) / n, 2) for k in PROFILED}
    print(f"cProfile of the one-process run ({n} series, {rec['seconds']:.1f} s wall):")
    for k, v in out["ms_per_series"].items():
        print(f"  {k:45s} {v:8.2f} ms/series")
    st.sort_stats("cumulative").print_stats(top)
    st.sort_stats("tottime").print_stats(top)
    print(f"profile kept in {prof}")
    return out


# -- the report -----------------------------------------------------------------------------------
def summarize(records: list[dict], n_series: int) -> list[dict]:
    """Per method: median seconds, per-round ratios to raw (median), CPU and failures."""
    by_round: dict[int, dict[str, dict]] = defaultdict(dict)
    for r in records:
        by_round[r["round"]][r["method"]] = r
    methods = [m for m in ("imports", *METHODS) if any(r["method"] == m for r in records)]
    rows = []
    for m in methods:
        recs = [r for r in records if r["method"] == m]
        row: dict = {"method": m, "rounds": len(recs)}
        for field in (
            "seconds",
            "run_seconds",
            "compute_seconds",
            "cpu",
            "driver_cpu",
            "compute_cpu",
            "decode_cpu",
        ):
            xs = [r[field] for r in recs if r.get(field) is not None]
            if xs:
                row[field] = statistics.median(xs)
        for field, key, ref in (
            ("seconds", "ratio", "seconds"),
            ("compute_seconds", "compute_ratio", "seconds"),
            ("cpu", "cpu_ratio", "cpu"),
        ):
            ratios = [
                r[field] / by_round[r["round"]]["raw"][ref]
                for r in recs
                if r.get(field) is not None and "raw" in by_round[r["round"]]
            ]
            if ratios:
                row[key] = statistics.median(ratios)
        if m in ("gridflux-1p", "gridflux-1p-cubes"):  # the whole computation is in the process
            ratios = [
                r["compute_cpu"] / by_round[r["round"]]["raw"]["cpu"]
                for r in recs
                if r.get("compute_cpu") is not None and "raw" in by_round[r["round"]]
            ]
            if ratios:
                row["compute_cpu_ratio"] = statistics.median(ratios)
        for field in ("failed", "done", "files", "returncode"):
            xs = [r[field] for r in recs if r.get(field) is not None]
            if xs:
                row[field] = max(xs)
        rss = [r["driver_peak_rss_mb"] for r in recs if r.get("driver_peak_rss_mb")]
        if rss:
            row["driver_peak_rss_mb"] = max(rss)
        rows.append(row)
    return rows


def per_series(rows: list[dict], n_series: int) -> dict:
    """Per-series costs in ms (see the module docstring): whole-process figures (``worker``,
    ``driver``: every fixed cost of a run included) and computing-phase figures
    (``worker_computing``, ``driver_computing``: what each further series adds)."""
    get = {r["method"]: r for r in rows}
    out: dict = {"series": n_series}
    imp = get.get("imports", {}).get("cpu")
    one, two, raw = get.get("gridflux-1p", {}), get.get("gridflux-2w", {}), get.get("raw", {})
    if imp is not None and one and raw:
        out["worker_ms_per_series"] = 1e3 * (one["cpu"] - imp - raw["cpu"]) / n_series
    if imp is not None and two.get("driver_cpu") is not None:
        out["driver_ms_per_series"] = 1e3 * (two["driver_cpu"] - imp) / n_series
    decode = raw.get("decode_cpu", raw.get("cpu"))
    if one.get("compute_cpu") is not None and decode is not None:
        out["worker_computing_ms_per_series"] = 1e3 * (one["compute_cpu"] - decode) / n_series
    if two.get("compute_cpu") is not None:
        out["driver_computing_ms_per_series"] = 1e3 * two["compute_cpu"] / n_series
    return out


def table(rows: list[dict], costs: dict) -> str:
    lines = [
        "| method | s (median) | x raw | computing s | computing x raw | computing CPU x raw "
        "| CPU s | CPU x raw | failed |",
        "|---|---|---|---|---|---|---|---|---|",
    ]

    def f(x, fmt="{:.2f}"):
        return "" if x is None else fmt.format(x)

    for r in rows:
        failed = r.get("failed")
        if r["method"] == "cdo-loop" and r.get("files") is not None:
            failed = f"{failed} of {r['files']} files"
        lines.append(
            f"| {r['method']} | {f(r.get('seconds'))} | {f(r.get('ratio'))} | "
            f"{f(r.get('compute_seconds'))} | {f(r.get('compute_ratio'))} | "
            f"{f(r.get('compute_cpu_ratio'))} | {f(r.get('cpu'))} | "
            f"{f(r.get('cpu_ratio'))} | "
            f"{'' if failed is None else failed} |"
        )
    lines.append("")
    lines.append(
        f"{costs['series']} series. Per series (derived from CPU seconds, see "
        "benchmarks/archive.py): "
        + ", ".join(
            f"{k.replace('_ms_per_series', '')} {v:.1f} ms"
            for k, v in costs.items()
            if k.endswith("_ms_per_series")
        )
        + "."
    )
    return "\n".join(lines)


def results_head(result: dict) -> str:
    ar = result["archive"]
    return (
        f"## Whole archive (`python benchmarks/archive.py`): `gridflux synth --size {ar['size']}`, "
        f"{ar['series']} series, {ar['files']} files, {result['rounds']} round(s), "
        f"{result['machine']['when']}, {result['machine']['cpus']} CPUs\n"
    )


def write_results_md(path: str, text: str) -> None:
    section = f"{RESULTS_BEGIN}\n{text}\n{RESULTS_END}"
    old = open(path).read() if os.path.exists(path) else ""
    if RESULTS_BEGIN in old and RESULTS_END in old:
        a = old.index(RESULTS_BEGIN)
        b = old.index(RESULTS_END) + len(RESULTS_END)
        new = old[:a] + section + old[b:]
    else:
        new = old.rstrip("\n") + "\n\n" + section + "\n"
    with open(path, "w") as f:
        f.write(new)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--size", default="small", choices=("tiny", "small"))
    p.add_argument("--quick", action="store_true", help="1 round, no CDO loop")
    p.add_argument("--rounds", type=int, default=None, help="timed rounds (default 2; quick 1)")
    p.add_argument("--no-warmup", action="store_true")
    p.add_argument("--methods", nargs="*", default=None, help=f"subset of {METHODS}")
    p.add_argument("--select", action="append", default=[], help="catalog query KEY=V1,V2")
    p.add_argument("--cache", default=DEFAULT_CACHE)
    p.add_argument("--json", default=None, help="write the records here (default: none)")
    p.add_argument("--results-md", default=None, help="write the section into this RESULTS.md")
    p.add_argument("--profile", action="store_true", help="cProfile the one-process run only")
    p.add_argument(
        "--from-json", default=None, help="re-render the table (and --results-md) of a saved run"
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    a = parse(argv)
    if a.from_json:
        with open(a.from_json) as f:
            saved = json.load(f)
        n = saved["archive"]["series"]
        summary = summarize(saved["records"], n)
        costs = per_series(summary, n)
        saved.update(summary=summary, per_series=costs)
        text = table(summary, costs)
        print(text)
        if a.json:
            with open(a.json, "w") as f:
                json.dump(saved, f, indent=1)
        if a.results_md:
            write_results_md(a.results_md, results_head(saved) + "\n" + text)
        return saved
    env = os.environ.copy()
    env["PYTHONPATH"] = ROOT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    os.makedirs(a.cache, exist_ok=True)
    root = build_archive(a.cache, a.size, env)
    work = tempfile.mkdtemp(prefix="archive-", dir=a.cache)
    try:
        select = parse_select(a.select)
        rows = catalog_rows(root, select)
        n_series = series_count(rows)
        files = sorted({os.path.join(root, r["path"]) for r in rows})
        files_txt = os.path.join(work, "files.txt")
        with open(files_txt, "w") as f:
            f.write("\n".join(files) + "\n")
        rows_csv = os.path.join(work, "rows.csv")
        with open(rows_csv, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
        if a.profile:
            return profile(root, work, a.select, env)
        methods = list(a.methods or METHODS)
        if a.quick and not a.methods:
            methods.remove("cdo-loop")
        if "cdo-loop" in methods and shutil.which("cdo") is None:
            print("cdo-loop: skipped (cdo not found)")
            methods.remove("cdo-loop")
        if "raw" not in methods:
            methods.insert(0, "raw")
        rounds = a.rounds or (1 if a.quick else 2)
        print(f"archive {root}: {n_series} series, {len(files)} files; methods {methods}")
        if not a.no_warmup:
            run_method("raw", root, work, files_txt, rows_csv, a.select, env)
        records = []
        for rnd in range(rounds):
            order = ["imports"] + methods[rnd % len(methods) :] + methods[: rnd % len(methods)]
            for m in order:
                rec = run_method(m, root, work, files_txt, rows_csv, a.select, env)
                rec["round"] = rnd
                records.append(rec)
                msg = f"round {rnd} {m:18s} {rec['seconds']:7.2f} s  cpu {rec['cpu']:7.2f} s"
                if rec.get("compute_seconds") is not None:
                    msg += f"  computing {rec['compute_seconds']:.2f} s"
                if rec["returncode"]:
                    msg += f"  EXIT {rec['returncode']}: {rec['stderr'][-300:]}"
                print(msg, flush=True)
        summary = summarize(records, n_series)
        costs = per_series(summary, n_series)
        text = table(summary, costs)
        print(text)
        result = {
            "archive": {
                "size": a.size,
                "series": n_series,
                "files": len(files),
                "select": a.select,
            },
            "machine": {
                "cpus": os.cpu_count(),
                "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            },
            "rounds": rounds,
            "summary": summary,
            "per_series": costs,
            "records": [{k: v for k, v in r.items() if k not in ("stdout",)} for r in records],
        }
        if a.json:
            with open(a.json, "w") as f:
                json.dump(result, f, indent=1)
        if a.results_md:
            write_results_md(a.results_md, results_head(result) + "\n" + text)
        return result
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
