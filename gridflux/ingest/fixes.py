"""Known defects of real files, repaired by a table: :file:`fixes.yaml` (packaged) read by this
small module, in the shape of ESMValCore's per-dataset fixes but as data.

An entry ``match``-es series by catalog columns (``source_id``, ``table_id``, ``variable``, ...;
a key left out matches anything), says the ``defect`` and the ``repair`` (per axis a bounds rule
of :data:`gridflux.kernels.grids.BOUNDS_RULES`, or ``per_land_area``). The entries that match a
series are attached to its :class:`~gridflux.ingest.catalog.SeriesRecord` (``fixes``) when the
catalog makes its series, so that they are in the series' fingerprint (a changed table
recomputes it) and reach the workers as data; :func:`normalize_arguments` turns them into the
arguments of :func:`gridflux.fields.normalize.normalize` (fields never import ingest).

Extra tables: ``gridflux.catalog.fix-tables`` (a list of YAML paths, read after the packaged one;
a later entry for the same axis wins).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from gridflux import config
from gridflux.errors import CatalogError
from gridflux.kernels.grids import BOUNDS_RULES

#: The packaged table.
PACKAGED_TABLE = Path(__file__).with_name("fixes.yaml")
#: Repair keys an entry may hold, and their allowed values.
REPAIRS: dict[str, tuple[Any, ...]] = {
    "lat_bounds": BOUNDS_RULES,
    "lon_bounds": BOUNDS_RULES,
    "per_land_area": (True, False),
}

__all__ = ["PACKAGED_TABLE", "REPAIRS", "fixes_for", "load_table", "normalize_arguments"]


@lru_cache(maxsize=16)
def _read(path: str) -> tuple[dict[str, Any], ...]:
    try:
        doc = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise CatalogError(f"{path}: fix table cannot be read ({exc})") from exc
    entries = (doc or {}).get("fixes") if isinstance(doc, Mapping) else None
    if not isinstance(entries, list):
        raise CatalogError(f"{path}: expected a mapping with a list 'fixes' of entries")
    out = []
    for i, e in enumerate(entries):
        where = f"{path}: fixes[{i}]"
        if not isinstance(e, Mapping) or not isinstance(e.get("match"), Mapping):
            raise CatalogError(f"{where}: expected keys 'match' (a mapping), 'defect', 'repair'")
        repair = e.get("repair")
        if not isinstance(repair, Mapping) or not repair:
            raise CatalogError(f"{where}: 'repair' must map {sorted(REPAIRS)} to a rule")
        for k, v in repair.items():
            if k not in REPAIRS or v not in REPAIRS[k]:
                raise CatalogError(
                    f"{where}: repair {k}={v!r}; expected one of "
                    + ", ".join(f"{key} in {list(vals)}" for key, vals in REPAIRS.items())
                )
        if not str(e.get("defect", "")).strip():
            raise CatalogError(f"{where}: 'defect' must say what is wrong with the files")
        match = {
            str(k): [str(x) for x in (v if isinstance(v, list) else [v])]
            for k, v in e["match"].items()
        }
        out.append(
            {
                "match": match,
                # one line, no "; " (gridflux_fixes separates repairs with it)
                "defect": " ".join(str(e["defect"]).split()).replace("; ", ", "),
                "repair": dict(repair),
                "table": str(path),
            }
        )
    return tuple(out)


def load_table(paths: Sequence[str | Path] | None = None) -> list[dict[str, Any]]:
    """The fix entries: the packaged table, then ``paths`` (default the configured
    ``gridflux.catalog.fix-tables``), each entry with its table's path."""
    if paths is None:
        paths = list(config.get("catalog.fix-tables", None) or [])
    out: list[dict[str, Any]] = []
    for p in [PACKAGED_TABLE, *paths]:
        out += [dict(e) for e in _read(str(Path(p).expanduser().resolve()))]
    return out


def fixes_for(
    columns: Mapping[str, Any], table: Sequence[Mapping[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """The entries of ``table`` (default :func:`load_table`) that match a series' columns
    (``source_id``, ``table_id``, ``variable``... as a catalog row has them), JSON-ready."""
    table = load_table() if table is None else table
    out = []
    for e in table:
        if all(str(columns.get(k, "") or "") in vals for k, vals in e["match"].items()):
            out.append(
                {
                    "match": {k: list(v) for k, v in e["match"].items()},
                    "defect": e["defect"],
                    "repair": dict(e["repair"]),
                }
            )
    return out


def normalize_arguments(fixes: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """``bounds_rules``, ``fix_reasons`` and (when an entry sets it) ``per_land_area`` for
    :func:`gridflux.fields.normalize.normalize` from a series' fix entries (a later entry wins)."""
    rules: dict[str, str] = {}
    reasons: dict[str, str] = {}
    out: dict[str, Any] = {}
    for e in fixes:
        src = ", ".join(f"{k}={'|'.join(v)}" for k, v in e["match"].items())
        for k, v in e["repair"].items():
            if k in ("lat_bounds", "lon_bounds"):
                axis = k.split("_")[0]
                rules[axis] = v
                reasons[axis] = f"fix table, {src}: {e['defect']}"
            elif k == "per_land_area":
                out["per_land_area"] = bool(v)
    out["bounds_rules"] = rules
    out["fix_reasons"] = reasons
    return out
