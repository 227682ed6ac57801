"""One combined-stream websocket connection: open, read, keep subscriptions in sync, die loudly.

A :class:`Connection` knows nothing about reconnecting, backfilling or consumers: the
supervisor in :mod:`binmon.binance.stream` owns those. It opens
``{base}/stream?streams=a/b/...`` with the first streams in the URL, then reconciles the
server's subscriptions with the desired set through paced SUBSCRIBE / UNSUBSCRIBE frames,
answers its own keepalive, runs a data watchdog, and hands decoded data events to a
callback. :meth:`Connection.run` returns *why* the connection ended instead of raising,
because every ending is routine for a 24/7 feed.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from binmon.binance.codec import Decoder, subscribe_frame, unsubscribe_frame
from binmon.binance.errors import describe_connect_error
from binmon.binance.ratelimit import Pacer
from binmon.core.models import ControlReply, ErrorReply, StreamEvent

_log = logging.getLogger(__name__)

#: Streams put in the connection URL; the rest go out as SUBSCRIBE frames. Keeps the
#: request line far below the 8 KiB that servers (and websockets itself) accept.
URL_MAX_STREAMS = 100
URL_MAX_CHARS = 3000
#: Streams per SUBSCRIBE frame: big batches keep a 1024-stream resubscribe to ~10 frames.
FRAME_MAX_STREAMS = 200
#: Frames this big are legal (``!miniTicker@arr`` is ~0.5 MB); beyond it something is wrong.
MAX_FRAME_BYTES = 8 * 2**20

_ids = itertools.count(1)


@dataclass(frozen=True, slots=True)
class Ended:
    """Why a connection ended. ``kind``: closed (by the server, see ``code``), error, watchdog,
    ping_timeout, or client (we closed it). ``code`` is the websocket close code when known."""

    kind: str
    reason: str = ""
    code: int | None = None


@dataclass(slots=True)
class ConnCounters:
    """Per-connection counts, folded into the client's totals by the supervisor."""

    frames: int = 0
    events: int = 0
    control_sent: int = 0
    control_acked: int = 0
    control_errors: int = 0
    pings: int = 0
    pending: dict[int, tuple[str, tuple[str, ...]]] = field(default_factory=dict)


def combined_url(base: str, streams: Iterable[str]) -> tuple[str, frozenset[str]]:
    """``(url, streams_in_url)`` for a combined-stream connection to ``base``.

    ``base`` may end with ``/``, ``/ws`` or ``/stream``: they are stripped. At most
    :data:`URL_MAX_STREAMS` streams (sorted, so the URL is stable) and
    :data:`URL_MAX_CHARS` characters go in the URL.
    """
    base = base.rstrip("/")
    for suffix in ("/stream", "/ws"):
        if base.endswith(suffix):
            base = base[: -len(suffix)]
    url = f"{base}/stream?streams="
    picked: list[str] = []
    for s in sorted(streams):
        if len(picked) >= URL_MAX_STREAMS or len(url) + len(s) + 1 > URL_MAX_CHARS:
            break
        url += ("/" if picked else "") + s
        picked.append(s)
    return url, frozenset(picked)


