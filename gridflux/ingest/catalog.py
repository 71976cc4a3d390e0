"""Input catalogs: intake-esm collections (JSON + CSV) and intake YAML, validated with pydantic.

A catalog lists files, one row per (file, variable), with the member's traits as columns
(:data:`COLUMNS`). A *series* is all files of one ``(ensemble, source_id, experiment, member_id,
variable)``; fx rows (``sftlf``, ``areacella``) are paired with the series of the same model.

Safety: a catalog only names files and one of the allow-listed formats (:data:`FORMATS`); it never
chooses a driver, an engine or runs code, and a relative path may not escape the catalog's root.
Storage options (credentials) come from the caller only and are never stored in records,
provenance or messages.

API used by the pipeline: :func:`load_catalog`, :meth:`Catalog.series`, :class:`SeriesRecord`,
:func:`open_series`, :func:`load_series`, :func:`fingerprint`; and by the CLI: :func:`build_catalog`,
:func:`write_catalog`, :func:`check_catalog`.
"""

from __future__ import annotations

import csv
import io
import json
import os
import posixpath
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from gridflux import config
from gridflux.errors import CatalogError, GridfluxError, InputError
from gridflux.fields.units import ALIASES, VARIABLES

#: Columns of a gridflux intake-esm catalog, in the order written.
COLUMNS: tuple[str, ...] = (
    "ensemble",
    "source_id",
    "experiment",
    "member_id",
    "variable",
    "gas",
    "group",
    "grid_label",
    "forcing",
    "layered_c",
    "fire",
    "path",
    "format",
    "raw_variable",
    "units",
    "per_land_area",
    "calendar",
    "mass_basis",
    "into_land",
    "table_id",
    "version",
    "time_range",
)
#: Member traits (columns copied into ``SeriesRecord.traits`` and the store's member coords).
TRAIT_COLUMNS: tuple[str, ...] = (
    "ensemble",
    "source_id",
    "experiment",
    "member_id",
    "gas",
    "group",
    "grid_label",
    "forcing",
    "layered_c",
    "fire",
)
#: Allow-listed file formats -> how they are read (never chosen by the catalog beyond this).
FORMATS = ("netcdf", "zarr")
#: fx variables paired with the model's series.
FX_VARIABLES = ("sftlf", "areacella")
#: Accepted intake YAML drivers -> format.
YAML_DRIVERS = {
    "netcdf": "netcdf",
    "intake_xarray.netcdf.NetCDFSource": "netcdf",
    "zarr": "zarr",
    "intake_xarray.xzarr.ZarrSource": "zarr",
}
_ENGINES = ("netcdf4", "h5netcdf")
_BOOL_TRUE = {"true", "1", "yes", "y", "t"}
_BOOL_FALSE = {"false", "0", "no", "n", "f"}


def _parse_bool(v: Any) -> bool | None:
    if v is None or isinstance(v, bool):
        return v
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        if v in (0, 1):
            return bool(v)
        raise ValueError(f"{v!r} is not a boolean")
    s = str(v).strip().lower()
    if s in ("", "nan", "none", "null"):
        return None
    if s in _BOOL_TRUE:
        return True
    if s in _BOOL_FALSE:
        return False
    raise ValueError(f"{v!r} is not a boolean; expected true/false")


