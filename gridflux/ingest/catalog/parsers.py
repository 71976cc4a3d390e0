"""Catalog readers: intake-esm collections (JSON + CSV, or ``catalog_dict``), a bare CSV, intake
YAML, an ``intake_esm.esm_datastore`` object; and the ``gridflux`` block of a collection (root,
column renames, defaults, query: docs/ingest.md).

A catalog cannot hang or crash the reader: :data:`LIMITS` (size, nesting depth, YAML alias
expansion, rows) are enforced before anything is validated, YAML aliases are counted as they
expand (a "billion laughs" or a cyclic alias is refused, not built), and every malformed catalog
is one :class:`CatalogError` naming the file (and line or entry where known).
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from gridflux import config
from gridflux.errors import CatalogError, GridfluxError
from gridflux.ingest.catalog.collection import Catalog
from gridflux.ingest.catalog.paths import AllowOutsideRoot, local_target, parent_of, resolve_path
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
#: Limits a catalog must keep: settings ``catalog.<name>`` (defaults in gridflux.yaml).
LIMITS = ("max-bytes", "max-depth", "max-nodes", "max-rows")
#: Keys of a collection's ``gridflux`` block (docs/ingest.md).
GRIDFLUX_KEYS = ("root", "columns", "defaults", "query")


def limit(name: str) -> int:
    """The limit ``name`` of :data:`LIMITS`: the setting ``catalog.<name>``."""
    return int(config.get(f"catalog.{name}"))


def read_text(path: str, storage_options: Mapping[str, Any] | None) -> str:
    """Text of a catalog file at a local path or URL (remote reads retried:
    :mod:`gridflux.ingest.remote`), refused beyond ``max-bytes``."""
    from gridflux.ingest import remote

    max_bytes = limit("max-bytes")
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
        if len(data) > max_bytes:
            raise _too_big(where, len(data), max_bytes)
        try:
            return data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise CatalogError(f"{where}: catalog is not UTF-8 text ({exc})") from exc
    local = local_target(path) or path
    try:
        size = os.path.getsize(local)
        if size > max_bytes:
            raise _too_big(path, size, max_bytes)
        with open(local, encoding="utf-8-sig") as f:
            return f.read()
    except FileNotFoundError as exc:
        raise CatalogError(f"{path}: catalog file not found") from exc
    except UnicodeDecodeError as exc:
        raise CatalogError(f"{path}: catalog is not UTF-8 text ({exc})") from exc
    except OSError as exc:
        raise CatalogError(f"{path}: cannot read catalog ({type(exc).__name__}: {exc})") from exc


def _too_big(where: str, size: int, max_bytes: int) -> CatalogError:
    return CatalogError(
        f"{where}: catalog is {size} bytes, more than the limit of {max_bytes}; expected a "
        "smaller catalog (or raise gridflux.catalog.max-bytes)"
    )


def _too_many_rows(where: str) -> CatalogError:
    n = limit("max-rows")
    return CatalogError(
        f"{where}: more than {n} rows; expected at most {n} (or raise gridflux.catalog.max-rows)"
    )


def is_datastore(obj: Any) -> bool:
    """True for an ``intake_esm.esm_datastore`` (or a subset of one after ``.search``); intake-esm
    itself is not imported."""
    return not isinstance(obj, (str, os.PathLike)) and hasattr(obj, "esmcat") and hasattr(obj, "df")


def load_catalog(
    path_or_url: Any,
    *,
    storage_options: Mapping[str, Any] | None = None,
    allow_outside_root: AllowOutsideRoot = False,
    root: str | os.PathLike | None = None,
) -> Catalog:
    """Load and validate a catalog.

    Parameters
    ----------
    path_or_url : an intake-esm JSON (+CSV), a CSV or an intake YAML at any fsspec location; or
        an ``intake_esm.esm_datastore`` (also a subset of one after ``.search(...)``), whose rows
        (``.df``) are taken as they are
    storage_options : fsspec options to read the catalog (never stored)
    allow_outside_root : a catalog reads only inside its root
        (:mod:`~gridflux.ingest.catalog.paths`): True allows any local path, a list of
        directories allows those
    root : the root of an esm_datastore's relative paths (default: the current directory, where
        intake-esm itself would open them); ignored for files (their root is their directory or
        their ``gridflux.root``)

    Raises
    ------
    CatalogError
        Naming the catalog file, the line or entry and the field of the first bad entry; also
        for a catalog beyond :data:`LIMITS`, and for any malformed structure.
    """
    if is_datastore(path_or_url):
        return _guard(
            "esm_datastore",
            lambda: _load_datastore(
                path_or_url, os.fspath(root or os.getcwd()), allow_outside_root
            ),
        )
    path = os.fspath(path_or_url)
    if path.startswith("file://"):
        path = local_target(path) or path
    return _guard(path, lambda: _load_path(path, storage_options, allow_outside_root))


def _guard(where: str, load):
    """Run a loader; any failure that is not already a :class:`CatalogError` becomes one."""
    try:
        return load()
    except GridfluxError:
        raise
    except RecursionError as exc:
        raise CatalogError(
            f"{where}: nested too deep to read; expected at most {limit('max-depth')} levels"
        ) from exc
    except (TypeError, ValueError, AttributeError, KeyError, IndexError) as exc:
        raise CatalogError(
            f"{where}: malformed catalog ({type(exc).__name__}: {str(exc)[:300]})"
        ) from exc


def _load_path(path: str, storage_options, allow: AllowOutsideRoot) -> Catalog:
    if path.endswith((".yaml", ".yml")):
        return _load_yaml(path, storage_options, allow)
    if path.endswith(".csv"):
        return _load_csv(path, read_text(path, storage_options), parent_of(path), {}, allow=allow)
    text = read_text(path, storage_options)
    spec = _parse_json(path, text)
    if not isinstance(spec, dict):
        raise CatalogError(f"{path}, line 1: expected a JSON object (an intake-esm collection)")
    return _load_esm(path, spec, storage_options, allow)


_NESTING_TOKENS = re.compile(r"[\"'\\\[\]{}#\n]")


def nesting_offset(text: str, max_depth: int) -> int | None:
    """The offset where JSON or YAML ``text`` opens a bracket deeper than ``max_depth`` (flow
    brackets outside quoted strings and comments), or None. Linear and without recursion, so
    that a document nested 200,000 deep is refused before a recursive parser sees it."""
    depth = 0
    quote = ""  # the open quote character, if inside a string
    comment = False
    skip_until = -1  # a backslash in a double-quoted string escapes the next character
    for m in _NESTING_TOKENS.finditer(text):
        c, i = m.group(), m.start()
        if i < skip_until:
            continue
        if comment:
            comment = c != "\n"
        elif quote:
            if c == "\\" and quote == '"':
                skip_until = i + 2
            elif c == quote:
                quote = ""
        elif c in "\"'":
            quote = c
        elif c == "#" and (i == 0 or text[i - 1] in " \t\n"):
            comment = True
        elif c in "[{":
            depth += 1
            if depth > max_depth:
                return i
        elif c in "]}":
            depth = max(depth - 1, 0)
    return None


def _too_deep(path: str, text: str, kind: str) -> None:
    max_depth = limit("max-depth")
    at = nesting_offset(text, max_depth)
    if at is not None:
        line = text.count("\n", 0, at) + 1
        raise CatalogError(
            f"{path}, line {line}: {kind} nested deeper than {max_depth} levels; expected a "
            "flat catalog (or raise gridflux.catalog.max-depth)"
        )


def _parse_json(path: str, text: str) -> Any:
    _too_deep(path, text, "JSON")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise CatalogError(f"{path}, line {exc.lineno}: not valid JSON ({exc.msg})") from exc


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


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise CatalogError(f"{where}: expected a mapping, got {type(value).__name__}")
    return value


def _load_esm(
    path: str,
    spec_json: dict[str, Any],
    storage_options: Mapping[str, Any] | None,
    allow: AllowOutsideRoot = False,
) -> Catalog:
    dict_rows = spec_json.get("catalog_dict")
    if isinstance(dict_rows, list) and len(dict_rows) > limit("max-rows"):
        raise _too_many_rows(f"{path}, field 'catalog_dict'")
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
    gf = _mapping(extra.get("gridflux"), f"{path}, field 'gridflux'")
    unknown = sorted(set(gf) - set(GRIDFLUX_KEYS))
    if unknown:
        raise CatalogError(
            f"{path}, field 'gridflux': unknown key(s) {unknown}; expected {list(GRIDFLUX_KEYS)}"
        )
    if gf.get("root"):
        # the root override is a path like any other: inside the catalog's directory (or allowed)
        root = resolve_path(root, str(gf["root"]), path, allow, field="gridflux.root")
    renames = {col: "path"}
    if fmt_col:
        renames[fmt_col] = "format"
    # a catalog may map foreign column names (e.g. Pangeo's variable_id, zstore) and filter rows
    columns = _mapping(gf.get("columns"), f"{path}, field 'gridflux.columns'")
    renames.update({str(k): str(v) for k, v in columns.items()})
    query = gf.get("query") or None
    if query is not None and not isinstance(query, (dict, list)):
        raise CatalogError(f"{path}, field 'gridflux.query': expected a mapping or a list of them")
    defaults = dict(_mapping(gf.get("defaults"), f"{path}, field 'gridflux.defaults'"))
    if spec.catalog_dict is not None:
        rows = []
        for i, raw in enumerate(spec.catalog_dict):
            data = {**defaults, **{renames.get(k, k): v for k, v in raw.items()}}
            if query and not matches(data, query):
                continue
            rows.append(
                _validate_row(data, root, f"{path}, catalog_dict entry {i}", fixed_fmt, allow)
            )
        return Catalog(path, root, rows, spec.description, provenance)
    if not spec.catalog_file:
        raise CatalogError(
            f"{path}, field 'catalog_file': missing; expected a CSV file name or catalog_dict"
        )
    csv_path = resolve_path(parent_of(path), spec.catalog_file, path, allow, field="catalog_file")
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
        allow=allow,
    )


def _validate_row(
    data: dict[str, Any],
    root: str,
    where: str,
    fixed_fmt: str | None,
    allow: AllowOutsideRoot = False,
) -> CatalogRow:
    data = {k: v for k, v in data.items() if k is not None}
    nested = sorted(str(k) for k, v in data.items() if isinstance(v, (dict, list, tuple, set)))
    if nested:
        raise CatalogError(
            f"{where}, field(s) {nested}: a list or mapping; expected one value per column"
        )
    if fixed_fmt and not data.get("format"):
        data["format"] = fixed_fmt
    try:
        row = CatalogRow.model_validate(data)
    except ValidationError as exc:
        raise row_error(where, exc) from exc
    row.path = resolve_path(root, row.path, where, allow)
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
    query: Any = None,
    defaults: Mapping[str, Any] | None = None,
    allow: AllowOutsideRoot = False,
) -> Catalog:
    reader = csv.DictReader(io.StringIO(text))
    try:
        fieldnames = reader.fieldnames
    except csv.Error as exc:
        raise CatalogError(f"{csv_path}, line 1: not valid CSV ({exc})") from exc
    if fieldnames is None:
        raise CatalogError(
            f"{csv_path}, line 1: empty catalog; expected a header with {list(COLUMNS[:6])}..."
        )
    header = [renames.get(h, h) for h in fieldnames] + list(defaults or {})
    missing = [c for c in ("ensemble", "source_id", "variable", "path") if c not in header]
    if missing:
        raise CatalogError(f"{csv_path}, line 1 (header): missing column(s) {missing}")
    max_rows = limit("max-rows")
    rows = []
    n = 0
    while True:
        try:
            raw = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise CatalogError(
                f"{csv_path}, line {reader.line_num}: not valid CSV ({exc})"
            ) from exc
        n += 1
        if n > max_rows:
            raise _too_many_rows(csv_path)
        where = f"{csv_path}, line {reader.line_num}"
        if None in raw:
            raise CatalogError(f"{where}: more fields than the header's {len(header)}")
        data = {
            **(defaults or {}),
            **{renames.get(k, k): v for k, v in raw.items() if k is not None},
        }
        if query and not matches(data, query):
            continue
        rows.append(_validate_row(data, root, where, fixed_fmt, allow))
    return Catalog(json_path or csv_path, root, rows, description, provenance or {})


def _load_datastore(obj: Any, root: str, allow: AllowOutsideRoot) -> Catalog:
    """Rows of an ``intake_esm.esm_datastore`` (its ``.df``, after any ``.search``)."""
    esmcat = obj.esmcat
    name = f"esm_datastore {getattr(esmcat, 'id', '') or ''}".strip()
    assets = esmcat.assets
    col = getattr(assets, "column_name", "path")
    fmt_col = getattr(assets, "format_column_name", None)
    fixed = getattr(assets, "format", None)
    fixed_fmt = getattr(fixed, "value", fixed)
    df = obj.df
    if len(df) > limit("max-rows"):
        raise _too_many_rows(name)
    renames = {col: "path"}
    if fmt_col:
        renames[fmt_col] = "format"
    rows = []
    for i, raw in enumerate(df.to_dict("records")):
        data = {renames.get(str(k), str(k)): _plain(v) for k, v in raw.items()}
        data = {k: v for k, v in data.items() if v is not None}  # missing: the column's default
        rows.append(_validate_row(data, root, f"{name}, row {i}", fixed_fmt, allow))
    return Catalog(name, root, rows, str(getattr(esmcat, "description", "") or ""), {})


def _plain(v: Any) -> Any:
    """A DataFrame cell as a plain value (missing -> None)."""
    if v is None:
        return None
    try:
        import pandas as pd

        if not isinstance(v, (list, tuple, dict)) and pd.isna(v):
            return None
    except (TypeError, ValueError):
        pass
    return v


class _NodeBudget:
    """Checks a composed YAML node graph before it is built: the size it would have once every
    alias is expanded (computed per shared node, so a "billion laughs" costs its few distinct
    nodes), its depth, and cycles (an alias inside the node it names)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.max_nodes = limit("max-nodes")
        self.max_depth = limit("max-depth")

    def _error(self, node, what: str) -> CatalogError:
        return CatalogError(f"{self.path}, line {node.start_mark.line + 1}: {what}")

    def check(self, root) -> None:
        import yaml

        size: dict[int, int] = {}
        height: dict[int, int] = {}
        open_ids: set[int] = set()
        stack: list[tuple[Any, bool]] = [(root, False)]
        while stack:
            node, leaving = stack.pop()
            key = id(node)
            if isinstance(node, yaml.ScalarNode):
                size[key], height[key] = 1, 1
                continue
            children = (
                [x for kv in node.value for x in kv]
                if isinstance(node, yaml.MappingNode)
                else list(node.value)
            )
            if leaving:
                open_ids.discard(key)
                size[key] = 1 + sum(size[id(c)] for c in children)
                height[key] = 1 + max((height[id(c)] for c in children), default=0)
                if size[key] > self.max_nodes:
                    raise self._error(
                        node,
                        f"more than {self.max_nodes} YAML nodes once aliases are expanded; "
                        "expected a catalog without alias bombs (or raise "
                        "gridflux.catalog.max-nodes)",
                    )
                if height[key] > self.max_depth:
                    raise self._error(node, f"YAML nested deeper than {self.max_depth} levels")
                continue
            if key in size:
                continue  # a shared node (an alias): already measured
            open_ids.add(key)
            stack.append((node, True))
            for c in children:
                if id(c) in open_ids:
                    raise self._error(
                        c,
                        "a YAML alias refers to a node that contains it (a cyclic alias); "
                        "expected a tree",
                    )
                if id(c) not in size:
                    stack.append((c, False))


