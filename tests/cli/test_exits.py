"""The exit-code table and the one-line error messages (gridflux/cli/exits.py)."""

from __future__ import annotations

import errno
import re
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from gridflux.cli.exits import ExitCode, explain, guard
from gridflux.errors import (
    BudgetError,
    CatalogError,
    ClusterError,
    GridfluxError,
    InputError,
    MaskError,
    StoreError,
)

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_table_is_the_documented_one():
    assert {c.name: int(c) for c in ExitCode} == {
        "OK": 0,
        "SERIES_FAILED": 1,
        "USAGE": 2,
        "STORE": 3,
        "CLUSTER": 4,
        "INTERNAL": 5,
        "INTERRUPTED": 130,
    }
    # README.md repeats the table: one row per code, in a section of its own
    text = README.read_text()
    section = text[text.index("## Exit codes") :]
    section = section[: section.index("\n## ", 4)]
    for code in ExitCode:
        assert re.search(rf"^\| {int(code)} \|", section, re.M), (code, section)


@pytest.mark.parametrize(
    "exc, code",
    [
        (StoreError("s.zarr is in use"), ExitCode.STORE),
        (ClusterError("no sbatch"), ExitCode.CLUSTER),
        (InputError("bad units", path="a.nc", variable="npp"), ExitCode.USAGE),
        (CatalogError("line 3"), ExitCode.USAGE),
        (MaskError("fractions > 1"), ExitCode.USAGE),
        (BudgetError("no such recipe"), ExitCode.USAGE),
        (GridfluxError("plain"), ExitCode.USAGE),
        (FileNotFoundError(errno.ENOENT, "No such file or directory", "x.nc"), ExitCode.USAGE),
        (IsADirectoryError(errno.EISDIR, "Is a directory", "d"), ExitCode.USAGE),
        (PermissionError(errno.EACCES, "Permission denied", "/ro/s.zarr"), ExitCode.STORE),
        (OSError(errno.EROFS, "Read-only file system", "/ro/s.zarr"), ExitCode.STORE),
        (OSError(errno.ENOSPC, "No space left on device", "/full/s.zarr"), ExitCode.STORE),
        (KeyboardInterrupt(), ExitCode.INTERRUPTED),
        (RuntimeError("boom"), ExitCode.INTERNAL),
    ],
)
def test_each_error_maps_to_its_code_and_one_line(exc, code):
    got, message = explain(exc)
    assert got == code
    assert "\n" not in message and message
    if isinstance(exc, OSError):
        assert exc.filename in message  # where
    if code == ExitCode.INTERNAL:
        assert "--debug" in message


def test_os_errors_say_how_to_fix():
    assert "writable" in explain(OSError(errno.EROFS, "Read-only file system", "/ro"))[1]
    assert "free some space" in explain(OSError(errno.ENOSPC, "No space", "/full"))[1]
    assert "check the path" in explain(FileNotFoundError(2, "No such file", "x.nc"))[1]


def test_multi_line_messages_become_one_line():
    assert explain(InputError("first\n  second", path="a.nc"))[1] == "a.nc: first second"


def _app(exc: BaseException) -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def root(debug: bool = typer.Option(False, "--debug")) -> None:
        from gridflux.cli import exits

        exits.DEBUG = debug

    @app.command()
    def boom() -> None:
        raise exc

    app.registered_commands[0].callback = guard(app.registered_commands[0].callback)
    return app


def test_guard_prints_one_line_and_exits_with_the_code():
    r = CliRunner().invoke(_app(StoreError("s.zarr: in use; wait")), ["boom"])
    assert r.exit_code == 3
    assert r.stderr.strip() == "error: s.zarr: in use; wait"
    assert "Traceback" not in r.output


def test_guard_interrupt_and_debug_traceback():
    r = CliRunner().invoke(_app(KeyboardInterrupt()), ["boom"])
    assert r.exit_code == 130 and r.stderr.startswith("error: interrupted")
    r = CliRunner().invoke(_app(ValueError("deep")), ["--debug", "boom"])
    assert r.exit_code == 5
    assert "Traceback" in r.stderr and r.stderr.strip().splitlines()[-1].startswith("error:")


def test_guard_leaves_usage_errors_to_typer():
    r = CliRunner().invoke(_app(typer.BadParameter("nope", param_hint="--x")), ["boom"])
    assert r.exit_code == 2


def test_debug_traceback_is_scrubbed_along_its_chain():
    url = "https://bob:pa55word@data.example.org/a.nc?X-Amz-Credential=AKIAXX&X-Amz-Signature=f00d"
    try:
        raise OSError(f"GET {url} failed")
    except OSError as cause:
        try:
            raise StoreError(f"cannot read {url}") from cause
        except StoreError as exc:
            err = exc
    r = CliRunner().invoke(_app(err), ["--debug", "boom"])
    assert r.exit_code == 3
    assert "Traceback" in r.stderr and "The above exception was the direct cause" in r.stderr
    assert r.stderr.count("https://***@data.example.org/a.nc") == 3  # cause, error, one line
    for secret in ("pa55word", "AKIAXX", "f00d"):
        assert secret not in r.output
