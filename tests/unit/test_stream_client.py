"""StreamClient against a tiny in-test websockets server whose every move the test controls.

The fake exchange speaks just enough Binance: ``/stream?streams=a/b`` URLs, SUBSCRIBE /
UNSUBSCRIBE frames answered by id (or refused), combined-stream pushes, and switches to
refuse handshakes, abort sockets, close with a code or stay silent. It records every
frame it receives with its arrival time, so pacing is measured where Binance measures it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from binmon.binance.errors import NetworkError
from binmon.binance.stream import StreamClient, default_watchdog
from binmon.core.events import ConnectionStatus, ConnState
from binmon.core.models import Kline, KlineEvent, StreamEvent, TradeEvent

KL = "xrpeth@kline_1m"

# ---------------------------------------------------------------- the fake exchange


@dataclass
class FakeConn:
    ws: ServerConnection
    streams: set[str]
    opened: float
    closed_at: float | None = None
    close_code: int | None = None
    frames: list[tuple[float, dict[str, Any]]] = field(default_factory=list)


class FakeExchange:
    def __init__(self) -> None:
        self.conns: list[FakeConn] = []
        self.refuse = 0  # refuse this many handshakes with HTTP 503
        self.refused = 0
        self.error_for: set[str] = set()  # SUBSCRIBE frames naming these get an error reply
        self.server: Server | None = None
        self.url = ""

    async def __aenter__(self) -> FakeExchange:
        self.server = await serve(
            self._handler, "127.0.0.1", 0, process_request=self._process, ping_interval=None
        )
        port = next(iter(self.server.sockets)).getsockname()[1]
        self.url = f"ws://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    def _process(self, connection: ServerConnection, request: Request) -> Response | None:
        if self.refuse > 0:
            self.refuse -= 1
            self.refused += 1
            return Response(503, "Service Unavailable", Headers(), b"busy\n")
        return None

    async def _handler(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        query = parse_qs(urlsplit(ws.request.path).query)
        streams = set(query.get("streams", [""])[0].split("/")) - {""}
        conn = FakeConn(ws, streams, time.monotonic())
        self.conns.append(conn)
        try:
            async for msg in ws:
                d = json.loads(msg)
                conn.frames.append((time.monotonic(), d))
                params = d.get("params", [])
                if d["method"] == "SUBSCRIBE" and set(params) & self.error_for:
                    reply: dict[str, Any] = {"error": {"code": 2, "msg": "Invalid request"}, "id": d["id"]}
                else:
                    if d["method"] == "SUBSCRIBE":
                        conn.streams |= set(params)
                    elif d["method"] == "UNSUBSCRIBE":
                        conn.streams -= set(params)
                    reply = {"result": None, "id": d["id"]}
                await ws.send(json.dumps(reply))
        except ConnectionClosed:
            pass
        finally:
            conn.closed_at = time.monotonic()
            conn.close_code = ws.close_code

    def live(self) -> list[FakeConn]:
        return [c for c in self.conns if c.closed_at is None]

    async def send(self, text: str, stream: str | None = None) -> None:
        for c in self.live():
            if stream is None or stream in c.streams:
                with contextlib.suppress(ConnectionClosed):
                    await c.ws.send(text)

    async def push(self, stream: str, data: Any) -> None:
        await self.send(json.dumps({"stream": stream, "data": data}), stream)

    def abort_all(self) -> None:
        for c in self.live():
            c.ws.transport.abort()


# ---------------------------------------------------------------- market data


def kline_json(k: Kline, event_time: int) -> dict[str, Any]:
    def f(x: float) -> str:
        return f"{x:.8f}"

    return {
        "e": "kline",
        "E": event_time,
        "s": k.symbol,
        "k": {
            "t": k.open_time,
            "T": k.close_time,
            "s": k.symbol,
            "i": k.interval,
            "f": 1,
            "L": 2,
            "o": f(k.open),
            "c": f(k.close),
            "h": f(k.high),
            "l": f(k.low),
            "v": f(k.volume),
            "n": k.trades,
            "x": k.closed,
            "q": f(k.quote_volume),
            "V": f(k.taker_buy_base),
            "Q": f(k.taker_buy_quote),
            "B": "0",
        },
    }


class Market:
    """Real XRPETH 1m candles replayed fast: candle ``cursor`` is forming, earlier ones closed."""

    def __init__(self, klines: list[Kline]) -> None:
        self.truth = klines
        self.cursor = 0
        self.calls: list[int] = []
        self.fail = 0  # make the next N backfill calls raise
        self.delay = 0.0

    def forming(self) -> Kline:
        k = self.truth[self.cursor]
        return Kline(
            k.symbol,
            k.interval,
            k.open_time,
            k.close_time,
            k.open,
            k.high,
            k.low,
            k.close,
            k.volume / 2,
            k.quote_volume / 2,
            k.trades,
            0,
            0,
            closed=False,
        )

    async def tick(self, ex: FakeExchange, close: bool) -> None:
        """Push one update of the forming candle; with ``close`` its final value, then move on."""
        if close:
            await ex.push(KL, kline_json(self.truth[self.cursor], self.truth[self.cursor].close_time))
            self.cursor += 1
        else:
            await ex.push(KL, kline_json(self.forming(), self.truth[self.cursor].open_time + 1))

    def advance_silently(self, n: int) -> None:
        self.cursor += n

    async def backfill(self, symbol: str, interval: str, start: int) -> list[Kline]:
        assert (symbol, interval) == ("XRPETH", "1m")
        self.calls.append(start)
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.fail > 0:
            self.fail -= 1
            raise NetworkError("backfill: connection refused")
        rows = [k for k in self.truth[: self.cursor] if k.open_time >= start]
        return [*rows, self.forming()]

    def closed_prefix(self, first: int, last: int) -> list[tuple[int, float]]:
        return [(k.open_time, k.close) for k in self.truth[first : last + 1]]


# ---------------------------------------------------------------- helpers


class Recorder:
    def __init__(self) -> None:
        self.events: list[StreamEvent] = []
        self.statuses: list[ConnectionStatus] = []

    def klines(self) -> list[Kline]:
        return [e.kline for e in self.events if isinstance(e, KlineEvent)]

    def closed(self) -> list[tuple[int, float]]:
        return [(k.open_time, k.close) for k in self.klines() if k.closed]

    def states(self) -> list[ConnState]:
        return [s.state for s in self.statuses]


async def until(cond: Callable[[], bool], timeout: float = 5.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.005)


def fast(*delays: float) -> Callable[[], Iterator[float]]:
    """A backoff factory: the given delays, then the last one forever."""
    return lambda: itertools.chain(delays, itertools.repeat(delays[-1]))


def client(ex: FakeExchange, rec: Recorder, **kw: Any) -> StreamClient:
    kw.setdefault("backoff_factory", fast(0.02))
    kw.setdefault("min_connect_interval", 0.0)
    return StreamClient(ex.url, on_event=rec.events.append, on_status=rec.statuses.append, **kw)


@pytest.fixture
async def ex() -> Any:
    async with FakeExchange() as exchange:
        yield exchange


@pytest.fixture
def market(xrpeth_1m: list[Kline]) -> Market:
    return Market(xrpeth_1m[:400])


def trade_json(i: int) -> dict[str, Any]:
    return {
        "e": "trade",
        "E": i,
        "s": "XRPETH",
        "t": i,
        "p": "0.00131",
        "q": "5",
        "T": i,
        "m": True,
        "M": True,
    }


# ---------------------------------------------------------------- subscriptions and frames


async def test_no_connection_until_something_is_subscribed_and_none_after_the_last_goes(
    ex: FakeExchange,
) -> None:
    rec = Recorder()
    async with client(ex, rec) as c:
        await asyncio.sleep(0.2)
        assert ex.conns == []
        assert c.status.state is ConnState.OFFLINE and "no subscriptions" in c.status.reason
        await c.subscribe(["XRPETH@trade"])  # the symbol part is lower-cased
        await until(lambda: len(ex.live()) == 1, what="a connection")
        assert ex.conns[0].streams == {"xrpeth@trade"}
        await until(lambda: c.status.state is ConnState.LIVE)
        await ex.push("xrpeth@trade", trade_json(1))
        await until(lambda: len(rec.events) == 1)
        assert isinstance(rec.events[0], TradeEvent) and rec.events[0].stream == "xrpeth@trade"
        await c.unsubscribe(["xrpeth@trade", "never@trade"])
        await until(lambda: not ex.live(), what="the connection to close")
        assert ex.conns[0].close_code == 1000
        await until(lambda: c.status.state is ConnState.OFFLINE)
        assert c.subscriptions == frozenset()
    assert rec.states()[:3] == [ConnState.OFFLINE, ConnState.CONNECTING, ConnState.LIVE]
    assert rec.states()[-1] is ConnState.CLOSED


async def test_runtime_subscribe_and_unsubscribe_frames_are_acknowledged(ex: FakeExchange) -> None:
    rec = Recorder()
    async with client(ex, rec) as c:
        await c.subscribe(["xrpeth@trade"])
        await until(lambda: c.status.state is ConnState.LIVE)
        await c.subscribe(["btcusdt@trade", "ethusdt@kline_1m"])
        await c.subscribe(["btcusdt@trade"])  # idempotent: no new frame
        await until(lambda: ex.conns[0].streams == {"xrpeth@trade", "btcusdt@trade", "ethusdt@kline_1m"})
        await c.unsubscribe(["xrpeth@trade"])
        await until(lambda: ex.conns[0].streams == {"btcusdt@trade", "ethusdt@kline_1m"})
        await until(lambda: len(ex.conns[0].frames) == 2)
        methods = [(d["method"], sorted(d["params"])) for _, d in ex.conns[0].frames]
        assert methods == [
            ("SUBSCRIBE", ["btcusdt@trade", "ethusdt@kline_1m"]),
            ("UNSUBSCRIBE", ["xrpeth@trade"]),
        ]
        assert c.stats.control_sent == 2
        assert len(ex.conns) == 1  # all on the one connection


async def test_a_burst_of_50_subscribe_calls_is_paced_under_5_frames_per_second(ex: FakeExchange) -> None:
    rec = Recorder()
    async with client(ex, rec) as c:
        await c.subscribe(["xrpeth@trade"])
        await until(lambda: c.status.state is ConnState.LIVE)
        names = [f"sym{i}usdt@trade" for i in range(50)]
        t0 = time.monotonic()
        for name in names:  # a UI adding symbols one by one, 20 ms apart
            await c.subscribe([name])
            await asyncio.sleep(0.02)
        await until(lambda: ex.conns[0].streams == {"xrpeth@trade", *names}, timeout=10)
        stamps = [t for t, _ in ex.conns[0].frames]
        # Unpaced, that would be 50 frames in ~1 s; batching + pacing make it ~5 spread out.
        assert 4 <= len(stamps) <= 8, stamps
        per_window = max(sum(1 for s in stamps if a <= s < a + 1.0) for a in stamps)
        assert per_window <= 5
        assert min(b - a for a, b in itertools.pairwise(stamps)) >= 0.2
        spent = time.monotonic() - t0
        # A pure burst (no awaits between calls) folds into one frame.
        before = len(ex.conns[0].frames)
        for i in range(50):
            await c.subscribe([f"burst{i}usdt@trade"])
        await until(lambda: len(ex.conns[0].streams) == 101, timeout=5)
        assert len(ex.conns[0].frames) - before == 1
    print(f"\n50 paced subscribe calls: {len(stamps)} frames, max {per_window}/s, synced in {spent:.2f} s")


async def test_streams_beyond_the_url_budget_are_subscribed_by_frames(ex: FakeExchange) -> None:
    rec = Recorder()
    names = [f"sym{i:03d}usdt@kline_1m" for i in range(250)]
    c = client(ex, rec)
    await c.subscribe(names)
    async with c:
        await until(lambda: len(ex.conns) == 1 and ex.conns[0].streams == set(names), timeout=5)
        conn = ex.conns[0]
    assert len(conn.frames) == 1 or len(conn.frames) == 2  # 150 streams in <= 200-stream frames
    assert all(len(d["params"]) <= 200 for _, d in conn.frames)
    assert conn.frames[0][1]["method"] == "SUBSCRIBE"


async def test_max_streams_is_enforced_before_anything_is_sent(ex: FakeExchange) -> None:
    rec = Recorder()
    async with client(ex, rec, max_streams=3) as c:
        await c.subscribe(["a1@trade", "a2@trade"])
        with pytest.raises(ValueError, match="limit of 3"):
            await c.subscribe(["a3@trade", "a4@trade"])
        assert c.subscriptions == {"a1@trade", "a2@trade"}
        with pytest.raises(ValueError):
            await c.subscribe(["not a stream"])
        with pytest.raises(TypeError):
            await c.subscribe("a1@trade")


async def test_a_refused_subscription_is_reported_not_fatal(
    ex: FakeExchange, caplog: pytest.LogCaptureFixture
) -> None:
    rec = Recorder()
    ex.error_for = {"bad1usdt@trade"}
    async with client(ex, rec) as c:
        await c.subscribe(["xrpeth@trade"])
        await until(lambda: c.status.state is ConnState.LIVE)
        await c.subscribe(["bad1usdt@trade"])
        await until(lambda: "refused" in c.status.reason)
        assert "Invalid request" in c.status.reason and c.status.state is ConnState.LIVE
        assert c.stats.control_errors == 1
        await ex.push("xrpeth@trade", trade_json(1))
        await until(lambda: len(rec.events) == 1)
        await asyncio.sleep(0.6)  # the refused stream is not resent on this connection
        assert len(ex.conns[0].frames) == 1 and len(ex.conns) == 1
    assert any("refused SUBSCRIBE" in r.message for r in caplog.records)


# ---------------------------------------------------------------- failures and reconnects


async def test_reconnect_after_the_server_aborts_the_socket(ex: FakeExchange) -> None:
    rec = Recorder()
    async with client(ex, rec, backoff_factory=fast(0.05)) as c:
        await c.subscribe(["xrpeth@trade", "btcusdt@trade"])
        await ex.send("x")  # nothing subscribed yet on the server side: no-op
        await until(lambda: c.status.state is ConnState.LIVE)
        await ex.push("xrpeth@trade", trade_json(1))
        await until(lambda: len(rec.events) == 1)
        t0 = time.monotonic()
        ex.abort_all()
        await until(lambda: len(ex.live()) == 1 and len(ex.conns) == 2, what="reconnect")
        reconnect_s = time.monotonic() - t0
        assert ex.conns[1].streams == {"xrpeth@trade", "btcusdt@trade"}  # resubscribed via URL
        await until(lambda: c.status.state is ConnState.LIVE)
        await ex.push("xrpeth@trade", trade_json(2))
        await until(lambda: len(rec.events) == 2)
        assert c.stats.reconnects == 1
        assert ConnState.RECONNECTING in rec.states()
        rs = next(s for s in rec.statuses if s.state is ConnState.RECONNECTING)
        assert rs.attempt == 1 and rs.retry_in == pytest.approx(0.05)
    assert reconnect_s < 1.0
    print(f"\nreconnect after abort (backoff 0.05 s): {reconnect_s * 1000:.0f} ms")


async def test_refused_handshakes_follow_the_backoff_and_go_offline(ex: FakeExchange) -> None:
    rec = Recorder()
    ex.refuse = 4
    made: list[int] = []

    def factory() -> Iterator[float]:
        made.append(1)
        return iter([0.01, 0.02, 0.04, 0.08, 0.16, 0.32])

    async with client(ex, rec, backoff_factory=factory, offline_after=2) as c:
        await c.subscribe(["xrpeth@trade"])
        await until(lambda: c.status.state is ConnState.LIVE, what="LIVE after refusals")
        assert ex.refused == 4
        assert c.stats.connect_failures == 4
    failures = [s for s in rec.statuses if s.retry_in is not None]
    assert [(s.state, s.attempt, s.retry_in) for s in failures] == [
        (ConnState.RECONNECTING, 1, 0.01),
        (ConnState.OFFLINE, 2, 0.02),
        (ConnState.OFFLINE, 3, 0.04),
        (ConnState.OFFLINE, 4, 0.08),
    ]
    assert "503" in failures[0].reason
    assert len(made) == 1


async def test_backoff_restarts_after_a_connection_that_delivered(ex: FakeExchange) -> None:
    rec = Recorder()
    made: list[int] = []

    def factory() -> Iterator[float]:
        made.append(1)
        return iter([0.03, 0.5, 0.5, 0.5])

    async with client(ex, rec, backoff_factory=factory) as c:
        await c.subscribe(["xrpeth@trade"])
        for i in range(3):
            await until(lambda i=i: len(ex.live()) == 1 and len(ex.conns) == i + 1)  # type: ignore[misc]
            await ex.push("xrpeth@trade", trade_json(i + 1))
            await until(lambda i=i: len(rec.events) == i + 1)  # type: ignore[misc]
            ex.abort_all()
        await until(lambda: len(ex.conns) == 4, timeout=2)
    # Each drop after data used the first (short) delay of a fresh sequence.
    assert [s.retry_in for s in rec.statuses if s.retry_in is not None] == [0.03, 0.03, 0.03]
    assert len(made) == 4


async def test_the_watchdog_replaces_a_silent_connection(ex: FakeExchange) -> None:
    rec = Recorder()
    async with client(ex, rec, watchdog_s=0.3) as c:
        await c.subscribe([KL])
        await until(lambda: len(ex.conns) >= 3, timeout=5, what="two watchdog reconnects")
        await until(lambda: ex.conns[1].closed_at is not None)
        lives = [c_.closed_at - c_.opened for c_ in ex.conns[:2] if c_.closed_at is not None]
        assert 0.25 <= lives[0] < 0.8
        # A replacement that is silent too gets twice as long: a quiet stream must not loop.
        assert 0.55 <= lives[1] < 1.4
        assert c.stats.watchdog_trips == 2
        assert any("no data for 0.3 s" in s.reason for s in rec.statuses)


async def test_the_watchdog_leaves_a_talking_connection_alone(ex: FakeExchange, market: Market) -> None:
    rec = Recorder()
    async with client(ex, rec, watchdog_s=0.3) as c:
        await c.subscribe([KL])
        await until(lambda: len(ex.live()) == 1)
        for _ in range(20):  # 1 s of updates every 50 ms
            await market.tick(ex, close=False)
            await asyncio.sleep(0.05)
        assert len(ex.conns) == 1 and c.stats.watchdog_trips == 0


def test_default_watchdog_follows_the_fastest_periodic_stream() -> None:
    assert default_watchdog(["btcusdt@trade", "btcusdt@aggTrade"]) == 60.0
    assert default_watchdog(["btcusdt@trade", "btcusdt@kline_1h"]) == 6.0
    assert default_watchdog(["btcusdt@kline_1s"]) == 5.0  # 3 s, floored
    assert default_watchdog(["!miniTicker@arr", "btcusdt@kline_1h"]) == 5.0
    assert default_watchdog([]) == 60.0


async def test_malformed_frames_are_counted_and_survived(ex: FakeExchange) -> None:
    rec = Recorder()
    async with client(ex, rec) as c:
        await c.subscribe(["xrpeth@trade"])
        await until(lambda: len(ex.live()) == 1)
        for i in range(1, 6):
            await ex.send("{not json", "xrpeth@trade")
            await ex.send(json.dumps({"stream": "xrpeth@trade", "data": {"e": "trade"}}), "xrpeth@trade")
            await ex.push("xrpeth@trade", trade_json(i))
        await until(lambda: len(rec.events) == 5)
        assert c.stats.malformed == 10 and c.stats.frames == 15
        assert len(ex.conns) == 1


async def test_a_raising_consumer_does_not_stop_the_feed(
    ex: FakeExchange, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[StreamEvent] = []

    def consumer(e: StreamEvent) -> None:
        seen.append(e)
        if len(seen) % 2:
            raise RuntimeError("consumer bug")

    c = StreamClient(ex.url, on_event=consumer, min_connect_interval=0)
    async with c:
        await c.subscribe(["xrpeth@trade"])
        await until(lambda: len(ex.live()) == 1)
        for i in range(1, 11):
            await ex.push("xrpeth@trade", trade_json(i))
        await until(lambda: len(seen) == 10)
        assert c.stats.consumer_errors == 5
        assert len(ex.conns) == 1
    assert sum("on_event raised" in r.message for r in caplog.records) == 5


async def test_close_is_clean_and_final(ex: FakeExchange) -> None:
    rec = Recorder()
    c = client(ex, rec)
    await c.subscribe(["xrpeth@trade"])
    task = asyncio.create_task(c.run())
    await until(lambda: c.status.state is ConnState.LIVE)
    await c.close()
    await asyncio.wait_for(task, 2)
    await c.close()  # idempotent
    assert c.status.state is ConnState.CLOSED
    await until(lambda: not ex.live())
    assert ex.conns[0].close_code == 1000
    assert asyncio.all_tasks() == {asyncio.current_task()}
    with pytest.raises(RuntimeError):
        await c.run()


async def test_close_during_backoff_returns_at_once(ex: FakeExchange) -> None:
    rec = Recorder()
    ex.refuse = 100
    async with client(ex, rec, backoff_factory=fast(30.0)) as c:
        await c.subscribe(["xrpeth@trade"])
        await until(lambda: c.status.retry_in == 30.0)
        t0 = time.monotonic()
    assert time.monotonic() - t0 < 0.5
    assert c.status.state is ConnState.CLOSED


async def test_close_during_a_hanging_handshake_returns_at_once() -> None:
    # A server that accepts TCP and never answers the HTTP upgrade (a black-holed proxy).
    writers: list[asyncio.StreamWriter] = []

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    rec = Recorder()
    c = StreamClient(f"ws://127.0.0.1:{port}", on_event=rec.events.append, open_timeout=30.0)
    try:
        async with c:
            await c.subscribe(["xrpeth@trade"])
            await until(lambda: len(writers) == 1, what="the TCP connection")
            t0 = time.monotonic()
        assert time.monotonic() - t0 < 0.5
        assert c.status.state is ConnState.CLOSED
        assert asyncio.all_tasks() == {asyncio.current_task()}
    finally:
        for w in writers:
            w.close()
        server.close()
        await server.wait_closed()


async def test_keepalive_pings_are_sent_and_answered(ex: FakeExchange) -> None:
    rec = Recorder()
    async with client(ex, rec, ping_interval=0.1) as c:
        await c.subscribe(["xrpeth@trade"])
        await until(lambda: c.stats.pings >= 3, timeout=3)
        assert len(ex.conns) == 1 and c.status.state is ConnState.LIVE


async def test_close_before_run(ex: FakeExchange) -> None:
    c = StreamClient(ex.url, on_event=lambda e: None)
    await c.close()
    assert c.status.state is ConnState.CLOSED


# ---------------------------------------------------------------- rotation


async def feed(ex: FakeExchange, market: Market, period: float = 0.02, every: int = 5) -> None:
    """Background market: an update every ``period`` s, a candle closing every ``every`` updates."""
    for n in itertools.count(1):
        await market.tick(ex, close=n % every == 0)
        await asyncio.sleep(period)


def assert_exactly_once_in_order(rec: Recorder, market: Market) -> None:
    closed = rec.closed()
    assert closed, "no closed candles"
    first = market.truth.index(next(k for k in market.truth if k.open_time == closed[0][0]))
    assert closed == market.closed_prefix(first, first + len(closed) - 1)


async def test_rotation_at_max_lifetime_is_make_before_break(ex: FakeExchange, market: Market) -> None:
    rec = Recorder()
    feeder = asyncio.create_task(feed(ex, market))
    try:
        async with client(ex, rec, max_lifetime_s=0.5, backfill=market.backfill) as c:
            await c.subscribe([KL])
            await until(lambda: c.stats.rotations >= 3, timeout=5, what="three rotations")
            await until(lambda: c.status.state is ConnState.LIVE)
            rotations = c.stats.rotations
    finally:
        feeder.cancel()
        await asyncio.gather(feeder, return_exceptions=True)
    a, b = ex.conns[0], ex.conns[1]
    assert a.closed_at is not None and b.opened < a.closed_at  # overlap: make before break
    assert a.close_code == 1000
    assert ConnState.RECONNECTING not in rec.states()
    assert rotations >= 3 and c.stats.reconnects == 0
    assert_exactly_once_in_order(rec, market)


async def test_server_shutdown_triggers_a_rotation(ex: FakeExchange, market: Market) -> None:
    rec = Recorder()
    feeder = asyncio.create_task(feed(ex, market))
    try:
        async with client(ex, rec, backfill=market.backfill) as c:
            await c.subscribe([KL])
            await until(lambda: len(rec.closed()) >= 2)
            await ex.send(json.dumps({"e": "serverShutdown", "E": 1}))
            await until(lambda: len(ex.conns) == 2 and ex.conns[0].closed_at is not None, what="rotation")
            await until(lambda: len(rec.closed()) >= 6)
            assert c.stats.server_shutdowns == 1 and c.stats.rotations == 1
    finally:
        feeder.cancel()
        await asyncio.gather(feeder, return_exceptions=True)
    assert ex.conns[0].close_code == 1000  # we closed it, after the new one delivered
    assert_exactly_once_in_order(rec, market)


async def test_a_1001_close_reconnects_at_once_and_backfills(ex: FakeExchange, market: Market) -> None:
    rec = Recorder()
    async with client(ex, rec, backoff_factory=fast(10.0), backfill=market.backfill) as c:
        await c.subscribe([KL])
        await until(lambda: len(ex.live()) == 1)
        await market.tick(ex, close=True)
        await until(lambda: len(rec.closed()) == 1)
        t0 = time.monotonic()
        await ex.live()[0].ws.close(1001, "going away")
        await until(lambda: len(ex.live()) == 1 and len(ex.conns) == 2, what="reconnect")
        assert time.monotonic() - t0 < 1.0  # not the 10 s backoff
        await until(lambda: market.calls != [])
    assert market.calls == [market.truth[0].open_time]


# ---------------------------------------------------------------- backfill


async def test_backfill_after_a_drop_leaves_every_closed_candle_once_in_order(
    ex: FakeExchange, market: Market
) -> None:
    rec = Recorder()
    market.delay = 0.15  # live frames arrive while the backfill runs: they must wait
    async with client(ex, rec, backfill=market.backfill) as c:
        await c.subscribe([KL])
        await until(lambda: len(ex.live()) == 1)
        for n in range(1, 16):
            await market.tick(ex, close=n % 3 == 0)
        await until(lambda: len(rec.closed()) == 5)
        ex.abort_all()
        market.advance_silently(7)  # candles closed while we were away
        await until(lambda: len(ex.live()) == 1, what="reconnect")
        for n in range(1, 16):  # live data during the backfill
            await market.tick(ex, close=n % 3 == 0)
            await asyncio.sleep(0.01)
        await until(lambda: c.status.state is ConnState.LIVE and c.stats.frames != 0)
        await until(lambda: len(rec.closed()) == 5 + 7 + 5, what="all candles")
        assert c.stats.backfilled_klines >= 7
    assert ConnState.BACKFILLING in rec.states()
    # The real data has minutes without trades (no candle): the first such gap was checked
    # live; the reconnect backfill starts at the last closed candle seen.
    assert market.calls[-1] == market.truth[4].open_time
    assert_exactly_once_in_order(rec, market)
    # Chart contract: open times never go back, except for the final value of the previous candle.
    opens = [k.open_time for k in rec.klines()]
    for (a, b), k in zip(itertools.pairwise(opens), rec.klines()[1:], strict=True):
        assert b >= a or (k.closed and a - b == 60_000), (a, b)


async def test_a_failing_backfill_is_retried_with_backoff(
    ex: FakeExchange, market: Market, caplog: pytest.LogCaptureFixture
) -> None:
    rec = Recorder()
    market.fail = 2
    async with client(ex, rec, backfill=market.backfill, backoff_factory=fast(0.05)) as c:
        await c.subscribe([KL])
        await until(lambda: len(ex.live()) == 1)
        await market.tick(ex, close=True)
        await until(lambda: len(rec.closed()) == 1)
        ex.abort_all()
        market.advance_silently(4)
        await until(lambda: len(rec.closed()) == 5, what="backfilled candles")
        assert c.stats.backfill_failures == 2
        await until(lambda: c.status.state is ConnState.LIVE)
    assert len(market.calls) == 3
    assert any("backfill of xrpeth@kline_1m" in r.message for r in caplog.records)
    assert_exactly_once_in_order(rec, market)


async def test_live_data_flows_after_a_bounded_wait_and_the_gap_is_filled_late(
    ex: FakeExchange, market: Market, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    rec = Recorder()
    market.fail = 1000
    async with client(ex, rec, backfill=market.backfill, backfill_wait_s=0.3, backoff_factory=fast(0.1)) as c:
        await c.subscribe([KL])
        await until(lambda: len(ex.live()) == 1)
        await market.tick(ex, close=True)
        await until(lambda: len(rec.closed()) == 1)
        ex.abort_all()
        market.advance_silently(3)
        await until(lambda: len(ex.live()) == 1)
        await until(lambda: c.status.state is ConnState.BACKFILLING)
        await market.tick(ex, close=True)
        await asyncio.sleep(0.1)
        assert len(rec.closed()) == 1  # held while the backfill fails
        await until(lambda: len(rec.closed()) == 2, what="release after the bounded wait")
        assert c.status.state is ConnState.LIVE and "gap" in c.status.reason
        market.fail = 0
        await until(lambda: len(rec.closed()) == 5, what="late fill")
    got = sorted(rec.closed())
    assert got == market.closed_prefix(0, 4)
    assert [t for t, _ in rec.closed()] == [market.truth[i].open_time for i in (0, 4, 1, 2, 3)]
    assert any("releasing live data" in r.message for r in caplog.records)


async def test_a_live_gap_is_backfilled_in_place(ex: FakeExchange, market: Market) -> None:
    rec = Recorder()
    async with client(ex, rec, backfill=market.backfill) as c:
        await c.subscribe([KL])
        await until(lambda: len(ex.live()) == 1)
        await market.tick(ex, close=True)
        market.advance_silently(2)  # two closes lost on the wire
        await market.tick(ex, close=True)
        await until(lambda: len(rec.closed()) == 4)
        assert c.stats.gaps == 1
    assert market.calls == [market.truth[0].open_time]
    assert_exactly_once_in_order(rec, market)


async def test_quiet_intervals_cost_one_backfill_then_pass(ex: FakeExchange, market: Market) -> None:
    # The real XRPETH minutes have no candle when nothing traded: 7 such gaps in 30 candles.
    rec = Recorder()
    async with client(ex, rec, backfill=market.backfill) as c:
        await c.subscribe([KL])
        await until(lambda: len(ex.live()) == 1)
        for _ in range(30):
            await market.tick(ex, close=True)
            await asyncio.sleep(0.005)
        await until(lambda: len(rec.closed()) == 30)
        assert c.stats.gaps == 7
    assert len(market.calls) == 1  # the first gap was checked, found genuine; the rest passed
    assert rec.closed() == market.closed_prefix(0, 29)


async def test_a_seeded_stream_continues_from_the_consumers_history(ex: FakeExchange, market: Market) -> None:
    # The consumer loaded candles 0..2 itself; candles 3..5 closed before the subscription.
    rec = Recorder()
    c = client(ex, rec, backfill=market.backfill)
    c.seed(KL, market.truth[2].open_time)
    market.advance_silently(6)
    await c.subscribe([KL])
    async with c:
        await until(lambda: len(ex.live()) == 1)
        await until(lambda: c.status.state is ConnState.LIVE)
        for n in range(1, 7):
            await market.tick(ex, close=n % 3 == 0)
        await until(lambda: len(rec.closed()) == 5)
        assert c.stats.reconnects == 0
    assert market.calls[0] == market.truth[2].open_time  # (later ones: real minutes with no trade)
    assert rec.closed() == market.closed_prefix(3, 7)
    with pytest.raises(ValueError):
        c.seed("xrpeth@trade", 0)


async def test_without_backfill_the_gap_is_passed_on(ex: FakeExchange, market: Market) -> None:
    rec = Recorder()
    async with client(ex, rec) as c:
        await c.subscribe([KL])
        await until(lambda: len(ex.live()) == 1)
        await market.tick(ex, close=True)
        market.advance_silently(2)
        await market.tick(ex, close=True)
        await until(lambda: len(rec.closed()) == 2)
    assert [t for t, _ in rec.closed()] == [market.truth[0].open_time, market.truth[3].open_time]
