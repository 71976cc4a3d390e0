"""``python -m gridflux`` runs the command line (same as the ``gridflux`` script)."""

from gridflux.cli import main

main()
