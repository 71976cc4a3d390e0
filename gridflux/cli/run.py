"""CLI: ``gridflux run``, ``gridflux demo``, ``gridflux export``, ``gridflux store info``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

store_app = typer.Typer(help="Inspect a gridflux store.", no_args_is_help=True)


def _parse_query(items: list[str] | None) -> dict | None:
    """``--select ensemble=ISIMIP3b --select variable=npp,rh`` -> {"ensemble": "ISIMIP3b", "variable": ["npp", "rh"]}."""
    if not items:
        return None
    query: dict = {}
    for item in items:
        if "=" not in item:
            raise typer.BadParameter(
                f"{item!r}: expected KEY=VALUE[,VALUE...]", param_hint="--select"
            )
        k, v = item.split("=", 1)
        values = [x for x in v.split(",") if x]
        query[k.strip()] = values if len(values) > 1 else values[0]
    return query


def _json_option(text: str | None, name: str) -> dict | None:
    if not text:
        return None
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise typer.BadParameter(f"not valid JSON: {exc}", param_hint=name) from None
    if not isinstance(value, dict):
        raise typer.BadParameter(
            "expected a JSON object such as '{\"anon\": true}'", param_hint=name
        )
    return value


def print_summary(summary, console=None) -> None:
    """A rich table of a run's outcome, then one line per failure."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    d = summary.as_dict()
    t = Table(title=f"gridflux run -> {summary.store}")
    for col in ("done", "skipped", "failed", "GB read", "MB/s", "wall s", "computing s"):
        t.add_column(col, justify="right")
    t.add_row(
        str(d["done"]),
        str(d["skipped"]),
        str(d["failed"]),
        f"{d['gb_read']:.3f}",
        f"{d['mb_per_s']:.0f}",
        f"{d['seconds']:.1f}",
        f"{d['compute_seconds']:.1f}",
    )
    console.print(t)
    if summary.grew:

        def brief(v) -> str:
            if isinstance(v, (int, str)):
                return str(v)
            return f"+{len(v)} ({', '.join(v[:3])}{' ...' if len(v) > 3 else ''})"

        grew = "; ".join(f"{k.replace('_', ' ')} {brief(v)}" for k, v in summary.grew.items())
        console.print(f"store grew: {grew}")
    if summary.pruned:
        console.print(f"pruned {len(summary.pruned)} series: {', '.join(summary.pruned[:5])}")
    if summary.not_in_catalogs:
        n = len(summary.not_in_catalogs)
        console.print(
            f"[yellow]kept[/yellow] {n} series of the store that are in none of the catalogs "
            f"({', '.join(summary.not_in_catalogs[:3])}{' ...' if n > 3 else ''}); --prune "
            "removes them"
        )
    for key, err in summary.failed.items():
        console.print(f"[red]failed[/red] {key}: {err}")


