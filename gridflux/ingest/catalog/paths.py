"""Catalog paths: URLs versus local paths, the catalog's root, and joining a row's path to it
(a relative path may not leave the root)."""

from __future__ import annotations

import os
import posixpath

from gridflux.errors import CatalogError


def is_url(p: str) -> bool:
    """True for a URL (``s3://...``, ``file://...``) or an fsspec chain (``simplecache::...``)."""
    return "://" in p or "::" in p


def resolve_path(root: str, p: str, where: str) -> str:
    """Join a catalog path to the catalog root; relative paths may not leave the root."""
    p = p.strip()
    if is_url(p) or os.path.isabs(p):
        return p
    if is_url(root):
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


def parent_of(path: str) -> str:
    """The directory (or URL prefix) holding a catalog file: its default root."""
    if is_url(path):
        return path.rsplit("/", 1)[0]
    return os.path.dirname(os.path.abspath(path))
