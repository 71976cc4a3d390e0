"""The public-source catalogs shipped in catalogs/ (ISIMIP file URLs, ORNL DAAC MsTMIP) validate
offline: every row parses with gridflux's loader, URLs are https on the expected host and follow the
published naming patterns, variables are canonical, traits are present, and nothing in them is a
credential. No network is used."""

import importlib.util
import json
import os
import re
from urllib.parse import urlsplit

import pytest
import yaml

from gridflux.fields.units import VARIABLES
from gridflux.ingest.catalog import TRAIT_COLUMNS, load_catalog

CATALOGS = os.path.join(os.path.dirname(__file__), "..", "..", "catalogs")
ISIMIP = os.path.join(CATALOGS, "isimip-carbon-monthly.json")
MSTMIP = os.path.join(CATALOGS, "ornldaac-mstmip-v1-sg3-monthly.yaml")

# File-name regexes of the ISIMIP3 protocol (ISI-MIP/isimip-protocol-3,
# pattern/ISIMIP3{a,b}/OutputData/biomes.json)
ISIMIP3A_FILE = re.compile(
    r"^(?P<model>[a-z0-9-+.]+)_(?P<climate_forcing>[a-z0-9-]+)_(?P<climate_scenario>[a-z0-9-]+)_"
    r"(?P<soc_scenario>[a-z0-9-]+)_(?P<sens_scenario>[a-z0-9-]+)_(?P<variable>[a-z0-9]+)(-(?P<pft>[a-z0-9-]+))?_"
    r"(?P<region>(global))_(?P<time_step>[a-z0-9-]+)_(?P<start_year>\d{4})_(?P<end_year>\d{4})(.nc)$"
)
ISIMIP3B_FILE = re.compile(
    r"^(?P<model>[a-z0-9-+.]+)_(?P<climate_forcing>[a-z0-9-]+)_(?P<bias_adjustment>[a-z0-9-]+)_"
    r"(?P<climate_scenario>[a-z0-9-]+)_(?P<soc_scenario>[a-z0-9-]+)_(?P<sens_scenario>[a-z0-9-]+)_"
    r"(?P<variable>[a-z0-9]+)(-(?P<pft>[a-z0-9]+))?_(?P<region>(global))_(?P<time_step>[a-z0-9-]+)_"
    r"(?P<start_year>\d{4})_(?P<end_year>\d{4})(.nc)$"
)
# ISIMIP3 variable specifiers (protocol definitions) and MsTMIP standard names -> canonical
# variables
ISIMIP_CANONICAL = {"gpp": "gpp", "npp": "npp", "ra": "ra", "rh": "rh", "ffire": "fFire"}
MSTMIP_CANONICAL = {
    "GPP": "gpp",
    "NPP": "npp",
    "AutoResp": "ra",
    "HeteroResp": "rh",
    "TotSoilCarb": "cSoil",
    "TotLivBiom": "cVeg",
}
SECRET_PATTERNS = [
    re.compile(r"AKIA[0-9A-Z]{16}"),  # AWS access key id
    re.compile(r"aws_secret_access_key", re.I),
    re.compile(r"\b(token|bearer|authorization)\s*[:=]", re.I),
    re.compile(r"password\s*[:=]\s*\S", re.I),
    re.compile(r"https?://[^/\s:@]+:[^/\s@]+@"),  # user:password@host
    re.compile(r"storage_options", re.I),
]


def _assert_no_credentials(text: str, where: str) -> None:
    for pat in SECRET_PATTERNS:
        assert not pat.search(text), f"{where}: looks like a credential ({pat.pattern})"


def _check_url(url: str, host: str, prefix: str) -> None:
    u = urlsplit(url)
    assert u.scheme == "https" and u.hostname == host, url
    assert u.username is None and u.password is None and not u.query and not u.fragment, url
    assert url.startswith(prefix), url


def _check_common(cat, n_rows: int) -> None:
    assert len(cat) == n_rows
    series = cat.series()
    assert len(series) == n_rows  # one file per series: no two rows collide on a series key
    for rec in series:
        assert rec.variable in VARIABLES and VARIABLES[rec.variable].kind in ("flux", "stock")
        for c in ("ensemble", "source_id", "experiment", "member_id", "gas"):
            assert rec.traits.get(c), (rec.key, c)
        assert set(TRAIT_COLUMNS) <= set(rec.traits)
        assert rec.traits["url_status"] == "constructed-not-fetched"
        assert rec.format == "netcdf" and rec.fx_paths == {}


