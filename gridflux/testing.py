"""Test helpers shipped with gridflux (importable by users' own tests too)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import dask


class DaskComputeError(RuntimeError):
    """Raised when code under ``raise_if_dask_computes`` triggers a dask computation."""


@contextlib.contextmanager
def raise_if_dask_computes(max_computes: int = 0) -> Iterator[None]:
    """Fail if more than ``max_computes`` dask computations run inside the block (proves
    laziness)."""
    count = 0

    def scheduler(dsk, keys, **kwargs):
        nonlocal count
        count += 1
        if count > max_computes:
            raise DaskComputeError(
                f"{count} dask computation(s) ran; expected at most {max_computes}"
            )
        return dask.get(dsk, keys, **kwargs)

    with dask.config.set(scheduler=scheduler):
        yield
