"""A synthetic RECCAP2-like archive with planted truths.

``build_archive(root, size)`` writes netCDF files laid out as the real archives are (CMIP6 DRS,
ISIMIP names, one file per year, single-file inversions), the intake-esm catalog (JSON + CSV), an
intake YAML of the inversion files, a region mask and ``truth.csv``: each series' monthly region
totals computed in closed form (see :mod:`gridflux.synthetic.regions`), independently of gridflux's
units, regrid and totals code (the conversions are a hand-written table below).

Ensembles (PAPER.md): 52 process-model runs (PCN-MIP 10, MsTMIP 14, LS3MIP 9, ISIMIP2a 7,
ISIMIP2b 7, ISIMIP3a 2, ISIMIP3b 3; 15 layered C, 26 fire, 14 both), CARDAMOM (one member written
as three quantile series p025/p50/p975), 13 GMB wetland CH4 models, 7 GCB CO2 inversions, 22 GMB CH4
inversion submissions from 14 groups, 3 GNB N2O inversions (one >10x the others).
"""

from __future__ import annotations

import csv
import os
import time as _time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import cftime
import numpy as np

from gridflux.fields.timeaxis import Month, key_label
from gridflux.synthetic.regions import R_EARTH, REGIONS, region_weights, write_latlon, write_mask

DAY = 86400.0
SIZES = ("tiny", "small", "paper")

# -- hand-written conversion table (file units -> canonical kg element m-2 s-1 / kg m-2) -----------
# (independent of gridflux.fields.units on purpose: the truth checks the converter)
_M_C, _M_N, _M_CH4, _M_N2O = 12.011, 14.007, 16.043, 44.013


def _file_factor(units: str, gas: str, mass_basis: str | None) -> tuple[float, bool]:
    """(scale, per_month): canonical = file * scale [/ seconds_in_month]."""
    table = {
        "kg m-2 s-1": 1.0,
        "kg C m-2 s-1": 1.0,
        "g C m-2 d-1": 1e-3 / DAY,
        "g m-2 day-1": 1e-3 / DAY,
        "kg CH4 m-2 s-1": _M_C / _M_CH4,
        "kg N2O m-2 s-1": 2 * _M_N / _M_N2O,
        "kg m-2": 1.0,
        "g C m-2": 1e-3,
    }
    if units == "mol m-2 s-1":
        return {"CO2": _M_C * 1e-3, "CH4": _M_C * 1e-3, "N2O": 2 * _M_N * 1e-3}[gas], False
    if units == "g N m-2 month-1":
        return 1e-3, True
    s = table[units]
    if mass_basis == "CH4" and units in ("kg m-2 s-1", "g m-2 day-1"):
        s *= _M_C / _M_CH4
    return s, False


# -- grids ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class GridSpec:
    """A source grid: how its centres/bounds are written, and its true bounds."""

    kind: str  # regular | gaussian | polecentred | regional
    dlat: float = 1.0
    dlon: float = 1.0
    lon0: float = -180.0  # western edge of the first column
    south: float = -90.0
    north: float = 90.0
    nlat: int = 0  # gaussian
    descending: bool = False
    write_bounds: bool = True

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """True (lat_bounds ascending, lon_bounds) in degrees."""
        if self.kind == "gaussian":
            x, w = np.polynomial.legendre.leggauss(self.nlat)
            edges = np.degrees(
                np.arcsin(np.clip(np.concatenate([[-1.0], -1.0 + np.cumsum(w)]), -1, 1))
            )
            edges[-1] = 90.0
            nlon = 2 * self.nlat
            dl = 360.0 / nlon
            lon_e = self.lon0 + dl * np.arange(nlon + 1)
        elif self.kind == "polecentred":
            n = int(round(180.0 / self.dlat))
            centres = -90.0 + self.dlat * np.arange(n + 1)
            edges = np.concatenate([[-90.0], 0.5 * (centres[1:] + centres[:-1]), [90.0]])
            nlon = int(round(360.0 / self.dlon))
            lon_e = self.lon0 + self.dlon * np.arange(nlon + 1)
        else:
            n = int(round((self.north - self.south) / self.dlat))
            edges = self.south + self.dlat * np.arange(n + 1)
            nlon = int(round(360.0 / self.dlon))
            lon_e = self.lon0 + self.dlon * np.arange(nlon + 1)
        return np.column_stack([edges[:-1], edges[1:]]), np.column_stack([lon_e[:-1], lon_e[1:]])

    def centres(self) -> tuple[np.ndarray, np.ndarray]:
        """Centres as written in the file (ascending; the writer reverses if descending)."""
        lb, ob = self.bounds()
        if self.kind == "gaussian":
            x, _ = np.polynomial.legendre.leggauss(self.nlat)
            lat = np.degrees(np.arcsin(x))
        elif self.kind == "polecentred":
            lat = -90.0 + self.dlat * np.arange(lb.shape[0])
        else:
            lat = lb.mean(axis=1)
        return lat, ob.mean(axis=1)


# -- members -------------------------------------------------------------------------------
@dataclass
class SynthSeries:
    """One synthetic series: a member's variable and how it is written."""

    ensemble: str
    source_id: str
    experiment: str
    member_id: str
    variable: str  # canonical
    raw_name: str
    raw_into_land: bool  # the file's sign convention
    units: str
    gas: str
    grid: GridSpec
    calendar: str
    layout: str  # cmip6 | isimip | yearly | single
    start_year: int
    n_years: int
    time_style: str = "days"  # days | hours | months
    stamp: str = "mid"  # start | mid | end | next (next-month 00:00 with time_bnds)
    time_bnds: bool = False
    split_months: tuple[int, ...] = ()  # month offsets where a new file starts
    per_land: bool = False
    mass_basis: str | None = None
    group: str = ""
    forcing: str = ""
    layered_c: bool | None = None
    fire: bool | None = None
    scale: float = 1.0  # outlier multiplier
    missing: bool = False
    into_land_column: bool | None = None  # catalog override of the sign convention
    extra: dict[str, Any] = field(default_factory=dict)
    institution: str = "INST"
    isimip_head: str = ""

    @property
    def member(self) -> str:
        return ".".join([self.ensemble, self.source_id, self.experiment, self.member_id])

    @property
    def key(self) -> str:
        return f"{self.member}.{self.variable}"


