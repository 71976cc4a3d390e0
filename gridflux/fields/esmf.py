"""Optional xESMF backend (needs ESMPy, which is not on PyPI: conda-forge only).

Imported only when ``backend="xesmf"`` is chosen, so gridflux works without it. Useful for
curvilinear or unstructured source grids and as an independent peer of the native weights.
"""

from __future__ import annotations

import numpy as np

from gridflux.errors import WeightsError
from gridflux.fields.axes import canonical_order, find_latlon, grid_of
from gridflux.kernels.grids import CellBounds


def _import_xesmf():
    try:
        import xesmf
    except Exception as exc:  # ImportError, or ESMPy failing to load its shared library
        raise WeightsError(
            "the xesmf backend needs xESMF with ESMPy, which is not on PyPI: "
            "`conda install -c conda-forge xesmf esmpy` (see deploy/container/environment.yml), "
            f"or use backend='native'. Import failed with: {exc}"
        ) from exc
    return xesmf


def _bounds_dataset(grid: CellBounds):
    import xarray as xr

    lat_e = np.concatenate([grid.lat_bounds[:, 0], grid.lat_bounds[-1:, 1]])
    lon_e = np.concatenate([grid.lon_bounds[:, 0], grid.lon_bounds[-1:, 1]])
    return xr.Dataset(coords={"lat": grid.lat, "lon": grid.lon, "lat_b": lat_e, "lon_b": lon_e})


def regrid_xesmf(
    da, target: CellBounds, *, grid: CellBounds | None = None, normalization: str = "destarea"
):
    """Regrid with ``xesmf.Regridder(method="conservative")`` between explicit cell bounds."""
    xesmf = _import_xesmf()

    src = grid_of(da) if grid is None else grid
    lat, lon = find_latlon(da)
    da = (
        canonical_order(da).rename({lat: "lat", lon: "lon"}).assign_coords(lat=src.lat, lon=src.lon)
    )
    method = "conservative_normed" if normalization == "fracarea" else "conservative"
    regridder = xesmf.Regridder(
        _bounds_dataset(src), _bounds_dataset(target), method, periodic=src.is_global_lon
    )
    out = regridder(da, keep_attrs=True)
    out.attrs["regrid_method"] = f"xESMF {method}"
    return out