def run_cmd(
    catalogs: Annotated[
        list[str],
        typer.Argument(
            help="catalogs (intake-esm JSON/CSV, intake YAML; several may be mixed), paths or URLs",
            metavar="CATALOG...",
        ),
    ],
    mask: Annotated[
        str, typer.Option("--mask", help="region mask file (netCDF/zarr, dims region x lat x lon)")
    ],
    store: Annotated[
        str, typer.Option("--store", help="zarr store path or URL (created or resumed)")
    ],
    regions: Annotated[
        str | None,
        typer.Option(
            "--regions", help="regions of the mask file to compute, e.g. a,b (default all)"
        ),
    ] = None,
    cluster: Annotated[
        str, typer.Option(help="local|slurm|pbs|kubernetes|gateway|tcp://HOST:PORT|none")
    ] = "local",
    workers: Annotated[int | None, typer.Option(help="number of workers (processes)")] = None,
    select: Annotated[
        list[str] | None, typer.Option("--select", help="catalog query KEY=V1,V2 (repeatable)")
    ] = None,
    target_grid: Annotated[
        str, typer.Option("--target-grid", help="target resolution in degrees, e.g. 0.5 or 1x1.25")
    ] = "0.5",
    protocol: Annotated[
        str | None,
        typer.Option(
            help="regrid-data or regrid-mask for every series (default: each series' catalog "
            "protocol, else its ensemble kind's: inversions regrid-mask, process models regrid-data)"
        ),
    ] = None,
    cubes: Annotated[
        bool, typer.Option("--cubes/--no-cubes", help="also write regridded cubes")
    ] = True,
    chunk_months: Annotated[
        int,
        typer.Option("--chunk-months", help="months per block (one read, one store time chunk)"),
    ] = 12,
    task_months: Annotated[
        str | None,
        typer.Option(
            "--task-months",
            help="months per task (consecutive blocks of a series), or 'auto': a whole series per task when there are >= 2 series per worker, else 120 (default)",
        ),
    ] = None,
    zarr_format: Annotated[int, typer.Option("--zarr-format", help="3 (default) or 2")] = 3,
    prune: Annotated[
        bool,
        typer.Option(
            "--prune", help="remove from the store the series that are in none of the catalogs"
        ),
    ] = False,
    progress: Annotated[bool, typer.Option("--progress/--no-progress")] = True,
    queue: Annotated[str | None, typer.Option(help="slurm/pbs: partition or queue")] = None,
    account: Annotated[str | None, typer.Option(help="slurm/pbs: account to charge")] = None,
    cores: Annotated[int | None, typer.Option(help="slurm/pbs: cores per job")] = None,
    memory: Annotated[str | None, typer.Option(help="slurm/pbs: memory per job, e.g. 4GB")] = None,
    walltime: Annotated[str | None, typer.Option(help="slurm/pbs: walltime, e.g. 01:00:00")] = None,
    image: Annotated[str | None, typer.Option(help="kubernetes: worker image")] = None,
    gateway_address: Annotated[
        str | None, typer.Option("--gateway-address", help="gateway: server URL")
    ] = None,
    scheduler_host: Annotated[
        str | None,
        typer.Option("--scheduler-host", help="slurm/pbs: scheduler bind address (e.g. 127.0.0.1)"),
    ] = None,
    storage_options: Annotated[
        str | None,
        typer.Option(
            "--storage-options",
            help="fsspec options of the inputs as JSON, e.g. '{\"anon\": true}' (kept in memory only)",
        ),
    ] = None,
    store_options: Annotated[
        str | None,
        typer.Option(
            "--store-options", help="fsspec options of the store as JSON (kept in memory only)"
        ),
    ] = None,
    summary_json: Annotated[
        str | None,
        typer.Option(
            "--summary-json",
            help="also write the run's summary (counts, failures, seconds) as JSON here",
        ),
    ] = None,
) -> None:
    """Compute monthly region totals (and cubes) of every catalog series into a resumable store."""
    from rich.console import Console

    from gridflux.errors import GridfluxError
    from gridflux.pipeline.runner import run

    console = Console(stderr=True)
    query = _parse_query(select)
    input_opts, output_opts = (
        _json_option(storage_options, "--storage-options"),
        _json_option(store_options, "--store-options"),
    )
    try:
        from gridflux.fields.masks import RegionMask

        wanted = [r.strip() for r in regions.split(",") if r.strip()] if regions else None
        region_mask = RegionMask.from_file(mask, regions=wanted)
        console.print(f"regions ({len(region_mask.names)}): {', '.join(region_mask.names)}")
        if cluster == "none":
            summary = run(
                catalogs,
                region_mask,
                store,
                query=query,
                target=target_grid,
                protocol=protocol,
                cubes=cubes,
                chunk_months=chunk_months,
                task_months=task_months,
                zarr_format=zarr_format,
                progress=progress,
                storage_options=input_opts,
                store_options=output_opts,
                prune=prune,
            )
        else:
            from gridflux.compute.clusters import make_cluster

            overrides = {
                k: v
                for k, v in {
                    "queue": queue,
                    "account": account,
                    "cores": cores,
                    "memory": memory,
                    "walltime": walltime,
                    "image": image,
                    "address": gateway_address,
                }.items()
                if v is not None
            }
            if scheduler_host:
                overrides["scheduler_options"] = {
                    "host": scheduler_host,
                    "dashboard_address": f"{scheduler_host}:0",
                }
                overrides["worker_extra_args"] = ["--host", scheduler_host]
            # a local cluster starts (worker processes importing the stack) while this process opens
            # the catalog and plans the series, so the two fixed costs overlap; jobqueue clusters
            # install signal handlers and must start in the main thread
            from concurrent.futures import Future, ThreadPoolExecutor

            with ThreadPoolExecutor(1) as pool:
                if cluster == "local":
                    starting = pool.submit(make_cluster, cluster, n_workers=workers, **overrides)
                else:
                    starting = Future()
                    starting.set_result(make_cluster(cluster, n_workers=workers, **overrides))

                def client():
                    handle = starting.result()
                    console.print(f"dask dashboard: {handle.dashboard_link}")
                    return handle.client

                try:
                    summary = run(
                        catalogs,
                        region_mask,
                        store,
                        query=query,
                        target=target_grid,
                        protocol=protocol,
                        cubes=cubes,
                        chunk_months=chunk_months,
                        task_months=task_months,
                        zarr_format=zarr_format,
                        client=client,
                        progress=progress,
                        storage_options=input_opts,
                        store_options=output_opts,
                        prune=prune,
                    )
                finally:
                    try:
                        starting.result().close()
                    except Exception:  # noqa: BLE001 - a cluster that failed to start has nothing to close
                        pass
    except GridfluxError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    print_summary(summary, console)
    if summary_json:
        with open(summary_json, "w") as f:
            json.dump({**summary.as_dict(), "store": summary.store}, f, indent=1)
    if summary.failed:
        raise typer.Exit(1)


