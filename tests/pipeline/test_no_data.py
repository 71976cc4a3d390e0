"""No data is never a number (issue 20 point 1).

Planted files on one 2 x 2.5 degree grid, 12 months of 2000 (noleap):

* ``OK``: random values (truths computed here, independently of gridflux);
* ``NAN``, ``FILL``, ``MV``: every value NaN, every value the ``_FillValue``, every value the
  ``missing_value``: a series with no data fails with one line naming the file and the variable;
* ``ONE``: random values, but May 2000 all NaN: that month is missing (NaN in the store's totals
  and cube, named in the summary, the manifest and ``store info``), the others match the truths;
* ``LAND``: values only south of the equator, fill elsewhere: the regions (40-80N) total exactly
  0 in every month, not NaN (data elsewhere, only fill inside the region).
"""

from __future__ import annotations

import json

import cftime
import netCDF4
import numpy as np
import pytest
import xarray as xr
from typer.testing import CliRunner

from gridflux.kernels.grids import global_grid
from gridflux.pipeline.runner import run

from .conftest import BOXES, DAYS, SECONDS_PER_DAY, box_mask_fractions, region_cell_weights

GRID = global_grid(2.0, 2.5, 0.0)
NMON = 12
MISSING_MONTH = 4  # May 2000 in ONE
SECS = np.array([DAYS["noleap"][m] * SECONDS_PER_DAY for m in range(NMON)])


def _write(path, values, *, fill=None, missing_value=None):
    """A CF file written with netCDF4 directly, so that the attributes are exactly these."""
    with netCDF4.Dataset(path, "w") as nc:
        nc.createDimension("time", None)
        nc.createDimension("lat", GRID.nlat)
        nc.createDimension("lon", GRID.nlon)
        nc.createDimension("bnds", 2)
        t = nc.createVariable("time", "f8", ("time",))
        t.units, t.calendar = "days since 2000-01-01", "noleap"
        t[:] = cftime.date2num(
            [cftime.datetime(2000, m + 1, 15, calendar="noleap") for m in range(NMON)],
            t.units,
            "noleap",
        )
        for name, centres, bounds, units, std in (
            ("lat", GRID.lat, GRID.lat_bounds, "degrees_north", "latitude"),
            ("lon", GRID.lon, GRID.lon_bounds, "degrees_east", "longitude"),
        ):
            v = nc.createVariable(name, "f8", (name,))
            v.units, v.standard_name, v.bounds = units, std, f"{name}_bnds"
            v[:] = centres
            nc.createVariable(f"{name}_bnds", "f8", (name, "bnds"))[:] = bounds
        v = nc.createVariable("npp", "f4", ("time", "lat", "lon"), fill_value=fill)
        v.set_auto_maskandscale(False)  # the raw values below are written as they are
        v.units = "kg m-2 s-1"
        if missing_value is not None:
            v.missing_value = np.float32(missing_value)
        v[:] = values


@pytest.fixture(scope="module")
def nodata_archive(tmp_path_factory):
    from gridflux.fields.masks import RegionMask
    from gridflux.ingest.catalog import write_catalog

    root = tmp_path_factory.mktemp("nodata")
    rng = np.random.default_rng(20)
    shape = (NMON,) + GRID.shape
    ok = (rng.random(shape) * 2e-8).astype("f4")
    one = (rng.random(shape) * 2e-8).astype("f4")
    one[MISSING_MONTH] = np.nan
    land = (rng.random(shape) * 2e-8).astype("f4")
    land[:, GRID.lat > 0] = 1e20  # the fill value: no data north of the equator
    files = {
        "OK": dict(values=ok),
        "NAN": dict(values=np.full(shape, np.nan, "f4")),
        "FILL": dict(values=np.full(shape, 1e20, "f4"), fill=np.float32(1e20)),
        "MV": dict(values=np.full(shape, -9999.0, "f4"), missing_value=-9999.0),
        "ONE": dict(values=one),
        "LAND": dict(values=land, fill=np.float32(1e20)),
    }
    rows = []
    for src, kw in files.items():
        _write(root / f"npp_{src}.nc", **kw)
        rows.append(
            dict(
                ensemble="TEST",
                source_id=src,
                experiment="hist",
                member_id="r1",
                variable="npp",
                path=f"npp_{src}.nc",
            )
        )
    truth = {}
    for src, values in (("OK", ok), ("ONE", one)):
        for region in BOXES:
            w = region_cell_weights(GRID, region)
            kg_s = -(np.nan_to_num(values.astype(np.float64)) * w).sum(axis=(1, 2))
            truth[(f"TEST.{src}.hist.r1", region)] = kg_s * SECS / 1e9  # Tg per month
    cat = write_catalog(rows, root / "catalog.json")
    mgrid = global_grid(1.0)
    RegionMask(tuple(BOXES), box_mask_fractions(mgrid), mgrid).to_netcdf(root / "mask.nc")
    return {"root": root, "catalog": str(cat), "mask": str(root / "mask.nc"), "truth": truth}


