"""The crawler catalogs every file that follows a convention it knows, for any table and
variable, says per variable what gridflux makes of it, and names the rest per folder (issue 17,
point 1)."""

import csv
import os

import pytest

from gridflux.errors import CatalogError
from gridflux.ingest.catalog import build_catalog, load_catalog
from gridflux.ingest.catalog.variables import classify, classify_for_run

# (table, variable, time ranges): a CMIP6 DRS tree of many tables and variables
DRS = [
    ("Amon", "tas", ["185001-189912", "190001-194912"]),
    ("Amon", "pr", ["185001-194912"]),
    ("Amon", "ta", ["185001-194912"]),
    ("Lmon", "gpp", ["185001-194912"]),
    ("Lmon", "mrso", ["185001-194912"]),
    ("LImon", "snw", ["185001-194912"]),
    ("day", "pr", ["18500101-18991231", "19000101-19491231"]),
    ("day", "tasmax", ["18500101-19491231"]),
    ("Omon", "tos", ["185001-194912"]),
    ("Omon", "fgco2", ["185001-194912"]),
    ("Emon", "cSoilAbove1m", ["185001-194912"]),
    ("3hr", "tas", ["185001010000-185012312100"]),
    ("fx", "sftlf", [None]),
    ("fx", "orog", [None]),
    ("Ofx", "areacello", [None]),
]
MODELS = [("NCAR", "CESM2", "gn"), ("IPSL", "IPSL-CM6A-LR", "gr")]


