#!/usr/bin/env python
"""Paper-scale projection: core-hours and wall time of the RECCAP2 archive for gridflux, CDO and
NCO.

    python benchmarks/project.py benchmarks/results.json [--fs-bandwidth 1 10] [--markdown]
    python benchmarks/project.py --archive benchmarks/archive.json \
        --objstore benchmarks/objstore.json [--markdown]        # per series / per byte (below)

The archive (defaults; all are options): 52 process-model runs x 5 variables x 1850-2020 monthly
at ~1 deg, plus 14 inversions x 5 variables x 2000-2020 at ~2x3 deg: 551 160 monthly fields in ~330
variable-files, ~143 GB decoded, ~105 GB on disk.

Model, stated so it can be argued with:

* **per-byte cost** of each method = its whole-process median seconds per decoded GB on the
  long 1.25 x 1.875 deg zlib case (``coarse-zlib``, 1200 months, the closest to a 1 deg
  171-year file), measured on one core by ``run.py``. For gridflux's pipeline the per-byte cost
  comes from the ensemble-scaling run through ``gridflux.pipeline.runner.run`` with warm workers
  (task overheads, xarray/dask opening and the manifest included).
* **core-seconds** = decoded bytes x per-byte cost (``cdo -P 2`` counts 2 cores).
* **wall time on N cores** = max of
  - compute: core-seconds / (N x efficiency), efficiency = the measured 1 -> 2 worker parallel
    efficiency for gridflux's pipeline (assumed to hold at N), 1 for independent per-file
    CDO/NCO processes;
  - granularity: CDO and NCO run one process per file, so no run is shorter than the largest
    file's time (files / N rounded up, times the mean file time); gridflux tasks are 12-month
    blocks (551 160 / 12 = 45 930 tasks) so this bound is negligible for it;
  - I/O ceiling: on-disk bytes / file-system bandwidth (the archive cannot be read faster).

**Per-series and per-byte projection** (``--archive``/``--objstore``, issue 19 point 5): a release
of ``S`` series in ``files`` files, ``D`` GB decoded, ``B`` GB stored, on ``N`` cores, from local
disk or object storage. Measured costs (:func:`measured_costs`):

* from ``benchmarks/archive.json`` (``benchmarks/archive.py``, the small synthetic archive of many
  short series, whole processes): ``c_series`` = worker CPU per series beyond importing and
  decoding (open, metadata, normalize, task, store write, manifest), ``d_series`` = driver CPU per
  series in the computing phase (where planning streams), ``d_fixed`` = the rest of the driver's
  whole-process CPU (imports, catalog, mask, template, cluster start: once per run),
  ``c_decode`` = CPU seconds per decoded GB of the single-process raw decode (the archive's
  decoded size is not in the JSON: ``--archive-decoded-gb``, 0.48 GB as measured for issue 19),
  ``imports`` = the CPU of importing the stack, once per worker;
* from ``benchmarks/objstore.json`` (``benchmarks/objstore.py``, gridflux's reads over the shimmed
  S3): per layout, ``F`` = bytes fetched / bytes stored (45N-90N mask), ``open_s`` = seconds to
  open one remote file (metadata requests), ``fetch_s`` = seconds per fetched GB of one worker's
  reads, decoding included (concurrent range requests, then inflating what was fetched; under the
  shim's latency/bandwidth model: see ``benchmarks/s3shim.py``; real S3 differs).

Model:

* worker core-seconds ``W = S * c_series + D * c_decode`` (local), and from object storage
  ``W = S * c_series + files * open_s + F * B * fetch_s``: the time a worker waits for the
  network and decodes what it fetched (a waiting worker holds its core: counted, not
  overlapped);
* wall on ``N`` cores = max of: ``imports + W / (N * efficiency)`` (``--efficiency``, 1 by
  default: an optimistic bound; the 2-core VM of the measurements cannot measure it), the driver's
  serial work ``d_fixed + S * d_series`` (planning, scheduling, collecting: it does not shrink
  with N), and
  the I/O ceiling ``B / fs-bandwidth`` (local) or ``F * B / store-bandwidth`` (object storage,
  the aggregate bandwidth the store gives all workers together);
* layouts on object storage: ``deflated`` (CMOR's one step per deflated chunk: every chunk holds
  mask rows, ``F`` ~ 1) and ``uncompressed`` (or row-chunked: ``F`` ~ the mask's share of rows);
  a global mask (RECCAP2's regions cover the globe) needs every row, so ``F`` ~ 1 there whatever
  the layout: the ``uncompressed`` rows are for a regional (45N-90N) study.

Releases (:data:`RELEASES`): the paper's RECCAP2 archive (330 series in ~330 files, 143 GB
decoded, 105 GB stored) and a 10,000-series release of short series (2000-2020 monthly at 1 deg:
252 x 360 x 180 float32 = 65 MB decoded each, 653 GB decoded, stored at RECCAP2's 105/143).
"""