_KIND = {"cSoil": "stock", "cVeg": "stock", "cLitter": "stock"}
_ELEMENT = {"fn2o": "N"}
# typical magnitudes of canonical fields (kg element m-2 s-1, stocks kg m-2), signed to the
# atmosphere, chosen so that the ensemble means of the permafrost region's annual totals are close
# to Hugelius et al. (2024): NPP ~ -2000, SHR ~ 1550, fire ~ 130 Tg C/yr (NEP ~ -450, NBP of the
# fire runs ~ -320; Table 2: -450, -350, 130), CARDAMOM NBP ~ -870 (-1780, 160), wetland CH4
# ~ 12 and inversion CH4 ~ 15 Tg CH4-C/yr (x 1.25 per member, below), inversion CO2 ~ -590 Tg
# CO2-C/yr, inversion N2O ~ 0.1 Tg N2O-N/yr (Tables 2 and 5); checked by
# tests/budget/test_demo_magnitudes.py within a factor 1.5.
_AMP = {
    "gpp": -6.2e-9,
    "npp": -3.11e-9,
    "ra": 3.11e-9,
    "rh": 2.41e-9,
    "fFire": 1.98e-10,
    "nbp": -1.17e-9,
    "nep": -0.7e-9,
    "nee": -0.7e-9,
    "fco2": -0.87e-9,
    "fch4": 1.79e-11,
    "fn2o": 1.5e-13,
    "cSoil": 10.0,
    "cVeg": 5.0,
    "cLitter": 1.0,
}
#: per-ensemble multipliers of _AMP (the CH4 inversions see more CH4 than the wetland models)
_ENSEMBLE_SCALE = {"GMB": 1.25}
_CMIP_RAW = {
    "nbp": "nbp",
    "npp": "npp",
    "gpp": "gpp",
    "ra": "ra",
    "rh": "rh",
    "fFire": "fFire",
    "cSoil": "cSoil",
    "cVeg": "cVeg",
    "cLitter": "cLitter",
}
_INTO_LAND = {"gpp", "npp", "nbp", "nep"}
_PCN_RAW = {
    "npp": "NPP",
    "rh": "HR",
    "fFire": "Fire",
    "gpp": "GPP",
    "ra": "AR",
    "nbp": "NBP",
    "cSoil": "SoilC",
    "cVeg": "VegC",
    "cLitter": "LitterC",
}

PROCESS_ENSEMBLES: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "PCN-MIP",
        (
            "CLM45",
            "CoLM",
            "JULES",
            "LPJ-GUESS",
            "ORCHIDEE-MICT",
            "UVic",
            "UW-VIC",
            "TEM6",
            "TEM",
            "SiBCASA",
        ),
    ),
    (
        "MsTMIP",
        (
            "BIOME-BGC",
            "CLASS-CTEM-N",
            "CLM4",
            "CLM4VIC",
            "DLEM",
            "GTEC",
            "ISAM",
            "LPJ-wsl",
            "ORCHIDEE-LSCE",
            "SiB3",
            "SiBCASA",
            "TEM6",
            "TRIPLEX-GHG",
            "VISIT",
        ),
    ),
    (
        "LS3MIP",
        (
            "CESM2",
            "CNRM-ESM2-1",
            "EC-Earth3-Veg",
            "IPSL-CM6A-LR",
            "MIROC6",
            "MPI-ESM1-2-LR",
            "UKESM1-0-LL",
            "CMCC-ESM2",
            "NorESM2-LM",
        ),
    ),
    ("ISIMIP2a", ("caraib", "dlem", "lpj-guess", "lpjml", "orchidee", "visit", "jules")),
    ("ISIMIP2b", ("caraib", "clm45", "dlem", "lpj-guess", "lpjml", "orchidee", "visit")),
    ("ISIMIP3a", ("jsbach-dry", "elm-eca")),
    ("ISIMIP3b", ("jules", "orchidee-mict", "jsbach-wet")),
)
CH4_GROUPS: tuple[tuple[str, int], ...] = (
    ("CAMS", 2),
    ("CTE-CH4", 2),
    ("GELCA", 1),
    ("GEOS-Chem", 2),
    ("LMDz-PYVAR", 2),
    ("MIROC4-ACTM", 1),
    ("NICAM-TM", 1),
    ("NIES-TM-FLEXPART", 2),
    ("TM5-CAMS", 2),
    ("TM5-mean", 1),
    ("TOMCAT", 2),
    ("CarbonTracker-CH4", 1),
    ("MIROC5-ACTM", 2),
    ("GEOS-CHEM-UoL", 1),
)


def _res(size: str, tiny: float, small: float, paper: float) -> float:
    return {"tiny": tiny, "small": small, "paper": paper}[size]


# -- sizes (data): what each size writes --------------------------------------------------
# tiny: seconds, CI and `gridflux demo` (~0.08 GB deflated). small: realistic-but-laptop (~0.5 GB,
# written in well under a minute): every ensemble and member, 3 years (2000-2002), process models at
# 1-2 degrees, the LS3MIP models on CMIP-like grids. paper: real resolutions (0.5 degree process
# models) and real spans (1901-2020 process models, 1901-2014 LS3MIP, 2000-2020 inversions).
#: years written per size (paper spans are set per ensemble in :func:`archive_series`).
_YEARS: dict[str, int] = {"tiny": 2, "small": 3, "paper": 0}
#: process-model variables per size (+ fFire for the fire-enabled runs).
_PROCESS_VARIABLES: dict[str, tuple[str, ...]] = {
    "tiny": ("npp", "rh"),
    "small": ("npp", "rh"),
    "paper": ("gpp", "npp", "ra", "rh", "cSoil"),  # the paper's budget variables
}
#: grid spacing (degrees) of the regular-grid process ensembles per size.
_PROCESS_RES: dict[str, dict[str, float]] = {
    "tiny": {
        "PCN-MIP": 4.0,
        "MsTMIP": 5.0,
        "ISIMIP2a": 3.0,
        "ISIMIP2b": 3.0,
        "ISIMIP3a": 3.0,
        "ISIMIP3b": 3.0,
    },
    "small": {
        "PCN-MIP": 1.0,
        "MsTMIP": 2.0,
        "ISIMIP2a": 2.0,
        "ISIMIP2b": 2.0,
        "ISIMIP3a": 1.0,
        "ISIMIP3b": 1.0,
    },
    "paper": {
        "PCN-MIP": 0.5,
        "MsTMIP": 0.5,
        "ISIMIP2a": 0.5,
        "ISIMIP2b": 0.5,
        "ISIMIP3a": 0.5,
        "ISIMIP3b": 0.5,
    },
}


