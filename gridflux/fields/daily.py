"""Daily time axes: each day of a daily series in a *day slot* of its month.

The store's daily axis (``daily/`` group, docs/store.md "Daily files") has 31 slots per month,
whatever the calendar: slot ``31 * (month - first month) + (day - 1)``. Labels are
``YYYY-MM-DD``; a slot a calendar lacks (29-31 February in ``noleap``, 31 January in
``360_day``, 30-31 February in ``standard``) stays NaN. Members of different calendars share
the axis, and its chunks follow the months' (a month is always 31 slots), so an axis that
grows by months keeps its slots.

Kernel part (numpy + cftime dates): :func:`day_slots`, :func:`slot_labels`,
:func:`calendar_slots`. Field part: :func:`daily_axis` (called by
:func:`gridflux.fields.normalize.normalize` with ``resample='day'``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gridflux.errors import InputError
from gridflux.fields.timeaxis import (
    days_in_month,
    decode_dates,
    has_sub_monthly_steps,
    keys_from_dates,
)

#: Day slots per month on the store's daily axis.
DAY_SLOTS = 31
SECONDS_PER_DAY = 86400.0


def day_slots(dates: Any, first_key: int) -> np.ndarray:
    """Slot index of each date: ``31 * (month key - first_key) + day - 1`` (int64).

    Parameters
    ----------
    dates : cftime dates (any calendar)
    first_key : :attr:`~gridflux.fields.timeaxis.Month.key` of the axis' first month
    """
    day_of_month = np.array([d.day for d in dates], dtype=np.int64)
    return DAY_SLOTS * (keys_from_dates(dates) - first_key) + day_of_month - 1


def slot_labels(first_key: int, nmonths: int) -> list[str]:
    """``YYYY-MM-DD`` of every slot of ``nmonths`` months from ``first_key`` (31 per month)."""
    return [
        f"{k // 12:04d}-{k % 12 + 1:02d}-{d:02d}"
        for k in range(first_key, first_key + nmonths)
        for d in range(1, DAY_SLOTS + 1)
    ]


def calendar_slots(first_key: int, nmonths: int, calendar: str) -> np.ndarray:
    """(slots,) bool: the slots that are days of ``calendar`` (the others are always NaN)."""
    out = np.zeros(nmonths * DAY_SLOTS, dtype=bool)
    for i in range(nmonths):
        n = days_in_month(first_key + i, calendar)
        out[i * DAY_SLOTS : i * DAY_SLOTS + n] = True
    return out


def daily_axis(
    ds, tdim: str, calendar: str, path: str | None, variable: str
) -> tuple[np.ndarray, np.ndarray, str]:
    """The daily steps of a series, kept (``resample='day'``): their dates, seconds per step and
    the history line.

    A step is dated at the midpoint of its time bounds when the file has them (a stamp at 00:00
    of the next day stays in its day), else by its stamp.

    Returns
    -------
    dates : (t,) cftime dates in ``calendar``
    seconds : (t,) 86400.0 (s per step: a daily flux x seconds = the day's amount)
    history : str

    Raises
    ------
    InputError
        Steps that are not one per day (sub-daily data, or one day twice): naming the file,
        the time variable and ``--resample month``.
    """
    t = ds[tdim]
    bname = t.attrs.get("bounds")
    bounds = np.asarray(ds[bname].values) if bname and bname in ds.variables else None
    dates = decode_dates(
        np.asarray(t.values),
        t.attrs.get("units"),
        calendar,
        bounds=bounds,
        path=path,
        variable=tdim,
    )
    days = np.array([(d.year, d.month, d.day) for d in dates], dtype=np.int64).reshape(-1, 3)
    ordinal = days[:, 0] * 10000 + days[:, 1] * 100 + days[:, 2]
    if ordinal.size > 1 and np.any(np.diff(ordinal) <= 0):
        i = int(np.flatnonzero(np.diff(ordinal) <= 0)[0])
        raise InputError(
            f"time steps {dates[i]} and {dates[i + 1]} fall on the same day or go back: not one "
            "step per day (sub-daily data); the store's daily axis holds one value per day: run "
            "with --resample month",
            path=path,
            variable=tdim,
            attribute="values",
        )
    n = len(dates)
    if not has_sub_monthly_steps(keys_from_dates(dates)):
        raise InputError(
            "has no daily steps (one or no step per month): it is not a daily series",
            path=path,
            variable=variable,
            attribute="time",
        )
    step = f"daily axis kept: {n} days ({calendar} calendar), each in its day slot"
    return dates, np.full(n, SECONDS_PER_DAY), step
