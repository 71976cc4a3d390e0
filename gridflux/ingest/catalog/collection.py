"""A loaded catalog: validated rows, grouped into series with their fx files paired."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gridflux.errors import CatalogError
from gridflux.fields.units import VARIABLES
from gridflux.ingest.catalog.query import Query, matches
from gridflux.ingest.catalog.schema import (
    FX_VARIABLES,
    TRAIT_COLUMNS,
    CatalogRow,
    SeriesRecord,
    series_id,
)
from gridflux.ingest.catalog.variables import frequency
from gridflux.ingest.fixes import fixes_for


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

    def series(self, query: Query | None = None) -> list[SeriesRecord]:
        """Series matching ``query`` (rules: :mod:`gridflux.ingest.catalog.query`), in catalog
        order, with fx files paired by model.

        Rows of a fixed-field table (``fx``, ``Ofx``... other than ``sftlf`` / ``areacella``,
        which are paired) form no series: :func:`~gridflux.ingest.catalog.variables.classify`
        names them. A variable of one member in several tables (``Amon`` and ``day`` ``pr``) is a
        :class:`CatalogError` asking for a ``table_id`` in the query.
        """
        groups: dict[tuple[str, ...], list[CatalogRow]] = {}
        fx: list[CatalogRow] = []
        for row in self.rows:
            if row.is_fx:
                fx.append(row)
                continue
            if frequency(row.table_id) == "fx" or not matches(row.as_query_data(), query):
                continue
            k = (row.ensemble, row.source_id, row.experiment, row.member_id, row.canonical)
            groups.setdefault(k, []).append(row)
        out = []
        for (ens, src, exp, mem, var), rows in groups.items():
            tables = sorted({r.table_id for r in rows})
            if len(tables) > 1:
                raise CatalogError(
                    f"{self.path}: series {ens}.{src}.{exp}.{mem}.{var} has files in tables "
                    f"{tables}; expected one table per series: select one, e.g. "
                    f"table_id={tables[0]} (gridflux run --select table_id={tables[0]})"
                )
            first = rows[0]
            raws = {r.raw_variable or (r.variable if r.variable != var else "") for r in rows}
            raw = sorted(raws)[0] if raws else ""
            fmts = {r.format for r in rows}
            if len(fmts) > 1:
                raise CatalogError(
                    f"{self.path}: series {series_id('.'.join([ens, src, exp, mem]), var)} "
                    f"mixes formats {sorted(fmts)}"
                )
            protocols = {r.protocol for r in rows}
            if len(protocols) > 1:
                raise CatalogError(
                    f"{self.path}: series {series_id('.'.join([ens, src, exp, mem]), var)} "
                    f"mixes protocols {sorted(p or 'unset' for p in protocols)} in its rows; "
                    "give every file of a series the same protocol"
                )
            traits: dict[str, Any] = {c: getattr(first, c) for c in TRAIT_COLUMNS}
            traits["gas"] = first.gas or (VARIABLES[var].gas if var in VARIABLES else None)
            for k2, v2 in first.extras().items():
                traits[k2] = v2
            for col in ("statistic", "land_weighted"):  # validated columns kept as traits
                if getattr(first, col) is not None:
                    traits[col] = getattr(first, col)
            member = ".".join([ens, src, exp, mem])
            out.append(
                SeriesRecord(
                    key=series_id(member, var),
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
                    table_id=first.table_id,
                    time_ranges=[r.time_range for r in rows],
                    version=max(r.version for r in rows),
                    protocol=first.protocol,
                    fixes=fixes_for(first.as_query_data() | {"variable": var}),
                )
            )
        return out

    def members(self, query: Query | None = None) -> dict[str, list[SeriesRecord]]:
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
