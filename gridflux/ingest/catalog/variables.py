"""What gridflux makes of a catalog's variable: a region total, a region mean, or nothing (and
why). Tables as data (house rule 6), read by :func:`classify`.

- **total**: extensive quantities (flux densities and stocks per area). gridflux computes region
  totals of the carbon / methane / nitrous-oxide variables of
  :data:`gridflux.fields.units.VARIABLES`
  (and their aliases); other extensive variables (:data:`EXTENSIVE`, e.g. the ocean's ``fgco2``)
  are classified as totals that gridflux does not compute yet.
- **mean**: intensive quantities (temperature, mixing ratios, moisture and snow content,
  precipitation and other rates taken as rates, radiation, fractions: :data:`INTENSIVE`): the
  exact area-weighted region mean (:mod:`gridflux.fields.statistics`), for monthly tables; a
  catalog ``statistic=mean`` column makes any other variable a mean.
- **none**: fixed fields other than the fx files gridflux pairs with a series, and variables it
  does not know (the reason says how to map them).

The frequency comes from a CMIP6 table id (``Amon``, ``day``, ``fx``...): gridflux stores
monthly series; a daily table is computed with ``resample='month'`` (``gridflux run --resample
month``: monthly means of the days, totals from them) and otherwise classified, with the reason,
as not computed here: ``gridflux run`` keeps a daily series' axis (``resample='day'``, the
store's ``daily/`` group, :mod:`gridflux.pipeline.daily`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from gridflux.fields.units import ALIASES, VARIABLES
from gridflux.ingest.catalog.schema import FX_VARIABLES

Statistic = Literal["total", "mean", "none"]

#: Intensive CMIP/ISIMIP variables (planned statistic: area-weighted region mean).
INTENSIVE: dict[str, str] = {
    **dict.fromkeys(
        ("tas", "tasmax", "tasmin", "ts", "ta", "tos", "tob", "thetao", "tsl", "tsn", "sst"),
        "temperature",
    ),
    **dict.fromkeys(("hus", "huss", "hur", "hurs", "co2", "o3", "xco2", "prw"), "mixing ratio"),
    **dict.fromkeys(
        ("mrso", "mrsos", "mrsol", "mrfso", "snw", "snd", "snc", "lwsnl", "soilmoist", "qs"),
        "moisture or snow content",
    ),
    **dict.fromkeys(
        ("pr", "prc", "prsn", "evspsbl", "evspsblsoi", "evspsblveg", "tran", "mrro", "mrros"),
        "rate (taken as a rate)",
    ),
    **dict.fromkeys(
        ("rsds", "rsus", "rlds", "rlus", "rsdt", "rsut", "rlut", "hfls", "hfss"), "radiation"
    ),
    **dict.fromkeys(
        ("ua", "va", "wap", "uas", "vas", "sfcWind", "psl", "ps", "zg"), "wind or pressure"
    ),
    **dict.fromkeys(("clt", "clivi", "clwvi"), "cloud"),
    **dict.fromkeys(
        (
            "lai",
            "treeFrac",
            "grassFrac",
            "cropFrac",
            "baresoilFrac",
            "vegFrac",
            "burntFractionAll",
            "sic",
            "siconc",
        ),
        "fraction",
    ),
    **dict.fromkeys(
        ("so", "sos", "zos", "mlotst", "chl", "ph", "o2", "dissic", "talk", "spco2", "sithick"),
        "ocean state",
    ),
}
#: Extensive variables outside gridflux's variable table (planned statistic: region total).
EXTENSIVE: dict[str, str] = {
    **dict.fromkeys(("fgco2", "fgch4", "fgn2o", "intpp", "epc100"), "ocean flux"),
    **dict.fromkeys(
        ("fLuc", "fVegLitter", "fLitterSoil", "fHarvest", "fGrazing", "fNup", "fN2O", "fNloss"),
        "land flux",
    ),
    **dict.fromkeys(
        ("cLand", "cProduct", "cWood", "cRoot", "cLeaf", "cCwd", "nLand", "nSoil", "nVeg"),
        "land stock",
    ),
}
#: Fixed fields gridflux pairs with a series (the others are "none").
PAIRED_FX = FX_VARIABLES
#: CMIP6 table ids -> frequency ("mon", "yr", "day", "subday", "fx"); by prefix/suffix below.
_FX_TABLES = ("fx", "Ofx", "Efx", "IfxAnt", "IfxGre", "AERfx")


def frequency(table_id: str) -> str:
    """The frequency of a CMIP6 table id: ``mon``, ``yr``, ``day``, ``subday``, ``fx`` or ``""``."""
    t = table_id or ""
    if not t:
        return ""
    if t in _FX_TABLES or t.endswith("fx"):
        return "fx"
    if "mon" in t.lower() or t.endswith("Clim"):
        return "mon"
    if t.endswith("yr") or t.endswith("Yr"):
        return "yr"
    if "day" in t.lower():
        return "day"
    if "hr" in t.lower():
        return "subday"
    return ""


@dataclass(frozen=True)
class Classification:
    """How gridflux treats one variable.

    Attributes
    ----------
    statistic : 'total', 'mean' or 'none'
    computed : True when gridflux computes this statistic today
    reason : one phrase for a person (why not computed, or what it is)
    """

    statistic: Statistic
    computed: bool
    reason: str

    def label(self) -> str:
        """``total (computed)``, ``mean (planned: temperature)``, ``none: <reason>``."""
        if self.statistic == "none":
            return f"none: {self.reason}"
        if self.computed:
            daily = ", daily axis" if self.reason.startswith("daily axis") else ""
            return f"{self.statistic} (computed{daily})"
        return f"{self.statistic} (not computed yet: {self.reason})"


def known_variable(raw: str) -> str | None:
    """The catalog variable (canonical, alias or fx name) that a file's variable name is, or None.

    Case-insensitive; an ISIMIP3 vegetation suffix (``npp-total``, ``gpp-pft``) is dropped.
    """
    if raw in FX_VARIABLES or raw in ALIASES:
        return raw
    low = {k.lower(): k for k in ALIASES}
    if raw.lower() in low:
        return low[raw.lower()]
    base = raw.split("-", 1)[0]
    if base != raw and base.lower() in low:
        return low[base.lower()]
    return None


def classify_for_run(
    variable: str, table_id: str = "", override: str | None = None
) -> Classification:
    """What ``gridflux run`` makes of ``variable`` with its default options (what ``catalog
    build`` and ``catalog check`` report): a daily table is computed on its daily axis (the
    store's ``daily/`` group), labelled so; a sub-daily one is not computed without
    ``--resample month``; everything else as :func:`classify`."""
    if frequency(table_id) != "day":
        return classify(variable, table_id, override)
    how = classify(variable, table_id, override, resample="day")
    if not how.computed:
        return how
    reason = "daily axis" + (f"; {how.reason}" if how.reason else "")
    return Classification(how.statistic, True, reason)


def classify(
    variable: str, table_id: str = "", override: str | None = None, resample: str | None = None
) -> Classification:
    """The statistic gridflux gives ``variable`` (a catalog variable or a file's own name).

    Parameters
    ----------
    variable : name as in a catalog row (canonical, alias, fx, or any other)
    table_id : CMIP6 table id when known (sets the frequency)
    override : the catalog's ``statistic`` column (``mean``: any variable is averaged)
    resample : ``'month'``: a daily table is computed (as monthly means of its days);
        ``'day'``: computed on its daily axis (the store's ``daily/`` group)
    """
    freq = frequency(table_id)
    if resample in ("month", "day") and freq in ("day", "subday"):
        freq = "mon"  # resampled to months when opened, or its daily axis kept ('day')
    name = known_variable(variable) or variable
    if name in PAIRED_FX:
        return Classification("none", False, "fx field, paired with its model's series")
    if freq == "fx":
        return Classification("none", False, f"fixed field (table {table_id}), no time axis")
    sub_monthly = (
        f"table {table_id} is daily: `gridflux run` keeps its daily axis (the store's daily/ "
        "group), or makes months of it with --resample month"
        if freq == "day"
        else f"table {table_id} is sub-daily; gridflux stores monthly and daily series: run "
        "with --resample month"
        if freq == "subday"
        else ""
    )
    if name in ALIASES and ALIASES[name].canonical in VARIABLES:
        if sub_monthly:
            return Classification("total", False, sub_monthly)
        return Classification("total", True, "")
    if override and str(override).strip().lower() == "mean":
        if sub_monthly:
            return Classification("mean", False, sub_monthly)
        return Classification("mean", True, "catalog override (statistic=mean)")
    if override and str(override).strip().lower() == "total":  # never ignored in silence
        return Classification(
            "total",
            False,
            "catalog override statistic=total, but gridflux totals only the carbon/CH4/N2O "
            "variables of its table: map the variable to one (variable=<canonical>, "
            f"raw_variable={variable}) or leave statistic empty",
        )
    base = variable.split("-", 1)[0]
    lookups: tuple[tuple[dict[str, str], Statistic], ...] = (
        (INTENSIVE, "mean"),
        (EXTENSIVE, "total"),
    )
    for table, stat in lookups:
        hit = next((k for k in (variable, base) if k in table), None)
        if hit is None:
            low = {k.lower(): k for k in table}
            hit = low.get(variable.lower()) or low.get(base.lower())
        if hit is not None:
            if stat == "mean" and not sub_monthly:
                return Classification("mean", True, table[hit])
            why = table[hit] + ("" if stat == "mean" else "; not in gridflux's variable table")
            return Classification(stat, False, f"{why}{'; ' + sub_monthly if sub_monthly else ''}")
    return Classification(
        "none",
        False,
        "unknown to gridflux (not a carbon/CH4/N2O flux or stock it knows, nor a listed "
        "intensive variable); map it in a catalog row (variable=<canonical>, "
        f"raw_variable={variable})",
    )
