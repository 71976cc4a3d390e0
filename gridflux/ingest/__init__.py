"""Layer 3, ingest: catalogs (schema, parsers, crawler, opening), remote inputs, chunk reader,
weight files.

Imports fields and kernels; never pipeline, compute, budget or cli.
"""
