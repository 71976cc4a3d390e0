"""The optional xESMF backend, run through the same closed-form checks as the native one.

ESMPy (needed by xESMF) is not on PyPI; these tests skip, saying so, where it does not import.
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from gridflux.errors import WeightsError
from gridflux.fields.regrid import grid_dataset, regrid
from gridflux.kernels.grids import cell_areas, gaussian_grid, global_grid


def _xesmf_importable() -> tuple[bool, str]:
    try:
        import xesmf  # noqa: F401
    except Exception as exc:  # ImportError, or ESMPy failing to load
        return (
            False,
            f"xESMF/ESMPy not importable here ({type(exc).__name__}: {exc}); conda-forge only",
        )
    return True, ""


_OK, _WHY = _xesmf_importable()
requires_xesmf = pytest.mark.skipif(not _OK, reason=_WHY)


def _field(grid):
    lat = np.radians(grid.lat)[:, None]
    lon = np.radians(grid.lon)[None, :]
    return xr.DataArray(
        (2 + np.cos(lat) * np.cos(lon))[None],
        dims=("time", "lat", "lon"),
        coords={"lat": grid.lat, "lon": grid.lon},
        name="x",
    )


@requires_xesmf
@pytest.mark.parametrize("src", [gaussian_grid(48), global_grid(2.5, 3.75, 0.0)])
def test_xesmf_conserves_the_global_integral_and_matches_native(src):
    dst = global_grid(1.0)
    ds = grid_dataset(src)
    ds["x"] = _field(src)
    native = regrid(ds, dst)["x"].values
    esmf = regrid(ds, dst, backend="xesmf")["x"].values
    total_src = float((ds["x"].values[0] * cell_areas(src)).sum())
    assert abs((esmf[0] * cell_areas(dst)).sum() / total_src - 1) < 1e-10
    assert np.abs(esmf - native).max() < 1e-9 * np.abs(native).max()


@pytest.mark.skipif(_OK, reason="xESMF imports here: the missing-backend error cannot be shown")
def test_missing_xesmf_is_a_clear_error():
    ds = grid_dataset(global_grid(10.0))
    ds["x"] = _field(global_grid(10.0))
    with pytest.raises(WeightsError, match="ESMPy, which is not on PyPI"):
        regrid(ds["x"], global_grid(20.0), backend="xesmf")
