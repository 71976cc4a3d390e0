"""Known defects of real CMIP6 files repaired, recorded and switchable (issue 17, point 5).

Each file reproduces one real defect (the coordinates of the real files are in
esmvaltool-sample-data; see test_real_coordinates_*): the series is read through a catalog, its
fix recorded, and its totals compared with (a) the same data after the careful manual repair
(bounds clipped by hand, or the bad bounds dropped), which must agree EXACTLY, and (b) totals
computed by hand with numpy from the hand-repaired cell edges (or the Gauss-Legendre weights).
"""

from __future__ import annotations

import glob
import os

import netCDF4
import numpy as np
import pytest

from gridflux.errors import GridError, InputError
from gridflux.fields.masks import RegionMask
from gridflux.fields.totals import region_totals
from gridflux.ingest.catalog import check_catalog, load_catalog, load_series, write_catalog
from gridflux.ingest.fixes import PACKAGED_TABLE, fixes_for, load_table
from gridflux.kernels import grids

R = grids.EARTH_RADIUS
DAY = 86400.0
SECS = np.array([31.0, 28.0]) * DAY  # Jan, Feb of a noleap year


def _write(
    path,
    lat,
    lon,
    lat_b=None,
    lon_b=None,
    *,
    data=None,
    var="rh",
    lat_dtype="f8",
    cell_methods="area: mean time: mean",
):
    lat = np.asarray(lat, dtype=np.float64)
    lon = np.asarray(lon, dtype=np.float64)
    if data is None:
        data = _field(lat.size, lon.size)
    with netCDF4.Dataset(path, "w") as nc:
        nc.createDimension("time", None)
        nc.createDimension("lat", lat.size)
        nc.createDimension("lon", lon.size)
        nc.createDimension("bnds", 2)
        t = nc.createVariable("time", "f8", ("time",))
        t[:] = [15.5, 45.0]
        t.units, t.calendar = "days since 2000-01-01", "noleap"
        v = nc.createVariable("lat", lat_dtype, ("lat",))
        v[:] = lat
        v.units, v.standard_name = "degrees_north", "latitude"
        v = nc.createVariable("lon", "f8", ("lon",))
        v[:] = lon
        v.units, v.standard_name = "degrees_east", "longitude"
        if lat_b is not None:
            nc["lat"].bounds = "lat_bnds"
            nc.createVariable("lat_bnds", "f8", ("lat", "bnds"))[:] = lat_b
        if lon_b is not None:
            nc["lon"].bounds = "lon_bnds"
            nc.createVariable("lon_bnds", "f8", ("lon", "bnds"))[:] = lon_b
        v = nc.createVariable(var, "f8", ("time", "lat", "lon"))
        v[:] = data
        v.units = "kg m-2 s-1"
        if cell_methods:
            v.cell_methods = cell_methods
    return str(path)


def _field(nlat, nlon):
    rng = np.random.default_rng(nlat * 1000 + nlon)
    return 1e-8 * (1.0 + rng.random((2, nlat, nlon)))


def _catalog(
    tmp_path, path, source_id, name="cat", table_id="Amon", per_land_area="", time_range=""
):
    row = {
        "ensemble": "CMIP6",
        "source_id": source_id,
        "experiment": "historical",
        "member_id": "r1i1p1f1",
        "variable": "rh",
        "path": os.path.abspath(path),
        "table_id": table_id,
        "per_land_area": per_land_area,
        "time_range": time_range,
    }
    return write_catalog([row], tmp_path / f"{name}.json")


def _series(tmp_path, path, source_id, name="cat", **kw):
    (rec,) = load_catalog(_catalog(tmp_path, path, source_id, name), **kw).series()
    return rec


def _globe(lon0=-180.0):
    g = grids.global_grid(1.0, lon0=lon0)
    return RegionMask(("globe",), np.ones((1,) + g.shape), g)


def _totals(ds):
    """Tg-free: kg per month of the whole field over the globe, protocol regrid-mask."""
    kg_s = region_totals(ds, _globe(), protocol="regrid-mask").sel(region="globe").values
    return kg_s * SECS


def _by_hand(data, lat_edges_or_sinw, lon_edges, sin_widths=False):
    """Totals (kg per month) with numpy: sum of value x R^2 x dlon x (sin n - sin s)."""
    if sin_widths:
        dsin = np.asarray(lat_edges_or_sinw)
    else:
        e = np.radians(np.asarray(lat_edges_or_sinw))
        dsin = np.sin(e[1:]) - np.sin(e[:-1])
    dlon = np.radians(np.diff(lon_edges))
    area = R**2 * np.outer(dsin, dlon)
    return np.einsum("tij,ij->t", data, area) * SECS


