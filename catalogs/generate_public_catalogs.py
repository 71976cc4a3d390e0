"""Regenerate the shipped public-source catalogs from the naming protocols (no network).

    python catalogs/generate_public_catalogs.py            # rewrites the files next to this script

Writes
- ``isimip-carbon-monthly.json`` + ``.csv``: intake-esm collection of file URLs on
  https://files.isimip.org for ISIMIP2a/2b/3a/3b monthly carbon fluxes of the RECCAP2 models;
- ``ornldaac-mstmip-v1-sg3-monthly.yaml``: intake YAML of the ORNL DAAC MsTMIP V1 monthly SG3 files.

Every URL is CONSTRUCTED from the documented naming protocol below; none was fetched or listed
(no network where this was written). What was and was not confirmed is in each catalog's
``provenance`` and in catalogs/README.md. The tables here are the only inputs.
"""

from __future__ import annotations

import os
from typing import Any

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
CHECKED = "2026-11-25"

# -- ISIMIP -----------------------------------------------------------------------------------
ISIMIP_HOST = "https://files.isimip.org"
#: variable specifier in the file name -> canonical gridflux variable (all monthly, kg m-2 s-1)
ISIMIP_VARIABLES = {"gpp": "gpp", "npp": "npp", "ra": "ra", "rh": "rh", "ffire": "fFire"}

#: One block per simulation round: directory/file naming and the runs catalogued.
#: dir:  <round>/OutputData/<sector>/<MODEL dir>/<climate-forcing>/<period>/
#: file: see "head" (identifiers before the variable) and "tail" (after it).
ISIMIP_ROUNDS: list[dict[str, Any]] = [
    # ISIMIP3a: <model>_<climate-forcing>_<climate-scenario>_<soc>_<sens>_<var>-total_global_...
    #   ..._monthly_<y0>_<y1>.nc
    {
        "round": "ISIMIP3a",
        "sector": "biomes",
        "period": "historical",
        "ext": ".nc",
        "pft": "-total",
        "forcings": ["gswp3-w5e5"],
        "bias": None,
        "scenario": "obsclim",
        "soc": "histsoc",
        "sens": "default",
        "years": (1901, 2019),
        "models": {
            "jules": "JULES",
            "orchidee-mict": "ORCHIDEE-MICT",
            "jsbach-wet": "JSBACH-wet",
            "jsbach-dry": "JSBACH-dry",
            "elm-eca": "ELM-ECA",
        },
        "confidence": "file name pattern from the ISIMIP3 protocol "
        "(pattern/ISIMIP3a/OutputData/biomes.json); "
        "one real file name of this form seen for orchidee-mict (gpp-total, 1901_2019)",
    },
    # ISIMIP3b: <model>_<gcm>_<bias-adj>_<climate-scenario>_<soc>_<sens>_<var>-total_global_...
    #   ..._monthly_<y0>_<y1>.nc
    {
        "round": "ISIMIP3b",
        "sector": "biomes",
        "period": "historical",
        "ext": ".nc",
        "pft": "-total",
        "forcings": ["gfdl-esm4", "ipsl-cm6a-lr", "mpi-esm1-2-hr", "mri-esm2-0", "ukesm1-0-ll"],
        "bias": "w5e5",
        "scenario": "historical",
        "soc": "histsoc",
        "sens": "default",
        "years": (1850, 2014),
        "models": {
            "jules": "JULES",
            "orchidee-mict": "ORCHIDEE-MICT",
            "jsbach-wet": "JSBACH-wet",
            "jsbach-dry": "JSBACH-dry",
            "elm-eca": "ELM-ECA",
        },
        "confidence": "file name pattern from the ISIMIP3 protocol "
        "(pattern/ISIMIP3b/OutputData/biomes.json); "
        "a real file name of this form seen for another biomes model (classic, npp-total, "
        "1850_2014)",
    },
    {  # ISIMIP2b: <model>_<gcm>_ewembi_<scenario>_<soc>_<co2>_<var>_global_monthly_<y0>_<y1>.nc4
        "round": "ISIMIP2b",
        "sector": "biomes",
        "period": "historical",
        "ext": ".nc4",
        "pft": "",
        "forcings": ["ipsl-cm5a-lr"],
        "bias": "ewembi",
        "scenario": "historical",
        "soc": "histsoc",
        "sens": "co2",
        "years": (1861, 2005),
        "models": {
            "caraib": "CARAIB",
            "clm45": "CLM45",
            "dlem": "DLEM",
            "lpj-guess": "LPJ-GUESS",
            "lpjml": "LPJmL",
            "orchidee": "ORCHIDEE",
            "visit": "VISIT",
        },
        "confidence": "directory and file layout from a real ISIMIP2b biomes URL (LPJmL, future, "
        ".nc4); "
        "historical period 1861_2005, histsoc_co2 and plain total variable names assumed",
    },
    {  # ISIMIP2a: <model>_<forcing>_nobc_hist_<soc>_<co2>_<var>_global_monthly_<y0>_<y1>.nc4
        "round": "ISIMIP2a",
        "sector": "biomes",
        "period": "historical",
        "ext": ".nc4",
        "pft": "",
        "forcings": ["gswp3"],
        "bias": "nobc",
        "scenario": "hist",
        "soc": "varsoc",
        "sens": "co2",
        "years": (1971, 2010),
        "models": {
            "caraib": "CARAIB",
            "dlem": "DLEM",
            "lpj-guess": "LPJ-GUESS",
            "lpjml": "LPJmL",
            "orchidee": "ORCHIDEE",
            "visit": "VISIT",
            "jules": "JULES",
        },
        "confidence": "NOT confirmed: identifiers (nobc, hist, varsoc, co2), the years and the "
        "model list follow "
        "the ISIMIP2 naming scheme as gridflux's crawler parses it; check against data.isimip.org",
    },
]