def export_cmd(
    store: Annotated[str, typer.Argument(help="gridflux store")],
    totals: Annotated[Path, typer.Option("--totals", help="CSV file to write")],
) -> None:
    """Write the tidy totals table: source_id,variable,region,time,value,unit (Tg of element per month)."""
    from gridflux.pipeline.export import totals_table

    df = totals_table(store)
    df.to_csv(totals, index=False)
    typer.echo(f"{totals}: {len(df)} rows")


def store_info_cmd(store: Annotated[str, typer.Argument(help="gridflux store")]) -> None:
    """Print the store's manifest: one line per series with status, time and error."""
    from rich.console import Console
    from rich.table import Table

    from gridflux.pipeline.store import Store

    st = Store(store)
    man = st.read_manifest()
    t = Table(title=f"{store}")
    for col in ("series", "status", "protocol", "version", "seconds", "MB", "error"):
        t.add_column(col)
    counts: dict[str, int] = {}
    for key, e in sorted(man.get("series", {}).items()):
        counts[e["status"]] = counts.get(e["status"], 0) + 1
        t.add_row(
            key,
            e["status"],
            e.get("protocol", ""),
            e.get("version", ""),
            str(e.get("seconds", "")),
            f"{e.get('bytes', 0) / 1e6:.1f}",
            (e.get("error") or "")[:80],
        )
    c = Console()
    c.print(t)
    c.print(
        json.dumps(
            {
                "counts": counts,
                "config_hash": man.get("config_hash"),
                "versions": man.get("versions"),
            }
        )
    )


def demo_cmd(
    workdir: Annotated[
        Path, typer.Option("--workdir", help="where the synthetic archive and store go")
    ] = Path("gridflux-demo"),
    size: Annotated[str, typer.Option(help="tiny | small")] = "tiny",
    workers: Annotated[int, typer.Option(help="local worker processes")] = 2,
) -> None:
    """Build the synthetic RECCAP2-like archive, run the pipeline on a local cluster, check, budget."""
    from gridflux.cli.demo import run_demo

    ok = run_demo(workdir, size=size, n_workers=workers)
    if not ok:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("run")(run_cmd)
    app.command("demo")(demo_cmd)
    app.command("export")(export_cmd)
    store_app.command("info")(store_info_cmd)
    app.add_typer(store_app, name="store")
