"""The pure download planner: missing ranges, closed-candle clamp, REST pages."""

from __future__ import annotations

import calendar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from binmon.core.intervals import DAY_MS, MINUTE_MS, open_times
from binmon.history.planner import clamp_to_closed, last_closed_open, missing, pages, plan
from binmon.history.ranges import TimeRange, count_open_times, merge_ranges

M = MINUTE_MS


def month(y: int, m: int) -> int:
    return calendar.timegm((y, m, 1, 0, 0, 0)) * 1000


def R(a: int, b: int) -> TimeRange:
    return TimeRange(a * M, b * M)


# ---------------------------------------------------------------- missing


def test_missing_without_coverage_is_the_aligned_want() -> None:
    assert missing([], R(0, 99), "1m") == [R(0, 99)]
    assert missing([], TimeRange(M + 1, 5 * M + 30), "1m") == [R(2, 5)]
    assert missing([], TimeRange(M + 1, 2 * M - 1), "1m") == []


def test_missing_holes_between_and_around_coverage() -> None:
    cov = [R(10, 19), R(30, 39)]
    assert missing(cov, R(0, 49), "1m") == [R(0, 9), R(20, 29), R(40, 49)]
    assert missing(cov, R(12, 35), "1m") == [R(20, 29)]
    assert missing(cov, R(10, 19), "1m") == []
    # Unsorted, overlapping coverage is fine.
    assert missing([R(5, 20), R(0, 10)], R(0, 25), "1m") == [R(21, 25)]


def test_missing_months() -> None:
    cov = [TimeRange(month(2024, 2), month(2024, 3))]
    assert missing(cov, TimeRange(month(2024, 1), month(2024, 5)), "1M") == [
        TimeRange(month(2024, 1), month(2024, 1)),
        TimeRange(month(2024, 4), month(2024, 5)),
    ]


cov_strategy = st.lists(
    st.tuples(st.integers(-20, 200), st.integers(0, 30)).map(lambda p: R(p[0], p[0] + p[1])), max_size=8
)


@settings(max_examples=300)
@given(cov_strategy, st.integers(-30, 220), st.integers(0, 120), st.integers(0, M - 1), st.integers(0, M - 1))
def test_missing_and_coverage_partition_the_want(
    cov: list[TimeRange], a: int, length: int, jitter_a: int, jitter_b: int
) -> None:
    want = TimeRange(a * M - jitter_a, (a + length) * M + jitter_b)
    holes = missing(cov, want, "1m")
    wanted = set(open_times("1m", want.start, want.end))
    covered = {t for r in cov for t in open_times("1m", r.start, r.end)}
    hole_times = {t for r in holes for t in open_times("1m", r.start, r.end)}
    assert hole_times | covered >= wanted  # missing ∪ coverage ⊇ want
    assert not hole_times & covered  # missing ∩ coverage = ∅
    assert hole_times <= wanted  # nothing outside want is planned
    assert holes == merge_ranges(holes, "1m")  # sorted, merged, aligned
    assert all(r.start % M == 0 and r.end % M == 0 for r in holes)


# ---------------------------------------------------------------- clamp_to_closed


def test_clamp_excludes_the_open_candle_and_the_future() -> None:
    now = 100 * M + 30_000  # half way through the candle opening at 100
    assert last_closed_open("1m", now) == 99 * M
    assert clamp_to_closed(R(0, 500), "1m", now) == R(0, 99)
    assert clamp_to_closed(R(0, 50), "1m", now) == R(0, 50)
    assert clamp_to_closed(R(100, 500), "1m", now) is None
    assert clamp_to_closed(R(200, 500), "1m", now) is None


def test_clamp_at_the_exact_close() -> None:
    # At 100*M the candle opening at 99 closed (its close_time is 100*M - 1).
    assert clamp_to_closed(R(0, 500), "1m", 100 * M) == R(0, 99)
    assert clamp_to_closed(R(0, 500), "1m", 100 * M - 1) == R(0, 98)


def test_clamp_aligns_inward_and_handles_calendar_intervals() -> None:
    assert clamp_to_closed(TimeRange(M + 1, 10 * M), "1m", 5 * M) == R(2, 4)
    now = month(2024, 3) + 5 * DAY_MS
    got = clamp_to_closed(TimeRange(month(2023, 11), month(2025, 1)), "1M", now)
    assert got == TimeRange(month(2023, 11), month(2024, 2))
    assert clamp_to_closed(TimeRange(0, 10 * DAY_MS), "1w", 3 * DAY_MS) is None  # no Monday yet


# ---------------------------------------------------------------- pages


def test_pages_of_fixed_intervals() -> None:
    assert pages(R(0, 2499), "1m") == [R(0, 999), R(1000, 1999), R(2000, 2499)]
    assert pages(R(0, 999), "1m") == [R(0, 999)]
    assert pages(R(5, 5), "1m") == [R(5, 5)]
    assert pages(R(0, 2999), "1m", per_page=1500) == [R(0, 1499), R(1500, 2999)]
    assert pages(R(0, 2), "1m", per_page=1) == [R(0, 0), R(1, 1), R(2, 2)]
    assert pages(TimeRange(1, M - 1), "1m") == []
    with pytest.raises(ValueError, match="per_page"):
        pages(R(0, 5), "1m", per_page=0)


def test_pages_follow_the_calendar_for_months() -> None:
    got = pages(TimeRange(month(2020, 1), month(2021, 2)), "1M", per_page=5)
    assert got == [
        TimeRange(month(2020, 1), month(2020, 5)),
        TimeRange(month(2020, 6), month(2020, 10)),
        TimeRange(month(2020, 11), month(2021, 2)),
    ]
    assert [count_open_times(p, "1M") for p in got] == [5, 5, 4]


@settings(max_examples=200)
@given(
    st.integers(0, 10_000),
    st.integers(0, 5_000),
    st.integers(1, 1500),
    st.sampled_from(["1m", "1h", "1w", "1M"]),
)
def test_pages_partition_the_range(start: int, length: int, per_page: int, interval: str) -> None:
    step = {"1m": M, "1h": 60 * M, "1w": 7 * DAY_MS, "1M": 28 * DAY_MS}[interval]
    r = TimeRange(start * step, (start + length) * step)
    got = pages(r, interval, per_page)
    times = open_times(interval, r.start, r.end)
    flat = [t for p in got for t in open_times(interval, p.start, p.end)]
    assert flat == times  # consecutive, no overlap, nothing lost
    assert all(count_open_times(p, interval) <= per_page for p in got)
    assert all(count_open_times(p, interval) == per_page for p in got[:-1])


def test_plan_combines_clamp_missing_and_pages() -> None:
    now = 3000 * M + 1
    got = plan([R(500, 1499)], R(0, 10_000), "1m", now)
    assert got == [R(0, 499), R(1500, 2499), R(2500, 2999)]
    assert plan([R(0, 5000)], R(0, 10_000), "1m", now) == []