def _key(src):
    return f"TEST.{src}.hist.r1/npp"


@pytest.fixture(scope="module")
def nodata_run(nodata_archive, tmp_path_factory):
    store = tmp_path_factory.mktemp("nodata-store") / "s.zarr"
    summary = run(
        nodata_archive["catalog"], nodata_archive["mask"], str(store), cubes=True, progress=False
    )
    return store, summary


@pytest.mark.parametrize("src", ["NAN", "FILL", "MV"])
def test_a_series_with_no_data_fails_naming_file_and_variable(nodata_archive, nodata_run, src):
    store, summary = nodata_run
    err = summary.failed[_key(src)]
    assert f"npp_{src}.nc" in err and "variable 'npp'" in err and "no finite value" in err
    assert "\n" not in err
    totals = xr.open_zarr(store)["totals"].sel(member=f"TEST.{src}.hist.r1", variable="npp")
    assert np.isnan(totals.values).all()  # never 0.0
    entry = json.loads((store / "manifest.json").read_text())["series"][_key(src)]
    assert entry["status"] == "failed"


def test_a_single_empty_month_is_missing_not_zero(nodata_archive, nodata_run):
    store, summary = nodata_run
    assert sorted(summary.done) == sorted(_key(s) for s in ("OK", "ONE", "LAND"))
    assert summary.missing == {_key("ONE"): ["2000-05"]}
    assert summary.as_dict()["missing_months"] == 1
    ds = xr.open_zarr(store)
    labels = [(int(t.year), int(t.month)) for t in ds.indexes["time"]]
    for src in ("OK", "ONE"):
        for region in BOXES:
            got = ds["totals"].sel(member=f"TEST.{src}.hist.r1", variable="npp", region=region)
            got = np.array([got.values[labels.index((2000, m + 1))] for m in range(NMON)])
            want = nodata_archive["truth"][(f"TEST.{src}.hist.r1", region)].copy()
            if src == "ONE":
                assert np.isnan(got[MISSING_MONTH]), region
                want[MISSING_MONTH] = got[MISSING_MONTH] = 0.0  # compared below as equal
            np.testing.assert_allclose(got, want, rtol=1e-10)
    entries = json.loads((store / "manifest.json").read_text())["series"]
    assert entries[_key("ONE")]["missing_months"] == ["2000-05"]
    assert "missing_months" not in entries[_key("OK")]
    # the cube of the missing month is NaN too (and not of the others)
    cubes = xr.open_zarr(store, group="cubes/npp")["npp"]
    cube = cubes.isel(member=list(ds["member"].values).index("TEST.ONE.hist.r1")).values
    assert np.isnan(cube[labels.index((2000, 5))]).all()
    assert np.isfinite(cube[labels.index((2000, 6))]).any()


def test_fill_inside_the_region_with_data_elsewhere_totals_zero(nodata_run):
    store, summary = nodata_run
    assert _key("LAND") not in summary.missing
    totals = xr.open_zarr(store)["totals"].sel(member="TEST.LAND.hist.r1", variable="npp")
    assert (totals.values == 0.0).all()  # ocean cells of a land model: 0, not missing


