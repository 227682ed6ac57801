"""The websocket stream client: one supervised combined-stream connection per market.

:class:`StreamClient` keeps a set of subscriptions alive for days on end. It opens a
:class:`~binmon.binance.connection.Connection` when there is something to subscribe,
reconnects with capped, jittered backoff when it drops (or never opens), replaces it when
it goes silent (watchdog), when it nears its maximum lifetime, when the server announces
``serverShutdown`` or closes with 1001. Rotations are make-before-break: the new
connection is opened and subscribed while the old one still delivers, and takes over at
its first data frame. After a real break every kline stream is backfilled through the
injected ``backfill`` callable while its live updates are held back, so consumers see
closed candles in open-time order, each exactly once (see :mod:`.sequencer`).

No Qt here: it runs on the qasync loop in the app and on plain asyncio in the CLI.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from binmon.binance.backoff import backoff
from binmon.binance.codec import parse_stream_name
from binmon.binance.connection import Connection
from binmon.binance.repair import BackfillFn, Repairer
from binmon.binance.sequencer import StreamSequencer
from binmon.binance.stream_stats import StreamStats, default_watchdog, normalise_streams
from binmon.binance.supervisor import Supervisor
from binmon.core.events import ConnectionStatus, ConnState
from binmon.core.models import ServerShutdown, StreamEvent

__all__ = ["BackfillFn", "StreamClient", "StreamStats", "default_watchdog"]

_log = logging.getLogger(__name__)

#: Consumer exceptions logged in full for the first few, then every Nth (a broken
#: consumer must not flood the log at the feed's rate).
_LOG_FIRST = 5
_LOG_EVERY = 1000


class StreamClient(Supervisor):
    """Supervised websocket client for one market. See the module docstring for behaviour.

    ``on_event`` is called on the event loop for every event, in order; it must be fast
    (the Qt adapter coalesces) and its exceptions are logged and counted, never fatal.
    ``on_status`` receives every :class:`ConnectionStatus` change. ``backfill`` fetches the
    klines from a given open time (REST in the app); None disables backfill.
    """

    def __init__(
        self,
        ws_url: str,
        *,
        on_event: Callable[[StreamEvent], None],
        on_status: Callable[[ConnectionStatus], None] | None = None,
        backfill: BackfillFn | None = None,
        market: str = "spot",
        max_lifetime_s: float = 23.5 * 3600,
        watchdog_s: float | None = None,
        control_rate: float = 4.0,
        max_streams: int = 1024,
        open_timeout: float = 10.0,
        backoff_factory: Callable[[], Iterator[float]] = backoff,
        clock: Callable[[], float] = time.monotonic,
        logger: logging.Logger | None = None,
        wall_clock: Callable[[], float] = time.time,
        min_connect_interval: float = 1.0,
        offline_after: int = 2,
        rotation_timeout: float = 15.0,
        backfill_wait_s: float = 10.0,
        ping_interval: float = 20.0,
    ) -> None:
        """Nothing happens until :meth:`run` (or ``async with``).

        ``max_lifetime_s`` is when the client rotates proactively (Binance closes at 24 h).
        ``watchdog_s`` None derives it from the subscriptions (:func:`default_watchdog`); either
        way it doubles after each trip (up to 8x) until 10 minutes pass without one.
        ``min_connect_interval`` spaces connection attempts (Binance allows 300 per 5 min
        per IP); ``offline_after`` failed first attempts turn CONNECTING into OFFLINE;
        ``rotation_timeout`` bounds how long a replacement connection may take to deliver
        before the client falls back to break-then-make; ``backfill_wait_s`` bounds how long
        live klines are held back while a backfill fails.
        """
        if control_rate <= 0 or max_streams < 1 or max_lifetime_s <= 0:
            raise ValueError("control_rate, max_streams and max_lifetime_s must be positive")
        super().__init__(
            ws_url,
            market=market,
            max_lifetime_s=max_lifetime_s,
            watchdog_s=watchdog_s,
            control_rate=control_rate,
            open_timeout=open_timeout,
            backoff_factory=backoff_factory,
            clock=clock,
            logger=logger or _log,
            min_connect_interval=min_connect_interval,
            offline_after=offline_after,
            rotation_timeout=rotation_timeout,
            ping_interval=ping_interval,
        )
        self._on_event = on_event
        self._on_status = on_status
        self._max_streams = max_streams
        self._wall = wall_clock
        self._done = asyncio.Event()
        self._running = False
        self._run_task: asyncio.Task[None] | None = None
        self._status = ConnectionStatus(ConnState.OFFLINE, market, reason="not started")
        self._seq = StreamSequencer(self._deliver, self._on_gap, lambda: int(self._wall() * 1000), self._log)
        self._repairer = Repairer(
            self._seq,
            backfill,
            backoff_factory=backoff_factory,
            wait_s=backfill_wait_s,
            is_wanted=lambda s: s in self._subs and not self._closing_ev.is_set(),
            on_change=self._refresh_status,
            logger=self._log,
        )

    # ------------------------------------------------------------ public API

    @property
    def subscriptions(self) -> frozenset[str]:
        """The streams the client keeps subscribed (whatever the connection state)."""
        return frozenset(self._subs)

    @property
    def status(self) -> ConnectionStatus:
        """The latest status reported."""
        return self._status

    @property
    def stats(self) -> StreamStats:
        """A snapshot of the running counts (over every connection so far)."""
        snap = self._totals.copy()
        for conn in (self._active, self._standby):
            if conn is not None:
                snap.add_connection(conn)
        snap.add_sequencer(self._seq.stats)
        snap.backfill_failures = self._repairer.failures
        return snap

    async def subscribe(self, streams: Iterable[str]) -> None:
        """Add ``streams`` (idempotent). Returns at once: frames go out paced and batched.

        Raises ValueError for a malformed name or when the total would exceed
        ``max_streams`` (nothing is subscribed then), TypeError for a bare string.
        """
        names = normalise_streams(streams)
        new = self._subs | names
        if len(new) > self._max_streams:
            raise ValueError(f"{len(new)} streams exceed the limit of {self._max_streams} per connection")
        if new != self._subs:
            self._subs = new
            self._changed()

    async def unsubscribe(self, streams: Iterable[str]) -> None:
        """Remove ``streams`` (unknown ones are ignored); the connection closes when none remain."""
        names = normalise_streams(streams) & self._subs
        if names:
            self._subs -= names
            for s in names:
                self._repairer.cancel(s)
                self._seq.forget(s)
            self._changed()

    def seed(self, stream: str, last_closed_open_ms: int) -> None:
        """Continue kline ``stream`` from the consumer's own history, without a hole.

        Call it with the open time of the last closed candle the consumer already has
        (loaded over REST, read back from a CSV): the next connection (or the current
        one) backfills from there before live updates flow, exactly as after a
        reconnect. Without it the first candles after a history load may be missing: a
        candle that closes between the REST call and the subscription never arrives live.
        Raises ValueError for a name that is not a kline stream.
        """
        (name,) = normalise_streams([stream])
        symbol, kind, interval = parse_stream_name(name)
        if kind != "kline" or interval is None:
            raise ValueError(f"{stream!r} is not a kline stream")
        self._seq.seed(name, symbol, interval, last_closed_open_ms)
        if self._active is not None and name in self._subs:
            self._repairer.after_reconnect([name])

    async def run(self) -> None:
        """Supervise connections until :meth:`close`. Never raises on network trouble."""
        if self._running or self._done.is_set():
            raise RuntimeError("StreamClient.run() can only run once")
        self._running = True
        try:
            await self._supervise()
        finally:
            self._closing_ev.set()
            await self._repairer.close()
            await self._close_connections()
            self._set_status(ConnState.CLOSED, reason="closed")
            self._running = False
            self._done.set()

    async def close(self) -> None:
        """Close the socket, finish :meth:`run`, report CLOSED. Idempotent."""
        self._closing_ev.set()
        self._wake.set()
        if self._run_task is not None:
            await asyncio.gather(self._run_task, return_exceptions=True)
        elif self._running:
            await self._done.wait()
        elif not self._done.is_set():
            self._done.set()
            self._set_status(ConnState.CLOSED, reason="closed")

    async def __aenter__(self) -> StreamClient:
        self._run_task = asyncio.create_task(self.run(), name=f"binmon-stream-{self._market}")
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ------------------------------------------------------------ callbacks from connections

    def _on_conn_events(self, conn: Connection, events: list[StreamEvent]) -> None:
        if conn is not self._active:
            if conn is not self._standby or not conn.synced:
                return  # overlap during a rotation: the active connection delivers these
            self._promote(conn)
        push = self._seq.push
        for ev in events:
            if isinstance(ev, ServerShutdown):
                self._totals.server_shutdowns += 1
                self._request_rotation(conn, "server announced shutdown")
            else:
                push(ev)

    def _on_control_error(self, method: str, streams: tuple[str, ...], code: int, msg: str) -> None:
        self._set_status(
            self._status.state, reason=f"{method} {','.join(streams[:3])} refused: {msg} ({code})"
        )

    def _after_connect(self) -> None:
        self._repairer.after_reconnect(self._subs)

    def _status_state(self) -> ConnState:
        return self._status.state

    def _on_gap(self, stream: str) -> bool:
        return self._repairer.start(stream)

    def _deliver(self, ev: StreamEvent) -> None:
        try:
            self._on_event(ev)
        except Exception:
            n = self._totals.consumer_errors = self._totals.consumer_errors + 1
            if n <= _LOG_FIRST or n % _LOG_EVERY == 0:
                self._log.exception("on_event raised (error #%d); the feed goes on", n)

    # ------------------------------------------------------------ helpers

    def _changed(self) -> None:
        desired = frozenset(self._subs)
        for conn in (self._active, self._standby):
            if conn is not None:
                conn.sync(desired)
        self._wake.set()

    def _refresh_status(self) -> None:
        """LIVE or BACKFILLING, from whether any stream is held; no-op while disconnected."""
        if self._active is None or self._closing_ev.is_set():
            return
        held = self._seq.held_streams()
        if held:
            self._set_status(ConnState.BACKFILLING, reason=f"backfilling {len(held)} stream(s)")
        else:
            self._set_status(ConnState.LIVE, reason=self._repairer.pending_reason())

    def _set_status(self, state: ConnState, **kw: Any) -> None:
        st = ConnectionStatus(state, self._market, at_ms=int(self._wall() * 1000), **kw)
        old = self._status
        if (st.state, st.attempt, st.retry_in, st.reason) == (
            old.state,
            old.attempt,
            old.retry_in,
            old.reason,
        ):
            return
        self._status = st
        if self._on_status is not None:
            try:
                self._on_status(st)
            except Exception:
                self._log.exception("on_status raised")
