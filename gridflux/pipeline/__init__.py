"""Layer 5, pipeline: the run (plan, template, submit, collect, record), worker tasks, store,
export.

The only layer that builds dask graphs. Imports compute and below; never budget or cli.
"""
