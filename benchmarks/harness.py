"""The throughput harness: gridflux vs the decode limit and the peers, whole processes, same files.

See ``benchmarks/README`` section of ``docs/benchmarks.md`` and ``python benchmarks/run.py --help``.
The result is a list of JSON records:

* ``{"kind": "header", ...}``: machine (cores, CPU, memory, load), library and tool versions, date,
  command;
* ``{"kind": "method", "case", "method", "seconds_min", "seconds_median", "seconds_max", "mb_per_s",
  "ratio_to_raw", "ratio_to_cdo", "peak_rss_mb", "max_rel_diff", ...}``: one per case and method
  (ratios are medians of the per-round ratios; a skipped or failed method has ``null`` numbers and
  a ``skipped``/``error`` text);
* ``weights``, ``memory``, ``import``, ``zarr``, ``scaling`` records for the other measurements,
  and ``target`` records (one per target of issue 9, with ``value``, ``limit``, ``pass``).
"""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field

import numpy as np

from benchmarks import inputs as inp
from benchmarks.measure import Measurement, run_measured

HERE = os.path.dirname(os.path.abspath(__file__))
WORKERS = os.path.join(HERE, "workers.py")
PY = sys.executable

#: method name -> (label for the table, what it is)
METHODS = {
    "raw": "raw decode (netCDF4, the limit)",
    "raw-chunks": "raw decode by gridflux's reader (libdeflate)",
    "startup": "Python start-up floor (interpreter, numpy, h5py; reads nothing)",
    "fused": "gridflux fused totals",
    "cube": "gridflux cube + totals (zarr)",
    "cdo": "CDO natural one-liner",
    "cdo-P2": "CDO one-liner -P 2",
    "cdo-tuned": "CDO tuned (clipped, reused gencon)",
    "nco": "NCO ncremap (reused map) + ncap2",
    "xregrid": "xarray-regrid conservative",
    "xesmf": "xESMF conservative",
}
#: methods run by benchmarks/workers.py
PYTHON_METHODS = ("raw", "raw-chunks", "startup", "fused", "cube", "xregrid", "xesmf")
#: methods that read nothing (no MB/s; the projection leaves them out, as their records have no
#: mb_per_s)
READS_NOTHING = ("startup",)
#: methods that only read, or not even that (no totals to compare with the reference)
READERS = ("raw", "raw-chunks", *READS_NOTHING)
#: methods whose answers must equal CDO remapcon on the same cell areas to rounding
EXACT = ("fused", "cube", "cdo-tuned", "nco")


@dataclass
class CaseContext:
    name: str
    spec: inp.FieldSpec
    field: str
    workdir: str
    ref: np.ndarray | None = None
    cdo_weights: str | None = None
    nco_map: str | None = None
    notes: dict = field(default_factory=dict)


def _which(tool: str) -> bool:
    return shutil.which(tool) is not None


def method_available(method: str) -> str | None:
    """None if the method can run here, else the reason it is skipped."""
    if method.startswith("cdo") and not _which("cdo"):
        return "cdo is not installed (apt-get install cdo)"
    if method == "nco" and not all(_which(t) for t in ("ncremap", "ncks", "ncap2")):
        return "NCO (ncremap, ncks, ncap2) is not installed (apt-get install nco)"
    if method == "xregrid" and importlib.util.find_spec("xarray_regrid") is None:
        return "xarray-regrid is not installed"
    if method == "xesmf":
        probe = subprocess.run([PY, "-c", "import xesmf"], capture_output=True, text=True)
        if probe.returncode != 0:
            last = (probe.stderr.strip().splitlines() or ["import failed"])[-1]
            return f"xESMF does not import here (ESMPy is on neither PyPI nor Debian 12): {last}"
    return None