def _edges(b):
    b = np.asarray(b)
    return np.concatenate([b[:, 0], b[-1:, 1]])


def _fixes_of(ds):
    return ds["rh"].attrs["gridflux_fixes"]


# -- the files ----------------------------------------------------------------------------------
FV_LAT = np.linspace(-90.0, 90.0, 96)  # pole-centred FV grid (CESM2-FV2: 96 rows of 1.8947 deg)
FV_D = FV_LAT[1] - FV_LAT[0]


def _cesm2_fv2(tmp_path, name="cesm2fv2.nc", top=None):
    lat_b = np.column_stack([FV_LAT - FV_D / 2, FV_LAT + FV_D / 2])
    lat_b[0, 0] = -90.0
    lat_b[-1, 1] = 90.0 + FV_D / 2 if top is None else top  # the file: 90.947 at 1.8947 deg rows
    lon = np.arange(0.0, 360.0, 2.5)
    lon_b = np.column_stack([lon - 1.25, lon + 1.25])
    return _write(tmp_path / name, FV_LAT, lon, lat_b, lon_b), lat_b, lon_b


def test_cesm2_fv2_top_bound_is_clipped_and_equals_the_manual_clip(tmp_path):
    path, lat_b, lon_b = _cesm2_fv2(tmp_path)
    assert lat_b[-1, 1] == pytest.approx(90.0 + FV_D / 2) and lat_b[-1, 1] > 90.4
    rec = _series(tmp_path, path, "CESM2-FV2")
    assert rec.fixes and rec.fixes[0]["repair"] == {"lat_bounds": "clip"}
    ds = load_series(rec)
    assert "clipped to +-90" in _fixes_of(ds) and "CESM2-FV2" in _fixes_of(ds)
    assert len(_fixes_of(ds).split("; ")) == 1  # one repair, one entry
    assert "FIXED lat bounds" in ds["rh"].attrs["gridflux_history"]

    manual = np.clip(lat_b, -90.0, 90.0)  # the careful manual repair: clip
    mpath = _write(tmp_path / "manual.nc", FV_LAT, np.arange(0.0, 360.0, 2.5), manual, lon_b)
    ref = load_series(_series(tmp_path, mpath, "my-model", "manual"))
    assert _fixes_of(ref) == ""
    assert np.array_equal(ds["lat_bnds"].values, ref["lat_bnds"].values)
    assert np.array_equal(_totals(ds), _totals(ref))  # exactly
    data = _field(FV_LAT.size, 144)
    assert manual[-1, 1] == 90.0 and lat_b[-1, 1] == pytest.approx(90.947, abs=1e-3)
    hand = _by_hand(data, _edges(manual), _edges(lon_b))
    np.testing.assert_allclose(_totals(ds), hand, rtol=1e-13)
    # and the defect is real: read as stored, the polar row would hold 1 - sin(89.05) of extra
    # band (the bounds are refused without the fix: a total of 90.947 deg is no latitude)


def test_the_generic_rule_clips_an_unlisted_model_the_same(tmp_path):
    path, lat_b, lon_b = _cesm2_fv2(tmp_path)
    listed = load_series(_series(tmp_path, path, "CESM2-FV2"))
    other = load_series(_series(tmp_path, path, "SOME-OTHER-MODEL", "other"))
    assert "generic rule" in _fixes_of(other) and "fix table" not in _fixes_of(other)
    assert np.array_equal(listed["lat_bnds"].values, other["lat_bnds"].values)


def test_strict_refuses_instead_of_fixing(tmp_path):
    path, *_ = _cesm2_fv2(tmp_path)
    rec = _series(tmp_path, path, "CESM2-FV2")
    with pytest.raises(InputError, match=r"edge 90\.\d+ beyond \+-90.*refused \(strict\)"):
        load_series(rec, strict=True)
    with pytest.raises(InputError, match="lat_bnds"):
        load_series(rec.model_copy(update={"strict": True}))
    (chk,) = check_catalog(_catalog(tmp_path, path, "CESM2-FV2", "c2"), strict=True)
    assert not chk.ok and "strict" in chk.problems[0]
    (chk,) = check_catalog(_catalog(tmp_path, path, "CESM2-FV2", "c3"))
    assert chk.ok and chk.fixes and "clipped to +-90" in chk.fixes[0]


