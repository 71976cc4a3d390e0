"""A series' fingerprint: what a done series was computed from, so that a re-run knows when to
recompute it.

It is the inputs' identity (:func:`gridflux.ingest.catalog.fingerprint`: each file's path, size and
mtime / ETag) plus every field of the catalog record that can change the result
(:data:`RESULT_FIELDS`: the normalization's arguments in ``catalog.load_series`` and what decides
which months a series fills). Every field of :class:`~gridflux.ingest.catalog.SeriesRecord` is
either in :data:`RESULT_FIELDS` or, with the reason, in :data:`NOT_RESULT_FIELDS`; a test keeps
that so when the record gains a field.

With ``verify`` (``gridflux run --verify``) each input file is also hashed (SHA-256 of its bytes;
for a zarr directory, of every file in it), for archives whose modification times cannot be
trusted (copies that restore mtimes, files rewritten in place). A series is then skipped only when
its stored fingerprint holds the same hashes; a store whose series were done without ``--verify``
recomputes them once on the first verified run.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from typing import Any

#: Record fields that can change a series' totals or cube (or which months it fills).
RESULT_FIELDS: tuple[str, ...] = (
    "variable",  # the canonical variable: units, kind, sign convention
    "raw_variable",  # the file's variable that is read
    "paths",  # the files, in order
    "format",  # netcdf / zarr: how they are opened
    "fx_paths",  # land fraction (per_land_area) and cell areas
    "units",  # units override
    "per_land_area",  # multiply by the land fraction
    "calendar",  # seconds in each month
    "mass_basis",  # species of a bare mass unit (kg CO2 -> kg C)
    "into_land",  # sign of the raw field
    "gas",  # molecule counted by mol units (SeriesRecord.gas: the gas trait or the variable's)
    "time_ranges",  # the months the catalog declares (where the series lands on the time axis)
    "version",  # the dataset version (CMIP6 ``version``): a new one supersedes the series
    "table_id",  # per land area by the table's convention (Lmon) where cell_methods is silent
    "fixes",  # the fix-table entries that repair the files (a changed table recomputes)
    "strict",  # repairs refused (a series that was repaired fails, one refused gets repaired)
    # statistic, land weighting, level selection, resampling (catalog columns and run options;
    # a property of the record's traits, omitted while unset so older fingerprints still match)
    "statistic_options",
)
#: Result fields left out of a fingerprint while None (added after stores were written).
OMITTED_WHEN_NONE: tuple[str, ...] = ("statistic_options",)
#: Record fields that cannot change a result, and why.
NOT_RESULT_FIELDS: dict[str, str] = {
    "key": "the series' name",
    "member": "the series' member: its place in the store, not its values",
    "catalog": "the catalog file the record came from",
    "protocol": "the series' protocol is in its configuration hash (the run's config hash of "
    "that protocol), beside the fingerprint",
    "traits": "member traits, stored as member coordinates of the template (gas is in "
    "RESULT_FIELDS through SeriesRecord.gas)",
}
#: Keys of a file's entry that only ``verify`` adds.
CONTENT_KEYS: tuple[str, ...] = ("sha256",)
_BLOCK = 8 * 2**20


def result_fields(record: Any) -> dict[str, Any]:
    """The values of :data:`RESULT_FIELDS` of a record, JSON-ready."""
    out: dict[str, Any] = {}
    for name in RESULT_FIELDS:
        value = getattr(record, name, None)
        if value is None and name in OMITTED_WHEN_NONE:
            continue
        if isinstance(value, tuple):
            value = list(value)
        elif isinstance(value, Mapping):
            value = {str(k): value[k] for k in sorted(value)}
        out[name] = value
    return out


def series_fingerprint(
    record: Any, storage_options: Mapping[str, Any] | None = None, verify: bool = False
) -> dict[str, Any]:
    """The fingerprint of a series: its inputs' identity, its result fields and, with ``verify``,
    a SHA-256 of each input file's bytes (which reads every byte of the inputs once)."""
    from gridflux.ingest import catalog

    fp = local_fingerprint(record)
    if fp is None:
        fp = catalog.fingerprint(record, storage_options=storage_options)
    fp["fields"] = result_fields(record)
    if verify:
        for entry in list(fp.get("paths", [])) + list(fp.get("fx", {}).values()):
            entry["sha256"] = content_hash(entry["path"], storage_options)
    return fp


