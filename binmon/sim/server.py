"""The simulator's composition root: one port serving Binance's websocket streams and REST API.

:class:`SimServer` builds the clock and the Market from a :class:`SimConfig`, then serves on
one loopback port with ``websockets``: upgrade requests on ``/ws...`` and ``/stream...`` become
stream sessions (:mod:`binmon.sim.ws`) fed by the stream engine (:mod:`binmon.sim.engine`,
subscription bookkeeping in :mod:`binmon.sim.hub`); every other GET is answered by the REST API
(:mod:`binmon.sim.rest`) from the ``process_request`` hook, admin URLs ``/_sim/...`` included,
except ``/data/...``: the data.binance.vision archive files (:mod:`binmon.sim.archive`).
Every HTTP answer (REST, admin, the 101) gets a ``Date`` header from the sim clock in the
``process_response`` hook. With a ``binmon record`` capture as ``SimConfig.replay`` the server
runs in capture mode instead (see :class:`SimServer`). Clients only ever see URLs
(:class:`SimUrls`), so a second port could be added without changing them.

Usage::

    async with SimServer(SimConfig(speed=10), ServerConfig()) as sim:
        print(sim.urls.as_json())   # {"ws": "ws://127.0.0.1:PORT", "rest": "http://127.0.0.1:PORT"}
        sim.faults.set_silent(True)
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from dataclasses import asdict, dataclass
from typing import Any

import orjson
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request, Response

from binmon.sim.archive import SimArchive
from binmon.sim.capture import CaptureMarket, is_capture, load_capture
from binmon.sim.capture_engine import CaptureEngine
from binmon.sim.config import SimConfig
from binmon.sim.engine import StreamEngine
from binmon.sim.faults import Faults
from binmon.sim.hub import Hub
from binmon.sim.rest import RestApi, http_date, json_response, make_response
from binmon.sim.streams import Route, parse_ws_path
from binmon.sim.ws import Session, SimConnection, run_session

log = logging.getLogger("binmon.sim")
# websockets logs every plain HTTP answer ("HTTP response sent (200 OK)") and every connection
# at INFO: for a server that answers REST on the same port that is pure noise.
_ws_log = logging.getLogger("binmon.sim.websockets")
_ws_log.setLevel(logging.WARNING)


@dataclass(frozen=True)
class ServerConfig:
    """Network side of the simulator; defaults are Binance's production values.

    Times are real seconds except ``kline_push_s``, ``kline_push_1s_s`` and
    ``miniticker_push_s``, which are sim-time cadences (they speed up with the clock).
    At high clock speeds the forming-kline and mini-ticker cadences are stretched to at least
    ``min_push_interval_s`` real seconds (finals are never delayed): recomputing rolling
    windows 50 times a second at 100x would only burn CPU. ``ban_after_429s``: how many 429s
    one window may collect before the next limited request earns a 418 ban.
    """

    host: str = "127.0.0.1"
    port: int = 0
    ping_interval: float = 20.0
    ping_timeout: float = 60.0
    max_lifetime_s: float = 24 * 3600.0
    max_incoming_per_s: int = 5
    max_streams: int = 1024
    weight_limit: int = 6000
    weight_window_s: float = 60.0
    ban_after_429s: int = 5
    ban_seconds: float = 120.0
    kline_push_s: float = 2.0
    kline_push_1s_s: float = 1.0
    miniticker_push_s: float = 1.0
    min_push_interval_s: float = 0.25
    shutdown_grace_s: float = 1.0
    pump_interval_s: float = 0.025
    max_send_buffer: int = 8 * 1024 * 1024
    open_timeout_s: float = 60.0
    close_timeout_s: float = 5.0

    def __post_init__(self) -> None:
        positive = (
            "max_lifetime_s",
            "kline_push_s",
            "kline_push_1s_s",
            "miniticker_push_s",
            "pump_interval_s",
        )
        for name in positive:
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0")
        if self.weight_window_s < 1 or self.weight_window_s != int(self.weight_window_s):
            raise ValueError("weight_window_s must be a whole number of seconds >= 1")
        if self.weight_limit < 1 or self.max_incoming_per_s < 1 or self.max_streams < 1:
            raise ValueError("weight_limit, max_incoming_per_s and max_streams must be >= 1")
        if self.ban_after_429s < 0 or self.ban_seconds < 0 or self.shutdown_grace_s < 0:
            raise ValueError("ban_after_429s, ban_seconds and shutdown_grace_s must be >= 0")
        if not 0 <= self.port <= 65535:
            raise ValueError("port must be 0-65535")


@dataclass(frozen=True)
class SimUrls:
    """Where clients connect: the websocket base (append ``/ws`` or ``/stream``) and the REST base."""

    ws: str
    rest: str

    def as_json(self) -> str:
        """One line of JSON: ``{"ws": "ws://127.0.0.1:PORT", "rest": "http://127.0.0.1:PORT"}``."""
        return f'{{"ws": "{self.ws}", "rest": "{self.rest}"}}'


@dataclass
class SimStats:
    """Counters, readable at any time (``GET /_sim/state`` shows them)."""

    connections_open: int = 0  # sessions being served now
    connections_total: int = 0  # websocket handshakes accepted
    connections_refused: int = 0
    frames_sent: int = 0
    frames_suppressed: int = 0
    frames_malformed: int = 0
    closed_rate_limit: int = 0
    closed_slow: int = 0
    dropped_by_fault: int = 0
    rest_requests: int = 0
    rest_errors: int = 0
    rest_injected_errors: int = 0
    rest_limited: int = 0
    rest_banned: int = 0

    def as_dict(self) -> dict[str, int]:
        """The counters as a plain dict."""
        return asdict(self)


def _default_clock(sim: SimConfig, start_ms: int | None = None) -> Any:
    from binmon.sim.clock import SimClock
    from binmon.sim.replay import replay_start_ms

    if start_ms is None:
        start_ms = replay_start_ms(sim)
    return SimClock(start_ms=start_ms if start_ms is not None else sim.start_ms, speed=sim.speed)


class SimServer:
    """A Binance-compatible exchange on loopback. Start with :meth:`start` or ``async with``.

    ``clock`` defaults to a :class:`~binmon.sim.clock.SimClock` at ``sim.start_ms`` (or the
    replay file's start) running at ``sim.speed``; tests pass a ``ManualClock``.

    ``sim.replay`` may be a trades CSV (the Market replays its trades) or a ``binmon record``
    capture, told apart by content: a capture puts the server in *capture mode*, where the
    websocket side sends the recorded frames (:mod:`binmon.sim.capture_engine`), REST serves
    the capture's symbols and the candles replayed so far (:mod:`binmon.sim.capture`), and the
    generator's settings (symbols, seed, history, trade rate) are not used.
    """

    def __init__(
        self, sim: SimConfig | None = None, server: ServerConfig | None = None, clock: Any = None
    ) -> None:
        from binmon.sim.market import Market

        self.sim_config = sim if sim is not None else SimConfig()
        self.config = server if server is not None else ServerConfig()
        self.faults = Faults()
        self.stats = SimStats()
        self.market: Any
        self.engine: Hub
        self.capture: CaptureEngine | None = None
        replay = self.sim_config.replay
        if replay is not None and is_capture(replay):
            if self.sim_config.replay_symbol:
                raise ValueError("replay_symbol applies to a trades CSV, not to a capture")
            capture = load_capture(replay)
            self.clock = clock if clock is not None else _default_clock(self.sim_config, capture.first_ms)
            self.market = CaptureMarket(capture.symbols, self.clock)
            self.capture = CaptureEngine(
                capture, self.market, self.clock, self.config, self.faults, self.stats
            )
            self.engine = self.capture
            kline_rows = self.market.kline_rows
        else:
            self.clock = clock if clock is not None else _default_clock(self.sim_config)
            self.market = Market(self.sim_config, self.clock)
            self.engine = StreamEngine(self.market, self.clock, self.config, self.faults, self.stats)
            kline_rows = None
        self.rest = RestApi(
            self.market,
            self.clock,
            self.config,
            self.faults,
            self.stats,
            self.engine.books,
            self._admin,
            kline_rows,
        )
        self.archive = SimArchive(self.market, self.clock, self.faults, kline_rows)
        self._server: Server | None = None
        self._pump: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._urls: SimUrls | None = None

    @property
    def urls(self) -> SimUrls:
        """The URLs to give clients (only valid once started)."""
        if self._urls is None:
            raise RuntimeError("the simulator is not started")
        return self._urls

    async def __aenter__(self) -> SimServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> SimUrls:
        """Listen on ``host:port`` (0 = any free port), start the pump, return the URLs."""
        if self._server is not None:
            return self.urls
        cfg = self.config
        self._server = await serve(
            self._handler,
            cfg.host,
            cfg.port,
            process_request=self._process_request,
            process_response=self._process_response,
            create_connection=SimConnection,
            compression=None,  # Binance does not negotiate permessage-deflate
            ping_interval=cfg.ping_interval,
            ping_timeout=cfg.ping_timeout,
            open_timeout=cfg.open_timeout_s,
            close_timeout=cfg.close_timeout_s,
            logger=_ws_log,
        )
        port = next(iter(self._server.sockets)).getsockname()[1]
        host = f"[{cfg.host}]" if ":" in cfg.host else cfg.host
        self._urls = SimUrls(ws=f"ws://{host}:{port}", rest=f"http://{host}:{port}")
        loop = asyncio.get_running_loop()
        self.faults.bind(loop, self.engine.drop_all, self._server_shutdown)
        self._pump = loop.create_task(self.engine.run(), name="binmon-sim-pump")
        log.info("simulator listening: %s", self._urls.as_json())
        return self._urls

    async def stop(self) -> None:
        """Close every connection (1001), stop serving and the pump. Idempotent."""
        server, self._server = self._server, None
        if server is None:
            return
        self.faults.unbind()
        if self._pump is not None:
            self._pump.cancel()
            await asyncio.gather(self._pump, return_exceptions=True)
            self._pump = None
        server.close()
        try:
            await asyncio.wait_for(server.wait_closed(), self.config.close_timeout_s + 1.0)
        except TimeoutError:
            # A REST answer still sleeping in a rest_delay fault, or a stuck handshake.
            for task in list(server.handler_tasks):
                task.cancel()
            await server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        log.info("simulator stopped")

    # ------------------------------------------------------------ serving

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _process_request(self, conn: ServerConnection, request: Request) -> Response | None:
        if isinstance(conn, SimConnection):
            # Read before the handler looks at the market, so the answer's Date never runs
            # ahead of the data in it: a candle that closes while a kline request is served
            # must not look closed by that Date (at 60x, milliseconds are sim seconds).
            conn.sim_request_ms = self.clock.now_ms()
        route = parse_ws_path(request.path)
        upgrade = "websocket" in request.headers.get("Upgrade", "").lower()
        if route is None or not upgrade:
            if request.path.startswith("/data/"):  # a CDN: no request weight (rest_delay still applies)
                return await self.archive.handle(request.path)
            ip = conn.remote_address[0] if isinstance(conn.remote_address, tuple) else "unknown"
            return await self.rest.handle(request.path, str(ip))
        if isinstance(route, str):
            return make_response(400, route.encode(), "text/plain")
        if self.faults.refusing():
            self.stats.connections_refused += 1
            return make_response(503, b"Service Unavailable", "text/plain")
        if len(set(route.streams)) > self.config.max_streams:
            return make_response(400, b"Too many streams requested", "text/plain")
        assert isinstance(conn, SimConnection)
        conn.sim_route = route
        # Counted here, before the 101 goes out: a client on the same loop may act on the open
        # connection before this server's handler task even starts.
        self.stats.connections_total += 1
        return None

    def _process_response(self, conn: ServerConnection, request: Request, response: Response) -> None:
        # Every HTTP answer of the port (REST, admin, the 101 and handshake refusals) carries
        # the sim clock's Date, replacing the wall-clock one websockets puts on the 101: a
        # client may read the server time off any of them.
        if "Date" in response.headers:
            del response.headers["Date"]
        at = conn.sim_request_ms if isinstance(conn, SimConnection) else None
        response.headers["Date"] = http_date(self.clock.now_ms() if at is None else at)

    async def _handler(self, conn: ServerConnection) -> None:
        assert isinstance(conn, SimConnection)
        route = conn.sim_route or Route(False, ())
        session = Session(conn, route, self.config, self.faults, self.stats, self._spawn)
        self.stats.connections_open += 1
        self.engine.add(session, route.streams)
        try:
            await run_session(session, self.engine, self.config.max_lifetime_s)
        finally:
            self.engine.remove(session)
            self.stats.connections_open -= 1

    def _server_shutdown(self) -> None:
        self.engine.announce_shutdown(self.config.shutdown_grace_s)

    # ------------------------------------------------------------ admin

    def state(self) -> dict[str, Any]:
        """Everything a test or a human may want to see: clock, faults, counters, subscriptions."""
        return {
            "urls": {"ws": self._urls.ws, "rest": self._urls.rest} if self._urls else None,
            "clock": self.clock_state(),
            "symbols": [s.symbol for s in self.market.symbols],
            "faults": self.faults.state(),
            "stats": self.stats.as_dict(),
            "sessions": [
                {"peer": s.peer, "combined": s.combined, "streams": list(s.streams)}
                for s in self.engine.sessions
            ],
            "capture": self.capture.state() if self.capture is not None else None,
            "archive": {**self.archive.state(), **self.faults.archive_state()},
        }

    def clock_state(self) -> dict[str, Any]:
        """``{"now_ms", "speed", "paused"}`` of the sim clock."""
        state = getattr(self.clock, "state", None)
        if callable(state):
            return dict(state())
        return {"now_ms": self.clock.now_ms(), "speed": getattr(self.clock, "speed", 1.0), "paused": False}

    def control_clock(self, *, paused: bool | None = None, speed: float | None = None) -> dict[str, Any]:
        """Pause / resume and / or change the speed of the sim clock (a replay's controls); return
        :meth:`clock_state`, with ``now_ms`` the value the pause / resume took effect at.
        Thread-safe (the clock is). ValueError for a speed <= 0, TypeError
        for a clock that cannot be controlled (a test's ManualClock)."""
        if not hasattr(self.clock, "pause"):
            raise TypeError(f"{type(self.clock).__name__} cannot be paused or sped up")
        if speed is not None:
            self.clock.set_speed(speed)
        at: int | None = None
        if paused is True:
            at = self.clock.pause()
        elif paused is False:
            at = self.clock.resume()
        state = self.clock_state()
        if at is not None:
            # The value the change took effect at: read again, a running 200x clock is already
            # a millisecond further after 5 µs.
            state["now_ms"] = at
        return state

    def _admin(self, path: str, params: dict[str, str]) -> Response:
        if path == "/_sim/state":
            return make_response(200, orjson.dumps(self.state()))
        if path == "/_sim/clock":  # ?pause=1|0&speed=X (both optional: no parameter only reads)
            try:
                pause = params.get("pause")
                paused = None if pause is None else {"1": True, "0": False}[pause]
                speed = float(params["speed"]) if "speed" in params else None
                state = self.control_clock(paused=paused, speed=speed)
            except KeyError:
                return json_response(400, {"ok": False, "error": "pause must be 1 or 0"})
            except (ValueError, TypeError) as exc:
                return json_response(400, {"ok": False, "error": str(exc)})
            return json_response(200, {"ok": True, **state})
        if path == "/_sim/fault":
            name = params.get("name", "")
            try:
                self.faults.apply(name, params.get("value"), params.get("count"))
            except (ValueError, RuntimeError) as exc:
                return json_response(400, {"ok": False, "error": str(exc)})
            log.info("fault %s=%s applied over HTTP", name, params.get("value"))
            return json_response(200, {"ok": True, "faults": self.faults.state()})
        return json_response(404, {"ok": False, "error": f"unknown admin path {path}"})
