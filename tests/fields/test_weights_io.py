"""ESMF/SCRIP weight files: gridflux's writer read back by independent code and by NCO, the reader,
errors, and the ``gridflux weights`` command.

Reference weights come from the brute-force loop in ``tests/kernels/reference.py``.
"""

from __future__ import annotations

import math

import netCDF4
import numpy as np
import pytest
import scipy.sparse as sp
from kernels.reference import (  # tests/ is pytest's rootdir, not a package
    brute_destarea_weights,
    ref_cell_areas,
)

from gridflux.errors import WeightsError
from gridflux.ingest.weightfiles import read_weights, write_weights
from gridflux.kernels.conservative import apply_separable, conservative_weights
from gridflux.kernels.grids import CellBounds, gaussian_grid, global_grid, regional_grid

from .cfio import read_var, run_tool, which, write_cf

SRC = CellBounds(
    np.array([[-90.0, -40.0], [-40.0, 10.0], [10.0, 55.0], [55.0, 90.0]]),
    np.array([[-20.0, 70.0], [70.0, 200.0], [200.0, 340.0]]),
)
DST = global_grid(30.0, 45.0, lon0=0.0)
REGIONAL = regional_grid(-30.0, 40.0, 100.0, 190.0, 10.0, 15.0)


def _read_esmf(path) -> dict:
    with netCDF4.Dataset(path) as nc:
        out = {k: np.asarray(nc[k][:]) for k in nc.variables}
        out["attrs"] = {k: nc.getncattr(k) for k in nc.ncattrs()}
        out["units"] = {k: getattr(nc[k], "units", None) for k in nc.variables}
    return out