from __future__ import annotations

import argparse
import json
import math
import sys

CORES = (1, 2, 64, 256, 1024)
#: cores of the per-series/per-byte projection
RELEASE_CORES = (1, 2, 8, 64, 256, 1024)
#: release -> (series, files, decoded GB, stored GB)
RELEASES = {
    "RECCAP2 (paper)": (330, 330, 143.0, 105.0),
    "10,000-series release": (10_000, 10_000, 653.2, 653.2 * 105.0 / 143.0),
}


def archive_fields(
    runs=52, inversions=14, variables=5, first=1850, last=2020, inv_first=2000
) -> int:
    return (
        runs * variables * (last - first + 1) * 12
        + inversions * variables * (last - inv_first + 1) * 12
    )


def per_gb_costs(records: list[dict], case: str | None = None) -> dict[str, dict]:
    """method -> {seconds_per_gb, cores, source}: whole-process cost per decoded GB on one case
    (default ``coarse-zlib``, else the largest zlib case of the run)."""
    out = {}
    meth = [r for r in records if r.get("kind") == "method"]
    if case is None:
        names = {r["case"] for r in meth}
        zl = [r for r in meth if r["case"].endswith("zlib")] or meth
        case = (
            "coarse-zlib"
            if "coarse-zlib" in names
            else max(zl, key=lambda r: r["decoded_mb"])["case"]
        )
    for r in records:
        # a method without MB/s read nothing (the start-up floor): it has no cost per byte to
        # project
        if (
            r.get("kind") == "method"
            and r["case"] == case
            and r.get("seconds_median")
            and r.get("mb_per_s")
        ):
            cores = 2 if r["method"] == "cdo-P2" else 1
            out[r["method"]] = {
                "seconds_per_gb": r["seconds_median"] / (r["decoded_mb"] / 1e3),
                "cores": cores,
                "source": f"{case}, whole process",
            }
    runs = [
        r
        for r in records
        if r.get("kind") == "scaling"
        and r.get("what") == "run"
        and r["tool"] == "gridflux pipeline.run"
        and r["timing"] == "in-process, warm workers"
        and r["workers"] == 1
    ]
    big = max(runs, key=lambda r: r["members"], default=None)
    member_mb = next(
        (r["decoded_mb"] for r in meth if r["case"] in ("05deg-zlib", "latlon-zlib")), None
    )
    if big and member_mb:
        out["gridflux-pipeline"] = {
            "seconds_per_gb": big["seconds"] / (big["members"] * member_mb / 1e3),
            "cores": 1,
            "source": f"pipeline.run, {big['members']} members, 1 warm worker",
        }
    return out


def efficiency(records: list[dict]) -> float:
    e = next(
        (
            r["efficiency"]
            for r in records
            if r.get("kind") == "scaling"
            and r.get("what") == "efficiency"
            and r["tool"] == "gridflux pipeline.run"
            and r["timing"] == "in-process, warm workers"
        ),
        None,
    )
    return min(1.0, e) if e else 1.0


