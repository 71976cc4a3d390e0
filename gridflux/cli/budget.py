"""``gridflux budget``: tables and figures of a budget recipe from a store or the paper's inputs."""

from __future__ import annotations

from typing import Annotated

import typer


def fits(table, width: int) -> bool:
    """Whether rich renders ``table`` whole at ``width`` columns (rich crops a table whose columns'
    smallest widths add up to more than the width)."""
    import io

    from rich.console import Console

    buf = io.StringIO()
    Console(file=buf, width=width, color_system=None).print(table)
    tops = [line.rstrip() for line in buf.getvalue().splitlines() if line.startswith("┏")]
    return all(line.endswith("┓") for line in tops)


def long_headline(title, shown):
    """The headline as one row per (item, gas) value: fits any terminal of 60 columns or more."""
    from rich.markup import escape
    from rich.table import Table

    t = Table(title=title)
    item = str(shown.columns[0])
    t.add_column(item, overflow="fold")
    t.add_column("gas \\[unit]", overflow="fold")
    t.add_column("mean (2.5 %, 97.5 %)", overflow="fold")
    for row in shown.itertuples(index=False):
        for c, v in zip(shown.columns[1:], row[1:], strict=True):
            if str(v).strip():
                t.add_row(escape(str(row[0])), escape(str(c)), escape(str(v)))
    return t


def print_headline(run, console) -> None:
    """Print a budget run's headline table, what was not computed and which members were excluded.

    A column per gas where the terminal is wide enough, else a row per (item, gas) value: every
    value whole either way."""
    from rich.markup import escape
    from rich.table import Table

    title = (
        f"{run.title} - inputs: {run.source}, "
        f"{run.metric.label}, {run.result.propagation} propagation (mean (2.5 %, 97.5 %))"
    )
    shown = run.headline.drop(columns=["label"])
    t = Table(title=title)
    for c in shown.columns:
        name, _, unit = str(c).partition(" [")
        t.add_column(
            name if not unit else f"{name}\n[dim]{unit.rstrip(']')}[/dim]", overflow="fold"
        )
    for row in shown.itertuples(index=False):
        t.add_row(*[escape(str(v)) for v in row])
    if not fits(t, console.width):
        t = long_headline(t.title, shown)  # too narrow for a column per gas: a row per value
    console.print(t)
    from gridflux.budget.gwp import values_table

    for o in values_table(run.metric).query("item != ''").itertuples(index=False):
        console.print(f"[yellow]warming-potential override[/yellow] for {o.item}: {o.note}")
    for m in run.blank_totals:
        console.print(f"[red]no total[/red] for {m['item']}: {m['reason']}")
    other = [m for m in run.missing if m["gas"] != "total"]
    if other:
        console.print(
            f"[yellow]{len(other)} item/gas combinations not computed (see missing.csv); "
            "inputs without data: "
            + ", ".join(sorted({m["item"] for m in other if m["gas"] == "*"}) or ["none"])
            + "[/yellow]"
        )
    if run.store is not None:
        ex = run.store.members[run.store.members["status"] == "excluded"]
        for r in ex.itertuples(index=False):
            console.print(
                f"[yellow]excluded[/yellow] {r.member} from {r.input} ({r.gas}): {r.reason}"
            )
        if len(run.store.incomplete_years):
            console.print(
                f"{len(run.store.incomplete_years)} incomplete member-years excluded "
                "(see incomplete_years.csv)"
            )


def register(app: typer.Typer) -> None:
    """Add this area's commands to the main app."""

    @app.command("budget")
    def budget(
        store: Annotated[
            str | None, typer.Argument(help="gridflux zarr store (omit with --inputs paper)")
        ] = None,
        recipe: Annotated[
            str, typer.Option(help="packaged recipe name or recipe YAML path")
        ] = "reccap2-permafrost",
        metric: Annotated[
            str, typer.Option(help="CO2-eq time horizon: GWP20 | GWP100 | GWP500")
        ] = "GWP100",
        gwp_set: Annotated[
            str | None,
            typer.Option(
                help="warming-potential set: ar6-per-source (default) | ar6-fossil | "
                "ar6-nonfossil | ar5 | reccap2-paper"
            ),
        ] = None,
        allow_partial: Annotated[
            bool,
            typer.Option(help="exit 0 even when a CO2-eq total is blank because a gas is missing"),
        ] = False,
        coverage: Annotated[
            str | None,
            typer.Option(help="period-mean coverage: full | partial (default: the recipe's)"),
        ] = None,
        out: Annotated[
            str, typer.Option(help="output directory for tables and figures")
        ] = "budget-out",
        inputs: Annotated[
            str,
            typer.Option(
                help="'store' (default) or 'paper' (the paper's published ensemble results)"
            ),
        ] = "store",
        region: Annotated[
            str | None, typer.Option(help="region label in the store (default: the recipe's)")
        ] = None,
        propagation: Annotated[
            str | None,
            typer.Option(help="linear | quadrature | montecarlo (default: the recipe's)"),
        ] = None,
        interval: Annotated[
            str | None,
            typer.Option(
                help="interval for every ensemble: percentile | normal | student-t | minmax "
                "(default: each ensemble's own method, from the recipe)"
            ),
        ] = None,
        figures: Annotated[bool, typer.Option(help="write figures")] = True,
    ) -> None:
        """Compute a budget recipe and write tidy tables (CSV, Markdown) and figures to OUT."""
        from rich.console import Console

        from gridflux.budget.api import compute_budget, write_budget
        from gridflux.cli.exits import ExitCode

        console = Console()  # the headline (asked for) on stdout, at the terminal's width
        if inputs == "store" and store is None:
            raise typer.BadParameter(
                "a STORE is required unless --inputs paper is given", param_hint="STORE"
            )
        run = compute_budget(
            store,
            recipe,
            metric,
            inputs=inputs,
            region=region,
            propagation=propagation,
            interval_method=interval,
            gwp_set=gwp_set,
            coverage=coverage,
        )
        files = write_budget(run, out, figures=figures)
        print_headline(run, console)
        typer.echo(f"wrote {len(files)} files to {out}", err=True)
        if not run.complete and not allow_partial:
            typer.echo(
                f"error: {len(run.blank_totals)} CO2-eq totals are blank because inputs are "
                "missing (see missing.csv); pass --allow-partial to accept a partial budget",
                err=True,
            )
            raise typer.Exit(ExitCode.SERIES_FAILED)
