"""The catalog's schema: one row (:class:`CatalogRow`) and one series (:class:`SeriesRecord`),
validated with pydantic; the columns and allow-listed formats as data."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from gridflux.errors import CatalogError
from gridflux.fields.units import ALIASES, VARIABLES

#: Columns of a gridflux intake-esm catalog, in the order written.
COLUMNS: tuple[str, ...] = (
    "ensemble",
    "source_id",
    "experiment",
    "member_id",
    "variable",
    "gas",
    "group",
    "grid_label",
    "forcing",
    "layered_c",
    "fire",
    "path",
    "format",
    "raw_variable",
    "units",
    "per_land_area",
    "calendar",
    "mass_basis",
    "into_land",
    "table_id",
    "version",
    "time_range",
)
#: Optional columns that choose how a series' region statistic is computed (not written unless
#: set; kept in ``SeriesRecord.traits`` and in the series' fingerprint):
#:
#: - ``statistic``: ``total`` or ``mean``, overriding the choice from the variable's CF metadata
#:   (:func:`gridflux.fields.statistics.choose_statistic`); empty: chosen from the metadata;
#: - ``land_weighted``: ``true`` weights a region *mean* by cell area x land fraction (the
#:   series' ``sftlf``: an fx row of the model, e.g. the CMIP6 fx file beside it in the DRS tree;
#:   percent or fraction by its ``units``); the same as ``gridflux run --land-weighted`` for one
#:   series. Refused for totals (a per-land-area flux uses ``per_land_area``);
#: - ``protocol``: ``regrid-data`` or ``regrid-mask`` (:data:`PROTOCOLS`).
STATISTIC_COLUMNS: tuple[str, ...] = ("statistic", "land_weighted", "protocol")
#: Run options kept in ``SeriesRecord.traits`` beside the columns above (set by ``gridflux run``
#: for every series: ``--sel``, ``--resample``, ``--land-weighted``; ``mean_units``: the store's
#: unit of a mean variable, that the series is converted to).
STATISTIC_OPTIONS: tuple[str, ...] = ("statistic", "land_weighted", "sel", "resample")
#: Protocols a catalog's ``protocol`` column may name (:mod:`gridflux.fields.totals`).
PROTOCOLS: tuple[str, ...] = ("regrid-data", "regrid-mask")
#: A variable name a catalog may hold (any CF/CMIP/ISIMIP name, e.g. ``tas``, ``npp-total``).
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.\-]*")
#: Member traits (columns copied into ``SeriesRecord.traits`` and the store's member coords).
TRAIT_COLUMNS: tuple[str, ...] = (
    "ensemble",
    "source_id",
    "experiment",
    "member_id",
    "gas",
    "group",
    "grid_label",
    "forcing",
    "layered_c",
    "fire",
)
#: Allow-listed file formats -> how they are read (never chosen by the catalog beyond this).
FORMATS = ("netcdf", "zarr")
#: fx variables paired with the model's series.
FX_VARIABLES = ("sftlf", "areacella")
#: Trait values that mean "not set".
NOT_SET = (None, "", False, "false", "False")
_BOOL_TRUE = {"true", "1", "yes", "y", "t"}
_BOOL_FALSE = {"false", "0", "no", "n", "f"}


def parse_bool(v: Any) -> bool | None:
    if v is None or isinstance(v, bool):
        return v
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        if v in (0, 1):
            return bool(v)
        raise ValueError(f"{v!r} is not a boolean")
    s = str(v).strip().lower()
    if s in ("", "nan", "none", "null"):
        return None
    if s in _BOOL_TRUE:
        return True
    if s in _BOOL_FALSE:
        return False
    raise ValueError(f"{v!r} is not a boolean; expected true/false")


class CatalogRow(BaseModel):
    """One catalog row: a file holding one variable of one member, with the member's traits."""

    model_config = ConfigDict(extra="allow", str_strip_whitespace=True)

    ensemble: str = Field(min_length=1)
    source_id: str = Field(min_length=1)
    experiment: str = ""
    member_id: str = ""
    variable: str = Field(min_length=1)
    gas: Literal["CO2", "CH4", "N2O"] | None = None
    group: str = ""
    grid_label: str = ""
    forcing: str = ""
    layered_c: bool | None = None
    fire: bool | None = None
    path: str = Field(min_length=1)
    format: Literal["netcdf", "zarr"] = "netcdf"
    raw_variable: str = ""
    units: str = ""
    per_land_area: bool | None = None
    calendar: str = ""
    mass_basis: Literal["C", "N", "CO2", "CH4", "N2O"] | None = None
    into_land: bool | None = None
    table_id: str = ""
    version: str = ""
    time_range: str = ""
    protocol: Literal["regrid-data", "regrid-mask"] | None = None
    statistic: Literal["total", "mean"] | None = None
    land_weighted: bool | None = None

    @field_validator("statistic", mode="before")
    @classmethod
    def _statistic(cls, v: Any) -> Any:
        if v is None or (isinstance(v, str) and v.strip() in ("", "nan", "None")):
            return None
        return str(v).strip().lower()

    @field_validator("gas", "mass_basis", "protocol", mode="before")
    @classmethod
    def _empty_is_none(cls, v: Any) -> Any:
        if v is None or (isinstance(v, str) and v.strip() in ("", "nan", "None")):
            return None
        return v

    @field_validator(
        "layered_c", "fire", "per_land_area", "into_land", "land_weighted", mode="before"
    )
    @classmethod
    def _bool(cls, v: Any) -> bool | None:
        return parse_bool(v)

    @field_validator("format", mode="before")
    @classmethod
    def _format(cls, v: Any) -> Any:
        if v is None or (isinstance(v, str) and not v.strip()):
            return "netcdf"
        s = str(v).strip().lower()
        if s in ("nc", "netcdf4", "netcdf3", "nc4"):
            return "netcdf"
        return s

    @field_validator("variable")
    @classmethod
    def _variable(cls, v: str) -> str:
        if v in FX_VARIABLES or v in ALIASES or _NAME.fullmatch(v):
            return v
        raise ValueError(
            f"{v!r} is not a variable name; expected a netCDF/CMIP name (letters, digits, '_', "
            f"'-', '.'), e.g. one of {sorted(VARIABLES)} or {list(FX_VARIABLES)}"
        )

    @field_validator("calendar")
    @classmethod
    def _calendar(cls, v: str) -> str:
        from gridflux.fields.timeaxis import CALENDARS

        if v and v.lower() not in CALENDARS:
            raise ValueError(f"{v!r} is not a calendar; expected one of {sorted(CALENDARS)}")
        return v

    @model_validator(mode="after")
    def _gas_matches(self) -> CatalogRow:
        if self.variable in FX_VARIABLES or self.canonical not in VARIABLES:
            return self
        spec = VARIABLES[self.canonical]
        if (
            self.gas is not None
            and spec.gas != self.gas
            and not (spec.gas == "CO2" and spec.kind == "stock")
        ):
            raise ValueError(
                f"gas {self.gas!r} does not match variable {self.variable!r} (a {spec.gas} flux)"
            )
        return self

    @property
    def is_fx(self) -> bool:
        return self.variable in FX_VARIABLES

    @property
    def canonical(self) -> str:
        if self.is_fx or self.variable not in ALIASES:
            return self.variable
        return ALIASES[self.variable].canonical

    def extras(self) -> dict[str, Any]:
        return dict(self.model_extra or {})

    def as_query_data(self) -> dict[str, Any]:
        """The row's columns (extra ones included) as the query matcher sees them."""
        return self.model_dump() | self.extras()