def process_traits(seed: int) -> list[tuple[bool, bool]]:
    """(layered_c, fire) of the 52 process-model runs: 15 layered, 26 fire, 14 both."""
    flags = [(True, True)] * 14 + [(True, False)] * 1 + [(False, True)] * 12 + [(False, False)] * 25
    rng = np.random.default_rng(1000 + seed)
    order = rng.permutation(len(flags))
    return [flags[i] for i in order]


def archive_series(size: str = "tiny", seed: int = 0) -> list[SynthSeries]:
    """The synthetic ensemble, as a list of series."""
    if size not in SIZES:
        raise ValueError(f"size {size!r}; expected one of {SIZES}")
    out: list[SynthSeries] = []
    traits = process_traits(seed)
    y0 = 2000
    ny = _YEARS[size]
    pvars = list(_PROCESS_VARIABLES[size])
    k = 0
    for ens, models in PROCESS_ENSEMBLES:
        for j, model in enumerate(models):
            layered, fire = traits[k]
            k += 1
            variables = pvars + (["fFire"] if fire else [])
            py0, pny = (1901, 120) if size == "paper" else (y0, ny)
            base = dict(ensemble=ens, source_id=model, layered_c=layered, fire=fire)
            for v in variables:
                kind = _KIND.get(v, "flux")
                d = _PROCESS_RES[size].get(ens, 0.0)
                if ens == "PCN-MIP":
                    s = SynthSeries(
                        **base,
                        experiment="S3",
                        member_id="r1",
                        variable=v,
                        raw_name=_PCN_RAW[v],
                        raw_into_land=v in _INTO_LAND,
                        units="g C m-2 d-1" if kind == "flux" else "g C m-2",
                        gas="CO2",
                        grid=GridSpec("regular", d, d, descending=True, write_bounds=False),
                        calendar="noleap",
                        layout="yearly",
                        start_year=py0,
                        n_years=pny,
                        time_style="days",
                        stamp="mid",
                        missing=(j % 3 == 0),
                    )
                elif ens == "MsTMIP":
                    s = SynthSeries(
                        **base,
                        experiment="BG1",
                        member_id="r1",
                        variable=v,
                        raw_name=_PCN_RAW[v],
                        raw_into_land=v in _INTO_LAND,
                        units=("kg C m-2 s-1" if j % 2 else "g m-2 day-1")
                        if kind == "flux"
                        else "kg m-2",
                        gas="CO2",
                        grid=GridSpec("regular", d, d, write_bounds=True),
                        calendar="365_day",
                        layout="single",
                        start_year=py0,
                        n_years=min(pny, 110),
                        time_style="months",
                        stamp="start",
                        missing=True,
                    )
                elif ens == "LS3MIP":
                    grids_ = [
                        GridSpec(
                            "gaussian",
                            nlat=int(_res(size, 24, 48, 96)),
                            lon0=0.0 - 180.0 / _res(size, 48, 96, 192),
                        ),
                        GridSpec(
                            "polecentred",
                            _res(size, 4.0, 1.875, 0.9375),
                            _res(size, 5.0, 2.5, 1.25),
                            lon0=-_res(size, 2.5, 1.25, 0.625),
                        ),
                        GridSpec(
                            "regular",
                            _res(size, 5.0, 2.5, 1.25),
                            _res(size, 7.5, 3.75, 1.875),
                            lon0=0.0,
                        ),
                    ]
                    cals = [
                        "noleap",
                        "standard",
                        "proleptic_gregorian",
                        "360_day",
                        "gregorian",
                        "julian",
                        "proleptic_gregorian",
                        "365_day",
                        "360_day",
                    ]
                    g = grids_[j % 3]
                    if j == 4:
                        g = GridSpec(
                            g.kind, g.dlat, g.dlon, g.lon0, nlat=g.nlat, write_bounds=False
                        )
                    cy0, cny = (1901, 114) if size == "paper" else (y0, ny)
                    s = SynthSeries(
                        **base,
                        experiment="land-hist",
                        member_id="r1i1p1f1",
                        variable=v,
                        raw_name=_CMIP_RAW[v],
                        raw_into_land=v in _INTO_LAND,
                        units="kg m-2 s-1" if kind == "flux" else "kg m-2",
                        gas="CO2",
                        grid=g,
                        calendar=cals[j],
                        layout="cmip6",
                        start_year=cy0,
                        n_years=cny,
                        time_style="days",
                        stamp="mid",
                        time_bnds=True,
                        split_months=(6, 12 * max(cny // 2, 1)),
                        per_land=True,
                        institution=f"INST{j}",
                    )
                else:  # ISIMIP
                    if ens == "ISIMIP2a":
                        head, cal, ts = (
                            f"{model}_gswp3_nobc_hist_varsoc_co2",
                            "proleptic_gregorian",
                            "days",
                        )
                        forcing, exp, mem = "gswp3", "hist", "varsoc_co2"
                    elif ens == "ISIMIP2b":
                        head, cal, ts = (
                            f"{model}_ipsl-cm5a-lr_ewembi_historical_histsoc_co2",
                            "365_day",
                            "days",
                        )
                        forcing, exp, mem = "ipsl-cm5a-lr", "historical", "histsoc_co2"
                    elif ens == "ISIMIP3a":
                        head, cal, ts = (
                            f"{model}_gswp3-w5e5_obsclim_histsoc_default",
                            "standard",
                            "months",
                        )
                        forcing, exp, mem = "gswp3-w5e5", "obsclim", "histsoc_default"
                    else:
                        head, cal, ts = (
                            f"{model}_gfdl-esm4_w5e5_historical_histsoc_default",
                            "proleptic_gregorian",
                            "months",
                        )
                        forcing, exp, mem = "gfdl-esm4", "historical", "histsoc_default"
                    s = SynthSeries(
                        **base,
                        experiment=exp,
                        member_id=mem,
                        variable=v,
                        raw_name=v,
                        raw_into_land=v in _INTO_LAND,
                        units="kg m-2 s-1" if kind == "flux" else "kg m-2",
                        gas="CO2",
                        grid=GridSpec("regular", d, d, descending=True, write_bounds=False),
                        calendar=cal,
                        layout="isimip",
                        start_year=py0,
                        n_years=pny,
                        time_style=ts,
                        stamp="start",
                        forcing=forcing,
                        isimip_head=head,
                        missing=(j % 2 == 1),
                    )
                out.append(s)
    # CARDAMOM: one member, per-pixel quantiles as three series
    cy0, cny = (2001, 19) if size == "paper" else (y0 + 1, ny)
    # the 2.5 % layer is the median minus 1.05 x the spread, the 97.5 % layer plus 1.18 x (so in
    # Tg/yr about -870 (-1780, 160) as the paper's Table 2, whose interval is skewed)
    for q, mid in (("p025", -1.05), ("p50", 0.0), ("p975", 1.18)):
        out.append(
            SynthSeries(
                ensemble="CARDAMOM",
                source_id="CARDAMOM",
                experiment="historical",
                member_id=q,
                variable="nbp",
                raw_name=f"NBE_{q}",
                raw_into_land=False,
                into_land_column=False,
                units="g C m-2 d-1",
                gas="CO2",
                grid=GridSpec(
                    "regional",
                    _res(size, 2.0, 1.0, 0.5),
                    _res(size, 2.0, 1.0, 0.5),
                    south=30.0,
                    north=90.0,
                ),
                calendar="julian",
                layout="single",
                start_year=cy0,
                n_years=cny,
                time_style="days",
                stamp="mid",
                scale=mid,
                extra={"quantile": q},
            )
        )
    # GMB wetland CH4 (13)
    wy0, wny = (2000, 18) if size == "paper" else (y0, ny)
    wunits = [
        ("mol m-2 s-1", None),
        ("kg CH4 m-2 s-1", None),
        ("kg m-2 s-1", "CH4"),
        ("g m-2 day-1", "CH4"),
    ]
    for j in range(13):
        u, mb = wunits[j % 4]
        d = _res(size, 3.0, 2.0, 0.5)
        out.append(
            SynthSeries(
                ensemble="GMB-wetland",
                source_id=f"WET{j + 1:02d}",
                experiment="wad2m",
                member_id="r1",
                variable="fch4",
                raw_name="wetCH4",
                raw_into_land=False,
                units=u,
                mass_basis=mb,
                gas="CH4",
                grid=GridSpec(
                    "regular",
                    d,
                    d,
                    lon0=(0.0 if j % 2 else -180.0),
                    descending=(j % 3 == 0),
                    write_bounds=(j % 2 == 0),
                ),
                calendar=["standard", "gregorian", "noleap"][j % 3],
                layout="single",
                start_year=wy0,
                n_years=wny,
                time_style="hours",
                stamp=["end", "next", "mid"][j % 3],
                time_bnds=(j % 3 == 1),
            )
        )
    iy0, iny = (2000, 21) if size == "paper" else (y0, ny)
    inv_grids = [
        GridSpec("polecentred", 4.0, 5.0, lon0=-182.5, write_bounds=False),
        GridSpec("regular", 2.0, 3.0, lon0=0.0),
        GridSpec(
            "regular",
            _res(size, 2.0, 1.0, 1.0),
            _res(size, 2.0, 1.0, 1.0),
            lon0=-180.0,
            descending=True,
        ),
        GridSpec("regular", 3.0, 3.75, lon0=-1.875),
    ]
    # GCB CO2 inversions (7)
    cunits = ["mol m-2 s-1", "kg C m-2 s-1", "g C m-2 d-1"]
    for j, name in enumerate(
        ("CAMS", "CarbonTracker", "CMS-Flux", "Jena-CarboScope", "MIROC4-ACTM", "NISMON-CO2", "UoE")
    ):
        out.append(
            SynthSeries(
                ensemble="GCB",
                source_id=name,
                experiment="GCB2021",
                member_id="r1",
                variable="fco2",
                raw_name="land_flux",
                raw_into_land=False,
                units=cunits[j % 3],
                gas="CO2",
                grid=inv_grids[j % 4],
                calendar=["standard", "proleptic_gregorian", "gregorian", "noleap"][j % 4],
                layout="single",
                start_year=iy0,
                n_years=iny,
                time_style="days",
                stamp=["mid", "start"][j % 2],
                extra={"extra_member": j == 6},
            )
        )
    # GMB CH4 inversions: 22 submissions from 14 groups
    munits = [("kg CH4 m-2 s-1", None), ("mol m-2 s-1", None), ("kg m-2 s-1", "CH4")]
    n = 0
    for g, nsub in CH4_GROUPS:
        for s_ in range(nsub):
            u, mb = munits[n % 3]
            out.append(
                SynthSeries(
                    ensemble="GMB",
                    source_id=g,
                    experiment="GMB2020",
                    member_id=["surface", "GOSAT"][s_],
                    variable="fch4",
                    raw_name="ch4flux",
                    raw_into_land=False,
                    units=u,
                    mass_basis=mb,
                    gas="CH4",
                    group=g,
                    grid=inv_grids[n % 4],
                    calendar=["standard", "noleap", "proleptic_gregorian"][n % 3],
                    layout="single",
                    start_year=iy0,
                    n_years=min(iny, 18),
                    time_style="hours",
                    stamp=["mid", "end", "start"][n % 3],
                )
            )
            n += 1
    # GNB N2O inversions (3; the third is an outlier, >10x)
    nunits = ["kg N2O m-2 s-1", "g N m-2 month-1", "mol m-2 s-1"]
    for j, name in enumerate(("INVICAT", "GEOSChem-N2O", "MIROC4-N2O")):
        out.append(
            SynthSeries(
                ensemble="GNB",
                source_id=name,
                experiment="GNB2021",
                member_id="r1",
                variable="fn2o",
                raw_name="n2oflux",
                raw_into_land=False,
                units=nunits[j],
                gas="N2O",
                grid=inv_grids[j % 4],
                calendar=["standard", "360_day", "julian"][j],
                layout="single",
                start_year=iy0,
                n_years=min(iny, 20),
                time_style="days",
                stamp="mid",
                scale=(15.0 if j == 2 else 1.0),
            )
        )
    return out


# -- fields ---------------------------------------------------------------------------------
def _month_keys(s: SynthSeries) -> np.ndarray:
    return Month(s.start_year, 1).key + np.arange(12 * s.n_years)


def _secs(keys: np.ndarray, calendar: str) -> np.ndarray:
    out = np.empty(keys.size)
    for i, k in enumerate(keys):
        a = cftime.datetime(int(k) // 12, int(k) % 12 + 1, 1, calendar=calendar)
        b = cftime.datetime((int(k) + 1) // 12, (int(k) + 1) % 12 + 1, 1, calendar=calendar)
        out[i] = (b - a).total_seconds()
    return out


#: seasonal shape per variable: (kind, phase month (0 = January), amplitude or width). The
#: shapes average to 1 over a year, so an annual total is the amplitude's annual mean:
#: ``cos``: 1 + a cos(2 pi (m - phase) / 12) (a > 1 changes sign: a net flux that is a sink in
#: summer and a source in winter, as NBP, NEE and the inversions' land CO2 flux);
#: ``pulse``: a Gaussian growing-season pulse of width w months, ~0 in winter (NPP, GPP, fire).
_SEASON: dict[str, tuple[str, float, float]] = {
    "gpp": ("pulse", 6.0, 1.6),
    "npp": ("pulse", 6.0, 1.6),
    "ra": ("cos", 6.0, 0.9),
    "rh": ("cos", 6.5, 0.8),
    "fFire": ("pulse", 6.5, 1.0),
    "nbp": ("cos", 6.0, 3.0),
    "nep": ("cos", 6.0, 3.0),
    "nee": ("cos", 6.0, 3.0),
    "fco2": ("cos", 6.0, 3.0),
    "fch4": ("cos", 7.0, 0.9),
    "fn2o": ("cos", 6.5, 0.6),
}


def seasonal_shape(variable: str, month: np.ndarray) -> np.ndarray:
    """The seasonal factor of ``variable`` for months 0-11 (mean 1 over a year; stocks ~1)."""
    kind, phase, a = _SEASON.get(variable, ("cos", 6.0, 0.03))
    m = np.asarray(month, dtype=float)
    if kind == "cos":
        return 1.0 + a * np.cos(2 * np.pi * (m - phase) / 12.0)
    d = (m - phase + 6.0) % 12.0 - 6.0
    g = np.exp(-0.5 * (d / a) ** 2)
    full = np.exp(-0.5 * (((np.arange(12) - phase + 6.0) % 12.0 - 6.0) / a) ** 2)
    return g / full.mean()


def _canonical_field(
    s: SynthSeries, lat: np.ndarray, lon: np.ndarray, keys: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """A designed canonical field (time, lat, lon) float64 with spatial and seasonal structure.

    Quantile-layer members (``extra['quantile']``: CARDAMOM's p025 / p50 / p975) share one median
    field and add ``scale`` times a positive spread field, so that in every cell and month the
    2.5 % layer <= the median <= the 97.5 % layer.
    """
    la, lo = np.meshgrid(np.radians(lat), np.radians(lon), indexing="ij")
    month = keys % 12
    year = keys // 12 - keys[0] // 12
    seas = (
        seasonal_shape(s.variable, month)
        if _KIND.get(s.variable) != "stock"
        else (1.0 + 0.05 * np.cos(2 * np.pi * (month - 6) / 12.0))
    )
    trend = 1.0 + 0.01 * year
    if "quantile" in s.extra:
        qrng = np.random.default_rng(4242)  # the same median field for every layer
        spatial = (0.4 + qrng.random(la.shape)) * (1.0 + 0.5 * np.cos(la))
        median = _AMP[s.variable] * spatial[None] * (seas * trend)[:, None, None]
        spread = abs(_AMP[s.variable]) * spatial[None] * np.ones((keys.size, 1, 1))
        return median + s.scale * spread
    amp = _AMP[s.variable] * s.scale * _ENSEMBLE_SCALE.get(s.ensemble, 1.0)
    spatial = (
        (0.4 + rng.random(la.shape)) * (1.0 + 0.5 * np.cos(la)) * (1.0 + 0.3 * np.sin(lo + 0.7))
    )
    return amp * spatial[None] * (seas * trend)[:, None, None]


@dataclass
class _Written:
    series: SynthSeries
    rows: list[dict[str, Any]]
    truths: list[tuple[str, str, str, float, str]]
    files: list[str]


def _time_values(s: SynthSeries, keys: np.ndarray) -> tuple[np.ndarray, str, np.ndarray | None]:
    cal = s.calendar
    ref_y = (
        keys[0] // 12
        if s.layout == "yearly"
        else (1661 if s.layout == "isimip" and s.time_style == "days" else 1850)
    )
    if s.time_style == "months":
        ref = 1601 if s.layout == "isimip" else 1901
        units = f"months since {ref}-01-01"
        off = keys - 12 * ref
        vals = off + (0.5 if s.stamp == "mid" else 0.0)
        return vals.astype(np.float64), units, None
    unit = "hours" if s.time_style == "hours" else "days"
    units = f"{unit} since {ref_y}-01-01 00:00:00"
    starts = [cftime.datetime(int(k) // 12, int(k) % 12 + 1, 1, calendar=cal) for k in keys]
    nexts = [cftime.datetime(int(k + 1) // 12, int(k + 1) % 12 + 1, 1, calendar=cal) for k in keys]
    if s.stamp == "start":
        stamps = starts
    elif s.stamp == "mid":
        stamps = [a + (b - a) / 2 for a, b in zip(starts, nexts, strict=True)]
    elif s.stamp == "end":
        stamps = [
            b - (b - a) / 48 for a, b in zip(starts, nexts, strict=True)
        ]  # late on the last day
    else:  # "next": the first instant of the next month, with bounds
        stamps = nexts
    vals = np.asarray(cftime.date2num(stamps, units, calendar=cal), dtype=np.float64)
    bnds = None
    if s.time_bnds or s.stamp == "next":
        bnds = np.column_stack(
            [
                cftime.date2num(starts, units, calendar=cal),
                cftime.date2num(nexts, units, calendar=cal),
            ]
        )
    return vals, units, bnds


def _write_nc(
    path: str,
    s: SynthSeries,
    lat: np.ndarray,
    lon: np.ndarray,
    lat_b: np.ndarray,
    lon_b: np.ndarray,
    tvals: np.ndarray,
    tunits: str,
    tbnds: np.ndarray | None,
    data: np.ndarray,
) -> None:
    import netCDF4

    os.makedirs(os.path.dirname(path), exist_ok=True)
    with netCDF4.Dataset(path, "w", format="NETCDF4") as nc:
        nc.createDimension("time", None)
        nc.createDimension("lat", lat.size)
        nc.createDimension("lon", lon.size)
        tv = nc.createVariable("time", "f8", ("time",))
        tv[:] = tvals
        tv.setncatts(
            {"units": tunits, "calendar": s.calendar, "standard_name": "time", "axis": "T"}
        )
        if tbnds is not None:
            nc.createDimension("bnds", 2)
            tv.bounds = "time_bnds"
            nc.createVariable("time_bnds", "f8", ("time", "bnds"))[:] = tbnds
        write_latlon(nc, lat, lon, *((lat_b, lon_b) if s.grid.write_bounds else ()))
        v = nc.createVariable(
            s.raw_name,
            "f4",
            ("time", "lat", "lon"),
            fill_value=np.float32(1e20),
            chunksizes=(1, lat.size, lon.size),
            zlib=True,
            complevel=1,
            shuffle=True,
        )  # as CMOR
        v.set_auto_maskandscale(False)
        v[:] = np.where(np.isfinite(data), data, np.float32(1e20)).astype(np.float32)
        atts = {"units": s.units, "missing_value": np.float32(1e20)}
        if s.per_land:
            atts["cell_methods"] = "area: mean where land time: mean"
        v.setncatts(atts)
        nc.setncatts({"source": f"gridflux synthetic archive: {s.key}", "Conventions": "CF-1.8"})


def _write_sftlf(path: str, s: SynthSeries, lat, lon, lat_b, lon_b, sftlf_pct: np.ndarray) -> None:
    import netCDF4

    os.makedirs(os.path.dirname(path), exist_ok=True)
    with netCDF4.Dataset(path, "w") as nc:
        nc.createDimension("lat", lat.size)
        nc.createDimension("lon", lon.size)
        write_latlon(nc, lat, lon, lat_b, lon_b)
        v = nc.createVariable("sftlf", "f4", ("lat", "lon"))
        v[:] = sftlf_pct
        v.setncatts({"units": "%", "standard_name": "land_area_fraction"})


def _series_paths(root: str, s: SynthSeries, keys: np.ndarray) -> list[tuple[str, slice]]:
    """(path, time slice) of each file of a series."""
    n = keys.size
    if s.layout == "yearly":
        out = []
        for y in range(s.n_years):
            yr = s.start_year + y
            p = os.path.join(
                root,
                s.ensemble,
                s.source_id,
                s.experiment,
                s.raw_name,
                f"{s.source_id}_{s.experiment}_{s.raw_name}_{yr}.nc",
            )
            out.append((p, slice(12 * y, 12 * y + 12)))
        return out
    if s.layout == "cmip6":
        cuts = sorted({0, n, *[c for c in s.split_months if 0 < c < n]})
        out = []
        for a, b in zip(cuts[:-1], cuts[1:], strict=True):
            ka, kb = keys[a], keys[b - 1]
            tr = f"{ka // 12:04d}{ka % 12 + 1:02d}-{kb // 12:04d}{kb % 12 + 1:02d}"
            d = os.path.join(
                root,
                "CMIP6",
                s.ensemble,
                s.institution,
                s.source_id,
                s.experiment,
                s.member_id,
                "Lmon",
                s.raw_name,
                "gn",
                "v20190815",
            )
            out.append(
                (
                    os.path.join(
                        d,
                        f"{s.raw_name}_Lmon_{s.source_id}_{s.experiment}_{s.member_id}_gn_{tr}.nc",
                    ),
                    slice(a, b),
                )
            )
        return out
    if s.layout == "isimip":
        d = os.path.join(root, s.ensemble, "OutputData", "biomes", s.source_id, s.forcing)
        return [
            (
                os.path.join(
                    d,
                    f"{s.isimip_head}_{s.raw_name}_global_monthly_{s.start_year}_"
                    f"{s.start_year + s.n_years - 1}.nc4",
                ),
                slice(0, n),
            )
        ]
    grp = f"{s.group}/" if s.group else ""
    years = f"{s.start_year}-{s.start_year + s.n_years - 1}"
    name = f"{s.source_id}_{s.experiment}_{s.member_id}_{s.raw_name}_{years}.nc"
    return [(os.path.join(root, s.ensemble, grp + s.source_id, name), slice(0, n))]


def _write_series(root: str, s: SynthSeries, idx: int, seed: int, weights_cache: dict) -> _Written:
    rng = np.random.default_rng([seed, idx])
    lat_b, lon_b = s.grid.bounds()
    lat_c, lon_c = s.grid.centres()
    keys = _month_keys(s)
    secs = _secs(keys, s.calendar)
    g = _canonical_field(s, lat_c, lon_c, keys, rng)
    if s.missing:  # an "ocean" patch of missing cells
        la, lo = np.meshgrid(lat_c, lon_c, indexing="ij")
        ocean = (la < 0) & (lo % 360 > 160) & (lo % 360 < 280) | (
            (la > 62) & (la < 66) & (lo % 360 > 300)
        )
        g[:, ocean] = np.nan
    scale, per_month = _file_factor(s.units, s.gas, s.mass_basis)
    sign = -1.0 if s.raw_into_land else 1.0
    conv = sign * scale * ((1.0 / secs)[:, None, None] if per_month else 1.0)
    file_vals = (g / conv).astype(np.float32)
    canon = file_vals.astype(np.float64) * conv
    sftlf_pct = None
    if s.per_land:
        la, lo = np.meshgrid(lat_c, lon_c, indexing="ij")
        frac = np.clip(
            0.5 + 0.5 * np.sin(np.radians(lo) * 2) * np.cos(np.radians(la) * 3) + 0.3 * (la > 55),
            0,
            1,
        )
        sftlf_pct = np.round(100.0 * frac, 2).astype(np.float32)
        canon = canon * (sftlf_pct.astype(np.float64) / 100.0)[None]
    # write (the file's latitude order)
    lat_w, lat_bw, data_w = lat_c, lat_b, file_vals
    if s.grid.descending:
        lat_w, lat_bw, data_w = lat_c[::-1], lat_b[::-1, ::-1], file_vals[:, ::-1]
    tvals, tunits, tbnds = _time_values(s, keys)
    files = []
    rows = []
    for path, sl in _series_paths(root, s, keys):
        if s.layout == "yearly":
            tv, tu, tb = _time_values(
                SynthSeries(**{**s.__dict__, "start_year": int(keys[sl][0] // 12), "n_years": 1}),
                keys[sl],
            )
        else:
            tv, tu, tb = tvals[sl], tunits, (None if tbnds is None else tbnds[sl])
        _write_nc(path, s, lat_w, lon_c, lat_bw, lon_b, tv, tu, tb, data_w[sl])
        files.append(path)
        kb, ke = keys[sl][0], keys[sl][-1]
        rows.append(
            _row(s, path, f"{kb // 12:04d}{kb % 12 + 1:02d}-{ke // 12:04d}{ke % 12 + 1:02d}")
        )
    if s.per_land:
        d = os.path.join(
            root,
            "CMIP6",
            s.ensemble,
            s.institution,
            s.source_id,
            s.experiment,
            s.member_id,
            "fx",
            "sftlf",
            "gn",
            "v20190601",
        )
        p = os.path.join(d, f"sftlf_fx_{s.source_id}_{s.experiment}_{s.member_id}_gn.nc")
        if not os.path.exists(p):
            _write_sftlf(
                p,
                s,
                lat_w,
                lon_c,
                lat_bw,
                lon_b,
                sftlf_pct[::-1] if s.grid.descending else sftlf_pct,
            )
            files.append(p)
            r = _row(s, p, "")
            r.update(
                variable="sftlf",
                raw_variable="",
                units="",
                per_land_area="",
                table_id="fx",
                version="v20190601",
            )
            rows.append(r)
    # truths
    gk = (s.grid.bounds()[0].tobytes(), s.grid.bounds()[1].tobytes())
    if gk not in weights_cache:
        weights_cache[gk] = {
            r: region_weights(lat_b, lon_b, boxes, R_EARTH) for r, boxes in REGIONS.items()
        }
    W = weights_cache[gk]
    c0 = np.nan_to_num(canon, nan=0.0)
    is_stock = _KIND.get(s.variable) == "stock"
    unit = f"Tg {_ELEMENT.get(s.variable, 'C')}"
    truths = []
    for r, w in W.items():
        rate = np.einsum("tij,ij->t", c0, w)  # kg s-1 (flux) or kg (stock)
        tg = rate / 1e9 if is_stock else rate * secs / 1e9
        for k, val in zip(keys, tg, strict=True):
            truths.append((s.member, s.variable, r, key_label(k), float(val), unit))
    return _Written(s, rows, truths, files)


def _row(s: SynthSeries, path: str, time_range: str) -> dict[str, Any]:
    d = {
        "ensemble": s.ensemble,
        "source_id": s.source_id,
        "experiment": s.experiment,
        "member_id": s.member_id,
        "variable": s.variable,
        "gas": s.gas,
        "group": s.group,
        "grid_label": "gn" if s.layout == "cmip6" else "",
        "forcing": s.forcing,
        "layered_c": "" if s.layered_c is None else s.layered_c,
        "fire": "" if s.fire is None else s.fire,
        "path": path,
        "format": "netcdf",
        "raw_variable": s.raw_name if s.raw_name != s.variable else "",
        "units": "",
        "per_land_area": True if s.per_land else "",
        "calendar": "",
        "mass_basis": s.mass_basis or "",
        "into_land": "" if s.into_land_column is None else s.into_land_column,
        "table_id": "Lmon" if s.layout == "cmip6" else "",
        "version": "v20190815" if s.layout == "cmip6" else "",
        "time_range": time_range,
    }
    d.update({k: v for k, v in s.extra.items()})
    return d


@dataclass
class ArchiveInfo:
    """What :func:`build_archive` wrote."""

    root: str
    catalog: str
    mask: str
    truth: str
    inversions_yaml: str
    n_members: int
    n_series: int
    n_files: int
    nbytes: int
    seconds: float
    regions: tuple[str, ...] = tuple(REGIONS)


#: bytes of HDF5/netCDF-4 structure per file written by this writer (superblock, object headers,
#: attributes, chunk index), measured on the tiny archive (netCDF-C 4.9 / HDF5 1.14: 18.7-29.8 kB).
_NC_FILE_OVERHEAD = 24_000
#: bytes per truth.csv row beyond its member, variable and region names (date, value repr, unit,
#: separators), and per catalog row beyond its path (both measured on the tiny archive).
_TRUTH_ROW_BYTES = 36
_CATALOG_ROW_BYTES = 190


def _file_bytes(s: SynthSeries, nt: int) -> int:
    """Estimated size of one netCDF file of ``s`` holding ``nt`` months."""
    lb, ob = s.grid.bounds()
    ny, nx = lb.shape[0], ob.shape[0]
    n = 4 * nt * ny * nx + 8 * (ny + nx + nt) + _NC_FILE_OVERHEAD
    if s.grid.write_bounds:
        n += 16 * (ny + nx)
    if s.time_bnds or s.stamp == "next":
        n += 16 * nt
    return n


def estimate_bytes(size: str = "tiny", seed: int = 0) -> int:
    """Bytes :func:`build_archive` writes for ``size`` before deflate: netCDF data files (float32
    data, coordinates, bounds, a per-file structure overhead), the fx files, the region mask,
    ``truth.csv`` and the catalogs. Computed from the series list without writing anything. The data
    are deflated (level 1 + shuffle, as CMOR writes), so the archive on disk is smaller: about 80%
    of this for the noisy synthetic fields (tested on ``tiny``)."""
    from gridflux.synthetic.regions import mask_array

    total = 0
    fx_seen: set[str] = set()
    n_files = 0
    for s in archive_series(size, seed):
        keys = _month_keys(s)
        for path, sl in _series_paths("", s, keys):
            nt = len(keys[sl])
            total += _file_bytes(s, nt)
            total += _CATALOG_ROW_BYTES + 2 * len(
                path
            )  # catalog.csv (+ inversions.yaml for inversions)
            n_files += 1
        if s.per_land and s.source_id not in fx_seen:
            fx_seen.add(s.source_id)
            lb, ob = s.grid.bounds()
            total += (
                4 * lb.shape[0] * ob.shape[0] + 24 * (lb.shape[0] + ob.shape[0]) + _NC_FILE_OVERHEAD
            )
        row = len(s.member) + len(s.variable) + _TRUTH_ROW_BYTES
        total += sum(keys.size * (row + len(r)) for r in REGIONS)
    m, _lat, _lon = mask_array(REGIONS)
    total += 8 * m.size + 24 * (m.shape[1] + m.shape[2]) + _NC_FILE_OVERHEAD
    return int(total)


def build_archive(
    root: str | os.PathLike,
    size: str = "tiny",
    seed: int = 0,
    *,
    echo: Callable[[str], Any] | None = print,
    confirm: bool | Callable[[str], bool] | None = None,
) -> ArchiveInfo:
    """Write the synthetic archive under ``root`` and return what was written.

    Files: the data tree, ``catalog.json`` + ``catalog.csv`` (intake-esm), ``inversions.yaml``
    (intake YAML of the inversion files), ``regions.nc`` (region mask) and ``truth.csv`` (columns
    member, variable, region, time (YYYY-MM), value, unit: Tg of element per month for fluxes,
    monthly-mean Tg for stocks).

    Parameters
    ----------
    echo
        Where progress messages go (``None``: silent). For ``size="paper"`` the estimated size in GB
        (:func:`estimate_bytes`) is echoed before anything is written.
    confirm
        Required for ``size="paper"`` (hundreds of GB): ``True`` to proceed, or a callable that is
        given the size message and returns whether to proceed (e.g. ``typer.confirm``). ``None`` or
        ``False`` for ``paper`` raises :class:`~gridflux.errors.GridfluxError` before writing.
    """
    from gridflux.errors import GridfluxError
    from gridflux.ingest.catalog import write_catalog

    if size not in SIZES:
        raise ValueError(f"size {size!r}; expected one of {SIZES}")
    t0 = _time.perf_counter()
    root = os.path.abspath(os.fspath(root))
    if size == "paper":
        msg = (
            f"paper-size synthetic archive: about {estimate_bytes(size, seed) / 1e9:.0f} GB to "
            "write "
            f"under {root}"
        )
        if echo is not None:
            echo(msg)
        ok = (
            confirm("continue?" if echo is not None else msg + "; continue?")
            if callable(confirm)
            else bool(confirm)
        )
        if not ok:
            raise GridfluxError(f"{msg}: not confirmed; pass confirm=True (CLI: --yes) to write it")
    os.makedirs(root, exist_ok=True)
    series = archive_series(size, seed)
    rows: list[dict[str, Any]] = []
    truth_rows: list[tuple] = []
    files: list[str] = []
    cache: dict = {}
    for i, s in enumerate(series):
        w = _write_series(root, s, i, seed, cache)
        rows += w.rows
        truth_rows += w.truths
        files += w.files
    cat = write_catalog(
        rows,
        os.path.join(root, "catalog.json"),
        description=f"gridflux synthetic RECCAP2-like archive (size={size}, seed={seed})",
        catalog_id=f"gridflux-synthetic-{size}",
        provenance={"generator": "gridflux.synthetic.build_archive", "size": size, "seed": seed},
    )
    mask = write_mask(os.path.join(root, "regions.nc"))
    truth = os.path.join(root, "truth.csv")
    with open(truth, "w", newline="") as f:
        wr = csv.writer(f)
        wr.writerow(["member", "variable", "region", "time", "value", "unit"])
        for t in truth_rows:
            wr.writerow([t[0], t[1], t[2], t[3], repr(t[4]), t[5]])
    yml = _write_inversions_yaml(root, rows)
    nbytes = sum(
        os.path.getsize(p)
        for p in [*files, cat, os.path.splitext(cat)[0] + ".csv", mask, truth, yml]
    )
    return ArchiveInfo(
        root=root,
        catalog=cat,
        mask=mask,
        truth=truth,
        inversions_yaml=yml,
        n_members=len({s.member for s in series}),
        n_series=len(series),
        n_files=len(files),
        nbytes=nbytes,
        seconds=_time.perf_counter() - t0,
    )


def _write_inversions_yaml(root: str, rows: list[dict[str, Any]]) -> str:
    """Hand-written-style intake YAML for the inversion files (GCB, GMB, GNB)."""
    import yaml

    sources = {}
    for r in rows:
        if r["ensemble"] not in ("GCB", "GMB", "GNB"):
            continue
        name = f"{r['ensemble']}_{r['source_id']}_{r['member_id']}_{r['variable']}".replace(
            "-", "_"
        )
        md = {k: v for k, v in r.items() if k not in ("path", "format") and v not in ("", None)}
        sources[name] = {
            "driver": "netcdf",
            "description": f"{r['ensemble']} inversion {r['source_id']} ({r['member_id']})",
            "args": {
                "urlpath": os.path.relpath(r["path"], root),
                "xarray_kwargs": {"engine": "netcdf4"},
            },
            "metadata": md,
        }
    path = os.path.join(root, "inversions.yaml")
    with open(path, "w") as f:
        yaml.safe_dump(
            {
                "metadata": {"version": 1, "description": "synthetic inversion files"},
                "sources": sources,
            },
            f,
            sort_keys=False,
        )
    return path


def write_series_files(
    root: str, series: list[tuple[int, SynthSeries]], seed: int = 0
) -> tuple[list[dict[str, Any]], list[tuple], list[str]]:
    """Write ``(index, series)`` pairs under ``root`` as :func:`build_archive` does (``index``
    seeds the series' field, so the same index and series give the same values); return the
    catalog rows, the truth rows ``(member, variable, region, YYYY-MM, value, unit)`` and the
    files written (used by :mod:`gridflux.synthetic.releases`)."""
    rows: list[dict[str, Any]] = []
    truths: list[tuple] = []
    files: list[str] = []
    cache: dict = {}
    for i, s in series:
        w = _write_series(root, s, i, seed, cache)
        rows += w.rows
        truths += w.truths
        files += w.files
    return rows, truths, files


def write_truth_csv(path: str, truths: list[tuple]) -> str:
    """``truth.csv``: member, variable, region, time (YYYY-MM), value, unit."""
    with open(path, "w", newline="") as f:
        wr = csv.writer(f)
        wr.writerow(["member", "variable", "region", "time", "value", "unit"])
        for t in truths:
            wr.writerow([t[0], t[1], t[2], t[3], repr(t[4]), t[5]])
    return path


def write_inversions_yaml(root: str, rows: list[dict[str, Any]]) -> str:
    """The intake YAML of the inversion rows (``inversions.yaml`` under ``root``)."""
    return _write_inversions_yaml(root, rows)
