"""Canonical variables, their aliases and sign conventions, and unit conversion factors.

Everything here is a lookup table read by small code (house rule 6). The canonical field
(docs/architecture.md) holds fluxes in ``kg m-2 s-1`` of the *element* (C for CO2 and CH4, N for
N2O), positive to the atmosphere, and stocks in ``kg m-2`` of the element.

Unit strings are parsed token by token: a token is a unit symbol with an optional integer
exponent (``m-2``, ``m^-2``, ``m**-2``, ``m2`` after ``/``), possibly glued to a species
(``kgC``, ``gN``, ``molCO2``) or followed by a species token (``kg C m-2 s-1``). The physical part
is converted with pint; the species part with the molar-mass table :data:`MOLAR_MASS`.
Month-based units (``g N m-2 month-1``) depend on the length of each month in the source's own
calendar and yield a per-time factor (:attr:`UnitFactor.per_month`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import numpy as np

from gridflux.errors import InputError

Kind = Literal["flux", "stock"]
Element = Literal["C", "N"]
Gas = Literal["CO2", "CH4", "N2O"]


@dataclass(frozen=True)
class VariableSpec:
    """A canonical variable.

    Attributes
    ----------
    kind : 'flux' or 'stock'
    element : 'C' or 'N', the element whose mass the canonical field carries
    gas : 'CO2', 'CH4' or 'N2O', the gas the flux is exchanged as
    into_land : True when the CMIP/raw convention of the variable is positive INTO the land
        (then normalization flips the sign to make it positive to the atmosphere)
    long_name : description
    """

    kind: Kind
    element: Element
    gas: Gas
    into_land: bool
    long_name: str


#: Canonical variables (docs/architecture.md). ``into_land`` is the sign convention of the raw
#: variable of the same name in CMIP6 / MsTMIP / TRENDY files.
VARIABLES: dict[str, VariableSpec] = {
    "gpp": VariableSpec("flux", "C", "CO2", True, "gross primary production"),
    "npp": VariableSpec("flux", "C", "CO2", True, "net primary production"),
    "ra": VariableSpec("flux", "C", "CO2", False, "autotrophic respiration"),
    "rh": VariableSpec("flux", "C", "CO2", False, "heterotrophic respiration (SHR)"),
    "fFire": VariableSpec("flux", "C", "CO2", False, "carbon emitted by fire"),
    "nbp": VariableSpec("flux", "C", "CO2", True, "net biome production (canonical: -NBP)"),
    "nep": VariableSpec("flux", "C", "CO2", True, "net ecosystem production (canonical: -NEP)"),
    "nee": VariableSpec("flux", "C", "CO2", False, "net ecosystem exchange"),
    "fco2": VariableSpec("flux", "C", "CO2", False, "net land-atmosphere CO2 flux (inversions)"),
    "fch4": VariableSpec("flux", "C", "CH4", False, "net CH4 emission"),
    "fn2o": VariableSpec("flux", "N", "N2O", False, "net N2O emission"),
    "cSoil": VariableSpec("stock", "C", "CO2", False, "soil carbon"),
    "cLitter": VariableSpec("stock", "C", "CO2", False, "litter carbon"),
    "cVeg": VariableSpec("stock", "C", "CO2", False, "vegetation carbon"),
}


@dataclass(frozen=True)
class Alias:
    """A raw variable name: the canonical variable it is, and whether it is positive into land."""

    canonical: str
    into_land: bool


#: Raw names found in real archives -> canonical variable and the raw sign convention.
#: Canonical names map to themselves with the table's own convention (added below).
ALIASES: dict[str, Alias] = {
    "netAtmosLandCO2Flux": Alias("nbp", True),
    "NBP": Alias("nbp", True),
    "NEP": Alias("nep", True),
    "NEE": Alias("nee", False),
    "GPP": Alias("gpp", True),
    "NPP": Alias("npp", True),
    "AR": Alias("ra", False),
    "RA": Alias("ra", False),
    "autoresp": Alias("ra", False),
    "HR": Alias("rh", False),
    "SHR": Alias("rh", False),
    "RH": Alias("rh", False),
    "heteroresp": Alias("rh", False),
    "Fire": Alias("fFire", False),
    "FIRE": Alias("fFire", False),
    "fire": Alias("fFire", False),
    "fireC": Alias("fFire", False),
    "wetlandCH4": Alias("fch4", False),
    "wetCH4": Alias("fch4", False),
    "fCH4": Alias("fch4", False),
    "ch4": Alias("fch4", False),
    "ch4flux": Alias("fch4", False),
    "n2o": Alias("fn2o", False),
    "fN2O": Alias("fn2o", False),
    "n2oflux": Alias("fn2o", False),
    "fco2nat": Alias("fco2", False),
    "land_flux": Alias("fco2", False),
    "co2flux_land": Alias("fco2", False),
    "cSOIL": Alias("cSoil", False),
    "SoilC": Alias("cSoil", False),
    "LitterC": Alias("cLitter", False),
    "VegC": Alias("cVeg", False),
}
for _name, _spec in VARIABLES.items():
    ALIASES.setdefault(_name, Alias(_name, _spec.into_land))

#: Molar masses, g mol-1.
MOLAR_MASS: dict[str, float] = {
    "C": 12.011,
    "N": 14.007,
    "CO2": 44.009,
    "CH4": 16.043,
    "N2O": 44.013,
}
#: Atoms of the budget element in one molecule of each species.
ELEMENT_ATOMS: dict[str, tuple[str, int]] = {
    "C": ("C", 1),
    "N": ("N", 1),
    "CO2": ("C", 1),
    "CH4": ("C", 1),
    "N2O": ("N", 2),
}
#: Spellings of species inside unit strings.
SPECIES_TOKENS: dict[str, str] = {
    "C": "C",
    "N": "N",
    "CO2": "CO2",
    "CH4": "CH4",
    "N2O": "N2O",
    "CO2-C": "C",
    "CH4-C": "C",
    "N2O-N": "N",
}
#: Tokens meaning "calendar month" (handled per month, not by pint's mean month).
MONTH_TOKENS = frozenset({"month", "months", "mon", "mo"})
#: Dimensionless scale tokens that may lead a unit string (e.g. "1e-3 kg m-2").
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_TOKEN = re.compile(r"^(?P<sym>[A-Za-z_%µ][A-Za-z0-9_\-%µ]*?)(?P<exp>[+-]?\d+)?$")

CANONICAL_UNITS = {"flux": "kg m-2 s-1", "stock": "kg m-2"}
EXPECTED_HINT = {
    "flux": "a flux per area per time, e.g. 'kg m-2 s-1', 'kg C m-2 s-1', 'g C m-2 d-1', "
    "'mol m-2 s-1', 'kg CH4 m-2 s-1' or 'g N m-2 month-1'",
    "stock": "a mass per area, e.g. 'kg m-2', 'kg C m-2' or 'g C m-2'",
}


def canonical_name(raw: str) -> Alias:
    """Canonical variable and raw sign convention of a raw variable name.

    Raises
    ------
    KeyError
        If the name is neither canonical nor a known alias.
    """
    return ALIASES[raw]


def pint_cache_folder() -> str | None:
    """The folder where pint keeps its parsed definitions for gridflux (None: no usable folder).

    ``$GRIDFLUX_PINT_CACHE`` if set (empty: no cache), else ``<tmp>/gridflux-<uid>/pint``
    (:func:`tempfile.gettempdir`: nothing is written into the home directory). pint loads the
    folder's files with pickle, so a folder is used only when it is this user's own and no one
    else can write to it (mode 0700 when created here); one that cannot be created, written or
    trusted returns None, and the registry is then built from pint's definition files.
    """
    import os
    import stat
    import tempfile

    getuid = getattr(os, "getuid", None)
    folder = os.environ.get("GRIDFLUX_PINT_CACHE")
    if folder is None:
        if getuid is None:
            return None
        folder = os.path.join(tempfile.gettempdir(), f"gridflux-{getuid()}", "pint")
    if not folder:
        return None
    try:
        parent = os.path.dirname(folder)
        if parent and not os.path.isdir(parent):
            os.makedirs(parent, mode=0o700, exist_ok=True)
        os.makedirs(folder, mode=0o700, exist_ok=True)
        mine = [os.stat(folder)]
        if "GRIDFLUX_PINT_CACHE" not in os.environ:
            mine.append(os.stat(os.path.dirname(folder)))  # <tmp>/gridflux-<uid> too
    except OSError:
        return None
    for st in mine:
        if not stat.S_ISDIR(st.st_mode) or st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            return None
        if getuid is not None and st.st_uid != getuid():
            return None
    return folder if os.access(folder, os.W_OK | os.X_OK) else None


@lru_cache(maxsize=1)
def unit_registry():
    """gridflux's one pint UnitRegistry, built on first use.

    pint parses its definition files in ~0.17 s per process; with ``cache_folder`` it loads them
    parsed from :func:`pint_cache_folder` (~0.05 s: the same definitions, pickled by pint's
    flexcache and invalidated when the files change). A cache that cannot be read (unwritable
    folder, a file being written by another process at the same moment) falls back to parsing.
    """
    import pint

    folder = pint_cache_folder()
    if folder is not None:
        try:
            return pint.UnitRegistry(cache_folder=folder)
        except Exception:  # noqa: BLE001 - a torn or foreign cache file: parse instead
            pass
    return pint.UnitRegistry()


@dataclass(frozen=True)
class UnitFactor:
    """Multiplicative conversion from a file's units to canonical units.

    ``canonical = raw * scale`` or, when ``per_month``, ``raw * scale / seconds_in_month``
    (use :meth:`values`). ``description`` says what was done, for ``gridflux_history``.
    """

    scale: float
    per_month: bool
    description: str

    @property
    def is_identity(self) -> bool:
        """True when no multiplication is needed."""
        return (not self.per_month) and self.scale == 1.0

    def values(self, seconds_in_month: np.ndarray | None = None) -> float | np.ndarray:
        """The factor: a float, or a float64 array over time for per-month units."""
        if not self.per_month:
            return self.scale
        if seconds_in_month is None:
            raise ValueError("a per-month unit factor needs seconds_in_month")
        return self.scale / np.asarray(seconds_in_month, dtype=np.float64)


def _tokens(units: str) -> list[tuple[str, int]]:
    """Split a unit string into (symbol, exponent) pairs; '/' negates what follows."""
    s = units.strip().replace("**", "").replace("^", "")
    parts = s.split("/")
    out: list[tuple[str, int]] = []
    for k, part in enumerate(parts):
        sign = 1 if k == 0 else -1
        part = part.replace("*", " ").replace("·", " ")
        # '.' separates factors ("kg.m-2.s-1") unless it is part of a number
        toks = [t for t in re.split(r"\s+|(?<=[A-Za-z0-9])\.(?=[A-Za-z])", part) if t]
        if k > 0 and not toks:
            raise ValueError(f"empty denominator in {units!r}")
        for t in toks:
            if _NUMBER.match(t):
                out.append((t, 0))
                continue
            if any(t.endswith(sp) for sp in ("CO2", "CH4", "N2O")):
                out.append((t, sign))  # a species glued to a mass/mol unit: "kgCO2", "molCH4"
                continue
            m = _TOKEN.match(t)
            if not m:
                raise ValueError(f"cannot read unit token {t!r}")
            exp = int(m.group("exp")) if m.group("exp") else 1
            out.append((m.group("sym"), sign * exp))
    return out


def _split_species(sym: str) -> tuple[str, str | None]:
    """'kgC' -> ('kg', 'C'); 'C' -> ('', 'C'); 'kg' -> ('kg', None)."""
    if sym in SPECIES_TOKENS:
        return "", SPECIES_TOKENS[sym]
    ureg = unit_registry()
    for sp in sorted(SPECIES_TOKENS, key=len, reverse=True):
        if sym.endswith(sp) and len(sym) > len(sp):
            head = sym[: -len(sp)]
            try:
                dim = ureg.Unit(head).dimensionality
            except Exception:  # noqa: BLE001 - pint raises several types for unknown symbols
                continue
            if dim in ({"[mass]": 1}, {"[substance]": 1}):
                return head, SPECIES_TOKENS[sp]
    return sym, None


def unit_factor(
    units: str | None,
    variable: str,
    *,
    gas: str | None = None,
    mass_basis: str | None = None,
    path: str | None = None,
    raw_name: str | None = None,
) -> UnitFactor:
    """Factor converting ``units`` of canonical ``variable`` to canonical units.

    Parameters
    ----------
    units : the file's ``units`` attribute (or a catalog override)
    variable : canonical variable name (a key of :data:`VARIABLES`)
    gas : 'CO2', 'CH4' or 'N2O'; the molecule counted by ``mol`` units (default: the variable's gas)
    mass_basis : species of a bare mass unit (``kg m-2 s-1``); default: the element (C or N),
        as in CMIP6. Set e.g. ``'CH4'`` when a bare ``kg`` means kg of CH4.
    path, raw_name : used in error messages only

    Returns
    -------
    UnitFactor
        The factor to kg of element m-2 s-1 (flux) or kg of element m-2 (stock).

    Raises
    ------
    InputError
        Unknown or incompatible units, naming the file, variable and attribute ``units``.
    """
    spec = VARIABLES[variable]
    var_label = raw_name or variable

    def fail(why: str) -> InputError:
        return InputError(
            f"units={units!r} {why}; expected {EXPECTED_HINT[spec.kind]}",
            path=path,
            variable=var_label,
            attribute="units",
        )

    if units is None or not str(units).strip():
        raise fail("is missing")
    if (
        mass_basis in (None, spec.element)
        and " ".join(str(units).split()) == CANONICAL_UNITS[spec.kind]
    ):
        # already canonical (the CMIP convention): no pint registry needed (slow to build)
        desc = (
            f"units {units!r} -> {CANONICAL_UNITS[spec.kind]} of {spec.element}: "
            f"mass of {spec.element}, scale 1"
        )
        return UnitFactor(scale=1.0, per_month=False, description=desc)
    try:
        toks = _tokens(str(units))
    except ValueError as exc:
        raise fail(f"cannot be parsed ({exc})") from exc

    ureg = unit_registry()
    scale = 1.0
    species: str | None = None
    month_exp = 0
    pint_parts: list[str] = []
    for sym, exp in toks:
        if exp == 0:  # a leading number
            scale *= float(sym)
            continue
        if sym in MONTH_TOKENS:
            month_exp += exp
            continue
        head, sp = _split_species(sym)
        if sp is not None:
            if species is not None and species != sp:
                raise fail(f"names two species ({species!r} and {sp!r})")
            species = sp
        if head:
            if head == "%":
                scale *= 0.01**exp
                continue
            pint_parts.append(f"{head}**{exp}")
    if month_exp not in (0, -1):
        raise fail("has a month exponent other than -1")

    expr = " * ".join(pint_parts) if pint_parts else "dimensionless"
    try:
        q = ureg.Quantity(1.0, expr)
    except Exception as exc:  # noqa: BLE001 - pint's UndefinedUnitError, DimensionalityError...
        raise fail(f"is not a known unit ({exc})") from exc
    dims = dict(q.dimensionality)
    if month_exp == -1:
        dims["[time]"] = dims.get("[time]", 0) - 1
    dims = {k: v for k, v in dims.items() if v != 0}

    length_ok = dims.get("[length]") == -2
    time_exp = dims.get("[time]", 0)
    want_time = -1 if spec.kind == "flux" else 0
    is_mass = dims.get("[mass]") == 1 and "[substance]" not in dims
    is_mol = dims.get("[substance]") == 1 and "[mass]" not in dims
    if not (length_ok and time_exp == want_time and (is_mass or is_mol)) or set(dims) - {
        "[length]",
        "[time]",
        "[mass]",
        "[substance]",
    }:
        raise fail(f"is not a {spec.kind} of {spec.element} (dimensions {dims})")

    # physical part to SI (kg or mol, m-2, s-1); a month is converted per month
    si = "kilogram" if is_mass else "mole"
    target = f"{si} / meter**2" + (" / second" if (time_exp == -1 and month_exp == 0) else "")
    try:
        scale *= float(q.to(target).magnitude)
    except Exception as exc:  # noqa: BLE001
        raise fail(f"cannot be converted to {target} ({exc})") from exc

    element = spec.element
    if is_mol:
        molecule = species or gas or spec.gas
        el, n = ELEMENT_ATOMS[molecule]
        if el != element:
            raise fail(f"counts moles of {molecule}, which carries no {element}")
        scale *= n * MOLAR_MASS[el] * 1e-3  # mol of molecule -> kg of element
        what = f"mol {molecule} -> kg {element} ({n} x {MOLAR_MASS[el]} g/mol)"
    else:
        basis = species or mass_basis or element
        el, n = ELEMENT_ATOMS[basis]
        if el != element:
            raise fail(f"is a mass of {basis}, which carries no {element}")
        if basis != el:
            scale *= n * MOLAR_MASS[el] / MOLAR_MASS[basis]
            what = f"kg {basis} -> kg {element} (x {n} x {MOLAR_MASS[el]}/{MOLAR_MASS[basis]})"
        else:
            what = f"mass of {element}"
    desc = (
        f"units {units!r} -> {CANONICAL_UNITS[spec.kind]} of {element}: {what}, scale {scale:.12g}"
    )
    if month_exp == -1:
        desc += " / seconds in each month of the source calendar"
    return UnitFactor(scale=scale, per_month=month_exp == -1, description=desc)
