"""Real CMIP6 files: catalog build -> run -> export of region means of ``ta`` for every Amon model
of ``esmvaltool-sample-data`` (42 models' own grids, bounds, calendars and time encodings).

The sample files are cut to a few cells around the North Pole and to the levels 1000 and
925 hPa, so the level asked for is ``plev=92500`` (the issue's 850 hPa is not in these files).

Truths: (1) an independent exact computation per model with numpy only: the file's own
``ta`` at 925 hPa, its own bounds (IPSL-CM6A-LR has none: midpoints clipped at the pole),
each cell's part of each region from sin-latitude and longitude overlaps, ``sum x f a / sum f a``
(math.fsum) to 1e-12; (2) CDO: ``fldmean(mul(ta, F)) / fldmean(F)`` with ``F`` the region mask
remapped by ``cdo remapcon`` to the file's grid, within CDO's own weight error: the difference
is ``sum((w_cdo - w)(x - m)) / sum(w_cdo)`` with CDO's weights ``w_cdo = gridarea * F``, so it
is bounded by ``sum(|w_cdo - w| |x - m|) / sum(w_cdo)`` (CDO's relative weight error is
about 2e-4 on these polar cells). CDO runs with ``--double``: by default CDO 2 computes float32
inputs in float32 (2e-8 relative, beyond that bound).
Models whose files carry defective bounds (a latitude bound beyond 90 deg, gaps between cells,
centres outside their cells: ``REPAIRED``) are repaired by gridflux's rules and fix table
(issue 17.5); their numpy truth is the careful manual repair (bounds clipped to +-90, or dropped
and rebuilt from the centres), and CDO, which reads the bounds as they are, is compared on the
others only.
"""

from __future__ import annotations

import glob
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

sample = pytest.importorskip("esmvaltool_sample_data")

ROOT = Path(sample.__file__).parent / "data" / "timeseries"
LEVEL = 92500.0
R = 6371007.181  # gridflux.earth-radius
#: region name -> (south, north, west, east, fraction) on the 1 deg mask grid
REGIONS = {
    "cap87": (87.0, 90.0, -180.0, 180.0, 1.0),
    "sector": (88.0, 90.0, 0.0, 2.0, 1.0),
    "partial": (88.0, 90.0, 0.0, 3.0, 0.3),
}
DEFECTIVE = {"CESM2-FV2", "CESM2-WACCM-FV2", "FGOALS-f3-L"}  # issue 17: bounds defects
#: models whose files gridflux repairs (gridflux/ingest/fixes.yaml and the generic rules): their
#: truth is computed from the careful manual repair, and CDO (which reads the files' bounds as
#: they are) is compared only on the others
REPAIRED = DEFECTIVE | {"NESM3", "NorESM2-LM"}


def _write_mask(path: Path) -> None:
    from gridflux.fields.masks import RegionMask
    from gridflux.kernels.grids import global_grid

    g = global_grid(1.0)
    lat, lon = g.lat_bounds, g.lon_bounds
    fr = np.zeros((len(REGIONS),) + g.shape)
    for k, (s, n, w, e, f) in enumerate(REGIONS.values()):
        rows = (lat[:, 0] >= s) & (lat[:, 1] <= n)
        cols = (lon[:, 0] >= w) & (lon[:, 1] <= e)
        fr[k][np.ix_(rows, cols)] = f
    RegionMask(names=tuple(REGIONS), fractions=fr, grid=g).to_netcdf(path)