def _parse_yaml(path: str, text: str):
    """(node, document) of a YAML catalog, checked by :class:`_NodeBudget` before it is built."""
    import yaml

    _too_deep(path, text, "YAML")
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, None
        _NodeBudget(path).check(node)
        doc = loader.construct_document(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f", line {mark.line + 1}" if mark else ""
        text = " ".join(str(exc).split())[:300]
        raise CatalogError(f"{path}{line}: not valid YAML ({text})") from exc
    finally:
        loader.dispose()
    return node, doc


def _load_yaml(
    path: str, storage_options: Mapping[str, Any] | None, allow: AllowOutsideRoot = False
) -> Catalog:
    text = read_text(path, storage_options)
    node, doc = _parse_yaml(path, text)
    if not isinstance(doc, dict) or not isinstance(doc.get("sources"), dict):
        raise CatalogError(f"{path}, line 1, field 'sources': expected a mapping of entries")
    lines: dict[str, int] = {}
    for k, v in node.value:
        if k.value == "sources":
            for k2, _ in v.value:
                lines[str(k2.value)] = k2.start_mark.line + 1
    root = parent_of(path)
    meta = _mapping(doc.get("metadata"), f"{path}, field 'metadata'")
    defaults = _mapping(meta.get("columns"), f"{path}, field 'metadata.columns'")
    max_rows = limit("max-rows")
    rows: list[CatalogRow] = []
    for name, entry in doc["sources"].items():
        where = f"{path}, line {lines.get(str(name), '?')} (source {name!r})"
        if not isinstance(entry, dict):
            raise CatalogError(f"{where}: expected a mapping with driver, args, metadata")
        driver = entry.get("driver")
        if not isinstance(driver, str) or driver not in YAML_DRIVERS:
            raise CatalogError(
                f"{where}, field 'driver': {str(driver)[:80]!r} is not allowed; expected one of "
                f"{sorted(YAML_DRIVERS)}"
            )
        args = _mapping(entry.get("args"), f"{where}, field 'args'")
        unknown = set(args) - {"urlpath", "xarray_kwargs", "chunks", "storage_options"}
        if unknown:
            raise CatalogError(
                f"{where}, field 'args': {sorted(map(str, unknown))} not allowed; expected "
                "urlpath, xarray_kwargs"
            )
        if args.get("storage_options"):
            raise CatalogError(
                f"{where}, field 'args.storage_options': credentials and storage options are "
                "passed by the user, never stored in a catalog"
            )
        xkw = _mapping(args.get("xarray_kwargs"), f"{where}, field 'args.xarray_kwargs'")
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
        if not urls or not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
            raise CatalogError(
                f"{where}, field 'args.urlpath': missing; expected a path or a list of paths"
            )
        md = _mapping(entry.get("metadata"), f"{where}, field 'metadata'")
        for u in urls:
            if len(rows) >= max_rows:
                raise _too_many_rows(path)
            data = {**defaults, **md, "path": u, "format": YAML_DRIVERS[driver]}
            rows.append(_validate_row(data, root, where, None, allow))
    provenance = _mapping(meta.get("provenance"), f"{path}, field 'metadata.provenance'")
    return Catalog(path, root, rows, str(doc.get("description", "")), dict(provenance))
