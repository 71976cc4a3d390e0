"""Synthetic archive: ensemble structure, hand-computed planted truth, and the whole ingest
chain."""

import collections

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from gridflux.synthetic import archive as arch
from gridflux.synthetic.regions import REGIONS, Box, mask_array, region_weights

R = 6371007.181


def test_ensemble_structure_matches_the_paper():
    series = arch.archive_series("tiny")
    members = {}
    for s in series:
        members.setdefault(s.member, s)
    by_ens = collections.Counter(s.ensemble for s in members.values())
    process = [
        s
        for s in members.values()
        if s.ensemble
        in ("PCN-MIP", "MsTMIP", "LS3MIP", "ISIMIP2a", "ISIMIP2b", "ISIMIP3a", "ISIMIP3b")
    ]
    assert len(process) == 52
    assert (by_ens["PCN-MIP"], by_ens["MsTMIP"], by_ens["LS3MIP"]) == (10, 14, 9)
    assert (
        by_ens["ISIMIP2a"] + by_ens["ISIMIP2b"] == 14
        and by_ens["ISIMIP3a"] + by_ens["ISIMIP3b"] == 5
    )
    assert sum(s.layered_c for s in process) == 15
    assert sum(s.fire for s in process) == 26
    assert sum(s.layered_c and s.fire for s in process) == 14
    assert by_ens["GMB-wetland"] == 13 and by_ens["GCB"] == 7 and by_ens["GNB"] == 3
    gmb = [s for s in members.values() if s.ensemble == "GMB"]
    assert len(gmb) == 22 and len({s.group for s in gmb}) == 14
    assert [s.scale for s in members.values() if s.ensemble == "GNB"] == [1.0, 1.0, 15.0]
    # fire runs carry fFire
    assert all(
        ("fFire" in {x.variable for x in series if x.member == m.member}) == m.fire for m in process
    )
    # variety: every calendar and unit of the brief appears
    cals = {s.calendar for s in series}
    assert {
        "standard",
        "gregorian",
        "proleptic_gregorian",
        "julian",
        "noleap",
        "365_day",
        "360_day",
    } <= cals
    units = {s.units for s in series}
    assert {
        "kg m-2 s-1",
        "kg C m-2 s-1",
        "g m-2 day-1",
        "g C m-2 d-1",
        "mol m-2 s-1",
        "kg CH4 m-2 s-1",
        "kg N2O m-2 s-1",
        "g N m-2 month-1",
    } <= units
    assert {s.grid.kind for s in series} >= {"regular", "gaussian", "polecentred", "regional"}


def test_region_weights_closed_form_single_box():
    # a 2-degree global grid starting at 0 (0..360) and a box given in -180..180 across the grid's
    # 180 seam
    lat_b = np.column_stack([np.arange(-90, 90, 2.0), np.arange(-88, 92, 2.0)])
    lon_b = np.column_stack([np.arange(0, 360, 2.0), np.arange(2, 362, 2.0)])
    box = Box(60, 80, -170, -60, 0.35)
    w = region_weights(lat_b, lon_b, (box,))
    expected = 0.35 * R**2 * np.radians(110.0) * (np.sin(np.radians(80)) - np.sin(np.radians(60)))
    assert w.sum() == pytest.approx(expected, rel=1e-13)
    # half-covered cells: a box edge inside a cell
    w2 = region_weights(lat_b, lon_b, (Box(61, 63, 1, 3, 1.0),))
    assert w2.sum() == pytest.approx(
        R**2 * np.radians(2.0) * (np.sin(np.radians(63)) - np.sin(np.radians(61))), rel=1e-13
    )


def test_planted_truth_of_a_constant_field_by_hand(tmp_path, monkeypatch):
    c = -3.0e-9  # kg C m-2 s-1, canonical (positive to atmosphere)
    box = Box(60, 80, -170, -60, 0.35)
    monkeypatch.setattr(arch, "REGIONS", {"box": (box,)})
    monkeypatch.setattr(
        arch,
        "_canonical_field",
        lambda s, lat, lon, keys, rng: np.full((keys.size, lat.size, lon.size), c),
    )
    s = arch.SynthSeries(
        ensemble="E",
        source_id="M",
        experiment="x",
        member_id="r1",
        variable="npp",
        raw_name="NPP",
        raw_into_land=True,
        units="g C m-2 d-1",
        gas="CO2",
        grid=arch.GridSpec("regular", 2.0, 2.0, lon0=0.0, descending=True, write_bounds=False),
        calendar="noleap",
        layout="single",
        start_year=2001,
        n_years=1,
    )
    w = arch._write_series(str(tmp_path), s, 0, 0, {})
    got = {t[3]: t[4] for t in w.truths}
    days = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
    area = R**2 * np.radians(110.0) * (np.sin(np.radians(80)) - np.sin(np.radians(60)))
    for m, d in enumerate(days):
        assert got[f"2001-{m + 1:02d}"] == pytest.approx(
            c * 0.35 * area * d * 86400 / 1e9, rel=2e-7
        )
    # the file holds the inverse-converted numbers: -c in g C m-2 d-1, north to south
    ds = xr.open_dataset(w.files[0], decode_times=False)
    assert ds.lat.values[0] > ds.lat.values[-1]
    np.testing.assert_allclose(ds["NPP"].values, -c * 1e3 * 86400, rtol=1e-7)
    assert ds["NPP"].attrs["units"] == "g C m-2 d-1"


def test_mask_file(tmp_path):
    m, lat, lon = mask_array()
    assert m.shape == (3, 180, 360) and m.min() == 0.0 and m.max() == 1.0
    assert set(np.unique(m)) == {0.0, 0.35, 1.0}
    p = arch.write_mask(str(tmp_path / "regions.nc"))
    ds = xr.open_dataset(p)
    assert list(ds.region.values) == list(REGIONS) and ds["mask"].dtype == np.float64
    assert ds.lat_bnds.shape == (180, 2) and ds["mask"].dims == ("region", "lat", "lon")


@pytest.mark.slow
def test_tiny_archive_truth_through_the_ingest_chain(tmp_path):
    """Every series of the tiny archive, opened and normalized by gridflux, sums to the planted
    truth."""
    from gridflux.ingest.catalog import load_catalog, load_series

    info = arch.build_archive(tmp_path, "tiny", seed=3)
    assert info.seconds < 30 and info.n_series == len(load_catalog(info.catalog).series())
    truth = pd.read_csv(info.truth).set_index(["member", "variable", "region", "time"])["value"]
    worst = 0.0
    for rec in load_catalog(info.catalog).series():
        ds = load_series(rec)
        c = np.nan_to_num(ds[rec.variable].values.astype(np.float64))
        labels = [f"{t.year:04d}-{t.month:02d}" for t in ds.time.values]
        for reg, boxes in REGIONS.items():
            tot = np.einsum(
                "tij,ij->t", c, region_weights(ds.lat_bnds.values, ds.lon_bnds.values, boxes)
            )
            if ds[rec.variable].attrs["gridflux_kind"] == "flux":
                tot = tot * ds.seconds_in_month.values
            want = np.array([truth[(rec.member, rec.variable, reg, lab)] for lab in labels])
            worst = max(worst, float(np.max(np.abs(tot / 1e9 - want) / np.abs(want))))
    assert worst < 1e-7
