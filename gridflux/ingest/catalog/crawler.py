"""The crawler: catalog fields from file names and folders (CMIP6 DRS, ISIMIP, one file per
year), and :func:`build_catalog` over a tree."""

from __future__ import annotations

import os
import re
from typing import Any

from gridflux.fields.units import ALIASES
from gridflux.ingest.catalog.schema import FX_VARIABLES, CatalogRow
from gridflux.ingest.catalog.writer import write_catalog

_CMIP6_FILE = re.compile(
    r"^(?P<variable>[^_]+)_(?P<table_id>[^_]+)_(?P<source_id>[^_]+)_(?P<experiment>[^_]+)_(?P<member_id>[^_]+)_"
    r"(?P<grid_label>g[^_]+)(_(?P<time_range>\d{4,8}-\d{4,8}))?\.nc$"
)
_ISIMIP_FILE = re.compile(
    r"^(?P<head>.+)_(?P<variable>[^_]+)_(?P<region>global|[a-z\-]+)_(?P<step>monthly|annual|daily)_"
    r"(?P<start>\d{4})_(?P<end>\d{4})\.nc4?$"
)
_YEARLY_FILE = re.compile(
    r"^(?P<source_id>[^_]+)_(?P<experiment>[^_]+)_(?P<variable>[^_]+)_(?P<year>\d{4})\.nc4?$"
)


def _raw_to_variable(raw: str) -> tuple[str, str] | None:
    """(catalog variable, raw_variable) for a file's variable name, or None if not a budget variable."""
    if raw in FX_VARIABLES:
        return raw, ""
    if raw in ALIASES:
        return raw, ""
    low = {k.lower(): k for k in ALIASES}
    if raw.lower() in low:
        return low[raw.lower()], raw
    # ISIMIP3 names carry a vegetation suffix: npp-total, gpp-pft ... -> npp, gpp (raw name kept)
    base = raw.split("-", 1)[0]
    if base != raw and base.lower() in low:
        return low[base.lower()], raw
    return None


def parse_path(rel: str) -> dict[str, Any] | None:
    """Catalog fields from a path relative to the crawl root (CMIP6 DRS, ISIMIP, yearly files)."""
    parts = rel.replace(os.sep, "/").split("/")
    name = parts[-1]
    m = _CMIP6_FILE.match(name)
    if m and len(parts) >= 10:
        d = m.groupdict()
        drs = parts[-10:-1]
        activity, _institution, source, exp, member, table, var, grid, version = drs
        if (source, exp, member, table, var, grid) != (
            d["source_id"],
            d["experiment"],
            d["member_id"],
            d["table_id"],
            d["variable"],
            d["grid_label"],
        ):
            return None
        v = _raw_to_variable(var)
        if v is None:
            return None
        return {
            "ensemble": activity,
            "source_id": source,
            "experiment": exp,
            "member_id": member,
            "variable": v[0],
            "raw_variable": v[1],
            "grid_label": grid,
            "table_id": table,
            "version": version,
            "time_range": d["time_range"] or "",
            "per_land_area": True if table == "Lmon" else None,
        }
    m = _ISIMIP_FILE.match(name)
    if m:
        d = m.groupdict()
        head = d["head"].split("_")
        if len(head) < 3:
            return None
        model, forcing = head[0], head[1]
        # ISIMIP2a/2b/3b: model_forcing_bias_scenario_soc_sens; ISIMIP3a: model_forcing_scenario_soc_sens
        exp_i = 3 if len(head) >= 6 else 2
        exp = head[exp_i]
        ens = next(
            (p for p in parts[:-1] if re.fullmatch(r"ISIMIP\d[ab]", p, flags=re.I)), "ISIMIP"
        )
        v = _raw_to_variable(d["variable"])
        if v is None:
            return None
        # the forcing belongs to the member: one model's runs under several GCMs are separate series
        member_id = "_".join([forcing] + head[exp_i + 1 :])
        return {
            "ensemble": ens,
            "source_id": model,
            "experiment": exp,
            "member_id": member_id,
            "variable": v[0],
            "raw_variable": v[1],
            "forcing": forcing,
            "time_range": f"{d['start']}-{d['end']}",
        }
    m = _YEARLY_FILE.match(name)
    if m and len(parts) >= 2:
        d = m.groupdict()
        v = _raw_to_variable(d["variable"])
        if v is None:
            return None
        return {
            "ensemble": parts[0],
            "source_id": d["source_id"],
            "experiment": d["experiment"],
            "member_id": "r1",
            "variable": v[0],
            "raw_variable": v[1],
            "time_range": f"{d['year']}-{d['year']}",
        }
    return None


def build_catalog(
    directory: str | os.PathLike, out: str | os.PathLike, *, description: str = ""
) -> tuple[str, int, list[str]]:
    """Crawl a tree (CMIP6 DRS, ISIMIP names, one file per year) into an intake-esm catalog.

    Returns (json path, number of rows, files that matched no convention).
    """
    directory = os.path.abspath(os.fspath(directory))
    rows: list[dict[str, Any]] = []
    skipped: list[str] = []
    for dirpath, dirnames, filenames in os.walk(directory):
        dirnames.sort()
        for fn in sorted(filenames):
            if not fn.endswith((".nc", ".nc4")):
                continue
            full = os.path.join(dirpath, fn)
            rel = os.path.relpath(full, directory)
            d = parse_path(rel)
            if d is None:
                skipped.append(rel)
                continue
            d["path"] = full
            d["format"] = "netcdf"
            rows.append(d)
    # drop older versions of the same file name (CMIP6: keep the newest version directory)
    newest: dict[tuple[str, str, str, str, str, str], str] = {}
    for d in rows:
        if d.get("version"):
            k = (
                d["ensemble"],
                d["source_id"],
                d["experiment"],
                d["member_id"],
                d["variable"],
                d.get("grid_label", ""),
            )
            newest[k] = max(newest.get(k, ""), d["version"])
    rows = [
        d
        for d in rows
        if not d.get("version")
        or d["version"]
        == newest[
            (
                d["ensemble"],
                d["source_id"],
                d["experiment"],
                d["member_id"],
                d["variable"],
                d.get("grid_label", ""),
            )
        ]
    ]
    # fx rows of a model are paired by ensemble + source_id (+ grid) at load time, whatever their version
    for d in rows:
        CatalogRow.model_validate({**d, "path": d["path"]})
    path = write_catalog(rows, out, description=description or f"crawled from {directory}")
    return path, len(rows), skipped
