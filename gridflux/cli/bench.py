"""CLI: ``gridflux bench``: the throughput benchmark harness (``benchmarks/run.py``).

The harness lives in the source tree's ``benchmarks/`` directory (it is not part of the installed
package: it generates ~1 GB of inputs and shells out to CDO and NCO). This command finds it next
to the package (an editable install or a source checkout) and runs it with the same options.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer


def harness_path() -> Path | None:
    """``benchmarks/run.py`` of the source tree this gridflux was imported from, if there is one."""
    import gridflux

    p = Path(gridflux.__file__).resolve().parents[1] / "benchmarks" / "run.py"
    return p if p.exists() else None


def bench_cmd(
    quick: Annotated[
        bool,
        typer.Option(
            "--quick", help="the 0.5 deg zlib case only, 1 timed round, 4-member scaling (< 2 min)"
        ),
    ] = False,
    tiny: Annotated[bool, typer.Option("--tiny", help="tiny grids for CI (seconds)")] = False,
    rounds: Annotated[
        int | None, typer.Option("--rounds", help="timed rounds after the warm-up")
    ] = None,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="write the records (JSON) here")
    ] = None,
    cases: Annotated[
        list[str] | None, typer.Option("--cases", help="case name (repeatable)")
    ] = None,
    methods: Annotated[
        list[str] | None, typer.Option("--methods", help="method name (repeatable)")
    ] = None,
    scaling: Annotated[
        bool | None, typer.Option("--scaling/--no-scaling", help="ensemble scaling runs")
    ] = None,
    cache: Annotated[Path | None, typer.Option("--cache", help="input cache directory")] = None,
    archive: Annotated[
        bool,
        typer.Option(
            "--archive",
            help="the whole-archive benchmark (benchmarks/archive.py; takes --quick, --rounds, "
            "--json, --methods, --cache)",
        ),
    ] = False,
) -> None:
    """Time gridflux against the decode limit, CDO, NCO, xarray-regrid and xESMF on the same
    files."""
    run_py = harness_path()
    if run_py is None:
        typer.echo(
            "error: gridflux bench needs a source checkout of gridflux (benchmarks/run.py was not "
            "found "
            "next to the installed package); clone the repository and pip install -e .",
            err=True,
        )
        raise typer.Exit(2)
    argv = [sys.executable, str(run_py)]
    if archive:
        argv = [sys.executable, str(run_py.parent / "archive.py")]
        argv += ["--quick"] if quick else []
        argv += ["--rounds", str(rounds)] if rounds else []
        argv += ["--json", str(json_out)] if json_out else []
        argv += ["--methods", *methods] if methods else []
        argv += ["--cache", str(cache)] if cache else []
        code = subprocess.run(argv, env=os.environ.copy()).returncode
        if code:
            raise typer.Exit(code)
        return
    if quick and tiny:
        raise typer.BadParameter(
            "--quick and --tiny exclude each other", param_hint="--quick/--tiny"
        )
    argv += ["--quick"] if quick else []
    argv += ["--tiny"] if tiny else []
    argv += ["--rounds", str(rounds)] if rounds else []
    argv += ["--json", str(json_out)] if json_out else []
    argv += ["--cases", *cases] if cases else []
    argv += ["--methods", *methods] if methods else []
    argv += [] if scaling is None else (["--scaling"] if scaling else ["--no-scaling"])
    argv += ["--cache", str(cache)] if cache else []
    code = subprocess.run(argv, env=os.environ.copy()).returncode
    if code:
        raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    """Add this area's commands to the main app."""
    app.command("bench")(bench_cmd)