def test_fgoals_f3_l_gapped_bounds_are_dropped_for_midpoints(tmp_path):
    # the file: lat -89.5..89.5 by 1 with bounds [88.1, 88.9], [89.1, 89.9]; lon 0.625.. by
    # 1.25 with [0.225, 1.025], [1.475, 2.275]: cells 0.8 deg wide. Here every other row/column.
    lat = np.arange(-89.0, 90.0, 2.0)
    lon = np.arange(1.25, 360.0, 2.5)
    lat_b = np.column_stack([lat - 0.8, lat + 0.8])
    lon_b = np.column_stack([lon - 0.8, lon + 0.8])
    path = _write(tmp_path / "fgoals.nc", lat, lon, lat_b, lon_b)
    ds = load_series(_series(tmp_path, path, "FGOALS-f3-L"))
    fixes = _fixes_of(ds)
    assert "leave gaps" in fixes and "midpoints" in fixes and fixes.count("dropped") == 2
    # the manual repair: drop the bad bounds
    ref = load_series(_series(tmp_path, _write(tmp_path / "m.nc", lat, lon), "x", "manual"))
    assert np.array_equal(ds["lat_bnds"].values, ref["lat_bnds"].values)
    assert np.array_equal(ds["lon_bnds"].values, ref["lon_bnds"].values)
    assert np.array_equal(_totals(ds), _totals(ref))
    hand = _by_hand(_field(90, 144), np.arange(-90.0, 91.0, 2.0), np.arange(0.0, 361, 2.5))
    np.testing.assert_allclose(_totals(ds), hand, rtol=1e-13)


def test_noresm2_lm_first_longitude_cell_around_its_centre(tmp_path):
    lat = np.linspace(-90.0, 90.0, 10)
    d = lat[1] - lat[0]
    lat_b = np.clip(np.column_stack([lat - d / 2, lat + d / 2]), -90, 90)
    lon = np.arange(0.0, 360.0, 2.5)
    lon_b = np.column_stack([lon - 1.25, lon + 1.25])
    lon_b[0] = [0.0, 1.25]  # the file's first cell around 0
    lon_b[-1] = [356.25, 360.0]  # and its last one
    path = _write(tmp_path / "noresm.nc", lat, lon, lat_b, lon_b)
    ds = load_series(_series(tmp_path, path, "NorESM2-LM"))
    assert "not inside" in _fixes_of(ds) and "lon bounds" in _fixes_of(ds)
    assert "lat bounds" not in _fixes_of(ds)  # its latitude bounds are fine: kept
    ref = load_series(_series(tmp_path, _write(tmp_path / "m.nc", lat, lon, lat_b), "x", "m"))
    assert np.array_equal(ds["lon_bnds"].values, ref["lon_bnds"].values)
    assert np.array_equal(_totals(ds), _totals(ref))
    hand = _by_hand(_field(10, 144), _edges(lat_b), -1.25 + 2.5 * np.arange(145))
    np.testing.assert_allclose(_totals(ds), hand, rtol=1e-13)
    # a corrected file of the same model: the tabled fix changes nothing and records nothing
    good_b = np.column_stack([lon - 1.25, lon + 1.25])
    good = _write(tmp_path / "good.nc", lat, lon, lat_b, good_b)
    ok = load_series(_series(tmp_path, good, "NorESM2-LM", "good"))
    assert _fixes_of(ok) == "" and np.array_equal(ok["lon_bnds"].values, good_b)
    # as stored, the first column would count half its area and the last one and a half
    as_stored = _by_hand(_field(10, 144), _edges(lat_b), _edges(lon_b))
    assert abs(as_stored[0] / hand[0] - 1) > 1e-5


def _gauss_by_hand(n):
    x, w = np.polynomial.legendre.leggauss(n)  # independent of gridflux: the Gauss weights
    return np.degrees(np.arcsin(x)), w


