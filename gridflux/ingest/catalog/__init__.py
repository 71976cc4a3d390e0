"""Input catalogs: intake-esm collections (JSON + CSV) and intake YAML, validated with pydantic.

A catalog lists files, one row per (file, variable), with the member's traits as columns
(:data:`COLUMNS`). A *series* is all files of one ``(ensemble, source_id, experiment, member_id,
variable)``; fx rows (``sftlf``, ``areacella``) are paired with the series of the same model.

Safety: a catalog only names files and one of the allow-listed formats (:data:`FORMATS`); it never
chooses a driver, an engine or runs code, and a relative path may not escape the catalog's root.
Storage options (credentials) come from the caller only and are never stored in records,
provenance or messages.

One job per module:

- :mod:`~gridflux.ingest.catalog.schema`: :class:`CatalogRow`, :class:`SeriesRecord`, the columns;
- :mod:`~gridflux.ingest.catalog.query`: the one query matcher (its rules);
- :mod:`~gridflux.ingest.catalog.paths`: URLs, the root, path safety;
- :mod:`~gridflux.ingest.catalog.collection`: :class:`Catalog` (rows -> series, fx pairing);
- :mod:`~gridflux.ingest.catalog.parsers`: :func:`load_catalog` (intake-esm JSON/CSV, intake YAML,
  the ``gridflux`` block);
- :mod:`~gridflux.ingest.catalog.crawler` and :mod:`~gridflux.ingest.catalog.writer`:
  :func:`build_catalog`, :func:`parse_path`, :func:`write_catalog`;
- :mod:`~gridflux.ingest.catalog.opening`: :func:`open_one`, :func:`open_series`,
  :func:`load_series`, :func:`limit_netcdf_chunk_cache`;
- :mod:`~gridflux.ingest.catalog.fingerprint`: :func:`fingerprint`;
- :mod:`~gridflux.ingest.catalog.check`: :func:`check_series`, :func:`check_catalog`.

API used by the pipeline: :func:`load_catalog`, :meth:`Catalog.series`, :class:`SeriesRecord`,
:func:`open_series`, :func:`load_series`, :func:`fingerprint`; and by the CLI:
:func:`build_catalog`, :func:`write_catalog`, :func:`check_catalog`.
"""

from gridflux.ingest.catalog.check import (
    SeriesCheck,
    check_catalog,
    check_series,
    summarize_checks,
)
from gridflux.ingest.catalog.collection import Catalog
from gridflux.ingest.catalog.crawler import build_catalog, parse_path
from gridflux.ingest.catalog.fingerprint import fingerprint
from gridflux.ingest.catalog.opening import (
    limit_netcdf_chunk_cache,
    load_series,
    open_one,
    open_series,
)
from gridflux.ingest.catalog.parsers import YAML_DRIVERS, load_catalog
from gridflux.ingest.catalog.query import matches
from gridflux.ingest.catalog.schema import (
    COLUMNS,
    FORMATS,
    FX_VARIABLES,
    TRAIT_COLUMNS,
    CatalogRow,
    SeriesRecord,
    series_id,
)
from gridflux.ingest.catalog.writer import write_catalog

__all__ = [
    "COLUMNS",
    "FORMATS",
    "FX_VARIABLES",
    "TRAIT_COLUMNS",
    "YAML_DRIVERS",
    "Catalog",
    "CatalogRow",
    "SeriesCheck",
    "SeriesRecord",
    "series_id",
    "build_catalog",
    "check_catalog",
    "check_series",
    "fingerprint",
    "limit_netcdf_chunk_cache",
    "load_catalog",
    "load_series",
    "matches",
    "open_one",
    "open_series",
    "parse_path",
    "summarize_checks",
    "write_catalog",
]
