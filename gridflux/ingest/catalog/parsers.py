"""Catalog readers: intake-esm collections (JSON + CSV, or ``catalog_dict``), a bare CSV, intake
YAML; and the ``gridflux`` block of a collection (root, column renames, defaults, query)."""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from gridflux.errors import CatalogError, GridfluxError
from gridflux.ingest.catalog.collection import Catalog
from gridflux.ingest.catalog.paths import is_url, parent_of, resolve_path
from gridflux.ingest.catalog.query import matches
from gridflux.ingest.catalog.schema import COLUMNS, CatalogRow, row_error

#: Accepted intake YAML drivers -> format.
YAML_DRIVERS = {
    "netcdf": "netcdf",
    "intake_xarray.netcdf.NetCDFSource": "netcdf",
    "zarr": "zarr",
    "intake_xarray.xzarr.ZarrSource": "zarr",
}
_ENGINES = ("netcdf4", "h5netcdf")
_ENGINES = ("netcdf4", "h5netcdf")


def read_text(path: str, storage_options: Mapping[str, Any] | None) -> str:
    """Text of a catalog file at a local path or URL (remote reads retried: :mod:`gridflux.ingest.remote`)."""
    from gridflux.ingest import remote

    if remote.is_remote(path):
        where = remote.scrub(path, storage_options)
        try:
            data = remote.read_bytes(path, storage_options)
        except FileNotFoundError as exc:
            raise CatalogError(f"{where}: catalog file not found") from exc
        except GridfluxError as exc:
            if "not found" in str(exc):
                raise CatalogError(f"{where}: catalog file not found") from exc
            raise CatalogError(f"{where}: cannot read catalog ({exc})") from exc
        except OSError as exc:
            raise CatalogError(
                f"{where}: cannot read catalog ({type(exc).__name__}: "
                f"{remote.scrub(str(exc), storage_options)})"
            ) from exc
        try:
            return data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise CatalogError(f"{where}: catalog is not UTF-8 text ({exc})") from exc
    import fsspec

    try:
        with fsspec.open(path, "rt", **(storage_options or {})) as f:
            return f.read()
    except FileNotFoundError as exc:
        raise CatalogError(f"{path}: catalog file not found") from exc
    except OSError as exc:
        raise CatalogError(f"{path}: cannot read catalog ({type(exc).__name__}: {exc})") from exc


def load_catalog(
    path_or_url: str | os.PathLike, *, storage_options: Mapping[str, Any] | None = None
) -> Catalog:
    """Load and validate an intake-esm JSON (+CSV) or intake YAML catalog from any fsspec location.

    Raises
    ------
    CatalogError
        Naming the catalog file, the line and the field of the first bad entry.
    """
    path = os.fspath(path_or_url)
    if path.endswith((".yaml", ".yml")):
        return _load_yaml(path, storage_options)
    if path.endswith(".csv"):
        return _load_csv(path, read_text(path, storage_options), parent_of(path), {})
    text = read_text(path, storage_options)
    try:
        spec = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CatalogError(f"{path}, line {exc.lineno}: not valid JSON ({exc.msg})") from exc
    return _load_esm(path, spec, storage_options)


class _EsmSpec(BaseModel):
    model_config = ConfigDict(extra="allow")
    esmcat_version: str
    id: str = ""
    description: str = ""
    catalog_file: str | None = None
    catalog_dict: list[dict[str, Any]] | None = None
    attributes: list[dict[str, Any]] = []
    assets: dict[str, Any]
    aggregation_control: dict[str, Any] | None = None


def _load_esm(
    path: str, spec_json: dict[str, Any], storage_options: Mapping[str, Any] | None
) -> Catalog:
    try:
        spec = _EsmSpec.model_validate(spec_json)
    except ValidationError as exc:
        raise row_error(f"{path} (collection spec)", exc) from exc
    assets = spec.assets
    col = assets.get("column_name", "path")
    fmt_col = assets.get("format_column_name")
    fixed_fmt = assets.get("format")
    root = parent_of(path)
    extra = spec.model_extra or {}
    provenance = (
        dict(extra.get("provenance", {})) if isinstance(extra.get("provenance"), dict) else {}
    )
    gf = extra.get("gridflux", {}) if isinstance(extra.get("gridflux"), dict) else {}
    if gf.get("root"):
        root = (
            resolve_path(root, str(gf["root"]), f"{path}, gridflux.root")
            if not is_url(gf["root"])
            else gf["root"]
        )
    renames = {col: "path"}
    if fmt_col:
        renames[fmt_col] = "format"
    # a catalog may map foreign column names (e.g. Pangeo's variable_id, zstore) and filter rows
    renames.update({str(k): str(v) for k, v in (gf.get("columns") or {}).items()})
    query = gf.get("query") or None
    defaults = dict(gf.get("defaults") or {})
    if spec.catalog_dict is not None:
        rows = []
        for i, raw in enumerate(spec.catalog_dict):
            rows.append(
                _validate_row(
                    {renames.get(k, k): v for k, v in raw.items()},
                    root,
                    f"{path}, catalog_dict entry {i}",
                    fixed_fmt,
                )
            )
        return Catalog(path, root, rows, spec.description, provenance)
    if not spec.catalog_file:
        raise CatalogError(
            f"{path}, field 'catalog_file': missing; expected a CSV file name or catalog_dict"
        )
    csv_path = spec.catalog_file
    if not is_url(csv_path) and not os.path.isabs(csv_path):
        csv_path = resolve_path(parent_of(path), csv_path, f"{path}, field 'catalog_file'")
    text = read_text(csv_path, storage_options)
    return _load_csv(
        csv_path,
        text,
        root,
        renames,
        fixed_fmt,
        spec.description,
        provenance,
        json_path=path,
        query=query,
        defaults=defaults,
    )


