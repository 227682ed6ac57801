"""Command-line dates -> UTC milliseconds, and the one-line errors for bad ones."""

from __future__ import annotations

import calendar
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from binmon.history.dates import DateError, format_ms, parse_date, parse_range

DAY = 86_400_000


def ts(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0) -> int:
    return calendar.timegm((y, mo, d, h, mi, s)) * 1000


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-01-01", ts(2024, 1, 1)),
        ("2024-1-5", ts(2024, 1, 5)),
        ("2024-02-29", ts(2024, 2, 29)),
        ("2024-01-01 13:45", ts(2024, 1, 1, 13, 45)),
        ("2024-01-01T13:45:30", ts(2024, 1, 1, 13, 45, 30)),
        ("2024-01-01 13:45:30.250", ts(2024, 1, 1, 13, 45, 30) + 250),
        ("2024-01-01T13:45:00Z", ts(2024, 1, 1, 13, 45)),
        ("2024-01-01T13:45:00z", ts(2024, 1, 1, 13, 45)),
        ("2024-01-01 13:45 UTC", ts(2024, 1, 1, 13, 45)),
        ("2024-01-01T13:45+02:00", ts(2024, 1, 1, 11, 45)),
        ("2024-01-01T13:45:00-0530", ts(2024, 1, 1, 19, 15)),
        ("2024-01-01T01:00+02", ts(2023, 12, 31, 23)),
        ("1704067200000", ts(2024, 1, 1)),
        ("  2024-01-01  ", ts(2024, 1, 1)),
        ("1969-12-31 23:59", -60_000),
    ],
)
def test_accepted_forms(text: str, expected: int) -> None:
    assert parse_date(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2024-13-01", "bad date '2024-13-01': month must be in 1..12"),
        ("2023-02-29", "bad date '2023-02-29': day is out of range for month"),
        ("2024-01-01 24:00", "bad date '2024-01-01 24:00': hour must be in 0..23"),
        ("2024-01-01 10:61", "minute must be in 0..59"),
        ("2024-01-01T10:00+25:00", "zone offset +25:00 must be within"),
        ("1704067200", "looks like epoch seconds; give epoch milliseconds (1704067200000)"),
        ("20240101", "epoch times must be milliseconds"),
        ("yesterday", "expected YYYY-MM-DD"),
        ("01/02/2024", "expected YYYY-MM-DD"),
        ("", "empty"),
    ],
)
def test_errors_are_one_readable_line(text: str, message: str) -> None:
    with pytest.raises(DateError) as info:
        parse_date(text)
    assert message in str(info.value)
    assert "\n" not in str(info.value)
    assert isinstance(info.value, ValueError)


def test_end_of_day_only_for_bare_dates() -> None:
    assert parse_date("2024-06-30", end_of_day=True) == ts(2024, 7, 1) - 1
    assert parse_date("2024-06-30 12:00", end_of_day=True) == ts(2024, 6, 30, 12)
    assert parse_date("1719705600000", end_of_day=True) == 1719705600000


def test_parse_range_checks_order_and_the_future() -> None:
    now = ts(2024, 6, 10, 12)
    assert parse_range("2024-01-01", "2024-01-01", now) == (ts(2024, 1, 1), ts(2024, 1, 2) - 1)
    assert parse_range("2024-01-01", None, now) == (ts(2024, 1, 1), None)
    assert parse_range(None, None, now, default_start_ms=5) == (5, None)
    with pytest.raises(DateError, match=r"end 2024-01-01 23:59:59 UTC is before start 2024-02-01 00:00 UTC"):
        parse_range("2024-02-01", "2024-01-01", now)
    with pytest.raises(DateError, match=r"start 2024-06-11 00:00 UTC is in the future \(server time"):
        parse_range("2024-06-11", None, now)
    # An end in the future is fine: "up to now".
    assert parse_range("2024-06-01", "2030-01-01", now)[1] == ts(2030, 1, 2) - 1


def test_format_ms() -> None:
    assert format_ms(ts(2024, 1, 2, 3, 4)) == "2024-01-02 03:04 UTC"
    assert format_ms(ts(2024, 1, 2, 3, 4, 5)) == "2024-01-02 03:04:05 UTC"


@given(st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1)))
def test_iso_and_epoch_round_trip(dt: datetime) -> None:
    dt = dt.replace(tzinfo=UTC)
    expected = (dt - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)
    assert parse_date(dt.isoformat()) == expected
    assert parse_date(dt.isoformat(sep=" ").replace("+00:00", "")) == expected
    assert parse_date(str(expected)) == expected
