"""Packaged defaults (``gridflux.yaml``) registered in ``dask.config`` under ``gridflux``.

Nothing is written to the user's home directory: the packaged YAML is merged as defaults
(``dask.config.update_defaults``, as dask-jobqueue does), under whatever the user's dask config
(``~/.config/dask``, ``DASK_CONFIG``), ``DASK_GRIDFLUX__*`` environment variables or an earlier
``dask.config.set`` hold: those win, and nothing else of dask's configuration is touched (no
``dask.config.refresh``, which would drop a user's ``dask.config.set``). Read a setting with
:func:`get`; change it for a block of code with :func:`set_options`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import dask.config
import yaml

from gridflux.errors import GridfluxError

_DEFAULTS_PATH = os.path.join(os.path.dirname(__file__), "gridflux.yaml")
#: Settings whose value is a free-form mapping: any key below them is accepted.
FREE_FORM = ("cluster.distributed",)


class UnknownOptionError(GridfluxError, ValueError):
    """A setting that gridflux does not have (misspelled key)."""


def _read_defaults() -> dict:
    with open(_DEFAULTS_PATH) as f:
        return yaml.safe_load(f)


DEFAULTS: dict = _read_defaults()
# update_defaults merges under the current values: a key the user set (YAML, DASK_* variables,
# dask.config.set before this import) keeps the user's value
dask.config.update_defaults(DEFAULTS)


def _keys(tree: Mapping, prefix: str = "") -> dict[str, Any]:
    """Every node of the defaults as ``dotted.key -> default`` (mappings included)."""
    out: dict[str, Any] = {}
    for k, v in tree.items():
        key = f"{prefix}{k}"
        out[key] = v
        if isinstance(v, Mapping):
            out.update(_keys(v, key + "."))
    return out


#: Every valid key of :func:`set_options` (dotted, below ``gridflux``) -> its packaged default.
VALID_KEYS: dict[str, Any] = _keys(DEFAULTS["gridflux"])


def _canonical(key: str) -> str:
    return key.replace("_", "-")


def is_valid_key(key: str) -> bool:
    """Whether ``key`` (dotted, below ``gridflux``) names a setting gridflux has."""
    key = _canonical(key)
    if key in VALID_KEYS:
        return True
    parts = key.split(".")
    for i in range(
        len(parts) - 1, 0, -1
    ):  # below a free-form mapping (e.g. cluster.kubernetes.env)
        head = ".".join(parts[:i])
        if head in FREE_FORM or VALID_KEYS.get(head, None) == {}:
            return True
        if head in VALID_KEYS:
            return False
    return False


def get(key: str, default: Any = None, override: Any = None) -> Any:
    """Return ``override`` if it is not None, else the configured value of ``gridflux.<key>``."""
    if override is not None:
        return override
    return dask.config.get(f"gridflux.{key}", default=default)


def set_options(**options: Any) -> dask.config.set:
    """Context manager / setter for gridflux options.

    E.g. ``set_options(**{"regrid.backend": "xesmf"})`` (``-`` or ``_`` in a key alike).

    Raises
    ------
    UnknownOptionError
        A key that is not a gridflux setting; the message lists the valid ones.
    """
    unknown = [k for k in options if not is_valid_key(k)]
    if unknown:
        leaves = sorted(k for k, v in VALID_KEYS.items() if not isinstance(v, Mapping) or not v)
        raise UnknownOptionError(
            f"unknown gridflux option(s) {', '.join(map(repr, unknown))}; valid options are: "
            + ", ".join(leaves)
        )
    return dask.config.set({f"gridflux.{k}": v for k, v in options.items()})
