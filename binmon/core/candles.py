"""The candle series of one ``(symbol, interval)``: a state machine that returns chart operations.

Every kline that reaches the program (live pushes, REST history pages, backfills after a
reconnect) goes through :class:`CandleSeries`. It keeps the bars sorted and unique by open time
and answers each input with the operations a chart must perform to show the same bars; this is
the contract of Lightweight Charts' ``series.update()``, which can only replace its last bar or
append after it:

* :class:`Append` - a bar newer than the last one;
* :class:`Replace` - a newer version of the last bar (same open time);
* :class:`Gap` - open times with no bar between two known bars, reported *before* the
  :class:`Append` that jumps over them. Real markets have minutes without trades, so a gap is
  a question to ask REST, not an error;
* :class:`Reload` - something behind the last bar changed: the chart must ``setData`` again.

Two versions of one candle are ordered by :func:`newer_version`, a total order that does not
depend on arrival order, so any interleaving of duplicated, delayed or reordered klines ends in
the same series as feeding the newest version of each candle in time order.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from binmon.core import intervals
from binmon.core.models import Kline

#: Below this many trimmed-off bars the dead prefix is kept (see ``CandleSeries._trim``).
_COMPACT_MIN = 256


@dataclass(frozen=True, slots=True)
class Append:
    """Append ``bar`` after the current last bar."""

    bar: Kline


@dataclass(frozen=True, slots=True)
class Replace:
    """Replace the last bar, which has the same open time, by ``bar``."""

    bar: Kline


@dataclass(frozen=True, slots=True)
class Gap:
    """No bar is known for the open times in ``[start, end]`` (both inclusive, both open times).

    ``intervals.open_times(interval, start, end)`` lists exactly the missing candles.
    """

    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Reload:
    """History behind the last bar changed: replace everything the chart shows by ``bars``."""

    bars: tuple[Kline, ...]


ChartOp = Append | Replace | Gap | Reload

_VersionKey = tuple[bool, int, int, float, float, float, float, float, float, float, float, int, int]


def _version_key(bar: Kline) -> _VersionKey:
    # closed > more trades > later last trade > more volume, as the brief of the series says;
    # the remaining fields only break ties between versions that disagree elsewhere (a corrupt
    # or re-computed candle), so the winner never depends on which copy arrived first.
    return (
        bar.closed,
        bar.trades,
        bar.last_trade_id,
        bar.volume,
        bar.quote_volume,
        bar.taker_buy_base,
        bar.taker_buy_quote,
        bar.high,
        -bar.low,
        bar.close,
        bar.open,
        bar.close_time,
        bar.first_trade_id,
    )


def newer_version(candidate: Kline, current: Kline) -> bool:
    """True when ``candidate`` should replace ``current``, another version of the same candle.

    Closed beats open; then more trades; then a higher last trade id; then more volume; then
    the other fields in a fixed order. Identical versions are never newer than each other.
    The caller guarantees both have the same open time.
    """
    return _version_key(candidate) > _version_key(current)


class CandleSeries:
    """Bars of one symbol and interval, sorted and unique by open time, at most ``max_bars``.

    Appending at the tail is amortised O(1) (it runs for every live kline); inserting behind
    the last bar costs O(n) and emits a :class:`Reload`, which is rare. When ``max_bars`` is
    reached the oldest bars are dropped silently: a chart that applies the emitted operations
    must trim its own oldest bars to ``max_bars`` to stay equal to :attr:`bars`.
    """

    __slots__ = ("_bars", "_snapshot", "_start", "_times", "interval", "max_bars", "symbol")

    def __init__(self, symbol: str, interval: str, max_bars: int | None = None) -> None:
        """Create an empty series; raise ValueError for an unknown interval or ``max_bars < 1``."""
        intervals.check_interval(interval)
        if max_bars is not None and max_bars < 1:
            raise ValueError(f"max_bars must be at least 1, not {max_bars}")
        self.symbol = symbol
        self.interval = interval
        self.max_bars = max_bars
        # Parallel lists; entries before _start are trimmed bars not yet compacted away, so
        # trimming one bar per append does not shift the whole list every time.
        self._bars: list[Kline] = []
        self._times: list[int] = []
        self._start = 0
        self._snapshot: tuple[Kline, ...] | None = None

    # ------------------------------------------------------------------ reading

    def __len__(self) -> int:
        """Number of bars held."""
        return len(self._times) - self._start

    @property
    def bars(self) -> Sequence[Kline]:
        """The bars, sorted by open time and unique: an immutable snapshot (a tuple)."""
        if self._snapshot is None:
            self._snapshot = tuple(self._bars[self._start :])
        return self._snapshot

    @property
    def last(self) -> Kline | None:
        """The newest bar, or None when the series is empty."""
        return self._bars[-1] if len(self) else None

    @property
    def last_closed_open_time(self) -> int | None:
        """Open time of the newest closed bar (where a backfill may resume), or None."""
        for i in range(len(self._bars) - 1, self._start - 1, -1):
            if self._bars[i].closed:
                return self._times[i]
        return None

    def gaps(self) -> list[Gap]:
        """Every hole between two known bars, oldest first (calendar-aware for ``1M``)."""
        out: list[Gap] = []
        times = self._times
        for i in range(self._start + 1, len(times)):
            gap = self._gap_between(times[i - 1], times[i])
            if gap is not None:
                out.append(gap)
        return out

    # ------------------------------------------------------------------ writing

    def apply(self, bar: Kline) -> list[ChartOp]:
        """Take one live or backfilled kline; return the chart operations it causes.

        ``[]`` when ``bar`` is identical to or older than the version held (or is older than
        every bar while the series is full); ``[Replace]`` for a newer version of the last bar;
        ``[Append]`` or ``[Gap, Append]`` after the last bar; ``[Reload]`` when a bar behind the
        last one is new or newer. Raise ValueError for another symbol or interval, or an open
        time that is not a candle boundary of the interval.
        """
        self._check(bar)
        t = bar.open_time
        if not len(self):
            self._push(bar)
            return [Append(bar)]
        last = self._bars[-1]
        if t > last.open_time:
            gap = self._gap_between(last.open_time, t)
            self._push(bar)
            return [Append(bar)] if gap is None else [gap, Append(bar)]
        if t == last.open_time:
            if not newer_version(bar, last):
                return []
            self._bars[-1] = bar
            self._snapshot = None
            return [Replace(bar)]
        i = bisect.bisect_left(self._times, t, lo=self._start)
        if self._times[i] == t:
            if not newer_version(bar, self._bars[i]):
                return []
            self._bars[i] = bar
        else:
            if i == self._start and self._full():
                return []  # it would be the oldest bar of a full series: trimmed at once
            self._times.insert(i, t)
            self._bars.insert(i, bar)
            self._trim()
        self._snapshot = None
        return [Reload(tuple(self.bars))]

    def merge(self, bars: Iterable[Kline]) -> list[ChartOp]:
        """Take a batch (a REST page, a backfill) in any order, duplicates allowed.

        Return the fewest operations: ``[Reload]`` when the series was empty or anything
        behind the last bar changed; otherwise an optional :class:`Replace` of the last bar
        then :class:`Gap`/:class:`Append` for each newer bar, oldest first; ``[]`` when nothing
        changed. Validation is that of :meth:`apply`, done before anything is stored.
        """
        newest: dict[int, Kline] = {}
        for bar in bars:
            self._check(bar)
            held = newest.get(bar.open_time)
            if held is None or newer_version(bar, held):
                newest[bar.open_time] = bar
        if not newest:
            return []
        if not len(self):
            self._load(sorted(newest.values(), key=_open_time))
            return [Reload(tuple(self.bars))]
        last_t = self._times[-1]
        if not any(t < last_t and self._would_change(b) for t, b in newest.items()):
            # The common case (a page that extends the tail): the live path does it all.
            ops: list[ChartOp] = []
            for t in sorted(t for t in newest if t >= last_t):
                ops.extend(self.apply(newest[t]))
            return ops
        old = self.bars
        merged = {b.open_time: b for b in old}
        for t, b in newest.items():
            held = merged.get(t)
            if held is None or newer_version(b, held):
                merged[t] = b
        self._load(sorted(merged.values(), key=_open_time))
        return self._diff(old, self.bars)

    # ------------------------------------------------------------------ internals

    def _check(self, bar: Kline) -> None:
        if bar.symbol != self.symbol or bar.interval != self.interval:
            raise ValueError(
                f"{bar.symbol} {bar.interval} kline given to the {self.symbol} {self.interval} series"
            )
        if intervals.open_time(self.interval, bar.open_time) != bar.open_time:
            raise ValueError(f"open time {bar.open_time} is not a {self.interval} candle boundary")

    def _gap_between(self, prev_open: int, next_open: int) -> Gap | None:
        expected = intervals.next_open(self.interval, prev_open)
        if expected >= next_open:
            return None
        # The open time of the candle just before next_open (calendar-aware for 1M).
        return Gap(expected, intervals.open_time(self.interval, next_open - 1))

    def _full(self) -> bool:
        return self.max_bars is not None and len(self) >= self.max_bars

    def _would_change(self, bar: Kline) -> bool:
        """True when storing ``bar`` (older than the last bar) would change the series."""
        i = bisect.bisect_left(self._times, bar.open_time, lo=self._start)
        if i < len(self._times) and self._times[i] == bar.open_time:
            return newer_version(bar, self._bars[i])
        return not (i == self._start and self._full())

    def _push(self, bar: Kline) -> None:
        self._times.append(bar.open_time)
        self._bars.append(bar)
        self._trim()
        self._snapshot = None

    def _trim(self) -> None:
        if self.max_bars is None:
            return
        excess = len(self) - self.max_bars
        if excess > 0:
            self._start += excess
        # Drop the dead prefix only once it is as long as the live part: each bar is moved a
        # bounded number of times, which keeps appends amortised O(1) even when always full.
        if self._start >= _COMPACT_MIN and self._start >= len(self):
            del self._times[: self._start]
            del self._bars[: self._start]
            self._start = 0

    def _load(self, ordered: list[Kline]) -> None:
        if self.max_bars is not None:
            ordered = ordered[-self.max_bars :]
        self._bars = ordered
        self._times = [b.open_time for b in ordered]
        self._start = 0
        self._snapshot = None

    def _diff(self, old: Sequence[Kline], new: Sequence[Kline]) -> list[ChartOp]:
        """Operations turning ``old`` (non-empty) into ``new``: tail ops if possible, else Reload."""
        last = old[-1]
        new_times = [b.open_time for b in new]
        j = bisect.bisect_left(new_times, last.open_time)
        # ``new`` must be old[-1-j:] (front-trimmed old history, untouched) plus a tail.
        if j == len(new) or new_times[j] != last.open_time or j > len(old) - 1:
            return [Reload(tuple(new))]
        if list(new[:j]) != list(old[len(old) - 1 - j : len(old) - 1]):
            return [Reload(tuple(new))]
        ops: list[ChartOp] = []
        if new[j] != last:
            ops.append(Replace(new[j]))
        for k in range(j + 1, len(new)):
            gap = self._gap_between(new_times[k - 1], new_times[k])
            if gap is not None:
                ops.append(gap)
            ops.append(Append(new[k]))
        return ops


def _open_time(bar: Kline) -> int:
    return bar.open_time
