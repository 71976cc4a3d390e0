"""CLI: ``gridflux weights`` (exact conservative weights between the grids of two CF files)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def weights(
    src: Annotated[Path, typer.Argument(help="CF netCDF file on the source lat-lon grid")],
    dst: Annotated[Path, typer.Argument(help="CF netCDF file on the destination lat-lon grid")],
    out: Annotated[Path, typer.Option("--out", "-o", help="ESMF weight file to write")],
    normalization: Annotated[str, typer.Option(help="fracarea (ESMF/CDO default) or destarea")] = "fracarea",
    fmt: Annotated[str, typer.Option("--format", help="esmf (xESMF, ncremap) or scrip (cdo remap)")] = "esmf",
) -> None:
    """Write exact conservative weights between two files' grids (like `cdo gencon` / `ncremap -m`)."""
    import time

    import xarray as xr

    from gridflux.regrid.kernels import conservative_weights
    from gridflux.regrid.weights import write_weights
    from gridflux.regrid.xarray import grid_of

    grids = []
    for path in (src, dst):
        with xr.open_dataset(path, decode_times=False) as ds:
            grids.append(grid_of(ds))
    t0 = time.perf_counter()
    w = conservative_weights(grids[0], grids[1])
    write_weights(out, w, normalization=normalization, fmt=fmt)
    typer.echo(
        f"{out}: {w.to_coo().nnz} weights, {grids[0].shape} -> {grids[1].shape} (lat, lon), "
        f"{normalization}, {fmt} format, built in {time.perf_counter() - t0:.3f} s"
    )


def register(app: typer.Typer) -> None:
    app.command("weights")(weights)
