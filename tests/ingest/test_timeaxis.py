"""Month keys, calendars and seconds per month against hand-counted days; the Month type."""

import cftime
import numpy as np
import pytest

from gridflux.errors import InputError
from gridflux.fields.timeaxis import (
    Month,
    canonical_calendar,
    check_month_keys,
    continuous_months,
    decode_month_keys,
    key_label,
    month_label,
    month_labels,
    month_starts,
    months_of_dates,
    months_of_keys,
    seconds_in_month,
    span_label,
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


def test_month_key_label_and_arithmetic():
    m = Month(1999, 12)
    assert m == (1999, 12) and hash(m) == hash((1999, 12))  # a plain pair's equal, as a dict key
    assert m.key == 12 * 1999 + 11 == 23999
    assert Month.from_key(24000) == (2000, 1) and Month.from_key(0) == (0, 1)
    assert m.label == "1999-12" and Month(850, 3).label == "0850-03"
    assert m.shift(1) == (2000, 1) and m.shift(-12) == (1998, 12) and m.shift(25) == (2002, 1)
    assert Month.parse("1999-12") == m == Month.parse("199912")
    for bad in ("1999-13", "1999-00", "99-12", "1999-1", "Dec 1999"):
        with pytest.raises(ValueError, match="is not a month"):
            Month.parse(bad)
    assert m.datetime64() == np.datetime64("1999-12-01T00:00", "ns")
    assert sorted([Month(2000, 1), Month(1999, 12), (1999, 11)]) == [
        (1999, 11),
        (1999, 12),
        (2000, 1),
    ]


def test_month_ranges_and_labels():
    months = continuous_months((1999, 11), (2001, 2))
    assert len(months) == 2 + 12 + 2
    assert months[0] == (1999, 11) and months[2] == (2000, 1) and months[-1] == (2001, 2)
    assert all(isinstance(m, Month) for m in months)
    assert [b.key - a.key for a, b in zip(months[:-1], months[1:], strict=True)] == [1] * 15
    assert continuous_months((2000, 2), (2000, 1)) == []
    assert span_label(months) == "16 months 1999-11..2001-02" and span_label([]) == "no months"
    noleap = [cftime.datetime(2000, k, 15, calendar="noleap") for k in (1, 2, 12)]
    assert months_of_dates(np.array(noleap)) == ((2000, 1), (2000, 2), (2000, 12))
    d64 = np.array(["1999-12-31T12", "2000-01-01", "1999-12-01"], dtype="datetime64[ns]")
    assert months_of_dates(d64) == ((1999, 12), (2000, 1), (1999, 12))
    assert month_labels(d64).tolist() == ["1999-12", "2000-01", "1999-12"]
    assert months_of_keys([23999, 24000]) == (Month(1999, 12), Month(2000, 1))
    assert key_label(23999) == month_label((1999, 12)) == "1999-12"
