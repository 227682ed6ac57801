"""Binance kline intervals and the time arithmetic on them.

All times are integer milliseconds since the Unix epoch, UTC, as on the wire.
Every interval but ``1M`` has a fixed length; ``1M`` follows the calendar (UTC month
starts), and ``1w`` opens on Mondays (Binance aligns weeks to Monday 00:00 UTC, which
is epoch + 4 days).
"""

from __future__ import annotations

import calendar
from datetime import UTC, datetime

SECOND_MS = 1_000
MINUTE_MS = 60 * SECOND_MS
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS
WEEK_MS = 7 * DAY_MS
#: 1970-01-01 was a Thursday; Binance weeks open on Monday 00:00 UTC.
_WEEK_OFFSET_MS = 4 * DAY_MS

#: Fixed interval lengths in ms; ``1M`` is absent because months vary.
_FIXED_MS: dict[str, int] = {
    "1s": SECOND_MS,
    "1m": MINUTE_MS,
    "3m": 3 * MINUTE_MS,
    "5m": 5 * MINUTE_MS,
    "15m": 15 * MINUTE_MS,
    "30m": 30 * MINUTE_MS,
    "1h": HOUR_MS,
    "2h": 2 * HOUR_MS,
    "4h": 4 * HOUR_MS,
    "6h": 6 * HOUR_MS,
    "8h": 8 * HOUR_MS,
    "12h": 12 * HOUR_MS,
    "1d": DAY_MS,
    "3d": 3 * DAY_MS,
    "1w": WEEK_MS,
}

#: All 16 Binance spot kline intervals, shortest first.
INTERVALS: tuple[str, ...] = (*_FIXED_MS, "1M")


class IntervalError(ValueError):
    """An interval name Binance does not know."""


def check_interval(interval: str) -> str:
    """Return ``interval`` unchanged if Binance knows it, else raise :class:`IntervalError`.

    Interval names are case-sensitive (``1m`` is a minute, ``1M`` a month).
    """
    if interval not in INTERVALS:
        raise IntervalError(f"unknown interval {interval!r}; use one of {', '.join(INTERVALS)}")
    return interval


def interval_ms(interval: str) -> int:
    """Nominal length of ``interval`` in ms (``1M`` counts as 30 days).

    Use it for rates and estimates (watchdog periods, page counts), never to step
    ``1M`` open times: use :func:`next_open` for that.
    """
    check_interval(interval)
    return _FIXED_MS.get(interval, 30 * DAY_MS)


def _month_start(ts_ms: int) -> int:
    d = datetime.fromtimestamp(ts_ms / 1000, tz=UTC)
    return calendar.timegm((d.year, d.month, 1, 0, 0, 0)) * 1000


def open_time(interval: str, ts_ms: int) -> int:
    """Open time of the ``interval`` candle that contains the instant ``ts_ms``."""
    check_interval(interval)
    if interval == "1M":
        return _month_start(ts_ms)
    step = _FIXED_MS[interval]
    offset = _WEEK_OFFSET_MS if interval == "1w" else 0
    return (ts_ms - offset) // step * step + offset


def next_open(interval: str, open_ms: int) -> int:
    """Open time of the candle after the one opening at ``open_ms`` (calendar-aware for 1M)."""
    check_interval(interval)
    if interval == "1M":
        d = datetime.fromtimestamp(open_ms / 1000, tz=UTC)
        year, month = (d.year + 1, 1) if d.month == 12 else (d.year, d.month + 1)
        return calendar.timegm((year, month, 1, 0, 0, 0)) * 1000
    return open_ms + _FIXED_MS[interval]


def close_time(interval: str, open_ms: int) -> int:
    """Binance's ``close_time`` of a candle: the last millisecond it covers."""
    return next_open(interval, open_ms) - 1


def open_times(interval: str, start_ms: int, end_ms: int) -> list[int]:
    """Open times of every candle whose open time lies in ``[start_ms, end_ms]``.

    The first candle is the first one opening at or after ``start_ms``.
    """
    t = open_time(interval, start_ms)
    if t < start_ms:
        t = next_open(interval, t)
    out: list[int] = []
    while t <= end_ms:
        out.append(t)
        t = next_open(interval, t)
    return out
