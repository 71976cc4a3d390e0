"""Catalogs cannot hang or crash the reader (issue 20, point 3): limits on size, depth, alias
expansion and rows before validation; every malformed catalog is one CatalogError.

The timeouts are generous guards against a hang (each case finishes in well under a second),
not timing assertions."""

import json

import dask
import pytest

from gridflux.errors import CatalogError
from gridflux.ingest.catalog import load_catalog

pytestmark = pytest.mark.timeout(10)

ENTRY = (
    "sources:\n  bomb:\n    driver: netcdf\n    args: {urlpath: a.nc}\n    metadata:\n"
    "      ensemble: E\n      source_id: S\n      variable: rh\n"
)


def _one_line(exc: pytest.ExceptionInfo) -> str:
    text = str(exc.value)
    assert "\n" not in text and len(text) < 1000
    return text


def test_billion_laughs_in_an_entrys_metadata(tmp_path):
    # 9 levels of 9 aliases: 9**9 (387 million) leaves once expanded, from a 1 KB file
    lines = ['      l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, 10):
        refs = ", ".join([f"*l{i - 1}"] * 9)
        lines.append(f"      l{i}: &l{i} [{refs}]")
    p = tmp_path / "bomb.yaml"
    p.write_text(ENTRY + "\n".join(lines) + "\n")
    assert p.stat().st_size < 1500
    with pytest.raises(CatalogError, match="YAML nodes once aliases are expanded") as info:
        load_catalog(p)
    assert str(p) in _one_line(info)


def test_cyclic_alias(tmp_path):
    p = tmp_path / "cycle.yaml"
    p.write_text(ENTRY + "      loop: &loop {ensemble: E, again: *loop}\n")
    with pytest.raises(CatalogError, match="cyclic alias") as info:
        load_catalog(p)
    assert "line 9" in _one_line(info)
    q = tmp_path / "cycle-list.yaml"
    q.write_text(ENTRY + "      loop: &loop [1, *loop]\n")
    with pytest.raises(CatalogError, match="cyclic alias"):
        load_catalog(q)


def test_a_shared_alias_within_limits_is_fine(tmp_path):
    p = tmp_path / "ok.yaml"
    p.write_text(
        "metadata:\n  columns: &cols {ensemble: E, source_id: S}\nsources:\n"
        "  a:\n    driver: netcdf\n    args: {urlpath: a.nc}\n"
        "    metadata: {<<: *cols, variable: rh}\n"
    )
    (row,) = load_catalog(p).rows
    assert (row.ensemble, row.source_id, row.variable) == ("E", "S", "rh")


def test_json_nested_200k_deep(tmp_path):
    p = tmp_path / "deep.json"
    n = 200_000
    p.write_text(
        '{"esmcat_version": "0.1.0", "assets": {"column_name": "path"},\n"x": '
        + "[" * n
        + "]" * n
        + "}"
    )
    with pytest.raises(CatalogError, match="JSON nested deeper than 64 levels") as info:
        load_catalog(p)
    assert "line 2" in _one_line(info)


def test_yaml_nested_deep(tmp_path):
    p = tmp_path / "deep.yaml"
    n = 100_000
    p.write_text("sources: " + "[" * n + "]" * n + "\n")
    with pytest.raises(CatalogError, match="nested") as info:
        load_catalog(p)
    _one_line(info)


def test_brackets_inside_strings_and_comments_do_not_count_as_depth(tmp_path):
    y = tmp_path / "c.yaml"
    y.write_text(
        "# " + "[" * 100 + "\n"
        "description: '" + "{" * 100 + "''s'\n"
        'metadata: {provenance: {note: "' + "[" * 100 + '\\" ok"}}\n'
        "sources:\n  a:\n    driver: netcdf\n    args: {urlpath: a.nc}\n"
        "    metadata: {ensemble: E, source_id: S, variable: rh}\n"
    )
    assert len(load_catalog(y).rows) == 1
    p = tmp_path / "c.json"
    p.write_text(
        json.dumps(
            {
                "esmcat_version": "0.1.0",
                "description": "[[[[" * 100 + '\\" {{{{' * 100,
                "assets": {"column_name": "path"},
                "catalog_dict": [
                    {"ensemble": "E", "source_id": "S", "variable": "rh", "path": "a"}
                ],
            }
        )
    )
    assert len(load_catalog(p).rows) == 1


def _csv(tmp_path, n):
    p = tmp_path / "c.csv"
    p.write_text(
        "ensemble,source_id,variable,path\n" + "".join(f"E,S{i},rh,a{i}.nc\n" for i in range(n))
    )
    return p


def test_row_and_size_limits(tmp_path):
    p = _csv(tmp_path, 5)
    assert len(load_catalog(p).rows) == 5
    with dask.config.set({"gridflux.catalog.max-rows": 4}):
        with pytest.raises(CatalogError, match="more than 4 rows") as info:
            load_catalog(p)
        _one_line(info)
        y = tmp_path / "many.yaml"
        y.write_text(
            "sources:\n  s:\n    driver: netcdf\n    args: {urlpath: [a, b, c, d, e]}\n"
            "    metadata: {ensemble: E, source_id: S, variable: rh}\n"
        )
        with pytest.raises(CatalogError, match="more than 4 rows"):
            load_catalog(y)
    with dask.config.set({"gridflux.catalog.max-bytes": 50}):
        with pytest.raises(CatalogError, match=r"bytes, more than the limit of 50"):
            load_catalog(p)


@pytest.mark.parametrize(
    ("name", "text", "match"),
    [
        ("list.json", "[1, 2]", "expected a JSON object"),
        ("bad.json", '{"esmcat_version": "0.1.0", "assets": ', "not valid JSON"),
        (
            "cols.json",
            '{"esmcat_version": "0.1.0", "assets": {}, "gridflux": {"columns": [1]}}',
            "gridflux.columns': expected a mapping",
        ),
        (
            "key.json",
            '{"esmcat_version": "0.1.0", "assets": {}, "gridflux": {"rooot": "x"}}',
            r"unknown key\(s\) \['rooot'\]",
        ),
        (
            "nested.json",
            '{"esmcat_version": "0.1.0", "assets": {}, "catalog_dict": [{"ensemble": "E", '
            '"source_id": "S", "variable": "rh", "path": "a", "x": {"y": 1}}]}',
            r"catalog_dict entry 0, field\(s\) \['x'\]: a list or mapping",
        ),
        ("args.yaml", "sources:\n  s:\n    driver: netcdf\n    args: [1]\n", "field 'args'"),
        ("src.yaml", "sources: [1, 2]\n", "field 'sources'"),
        ("meta.yaml", "metadata: 3\nsources: {}\n", "field 'metadata'"),
        ("driver.yaml", "sources:\n  s: {driver: [1], args: {urlpath: a}}\n", "field 'driver'"),
        ("url.yaml", "sources:\n  s: {driver: netcdf, args: {urlpath: [1]}}\n", "urlpath"),
        ("tab.yaml", "sources:\n\t- x\n", "not valid YAML"),
        ("key.yaml", "sources:\n  ? [a, b]\n  : 1\n", "not valid YAML|expected a mapping"),
        ("wide.csv", "ensemble,source_id,variable,path\nE,S,rh,a,b\n", "line 2: more fields"),
        ("empty.csv", "", "empty catalog"),
    ],
)
def test_every_malformed_catalog_is_one_catalog_error(tmp_path, name, text, match):
    p = tmp_path / name
    p.write_text(text)
    with pytest.raises(CatalogError, match=match) as info:
        load_catalog(p)
    assert str(p) in _one_line(info)
