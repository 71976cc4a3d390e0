"""Worker start-up: import what a task needs before the first task arrives.

Local clusters pass this module to their workers as a ``preload`` (``distributed`` imports it
when a worker starts; the ``gridflux.cluster.local.preload`` setting), and the pipeline's worker
plugin calls :func:`dask_setup` on every other cluster kind. A worker's imports (xarray,
netCDF4, h5py, dask.array: most of a second of CPU) then overlap the driver's start and planning instead of
delaying the first task of a run. It also limits netCDF-C's chunk cache (see
:func:`gridflux.catalog.limit_netcdf_chunk_cache`).
"""

from __future__ import annotations

from typing import Any


def dask_setup(worker: Any = None) -> None:
    """Import the task modules and limit the netCDF chunk cache (idempotent)."""
    import dask.array as da
    import deflate  # noqa: F401
    import h5py  # noqa: F401
    import netCDF4  # noqa: F401
    import xarray  # noqa: F401

    import gridflux.chunkarray  # noqa: F401
    import gridflux.normalize  # noqa: F401
    import gridflux.regrid.xarray  # noqa: F401
    import gridflux.steps  # noqa: F401
    from gridflux.catalog import limit_netcdf_chunk_cache

    limit_netcdf_chunk_cache()
    da.ones((2, 2), chunks=1)[:1].compute(scheduler="sync")  # dask's first compute loads its optimizers
    # not built here: pint's unit registry (0.3 s), needed only for files not in canonical units
