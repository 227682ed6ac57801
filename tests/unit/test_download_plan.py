"""The download plan: where each missing candle comes from (archive or REST), clamps, estimates."""

from __future__ import annotations

import calendar
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from binmon.core.intervals import DAY_MS, HOUR_MS, MINUTE_MS
from binmon.core.models import Kline
from binmon.history.download import Downloader
from binmon.history.download_plan import (
    AUTO_ARCHIVE_MIN_PAGES,
    CLOSED_MARGIN_MS,
    DownloadPlan,
    DownloadRequest,
    file_range,
    make_plan,
)
from binmon.history.ranges import SeriesKey, TimeRange, count_open_times, intersect_ranges, merge_ranges
from binmon.history.store import CandleStore

M = MINUTE_MS
KEY = SeriesKey.spot("BTCUSDT", "1m")


def ts(y: int, mo: int, d: int = 1, h: int = 0, mi: int = 0) -> int:
    return calendar.timegm((y, mo, d, h, mi, 0)) * 1000


#: 2024-06-10 12:30:30 UTC: the current month (June) has 9 complete days.
NOW = ts(2024, 6, 10, 12, 30) + 30_000


def req(start: int, end: int | None = None, source: str = "auto", key: SeriesKey = KEY) -> DownloadRequest:
    return DownloadRequest(key, start, end, source)  # type: ignore[arg-type]


def units_cover_exactly(plan: DownloadPlan) -> None:
    """Files and pages are disjoint, and together fill every hole (files may reach beyond)."""
    iv = plan.key.interval
    spans = [r for r in (file_range(f) for f in plan.archive_files) if r is not None]
    assert intersect_ranges(spans, plan.rest_pages, iv) == []
    for a, b in zip(plan.rest_pages, plan.rest_pages[1:], strict=False):
        assert a.end < b.start
    filled = merge_ranges([*intersect_ranges(plan.missing, spans, iv), *plan.rest_pages], iv)
    assert filled == merge_ranges(plan.missing, iv)
    assert plan.estimated_candles == sum(count_open_times(h, iv) for h in plan.missing)


# ---------------------------------------------------------------- requests


def test_request_validation() -> None:
    with pytest.raises(ValueError, match="source"):
        req(0, None, "ftp")
    with pytest.raises(ValueError, match="before"):
        req(10, 5)


# ---------------------------------------------------------------- REST


def test_rest_plan_is_pages_of_the_holes_oldest_first() -> None:
    start = ts(2024, 6, 1)
    cov = [TimeRange(start + 100 * M, start + 199 * M)]
    plan = make_plan(req(start, start + 2999 * M, "rest"), cov, NOW, None)
    assert plan.missing == (TimeRange(start, start + 99 * M), TimeRange(start + 200 * M, start + 2999 * M))
    assert [p.start for p in plan.rest_pages] == [start, start + 200 * M, start + 1200 * M, start + 2200 * M]
    assert plan.rest_pages[-1] == TimeRange(start + 2200 * M, start + 2999 * M)
    assert plan.archive_files == ()
    assert plan.estimated_candles == 100 + 2800
    assert plan.total_units == 4
    units_cover_exactly(plan)


def test_end_none_means_up_to_the_last_closed_candle_with_a_margin() -> None:
    plan = make_plan(req(ts(2024, 6, 10, 12), None, "rest"), [], NOW, None)
    assert plan.want == TimeRange(ts(2024, 6, 10, 12), ts(2024, 6, 10, 12, 29))
    # 1.5 s after a close the candle is not planned yet: the REST client's lower bound of the
    # server clock might still call it open.
    just = ts(2024, 6, 10, 12, 31) + CLOSED_MARGIN_MS // 2
    assert make_plan(req(ts(2024, 6, 10, 12), None, "rest"), [], just, None).want == TimeRange(
        ts(2024, 6, 10, 12), ts(2024, 6, 10, 12, 29)
    )
    # An end in the future is the same as none.
    assert make_plan(req(ts(2024, 6, 10, 12), ts(2030, 1, 1), "rest"), [], NOW, None).want == plan.want


def test_nothing_closed_yet_is_an_empty_plan_with_a_note() -> None:
    plan = make_plan(req(ts(2024, 6, 10, 12, 30), None), [], NOW, None)
    assert plan.want is None and plan.up_to_date and plan.total_units == 0
    assert "no closed candle" in plan.notes[0]


def test_covered_range_is_up_to_date() -> None:
    start = ts(2024, 6, 1)
    plan = make_plan(req(start, start + 99 * M), [TimeRange(start - 10 * M, start + 200 * M)], NOW, None)
    assert plan.up_to_date and plan.total_units == 0 and plan.estimated_candles == 0


