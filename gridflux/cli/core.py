"""CLI: ``gridflux weights`` (exact conservative weights between the grids of two CF files) and
``gridflux mask`` (a fractional region mask from polygons)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def open_cf(path: Path):
    """Open a CF netCDF (or zarr) file for its grid; an InputError naming the file if not one."""
    import xarray as xr

    from gridflux.errors import InputError

    if not path.exists():
        raise InputError("no such file or directory; check the path", path=str(path))
    if path.is_dir() and path.suffix.lower() != ".zarr":
        raise InputError("is a directory; give a CF netCDF file", path=str(path))
    try:
        return xr.open_dataset(path, decode_times=False)
    except Exception as exc:  # noqa: BLE001 - any reader failure means: not a CF grid file
        raise InputError(
            f"cannot be read as netCDF/zarr ({type(exc).__name__}: {exc}); give a CF netCDF "
            "file with lat/lon coordinates",
            path=str(path),
        ) from exc


def weights(
    src: Annotated[Path, typer.Argument(help="CF netCDF file on the source lat-lon grid")],
    dst: Annotated[Path, typer.Argument(help="CF netCDF file on the destination lat-lon grid")],
    out: Annotated[Path, typer.Option("--out", "-o", help="ESMF weight file to write")],
    normalization: Annotated[
        str, typer.Option(help="fracarea (ESMF/CDO default) or destarea")
    ] = "fracarea",
    fmt: Annotated[
        str, typer.Option("--format", help="esmf (xESMF, ncremap) or scrip (cdo remap)")
    ] = "esmf",
) -> None:
    """Write exact conservative weights between two files' grids (like `cdo gencon` / `ncremap -m`).

    Cells are numbered in each file's own storage order (north to south, any longitude origin),
    so `cdo remap,DST,W` and `ncremap -m W` apply the file to the original files."""
    import time

    from gridflux.fields.axes import grid_of, storage_order
    from gridflux.ingest.weightfiles import write_weights
    from gridflux.kernels.conservative import conservative_weights

    grids, orders = [], []
    for path in (src, dst):
        with open_cf(path) as ds:
            grids.append(grid_of(ds, path=str(path)))
            orders.append(storage_order(ds))
    t0 = time.perf_counter()
    w = conservative_weights(grids[0], grids[1])
    write_weights(
        out, w, normalization=normalization, fmt=fmt, src_order=orders[0], dst_order=orders[1]
    )
    stored = [
        ("N->S" if o.lat_reversed else "S->N") + (", E->W" if o.lon_reversed else "")
        for o in orders
    ]
    typer.echo(
        f"{out}: {w.to_coo().nnz} weights, {grids[0].shape} ({stored[0]}) -> {grids[1].shape} "
        f"({stored[1]}) (lat, lon, in the files' order), {normalization}, {fmt} format, "
        f"built in {time.perf_counter() - t0:.3f} s"
    )


def mask(
    polygons: Annotated[
        Path,
        typer.Argument(
            help="GeoJSON (.geojson/.json) or ESRI shapefile (.shp) of lon/lat polygons"
        ),
    ],
    out: Annotated[
        Path,
        typer.Option(
            "--out", "-o", help="netCDF mask file to write (mask(region, lat, lon) + bounds)"
        ),
    ],
    resolution: Annotated[float, typer.Option(help="global lat-lon grid spacing in degrees")] = 0.5,
    grid: Annotated[
        Path | None, typer.Option(help="use the lat-lon grid of this CF file instead")
    ] = None,
    name_field: Annotated[str, typer.Option(help="attribute that names each region")] = "name",
) -> None:
    """Write the exact fractional coverage of grid cells by polygons (needs gridflux\\[geo])."""
    from gridflux.errors import InputError
    from gridflux.fields.masks import RegionMask
    from gridflux.kernels.grids import global_grid

    suffix = polygons.suffix.lower()
    if suffix not in (".shp", ".geojson", ".json"):
        raise InputError(
            "no mask written: expected a .geojson, .json or .shp file", path=str(polygons)
        )
    if grid is not None:
        from gridflux.fields.axes import grid_of

        with open_cf(grid) as ds:
            cells = grid_of(ds)
    else:
        cells = global_grid(resolution)
    if suffix == ".shp":
        m = RegionMask.from_shapefile(polygons, cells, name_field=name_field)
    else:
        m = RegionMask.from_geojson(polygons, cells, name_property=name_field)
    m.to_netcdf(out)
    typer.echo(f"{out}: {len(m.names)} region(s) on a {cells.nlat} x {cells.nlon} grid")
    for name, area in m.areas().items():
        typer.echo(f"  {name}: {area / 1e12:.4f} million km2")


def register(app: typer.Typer) -> None:
    app.command("weights")(weights)
    app.command("mask")(mask)
