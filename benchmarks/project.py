#!/usr/bin/env python
"""Paper-scale projection: core-hours and wall time of the RECCAP2 archive for gridflux, CDO and
NCO.

    python benchmarks/project.py benchmarks/results.json [--fs-bandwidth 1 10] [--markdown]

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
"""

from __future__ import annotations

import argparse
import json
import math
import sys

CORES = (1, 2, 64, 256, 1024)


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
    ap.add_argument("results", help="JSON written by benchmarks/run.py --json")
    ap.add_argument("--decoded-gb", type=float, default=143.0)
    ap.add_argument("--disk-gb", type=float, default=105.0)
    ap.add_argument("--files", type=int, default=330)
    ap.add_argument("--fs-bandwidth", type=float, nargs="+", default=[1.0, 10.0], help="GB/s")
    ap.add_argument("--markdown", action="store_true", help="print Markdown instead of JSON")
    a = ap.parse_args(argv)
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