def local_fingerprint(record: Any) -> dict[str, Any] | None:
    """:func:`gridflux.ingest.catalog.fingerprint` of a series whose files (and fx files) are all
    local regular files, by one ``os.stat`` each (fsspec's ``url_to_fs`` + ``info`` + ``isdir``
    per file cost ~0.2 ms, paid for every stored series on every run); the same dict, field for
    field (a test compares them). None for anything else (remote or chained URLs, directories
    such as zarr stores, a missing file): the caller then asks the catalog's function, which also
    raises the error naming a missing file."""
    import stat as stat_mod

    def one(p: str) -> dict[str, Any] | None:
        if "://" in p or "::" in p:
            return None
        try:
            st = os.stat(p)
        except OSError:
            return None
        if not stat_mod.S_ISREG(st.st_mode):
            return None
        return {"path": p, "size": st.st_size, "mtime": st.st_mtime}

    paths = [one(p) for p in record.paths]
    fx = {k: one(v) for k, v in sorted(record.fx_paths.items())}
    if any(d is None for d in paths) or any(d is None for d in fx.values()):
        return None
    return {
        "key": record.key,
        "paths": paths,
        "fx": fx,
        "variable": record.variable,
        "raw_variable": record.raw_variable,
        "units": record.units,
        "per_land_area": record.per_land_area,
        "calendar": record.calendar,
    }


def unchanged(new: Mapping | None, old: Mapping | None, verify: bool = False) -> bool:
    """Whether a series done with fingerprint ``old`` may be skipped now that it is ``new``.

    Without ``verify`` content hashes are left out of the comparison (a run without
    ``--verify`` neither needs nor computes them); with it, ``old`` must hold the same hashes."""
    if new is None or old is None:
        return False
    import json

    # as the manifest stores it: one C-encoded dump each (a Python walk of both trees cost
    # ~0.5 ms per series, paid for every stored series on every run)
    text = json.dumps(new, sort_keys=True, default=str)
    if "://" in text or "=" in text:
        # a URL or a query: the manifest holds fingerprints scrubbed of credentials
        # (Store.write_manifest); without either, scrubbing changes nothing
        from gridflux.ingest.remote import scrub_tree

        new = scrub_tree(new)
        text = json.dumps(new, sort_keys=True, default=str)
    old_text = json.dumps(old, sort_keys=True, default=str)
    if not verify and any(f'"{k}"' in t for k in CONTENT_KEYS for t in (text, old_text)):
        return _without_content(new) == _without_content(old)
    return text == old_text


def content_hash(path: str, storage_options: Mapping[str, Any] | None = None) -> str:
    """SHA-256 of a file's bytes; of a directory (zarr store), of each file's relative path and
    bytes in sorted order."""
    import fsspec

    fs, root = fsspec.core.url_to_fs(path, **(storage_options or {}))
    h = hashlib.sha256()
    if fs.isdir(root):
        files = sorted(fs.find(root))
        for f in files:
            h.update(f[len(root) :].lstrip("/").encode() + b"\0")
            _update(h, fs, f)
    else:
        _update(h, fs, root)
    return h.hexdigest()


def _update(h: Any, fs: Any, path: str) -> None:
    with fs.open(path, "rb") as f:
        while True:
            block = f.read(_BLOCK)
            if not block:
                break
            h.update(block)


def _without_content(fp: Mapping) -> Any:
    def strip(entry: Any) -> Any:
        if isinstance(entry, Mapping):
            return {k: strip(v) for k, v in entry.items() if k not in CONTENT_KEYS}
        if isinstance(entry, list):
            return [strip(v) for v in entry]
        return entry

    return _jsonable(strip(fp))


def _jsonable(value: Any) -> Any:
    """As the manifest stores it (JSON round trip: tuples become lists, keys strings)."""
    import json

    return json.loads(json.dumps(value, sort_keys=True, default=str))
