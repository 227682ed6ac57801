"""SeriesKey, TimeRange and the aligned range algebra shared by the store and the planner."""

from __future__ import annotations

import calendar
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from binmon.core.intervals import DAY_MS, MINUTE_MS, WEEK_MS, IntervalError, open_times
from binmon.history.ranges import (
    SeriesKey,
    TimeRange,
    align_inward,
    check_aligned,
    count_open_times,
    intersect_ranges,
    is_aligned,
    merge_ranges,
    prev_open,
    runs,
    subtract_ranges,
)

M = MINUTE_MS


def month(y: int, m: int) -> int:
    return calendar.timegm((y, m, 1, 0, 0, 0)) * 1000


def R(a: int, b: int) -> TimeRange:
    return TimeRange(a * M, b * M)


# ---------------------------------------------------------------- SeriesKey / TimeRange


def test_series_key_validates_and_spot_normalises() -> None:
    assert SeriesKey.spot("btcusdt", "1m") == SeriesKey("spot", "BTCUSDT", "1m")
    assert str(SeriesKey("um", "BTCUSDT_250627", "1M")) == "um:BTCUSDT_250627:1M"
    with pytest.raises(ValueError, match="market"):
        SeriesKey("margin", "BTCUSDT", "1m")
    with pytest.raises(ValueError, match="symbol"):
        SeriesKey("spot", "btcusdt", "1m")  # lower case would be a second, empty series
    with pytest.raises(ValueError, match="symbol"):
        SeriesKey("spot", "BTC/USDT", "1m")
    with pytest.raises(ValueError, match="symbol"):
        SeriesKey("spot", "", "1m")
    with pytest.raises(IntervalError):
        SeriesKey("spot", "BTCUSDT", "1min")
    # Binance lists non-ASCII symbols; only ASCII letters are upper-cased.
    assert SeriesKey.spot("币安人生usdt", "1h").symbol == "币安人生USDT"


def test_series_key_is_hashable_and_frozen() -> None:
    k = SeriesKey.spot("ETHBTC", "5m")
    assert {k: 1}[SeriesKey("spot", "ETHBTC", "5m")] == 1
    with pytest.raises(AttributeError):
        k.symbol = "X"  # type: ignore[misc]


def test_time_range_is_inclusive_and_refuses_empty() -> None:
    r = TimeRange(10, 20)
    assert r.contains(10) and r.contains(20) and not r.contains(21)
    assert TimeRange(5, 5).contains(5)
    assert r.overlaps(TimeRange(20, 30)) and not r.overlaps(TimeRange(21, 30))
    with pytest.raises(ValueError, match="empty range"):
        TimeRange(2, 1)


def test_alignment_helpers() -> None:
    assert is_aligned("1m", 5 * M) and not is_aligned("1m", 5 * M + 1)
    monday = 4 * DAY_MS  # 1970-01-05, Binance weeks open on Mondays
    assert is_aligned("1w", monday) and not is_aligned("1w", 0)
    assert prev_open("1w", monday + WEEK_MS) == monday
    assert prev_open("1M", month(2024, 3)) == month(2024, 2)
    assert prev_open("1M", month(2024, 1)) == month(2023, 12)
    assert check_aligned(R(1, 2), "1m") == R(1, 2)
    with pytest.raises(ValueError, match="not aligned"):
        check_aligned(TimeRange(M, 2 * M + 1), "1m")
    assert align_inward(TimeRange(M + 1, 3 * M + 5), "1m") == R(2, 3)
    assert align_inward(TimeRange(M + 1, 2 * M - 1), "1m") is None
    assert align_inward(TimeRange(month(2024, 1) + 1, month(2024, 4)), "1M") == TimeRange(
        month(2024, 2), month(2024, 4)
    )


# ---------------------------------------------------------------- merge / subtract / intersect


def test_merge_coalesces_overlapping_and_adjacent_only() -> None:
    assert merge_ranges([R(5, 6), R(0, 2), R(3, 4)], "1m") == [R(0, 6)]  # adjacent: 2 -> 3
    assert merge_ranges([R(0, 2), R(4, 5)], "1m") == [R(0, 2), R(4, 5)]  # one candle missing: 3
    assert merge_ranges([R(0, 10), R(2, 3), R(9, 12)], "1m") == [R(0, 12)]
    assert merge_ranges([], "1m") == []


def test_merge_adjacency_follows_the_calendar_for_months() -> None:
    feb, mar = month(2024, 2), month(2024, 3)
    assert merge_ranges([TimeRange(mar, mar), TimeRange(feb, feb)], "1M") == [TimeRange(feb, mar)]
    assert merge_ranges([TimeRange(feb, feb), TimeRange(month(2024, 4), month(2024, 4))], "1M") == [
        TimeRange(feb, feb),
        TimeRange(month(2024, 4), month(2024, 4)),
    ]


