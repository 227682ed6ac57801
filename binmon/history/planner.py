"""The download planner: which candle ranges still have to be fetched. Pure functions, no I/O.

The downloader asks the store for its coverage, clamps the wanted range to closed candles,
asks :func:`missing` for the holes, cuts each hole into :func:`pages` of at most one REST
request, fetches them and upserts each page with ``fetched=page``. Because coverage only grows
when a page's candles are committed, running the same plan again after a crash (or twice)
fetches exactly what is still missing. Every range here is an inclusive, aligned open-time
range (see :mod:`binmon.history.ranges`).
"""

from __future__ import annotations

from collections.abc import Sequence

from binmon.core.intervals import interval_ms, next_open, open_time
from binmon.history.ranges import TimeRange, align_inward, prev_open, subtract_ranges

#: Most candles one ``GET /api/v3/klines`` returns (USD-M futures allow 1500).
SPOT_PAGE = 1000


def missing(coverage: Sequence[TimeRange], want: TimeRange, interval: str) -> list[TimeRange]:
    """The aligned ranges of open times inside ``want`` that no range of ``coverage`` holds.

    ``want`` need not be aligned: it is narrowed to the candles opening inside it. ``coverage``
    (aligned; any order, overlaps allowed) is what the store reports as fetched. The result is
    sorted and merged; empty when everything wanted is covered.
    """
    inner = align_inward(want, interval)
    if inner is None:
        return []
    return subtract_ranges([inner], coverage, interval)


def last_closed_open(interval: str, now_ms: int) -> int:
    """Open time of the newest candle that is closed at ``now_ms``.

    The candle containing ``now_ms`` is still forming (Binance closes a candle at its
    ``close_time``, the millisecond before the next one opens), so it is the one before.
    """
    return prev_open(interval, open_time(interval, now_ms))


def clamp_to_closed(want: TimeRange, interval: str, now_ms: int) -> TimeRange | None:
    """``want`` narrowed to the aligned open times of candles already closed at ``now_ms``.

    Never plans the still-open candle or future ones: fetching them would store nothing
    final, and covering them would mark them confirmed empty. None when nothing is left.
    """
    inner = align_inward(want, interval)
    if inner is None:
        return None
    end = min(inner.end, last_closed_open(interval, now_ms))
    return TimeRange(inner.start, end) if inner.start <= end else None


def pages(r: TimeRange, interval: str, per_page: int = SPOT_PAGE) -> list[TimeRange]:
    """``r`` (narrowed to aligned open times) cut into consecutive ranges of at most ``per_page`` candles.

    Each page is one REST request: ``startTime=page.start, endTime=page.end, limit=per_page``.
    Calendar-aware for ``1M``. ValueError when ``per_page < 1``.
    """
    if per_page < 1:
        raise ValueError(f"per_page must be at least 1, got {per_page}")
    inner = align_inward(r, interval)
    if inner is None:
        return []
    out: list[TimeRange] = []
    start = inner.start
    if interval != "1M":
        span = interval_ms(interval) * (per_page - 1)
        while start <= inner.end:
            end = min(start + span, inner.end)
            out.append(TimeRange(start, end))
            start = end + interval_ms(interval)
        return out
    while start <= inner.end:
        end = start
        for _ in range(per_page - 1):
            following = next_open(interval, end)
            if following > inner.end:
                break
            end = following
        out.append(TimeRange(start, end))
        start = next_open(interval, end)
    return out


def plan(
    coverage: Sequence[TimeRange], want: TimeRange, interval: str, now_ms: int, per_page: int = SPOT_PAGE
) -> list[TimeRange]:
    """The pages to fetch for ``want``: closed candles only, minus ``coverage``, oldest first."""
    closed = clamp_to_closed(want, interval, now_ms)
    if closed is None:
        return []
    return [p for hole in missing(coverage, closed, interval) for p in pages(hole, interval, per_page)]