# -- commands -----------------------------------------------------------------------------------
def command(method: str, ctx: CaseContext, ins: inp.Inputs) -> tuple[list[str], str]:
    """(argv, output path) of one method on one case."""
    w = ctx.workdir
    if method in PYTHON_METHODS:
        out = os.path.join(w, f"{method}.npy")
        argv = [
            PY,
            WORKERS,
            method,
            ctx.field,
            "--out",
            out,
            "--mask",
            ins.mask_nc,
            "--maskarea",
            ins.maskarea_clip_nc,
            "--weights-cache",
            os.path.join(w, "weights"),
        ]  # built in the warm-up, as CDO's gencon is
        if method == "cube":
            argv += ["--zarr", os.path.join(w, "cube.zarr")]
        return argv, out
    out = os.path.join(w, f"{method}.nc")
    if method in ("cdo", "cdo-P2"):
        par = ["-P", "2"] if method == "cdo-P2" else []
        return (
            [
                "cdo",
                *par,
                "-s",
                "-b",
                "F64",
                "-fldsum",
                "-mul",
                f"-remapcon,{ins.grid_txt}",
                ctx.field,
                "-mul",
                ins.mask2d_nc,
                "-gridarea",
                ins.mask2d_nc,
                out,
            ],
            out,
        )
    if method == "cdo-tuned":
        return (
            [
                "cdo",
                "-s",
                "-b",
                "F64",
                "-fldsum",
                "-mul",
                f"-remap,{ins.grid_clip_txt},{ctx.cdo_weights}",
                ctx.field,
                ins.maskarea_clip_nc,
                out,
            ],
            out,
        )
    if method == "nco":
        rg = os.path.join(w, "nco-rg.nc")
        script = (
            f"ncremap -t 1 -m {ctx.nco_map} {ctx.field} {rg} >/dev/null && "
            f"ncks -A -v maskarea {ins.maskarea_clip_nc} {rg} && "
            f"ncap2 -O -v -s 'tot=(rh*maskarea).total($lat,$lon)' {rg} {out} && rm -f {rg}"
        )
        return ["sh", "-c", script], out
    raise KeyError(method)


def read_totals(method: str, out: str) -> np.ndarray:
    """Monthly totals (kg s-1) from a method's output file."""
    if out.endswith(".npy"):
        return np.load(out)
    import netCDF4

    with netCDF4.Dataset(out) as nc:
        name = (
            "tot"
            if method == "nco"
            else next(
                v
                for v in nc.variables
                if "time" in nc[v].dimensions and "bnds" not in nc[v].dimensions and v != "time"
            )
        )
        return np.asarray(nc[name][:], dtype=np.float64).ravel()


def rel_diff(x: np.ndarray | None, ref: np.ndarray | None) -> float | None:
    if x is None or ref is None:
        return None
    if x.shape != ref.shape:
        return float("inf")
    return float(np.max(np.abs(x - ref) / np.abs(ref)))


# -- per-case preparation -------------------------------------------------------------------------
def prepare_case(ctx: CaseContext, ins: inp.Inputs, log, extra: list[dict]) -> None:
    """CDO reference (remapcon in double precision) on the same cell areas; CDO gencon weights and
    the NCO map (timed, once)."""
    if _which("cdo"):
        ref = os.path.join(ctx.workdir, "ref.nc")
        # --double: CDO 2 keeps float32 input as float32 in memory, so the regridded intermediate
        # would be rounded to float32 (~1e-9 relative in the totals); the reference is CDO's
        # remapcon in double
        m = run_measured(
            [
                "cdo",
                "--double",
                "-s",
                "-b",
                "F64",
                "-fldsum",
                "-mul",
                f"-remapcon,{ins.grid_clip_txt}",
                ctx.field,
                ins.maskarea_clip_nc,
                ref,
            ]
        )
        if m.ok:
            ctx.ref = read_totals("cdo", ref)
        else:
            log(f"[red]CDO reference failed on {ctx.name}:[/red] {m.stderr[-500:]}")
        wfile = os.path.join(ctx.workdir, "cdo-weights.nc")
        m = run_measured(["cdo", "-s", f"gencon,{ins.grid_clip_txt}", ctx.field, wfile])
        if m.ok:
            ctx.cdo_weights = wfile
        extra.append(
            {
                "kind": "weights",
                "case": ctx.name,
                "tool": "cdo gencon (clipped target)",
                "seconds": m.seconds,
                "ok": m.ok,
            }
        )
    if all(_which(t) for t in ("ncremap", "ncks", "ncap2")):
        mfile = os.path.join(ctx.workdir, "nco-map.nc")
        tmp = os.path.join(ctx.workdir, "nco-first.nc")
        m = run_measured(
            ["ncremap", "-t", "1", "-d", ins.maskarea_clip_nc, "-m", mfile, ctx.field, tmp]
        )
        if m.ok and os.path.exists(mfile):
            ctx.nco_map = mfile
        else:
            log(f"[yellow]ncremap map generation failed on {ctx.name}:[/yellow] {m.stderr[-300:]}")
        if os.path.exists(tmp):
            os.remove(tmp)
        extra.append(
            {
                "kind": "weights",
                "case": ctx.name,
                "tool": "ncremap map + first regrid (nco_con)",
                "seconds": m.seconds,
                "ok": m.ok,
            }
        )