@pytest.mark.parametrize("src,dst", [(SRC, DST), (REGIONAL, DST), (DST, REGIONAL)])
@pytest.mark.parametrize("normalization", ["fracarea", "destarea"])
def test_written_file_read_independently(tmp_path, src, dst, normalization):
    path = tmp_path / "w.nc"
    write_weights(path, conservative_weights(src, dst), normalization=normalization)
    f = _read_esmf(path)
    assert not list(tmp_path.glob("*.tmp-*")), "temporary file left behind"
    assert f["attrs"]["normalization"] == normalization
    # grid dims fastest first, as ESMF writes them
    assert list(f["src_grid_dims"]) == [src.nlon, src.nlat]
    assert list(f["dst_grid_dims"]) == [dst.nlon, dst.nlat]
    n_b, n_a = dst.nlat * dst.nlon, src.nlat * src.nlon
    m = sp.coo_matrix((f["S"], (f["row"] - 1, f["col"] - 1)), shape=(n_b, n_a)).toarray()
    ref = brute_destarea_weights(src.lat_bounds, src.lon_bounds, dst.lat_bounds, dst.lon_bounds)
    frac_b = ref.sum(axis=1)
    if normalization == "fracarea":
        ref = np.divide(ref, frac_b[:, None], out=np.zeros_like(ref), where=frac_b[:, None] > 0)
    np.testing.assert_allclose(m, ref, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(f["frac_b"], frac_b, rtol=1e-12, atol=1e-15)
    a_src = ref_cell_areas(src.lat_bounds, src.lon_bounds).ravel()
    a_dst = ref_cell_areas(dst.lat_bounds, dst.lon_bounds).ravel()
    np.testing.assert_allclose(f["area_a"], a_src, rtol=1e-13)
    np.testing.assert_allclose(f["area_b"], a_dst, rtol=1e-13)
    # frac_a: part of each source cell inside the destination grid
    raw = brute_destarea_weights(src.lat_bounds, src.lon_bounds, dst.lat_bounds, dst.lon_bounds)
    np.testing.assert_allclose(
        f["frac_a"], (raw * a_dst[:, None]).sum(axis=0) / a_src, rtol=1e-12, atol=1e-14
    )
    # centres and corners (degrees), cells numbered with longitude fastest
    lat_c = np.repeat(dst.lat_bounds.mean(axis=1), dst.nlon)
    lon_c = np.tile(dst.lon_bounds.mean(axis=1), dst.nlat)
    np.testing.assert_allclose(f["yc_b"], lat_c)
    np.testing.assert_allclose(f["xc_b"], lon_c)
    k = dst.nlon + 1  # cell (row 1, column 1)
    s, n = dst.lat_bounds[1]
    w, e = dst.lon_bounds[1]
    np.testing.assert_allclose(f["yv_b"][k], [s, s, n, n])
    np.testing.assert_allclose(f["xv_b"][k], [w, e, e, w])
    assert f["units"]["xc_b"] == "degrees"


def test_round_trip_apply(tmp_path):
    src, dst = gaussian_grid(24), global_grid(10.0, 12.0)
    path = tmp_path / "w.nc"
    w = conservative_weights(src, dst)
    write_weights(path, w)
    sw = read_weights(path)
    assert tuple(sw.src_shape) == src.shape and tuple(sw.dst_shape) == dst.shape
    assert sw.normalization == "fracarea"
    x = np.random.default_rng(0).uniform(1, 2, size=(3,) + src.shape)
    a_src = ref_cell_areas(src.lat_bounds, src.lon_bounds)
    a_dst = ref_cell_areas(dst.lat_bounds, dst.lon_bounds)
    y = sw.apply(x)
    assert y.shape == (3,) + dst.shape
    for t in range(3):
        assert math.fsum((y[t] * a_dst).ravel()) == pytest.approx(
            math.fsum((x[t] * a_src).ravel()), rel=1e-12
        )


def test_as_destarea_on_partial_coverage(tmp_path):
    """A fracarea file with true frac_b converts back to mass-conserving destarea weights."""
    path = tmp_path / "w.nc"
    write_weights(path, conservative_weights(REGIONAL, DST), normalization="fracarea")
    sw = read_weights(path).as_destarea()
    assert sw.normalization == "destarea"
    x = np.random.default_rng(1).uniform(1, 2, size=REGIONAL.shape)
    y = sw.apply(x)
    a_src = ref_cell_areas(REGIONAL.lat_bounds, REGIONAL.lon_bounds)
    a_dst = ref_cell_areas(DST.lat_bounds, DST.lon_bounds)
    assert math.fsum((y * a_dst).ravel()) == pytest.approx(
        math.fsum((x * a_src).ravel()), rel=1e-12
    )


def test_overwrite_existing_file(tmp_path):
    path = tmp_path / "w.nc"
    path.write_bytes(b"not a netcdf file")
    write_weights(path, conservative_weights(SRC, DST))
    assert read_weights(path).matrix.shape == (DST.nlat * DST.nlon, SRC.nlat * SRC.nlon)


def test_read_errors(tmp_path):
    with pytest.raises(WeightsError) as ei:
        read_weights(tmp_path / "missing.nc")
    assert "missing.nc" in str(ei.value)
    other = tmp_path / "field.nc"
    write_cf(other, DST, np.zeros(DST.shape))
    with pytest.raises(WeightsError) as ei:
        read_weights(other)
    assert "field.nc" in str(ei.value) and "row" in str(ei.value)
    # indices beyond the grid sizes
    bad = tmp_path / "bad.nc"
    write_weights(bad, conservative_weights(SRC, DST))
    with netCDF4.Dataset(bad, "a") as nc:
        nc["col"][0] = SRC.nlat * SRC.nlon + 5
    with pytest.raises(WeightsError) as ei:
        read_weights(bad)
    assert "bad.nc" in str(ei.value) and "range" in str(ei.value)


def test_apply_shape_error(tmp_path):
    path = tmp_path / "w.nc"
    write_weights(path, conservative_weights(SRC, DST))
    with pytest.raises(WeightsError) as ei:
        read_weights(path).apply(np.zeros((3, 4)))
    assert "(3, 4)" in str(ei.value) and "(4, 3)" in str(ei.value)


def test_write_unknown_normalization(tmp_path):
    with pytest.raises(WeightsError) as ei:
        write_weights(tmp_path / "w.nc", conservative_weights(SRC, DST), normalization="none")
    assert "none" in str(ei.value)


@pytest.mark.skipif(
    which("ncremap") is None,
    reason="NCO's ncremap is not on PATH (CI installs the Debian 'nco' package)",
)
@pytest.mark.parametrize("src_name", ["2.5x3.75", "T63"])
def test_ncremap_applies_gridflux_weight_file(tmp_path, src_name):
    """NCO applies gridflux's ESMF file; its result equals the exact regrid to 1e-12."""
    src = global_grid(2.5, 3.75, lon0=0.0) if src_name == "2.5x3.75" else gaussian_grid(96)
    dst = global_grid(1.0)
    x = np.random.default_rng(5).uniform(1, 2, size=src.shape)
    fin, fw, fout = tmp_path / "in.nc", tmp_path / "w.nc", tmp_path / "out.nc"
    write_cf(fin, src, x)
    write_weights(fw, conservative_weights(src, dst))
    run_tool(["ncremap", "-m", str(fw), "-i", str(fin), "-o", str(fout)])
    y, lat, lon = read_var(fout)
    np.testing.assert_allclose(lat, dst.lat_bounds.mean(axis=1), atol=1e-12)
    np.testing.assert_allclose(
        np.mod(lon, 360), np.mod(dst.lon_bounds.mean(axis=1), 360), atol=1e-12
    )
    ref = brute_destarea_weights(
        src.lat_bounds[:3], src.lon_bounds, dst.lat_bounds[:3], dst.lon_bounds
    )
    # exactness spot check on the three southern rows by the brute-force loop
    np.testing.assert_allclose(y[:3].ravel(), ref @ x[:3].ravel() / ref.sum(axis=1), rtol=1e-12)
    np.testing.assert_allclose(y, apply_separable(conservative_weights(src, dst), x), rtol=1e-12)


def test_cli_weights(tmp_path):
    from typer.testing import CliRunner

    from gridflux.cli import app

    fsrc, fdst, fw = tmp_path / "src.nc", tmp_path / "dst.nc", tmp_path / "w.nc"
    write_cf(fsrc, SRC, np.zeros(SRC.shape))
    write_cf(fdst, DST, np.zeros(DST.shape), descending=True)
    res = CliRunner().invoke(app, ["weights", str(fsrc), str(fdst), "--out", str(fw)])
    assert res.exit_code == 0, res.output
    f = _read_esmf(fw)
    n_b, n_a = DST.nlat * DST.nlon, SRC.nlat * SRC.nlon
    m = sp.coo_matrix((f["S"], (f["row"] - 1, f["col"] - 1)), shape=(n_b, n_a)).toarray()
    ref = brute_destarea_weights(SRC.lat_bounds, SRC.lon_bounds, DST.lat_bounds, DST.lon_bounds)
    # the destination file is stored north to south: its rows are numbered as stored
    ref = ref.reshape(DST.nlat, DST.nlon, n_a)[::-1].reshape(n_b, n_a)
    np.testing.assert_allclose(m, ref, rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(f["yc_b"][:: DST.nlon], DST.lat[::-1])
    assert "(6, 8) (N->S)" in res.output