def _touch(path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(b"CDF\x01")  # the crawler reads names only
    return path


def _drs_tree(root):
    files = []
    for inst, src, grid in MODELS:
        for table, var, ranges in DRS:
            d = os.path.join(
                root, "CMIP6", "CMIP", inst, src, "historical", "r1i1p1f1", table, var, grid,
                "v20190308",
            )  # fmt: skip
            for tr in ranges:
                tail = f"_{tr}" if tr else ""
                name = f"{var}_{table}_{src}_historical_r1i1p1f1_{grid}{tail}.nc"
                files.append(_touch(os.path.join(d, name)))
    return files


def _csv_paths(json_path):
    with open(os.path.splitext(json_path)[0] + ".csv") as f:
        return [
            os.path.realpath(os.path.join(os.path.dirname(json_path), r["path"]))
            for r in csv.DictReader(f)
        ]


def test_every_file_of_a_cmip6_drs_tree_is_catalogued(tmp_path):
    files = _drs_tree(tmp_path)
    res = build_catalog(tmp_path, tmp_path / "cat.json")
    assert res.n_files == len(files) == 2 * sum(len(r) for *_, r in DRS)
    assert not res.unmatched and not res.superseded
    assert sorted(_csv_paths(res.path)) == sorted(os.path.realpath(f) for f in files)
    by = {(v.variable, v.table_id): v for v in res.variables}
    assert by[("gpp", "Lmon")].statistic == "total (computed)"
    assert by[("tas", "Amon")].files == 4 and by[("tas", "Amon")].series == 2
    assert by[("tas", "Amon")].statistic == "mean (computed)"
    assert by[("mrso", "Lmon")].statistic.startswith("mean (")
    assert by[("snw", "LImon")].statistic.startswith("mean (")
    # a daily table is computed by `gridflux run` on its daily axis (the store's daily/ group)
    assert by[("pr", "day")].statistic == "mean (computed, daily axis)"
    assert (
        by[("tas", "3hr")].statistic.startswith("mean (")
        and "sub-daily" in by[("tas", "3hr")].statistic
    )
    assert by[("fgco2", "Omon")].statistic.startswith("total (not computed yet: ocean flux")
    assert by[("orog", "fx")].statistic.startswith("none: fixed field")
    assert by[("areacello", "Ofx")].statistic.startswith("none: fixed field")
    assert by[("sftlf", "fx")].statistic.startswith("none: fx field, paired")
    assert by[("cSoilAbove1m", "Emon")].statistic.startswith("none: unknown to gridflux")
    text = "\n".join(res.lines())
    assert "no naming convention" not in text and f"{len(files)} files" in text
    # the same rows open in gridflux (ensemble = activity) and in intake-esm
    cat = load_catalog(res.path)
    assert len(cat.rows) == len(files) and {r.ensemble for r in cat.rows} == {"CMIP"}
    intake = pytest.importorskip("intake")
    esm = intake.open_esm_datastore(res.path)
    assert len(esm.df) == len(files)
    assert len(esm.search(variable="tas", table_id="Amon").df) == 4


def test_one_variable_in_two_tables_asks_for_a_table(tmp_path):
    _drs_tree(tmp_path)
    cat = load_catalog(build_catalog(tmp_path, tmp_path / "cat.json").path)
    two = r"CMIP\.(CESM2|IPSL-CM6A-LR)\.historical\.r1i1p1f1[./]pr has files in tables"
    with pytest.raises(CatalogError, match=two + r" \['Amon', 'day'\].*table_id=Amon"):
        cat.series({"variable": "pr"})
    (amon,) = cat.series({"variable": "pr", "table_id": "Amon", "source_id": "CESM2"})
    assert amon.table_id == "Amon" and len(amon.paths) == 1
    (gpp,) = cat.series({"variable": "gpp", "source_id": "CESM2"})
    assert gpp.fx_paths["sftlf"].endswith("sftlf_fx_CESM2_historical_r1i1p1f1_gn.nc")
    # fixed fields form no series; every other (member, variable, table) is one
    keys = {(s.key, s.table_id) for s in cat.series({"table_id": ["fx", "Ofx"]})}
    assert keys == set()


def test_file_names_without_drs_folders_isimip_yearly_and_strays(tmp_path):
    flat = tmp_path / "downloads"
    _touch(flat / "tas_Amon_MIROC6_ssp585_r1i1p1f1_gn_201501-210012.nc")
    _touch(flat / "hurs_day_MIROC6_ssp585_r1i1p1f1_gn_20150101-20241231.nc")
    _touch(flat / "zg_Amon_MIROC6_historical_r1i1p1f1_gn_185001-201412-clim.nc")
    _touch(
        tmp_path / "ISIMIP3b/OutputData/biomes/classic/gfdl-esm4"
        / "classic_gfdl-esm4_w5e5_ssp585_2015soc_default_tas_global_monthly_2015_2100.nc"
    )  # fmt: skip
    _touch(tmp_path / "TRENDY/CLM5/S3/tas/CLM5_S3_tas_2001.nc")
    _touch(tmp_path / "regions.nc")
    _touch(flat / "notes_v2.nc")
    _touch(flat / "README.nc")
    res = build_catalog(tmp_path, tmp_path / "out" / "cat.json")
    assert res.n_files == 5
    assert res.unmatched == {".": ["regions.nc"], "downloads": ["README.nc", "notes_v2.nc"]}
    text = "\n".join(res.lines())
    assert "3 netCDF files follow no naming convention" in text
    assert "downloads: 2 (e.g. README.nc)" in text and ".: 1 (e.g. regions.nc)" in text
    rows = {(r["variable"], r["ensemble"], r.get("table_id", "")) for r in res.rows}
    assert rows == {
        ("tas", "CMIP6", "Amon"),
        ("hurs", "CMIP6", "day"),
        ("zg", "CMIP6", "Amon"),
        ("tas", "ISIMIP3b", ""),
        ("tas", "TRENDY", ""),
    }


def test_classify_reads_the_variable_tables():
    assert classify("NPP").statistic == "total" and classify("NPP").computed
    assert classify("npp-total").computed  # ISIMIP3 suffix
    assert classify("gpp", "day").statistic == "total" and not classify("gpp", "day").computed
    assert classify("tas").statistic == "mean" and classify("tas").computed
    assert classify("tas", "day").statistic == "mean" and not classify("tas", "day").computed
    assert classify("xyz", override="mean").computed  # the catalog's statistic column
    assert classify("xyz").statistic == "none"
    # daily tables: computed when resampled to months, else the reason names the option
    assert "--resample month" in classify("tas", "day").reason
    assert classify("tas", "day", resample="month").computed
    assert classify("gpp", "day", resample="month").computed
    # what catalog build/check report: what `gridflux run` does with its default options
    assert classify_for_run("tas", "day").label() == "mean (computed, daily axis)"
    assert classify_for_run("gpp", "day").label() == "total (computed, daily axis)"
    assert not classify_for_run("tas", "3hr").computed
    assert classify_for_run("tas", "Amon") == classify("tas", "Amon")
    # statistic=total on a variable gridflux cannot total is said, never ignored
    how = classify("tas", override="total")
    assert how.statistic == "total" and not how.computed and "statistic=total" in how.reason
    assert classify("npp", override="total").computed


def test_statistic_and_land_weighted_columns_are_validated(tmp_path):
    from gridflux.errors import CatalogError
    from gridflux.ingest.catalog import write_catalog

    row = dict(ensemble="E", source_id="S", variable="tas", path="tas.nc")
    (tmp_path / "tas.nc").write_bytes(b"")
    cat = write_catalog([row | {"statistic": "Mean", "land_weighted": "TRUE"}], tmp_path / "a.json")
    (rec,) = load_catalog(cat).series()
    assert rec.traits["statistic"] == "mean" and rec.land_weighted is True
    assert rec.statistic_options == {"statistic": "mean", "land_weighted": True}
    for bad, col in (({"statistic": "median"}, "statistic"), ({"land_weighted": "maybe"}, "land")):
        cat = write_catalog([row | bad], tmp_path / "b.json")
        with pytest.raises(CatalogError, match=col):
            load_catalog(cat)


def test_the_demo_archive_is_catalogued_whole(tmp_path):
    """The MsTMIP, GMB, GCB, GNB and CARDAMOM files the crawler dropped before are catalogued
    (the same files per series as the archive's own catalog); only the mask is named."""
    from gridflux.synthetic import build_archive

    info = build_archive(tmp_path / "demo", size="tiny", echo=None)
    own = load_catalog(info.catalog)
    res = build_catalog(tmp_path / "demo", tmp_path / "crawl.json")
    assert res.unmatched == {".": ["regions.nc"]}
    crawled = load_catalog(res.path, allow_outside_root=[str(tmp_path / "demo")])
    own_paths = {p for s in own.series() for p in s.paths} | {
        p for s in own.series() for p in s.fx_paths.values()
    }
    crawled_paths = {r.path for r in crawled.rows}
    assert own_paths <= crawled_paths
    assert sorted(own_paths) == sorted(crawled_paths)
    ensembles = {r.ensemble for r in crawled.rows}
    assert {"MsTMIP", "GMB", "GCB", "GNB", "CARDAMOM", "GMB-wetland"} <= ensembles
    # the same files grouped into the same number of series
    assert len(crawled.series()) == len(own.series())
    # CARDAMOM's NBE is named with the reason it is not computed
    nbe = [v for v in res.variables if v.variable.startswith("NBE")]
    assert nbe and all(v.statistic.startswith("none: unknown to gridflux") for v in nbe)


def test_check_says_per_variable_what_gridflux_makes_of_it(tmp_path):
    from gridflux.ingest.catalog import check_catalog, summarize_checks

    _drs_tree(tmp_path)
    path = build_catalog(tmp_path, tmp_path / "cat.json").path
    results = check_catalog(path)  # two tables of pr: checked table by table, no error
    lines = summarize_checks(results)
    # monthly means are computed: their series are opened (the stand-ins fail by name)
    assert "pr [Amon]: 2 series, 2 with problems -> mean (computed)" in lines
    # daily means are computed on their daily axis, so opened too (and fail by name here)
    assert "pr [day]: 2 series, 2 with problems -> mean (computed, daily axis)" in lines
    # fixed fields form no series, and are named all the same
    assert "orog [fx]: 2 series -> none: fixed field (table fx), no time axis" in lines
    # the 4-byte stand-ins are no netCDF: the one computed variable is opened and fails by name;
    # the others are classified without being opened
    assert any(line.startswith("gpp [Lmon]: 2 series, 2 with problems -> total") for line in lines)
    assert all(r.ok for r in results if "(computed" not in r.statistic)
    only = check_catalog(path, query={"table_id": "day", "variable": "pr"})
    assert [r.table_id for r in only] == ["day", "day"]