def isimip_rows() -> list[dict[str, Any]]:
    """One row per (round, model, forcing, variable): a constructed https://files.isimip.org URL."""
    rows = []
    for r in ISIMIP_ROUNDS:
        y0, y1 = r["years"]
        for model, model_dir in r["models"].items():
            for forcing in r["forcings"]:
                ids = (
                    [model, forcing]
                    + ([r["bias"]] if r["bias"] else [])
                    + [r["scenario"], r["soc"], r["sens"]]
                )
                for spec, canon in ISIMIP_VARIABLES.items():
                    raw = spec + r["pft"]
                    name = "_".join(ids + [raw, "global", "monthly", str(y0), str(y1)]) + r["ext"]
                    url = "/".join(
                        [
                            ISIMIP_HOST,
                            r["round"],
                            "OutputData",
                            r["sector"],
                            model_dir,
                            forcing,
                            r["period"],
                            name,
                        ]
                    )
                    rows.append(
                        {
                            "ensemble": r["round"],
                            "source_id": model,
                            "experiment": r["scenario"],
                            "member_id": "_".join([forcing, r["soc"], r["sens"]]),
                            "variable": canon,
                            "gas": "CO2",
                            "group": "",
                            "grid_label": "0.5deg",
                            "forcing": forcing,
                            "layered_c": "",
                            "fire": "",
                            "path": url,
                            "format": "netcdf",
                            "raw_variable": raw,
                            "units": "",
                            "per_land_area": "",
                            "calendar": "",
                            "mass_basis": "",
                            "into_land": "",
                            "table_id": "monthly",
                            "version": "",
                            "time_range": f"{y0}01-{y1}12",
                            "sector": r["sector"],
                            "url_status": "constructed-not-fetched",
                        }
                    )
    return rows