def _gridflux(*args, cwd):
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).parents[2]))
    return subprocess.run(
        [sys.executable, "-m", "gridflux", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=900,
        env=env,
    )


def _lon_overlap(a, b, w, e):
    return sum(max(0.0, min(b, e + 360 * k) - max(a, w + 360 * k)) for k in range(-3, 4))


def model_name(ds: xr.Dataset) -> str:
    return str(ds.attrs.get("source_id", ""))


def _file_weights(ds: xr.Dataset) -> np.ndarray:
    """(region, lat, lon) exact weights f * area (m2) of the file's cells, in its own order."""
    lat = ds["lat"].values.astype(float)
    lon = ds["lon"].values.astype(float)

    def edges(c):
        m = 0.5 * (c[1:] + c[:-1])
        return np.concatenate([[c[0] - (m[0] - c[0])], m, [c[-1] + (c[-1] - m[-1])]])

    def midpoint_bounds(c, clip):
        e = np.clip(edges(c), -90, 90) if clip else edges(c)
        return np.stack([e[:-1], e[1:]], 1)

    def defective(c, b):  # the careful manual repair drops bounds with gaps, overlaps or
        b = np.sort(b, axis=1)  # centres outside their cells (CESM2-FV2 is clipped, below)
        order = np.argsort(c)
        b, c = b[order], c[order]
        gaps = np.abs(b[1:, 0] - b[:-1, 1]) > 1e-6
        outside = (c < b[:, 0] - 1e-9) | (c > b[:, 1] + 1e-9)
        return bool(gaps.any() or outside.any())

    def gaussian_bounds(c):  # exact edges of the Gaussian grid whose nodes the centres are
        for n in range(2, 1024, 2):
            x, wt = np.polynomial.legendre.leggauss(n)
            nodes = np.degrees(np.arcsin(x))
            idx = np.abs(nodes[None, :] - c[:, None]).argmin(axis=1)
            if np.allclose(nodes[idx], c, rtol=0, atol=2e-5):
                e = np.degrees(
                    np.arcsin(np.clip(np.concatenate([[-1.0], np.cumsum(wt) - 1]), -1, 1))
                )
                return np.stack([e[idx], e[idx + 1]], 1)
        raise AssertionError("not Gaussian")

    if model_name(ds) == "NESM3":  # its fix-table entry: both axes' bounds from the centres
        lat_b = midpoint_bounds(lat, clip=True)  # a cut T63 file: midpoints between centres
        lon_b = midpoint_bounds(lon, clip=False)
    elif model_name(ds) == "NorESM2-LM":  # its fix-table entry: longitude bounds from centres
        lat_b = np.clip(ds["lat_bnds"].values.astype(float), -90, 90)
        lon_b = midpoint_bounds(lon, clip=False)
    elif "lat_bnds" in ds:
        lat_b = np.clip(ds["lat_bnds"].values.astype(float), -90, 90)  # CESM2-FV2: 90.947
        lon_b = ds["lon_bnds"].values.astype(float)
        if defective(lat, lat_b):
            lat_b = midpoint_bounds(lat, clip=True)
        if defective(lon, lon_b):
            lon_b = midpoint_bounds(lon, clip=False)
    else:  # no bounds: midpoints, outer edges half a step out, clipped to +-90
        lat_b = midpoint_bounds(lat, clip=True)
        lon_b = midpoint_bounds(lon, clip=False)
    w = np.zeros((len(REGIONS), lat.size, lon.size))
    for k, (s, n, west, east, f) in enumerate(REGIONS.values()):
        for i, (a0, a1) in enumerate(lat_b):
            lo_, hi_ = sorted((a0, a1))
            ds_ = math.sin(math.radians(min(hi_, n))) - math.sin(math.radians(max(lo_, s)))
            if ds_ <= 0:
                continue
            for j, (b0, b1) in enumerate(lon_b):
                b0, b1 = sorted((b0, b1))
                w[k, i, j] = f * R * R * ds_ * math.radians(_lon_overlap(b0, b1, west, east))
    return w


def _truth(files: list[str]) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Exact means per (region, YYYY-MM), and the data and weights for error bounds."""
    rows, xs = [], []
    w = None
    for f in sorted(files):
        ds = xr.open_dataset(f, decode_times=xr.coders.CFDatetimeCoder(use_cftime=True))
        k = int(np.flatnonzero(np.isclose(ds["plev"].values, LEVEL))[0])
        x = ds["ta"].isel(plev=k).values.astype(float)
        x = np.where(np.abs(x) < 1e19, x, np.nan)
        w = _file_weights(ds) if w is None else w
        for t, d in enumerate(ds["time"].values):
            for r, name in enumerate(REGIONS):
                ok = np.isfinite(x[t])
                num = math.fsum((x[t][ok] * w[r][ok]).ravel())
                den = math.fsum(w[r][ok].ravel())
                rows.append((name, f"{d.year:04d}-{d.month:02d}", num / den))
        xs.append(x)
        ds.close()
    df = pd.DataFrame(rows, columns=["region", "time", "truth"])
    return df, np.concatenate(xs), w


@pytest.fixture(scope="module")
def real_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cmip6")
    _write_mask(tmp / "mask.nc")
    b = _gridflux("catalog", "build", ROOT, "--out", tmp / "cat.json", cwd=tmp)
    assert b.returncode == 0, b.stderr
    assert "ta [Amon]: 270 files, 42 series -> mean (computed)" in b.stdout + b.stderr
    r = _gridflux(
        "run",
        tmp / "cat.json",
        "--mask",
        tmp / "mask.nc",
        "--store",
        tmp / "st.zarr",
        "--cluster",
        "none",
        "--no-progress",
        "--select",
        "table_id=Amon",
        "--sel",
        f"plev={LEVEL:g}",
        "--allowed-prefix",
        ROOT,
        "--summary-json",
        tmp / "summary.json",
        cwd=tmp,
    )
    summary = json.loads((tmp / "summary.json").read_text())
    e = _gridflux("export", tmp / "st.zarr", "--totals", tmp / "out.csv", cwd=tmp)
    assert e.returncode == 0, e.stderr
    df = pd.read_csv(tmp / "out.csv", dtype={"time": str})
    return tmp, summary, df, r


def _model_files(model: str) -> list[str]:
    return glob.glob(
        str(ROOT / "**" / model / "**" / "Amon" / "ta" / "**" / "*.nc"), recursive=True
    )


def test_every_amon_model_is_a_mean_in_kelvin_or_a_named_bounds_defect(real_run):
    tmp, summary, df, r = real_run
    models = {m.split(".")[1] for m in df["source_id"]}
    failed = {k.split(".")[1]: v for k, v in summary["failures"].items()}
    assert summary["done"] == 42 and not failed, failed  # defective files are repaired
    assert len(models) == 42
    assert set(df["statistic"]) == {"mean"} and set(df["unit"]) == {"K"}
    assert set(df["variable"]) == {"ta"}
    manifest = json.loads((tmp / "st.zarr" / "manifest.json").read_text())["series"]
    assert {e["statistic"] for e in manifest.values()} == {"mean"}
    fixed = {k.split(".")[1] for k, e in manifest.items() if e.get("fixes")}
    assert fixed == REPAIRED, fixed  # every repair recorded, and only those
    assert {e["sel"] for e in manifest.values()} == {"plev=92500"}


def test_means_equal_an_independent_exact_computation(real_run):
    _, _, df, _ = real_run
    checked = 0
    for source_id, got in df.groupby("source_id"):
        model = source_id.split(".")[1]
        truth, _, _ = _truth(_model_files(model))
        m = got.merge(truth, on=["region", "time"], how="outer", indicator=True)
        assert (m["_merge"] == "both").all(), (model, m[m["_merge"] != "both"].head())
        np.testing.assert_allclose(m["value"], m["truth"], rtol=1e-12, atol=0, err_msg=model)
        checked += 1
    assert checked == 42


def _cdo(*args) -> str:
    r = subprocess.run(
        ["cdo", "-s", "--double", *args], capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 0, r.stderr
    return r.stdout


@pytest.mark.skipif(shutil.which("cdo") is None, reason="cdo is not installed")
def test_means_agree_with_cdo_fldmean_within_cdo_area_error(real_run):
    tmp, _, df, _ = real_run
    _write_mask(tmp / "mask_cdo.nc")
    n = 0
    for source_id, got in df.groupby("source_id"):
        model = source_id.split(".")[1]
        if model in REPAIRED:  # CDO reads the defective bounds as they are (1-155 % off)
            continue
        files = sorted(_model_files(model))
        f0 = files[0]
        _, x, w_exact = _truth(files)
        merged = tmp / f"ta_{model}.nc"  # the model's files at the level, one time axis
        _cdo("-O", "mergetime", *files, tmp / f"all_{model}.nc")
        _cdo("-O", f"sellevel,{LEVEL:g}", "-selname,ta", tmp / f"all_{model}.nc", merged)
        for r, name in enumerate(REGIONS):
            mask1 = tmp / f"m_{name}.nc"
            frac = tmp / f"f_{model}_{name}.nc"
            _region_file(tmp / "mask_cdo.nc", r, mask1)
            _cdo(f"remapcon,{f0}", mask1, frac)
            # CDO's weights: its own cell areas times its remapped fractions
            ga = _values(_cdo("outputf,%.17g,1", "-mul", "-gridarea", f0, frac))
            w_cdo = ga.reshape(w_exact.shape[1:])
            w_true = w_exact[r]  # computed from the file's own arrays: its own order
            err = np.abs(w_cdo - w_true).sum() / w_true.sum()  # relative weight error
            got_r = got[got["region"] == name].sort_values("time")["value"].to_numpy()
            out = _cdo(
                "outputf,%.17g,1",
                "-div",
                "-fldmean",
                "-mul",
                merged,
                frac,
                "-fldmean",
                frac,
            )
            cdo_r = _values(out)
            # CDO's mean minus the exact one is sum((w_cdo - w) (x - m)) / sum(w_cdo): bounded
            # by CDO's weight error at each cell times the cell's distance from the mean
            xs = x.reshape(x.shape[0], -1)
            m = (xs @ w_true.ravel()) / w_true.sum()
            dw = np.abs(w_cdo - w_true).ravel()
            tol = (np.abs(xs - m[:, None]) @ dw) / w_cdo.sum() * 1.001 + 1e-9 * np.abs(cdo_r)
            assert got_r.shape == cdo_r.shape, model
            assert np.all(np.abs(got_r - cdo_r) <= tol), (model, name, err)
            n += 1
    assert n == (42 - len(REPAIRED)) * len(REGIONS)


def _region_file(mask_path: Path, r: int, out: Path) -> None:
    """One region's fractions as a plain (lat, lon) netCDF file with bounds, for CDO."""
    from gridflux.fields.masks import RegionMask

    m = RegionMask.from_file(mask_path)
    g = m.grid
    ds = xr.Dataset(
        {
            "frac": (("lat", "lon"), m.fractions[r]),
            "lat_bnds": (("lat", "bnds"), g.lat_bounds),
            "lon_bnds": (("lon", "bnds"), g.lon_bounds),
        },
        coords={
            "lat": ("lat", g.lat, {"units": "degrees_north", "bounds": "lat_bnds"}),
            "lon": ("lon", g.lon, {"units": "degrees_east", "bounds": "lon_bnds"}),
        },
    )
    ds.to_netcdf(out)


def _values(text: str) -> np.ndarray:
    return np.array([float(v) for v in text.split()])


# -- daily files (table day), resampled to months -------------------------------------------------
DAY_LEVEL = 85000.0  # the sample's daily files hold 1000 and 850 hPa


def _daily_truth(files: list[str]) -> pd.DataFrame:
    """Exact monthly means per (region, YYYY-MM) of a model's daily ``ta`` at 850 hPa: each cell's
    mean of the month's days (a month with fewer steps than its days in the file's calendar is
    left out: gridflux stores it as no data), then ``sum x f a / sum f a`` over finite cells.
    A step is dated by the midpoint of its time bounds (CF: the bounds are the cell; CESM2's
    daily stamps are at the end of the day, 00:00 of the next, with bounds around the day
    before), by its stamp where a file has no bounds."""
    import cftime
    import netCDF4

    xs, dates, w = [], [], None
    for f in sorted(files):
        ds = xr.open_dataset(f, decode_times=xr.coders.CFDatetimeCoder(use_cftime=True))
        k = int(np.flatnonzero(np.isclose(ds["plev"].values, DAY_LEVEL))[0])
        x = ds["ta"].isel(plev=k).values.astype(float)
        xs.append(np.where(np.abs(x) < 1e19, x, np.nan))
        with netCDF4.Dataset(f) as nc:
            t = nc["time"]
            bname = getattr(t, "bounds", None)
            v = np.asarray(t[:], dtype=float)
            if bname and bname in nc.variables:
                v = np.asarray(nc[bname][:], dtype=float).mean(axis=1)
            dates += list(cftime.num2date(v, t.units, t.calendar))
        w = _file_weights(ds) if w is None else w
        ds.close()
    assert w is not None
    x = np.concatenate(xs)
    keys = np.array([12 * d.year + d.month - 1 for d in dates])
    cal = dates[0].calendar
    rows = []
    for key in np.unique(keys):
        sel = keys == key
        a0 = cftime.datetime(key // 12, key % 12 + 1, 1, calendar=cal)
        a1 = cftime.datetime((key + 1) // 12, (key + 1) % 12 + 1, 1, calendar=cal)
        if sel.sum() < round((a1 - a0).total_seconds() / 86400):
            continue
        m = x[sel].mean(axis=0)
        for r, name in enumerate(REGIONS):
            ok = np.isfinite(m)
            num = math.fsum((m[ok] * w[r][ok]).ravel())
            den = math.fsum(w[r][ok].ravel())
            rows.append((name, f"{key // 12:04d}-{key % 12 + 1:02d}", num / den))
    return pd.DataFrame(rows, columns=["region", "time", "truth"])


def test_daily_files_resampled_to_months_equal_an_exact_computation(tmp_path):
    """Every ``day`` model of the sample data (their calendars included): with ``--resample
    month`` the monthly means equal the numpy truth to 1e-12 (without it: the daily axis, below)."""
    _write_mask(tmp_path / "mask.nc")
    b = _gridflux("catalog", "build", ROOT, "--out", tmp_path / "cat.json", cwd=tmp_path)
    assert b.returncode == 0, b.stderr
    common = ["--mask", tmp_path / "mask.nc", "--cluster", "none", "--no-progress", "--select",
              "table_id=day", "--sel", f"plev={DAY_LEVEL:g}", "--allowed-prefix", ROOT]  # fmt: skip
    resampled = [*common, "--resample", "month", "--summary-json", tmp_path / "s.json"]
    r = _gridflux("run", tmp_path / "cat.json", "--store", tmp_path / "st.zarr", *resampled,
                  cwd=tmp_path)  # fmt: skip
    summary = json.loads((tmp_path / "s.json").read_text())
    assert not summary["failures"], (summary["failures"], r.stderr[-2000:])
    e = _gridflux("export", tmp_path / "st.zarr", "--totals", tmp_path / "out.csv", cwd=tmp_path)
    assert e.returncode == 0, e.stderr
    df = pd.read_csv(tmp_path / "out.csv", dtype={"time": str})
    assert set(df["statistic"]) == {"mean"} and set(df["unit"]) == {"K"}
    checked = 0
    for source_id, got in df.groupby("source_id"):
        model = source_id.split(".")[1]
        files = glob.glob(str(ROOT / "**" / model / "**" / "day" / "ta" / "**" / "*.nc"),
                          recursive=True)  # fmt: skip
        truth = _daily_truth(files)
        m = got.merge(truth, on=["region", "time"], how="outer", indicator=True)
        assert (m["_merge"] == "both").all(), (model, m[m["_merge"] != "both"].head())
        np.testing.assert_allclose(m["value"], m["truth"], rtol=1e-12, atol=0, err_msg=model)
        checked += 1
    assert checked == summary["done"] >= 30
    manifest = json.loads((tmp_path / "st.zarr" / "manifest.json").read_text())["series"]
    assert {e.get("resample") for e in manifest.values()} == {"month"}


def _daily_axis_truth(files: list[str]) -> pd.DataFrame:
    """Exact means per (region, YYYY-MM-DD) of a model's daily ``ta`` at 850 hPa: each day's
    field, ``sum x f a / sum f a`` over its finite cells; a step dated as in
    :func:`_daily_truth` (the midpoint of its time bounds)."""
    import cftime
    import netCDF4

    rows = []
    w = None
    for f in sorted(files):
        ds = xr.open_dataset(f, decode_times=False)
        k = int(np.flatnonzero(np.isclose(ds["plev"].values, DAY_LEVEL))[0])
        x = ds["ta"].isel(plev=k).values.astype(float)
        x = np.where(np.abs(x) < 1e19, x, np.nan)
        w = _file_weights(ds) if w is None else w
        ds.close()
        with netCDF4.Dataset(f) as nc:
            t = nc["time"]
            bname = getattr(t, "bounds", None)
            v = np.asarray(t[:], dtype=float)
            if bname and bname in nc.variables:
                v = np.asarray(nc[bname][:], dtype=float).mean(axis=1)
            dates = cftime.num2date(v, t.units, t.calendar)
        for day, d in enumerate(dates):
            ok = np.isfinite(x[day])
            label = f"{d.year:04d}-{d.month:02d}-{d.day:02d}"
            for r, name in enumerate(REGIONS):
                num = math.fsum((x[day][ok] * w[r][ok]).ravel())
                rows.append((name, label, num / math.fsum(w[r][ok].ravel())))
    return pd.DataFrame(rows, columns=["region", "time", "truth"])


def test_daily_files_keep_their_daily_axis_and_equal_an_exact_computation(tmp_path):
    """Without ``--resample`` the daily series of every ``day`` model (five calendars; CESM2's
    stamps at the end of the day) are stored on their daily axis (the store's daily/ group):
    every day's region mean equals the numpy truth to 1e-12, exported with ``frequency`` day and
    ``YYYY-MM-DD`` labels."""
    _write_mask(tmp_path / "mask.nc")
    b = _gridflux("catalog", "build", ROOT, "--out", tmp_path / "cat.json", cwd=tmp_path)
    assert b.returncode == 0, b.stderr
    args = ["--mask", tmp_path / "mask.nc", "--cluster", "none", "--no-progress", "--select",
            "table_id=day", "--sel",
            f"plev={DAY_LEVEL:g}", "--allowed-prefix", ROOT, "--summary-json",
            tmp_path / "s.json"]  # fmt: skip
    r = _gridflux("run", tmp_path / "cat.json", "--store", tmp_path / "st.zarr", *args,
                  cwd=tmp_path)  # fmt: skip
    summary = json.loads((tmp_path / "s.json").read_text())
    assert not summary["failures"], (summary["failures"], r.stderr[-2000:])
    assert summary["done"] >= 30, summary
    e = _gridflux("export", tmp_path / "st.zarr", "--totals", tmp_path / "out.csv", cwd=tmp_path)
    assert e.returncode == 0, e.stderr
    df = pd.read_csv(tmp_path / "out.csv", dtype={"time": str})
    assert set(df["frequency"]) == {"day"} and set(df["unit"]) == {"K"}
    assert df["time"].str.fullmatch(r"\d{4}-\d{2}-\d{2}").all()
    calendars, checked = set(), 0
    for source_id, got in df.groupby("source_id"):
        model = source_id.split(".")[1]
        files = glob.glob(str(ROOT / "**" / model / "**" / "day" / "ta" / "**" / "*.nc"),
                          recursive=True)  # fmt: skip
        with xr.open_dataset(files[0], decode_times=False) as ds:
            calendars.add(str(ds["time"].attrs.get("calendar")))
        truth = _daily_axis_truth(files)
        m = got.merge(truth, on=["region", "time"], how="outer", indicator=True)
        assert (m["_merge"] == "both").all(), (model, m[m["_merge"] != "both"].head())
        np.testing.assert_allclose(m["value"], m["truth"], rtol=1e-12, atol=0, err_msg=model)
        checked += 1
    assert checked == summary["done"] and len(calendars) == 5, (checked, calendars)


def test_catalog_check_opens_daily_series_on_their_daily_axis(tmp_path):
    """`catalog check` reports what `gridflux run` does by default: a ``day`` series is computed
    on its daily axis, opened so (at 850 hPa, as a run with ``--sel`` opens it), and its
    coverage counts the days of its files."""
    import netCDF4

    from gridflux.ingest.catalog import build_catalog, check_series, load_catalog

    path = build_catalog(ROOT, tmp_path / "cat.json").path
    records = load_catalog(path, allow_outside_root=[str(ROOT)]).series(
        {"table_id": "day", "variable": "ta"}
    )
    assert len(records) >= 30
    for rec in records[:6]:
        rec.traits["sel"] = f"plev={DAY_LEVEL:g}"
        chk = check_series(rec)
        assert chk.ok, (chk.key, chk.problems)
        assert chk.statistic == "mean (computed, daily axis)"
        days = 0
        for f in rec.paths:
            with netCDF4.Dataset(f) as nc:
                days += len(nc.dimensions["time"])
        assert chk.coverage.endswith(f"({days} days)"), (chk.key, chk.coverage, days)
