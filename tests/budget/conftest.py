"""A small hand-built store for the budget tests.

Every member's monthly totals are a constant per variable plus a seasonal sine whose 12 months sum
to zero, so a complete year's sum is exactly 12 x the constant (the closed form the tests use).
Traits mirror the real archive: process models with layered_c / fire, CH4 inversions in groups,
and one N2O inversion system far larger than the others.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

YEARS = (2000, 2001, 2002, 2003)
VARIABLES = ["gpp", "npp", "rh", "fFire", "cSoil", "cLitter", "fco2", "fch4", "fn2o"]
KINDS = ["flux", "flux", "flux", "flux", "stock", "stock", "flux", "flux", "flux"]
UNITS = ["Tg C", "Tg C", "Tg C", "Tg C", "Tg C", "Tg C", "Tg C", "Tg CH4-C", "Tg N2O-N"]
SEASON = np.sin(2 * np.pi * (np.arange(12) + 0.5) / 12)  # sums to 0 over a year

# (member, ensemble, group, layered_c, fire, {variable: monthly constant})
PROCESS = [
    (
        "pm0",
        "PCN-MIP",
        "",
        True,
        True,
        {"npp": -30.0, "rh": 20.0, "fFire": 4.0, "gpp": -60.0, "cSoil": 9000.0, "cLitter": 1000.0},
    ),
    (
        "pm1",
        "MsTMIP",
        "",
        True,
        False,
        {"npp": -25.0, "rh": 22.0, "gpp": -50.0, "cSoil": 8000.0, "cLitter": 500.0},
    ),
    (
        "pm2",
        "ISIMIP2a",
        "",
        False,
        True,
        {"npp": -40.0, "rh": 30.0, "fFire": 2.0, "gpp": -100.0, "cSoil": 12000.0, "cLitter": 600.0},
    ),
    (
        "pm3",
        "ISIMIP3b",
        "",
        False,
        True,
        {"npp": -20.0, "rh": 15.0, "fFire": 1.0, "gpp": -40.0, "cSoil": 6000.0, "cLitter": 300.0},
    ),
    (
        "pm4",
        "LS3MIP",
        "",
        True,
        True,
        {"npp": -35.0, "rh": 28.0, "fFire": 3.0, "gpp": -70.0, "cSoil": 10000.0, "cLitter": 800.0},
    ),
]
OTHER = [
    ("wet0", "GMB-wetland", "", False, False, {"fch4": 1.0}),
    ("wet1", "GMB-wetland", "", False, False, {"fch4": 1.5}),
    ("gcb0", "GCB-inversions", "", False, False, {"fco2": -40.0}),
    ("gcb1", "GCB-inversions", "", False, False, {"fco2": -50.0}),
    ("ch4a1", "GMB-inversions", "A", False, False, {"fch4": 1.0}),
    ("ch4a2", "GMB-inversions", "A", False, False, {"fch4": 2.0}),
    ("ch4b1", "GMB-inversions", "B", False, False, {"fch4": 3.0}),
    ("n2o0", "GNB-inversions", "", False, False, {"fn2o": 0.01}),
    ("n2o1", "GNB-inversions", "", False, False, {"fn2o": 0.02}),
    ("n2o2", "GNB-inversions", "", False, False, {"fn2o": 0.5}),  # > 10 x the others: excluded
]
MEMBERS = PROCESS + OTHER
#: ISIMIP forcings the recipe's process-model set accepts (GSWP3 for 2a, GFDL-ESM4 for 3b)
FORCING = {"ISIMIP2a": "GSWP3", "ISIMIP3b": "gfdl-esm4"}
#: the N2O system the recipe excludes by name
SOURCE_ID = {"n2o2": "MIROC4-N2O", "pm3": "jules"}


def make_totals(years=YEARS, regions=("permafrost", "tundra")) -> xr.DataArray:
    time = pd.date_range(f"{years[0]}-01-01", f"{years[-1]}-12-01", freq="MS")
    data = np.full((len(MEMBERS), len(VARIABLES), len(regions), time.size), np.nan)
    season = np.tile(SEASON, len(years))
    for i, (_, _, _, _, _, vals) in enumerate(MEMBERS):
        for v, c in vals.items():
            j = VARIABLES.index(v)
            amp = 0.3 * abs(c) if KINDS[j] == "flux" else 0.0
            for k, _ in enumerate(regions):
                data[i, j, k] = (c + amp * season) * (1.0 if k == 0 else 0.5)
    coords = {
        "member": [m[0] for m in MEMBERS],
        "variable": VARIABLES,
        "region": list(regions),
        "time": time,
        "ensemble": ("member", [m[1] for m in MEMBERS]),
        "group": ("member", [m[2] for m in MEMBERS]),
        "layered_c": ("member", np.array([m[3] for m in MEMBERS])),
        "fire": ("member", np.array([m[4] for m in MEMBERS])),
        "forcing": ("member", [FORCING.get(m[1], "") for m in MEMBERS]),
        "source_id": ("member", [SOURCE_ID.get(m[0], m[0]) for m in MEMBERS]),
        "gas": (
            "member",
            ["CH4" if "fch4" in m[5] else "N2O" if "fn2o" in m[5] else "CO2" for m in MEMBERS],
        ),
        "variable_kind": ("variable", KINDS),
        "variable_units": ("variable", UNITS),
    }
    return xr.DataArray(
        data, dims=("member", "variable", "region", "time"), coords=coords, name="totals"
    )


@pytest.fixture
def totals() -> xr.DataArray:
    return make_totals()


@pytest.fixture
def store_path(tmp_path) -> str:
    """The same totals written as a zarr store, with one small cube."""
    ds = make_totals().to_dataset()
    path = str(tmp_path / "store.zarr")
    ds.to_zarr(path, mode="w")
    lat = np.arange(60.25, 70, 0.5)
    lon = np.arange(-10.25, 10, 0.5)
    time = ds["time"].values[:12]
    rng = np.random.default_rng(1)
    cube = xr.DataArray(
        rng.normal(-1e-9, 5e-10, (2, 12, lat.size, lon.size)).astype("float32"),
        dims=("member", "time", "lat", "lon"),
        coords={"member": ["gcb0", "gcb1"], "time": time, "lat": lat, "lon": lon},
        name="fco2",
    )
    cube.to_dataset().to_zarr(path, group="cubes/fco2", mode="w")
    return path
