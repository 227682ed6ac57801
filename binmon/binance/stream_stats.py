"""Counters of the stream client and the small pure helpers it shares with its tests."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from binmon.binance.codec import parse_stream_name

if TYPE_CHECKING:
    from binmon.binance.connection import Connection
    from binmon.binance.sequencer import SequencerStats

#: Watchdog floor: a loaded machine (GC, a big backfill decode) can pause the loop for
#: seconds; killing a healthy connection for that costs more than a late detection.
WATCHDOG_FLOOR_S = 5.0
#: Watchdog when only event-driven streams (trades, book ticker) are subscribed: an
#: illiquid symbol may trade once a minute.
WATCHDOG_EVENT_DRIVEN_S = 60.0


@dataclass(slots=True)
class StreamStats:
    """Running counts of a :class:`~binmon.binance.stream.StreamClient`, over all its connections.

    frames/events/malformed/unknown: websocket frames read, events decoded, frames dropped
    as malformed, well-formed but unmodelled events. connects / connect_failures /
    reconnects / rotations / watchdog_trips / server_shutdowns: connection history.
    control_sent / control_errors: SUBSCRIBE/UNSUBSCRIBE frames sent and refused; pings:
    keepalive pings answered.
    consumer_errors: on_event exceptions swallowed. duplicates / stale / gaps / missed_closes:
    what the sequencer dropped or found. backfilled_klines / backfill_failures: backfill results.
    """

    frames: int = 0
    events: int = 0
    malformed: int = 0
    unknown: int = 0
    connects: int = 0
    connect_failures: int = 0
    reconnects: int = 0
    rotations: int = 0
    watchdog_trips: int = 0
    server_shutdowns: int = 0
    control_sent: int = 0
    control_errors: int = 0
    pings: int = 0
    consumer_errors: int = 0
    duplicates: int = 0
    stale: int = 0
    gaps: int = 0
    missed_closes: int = 0
    backfilled_klines: int = 0
    backfill_failures: int = 0

    def copy(self) -> StreamStats:
        """An independent copy."""
        return dataclasses.replace(self)

    def add_connection(self, conn: Connection) -> None:
        """Add the counts of one connection (live or finished)."""
        d = conn.decoder.stats
        self.frames += d.frames
        self.events += d.events
        self.malformed += d.malformed
        self.unknown += d.unknown
        self.control_sent += conn.counters.control_sent
        self.control_errors += conn.counters.control_errors
        self.pings += conn.counters.pings

    def fold(self, conn: Connection) -> None:
        """Add a finished connection's counts for good (call once per connection)."""
        self.add_connection(conn)

    def add_sequencer(self, s: SequencerStats) -> None:
        """Add the sequencer's counts (it lives as long as the client: not folded)."""
        self.duplicates += s.duplicates
        self.stale += s.stale
        self.gaps += s.gaps
        self.missed_closes += s.missed_closes
        self.backfilled_klines += s.backfilled + s.late_filled


def stream_period(stream: str) -> float | None:
    """Seconds between pushes of a periodic stream, None for event-driven ones (trades...)."""
    try:
        _, kind, interval = parse_stream_name(stream)
    except ValueError:
        return None
    if kind == "kline":
        return 1.0 if interval == "1s" else 2.0
    if "miniTicker" in kind or kind.startswith(("ticker", "depth")):
        return 1.0
    if kind == "markPrice":
        return 1.0 if stream.endswith("@1s") else 3.0
    return None


def default_watchdog(streams: Iterable[str]) -> float:
    """Seconds without data after which a connection carrying ``streams`` counts as dead.

    Three times the shortest push period among periodic streams (at least
    :data:`WATCHDOG_FLOOR_S`), or :data:`WATCHDOG_EVENT_DRIVEN_S` with none.
    """
    periods = [p for p in map(stream_period, streams) if p is not None]
    if not periods:
        return WATCHDOG_EVENT_DRIVEN_S
    return max(WATCHDOG_FLOOR_S, 3.0 * min(periods))


def normalise_streams(streams: Iterable[str]) -> frozenset[str]:
    """Validated stream names with the symbol part lower-cased (Binance wants it so).

    Raises TypeError for a bare string (it would iterate into characters) and ValueError
    for a malformed name.
    """
    if isinstance(streams, str | bytes):
        raise TypeError("streams must be an iterable of stream names, not a single string")
    out: set[str] = set()
    for s in streams:
        parse_stream_name(s)  # ValueError on garbage
        if not s.startswith("!"):
            sym, _, rest = s.partition("@")
            s = f"{sym.lower()}@{rest}"
        out.add(s)
    return frozenset(out)
