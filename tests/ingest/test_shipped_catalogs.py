"""Catalogs shipped in catalogs/ validate offline (no network: their remote CSV is replaced by a
local sample in the same column layout)."""

import json
import os

from gridflux.ingest.catalog import load_catalog

HERE = os.path.dirname(__file__)
CATALOGS = os.path.join(HERE, "..", "..", "catalogs")

PANGEO_SAMPLE = """activity_id,institution_id,source_id,experiment_id,member_id,table_id,variable_id,grid_label,zstore,dcpp_init_year,version
LS3MIP,MPI-M,MPI-ESM1-2-LR,land-hist,r1i1p1f1,Lmon,nbp,gn,gs://cmip6/CMIP6/LS3MIP/MPI-M/MPI-ESM1-2-LR/land-hist/r1i1p1f1/Lmon/nbp/gn/v20190815/,,20190815
LS3MIP,MPI-M,MPI-ESM1-2-LR,land-hist,r1i1p1f1,Lmon,tas,gn,gs://cmip6/CMIP6/LS3MIP/MPI-M/MPI-ESM1-2-LR/land-hist/r1i1p1f1/Lmon/tas/gn/v20190815/,,20190815
CMIP,MPI-M,MPI-ESM1-2-LR,historical,r1i1p1f1,Lmon,nbp,gn,gs://cmip6/CMIP6/CMIP/MPI-M/MPI-ESM1-2-LR/historical/r1i1p1f1/Lmon/nbp/gn/v20190710/,,20190710
CMIP,MPI-M,MPI-ESM1-2-LR,historical,r1i1p1f1,fx,sftlf,gn,gs://cmip6/CMIP6/CMIP/MPI-M/MPI-ESM1-2-LR/historical/r1i1p1f1/fx/sftlf/gn/v20190710/,,20190710
"""


def test_pangeo_ls3mip_catalog_filters_and_pairs_fx(tmp_path):
    with open(os.path.join(CATALOGS, "pangeo-cmip6-ls3mip-land-hist.json")) as f:
        spec = json.load(f)
    assert spec["catalog_file"].startswith("https://storage.googleapis.com/cmip6/")
    assert {"source", "catalog_csv", "access"} <= set(spec["provenance"])
    (tmp_path / "pangeo.csv").write_text(PANGEO_SAMPLE)
    spec["catalog_file"] = "pangeo.csv"
    (tmp_path / "cat.json").write_text(json.dumps(spec))
    cat = load_catalog(str(tmp_path / "cat.json"))
    (rec,) = cat.series()
    assert rec.key == "LS3MIP.MPI-ESM1-2-LR.land-hist.r1i1p1f1/nbp" and rec.format == "zarr"
    assert rec.paths == [
        "gs://cmip6/CMIP6/LS3MIP/MPI-M/MPI-ESM1-2-LR/land-hist/r1i1p1f1/Lmon/nbp/gn/v20190815/"
    ]
    assert rec.fx_paths["sftlf"].endswith("/fx/sftlf/gn/v20190710/")
    assert cat.provenance["source"].startswith("Pangeo")
