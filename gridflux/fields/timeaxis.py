"""Monthly time axes in a source's own calendar, and :class:`Month`, gridflux's one month type.

A month is a :class:`Month` ``(year, month)`` everywhere (labelled ``YYYY-MM`` by
:attr:`Month.label`, nowhere else). A monthly series is reduced to integer month keys
``12 * year + (month - 1)`` (:attr:`Month.key`): time stamps at the start, middle or end of a
month (or time bounds around it) all give the same key. From the
keys come the canonical time coordinate (cftime month starts in the source calendar) and the
seconds in each month of that calendar (``360_day``: 30 days each; ``standard``: the Julian /
Gregorian switch of October 1582 included).

``months since YYYY-MM-DD`` (which CF deprecates and xarray cannot decode) is decoded here:
value ``v`` falls in the month ``floor(v)`` months after the reference month.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import cftime
import numpy as np

from gridflux.errors import InputError

#: Calendar names (CF) -> the name used here.
CALENDARS: dict[str, str] = {
    "standard": "standard",
    "gregorian": "standard",
    "proleptic_gregorian": "proleptic_gregorian",
    "julian": "julian",
    "noleap": "noleap",
    "365_day": "noleap",
    "all_leap": "all_leap",
    "366_day": "all_leap",
    "360_day": "360_day",
}

_MONTHS_SINCE = re.compile(
    r"^\s*(months?|mon)\s+since\s+(?P<y>-?\d{1,4})-(?P<m>\d{1,2})(-(?P<d>\d{1,2}))?"
)
_YEARS_SINCE = re.compile(r"^\s*(years?|yr)\s+since\s+")
_MONTH_TEXT = re.compile(r"^(?P<y>\d{4})-?(?P<m>\d{2})$")


class Month(NamedTuple):
    """A calendar month: the one spelling of a month in gridflux.

    A tuple ``(year, month)`` (month 1-12), so it equals, hashes and sorts like the plain pair;
    its integer key is ``12 * year + (month - 1)`` (:attr:`key`, :meth:`from_key`: what arrays of
    months hold) and its label ``YYYY-MM`` (:attr:`label`, :meth:`parse`: what people and the
    store's signature read). The calendar does not enter: a month is a label, its length comes
    from :func:`seconds_in_month` in the source's calendar.
    """

    year: int
    month: int

    @classmethod
    def from_key(cls, key: int) -> Month:
        """The month of a key ``12 * year + (month - 1)``."""
        key = int(key)
        return cls(key // 12, key % 12 + 1)

    @classmethod
    def parse(cls, text: str) -> Month:
        """The month of ``YYYY-MM`` (a :attr:`label`) or ``YYYYMM`` (a CMIP ``time_range`` end).

        Raises
        ------
        ValueError
            Not one of those forms, or a month outside 1-12.
        """
        m = _MONTH_TEXT.match(str(text).strip())
        if m is None or not 1 <= int(m.group("m")) <= 12:
            raise ValueError(f"{text!r} is not a month; expected 'YYYY-MM' or 'YYYYMM'")
        return cls(int(m.group("y")), int(m.group("m")))

    @property
    def key(self) -> int:
        """``12 * year + (month - 1)``: consecutive months have consecutive keys."""
        return 12 * int(self.year) + int(self.month) - 1

    @property
    def label(self) -> str:
        """``YYYY-MM``."""
        return f"{int(self.year):04d}-{int(self.month):02d}"

    def shift(self, months: int) -> Month:
        """The month ``months`` months later (earlier if negative)."""
        return Month.from_key(self.key + int(months))

    def datetime64(self) -> np.datetime64:
        """The month's first instant as ``datetime64[ns]`` (a label only: no calendar)."""
        return np.datetime64(f"{self.label}-01", "ns")


def canonical_calendar(
    calendar: str | None, *, path: str | None = None, variable: str = "time"
) -> str:
    """The calendar's canonical name; a missing or unknown calendar is an :class:`InputError`."""
    if calendar is None or not str(calendar).strip():
        raise InputError(
            "no calendar: set the time variable's 'calendar' attribute or declare 'calendar' in "
            "the "
            f"catalog; expected one of {sorted(CALENDARS)}",
            path=path,
            variable=variable,
            attribute="calendar",
        )
    key = str(calendar).strip().lower()
    if key not in CALENDARS:
        raise InputError(
            f"calendar={calendar!r} is not supported; expected one of {sorted(CALENDARS)}",
            path=path,
            variable=variable,
            attribute="calendar",
        )
    return CALENDARS[key]


def keys_from_dates(dates: np.ndarray) -> np.ndarray:
    """Month keys (int64) of cftime or numpy datetime64 dates."""
    dates = np.asarray(dates)
    if dates.size == 0:
        return np.zeros(0, dtype=np.int64)
    if np.issubdtype(dates.dtype, np.datetime64):
        m = dates.astype("datetime64[M]").astype(np.int64)  # months since 1970-01
        return m + 12 * 1970
    return np.array([12 * d.year + d.month - 1 for d in dates.ravel()], dtype=np.int64)


def decode_month_keys(
    values: np.ndarray,
    units: str | None,
    calendar: str | None,
    *,
    bounds: np.ndarray | None = None,
    path: str | None = None,
    variable: str = "time",
) -> np.ndarray:
    """Month keys of raw numeric time values.

    Parameters
    ----------
    values : numeric time values as stored
    units : the time variable's ``units`` (``<unit> since <date>``, incl. ``months since``)
    calendar : canonical or CF calendar name
    bounds : optional (n, 2) raw time bounds; when given the month of each bounds' midpoint is used,
        which is robust to stamps at the end of a month (the first instant of the next month)
    """
    cal = canonical_calendar(calendar, path=path, variable=variable)
    if units is None or "since" not in str(units):
        raise InputError(
            f"units={units!r} is not a CF time unit; expected '<unit> since <date>', e.g. "
            "'days since 2000-01-01'",
            path=path,
            variable=variable,
            attribute="units",
        )
    vals = np.asarray(values, dtype=np.float64)
    if bounds is not None:
        b = np.asarray(bounds, dtype=np.float64)
        if b.shape == vals.shape + (2,) and np.all(np.isfinite(b)):
            vals = 0.5 * (b[..., 0] + b[..., 1])
    if not np.all(np.isfinite(vals)):
        raise InputError(
            "time values are missing (NaN or fill); expected one finite value per month",
            path=path,
            variable=variable,
            attribute="values",
        )
    m = _MONTHS_SINCE.match(str(units))
    if m:
        y0, m0 = int(m.group("y")), int(m.group("m"))
        if not 1 <= m0 <= 12:
            raise InputError(
                f"units={units!r} has month {m0}", path=path, variable=variable, attribute="units"
            )
        k0 = 12 * y0 + m0 - 1
        # a tiny epsilon keeps 0.9999999 (float rounding of a month end) in its month
        return k0 + np.floor(vals + 1e-6).astype(np.int64)
    if _YEARS_SINCE.match(str(units)):
        raise InputError(
            f"units={units!r}: 'years since' is ambiguous for monthly data; expected days, hours, "
            "seconds or months since a date",
            path=path,
            variable=variable,
            attribute="units",
        )
    try:
        dates = cftime.num2date(vals, str(units), calendar=cal, only_use_cftime_datetimes=True)
    except Exception as exc:  # noqa: BLE001 - cftime raises ValueError/TypeError variously
        raise InputError(
            f"cannot decode time with units={units!r}, calendar={calendar!r} ({exc}); expected "
            "'<unit> since YYYY-MM-DD'",
            path=path,
            variable=variable,
            attribute="units",
        ) from exc
    return keys_from_dates(np.atleast_1d(dates))


@dataclass(frozen=True)
class MonthCheck:
    """Result of checking month keys: the first and last month and the missing months."""

    first: int
    last: int
    gaps: list[tuple[int, int]]  # inclusive ranges of missing keys

    def gap_labels(self) -> list[str]:
        return [f"{key_label(a)}..{key_label(b)}" if a != b else key_label(a) for a, b in self.gaps]


def key_label(key: int) -> str:
    """'YYYY-MM' of a month key (:attr:`Month.label`)."""
    return Month.from_key(key).label


def month_label(month: tuple[int, int]) -> str:
    """'YYYY-MM' of a ``(year, month)`` pair or :class:`Month` (:attr:`Month.label`)."""
    return Month(*month).label


def span_label(months: Sequence[tuple[int, int]]) -> str:
    """'N months YYYY-MM..YYYY-MM' of a sequence of months ('no months' if empty)."""
    if not len(months):
        return "no months"
    return f"{len(months)} months {month_label(months[0])}..{month_label(months[-1])}"


def continuous_months(first: tuple[int, int], last: tuple[int, int]) -> list[Month]:
    """Every month from ``first`` to ``last`` inclusive (empty if ``last`` is before ``first``)."""
    k0, k1 = Month(*first).key, Month(*last).key
    return [Month.from_key(k) for k in range(k0, k1 + 1)]


def months_of_keys(keys: Iterable[int]) -> tuple[Month, ...]:
    """The :class:`Month` of each month key."""
    return tuple(Month.from_key(int(k)) for k in keys)


def month_labels(dates: np.ndarray) -> np.ndarray:
    """``YYYY-MM`` (object array) of each cftime or numpy datetime64 date (:attr:`Month.label`)."""
    keys = keys_from_dates(np.asarray(dates))
    uniq, inverse = np.unique(keys, return_inverse=True)
    return np.array([key_label(k) for k in uniq], dtype=object)[inverse]


def months_of_dates(dates: np.ndarray) -> tuple[Month, ...]:
    """The :class:`Month` of each cftime or numpy datetime64 date."""
    return months_of_keys(keys_from_dates(dates))


def check_month_keys(
    keys: np.ndarray, *, path: str | None = None, variable: str = "time", allow_gaps: bool = True
) -> MonthCheck:
    """Check that month keys strictly increase; report (or refuse) gaps.

    Raises
    ------
    InputError
        Duplicated months, months out of order, or (with ``allow_gaps=False``) missing months.
    """
    keys = np.asarray(keys, dtype=np.int64)
    if keys.size == 0:
        raise InputError("no time steps", path=path, variable=variable, attribute="values")
    d = np.diff(keys)
    if np.any(d == 0):
        i = int(np.nonzero(d == 0)[0][0])
        raise InputError(
            f"month {key_label(keys[i])} appears twice (time steps {i} and {i + 1}); expected one "
            "value per month",
            path=path,
            variable=variable,
            attribute="values",
        )
    if np.any(d < 0):
        i = int(np.nonzero(d < 0)[0][0])
        raise InputError(
            f"months go backwards ({key_label(keys[i])} then {key_label(keys[i + 1])}, time steps "
            f"{i}, "
            f"{i + 1}); expected increasing months without overlap",
            path=path,
            variable=variable,
            attribute="values",
        )
    gaps = [(int(keys[i]) + 1, int(keys[i + 1]) - 1) for i in np.nonzero(d > 1)[0]]
    check = MonthCheck(int(keys[0]), int(keys[-1]), gaps)
    if gaps and not allow_gaps:
        raise InputError(
            f"missing months {', '.join(check.gap_labels())}; expected a contiguous monthly series "
            "(pass allow_gaps=True to accept gaps)",
            path=path,
            variable=variable,
            attribute="values",
        )
    return check


def month_starts(keys: np.ndarray, calendar: str) -> np.ndarray:
    """cftime month starts (object array) of month keys in ``calendar``."""
    cal = canonical_calendar(calendar)
    return np.array(
        [cftime.datetime(int(k) // 12, int(k) % 12 + 1, 1, calendar=cal) for k in np.asarray(keys)],
        dtype=object,
    )


def seconds_in_month(keys: np.ndarray, calendar: str) -> np.ndarray:
    """Seconds in each month (float64) of the source's own calendar."""
    cal = canonical_calendar(calendar)
    keys = np.asarray(keys, dtype=np.int64)
    if cal == "360_day":
        return np.full(keys.shape, 30 * 86400.0)
    out = np.empty(keys.shape, dtype=np.float64)
    for i, k in enumerate(keys.ravel()):
        a = cftime.datetime(int(k) // 12, int(k) % 12 + 1, 1, calendar=cal)
        k1 = int(k) + 1
        b = cftime.datetime(k1 // 12, k1 % 12 + 1, 1, calendar=cal)
        out.flat[i] = (b - a).total_seconds()
    return out


# -- daily (sub-monthly) time axes ----------------------------------------------------------------
def has_sub_monthly_steps(keys: np.ndarray) -> bool:
    """Whether the steps of month keys are sub-monthly (daily or sub-daily data): at least half
    of them repeat the month of the step before. A monthly file with one month twice is not
    (:func:`check_month_keys` names its duplicate)."""
    k = np.asarray(keys)
    return k.size > 1 and 2 * int(np.sum(np.diff(k) == 0)) >= k.size


def decode_dates(
    values: np.ndarray,
    units: str | None,
    calendar: str | None,
    *,
    bounds: np.ndarray | None = None,
    path: str | None = None,
    variable: str = "time",
) -> np.ndarray:
    """cftime dates (object array) of the time steps of a daily or sub-daily series.

    Numeric ``values`` are decoded with ``units`` (``<unit> since <date>``) in ``calendar``;
    with ``bounds`` (n, 2) each step is dated at its bounds' midpoint, so a stamp at the end of
    a day (00:00 of the next) stays in its day and month. Dates (cftime or datetime64) are
    returned as cftime in ``calendar``.

    Raises
    ------
    InputError
        Units that are not ``<unit> since <date>`` (``months since`` has no days), or values
        that cannot be decoded.
    """
    cal = canonical_calendar(calendar, path=path, variable=variable)
    vals = np.asarray(values)
    if vals.dtype == object:
        return vals.ravel()
    if np.issubdtype(vals.dtype, np.datetime64):
        import pandas as pd

        return np.array(
            [
                cftime.datetime(d.year, d.month, d.day, d.hour, d.minute, d.second, calendar=cal)
                for d in pd.DatetimeIndex(vals.ravel())
            ],
            dtype=object,
        )
    if units is None or "since" not in str(units) or _MONTHS_SINCE.match(str(units)):
        raise InputError(
            f"units={units!r} cannot date daily time steps; expected '<unit> since <date>' in "
            "days, hours or seconds",
            path=path,
            variable=variable,
            attribute="units",
        )
    v = vals.astype(np.float64)
    if bounds is not None:
        b = np.asarray(bounds, dtype=np.float64)
        if b.shape == v.shape + (2,) and np.all(np.isfinite(b)):
            v = 0.5 * (b[..., 0] + b[..., 1])
    try:
        dates = cftime.num2date(v, str(units), calendar=cal, only_use_cftime_datetimes=True)
    except Exception as exc:  # noqa: BLE001 - cftime raises ValueError/TypeError variously
        raise InputError(
            f"cannot decode time with units={units!r}, calendar={calendar!r} ({exc})",
            path=path,
            variable=variable,
            attribute="units",
        ) from exc
    return np.asarray(np.atleast_1d(dates), dtype=object)


def days_in_month(key: int, calendar: str) -> int:
    """Days of the month with key ``key`` in ``calendar`` (360_day: 30; noleap February: 28)."""
    return int(round(seconds_in_month(np.array([key]), calendar)[0] / 86400.0))