def write_isimip(directory: str = HERE) -> str:
    # the CSV and the ESM collection spec are gridflux's own catalog writer's (URLs stay absolute)
    from gridflux.ingest.catalog import write_catalog

    return write_catalog(
        isimip_rows(),
        os.path.join(directory, "isimip-carbon-monthly.json"),
        catalog_id="isimip-carbon-monthly",
        description=(
            "ISIMIP2a/2b/3a/3b monthly land carbon fluxes (gpp, npp, ra, rh, ffire) of the RECCAP2 "
            "permafrost budget's ISIMIP models, as file URLs on https://files.isimip.org "
            "CONSTRUCTED "
            "from the ISIMIP file-naming protocol (not fetched: some combinations may not exist)."
        ),
        provenance={
            "source": "ISIMIP Repository (files.isimip.org), OutputData",
            "host": ISIMIP_HOST,
            "browse": "https://data.isimip.org/search/tree/",
            "naming_protocol": [
                "https://protocol.isimip.org/ (ISIMIP3a/ISIMIP3b, section 'Reporting model "
                "results')",
                "https://github.blesdmm.dns-dynamic.net/ISI-MIP/isimip-protocol-3 "
                "pattern/ISIMIP3a/OutputData/biomes.json",
                "https://github.blesdmm.dns-dynamic.net/ISI-MIP/isimip-protocol-3 "
                "pattern/ISIMIP3b/OutputData/biomes.json",
                "https://www.isimip.org/protocol/preparing-simulation-files",
            ],
            "terms": "ISIMIP output data are distributed under CC BY 4.0 (see each dataset's DOI "
            "landing page "
            "on https://data.isimip.org and https://www.isimip.org/gettingstarted/terms-of-use/)",
            "checked": f"{CHECKED}: naming checked against stored copies of the protocol "
            "repository and pages "
            "through an offline search index; no URL in this catalog was fetched or listed",
            "construction": "URL = host/<round>/OutputData/<sector>/<MODEL "
            "dir>/<climate-forcing>/<period>/<file>; "
            "file = identifiers joined by '_' per round (see generate_public_catalogs.py)",
            "filter": "models: the five ISIMIP3 models named by the paper (JULES, ORCHIDEE-MICT, "
            "JSBACH wet/dry, "
            "ELM-ECA) for 3a (gswp3-w5e5 obsclim) and 3b (historical, the five primary GCMs); "
            "ISIMIP2a (GSWP3) and 2b (IPSL-CM5A-LR) biomes models; variables gpp npp ra rh ffire; "
            "monthly; global 0.5 degree",
            "per_round_confidence": {r["round"]: r["confidence"] for r in ISIMIP_ROUNDS},
            "unconfirmed": [
                "model specifiers and directory names of JULES, JSBACH-wet/-dry and ELM-ECA in "
                "ISIMIP3 "
                "(e.g. a versioned name such as jules-es-...), and whether they report under "
                "biomes or permafrost",
                "which model x GCM x variable combinations exist (not every model simulates fire)",
                "ISIMIP2a identifiers and years",
            ],
            "land_fraction": "ISIMIP reports per grid-cell land area on a 0.5 degree grid whose "
            "land mask is binary, "
            "so no sftlf is paired (per_land_area left empty)",
            "access": "anonymous https; no credentials",
            "generator": "catalogs/generate_public_catalogs.py",
        },
    )


# -- ORNL DAAC MsTMIP -------------------------------------------------------------------------
MSTMIP_BASE = "https://data.ornldaac.earthdata.nasa.gov/protected/nacp/NACP_MsTMIP_TBMO/data"
#: the 14 MsTMIP models of the paper's count (V1 has 15 TBMs; VEGAS2.1 left out here)
MSTMIP_MODELS = (
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
)
#: MsTMIP standard variable name -> canonical gridflux variable
MSTMIP_VARIABLES = {
    "GPP": "gpp",
    "NPP": "npp",
    "AutoResp": "ra",
    "HeteroResp": "rh",
    "TotSoilCarb": "cSoil",
    "TotLivBiom": "cVeg",
}
MSTMIP_SIMULATION = "SG3"


