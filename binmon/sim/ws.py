"""Websocket sessions of the simulator: one client connection, its control frames and limits.

A :class:`Session` is one client connection. It owns the control-frame protocol
(SUBSCRIBE / UNSUBSCRIBE / LIST_SUBSCRIPTIONS / SET_PROPERTY / GET_PROPERTY with Binance's
replies and error codes), the per-connection limits (incoming messages per second, streams
per connection, lifetime) and the write path. What a session is subscribed to is kept by a
:class:`~binmon.sim.hub.Hub` (:mod:`binmon.sim.hub`), which queues each stream's frames on
every subscriber (:attr:`Session.pending`) and then has each touched session :meth:`flush`
them in one socket write, applying the data fault switches on the way.

The write path never waits: a client that does not read lets its transport buffer grow, and
past ``ServerConfig.max_send_buffer`` the connection is dropped, so one slow consumer never
holds back the others (Binance also disconnects clients that cannot keep up).

Stream-name and URL parsing live in :mod:`binmon.sim.streams` and the Market pump in
:mod:`binmon.sim.engine`; their names are re-exported here because this module used to hold
them.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import deque
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

import orjson
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.frames import CloseCode, Frame, Opcode
from websockets.protocol import State

from binmon.sim import wire
from binmon.sim.engine import StreamEngine
from binmon.sim.faults import Faults, garbage
from binmon.sim.streams import Route, StreamKey, combined_stream_of, parse_stream, parse_ws_path

if TYPE_CHECKING:
    from binmon.sim.hub import Hub
    from binmon.sim.server import ServerConfig, SimStats

__all__ = [
    "Route",
    "Session",
    "SimConnection",
    "StreamEngine",
    "StreamKey",
    "parse_stream",
    "parse_ws_path",
    "run_session",
]

log = logging.getLogger("binmon.sim.ws")

_METHODS = ("SUBSCRIBE", "UNSUBSCRIBE", "LIST_SUBSCRIPTIONS", "SET_PROPERTY", "GET_PROPERTY")
_COUNTED = (Opcode.TEXT, Opcode.BINARY, Opcode.PING, Opcode.PONG)
_ID_STR_RE = re.compile(r"^[A-Za-z0-9\-_]{1,36}$")


# ---------------------------------------------------------------- connection


class SimConnection(ServerConnection):
    """A websockets server connection that reports every incoming frame (data, ping, pong).

    Binance's "5 incoming messages per second" counts pings and pongs too; websockets answers
    pings itself, so this hook is the only place that sees them.
    """

    sim_route: Route | None = None
    on_frame: Callable[[], None] | None = None
    #: Sim time when the request arrived, before any data was read: the Date of the answer.
    sim_request_ms: int | None = None

    def process_event(self, event: Any) -> None:
        """Process one protocol event, then count it if it is an incoming frame."""
        super().process_event(event)
        if self.on_frame is not None and isinstance(event, Frame) and event.opcode in _COUNTED:
            self.on_frame()


class Session:
    """One websocket client: its subscriptions, limits and queued frames."""

    def __init__(
        self,
        conn: SimConnection,
        route: Route,
        config: ServerConfig,
        faults: Faults,
        stats: SimStats,
        spawn: Callable[[Coroutine[Any, Any, Any]], None],
    ) -> None:
        self.conn = conn
        self.combined = route.combined
        self.streams: dict[str, None] = {}  # insertion-ordered set, for LIST_SUBSCRIPTIONS
        self.pending: list[bytes] = []
        self.closing = False
        self._config = config
        self._faults = faults
        self._stats = stats
        self._spawn = spawn
        self._incoming: deque[float] = deque()
        self._data_frames = 0
        self._garbage = 0

    # ------------------------------------------------------------ limits

    def note_incoming(self) -> None:
        """Count one incoming frame; close with 1008 when over the per-second limit."""
        now = time.monotonic()
        q = self._incoming
        q.append(now)
        while q and q[0] <= now - 1.0:
            q.popleft()
        if len(q) > self._config.max_incoming_per_s and not self.closing:
            self._stats.closed_rate_limit += 1
            log.info("closing %s: more than %d messages/s", self.peer, self._config.max_incoming_per_s)
            self.close_soon(CloseCode.POLICY_VIOLATION, "Too many messages")

    def close_soon(self, code: int, reason: str) -> None:
        """Start a clean close (close frame with ``code``) without waiting for it."""
        if self.closing:
            return
        self.closing = True
        self.pending.clear()
        self._spawn(self.conn.close(code, reason))

    def abort(self) -> None:
        """Drop the TCP connection at once, no close frame (the client sees 1006)."""
        self.closing = True
        self.pending.clear()
        self.conn.transport.abort()

    @property
    def peer(self) -> str:
        """``host:port`` of the client, for logs."""
        addr = self.conn.remote_address
        return f"{addr[0]}:{addr[1]}" if isinstance(addr, tuple) else str(addr)

    # ------------------------------------------------------------ writing

    def write_now(self, data: bytes) -> None:
        """Write one text frame immediately, with no data faults (control replies, announcements)."""
        if self.closing or self.conn.protocol.state is not State.OPEN:
            return
        try:
            self.conn.protocol.send_text(data)
            self.conn.send_data()
        except Exception as exc:  # the peer went away between the state check and the write
            log.debug("write to %s failed: %s", self.peer, exc)

    def flush(self, event_ms: int) -> None:
        """Write every queued data frame in one go, applying silent/malformed faults."""
        frames, self.pending = self.pending, []
        if not frames or self.closing:
            return
        conn = self.conn
        if conn.protocol.state is not State.OPEN:
            return
        if self._faults.silent:
            self._stats.frames_suppressed += len(frames)
            return
        if conn.transport.get_write_buffer_size() > self._config.max_send_buffer:
            # Binance drops consumers that cannot keep up; waiting would stall every client.
            self._stats.closed_slow += 1
            log.info("dropping slow consumer %s", self.peer)
            self.abort()
            return
        every = self._faults.malformed_every
        proto = conn.protocol
        try:
            for f in frames:
                self._data_frames += 1
                if every and self._data_frames % every == 0:
                    stream = combined_stream_of(f) if self.combined else None
                    data, text = garbage(self._garbage, f, stream, event_ms)
                    self._garbage += 1
                    self._stats.frames_malformed += 1
                    if text:
                        proto.send_text(data)
                    else:
                        proto.send_binary(data)
                else:
                    proto.send_text(f)
            conn.send_data()
        except Exception as exc:
            log.debug("write to %s failed: %s", self.peer, exc)
            return
        self._stats.frames_sent += len(frames)

    # ------------------------------------------------------------ control frames

    def handle_message(self, msg: str | bytes, hub: Hub) -> None:
        """Answer one control frame the way Binance does (replies are written immediately)."""
        try:
            req = orjson.loads(msg)
        except orjson.JSONDecodeError as exc:
            self.write_now(wire.error_reply(None, 3, f"Invalid JSON: {_json_msg(exc)}"))
            return
        if not isinstance(req, dict):
            self.write_now(wire.error_reply(None, 2, "Invalid request: expected a JSON object"))
            return
        req_id = req.get("id")
        if not _valid_id(req_id):
            self.write_now(
                wire.error_reply(None, 2, "Invalid request: request ID must be an unsigned integer")
            )
            return
        method = req.get("method")
        if method is None:
            self.write_now(wire.error_reply(req_id, 2, "Invalid request: missing field `method`"))
            return
        if method not in _METHODS:
            expected = ", ".join(f"`{m}`" for m in _METHODS)
            self.write_now(
                wire.error_reply(
                    req_id, 2, f"Invalid request: unknown variant `{method}`, expected one of {expected}"
                )
            )
            return
        params = req.get("params", [])
        if not isinstance(params, list):
            self.write_now(wire.error_reply(req_id, 2, "Invalid request: params must be an array"))
            return
        if method in ("SUBSCRIBE", "UNSUBSCRIBE"):
            if not all(isinstance(p, str) for p in params):
                self.write_now(wire.error_reply(req_id, 2, "Invalid request: stream names must be strings"))
                return
            if method == "SUBSCRIBE":
                new = [p for p in dict.fromkeys(params) if p not in self.streams]
                if len(self.streams) + len(new) > self._config.max_streams:
                    self.write_now(
                        wire.error_reply(
                            req_id,
                            2,
                            f"Invalid request: too many streams; the limit is "
                            f"{self._config.max_streams} streams per connection",
                        )
                    )
                    return
                # Reply first: Binance confirms a subscription before its first data frame.
                self.write_now(wire.result_reply(req_id))
                hub.subscribe(self, new)
            else:
                self.write_now(wire.result_reply(req_id))
                hub.unsubscribe(self, params)
        elif method == "LIST_SUBSCRIPTIONS":
            self.write_now(wire.result_reply(req_id, list(self.streams)))
        else:
            self._property(method, params, req_id)

    def _property(self, method: str, params: list[Any], req_id: Any) -> None:
        if not params or not isinstance(params[0], str):
            self.write_now(wire.error_reply(req_id, 2, "Invalid request: property name must be a string"))
            return
        if params[0] != "combined":
            self.write_now(wire.error_reply(req_id, 0, "Unknown property"))
            return
        if method == "GET_PROPERTY":
            if len(params) != 1:
                self.write_now(wire.error_reply(req_id, 2, "Invalid request: too many parameters"))
                return
            self.write_now(wire.result_reply(req_id, self.combined))
            return
        if len(params) != 2:
            self.write_now(wire.error_reply(req_id, 2, "Invalid request: too many parameters"))
            return
        if not isinstance(params[1], bool):
            self.write_now(wire.error_reply(req_id, 1, "Invalid value type: expected Boolean"))
            return
        self.pending.clear()  # never mix framings in one flush
        self.combined = params[1]
        self.write_now(wire.result_reply(req_id))


def _valid_id(v: Any) -> bool:
    # Binance: an unsigned integer, an alphanumeric string of up to 36 chars, or null.
    if v is None:
        return True
    if isinstance(v, bool):
        return False
    if isinstance(v, int):
        return 0 <= v < 2**64
    return isinstance(v, str) and bool(_ID_STR_RE.match(v))


def _json_msg(exc: orjson.JSONDecodeError) -> str:
    return f"expected value at line {exc.lineno} column {exc.colno}"


# ---------------------------------------------------------------- connection handler


async def run_session(session: Session, hub: Hub, lifetime_s: float) -> None:
    """Serve one connection until it closes: URL streams, control frames, lifetime limit."""
    conn = session.conn
    loop = asyncio.get_running_loop()
    conn.on_frame = session.note_incoming
    # Binance closes every connection after 24 h with 1001 (going away).
    timer = loop.call_later(
        lifetime_s, session.close_soon, CloseCode.GOING_AWAY, "Connection lifetime expired"
    )
    try:
        async for msg in conn:
            if session.closing:
                continue
            session.handle_message(msg, hub)
    except ConnectionClosed:
        pass
    finally:
        timer.cancel()
        conn.on_frame = None