def series_id(member: str, variable: str) -> str:
    """The one spelling of a series id, ``member/variable`` (members hold dots, never a slash):
    the key of a series in catalogs' records, the store's manifest and a run's summary."""
    return f"{member}/{variable}"


class SeriesRecord(BaseModel):
    """All files of one member's variable, with what is needed to open and normalize them.

    ``key`` = :func:`series_id` (``member/variable``);
    ``member`` = ``ensemble.source_id.experiment.member_id``.
    ``paths`` are absolute local paths or URLs; ``fx_paths`` maps ``sftlf``/``areacella`` to one
    path.
    """

    model_config = ConfigDict(frozen=False)

    key: str
    member: str
    variable: str
    raw_variable: str
    paths: list[str]
    format: Literal["netcdf", "zarr"] = "netcdf"
    fx_paths: dict[str, str] = {}
    traits: dict[str, str | bool | None] = {}
    units: str | None = None
    per_land_area: bool | None = None
    calendar: str | None = None
    mass_basis: str | None = None
    into_land: bool | None = None
    catalog: str = ""
    table_id: str = ""
    time_ranges: list[
        str
    ] = []  # the rows' ``time_range`` (``YYYYMM-YYYYMM`` or ``YYYY-YYYY``), "" if unknown
    version: str = ""  # the dataset version (CMIP6 ``version``; the newest of the rows), "" if none
    protocol: str | None = None  # the catalog's ``protocol`` (None: the ensemble kind's default)
    #: entries of the fix tables that match the series (:func:`gridflux.ingest.fixes.fixes_for`)
    fixes: list[dict[str, Any]] = []
    #: refuse to repair the files' defects (``--strict``): an error naming the defect instead
    strict: bool = False

    @property
    def statistic_options(self) -> dict[str, Any] | None:
        """What changes how the statistic is computed (:data:`STATISTIC_OPTIONS` of the traits:
        ``statistic``, ``land_weighted``, ``sel``, ``resample``), None when none is set (part of
        the series' fingerprint: changing one recomputes the series)."""
        out = {k: self.traits[k] for k in STATISTIC_OPTIONS if self.traits.get(k) not in NOT_SET}
        return out or None

    @property
    def land_weighted(self) -> bool:
        """Whether a region mean of this series is weighted by land fraction (the ``land_weighted``
        column, or ``gridflux run --land-weighted``)."""
        return bool(parse_bool(self.traits.get("land_weighted")))

    @property
    def gas(self) -> str:
        g = self.traits.get("gas")
        if g:
            return str(g)
        return VARIABLES[self.variable].gas if self.variable in VARIABLES else ""


def row_error(where: str, exc: ValidationError) -> CatalogError:
    """One :class:`CatalogError` naming ``where`` and every bad field of a pydantic error."""
    parts = []
    for e in exc.errors():
        loc = ".".join(str(x) for x in e.get("loc", ())) or "row"
        got = repr(e.get("input"))
        got = got if len(got) <= 120 else got[:120] + "..."
        parts.append(f"field {loc!r}: {e.get('msg')} (got {got})")
    return CatalogError(f"{where}: " + "; ".join(parts))