def _one(
    method: str, ctx: CaseContext, ins: inp.Inputs
) -> tuple[Measurement, np.ndarray | None, dict]:
    argv, out = command(method, ctx, ins)
    if os.path.exists(out):
        os.remove(out)
    m = run_measured(argv, cwd=ctx.workdir)
    info: dict = {}
    if m.ok and method in PYTHON_METHODS:
        try:
            info = json.loads(m.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            info = {}
    tot = read_totals(method, out) if m.ok and os.path.exists(out) else None
    return m, tot, info


# -- the run ------------------------------------------------------------------------------------
def machine_header(argv: list[str]) -> dict:
    import importlib.metadata as md

    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), "")
    except OSError:
        pass
    versions = {"python": platform.python_version()}
    for pkg in (
        "gridflux",
        "numpy",
        "scipy",
        "netCDF4",
        "xarray",
        "dask",
        "distributed",
        "zarr",
        "numcodecs",
        "xarray-regrid",
        "psutil",
    ):
        try:
            versions[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            versions[pkg] = None
    try:
        import netCDF4

        versions["libnetcdf"] = netCDF4.__netcdf4libversion__
        versions["libhdf5"] = netCDF4.__hdf5libversion__
    except ImportError:
        pass
    for tool, args in (("cdo", ["--version"]), ("ncks", ["--version"])):
        if _which(tool):
            r = subprocess.run([tool, *args], capture_output=True, text=True)
            text = (r.stdout + r.stderr).strip().splitlines()
            versions[tool] = next((ln for ln in text if "ersion" in ln), text[0] if text else "")
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True, text=True
    ).stdout.strip()
    try:
        import psutil

        mem_gb = psutil.virtual_memory().total / 1e9
    except ImportError:
        mem_gb = None
    return {
        "kind": "header",
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "command": " ".join(argv),
        "cores": os.cpu_count(),
        "cpu": cpu,
        "memory_gb": mem_gb,
        "platform": platform.platform(),
        "load_average_start": list(os.getloadavg()),
        "versions": versions,
        "git_commit": commit,
    }


def _stats(xs: list[float]) -> tuple[float | None, float | None, float | None]:
    xs = [x for x in xs if x is not None]
    if not xs:
        return None, None, None
    return float(min(xs)), float(statistics.median(xs)), float(max(xs))


#: a method whose warm-up run takes longer than this is timed once (its warm-up run) to keep the
#: full run under 20 minutes; its record says so (``timed_once``)
SLOW_SECONDS = 30.0


