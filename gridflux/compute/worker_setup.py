"""Worker start-up: import what a task needs before the first task arrives.

Local clusters pass this module to their workers as a ``preload`` (``distributed`` imports it
when a worker starts; the ``gridflux.cluster.local.preload`` setting), and the pipeline's worker
plugin calls :func:`dask_setup` on every other cluster kind. A worker's imports (xarray,
netCDF4, h5py, dask.array: most of a second of CPU), the first open of a file and pint's unit
registry then overlap the driver's start and planning instead of delaying the first tasks of a
run. With the local ``start-method: forkserver`` (the
default) the same modules (:data:`TASK_MODULES`) are imported once, in the fork server that every
local worker is forked from, so a worker starts in ~0.1 s of CPU instead of ~0.9 s. It also limits
netCDF-C's chunk cache (see :func:`gridflux.ingest.catalog.limit_netcdf_chunk_cache`).
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

#: what a task imports (xarray's backends, the chunk reader, dask.array, gridflux's task modules;
#: pint, zarr, numcodecs and fsspec, which xarray imports on a first open: its duck-array check
#: looks for pint, its backend list loads every installed engine)
TASK_MODULES = (
    "dask.array",
    "deflate",
    "h5py",
    "netCDF4",
    "xarray",
    "pint",
    "zarr",
    "numcodecs",
    "fsspec",
    "gridflux.ingest.chunkarray",
    "gridflux.ingest.chunkread",
    "gridflux.ingest.fastopen",
    "gridflux.fields.normalize",
    "gridflux.fields.regrid",
    "gridflux.pipeline.tasks",
    "gridflux.ingest.catalog",
)


class RecordedTaskErrors(logging.Filter):
    """Drop distributed's "Compute Failed" ERROR block of a gridflux task (key ``gridflux-...``):
    the pipeline records that error, one line per series, in the run's summary and manifest. Shown
    again when the worker's ``distributed.worker`` logger is at DEBUG."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not str(record.msg).startswith("Compute Failed"):
            return True
        key = record.args[0] if isinstance(record.args, tuple) and record.args else ""
        if not str(key).startswith("gridflux-"):
            return True
        return logging.getLogger("distributed.worker").isEnabledFor(logging.DEBUG)


def quiet_recorded_task_errors() -> None:
    """Install :class:`RecordedTaskErrors` on this process's ``distributed.worker`` logger
    (once)."""
    logger = logging.getLogger("distributed.worker")
    if not any(isinstance(f, RecordedTaskErrors) for f in logger.filters):
        logger.addFilter(RecordedTaskErrors())


def dask_setup(worker: Any = None) -> None:
    """Import the task modules and limit the netCDF chunk cache (idempotent); keep the ERROR
    blocks of task failures that gridflux records out of the worker's log."""
    quiet_recorded_task_errors()
    for name in TASK_MODULES:
        importlib.import_module(name)
    import dask.array as da

    from gridflux.ingest.catalog import limit_netcdf_chunk_cache

    limit_netcdf_chunk_cache()
    from xarray.backends import list_engines

    list_engines()  # xarray's first open_dataset loads every engine's entry point; cached
    da.ones((2, 2), chunks=1)[:1].compute(
        scheduler="sync"
    )  # dask's first compute loads its optimizers
    _first_open()
    # pint's unit registry (~0.3-0.5 s of CPU to build), which the first series whose files are
    # not in canonical units would otherwise pay inside its task: built while the driver plans
    from gridflux.fields.units import unit_registry

    unit_registry()


def _first_open() -> None:
    """Open and read a tiny netCDF-4 file through the path a task opens a series by
    (``catalog.open_one``: chunk reader, CF decoding; then a dask block read), so that what a
    process does only on its first open (HDF5's start-up, xarray's chunk-manager discovery through
    entry
    points, its decoders' first calls: ~15-40 ms) is done before the first task, not in it."""
    import os
    import tempfile

    import netCDF4
    import numpy as np

    from gridflux.ingest.catalog import open_one

    with tempfile.TemporaryDirectory(prefix="gridflux-warmup-") as tmp:
        path = os.path.join(tmp, "warmup.nc")
        with netCDF4.Dataset(path, "w") as nc:
            for dim in ("time", "lat", "lon"):
                nc.createDimension(dim, 2)
            var = nc.createVariable(
                "x", "f4", ("time", "lat", "lon"), zlib=True, shuffle=True, chunksizes=(1, 2, 2)
            )
            var[:] = np.zeros((2, 2, 2), dtype="f4")
        with open_one(path, "netcdf", None) as ds:
            ds["x"].chunk({"time": 1}).data[:, :1].compute(scheduler="sync")
