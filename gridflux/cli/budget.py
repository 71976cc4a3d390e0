"""``gridflux budget``: tables and figures of a budget recipe from a store or the paper's inputs."""

from __future__ import annotations

from typing import Annotated

import typer


def print_headline(run, console) -> None:
    """Print a budget run's headline table, what was not computed and which members were excluded."""
    from rich.table import Table

    t = Table(
        title=f"{run.recipe.title} - inputs: {run.source}, {run.metric}, "
        f"{run.result.propagation} propagation (mean (2.5 %, 97.5 %))"
    )
    shown = run.headline.drop(columns=["label"])
    for c in shown.columns:
        name, _, unit = str(c).partition(" [")
        t.add_column(
            name if not unit else f"{name}\n[dim]{unit.rstrip(']')}[/dim]", overflow="fold"
        )
    for row in shown.itertuples(index=False):
        t.add_row(*[str(v) for v in row])
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