def run_suite(
    ins: inp.Inputs, methods: list[str], rounds: int, warmup: bool, log, workroot: str
) -> list[dict]:
    """Interleaved rounds of every method on every case; the records of the table and extras."""
    extra: list[dict] = []
    skip = {m: method_available(m) for m in methods}
    for m, why in skip.items():
        if why:
            log(f"[yellow]skipping {m}:[/yellow] {why}")
    ctxs = []
    for spec in ins.suite.cases:
        if spec.name not in ins.fields:
            continue
        wd = os.path.join(workroot, spec.name)
        os.makedirs(wd, exist_ok=True)
        ctx = CaseContext(spec.name, spec, ins.fields[spec.name], wd)
        prepare_case(ctx, ins, log, extra)
        ctxs.append(ctx)
    live = [m for m in methods if not skip[m]]
    for ctx in ctxs:  # methods that cannot run on this case
        if ctx.cdo_weights is None and "cdo-tuned" in live:
            ctx.notes["cdo-tuned"] = "cdo gencon failed"
        if ctx.nco_map is None and "nco" in live:
            ctx.notes["nco"] = "ncremap map generation failed"
    secs: dict = {}
    rss: dict = {}
    infos: dict = {}
    totals: dict = {}
    errors: dict = {}
    slow: set = set()
    n_runs = rounds + (1 if warmup else 0)
    for r in range(n_runs):
        timed = r > 0 or not warmup
        order = live[r % len(live) :] + live[: r % len(live)] if live else []
        for ctx in ctxs:
            for m in order:
                key = (ctx.name, m)
                if m in ctx.notes or key in errors or key in slow:
                    continue
                meas, tot, info = _one(m, ctx, ins)
                if not meas.ok:
                    errors[key] = (
                        f"exit {meas.returncode}: {meas.stderr[-400:] or meas.stdout[-400:]}"
                    )
                    log(f"[red]{ctx.name} {m} failed[/red]: {errors[key]}")
                    continue
                if tot is not None:
                    totals[key] = tot
                this_timed = timed
                if not timed and meas.seconds > SLOW_SECONDS and m not in ("raw", "cdo"):
                    slow.add(key)
                    this_timed = True  # the warm-up run is its one timed run
                if this_timed:
                    secs.setdefault(key, []).append(meas.seconds)
                    rss.setdefault(key, []).append(meas.peak_rss_mb)
                    infos.setdefault(key, []).append(info)
            log(f"round {r + 1}/{n_runs}{'' if timed else ' (warm-up)'} {ctx.name} done")
    records = []
    for ctx in ctxs:
        nbytes = ctx.spec.decoded_bytes
        raw_s = secs.get((ctx.name, "raw"), [])
        cdo_s = secs.get((ctx.name, "cdo"), [])
        for m in methods:
            key = (ctx.name, m)
            rec = {
                "kind": "method",
                "case": ctx.name,
                "method": m,
                "label": METHODS[m],
                "decoded_mb": nbytes / 1e6,
                "rounds": len(secs.get(key, [])),
            }
            s = secs.get(key, [])
            lo, med, hi = _stats(s)
            if key in slow and s and raw_s and cdo_s:  # one run: ratio to the medians of the rounds
                rr, rc = [s[0] / statistics.median(raw_s)], [s[0] / statistics.median(cdo_s)]
                rec["timed_once"] = (
                    f"warm-up run took {s[0]:.0f} s > {SLOW_SECONDS:.0f} s: timed once"
                )
            else:
                rr = (
                    [a / b for a, b in zip(s, raw_s, strict=True)]
                    if len(raw_s) == len(s) and s
                    else []
                )
                rc = (
                    [a / b for a, b in zip(s, cdo_s, strict=True)]
                    if len(cdo_s) == len(s) and s
                    else []
                )
            rec.update(
                {
                    "seconds_min": lo,
                    "seconds_median": med,
                    "seconds_max": hi,
                    "mb_per_s": nbytes / 1e6 / med if med and m not in READS_NOTHING else None,
                    "ratio_to_raw": float(statistics.median(rr)) if rr else None,
                    "ratio_to_cdo": float(statistics.median(rc)) if rc else None,
                    "peak_rss_mb": max(rss[key]) if key in rss else None,
                    "max_rel_diff": None if m in READERS else rel_diff(totals.get(key), ctx.ref),
                }
            )
            if skip.get(m):
                rec["skipped"] = skip[m]
            elif m in ctx.notes:
                rec["skipped"] = ctx.notes[m]
            elif key in errors:
                rec["error"] = errors[key]
            if ctx.ref is None and m not in READERS and not rec.get("skipped"):
                rec["note"] = "no CDO reference (cdo missing or failed)"
            if m in ("fused", "cube") and infos.get(key):
                rec["weights_s_median"] = float(
                    statistics.median(i.get("weights_s", 0.0) for i in infos[key])
                )
            if m == "cube" and infos.get(key):
                zs = [i["zarr_s"] for i in infos[key]]
                zr = (
                    [a / b for a, b in zip(zs, raw_s, strict=True)] if len(raw_s) == len(zs) else []
                )
                extra.append(
                    {
                        "kind": "zarr",
                        "case": ctx.name,
                        "write_seconds_median": float(statistics.median(zs)),
                        "ratio_to_raw": float(statistics.median(zr)) if zr else None,
                        "compression_ratio": float(
                            statistics.median(i["zarr_ratio"] for i in infos[key])
                        ),
                        "cube_mb": infos[key][0]["zarr_bytes"] / 1e6,
                        "codec": "Blosc lz4-1 + shuffle, 256 KiB blocks, zarr v3 (new stores)",
                    }
                )
            records.append(rec)
    return records + extra