def test_isimip_catalog_rows_urls_and_names():
    with open(ISIMIP) as f:
        text = f.read()
    spec = json.loads(text)
    csv_path = os.path.join(CATALOGS, spec["catalog_file"])
    with open(csv_path) as f:
        csv_text = f.read()
    n_rows = len(csv_text.strip().splitlines()) - 1
    # 3a: 5 models x 5 variables; 3b: 5 models x 5 GCMs x 5 variables; 2b and 2a: 7 models x 5
    # variables
    assert n_rows == 25 + 125 + 35 + 35
    cat = load_catalog(ISIMIP)
    _check_common(cat, n_rows)
    _assert_no_credentials(text + csv_text, ISIMIP)
    per_round = {}
    for rec in cat.series():
        (url,) = rec.paths
        ens = rec.traits["ensemble"]
        per_round[ens] = per_round.get(ens, 0) + 1
        _check_url(url, "files.isimip.org", f"https://files.isimip.org/{ens}/OutputData/biomes/")
        parts = urlsplit(url).path.split("/")
        # /<round>/OutputData/<sector>/<MODEL>/<forcing>/<period>/<file>
        assert len(parts) == 8 and parts[5] == rec.traits["forcing"] and parts[6] == "historical"
        name = parts[-1]
        if ens in ("ISIMIP3a", "ISIMIP3b"):
            m = (ISIMIP3A_FILE if ens == "ISIMIP3a" else ISIMIP3B_FILE).match(name)
            assert m, name
            assert (m["model"], m["climate_forcing"], m["time_step"]) == (
                rec.traits["source_id"],
                rec.traits["forcing"],
                "monthly",
            )
            assert m["climate_scenario"] == rec.traits["experiment"] and m["pft"] == "total"
            assert ISIMIP_CANONICAL[m["variable"]] == rec.variable
            assert rec.raw_variable == f"{m['variable']}-total"
            assert parts[4].lower() == m["model"]  # model directory is the model name
            if ens == "ISIMIP3b":
                assert m["bias_adjustment"] == "w5e5" and (m["start_year"], m["end_year"]) == (
                    "1850",
                    "2014",
                )
            else:
                assert (m["start_year"], m["end_year"]) == ("1901", "2019")
        else:
            assert name.endswith(".nc4") and "_global_monthly_" in name
            var = name.split("_global_monthly_")[0].rsplit("_", 1)[1]
            assert ISIMIP_CANONICAL[var] == rec.variable
    assert per_round == {"ISIMIP3a": 25, "ISIMIP3b": 125, "ISIMIP2b": 35, "ISIMIP2a": 35}
    models3 = {
        r.traits["source_id"]
        for r in cat.series()
        if r.traits["ensemble"] in ("ISIMIP3a", "ISIMIP3b")
    }
    assert models3 == {
        "jules",
        "orchidee-mict",
        "jsbach-wet",
        "jsbach-dry",
        "elm-eca",
    }  # PAPER.md's five
    prov = cat.provenance
    for k in (
        "source",
        "host",
        "naming_protocol",
        "terms",
        "checked",
        "construction",
        "filter",
        "unconfirmed",
    ):
        assert prov.get(k), k
    assert "not fetched" in spec["description"].lower() or "not fetched" in prov["checked"]


def test_isimip_rows_read_by_the_crawler_convention():
    # gridflux's crawler (catalog.parse_path) must read the ISIMIP2 file names into the same
    # identity
    from gridflux.ingest.catalog import parse_path

    cat = load_catalog(ISIMIP)
    n = 0
    for rec in cat.series():
        if rec.traits["ensemble"] not in ("ISIMIP2a", "ISIMIP2b"):
            continue
        rel = urlsplit(rec.paths[0]).path.lstrip("/")
        d = parse_path(rel)
        assert d is not None, rel
        assert (d["ensemble"], d["source_id"], d["experiment"], d["variable"]) == (
            rec.traits["ensemble"],
            rec.traits["source_id"],
            rec.traits["experiment"],
            rec.variable,
        )
        n += 1
    assert n == 70


def test_mstmip_catalog_rows_urls_and_names():
    with open(MSTMIP) as f:
        text = f.read()
    doc = yaml.safe_load(text)
    n_rows = len(doc["sources"])
    assert n_rows == 14 * 6
    cat = load_catalog(MSTMIP)
    _check_common(cat, n_rows)
    _assert_no_credentials(text, MSTMIP)
    for entry in doc["sources"].values():
        assert set(entry["args"]) <= {"urlpath", "xarray_kwargs"}
    base = "https://data.ornldaac.earthdata.nasa.gov/protected/nacp/NACP_MsTMIP_TBMO/data/"
    name_re = re.compile(r"^(?P<model>[A-Za-z0-9-]+)_SG3_Monthly_(?P<var>[A-Za-z]+)\.nc4$")
    for rec in cat.series():
        (url,) = rec.paths
        _check_url(url, "data.ornldaac.earthdata.nasa.gov", base)
        m = name_re.match(url[len(base) :])
        assert m, url
        assert m["model"] == rec.traits["source_id"] and rec.traits["ensemble"] == "MsTMIP"
        assert MSTMIP_CANONICAL[m["var"]] == rec.variable and rec.raw_variable == m["var"]
        assert rec.traits["experiment"] == "SG3"
    prov = cat.provenance
    for k in (
        "source",
        "doi",
        "terms",
        "access",
        "checked",
        "construction",
        "filter",
        "unconfirmed",
    ):
        assert prov.get(k), k
    assert "netrc" in prov["access"] and "never" in prov["access"]


@pytest.mark.parametrize("which", ["isimip", "mstmip"])
def test_shipped_files_are_what_the_generator_writes(tmp_path, which):
    spec = importlib.util.spec_from_file_location(
        "gen", os.path.join(CATALOGS, "generate_public_catalogs.py")
    )
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    if which == "isimip":
        gen.write_isimip(str(tmp_path))
        names = ["isimip-carbon-monthly.json", "isimip-carbon-monthly.csv"]
    else:
        gen.write_mstmip(str(tmp_path))
        names = ["ornldaac-mstmip-v1-sg3-monthly.yaml"]
    for n in names:
        with open(tmp_path / n) as a, open(os.path.join(CATALOGS, n)) as b:
            assert a.read() == b.read(), (
                f"{n} differs from catalogs/generate_public_catalogs.py output"
            )
