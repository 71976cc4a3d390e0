"""The exit codes of every ``gridflux`` command, and the one-line error messages behind them.

Every command runs inside :func:`guard`: an error gridflux raises on purpose (a
:class:`~gridflux.errors.GridfluxError`) or one of the file system's errors becomes ONE line on
stderr (what, where, how to fix) and the exit code of :class:`ExitCode`; ``gridflux --debug CMD``
prints the traceback before that line; both pass through :func:`gridflux.ingest.remote.scrub`
(no URL user-info or signing token is shown). Usage errors (unknown option, bad value) are
typer/click's and exit 2. The table is repeated in README.md ("Exit codes"): keep the two in step.

Streams: data a command was asked for (tables of ``store info``, ``catalog check``, ``budget``,
the demo's report) go to stdout; progress bars, run summaries, status and errors go to stderr.
"""

from __future__ import annotations

import errno
import functools
import re
import sys
import traceback
from collections.abc import Callable
from enum import IntEnum
from typing import Any, TypeVar

import click
import typer

F = TypeVar("F", bound=Callable[..., Any])


class ExitCode(IntEnum):
    """Exit status of every ``gridflux`` command (the same table for all of them)."""

    OK = 0  #: everything asked for was done
    #: the command ran, but some series failed (or did not match a truth, or a budget total is
    #: blank)
    SERIES_FAILED = 1
    USAGE = 2  #: usage or input error: bad option, missing/unreadable/invalid input file
    STORE = 3  #: store error: not a store, in use, damaged; or the file system refused a write
    CLUSTER = 4  #: a dask cluster could not be created or reached
    INTERNAL = 5  #: an unexpected error (a bug): rerun with --debug and report the traceback
    INTERRUPTED = 130  #: interrupted (Ctrl-C); a run resumes where it stopped


#: set by ``gridflux --debug``: print the traceback before the one-line message
DEBUG = False


def one_line(text: str) -> str:
    """Collapse whitespace (newlines included) so that a message stays on one line."""
    return re.sub(r"\s+", " ", str(text)).strip()


def _os_message(exc: OSError) -> tuple[ExitCode, str]:
    where = exc.filename if exc.filename is not None else None
    what = exc.strerror or str(exc)
    prefix = f"{where}: " if where is not None else ""
    if (
        where is None and exc.strerror is None
    ):  # e.g. zarr's FileNotFoundError("... does not exist")
        prefix, what = "", str(exc)
    if isinstance(exc, FileNotFoundError):
        return ExitCode.USAGE, f"{prefix}{what}; check the path (and its spelling)"
    if isinstance(exc, IsADirectoryError):
        return ExitCode.USAGE, f"{prefix}is a directory; give a file"
    if isinstance(exc, NotADirectoryError):
        return ExitCode.USAGE, f"{prefix}a part of this path is a file, not a directory"
    if isinstance(exc, PermissionError):
        return (
            ExitCode.STORE,
            f"{prefix}permission denied; choose a location you may write (or read), "
            "or fix its permissions",
        )
    if exc.errno == errno.EROFS:
        return ExitCode.STORE, f"{prefix}read-only file system; choose a writable location"
    if exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        return (
            ExitCode.STORE,
            f"{prefix}{what}; free some space (or quota), or choose another location",
        )
    return ExitCode.STORE, f"{prefix}{what} (file system error)"


def explain(exc: BaseException) -> tuple[ExitCode, str]:
    """The exit code and the one-line message (without the ``error:`` prefix) of an exception."""
    from gridflux.errors import ClusterError, GridfluxError, StoreError

    if isinstance(exc, KeyboardInterrupt):
        return ExitCode.INTERRUPTED, (
            "interrupted; every series recorded done is kept: run the same command again to resume"
        )
    if isinstance(exc, ClusterError):
        return ExitCode.CLUSTER, one_line(exc)
    if isinstance(exc, StoreError):
        return ExitCode.STORE, one_line(exc)
    if isinstance(exc, GridfluxError):
        return ExitCode.USAGE, one_line(exc)
    if isinstance(exc, OSError):
        code, msg = _os_message(exc)
        return code, one_line(msg)
    if type(exc).__module__.split(".")[0] == "zarr":  # e.g. GroupNotFoundError on a plain folder
        return ExitCode.STORE, one_line(
            f"{exc} (not a zarr store: give the path of a gridflux store, "
            "e.g. gridflux-demo/store.zarr)"
        )
    return ExitCode.INTERNAL, one_line(
        f"unexpected {type(exc).__name__}: {exc} (a bug in gridflux: run again with "
        "`gridflux --debug ...` and report the traceback)"
    )


def fail(exc: BaseException) -> typer.Exit:
    """Print ``exc`` as one line on stderr (its traceback first under --debug); return the
    Exit to raise."""
    from gridflux.ingest.remote import scrub

    code, message = explain(exc)
    if DEBUG:  # scrubbed too: a URL's user-info or signing token may sit in any frame's message
        text = "".join(traceback.format_exception(exc))
        print(scrub(text), end="", file=sys.stderr, flush=True)
    # no user-info or signing token of any URL (e.g. a catalog's root in a CatalogError) is shown
    print(f"error: {scrub(message)}", file=sys.stderr, flush=True)
    return typer.Exit(int(code))


def is_click_flow(exc: BaseException) -> bool:
    """True for typer/click's own exits and usage errors (typer vendors click: duck-typed)."""
    if isinstance(exc, (typer.Exit, typer.Abort, click.exceptions.Exit, click.exceptions.Abort)):
        return True
    return hasattr(exc, "exit_code") and hasattr(exc, "show")  # a ClickException (UsageError...)


def guard(fn: F) -> F:
    """Wrap a command so that no traceback reaches the user (see the module docstring)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (Exception, KeyboardInterrupt) as exc:
            if is_click_flow(exc):
                raise  # typer.Exit and usage errors: typer/click print them and pick the code
            raise fail(exc) from None

    return wrapper  # type: ignore[return-value]
