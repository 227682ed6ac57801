"""RestClient against a tiny scripted HTTP server on 127.0.0.1 (exact control of statuses and headers)."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from binmon.binance.errors import (
    BinanceAPIError,
    IPBannedError,
    NetworkError,
    ProtocolError,
    RateLimitedError,
)
from binmon.binance.limiter import Cancelled, WeightLimiter
from binmon.binance.rest import WEIGHTS, RestClient
from binmon.core.intervals import IntervalError

MIN = 60_000


@dataclass
class Reply:
    status: int = 200
    body: Any = field(default_factory=dict)  # bytes are sent as-is, anything else as JSON
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    date: bool = True  # send a Date header (the simulator sends none)


@dataclass
class Seen:
    path: str
    query: dict[str, str]
    headers: dict[str, str]


class FakeBinance:
    """Answers each path from a script (a queue of replies), else from a route function."""

    def __init__(self) -> None:
        self.scripts: dict[str, deque[Reply]] = {}
        self.routes: dict[str, Callable[[dict[str, str]], Reply]] = {}
        self.seen: list[Seen] = []
        self.stopping = threading.Event()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                query = dict(parse_qsl(parts.query))
                fake.seen.append(Seen(parts.path, query, dict(self.headers)))
                reply = fake.reply_for(parts.path, query)
                if reply.delay:
                    fake.stopping.wait(reply.delay)
                body = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
                if reply.date:
                    self.send_response(reply.status)
                else:
                    self.send_response_only(reply.status)
                for k, v in reply.headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # the client hung up after its timeout: expected in the timeout tests

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05})
        self.thread.start()

    def script(self, path: str, *replies: Reply) -> None:
        self.scripts.setdefault(path, deque()).extend(replies)

    def reply_for(self, path: str, query: dict[str, str]) -> Reply:
        queue = self.scripts.get(path)
        if queue:
            return queue.popleft()
        if path in self.routes:
            return self.routes[path](query)
        return Reply(404, {"code": -1, "msg": f"no route {path}"})

    def count(self, path: str) -> int:
        return sum(1 for s in self.seen if s.path == path)

    def close(self) -> None:
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


class FakeTime:
    """Monotonic + wall clock moved only by sleep(); records the naps."""

    def __init__(self) -> None:
        self.mono = 100.0
        self.wall_now = time.time()
        self.naps: list[float] = []
        self._lock = threading.Lock()

    def clock(self) -> float:
        with self._lock:
            return self.mono

    def wall(self) -> float:
        with self._lock:
            return self.wall_now

    def sleep(self, dt: float) -> None:
        with self._lock:
            self.naps.append(dt)
            self.mono += dt
            self.wall_now += dt


@pytest.fixture
def fake() -> Iterator[FakeBinance]:
    f = FakeBinance()
    yield f
    f.close()


@pytest.fixture
def ft() -> FakeTime:
    return FakeTime()


@pytest.fixture
def client(fake: FakeBinance, ft: FakeTime) -> Iterator[RestClient]:
    limiter = WeightLimiter(1000, clock=ft.clock, wall=ft.wall, sleep=ft.sleep)
    with RestClient(
        fake.url, limiter=limiter, backoff=lambda n: 0.5 * 2**n, sleep=ft.sleep, max_retries=3, timeout=2.0
    ) as c:
        yield c


def kline_row(open_ms: int, close: str = "1.5") -> list[Any]:
    return [open_ms, "1.0", "2.0", "0.5", close, "10.0", open_ms + MIN - 1, "15.0", 7, "4.0", "6.0", "0"]


# ---------------------------------------------------------------------- happy path + headers


def test_klines_sends_validated_params_and_reads_weight_header(fake: FakeBinance, client: RestClient) -> None:
    now = int(time.time() * 1000)
    # "forming" opens a minute ahead, so it is still open whatever second the Date header says.
    old, forming = now - 10 * MIN, now // MIN * MIN + MIN
    fake.script(
        "/api/v3/klines",
        Reply(body=[kline_row(old), kline_row(forming)], headers={"X-MBX-USED-WEIGHT-1M": "42"}),
    )
    ks = client.klines("btcusdt", "1m", start_ms=old, end_ms=forming, limit=2)
    assert [k.open_time for k in ks] == [old, forming]
    assert ks[0].symbol == "BTCUSDT" and ks[0].close == 1.5 and ks[0].trades == 7
    assert [k.closed for k in ks] == [True, False]  # the forming candle closes after the Date header
    (seen,) = fake.seen
    assert seen.query == {
        "symbol": "BTCUSDT",
        "interval": "1m",
        "startTime": str(old),
        "endTime": str(forming),
        "limit": "2",
    }
    assert seen.headers["User-Agent"].startswith("binmon/")
    assert client.limiter.used == 42  # the server's count is authoritative


def test_weights_are_charged_per_endpoint(fake: FakeBinance, client: RestClient) -> None:
    fake.routes["/api/v3/ping"] = lambda q: Reply(body={})
    fake.routes["/api/v3/time"] = lambda q: Reply(body={"serverTime": 1_700_000_000_123})
    fake.routes["/api/v3/ticker/24hr"] = lambda q: Reply(
        body={"symbol": q["symbol"], "lastPrice": "1.0"}
        if "symbol" in q
        else [{"symbol": "A"}, {"symbol": "B"}]
    )
    lim = client.limiter
    client.ping()
    assert lim.used == WEIGHTS["/api/v3/ping"] == 1
    assert client.server_time() == 1_700_000_000_123
    assert lim.used == 2
    assert client.ticker_24hr("ethbtc") == [{"symbol": "ETHBTC", "lastPrice": "1.0"}]
    assert lim.used == 4
    assert [t["symbol"] for t in client.ticker_24hr()] == ["A", "B"]
    assert lim.used == 84
    assert client.stats.requests == 4 and client.stats.retries == 0


def test_exchange_info_adopts_the_announced_weight_limit(fake: FakeBinance, client: RestClient) -> None:
    body = {
        "serverTime": 1,
        "rateLimits": [
            {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 1200}
        ],
        "symbols": [{"symbol": "ETHBTC", "status": "TRADING", "baseAsset": "ETH", "quoteAsset": "BTC"}],
    }
    fake.routes["/api/v3/exchangeInfo"] = lambda q: Reply(body=body)
    info = client.exchange_info(["ethbtc", "BTCUSDT"])
    assert info.symbol("ETHBTC") is not None
    assert client.limiter.limit == 1200
    assert fake.seen[0].query == {"symbols": '["ETHBTC","BTCUSDT"]'}
    client.exchange_info(["ethbtc"])
    assert fake.seen[1].query == {"symbol": "ETHBTC"}
    assert client.limiter.used == 40


def test_arguments_are_checked_before_anything_is_sent(fake: FakeBinance, client: RestClient) -> None:
    with pytest.raises(IntervalError):
        client.klines("BTCUSDT", "1x")
    with pytest.raises(IntervalError):
        client.klines("BTCUSDT", "1H")  # intervals are case-sensitive
    with pytest.raises(ValueError, match="symbol"):
        client.klines("BTC/USDT", "1m")
    with pytest.raises(ValueError, match="symbol"):
        client.ticker_24hr("")
    with pytest.raises(ValueError, match="limit"):
        client.klines("BTCUSDT", "1m", limit=1001)
    with pytest.raises(ValueError, match="before"):
        client.klines("BTCUSDT", "1m", start_ms=10, end_ms=5)
    with pytest.raises(ValueError):
        RestClient("ftp://example.com")
    assert fake.seen == []


# ---------------------------------------------------------------------- rate limits


def test_429_pauses_every_caller_then_retries(fake: FakeBinance, client: RestClient, ft: FakeTime) -> None:
    fake.script(
        "/api/v3/ping",
        Reply(
            429,
            {"code": -1003, "msg": "Too many requests."},
            {"Retry-After": "7", "X-MBX-USED-WEIGHT-1M": "1001"},
        ),
        Reply(200, {}, {"X-MBX-USED-WEIGHT-1M": "1"}),
    )
    t0 = ft.clock()
    client.ping()
    assert fake.count("/api/v3/ping") == 2
    assert ft.clock() - t0 >= 7.0  # the retry waited out Retry-After (in the limiter, so for everyone)
    assert client.limiter.paused_until == pytest.approx(t0 + 7.0)
    assert client.stats.rate_limited == 1 and client.stats.retries == 1


def test_429_retries_are_bounded(fake: FakeBinance, client: RestClient, ft: FakeTime) -> None:
    fake.routes["/api/v3/ping"] = lambda q: Reply(
        429, {"code": -1003, "msg": "Too many requests."}, {"Retry-After": "2"}
    )
    with pytest.raises(RateLimitedError) as ei:
        client.ping()
    assert fake.count("/api/v3/ping") == client.max_retries + 1
    assert ei.value.retry_after == 2.0 and ei.value.code == -1003


def test_418_raises_pauses_and_is_never_hammered(fake: FakeBinance, client: RestClient) -> None:
    fake.script(
        "/api/v3/ping",
        Reply(
            418,
            {"code": -1003, "msg": "Way too much request weight used; IP banned."},
            {"Retry-After": "300"},
        ),
    )
    with pytest.raises(IPBannedError) as ei:
        client.ping()
    assert ei.value.retry_after == 300.0 and ei.value.status == 418
    assert "IP banned" in str(ei.value) and "\n" not in str(ei.value)
    assert client.limiter.banned_for == pytest.approx(300.0)
    # Every later request fails at once, without touching the server.
    with pytest.raises(IPBannedError) as ei2:
        client.klines("BTCUSDT", "1m")
    assert 0 < ei2.value.retry_after <= 300.0
    assert fake.count("/api/v3/ping") == 1 and fake.count("/api/v3/klines") == 0


def test_a_ban_from_another_thread_ends_a_wait_for_weight(fake: FakeBinance) -> None:
    limiter = WeightLimiter(10, safety=1.0, window_s=3600.0)  # real time
    limiter.acquire(10)  # budget spent for the next hour
    errors: list[BaseException] = []
    with RestClient(fake.url, limiter=limiter) as c:

        def worker() -> None:
            try:
                c.ping()
            except BaseException as e:
                errors.append(e)

        th = threading.Thread(target=worker)
        th.start()
        time.sleep(0.2)
        assert th.is_alive()
        limiter.pause(600.0, banned=True)
        th.join(2.0)
        assert not th.is_alive()
    assert len(errors) == 1 and isinstance(errors[0], IPBannedError)
    assert fake.seen == []


def test_cancel_while_waiting_for_weight(fake: FakeBinance) -> None:
    limiter = WeightLimiter(10, safety=1.0, window_s=3600.0)
    limiter.acquire(10)
    cancel = threading.Event()
    threading.Timer(0.1, cancel.set).start()
    with RestClient(fake.url, limiter=limiter) as c, pytest.raises(Cancelled):
        c.klines("BTCUSDT", "1m", cancel=cancel)
    assert fake.seen == []


# ---------------------------------------------------------------------- server errors


def test_5xx_is_retried_with_backoff_then_succeeds(
    fake: FakeBinance, client: RestClient, ft: FakeTime
) -> None:
    fake.script(
        "/api/v3/time", Reply(503, b"<html>busy</html>"), Reply(502, b""), Reply(200, {"serverTime": 5})
    )
    assert client.server_time() == 5
    assert fake.count("/api/v3/time") == 3
    assert ft.naps == [0.5, 1.0]  # backoff(0), backoff(1)
    assert client.stats.server_errors == 2


def test_5xx_exhausted_raises_api_error(fake: FakeBinance, client: RestClient) -> None:
    fake.routes["/api/v3/time"] = lambda q: Reply(500, {"code": -1000, "msg": "An unknown error occurred."})
    with pytest.raises(BinanceAPIError) as ei:
        client.server_time()
    assert ei.value.status == 500 and ei.value.code == -1000
    assert fake.count("/api/v3/time") == client.max_retries + 1


def test_400_invalid_symbol_is_not_retried(fake: FakeBinance, client: RestClient) -> None:
    fake.routes["/api/v3/klines"] = lambda q: Reply(400, {"code": -1121, "msg": "Invalid symbol."})
    with pytest.raises(BinanceAPIError) as ei:
        client.klines("NOPEUSDT", "1m")
    e = ei.value
    assert type(e) is BinanceAPIError and e.status == 400 and e.code == -1121
    assert e.msg == "Invalid symbol." and "symbol=NOPEUSDT" in e.url
    text = str(e)
    assert "-1121" in text and "Invalid symbol." in text and "\n" not in text
    assert fake.count("/api/v3/klines") == 1


def test_garbage_200_body_is_a_protocol_error(fake: FakeBinance, client: RestClient) -> None:
    fake.script("/api/v3/klines", Reply(200, b"<html>captive portal</html>"))
    with pytest.raises(ProtocolError, match="klines"):
        client.klines("BTCUSDT", "1m")
    fake.script("/api/v3/klines", Reply(200, [[1, 2, 3]]))
    with pytest.raises(ProtocolError):
        client.klines("BTCUSDT", "1m")
    fake.script("/api/v3/time", Reply(200, {"serverTime": "soon"}))
    with pytest.raises(ProtocolError):
        client.server_time()
    assert len(fake.seen) == 3  # never retried


# ---------------------------------------------------------------------- network failures


def closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_connection_refused_is_a_quick_one_line_network_error(ft: FakeTime) -> None:
    port = closed_port()
    t0 = time.monotonic()
    with (
        RestClient(f"http://127.0.0.1:{port}", sleep=ft.sleep, max_retries=2) as c,
        pytest.raises(NetworkError) as ei,
    ):
        c.ping()
    assert time.monotonic() - t0 < 2.0
    assert str(ei.value) == f"cannot reach 127.0.0.1:{port}: connection refused"
    assert len(ft.naps) == 2  # retried max_retries times, with the default (jittered) backoff
    assert 0.125 <= ft.naps[0] <= 0.25 and 0.25 <= ft.naps[1] <= 0.5
    assert c.stats.network_errors == 3


def test_timeout_is_retried_then_reported(fake: FakeBinance, ft: FakeTime) -> None:
    fake.routes["/api/v3/ping"] = lambda q: Reply(200, {}, delay=2.0)
    t0 = time.monotonic()
    with (
        RestClient(fake.url, timeout=0.2, max_retries=1, sleep=ft.sleep) as c,
        pytest.raises(NetworkError) as ei,
    ):
        c.ping()
    assert time.monotonic() - t0 < 1.5
    assert "no response within 0.2 s" in str(ei.value)
    assert fake.count("/api/v3/ping") == 2


def test_timeout_then_success(fake: FakeBinance, client: RestClient) -> None:
    client.timeout = 0.2
    fake.script("/api/v3/time", Reply(200, {"serverTime": 1}, delay=2.0), Reply(200, {"serverTime": 2}))
    assert client.server_time() == 2
    assert client.stats.network_errors == 1


# ---------------------------------------------------------------------- paging


def serve_klines(fake: FakeBinance, opens: list[int]) -> None:
    """A klines route that honours startTime / endTime / limit like Binance."""

    def route(q: dict[str, str]) -> Reply:
        start = int(q.get("startTime", 0))
        end = int(q.get("endTime", 2**62))
        limit = int(q.get("limit", 500))
        rows = [kline_row(t) for t in opens if start <= t <= end][:limit]
        return Reply(200, rows)

    fake.routes["/api/v3/klines"] = route


def test_iter_klines_pages_without_overlap_and_stops_on_a_short_page(
    fake: FakeBinance, client: RestClient
) -> None:
    t0 = 1_600_000_000_000 // MIN * MIN
    opens = [t0 + i * MIN for i in range(2500) if i not in range(1200, 1300)]  # a 100-minute hole
    serve_klines(fake, opens)
    pages = list(client.iter_klines("BTCUSDT", "1m", t0 - 5 * MIN))
    assert [len(p) for p in pages] == [1000, 1000, 400]
    assert [k.open_time for p in pages for k in p] == opens
    starts = [int(s.query["startTime"]) for s in fake.seen]
    assert starts == [t0 - 5 * MIN, opens[999] + 1, opens[1999] + 1]  # 400 < 1000: nothing more
    assert all(s.query["limit"] == "1000" and "endTime" not in s.query for s in fake.seen)


def test_iter_klines_stops_on_an_empty_page_and_at_end(fake: FakeBinance, client: RestClient) -> None:
    t0 = 1_600_000_000_000 // MIN * MIN
    serve_klines(fake, [t0 + i * MIN for i in range(2000)])
    pages = list(client.iter_klines("BTCUSDT", "1m", t0))
    assert [len(p) for p in pages] == [1000, 1000]
    assert len(fake.seen) == 3  # the third page came back empty and is not yielded

    fake.seen.clear()
    serve_klines(fake, [t0 + i * MIN for i in range(3000)])
    pages = list(client.iter_klines("BTCUSDT", "1m", t0, t0 + 1999 * MIN))
    assert sum(len(p) for p in pages) == 2000
    assert len(fake.seen) == 2  # no request past end_ms
    assert fake.seen[1].query["endTime"] == str(t0 + 1999 * MIN)


def test_closed_flag_only_the_newest_candle_depends_on_the_clock(
    fake: FakeBinance, client: RestClient
) -> None:
    # A server whose clock runs a day ahead of ours (a fast simulator, a bad local clock).
    day = 24 * 60 * MIN
    server_now = int(time.time() * 1000) + day
    opens = [server_now // MIN * MIN - i * MIN for i in (3, 2, 1, 0)]
    fake.script("/api/v3/klines", Reply(200, [kline_row(t) for t in opens]))
    ks = client.klines("BTCUSDT", "1m")
    # Each candle followed by an opened one is over, though our clock and the Date header say
    # it has not even begun; the newest one cannot be known to be closed: it reads as open.
    assert [k.closed for k in ks] == [True, True, True, False]

    # Once the server's clock is measured, the newest candle is judged by it.
    fake.script("/api/v3/time", Reply(200, {"serverTime": server_now + 2 * MIN}))
    client.server_time()
    fake.script("/api/v3/klines", Reply(200, [kline_row(t) for t in opens]))
    assert [k.closed for k in client.klines("BTCUSDT", "1m")] == [True, True, True, True]
    fake.script("/api/v3/klines", Reply(200, [kline_row(opens[-1] + 5 * MIN)]))
    assert [k.closed for k in client.klines("BTCUSDT", "1m")] == [False]


def test_without_a_date_header_the_server_clock_is_measured_once(fake: FakeBinance, ft: FakeTime) -> None:
    # A simulator replaying a day two years ago, sending no Date header: our clock says every
    # candle it serves is long over, but its newest candle is still forming.
    server_now = int(ft.wall() * 1000) - 2 * 365 * 24 * 60 * MIN + 30_000
    forming = server_now // MIN * MIN
    rows = [kline_row(forming - MIN), kline_row(forming)]
    fake.routes["/api/v3/klines"] = lambda q: Reply(200, rows, date=False)
    fake.routes["/api/v3/time"] = lambda q: Reply(200, {"serverTime": server_now}, date=False)
    limiter = WeightLimiter(1000, clock=ft.clock, wall=ft.wall, sleep=ft.sleep)
    with RestClient(fake.url, limiter=limiter, wall=ft.wall, sleep=ft.sleep) as c:
        assert [k.closed for k in c.klines("BTCUSDT", "1m")] == [True, False]
        assert [k.closed for k in c.klines("BTCUSDT", "1m")] == [True, False]
        assert fake.count("/api/v3/time") == 1  # measured once, not per request
        ft.sleep(301.0)  # the offset goes stale: measured again (the server's clock moved too)
        fake.routes["/api/v3/time"] = lambda q: Reply(200, {"serverTime": server_now + 301_000}, date=False)
        assert [k.closed for k in c.klines("BTCUSDT", "1m")] == [True, True]
        assert fake.count("/api/v3/time") == 2


def test_iter_klines_rejects_pages_that_go_backwards(fake: FakeBinance, client: RestClient) -> None:
    fake.routes["/api/v3/klines"] = lambda q: Reply(200, [kline_row(0)])
    with pytest.raises(ProtocolError, match="begins earlier"):
        list(client.iter_klines("BTCUSDT", "1m", MIN))


def test_iter_klines_cancel_between_pages(fake: FakeBinance, client: RestClient) -> None:
    t0 = 1_600_000_000_000 // MIN * MIN
    serve_klines(fake, [t0 + i * MIN for i in range(5000)])
    cancel = threading.Event()
    it = client.iter_klines("BTCUSDT", "1m", t0, cancel=cancel)
    assert len(next(it)) == 1000
    cancel.set()
    with pytest.raises(Cancelled):
        next(it)
    assert len(fake.seen) == 1
