"""Ingest commands: ``gridflux catalog build|check`` and ``gridflux synth`` (thin fronts over the
API)."""

from __future__ import annotations

from typing import Annotated

import typer

catalog_app = typer.Typer(
    name="catalog", help="Build and check intake catalogs of input archives.", no_args_is_help=True
)


@catalog_app.command("build")
def build(
    directory: Annotated[
        str, typer.Argument(help="Root of a CMIP6-DRS / ISIMIP / one-file-per-year tree.")
    ],
    out: Annotated[
        str, typer.Option("--out", "-o", help="Catalog JSON to write (a CSV is written beside it).")
    ],
    description: Annotated[str, typer.Option(help="Catalog description.")] = "",
) -> None:
    """Crawl DIRECTORY into an intake-esm catalog (JSON + CSV)."""
    from gridflux.ingest.catalog import build_catalog

    result = build_catalog(directory, out, description=description)
    typer.echo("\n".join(result.lines()))


@catalog_app.command("check")
def check(
    catalog: Annotated[str, typer.Argument(help="Catalog JSON/CSV/YAML (any fsspec URL).")],
    anon: Annotated[
        bool, typer.Option(help="Anonymous access for s3:// or gs:// catalogs.")
    ] = False,
    allow_outside_root: Annotated[
        bool,
        typer.Option(
            "--allow-outside-root", help="Let the catalog read local files outside its directory."
        ),
    ] = False,
    allowed_prefix: Annotated[
        list[str] | None,
        typer.Option(
            "--allowed-prefix",
            help="A directory outside its root the catalog may read (repeatable).",
        ),
    ] = None,
    scan_data: Annotated[
        bool,
        typer.Option(
            "--scan-data/--no-scan-data",
            help="Read every value once and name months with no data (all NaN or fill); "
            "--no-scan-data: metadata only (quick, for large remote archives).",
        ),
    ] = True,
    strict: Annotated[
        bool,
        typer.Option(
            "--strict",
            help="A known defect of the files (gridflux/ingest/fixes.yaml, generic rules) is a "
            "problem instead of being repaired.",
        ),
    ] = False,
) -> None:
    """Open every series and report grid, calendar, units, coverage, gaps, months with no data,
    the repairs of the files' defects, and problems."""
    from rich.console import Console
    from rich.table import Table

    from gridflux.ingest.catalog import check_catalog, summarize_checks

    so = {"anon": True} if anon else None
    results = check_catalog(
        catalog,
        storage_options=so,
        allow_outside_root=allow_outside_root or list(allowed_prefix or []),
        scan_data=scan_data,
        strict=strict,
    )
    table = Table(title=f"{catalog}: {len(results)} series")
    for col in (
        "series",
        "files",
        "statistic",
        "grid",
        "calendar",
        "units",
        "coverage",
        "fixes",
        "problems",
    ):
        table.add_column(col, overflow="fold")
    for r in results:
        table.add_row(
            r.key + (f" [{r.table_id}]" if r.table_id else ""),
            str(r.files),
            r.statistic,
            r.grid,
            r.calendar,
            r.units,
            r.coverage,
            "[yellow]" + "; ".join(r.fixes) + "[/yellow]" if r.fixes else "",
            "[red]" + "; ".join(r.problems) + "[/red]" if r.problems else "[green]ok[/green]",
        )
    console = Console()
    console.print(table)  # at the terminal's width: long keys and problems fold
    typer.echo("\n".join(summarize_checks(results)))
    bad = [r for r in results if not r.ok]
    for r in results:  # every repair in full, folded at the terminal's width
        for f in r.fixes:
            console.print(f"fixed {r.key}: {f}", overflow="fold", markup=False, highlight=False)
    typer.echo(f"{len(results) - len(bad)} ok, {len(bad)} with problems")
    if bad:
        raise typer.Exit(1)


def synth(
    directory: Annotated[str, typer.Argument(help="Where to write the archive.")],
    size: Annotated[str, typer.Option(help="tiny | small | paper")] = "tiny",
    seed: Annotated[int, typer.Option(help="Random seed of the fields.")] = 0,
    yes: Annotated[
        bool,
        typer.Option("--yes", "-y", help="Write --size paper (hundreds of GB) without asking."),
    ] = False,
) -> None:
    """Write the synthetic RECCAP2-like archive (catalog, mask, planted truth.csv)."""
    from gridflux.synthetic import build_archive

    if size not in ("tiny", "small", "paper"):
        raise typer.BadParameter(
            f"size {size!r}; expected tiny, small or paper", param_hint="--size"
        )
    info = build_archive(
        directory,
        size=size,
        seed=seed,
        echo=typer.echo,
        confirm=True if yes else (lambda msg: typer.confirm(msg, default=False)),
    )
    typer.echo(
        f"wrote {info.n_files} files ({info.nbytes / 1e6:.1f} MB), {info.n_series} series of "
        f"{info.n_members} members "
        f"in {info.seconds:.1f} s\ncatalog: {info.catalog}\nmask: {info.mask}\ntruth: "
        f"{info.truth}\n"
        f"inversions (intake YAML): {info.inversions_yaml}"
    )


def register(app: typer.Typer) -> None:
    """Add this area's commands to the main app."""
    app.add_typer(catalog_app, name="catalog")
    app.command("synth")(synth)
