"""The crawler: catalog fields from file names and folders, and :func:`build_catalog` over a tree.

Conventions known (:func:`parse_path`, tried in this order), for ANY variable:

1. **CMIP6 DRS**: ``<mip_era>/<activity>/<institution>/<source>/<experiment>/<member>/<table>/
   <variable>/<grid>/<version>/<variable>_<table>_<source>_<experiment>_<member>_<grid>
   [_<time range>].nc`` (any table: ``Amon``, ``Lmon``, ``day``, ``Omon``, ``fx``...); the
   ensemble is the activity.
2. **CMIP6 file name** alone (folders not DRS): the same file name; the ensemble is ``CMIP6``.
3. **ISIMIP2/3**: ``<model>_<forcing>_[<bias>_]<scenario>_<soc>_<sens>_<variable>_<region>_
   <step>_<start>_<end>.nc[4]``; the ensemble is the ``ISIMIPxy`` folder above it.
4. **One file per year**: ``<ensemble>/.../<source>_<experiment>_<variable>_<YYYY>.nc``.
5. **Model-run files** (GCB, GMB, GNB, MsTMIP, CARDAMOM distributions as gridflux's synthetic
   archive lays them out): ``<ensemble>/[<group>/]<source>/<source>_<experiment>_<member>_
   <variable>_<start>-<end>.nc``, the file name starting with its folder's name.

A variable gridflux knows (canonical, alias, ISIMIP3 ``npp-total``) is catalogued under its
catalog name with the file's own name in ``raw_variable``; any other under its own name.
:func:`~gridflux.ingest.catalog.variables.classify` says what gridflux makes of each.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any

from gridflux.ingest.catalog.check import VariableSummary, summarize_variables
from gridflux.ingest.catalog.schema import CatalogRow
from gridflux.ingest.catalog.variables import known_variable
from gridflux.ingest.catalog.writer import write_catalog

_CMIP6_FILE = re.compile(
    r"^(?P<variable>[^_]+)_(?P<table_id>[^_]+)_(?P<source_id>[^_]+)_(?P<experiment>[^_]+)_"
    r"(?P<member_id>[^_]+)_(?P<grid_label>g[^_]+)"
    r"(_(?P<time_range>\d{4,14}-\d{4,14})(-clim)?)?\.nc$"
)
_ISIMIP_FILE = re.compile(
    r"^(?P<head>.+)_(?P<variable>[^_]+)_(?P<region>global|[a-z\-]+)_"
    r"(?P<step>monthly|annual|daily)_(?P<start>\d{4})_(?P<end>\d{4})\.nc4?$"
)
_YEARLY_FILE = re.compile(
    r"^(?P<source_id>[^_]+)_(?P<experiment>[^_]+)_(?P<variable>.+?)_(?P<year>\d{4})\.nc4?$"
)
_RUN_FILE = re.compile(
    r"^(?P<source_id>[^_]+)_(?P<experiment>[^_]+)_(?P<member_id>[^_]+)_(?P<variable>.+?)_"
    r"(?P<start>\d{4}(\d{2})?)-(?P<end>\d{4}(\d{2})?)\.nc4?$"
)
#: The conventions :func:`parse_path` knows, as named in messages.
CONVENTIONS = (
    "CMIP6 DRS",
    "CMIP6 file name",
    "ISIMIP2/3",
    "one file per year",
    "model-run files (<source>/<source>_<experiment>_<member>_<variable>_<start>-<end>.nc)",
)


def _variable_fields(raw: str) -> dict[str, str]:
    """``variable`` and ``raw_variable`` of a file's variable name."""
    known = known_variable(raw)
    if known is None:
        return {"variable": raw, "raw_variable": ""}
    return {"variable": known, "raw_variable": "" if known == raw else raw}


