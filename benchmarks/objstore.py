#!/usr/bin/env python
"""Object storage bounded by the bytes the mask touches (issue 19 point 4).

    python -m benchmarks.objstore [--months 120] [--res 0.5] [--rounds 3] [--json PATH]
        [--latency 0.02 --conn-mbps 100 --link-mbps 400] [--cases uncompressed,...] [--no-run]

Each case is one 0.5 deg float32 field ``rh`` of ``--months`` months (CMOR-like CF: bounds,
``noleap`` time; :func:`benchmarks.inputs.field_values`), uploaded to moto's S3 server behind the
shim of :mod:`benchmarks.s3shim` (per-request latency, per-connection and shared-link bandwidth:
the model is stated there), and a one-region fractional mask that is zero south of 45N (the
45N-90N total: 90 of 360 latitude rows). The cases are the layouts of real files:

==================  ========================================================================
``uncompressed``    contiguous, no filter (``nccopy -k nc4`` without chunking)
``chunked``         one time step per chunk, no filter (CMOR's layout, uncompressed)
``row-chunked``     chunks of 1 step x 45 rows x all longitudes, deflate 1 + shuffle
``deflated``        one time step per chunk, deflate 1 + shuffle (CMOR's layout)
==================  ========================================================================

Methods, each timed in this process after a warm-up (imports, the first connection), in rounds
that interleave the methods (the order rotates), with the process's block cache emptied before
every read (so every round reads each file's metadata again, as a fresh worker would), medians of
``--rounds``:

* ``s3fs-xarray``: what users write: ``xr.open_dataset(s3fs.open(url), engine="h5netcdf")``,
  the whole variable read (``.values``), then ``sum(field * mask * cell area)`` per month;
* ``gridflux-read``: :func:`gridflux.ingest.remote.open_netcdf` (h5netcdf metadata, the field read
  by chunk: :class:`gridflux.ingest.chunkread.RemoteChunkReader`), 12-month blocks of the mask's
  rows read as the pipeline reads them, the same weighted sum;
* ``gridflux-run``: the whole pipeline, ``gridflux.pipeline.runner.run`` of an S3 catalog of the
  file in this process (``cluster none``, no cubes, the store on local disk): the catalog read
  from S3, planning, opening, reading, weights, totals, store and manifest writes. The store's
  totals are read back for the check after the clock has stopped (the other methods' timings end
  with their totals in memory too).

Every method runs in the same process after the same warm-up, so neither pays imports or a
first connection in its time. Reported per case and method: seconds, bytes fetched (object GETs
counted by the shim: metadata and data, retries included) / bytes stored, requests, and the
speed-up against ``s3fs-xarray``: of the medians, and per round (the ratio of one round's
timings, taken within seconds of each other: on a shared machine the steadier figure).
Checks: ``gridflux-read``'s rows are bit-identical to the same rows of the whole read (so are its
totals), and the run's totals agree with the whole read's to 1e-12.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from benchmarks.inputs import field_values, mask_fractions, write_region_mask  # noqa: E402
from benchmarks.s3shim import LinkModel, SlowS3  # noqa: E402

#: case -> (chunk sizes as fractions of (1, nlat, nlon) or None: contiguous, deflate)
CASES = {
    "uncompressed": (None, False),
    "chunked": ((1, 1, 1), False),
    "row-chunked": ((1, 8, 1), True),  # nlat / 8 rows per chunk (45 rows at 0.5 deg)
    "deflated": ((1, 1, 1), True),
}
SOUTH = 45.0
BUCKET = "gridflux-objstore"
METHODS = ("s3fs-xarray", "gridflux-read", "gridflux-run")


def write_case(path: str, case: str, res: float, months: int) -> None:
    """One CF field ``rh`` in the layout of ``case`` (see the module docstring)."""
    import netCDF4

    from gridflux.kernels.grids import global_grid

    grid = global_grid(res, res, -180.0)
    layout, deflate = CASES[case]
    edges = np.concatenate([[0.0], np.cumsum(month_seconds(months) / 86400.0)])
    tmp = path + ".tmp"
    with netCDF4.Dataset(tmp, "w", format="NETCDF4") as nc:
        nc.createDimension("time", months)  # fixed: a contiguous variable has no unlimited dim
        nc.createDimension("bnds", 2)
        nc.createDimension("lat", grid.nlat)
        nc.createDimension("lon", grid.nlon)
        t = nc.createVariable("time", "f8", ("time",))
        t.setncatts(
            {"units": "days since 1850-01-01", "calendar": "noleap", "standard_name": "time",
             "axis": "T", "bounds": "time_bnds"}
        )  # fmt: skip
        t[:] = 0.5 * (edges[:-1] + edges[1:])
        nc.createVariable("time_bnds", "f8", ("time", "bnds"))[:] = np.column_stack(
            [edges[:-1], edges[1:]]
        )
        for name, centres, bounds, units, axis in (
            ("lat", grid.lat, grid.lat_bounds, "degrees_north", "Y"),
            ("lon", grid.lon, grid.lon_bounds, "degrees_east", "X"),
        ):
            v = nc.createVariable(name, "f8", (name,))
            v.setncatts({"units": units, "axis": axis, "bounds": f"{name}_bnds"})
            v[:] = centres
            nc.createVariable(f"{name}_bnds", "f8", (name, "bnds"))[:] = bounds
        kw: dict = {"zlib": True, "complevel": 1, "shuffle": True} if deflate else {}
        if layout is None:
            kw["contiguous"] = True
        else:
            kw["chunksizes"] = (1, grid.nlat // layout[1], grid.nlon // layout[2])
        v = nc.createVariable("rh", "f4", ("time", "lat", "lon"), fill_value=np.float32(1e20), **kw)
        v.setncatts(
            {"standard_name": "heterotrophic_respiration_carbon_flux", "units": "kg m-2 s-1",
             "cell_methods": "area: mean time: mean"}
        )  # fmt: skip
        v.set_auto_maskandscale(False)
        if layout is None:  # contiguous: the whole variable is allocated at once
            v[:] = np.stack([x for _, x in field_values(grid, months)])
        else:
            for i, x in field_values(grid, months):
                v[i] = x
        nc.Conventions = "CF-1.8"
    os.replace(tmp, path)


def weights(res: float) -> tuple[np.ndarray, slice]:
    """(mask x exact cell area in m2 (nlat, nlon) float64, at gridflux's earth radius; the rows
    where it is not zero)."""
    from gridflux import config
    from gridflux.kernels.grids import cell_areas, global_grid

    grid = global_grid(res, res, -180.0)
    w = mask_fractions(grid, SOUTH) * cell_areas(grid, float(config.get("earth-radius")))
    rows = np.flatnonzero(w.any(axis=1))
    return w, slice(int(rows[0]), int(rows[-1]) + 1)


def month_seconds(months: int) -> np.ndarray:
    """Seconds of each month of the files' ``noleap`` calendar from January."""
    days = np.tile([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], months // 12 + 1)[:months]
    return days * 86400.0


def totals(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Per-month ``sum(x * w)`` in float64 (kg s-1)."""
    return np.einsum("tij,ij->t", x.astype(np.float64), w)


# -- methods ------------------------------------------------------------------------------------
def whole_read(url: str, so: dict, w: np.ndarray, rows: slice):
    import s3fs
    import xarray as xr

    fs = s3fs.S3FileSystem(**so)
    with fs.open(url, "rb") as f, xr.open_dataset(f, engine="h5netcdf") as ds:
        x = ds["rh"].values
    return totals(x[:, rows], w[rows]), x[:, rows]


def gridflux_read(url: str, so: dict, w: np.ndarray, rows: slice, block: int = 12, timing=None):
    from gridflux.ingest import remote

    t0 = time.perf_counter()
    with remote.open_netcdf(url, so, decode_times=False) as ds:
        da = ds["rh"]
        if timing is not None:  # the file's metadata: h5netcdf's open and the chunk reader's
            timing["open"] = time.perf_counter() - t0
        parts = [da[i : i + block, rows].values for i in range(0, da.shape[0], block)]
    x = np.concatenate(parts)
    return totals(x, w[rows]), x


def gridflux_run(catalog: str, mask: str, so: dict, workdir: str, label: str) -> str:
    """The run (what is timed); returns its store's path (read by :func:`run_totals` after the
    clock has stopped: a check of the result, not part of what a user's run does)."""
    from gridflux.pipeline.runner import run

    store = os.path.join(workdir, f"store-{label}.zarr")
    # store_options=so as well: the runner hands the store's options to the series tasks
    # (reported to the lead), so the inputs' credentials must be there
    s = run(catalog, mask, store, cubes=False, storage_options=so, store_options=so, progress=False)
    if s.failed:
        raise RuntimeError(f"gridflux run failed: {s.failed}")
    return store


def run_totals(store: str):
    """The totals a run wrote (Tg per month), as ``(totals, None)``."""
    import xarray as xr

    with xr.open_zarr(store) as ds:
        return np.asarray(ds["totals"].values).ravel(), None


def _clear_caches() -> None:
    from gridflux.ingest import remote

    remote.clear_block_cache()


# -- driver -------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--months", type=int, default=120)
    ap.add_argument("--res", type=float, default=0.5, help="grid spacing, degrees")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--latency", type=float, default=LinkModel.latency)
    ap.add_argument("--conn-mbps", type=float, default=LinkModel.conn_mbps)
    ap.add_argument("--link-mbps", type=float, default=LinkModel.link_mbps)
    ap.add_argument("--no-run", action="store_true", help="skip the whole-pipeline method")
    ap.add_argument("--workdir", help="where the files go (default: a temporary directory)")
    ap.add_argument("--json", default=os.path.join(ROOT, "benchmarks", "objstore.json"))
    a = ap.parse_args(argv)
    cases = [c for c in a.cases.split(",") if c]
    model = LinkModel(a.latency, a.conn_mbps, a.link_mbps)
    with tempfile.TemporaryDirectory(prefix="gf-objstore-") as tmp:
        workdir = a.workdir or tmp
        os.makedirs(workdir, exist_ok=True)
        out = _bench(cases, a, model, workdir)
    with open(a.json, "w") as f:
        json.dump(out, f, indent=1)
    print(table(out))
    return out


def _bench(cases: list[str], a, model: LinkModel, workdir: str) -> dict:
    from gridflux.ingest.catalog import write_catalog
    from gridflux.kernels.grids import global_grid

    w, rows = weights(a.res)
    grid = global_grid(a.res, a.res, -180.0)
    mask = os.path.join(workdir, "regions.nc")
    write_region_mask(mask, grid, ("north",), mask_fractions(grid, SOUTH)[None])
    records: list[dict] = []
    with SlowS3(model) as s3:
        so = s3.storage_options
        client = s3.client()
        client.create_bucket(Bucket=BUCKET)
        paths = {}
        for case in cases:
            d = os.path.join(workdir, case)
            os.makedirs(d, exist_ok=True)
            p = os.path.join(d, f"rh_Lmon_OBJ_historical_r1i1p1f1_gr_{case}.nc")
            write_case(p, case, a.res, a.months)
            client.upload_file(p, BUCKET, f"{case}/{os.path.basename(p)}")
            row = {
                "ensemble": "bench", "source_id": f"OBJ-{case}", "experiment": "historical",
                "member_id": "r1i1p1f1", "variable": "rh", "gas": "CO2", "path": p,
            }  # fmt: skip
            write_catalog([row], os.path.join(d, "catalog.json"), description="objstore bench")
            client.upload_file(os.path.join(d, "catalog.json"), BUCKET, f"{case}/catalog.json")
            client.upload_file(os.path.join(d, "catalog.csv"), BUCKET, f"{case}/catalog.csv")
            paths[case] = p
        # warm-up: imports, connections, the first open of each library (not timed)
        warm = f"s3://{BUCKET}/{cases[0]}/{os.path.basename(paths[cases[0]])}"
        whole_read(warm, so, w, rows)
        gridflux_read(warm, so, w, rows)
        if not a.no_run:
            gridflux_run(f"s3://{BUCKET}/{cases[0]}/catalog.json", mask, so, workdir, "warm")
        methods = [m for m in METHODS if not (m == "gridflux-run" and a.no_run)]
        for case in cases:
            p = paths[case]
            url = f"s3://{BUCKET}/{case}/{os.path.basename(p)}"
            data_key = f"{BUCKET}/{case}/{os.path.basename(p)}"
            stored = os.path.getsize(p)
            raw: dict[str, dict[str, list]] = {
                m: {"secs": [], "fetched": [], "requests": [], "opens": []} for m in methods
            }
            out: dict[str, tuple] = {}
            for r in range(a.rounds):  # rounds interleave the methods (the order rotates)
                for method in methods[r % len(methods) :] + methods[: r % len(methods)]:
                    got = raw[method]
                    _clear_caches()
                    s3.reset()
                    t0 = time.perf_counter()
                    if method == "s3fs-xarray":
                        out[method] = whole_read(url, so, w, rows)
                    elif method == "gridflux-read":
                        timing: dict = {}
                        out[method] = gridflux_read(url, so, w, rows, timing=timing)
                        got["opens"].append(timing["open"])
                    else:
                        cat = f"s3://{BUCKET}/{case}/catalog.json"
                        store = gridflux_run(cat, mask, so, workdir, f"{case}-{r}")
                    got["secs"].append(time.perf_counter() - t0)
                    if method == "gridflux-run":  # read back after the clock (a check)
                        out[method] = run_totals(store)
                    st = s3.stats()["keys"].get(data_key, {})
                    got["fetched"].append(st.get("bytes", 0))
                    got["requests"].append(st.get("requests", 0))
            results: dict[str, dict] = {}
            ref = out["s3fs-xarray"]
            for method in methods:
                got = raw[method]
                rec = {
                    "case": case,
                    "method": method,
                    "seconds": float(np.median(got["secs"])),
                    "seconds_all": got["secs"],
                    "bytes_stored": stored,
                    "bytes_fetched": int(np.median(got["fetched"])),
                    "fetched_fraction": float(np.median(got["fetched"])) / stored,
                    "requests": int(np.median(got["requests"])),
                }
                if got["opens"]:  # the per-file fixed cost of a remote file, the rest per byte
                    rec["open_seconds"] = float(np.median(got["opens"]))
                    rec["fetch_seconds_per_gb"] = (rec["seconds"] - rec["open_seconds"]) / (
                        rec["bytes_fetched"] / 1e9
                    )
                tot, x = out[method]
                if method == "gridflux-run":  # the store's Tg per month, back to kg s-1
                    tot = tot * 1e9 / month_seconds(a.months)
                if method != "s3fs-xarray":
                    if x is not None:
                        rec["rows_identical"] = bool(np.array_equal(x, ref[1]))
                        rec["totals_identical"] = bool(np.array_equal(tot, ref[0]))
                    rec["max_rel_diff"] = float(np.max(np.abs(tot - ref[0]) / np.abs(ref[0]).max()))
                results[method] = rec
            base = results["s3fs-xarray"]["seconds"]
            base_all = results["s3fs-xarray"]["seconds_all"]
            for rec in results.values():
                rec["speedup"] = base / rec["seconds"]
                rec["speedup_rounds"] = [
                    b / x for b, x in zip(base_all, rec["seconds_all"], strict=True)
                ]
                records.append(rec)
    return {
        "what": "issue 19 point 4: object storage bounded by the bytes the mask touches",
        "grid_deg": a.res,
        "months": a.months,
        "mask": f"one region, zero south of {SOUTH}N: rows {rows.start}-{rows.stop - 1} of "
        f"{grid.nlat}",
        "rounds": a.rounds,
        "model": model.__dict__,
        "cpus": os.cpu_count(),
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "records": records,
    }


def table(out: dict) -> str:
    """The results as a markdown table."""
    lines = [
        f"{out['grid_deg']} deg, {out['months']} months, {out['mask']}; shim: "
        f"{out['model']['latency'] * 1e3:.0f} ms/request, {out['model']['conn_mbps']:.0f} MB/s "
        f"per connection, {out['model']['link_mbps']:.0f} MB/s link; medians of "
        f"{out['rounds']} rounds",
        "",
        "| case | method | MB stored | MB fetched | fetched / stored | requests | seconds "
        "| x faster than s3fs-xarray | per round | identical |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in out["records"]:
        same = r.get("rows_identical")
        ident = (
            "(reference)"
            if r["method"] == "s3fs-xarray"
            else ("bit-identical" if same else f"rel {r.get('max_rel_diff', float('nan')):.1e}")
        )
        lines.append(
            f"| {r['case']} | {r['method']} | {r['bytes_stored'] / 1e6:.1f} | "
            f"{r['bytes_fetched'] / 1e6:.1f} | {100 * r['fetched_fraction']:.1f} % | "
            f"{r['requests']} | {r['seconds']:.2f} | {r['speedup']:.1f} | "
            f"{', '.join(f'{x:.1f}' for x in r.get('speedup_rounds', []))} | {ident} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
