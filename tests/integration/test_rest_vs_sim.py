"""RestClient + WeightLimiter against the real simulator over loopback sockets."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest
import requests

from binmon.binance.codec import kline_to_row
from binmon.binance.errors import BinanceAPIError, IPBannedError
from binmon.binance.limiter import Reservation, WeightLimiter
from binmon.binance.rest import RestClient
from binmon.core.intervals import DAY_MS, MINUTE_MS, open_time
from binmon.sim.config import SimConfig
from binmon.sim.server import ServerConfig
from binmon.sim.thread import SimThread, run_sim

#: 2024-06-03 00:00:30 UTC, as in conftest: the simulator's clock is two years behind ours.
START_MS = 1_717_372_830_000
#: Three days of generated history (slower trading keeps the generator quick).
SIM = SimConfig(seed=7, history_days=3.0, trade_rate=5.0, start_ms=START_MS)
FAST_SERVER = ServerConfig(
    pump_interval_s=0.02, shutdown_grace_s=0.3, close_timeout_s=2.0, open_timeout_s=10.0
)


@pytest.fixture
def sim_config() -> SimConfig:
    return SIM


class StatusLog:
    """A requests response hook: every status and X-MBX-USED-WEIGHT-1M the client received."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.statuses: list[int] = []
        self.weights: list[int] = []
        self.paths: list[str] = []

    def __call__(self, resp: requests.Response, *args: Any, **kwargs: Any) -> None:
        with self.lock:
            self.statuses.append(resp.status_code)
            self.paths.append(requests.utils.urlparse(resp.url).path)
            if "X-MBX-USED-WEIGHT-1M" in resp.headers:
                self.weights.append(int(resp.headers["X-MBX-USED-WEIGHT-1M"]))


@pytest.fixture
def session() -> Iterator[tuple[requests.Session, StatusLog]]:
    log = StatusLog()
    with requests.Session() as s:
        s.hooks["response"].append(log)
        yield s, log


def market_klines(sim: SimThread, symbol: str, interval: str, start: int, end: int) -> list[Any]:
    return sim.call(sim.server.market.klines, symbol, interval, start, end, 10**7)


def sim_stats(sim: SimThread) -> dict[str, int]:
    return sim.call(sim.server.stats.as_dict)


# ---------------------------------------------------------------------- data


def test_paging_several_days_of_1m_equals_the_market(sim_thread: SimThread) -> None:
    start = START_MS - 3 * DAY_MS - 7 * MINUTE_MS  # before the listing: the first page starts at it
    end = open_time("1m", START_MS) - 1  # every candle in range is closed
    with RestClient(sim_thread.urls.rest) as client:
        pages = list(client.iter_klines("btcusdt", "1m", start, end))
    got = [k for p in pages for k in p]
    want = market_klines(sim_thread, "BTCUSDT", "1m", start, end)
    assert len(want) > 3 * 1400  # several days of minutes, some without trades (hence no candle)
    assert [len(p) for p in pages][:-1] == [1000] * (len(pages) - 1)
    opens = [k.open_time for k in got]
    assert opens == sorted(set(opens))  # no duplicates, in order
    assert opens == [k.open_time for k in want]  # no holes
    assert [kline_to_row(k) for k in got] == [kline_to_row(k) for k in want]
    assert all(k.closed and k.symbol == "BTCUSDT" and k.interval == "1m" for k in got)


def test_paging_up_to_now_ends_with_the_forming_candle(sim_thread: SimThread) -> None:
    with RestClient(sim_thread.urls.rest) as client:
        pages = list(client.iter_klines("ETHUSDT", "1h", START_MS - DAY_MS))
        server_now = client.server_time()
    got = [k for p in pages for k in p]
    assert got[-1].open_time == open_time("1h", server_now)
    # The simulator's clock is in 2024 and sends no Date header: the client measured it.
    assert not got[-1].closed
    assert all(k.closed for k in got[:-1])


def test_exchange_info_and_ticker(sim_thread: SimThread) -> None:
    limiter = WeightLimiter(1000)
    with RestClient(sim_thread.urls.rest, limiter=limiter) as client:
        info = client.exchange_info()
        assert limiter.limit == FAST_SERVER.weight_limit  # adopted from rateLimits
        btc = info.symbol("BTCUSDT")
        assert btc is not None and btc.trading and btc.tick_size == "0.01000000"
        matic = info.symbol("MATICUSDT")
        assert matic is not None and not matic.trading
        two = client.exchange_info(["ETHBTC", "DOGEBTC"])
        assert [s.symbol for s in two.symbols] == ["ETHBTC", "DOGEBTC"]
        doge = two.symbol("DOGEBTC")
        assert doge is not None and doge.price_precision == 8
        # Weight resets at wall-clock window boundaries: keep the next requests in one window.
        left = limiter.window_s - time.time() % limiter.window_s
        if left < 5:
            time.sleep(left + 0.05)
        used = limiter.used
        (t,) = client.ticker_24hr("ethbtc")
        assert t["symbol"] == "ETHBTC" and float(t["lastPrice"]) > 0
        assert limiter.used == used + 2
        every = client.ticker_24hr()
        assert {x["symbol"] for x in every} == {s.symbol for s in info.symbols}
        assert limiter.used == used + 2 + 80


# ---------------------------------------------------------------------- errors