def _cmip6(parts: list[str], name: str) -> dict[str, Any] | None:
    m = _CMIP6_FILE.match(name)
    if not m:
        return None
    d = m.groupdict()
    fields = {
        "ensemble": "CMIP6",
        "source_id": d["source_id"],
        "experiment": d["experiment"],
        "member_id": d["member_id"],
        **_variable_fields(d["variable"]),
        "grid_label": d["grid_label"],
        "table_id": d["table_id"],
        "version": "",
        "time_range": d["time_range"] or "",
        # per land area: the file's cell_methods says ('area: mean where land'); the table
        # (Lmon) is only the fallback where it does not (catalog.opening.load_series)
        "per_land_area": None,
    }
    if len(parts) >= 10:
        activity, _inst, source, exp, member, table, var, grid, version = parts[-10:-1]
        drs = (source, exp, member, table, var, grid)
        want = tuple(
            d[k]
            for k in ("source_id", "experiment", "member_id", "table_id", "variable", "grid_label")
        )
        if drs == want:
            fields.update(ensemble=activity, version=version)
    return fields


def _isimip(parts: list[str], name: str) -> dict[str, Any] | None:
    m = _ISIMIP_FILE.match(name)
    if not m:
        return None
    d = m.groupdict()
    head = d["head"].split("_")
    if len(head) < 3:
        return None
    model, forcing = head[0], head[1]
    # ISIMIP2a/2b/3b: model_forcing_bias_scenario_soc_sens;
    # ISIMIP3a: model_forcing_scenario_soc_sens
    exp_i = 3 if len(head) >= 6 else 2
    ens = next((p for p in parts[:-1] if re.fullmatch(r"ISIMIP\d[ab]", p, flags=re.I)), "ISIMIP")
    # the forcing belongs to the member: one model's runs under several GCMs are separate series
    return {
        "ensemble": ens,
        "source_id": model,
        "experiment": head[exp_i],
        "member_id": "_".join([forcing] + head[exp_i + 1 :]),
        **_variable_fields(d["variable"]),
        "forcing": forcing,
        "time_range": f"{d['start']}-{d['end']}",
    }


def _yearly(parts: list[str], name: str) -> dict[str, Any] | None:
    m = _YEARLY_FILE.match(name)
    if not (m and len(parts) >= 2):
        return None
    d = m.groupdict()
    return {
        "ensemble": parts[0],
        "source_id": d["source_id"],
        "experiment": d["experiment"],
        "member_id": "r1",
        **_variable_fields(d["variable"]),
        "time_range": f"{d['year']}-{d['year']}",
    }


def _model_run(parts: list[str], name: str) -> dict[str, Any] | None:
    m = _RUN_FILE.match(name)
    if not (m and len(parts) in (3, 4) and parts[-2] == m["source_id"]):
        return None
    d = m.groupdict()
    return {
        "ensemble": parts[0],
        "source_id": d["source_id"],
        "experiment": d["experiment"],
        "member_id": d["member_id"],
        "group": parts[1] if len(parts) == 4 else "",
        **_variable_fields(d["variable"]),
        "time_range": f"{d['start']}-{d['end']}",
    }


def parse_path(rel: str) -> dict[str, Any] | None:
    """Catalog fields from a path relative to the crawl root (:data:`CONVENTIONS`, in order), or
    None when the path follows none of them."""
    parts = rel.replace(os.sep, "/").split("/")
    for parse in (_cmip6, _isimip, _yearly, _model_run):
        d = parse(parts, parts[-1])
        if d is not None:
            return d
    return None


