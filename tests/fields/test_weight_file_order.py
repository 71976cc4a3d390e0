"""Weight files index cells in each file's own storage order (issue 17 point 3).

``gridflux weights SRC DST --out W`` applied to the original files by ``cdo remap,DST,W`` (SCRIP)
and ``ncremap -m W`` (ESMF) must give what ``cdo remapcon,DST`` gives on the same files, for
grids stored north to south or south to north, with longitudes that wrap inside the file; and
``read_weights`` must read CDO's file for such grids as it reads gridflux's own: both in
canonical order. References: CDO's own remapcon/gencon (independent code) and the exact
separable weights, never the code under test applied to itself.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from typer.testing import CliRunner

from gridflux.cli import app
from gridflux.ingest.weightfiles import read_weights
from gridflux.kernels.conservative import apply_separable, conservative_weights
from gridflux.kernels.grids import gaussian_grid, global_grid

from .cfio import read_var, run_tool, which, write_cf

requires_cdo = pytest.mark.skipif(
    which("cdo") is None, reason="cdo is not on PATH (CI installs the Debian 'cdo' package)"
)
requires_ncremap = pytest.mark.skipif(
    which("ncremap") is None, reason="NCO's ncremap is not on PATH (Debian package 'nco')"
)

#: (grid, stored north to south, longitudes wrapped modulo 360 inside the file). CDO 2.1.1 cannot
#: take longitudes that wrap inside a file (remapcon aborts with std::length_error on such a
#: destination and returns all NaN from such a source), so the CDO comparisons shift the origin
#: without a wrap (180E: 181.875 ... 538.125); wrapped files are checked against exact weights.
LAYOUTS = {
    "T63 N->S": (lambda: gaussian_grid(96), True, False),
    "2.5x3.75 S->N from 0": (lambda: global_grid(2.5, 3.75, lon0=0.0), False, False),
    "2.5x3.75 N->S from 180E": (lambda: global_grid(2.5, 3.75, lon0=180.0), True, False),
    "1 N->S from 180W": (lambda: global_grid(1.0), True, False),
    "1 S->N from 0": (lambda: global_grid(1.0, lon0=0.0), False, False),
    "1 N->S from 90E": (lambda: global_grid(1.0, lon0=90.0), True, False),
    # small grids: the wrapped-file test compares dense matrices
    "10 N->S from 90E, wrapped": (lambda: global_grid(10.0, lon0=90.0), True, True),
    "7.5x15 S->N from 180E, wrapped": (lambda: global_grid(7.5, 15.0, lon0=180.0), False, True),
}
PAIRS = [
    ("T63 N->S", "1 N->S from 180W"),  # the case: a 1 deg destination stored N->S
    ("2.5x3.75 S->N from 0", "1 N->S from 90E"),
    ("2.5x3.75 N->S from 180E", "1 S->N from 0"),
    ("1 N->S from 180W", "2.5x3.75 N->S from 180E"),
]


def _field(grid, seed):
    rng = np.random.default_rng(seed)
    lat = np.radians(grid.lat)[:, None]
    lon = np.radians(grid.lon)[None, :]
    smooth = 2.0 + np.cos(lat) ** 2 * np.cos(2 * lon) + 0.5 * np.sin(lat)
    return np.stack([smooth + 0.3 * rng.standard_normal(grid.shape) for _ in range(2)])


def _files(tmp_path, src_name, dst_name):
    (src_f, src_desc, src_wrap), (dst_f, dst_desc, dst_wrap) = LAYOUTS[src_name], LAYOUTS[dst_name]
    src, dst = src_f(), dst_f()
    x = _field(src, seed=len(src_name))
    fsrc, fdst = tmp_path / "src.nc", tmp_path / "dst.nc"
    write_cf(fsrc, src, x, descending=src_desc, wrap_lon=src_wrap)
    write_cf(fdst, dst, np.zeros(dst.shape), descending=dst_desc, wrap_lon=dst_wrap)
    return src, dst, x, fsrc, fdst


def _gridflux_weights(tmp_path, fsrc, fdst, fmt):
    fw = tmp_path / f"w_{fmt}.nc"
    res = CliRunner().invoke(
        app, ["weights", str(fsrc), str(fdst), "--out", str(fw), "--format", fmt]
    )
    assert res.exit_code == 0, res.output
    return fw


def _cdo_remapcon(tmp_path, fsrc, fdst):
    out = tmp_path / "remapcon.nc"
    run_tool(["cdo", "-s", "-b", "F64", f"remapcon,{fdst}", str(fsrc), str(out)])
    return read_var(out)


def _assert_same(got, ref, scale):
    assert got.shape == ref.shape
    err = np.max(np.abs(got - ref)) / scale
    assert err <= 1e-9, f"max |tool - cdo remapcon| / scale = {err:.3e}"


@requires_cdo
@pytest.mark.parametrize("src_name,dst_name", PAIRS)
def test_cdo_remap_with_gridflux_scrip_file_equals_remapcon(tmp_path, src_name, dst_name):
    src, dst, x, fsrc, fdst = _files(tmp_path, src_name, dst_name)
    fw = _gridflux_weights(tmp_path, fsrc, fdst, "scrip")
    out = tmp_path / "remap.nc"
    run_tool(["cdo", "-s", "-b", "F64", f"remap,{fdst},{fw}", str(fsrc), str(out)])
    y, lat, lon = read_var(out)
    ref, ref_lat, ref_lon = _cdo_remapcon(tmp_path, fsrc, fdst)
    np.testing.assert_array_equal(lat, ref_lat)
    _assert_same(y, ref, float(np.abs(x).max()))
    # and both are the exact regrid, laid out as the destination file stores it
    exact = apply_separable(conservative_weights(src, dst), x)
    if LAYOUTS[dst_name][1]:
        exact = exact[:, ::-1]
    _assert_same(y, exact, float(np.abs(x).max()))


@requires_cdo
@requires_ncremap
@pytest.mark.parametrize("src_name,dst_name", PAIRS)
def test_ncremap_with_gridflux_esmf_file_equals_cdo_remapcon(tmp_path, src_name, dst_name):
    src, dst, x, fsrc, fdst = _files(tmp_path, src_name, dst_name)
    fw = _gridflux_weights(tmp_path, fsrc, fdst, "esmf")
    out = tmp_path / "ncremap.nc"
    run_tool(["ncremap", "-t", "1", "-m", str(fw), "-i", str(fsrc), "-o", str(out)])
    y, lat, lon = read_var(out)
    ref, ref_lat, ref_lon = _cdo_remapcon(tmp_path, fsrc, fdst)
    np.testing.assert_allclose(lat, ref_lat, atol=1e-9)  # the destination as the file stores it
    np.testing.assert_allclose(np.mod(lon, 360), np.mod(ref_lon, 360), atol=1e-9)
    _assert_same(y, ref, float(np.abs(x).max()))


@requires_cdo
@pytest.mark.parametrize("src_name,dst_name", PAIRS)
def test_gridflux_scrip_file_is_cdo_gencon_file_cell_for_cell(tmp_path, src_name, dst_name):
    """No flipping of rows: the same (dst, src) addresses and weights as CDO writes (<= 1e-9)."""
    import netCDF4

    src, dst, x, fsrc, fdst = _files(tmp_path, src_name, dst_name)
    fw = _gridflux_weights(tmp_path, fsrc, fdst, "scrip")
    fc = tmp_path / "cdo.nc"
    run_tool(["cdo", "-s", f"gencon,{fdst}", str(fsrc), str(fc)])
    n_b, n_a = dst.nlat * dst.nlon, src.nlat * src.nlon
    mats = []
    for path in (fw, fc):
        with netCDF4.Dataset(path) as nc:
            s = np.asarray(nc["remap_matrix"][:])[:, 0]
            r, c = np.asarray(nc["dst_address"][:]) - 1, np.asarray(nc["src_address"][:]) - 1
        mats.append(sp.coo_matrix((s, (r, c)), shape=(n_b, n_a)).tocsr())
    assert abs(mats[0] - mats[1]).max() <= 1e-9
    # gridflux reads CDO's file and its own the same way: canonical order, the exact weights
    exact = conservative_weights(src, dst).to_coo().tocsr()  # destarea; global grids: fracarea
    for path in (fw, fc):
        w = read_weights(path)
        assert abs(w.matrix - exact).max() <= 1e-9, path.name
        assert (w.src_order.lat_reversed, w.dst_order.lat_reversed) == (
            LAYOUTS[src_name][1],
            LAYOUTS[dst_name][1],
        )
        np.testing.assert_allclose(w.dst_lat.reshape(dst.shape)[:, 0], dst.lat, atol=1e-9)
        _assert_same(w.apply(x), apply_separable(conservative_weights(src, dst), x), 1.0)


def test_read_weights_of_an_east_to_west_file(tmp_path):
    """A grid stored east to west is renumbered too (written and read back by independent code)."""
    import netCDF4

    from gridflux.ingest.weightfiles import write_weights
    from gridflux.kernels.sparse import StorageOrder

    src, dst = global_grid(30.0, 45.0, lon0=0.0), global_grid(20.0, 40.0, lon0=-180.0)
    order = StorageOrder(True, True, dst.lat[::-1].copy(), dst.lon[::-1].copy())
    fw = tmp_path / "w.nc"
    write_weights(fw, conservative_weights(src, dst), dst_order=order)
    with netCDF4.Dataset(fw) as nc:
        xc, yc = np.asarray(nc["xc_b"][:]), np.asarray(nc["yc_b"][:])
        rows = np.asarray(nc["row"][:]) - 1
        cols = np.asarray(nc["col"][:]) - 1
        s = np.asarray(nc["S"][:])
    np.testing.assert_array_equal(yc[:: dst.nlon], dst.lat[::-1])  # north first
    np.testing.assert_array_equal(xc[: dst.nlon], dst.lon[::-1])  # east first
    # file row f is canonical cell (nlat-1-i, nlon-1-j)
    m = sp.coo_matrix((s, (rows, cols)), shape=(dst.nlat * dst.nlon, src.nlat * src.nlon))
    exact = conservative_weights(src, dst).to_coo().toarray()
    flipped = exact.reshape(dst.nlat, dst.nlon, -1)[::-1, ::-1].reshape(exact.shape)
    np.testing.assert_allclose(m.toarray(), flipped, atol=1e-15)
    w = read_weights(fw)
    assert (w.dst_order.lat_reversed, w.dst_order.lon_reversed) == (True, True)
    np.testing.assert_allclose(w.matrix.toarray(), exact, atol=1e-15)


@pytest.mark.parametrize(
    "src_name,dst_name",
    [
        ("7.5x15 S->N from 180E, wrapped", "10 N->S from 90E, wrapped"),
        ("10 N->S from 90E, wrapped", "7.5x15 S->N from 180E, wrapped"),
    ],
)
@pytest.mark.parametrize("fmt", ["esmf", "scrip"])
def test_files_with_longitudes_wrapping_inside(tmp_path, src_name, dst_name, fmt):
    """File order = canonical order rolled to the wrap (and reversed N->S), checked by building
    the file's numbering independently from the file's own centres."""
    import netCDF4

    src, dst, x, fsrc, fdst = _files(tmp_path, src_name, dst_name)
    fw = _gridflux_weights(tmp_path, fsrc, fdst, fmt)
    n_b, n_a = dst.nlat * dst.nlon, src.nlat * src.nlon
    with netCDF4.Dataset(fw) as nc:
        if fmt == "esmf":
            r, c, s = (np.asarray(nc[k][:]) for k in ("row", "col", "S"))
            yc_b, xc_b = np.asarray(nc["yc_b"][:]), np.asarray(nc["xc_b"][:])
        else:
            r, c = np.asarray(nc["dst_address"][:]), np.asarray(nc["src_address"][:])
            s = np.asarray(nc["remap_matrix"][:])[:, 0]
            yc_b = np.degrees(np.asarray(nc["dst_grid_center_lat"][:]))
            xc_b = np.degrees(np.asarray(nc["dst_grid_center_lon"][:]))
    m = sp.coo_matrix((s, (r - 1, c - 1)), shape=(n_b, n_a)).toarray()
    with netCDF4.Dataset(fdst) as nc:
        f_lat, f_lon = np.asarray(nc["lat"][:]), np.asarray(nc["lon"][:])
    with netCDF4.Dataset(fsrc) as nc:
        s_lat, s_lon = np.asarray(nc["lat"][:]), np.asarray(nc["lon"][:])
    # the centres written are the destination file's own, in its own order
    np.testing.assert_allclose(yc_b.reshape(dst.shape)[:, 0], f_lat, atol=1e-12)
    np.testing.assert_allclose(xc_b.reshape(dst.shape)[0], f_lon, atol=1e-12)

    def file_index(grid, lat, lon):
        """Canonical flat index of each file cell, matched by centre (independent of the code)."""
        i = np.array([np.argmin(np.abs(grid.lat - v)) for v in lat])
        j = np.array([np.argmin(np.abs(np.mod(grid.lon - v + 180, 360) - 180)) for v in lon])
        return (i[:, None] * grid.nlon + j[None, :]).ravel()

    exact = conservative_weights(src, dst).to_coo().toarray()
    fb, fa = file_index(dst, f_lat, f_lon), file_index(src, s_lat, s_lon)
    np.testing.assert_allclose(m, exact[np.ix_(fb, fa)], atol=1e-15)
    w = read_weights(fw)  # back to canonical
    np.testing.assert_allclose(w.matrix.toarray(), exact, atol=1e-15)


@requires_cdo
def test_regrid_with_cdo_weights_of_north_to_south_files(tmp_path):
    """A CDO weight file for N->S files, applied to the source as opened (1-D coordinates) and
    as index dims (y, x): both give CDO's remapcon, in canonical order (latitude ascending)."""
    import xarray as xr

    from gridflux.fields.regrid import regrid_with_weights

    src, dst, x, fsrc, fdst = _files(tmp_path, "2.5x3.75 N->S from 180E", "1 N->S from 90E")
    fc = tmp_path / "cdo.nc"
    run_tool(["cdo", "-s", f"gencon,{fdst}", str(fsrc), str(fc)])
    ref, ref_lat, _ = _cdo_remapcon(tmp_path, fsrc, fdst)
    assert ref_lat[0] > ref_lat[-1]
    with xr.open_dataset(fsrc) as ds:
        da = ds["x"].load()
    for field in (da, da.drop_vars(["lat", "lon"]).rename(lat="y", lon="x")):
        out = regrid_with_weights(field, read_weights(fc), target=dst)
        np.testing.assert_allclose(out["lat"].values, dst.lat)
        _assert_same(out.values, ref[:, ::-1], float(np.abs(x).max()))
