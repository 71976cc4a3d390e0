"""``gridflux catalog check``: open and normalize every series lazily, recording problems."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gridflux.errors import GridfluxError
from gridflux.ingest.catalog.collection import Catalog
from gridflux.ingest.catalog.opening import load_series, open_series
from gridflux.ingest.catalog.parsers import load_catalog
from gridflux.ingest.catalog.schema import SeriesRecord


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
