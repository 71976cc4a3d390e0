"""Catalogs: parsing of real naming conventions, fx pairing, YAML allow-list, intake-esm
compatibility."""

import json
import os

import numpy as np
import pytest

from gridflux.errors import CatalogError
from gridflux.ingest.catalog import (
    build_catalog,
    fingerprint,
    load_catalog,
    open_series,
    parse_path,
    write_catalog,
)
from gridflux.testing import raise_if_dask_computes

from .conftest import write_file


def test_parse_cmip6_drs():
    rel = (
        "CMIP6/LS3MIP/MPI-M/MPI-ESM1-2-LR/land-hist/r1i1p1f1/Lmon/nbp/gn/v20190815/"
        "nbp_Lmon_MPI-ESM1-2-LR_land-hist_r1i1p1f1_gn_195001-201412.nc"
    )
    d = parse_path(rel)
    assert (
        d["ensemble"] == "LS3MIP"
        and d["source_id"] == "MPI-ESM1-2-LR"
        and d["experiment"] == "land-hist"
    )
    assert (
        d["member_id"] == "r1i1p1f1"
        and d["variable"] == "nbp"
        and d["time_range"] == "195001-201412"
    )
    assert d["version"] == "v20190815" and d["per_land_area"] is None and d["table_id"] == "Lmon"


@pytest.mark.parametrize(
    ("rel", "ens", "model", "exp", "forcing", "var"),
    [
        (
            "ISIMIP2b/OutputData/biomes/LPJmL/ipsl-cm5a-lr/lpjml_ipsl-cm5a-lr_ewembi_historical_histsoc_co2_npp_global_monthly_1861_2005.nc4",
            "ISIMIP2b",
            "lpjml",
            "historical",
            "ipsl-cm5a-lr",
            "npp",
        ),
        (
            "ISIMIP3a/x/classic_gswp3-w5e5_obsclim_histsoc_default_rh_global_monthly_1901_2019.nc",
            "ISIMIP3a",
            "classic",
            "obsclim",
            "gswp3-w5e5",
            "rh",
        ),
        (
            "ISIMIP2a/y/orchidee_gswp3_nobc_hist_varsoc_co2_gpp_global_monthly_1971_2010.nc4",
            "ISIMIP2a",
            "orchidee",
            "hist",
            "gswp3",
            "gpp",
        ),
    ],
)
def test_parse_isimip(rel, ens, model, exp, forcing, var):
    d = parse_path(rel)
    assert (d["ensemble"], d["source_id"], d["experiment"], d["forcing"], d["variable"]) == (
        ens,
        model,
        exp,
        forcing,
        var,
    )


def test_parse_one_file_per_year():
    d = parse_path("PCN-MIP/JULES/S3/NPP/JULES_S3_NPP_1999.nc")
    assert (d["ensemble"], d["source_id"], d["experiment"], d["variable"], d["time_range"]) == (
        "PCN-MIP",
        "JULES",
        "S3",
        "NPP",
        "1999-1999",
    )
    assert parse_path("random/file.nc") is None


def test_build_pairs_fx_from_another_version_and_keeps_newest(tmp_path):
    base = tmp_path / "CMIP6/LS3MIP/INST/M1/land-hist/r1i1p1f1"
    for ver in ("v20180101", "v20190101"):
        d = base / "Lmon/rh/gn" / ver
        d.mkdir(parents=True)
        write_file(
            d / "rh_Lmon_M1_land-hist_r1i1p1f1_gn_200001-200003.nc",
            var="rh",
            cell_methods="area: mean where land",
        )
    fx = tmp_path / "CMIP6/LS3MIP/INST/M1/historical/r1i1p1f1/fx/sftlf/gn/v20170101"
    fx.mkdir(parents=True)
    import xarray as xr

    xr.Dataset(
        {"sftlf": (("lat", "lon"), np.full((3, 4), 50.0, dtype=np.float32), {"units": "%"})},
        coords={"lat": [-45.0, 0.0, 45.0], "lon": [0.0, 90.0, 180.0, 270.0]},
    ).to_netcdf(fx / "sftlf_fx_M1_historical_r1i1p1f1_gn.nc")
    res = build_catalog(tmp_path, tmp_path / "cat.json")
    out = res.path
    assert res.n_files == 2 and not res.unmatched
    # the older version is named, not silently dropped
    assert res.superseded == [
        "CMIP6/LS3MIP/INST/M1/land-hist/r1i1p1f1/Lmon/rh/gn/v20180101/"
        "rh_Lmon_M1_land-hist_r1i1p1f1_gn_200001-200003.nc"
    ]
    (rec,) = load_catalog(out).series()
    assert rec.key == "LS3MIP.M1.land-hist.r1i1p1f1/rh" and "v20190101" in rec.paths[0]
    assert rec.fx_paths["sftlf"].endswith("sftlf_fx_M1_historical_r1i1p1f1_gn.nc")
    with raise_if_dask_computes():
        ds = open_series(rec)
    assert "sftlf" in ds and ds["rh"].chunks is not None


