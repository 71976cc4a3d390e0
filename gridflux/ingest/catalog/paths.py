"""Catalog paths: URLs versus local paths, the catalog's root, and the one door for reading.

**A catalog reads only inside its root.** The root is the catalog file's directory (or a
``gridflux.root`` inside it). Every local path a catalog names -- relative (``../`` included),
absolute, ``file://`` URLs, a local target behind a cache chain (``simplecache::/x``), the
collection's ``catalog_file`` and ``gridflux.root`` itself -- is resolved (symlinks followed) and
must lie inside the root, unless the user allows more: ``allow_outside_root=True``
(``--allow-outside-root``) for any local path, or a list of directory prefixes.

Remote URLs (``s3://``, ``gs://``, ``https://``...) are not "outside the root": they are no
path into this machine's file system, and they are read with the storage options the user
passed for this catalog (public catalogs such as Pangeo's list ``gs://`` stores). What a
hostile catalog can do with them is name other objects the same credentials can read, or a
network address this machine reaches: give a catalog from an untrusted source anonymous or
narrowly scoped credentials. A relative path in a remote catalog stays under the catalog's URL.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Sequence

from gridflux.errors import CatalogError

#: ``False`` (only inside the root), ``True`` (any local path) or allowed directory prefixes.
AllowOutsideRoot = bool | Sequence[str]


def is_url(p: str) -> bool:
    """True for a URL (``s3://...``, ``file://...``) or an fsspec chain (``simplecache::...``)."""
    return "://" in p or "::" in p


def local_target(p: str) -> str | None:
    """The local path a catalog path reads (``file://`` and cache chains unwrapped), or None for a
    remote URL."""
    if "::" in p:
        return local_target(p.rsplit("::", 1)[1])
    if p.startswith("file://"):
        rest = p[len("file://") :]
        # file:///abs/path and file://localhost/abs/path
        return rest[len("localhost") :] if rest.startswith("localhost/") else rest
    if "://" in p:
        return None
    return p


def _inside(base: str, path: str) -> bool:
    return os.path.commonpath([base, path]) == base


def allowed_outside(path: str, allow: AllowOutsideRoot) -> bool:
    """True when ``allow`` lets a catalog read the local ``path`` (resolved) outside its root."""
    if allow is True:
        return True
    if not allow:
        return False
    if isinstance(allow, str):
        allow = [allow]
    return any(_inside(os.path.realpath(os.path.expanduser(a)), path) for a in allow)


def outside_root_error(where: str, field: str, p: str, root: str) -> CatalogError:
    """The one error for a path outside the root, with the way to allow it."""
    return CatalogError(
        f"{where}, field {field!r}: {p!r} is outside the catalog root {root!r} (a catalog reads "
        "only inside its root); to read it, pass --allow-outside-root, or "
        "--allowed-prefix DIR for one directory (Python: allow_outside_root=True or "
        "[prefix])"
    )


def resolve_path(
    root: str, p: str, where: str, allow: AllowOutsideRoot = False, field: str = "path"
) -> str:
    """The path a catalog's ``p`` reads: joined to ``root``, resolved, and inside the root unless
    ``allow`` says otherwise (module docstring). Remote URLs are returned as written.

    Raises
    ------
    CatalogError
        Naming ``where``, the field and the root, for a path outside it (``../`` escapes
        included) or an empty path.
    """
    p = p.strip()
    if not p:
        raise CatalogError(f"{where}, field {field!r}: empty; expected a path or URL")
    local = local_target(p)
    if local is None:
        return p
    if is_url(root) and local_target(root) is None:
        if local == p and not os.path.isabs(p):  # relative to a remote catalog: stays under it
            proto, rest = root.split("://", 1)
            joined = posixpath.normpath(posixpath.join(rest, p))
            base = posixpath.normpath(rest)
            if not (joined == base or joined.startswith(base.rstrip("/") + "/")):
                raise CatalogError(
                    f"{where}, field {field!r}: {p!r} escapes the catalog root {root!r}"
                )
            return f"{proto}://{joined}"
        resolved = os.path.realpath(local)
        if allowed_outside(resolved, allow):
            return resolved
        raise outside_root_error(where, field, p, root)
    base = os.path.realpath(local_target(root) or root)
    resolved = os.path.realpath(os.path.join(base, local))
    if _inside(base, resolved) or allowed_outside(resolved, allow):
        return resolved
    if not os.path.isabs(local) and local == p:
        raise CatalogError(
            f"{where}, field {field!r}: {p!r} escapes the catalog root {root!r} (a catalog "
            "reads only inside its root; --allow-outside-root allows it)"
        )
    raise outside_root_error(where, field, p, root)


def parent_of(path: str) -> str:
    """The directory (or URL prefix) holding a catalog file: its default root."""
    if is_url(path):
        return path.rsplit("/", 1)[0]
    return os.path.dirname(os.path.abspath(path))