class CatalogRow(BaseModel):
    """One catalog row: a file holding one variable of one member, with the member's traits."""

    model_config = ConfigDict(extra="allow", str_strip_whitespace=True)

    ensemble: str = Field(min_length=1)
    source_id: str = Field(min_length=1)
    experiment: str = ""
    member_id: str = ""
    variable: str = Field(min_length=1)
    gas: Literal["CO2", "CH4", "N2O"] | None = None
    group: str = ""
    grid_label: str = ""
    forcing: str = ""
    layered_c: bool | None = None
    fire: bool | None = None
    path: str = Field(min_length=1)
    format: Literal["netcdf", "zarr"] = "netcdf"
    raw_variable: str = ""
    units: str = ""
    per_land_area: bool | None = None
    calendar: str = ""
    mass_basis: Literal["C", "N", "CO2", "CH4", "N2O"] | None = None
    into_land: bool | None = None
    table_id: str = ""
    version: str = ""
    time_range: str = ""

    @field_validator("gas", "mass_basis", mode="before")
    @classmethod
    def _empty_is_none(cls, v: Any) -> Any:
        if v is None or (isinstance(v, str) and v.strip() in ("", "nan", "None")):
            return None
        return v

    @field_validator("layered_c", "fire", "per_land_area", "into_land", mode="before")
    @classmethod
    def _bool(cls, v: Any) -> bool | None:
        return _parse_bool(v)

    @field_validator("format", mode="before")
    @classmethod
    def _format(cls, v: Any) -> Any:
        if v is None or (isinstance(v, str) and not v.strip()):
            return "netcdf"
        s = str(v).strip().lower()
        if s in ("nc", "netcdf4", "netcdf3", "nc4"):
            return "netcdf"
        return s

    @field_validator("variable")
    @classmethod
    def _variable(cls, v: str) -> str:
        if v in FX_VARIABLES or v in ALIASES:
            return v
        raise ValueError(
            f"{v!r} is not a canonical variable, known alias or fx variable; expected one of "
            f"{sorted(VARIABLES)} or {list(FX_VARIABLES)} (put a file's own name in raw_variable)"
        )

    @field_validator("calendar")
    @classmethod
    def _calendar(cls, v: str) -> str:
        from gridflux.fields.timeaxis import CALENDARS

        if v and v.lower() not in CALENDARS:
            raise ValueError(f"{v!r} is not a calendar; expected one of {sorted(CALENDARS)}")
        return v

    @model_validator(mode="after")
    def _gas_matches(self) -> CatalogRow:
        if self.variable in FX_VARIABLES:
            return self
        spec = VARIABLES[ALIASES[self.variable].canonical]
        if (
            self.gas is not None
            and spec.gas != self.gas
            and not (spec.gas == "CO2" and spec.kind == "stock")
        ):
            raise ValueError(
                f"gas {self.gas!r} does not match variable {self.variable!r} (a {spec.gas} flux)"
            )
        return self

    @property
    def is_fx(self) -> bool:
        return self.variable in FX_VARIABLES

    @property
    def canonical(self) -> str:
        return self.variable if self.is_fx else ALIASES[self.variable].canonical

    def extras(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class SeriesRecord(BaseModel):
    """All files of one member's variable, with what is needed to open and normalize them.

    ``key`` = ``member + "." + variable``; ``member`` = ``ensemble.source_id.experiment.member_id``.
    ``paths`` are absolute local paths or URLs; ``fx_paths`` maps ``sftlf``/``areacella`` to one path.
    """

    model_config = ConfigDict(frozen=False)

    key: str
    member: str
    variable: str
    raw_variable: str
    paths: list[str]
    format: Literal["netcdf", "zarr"] = "netcdf"
    fx_paths: dict[str, str] = {}
    traits: dict[str, str | bool | None] = {}
    units: str | None = None
    per_land_area: bool | None = None
    calendar: str | None = None
    mass_basis: str | None = None
    into_land: bool | None = None
    catalog: str = ""
    time_ranges: list[
        str
    ] = []  # the rows' ``time_range`` (``YYYYMM-YYYYMM`` or ``YYYY-YYYY``), "" if unknown

    @property
    def gas(self) -> str:
        g = self.traits.get("gas")
        return str(g) if g else VARIABLES[self.variable].gas


# -- paths ------------------------------------------------------------------------------------
def _is_url(p: str) -> bool:
    return "://" in p or "::" in p


def _resolve(root: str, p: str, where: str) -> str:
    """Join a catalog path to the catalog root; relative paths may not leave the root."""
    p = p.strip()
    if _is_url(p) or os.path.isabs(p):
        return p
    if _is_url(root):
        proto, rest = root.split("://", 1) if "://" in root else ("", root)
        joined = posixpath.normpath(posixpath.join(rest, p))
        base = posixpath.normpath(rest)
        if not (joined == base or joined.startswith(base.rstrip("/") + "/")):
            raise CatalogError(f"{where}, field 'path': {p!r} escapes the catalog root {root!r}")
        return f"{proto}://{joined}" if proto else joined
    base = os.path.realpath(root)
    joined = os.path.realpath(os.path.join(base, p))
    if os.path.commonpath([base, joined]) != base:
        raise CatalogError(f"{where}, field 'path': {p!r} escapes the catalog root {root!r}")
    return joined


def _row_error(where: str, exc: ValidationError) -> CatalogError:
    parts = []
    for e in exc.errors():
        loc = ".".join(str(x) for x in e.get("loc", ())) or "row"
        parts.append(f"field {loc!r}: {e.get('msg')} (got {e.get('input')!r})")
    return CatalogError(f"{where}: " + "; ".join(parts))


# -- catalog ----------------------------------------------------------------------------------
@dataclass
class Catalog:
    """A validated catalog: rows with resolved paths, and where they came from."""

    path: str
    root: str
    rows: list[CatalogRow]
    description: str = ""
    provenance: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.rows)

    def _matches(self, row: CatalogRow, query: Mapping[str, Any] | None) -> bool:
        if not query:
            return True
        data = row.model_dump()
        data.update(row.extras())
        data["canonical"] = row.canonical
        for k, want in query.items():
            have = data.get(k)
            if k == "variable":
                have = row.canonical
            wants = want if isinstance(want, (list, tuple, set)) else [want]
            if have not in wants and str(have) not in {str(w) for w in wants}:
                return False
        return True

    def series(self, query: Mapping[str, Any] | None = None) -> list[SeriesRecord]:
        """Series matching ``query`` (column -> value or list of values; ``variable`` matches the
        canonical name), in catalog order, with fx files paired by model."""
        groups: dict[tuple[str, ...], list[CatalogRow]] = {}
        fx: list[CatalogRow] = []
        for row in self.rows:
            if row.is_fx:
                fx.append(row)
                continue
            if not self._matches(row, query):
                continue
            k = (row.ensemble, row.source_id, row.experiment, row.member_id, row.canonical)
            groups.setdefault(k, []).append(row)
        out = []
        for (ens, src, exp, mem, var), rows in groups.items():
            first = rows[0]
            raws = {r.raw_variable or (r.variable if r.variable != var else "") for r in rows}
            raw = sorted(raws)[0] if raws else ""
            fmts = {r.format for r in rows}
            if len(fmts) > 1:
                raise CatalogError(
                    f"{self.path}: series {ens}.{src}.{exp}.{mem}.{var} mixes formats {sorted(fmts)}"
                )
            traits: dict[str, Any] = {c: getattr(first, c) for c in TRAIT_COLUMNS}
            traits["gas"] = first.gas or VARIABLES[var].gas
            for k2, v2 in first.extras().items():
                traits[k2] = v2
            member = ".".join([ens, src, exp, mem])
            out.append(
                SeriesRecord(
                    key=f"{member}.{var}",
                    member=member,
                    variable=var,
                    raw_variable=raw or var,
                    paths=[r.path for r in rows],
                    format=first.format,
                    fx_paths=_pair_fx(first, fx),
                    traits=traits,
                    units=first.units or None,
                    per_land_area=first.per_land_area,
                    calendar=first.calendar or None,
                    mass_basis=first.mass_basis,
                    into_land=first.into_land,
                    catalog=self.path,
                    time_ranges=[r.time_range for r in rows],
                )
            )
        return out

    def members(self, query: Mapping[str, Any] | None = None) -> dict[str, list[SeriesRecord]]:
        """Series grouped by member key."""
        out: dict[str, list[SeriesRecord]] = {}
        for s in self.series(query):
            out.setdefault(s.member, []).append(s)
        return out


