"""The simulator's REST API with ``requests``: Binance's shapes, errors, weights, 429 and 418."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import replace
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from websockets.sync.client import connect as sync_connect

from binmon.core.models import Kline
from binmon.sim.clock import ManualClock
from binmon.sim.config import SimConfig
from binmon.sim.server import ServerConfig
from binmon.sim.thread import SimThread, run_sim
from binmon.sim.wire import kline_row

DEC8 = re.compile(r"^-?\d+\.\d{8}$")


def get(sim: SimThread, path: str, **params: Any) -> requests.Response:
    return requests.get(sim.urls.rest + path, params=params, timeout=10)


def err(r: requests.Response) -> tuple[int, int, str]:
    body = r.json()
    assert set(body) == {"code", "msg"}
    return r.status_code, body["code"], body["msg"]


# ---------------------------------------------------------------- basics


def test_ping_time_and_headers(sim_thread: SimThread, fresh_minute: Callable[[], None]) -> None:
    fresh_minute()
    r = get(sim_thread, "/api/v3/ping")
    assert r.status_code == 200 and r.json() == {}
    assert r.headers["Content-Type"] == "application/json;charset=UTF-8"
    used = int(r.headers["X-MBX-USED-WEIGHT-1M"])
    r = get(sim_thread, "/api/v3/time")
    now = sim_thread.call(sim_thread.server.clock.now_ms)
    assert set(r.json()) == {"serverTime"} and abs(r.json()["serverTime"] - now) < 2000
    assert int(r.headers["X-MBX-USED-WEIGHT-1M"]) == used + 1


def test_weights_per_endpoint(sim_thread: SimThread) -> None:
    def used_after(path: str, **params: Any) -> int:
        r = get(sim_thread, path, **params)
        assert r.status_code == 200, r.text
        assert r.headers["X-MBX-USED-WEIGHT"] == r.headers["X-MBX-USED-WEIGHT-1M"]
        return int(r.headers["X-MBX-USED-WEIGHT-1M"])

    # The window is a wall-clock minute: retry once if the test straddles a minute boundary.
    for _ in range(2):
        base = used_after("/api/v3/ping")
        steps = [
            used_after("/api/v3/exchangeInfo"),
            used_after("/api/v3/klines", symbol="BTCUSDT", interval="1m"),
            used_after("/api/v3/ticker/24hr", symbol="BTCUSDT"),
            used_after("/api/v3/ticker/24hr"),
            used_after("/api/v3/time"),
        ]
        if steps[-1] > base:
            break
    diffs = [b - a for a, b in zip([base, *steps[:-1]], steps, strict=True)]
    assert diffs == [20, 2, 2, 80, 1]


def test_unknown_path_is_404(sim_thread: SimThread) -> None:
    assert get(sim_thread, "/api/v3/nothing").status_code == 404
    assert get(sim_thread, "/").status_code == 404


# ---------------------------------------------------------------- exchangeInfo


def test_exchange_info_shape_matches_the_real_capture(
    sim_thread: SimThread, real_exchange_info: dict[str, Any]
) -> None:
    info = get(sim_thread, "/api/v3/exchangeInfo").json()
    assert list(info) == list(real_exchange_info)
    assert info["timezone"] == "UTC" and isinstance(info["serverTime"], int)
    assert [list(x) for x in info["rateLimits"]] == [list(x) for x in real_exchange_info["rateLimits"]]
    assert info["rateLimits"][0] == {
        "rateLimitType": "REQUEST_WEIGHT",
        "interval": "MINUTE",
        "intervalNum": 1,
        "limit": 6000,
    }
    real_sym = real_exchange_info["symbols"][0]
    real_filters = {f["filterType"]: list(f) for s in real_exchange_info["symbols"] for f in s["filters"]}
    names = [s["symbol"] for s in info["symbols"]]
    assert names == [s.symbol for s in sim_thread.server.market.symbols]
    for s in info["symbols"]:
        assert list(s) == list(real_sym)
        for k, v in s.items():
            assert type(v) is type(real_sym[k]), k
        for f in s["filters"]:
            assert list(f) == real_filters[f["filterType"]]
    by = {s["symbol"]: s for s in info["symbols"]}
    assert by["MATICUSDT"]["status"] == "BREAK" and by["BTCUSDT"]["status"] == "TRADING"
    price_filter = by["DOGEBTC"]["filters"][0]
    assert price_filter["tickSize"] == "0.00000001" and DEC8.match(price_filter["minPrice"])
    assert by["BTCUSDT"]["filters"][0]["tickSize"] == "0.01000000"
    lot = next(f for f in by["BTCUSDT"]["filters"] if f["filterType"] == "LOT_SIZE")
    assert lot["stepSize"] == "0.00001000"


def test_exchange_info_filters(sim_thread: SimThread) -> None:
    one = get(sim_thread, "/api/v3/exchangeInfo", symbol="ETHUSDT").json()
    assert [s["symbol"] for s in one["symbols"]] == ["ETHUSDT"]
    two = get(sim_thread, "/api/v3/exchangeInfo", symbols='["DOGEBTC","BTCUSDT"]').json()
    assert [s["symbol"] for s in two["symbols"]] == ["DOGEBTC", "BTCUSDT"]
    brk = get(sim_thread, "/api/v3/exchangeInfo", symbolStatus="BREAK").json()
    assert [s["symbol"] for s in brk["symbols"]] == ["MATICUSDT"]
    spot = get(sim_thread, "/api/v3/exchangeInfo", permissions='["SPOT"]').json()
    assert len(spot["symbols"]) == len(sim_thread.server.market.symbols)
    assert get(sim_thread, "/api/v3/exchangeInfo", permissions="MARGIN").json()["symbols"] == []
    assert err(get(sim_thread, "/api/v3/exchangeInfo", symbol="NOPEUSDT")) == (400, -1121, "Invalid symbol.")
    assert err(get(sim_thread, "/api/v3/exchangeInfo", symbols='["BTCUSDT","NOPE"]'))[1] == -1121
    assert err(get(sim_thread, "/api/v3/exchangeInfo", symbols="BTCUSDT"))[1] == -1100
    assert err(get(sim_thread, "/api/v3/exchangeInfo", symbol="btcusdt"))[1] == -1100


# ---------------------------------------------------------------- klines


def _market_klines(sim: SimThread, *args: Any) -> list[Kline]:
    result: list[Kline] = sim.call(sim.server.market.klines, *args)
    return result


def test_klines_rows_shape_and_values(sim_thread: SimThread) -> None:
    r = get(sim_thread, "/api/v3/klines", symbol="BTCUSDT", interval="1m", limit=5)
    rows = r.json()
    assert len(rows) == 5
    for row in rows:
        assert len(row) == 12
        assert [type(x) for x in row] == [int, str, str, str, str, str, int, str, int, str, str, str]
        assert all(DEC8.match(x) for x in [*row[1:6], row[7], row[9], row[10]])
        assert row[6] == row[0] + 59_999 and row[11] == "0"
    opens = [row[0] for row in rows]
    assert opens == sorted(opens)
    # The last row is the forming candle: its close time is still ahead of the server time.
    server_time = get(sim_thread, "/api/v3/time").json()["serverTime"]
    assert rows[-1][6] >= server_time - 1000
    hist = _market_klines(sim_thread, "BTCUSDT", "1m", opens[0], opens[-2], 1000)
    assert [kline_row(k) for k in hist] == rows[:-1]


def test_klines_paging_limit_and_time_filters(sim_thread: SimThread) -> None:
    assert len(get(sim_thread, "/api/v3/klines", symbol="ETHUSDT", interval="1m").json()) == 500
    assert len(get(sim_thread, "/api/v3/klines", symbol="ETHUSDT", interval="1m", limit=5000).json()) == 1000
    listing = sim_thread.server.market.listing_ms("ETHUSDT")
    first = get(sim_thread, "/api/v3/klines", symbol="ETHUSDT", interval="1h", startTime=0, limit=3).json()
    assert first[0][0] == listing // 3_600_000 * 3_600_000  # oldest first from startTime
    # Page forward with startTime = last open + 1: no overlap, no hole.
    page1 = get(
        sim_thread, "/api/v3/klines", symbol="ETHUSDT", interval="5m", startTime=listing, limit=10
    ).json()
    page2 = get(
        sim_thread, "/api/v3/klines", symbol="ETHUSDT", interval="5m", startTime=page1[-1][0] + 1, limit=10
    ).json()
    assert page2[0][0] == page1[-1][0] + 300_000
    end = page1[4][0]
    upto = get(
        sim_thread, "/api/v3/klines", symbol="ETHUSDT", interval="5m", startTime=listing, endTime=end
    ).json()
    assert [r[0] for r in upto] == [r[0] for r in page1[:5]]
    # An offset that is a whole number of candles changes nothing, so it is served.
    tz = get(
        sim_thread, "/api/v3/klines", symbol="ETHUSDT", interval="1h", startTime=0, limit=2, timeZone="+08:00"
    )
    assert tz.json() == first[:2]


MISSING = "Mandatory parameter '{}' was not sent, was empty/null, or malformed."
ILLEGAL = "Illegal characters found in parameter '{}'; legal range is '{}'."


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"interval": "1m"}, (400, -1102, MISSING.format("symbol"))),
        ({"symbol": "", "interval": "1m"}, (400, -1102, None)),
        ({"symbol": "BTCUSDT"}, (400, -1102, MISSING.format("interval"))),
        ({"symbol": "btcusdt", "interval": "1m"},
         (400, -1100, ILLEGAL.format("symbol", "^[A-Z0-9-_.]{1,20}$"))),
        ({"symbol": "NOPEUSDT", "interval": "1m"}, (400, -1121, "Invalid symbol.")),
        ({"symbol": "BTCUSDT", "interval": "7m"}, (400, -1120, "Invalid interval.")),
        ({"symbol": "BTCUSDT", "interval": "1H"}, (400, -1120, "Invalid interval.")),
        ({"symbol": "BTCUSDT", "interval": "1m", "startTime": "abc"},
         (400, -1100, ILLEGAL.format("startTime", "^[0-9]{1,20}$"))),
        ({"symbol": "BTCUSDT", "interval": "1m", "startTime": "20", "endTime": "10"},
         (400, -1023, "Start time is greater than end time.")),
        ({"symbol": "BTCUSDT", "interval": "1m", "limit": "0"}, (400, -1130, None)),
        ({"symbol": "BTCUSDT", "interval": "1m", "foo": "1"},
         (400, -1104, "Not all sent parameters were read; read '2' parameter(s) but was sent '3'.")),
        ({"symbol": "BTCUSDT", "interval": "1h", "timeZone": "+05:30"}, (400, -1130, None)),
        ({"symbol": "BTCUSDT", "interval": "1m", "timeZone": "nowhere"}, (400, -1130, None)),
    ],
)  # fmt: skip
def test_klines_errors(
    sim_thread: SimThread, params: dict[str, str], expected: tuple[int, int, str | None]
) -> None:
    status, code, msg = err(get(sim_thread, "/api/v3/klines", **params))
    assert (status, code) == expected[:2]
    if expected[2] is not None:
        assert msg == expected[2]


def test_duplicate_parameter(sim_thread: SimThread) -> None:
    r = requests.get(
        sim_thread.urls.rest + "/api/v3/klines?symbol=BTCUSDT&symbol=ETHUSDT&interval=1m", timeout=10
    )
    assert err(r)[:2] == (400, -1101)


# ---------------------------------------------------------------- ticker


TICKER_KEYS = [
    "symbol", "priceChange", "priceChangePercent", "weightedAvgPrice", "prevClosePrice", "lastPrice",
    "lastQty", "bidPrice", "bidQty", "askPrice", "askQty", "openPrice", "highPrice", "lowPrice", "volume",
    "quoteVolume", "openTime", "closeTime", "firstId", "lastId", "count",
]  # fmt: skip


def test_ticker_24hr(sim_config: SimConfig, server_config: ServerConfig) -> None:
    # A stopped clock: the rolling 24 h window must not move between the two reads compared.
    with run_sim(sim_config, server_config, ManualClock(sim_config.start_ms)) as sim_thread:
        _check_ticker(sim_thread)


def _check_ticker(sim_thread: SimThread) -> None:
    t = get(sim_thread, "/api/v3/ticker/24hr", symbol="BTCUSDT").json()
    assert list(t) == TICKER_KEYS
    for k in TICKER_KEYS[1:16]:
        assert DEC8.match(t[k]) or (k == "priceChangePercent" and re.match(r"^-?\d+\.\d{3}$", t[k])), k
    assert all(isinstance(t[k], int) for k in TICKER_KEYS[16:])
    assert t["closeTime"] - t["openTime"] == 86_400_000
    assert t["count"] == t["lastId"] - t["firstId"] + 1 > 0
    assert float(t["lowPrice"]) <= float(t["lastPrice"]) <= float(t["highPrice"])
    assert float(t["bidPrice"]) < float(t["askPrice"])
    market = sim_thread.call(sim_thread.server.market.ticker_24h, "BTCUSDT")
    assert t["firstId"] == market.first_id and t["openPrice"] == f"{market.open:.8f}"
    everything = get(sim_thread, "/api/v3/ticker/24hr").json()
    assert [x["symbol"] for x in everything] == [s.symbol for s in sim_thread.server.market.symbols]
    halted = next(x for x in everything if x["symbol"] == "MATICUSDT")
    assert halted["count"] == 0 and halted["firstId"] == -1
    some = get(sim_thread, "/api/v3/ticker/24hr", symbols='["ETHBTC","DOGEBTC"]').json()
    assert [x["symbol"] for x in some] == ["ETHBTC", "DOGEBTC"]
    mini = get(sim_thread, "/api/v3/ticker/24hr", symbol="ETHBTC", type="MINI").json()
    assert "bidPrice" not in mini and mini["lastPrice"] == some[0]["lastPrice"]
    assert err(get(sim_thread, "/api/v3/ticker/24hr", symbol="NOPE"))[:2] == (400, -1121)


# ---------------------------------------------------------------- rate limits


def test_429_then_418_ban(
    sim_config: SimConfig, server_config: ServerConfig, fresh_minute: Callable[[], None]
) -> None:
    cfg = replace(server_config, weight_limit=10, ban_after_429s=2, ban_seconds=1.5)
    with run_sim(sim_config, cfg) as sim:
        fresh_minute()
        for i in range(5):
            r = get(sim, "/api/v3/klines", symbol="BTCUSDT", interval="1d", limit=1)
            assert r.status_code == 200 and r.headers["X-MBX-USED-WEIGHT-1M"] == str(2 * (i + 1))
        for _ in range(2):
            r = get(sim, "/api/v3/ping")
            assert r.status_code == 429
            assert 1 <= int(r.headers["Retry-After"]) <= 60
            assert r.headers["X-MBX-USED-WEIGHT-1M"] == "10"
            assert err(r) == (
                429,
                -1003,
                "Too many requests; current limit of IP(127.0.0.1) request weight is 10 request weight "
                "per 1 MINUTE. Please use WebSocket Streams for live updates to avoid polling the API.",
            )
        r = get(sim, "/api/v3/ping")
        assert r.status_code == 418 and r.headers["Retry-After"] == "2"
        _status, code, msg = err(r)
        assert code == -1003 and re.match(
            r"^Way too much request weight used; IP banned until \d{13}\. ", msg
        )
        time.sleep(1.6)
        # The ban is over, but the minute's weight is still spent: back to 429.
        assert get(sim, "/api/v3/ping").status_code == 429
        state = requests.get(sim.urls.rest + "/_sim/state", timeout=10).json()
        assert state["stats"]["rest_limited"] == 3 and state["stats"]["rest_banned"] == 1


def test_weight_window_resets(sim_config: SimConfig, server_config: ServerConfig) -> None:
    cfg = replace(server_config, weight_limit=3, weight_window_s=2.0)
    with run_sim(sim_config, cfg) as sim:
        info = get(sim, "/api/v3/exchangeInfo")  # weight 20 > 3: refused
        assert info.status_code == 429 and 1 <= int(info.headers["Retry-After"]) <= 2
        t_end = (time.time() // 2 + 1) * 2
        time.sleep(max(0.0, t_end - time.time()) + 0.05)
        r = get(sim, "/api/v3/ping")
        assert r.status_code == 200 and r.headers["X-MBX-USED-WEIGHT-2S"] == "1"
        assert r.headers["X-MBX-USED-WEIGHT-1M"] == "1"


# ---------------------------------------------------------------- Date header


def test_date_header_is_the_sim_clock_on_every_answer(
    sim_config: SimConfig, server_config: ServerConfig, fresh_minute: Callable[[], None]
) -> None:
    assert sim_config.start_ms is not None
    clock = ManualClock(sim_config.start_ms + 999, speed=50.0)  # 2024-06-03 00:00:30.999 UTC
    cfg = replace(server_config, weight_limit=24)  # 1 + 2 + 2 used before exchangeInfo's 20
    with run_sim(sim_config, cfg, clock) as sim:
        fresh_minute()
        answers = [
            get(sim, "/api/v3/time"),
            get(sim, "/api/v3/klines", symbol="BTCUSDT", interval="1m", limit=1),
            get(sim, "/api/v3/klines", symbol="NOPE", interval="1m"),  # 400
            get(sim, "/api/v3/nothing"),  # 404
            get(sim, "/api/v3/exchangeInfo"),  # weight 20 > what is left: 429
        ]
        assert [r.status_code for r in answers] == [200, 200, 400, 404, 429]
        for r in answers:
            # Whole seconds rounded down (a lower bound), in RFC 7231's IMF-fixdate form; exactly
            # one header (requests would join a second one into "a, b").
            assert r.headers["Date"] == "Mon, 03 Jun 2024 00:00:30 GMT", r.url
        sim.call(clock.advance, 25 * 3600 * 1000)
        r = get(sim, "/api/v3/ping")
        assert r.headers["Date"] == "Tue, 04 Jun 2024 01:00:30 GMT"
        with sync_connect(sim.urls.ws + "/ws") as ws:  # the websocket handshake too
            assert ws.response is not None
            assert ws.response.headers.get_all("Date") == ["Tue, 04 Jun 2024 01:00:30 GMT"]


def test_a_client_learns_a_sped_up_clock_from_the_date_header(
    sim_config: SimConfig, server_config: ServerConfig
) -> None:
    start = 1_577_836_800_000  # 2020-01-01 00:00 UTC, years behind the wall clock
    cfg = replace(sim_config, start_ms=start, speed=3600.0)  # one real second = one sim hour
    with run_sim(cfg, server_config) as sim:
        r = get(sim, "/api/v3/time")
        server_ms = r.json()["serverTime"]
        date_ms = int(parsedate_to_datetime(r.headers["Date"]).timestamp() * 1000)
        # Date is the request's arrival (floored to the second), the body is built a moment later:
        # at 3600x a few real ms on a loaded machine are tens of sim seconds.
        assert server_ms - 60_000 < date_ms <= server_ms
        assert date_ms < start + 24 * 3600 * 1000 < time.time() * 1000 - 365 * 86400 * 1000
        time.sleep(0.5)  # half an hour of sim time
        later = int(parsedate_to_datetime(get(sim, "/api/v3/ping").headers["Date"]).timestamp() * 1000)
        assert later - date_ms >= 1500 * 1000


# ---------------------------------------------------------------- real data


def test_replayed_real_trades_serve_the_real_klines(
    real_dir: Path, sim_config: SimConfig, server_config: ServerConfig
) -> None:
    """Replaying the real XRPETH trades, REST answers exactly the candles Binance served."""
    trades = real_dir / "XRPETH-trades-2019-10-11_13.csv"
    real_rows = [line.split(",") for line in (real_dir / "XRPETH-1m-2019-10-11_13.csv").read_text().split()]
    end = int(real_rows[-1][6]) + 1  # the clock stopped just after the last candle closed
    cfg = replace(sim_config, symbols=sim_config.symbols[:1], replay=trades, start_ms=None)
    with run_sim(cfg, server_config, ManualClock(end)) as sim:
        served: list[list[Any]] = []
        start = 0
        while True:  # page like a client: startTime = last open + 1
            page = get(
                sim, "/api/v3/klines", symbol="XRPETH", interval="1m", startTime=start, limit=1000
            ).json()
            if not page:
                break
            served += page
            start = page[-1][0] + 1
    assert len(served) == len(real_rows) == 2469
    for got, want in zip(served, real_rows, strict=True):
        assert [str(x) for x in got] == want
