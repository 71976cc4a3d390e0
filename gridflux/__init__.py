"""gridflux: regional greenhouse-gas budgets from gridded climate-model and inversion archives.

The public API is imported lazily (PEP 562) so that ``import gridflux`` stays fast: xarray, dask
and zarr load only when a name that needs them is first used.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it
_API = {
    "CellBounds": "gridflux.kernels.grids",
    "cell_areas": "gridflux.kernels.grids",
    "global_grid": "gridflux.kernels.grids",
    "gaussian_grid": "gridflux.kernels.grids",
    "conservative_weights": "gridflux.kernels.conservative",
    "regrid": "gridflux.fields.regrid",
    "grid_of": "gridflux.fields.regrid",
    "RegionMask": "gridflux.fields.masks",
    "region_totals": "gridflux.fields.totals",
    "load_catalog": "gridflux.ingest.catalog",
    "open_series": "gridflux.ingest.catalog",
    "normalize": "gridflux.fields.normalize",
    "run": "gridflux.pipeline.runner",
    "open_store": "gridflux.pipeline.store",
    "set_options": "gridflux.config",
}

__all__ = sorted(_API) + ["__version__"]


def __getattr__(name: str) -> Any:
    if name in _API:
        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'gridflux' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
