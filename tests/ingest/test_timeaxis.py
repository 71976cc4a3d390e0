"""Month keys, calendars and seconds per month against hand-counted days."""

import cftime
import numpy as np
import pytest

from gridflux.errors import InputError
from gridflux.fields.timeaxis import (
    canonical_calendar,
    check_month_keys,
    decode_month_keys,
    month_starts,
    seconds_in_month,
)

DAY = 86400.0


@pytest.mark.parametrize(
    ("calendar", "feb2000", "feb1900", "jan"),
    [
        ("standard", 29, 28, 31),
        ("gregorian", 29, 28, 31),
        ("proleptic_gregorian", 29, 28, 31),
        ("julian", 29, 29, 31),
        ("noleap", 28, 28, 31),
        ("365_day", 28, 28, 31),
        ("all_leap", 29, 29, 31),
        ("366_day", 29, 29, 31),
        ("360_day", 30, 30, 30),
    ],
)
def test_seconds_in_month(calendar, feb2000, feb1900, jan):
    keys = np.array([12 * 2000 + 1, 12 * 1900 + 1, 12 * 2001 + 0])
    np.testing.assert_array_equal(
        seconds_in_month(keys, calendar), np.array([feb2000, feb1900, jan]) * DAY
    )


def test_standard_calendar_october_1582_has_21_days():
    assert seconds_in_month(np.array([12 * 1582 + 9]), "standard")[0] == 21 * DAY
    assert seconds_in_month(np.array([12 * 1582 + 9]), "proleptic_gregorian")[0] == 31 * DAY


@pytest.mark.parametrize(
    "calendar", ["noleap", "360_day", "julian", "proleptic_gregorian", "all_leap"]
)
def test_start_middle_end_stamps_give_same_months(calendar):
    units = "days since 1999-12-01"
    starts, mids, ends = [], [], []
    for k in range(24):
        y, m = 2000 + k // 12, k % 12 + 1
        a = cftime.datetime(y, m, 1, calendar=calendar)
        k1 = k + 1
        b = cftime.datetime(2000 + k1 // 12, k1 % 12 + 1, 1, calendar=calendar)
        n = (b - a).days
        starts.append(a)
        mids.append(a + (b - a) / 2)
        ends.append(cftime.datetime(y, m, n, 23, calendar=calendar))
    expected = 12 * 2000 + np.arange(24)
    for dates in (starts, mids, ends):
        nums = cftime.date2num(dates, units, calendar=calendar)
        np.testing.assert_array_equal(decode_month_keys(nums, units, calendar), expected)


def test_bounds_midpoints_handle_stamps_at_next_month_start():
    # stamps at the first instant of the NEXT month, bounds say which month is meant
    b = np.array([[0, 31], [31, 59], [59, 90]], dtype=float)
    keys = decode_month_keys(b[:, 1], "days since 2001-01-01", "noleap", bounds=b)
    np.testing.assert_array_equal(keys, 12 * 2001 + np.arange(3))


def test_months_since_decoded_by_hand():
    keys = decode_month_keys(
        np.array([0.5, 1.5, 13.5, 23.0]), "months since 1901-01-01", "standard"
    )
    np.testing.assert_array_equal(keys, 12 * 1901 + np.array([0, 1, 13, 23]))
    starts = month_starts(keys[:2], "noleap")
    assert starts[1] == cftime.datetime(1901, 2, 1, calendar="noleap")


def test_missing_calendar_is_an_error():
    with pytest.raises(InputError, match="calendar") as info:
        decode_month_keys(np.arange(3.0), "days since 2000-01-01", None, path="f.nc")
    assert info.value.attribute == "calendar" and "f.nc" in str(info.value)
    assert canonical_calendar("GREGORIAN") == "standard"
    with pytest.raises(InputError, match="not supported"):
        canonical_calendar("lunar")


def test_unparseable_time_units():
    with pytest.raises(InputError, match="'units'"):
        decode_month_keys(np.arange(3.0), "fortnights after the flood", "noleap", path="f.nc")
    with pytest.raises(InputError, match="'units'"):
        decode_month_keys(np.arange(3.0), "days since yesterday", "noleap", path="f.nc")


def test_duplicates_overlaps_and_gaps():
    with pytest.raises(InputError, match="twice"):
        check_month_keys(np.array([0, 1, 1, 2]))
    with pytest.raises(InputError, match="backwards"):
        check_month_keys(np.array([0, 1, 2, 1]))
    c = check_month_keys(np.array([24000, 24001, 24004, 24005, 24007]))
    assert c.gaps == [(24002, 24003), (24006, 24006)]
    assert c.gap_labels() == ["2000-03..2000-04", "2000-07"]
    with pytest.raises(InputError, match="missing months 2000-03..2000-04"):
        check_month_keys(np.array([24000, 24001, 24004]), allow_gaps=False)
