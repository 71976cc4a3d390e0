"""One error hierarchy for gridflux.

Every error says what is wrong, where (file, variable, attribute, catalog line) and, where
possible, how to fix it. Errors derive from :class:`GridfluxError` so that callers can catch
everything gridflux raises in one clause, and from the matching builtin (``ValueError``...)
so that generic handlers keep working.
"""

from __future__ import annotations


class GridfluxError(Exception):
    """Base class of every error gridflux raises on purpose."""


class GridError(GridfluxError, ValueError):
    """A grid definition is invalid: coordinates, bounds or cell areas.

    ``variable`` names the coordinate or bounds variable when known.
    """

    def __init__(self, message: str, *, variable: str | None = None) -> None:
        self.variable = variable
        prefix = f"{variable!r}: " if variable else ""
        super().__init__(prefix + message)


class WeightsError(GridfluxError, ValueError):
    """Regridding weights are invalid, mismatched with the data, or unreadable."""


class MaskError(GridfluxError, ValueError):
    """A region mask is invalid (values outside [0, 1], wrong grid, unknown region)."""


class InputError(GridfluxError, ValueError):
    """An input file cannot be read or normalized.

    The message always names the file, the variable and the attribute at fault.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        variable: str | None = None,
        attribute: str | None = None,
    ) -> None:
        self.path = path
        self.variable = variable
        self.attribute = attribute
        where = []
        if path:
            where.append(str(path))
        if variable:
            where.append(f"variable {variable!r}")
        if attribute:
            where.append(f"attribute {attribute!r}")
        prefix = (": ".join([", ".join(where)]) + ": ") if where else ""
        super().__init__(prefix + message)


class CatalogError(GridfluxError, ValueError):
    """A catalog is invalid; the message names the catalog, the line and the field."""


class StoreError(GridfluxError, RuntimeError):
    """The zarr store is in use, inconsistent, or was written by an incompatible layout."""


class StoreWriteError(StoreError):
    """The file system refused a write to the store (disk full, read-only, quota): a fault of the
    place, not of the data; a run stops submitting, records what it can and says so in one line."""


class ClusterError(GridfluxError, RuntimeError):
    """A cluster cannot be created; the message says which setting is missing and where."""


class BudgetError(GridfluxError, ValueError):
    """A budget recipe, component table or ensemble selection is invalid."""