def test_subtract_cuts_at_candle_boundaries() -> None:
    assert subtract_ranges([R(0, 10)], [R(3, 4)], "1m") == [R(0, 2), R(5, 10)]
    assert subtract_ranges([R(0, 10)], [R(0, 10)], "1m") == []
    assert subtract_ranges([R(0, 10)], [R(-5, 0), R(10, 20)], "1m") == [R(1, 9)]
    assert subtract_ranges([R(0, 3), R(6, 9)], [R(2, 7)], "1m") == [R(0, 1), R(8, 9)]
    assert subtract_ranges([R(0, 3)], [], "1m") == [R(0, 3)]
    assert subtract_ranges([], [R(0, 3)], "1m") == []
    # A cut spanning several ranges is honoured for each of them.
    assert subtract_ranges([R(0, 1), R(3, 4), R(6, 9)], [R(1, 7)], "1m") == [R(0, 0), R(8, 9)]


def test_subtract_months() -> None:
    jan, feb, mar, apr = (month(2023, m) for m in (1, 2, 3, 4))
    assert subtract_ranges([TimeRange(jan, apr)], [TimeRange(feb, feb)], "1M") == [
        TimeRange(jan, jan),
        TimeRange(mar, apr),
    ]


def test_intersect() -> None:
    assert intersect_ranges([R(0, 5), R(8, 12)], [R(3, 9)], "1m") == [R(3, 5), R(8, 9)]
    assert intersect_ranges([R(0, 5)], [R(6, 9)], "1m") == []
    assert intersect_ranges([R(0, 2), R(3, 5)], [R(0, 9)], "1m") == [R(0, 5)]


def _times(ranges: list[TimeRange], interval: str) -> set[int]:
    return {t for r in ranges for t in open_times(interval, r.start, r.end)}


grid_ranges = st.lists(
    st.tuples(st.integers(0, 60), st.integers(0, 8)).map(lambda p: R(p[0], p[0] + p[1])), max_size=6
)


@settings(max_examples=300)
@given(grid_ranges, grid_ranges)
def test_range_algebra_matches_set_algebra(a: list[TimeRange], b: list[TimeRange]) -> None:
    ta, tb = _times(a, "1m"), _times(b, "1m")
    merged = merge_ranges(a, "1m")
    assert _times(merged, "1m") == ta
    # Merged means sorted with at least one missing candle between neighbours.
    assert all(x.end + M < y.start for x, y in pairwise(merged))
    assert _times(subtract_ranges(a, b, "1m"), "1m") == ta - tb
    assert _times(intersect_ranges(a, b, "1m"), "1m") == ta & tb
    assert subtract_ranges(a, b, "1m") == merge_ranges(subtract_ranges(a, b, "1m"), "1m")


def _month_range(p: tuple[int, int]) -> TimeRange:
    first, last = p[0], p[0] + p[1]
    return TimeRange(month(2020 + first // 12, first % 12 + 1), month(2020 + last // 12, last % 12 + 1))


month_ranges = st.lists(st.tuples(st.integers(0, 40), st.integers(0, 5)).map(_month_range), max_size=5)


@settings(max_examples=150)
@given(month_ranges, month_ranges)
def test_range_algebra_on_calendar_months(a: list[TimeRange], b: list[TimeRange]) -> None:
    ta, tb = _times(a, "1M"), _times(b, "1M")
    assert _times(merge_ranges(a, "1M"), "1M") == ta
    assert _times(subtract_ranges(a, b, "1M"), "1M") == ta - tb
    assert _times(intersect_ranges(a, b, "1M"), "1M") == ta & tb


# ---------------------------------------------------------------- runs / counts


def test_runs_of_fixed_and_calendar_intervals() -> None:
    assert runs([0, M, 2 * M, 4 * M, 6 * M, 7 * M], "1m") == [R(0, 2), R(4, 4), R(6, 7)]
    assert runs([], "1m") == []
    assert runs([5 * M], "1m") == [R(5, 5)]
    months = [month(2024, 1), month(2024, 2), month(2024, 3), month(2024, 5)]
    assert runs(months, "1M") == [TimeRange(months[0], months[2]), TimeRange(months[3], months[3])]
    monday = 4 * DAY_MS
    weeks = [monday, monday + WEEK_MS, monday + 3 * WEEK_MS]
    assert runs(weeks, "1w") == [TimeRange(weeks[0], weeks[1]), TimeRange(weeks[2], weeks[2])]


def test_count_open_times() -> None:
    assert count_open_times(R(0, 999), "1m") == 1000
    assert count_open_times(TimeRange(1, M - 1), "1m") == 0
    assert count_open_times(TimeRange(month(2023, 1), month(2024, 1)), "1M") == 13
