"""Packaged defaults (``gridflux.yaml``) registered in ``dask.config`` under ``gridflux``.

Nothing is written to the user's home directory: the packaged YAML is merged as defaults
(``dask.config.update_defaults``), so a user's own dask config or ``DASK_GRIDFLUX__*``
environment variables win. Read a setting with :func:`get`; change it for a block of code with
:func:`set_options`.
"""

from __future__ import annotations

import os
from typing import Any

import dask.config
import yaml

_DEFAULTS_PATH = os.path.join(os.path.dirname(__file__), "gridflux.yaml")
_LOADED = False


def _load_defaults() -> None:
    global _LOADED
    if _LOADED:
        return
    with open(_DEFAULTS_PATH) as f:
        defaults = yaml.safe_load(f)
    dask.config.update_defaults(defaults)
    # update_defaults does not re-read user config over the new defaults; refresh keeps the
    # user's ~/.config/dask and DASK_* variables on top.
    dask.config.refresh()
    _LOADED = True


def get(key: str, default: Any = None, override: Any = None) -> Any:
    """Return ``override`` if it is not None, else the configured value of ``gridflux.<key>``."""
    if override is not None:
        return override
    _load_defaults()
    return dask.config.get(f"gridflux.{key}", default=default)


def set_options(**options: Any) -> dask.config.set:
    """Context manager / setter for gridflux options, e.g. ``set_options(**{"regrid.backend": "xesmf"})``."""
    _load_defaults()
    return dask.config.set({f"gridflux.{k}": v for k, v in options.items()})


_load_defaults()