def test_listing_clamp_marks_the_time_before_it_and_notes_it() -> None:
    listing = ts(2024, 6, 3, 10, 7)
    plan = make_plan(req(ts(2020, 1, 1), ts(2024, 6, 3, 11), "rest"), [], NOW, listing)
    assert plan.below_listing == TimeRange(ts(2020, 1, 1), listing - M)
    assert plan.want == TimeRange(listing, ts(2024, 6, 3, 11))
    assert plan.rest_pages == (TimeRange(listing, ts(2024, 6, 3, 11)),)
    assert "history starts at 2024-06-03 10:07 UTC" in plan.notes[0]
    # Entirely before the listing: nothing to fetch, but the span is still marked.
    early = make_plan(req(ts(2020, 1, 1), ts(2021, 1, 1), "rest"), [], NOW, listing)
    assert early.want is None and early.below_listing is not None and early.total_units == 0
    # A start after the listing is untouched.
    late = make_plan(req(ts(2024, 6, 5), ts(2024, 6, 5, 1), "rest"), [], NOW, listing)
    assert late.below_listing is None and late.notes == ()


def test_per_page_sets_the_page_size() -> None:
    start = ts(2024, 6, 1)
    plan = make_plan(req(start, start + 249 * M, "rest"), [], NOW, None, per_page=100)
    assert [count_open_times(p, "1m") for p in plan.rest_pages] == [100, 100, 50]


# ---------------------------------------------------------------- archive


def test_archive_source_months_days_and_a_rest_tail() -> None:
    start = ts(2024, 3, 25)
    plan = make_plan(req(start, None, "archive"), [], NOW, None)
    names = [f.name for f in plan.archive_files]
    march = [f"BTCUSDT-1m-2024-03-{d:02d}.zip" for d in range(25, 32)]
    june = [f"BTCUSDT-1m-2024-06-{d:02d}.zip" for d in range(1, 10)]
    assert names == [*march, "BTCUSDT-1m-2024-04.zip", "BTCUSDT-1m-2024-05.zip", *june]
    # Only today (not published) comes from REST.
    assert plan.rest_pages == (TimeRange(ts(2024, 6, 10), ts(2024, 6, 10, 12, 29)),)
    units_cover_exactly(plan)


def test_archive_source_takes_partly_wanted_edge_days_whole() -> None:
    plan = make_plan(req(ts(2024, 6, 3, 22), ts(2024, 6, 5, 1), "archive"), [], NOW, None)
    assert [f.date for f in plan.archive_files] == ["2024-06-03", "2024-06-04", "2024-06-05"]
    assert plan.rest_pages == ()
    assert plan.estimated_candles == 2 * 60 + 1440 + 61
    units_cover_exactly(plan)


def test_two_holes_in_one_day_share_its_file() -> None:
    day = ts(2024, 6, 4)
    cov = [TimeRange(day + 600 * M, day + 700 * M)]
    plan = make_plan(req(day, day + DAY_MS - M, "archive"), cov, NOW, None)
    assert [f.date for f in plan.archive_files] == ["2024-06-04"]
    units_cover_exactly(plan)


def test_auto_uses_rest_for_short_holes() -> None:
    start = NOW - AUTO_ARCHIVE_MIN_PAGES * 1000 * M  # exactly 20 pages: still REST
    plan = make_plan(req(start, None, "auto"), [], NOW, None)
    assert plan.archive_files == ()
    assert len(plan.rest_pages) == AUTO_ARCHIVE_MIN_PAGES
    units_cover_exactly(plan)


def test_auto_long_1m_hole_uses_files_worth_a_page_and_rest_for_the_rest() -> None:
    start = ts(2024, 3, 31, 12)  # 720 wanted candles of March 31: less than a page -> REST
    plan = make_plan(req(start, None, "auto"), [], NOW, None)
    names = [f.name for f in plan.archive_files]
    assert names[:2] == ["BTCUSDT-1m-2024-04.zip", "BTCUSDT-1m-2024-05.zip"]
    assert [f.date for f in plan.archive_files[2:]] == [f"2024-06-{d:02d}" for d in range(1, 10)]
    assert plan.rest_pages == (
        TimeRange(start, ts(2024, 3, 31, 23, 59)),
        TimeRange(ts(2024, 6, 10), ts(2024, 6, 10, 12, 29)),
    )
    units_cover_exactly(plan)


def test_auto_1h_months_hold_less_than_a_page_so_it_is_all_rest() -> None:
    key = SeriesKey.spot("BTCUSDT", "1h")
    plan = make_plan(req(ts(2020, 1, 1), None, "auto", key), [], NOW, None)
    assert count_open_times(plan.missing[0], "1h") > AUTO_ARCHIVE_MIN_PAGES * 1000
    assert plan.archive_files == ()
    units_cover_exactly(plan)


