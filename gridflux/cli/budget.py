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
    from rich.table import Table

    t = Table(
        title=f"{run.recipe.title} - inputs: {run.source}, {run.metric}, "
        f"{run.result.propagation} propagation (mean (2.5 %, 97.5 %))"
    )
    shown = run.headline.drop(columns=["label"])
    first = str(shown.columns[0]) if len(shown.columns) else None
    for c in shown.columns:
        if str(c) == first:  # row labels: at least 10 wide (bottom_up...), folded beyond
            longest = max((len(str(v)) for v in shown[c]), default=0)
            t.add_column(first, overflow="fold", min_width=min(longest, 10))
            continue
        name, _, unit = str(c).partition(" [")
        t.add_column(
            name if not unit else f"{name}\n[dim]{unit.rstrip(']')}[/dim]", overflow="fold"
        )
    for row in shown.itertuples(index=False):
        t.add_row(*[str(v) for v in row])
    if not fits(t, console.width):
        t = long_headline(t.title, shown)  # too narrow for a column per gas: a row per value
    console.print(t)
    if run.result.missing:
        console.print(
            f"[yellow]{len(run.result.missing)} item/gas combinations not computed "
            "(see missing.csv)[/yellow]"
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
            str, typer.Option(help="GWP20 | GWP100 | GWP500 | *-nonfossil | AR5-GWP20 | AR5-GWP100")
        ] = "GWP100",
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
            str | None, typer.Option(help="ensemble interval method (default: percentile 2.5-97.5)")
        ] = None,
        figures: Annotated[bool, typer.Option(help="write figures")] = True,
    ) -> None:
        """Compute a budget recipe and write tidy tables (CSV, Markdown) and figures to OUT."""
        from rich.console import Console

        from gridflux.budget.api import compute_budget, write_budget

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
        )
        files = write_budget(run, out, figures=figures)
        print_headline(run, console)
        typer.echo(f"wrote {len(files)} files to {out}", err=True)