def _pair_fx(row: CatalogRow, fx: list[CatalogRow]) -> dict[str, str]:
    """fx files of the row's model (same source_id and grid, any version or experiment): same
    ensemble best, then same member, then same experiment, then the newest version."""
    out: dict[str, str] = {}
    for name in FX_VARIABLES:
        cands = [
            f
            for f in fx
            if f.variable == name
            and f.source_id == row.source_id
            and (not f.grid_label or not row.grid_label or f.grid_label == row.grid_label)
        ]
        if not cands:
            continue
        cands.sort(
            key=lambda f: (
                f.ensemble != row.ensemble,
                f.member_id != row.member_id,
                f.experiment != row.experiment,
                "".join(chr(255 - ord(ch)) for ch in f.version),
            )
        )
        out[name] = cands[0].path
    return out


def _read_text(path: str, storage_options: Mapping[str, Any] | None) -> str:
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


def _parent(path: str) -> str:
    if _is_url(path):
        return path.rsplit("/", 1)[0]
    return os.path.dirname(os.path.abspath(path))


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
        return _load_csv(path, _read_text(path, storage_options), _parent(path), {})
    text = _read_text(path, storage_options)
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
        raise _row_error(f"{path} (collection spec)", exc) from exc
    assets = spec.assets
    col = assets.get("column_name", "path")
    fmt_col = assets.get("format_column_name")
    fixed_fmt = assets.get("format")
    root = _parent(path)
    extra = spec.model_extra or {}
    provenance = (
        dict(extra.get("provenance", {})) if isinstance(extra.get("provenance"), dict) else {}
    )
    gf = extra.get("gridflux", {}) if isinstance(extra.get("gridflux"), dict) else {}
    if gf.get("root"):
        root = (
            _resolve(root, str(gf["root"]), f"{path}, gridflux.root")
            if not _is_url(gf["root"])
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
    if not _is_url(csv_path) and not os.path.isabs(csv_path):
        csv_path = _resolve(_parent(path), csv_path, f"{path}, field 'catalog_file'")
    text = _read_text(csv_path, storage_options)
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
        raise _row_error(where, exc) from exc
    row.path = _resolve(root, row.path, where)
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
        if query and not _query_matches(data, query):
            continue
        rows.append(_validate_row(data, root, where, fixed_fmt))
    return Catalog(json_path or csv_path, root, rows, description, provenance or {})


def _query_matches(data: Mapping[str, Any], query: Mapping[str, Any] | list) -> bool:
    """A row matches a query dict (AND of column -> value or list of values) or any of a list of dicts."""
    if isinstance(query, list):
        return any(_query_matches(data, q) for q in query)
    return all(
        str(data.get(k, "")) in ({str(x) for x in want} if isinstance(want, list) else {str(want)})
        for k, want in query.items()
    )


def _load_yaml(path: str, storage_options: Mapping[str, Any] | None) -> Catalog:
    import yaml

    text = _read_text(path, storage_options)
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
    root = _parent(path)
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


# -- writing and crawling ---------------------------------------------------------------------
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
    csv_name = os.path.splitext(os.path.basename(json_path))[0] + ".csv"
    dicts = []
    extra_cols: list[str] = []
    for r in rows:
        d = r.model_dump() | r.extras() if isinstance(r, CatalogRow) else dict(r)
        p = str(d["path"])
        if not _is_url(p) and os.path.isabs(p):
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


# -- opening ----------------------------------------------------------------------------------
_NETCDF_CACHE_SET = False


def limit_netcdf_chunk_cache() -> None:
    """Shrink netCDF-C's per-variable chunk cache (64 MiB by default) for files opened from now on.

    The pipeline reads each chunk once, in time order, so a large cache only holds memory: with
    the default, a worker's resident memory grows by up to 64 MiB per open variable. The size is
    ``gridflux.pipeline.netcdf-chunk-cache`` (bytes; default 4 MiB).
    """
    global _NETCDF_CACHE_SET
    if _NETCDF_CACHE_SET:
        return
    import netCDF4

    size = int(config.get("pipeline.netcdf-chunk-cache", 4 * 1024 * 1024))
    _, nelems, preemption = netCDF4.get_chunk_cache()
    netCDF4.set_chunk_cache(size, nelems, preemption)
    _NETCDF_CACHE_SET = True


def _open_one(path: str, fmt: str, storage_options: Mapping[str, Any] | None):
    """Open one file lazily (backend-indexed arrays, no dask yet, times not decoded).

    Local files: netCDF4 engine (or zarr). URLs (``s3://``, ``gs://``, ``https://``,
    ``simplecache::...``): through :mod:`gridflux.ingest.remote` -- netCDF with engine h5netcdf over a
    retrying range-request file (or a verified local cached copy), zarr through a retrying fsspec
    mapper; transport failures are :class:`~gridflux.ingest.remote.RemoteReadError` naming the URL.
    """
    import xarray as xr

    from gridflux.ingest import chunkread, remote

    so = dict(storage_options or {})
    where = remote.scrub(path, so)
    try:
        if remote.is_remote(path):
            if fmt == "zarr":
                return remote.open_zarr(
                    path, so, decode_times=False, chunks=None, consolidated=None
                )
            return remote.open_netcdf(path, so, decode_times=False, chunks=None)
        local = path[len("file://") :] if path.startswith("file://") else path
        if fmt == "zarr":
            return xr.open_zarr(local, decode_times=False, chunks=None, consolidated=None)
        if not os.path.exists(local):
            raise InputError("file not found", path=path, attribute="path")
        if truncated := chunkread.truncation(local):  # size vs header: netCDF-C says "HDF error"
            raise InputError(truncated, path=path, attribute="size")  # (classic: reads zeros)
        limit_netcdf_chunk_cache()
        if not config.get("pipeline.fast-inflate", True):
            return xr.open_dataset(local, engine="netcdf4", decode_times=False, chunks=None)
        raw = xr.open_dataset(local, engine="netcdf4", decode_cf=False, chunks=None)
        return xr.decode_cf(_chunk_read_fields(raw, local), decode_times=False)
    except GridfluxError:
        raise
    except FileNotFoundError as exc:
        raise InputError("file not found", path=where, attribute="path") from exc
    except Exception as exc:  # noqa: BLE001 - netCDF4/h5py/zarr raise many types for bad files
        text = remote.scrub(f"{type(exc).__name__}: {exc}", so)
        if "truncated file" in text:
            raise InputError(
                f"is truncated ({text}); expected a complete {fmt} file",
                path=where,
                attribute="size",
            ) from exc
        raise InputError(
            f"cannot be opened as {fmt} ({text}); expected a readable {fmt} file",
            path=where,
            attribute="format",
        ) from exc


def _chunk_read_fields(ds, path: str):
    """``ds`` (opened undecoded) with its fields (variables of 3 or more dimensions) read by
    :mod:`gridflux.ingest.chunkread` (libdeflate: ~3.5x faster inflate) where their filters allow."""
    from gridflux.ingest.chunkarray import chunk_variable

    for name, var in ds.data_vars.items():
        if var.ndim >= 3:
            ds[name] = chunk_variable(var.variable, path, str(name))
    return ds


def _chunk_sizes(offset: int, n: int, cm: int) -> tuple[int, ...]:
    """Time chunks of a file starting ``offset`` months into the series, aligned to ``cm``."""
    sizes = []
    first = min(n, cm - offset % cm)
    if first:
        sizes.append(first)
    rest = n - first
    while rest > 0:
        sizes.append(min(cm, rest))
        rest -= cm
    return tuple(sizes)


def open_series(
    record: SeriesRecord,
    *,
    chunks: Mapping[str, int] | None = None,
    storage_options: Mapping[str, Any] | None = None,
):
    """Open all files of a series lazily as one ``xr.Dataset`` (nothing computed).

    Each file's time axis is decoded by gridflux (also ``months since``) to cftime month starts
    in the source calendar; files are ordered by their first month and concatenated along
    ``time`` (a split at any month is fine; overlapping files are an :class:`InputError` naming
    both). fx fields (``sftlf``, ``areacella``) are joined as variables. Data are dask arrays with
    time chunks of ``chunks['time']`` (default ``pipeline.chunk-months``) months aligned to the
    series start, full lat/lon.
    """
    import xarray as xr

    from gridflux.fields.normalize import _find_dim, resolve_variable
    from gridflux.fields.timeaxis import (
        canonical_calendar,
        decode_month_keys,
        key_label,
        month_starts,
    )

    cm = int((chunks or {}).get("time", config.get("pipeline.chunk-months", 12)))
    parts = []
    raw = record.raw_variable
    for p in record.paths:
        ds = _open_one(p, record.format, storage_options)
        if raw not in ds.data_vars:
            try:
                _, raw2 = resolve_variable(ds, record.variable)
            except KeyError:
                raw2 = raw
            if raw2 not in ds.data_vars:
                raise InputError(
                    f"is not in the file; expected one of its data variables {sorted(map(str, ds.data_vars))}",
                    path=p,
                    variable=raw,
                    attribute="name",
                )
            raw = raw2
        da = ds[raw]
        tdim = _find_dim(da, ds, "time", p)
        t = ds[tdim]
        cal = canonical_calendar(record.calendar or t.attrs.get("calendar"), path=p, variable=tdim)
        bname = t.attrs.get("bounds")
        bounds = np.asarray(ds[bname].values) if bname and bname in ds.variables else None
        keys = decode_month_keys(
            np.asarray(t.values), t.attrs.get("units"), cal, bounds=bounds, path=p, variable=tdim
        )
        ydim = _find_dim(da, ds, "lat", p)
        xdim = _find_dim(da, ds, "lon", p)
        keep = [raw] + [v for v in ds.data_vars if v != raw and tdim not in ds[v].dims]
        sub = ds[keep].drop_vars(
            [v for v in ds.coords if v not in (ydim, xdim, tdim) and tdim in ds[v].dims]
        )
        if tdim != "time":
            sub = sub.rename({tdim: "time"})
        sub = sub.assign_coords(time=("time", month_starts(keys, cal)))
        # cheap look at the first time step (a backend read, not a dask compute)
        first = np.asarray(sub[raw].isel(time=0).values, dtype=np.float64)
        enc = sub[raw].encoding
        sub[raw].attrs["gridflux_declared_fill"] = int(
            ("_FillValue" in enc) or ("missing_value" in enc)
        )
        sub[raw].attrs["gridflux_unmasked_fill"] = int(
            bool(np.any(np.abs(first[np.isfinite(first)]) >= 1e19))
        )
        sub[raw].attrs["gridflux_missing_fraction"] = float(
            np.mean(~np.isfinite(first) | (np.abs(np.nan_to_num(first)) >= 1e19))
        )
        # small variables (bounds) into memory so that nothing later needs a dask compute
        for v in list(sub.variables):
            if v != raw and "time" not in sub[v].dims:
                sub[v] = sub[v].load()
        parts.append((keys, cal, p, sub, ydim, xdim))
    if not parts:
        raise InputError(
            "series has no files",
            path=record.catalog or None,
            variable=record.variable,
            attribute="path",
        )
    parts.sort(key=lambda x: int(x[0][0]))
    cals = {c for _, c, *_ in parts}
    if len(cals) > 1:
        raise InputError(
            f"files use different calendars {sorted(cals)}; expected one calendar per series",
            path=parts[0][2],
            variable="time",
            attribute="calendar",
        )
    for (k0, _, p0, *_), (k1, _, p1, *_) in zip(parts, parts[1:], strict=False):
        if k1[0] <= k0[-1]:
            raise InputError(
                f"overlaps {p1} (months {key_label(k1[0])}..{key_label(min(k0[-1], k1[-1]))} in both); "
                "expected files that follow each other",
                path=p0,
                variable="time",
                attribute="values",
            )
    start = int(parts[0][0][0])
    datasets = [part[3] for part in parts]
    # time chunks aligned to the series' start, none across two files
    sizes = tuple(
        n
        for keys, _cal, _p, sub, *_ in parts
        for n in _chunk_sizes(int(keys[0]) - start, sub.sizes["time"], cm)
    )
    ydim, xdim = parts[0][4], parts[0][5]
    if len(datasets) == 1:
        out = datasets[0].copy()
        field = out[raw].variable
    else:
        # the field joined *before* it becomes a dask array (chunkarray.concat_time): after a dask
        # concatenate, selecting a block's rows no longer reaches the reads, and every read would
        # be of whole fields; the other variables (bounds, fx) are the first file's
        from gridflux.ingest.chunkarray import concat_time

        times = xr.concat([d["time"] for d in datasets], dim="time")
        out = datasets[0].drop_vars([raw, "time"]).assign_coords(time=times)
        field = concat_time([d[raw].variable for d in datasets])
    out[raw] = field.chunk({"time": sizes, ydim: -1, xdim: -1})
    attrs0 = datasets[0][raw].attrs
    out[raw].attrs.update(attrs0)
    out[raw].attrs["gridflux_missing_fraction"] = attrs0["gridflux_missing_fraction"]
    out[raw].attrs["gridflux_unmasked_fill"] = int(
        any(d[raw].attrs["gridflux_unmasked_fill"] for d in datasets)
    )
    out[raw].attrs["gridflux_declared_fill"] = int(
        all(d[raw].attrs["gridflux_declared_fill"] for d in datasets)
    )
    for name, fxp in record.fx_paths.items():
        fxds = _open_one(fxp, "netcdf" if not fxp.endswith(".zarr") else "zarr", storage_options)
        if name not in fxds.data_vars:
            raise InputError(
                f"fx file has no variable {name!r}", path=fxp, variable=name, attribute="name"
            )
        fv = fxds[name].load()
        fv = fv.squeeze(drop=True) if fv.ndim > 2 else fv
        if fv.shape != (out.sizes[ydim], out.sizes[xdim]):
            raise InputError(
                f"shape {fv.shape} does not match the data's (lat, lon) {(out.sizes[ydim], out.sizes[xdim])}",
                path=fxp,
                variable=name,
                attribute="shape",
            )
        out[name] = ((ydim, xdim), np.asarray(fv.values), dict(fv.attrs))
    out.attrs["gridflux_source"] = "\n".join(part[2] for part in parts)
    out.attrs["gridflux_calendar"] = parts[0][1]
    out.attrs["gridflux_raw_variable"] = raw
    out.attrs["gridflux_series"] = record.key
    return out


def load_series(
    record: SeriesRecord,
    *,
    chunks: Mapping[str, int] | None = None,
    storage_options: Mapping[str, Any] | None = None,
    allow_gaps: bool = False,
):
    """The canonical field of a series: ``normalize(open_series(record))`` (lazy)."""
    from gridflux.fields.normalize import normalize

    ds = open_series(record, chunks=chunks, storage_options=storage_options)
    return normalize(
        ds,
        record.variable,
        raw_name=ds.attrs.get("gridflux_raw_variable", record.raw_variable),
        gas=record.gas,
        path=ds.attrs.get("gridflux_source"),
        per_land_area=record.per_land_area,
        units=record.units,
        mass_basis=record.mass_basis,
        into_land=record.into_land,
        calendar=record.calendar,
        allow_gaps=allow_gaps,
    )


def fingerprint(
    record: SeriesRecord, storage_options: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Identity of a series' inputs: each path with size and mtime / ETag / checksum (fsspec ``info``).

    Remote objects are asked with retries (:func:`gridflux.ingest.remote.info`); a remote zarr store is
    identified by its metadata object (``zarr.json``, else ``.zmetadata``/``.zgroup``).
    """
    import fsspec

    from gridflux.ingest import remote

    def describe(p: str, info: Mapping[str, Any]) -> dict[str, Any]:
        d: dict[str, Any] = {"path": p, "size": info.get("size")}
        for k in (
            "mtime",
            "LastModified",
            "last_modified",
            "ETag",
            "etag",
            "checksum",
            "md5Hash",
            "crc32c",
        ):
            if k in info and info[k] is not None:
                v = info[k]
                d[k.lower()] = v if isinstance(v, (int, float, str)) else str(v)
        return d

    def one_remote(p: str, fmt: str) -> dict[str, Any]:
        _, target = remote.split_chain(p)
        if fmt != "zarr":
            return describe(p, remote.info(target, storage_options))
        for meta in ("zarr.json", ".zmetadata", ".zgroup"):
            try:
                d = describe(p, remote.info(target.rstrip("/") + "/" + meta, storage_options))
            except InputError as exc:
                if "not found" in str(exc):
                    continue
                raise
            d["metadata"] = meta
            return d
        raise InputError(
            "no zarr metadata (zarr.json, .zmetadata or .zgroup) found",
            path=remote.scrub(p),
            attribute="path",
        )

    def one(p: str, fmt: str) -> dict[str, Any]:
        if remote.is_remote(p):
            return one_remote(p, fmt)
        fs, fp = fsspec.core.url_to_fs(p, **(storage_options or {}))
        try:
            info = fs.info(fp)
        except FileNotFoundError as exc:
            raise InputError("file not found", path=p, attribute="path") from exc
        d = describe(p, info)
        if fs.isdir(fp):  # zarr store: sizes and times of its metadata
            d["size"] = sum(v.get("size", 0) or 0 for v in fs.find(fp, detail=True).values())
        return d

    def fx_format(p: str) -> str:
        return "zarr" if p.rstrip("/").endswith(".zarr") else "netcdf"

    return {
        "key": record.key,
        "paths": [one(p, record.format) for p in record.paths],
        "fx": {k: one(v, fx_format(v)) for k, v in sorted(record.fx_paths.items())},
        "variable": record.variable,
        "raw_variable": record.raw_variable,
        "units": record.units,
        "per_land_area": record.per_land_area,
        "calendar": record.calendar,
    }


# -- checking ---------------------------------------------------------------------------------
@dataclass
class SeriesCheck:
    """What ``gridflux catalog check`` reports for one series."""

    key: str
    variable: str
    raw_variable: str = ""
    files: int = 0
    grid: str = ""
    calendar: str = ""
    units: str = ""
    coverage: str = ""
    gaps: str = ""
    history: str = ""
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def check_series(
    record: SeriesRecord, storage_options: Mapping[str, Any] | None = None
) -> SeriesCheck:
    """Open and normalize one series lazily; record problems instead of raising."""
    from gridflux.fields.timeaxis import key_label, keys_from_dates

    chk = SeriesCheck(record.key, record.variable, record.raw_variable, files=len(record.paths))
    try:
        ds = open_series(record, storage_options=storage_options)
        raw = ds.attrs["gridflux_raw_variable"]
        chk.units = str(record.units or ds[raw].attrs.get("units", ""))
        chk.calendar = ds.attrs.get("gridflux_calendar", "")
        keys = keys_from_dates(np.asarray(ds["time"].values))
        chk.coverage = f"{key_label(keys[0])}..{key_label(keys[-1])} ({keys.size} months)"
        canon = load_series(record, storage_options=storage_options, allow_gaps=True)
        da = canon[record.variable]
        chk.grid = f"{canon.sizes['lat']}x{canon.sizes['lon']} lat {float(canon.lat_bnds[0, 0]):g}..{float(canon.lat_bnds[-1, 1]):g}"
        chk.gaps = da.attrs.get("gridflux_gaps", "")
        chk.history = da.attrs.get("gridflux_history", "")
        if chk.gaps:
            chk.problems.append(f"missing months: {chk.gaps}")
    except GridfluxError as exc:
        chk.problems.append(f"{type(exc).__name__}: {exc}")
    except Exception as exc:  # noqa: BLE001 - a failing series never stops the check of the others
        chk.problems.append(f"unexpected {type(exc).__name__}: {exc}")
    return chk


def check_catalog(
    catalog: Catalog | str,
    *,
    storage_options: Mapping[str, Any] | None = None,
    query: Mapping[str, Any] | None = None,
) -> list[SeriesCheck]:
    """Check every series of a catalog (each failure recorded, none stops the others)."""
    cat = (
        catalog
        if isinstance(catalog, Catalog)
        else load_catalog(catalog, storage_options=storage_options)
    )
    return [check_series(r, storage_options) for r in cat.series(query)]