def test_auto_1s_days_are_archived() -> None:
    key = SeriesKey.spot("BTCUSDT", "1s")
    plan = make_plan(req(ts(2024, 6, 8), None, "auto", key), [], NOW, None)
    assert [f.date for f in plan.archive_files] == ["2024-06-08", "2024-06-09"]
    assert plan.rest_pages[0].start == ts(2024, 6, 10)
    units_cover_exactly(plan)


def test_without_an_archive_everything_is_rest() -> None:
    plan = make_plan(req(ts(2024, 1, 1), None, "archive"), [], NOW, None, archive_available=False)
    assert plan.archive_files == () and plan.rest_pages
    units_cover_exactly(plan)


def test_a_file_not_published_yet_is_left_to_rest() -> None:
    plan = make_plan(req(ts(2024, 6, 8), None, "archive"), [], NOW, None, publish_lag_ms=14 * HOUR_MS)
    assert [f.date for f in plan.archive_files] == ["2024-06-08"]  # June 9's file is not out yet
    assert plan.rest_pages[0].start == ts(2024, 6, 9)
    units_cover_exactly(plan)


@settings(max_examples=150, deadline=None)
@given(
    start=st.integers(0, 120 * 24 * 60),
    length=st.integers(1, 90 * 24 * 60),
    covered=st.lists(st.tuples(st.integers(0, 200 * 24 * 60), st.integers(0, 3000)), max_size=4),
    source=st.sampled_from(["auto", "rest", "archive"]),
    interval=st.sampled_from(["1m", "5m", "1h"]),
)
def test_any_plan_fills_exactly_the_holes(
    start: int, length: int, covered: list[tuple[int, int]], source: str, interval: str
) -> None:
    base = ts(2024, 1, 1)
    key = SeriesKey.spot("ETHBTC", interval)
    step = {"1m": M, "5m": 5 * M, "1h": HOUR_MS}[interval]
    cov = [TimeRange(base + a * step, base + (a + n) * step) for a, n in covered]
    r = req(base + start * M, base + (start + length) * M, source, key)
    plan = make_plan(r, cov, NOW, base)
    units_cover_exactly(plan)
    assert intersect_ranges(plan.missing, cov, interval) == []


# ---------------------------------------------------------------- Downloader.plan


class FakeRest:
    """Just what Downloader.plan touches: the server clock and the listing request."""

    def __init__(self, listing: int | None) -> None:
        self.listing = listing
        self.calls: list[dict[str, Any]] = []

    def server_now_ms(self, max_age_s: float = 60.0) -> int:
        return NOW

    def klines(self, symbol: str, interval: str, **kw: Any) -> list[Kline]:
        self.calls.append(kw)
        if self.listing is None:
            return []
        return [Kline(symbol, interval, self.listing, self.listing + M - 1, 1, 1, 1, 1, 1, 1, 1, 1, 1)]


def test_downloader_plan_asks_the_listing_once_and_only_when_something_is_missing(tmp_path: Path) -> None:
    rest = FakeRest(listing=ts(2024, 6, 3))
    with CandleStore.open(tmp_path / "s.db", clock=lambda: NOW) as store:
        dl = Downloader(store, rest, None)  # type: ignore[arg-type]
        plan = dl.plan(req(ts(2024, 1, 1), ts(2024, 6, 3, 1)))
        assert plan.listing_ms == ts(2024, 6, 3) and plan.below_listing is not None
        assert plan.archive_files == ()  # no archive client: REST only
        dl.plan(req(ts(2024, 1, 1), ts(2024, 6, 3, 2)))
        assert rest.calls == [{"start_ms": 0, "limit": 1}]  # cached
        store.mark_fetched(KEY, TimeRange(ts(2024, 1, 1), ts(2024, 6, 4)))
        fresh = Downloader(store, rest, None)  # type: ignore[arg-type]
        assert fresh.plan(req(ts(2024, 1, 1), ts(2024, 6, 3, 2))).up_to_date
        assert len(rest.calls) == 1  # up to date: no listing request
        assert fresh.now_ms() == NOW


def test_downloader_refuses_futures_and_bad_settings(tmp_path: Path) -> None:
    with CandleStore.open(tmp_path / "s.db") as store:
        dl = Downloader(store, FakeRest(None), None)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="only spot"):
            dl.plan(req(0, None, "rest", SeriesKey("um", "BTCUSDT", "1m")))
        with pytest.raises(ValueError, match="workers"):
            Downloader(store, FakeRest(None), None, workers=0)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="per_page"):
            Downloader(store, FakeRest(None), None, per_page=1001)  # type: ignore[arg-type]
