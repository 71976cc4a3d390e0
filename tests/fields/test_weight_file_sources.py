"""Curvilinear and unstructured sources regridded through weight files (CDO's and gridflux's)."""

from __future__ import annotations

import dask.array as dsa
import numpy as np
import pytest
import xarray as xr

from gridflux.fields.masks import RegionMask
from gridflux.fields.regrid import regrid_with_weights
from gridflux.fields.totals import sparse_native_weights, weighted_sums
from gridflux.ingest.weightfiles import read_weights, write_weights
from gridflux.kernels.conservative import conservative_weights
from gridflux.kernels.grids import EARTH_RADIUS, gaussian_grid, global_grid

from .cfio import griddes_lonlat, read_var, run_tool, which, write_cf

requires_cdo = pytest.mark.skipif(
    which("cdo") is None, reason="cdo is not installed (apt-get install cdo)"
)


def _field(grid, nt=3, seed=3):
    rng = np.random.default_rng(seed)
    return rng.random((nt,) + grid.shape) + 1.0


def _as_curvilinear(data, grid):
    """The same cells presented as a curvilinear grid: dims (y, x) with 2-D lat/lon coordinates."""
    lat2, lon2 = np.meshgrid(grid.lat, grid.lon, indexing="ij")
    return xr.DataArray(
        data,
        dims=("time", "y", "x"),
        coords={"lat": (("y", "x"), lat2), "lon": (("y", "x"), lon2)},
        name="x",
    )


@requires_cdo
def test_curvilinear_source_with_cdo_gencon_weights_equals_cdo_remapcon(tmp_path):
    src, dst = gaussian_grid(48), global_grid(2.0)
    data = _field(src)
    fin = tmp_path / "in.nc"
    write_cf(fin, src, data)
    griddes_lonlat(tmp_path / "dst.txt", dst)
    run_tool(["cdo", "-s", f"gencon,{tmp_path / 'dst.txt'}", str(fin), str(tmp_path / "w.nc")])
    run_tool(
        [
            "cdo",
            "-s",
            "-b",
            "F64",
            f"remapcon,{tmp_path / 'dst.txt'}",
            str(fin),
            str(tmp_path / "out.nc"),
        ]
    )
    ref, lat, _ = read_var(tmp_path / "out.nc")
    if lat[1] < lat[0]:
        ref = ref[..., ::-1, :]
    da = _as_curvilinear(dsa.from_array(data, chunks=(1, -1, -1)), src)
    out = regrid_with_weights(da, read_weights(tmp_path / "w.nc"), target=dst)
    assert out.dims == ("time", "lat", "lon") and out.chunks is not None
    np.testing.assert_allclose(out.values, ref, rtol=0, atol=1e-9 * np.abs(ref).max())


@requires_cdo
def test_unstructured_source_with_gridflux_esmf_file_equals_cdo_remapcon(tmp_path):
    src, dst = global_grid(3.0, 3.75, 0.0), global_grid(2.0)
    data = _field(src, seed=5)
    write_cf(tmp_path / "in.nc", src, data)
    griddes_lonlat(tmp_path / "dst.txt", dst)
    run_tool(
        [
            "cdo",
            "-s",
            "-b",
            "F64",
            f"remapcon,{tmp_path / 'dst.txt'}",
            str(tmp_path / "in.nc"),
            str(tmp_path / "out.nc"),
        ]
    )
    ref, _, _ = read_var(tmp_path / "out.nc")
    write_weights(tmp_path / "w.nc", conservative_weights(src, dst))
    w = read_weights(tmp_path / "w.nc")
    cells = xr.DataArray(
        data.reshape(data.shape[0], -1), dims=("time", "cell")
    )  # unstructured: one cell dim
    w_flat = type(w)(
        w.matrix,
        (src.nlat * src.nlon,),
        w.dst_shape,
        w.frac_a,
        w.frac_b,
        w.area_a,
        w.area_b,
        w.normalization,
        w.dst_lat,
        w.dst_lon,
    )
    out = regrid_with_weights(cells, w_flat)
    np.testing.assert_allclose(out.values, ref, rtol=0, atol=1e-9 * np.abs(ref).max())


def test_sparse_native_weights_give_closed_form_band_total():
    """A constant field on any source grid: region total = c * exact area of the mask's band."""
    src, target = gaussian_grid(32), global_grid(0.5)
    mgrid = global_grid(1.0)
    frac = np.zeros(mgrid.shape)
    frac[(mgrid.lat_bounds[:, 0] >= 50) & (mgrid.lat_bounds[:, 1] <= 70)] = 0.4
    mask = RegionMask(("band",), frac, mgrid)
    from gridflux.kernels.sparse import from_separable

    w = sparse_native_weights(from_separable(conservative_weights(src, target)), target, mask)
    c = 2.5e-9
    block = np.full((2,) + src.shape, c, dtype=np.float32)
    tot = weighted_sums(block, w)
    exact = (
        0.4 * c * 2 * np.pi * EARTH_RADIUS**2 * (np.sin(np.radians(70)) - np.sin(np.radians(50)))
    )
    assert np.allclose(tot[:, 0], float(np.float32(c)) / c * exact, rtol=1e-12)


def test_weight_file_shape_mismatch_is_a_clear_error():
    from gridflux.errors import WeightsError
    from gridflux.kernels.sparse import from_separable

    w = from_separable(conservative_weights(global_grid(10.0), global_grid(20.0)))
    da = xr.DataArray(np.zeros((2, 5, 5)), dims=("time", "y", "x"), name="npp")
    with pytest.raises(WeightsError, match=r"'npp': source dims \('y', 'x'\) have sizes \(5, 5\)"):
        regrid_with_weights(da, w)


def test_regrid_with_weights_reads_no_files(tmp_path):
    """The fields layer takes weights, not paths: a path is refused with the reader to use."""
    from gridflux.errors import WeightsError

    da = xr.DataArray(np.zeros((2, 5, 5)), dims=("time", "y", "x"), name="npp")
    with pytest.raises(WeightsError, match=r"read_weights\(path\)"):
        regrid_with_weights(da, tmp_path / "w.nc")
