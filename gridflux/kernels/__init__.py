"""Layer 1, numpy kernels: grids, bounds, cell areas, exact overlaps and conservative weights.

Imports numpy/scipy and gridflux's ground floor (``errors``, ``config``) only; no xarray, dask or
files.
"""
