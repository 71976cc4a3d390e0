"""Worker start-up: import what a task needs before the first task arrives.

Local clusters pass this module to their workers as a ``preload`` (``distributed`` imports it
when a worker starts; the ``gridflux.cluster.local.preload`` setting), and the pipeline's worker
plugin calls :func:`dask_setup` on every other cluster kind. A worker's imports (xarray,
netCDF4, zarr: about a second of CPU) then overlap the driver's start and planning instead of
delaying the first task of a run. It also limits netCDF-C's chunk cache (see
:func:`gridflux.catalog.limit_netcdf_chunk_cache`).
"""

from __future__ import annotations

from typing import Any


def dask_setup(worker: Any = None) -> None:
    """Import the task modules and limit the netCDF chunk cache (idempotent)."""
    import dask.array as da
    import netCDF4  # noqa: F401
    import xarray  # noqa: F401
    import zarr  # noqa: F401

    import gridflux.normalize  # noqa: F401
    import gridflux.regrid.xarray  # noqa: F401
    import gridflux.steps  # noqa: F401
    from gridflux.catalog import limit_netcdf_chunk_cache
    from gridflux.units import unit_registry

    limit_netcdf_chunk_cache()
    unit_registry()  # pint's registry: built once per process
    da.ones((2, 2), chunks=1)[:1].compute(scheduler="sync")  # dask's first compute loads its optimizers