def test_unknown_symbol_is_an_api_error_without_retry(sim_thread: SimThread) -> None:
    before = sim_stats(sim_thread)["rest_requests"]
    with RestClient(sim_thread.urls.rest) as client, pytest.raises(BinanceAPIError) as ei:
        client.klines("NOSUCHUSDT", "1m")
    assert ei.value.status == 400 and ei.value.code == -1121
    assert "Invalid symbol" in str(ei.value)
    assert sim_stats(sim_thread)["rest_requests"] == before + 1


def test_injected_5xx_is_recovered(sim_thread: SimThread) -> None:
    sim_thread.faults.set_rest_errors(503, 2)
    with RestClient(sim_thread.urls.rest, backoff=lambda n: 0.01) as client:
        ks = client.klines("BTCUSDT", "5m", start_ms=START_MS - DAY_MS, limit=10)
        assert len(ks) == 10
        assert client.stats.server_errors == 2 and client.stats.retries == 2
    assert sim_stats(sim_thread)["rest_injected_errors"] == 2


def test_5xx_without_end_is_reported(sim_thread: SimThread) -> None:
    sim_thread.faults.set_rest_errors(502, 100)
    client = RestClient(sim_thread.urls.rest, backoff=lambda n: 0.0, max_retries=2)
    with client, pytest.raises(BinanceAPIError) as ei:
        client.ping()
    assert ei.value.status == 502 and ei.value.code == -1000
    assert sim_stats(sim_thread)["rest_injected_errors"] == 3


# ---------------------------------------------------------------------- rate limits


@pytest.mark.slow
@pytest.mark.parametrize("safety", [0.8, 1.0])
def test_concurrent_downloads_never_get_a_429(
    session: tuple[requests.Session, StatusLog], safety: float
) -> None:
    """4 threads, 160 pages, a limit of 80 weight per 1 s window: throttled, never refused.

    With ``safety=1.0`` there is no margin at all: only exact accounting of the requests in
    flight keeps four threads from overshooting together.
    """
    s, log = session
    server = replace(FAST_SERVER, weight_limit=80, weight_window_s=1.0, ban_after_429s=1)
    pages_per_thread = 40
    with run_sim(SIM, server) as sim:
        limiter = WeightLimiter(80, safety=safety, window_s=1.0)
        client = RestClient(sim.urls.rest, limiter=limiter, session=s)
        results: dict[int, list[int]] = {}
        errors: list[BaseException] = []
        base = START_MS - 2 * DAY_MS

        def worker(n: int) -> None:
            try:
                got = []
                for i in range(pages_per_thread):
                    t = base + (n * pages_per_thread + i) * 10 * MINUTE_MS
                    ks = client.klines("BTCUSDT", "1m", start_ms=t, end_ms=t + 9 * MINUTE_MS, limit=10)
                    got.append(len(ks))
                results[n] = got
            except BaseException as e:
                errors.append(e)

        t0 = time.monotonic()
        threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(60)
        elapsed = time.monotonic() - t0
        stats = sim_stats(sim)
    assert errors == []
    assert sorted(results) == [0, 1, 2, 3]
    assert all(len(r) == pages_per_thread and all(c > 0 for c in r) for r in results.values())
    assert log.statuses == [200] * len(log.statuses)
    assert log.paths.count("/api/v3/klines") == 4 * pages_per_thread
    assert 429 not in log.statuses and 418 not in log.statuses
    assert stats["rest_limited"] == 0 and stats["rest_banned"] == 0
    assert client.stats.rate_limited == 0
    # It was the limiter that kept it under: 320 weight at 64 (80) per window takes at least
    # 5 (4) windows, and in some window the server counted close to the budget, never past
    # it. (The limit is low enough for a loaded machine to reach it: ~40 requests/s.)
    assert elapsed > (3.0 if safety < 1 else 2.0)
    assert 0.75 * limiter.budget <= max(log.weights) <= limiter.budget


class Reckless(WeightLimiter):
    """A limiter that ignores its budget and every pause: what a careless client does."""

    def acquire(
        self, weight: int, *, cancel: threading.Event | None = None, timeout: float | None = None
    ) -> Reservation:
        return Reservation(weight, 0)


def test_bypassing_the_limiter_gets_429_then_418_and_the_client_stops(
    session: tuple[requests.Session, StatusLog], fresh_minute: Callable[[], None]
) -> None:
    s, log = session
    server = replace(FAST_SERVER, weight_limit=20, weight_window_s=60.0, ban_after_429s=2, ban_seconds=30.0)
    with run_sim(SIM, server) as sim:
        client = RestClient(sim.urls.rest, limiter=Reckless(20), session=s, max_retries=10)
        fresh_minute()
        calls = 0
        with pytest.raises(IPBannedError) as ei:
            while calls < 100:
                calls += 1
                client.klines("BTCUSDT", "1m", limit=5)
        assert ei.value.status == 418 and ei.value.retry_after == 30.0
        assert log.statuses[-3:] == [429, 429, 418]  # 2 refusals allowed, the 3rd is a ban
        sent = len(log.statuses)
        # The ban is remembered: no more requests leave this client.
        for _ in range(5):
            with pytest.raises(IPBannedError):
                client.klines("BTCUSDT", "1m", limit=5)
        assert len(log.statuses) == sent
        # A fresh client (say after a restart) learns of the ban from its first answer and stops too.
        with RestClient(sim.urls.rest, session=s) as fresh:
            for _ in range(3):
                with pytest.raises(IPBannedError):
                    fresh.ping()
            assert fresh.limiter.banned_for > 25.0
        assert log.statuses[sent:] == [418]
        stats = sim_stats(sim)
    assert stats["rest_banned"] == 2 and stats["rest_limited"] >= 2
