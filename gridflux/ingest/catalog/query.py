"""The one query matcher of catalogs: used by :meth:`Catalog.series` (``gridflux run --select``)
and by a collection's ``gridflux.query`` block (rows filtered before validation).

Rules
-----
- A query is a mapping ``{column: wanted}`` (every column must match: AND) or a list of such
  mappings (any may match: OR). An empty or None query matches every row.
- ``wanted`` is one value or a list / tuple / set of values (any may match).
- Values compare by their text, stripped, booleans spelled ``true`` / ``false`` in any case and
  ``None`` (or a missing column) as the empty text: ``True``, ``"true"`` and ``"True"`` match
  each other; ``""`` matches a missing column. Other text is case-sensitive.
- ``variable`` matches the row's own variable or its canonical name (an alias such as
  ``fgco2`` of a canonical variable matches both ways).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gridflux.fields.units import ALIASES

Query = Mapping[str, Any] | list[Mapping[str, Any]]


def norm(v: Any) -> str:
    """The text a value is compared by (see the module's rules)."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v != v:  # NaN from a CSV read by pandas
        return ""
    s = str(v).strip()
    return s.lower() if s.lower() in ("true", "false") else s


def canonical_of(variable: Any) -> str:
    """The canonical name of a variable (itself when it is no known alias)."""
    name = norm(variable)
    spec = ALIASES.get(name)
    return spec.canonical if spec is not None else name


def matches(data: Mapping[str, Any], query: Query | None) -> bool:
    """True when a row's ``data`` (column -> value) matches ``query`` (rules: module docstring)."""
    if not query:
        return True
    if isinstance(query, list):
        return any(matches(data, q) for q in query)
    for column, want in query.items():
        wants = want if isinstance(want, (list, tuple, set, frozenset)) else [want]
        wanted = {norm(w) for w in wants}
        if column == "variable":
            have = {norm(data.get("variable")), canonical_of(data.get("variable"))}
            wanted |= {canonical_of(w) for w in wanted}
        else:
            have = {norm(data.get(column))}
        if not have & wanted:
            return False
    return True


def with_column(query: Query | None, column: str, value: Any) -> Query:
    """``query`` AND ``column == value`` (each alternative of a list query gets the condition)."""
    if not query:
        return {column: value}
    if isinstance(query, list):
        return [{**q, column: value} for q in query]
    return {**query, column: value}
