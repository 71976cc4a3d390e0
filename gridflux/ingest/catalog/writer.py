"""Writing a catalog: an intake-esm collection (JSON + CSV) that ``intake.open_esm_datastore``
reads, paths under the JSON's directory written relative to it."""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterable, Mapping
from typing import Any

from gridflux.ingest.catalog.paths import is_url
from gridflux.ingest.catalog.schema import COLUMNS, CatalogRow


def write_catalog(
    rows: Iterable[Mapping[str, Any] | CatalogRow],
    json_path: str | os.PathLike,
    *,
    description: str = "",
    catalog_id: str = "",
    provenance: Mapping[str, Any] | None = None,
) -> str:
    """Write an intake-esm collection (``<name>.json`` + ``<name>.csv``); paths under the
    JSON's directory are written relative to it. Returns the JSON path."""
    json_path = os.fspath(json_path)
    root = os.path.dirname(os.path.abspath(json_path))
    os.makedirs(root, exist_ok=True)
    csv_name = os.path.splitext(os.path.basename(json_path))[0] + ".csv"
    dicts = []
    extra_cols: list[str] = []
    for r in rows:
        d = r.model_dump() | r.extras() if isinstance(r, CatalogRow) else dict(r)
        p = str(d["path"])
        if not is_url(p) and os.path.isabs(p):
            ap = os.path.abspath(p)
            if os.path.commonpath([root, ap]) == root:
                d["path"] = os.path.relpath(ap, root)
        for k in d:
            if k not in COLUMNS and k not in extra_cols:
                extra_cols.append(k)
        dicts.append(d)
    cols = list(COLUMNS) + extra_cols
    with open(os.path.join(root, csv_name), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols)
        w.writeheader()
        for d in dicts:
            w.writerow({c: ("" if d.get(c) is None else d.get(c)) for c in cols})
    spec = {
        "esmcat_version": "0.1.0",
        "id": catalog_id or os.path.splitext(os.path.basename(json_path))[0],
        "description": description,
        "catalog_file": csv_name,
        "attributes": [
            {"column_name": c, "vocabulary": ""} for c in cols if c not in ("path", "format")
        ],
        "assets": {"column_name": "path", "format_column_name": "format"},
        "aggregation_control": {
            "variable_column_name": "variable",
            "groupby_attrs": ["ensemble", "source_id", "experiment", "member_id"],
            "aggregations": [
                {"type": "union", "attribute_name": "variable"},
                {
                    "type": "join_existing",
                    "attribute_name": "time_range",
                    "options": {"dim": "time"},
                },
            ],
        },
    }
    if provenance:
        spec["provenance"] = dict(provenance)
    tmp = json_path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(spec, f, indent=2)
    os.replace(tmp, json_path)
    return json_path
