"""Graph and scheduler scale of a paper-size archive, built lazily without data (issue 8, point 5).

The archive: 52 process-model runs x 5 variables (gpp npp ra rh cSoil; 1850-2020 monthly on 1 deg)
and 14 inversions x 5 variables (fco2 nee nbp fch4 fn2o; 2000-2020 monthly on 2 x 3 deg), 330
series. Each series is a raw ``xr.Dataset`` as ``catalog.open_series`` returns it (cftime months,
raw units, descending latitudes for some, 12-month dask chunks over a lazily indexed backend
array that returns zeros and reads nothing), run through the real ``normalize.normalize`` and
wired by the real ``pipeline.series_tasks`` into the graph that ``pipeline.run`` submits
(``client.compute(tasks, optimize_graph=False)``: the span tasks, the job's key and the mask's key;
on a cluster the pipeline computes the mask once per run and the spans refer to its future).
Workers open the series
themselves, so a series' graph is one task per span of ``pipeline.task-months`` months, whatever
its units or grid (``auto``, resolved as for 1024 worker threads: 120-month spans).

Measured and written to ``benchmarks/scale.json`` (summary in docs/scale.md):

* tasks per series, 12-month blocks per task, tasks and pickled bytes of one batch of
  ``pipeline.batch-members`` series and of the whole archive;
* a standalone ``dask scheduler`` process (no workers): tasks it holds and its RSS growth when one
  batch is submitted (bytes of scheduler memory per task), and graph ingest time;
* the scheduler's per-task cost with 2 worker processes on no-op tasks (tasks/s);
* the compute time of one ``process_block`` on a 1 deg 12-month block (totals + cube regrid);
* the projection to 64/256/1024 workers (see :func:`project`).

Run: ``python benchmarks/scale.py [--out benchmarks/scale.json] [--no-cluster]``.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import pickle
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

MODEL_VARIABLES = ("gpp", "npp", "ra", "rh", "cSoil")
INVERSION_VARIABLES = ("fco2", "nee", "nbp", "fch4", "fn2o")
N_MODEL_RUNS = 52
N_INVERSIONS = 14
MODEL_YEARS = (1850, 2020)  # inclusive
INVERSION_YEARS = (2000, 2020)
MODEL_RES = (1.0, 1.0)  # dlat, dlon (degrees)
INVERSION_RES = (2.0, 3.0)
CALENDARS = ("noleap", "standard", "360_day", "proleptic_gregorian")
# raw units per variable kind, rotated over members: identity, a scale factor, a per-month factor
MODEL_FLUX_UNITS = ("kg m-2 s-1", "g C m-2 d-1", "g C m-2 month-1")
INVERSION_UNITS = ("kg m-2 s-1", "mol m-2 s-1")
WORKERS = (64, 256, 1024)


class ZeroBackendArray:
    """A lazily indexed placeholder for a file variable: shape and dtype only, zeros when indexed.

    Stands where xarray's netCDF backend array stands in an opened dataset, so that
    ``dask.array.from_array`` builds the same graph shape (one shared source key, one getitem
    per chunk) without any file or any data.
    """

    def __init__(self, shape: tuple[int, ...], dtype: Any = np.float32):
        self.shape = tuple(int(n) for n in shape)
        self.dtype = np.dtype(dtype)
        self.ndim = len(self.shape)

    def __getitem__(self, key: Any) -> np.ndarray:
        return np.broadcast_to(np.zeros((), self.dtype), self.shape)[key].copy()


@dataclass
class LazySeries:
    """Metadata of one lazy series."""

    member: str
    variable: str
    years: tuple[int, int]
    res: tuple[float, float]
    calendar: str
    units: str
    descending: bool

    @property
    def key(self) -> str:  # as a catalog SeriesRecord names itself (graph keys use it)
        return f"{self.member}.{self.variable}"


def paper_series() -> list[LazySeries]:
    """The 330 series of the paper-size archive (52 x 5 model series + 14 x 5 inversion series)."""
    out = []
    for i in range(N_MODEL_RUNS):
        for v in MODEL_VARIABLES:
            units = "kg m-2" if v == "cSoil" else MODEL_FLUX_UNITS[i % len(MODEL_FLUX_UNITS)]
            out.append(
                LazySeries(
                    f"MODEL{i:02d}.hist.r1",
                    v,
                    MODEL_YEARS,
                    MODEL_RES,
                    CALENDARS[i % 4],
                    units,
                    descending=bool(i % 2),
                )
            )
    for i in range(N_INVERSIONS):
        for v in INVERSION_VARIABLES:
            out.append(
                LazySeries(
                    f"INV{i:02d}.inv.r1",
                    v,
                    INVERSION_YEARS,
                    INVERSION_RES,
                    CALENDARS[i % 4],
                    INVERSION_UNITS[i % 2],
                    descending=False,
                )
            )
    return out


@functools.lru_cache(maxsize=32)
def _month_axis(y0: int, nt: int, calendar: str) -> np.ndarray:
    import cftime

    return np.array(
        [cftime.datetime(y0 + k // 12, k % 12 + 1, 1, calendar=calendar) for k in range(nt)]
    )


def raw_dataset(s: LazySeries, chunk_months: int = 12):
    """A raw dataset as ``catalog.open_series`` returns it, backed by :class:`ZeroBackendArray`."""
    import dask.array as dsa
    import xarray as xr

    dlat, dlon = s.res
    lat = -90.0 + dlat * (np.arange(round(180 / dlat)) + 0.5)
    lon = -180.0 + dlon * (np.arange(round(360 / dlon)) + 0.5)
    if s.descending:
        lat = lat[::-1]
    y0, y1 = s.years
    nt = 12 * (y1 - y0 + 1)
    times = _month_axis(y0, nt, s.calendar)
    shape = (nt, lat.size, lon.size)
    data = dsa.from_array(
        ZeroBackendArray(shape), chunks=(chunk_months, -1, -1), name=f"open-{s.member}-{s.variable}"
    )
    raw = xr.DataArray(
        data,
        dims=("time", "lat", "lon"),
        attrs={
            "units": s.units,
            "gridflux_declared_fill": 1,
            "gridflux_unmasked_fill": 0,
            "gridflux_missing_fraction": 0.0,
        },
    )
    ds = xr.Dataset(
        {s.variable: raw},
        coords={"time": ("time", times), "lat": ("lat", lat), "lon": ("lon", lon)},
    )
    ds.attrs.update(
        gridflux_source=f"lazy://{s.member}/{s.variable}.nc", gridflux_calendar=s.calendar
    )
    return ds


def paper_mask():
    """The synthetic RECCAP2-like region mask on the 1 deg grid (in memory)."""
    from gridflux.fields.masks import RegionMask
    from gridflux.kernels.grids import global_grid
    from gridflux.synthetic.regions import REGIONS, mask_array

    m, _, _ = mask_array()
    return RegionMask(tuple(REGIONS), m, global_grid(1.0, 1.0, -180.0))


def paper_plans(series: list[LazySeries] | None = None, chunk_months: int = 12) -> list:
    """SeriesPlan of each series (default: all of :func:`paper_series`): raw lazy -> ``normalize``
    -> canonical."""
    from gridflux.fields.normalize import normalize
    from gridflux.fields.regrid import grid_of
    from gridflux.pipeline.runner import SeriesPlan

    plans = []
    for s in paper_series() if series is None else series:
        ds = normalize(raw_dataset(s, chunk_months), s.variable, calendar=s.calendar)
        times = ds["time"].values
        da = ds[s.variable]
        plans.append(
            SeriesPlan(
                record=s,
                canonical=ds,
                grid=grid_of(ds),
                months=[(int(t.year), int(t.month)) for t in times],
                nbytes=int(da.dtype.itemsize * np.prod(da.shape)),
            )
        )
    return plans


class GraphBuilder:
    """What ``pipeline.run`` does between planning and submission, for lazy plans (no store
    touched)."""

    def __init__(
        self,
        plans: list,
        mask,
        *,
        cubes: bool = True,
        protocol: str = "regrid-data",
        time_chunk: int = 12,
        task_months: int | str | None = None,
        workers: int = 1024,
        store_url: str = "memory://gridflux-scale-store",
    ):
        import dask

        from gridflux import config
        from gridflux.fields.timeaxis import continuous_months
        from gridflux.pipeline.runner import mask_key, target_grid, task_months_for

        self.plans, self.mask, self.cubes, self.protocol, self.time_chunk = (
            plans,
            mask,
            cubes,
            protocol,
            time_chunk,
        )
        self.store_url = store_url
        # "auto" as pipeline.run resolves it for these series on ``workers`` worker threads (at the
        # paper's scale of 1024, the archive's 330 series are split into 120-month spans)
        self.task_months = task_months_for(
            config.get("pipeline.task-months", override=task_months),
            len(plans),
            workers,
            time_chunk,
        )
        self.radius = float(config.get("earth-radius"))
        self.target = target_grid(None)
        mask_t = mask.to_grid(self.target)
        rows, cols = mask_t.bounding_rows_cols()
        self.cube_grid = self.target.subset(rows, cols)
        self.mkey = mask_key(mask)
        months = [m for p in plans for m in p.months]
        axis = continuous_months(min(months), max(months))
        self.axis_pos = {ym: i for i, ym in enumerate(axis)}
        self.members = {m: i for i, m in enumerate(sorted({p.member for p in plans}))}
        self.mask_d = dask.delayed(mask, pure=True, name=f"gridflux-mask-{self.mkey}")

    def job(self, plan):
        """The ``steps.SeriesJob`` that ``pipeline.run`` would build for the series."""
        from gridflux.pipeline.tasks import SeriesJob

        positions = np.array([self.axis_pos[m] for m in plan.months], dtype=np.int64)
        return SeriesJob(
            record=plan.record,
            fingerprint_key="fingerprint",
            months=tuple(plan.months),
            positions=positions,
            mask_key=self.mkey,
            protocol=self.protocol,
            target=self.target,
            radius=self.radius,
            time_chunk=self.time_chunk,
            cube_grid=self.cube_grid if self.cubes else None,
            store_url=self.store_url if self.cubes else None,
            zarr_format=3,
            member_index=self.members[plan.member],
        )

    def tasks(self, plan) -> list:
        """The delayed span tasks of one series (``pipeline.series_tasks``)."""
        from gridflux.pipeline.runner import series_tasks

        return series_tasks(self.job(plan), self.mask_d, None, self.task_months)

    def blocks(self, plan) -> int:
        """12-month blocks of the series (what its tasks read, one at a time)."""
        from gridflux.pipeline.runner import span_blocks

        job = self.job(plan)
        return sum(len(sp) for sp in span_blocks(job.positions, self.time_chunk, self.task_months))

    def submitted(self, plan) -> list:
        """What ``Run.execute`` hands to ``client.compute`` for one series: its span tasks."""
        return self.tasks(plan)


def graph_of(objs: list) -> dict:
    """The merged task graph (key -> task) of several series' span lists, as the scheduler gets
    it."""
    graph: dict = {}
    for spans in objs:
        for o in spans:
            graph.update(dict(o.__dask_graph__()))
    return graph


def pickled_bytes(graph: dict) -> tuple[int, int]:
    """(bytes of the whole graph pickled at once, sum of bytes of each task pickled alone).

    The first is what the client sends the scheduler for a submission (shared objects pickled once);
    the second bounds what the scheduler sends workers (each task's spec travels alone).
    """
    import cloudpickle

    whole = len(cloudpickle.dumps(graph, protocol=pickle.HIGHEST_PROTOCOL))
    each = sum(len(cloudpickle.dumps(t, protocol=pickle.HIGHEST_PROTOCOL)) for t in graph.values())
    return whole, each


def graph_stats(builder: GraphBuilder, batch_size: int) -> dict:
    """Tasks per series and block, and tasks/bytes of the first batch and of the whole archive."""
    per_series, blocks, spans = [], [], []
    all_keys: set = set()
    for p in builder.plans:
        g = graph_of([builder.submitted(p)])
        per_series.append(len(g))
        spans.append(sum(1 for k in g if str(k).startswith("gridflux-span-")))
        blocks.append(builder.blocks(p))
        all_keys |= set(g)
    per_series_a, blocks_a = np.array(per_series), np.array(blocks)
    # batches as Run.execute forms them: the first batch_size series of the catalog order, and the
    # model-run batch (longest series) which is the largest
    batch = [builder.submitted(p) for p in builder.plans[:batch_size]]
    bgraph = graph_of(batch)
    t0 = time.perf_counter()
    whole, each = pickled_bytes(bgraph)
    import cloudpickle

    span_alone = [
        len(cloudpickle.dumps(t)) for k, t in bgraph.items() if str(k).startswith("gridflux-span-")
    ][:50]
    t_pickle = time.perf_counter() - t0
    return {
        "series": len(builder.plans),
        "task_months": builder.task_months,
        "blocks_total": int(blocks_a.sum()),
        "span_tasks_total": int(sum(spans)),
        "tasks_total_distinct": len(all_keys),
        "tasks_per_series_min": int(per_series_a.min()),
        "tasks_per_series_max": int(per_series_a.max()),
        "blocks_per_span_max": float(np.max(blocks_a / np.array(spans))),
        "batch_size": batch_size,
        "batch_series": len(batch),
        "batch_tasks": len(bgraph),
        "batch_pickled_bytes": whole,
        "batch_pickled_bytes_per_task_alone_sum": each,
        "bytes_per_task": whole / len(bgraph),
        "bytes_per_task_alone": each / len(bgraph),
        "batch_pickle_seconds": t_pickle,
        "span_task_bytes_alone": float(np.mean(span_alone)),
    }


# -- measurements on real dask processes --------------------------------------------------------
def _start_scheduler(tmp: str) -> tuple[subprocess.Popen, str]:
    sf = os.path.join(tmp, "scheduler.json")
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "distributed.cli.dask_scheduler",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--dashboard-address",
            "127.0.0.1:0",
            "--scheduler-file",
            sf,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    deadline = time.monotonic() + 60
    while not os.path.exists(sf):
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            raise RuntimeError("dask scheduler did not start")
        time.sleep(0.1)
    time.sleep(0.3)
    return proc, sf


def _rss(pid: int) -> int:
    import psutil

    return psutil.Process(pid).memory_info().rss


def scheduler_memory(builder: GraphBuilder, batch_size: int, n_batches: int = 2) -> dict:
    """Submit ``n_batches`` batches to a worker-less scheduler process: tasks held, RSS growth,
    ingest time."""
    import gc

    from distributed import Client

    with tempfile.TemporaryDirectory() as tmp:
        proc, sf = _start_scheduler(tmp)
        try:
            with Client(scheduler_file=sf) as client:

                def n_tasks() -> int:
                    return client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.tasks))

                for _ in range(3):  # let the scheduler settle (imports, first connection)
                    n_tasks()
                    time.sleep(0.2)
                rss0 = _rss(proc.pid)
                futures, t_submit, all_objs = [], [], []
                for b in range(n_batches):
                    batch = builder.plans[b * batch_size : (b + 1) * batch_size]
                    objs = [builder.submitted(p) for p in batch]
                    all_objs += objs
                    expected = len(graph_of(all_objs))  # distinct keys (the mask key is shared)
                    t0 = time.perf_counter()
                    for o in objs:
                        futures += client.compute(o, optimize_graph=False)
                    deadline = time.monotonic() + 300
                    while n_tasks() < expected:
                        if time.monotonic() > deadline:
                            raise RuntimeError(
                                f"scheduler holds {n_tasks()} tasks, expected {expected}"
                            )
                        time.sleep(0.01)
                    t_submit.append(time.perf_counter() - t0)
                held = n_tasks()
                gc.collect()
                time.sleep(0.5)
                rss1 = _rss(proc.pid)
                for f in futures:
                    f.release()
        finally:
            proc.kill()
            proc.wait()
    n_submitted = n_batches * batch_size
    return {
        "batches_submitted": n_batches,
        "series_submitted": n_submitted,
        "scheduler_tasks_held": held,
        "scheduler_rss_before_mb": rss0 / 1e6,
        "scheduler_rss_after_mb": rss1 / 1e6,
        "scheduler_bytes_per_task": (rss1 - rss0) / held,
        "ingest_seconds_per_batch": t_submit,
        "ingest_ms_per_task": 1e3 * sum(t_submit) / held,
    }


def _noop(x: Any = None) -> None:
    return None


def scheduler_throughput(n_tasks: int = 4000, n_workers: int = 2) -> dict:
    """No-op tasks on ``n_workers`` single-threaded worker processes: end-to-end seconds per
    task."""
    from distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=n_workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address="127.0.0.1:0",
            host="127.0.0.1",
        ) as cluster,
        Client(cluster) as client,
    ):
        client.wait_for_workers(n_workers)
        client.gather(client.map(_noop, range(200), pure=False))  # warm up
        t0 = time.perf_counter()
        futs = client.map(_noop, range(n_tasks), pure=False)
        client.gather(futs)
        dt = time.perf_counter() - t0
    return {
        "noop_tasks": n_tasks,
        "noop_workers": n_workers,
        "noop_seconds": dt,
        "scheduler_ms_per_task": 1e3 * dt / n_tasks,
        "scheduler_tasks_per_second": n_tasks / dt,
    }


def block_compute(builder: GraphBuilder, repeat: int = 5) -> dict:
    """Seconds per 1 deg 12-month block: netCDF read, totals, cube regrid (what one block task
    does).

    The read is of a deflate-1 float32 netCDF file written here (the CMIP6 layout: one chunk per
    month), from the page cache, i.e. a lower bound for a parallel file system or object store.
    """
    import netCDF4

    from gridflux.fields.regrid import cached_weights
    from gridflux.kernels.conservative import apply_separable
    from gridflux.pipeline.tasks import BlockJob, process_block

    plan = builder.plans[0]  # the worker-side block step, with the grid the worker derives
    shape = (12,) + plan.grid.shape
    block = np.random.default_rng(0).random(shape).astype(np.float32) * 1e-8
    secs = np.full(12, 86400.0 * 30)
    pos = np.arange(12)
    job = BlockJob(
        src_grid=plan.grid,
        mask_key=builder.mkey,
        protocol=builder.protocol,
        target=builder.target,
        radius=builder.radius,
        kind="flux",
    )
    process_block(block, secs, pos, job, builder.mask)  # weights built and memoised
    t0 = time.perf_counter()
    for _ in range(repeat):
        process_block(block, secs, pos, job, builder.mask)
    t_totals = (time.perf_counter() - t0) / repeat
    w = cached_weights(plan.grid, builder.cube_grid, builder.radius)
    apply_separable(w, block, normalization="destarea")
    t0 = time.perf_counter()
    for _ in range(repeat):
        apply_separable(w, block, normalization="destarea")
    t_cube = (time.perf_counter() - t0) / repeat
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "block.nc")
        with netCDF4.Dataset(path, "w") as nc:
            for d, n in zip(("time", "lat", "lon"), shape, strict=True):
                nc.createDimension(d, n)
            v = nc.createVariable(
                "x",
                "f4",
                ("time", "lat", "lon"),
                zlib=True,
                complevel=1,
                chunksizes=(1,) + shape[1:],
            )
            v[:] = block
        size = os.path.getsize(path)
        t0 = time.perf_counter()
        for _ in range(repeat):
            with netCDF4.Dataset(path) as nc:
                nc["x"][:]
        t_read = (time.perf_counter() - t0) / repeat
    return {
        "block_months": 12,
        "block_shape": list(shape),
        "block_bytes_float32": int(block.nbytes),
        "block_file_bytes_deflate1": size,
        "block_seconds_read_netcdf": t_read,
        "block_seconds_totals": t_totals,
        "block_seconds_cube_regrid": t_cube,
        "block_seconds": t_read + t_totals + t_cube,
    }


def project(stats: dict, sched: dict, thr: dict, blk: dict, workers=WORKERS) -> dict:
    """Wall time of the paper archive on N workers from the measured per-task and per-block costs.

    Model: compute ``W = blocks x t_block`` spreads over N workers (a span task reads its blocks one
    after another); the scheduler handles one task at a time at ``c`` seconds per task (measured
    no-op cost), so the run takes at least ``tasks x c``; graph ingest adds ``tasks x ingest``
    before the first batch starts (later batches overlap with compute). Reading: N workers need N x
    block_bytes / t_block bytes/s from the file system. Efficiency = (W / N) / T(N). ``t_block``
    holds a page-cache read of a local file: a slower file system raises ``t_block`` and with it the
    worker count at which the scheduler saturates.
    """
    t_block = blk["block_seconds"]
    tasks = stats["tasks_total_distinct"]
    c = thr["scheduler_ms_per_task"] / 1e3
    ingest = sched["ingest_ms_per_task"] / 1e3 if sched else 0.0
    work = stats["blocks_total"] * t_block
    t_task = work / max(stats["span_tasks_total"], 1)
    out = {
        "model": "T(N) = max(W / N, tasks x c) + batch_tasks x ingest",
        "work_seconds": work,
        "scheduler_bound_seconds": tasks * c,
        "seconds_per_span_task": t_task,
        "saturation_workers": t_task / c,
        "workers": {},
    }
    for n in workers:
        t = max(work / n, tasks * c) + stats["batch_tasks"] * ingest
        out["workers"][str(n)] = {
            "wall_seconds": t,
            "efficiency": (work / n) / t,
            "read_gb_per_s_needed": n * blk["block_bytes_float32"] / t_block / 1e9,
            "scheduler_memory_mb_per_batch": stats["batch_tasks"]
            * sched.get("scheduler_bytes_per_task", 0)
            / 1e6
            if sched
            else None,
        }
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "scale.json"))
    ap.add_argument(
        "--no-cluster", action="store_true", help="graph statistics only (no dask processes)"
    )
    args = ap.parse_args(argv)

    from gridflux import config

    batch_size = int(config.get("pipeline.batch-members"))
    t0 = time.perf_counter()
    plans = paper_plans()
    builder = GraphBuilder(plans, paper_mask())
    t_plan = time.perf_counter() - t0
    stats = graph_stats(builder, batch_size)
    stats["plan_seconds"] = t_plan
    print(json.dumps(stats, indent=1))
    result: dict = {
        "archive": {
            "model_runs": N_MODEL_RUNS,
            "model_variables": list(MODEL_VARIABLES),
            "model_years": list(MODEL_YEARS),
            "model_res_deg": list(MODEL_RES),
            "inversions": N_INVERSIONS,
            "inversion_variables": list(INVERSION_VARIABLES),
            "inversion_years": list(INVERSION_YEARS),
            "inversion_res_deg": list(INVERSION_RES),
        },
        "graph": stats,
    }
    blk = block_compute(builder)
    result["block"] = blk
    print(json.dumps(blk, indent=1))
    if not args.no_cluster:
        sched = scheduler_memory(builder, batch_size)
        thr = scheduler_throughput()
        result["scheduler"] = sched
        result["throughput"] = thr
        result["projection"] = project(stats, sched, thr, blk)
        print(
            json.dumps({k: result[k] for k in ("scheduler", "throughput", "projection")}, indent=1)
        )
    import dask
    import distributed

    result["versions"] = {
        "dask": dask.__version__,
        "distributed": distributed.__version__,
        "python": sys.version.split()[0],
    }
    result["machine"] = {"cpus": os.cpu_count()}
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
    print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
