"""Series keys and inclusive open-time ranges, with the pure range algebra the store and planner share.

A :class:`TimeRange` is a closed interval ``[start, end]`` of candle *open times* (ms, UTC):
``TimeRange(t, t)`` is one candle. Ranges stored or returned by the history package are
*aligned* (both ends are open times of the interval), so "the candle after ``end``" is
``next_open(interval, end)`` and "the candle before ``start``" is :func:`prev_open`. Two aligned
ranges are *adjacent* when ``next_open(interval, a.end) == b.start``; merging coalesces adjacent
and overlapping ranges, so a merged list has a gap of at least one candle between neighbours.
No I/O, no Qt.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from binmon.binance.streams import exchange_symbol
from binmon.core.intervals import check_interval, interval_ms, next_open, open_time

#: Markets the store knows by name: Binance spot, USD-M and COIN-M futures.
MARKETS: tuple[str, ...] = ("spot", "um", "cm")


@dataclass(frozen=True, slots=True)
class SeriesKey:
    """One candle series: ``(market, symbol, interval)``, e.g. ``("spot", "BTCUSDT", "1m")``.

    ``market`` is one of :data:`MARKETS`; ``symbol`` is the exchange spelling (ASCII upper case,
    as :func:`~binmon.binance.streams.exchange_symbol` gives it);
    ``interval`` a Binance interval name (case-sensitive: ``1m`` is a minute, ``1M`` a month).
    Raises ValueError (IntervalError for the interval) on anything else, so a typo cannot
    create a second, silently empty series in the store.
    """

    market: str
    symbol: str
    interval: str

    def __post_init__(self) -> None:
        if self.market not in MARKETS:
            raise ValueError(f"unknown market {self.market!r}; use one of {', '.join(MARKETS)}")
        # Futures delivery symbols carry an underscore (BTCUSDT_250627); some spot symbols are
        # not ASCII (Binance lists CJK names), so "alphanumeric" is Unicode-wide.
        if (
            not self.symbol
            or self.symbol != exchange_symbol(self.symbol)
            or not self.symbol.replace("_", "").isalnum()
        ):
            raise ValueError(f"bad symbol {self.symbol!r}: expected upper-case letters, digits and '_'")
        check_interval(self.interval)

    @classmethod
    def spot(cls, symbol: str, interval: str) -> SeriesKey:
        """The spot series of ``symbol`` (upper-cased) at ``interval``."""
        return cls("spot", exchange_symbol(symbol), interval)

    def __str__(self) -> str:
        return f"{self.market}:{self.symbol}:{self.interval}"


@dataclass(frozen=True, slots=True, order=True)
class TimeRange:
    """Inclusive range of open times ``[start, end]`` in ms; ValueError when ``start > end``."""

    start: int
    end: int

    def __post_init__(self) -> None:
        if self.start > self.end:
            raise ValueError(f"empty range: start {self.start} > end {self.end}")

    def contains(self, t: int) -> bool:
        """True when ``start <= t <= end``."""
        return self.start <= t <= self.end

    def overlaps(self, other: TimeRange) -> bool:
        """True when the two ranges share at least one instant."""
        return self.start <= other.end and other.start <= self.end


def prev_open(interval: str, open_ms: int) -> int:
    """Open time of the candle before the one opening at ``open_ms`` (calendar-aware for 1M)."""
    return open_time(interval, open_ms - 1)


def is_aligned(interval: str, t: int) -> bool:
    """True when ``t`` is an open time of ``interval``."""
    return open_time(interval, t) == t


def check_aligned(r: TimeRange, interval: str) -> TimeRange:
    """Return ``r`` unchanged when both ends are open times of ``interval``, else raise ValueError."""
    if not (is_aligned(interval, r.start) and is_aligned(interval, r.end)):
        raise ValueError(f"range {r.start}..{r.end} is not aligned to {interval} open times")
    return r


def align_inward(r: TimeRange, interval: str) -> TimeRange | None:
    """The largest aligned range inside ``r``: from the first open time ``>= r.start`` to the
    last open time ``<= r.end``; None when no candle opens inside ``r``."""
    start = open_time(interval, r.start)
    if start < r.start:
        start = next_open(interval, start)
    end = open_time(interval, r.end)
    return TimeRange(start, end) if start <= end else None


def merge_ranges(ranges: Iterable[TimeRange], interval: str) -> list[TimeRange]:
    """Sorted, coalesced copy of aligned ``ranges``: overlapping and adjacent ranges become one."""
    out: list[TimeRange] = []
    for r in sorted(ranges):
        if out and r.start <= next_open(interval, out[-1].end):
            if r.end > out[-1].end:
                out[-1] = TimeRange(out[-1].start, r.end)
        else:
            out.append(r)
    return out


def subtract_ranges(
    ranges: Iterable[TimeRange], remove: Iterable[TimeRange], interval: str
) -> list[TimeRange]:
    """The open times of aligned ``ranges`` that are in none of aligned ``remove``, as merged ranges.

    The pieces left are aligned: cutting ``[s, e]`` out leaves ``[.., prev_open(s)]`` and
    ``[next_open(e), ..]``.
    """
    cuts = merge_ranges(remove, interval)
    out: list[TimeRange] = []
    j = 0
    for r in merge_ranges(ranges, interval):
        start = r.start
        # cuts are sorted and disjoint; skip those wholly before this range (they cannot
        # touch later ranges either, which start even later).
        while j < len(cuts) and cuts[j].end < start:
            j += 1
        k = j
        while k < len(cuts) and cuts[k].start <= r.end:
            c = cuts[k]
            if c.start > start:
                out.append(TimeRange(start, prev_open(interval, c.start)))
            start = next_open(interval, c.end)
            if start > r.end:
                break
            k += 1
        if start <= r.end:
            out.append(TimeRange(start, r.end))
    return out


def intersect_ranges(a: Iterable[TimeRange], b: Iterable[TimeRange], interval: str) -> list[TimeRange]:
    """The open times in both aligned ``a`` and aligned ``b``, as merged ranges."""
    left = merge_ranges(a, interval)
    right = merge_ranges(b, interval)
    out: list[TimeRange] = []
    i = j = 0
    while i < len(left) and j < len(right):
        lo = max(left[i].start, right[j].start)
        hi = min(left[i].end, right[j].end)
        if lo <= hi:
            out.append(TimeRange(lo, hi))
        if left[i].end < right[j].end:
            i += 1
        else:
            j += 1
    return merge_ranges(out, interval)


def runs(open_times: Sequence[int] | np.ndarray, interval: str) -> list[TimeRange]:
    """Maximal runs of consecutive candles among sorted, unique, aligned ``open_times``.

    ``[t0, t1, t3]`` (``t2`` missing) gives ``[t0..t1, t3..t3]``.
    """
    ts = np.asarray(open_times, dtype=np.int64)
    if ts.size == 0:
        return []
    if interval == "1M":
        # Months vary in length: step with the calendar (a 1M series has a few hundred rows at most).
        following = np.array([next_open(interval, int(t)) for t in ts[:-1]], dtype=np.int64)
        breaks = np.flatnonzero(following != ts[1:])
    else:
        breaks = np.flatnonzero(np.diff(ts) != interval_ms(interval))
    starts = np.concatenate(([0], breaks + 1))
    ends = np.concatenate((breaks, [ts.size - 1]))
    return [TimeRange(int(ts[s]), int(ts[e])) for s, e in zip(starts, ends, strict=True)]


def count_open_times(r: TimeRange, interval: str) -> int:
    """Number of candles opening inside ``r`` (0 when none)."""
    a = align_inward(r, interval)
    if a is None:
        return 0
    if interval != "1M":
        return (a.end - a.start) // interval_ms(interval) + 1
    n, t = 0, a.start
    while t <= a.end:
        n, t = n + 1, next_open(interval, t)
    return n