def _validate_row(data: dict[str, Any], root: str, where: str, fixed_fmt: str | None) -> CatalogRow:
    data = {k: v for k, v in data.items() if k is not None}
    if fixed_fmt and not data.get("format"):
        data["format"] = fixed_fmt
    try:
        row = CatalogRow.model_validate(data)
    except ValidationError as exc:
        raise row_error(where, exc) from exc
    row.path = resolve_path(root, row.path, where)
    return row


def _load_csv(
    csv_path: str,
    text: str,
    root: str,
    renames: dict[str, str],
    fixed_fmt: str | None = None,
    description: str = "",
    provenance: dict[str, Any] | None = None,
    json_path: str | None = None,
    query: Mapping[str, Any] | None = None,
    defaults: Mapping[str, Any] | None = None,
) -> Catalog:
    reader = csv.DictReader(io.StringIO(text))
    if reader.fieldnames is None:
        raise CatalogError(
            f"{csv_path}, line 1: empty catalog; expected a header with {list(COLUMNS[:6])}..."
        )
    header = [renames.get(h, h) for h in reader.fieldnames] + list(defaults or {})
    missing = [c for c in ("ensemble", "source_id", "variable", "path") if c not in header]
    if missing:
        raise CatalogError(f"{csv_path}, line 1 (header): missing column(s) {missing}")
    rows = []
    for raw in reader:
        where = f"{csv_path}, line {reader.line_num}"
        if None in raw:
            raise CatalogError(f"{where}: more fields than the header's {len(header)}")
        data = {
            **(defaults or {}),
            **{renames.get(k, k): v for k, v in raw.items() if k is not None},
        }
        if query and not matches(data, query):
            continue
        rows.append(_validate_row(data, root, where, fixed_fmt))
    return Catalog(json_path or csv_path, root, rows, description, provenance or {})


def _load_yaml(path: str, storage_options: Mapping[str, Any] | None) -> Catalog:
    import yaml

    text = read_text(path, storage_options)
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f", line {mark.line + 1}" if mark else ""
        raise CatalogError(f"{path}{line}: not valid YAML ({exc})") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("sources"), dict):
        raise CatalogError(f"{path}, line 1, field 'sources': expected a mapping of entries")
    lines: dict[str, int] = {}
    for k, v in node.value:
        if k.value == "sources":
            for k2, _ in v.value:
                lines[k2.value] = k2.start_mark.line + 1
    root = parent_of(path)
    meta = doc.get("metadata") or {}
    rows = []
    for name, entry in doc["sources"].items():
        where = f"{path}, line {lines.get(name, '?')} (source {name!r})"
        if not isinstance(entry, dict):
            raise CatalogError(f"{where}: expected a mapping with driver, args, metadata")
        driver = entry.get("driver")
        if driver not in YAML_DRIVERS:
            raise CatalogError(
                f"{where}, field 'driver': {driver!r} is not allowed; expected one of {sorted(YAML_DRIVERS)}"
            )
        args = entry.get("args") or {}
        unknown = set(args) - {"urlpath", "xarray_kwargs", "chunks", "storage_options"}
        if unknown:
            raise CatalogError(
                f"{where}, field 'args': {sorted(unknown)} not allowed; expected urlpath, xarray_kwargs"
            )
        if args.get("storage_options"):
            raise CatalogError(
                f"{where}, field 'args.storage_options': credentials and storage options are passed by "
                "the user, never stored in a catalog"
            )
        xkw = args.get("xarray_kwargs") or {}
        if (
            set(xkw) - {"engine", "chunks", "decode_times"}
            or xkw.get("engine", "netcdf4") not in _ENGINES
        ):
            raise CatalogError(
                f"{where}, field 'args.xarray_kwargs': only engine in {_ENGINES} is allowed"
            )
        urls = args.get("urlpath")
        if isinstance(urls, str):
            urls = [urls]
        if not urls or not isinstance(urls, list):
            raise CatalogError(
                f"{where}, field 'args.urlpath': missing; expected a path or a list of paths"
            )
        md = dict(entry.get("metadata") or {})
        for u in urls:
            defaults = meta.get("columns") or {}  # catalog-wide column values, e.g. {ensemble: GCB}
            data = {**defaults, **md, "path": u, "format": YAML_DRIVERS[driver]}
            rows.append(_validate_row(data, root, where, None))
    return Catalog(
        path, root, rows, str(doc.get("description", "")), dict(meta.get("provenance", {}) or {})
    )
