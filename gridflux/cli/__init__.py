"""The ``gridflux`` command line: a thin typer front over the Python API.

Each area registers its own commands from a small module (``cli/<area>.py``) so that this file
stays an index. Heavy imports happen inside the commands, not here, so ``gridflux --help`` is fast.
"""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    name="gridflux",
    help="Regional greenhouse-gas budgets from gridded model and inversion archives.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root(
    log_level: str = typer.Option("WARNING", "--log-level", help="DEBUG, INFO, WARNING or ERROR"),
) -> None:
    """gridflux: exact regridding, region totals and budgets for model and inversion ensembles."""
    import logging

    import dask.config

    level = log_level.upper()
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
    "gridflux.cli.run",  # demo, run, export, store info
    "gridflux.cli.budget",  # budget
    "gridflux.cli.bench",  # bench
)

for _name in _COMMAND_MODULES:
    importlib.import_module(_name).register(app)


def main() -> None:
    """Console-script entry point."""
    app()