def test_region_totals_api_marks_an_empty_field_nan():
    from gridflux.fields.masks import RegionMask
    from gridflux.fields.totals import region_totals

    mgrid = global_grid(1.0)
    mask = RegionMask(tuple(BOXES), box_mask_fractions(mgrid), mgrid)
    x = np.ones((3,) + GRID.shape)
    x[1] = np.nan  # no data at all
    x[2, GRID.lat > 0] = np.nan  # data south only: the northern regions total 0
    da = xr.DataArray(x, dims=("time", "lat", "lon"), coords={"lat": GRID.lat, "lon": GRID.lon})
    got = region_totals(da, mask, grid=GRID).values
    w = {r: region_cell_weights(GRID, r).sum() for r in BOXES}
    np.testing.assert_allclose(got[0], [w[r] for r in BOXES], rtol=1e-10)
    assert np.isnan(got[1]).all()
    assert (got[2] == 0.0).all()


def test_cli_names_missing_months_and_exits_1(nodata_archive, nodata_run, tmp_path):
    from gridflux.cli import app

    store = tmp_path / "s.zarr"
    args = ["run", nodata_archive["catalog"], "--mask", nodata_archive["mask"]]
    res = CliRunner().invoke(
        app, [*args, "--store", str(store), "--cluster", "none", "--no-progress"]
    )
    assert res.exit_code == 1, res.output  # the three series with no data failed
    out = " ".join(res.output.split())
    assert "missing months" in out and f"missing {_key('ONE')}: 1: 2000-05" in out
    assert "npp_NAN.nc: variable 'npp': no finite value" in out
    info = CliRunner().invoke(app, ["store", "info", str(store)])
    assert info.exit_code == 0, info.output
    assert "1: 2000-05" in info.output and '"missing_months": 1' in info.output


def test_the_budget_never_takes_a_missing_month_as_zero(nodata_archive, nodata_run):
    """The budget's annual sums (main's gridflux.budget) of the store: the year holding the missing
    month is incomplete (NaN, reported with its 11 months), never the sum of 11 months plus a 0."""
    from gridflux.budget.annual import annual_totals
    from gridflux.budget.api import open_totals

    store, _ = nodata_run
    res = annual_totals(open_totals(str(store)))
    annual = res.annual.sel(year=2000, variable="npp")
    for region in BOXES:
        one = float(annual.sel(member="TEST.ONE.hist.r1", region=region))
        assert np.isnan(one), region
        ok = float(annual.sel(member="TEST.OK.hist.r1", region=region))
        want = nodata_archive["truth"][("TEST.OK.hist.r1", region)].sum()
        assert ok == pytest.approx(want, rel=1e-10)
    rep = res.incomplete[res.incomplete["member"] == "TEST.ONE.hist.r1"]
    assert set(rep["n_months"]) == {NMON - 1} and set(rep["year"]) == {2000}


def test_catalog_check_names_months_and_series_with_no_data(nodata_archive):
    from gridflux.cli import app
    from gridflux.ingest.catalog import check_catalog

    checks = {c.key: c for c in check_catalog(nodata_archive["catalog"], scan_data=True)}
    for src in ("NAN", "FILL", "MV"):
        (problem,) = checks[_key(src)].problems
        assert f"npp_{src}.nc" in problem and "variable 'npp'" in problem
        assert "no finite value in any month" in problem
    (problem,) = checks[_key("ONE")].problems
    assert "in 1 month(s): 2000-05 " in problem
    assert checks[_key("OK")].ok and checks[_key("LAND")].ok
    # without the scan only the metadata is looked at: nothing is said (documented)
    quick = {c.key: c for c in check_catalog(nodata_archive["catalog"])}
    assert quick[_key("NAN")].ok
    res = CliRunner().invoke(app, ["catalog", "check", nodata_archive["catalog"]])
    assert res.exit_code == 1, res.output
    assert "2 ok, 4 with problems" in res.output


def test_export_writes_no_zero_for_missing_data(nodata_run):
    from gridflux.pipeline.export import totals_table

    store, _ = nodata_run
    df = totals_table(store)
    for src in ("NAN", "FILL", "MV"):
        assert not (df["source_id"] == f"TEST.{src}.hist.r1").any()
    one = df[df["source_id"] == "TEST.ONE.hist.r1"]
    assert "2000-05" not in set(one["time"]) and len(one) == (NMON - 1) * len(BOXES)
    land = df[df["source_id"] == "TEST.LAND.hist.r1"]
    assert len(land) == NMON * len(BOXES) and (land["value"] == 0.0).all()
