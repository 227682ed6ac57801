"""binmon.core.intervals: names, candle boundaries and calendar stepping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from binmon.core import intervals
from binmon.core.intervals import (
    INTERVALS,
    IntervalError,
    check_interval,
    close_time,
    interval_ms,
    next_open,
    open_time,
    open_times,
)


def ms(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> int:
    """UTC datetime fields -> epoch ms (an independent reference for the module under test)."""
    return int(datetime(year, month, day, hour, minute, second, tzinfo=UTC).timestamp() * 1000)


def test_the_sixteen_binance_intervals_shortest_first() -> None:
    assert INTERVALS == (
        "1s", "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d", "3d", "1w", "1M",
    )  # fmt: skip
    lengths = [interval_ms(i) for i in INTERVALS]
    assert lengths == sorted(lengths)


@pytest.mark.parametrize("bad", ["", "1mo", "1H", "2m", "1min", "60s", "1W", " 1m"])
def test_unknown_interval_names_are_refused(bad: str) -> None:
    with pytest.raises(IntervalError, match="unknown interval"):
        check_interval(bad)
    assert issubclass(IntervalError, ValueError)
    with pytest.raises(IntervalError):
        open_time(bad, 0)


def test_interval_names_are_case_sensitive() -> None:
    assert check_interval("1m") == "1m"
    assert check_interval("1M") == "1M"
    assert interval_ms("1m") == 60_000
    assert interval_ms("1M") == 30 * intervals.DAY_MS  # nominal only


@pytest.mark.parametrize(
    ("interval", "length"),
    [("1s", 1_000), ("3m", 180_000), ("15m", 900_000), ("2h", 7_200_000), ("12h", 43_200_000),
     ("3d", 259_200_000), ("1w", 604_800_000)],
)  # fmt: skip
def test_fixed_lengths(interval: str, length: int) -> None:
    assert interval_ms(interval) == length
    t = ms(2019, 10, 11, 13, 37, 12)
    o = open_time(interval, t)
    assert next_open(interval, o) - o == length
    assert close_time(interval, o) == o + length - 1


def test_minute_and_hour_boundaries() -> None:
    t = ms(2019, 10, 11, 13, 37, 12) + 345
    assert open_time("1m", t) == ms(2019, 10, 11, 13, 37)
    assert open_time("5m", t) == ms(2019, 10, 11, 13, 35)
    assert open_time("4h", t) == ms(2019, 10, 11, 12)
    assert open_time("1d", t) == ms(2019, 10, 11)
    # The last millisecond of a candle still belongs to it.
    assert open_time("1m", ms(2019, 10, 11, 13, 37) + 59_999) == ms(2019, 10, 11, 13, 37)


def test_weeks_open_on_monday_utc() -> None:
    friday = ms(2019, 10, 11, 13)
    assert open_time("1w", friday) == ms(2019, 10, 7)  # Monday 7 October 2019
    assert datetime.fromtimestamp(open_time("1w", friday) / 1000, tz=UTC).weekday() == 0
    sunday_last_ms = ms(2019, 10, 14) - 1
    assert open_time("1w", sunday_last_ms) == ms(2019, 10, 7)
    assert open_time("1w", ms(2019, 10, 14)) == ms(2019, 10, 14)
    # The epoch was a Thursday: its week opened on Monday 1969-12-29.
    assert open_time("1w", 0) == ms(1969, 12, 29)


def test_months_follow_the_calendar() -> None:
    assert open_time("1M", ms(2024, 2, 29, 23, 59)) == ms(2024, 2, 1)
    assert next_open("1M", ms(2024, 1, 1)) == ms(2024, 2, 1)
    assert next_open("1M", ms(2024, 2, 1)) - ms(2024, 2, 1) == 29 * intervals.DAY_MS  # leap year
    assert next_open("1M", ms(2023, 2, 1)) - ms(2023, 2, 1) == 28 * intervals.DAY_MS
    assert next_open("1M", ms(2019, 12, 1)) == ms(2020, 1, 1)  # year rollover
    assert close_time("1M", ms(2019, 12, 1)) == ms(2020, 1, 1) - 1


def test_open_times_lists_candles_opening_inside_the_range() -> None:
    start = ms(2019, 10, 11, 0, 0, 30)  # mid-candle: the first candle is the next one
    got = open_times("1m", start, ms(2019, 10, 11, 0, 3))
    assert got == [ms(2019, 10, 11, 0, 1), ms(2019, 10, 11, 0, 2), ms(2019, 10, 11, 0, 3)]
    assert open_times("1m", ms(2019, 10, 11), ms(2019, 10, 11)) == [ms(2019, 10, 11)]
    assert open_times("1m", ms(2019, 10, 11, 0, 1), ms(2019, 10, 11)) == []
    assert open_times("1M", ms(2019, 11, 15), ms(2020, 2, 1)) == [
        ms(2019, 12, 1),
        ms(2020, 1, 1),
        ms(2020, 2, 1),
    ]


_TIMES = st.integers(min_value=ms(2010, 1, 1), max_value=ms(2040, 12, 31))


@given(interval=st.sampled_from(INTERVALS), t=_TIMES)
def test_every_instant_lies_in_exactly_one_candle(interval: str, t: int) -> None:
    o = open_time(interval, t)
    n = next_open(interval, o)
    assert o <= t < n
    assert open_time(interval, o) == o
    assert open_time(interval, n) == n
    assert open_time(interval, n - 1) == o
    assert close_time(interval, o) == n - 1


@given(t=_TIMES)
def test_calendar_candles_match_datetime(t: int) -> None:
    d = datetime.fromtimestamp(t / 1000, tz=UTC)
    day = datetime(d.year, d.month, d.day, tzinfo=UTC)
    assert open_time("1d", t) == int(day.timestamp() * 1000)
    monday = day - timedelta(days=d.weekday())
    assert open_time("1w", t) == int(monday.timestamp() * 1000)
    month = datetime(d.year, d.month, 1, tzinfo=UTC)
    nxt = datetime(d.year + d.month // 12, d.month % 12 + 1, 1, tzinfo=UTC)
    assert open_time("1M", t) == int(month.timestamp() * 1000)
    assert next_open("1M", open_time("1M", t)) == int(nxt.timestamp() * 1000)
