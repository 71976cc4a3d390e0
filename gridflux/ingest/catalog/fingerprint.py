"""Fingerprints: the identity of a series' inputs (path, size, mtime / ETag / checksum)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gridflux.errors import InputError
from gridflux.ingest.catalog.schema import SeriesRecord


def fingerprint(
    record: SeriesRecord, storage_options: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Identity of a series' inputs: each path with size and mtime / ETag / checksum (fsspec
    ``info``).

    Remote objects are asked with retries (:func:`gridflux.ingest.remote.info`); a remote zarr
    store is identified by its metadata object (``zarr.json``, else ``.zmetadata``/``.zgroup``).
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
