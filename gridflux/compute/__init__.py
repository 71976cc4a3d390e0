"""Layer 4, compute: clusters of every kind (local, SLURM, PBS, Kubernetes, gateway) and worker
setup.

Imports ingest and below; never pipeline, budget or cli.
"""
