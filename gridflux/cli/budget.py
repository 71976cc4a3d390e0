"""``gridflux budget``: tables and figures of a budget recipe from a store or the paper's inputs."""

from __future__ import annotations

from typing import Annotated

import typer


def print_headline(run, console) -> None:
    """Print a budget run's headline table, what was not computed and which members were excluded."""
    from rich.markup import escape
    from rich.table import Table

    title = (
        f"{run.title} - inputs: {run.source}, "
        f"{run.metric.label}, {run.result.propagation} propagation (mean (2.5 %, 97.5 %))"
    )
    shown = run.headline.drop(columns=["label"])
    if console.width < 140:  # a narrow terminal: one block per item, one line per gas
        console.print(f"[bold]{escape(title)}[/bold]")
        for row in shown.to_dict("records"):
            console.print(f"[bold]{row.pop('item')}[/bold]")
            for col, v in row.items():
                if v:
                    name, _, unit = str(col).partition(" [")
                    console.print(f"  {name:<8} {v}  [dim]{escape(unit.rstrip(']'))}[/dim]")
    else:
        t = Table(title=title)
        for c in shown.columns:
            name, _, unit = str(c).partition(" [")
            t.add_column(name if not unit else f"{name}\n[dim]{unit.rstrip(']')}[/dim]")
        for row in shown.itertuples(index=False):
            t.add_row(*[str(v) for v in row])
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
        from gridflux.errors import GridfluxError

        console = Console(width=max(Console().width, 200))
        if inputs == "store" and store is None:
            console.print("[red]a STORE is required unless --inputs paper is given[/red]")
            raise typer.Exit(2)
        try:
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
        except GridfluxError as exc:
            console.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(1) from exc
        print_headline(run, console)
        console.print(f"wrote {len(files)} files to {out}")
        if not run.complete and not allow_partial:
            console.print(
                f"[red]{len(run.blank_totals)} CO2-eq totals are blank because inputs are "
                "missing; exit 3 (pass --allow-partial to accept a partial budget)[/red]"
            )
            raise typer.Exit(3)
