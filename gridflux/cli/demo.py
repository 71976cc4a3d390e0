"""``gridflux demo``: the whole chain on the embedded synthetic RECCAP2-like archive.

1. write the synthetic archive in two releases (catalogs, files in real-world layouts, region mask,
   planted truths; :mod:`gridflux.synthetic.releases`);
2. run the process models of release 1 on a LocalCluster of worker processes into a zarr store;
3. add release 1's inversions (their own protocol, regrid-mask) to that store and check every
   series' monthly totals against the planted truths;
4. grow the store to release 2 (a new model, a new version, every series a year longer) and check
   every series again;
5. print the headline budget from the one store.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer


@dataclass
class TruthCheck:
    """Outcome of comparing a store's totals with planted truths."""

    n_series: int
    n_match: int
    worst_rel: float
    missing: list[str]
    mismatched: list[str]
    rtol: float

    @property
    def ok(self) -> bool:
        return self.n_match == self.n_series and not self.missing

    def __str__(self) -> str:
        return (
            f"{self.n_match} of {self.n_series} series match the planted truths to {self.rtol:g} "
            f"(worst relative difference {self.worst_rel:.2e})"
        )


def check_against_truth(
    store: str | os.PathLike,
    truth_csv: str | os.PathLike,
    rtol: float = 1e-10,
    storage_options: dict | None = None,
) -> TruthCheck:
    """Compare every (member, variable, region, month) of a store with the planted truth table.

    The relative difference of a series is ``max|store - truth| / max|truth|`` over its months
    and regions (months whose truth is zero are compared on that scale, not divided by zero).
    ``storage_options``: fsspec options of a store at a URL (e.g. ``s3://``).
    """
    import numpy as np
    import pandas as pd

    from gridflux.pipeline.export import totals_table

    truth = pd.read_csv(truth_csv, dtype={"time": str})
    got = totals_table(store, storage_options).rename(
        columns={"source_id": "member", "value": "got"}
    )
    merged = truth.merge(
        got[["member", "variable", "region", "time", "got"]],
        on=["member", "variable", "region", "time"],
        how="left",
    )
    worst, n_match, missing, mismatched = 0.0, 0, [], []
    groups = merged.groupby(["member", "variable"], sort=True)
    for (member, variable), g in groups:
        key = f"{member}/{variable}"
        if g["got"].isna().any():
            missing.append(key)
            continue
        scale = float(np.max(np.abs(g["value"]))) or 1.0
        rel = float(np.max(np.abs(g["got"] - g["value"]))) / scale
        worst = max(worst, rel)
        if rel <= rtol:
            n_match += 1
        else:
            mismatched.append(f"{key} ({rel:.1e})")
    return TruthCheck(len(groups), n_match, worst, missing, mismatched, rtol)


def run_demo(
    workdir: str | os.PathLike = "gridflux-demo",
    *,
    size: str = "tiny",
    n_workers: int = 2,
    console=None,
    confirm: bool | Callable[[str], bool] | None = None,
) -> bool:
    """Run the demo end to end; returns True when every series matches its planted truth.

    The store is built in steps, as a group maintaining a study's archive would: the process
    models of release 1; then release 1's inversions with their own protocol (``regrid-mask``,
    the default of the inversion ensembles); then release 2, which adds a model, replaces one
    series' version and extends every series by a year. Every series is checked against the
    planted truths after the inversions and after release 2; the budget reads the one store.

    ``confirm``: passed to :func:`gridflux.synthetic.releases.build_releases` (True, or a callable
    that asks,
    for ``size="paper"``: hundreds of GB)."""
    from rich.console import Console

    from gridflux.cli.run import print_summary
    from gridflux.compute.clusters import make_cluster
    from gridflux.pipeline.runner import run
    from gridflux.synthetic.releases import build_releases

    console = console or Console()
    workdir = Path(workdir)
    t0 = time.perf_counter()
    archive_dir, store = workdir / "archive", workdir / "store.zarr"
    for p in (archive_dir, store):
        if p.exists():
            shutil.rmtree(p)
    rel = build_releases(archive_dir, size=size, confirm=confirm)
    console.print(
        f"[bold]1/5[/bold] synthetic archive in two releases: {rel.first.n_series} series, then "
        f"{rel.second.n_series} (one year longer, {', '.join(rel.second.added)} added, "
        f"{', '.join(rel.second.replaced)} in a new version) under {archive_dir} "
        f"[{time.perf_counter() - t0:.1f} s]"
    )
    unexpected: set[str] = set()
    checks = []
    steps = [
        ("2/5", "process models of release 1", [rel.first.models], None),
        (
            "3/5",
            "release 1's inversions added (protocol regrid-mask)",
            [rel.first.models, rel.first.inversions],
            rel.first.truth,
        ),
        (
            "4/5",
            "release 2: a new model, a new version, one more year",
            [rel.second.models, rel.second.inversions],
            rel.second.truth,
        ),
    ]
    with make_cluster("local", n_workers=n_workers) as handle:
        console.print(
            f"LocalCluster with {n_workers} worker processes; dashboard {handle.dashboard_link}"
        )
        for label, what, catalogs, truth in steps:
            summary = run(catalogs, rel.mask, str(store), client=handle.client, progress=False)
            console.print(f"[bold]{label}[/bold] {what}")
            print_summary(summary, console)
            unexpected |= set(summary.failed)
            if truth is None:
                continue
            check = check_against_truth(store, truth)
            checks.append(check)
            colour = "green" if check.ok else "red"
            console.print(f"  [{colour}]{check}[/{colour}]")
            for key in check.missing[:10]:
                console.print(f"  missing: {key}")
            for key in check.mismatched[:10]:
                console.print(f"  mismatch: {key}")

    from gridflux.budget.api import compute_budget, write_budget
    from gridflux.cli.budget import print_headline

    budget = compute_budget(str(store), "reccap2-permafrost", "GWP100")
    files = write_budget(budget, workdir / "budget")
    console.print(
        f"[bold]5/5[/bold] headline budget of the synthetic archive from the one store "
        f"({len(files)} tables and figures in {workdir / 'budget'})"
    )
    print_headline(budget, console)
    console.print(f"demo finished in {time.perf_counter() - t0:.1f} s; store: {store}")
    return all(c.ok for c in checks) and not unexpected


def demo_cmd(
    workdir: Annotated[
        Path, typer.Option("--workdir", help="where the synthetic archive and store go")
    ] = Path("gridflux-demo"),
    size: Annotated[str, typer.Option(help="tiny | small | paper (hundreds of GB)")] = "tiny",
    workers: Annotated[int, typer.Option(min=1, help="local worker processes, at least 1")] = 2,
    yes: Annotated[
        bool,
        typer.Option("--yes", "-y", help="write --size paper (hundreds of GB) without asking"),
    ] = False,
) -> None:
    """Build the synthetic RECCAP2-like archive, run the pipeline on a local cluster, check,
    budget."""
    if size not in ("tiny", "small", "paper"):
        raise typer.BadParameter(
            f"size {size!r}; expected tiny, small or paper", param_hint="--size"
        )

    def ask(message: str) -> bool:
        try:
            return typer.confirm(message, default=False, err=True)
        except typer.Abort:  # no answer (stdin closed): not confirmed
            typer.echo("", err=True)
            return False

    confirm = True if yes else ask
    ok = run_demo(workdir, size=size, n_workers=workers, confirm=confirm)
    if not ok:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("demo")(demo_cmd)
