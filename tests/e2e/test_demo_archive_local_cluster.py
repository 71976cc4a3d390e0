"""The tiny synthetic archive through ``gridflux.pipeline.runner.run`` on a LocalCluster of 2 worker
processes.

Truths come from outside the pipeline: the planted totals written by the archive generator
(``truth.csv``), the generator's own series specification (``archive_series``: each series'
calendar, hence the seconds of each month), and closed-form spherical areas.
"""

from __future__ import annotations

import math

import cftime
import numpy as np
import pytest
import xarray as xr
import zarr

from gridflux.synthetic import archive_series

pytestmark = [pytest.mark.slow]

EARTH_RADIUS = 6371007.181  # m, gridflux.yaml earth-radius (the ESMF/CMIP value)


def _names(values) -> list[str]:
    """Coordinate labels as Python strings (zarr 3 returns numpy StringDType)."""
    return [str(v) for v in np.asarray(values).tolist()]


def _month_seconds(months: list[tuple[int, int]], calendar: str) -> np.ndarray:
    """Seconds of each (year, month) in ``calendar``, from cftime (independent of
    gridflux.fields.timeaxis)."""
    out = []
    for y, m in months:
        a = cftime.datetime(y, m, 1, calendar=calendar)
        b = cftime.datetime(y + m // 12, m % 12 + 1, 1, calendar=calendar)
        out.append((b - a).total_seconds())
    return np.asarray(out)


def test_every_series_matches_planted_truth(tiny_archive, reference_store):
    from gridflux.cli.demo import check_against_truth

    summary = reference_store.summary
    n_series = len(archive_series("tiny"))
    assert summary.failed == {}
    assert len(summary.done) == n_series == tiny_archive.n_series
    check = check_against_truth(reference_store.store, tiny_archive.truth, rtol=1e-10)
    assert check.missing == [] and check.mismatched == []
    assert check.n_series == n_series and check.n_match == n_series, str(check)
    assert check.worst_rel <= 1e-10


def test_regrid_mask_protocol_agrees_with_regrid_data(tiny_archive, reference_store, tmp_path):
    from gridflux.compute.clusters import make_cluster
    from gridflux.pipeline.runner import run

    store = str(tmp_path / "mask-protocol.zarr")
    with make_cluster("local", n_workers=2) as handle:
        summary = run(
            tiny_archive.catalog,
            tiny_archive.mask,
            store,
            client=handle.client,
            protocol="regrid-mask",
            cubes=False,
            progress=False,
        )
    assert summary.failed == {} and len(summary.done) == tiny_archive.n_series
    a = xr.open_zarr(reference_store.store)["totals"]
    b = xr.open_zarr(store)["totals"]
    assert _names(a["member"].values) == _names(b["member"].values)
    assert _names(a["variable"].values) == _names(b["variable"].values)
    np.testing.assert_array_equal(a["time"].values, b["time"].values)
    av, bv = a.values, b.values
    np.testing.assert_array_equal(np.isnan(av), np.isnan(bv))
    # relative to each series' largest monthly total (months near zero are compared on that scale)
    has = np.isfinite(av)
    scale = np.max(np.abs(np.where(has, av, 0.0)), axis=(2, 3), keepdims=True)
    rel = np.abs(av - bv)[has] / np.broadcast_to(scale, av.shape)[has]
    assert rel.max() <= 1e-12, rel.max()
    # a regrid-mask store has no cubes: only the totals and (for the mask) the grid group
    with pytest.raises((FileNotFoundError, KeyError, ValueError)):
        xr.open_zarr(store, group="cubes/npp")


def test_cubes_sum_back_to_totals(reference_store):
    """sum(cube x mask x cell area) [kg s-1] x seconds of the month = totals x 1e9 [kg], per
    series."""
    store = reference_store.store
    totals = xr.open_zarr(store)["totals"]
    members, variables = _names(totals["member"].values), _names(totals["variable"].values)
    kinds = dict(zip(variables, _names(totals["variable_kind"].values), strict=True))
    tot = totals.values
    months = [(int(str(t)[:4]), int(str(t)[5:7])) for t in totals["time"].values]
    grid = xr.open_zarr(store, group="grid").load()
    area_mask = (grid["mask"] * grid["cell_area"]).transpose("region", "lat", "lon").values  # m2
    calendars = {(s.member, s.variable): s.calendar for s in archive_series("tiny")}

    checked, worst = 0, 0.0
    for v, var in enumerate(variables):
        # the member's cube as stored (zarr directly: per-member xarray indexing costs seconds here)
        cube = zarr.open_array(f"{store}/cubes/{var}/{var}", mode="r")
        assert cube.dtype == np.float32 and cube.shape[0] == len(members)
        for m, member in enumerate(members):
            expected = tot[m, v]  # (region, time)
            if np.isnan(expected).all():
                assert np.isnan(cube[m, 0]).all()  # no series, no cube
                continue
            c = np.nan_to_num(cube[m].astype(np.float64))  # (time, lat, lon)
            kg = np.einsum("tij,rij->rt", c, area_mask)  # kg s-1 (flux) or kg (stock)
            if kinds[var] == "flux":
                kg = kg * _month_seconds(months, calendars[(member, var)])[None]
            has = np.isfinite(expected)
            rel = np.max(np.abs(kg[has] * 1e-9 - expected[has])) / np.max(np.abs(expected[has]))
            worst = max(worst, rel)
            checked += 1
            assert rel <= 1e-6, f"{member}/{var}: cube-derived totals differ by {rel:.2e} relative"
    assert checked == len(calendars)
    print(f"{checked} series: cubes reproduce the totals to {worst:.1e} relative (float32 cubes)")


def test_store_reopens_with_plain_xarray(tiny_archive, reference_store):
    store = reference_store.store
    root = xr.open_zarr(store)
    assert root["totals"].dims == ("member", "variable", "region", "time")
    assert root["totals"].dtype == np.float64
    assert "Tg" in root["totals"].attrs["units"]
    assert root["totals"].attrs["sign_convention"] == "fluxes positive to the atmosphere"
    assert _names(root["region"].values) == list(tiny_archive.regions)
    series = archive_series("tiny")
    assert sorted(_names(root["member"].values)) == sorted({s.member for s in series})
    assert sorted(_names(root["variable"].values)) == sorted({s.variable for s in series})
    ens = dict(zip(_names(root["member"].values), _names(root["ensemble"].values), strict=True))
    assert all(ens[s.member] == s.ensemble for s in series)
    first = min(12 * s.start_year for s in series)
    last = max(12 * (s.start_year + s.n_years) - 1 for s in series)
    assert root.sizes["time"] == last - first + 1
    assert str(root["time"].values[0])[:7] == f"{first // 12:04d}-01"

    grid = xr.open_zarr(store, group="grid").load()
    lat_b, lon_b = grid["lat_bnds"].values, grid["lon_bnds"].values
    np.testing.assert_allclose(np.diff(lat_b, axis=1), 0.5)
    np.testing.assert_allclose(np.diff(lon_b, axis=1), 0.5)
    # closed form: area of the clipped box = R^2 (lon span in rad) (sin north - sin south)
    south, north = lat_b[0, 0], lat_b[-1, 1]
    span = math.radians(lon_b[-1, 1] - lon_b[0, 0])
    box = EARTH_RADIUS**2 * span * (math.sin(math.radians(north)) - math.sin(math.radians(south)))
    assert float(grid["cell_area"].sum()) == pytest.approx(box, rel=1e-12)
    mask = grid["mask"].values
    assert mask.min() >= 0.0 and mask.max() <= 1.0 and mask.max() > 0.0
    assert _names(grid["region"].values) == list(tiny_archive.regions)

    kinds = dict(
        zip(_names(root["variable"].values), _names(root["variable_kind"].values), strict=True)
    )
    for var in _names(root["variable"].values):
        cube = xr.open_zarr(store, group=f"cubes/{var}")
        assert cube[var].dims == ("member", "time", "lat", "lon")
        assert cube[var].attrs["units"] == ("kg m-2" if kinds[var] == "stock" else "kg m-2 s-1")
        np.testing.assert_array_equal(cube["lat"].values, grid["lat"].values)
        np.testing.assert_array_equal(cube["lon"].values, grid["lon"].values)
        np.testing.assert_array_equal(cube["time"].values, root["time"].values)
