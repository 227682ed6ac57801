"""Per-stream ordering of live events around reconnects and backfills. Pure, no I/O.

The promise the stream client makes to its consumers is built here: for every kline
stream, **closed candles come out in strictly increasing open time, each exactly once**,
whatever the network did (duplicates, reordering, a reconnect, two overlapping
connections during a rotation). A CSV writer appending closed candles must end up with
every candle once, and a chart series never receives an update for a candle older than
the one it is drawing, except for the final (closed) value of the previous candle.

How: the sequencer remembers, per stream, the open time of the last closed candle it let
through and the newest open time it let through. A closed candle at or before the last
closed one is a duplicate; a forming update older than the newest one is stale. A closed
candle that skips candles is a *gap*: the stream is put on hold (its events buffered),
and the owner is asked to backfill; :meth:`StreamSequencer.release` then emits the
backfilled candles followed by the buffer, all through the same filter. After a
reconnect the owner holds every kline stream itself (:meth:`hold`) because the first
frames of the new connection are forming candles that do not reveal the gap yet.
Gaps the backfill itself has are genuine (the exchange has no candle for an interval
without trades) and pass. The one exception to the ordering promise: when a backfill
keeps failing, the owner releases the buffer after a bounded wait, and candles fetched
later still arrive, once each, but after newer ones (:meth:`StreamSequencer.late_fill`).

Trades and aggregate trades are deduplicated by their (monotonic) ids, which keeps the
overlap of a make-before-break rotation invisible to consumers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

from binmon.core.intervals import next_open
from binmon.core.models import AggTradeEvent, Kline, KlineEvent, StreamEvent, TradeEvent

_log = logging.getLogger(__name__)

#: Forming updates kept per held stream before older ones are dropped (closed candles are
#: always kept): a hold lasts seconds, at most one update per second per stream arrives.
MAX_HELD_FORMING = 1
#: Holes remembered per stream for a late fill; older ones are forgotten.
MAX_HOLES = 16


@dataclass(slots=True)
class _Line:
    """What the sequencer knows about one kline stream."""

    symbol: str
    interval: str
    last_closed: int | None = None  # open time of the last closed candle emitted
    newest: int | None = None  # newest open time emitted (closed or forming)
    held: list[KlineEvent] | None = None  # buffer while on hold, None when flowing
    repairing: bool = False  # a backfill for this stream is under way (held or not)
    holes: list[tuple[int, int]] = field(default_factory=list)  # (after, before) open times, exclusive


@dataclass(slots=True)
class SequencerStats:
    """Counts: duplicates/stale dropped, gaps found in live data (``missed_closes``: a candle
    whose final update never came, noticed when the next one started), candles emitted from
    backfills."""

    duplicates: int = 0
    stale: int = 0
    gaps: int = 0
    missed_closes: int = 0
    backfilled: int = 0
    late_filled: int = 0


class StreamSequencer:
    """Filters and orders events before they reach the consumer.

    ``emit`` receives every event that passes. ``on_gap(stream)`` is called when a live
    closed candle reveals missing candles; when it returns True the stream is held and the
    owner must eventually call :meth:`release` (with the backfilled klines, or None on
    failure); when False the candle passes and the hole is only remembered.
    ``wall_ms`` gives "now" for the event time of backfilled forming candles.
    """

    def __init__(
        self,
        emit: Callable[[StreamEvent], None],
        on_gap: Callable[[str], bool],
        wall_ms: Callable[[], int],
        logger: logging.Logger | None = None,
    ) -> None:
        self._emit = emit
        self._on_gap = on_gap
        self._wall_ms = wall_ms
        self._log = logger or _log
        self._lines: dict[str, _Line] = {}
        self._trade_ids: dict[str, int] = {}
        self.stats = SequencerStats()

    # ------------------------------------------------------------ live path

    def push(self, ev: StreamEvent) -> None:
        """Pass one live event through (emitting, buffering or dropping it)."""
        if isinstance(ev, KlineEvent):
            self._push_kline(ev)
        elif isinstance(ev, TradeEvent):
            self._push_trade(ev.stream, ev.trade_id, ev)
        elif isinstance(ev, AggTradeEvent):
            self._push_trade(ev.stream, ev.agg_id, ev)
        else:
            self._emit(ev)

    def _push_trade(self, stream: str, trade_id: int, ev: StreamEvent) -> None:
        last = self._trade_ids.get(stream)
        if last is not None and trade_id <= last:
            self.stats.duplicates += 1
            return
        self._trade_ids[stream] = trade_id
        self._emit(ev)

    def _push_kline(self, ev: KlineEvent) -> None:
        k = ev.kline
        line = self._lines.get(ev.stream)
        if line is None:
            line = self._lines[ev.stream] = _Line(k.symbol, k.interval)
        if line.held is not None:
            self._buffer(line, ev)
            return
        if (
            not k.closed
            and not line.repairing
            and line.last_closed is not None
            and line.newest is not None
            and line.last_closed < line.newest < k.open_time
        ):
            # The newest candle was seen forming and the next one forms now, but its final
            # ("x": true) update never came. Fetch it now: waiting until the next close
            # reveals the gap shows that candle's final values a whole interval late. (If the
            # close was only overtaken, it arrives after the backfill and is dropped as a
            # duplicate: the cost is one REST call.)
            self.stats.missed_closes += 1
            if self._hold_for_repair(line, ev):
                return
        if (
            k.closed
            and not line.repairing
            and line.last_closed is not None
            and k.open_time > next_open(k.interval, line.last_closed)
        ):
            # Candles are missing: hold this one back while the owner backfills the hole.
            self.stats.gaps += 1
            if self._hold_for_repair(line, ev):
                return
        self._pass(line, ev)

    def _hold_for_repair(self, line: _Line, ev: KlineEvent) -> bool:
        """Hold the stream from ``ev`` on and ask the owner for a backfill; False (and nothing
        held) when the owner declines, e.g. to spare REST on a sparse stream."""
        line.repairing = True
        line.held = [ev]
        if self._on_gap(ev.stream):
            return True
        line.repairing = False
        line.held = None
        return False

    def _buffer(self, line: _Line, ev: KlineEvent) -> None:
        held = line.held
        assert held is not None
        held.append(ev)
        forming = [i for i, e in enumerate(held) if not e.kline.closed]
        if len(forming) > MAX_HELD_FORMING:
            # Only the latest state of a forming candle matters; closed candles are final.
            drop = set(forming[:-MAX_HELD_FORMING])
            line.held = [e for i, e in enumerate(held) if i not in drop]

    def _pass(self, line: _Line, ev: KlineEvent) -> bool:
        """The ordering filter shared by live, buffered and backfilled klines."""
        k = ev.kline
        t = k.open_time
        if line.last_closed is not None and t <= line.last_closed:
            # That candle is final already: a repeat, or a forming update that arrived late.
            if k.closed:
                self.stats.duplicates += 1
            else:
                self.stats.stale += 1
            return False
        if not k.closed and line.newest is not None and t < line.newest:
            self.stats.stale += 1
            return False
        if k.closed:
            if line.last_closed is not None and t > next_open(k.interval, line.last_closed):
                self._remember_hole(line, ev.stream, line.last_closed, t)
            line.last_closed = t
        if line.newest is None or t > line.newest:
            line.newest = t
        self._emit(ev)
        return True

    def _remember_hole(self, line: _Line, stream: str, after: int, before: int) -> None:
        line.holes.append((after, before))
        if len(line.holes) > MAX_HOLES:
            lost = line.holes.pop(0)
            # Debug only: a sparse stream (no trades, no candle) makes these every interval.
            self._log.debug("%s: forgetting unfilled gap %s (too many gaps)", stream, lost)

    # ------------------------------------------------------------ backfill path

    def hold(self, stream: str) -> int | None:
        """Start buffering ``stream`` for a backfill; return the open time to backfill from.

        That is the last closed candle's open time, or the newest forming one's, or None
        when nothing was ever seen on the stream (then nothing is held: there is no
        reference to backfill from, and the consumer's own history load covers it).
        A stream already being repaired stays as it is and returns None.
        """
        line = self._lines.get(stream)
        if line is None or line.repairing:
            return None
        start = line.last_closed if line.last_closed is not None else line.newest
        if start is None:
            return None
        line.repairing = True
        line.held = []
        return start

    def seed(self, stream: str, symbol: str, interval: str, last_closed_open: int) -> None:
        """Record that the consumer already has every closed candle up to ``last_closed_open``.

        The stream then continues from there as after a reconnect (the owner holds and
        backfills it), instead of starting wherever the live feed happens to start. A seed
        older than what was already emitted is ignored.
        """
        line = self._lines.get(stream)
        if line is None:
            line = self._lines[stream] = _Line(symbol, interval)
        if line.last_closed is None or last_closed_open > line.last_closed:
            line.last_closed = last_closed_open
            line.newest = max(line.newest or last_closed_open, last_closed_open)

    def backfill_start(self, stream: str) -> int | None:
        """Where a backfill for ``stream`` must start: the hole's start, or the baseline when held."""
        line = self._lines.get(stream)
        if line is None:
            return None
        if line.held is not None:
            return line.last_closed if line.last_closed is not None else line.newest
        return line.holes[0][0] if line.holes else None

    def symbol_interval(self, stream: str) -> tuple[str, str] | None:
        """``(SYMBOL, interval)`` of a kline stream seen before, else None."""
        line = self._lines.get(stream)
        return (line.symbol, line.interval) if line else None

    def is_held(self, stream: str) -> bool:
        """True while ``stream``'s live klines are buffered."""
        line = self._lines.get(stream)
        return line is not None and line.held is not None

    def held_streams(self) -> list[str]:
        """Every stream currently on hold."""
        return [s for s, line in self._lines.items() if line.held is not None]

    def holes(self, stream: str) -> list[tuple[int, int]]:
        """Unfilled gaps of ``stream`` as ``(after, before)`` open times (both exclusive)."""
        line = self._lines.get(stream)
        return list(line.holes) if line else []

    def release(self, stream: str, klines: Iterable[Kline] | None, *, force: bool = False) -> int:
        """Emit a backfill (``klines`` oldest first; None when it failed), then the held buffer.

        Everything goes through the ordering filter, so overlaps with what was already
        emitted are dropped. Gaps inside the backfill are the source's own (minutes without
        trades, outages) and are let through. If the buffer itself has a gap beyond what
        the backfill covered, the stream stays held from that event on, so that another
        backfill can fill it in order; with ``force`` everything is let through and such a
        gap is remembered for :meth:`late_fill` instead.

        Returns how many closed candles the backfill supplied that the live feed had not
        (0 for a genuine gap, i.e. a quiet interval without a candle).
        """
        line = self._lines.get(stream)
        if line is None or line.held is None:
            return 0
        held, line.held = line.held, None
        first_live = next((e.kline.open_time for e in held if e.kline.closed), None)
        n = filled = 0
        holes_before = len(line.holes)
        reach = line.last_closed
        for k in _unsure_last(klines):
            if self._pass(line, self._backfill_event(stream, k)):
                n += 1
                if k.closed:
                    reach = k.open_time
                    if first_live is None or k.open_time < first_live:
                        filled += 1
        del line.holes[holes_before:]  # the source's own gaps: nothing can fill them
        self.stats.backfilled += n
        for i, ev in enumerate(held):
            k = ev.kline
            if (
                not force
                and k.closed
                and line.last_closed is not None
                and k.open_time > next_open(k.interval, line.last_closed)
                and (reach is None or k.open_time > reach)
            ):
                line.held = held[i:]
                return filled
            self._pass(line, ev)
        return filled

    def late_fill(self, stream: str, klines: Iterable[Kline]) -> int:
        """Apply a backfill that arrived after the stream's buffer had to be released.

        Closed ``klines`` that fall into remembered holes are emitted out of order (the
        consumer gets them late rather than never, once each); the rest go through the
        ordering filter like live data (in order when they are newer than anything
        emitted, dropped otherwise). Returns the number of klines emitted.
        """
        line = self._lines.get(stream)
        if line is None:
            return 0
        rows = _unsure_last(sorted(klines, key=lambda k: k.open_time))
        n = late = 0
        for k in rows:
            if k.closed and any(a < k.open_time < b for a, b in line.holes):
                self._emit(self._backfill_event(stream, k))
                late += 1
            elif self._pass(line, self._backfill_event(stream, k)):
                n += 1
        closed = [k for k in rows if k.closed]
        if closed:
            # The source is authoritative up to its last closed row: what it lacks before
            # that does not exist (an exchange outage). Holes beyond it shrink to the part
            # not covered yet, so a later fill never emits a candle twice.
            last = closed[-1].open_time
            reach = next_open(line.interval, last)
            line.holes = [(max(a, last), b) for a, b in line.holes if b > reach]
        self.stats.late_filled += late
        self.stats.backfilled += n
        return n + late

    def repair_done(self, stream: str, release: bool = True) -> None:
        """The owner's repair of ``stream`` is over (a new live gap may start another).

        A stream still on hold is released without backfill (``release``) or, when the
        owner no longer wants it (closing), its buffer is dropped.
        """
        line = self._lines.get(stream)
        if line is not None:
            line.repairing = False
            if line.held is not None:
                if release:
                    self.release(stream, None, force=True)
                else:
                    line.held = None

    def forget_holes(self, stream: str) -> list[tuple[int, int]]:
        """Drop and return the remembered holes of ``stream`` (when giving up on them)."""
        line = self._lines.get(stream)
        if line is None:
            return []
        holes, line.holes = line.holes, []
        return holes

    def forget(self, stream: str) -> None:
        """Drop all state of ``stream`` (after an unsubscribe: a later subscribe starts afresh)."""
        self._lines.pop(stream, None)
        self._trade_ids.pop(stream, None)

    def _backfill_event(self, stream: str, k: Kline) -> KlineEvent:
        # A closed candle's "event time" is its close; a forming one is as of now.
        when = k.close_time if k.closed else min(k.close_time, self._wall_ms())
        return KlineEvent(when, k, stream)


def _unsure_last(klines: Iterable[Kline] | None) -> list[Kline]:
    """The backfill rows, with the newest one demoted to "forming" if it claims to be closed.

    Only a row followed by another one is certainly final. The newest row's flag is an
    estimate of the server's clock by the REST client (and estimates drift: a 1s candle
    read just before it closed must not become final with half its trades). The live feed,
    or the next gap repair, delivers its final value.
    """
    rows = list(klines or ())
    if rows and rows[-1].closed:
        rows[-1] = replace(rows[-1], closed=False)
    return rows
