"""The ``gridflux`` command line: a thin typer front over the Python API.

Each area registers its own commands from a small module (``cli/<area>.py``) so that this file
stays an index. Heavy imports happen inside the commands, not here, so ``gridflux --help`` is fast.
"""

from __future__ import annotations

import importlib

import typer

from gridflux.cli.exits import guard

app = typer.Typer(
    name="gridflux",
    help="Regional greenhouse-gas budgets from gridded model and inversion archives.\n\n"
    "Exit codes (every command): 0 ok, 1 some series failed, 2 usage or input error, "
    "3 store or file-system error, 4 cluster error, 5 unexpected error (a bug), 130 interrupted.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def _version(value: bool) -> None:
    if value:
        from gridflux import __version__

        typer.echo(f"gridflux {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    log_level: str = typer.Option("WARNING", "--log-level", help="DEBUG, INFO, WARNING or ERROR"),
    debug: bool = typer.Option(
        False, "--debug", help="print the traceback of an error before its one-line message"
    ),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="print the version and exit"
    ),
) -> None:
    """gridflux: exact regridding, region totals and budgets for model and inversion ensembles."""
    import logging

    import dask.config

    from gridflux.cli import exits

    exits.DEBUG = debug

    level = log_level.upper()
    if level not in LOG_LEVELS:
        raise typer.BadParameter(
            f"{log_level!r}; expected one of {', '.join(LOG_LEVELS)}", param_hint="--log-level"
        )
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # distributed configures its own loggers from dask config when first imported
    dask.config.set(
        {
            "logging": {
                "distributed": level.lower(),
                "distributed.client": level.lower(),
                "distributed.scheduler": level.lower(),
                "distributed.nanny": level.lower(),
                "distributed.worker": level.lower(),
                "distributed.http.proxy": "error",
            }
        }
    )
    for name in (
        "distributed",
        "distributed.scheduler",
        "distributed.nanny",
        "distributed.worker",
        "distributed.core",
        "distributed.http.proxy",
        "distributed.diskutils",
    ):
        logging.getLogger(name).setLevel(
            max(logging.getLevelName(level), logging.WARNING)
            if name == "distributed.http.proxy"
            else level
        )


# module name -> owns these commands
_COMMAND_MODULES = (
    "gridflux.cli.core",  # weights
    "gridflux.cli.ingest",  # catalog build/check, synth
    "gridflux.cli.run",  # run, export, store info
    "gridflux.cli.demo",  # demo
    "gridflux.cli.budget",  # budget
    "gridflux.cli.bench",  # bench
)

for _name in _COMMAND_MODULES:
    importlib.import_module(_name).register(app)

# every command's errors become one line and an exit code of gridflux.cli.exits.ExitCode
for _group in [app, *(g.typer_instance for g in app.registered_groups)]:
    for _command in _group.registered_commands:
        _command.callback = guard(_command.callback)


def main() -> None:
    """Console-script entry point."""
    app()
