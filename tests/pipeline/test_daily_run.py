"""Daily series on their daily axis (issue 17.2): the store's ``daily/`` group.

Small synthetic netCDF files in three calendars (noleap, 360_day, standard), a day left out of
one file and a day of only fill values in another. Truths are numpy computations written here:
``sum x w / sum w`` over finite cells (means) and ``-sum f * 86400 * w / 1e9`` (totals of a flux
positive into the land), with the region weights of the rectangle geometry
(``region_cell_weights``), placed by their ``YYYY-MM-DD`` label; never gridflux's output.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import cftime
import numpy as np
import pandas as pd
import pytest

import gridflux
from gridflux.errors import StoreError
from gridflux.fields.masks import RegionMask
from gridflux.ingest.catalog import write_catalog
from gridflux.kernels.grids import global_grid

from .conftest import BOXES, box_mask_fractions, region_cell_weights
from .test_statistics_run import (
    GRID,
    _daily_dates,
    _mask,
    _means_truth,
    _monthly_dates,
    _row,
    _store_info,
    _write,
)
from .test_store_lock import needs_moto
from .test_store_lock import s3 as s3  # noqa: F401 - the fixture: moto's S3 server, bucket "locks"

CALENDARS = ("noleap", "360_day", "standard")
GAP = {"standard": (2000, 3, 10)}  # a day the file lacks
FILL_DAY = {"noleap": (2000, 2, 14)}  # a day of only _FillValue


def _label(d) -> str:
    return f"{d.year:04d}-{d.month:02d}-{d.day:02d}"


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    root = tmp_path_factory.mktemp("daily_axis")
    rng = np.random.default_rng(17)
    rows, data = [], {}
    for cal in CALENDARS:
        dates = _daily_dates(cal, months=14)
        if cal in GAP:
            dates = [d for d in dates if (d.year, d.month, d.day) != GAP[cal]]
        if cal == "360_day":
            dates = dates[:-3]  # cut 3 days before the end of its last month
        n = len(dates)
        t = (260.0 + 20.0 * rng.random((n,) + GRID.shape)).astype("f4").astype(np.float64)
        t[:, :5, :] = np.nan  # no data south of 75S
        f = (1e-8 * rng.standard_normal((n,) + GRID.shape)).astype("f4").astype(np.float64)
        if cal in FILL_DAY:
            k = next(i for i, d in enumerate(dates) if (d.year, d.month, d.day) == FILL_DAY[cal])
            t[k] = np.nan
            f[k] = np.nan
        _write(root / f"tas_{cal}.nc", t, dates, cal, attrs={"standard_name": "air_temperature"})
        _write(root / f"nbp_{cal}.nc", f, dates, cal, name="nbp", units="kg m-2 s-1")
        src = f"D-{cal}"
        rows.append(_row(src, "tas", f"tas_{cal}.nc", table_id="day"))
        rows.append(_row(src, "nbp", f"nbp_{cal}.nc", table_id="day", into_land="true"))
        data[cal] = (dates, t, f)
    # a monthly series in the same run: to the root, as without daily series
    m = (250.0 + 30.0 * rng.random((12,) + GRID.shape)).astype("f4").astype(np.float64)
    _write(root / "tas_monthly.nc", m, _monthly_dates(12, "noleap"), "noleap")
    rows.append(_row("M", "tas", "tas_monthly.nc", table_id="Amon"))
    cat = write_catalog(rows, root / "catalog.json")
    return {"root": root, "catalog": str(cat), "mask": _mask(root), "data": data, "monthly": m}


@pytest.fixture(scope="module")
def mixed_store(archive, tmp_path_factory):
    store = str(tmp_path_factory.mktemp("mixed") / "s.zarr")
    summary = gridflux.run(archive["catalog"], archive["mask"], store, cubes=False)
    return store, summary


def _weights():
    return {r: region_cell_weights(GRID, r) for r in BOXES}


def test_daily_means_and_totals_per_day_in_each_calendar(archive, mixed_store):
    store, summary = mixed_store
    assert not summary.failed, summary.failed
    ds = gridflux.open_store(store, group="daily")
    labels = [str(x) for x in ds["time"].values]
    # 31 slots per month, from January (a 12-month chunk boundary) through the last month
    assert len(labels) == 31 * 14 and labels[0] == "2000-01-01" and labels[-1] == "2001-02-31"
    assert labels[31 + 28] == "2000-02-29" and labels[31 * 12] == "2001-01-01"
    tot = ds["totals"].load()
    w = _weights()
    assert dict(zip(ds["variable"].values, ds["variable_units"].values, strict=True)) == {
        "tas": "K",
        "nbp": "Tg C",
    }
    for cal, (dates, t, f) in archive["data"].items():
        member = f"T.D-{cal}.hist.r1"
        assert str(ds["calendar"].sel(member=member).values) == cal
        got_t = tot.sel(member=member, variable="tas")
        got_f = tot.sel(member=member, variable="nbp")
        for k, d in enumerate(dates):
            i = labels.index(_label(d))
            for r in BOXES:
                if np.isnan(t[k]).all():  # a day without data: NaN, never a mean or 0
                    assert np.isnan(got_t.sel(region=r).values[i])
                    assert np.isnan(got_f.sel(region=r).values[i])
                    continue
                want_t = _means_truth(t[k][None], w[r])[0]
                np.testing.assert_allclose(got_t.sel(region=r).values[i], want_t, rtol=1e-12)
                # the day's rate x 86400 s, positive to the atmosphere (file: into the land), Tg
                # (signed terms: the tolerance is relative to the sum of their sizes)
                terms = (f[k] * 86400.0 * w[r]).ravel() / 1e9
                want_f = -math.fsum(terms.tolist())
                atol = 1e-12 * math.fsum(np.abs(terms).tolist())
                np.testing.assert_allclose(got_f.sel(region=r).values[i], want_f, atol=atol)
        # every slot that is not a day of the file is NaN: the calendar's missing days (30-31
        # February, 31 of 360_day months), the gap, the days after a cut
        have = {labels.index(_label(d)) for d in dates}
        other = np.array([i for i in range(len(labels)) if i not in have])
        assert np.isnan(got_t.values[:, other]).all() and np.isnan(got_f.values[:, other]).all()
        assert np.isfinite(got_f.values[:, sorted(have)]).all() or cal in FILL_DAY


def test_slots_a_calendar_lacks_are_nan_and_its_own_days_are_not(mixed_store):
    store, _ = mixed_store
    tot = gridflux.open_store(store, group="daily")["totals"].sel(variable="nbp", region="north")

    def finite(cal, label):
        return bool(np.isfinite(tot.sel(member=f"T.D-{cal}.hist.r1", time=label).values))

    assert finite("standard", "2000-02-29") and not finite("standard", "2000-02-30")
    assert not finite("noleap", "2000-02-29") and finite("noleap", "2000-02-28")
    assert finite("360_day", "2000-02-30") and not finite("360_day", "2000-01-31")
    assert finite("noleap", "2000-01-31") and not finite("standard", "2000-03-10")  # the gap


def test_missing_days_are_named_in_the_summary_and_store_info(mixed_store):
    store, summary = mixed_store
    missing = summary.missing
    assert missing["T.D-standard.hist.r1/tas (daily)"] == ["2000-03-10"]
    assert missing["T.D-noleap.hist.r1/nbp (daily)"] == ["2000-02-14"]
    assert missing["T.D-360_day.hist.r1/tas (daily)"] == ["2001-02-28", "2001-02-29", "2001-02-30"]
    info = _store_info(store)
    assert "daily/ (daily series)" in info and "frequency" in info
    assert "T.D-noleap.hist.r1/tas (daily)" in info and "2000-02-14" in info
    assert '"daily": {"done": 6}' in info


def test_the_monthly_series_of_a_mixed_run_goes_to_the_root(archive, mixed_store):
    store, summary = mixed_store
    assert sorted(summary.done) == sorted(
        ["T.M.hist.r1/tas"]
        + [f"T.D-{c}.hist.r1/{v} (daily)" for c in CALENDARS for v in ("tas", "nbp")]
    )
    root = gridflux.open_store(store)
    assert list(root["member"].values) == ["T.M.hist.r1"]  # no daily member in the root
    daily = gridflux.open_store(store, group="daily")
    assert "T.M.hist.r1" not in list(daily["member"].values)
    got = root["totals"].sel(member="T.M.hist.r1", variable="tas").load()
    for r in BOXES:
        want = _means_truth(archive["monthly"], region_cell_weights(GRID, r))
        np.testing.assert_allclose(got.sel(region=r).values[:12], want, rtol=1e-12)


def test_export_has_a_frequency_column_and_day_labels(archive, mixed_store, tmp_path):
    from typer.testing import CliRunner

    from gridflux.cli import app

    store, _ = mixed_store
    out = tmp_path / "out.csv"
    r = CliRunner().invoke(app, ["export", store, "--totals", str(out)])
    assert r.exit_code == 0, r.output
    df = pd.read_csv(out, dtype={"time": str})
    assert set(df["frequency"]) == {"month", "day"}
    monthly, daily = df[df["frequency"] == "month"], df[df["frequency"] == "day"]
    assert set(monthly["source_id"]) == {"T.M.hist.r1"} and len(monthly) == 12 * len(BOXES)
    assert daily["time"].str.fullmatch(r"\d{4}-\d{2}-\d{2}").all()
    # one row per day with data, region and series: no NaN slot exported
    n_days = sum(
        sum(1 for k in range(len(d)) if not np.isnan(t[k]).all())
        for d, t, _ in archive["data"].values()
    )
    assert len(daily) == 2 * n_days * len(BOXES)
    dates, t, f = archive["data"]["360_day"]
    k = next(i for i, d in enumerate(dates) if _label(d) == "2000-02-30")
    w = region_cell_weights(GRID, "box")
    row = daily[
        (daily["source_id"] == "T.D-360_day.hist.r1")
        & (daily["variable"] == "nbp")
        & (daily["region"] == "box")
        & (daily["time"] == "2000-02-30")
    ]
    assert list(row["unit"]) == ["Tg C"] and list(row["statistic"]) == ["total"]
    terms = (f[k] * 86400.0 * w).ravel() / 1e9
    np.testing.assert_allclose(
        row["value"].iloc[0],
        -math.fsum(terms.tolist()),
        atol=1e-12 * math.fsum(np.abs(terms).tolist()),
    )
    tas = daily[(daily["variable"] == "tas")]
    assert set(tas["unit"]) == {"K"} and set(tas["statistic"]) == {"mean"}


def test_a_daily_series_grows_the_store_and_keeps_what_it_held(archive, mixed_store, tmp_path):
    import shutil

    store0, _ = mixed_store
    store = str(tmp_path / "g.zarr")
    shutil.copytree(store0, store)
    before = gridflux.open_store(store, group="daily")["totals"].load()
    # a new member, one year earlier: members appended, the axis grows by whole months
    rng = np.random.default_rng(5)
    dates = _daily_dates("noleap", start=(1999, 11, 1), months=3)
    t = (270.0 + rng.random((len(dates),) + GRID.shape)).astype("f4").astype(np.float64)
    _write(tmp_path / "tas_new.nc", t, dates, "noleap", attrs={"standard_name": "air_temperature"})
    cat = write_catalog([_row("N", "tas", "tas_new.nc", table_id="day")], tmp_path / "c.json")
    summary = gridflux.run(str(cat), archive["mask"], store, cubes=False)
    assert summary.done == ["T.N.hist.r1/tas (daily)"] and not summary.failed
    ds = gridflux.open_store(store, group="daily")
    labels = [str(x) for x in ds["time"].values]
    assert labels[0] == "1999-01-01" and len(labels) == 31 * 26
    tot = ds["totals"].load()
    old = tot.sel(member=list(before["member"].values), time=list(before["time"].values))
    np.testing.assert_array_equal(old.values, before.values)  # unchanged, by label
    w = region_cell_weights(GRID, "north")
    i = labels.index("1999-12-31")
    k = next(j for j, d in enumerate(dates) if _label(d) == "1999-12-31")
    got = tot.sel(member="T.N.hist.r1", variable="tas", region="north").values[i]
    np.testing.assert_allclose(got, _means_truth(t[k][None], w)[0], rtol=1e-12)
    # the root's monthly series is still there
    assert list(gridflux.open_store(store)["member"].values) == ["T.M.hist.r1"]


def test_a_mask_without_a_region_of_the_store_is_refused_with_one_line(
    archive, mixed_store, tmp_path
):
    """Regions are never dropped (a mask may add regions: test_daily_regions.py)."""
    import shutil

    store0, _ = mixed_store
    store = str(tmp_path / "r.zarr")
    shutil.copytree(store0, store)
    g = global_grid(1.0)
    other = tmp_path / "other.nc"
    RegionMask(("north",), box_mask_fractions(g)[:1], g).to_netcdf(other)
    with pytest.raises(StoreError, match=r"holds region\(s\) \['box'\] that this run's mask lacks"):
        gridflux.run(archive["catalog"], str(other), store, cubes=False)


def test_sub_daily_steps_are_refused_naming_resample_month(tmp_path):
    from datetime import timedelta

    d0 = cftime.datetime(2000, 1, 1, 3, calendar="noleap")
    dates = [d0 + timedelta(hours=6 * i) for i in range(4 * 62)]
    x = np.full((len(dates),) + GRID.shape, 280.0)
    _write(tmp_path / "tas_6h.nc", x, dates, "noleap", attrs={"standard_name": "air_temperature"})
    cat = write_catalog([_row("S", "tas", "tas_6h.nc")], tmp_path / "c.json")  # no table_id
    summary = gridflux.run(str(cat), _mask(tmp_path), str(tmp_path / "s.zarr"), cubes=False)
    (err,) = summary.failed.values()
    assert "tas_6h.nc" in err and "--resample month" in err and "same day" in err


def test_cubes_of_daily_series_are_named_as_not_written(archive, tmp_path):
    cat = json.loads(Path(archive["catalog"]).read_text())
    assert cat  # the catalog is read by gridflux.run below
    summary = gridflux.run(
        archive["catalog"],
        archive["mask"],
        str(tmp_path / "c.zarr"),
        cubes=True,
        query={"source_id": ["M", "D-noleap"]},
    )
    assert not summary.failed, summary.failed
    (note,) = summary.notes
    assert "cubes are not written for daily series" in note
    assert "T.D-noleap.hist.r1/tas (daily)" in note and "T.D-noleap.hist.r1/nbp (daily)" in note
    root = gridflux.open_store(str(tmp_path / "c.zarr"), group="cubes/tas")
    assert list(root["member"].values) == ["T.M.hist.r1"]  # the monthly cube is written
    assert "not written (daily cubes are not built)" in _store_info(str(tmp_path / "c.zarr"))
    assert summary.as_dict()["notes"] == [note]


def _daily_values(store):
    ds = gridflux.open_store(store, group="daily")
    return ds["totals"].load()


def test_a_daily_only_store_then_grows_monthly_and_a_root_rebuild_keeps_the_daily_group(
    archive, tmp_path
):
    store = str(tmp_path / "d.zarr")
    s1 = gridflux.run(
        archive["catalog"], archive["mask"], store, cubes=False, query={"source_id": "D-noleap"}
    )
    assert sorted(s1.done) == ["T.D-noleap.hist.r1/nbp (daily)", "T.D-noleap.hist.r1/tas (daily)"]
    daily = _daily_values(store)
    # a monthly series later: the root's template is written beside the daily group
    s2 = gridflux.run(archive["catalog"], archive["mask"], store, cubes=False,
                      query={"source_id": "M"})  # fmt: skip
    assert s2.done == ["T.M.hist.r1/tas"] and not s2.failed
    assert list(gridflux.open_store(store)["member"].values) == ["T.M.hist.r1"]
    np.testing.assert_array_equal(_daily_values(store).values, daily.values)
    # a monthly series two years earlier: the root is rebuilt (its axis starts earlier), the
    # daily group comes along unchanged
    rng = np.random.default_rng(9)
    m = (250.0 + rng.random((12,) + GRID.shape)).astype("f4").astype(np.float64)
    _write(tmp_path / "tas_early.nc", m, _monthly_dates(12, "noleap", start=1997), "noleap")
    cat = write_catalog([_row("E", "tas", "tas_early.nc", table_id="Amon")], tmp_path / "e.json")
    s3 = gridflux.run(str(cat), archive["mask"], store, cubes=False)
    assert s3.done == ["T.E.hist.r1/tas"] and not s3.failed
    root = gridflux.open_store(store)
    assert str(root.indexes["time"][0])[:7] == "1997-01"
    np.testing.assert_array_equal(_daily_values(store).values, daily.values)
    assert "T.D-noleap.hist.r1/tas (daily)" in _store_info(store)


def test_zarr_format_2_store_holds_the_daily_group(archive, tmp_path):
    store = str(tmp_path / "v2.zarr")
    summary = gridflux.run(
        archive["catalog"],
        archive["mask"],
        store,
        cubes=False,
        zarr_format=2,
        query={"source_id": ["M", "D-360_day"]},
    )
    assert not summary.failed, summary.failed
    assert (Path(store) / "daily" / ".zgroup").exists()
    tot = _daily_values(store)
    assert tot.sizes["member"] == 1 and np.isfinite(tot.sel(time="2000-02-30").values).all()
    assert list(gridflux.open_store(store)["member"].values) == ["T.M.hist.r1"]


@needs_moto
def test_daily_group_on_s3_is_written_resumed_and_grown_in_place(archive, s3):
    url = "s3://locks/daily.zarr"
    q = {"source_id": ["M", "D-standard"]}
    summary = gridflux.run(
        archive["catalog"], archive["mask"], url, cubes=False, query=q, store_options=s3
    )
    assert not summary.failed, summary.failed
    ds = gridflux.open_store(url, s3, group="daily")
    dates, t, _ = archive["data"]["standard"]
    k = next(i for i, d in enumerate(dates) if _label(d) == "2000-02-29")
    got = ds["totals"].sel(variable="tas", region="north", time="2000-02-29").values
    np.testing.assert_allclose(got, _means_truth(t[k][None], region_cell_weights(GRID, "north")))
    before = ds["totals"].sel(member="T.D-standard.hist.r1", variable="tas", region="north")
    before = before.load()
    # nothing new: every series skipped, the group not written
    again = gridflux.run(
        archive["catalog"], archive["mask"], url, cubes=False, query=q, store_options=s3
    )
    assert again.done == [] and len(again.skipped) == 3, again
    # a new member: the group grows in place on the object store (no rewrite refused)
    q2 = {"source_id": ["M", "D-standard", "D-noleap"]}
    grown = gridflux.run(
        archive["catalog"], archive["mask"], url, cubes=False, query=q2, store_options=s3
    )
    assert sorted(grown.done) == [
        "T.D-noleap.hist.r1/nbp (daily)",
        "T.D-noleap.hist.r1/tas (daily)",
    ], grown
    ds = gridflux.open_store(url, s3, group="daily")
    dates, t, _ = archive["data"]["noleap"]
    k = next(i for i, d in enumerate(dates) if _label(d) == "2001-02-28")
    got = ds["totals"].sel(member="T.D-noleap.hist.r1", variable="tas", region="box")
    got = got.sel(time="2001-02-28").values
    np.testing.assert_allclose(got, _means_truth(t[k][None], region_cell_weights(GRID, "box")))
    got = ds["totals"].sel(member="T.D-standard.hist.r1", variable="tas", region="north")
    np.testing.assert_array_equal(got.values, before.values)  # the stored member as it was


def test_land_weighted_daily_means(tmp_path):
    from .test_statistics_run import _land, _write_sftlf

    rng = np.random.default_rng(23)
    dates = _daily_dates("noleap", months=2)
    x = (250.0 + 30.0 * rng.random((len(dates),) + GRID.shape)).astype("f4").astype(np.float64)
    lf = _land(GRID.shape, 4)
    x[:, lf == 0.0] = np.nan  # no data over the ocean
    _write(tmp_path / "tas_L.nc", x, dates, "noleap", attrs={"standard_name": "air_temperature"})
    _write_sftlf(tmp_path / "sftlf_L.nc", lf * 100.0, "%")
    rows = [
        _row("L", "tas", "tas_L.nc", table_id="day", land_weighted="true"),
        _row("L", "sftlf", "sftlf_L.nc", table_id="fx"),
    ]
    cat = write_catalog(rows, tmp_path / "c.json")
    store = str(tmp_path / "s.zarr")
    summary = gridflux.run(str(cat), _mask(tmp_path), store, cubes=False)
    assert summary.done == ["T.L.hist.r1/tas (daily)"], summary.failed
    tot = _daily_values(store).sel(member="T.L.hist.r1", variable="tas")
    labels = [str(v) for v in tot["time"].values]
    for r in BOXES:
        want = _means_truth(x, region_cell_weights(GRID, r), lf)
        got = tot.sel(region=r).values[[labels.index(_label(d)) for d in dates]]
        np.testing.assert_allclose(got, want, rtol=1e-12)
    assert "land-weighted" in _store_info(store)