def test_nesm3_gaussian_centres_in_regular_bounds_get_exact_gaussian_cells(tmp_path):
    n = 48
    lat, w = _gauss_by_hand(n)
    lat32 = lat.astype(np.float32).astype(np.float64)  # NESM3 stores float32 values of the nodes
    lat32[1] = np.nextafter(np.float32(lat32[1]), np.float32(0)).astype(np.float64)  # 1 ulp off
    assert 3.8e-6 < np.abs(lat32 - lat).max() < 1.6e-5  # beyond the old 1e-6 tolerance
    reg = np.linspace(-90.0, 90.0, n + 1)
    lat_b = np.column_stack([reg[:-1], reg[1:]])  # regular 3.75 deg bounds around them
    lon = np.arange(0.0, 360.0, 3.75)
    lon_b = np.column_stack([lon, lon + 3.75])  # cells that start at their centres
    path = _write(tmp_path / "nesm3.nc", lat32, lon, lat_b, lon_b)
    ds = load_series(_series(tmp_path, path, "NESM3"))
    fixes = _fixes_of(ds)
    assert "exact Gaussian edges" in fixes and "NESM3" in fixes
    ref = load_series(_series(tmp_path, _write(tmp_path / "m.nc", lat32, lon), "x", "m"))
    assert np.array_equal(ds["lat_bnds"].values, ref["lat_bnds"].values)
    assert np.array_equal(_totals(ds), _totals(ref))
    hand = _by_hand(_field(n, 96), w, -1.875 + 3.75 * np.arange(97), sin_widths=True)
    np.testing.assert_allclose(_totals(ds), hand, rtol=1e-13)
    # an unlisted model with the same file keeps its (surrounding, contiguous) lat bounds
    other = load_series(_series(tmp_path, path, "OTHER", "o"))
    assert np.array_equal(other["lat_bnds"].values, lat_b)
    # strict: the table's fix is refused, naming the known defect
    with pytest.raises(InputError, match=r"refused \(strict\).*fix table, source_id=NESM3"):
        load_series(_series(tmp_path, path, "NESM3", "s"), strict=True)


def test_mri_esm2_0_gauss_nodes_written_with_5_decimals_are_recognised(tmp_path):
    n = 64
    lat, w = _gauss_by_hand(n)
    lat5 = np.round(lat, 5)  # MRI-ESM2-0's lat: 89.14152 (1.1e-6 deg off the node at n=160)
    assert 1e-6 < np.abs(lat5 - lat).max() <= 5e-6
    lon = np.arange(0.0, 360.0, 2.8125)
    path = _write(tmp_path / "mri.nc", lat5, lon)
    ds = load_series(_series(tmp_path, path, "MRI-ESM2-0"))
    assert _fixes_of(ds) == ""  # nothing repaired: bounds inferred, Gaussian
    hand = _by_hand(_field(n, 128), w, -1.40625 + 2.8125 * np.arange(129), sin_widths=True)
    np.testing.assert_allclose(_totals(ds), hand, rtol=1e-13)
    # midpoint bounds (what 1e-6 gave) are ~1 % off in the polar rows
    mid = grids.infer_lat_bounds(lat5, tol=1e-6)
    dsin = np.diff(np.sin(np.radians(_edges(mid))))
    assert abs(dsin[0] / w[0] - 1) > 5e-3


# -- the tolerance and the rules, on the real files' coordinates --------------------------------
def test_latitude_precision_follows_the_storage():
    lat, _ = _gauss_by_hand(96)
    assert grids.latitude_precision(lat) == grids.GAUSS_TOL_FLOAT64
    assert grids.latitude_precision(lat.astype(np.float32)) == pytest.approx(1.526e-5, rel=1e-3)
    assert grids.latitude_precision(lat, np.float32) == grids.latitude_precision(
        lat.astype(np.float32)
    )
    assert grids.latitude_precision(np.round(lat, 5)) == pytest.approx(1e-5)
    assert grids.latitude_precision(np.round(lat, 2)) == grids.GAUSS_TOL_MAX
    # a regular grid is never taken for a Gaussian one at the largest tolerance
    for n in (4, 96, 160, 640):
        reg = np.linspace(_gauss_by_hand(n)[0][0], _gauss_by_hand(n)[0][-1], n)
        assert not grids.is_gaussian(reg, grids.GAUSS_TOL_MAX)


def test_float32_latitudes_in_a_float32_variable(tmp_path):
    lat, w = _gauss_by_hand(32)
    lon = np.arange(0.0, 360.0, 5.625)
    path = _write(tmp_path / "f32.nc", lat, lon, lat_dtype="f4")
    ds = load_series(_series(tmp_path, path, "ANY"))
    hand = _by_hand(_field(32, 64), w, -2.8125 + 5.625 * np.arange(65), sin_widths=True)
    np.testing.assert_allclose(_totals(ds), hand, rtol=1e-13)