def test_intake_esm_reads_our_catalog(tmp_path):
    intake = pytest.importorskip("intake")
    p = write_file(tmp_path / "a.nc", var="rh")
    rows = [
        {
            "ensemble": "E",
            "source_id": "M",
            "experiment": "x",
            "member_id": "r1",
            "variable": "rh",
            "path": p,
            "layered_c": True,
        }
    ]
    cat = write_catalog(rows, tmp_path / "c.json", description="test")
    esm = intake.open_esm_datastore(cat)
    assert len(esm.df) == 1 and esm.df["variable"].iloc[0] == "rh"
    assert esm.df["path"].iloc[0] == "a.nc" or esm.df["path"].iloc[0].endswith("a.nc")
    rec = load_catalog(cat).series({"layered_c": True})[0]
    assert rec.traits["layered_c"] is True and rec.paths == [os.path.realpath(p)]


def test_yaml_catalog_allow_list(tmp_path):
    write_file(tmp_path / "inv.nc", var="ch4flux", units="kg CH4 m-2 s-1")
    good = tmp_path / "good.yaml"
    good.write_text(
        "metadata:\n  columns: {ensemble: GMB, gas: CH4}\nsources:\n  inv:\n    driver: netcdf\n"
        "    args: {urlpath: inv.nc, xarray_kwargs: {engine: h5netcdf}}\n"
        "    metadata: {source_id: CAMS, experiment: v1, member_id: surface, variable: fch4, "
        "raw_variable: ch4flux,"
        " group: CAMS}\n"
    )
    (rec,) = load_catalog(str(good)).series()
    assert (
        rec.key == "GMB.CAMS.v1.surface/fch4" and rec.traits["group"] == "CAMS" and rec.gas == "CH4"
    )
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "sources:\n  ok:\n    driver: netcdf\n    args: {urlpath: inv.nc}\n    metadata: "
        "{ensemble: G, "
        "source_id: S, variable: fch4}\n  evil:\n    driver: python_exec\n    args: {urlpath: x}\n"
    )
    with pytest.raises(CatalogError, match=r"line 6 \(source 'evil'\), field 'driver'"):
        load_catalog(str(bad))
    creds = tmp_path / "creds.yaml"
    creds.write_text(
        "sources:\n  s:\n    driver: netcdf\n    args: {urlpath: 's3://b/k.nc', storage_options: "
        "{key: AKIA, secret: x}}\n    metadata: {ensemble: G, source_id: S, variable: fch4}\n"
    )
    with pytest.raises(CatalogError, match="never stored"):
        load_catalog(str(creds))


def test_fingerprint_changes_with_the_file_and_holds_no_credentials(tmp_path):
    p = write_file(tmp_path / "a.nc", var="rh")
    rows = [
        {
            "ensemble": "E",
            "source_id": "M",
            "experiment": "x",
            "member_id": "r1",
            "variable": "rh",
            "path": p,
        }
    ]
    (rec,) = load_catalog(write_catalog(rows, tmp_path / "c.json")).series()
    f1 = fingerprint(rec)
    assert f1["paths"][0]["size"] == os.path.getsize(p) and "mtime" in f1["paths"][0]
    write_file(tmp_path / "a.nc", var="rh", nt=4)
    f2 = fingerprint(rec)
    assert f2 != f1
    assert "secret" not in json.dumps(f2, default=str)


def test_isimip3_total_suffix_and_forcing_in_member():
    a = parse_path(
        "ISIMIP3b/jules_gfdl-esm4_w5e5_historical_histsoc_default_npp-total_global_monthly_1850_2014.nc"
    )
    b = parse_path(
        "ISIMIP3b/jules_ipsl-cm6a-lr_w5e5_historical_histsoc_default_npp-total_global_monthly_1850_2014.nc"
    )
    assert a["variable"] == "npp" and a["raw_variable"] == "npp-total"
    assert a["member_id"] != b["member_id"]  # two GCMs are two series, not one overlapping series
    assert a["member_id"].startswith("gfdl-esm4")