def weight_timings(ins: inp.Inputs, log) -> list[dict]:
    """Weight building for typical source grids -> the target: gridflux (in-process) vs cdo
    gencon."""
    out = []
    m = run_measured(
        [PY, WORKERS, "weights", "--mask", ins.mask_nc, "--sources", *ins.weight_sources.values()]
    )
    gf = json.loads(m.stdout.strip().splitlines()[-1])["weights"] if m.ok else {}
    if not m.ok:
        log(f"[red]weights worker failed:[/red] {m.stderr[-400:]}")
    for label, path in ins.weight_sources.items():
        rec = {
            "kind": "weights",
            "pair": f"{label} -> {ins.suite.target_dlat} deg",
            "tool": "gridflux",
        }
        rec.update(gf.get(path, {}))
        if _which("cdo"):
            wfile = os.path.join(os.path.dirname(path), f"gencon-{label}.nc")
            times = []
            for _ in range(2):
                c = run_measured(["cdo", "-s", f"gencon,{ins.grid_txt}", path, wfile])
                if c.ok:
                    times.append(c.seconds)
            rec["cdo_gencon_s"] = min(times) if times else None
            if os.path.exists(wfile):
                os.remove(wfile)
        out.append(rec)
    return out


def import_time(n: int = 5) -> dict:
    code = "import time; t = time.perf_counter(); import gridflux; print(time.perf_counter() - t)"
    ts, walls = [], []
    for _ in range(n):
        t0 = time.perf_counter()
        r = subprocess.run([PY, "-c", code], capture_output=True, text=True, check=True)
        walls.append(time.perf_counter() - t0)
        ts.append(float(r.stdout.strip()))
    mods = subprocess.run(
        [
            PY,
            "-c",
            "import sys, gridflux; print(len(sys.modules)); "
            "print(' '.join(m for m in ('numpy','xarray','dask','zarr','scipy') if m in "
            "sys.modules))",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\n")
    kern = []
    for _ in range(3):
        r = subprocess.run(
            [PY, "-c", code.replace("import gridflux;", "import gridflux.fields.totals;")],
            capture_output=True,
            text=True,
            check=True,
        )
        kern.append(float(r.stdout.strip()))
    return {
        "kind": "import",
        "seconds_median": float(statistics.median(ts)),
        "seconds_max": max(ts),
        "totals_kernel_import_s": float(statistics.median(kern)),
        "process_wall_median": float(statistics.median(walls)),
        "modules_loaded": int(mods[0]),
        "heavy_modules_loaded": mods[1].split(),
    }


def memory_flatness(ins: inp.Inputs, case: str, log) -> list[dict]:
    """Peak RSS of the fused totals on the first 120 months vs all months of one long file."""
    spec = next(s for s in ins.suite.cases if s.name == case)
    out = []
    months = sorted({min(120, spec.months) // (10 if ins.suite.name == "tiny" else 1), spec.months})
    for n in months:
        m = run_measured(
            [PY, WORKERS, "fused", ins.fields[case], "--mask", ins.mask_nc, "--months", str(n)]
        )
        if not m.ok:
            log(f"[red]memory run failed:[/red] {m.stderr[-300:]}")
        out.append(
            {
                "kind": "memory",
                "case": case,
                "method": "fused",
                "months": n,
                "peak_rss_mb": m.peak_rss_mb,
                "seconds": m.seconds,
            }
        )
    return out
