"""Subscription bookkeeping and fan-out shared by the simulator's stream sources.

A :class:`Hub` knows every open :class:`~binmon.sim.ws.Session` and, per stream name, who
follows it. A stream's first subscriber activates it and its last leaving deactivates it
(hooks a subclass fills in), so a source only ever works on streams somebody reads. The
subclass's :meth:`Hub.produce` queues frames with :meth:`Hub.fan` (each frame wrapped once
for all combined subscribers); :meth:`Hub.tick` then flushes every touched session in one
socket write. Two subclasses exist: :class:`~binmon.sim.engine.StreamEngine` (frames built
from the Market) and :class:`~binmon.sim.capture_engine.CaptureEngine` (frames of a recorded
capture).
"""

from __future__ import annotations

import asyncio
import logging
import time
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any

from websockets.frames import CloseCode

from binmon.sim import wire
from binmon.sim.faults import Faults

if TYPE_CHECKING:
    from binmon.sim.server import ServerConfig, SimStats
    from binmon.sim.ws import Session

log = logging.getLogger("binmon.sim.ws")


class Hub(ABC):
    """Sessions, who follows which stream, and the pump loop that feeds them.

    Only touched from the server's event loop (no locking).
    """

    def __init__(self, clock: Any, config: ServerConfig, faults: Faults, stats: SimStats) -> None:
        self.clock = clock
        self.sessions: set[Session] = set()
        #: Last best bid/ask per symbol (REST's ticker reuses it).
        self.books: dict[str, wire.Book] = {}
        self._config = config
        self._faults = faults
        self._stats = stats
        self._subs: dict[str, set[Session]] = {}
        self._touched: set[Session] = set()
        self._last_error = 0.0

    # ------------------------------------------------------------ subscriptions

    def add(self, session: Session, streams: tuple[str, ...]) -> None:
        """Register a new connection with the streams named in its URL."""
        self.sessions.add(session)
        self.subscribe(session, list(dict.fromkeys(streams)))

    def remove(self, session: Session) -> None:
        """Forget a closed connection and every subscription it held."""
        self.unsubscribe(session, list(session.streams))
        self.sessions.discard(session)
        self._touched.discard(session)

    def subscribe(self, session: Session, names: list[str]) -> None:
        """Add ``names`` to ``session``; a stream's first subscriber starts it at sim time now."""
        now = self.clock.now_ms()
        for name in names:
            if name in session.streams:
                continue
            session.streams[name] = None
            subs = self._subs.setdefault(name, set())
            subs.add(session)
            if len(subs) == 1:
                self._activate(name, now)

    def unsubscribe(self, session: Session, names: list[str]) -> None:
        """Remove ``names`` from ``session``; a stream nobody follows any more stops."""
        for name in names:
            if name not in session.streams:
                continue
            del session.streams[name]
            subs = self._subs.get(name)
            if subs is not None:
                subs.discard(session)
                if not subs:
                    del self._subs[name]
                    self._deactivate(name)

    def subscribers(self, name: str) -> set[Session]:
        """The sessions following stream ``name`` now (empty when nobody does); do not mutate."""
        return self._subs.get(name, set())

    @abstractmethod
    def _activate(self, name: str, now: int) -> None:
        """Hook: ``name`` got its first subscriber at sim time ``now``."""

    @abstractmethod
    def _deactivate(self, name: str) -> None:
        """Hook: the last subscriber of ``name`` left."""

    # ------------------------------------------------------------ fault actions

    def drop_all(self) -> None:
        """Abort every connection (no close frame)."""
        self._stats.dropped_by_fault += len(self.sessions)
        for s in list(self.sessions):
            s.abort()

    def announce_shutdown(self, grace_s: float) -> None:
        """Send ``serverShutdown`` to every connection, then close each with 1001 after ``grace_s``."""
        frame = wire.server_shutdown_frame(self.clock.now_ms())
        loop = asyncio.get_running_loop()
        for s in list(self.sessions):
            s.write_now(frame)
            loop.call_later(grace_s, s.close_soon, CloseCode.GOING_AWAY, "Server shutdown")

    # ------------------------------------------------------------ the pump

    async def run(self) -> None:
        """Call :meth:`tick` until cancelled, every :meth:`_pause` seconds; errors are logged, not fatal."""
        loop = asyncio.get_running_loop()
        while True:
            t0 = loop.time()
            try:
                self.tick()
            except Exception:
                if t0 - self._last_error > 5.0:  # one traceback per 5 s, not 40 per second
                    self._last_error = t0
                    log.exception("simulator pump failed")
            await asyncio.sleep(max(0.001, self._pause() - (loop.time() - t0)))

    def _pause(self) -> float:
        """Real seconds from one tick's start to the next (the configured pump period)."""
        return self._config.pump_interval_s

    def tick(self) -> None:
        """Produce everything due at sim time now and send it (while the clock is paused:
        only :meth:`idle`'s keep-alive pushes)."""
        now = self.clock.now_ms()
        if getattr(self.clock, "paused", False):
            self.idle(now, time.monotonic())
        else:
            self.produce(now)
        touched, self._touched = self._touched, set()
        for s in touched:
            s.flush(now)

    @abstractmethod
    def produce(self, now: int) -> None:
        """Queue (with :meth:`fan`) every frame due at sim time ``now``."""

    def idle(self, now: int, real_s: float) -> None:
        """Hook, called instead of :meth:`produce` while the clock is paused (``now`` frozen,
        ``real_s`` monotonic seconds): nothing new happens in the market, but a subclass may
        repeat what a quiet Binance market still sends (the unchanged forming kline every push
        period), so clients' silence watchdogs do not take a paused replay for a dead link."""
        return

    def fan(self, name: str, frames: list[bytes]) -> None:
        """Queue stream ``name``'s payloads on its subscribers, wrapped for combined ones."""
        wrapped: list[bytes] | None = None
        for s in self._subs.get(name, ()):
            if s.combined:
                if wrapped is None:  # wrap once for all combined subscribers
                    wrapped = [wire.combined(name, f) for f in frames]
                s.pending.extend(wrapped)
            else:
                s.pending.extend(frames)
            self._touched.add(s)

    def queue(self, session: Session, frame: bytes) -> None:
        """Queue one frame on one session as it is (no wrapping), to go out with this tick."""
        session.pending.append(frame)
        self._touched.add(session)