SAMPLE = None
try:  # the real files' corners (2 x 2 cells) shipped by esmvaltool-sample-data
    import esmvaltool_sample_data as _esd

    SAMPLE = os.path.join(os.path.dirname(_esd.__file__), "data", "timeseries", "CMIP6", "CMIP")
except ImportError:  # pragma: no cover
    pass


def _real(model):
    if SAMPLE is None:
        pytest.skip("esmvaltool-sample-data not installed")
    f = sorted(glob.glob(f"{SAMPLE}/*/{model}/historical/*/Amon/ta/*/*/*.nc"))[0]
    with netCDF4.Dataset(f) as nc:
        return {k: np.asarray(nc[k][:], dtype=np.float64) for k in nc.variables if "l" in k[:2]}


@pytest.mark.parametrize(
    "model,axis,kind",
    [
        ("CESM2-FV2", "lat", "beyond-pole"),
        ("CESM2-WACCM-FV2", "lat", "beyond-pole"),
        ("FGOALS-f3-L", "lat", "gaps"),
        ("FGOALS-f3-L", "lon", "gaps"),
        ("NorESM2-LM", "lon", "outside"),
        ("NESM3", "lon", "outside"),
    ],
)
def test_real_coordinates_show_the_defect(model, axis, kind):
    v = _real(model)
    c, b = v[axis], np.sort(v[f"{axis}_bnds"], axis=1)
    if axis == "lon":
        b = grids.align_lon_bounds(b, c)
    assert kind in {k for k, _ in grids.bounds_defects(c, b, axis)}


@pytest.mark.parametrize("model", ["MRI-ESM2-0", "NESM3", "CanESM5", "NorESM2-MM", "CESM2"])
def test_real_coordinates_of_good_files_need_no_latitude_repair(model):
    v = _real(model)
    assert grids.repair_bounds(v["lat"], v["lat_bnds"], "lat")[1] == []


def test_real_gaussian_latitudes_are_within_the_derived_tolerance():
    for model, n in (("MRI-ESM2-0", 160), ("NESM3", 96)):
        lat = _real(model)["lat"]
        nodes = np.degrees(np.arcsin(np.polynomial.legendre.leggauss(n)[0]))[-lat.size :]
        off = np.abs(lat - nodes).max()
        assert 1e-6 < off <= grids.latitude_precision(lat), (model, off)


def test_kernel_strict_and_unknown_rule():
    lat = np.array([-45.0, 45.0])
    with pytest.raises(GridError, match="strict"):
        grids.repair_bounds(lat, [[-90, 0], [0, 91]], "lat", strict=True)
    with pytest.raises(GridError, match="unknown bounds rule"):
        grids.repair_bounds(lat, [[-90, 0], [0, 90]], "lat", rule="guess")
    b, notes = grids.repair_bounds(lat, [[-90, 0], [0, 90]], "lat")
    assert notes == [] and np.array_equal(b, [[-90, 0], [0, 90]])


# -- the table -----------------------------------------------------------------------------------
def test_packaged_table_is_valid_and_matches_by_source():
    table = load_table([])
    assert {tuple(e["match"]["source_id"]) for e in table} >= {("NESM3",), ("FGOALS-f3-L",)}
    assert fixes_for({"source_id": "CESM2-WACCM-FV2", "table_id": "Lmon"}, table)
    assert not fixes_for({"source_id": "CESM2"}, table)
    assert PACKAGED_TABLE.name == "fixes.yaml"


def test_a_user_table_is_read_and_checked(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "fixes:\n  - match: {source_id: X}\n    defect: d\n    repair: {lat_bounds: x}\n"
    )
    from gridflux.errors import CatalogError

    with pytest.raises(CatalogError, match="repair lat_bounds='x'"):
        load_table([bad])
    good = tmp_path / "good.yaml"
    good.write_text(
        "fixes:\n  - match: {source_id: MINE, variable: rh}\n    defect: my defect\n"
        "    repair: {lon_bounds: centres}\n"
    )
    assert fixes_for({"source_id": "MINE", "variable": "rh"}, load_table([good]))
    assert not fixes_for({"source_id": "MINE", "variable": "gpp"}, load_table([good]))


# -- per land area: cell_methods first, the table as a fallback, errors naming the cause ---------
def _lmon(tmp_path, cell_methods, name):
    lat = np.array([-45.0, 45.0])
    lon = np.array([0.0, 180.0])
    path = _write(tmp_path / f"{name}.nc", lat, lon, cell_methods=cell_methods)
    cat = _catalog(tmp_path, path, "M", name, table_id="Lmon")
    (rec,) = load_catalog(cat).series()
    return rec


