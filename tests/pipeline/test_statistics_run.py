"""Region means in a run (issue 17.2): land-fraction weighting, the files' own units, cubes of
means over NaN cells, daily files resampled to months. Truths are numpy computations written
here from the files' values and the rectangle geometry of the cells (``region_cell_weights``,
and the cube-cell overlaps below), never gridflux's output.
"""

from __future__ import annotations

import json
import math
from datetime import timedelta
from pathlib import Path

import cftime
import numpy as np
import pytest
import xarray as xr

import gridflux
from gridflux.fields.masks import RegionMask
from gridflux.ingest.catalog import write_catalog
from gridflux.kernels.grids import global_grid

from .conftest import BOXES, box_mask_fractions, region_cell_weights

GRID = global_grid(3.0, 4.0)  # cell edges off the boxes' whole degrees: partial cells


def _mask(root: Path) -> str:
    g = global_grid(1.0)
    RegionMask(tuple(BOXES), box_mask_fractions(g), g).to_netcdf(root / "mask.nc")
    return str(root / "mask.nc")


def _write(path, values, dates, calendar, *, name="tas", units="K", attrs=None, grid=GRID):
    """A CF file of ``values (time, lat, lon)`` at ``dates`` (cftime), NaN = _FillValue."""
    va = {"units": units} if units is not None else {}
    va.update(attrs or {})
    ds = xr.Dataset(
        {name: (("time", "lat", "lon"), values.astype("f4"), va)},
        coords={
            "time": ("time", list(dates)),
            "lat": ("lat", grid.lat, {"units": "degrees_north", "standard_name": "latitude"}),
            "lon": ("lon", grid.lon, {"units": "degrees_east", "standard_name": "longitude"}),
        },
    )
    ds["lat_bnds"] = (("lat", "bnds"), grid.lat_bounds)
    ds["lon_bnds"] = (("lon", "bnds"), grid.lon_bounds)
    ds.lat.attrs["bounds"] = "lat_bnds"
    ds.lon.attrs["bounds"] = "lon_bnds"
    ds.time.encoding.update(units="days since 1990-01-01", calendar=calendar)
    ds[name].encoding["_FillValue"] = np.float32(1e20)
    ds.to_netcdf(path)


def _write_sftlf(path, frac, units):
    ds = xr.Dataset(
        {"sftlf": (("lat", "lon"), frac.astype("f4"), {"units": units})},
        coords={
            "lat": ("lat", GRID.lat, {"units": "degrees_north", "standard_name": "latitude"}),
            "lon": ("lon", GRID.lon, {"units": "degrees_east", "standard_name": "longitude"}),
        },
    )
    ds.to_netcdf(path)


