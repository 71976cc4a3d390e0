"""CLI: ``gridflux run``, ``gridflux demo``, ``gridflux export``, ``gridflux store info``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

store_app = typer.Typer(help="Inspect a gridflux store.", no_args_is_help=True)


def _parse_query(items: list[str] | None) -> dict | None:
    """``--select ensemble=ISIMIP3b --select variable=npp,rh`` -> {"ensemble": "ISIMIP3b",
    "variable": ["npp", "rh"]}."""
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


def _storage_option(text: str | None, name: str, env: str) -> dict | None:
    """``--storage-options`` / ``--store-options``: ``@FILE`` (JSON), inline JSON without secrets,
    or, when not given, the variable ``env``
    (:func:`gridflux.ingest.remote.load_storage_options`)."""
    from gridflux.ingest.remote import load_storage_options

    try:
        return load_storage_options(text, env)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint=name) from None


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
    if getattr(summary, "regions_only", None):
        console.print(
            f"{len(summary.regions_only)} of the done series were done before and computed for "
            "the new regions only (their other values and cubes kept)"
        )
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
    missing = getattr(summary, "missing", {}) or {}
    if missing:
        n = sum(len(v) for v in missing.values())
        console.print(
            f"[yellow]missing months[/yellow] (days of daily series; no value in the field: NaN "
            f"in the store, not 0): {n} in {len(missing)} series"
        )
        for key, months in missing.items():
            console.print(f"[yellow]missing[/yellow] {key}: {len(months)}: {_month_list(months)}")
    for note in getattr(summary, "notes", []) or []:  # e.g. daily series left without a cube
        console.print(f"[yellow]note[/yellow]: {note}")
    if getattr(summary, "stopped", ""):
        console.print(
            "[red]stopped[/red]: the store refused a write; series not listed done are "
            "recomputed by the same command"
        )


def _month_list(months: list[str], shown: int = 12) -> str:
    """``YYYY-MM, ...`` of at most ``shown`` months, then how many more."""
    more = f" ... (+{len(months) - shown})" if len(months) > shown else ""
    return ", ".join(months[:shown]) + more


class StderrProgress:
    """The run's progress bar on stderr (where the summary goes too): series finished or skipped,
    of all selected, with the elapsed and remaining time. Bytes and rates are left to the
    summary, which counts only what this run read (a resumed series reads nothing)."""

    def __init__(self) -> None:
        self.bar: Any = None
        self.task: Any = None

    def __call__(self, done: int, total: int, key: str) -> None:
        if self.bar is None:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self.bar = Progress(
                "series",
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=Console(stderr=True),
            )
            self.task = self.bar.add_task("series", total=total)
            self.bar.start()
        self.bar.update(self.task, completed=done)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def parse_options(items: list[str] | None) -> dict[str, Any]:
    """``--option pipeline.chunk-months=24`` -> ``{"pipeline.chunk-months": 24}`` (YAML values).

    Keys are those of the packaged ``gridflux.yaml`` (without the ``gridflux.`` prefix); an
    unknown key is a usage error that lists the known ones."""
    import dask.config
    import yaml

    from gridflux import config  # noqa: F401 - registers the packaged defaults

    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, text = item.partition("=")
        key = key.strip().removeprefix("gridflux.")
        if not sep or not key:
            raise typer.BadParameter(f"{item!r}: expected KEY=VALUE", param_hint="--option")
        missing = object()
        if dask.config.get(f"gridflux.{key}", default=missing) is missing:
            raise typer.BadParameter(
                f"{key!r} is not a gridflux setting; known: {', '.join(config_keys())}",
                param_hint="--option",
            )
        try:
            out[key] = yaml.safe_load(text)
        except yaml.YAMLError:
            out[key] = text
    return out


def config_keys() -> list[str]:
    """Every leaf key of the ``gridflux`` config (``pipeline.chunk-months``, ...), sorted."""
    import dask.config

    from gridflux import config  # noqa: F401 - registers the packaged defaults

    def leaves(d: dict, prefix: str) -> list[str]:
        keys = []
        for k, v in d.items():
            name = f"{prefix}{k}"
            keys += leaves(v, f"{name}.") if isinstance(v, dict) and v else [name]
        return keys

    return sorted(leaves(dask.config.get("gridflux", default={}), ""))


MASK_SUFFIXES = (".nc", ".nc4", ".netcdf", ".cdf", ".h5", ".hdf5", ".zarr")
POLYGON_SUFFIXES = (".json", ".geojson", ".shp", ".gpkg", ".kml")


def check_mask_path(mask: str) -> None:
    """Refuse, in one line, a --mask that cannot be a region mask file (before anything starts)."""
    from gridflux.errors import InputError

    if "://" in mask or "::" in mask:
        return  # remote: the reader says what is wrong
    p = Path(mask)
    if not p.exists():
        raise InputError(
            "no such file or directory; give a region mask file (netCDF or zarr with "
            "mask(region, lat, lon))",
            path=mask,
        )
    suffix = p.suffix.lower()
    if suffix in POLYGON_SUFFIXES:
        raise InputError(
            f"a {suffix} file is polygons, not a region mask; make the mask first with "
            f"`gridflux mask {mask} --out mask.nc` and pass --mask mask.nc",
            path=mask,
        )
    if not p.is_dir() and suffix not in MASK_SUFFIXES:
        raise InputError(
            f"expected a region mask file ({', '.join(MASK_SUFFIXES)}) with mask(region, lat, lon)",
            path=mask,
        )


def check_query(cat: Any, query: dict | None) -> None:
    """Refuse a --select naming a column the catalog does not have (listing those it has), and
    one that matches no series (listing the values each named column has)."""
    from gridflux.errors import InputError
    from gridflux.ingest.catalog import CatalogRow

    if not query:
        return
    rows = [r for r in cat.rows if not r.is_fx]
    columns = set(CatalogRow.model_fields) | {"canonical"}
    for r in rows:
        columns |= set(r.extras())
    unknown = sorted(set(query) - columns)
    if unknown:
        raise InputError(
            f"--select {', '.join(unknown)}: no such catalog column; the columns are "
            f"{', '.join(sorted(columns))}",
            path=str(cat.path),
        )
    if cat.series(query):
        return
    hints = []
    for k in query:
        values = sorted(
            {
                str(r.canonical if k == "variable" else {**r.model_dump(), **r.extras()}.get(k))
                for r in rows
            }
        )
        shown = ", ".join(values[:12]) + (
            f" (+{len(values) - 12} more)" if len(values) > 12 else ""
        )
        hints.append(f"{k}: {shown}")
    raise InputError(
        f"the selection {query} matched no series; values in the catalog: {'; '.join(hints)}",
        path=str(cat.path),
    )


def load_catalogs(
    paths: list[str],
    storage_options: dict | None,
    allow_outside_root: bool | list[str],
    query: dict | None,
) -> list:
    """Load every catalog; refuse a --select that no catalog can match (:func:`check_query`'s
    message of the first catalog when none matches)."""
    from gridflux.ingest.catalog import load_catalog

    cats = [
        load_catalog(p, storage_options=storage_options, allow_outside_root=allow_outside_root)
        for p in paths
    ]
    first_error = None
    for cat in cats:
        try:
            check_query(cat, query)
            return cats
        except Exception as exc:  # noqa: BLE001 - the first catalog's message if none matches
            first_error = first_error or exc
    if first_error is not None:
        raise first_error
    return cats


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
    verify: Annotated[
        bool | None,
        typer.Option(
            "--verify/--no-verify",
            help="hash every input file's bytes into its series' fingerprint (reads all inputs "
            "once more): for archives whose modification times cannot be trusted "
            "\\[default: gridflux.pipeline.verify]",
        ),
    ] = None,
    strict: Annotated[
        bool | None,
        typer.Option(
            "--strict/--no-strict",
            help="refuse to repair known defects of the files (gridflux/ingest/fixes.yaml and "
            "the generic rules): such a series fails naming the defect "
            "\\[default: gridflux.strict]",
        ),
    ] = None,
    regions: Annotated[
        str | None,
        typer.Option(
            "--regions", help="regions of the mask file to compute, e.g. a,b (default all)"
        ),
    ] = None,
    cluster: Annotated[
        str | None,
        typer.Option(
            help="local, slurm, pbs, kubernetes, gateway, tcp://HOST:PORT or none "
            "\\[default: gridflux.cluster.kind, local]"
        ),
    ] = None,
    workers: Annotated[
        int | None, typer.Option(min=1, help="number of workers (processes), at least 1")
    ] = None,
    select: Annotated[
        list[str] | None, typer.Option("--select", help="catalog query KEY=V1,V2 (repeatable)")
    ] = None,
    sel: Annotated[
        str | None,
        typer.Option(
            "--sel",
            help="level of 4-D fields: DIM=VALUE (plev=85000) or a layer DIM=LO:HI (depth=0:1, "
            "integral of stocks, thickness-weighted mean of intensive fields)",
        ),
    ] = None,
    resample: Annotated[
        str | None,
        typer.Option(
            "--resample",
            help="month: daily series become monthly means of their days (own calendar; "
            "totals from them); without it a daily series keeps its daily axis (the store's "
            "daily/ group: means and totals per day)",
        ),
    ] = None,
    land_weighted: Annotated[
        bool,
        typer.Option(
            "--land-weighted",
            help="weight region means by cell area x land fraction (the model's sftlf fx file; "
            "the catalog's land_weighted column says it per series)",
        ),
    ] = False,
    target_grid: Annotated[
        str | None,
        typer.Option(
            "--target-grid",
            help="target resolution in degrees, e.g. 0.5 or 1x1.25 "
            "\\[default: gridflux.target-grid]",
        ),
    ] = None,
    protocol: Annotated[
        str | None,
        typer.Option(
            help="regrid-data or regrid-mask for every series \\[default: each series' catalog "
            "protocol, else its ensemble kind's (gridflux.pipeline.protocols): inversions "
            "regrid-mask, process models regrid-data]"
        ),
    ] = None,
    cubes: Annotated[
        bool | None,
        typer.Option(
            "--cubes/--no-cubes",
            help="also write regridded cubes \\[default: gridflux.pipeline.cubes]",
            show_default=False,
        ),
    ] = None,
    chunk_months: Annotated[
        int | None,
        typer.Option(
            "--chunk-months",
            min=1,
            help="months per block (one read, one store time chunk) "
            "\\[default: gridflux.pipeline.chunk-months]",
        ),
    ] = None,
    task_months: Annotated[
        str | None,
        typer.Option(
            "--task-months",
            help="months per task (consecutive blocks of a series), or 'auto': a whole series per "
            "task when there are >= 2 series per worker, else 120 "
            "\\[default: gridflux.pipeline.task-months]",
        ),
    ] = None,
    zarr_format: Annotated[
        int | None,
        typer.Option("--zarr-format", help="3 or 2 \\[default: gridflux.store.zarr-format]"),
    ] = None,
    option: Annotated[
        list[str] | None,
        typer.Option(
            "--option",
            "--options",
            "-O",
            help="any gridflux setting KEY=VALUE (repeatable), e.g. -O pipeline.batch-members=32",
        ),
    ] = None,
    progress: Annotated[
        bool, typer.Option("--progress/--no-progress", help="progress bar on stderr")
    ] = True,
    prune: Annotated[
        bool,
        typer.Option(
            "--prune", help="remove from the store the series that are in none of the catalogs"
        ),
    ] = False,
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
            help="fsspec options of the inputs: @FILE.json, or JSON without secrets such as "
            "'{\"anon\": true}'; default $GRIDFLUX_STORAGE_OPTIONS (kept in memory only)",
        ),
    ] = None,
    store_options: Annotated[
        str | None,
        typer.Option(
            "--store-options",
            help="fsspec options of the store: @FILE.json or JSON without secrets; default "
            "$GRIDFLUX_STORE_OPTIONS (kept in memory only)",
        ),
    ] = None,
    summary_json: Annotated[
        str | None,
        typer.Option(
            "--summary-json",
            help="also write the run's summary (counts, failures, seconds) as JSON here",
        ),
    ] = None,
    allow_outside_root: Annotated[
        bool,
        typer.Option(
            "--allow-outside-root", help="let the catalog read local files outside its directory"
        ),
    ] = False,
    allowed_prefix: Annotated[
        list[str] | None,
        typer.Option(
            "--allowed-prefix",
            help="a directory outside its root the catalog may read (repeatable)",
        ),
    ] = None,
) -> None:
    """Compute monthly region totals (and cubes) of every catalog series into a resumable store.

    Options left out fall back to gridflux's settings (packaged gridflux.yaml, your dask config,
    DASK_GRIDFLUX__... environment variables, --option KEY=VALUE).
    """
    import dask.config
    from rich.console import Console

    from gridflux import config
    from gridflux.pipeline.runner import run

    console = Console(stderr=True)
    query = _parse_query(select)
    settings = parse_options(option)
    input_opts, output_opts = (
        _storage_option(storage_options, "--storage-options", "GRIDFLUX_STORAGE_OPTIONS"),
        _storage_option(store_options, "--store-options", "GRIDFLUX_STORE_OPTIONS"),
    )
    check_mask_path(mask)
    if settings:
        dask.config.set({f"gridflux.{k}": v for k, v in settings.items()})
    kind = cluster if cluster is not None else str(config.get("cluster.kind", default="local"))
    bar = StderrProgress() if progress else None
    common = dict(
        query=query,
        target=target_grid,
        protocol=protocol,
        cubes=cubes,
        chunk_months=chunk_months,
        task_months=task_months,
        zarr_format=zarr_format,
        progress=bar if bar is not None else False,
        verify=verify,
        sel=sel,
        strict=strict,
        resample=resample,
        land_weighted=land_weighted or None,
        storage_options=input_opts,
        store_options=output_opts,
        prune=prune,
    )
    from gridflux.fields.masks import RegionMask

    wanted = [r.strip() for r in regions.split(",") if r.strip()] if regions else None
    region_mask = RegionMask.from_file(mask, regions=wanted)
    console.print(f"regions ({len(region_mask.names)}): {', '.join(region_mask.names)}")
    allow = allow_outside_root or list(allowed_prefix or [])  # local files outside the root
    from gridflux.cli.exits import fail
    from gridflux.pipeline.runner import RunStopped

    stopped: RunStopped | None = None
    try:
        if kind == "none":
            cats = load_catalogs(catalogs, input_opts, allow, query)
            summary = run(cats, region_mask, store, **common)
        else:
            summary = _run_on_cluster(
                kind,
                workers,
                console,
                catalogs,
                region_mask,
                store,
                input_opts,
                common,
                dict(
                    queue=queue,
                    account=account,
                    cores=cores,
                    memory=memory,
                    walltime=walltime,
                    image=image,
                    address=gateway_address,
                ),
                scheduler_host,
                allow,
            )
    except RunStopped as exc:  # disk full or read-only midway: the summary, then one error line
        summary, stopped = exc.summary, exc
    finally:
        if bar is not None:
            bar.close()
    print_summary(summary, console)
    if summary_json:
        with open(summary_json, "w") as f:
            json.dump({**summary.as_dict(), "store": summary.store}, f, indent=1)
    if stopped is not None:
        raise fail(stopped)  # the store's one line, exit code 3 (ExitCode.STORE)
    if summary.failed:
        raise typer.Exit(1)


def _run_on_cluster(
    kind: str,
    workers: int | None,
    console: Any,
    catalogs: list[str],
    mask: Any,
    store: str,
    input_opts: dict | None,
    common: dict,
    settings: dict,
    scheduler_host: str | None,
    allow_outside_root: bool | list[str] = False,
) -> Any:
    """Start the cluster (a local one while the catalog loads), run, close the cluster."""
    from concurrent.futures import Future, ThreadPoolExecutor

    from gridflux.compute.clusters import make_cluster
    from gridflux.pipeline.runner import run

    overrides: dict[str, Any] = {k: v for k, v in settings.items() if v is not None}
    if scheduler_host:
        overrides["scheduler_options"] = {
            "host": scheduler_host,
            "dashboard_address": f"{scheduler_host}:0",
        }
        overrides["worker_extra_args"] = ["--host", scheduler_host]
    # a local cluster starts (worker processes importing the stack) while this process opens
    # the catalog and plans the series, so the two fixed costs overlap; jobqueue clusters
    # install signal handlers and must start in the main thread
    with ThreadPoolExecutor(1) as pool:
        if kind == "local":
            starting = pool.submit(make_cluster, kind, n_workers=workers, **overrides)
        else:
            starting = Future()
            starting.set_result(make_cluster(kind, n_workers=workers, **overrides))

        def client():
            handle = starting.result()
            console.print(f"dask dashboard: {handle.dashboard_link}", soft_wrap=True)
            return handle.client

        try:
            cats = load_catalogs(catalogs, input_opts, allow_outside_root, common["query"])
            return run(cats, mask, store, client=client, **common)
        finally:
            try:
                starting.result().close()
            except Exception:  # noqa: BLE001 - a cluster that failed to start has nothing to close
                pass


def export_cmd(
    store: Annotated[str, typer.Argument(help="gridflux store (path or URL)")],
    totals: Annotated[Path, typer.Option("--totals", help="CSV file to write")],
) -> None:
    """Write the tidy table: source_id,variable,region,time,statistic,value,unit,protocol,frequency
    (totals in Tg of the element per month, e.g. Tg C, Tg CH4-C, Tg N2O-N; means in the
    variable's unit, e.g. K; daily series: frequency day, time YYYY-MM-DD, Tg per day)."""
    from gridflux.pipeline.export import totals_table

    df = totals_table(store)
    df.to_csv(totals, index=False)
    series = df[["source_id", "variable"]].drop_duplicates()
    typer.echo(f"{totals}: {len(df)} rows of {len(series)} series", err=True)
    if len(series) <= EXPORT_LISTED:
        for member, variable in series.itertuples(index=False):
            typer.echo(f"  {member}/{variable}", err=True)
    else:
        typer.echo(f"  (`gridflux store info {store}` lists the series)", err=True)


#: export names every series it wrote up to this many (then points to ``store info``)
EXPORT_LISTED = 50


def store_info_cmd(
    store: Annotated[str, typer.Argument(help="gridflux store (path or URL)")],
) -> None:
    """Print the store's manifest: one row per series with status, time and error (stdout)."""
    from rich.console import Console
    from rich.table import Table

    from gridflux.pipeline.store import require_store

    st = require_store(store)
    man = st.read_manifest()
    from gridflux.ingest.remote import scrub

    t = Table(title=scrub(store), title_justify="left")
    t.add_column("series", overflow="fold", ratio=3, min_width=20)
    t.add_column("status", no_wrap=True)
    t.add_column("seconds", justify="right", no_wrap=True)
    t.add_column("MB", justify="right", no_wrap=True)
    t.add_column("error", overflow="fold", ratio=2)
    t.add_column("missing months", overflow="fold", ratio=1)
    counts: dict[str, int] = {}
    missing_total = 0
    for key, e in sorted(man.get("series", {}).items()):
        missing = e.get("missing_months") or []
        missing_total += len(missing)
        counts[e["status"]] = counts.get(e["status"], 0) + 1
        seconds = e.get("seconds")
        t.add_row(
            # the series, and under it its protocol, dataset version and how its statistic
            # was computed (a mean's unit, land weighting, resampling, level)
            "\n".join(
                [
                    key,
                    " ".join(
                        x for x in (e.get("protocol"), e.get("version"), _statistic_note(e)) if x
                    ),
                ]
            ).strip(),
            e["status"],
            f"{seconds:.1f}" if isinstance(seconds, (int, float)) else str(seconds or ""),
            f"{e.get('bytes', 0) / 1e6:.1f}",
            e.get("error") or "",
            f"{len(missing)}: {_month_list(missing)}" if missing else "",
        )
    c = Console()
    c.print(t)
    daily = _daily_table(st, store)
    if daily is not None:
        c.print(daily[0])
    c.print(
        json.dumps(
            {
                "counts": counts,
                "missing_months": missing_total,
                **({"daily": daily[1]} if daily is not None else {}),
                "config_hash": man.get("config_hash"),
                "versions": man.get("versions"),
            }
        ),
        soft_wrap=True,
    )


def _daily_table(st, store: str):
    """The daily group's series (``store info``'s daily section): a rich table and the counts
    per status, or None when the store has no daily group."""
    from rich.table import Table

    from gridflux.ingest.remote import scrub
    from gridflux.pipeline.daily import series_info

    info = series_info(st)
    if not info:
        return None
    t = Table(title=f"{scrub(store)} daily/ (daily series)", title_justify="left")
    for name, kw in (
        ("series", {"overflow": "fold", "ratio": 3, "min_width": 20}),
        ("frequency", {"no_wrap": True}),
        ("status", {"no_wrap": True}),
        ("days", {"justify": "right", "no_wrap": True}),
        ("error", {"overflow": "fold", "ratio": 2}),
        ("missing days", {"overflow": "fold", "ratio": 1}),
    ):
        t.add_column(name, **kw)
    counts: dict[str, int] = {}
    for key, e in sorted(info.items()):
        counts[e["status"]] = counts.get(e["status"], 0) + 1
        missing = e.get("missing_days") or []
        span = f"{e['first_day']}..{e['last_day']}" if e.get("first_day") else ""
        note = " ".join(
            x
            for x in (e.get("protocol"), e.get("calendar"), _statistic_note(e), e.get("cube"))
            if x
        )
        t.add_row(
            "\n".join([key, note]).strip(),
            e.get("frequency", "day"),
            e["status"],
            f"{e.get('days', '')} {span}".strip(),
            e.get("error") or "",
            f"{len(missing)}: {', '.join(missing[:6])}{' ...' if len(missing) > 6 else ''}"
            if missing
            else "",
        )
    return t, counts


def _statistic_note(entry: dict) -> str:
    """``mean K land-weighted resample=month plev=85000``: how a series' statistic was made
    ("" for a plain monthly total)."""
    parts = []
    if entry.get("statistic") == "mean":
        parts.append(" ".join(x for x in ("mean", entry.get("units")) if x))
    if entry.get("land_weighted"):
        parts.append("land-weighted")
    if entry.get("resample"):
        parts.append(f"resample={entry['resample']}")
    if entry.get("sel"):
        parts.append(str(entry["sel"]))
    return " ".join(parts)


def register(app: typer.Typer) -> None:
    app.command("run")(run_cmd)
    app.command("export")(export_cmd)
    store_app.command("info")(store_info_cmd)
    app.add_typer(store_app, name="store")
