"""Connection lifecycle of the stream client: connect, retry, watch, rotate.

:class:`Supervisor` is the half of :class:`~binmon.binance.stream.StreamClient` that owns
connections: it opens one when there are subscriptions, retries with the injected backoff
when that fails or the connection drops, escalates the watchdog when replacements are
silent too, and rotates the connection (make-before-break) at its maximum lifetime, on
``serverShutdown`` and on a 1001 close. What to do with events and how to report status
are the subclass's hooks, so this module stays about sockets and time only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from typing import Any

from binmon.binance.connection import Connection, Ended
from binmon.binance.errors import describe_connect_error
from binmon.binance.ratelimit import Pacer
from binmon.binance.stream_stats import StreamStats, default_watchdog
from binmon.core.events import ConnState
from binmon.core.models import StreamEvent

#: The watchdog limit doubles after each trip, up to this factor, and returns to normal after
#: this long without a trip.
WATCHDOG_MAX_MULT = 8
WATCHDOG_CALM_S = 600.0


class Supervisor(ABC):
    """Connection lifecycle; see the module docstring. Subclasses implement the hooks."""

    def __init__(
        self,
        ws_url: str,
        *,
        market: str,
        max_lifetime_s: float,
        watchdog_s: float | None,
        control_rate: float,
        open_timeout: float,
        backoff_factory: Callable[[], Iterator[float]],
        clock: Callable[[], float],
        logger: logging.Logger,
        min_connect_interval: float,
        offline_after: int,
        rotation_timeout: float,
        ping_interval: float,
    ) -> None:
        self._ws_url = ws_url
        self._market = market
        self._max_lifetime = max_lifetime_s
        self._watchdog_s = watchdog_s
        self._control_rate = control_rate
        self._open_timeout = open_timeout
        self._backoff_factory = backoff_factory
        self._clock = clock
        self._log = logger
        self._min_connect_interval = min_connect_interval
        self._offline_after = offline_after
        self._rotation_timeout = rotation_timeout
        self._ping_interval = ping_interval
        self._subs: set[str] = set()
        self._active: Connection | None = None
        self._standby: Connection | None = None
        self._promoted = asyncio.Event()
        self._wake = asyncio.Event()  # subscriptions emptied/filled, rotation wanted, or closing
        self._closing_ev = asyncio.Event()
        # Why and for which connection a rotation was asked: a serverShutdown that the old
        # connection delivers while its replacement is being opened must not rotate the new one.
        self._rotate_for: tuple[Connection, str] | None = None
        self._conn_tasks: set[asyncio.Task[Ended]] = set()
        self._last_attempt = float("-inf")
        self._totals = StreamStats()
        self._wd_mult = 1
        self._wd_last_trip = float("-inf")

    # ------------------------------------------------------------ hooks

    @abstractmethod
    def _set_status(self, state: ConnState, **kw: Any) -> None:
        """Implemented by StreamClient (split out of this file only for size)."""

    @abstractmethod
    def _refresh_status(self) -> None:
        """Report LIVE or BACKFILLING for the connection now active."""

    @abstractmethod
    def _after_connect(self) -> None:
        """A connection now delivers: data may be missing since the last one (or the seed)."""

    @abstractmethod
    def _on_conn_events(self, conn: Connection, events: list[StreamEvent]) -> None:
        """Implemented by StreamClient (split out of this file only for size)."""

    @abstractmethod
    def _on_control_error(self, method: str, streams: tuple[str, ...], code: int, msg: str) -> None:
        """Implemented by StreamClient (split out of this file only for size)."""

    # ------------------------------------------------------------ the loop

    async def _supervise(self) -> None:
        """Keep a connection up while there are subscriptions, until closing."""
        attempt = 0
        delays = self._backoff_factory()
        ever_connected = False
        lost = False  # the last connection ended unasked (not closed for lack of subscriptions)
        while not self._closing_ev.is_set():
            if not self._subs:
                self._set_status(ConnState.OFFLINE, reason="idle: no subscriptions")
                await self._wake.wait()
                self._wake.clear()
                continue
            await self._sleep(self._last_attempt + self._min_connect_interval - self._clock())
            if self._closing_ev.is_set():
                break
            state = ConnState.RECONNECTING if ever_connected else ConnState.CONNECTING
            # While OFFLINE (never connected), further attempts do not flicker to CONNECTING.
            if not (state is ConnState.CONNECTING and self._status_state() is ConnState.OFFLINE and attempt):
                self._set_status(state, attempt=attempt)
            conn = await self._open()
            if self._closing_ev.is_set():
                break
            if isinstance(conn, BaseException):
                attempt += 1
                delay = next(delays)
                offline = not ever_connected and attempt >= self._offline_after
                self._set_status(
                    ConnState.OFFLINE if offline else ConnState.RECONNECTING,
                    attempt=attempt,
                    retry_in=delay,
                    reason=describe_connect_error(conn),
                )
                await self._sleep(delay)
                continue
            self._active = conn
            if lost:
                self._totals.reconnects += 1
            lost = False
            # Also on the first connection: a stream seeded with the consumer's history
            # is backfilled from it (streams never seen have nothing to backfill from).
            self._after_connect()
            ever_connected = True
            self._refresh_status()
            last, ended = await self._serve(conn)
            self._active = None
            self._totals.fold(last)
            if self._closing_ev.is_set():
                break
            if last.counters.events:
                # The connection worked: start the backoff sequence afresh.
                delays, attempt = self._backoff_factory(), 0
            if ended.kind == "rotate" or (ended.kind == "closed" and ended.code == 1001):
                lost = True
                self._set_status(ConnState.RECONNECTING, reason=ended.reason)
                continue  # planned: reconnect at once (the connect floor still applies)
            if ended.kind == "client":  # closed because no subscriptions are left
                continue
            lost = True
            if ended.kind == "watchdog":
                self._watchdog_tripped()
            attempt += 1
            delay = next(delays)
            self._set_status(ConnState.RECONNECTING, attempt=attempt, retry_in=delay, reason=ended.reason)
            self._log.warning(
                "%s stream connection lost (%s); retry in %.2f s", self._market, ended.reason, delay
            )
            await self._sleep(delay)

    @abstractmethod
    def _status_state(self) -> ConnState:
        """Implemented by StreamClient (split out of this file only for size)."""

    async def _open(self) -> Connection | BaseException:
        """Create and open a connection; the exception instead of raising when it fails.

        A close() during the handshake abandons it at once (CancelledError is returned).
        """
        self._last_attempt = self._clock()
        conn = Connection(
            self._ws_url,
            frozenset(self._subs),
            on_events=self._on_conn_events,
            on_control_error=self._on_control_error,
            watchdog_s=self._watchdog_limit,
            pacer=Pacer(self._control_rate),
            open_timeout=self._open_timeout,
            ping_interval=self._ping_interval,
            clock=self._clock,
            logger=self._log,
        )
        opening = asyncio.create_task(conn.open(), name="binmon-ws-open")
        closing = asyncio.create_task(self._closing_ev.wait())
        await asyncio.wait({opening, closing}, return_when=asyncio.FIRST_COMPLETED)
        closing.cancel()
        if not opening.done():
            opening.cancel()
        await asyncio.gather(opening, closing, return_exceptions=True)
        if opening.cancelled():
            return asyncio.CancelledError("closing")
        exc = opening.exception()
        if exc is not None:  # refused, reset, timeout, HTTP 4xx/5xx: all retried
            self._totals.connect_failures += 1
            self._log.info("%s stream: connection to %s failed: %r", self._market, conn.url[:120], exc)
            return exc
        if self._closing_ev.is_set():
            await conn.close()
            return asyncio.CancelledError("closing")
        self._totals.connects += 1
        conn.sync(frozenset(self._subs))  # subscriptions changed while the handshake ran
        return conn

    def _start(self, conn: Connection) -> asyncio.Task[Ended]:
        """Run ``conn`` as a task that the final cleanup is sure to await."""
        task = asyncio.create_task(conn.run(), name="binmon-ws-read")
        self._conn_tasks.add(task)
        task.add_done_callback(self._conn_tasks.discard)
        return task

    async def _serve(self, conn: Connection) -> tuple[Connection, Ended]:
        """Run ``conn`` until it ends, rotating it (make-before-break) when due."""
        task = self._start(conn)
        try:
            while True:
                assert conn.opened_at is not None
                left = conn.opened_at + self._max_lifetime - self._clock()
                if left <= 0 and self._rotate_for is None:
                    self._rotate_for = (conn, f"max lifetime {self._max_lifetime:g} s reached")
                want, self._rotate_for = self._rotate_for, None
                if want is not None and want[0] is conn and not self._closing_ev.is_set():
                    swapped = await self._rotate(conn, task, want[1])
                    if swapped is None:
                        await conn.close("rotation")
                        await task
                        return conn, Ended("rotate", want[1])
                    self._totals.fold(conn)
                    conn, task = swapped
                    continue
                wake = asyncio.create_task(self._wake.wait())
                await asyncio.wait({task, wake}, timeout=max(left, 0.0), return_when=asyncio.FIRST_COMPLETED)
                wake.cancel()
                await asyncio.gather(wake, return_exceptions=True)
                self._wake.clear()
                if task.done():
                    return conn, task.result()
                if self._closing_ev.is_set() or not self._subs:
                    await conn.close("closing" if self._closing_ev.is_set() else "no subscriptions")
                    return conn, await task
        finally:
            if not task.done():
                await conn.close()
                await asyncio.gather(task, return_exceptions=True)

    async def _rotate(
        self, old: Connection, old_task: asyncio.Task[Ended], reason: str
    ) -> tuple[Connection, asyncio.Task[Ended]] | None:
        """Open a replacement and switch to it at its first data frame; None if it fails."""
        self._log.info("%s stream: rotating connection (%s)", self._market, reason)
        await self._sleep(self._last_attempt + self._min_connect_interval - self._clock())
        new = await self._open()
        if isinstance(new, BaseException):
            return None
        self._promoted.clear()
        self._standby = new
        new_task = self._start(new)
        waits = [asyncio.create_task(self._promoted.wait()), asyncio.create_task(self._closing_ev.wait())]
        await asyncio.wait(
            [*waits, new_task, old_task], timeout=self._rotation_timeout, return_when="FIRST_COMPLETED"
        )
        for w in waits:
            w.cancel()
        await asyncio.gather(*waits, return_exceptions=True)
        if (
            self._active is not new
            and not new_task.done()
            and old_task.done()
            and not self._closing_ev.is_set()
        ):
            # The old one died first: take the new one now and backfill what fell between.
            self._log.info("%s stream: the old connection ended before the new one delivered", self._market)
            self._promote(new)
            self._after_connect()
        self._standby = None
        if self._active is new:
            self._totals.rotations += 1  # counted once done: a stats reader never sees a half rotation
            await old.close("rotated")
            await asyncio.gather(old_task, return_exceptions=True)
            return new, new_task
        await new.close("rotation abandoned")
        await asyncio.gather(new_task, return_exceptions=True)
        self._totals.fold(new)
        if not self._closing_ev.is_set():
            self._log.warning(
                "%s stream: replacement connection did not deliver; breaking instead", self._market
            )
        return None

    def _promote(self, conn: Connection) -> None:
        """Make the standby ``conn`` the one whose events are delivered."""
        self._active = conn
        self._standby = None
        self._promoted.set()

    def _request_rotation(self, conn: Connection, reason: str) -> None:
        if self._rotate_for is None or self._rotate_for[0] is not conn:
            self._rotate_for = (conn, reason)
            self._wake.set()

    async def _close_connections(self) -> None:
        """Close every connection and await their tasks (final cleanup)."""
        for conn in (self._standby, self._active):
            if conn is not None:
                await conn.close()
        await asyncio.gather(*self._conn_tasks, return_exceptions=True)
        self._active = self._standby = None

    # ------------------------------------------------------------ watchdog and time

    def _watchdog_limit(self) -> float:
        base = self._watchdog_s if self._watchdog_s is not None else default_watchdog(self._subs)
        if self._wd_mult > 1 and self._clock() - self._wd_last_trip > WATCHDOG_CALM_S:
            self._wd_mult = 1
        return base * self._wd_mult

    def _watchdog_tripped(self) -> None:
        # Doubling after each trip (up to 8x) stops a legitimately quiet stream (an illiquid
        # symbol's klines: no trade, no push) from turning into a reconnect + backfill loop.
        self._totals.watchdog_trips += 1
        self._wd_mult = min(self._wd_mult * 2, WATCHDOG_MAX_MULT)
        self._wd_last_trip = self._clock()

    async def _sleep(self, seconds: float) -> None:
        """Sleep, but wake at once on close."""
        if seconds > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing_ev.wait(), seconds)