@dataclass
class CrawlResult:
    """What :func:`build_catalog` wrote and left out.

    Attributes
    ----------
    path : the catalog JSON written
    rows : the rows written (one per file)
    unmatched : folder (relative to the crawl root, ``.`` for the root) -> netCDF file names in it
        that follow no known convention
    superseded : files (relative paths) left out because a newer CMIP6 version directory holds
        the same dataset
    variables : per (variable, table): files, series and what gridflux makes of it
    """

    path: str
    rows: list[dict[str, Any]]
    unmatched: dict[str, list[str]] = field(default_factory=dict)
    superseded: list[str] = field(default_factory=list)
    variables: list[VariableSummary] = field(default_factory=list)
    directory: str = ""

    @property
    def n_files(self) -> int:
        return len(self.rows)

    @property
    def n_unmatched(self) -> int:
        return sum(len(v) for v in self.unmatched.values())

    def lines(self) -> list[str]:
        """The report for a person: files written, per variable what gridflux computes, and
        everything left out, counted and named."""
        out = [f"wrote {self.path}: {self.n_files} files"]
        cat_dir = os.path.dirname(os.path.realpath(self.path))
        tree = os.path.realpath(self.directory) if self.directory else cat_dir
        if os.path.commonpath([cat_dir, tree]) != cat_dir:
            out.append(
                f"the files are outside the catalog's directory: gridflux reads them with "
                f"--allowed-prefix {tree} (or write the catalog inside {tree})"
            )
        if self.variables:
            out.append("variable [table] (names in the files): files, series -> statistic")
            out.extend(f"  {v.line()}" for v in self.variables)
        if self.superseded:
            out.append(
                f"{len(self.superseded)} files left out: superseded by a newer CMIP6 version "
                f"directory, e.g. {self.superseded[0]}"
            )
        if self.unmatched:
            out.append(
                f"{self.n_unmatched} netCDF files follow no naming convention gridflux knows "
                f"({'; '.join(CONVENTIONS)}), per folder:"
            )
            for folder, names in sorted(self.unmatched.items()):
                out.append(f"  {folder}: {len(names)} (e.g. {names[0]})")
        return out


def _dataset_key(d: dict[str, Any]) -> tuple[str, ...]:
    return tuple(
        str(d.get(c, ""))
        for c in ("ensemble", "source_id", "experiment", "member_id", "variable", "table_id")
    ) + (str(d.get("grid_label", "")),)


def build_catalog(
    directory: str | os.PathLike, out: str | os.PathLike, *, description: str = ""
) -> CrawlResult:
    """Crawl a tree into an intake-esm catalog (JSON + CSV); every netCDF file is catalogued,
    superseded (older CMIP6 version) or named as following no convention.

    Returns
    -------
    CrawlResult (``.lines()`` is the report ``gridflux catalog build`` prints)
    """
    directory = os.path.abspath(os.fspath(directory))
    rows: list[dict[str, Any]] = []
    unmatched: dict[str, list[str]] = {}
    for dirpath, dirnames, filenames in os.walk(directory):
        dirnames.sort()
        for fn in sorted(filenames):
            if not fn.endswith((".nc", ".nc4")):
                continue
            full = os.path.join(dirpath, fn)
            rel = os.path.relpath(full, directory)
            d = parse_path(rel)
            if d is None:
                unmatched.setdefault(os.path.dirname(rel) or ".", []).append(fn)
                continue
            d["path"] = full
            d["format"] = "netcdf"
            d["_rel"] = rel
            rows.append(d)
    # CMIP6: keep the newest version directory of each dataset (older ones named as superseded);
    # fx rows of a model are paired by source_id (+ grid) at load time, whatever their version
    newest: dict[tuple[str, ...], str] = {}
    for d in rows:
        if d.get("version"):
            newest[_dataset_key(d)] = max(newest.get(_dataset_key(d), ""), d["version"])
    kept, superseded = [], []
    for d in rows:
        rel = d.pop("_rel")
        if d.get("version") and d["version"] != newest[_dataset_key(d)]:
            superseded.append(rel)
        else:
            kept.append(d)
    for d in kept:
        CatalogRow.model_validate(d)
    os.makedirs(os.path.dirname(os.path.abspath(os.fspath(out))), exist_ok=True)
    path = write_catalog(kept, out, description=description or f"crawled from {directory}")
    return CrawlResult(
        path, kept, unmatched, superseded, summarize_variables(kept), directory=directory
    )