def write_mstmip(directory: str = HERE) -> str:
    sources: dict[str, Any] = {}
    for model in MSTMIP_MODELS:
        for raw, canon in MSTMIP_VARIABLES.items():
            name = f"{model}_{MSTMIP_SIMULATION}_Monthly_{raw}.nc4"
            key = f"MsTMIP_{model}_{MSTMIP_SIMULATION}_{raw}".replace("-", "_")
            sources[key] = {
                "driver": "netcdf",
                "description": f"MsTMIP V1 {model} {MSTMIP_SIMULATION} monthly {raw}",
                "args": {
                    "urlpath": f"{MSTMIP_BASE}/{name}",
                    "xarray_kwargs": {"engine": "h5netcdf"},
                },
                "metadata": {
                    "source_id": model,
                    "experiment": MSTMIP_SIMULATION,
                    "member_id": "r1",
                    "variable": canon,
                    "raw_variable": raw,
                    "gas": "CO2",
                    "grid_label": "0.5deg",
                    "table_id": "Monthly",
                    "version": "1",
                    "time_range": "190101-201012",
                    "url_status": "constructed-not-fetched",
                },
            }
    doc = {
        "description": (
            "MsTMIP Version 1 global 0.5-degree monthly model outputs (simulation SG3), ORNL DAAC. "
            "URLs CONSTRUCTED from the file-naming pattern <MODEL>_<SIM>_Monthly_<Variable>.nc4; "
            "Earthdata login required (credentials from ~/.netrc, never in this file)."
        ),
        "metadata": {
            "version": 1,
            "columns": {"ensemble": "MsTMIP"},
            "provenance": {
                "source": "ORNL DAAC: NACP MsTMIP: Global 0.5-degree Model Outputs in Standard "
                "Format, Version 1.0",
                "doi": "https://doi.org/10.3334/ORNLDAAC/1225",
                "cmr": "https://cmr.earthdata.nasa.gov/search/concepts/C1515244932-ORNL_DAAC.html",
                "user_guide_v2": "https://daac.ornl.gov/NACP/guides/NACP_MsTMIP_TBMO_V2.html",
                "terms": "NASA EOSDIS data use and citation guidance (open, no restriction; cite "
                "Huntzinger et al.): "
                "https://www.earthdata.nasa.gov/engage/open-data-services-software-policies/data-use-guidance",
                "access": "NASA Earthdata login. gridflux never stores credentials: the HTTPS "
                "client reads the "
                "user's ~/.netrc (machine urs.earthdata.nasa.gov login ... password ...); "
                "alternatively "
                "download the files (e.g. with earthaccess or wget --netrc) and point a copy of "
                "this "
                "catalog at the local directory",
                "checked": f"{CHECKED}: naming checked through an offline search index; no URL was "
                "fetched",
                "construction": f"{MSTMIP_BASE}/<MODEL>_{MSTMIP_SIMULATION}_Monthly_<Variable>.nc4",
                "filter": "simulation SG3 (climate + land-use change + CO2), monthly, the 14 "
                "models of the paper's "
                "MsTMIP count, variables GPP NPP AutoResp HeteroResp TotSoilCarb TotLivBiom",
                "confirmed": "the file-name form <MODEL>_SG3_Monthly_<Var>.nc4 (seen in "
                "third-party code reading "
                "MsTMIP files); period 1901-2010 at 0.5 degree (DAAC user guide)",
                "unconfirmed": [
                    "the DAAC data path (protected/nacp/NACP_MsTMIP_TBMO/data) of the V1 dataset",
                    "the spelling of each model in file names and the MsTMIP names of AutoResp, "
                    "HeteroResp, "
                    "TotSoilCarb, TotLivBiom",
                    "which models provide each variable (not all models ran all simulations)",
                    "the DOI 1225 <-> V1 title mapping (taken from catalogs/README.md and CMR)",
                ],
                "generator": "catalogs/generate_public_catalogs.py",
            },
        },
        "sources": sources,
    }
    path = os.path.join(directory, "ornldaac-mstmip-v1-sg3-monthly.yaml")
    with open(path, "w") as f:
        yaml.safe_dump(doc, f, sort_keys=False, width=110)
    return path


if __name__ == "__main__":
    print(write_isimip())
    print(write_mstmip())
