"""The one query matcher: its rules, the same through ``Catalog.series`` and ``gridflux.query``."""

import json

import pytest

from gridflux.ingest.catalog import load_catalog, matches, write_catalog

from .conftest import write_file


@pytest.mark.parametrize(
    ("data", "query", "expected"),
    [
        ({"ensemble": "TRENDY"}, None, True),
        ({"ensemble": "TRENDY"}, {}, True),
        ({"ensemble": "TRENDY"}, {"ensemble": "TRENDY"}, True),
        ({"ensemble": "TRENDY"}, {"ensemble": "trendy"}, False),  # text is case-sensitive
        ({"ensemble": "TRENDY"}, {"ensemble": ["GCB", "TRENDY"]}, True),
        ({"ensemble": "TRENDY"}, {"ensemble": ("GCB",)}, False),
        (
            {"ensemble": "TRENDY", "experiment": "S3"},
            {"ensemble": "TRENDY", "experiment": "S2"},
            False,
        ),
        ({"ensemble": "TRENDY"}, [{"ensemble": "GCB"}, {"ensemble": "TRENDY"}], True),
        ({"ensemble": "TRENDY"}, [{"ensemble": "GCB"}], False),
        ({"fire": True}, {"fire": "true"}, True),
        ({"fire": "True"}, {"fire": True}, True),
        ({"fire": "FALSE"}, {"fire": False}, True),
        ({"fire": None}, {"fire": ""}, True),
        ({}, {"fire": ""}, True),  # a missing column is the empty text
        ({}, {"fire": "true"}, False),
        ({"layer": 3}, {"layer": "3"}, True),
        ({"variable": "netAtmosLandCO2Flux"}, {"variable": "nbp"}, True),  # alias -> canonical
        ({"variable": "nbp"}, {"variable": "NBP"}, True),  # both ways
        ({"variable": "nbp"}, {"variable": "rh"}, False),
    ],
)
def test_query_rules(data, query, expected):
    assert matches(data, query) is expected


def test_the_same_rules_before_and_after_validation(tmp_path):
    """A ``gridflux.query`` block (raw CSV text) and ``Catalog.series`` (validated rows) select
    the same rows for the same query."""
    rows = []
    for i, (ens, fire, var) in enumerate(
        [("TRENDY", True, "nbp"), ("TRENDY", False, "nbp"), ("GCB", True, "netAtmosLandCO2Flux")]
    ):
        p = tmp_path / f"f{i}.nc"
        write_file(p, var="nbp")
        rows.append(
            {"ensemble": ens, "source_id": f"M{i}", "variable": var, "path": str(p), "fire": fire}
        )
    path = write_catalog(rows, tmp_path / "cat.json")
    query = {"fire": "True", "variable": "nbp"}
    via_series = {s.traits["source_id"] for s in load_catalog(path).series(query)}
    spec = json.loads(open(path).read())
    spec["gridflux"] = {"query": query}
    (tmp_path / "q.json").write_text(json.dumps(spec))
    via_block = {r.source_id for r in load_catalog(tmp_path / "q.json").rows}
    assert via_series == via_block == {"M0", "M2"}