def test_per_land_area_from_cell_methods_first(tmp_path):
    rec = _lmon(tmp_path, "area: mean time: mean", "a")  # per grid-cell area, says the file
    ds = load_series(rec)  # no sftlf needed
    np.testing.assert_array_equal(ds["rh"].values, _field(2, 2))
    rec = _lmon(tmp_path, "area: mean where land time: mean", "b")
    with pytest.raises(InputError, match=r"cell_methods 'area: mean where land") as e:
        load_series(rec)
    assert e.value.attribute == "cell_methods"


def test_per_land_area_from_the_table_only_as_a_fallback_and_said_so(tmp_path):
    rec = _lmon(tmp_path, "time: mean", "c")  # no area method: Lmon's convention
    with pytest.raises(InputError, match=r"table_id Lmon") as e:
        load_series(rec)
    assert e.value.attribute == "table_id" and "cell_methods" not in str(e.value).split(":")[0]


# -- a run: the fixes in the manifest, strict switchable and in the fingerprint ------------------
def test_run_records_fixes_in_the_manifest_and_strict_recomputes(tmp_path):
    import json

    from gridflux.pipeline.runner import run

    path, lat_b, lon_b = _cesm2_fv2(tmp_path)
    cat = _catalog(tmp_path, path, "CESM2-FV2")
    cat_tr = _catalog(tmp_path, path, "CESM2-FV2", "declared", time_range="200001-200002")
    mask = tmp_path / "mask.nc"
    _globe().to_netcdf(mask)
    store = str(tmp_path / "s.zarr")
    key = "CMIP6.CESM2-FV2.historical.r1i1p1f1/rh"

    first = run(cat, str(mask), store, progress=False, cubes=False)
    assert first.done == [key], first.failed
    entry = json.loads((tmp_path / "s.zarr" / "manifest.json").read_text())["series"][key]
    assert any("clipped to +-90" in f for f in entry["fixes"])
    assert entry["fingerprint"]["fields"]["strict"] is False
    import xarray as xr

    tot = xr.open_zarr(store)["totals"].sel(variable="rh", region="globe").load().values.ravel()
    hand = _by_hand(_field(FV_LAT.size, 144), _edges(np.clip(lat_b, -90, 90)), _edges(lon_b))
    np.testing.assert_allclose(tot, hand * 1e-9, rtol=1e-12)  # Tg

    strict = run(cat, str(mask), store, progress=False, cubes=False, strict=True)
    assert not strict.done and list(strict.failed) == [key]  # recomputed, refused
    assert "beyond +-90" in strict.failed[key] and "strict" in strict.failed[key]
    again = run(cat, str(mask), store, progress=False, cubes=False)
    assert again.done == [key]
    entry = json.loads((tmp_path / "s.zarr" / "manifest.json").read_text())["series"][key]
    assert any("clipped to +-90" in f for f in entry["fixes"])  # planned late: recorded too
    skipped = run(cat, str(mask), store, progress=False, cubes=False)
    assert skipped.skipped == [key] and not skipped.done
    # a catalog declaring its months: the driver does not open the series, the worker's
    # normalization reports the repairs
    store2 = str(tmp_path / "s2.zarr")
    declared = run(cat_tr, str(mask), store2, progress=False, cubes=False)
    assert declared.done == [key], declared.failed
    entry = json.loads((tmp_path / "s2.zarr" / "manifest.json").read_text())["series"][key]
    assert any("clipped to +-90" in f for f in entry["fixes"])


def test_catalog_check_cli_lists_the_fixes_and_strict_fails(tmp_path):
    from typer.testing import CliRunner

    from gridflux.cli import app

    path, *_ = _cesm2_fv2(tmp_path)
    cat = _catalog(tmp_path, path, "CESM2-FV2")
    res = CliRunner().invoke(app, ["catalog", "check", cat], env={"COLUMNS": "100"})
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    assert "fixed CMIP6.CESM2-FV2.historical.r1i1p1f1/rh: lat bounds: edge 90.9474" in text
    assert "1 with repaired files" in text
    res = CliRunner().invoke(app, ["catalog", "check", cat, "--strict"], env={"COLUMNS": "100"})
    assert res.exit_code == 1 and "strict" in res.output and "fixed" not in res.output