def project(
    records: list[dict],
    *,
    decoded_gb=143.0,
    disk_gb=105.0,
    files=330,
    fields=None,
    bandwidths=(1.0, 10.0),
    cores=CORES,
) -> list[dict]:
    costs = per_gb_costs(records)
    eff = efficiency(records)
    fields = fields or archive_fields()
    rows = []
    labels = {
        "raw": "raw decode (the limit)",
        "fused": "gridflux fused kernel",
        "gridflux-pipeline": "gridflux pipeline",
        "cube": "gridflux cube + totals",
        "cdo": "CDO natural one-liner",
        "cdo-P2": "CDO -P 2",
        "cdo-tuned": "CDO tuned",
        "nco": "NCO",
        "xregrid": "xarray-regrid",
    }
    for m, c in costs.items():
        core_s = decoded_gb * c["seconds_per_gb"] * c["cores"]
        per_file_s = core_s / c["cores"] / files
        row = {
            "method": labels.get(m, m),
            "seconds_per_gb": c["seconds_per_gb"],
            "core_hours": core_s / 3600,
            "source": c["source"],
            "wall_hours": {},
        }
        pipeline = m in ("gridflux-pipeline", "fused", "cube", "raw")
        for n in cores:
            workers = max(1, n // c["cores"])
            e = eff if m == "gridflux-pipeline" else 1.0
            compute = core_s / (n * e)
            gran = 0.0 if pipeline else math.ceil(files / workers) * per_file_s
            for bw in bandwidths:
                io = disk_gb / bw
                row["wall_hours"][f"{n} cores, {bw:g} GB/s"] = max(compute, gran, io) / 3600
            row[f"bound_{n}"] = max(
                (("compute", compute), ("files", gran), ("I/O", disk_gb / max(bandwidths))),
                key=lambda x: x[1],
            )[0]
        rows.append(row)
    return [
        {
            "kind": "projection",
            "fields": fields,
            "decoded_gb": decoded_gb,
            "disk_gb": disk_gb,
            "files": files,
            "efficiency_assumed": eff,
            "bandwidths_gb_s": list(bandwidths),
            "io_ceiling_hours": {f"{bw:g} GB/s": disk_gb / bw / 3600 for bw in bandwidths},
            "rows": rows,
        }
    ]


def measured_costs(archive: dict, objstore: dict | None, archive_decoded_gb: float = 0.48) -> dict:
    """The per-series and per-byte costs of the model (see the module docstring) from the JSON of
    ``benchmarks/archive.py`` and ``benchmarks/objstore.py``."""
    summary = {r["method"]: r for r in archive["summary"]}
    per = archive["per_series"]
    out = {
        "c_series_s": per["worker_ms_per_series"] / 1e3,
        # the driver: per series, its CPU in the computing phase (planning streams there: each
        # series is planned just before its tasks go out); the rest of its whole-process CPU
        # (imports, catalog, mask, store template, the cluster's start) is paid once per run
        "d_series_s": per.get("driver_computing_ms_per_series", per["driver_ms_per_series"]) / 1e3,
        "d_fixed_s": (
            (per["driver_ms_per_series"] - per["driver_computing_ms_per_series"])
            * archive["archive"]["series"]
            / 1e3
            if "driver_computing_ms_per_series" in per
            else 0.0
        ),
        "c_decode_s_per_gb": summary["raw"]["cpu"] / archive_decoded_gb,
        "imports_s": summary["imports"]["cpu"],
        "source": (
            f"{archive['archive']['series']} series of the {archive['archive']['size']} synthetic "
            f"archive ({archive['machine']['when']})"
        ),
        "layouts": {},
    }
    for r in (objstore or {}).get("records", []):
        if r["method"] == "gridflux-read" and "open_seconds" in r:
            out["layouts"][r["case"]] = {
                "F": r["fetched_fraction"],
                "open_s": r["open_seconds"],
                "fetch_s_per_gb": r["fetch_seconds_per_gb"],
            }
    if objstore:
        m = objstore["model"]
        out["objstore_source"] = (
            f"{objstore['grid_deg']} deg x {objstore['months']} months, shim "
            f"{m['latency'] * 1e3:.0f} ms + {m['conn_mbps']:.0f} MB/s per connection, "
            f"{m['link_mbps']:.0f} MB/s link ({objstore['when']})"
        )
    return out


def project_release(
    costs: dict,
    *,
    releases: dict | None = None,
    cores=RELEASE_CORES,
    fs_bandwidth: float = 1.0,
    store_bandwidth: float = 10.0,
    efficiency: float = 1.0,
) -> list[dict]:
    """Rows ``{release, storage, F, core_hours, wall_s: {N: s}, bound: {N: word}}`` of the
    per-series/per-byte model (module docstring)."""
    rows = []
    storages = [("local disk", None)] + [
        (f"object storage, {name}", name)
        for name in ("deflated", "uncompressed")
        if name in costs["layouts"]
    ]
    for release, (series, files, decoded, stored) in (releases or RELEASES).items():
        for label, layout in storages:
            work = series * costs["c_series_s"]
            if layout is None:
                frac, io = 1.0, stored / fs_bandwidth
                work += decoded * costs["c_decode_s_per_gb"]
            else:  # fetching and decoding were measured together
                lay = costs["layouts"][layout]
                frac = lay["F"]
                work += files * lay["open_s"] + frac * stored * lay["fetch_s_per_gb"]
                io = frac * stored / store_bandwidth
            driver = costs.get("d_fixed_s", 0.0) + series * costs["d_series_s"]
            wall, bound = {}, {}
            for n in cores:
                parts = {
                    "compute": costs["imports_s"] + work / (n * efficiency),
                    "driver": driver,
                    "I/O": io,
                }
                bound[n] = max(parts, key=lambda k: parts[k])
                wall[n] = parts[bound[n]]
            rows.append(
                {
                    "release": release,
                    "storage": label,
                    "F": frac,
                    "core_hours": work / 3600,
                    "wall_s": wall,
                    "bound": bound,
                }
            )
    return rows


def _secs(s: float) -> str:
    return f"{s:.0f} s" if s < 120 else (f"{s / 60:.1f} min" if s < 7200 else f"{s / 3600:.1f} h")


def release_markdown(costs: dict, rows: list[dict], cores=RELEASE_CORES, **params) -> str:
    lines = [
        f"Measured: per series {costs['c_series_s'] * 1e3:.1f} ms worker CPU and "
        f"{costs['d_series_s'] * 1e3:.1f} ms driver CPU (computing phase; "
        f"{costs.get('d_fixed_s', 0.0):.1f} s once per run), raw decode "
        f"{costs['c_decode_s_per_gb']:.2f} s per decoded GB, imports "
        f"{costs['imports_s']:.2f} s per worker ({costs['source']})"
        + "".join(
            f"; {name}: F = {v['F']:.3f}, {v['open_s'] * 1e3:.0f} ms to open a file, "
            f"{v['fetch_s_per_gb']:.1f} s per fetched GB"
            for name, v in costs["layouts"].items()
        )
        + (f" ({costs['objstore_source']})" if "objstore_source" in costs else "")
        + ". Assumed: "
        + ", ".join(f"{k.replace('_', ' ')} {v:g}" for k, v in params.items())
        + ".",
        "",
        "| release | storage | fetched / stored | core-hours | "
        + " | ".join(f"{n} cores" for n in cores)
        + f" | bound at {cores[-1]} |",
        "|---|---|---|---|" + "---|" * (len(cores) + 1),
    ]
    for r in rows:
        lines.append(
            f"| {r['release']} | {r['storage']} | {r['F']:.2f} | {r['core_hours']:.2f} | "
            + " | ".join(_secs(r["wall_s"][n]) for n in cores)
            + f" | {r['bound'][cores[-1]]} |"
        )
    return "\n".join(lines) + "\n"


def _hours(h: float) -> str:
    return f"{h * 60:.1f} min" if h < 2 else f"{h:.1f} h"


def markdown(p: dict, cores=CORES) -> str:
    bws = p["bandwidths_gb_s"]
    lines = [
        f"RECCAP2 archive: {p['fields']:,} monthly fields, {p['decoded_gb']:g} GB decoded, "
        f"{p['disk_gb']:g} GB on disk, "
        f"{p['files']} files. gridflux pipeline parallel efficiency assumed "
        f"{p['efficiency_assumed']:.2f} at every N "
        "(measured 1 -> 2 workers). I/O ceiling: "
        + ", ".join(f"{k}: {v * 3600:.0f} s" for k, v in p["io_ceiling_hours"].items())
        + ".",
        "",
        "| method | s per decoded GB (1 core) | core-hours | "
        + " | ".join(f"wall {n} cores" for n in cores)
        + " |",
        "|---|---|---|" + "---|" * len(cores),
    ]
    for r in p["rows"]:
        cells = []
        for n in cores:
            lo = r["wall_hours"][f"{n} cores, {max(bws):g} GB/s"]
            hi = r["wall_hours"][f"{n} cores, {min(bws):g} GB/s"]
            cells.append(
                _hours(lo)
                if abs(lo - hi) < 1e-9
                else f"{_hours(lo)}-{_hours(hi)} ({r[f'bound_{n}']})"
            )
        lines.append(
            f"| {r['method']} | {r['seconds_per_gb']:.1f} | {r['core_hours']:.2f} | "
            + " | ".join(cells)
            + " |"
        )
    lines += [
        "",
        f"Wall-time ranges span file-system bandwidths {max(bws):g}..{min(bws):g} GB/s; the word "
        "in brackets "
        "names the bound at the higher bandwidth (compute, files = one process per file for "
        "CDO/NCO, or I/O).",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("results", nargs="?", help="JSON written by benchmarks/run.py --json")
    ap.add_argument("--archive", help="JSON of benchmarks/archive.py (per-series costs)")
    ap.add_argument("--objstore", help="JSON of benchmarks/objstore.py (per-byte fetch costs)")
    ap.add_argument("--archive-decoded-gb", type=float, default=0.48)
    ap.add_argument("--store-bandwidth", type=float, default=10.0, help="object store, GB/s")
    ap.add_argument("--efficiency", type=float, default=1.0)
    ap.add_argument("--decoded-gb", type=float, default=143.0)
    ap.add_argument("--disk-gb", type=float, default=105.0)
    ap.add_argument("--files", type=int, default=330)
    ap.add_argument("--fs-bandwidth", type=float, nargs="+", default=[1.0, 10.0], help="GB/s")
    ap.add_argument("--markdown", action="store_true", help="print Markdown instead of JSON")
    a = ap.parse_args(argv)
    if a.archive:
        with open(a.archive) as f:
            archive = json.load(f)
        objstore = None
        if a.objstore:
            with open(a.objstore) as f:
                objstore = json.load(f)
        costs = measured_costs(archive, objstore, a.archive_decoded_gb)
        params = {
            "fs_bandwidth": a.fs_bandwidth[0],
            "store_bandwidth": a.store_bandwidth,
            "efficiency": a.efficiency,
        }
        rows = project_release(costs, **params)
        params = {
            "file-system GB/s": params["fs_bandwidth"],
            "object-store GB/s": params["store_bandwidth"],
            "parallel efficiency": params["efficiency"],
        }
        print(
            release_markdown(costs, rows, **params)
            if a.markdown
            else json.dumps({"costs": costs, "rows": rows}, indent=1)
        )
        return {"costs": costs, "rows": rows}
    if not a.results:
        ap.error("give the JSON of benchmarks/run.py, or --archive (and --objstore)")
    with open(a.results) as f:
        records = json.load(f)
    p = project(
        records,
        decoded_gb=a.decoded_gb,
        disk_gb=a.disk_gb,
        files=a.files,
        bandwidths=tuple(a.fs_bandwidth),
    )[0]
    print(markdown(p) if a.markdown else json.dumps(p, indent=1))
    return p


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