def _monthly_dates(n, calendar, start=2000):
    return [cftime.datetime(start + k // 12, k % 12 + 1, 15, calendar=calendar) for k in range(n)]


def _row(source, variable, path, **kw):
    return dict(
        ensemble="T", source_id=source, experiment="hist", member_id="r1", variable=variable,
        path=path, **kw,
    )  # fmt: skip


def _means_truth(x, w, lf=None):
    """(t,) exact weighted means over finite cells: sum x w lf / sum w lf (math.fsum)."""
    ww = w if lf is None else w * lf
    out = []
    for t in range(x.shape[0]):
        ok = np.isfinite(x[t]) & (ww > 0)
        den = math.fsum(ww[ok].ravel())
        out.append(math.fsum((x[t][ok].astype(np.float64) * ww[ok]).ravel()) / den)
    return np.array(out)


def _store_info(store: str) -> str:
    from typer.testing import CliRunner

    from gridflux.cli import app

    r = CliRunner().invoke(app, ["store", "info", store], env={"COLUMNS": "250"})
    assert r.exit_code == 0, r.output
    return r.output


def _totals(store):
    ds = gridflux.open_store(store)
    return ds, ds["totals"].load()


def _land(shape, seed):
    """A land fraction in 0..1 with ocean (0), coast and land (1) cells."""
    rng = np.random.default_rng(seed)
    lf = rng.choice([0.0, 0.25, 0.6, 1.0], size=shape)
    return lf


# -- 1. land-fraction weighting, units, cubes over NaN cells -------------------------------------
@pytest.fixture(scope="module")
def means_archive(tmp_path_factory):
    root = tmp_path_factory.mktemp("means")
    rng = np.random.default_rng(3)
    nt = 12
    ocean = _land(GRID.shape, 1) == 0.0
    rows, data = [], {}
    # L1: land temperature (NaN over the ocean, and a hole in month 3), sftlf in %, weighted by
    # its catalog column; L2: the same values, sftlf as a fraction, weighted by --land-weighted
    # in the second run only; P: not land-weighted at all
    x = (250.0 + 30.0 * rng.random((nt,) + GRID.shape)).astype("f4").astype(np.float64)
    x[:, ocean] = np.nan
    x[3, 20:40, :] = np.nan
    for src, lf_units, column in (("L1", "%", "true"), ("L2", "1", ""), ("P", "1", "")):
        _write(root / f"tas_{src}.nc", x, _monthly_dates(nt, "noleap"), "noleap")
        rows.append(_row(src, "tas", f"tas_{src}.nc", table_id="Amon", land_weighted=column))
        lf = _land(GRID.shape, 1)
        _write_sftlf(root / f"sftlf_{src}.nc", lf * (100.0 if lf_units == "%" else 1.0), lf_units)
        rows.append(_row(src, "sftlf", f"sftlf_{src}.nc", table_id="fx"))
        # as read: 60 % is exact in float32 (then / 100), a fraction 0.6 is float32-rounded
        data[src] = (x, lf if lf_units == "%" else lf.astype("f4").astype(np.float64))
    # a variable outside the units table, in its files' own units: W m-2, mW m-2, not a unit
    y = (100.0 * rng.random((nt,) + GRID.shape)).astype("f4").astype(np.float64)
    for src, units in (("U1", "W m-2"), ("U2", "mW m-2"), ("U3", "furlongs per fortnightish")):
        scale = 1e3 if units == "mW m-2" else 1.0
        _write(root / f"foo_{src}.nc", y * scale, _monthly_dates(nt, "360_day"), "360_day",
               name="foo", units=units)  # fmt: skip
        rows.append(_row(src, "foo", f"foo_{src}.nc", statistic="mean"))
    cat = write_catalog(rows, root / "catalog.json")
    return {"root": root, "catalog": str(cat), "mask": _mask(root), "x": x, "y": y, "data": data}


def test_land_weighted_means_and_units_of_a_variable_outside_the_table(means_archive, tmp_path):
    a = means_archive
    store = str(tmp_path / "s.zarr")
    summary = gridflux.run(a["catalog"], a["mask"], store, cubes=False)
    assert sorted(summary.failed) == ["T.U3.hist.r1/foo"], summary.failed
    err = summary.failed["T.U3.hist.r1/foo"]
    assert "foo_U3.nc" in err and "'foo'" in err and "units" in err, err
    ds, tot = _totals(store)
    units = dict(zip(ds["variable"].values, ds["variable_units"].values, strict=True))
    assert units == {"tas": "K", "foo": "W m-2"}  # the files' own unit, never empty
    man = json.loads((Path(store) / "manifest.json").read_text())["series"]
    for k, region in enumerate(BOXES):
        w = region_cell_weights(GRID, region)
        for src in ("L1", "L2", "P"):
            x, lf = a["data"][src]
            weighted = src == "L1"  # the catalog column
            want = _means_truth(x, w, lf if weighted else None)
            got = tot.sel(member=f"T.{src}.hist.r1", variable="tas").isel(region=k).values
            np.testing.assert_allclose(got[:12], want, rtol=1e-12, atol=0)
        for src in ("U1", "U2"):  # mW m-2 converted to the store's W m-2
            got = tot.sel(member=f"T.{src}.hist.r1", variable="foo").isel(region=k).values
            np.testing.assert_allclose(got[:12], _means_truth(a["y"], w), rtol=1e-6, atol=0)
    assert man["T.L1.hist.r1/tas"]["land_weighted"] is True
    assert "land_weighted" not in man["T.L2.hist.r1/tas"]
    assert man["T.U2.hist.r1/foo"]["units"] == "W m-2"
    info = " ".join(_store_info(store).split())
    assert "T.L1.hist.r1/tas" in info and "mean K land-weighted" in info
    assert "mean W m-2" in info
    # the weighting changes the answer (the truth would catch a run that ignored it)
    w = region_cell_weights(GRID, "north")
    x, lf = a["data"]["L1"]
    assert np.max(np.abs(_means_truth(x, w, lf) - _means_truth(x, w))) > 0.1

    # --land-weighted: every mean series weighted (L2 and P recomputed, sftlf as a fraction)
    summary = gridflux.run(a["catalog"], a["mask"], store, cubes=False, land_weighted=True)
    assert "T.L2.hist.r1/tas" in summary.done and "T.P.hist.r1/tas" in summary.done
    _, tot = _totals(store)
    for k, region in enumerate(BOXES):
        w = region_cell_weights(GRID, region)
        x, lf = a["data"]["L2"]
        got = tot.sel(member="T.L2.hist.r1", variable="tas").isel(region=k).values
        np.testing.assert_allclose(got[:12], _means_truth(x, w, lf), rtol=1e-12, atol=0)
    man = json.loads((Path(store) / "manifest.json").read_text())["series"]
    assert man["T.L2.hist.r1/tas"]["land_weighted"] is True
    # every mean series is to be weighted: one without a land fraction fails, saying so (it is
    # never left unweighted in silence)
    err = summary.failed["T.U1.hist.r1/foo"]
    assert "foo_U1.nc" in err and "land_weighted" in err and "sftlf" in err, err


def test_land_weighting_without_a_land_fraction_fails_naming_the_option(tmp_path):
    x = 280.0 + np.zeros((2,) + GRID.shape)
    _write(tmp_path / "tas.nc", x, _monthly_dates(2, "noleap"), "noleap")
    cat = write_catalog([_row("N", "tas", "tas.nc", land_weighted="true")], tmp_path / "c.json")
    summary = gridflux.run(cat, _mask(tmp_path), str(tmp_path / "s.zarr"), cubes=False)
    err = summary.failed["T.N.hist.r1/tas"]
    assert "tas.nc" in err and "land_weighted" in err and "sftlf" in err, err


def _overlap_matrix(src_b, dst_b, lat):
    """(n_dst, n_src) overlap of 1-D cells: in sin(latitude) for ``lat``, in degrees of
    longitude (modulo 360) otherwise."""
    out = np.zeros((len(dst_b), len(src_b)))
    for j, (d0, d1) in enumerate(dst_b):
        for i, (s0, s1) in enumerate(src_b):
            if lat:
                lo, hi = max(d0, s0), min(d1, s1)
                if hi > lo:
                    out[j, i] = math.sin(math.radians(hi)) - math.sin(math.radians(lo))
            else:
                out[j, i] = sum(
                    max(0.0, min(d1, s1 + 360.0 * k) - max(d0, s0 + 360.0 * k)) for k in (-1, 0, 1)
                )
    return out


def test_cube_of_a_mean_averages_the_finite_source_cells(means_archive, tmp_path):
    """Each cube cell is the mean over the part of it covered by finite source cells (NaN where
    none is): never a NaN counted as zero (destarea), which pulls coastal cells towards 0 K."""
    a = means_archive
    store = str(tmp_path / "c.zarr")
    gridflux.run(a["catalog"], a["mask"], store, cubes=True, target="2.5", query={"source_id": "P"})
    grid = gridflux.open_store(store, group="grid")
    lat_b, lon_b = grid["lat_bnds"].values, grid["lon_bnds"].values
    cube = gridflux.open_store(store, group="cubes/tas")["tas"].sel(member="T.P.hist.r1").values
    x = a["x"].astype(np.float64)
    A = _overlap_matrix(GRID.lat_bounds, lat_b, lat=True)  # (cube lat, src lat)
    B = _overlap_matrix(GRID.lon_bounds, lon_b, lat=False)  # (cube lon, src lon)
    for t in (0, 3):
        ok = np.isfinite(x[t])
        num = A @ np.where(ok, x[t], 0.0) @ B.T
        den = A @ ok.astype(float) @ B.T
        with np.errstate(invalid="ignore", divide="ignore"):
            want = np.where(den > 0, num / den, np.nan)
        np.testing.assert_array_equal(np.isnan(cube[t]), np.isnan(want))
        np.testing.assert_allclose(cube[t], want, rtol=2e-7, equal_nan=True)
        destarea = num / (A @ np.ones_like(x[t]) @ B.T)
        coast = (den > 0) & (den < (A @ np.ones_like(x[t]) @ B.T) * (1 - 1e-9))
        assert coast.any()  # cells partly over NaN source cells, where the two differ
        assert np.all(np.abs(destarea[coast] - want[coast]) > 1.0)


# -- 2. daily files ------------------------------------------------------------------------------
def _daily_dates(calendar, start=(2000, 1, 1), months=14):
    """Daily stamps at noon through ``months`` months in ``calendar``."""
    d = cftime.datetime(*start, 12, calendar=calendar)
    y, m = start[0], start[1]
    stop_k = 12 * y + m - 1 + months
    end = cftime.datetime(stop_k // 12, stop_k % 12 + 1, 1, calendar=calendar)
    out = []
    while d < end:
        out.append(d)
        d = d + timedelta(days=1)
    return out


@pytest.fixture(scope="module")
def daily_archive(tmp_path_factory):
    root = tmp_path_factory.mktemp("daily")
    rng = np.random.default_rng(11)
    rows, data = [], {}
    for cal in ("noleap", "360_day", "standard"):
        dates = _daily_dates(cal)
        if cal == "360_day":
            dates = dates[:-3]  # the last month misses 3 days: a missing month, named
        n = len(dates)
        t = (260.0 + 20.0 * rng.random((n,) + GRID.shape)).astype("f4").astype(np.float64)
        t[:, :5, :] = np.nan  # no data south of 75S
        f = (1e-8 * rng.standard_normal((n,) + GRID.shape)).astype("f4").astype(np.float64)
        _write(root / f"tas_{cal}.nc", t, dates, cal, attrs={"standard_name": "air_temperature"})
        _write(root / f"nbp_{cal}.nc", f, dates, cal, name="nbp", units="kg m-2 s-1")
        src = f"D-{cal}"
        rows.append(_row(src, "tas", f"tas_{cal}.nc", table_id="day"))
        rows.append(_row(src, "nbp", f"nbp_{cal}.nc", table_id="day", into_land="true"))
        data[cal] = (dates, t, f)
    cat = write_catalog(rows, root / "catalog.json")
    return {"root": root, "catalog": str(cat), "mask": _mask(root), "data": data}


def test_daily_series_without_resample_keep_their_daily_axis(daily_archive, tmp_path):
    """Without --resample the daily series go to the store's daily/ group (values: see
    tests/pipeline/test_daily_run.py), none to the monthly root."""
    a = daily_archive
    summary = gridflux.run(a["catalog"], a["mask"], str(tmp_path / "s.zarr"), cubes=False)
    assert not summary.failed, summary.failed
    assert len(summary.done) == 6 and all(k.endswith(" (daily)") for k in summary.done)
    daily = gridflux.open_store(str(tmp_path / "s.zarr"), group="daily")
    assert daily.sizes["member"] == 3 and daily.sizes["variable"] == 2


def test_resample_month_gives_monthly_means_and_totals_in_each_calendar(daily_archive, tmp_path):
    a = daily_archive
    store = str(tmp_path / "s.zarr")
    summary = gridflux.run(a["catalog"], a["mask"], store, cubes=False, resample="month")
    assert not summary.failed, summary.failed
    ds, tot = _totals(store)
    labels = [f"{t.year:04d}-{t.month:02d}" for t in ds.indexes["time"]]
    man = json.loads((Path(store) / "manifest.json").read_text())["series"]
    for cal, (dates, t, f) in a["data"].items():
        member = f"T.D-{cal}.hist.r1"
        keys = np.array([12 * d.year + d.month - 1 for d in dates])
        for k, region in enumerate(BOXES):
            w = region_cell_weights(GRID, region)
            for key in np.unique(keys):
                label = f"{key // 12:04d}-{key % 12 + 1:02d}"
                i = labels.index(label)
                sel = keys == key
                # days of the month in this calendar
                a0 = cftime.datetime(key // 12, key % 12 + 1, 1, calendar=cal)
                k1 = key + 1
                a1 = cftime.datetime(k1 // 12, k1 % 12 + 1, 1, calendar=cal)
                ndays = round((a1 - a0).total_seconds() / 86400)
                got_t = tot.sel(member=member, variable="tas").values[k, i]
                got_f = tot.sel(member=member, variable="nbp").values[k, i]
                if sel.sum() < ndays:  # incomplete month: no data, never a partial mean
                    assert np.isnan(got_t) and np.isnan(got_f)
                    assert label in man[f"{member}/tas"]["missing_months"]
                    continue
                # mean: the month's mean of the daily fields, then the area-weighted mean
                monthly = t[sel].astype(np.float64).mean(axis=0)
                np.testing.assert_allclose(
                    got_t, _means_truth(monthly[None], w)[0], rtol=1e-12, atol=0
                )
                # total: sum over the days of rate x 86400 s, sign to the atmosphere, in Tg
                kg = -math.fsum((f[sel].astype(np.float64) * 86400.0 * w).sum(axis=(1, 2)).tolist())
                np.testing.assert_allclose(got_f, kg / 1e9, rtol=1e-9, atol=1e-15)
        assert man[f"{member}/tas"]["resample"] == "month"
    assert "resample=month" in _store_info(store)
    # February of 2000: 29 days in the standard calendar, 28 noleap, 30 in 360_day (the truth
    # above takes each calendar's own days; here that the three do differ)
    assert {c: sum(1 for d in a["data"][c][0] if (d.year, d.month) == (2000, 2)) for c in
            a["data"]} == {"noleap": 28, "360_day": 30, "standard": 29}  # fmt: skip


def test_a_stored_mean_unit_stays_when_the_store_grows(means_archive, tmp_path):
    """The store's unit of a mean variable is fixed by its first series (here mW m-2); a member
    added later in W m-2 is converted to it (x 1e3), not stored under another unit."""
    a = means_archive
    store = str(tmp_path / "g.zarr")
    gridflux.run(a["catalog"], a["mask"], store, cubes=False, query={"source_id": "U2"})
    summary = gridflux.run(
        a["catalog"], a["mask"], store, cubes=False, query={"source_id": ["U1", "U2"]}
    )
    assert summary.done == ["T.U1.hist.r1/foo"] and summary.grew, summary
    ds, tot = _totals(store)
    assert dict(zip(ds["variable"].values, ds["variable_units"].values, strict=True)) == {
        "foo": "mW m-2"
    }
    for k, region in enumerate(BOXES):
        want = 1e3 * _means_truth(a["y"], region_cell_weights(GRID, region))
        for src in ("U1", "U2"):
            got = tot.sel(member=f"T.{src}.hist.r1", variable="foo").isel(region=k).values
            np.testing.assert_allclose(got[:12], want, rtol=1e-6, atol=0)


def test_the_stored_unit_is_the_first_that_is_a_unit():
    """A first series whose units are not a unit does not make its variable's good series fail:
    the store takes the first string that is a unit (the bad series fails alone, naming it)."""
    from types import SimpleNamespace as NS

    from gridflux.pipeline.runner import mean_units_of

    def plan(units):
        return NS(variable="foo", record=NS(units=units, paths=[]), canonical=None, skip=False)

    template = NS(variables=["foo", "tas"], variable_kinds=["mean", "mean"])
    plans = [plan("furlongs per fortnightish"), plan("W  m-2"), plan("mW m-2")]
    assert mean_units_of(plans, template, None) == {"foo": "W m-2"}  # tas: the table's K
    assert mean_units_of(plans[:1], template, None) == {"foo": "furlongs per fortnightish"}