class Connection:
    """One websocket connection. Create, ``await open()``, then ``await run()``; ``close()`` any time.

    ``on_events(conn, events)`` receives the data events of each frame (control replies
    are consumed here). ``watchdog_s()`` is read on every check, so it follows the current
    subscriptions. ``on_control_error(method, streams, code, msg)`` reports refused frames.
    """

    def __init__(
        self,
        base_url: str,
        desired: frozenset[str],
        *,
        on_events: Callable[[Connection, list[StreamEvent]], None],
        on_control_error: Callable[[str, tuple[str, ...], int, str], None],
        watchdog_s: Callable[[], float],
        pacer: Pacer,
        open_timeout: float = 10.0,
        ping_interval: float = 20.0,
        ping_timeout: float = 20.0,
        close_timeout: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
        logger: logging.Logger | None = None,
    ) -> None:
        self.url, in_url = combined_url(base_url, desired)
        self._server: set[str] = set(in_url)
        self._desired = desired
        self._rejected: set[str] = set()
        self._on_events = on_events
        self._on_control_error = on_control_error
        self._watchdog_s = watchdog_s
        self._pacer = pacer
        self._open_timeout = open_timeout
        self._ping_interval = ping_interval
        self._ping_timeout = ping_timeout
        self._close_timeout = close_timeout
        self._clock = clock
        self._log = logger or _log
        self.decoder = Decoder(self._log)
        self.counters = ConnCounters()
        self.opened_at: float | None = None
        self.last_data: float | None = None  # clock() of the last data event
        self._ws: ClientConnection | None = None
        self._dirty = asyncio.Event()
        self._idle = asyncio.Event()  # set when the server's subscriptions match the desired set
        self._ended: Ended | None = None

    # ------------------------------------------------------------ public

    @property
    def synced(self) -> bool:
        """True when every desired stream is subscribed (or refused) and every frame was answered."""
        return self._idle.is_set() and not self.counters.pending

    @property
    def server_streams(self) -> frozenset[str]:
        """The streams this connection has asked the server for."""
        return frozenset(self._server)

    async def open(self) -> None:
        """Open the websocket (handshake bounded by ``open_timeout``).

        Raises OSError, TimeoutError or a websockets InvalidHandshake/InvalidURI on failure.
        """
        self._ws = await connect(
            self.url,
            open_timeout=self._open_timeout,
            # Keepalive is ours (see _keepalive): websockets' own pings would not be paced.
            ping_interval=None,
            ping_timeout=None,
            close_timeout=self._close_timeout,
            max_size=MAX_FRAME_BYTES,
            # Frames buffered before TCP backpressure: room for bursts, bounded memory.
            max_queue=256,
        )
        self.opened_at = self.last_data = self._clock()
        self.sync(self._desired)

    def sync(self, desired: frozenset[str]) -> None:
        """Make the server's subscriptions follow ``desired`` (frames go out paced, in batches)."""
        self._desired = desired
        self._rejected &= desired
        if self._todo():
            self._idle.clear()
            self._dirty.set()
        else:
            self._idle.set()

    async def run(self) -> Ended:
        """Read until the connection ends; return why. Never raises (except CancelledError)."""
        ws = self._ws
        if ws is None:
            raise RuntimeError("run() before open()")
        helpers = [
            asyncio.create_task(self._control(ws), name="binmon-ws-control"),
            asyncio.create_task(self._keepalive(ws), name="binmon-ws-keepalive"),
            asyncio.create_task(self._watchdog(ws), name="binmon-ws-watchdog"),
        ]
        try:
            ended = await self._read(ws)
        finally:
            for t in helpers:
                t.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)
            await self._shut(ws)
        return self._ended or ended

    async def close(self, reason: str = "client close") -> None:
        """Close politely (code 1000); :meth:`run` then returns ``Ended("client")``."""
        self._end(Ended("client", reason))
        if self._ws is not None:
            await self._ws.close(1000, reason[:120])

    def abort(self, kind: str, reason: str) -> None:
        """Drop the TCP connection at once (it is considered dead: no closing handshake)."""
        self._end(Ended(kind, reason))
        if self._ws is not None:
            self._ws.transport.abort()

    # ------------------------------------------------------------ tasks

    async def _read(self, ws: ClientConnection) -> Ended:
        decoder = self.decoder
        counters = self.counters
        try:
            async for raw in ws:
                counters.frames += 1
                events = decoder.feed(raw)
                data: list[StreamEvent] = []
                for ev in events:
                    if isinstance(ev, ControlReply | ErrorReply):
                        self._reply(ev)
                    else:
                        data.append(ev)
                if data:
                    counters.events += len(data)
                    self.last_data = self._clock()
                    self._on_events(self, data)
        except ConnectionClosed:
            pass  # abnormal close: described below from the close code
        except Exception as exc:
            self._log.warning("websocket read failed: %r", exc)
            return Ended("error", describe_connect_error(exc))
        code = ws.close_code
        why = ws.close_reason or ""
        return Ended("closed", f"server closed ({code}{': ' + why if why else ''})", code)

    async def _control(self, ws: ClientConnection) -> None:
        """Reconcile the server's subscriptions with the desired set, one paced frame at a time."""
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            while self._todo():
                await self._pacer.acquire()
                # Re-read after the wait: calls made meanwhile fold into this frame.
                add, remove = self._todo()
                if not add and not remove:
                    break
                # Unsubscribe first so the server never holds more than max_streams at once.
                method, batch = ("UNSUBSCRIBE", remove) if remove else ("SUBSCRIBE", add)
                rid = next(_ids)
                frame = (unsubscribe_frame if remove else subscribe_frame)(list(batch), rid)
                self.counters.pending[rid] = (method, batch)
                if remove:
                    self._server.difference_update(batch)
                else:
                    self._server.update(batch)
                self.counters.control_sent += 1
                await ws.send(frame)
            self._idle.set()

    def _todo(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        add = sorted(self._desired - self._server - self._rejected)[:FRAME_MAX_STREAMS]
        remove = sorted(self._server - self._desired)[:FRAME_MAX_STREAMS]
        return tuple(add), tuple(remove)

    def _reply(self, ev: ControlReply | ErrorReply) -> None:
        sent = self.counters.pending.pop(ev.id, None) if isinstance(ev.id, int) else None
        if isinstance(ev, ControlReply):
            self.counters.control_acked += 1
            return
        self.counters.control_errors += 1
        method, streams = sent or ("?", ())
        self._log.error("server refused %s %s: %s (code %s)", method, list(streams)[:5], ev.msg, ev.code)
        if method == "SUBSCRIBE":
            # Do not resend refused streams on this connection (that would spend the
            # message budget forever); the next connection tries them again.
            self._rejected.update(streams)
            self._server.difference_update(streams)
        self._on_control_error(method, streams, ev.code, ev.msg)

    async def _keepalive(self, ws: ClientConnection) -> None:
        """Ping through the pacer (pings count against the 5 messages/s) and expect a pong."""
        while True:
            await asyncio.sleep(self._ping_interval)
            await self._pacer.acquire()
            try:
                waiter = await ws.ping()
                await asyncio.wait_for(waiter, self._ping_timeout)
            except TimeoutError:
                self.abort("ping_timeout", f"no pong within {self._ping_timeout:g} s")
                return
            except ConnectionClosed:
                return
            self.counters.pings += 1

    async def _watchdog(self, ws: ClientConnection) -> None:
        """Abort the connection when no data event arrived for ``watchdog_s()`` seconds.

        The server may still answer pings while its feed is stuck (the python-binance
        "stream silently stops" reports): only data proves the feed is alive.
        """
        while True:
            limit = self._watchdog_s()
            last = self.last_data if self.last_data is not None else self._clock()
            wait = last + limit - self._clock()
            if wait > 0:
                await asyncio.sleep(wait)
                continue
            self.abort("watchdog", f"no data for {limit:g} s")
            return

    # ------------------------------------------------------------ internals

    def _end(self, ended: Ended) -> None:
        if self._ended is None:
            self._ended = ended

    async def _shut(self, ws: ClientConnection) -> None:
        # Always leave the socket closed: a half-open socket would leak (and warn in tests).
        if self._ended is not None and self._ended.kind in ("watchdog", "ping_timeout"):
            ws.transport.abort()
        with contextlib.suppress(Exception):
            await ws.close()
