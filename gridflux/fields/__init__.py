"""Layer 2, xarray fields: CF normalization, units, time axis, region masks, totals and the regrid
front.

Imports the kernels below it; never ingest, pipeline, compute, budget or cli.
"""
