"""The simulator's websocket streams over real sockets, checked against Binance's protocol."""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests
import websockets
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from binmon.sim.server import SimServer
from binmon.sim.wire import kline_row

MakeSim = Callable[..., SimServer]
DEC8 = re.compile(r"^-?\d+\.\d{8}$")


async def recv_json(ws: ClientConnection, timeout: float = 5.0) -> Any:
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def control(ws: ClientConnection, method: str, params: Any = None, req_id: int = 1) -> Any:
    """Send a control frame and return its reply, skipping data frames that arrive first."""
    frame: dict[str, Any] = {"method": method, "id": req_id}
    if params is not None:
        frame["params"] = params
    await ws.send(json.dumps(frame))
    while True:
        msg = await recv_json(ws)
        if isinstance(msg, dict) and msg.get("id") == req_id and ("result" in msg or "error" in msg):
            return msg


async def collect(ws: ClientConnection, seconds: float, until: Any = None) -> list[Any]:
    """Data frames received within ``seconds`` (stop early when ``until(frames)`` is true)."""
    out: list[Any] = []
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        try:
            out.append(json.loads(await asyncio.wait_for(ws.recv(), left)))
        except TimeoutError:
            break
        if until is not None and until(out):
            break
    return out


def shape(v: Any) -> Any:
    """A value's JSON shape: key order and types, with 8-place decimal strings told apart."""
    if isinstance(v, dict):
        return [(k, shape(x)) for k, x in v.items()]
    if isinstance(v, str):
        return "dec8" if DEC8.match(v) else "str"
    return type(v).__name__


# ---------------------------------------------------------------- control frames


async def test_subscribe_list_unsubscribe_raw(sim: SimServer) -> None:
    async with websockets.connect(sim.urls.ws + "/ws") as ws:
        assert await control(ws, "SUBSCRIBE", ["btcusdt@trade", "ethusdt@kline_1m"], 1) == {
            "result": None,
            "id": 1,
        }
        assert await control(ws, "LIST_SUBSCRIPTIONS", None, 2) == {
            "result": ["btcusdt@trade", "ethusdt@kline_1m"],
            "id": 2,
        }
        frames = await collect(ws, 3.0, lambda f: any(x.get("e") == "trade" for x in f))
        trade = next(f for f in frames if f.get("e") == "trade")
        assert "stream" not in trade and trade["s"] == "BTCUSDT"
        assert await control(ws, "UNSUBSCRIBE", ["btcusdt@trade"], 3) == {"result": None, "id": 3}
        # Nothing of the stream may follow its UNSUBSCRIBE reply.
        later = await collect(ws, 0.6)
        assert not [f for f in later if f.get("e") == "trade"]
        assert await control(ws, "LIST_SUBSCRIPTIONS", None, 4) == {"result": ["ethusdt@kline_1m"], "id": 4}


async def test_combined_url_and_combined_property(sim: SimServer) -> None:
    async with websockets.connect(sim.urls.ws + "/stream?streams=btcusdt@trade") as ws:
        first = await recv_json(ws)
        assert first["stream"] == "btcusdt@trade" and first["data"]["e"] == "trade"
        assert await control(ws, "GET_PROPERTY", ["combined"], 1) == {"result": True, "id": 1}
        assert await control(ws, "SET_PROPERTY", ["combined", False], 2) == {"result": None, "id": 2}
        nxt = await recv_json(ws)
        assert "stream" not in nxt and nxt["e"] == "trade"
        assert await control(ws, "LIST_SUBSCRIPTIONS", None, 3) == {"result": ["btcusdt@trade"], "id": 3}
    async with websockets.connect(sim.urls.ws + "/stream") as ws:
        assert await control(ws, "LIST_SUBSCRIPTIONS", None, 7) == {"result": [], "id": 7}
        assert await control(ws, "SUBSCRIBE", ["ethusdt@aggTrade"], 8) == {"result": None, "id": 8}
        frame = await recv_json(ws)
        assert frame["stream"] == "ethusdt@aggTrade" and frame["data"]["e"] == "aggTrade"
    async with websockets.connect(sim.urls.ws + "/ws") as ws:
        assert await control(ws, "GET_PROPERTY", ["combined"], 1) == {"result": False, "id": 1}


async def test_raw_path_with_several_streams(sim: SimServer) -> None:
    async with websockets.connect(sim.urls.ws + "/ws/btcusdt@trade/btcusdt@aggTrade") as ws:
        frames = await collect(ws, 5.0, lambda f: {x.get("e") for x in f} >= {"trade", "aggTrade"})
        assert {f["e"] for f in frames} == {"trade", "aggTrade"}
        assert all("stream" not in f for f in frames)


async def test_control_errors(sim: SimServer) -> None:
    async with websockets.connect(sim.urls.ws + "/ws") as ws:
        # Stay under 5 messages per second: the limit is part of the protocol.
        cases: list[tuple[str, dict[str, Any]]] = [
            ("{not json", {"error": {"code": 3}, "id": None}),
            (json.dumps({"method": "SUBSCRIBEX", "params": [], "id": 5}), {"error": {"code": 2}, "id": 5}),
            (
                json.dumps({"method": "SET_PROPERTY", "params": ["combined", "yes"], "id": 6}),
                {"error": {"code": 1}},
            ),
            (
                json.dumps({"method": "GET_PROPERTY", "params": ["compressed"], "id": 7}),
                {"error": {"code": 0}},
            ),
            (json.dumps({"method": "SUBSCRIBE", "params": "btcusdt@trade", "id": 8}), {"error": {"code": 2}}),
            (json.dumps({"method": "SUBSCRIBE", "params": [], "id": -1}), {"error": {"code": 2}, "id": None}),
            (json.dumps({"params": [], "id": 9}), {"error": {"code": 2}, "id": 9}),
        ]
        for i, (text, expected) in enumerate(cases):
            if i and i % 4 == 0:
                await asyncio.sleep(1.05)
            await ws.send(text)
            reply = await recv_json(ws)
            assert reply["error"]["code"] == expected["error"]["code"], (text, reply)
            assert isinstance(reply["error"]["msg"], str) and reply["error"]["msg"]
            if "id" in expected:
                assert reply["id"] == expected["id"]
        await asyncio.sleep(1.05)
        await ws.send("[1, 2")
        assert (await recv_json(ws))["error"]["msg"].startswith("Invalid JSON: ")


async def test_unknown_and_upper_case_streams_accepted_silently(sim: SimServer) -> None:
    async with websockets.connect(sim.urls.ws + "/ws") as ws:
        names = ["foousdt@trade", "BTCUSDT@trade", "btcusdt@depth@100ms", "btcusdt@kline_7m"]
        assert await control(ws, "SUBSCRIBE", names, 1) == {"result": None, "id": 1}
        assert await collect(ws, 1.0) == []
        assert (await control(ws, "LIST_SUBSCRIPTIONS", None, 2))["result"] == names


async def test_max_streams_per_connection(make_sim: MakeSim) -> None:
    async with make_sim(server={"max_streams": 3}) as sim:
        async with websockets.connect(sim.urls.ws + "/ws") as ws:
            ok = await control(ws, "SUBSCRIBE", ["btcusdt@trade", "ethusdt@trade"], 1)
            assert ok == {"result": None, "id": 1}
            err = await control(ws, "SUBSCRIBE", ["bnbusdt@trade", "solusdt@trade"], 2)
            assert err["error"]["code"] == 2 and "too many" in err["error"]["msg"].lower()
            assert (await control(ws, "LIST_SUBSCRIPTIONS", None, 3))["result"] == [
                "btcusdt@trade",
                "ethusdt@trade",
            ]
        # A URL naming more streams than allowed is refused at the handshake.
        with pytest.raises(websockets.InvalidStatus) as exc:
            async with websockets.connect(sim.urls.ws + "/stream?streams=a@trade/b@trade/c@trade/d@trade"):
                pass
        assert exc.value.response.status_code == 400


# ---------------------------------------------------------------- frame shapes


async def test_frame_shapes_match_the_real_capture(
    sim: SimServer, real_ws_frames: dict[str, list[Any]]
) -> None:
    streams = ["btcusdt@kline_1m", "btcusdt@aggTrade", "btcusdt@bookTicker", "dogebtc@kline_1s"]
    url = sim.urls.ws + "/stream?streams=" + "/".join(streams)
    async with websockets.connect(url) as ws:
        frames = await collect(ws, 8.0, lambda f: {x["stream"] for x in f} >= set(streams))
    by_stream: dict[str, Any] = {}
    for f in frames:
        by_stream.setdefault(f["stream"], f["data"])
    assert set(by_stream) == set(streams)
    pairs = {
        "btcusdt@kline_1m": "kline_1m",
        "btcusdt@aggTrade": "aggTrade",
        "btcusdt@bookTicker": "bookTicker",
        "dogebtc@kline_1s": "kline_1m",
    }
    for name, real_key in pairs.items():
        for real in real_ws_frames[real_key]:  # every captured frame of the type has this shape
            assert shape(by_stream[name]) == shape(real), name
    # The satoshi-priced pair keeps all 8 decimals (0.00000638-like prices, never rounded to 0).
    k = by_stream["dogebtc@kline_1s"]["k"]
    assert float(k["c"]) > 0 and k["c"].startswith("0.00000")


async def test_trade_and_mini_ticker_shapes(sim: SimServer) -> None:
    # Not in the capture: checked against Binance's documented payloads instead.
    url = sim.urls.ws + "/stream?streams=ethusdt@trade/!miniTicker@arr/ethusdt@miniTicker"
    async with websockets.connect(url) as ws:
        frames = await collect(ws, 4.0, lambda f: len({x["stream"] for x in f}) == 3)
    got = {f["stream"]: f["data"] for f in frames}
    assert shape(got["ethusdt@trade"]) == [
        ("e", "str"), ("E", "int"), ("s", "str"), ("t", "int"), ("p", "dec8"), ("q", "dec8"),
        ("T", "int"), ("m", "bool"), ("M", "bool"),
    ]  # fmt: skip
    mini = [("e", "str"), ("E", "int"), ("s", "str")] + [(k, "dec8") for k in "cohlvq"]
    assert shape(got["ethusdt@miniTicker"]) == mini
    arr = got["!miniTicker@arr"]
    assert isinstance(arr, list) and all(shape(t) == mini for t in arr)
    trading = {s.symbol for s in sim.market.symbols if s.status == "TRADING"}
    assert {t["s"] for t in arr} == trading  # the BREAK symbol has no 24 h activity to report
    assert all(t["e"] == "24hrMiniTicker" for t in arr)


async def test_book_ticker_brackets_the_last_trade(sim: SimServer) -> None:
    async with websockets.connect(sim.urls.ws + "/ws/solusdt@bookTicker/solusdt@trade") as ws:
        frames = await collect(ws, 3.0, lambda f: sum("u" in x for x in f) >= 3)
    books = [f for f in frames if "u" in f]
    assert len(books) >= 3
    assert [b["u"] for b in books] == sorted({b["u"] for b in books})  # increasing update ids
    for b in books:
        assert float(b["b"]) < float(b["a"]) and float(b["B"]) > 0 and float(b["A"]) > 0


# ---------------------------------------------------------------- data integrity


async def _trades_match_market(sim: SimServer, seconds: float) -> int:
    async with websockets.connect(sim.urls.ws + "/ws/btcusdt@trade") as ws:
        frames = await collect(ws, seconds)
    assert len(frames) > 20
    ids = [f["t"] for f in frames]
    assert all(b - a == 1 for a, b in itertools.pairwise(ids)), "trade ids not consecutive"
    first_t, last_t = frames[0]["T"], frames[-1]["T"]
    batch = sim.market.trades("BTCUSDT", first_t, last_t)
    served = [f for f in frames if f["T"] < last_t]
    assert [f["t"] for f in served] == batch.ids.tolist()
    assert [float(f["p"]) for f in served] == batch.prices.tolist()
    assert [float(f["q"]) for f in served] == batch.qtys.tolist()
    assert [f["m"] for f in served] == batch.buyer_is_maker.tolist()
    assert all(f["E"] >= f["T"] for f in frames)
    return len(frames)


async def test_trades_consecutive_and_equal_to_market_at_speed_1(sim: SimServer) -> None:
    await _trades_match_market(sim, 3.0)


async def test_trades_consecutive_at_speed_20(make_sim: MakeSim) -> None:
    async with make_sim(speed=20.0) as sim:
        assert await _trades_match_market(sim, 2.0) > 500


async def test_agg_trades_group_consecutive_trades(make_sim: MakeSim) -> None:
    async with make_sim(speed=20.0) as sim:
        async with websockets.connect(sim.urls.ws + "/ws/ethusdt@aggTrade") as ws:
            aggs = await collect(ws, 2.0)
        assert len(aggs) > 50
        assert all(b["a"] - a["a"] == 1 for a, b in itertools.pairwise(aggs))
        assert all(b["f"] == a["l"] + 1 for a, b in itertools.pairwise(aggs)), "trades missing"
        batch = sim.market.trades("ETHUSDT", aggs[0]["T"], aggs[-1]["T"] + 1)
        by_id = {int(i): k for k, i in enumerate(batch.ids.tolist())}
        for a in aggs:
            i, j = by_id[a["f"]], by_id[a["l"]]
            assert len({batch.prices[i : j + 1].tolist()[0], *batch.prices[i : j + 1].tolist()}) == 1
            assert len(set(batch.times[i : j + 1].tolist())) == 1 and a["T"] == int(batch.times[i])
            assert len(set(batch.buyer_is_maker[i : j + 1].tolist())) == 1
            assert float(a["q"]) == pytest.approx(float(batch.qtys[i : j + 1].sum()), abs=1e-9)
            if j + 1 < len(batch) and a is not aggs[-1]:  # the next trade really starts a new group
                nxt = (batch.prices[j + 1], batch.times[j + 1], batch.buyer_is_maker[j + 1])
                assert nxt != (batch.prices[j], batch.times[j], batch.buyer_is_maker[j])


async def _final_klines(sim: SimServer, stream: str, count: int, seconds: float) -> list[Any]:
    async with websockets.connect(sim.urls.ws + "/ws/" + stream) as ws:
        frames = await collect(ws, seconds, lambda f: sum(x["k"]["x"] for x in f) >= count)
    finals = [f for f in frames if f["k"]["x"]]
    assert len(finals) >= count, f"only {len(finals)} closed candles in {seconds}s"
    # Never an update for a candle older than the newest one seen (no faults are on).
    opens = [f["k"]["t"] for f in frames]
    assert opens == sorted(opens)
    for f in frames:
        if not f["k"]["x"]:
            assert f["k"]["t"] not in {g["k"]["t"] for g in finals if frames.index(g) < frames.index(f)}
    return finals


def _row_of_frame(k: dict[str, Any]) -> list[Any]:
    return [k["t"], k["o"], k["h"], k["l"], k["c"], k["v"], k["T"], k["q"], k["n"], k["V"], k["Q"], k["B"]]


async def test_closed_1s_candles_equal_history(sim: SimServer) -> None:
    finals = await _final_klines(sim, "btcusdt@kline_1s", 2, 6.0)
    for f in finals:
        k = f["k"]
        hist = sim.market.klines("BTCUSDT", "1s", k["t"], k["t"], 1)
        assert _row_of_frame(k) == kline_row(hist[0])
        assert k["f"] == hist[0].first_trade_id and k["L"] == hist[0].last_trade_id
        rest = await asyncio.to_thread(
            requests.get,
            sim.urls.rest + "/api/v3/klines",
            params={"symbol": "BTCUSDT", "interval": "1s", "startTime": k["t"], "limit": 1},
            timeout=10,
        )
        assert rest.json()[0] == _row_of_frame(k)


async def test_closed_1m_candles_equal_history_at_speed_30(make_sim: MakeSim) -> None:
    async with make_sim(speed=30.0) as sim:
        finals = await _final_klines(sim, "ethusdt@kline_1m", 2, 8.0)
        for f in finals:
            k = f["k"]
            hist = sim.market.klines("ETHUSDT", "1m", k["t"], k["t"], 1)
            assert _row_of_frame(k) == kline_row(hist[0])
            assert k["T"] == k["t"] + 59_999 and k["i"] == "1m"
        assert finals[1]["k"]["t"] - finals[0]["k"]["t"] == 60_000


async def test_forming_kline_pushed_every_2s_of_sim_time(make_sim: MakeSim) -> None:
    async with make_sim(speed=4.0) as sim:
        async with websockets.connect(sim.urls.ws + "/ws/btcusdt@kline_1h") as ws:
            frames = await collect(ws, 3.0)
        forming = [f for f in frames if not f["k"]["x"]]
        # 3 s real at 4x = 12 s sim: about 6 pushes (2 s sim apart), each with more trades.
        assert 3 <= len(forming) <= 8, len(forming)
        gaps = [b["E"] - a["E"] for a, b in itertools.pairwise(forming)]
        # Never sooner than 2 s of sim time; later only by pump latency (a tick is 20 ms real).
        assert all(2000 <= g <= 2600 for g in gaps), gaps
        assert [f["k"]["n"] for f in forming] == sorted(f["k"]["n"] for f in forming)


# ---------------------------------------------------------------- limits


async def test_more_than_5_messages_per_second_closes_the_connection(sim: SimServer) -> None:
    async with websockets.connect(sim.urls.ws + "/ws") as ws:
        for i in range(5):
            await ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": i}))
        for i in range(5):
            assert (await recv_json(ws))["id"] == i  # five in a second are fine
        await ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 99}))
        with pytest.raises(ConnectionClosed):
            while True:
                await recv_json(ws)
        assert ws.close_code == 1008


async def test_connection_lifetime_limit(make_sim: MakeSim) -> None:
    async with make_sim(server={"max_lifetime_s": 1.0}) as sim:
        t0 = time.monotonic()
        async with websockets.connect(sim.urls.ws + "/ws/btcusdt@trade") as ws:
            with pytest.raises(ConnectionClosed):
                while True:
                    await recv_json(ws, 5.0)
            assert ws.close_code == 1001
        assert 0.9 <= time.monotonic() - t0 < 3.0


async def test_keepalive_closes_a_client_that_never_answers_pings(make_sim: MakeSim) -> None:
    async with make_sim(server={"ping_interval": 0.3, "ping_timeout": 0.4}) as sim:
        # A well-behaved client (websockets answers pings) outlives several ping rounds (its
        # pongs count towards the 5 messages/s, as on Binance, so not faster than ~3/s).
        async with websockets.connect(sim.urls.ws + "/ws") as ws:
            await asyncio.sleep(1.2)
            assert await control(ws, "LIST_SUBSCRIPTIONS", None, 1) == {"result": [], "id": 1}
        # A raw client that never reads (so never answers) is disconnected.
        port = int(sim.urls.ws.rsplit(":", 1)[1])
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert head.startswith(b"HTTP/1.1 101")
        t0 = time.monotonic()
        got = b""
        while chunk := await asyncio.wait_for(reader.read(4096), 5):
            got += chunk
        waited = time.monotonic() - t0
        writer.close()
        await writer.wait_closed()
        assert got[:1] == b"\x89"  # it was pinged
        assert 0.5 <= waited < 3.0


# ---------------------------------------------------------------- throughput (reported)


async def test_throughput_one_client(capsys: pytest.CaptureFixture[str]) -> None:
    """Trade frames/s a ``binmon sim`` process pushes to one client (printed; sanity asserted).

    The sim runs in its own process, as in demo mode and the e2e tests, generating 20,000
    trades/s for one symbol; the client only counts frames and checks the trade ids.
    """
    proc = subprocess.Popen(
        [sys.executable, "-m", "binmon", "sim", "--symbols", "BTCUSDT", "--trade-rate", "20000",
         "--history-days", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        urls = json.loads(await asyncio.to_thread(proc.stdout.readline))
        async with websockets.connect(urls["ws"] + "/ws/btcusdt@trade", max_queue=None) as ws:
            await ws.recv()
            n, t0, last, gaps = 0, time.monotonic(), -1, 0
            while time.monotonic() - t0 < 3.0:
                msg = await ws.recv()
                tid = int(_TRADE_ID.search(msg).group(1))  # type: ignore[union-attr,arg-type]
                gaps += last >= 0 and tid != last + 1
                last, n = tid, n + 1
            rate = n / (time.monotonic() - t0)
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = await asyncio.to_thread(proc.communicate, timeout=15)
    with capsys.disabled():
        print(f"\n[sim throughput] binmon sim process -> one client: {rate:,.0f} trade frames/s")
    assert proc.returncode == 0 and "Traceback" not in err
    assert gaps == 0
    assert rate > 2000


_TRADE_ID = re.compile(r'"t":(\d+)')


async def test_replayed_real_trades_stream_the_real_closed_candles(make_sim: MakeSim, real_dir: Path) -> None:
    """At 600x over the real XRPETH trades, every x:true candle is the one Binance served."""
    rows = [line.split(",") for line in (real_dir / "XRPETH-1m-2019-10-11_13.csv").read_text().split()]
    real = {int(r[0]): r for r in rows}
    trades = real_dir / "XRPETH-trades-2019-10-11_13.csv"
    sim = make_sim(replay=trades, start_ms=None, speed=600.0)
    async with sim, websockets.connect(sim.urls.ws + "/ws/xrpeth@kline_1m") as ws:
        frames = await collect(ws, 10.0, lambda f: sum(x["k"]["x"] for x in f) >= 12)
    finals = [f["k"] for f in frames if f["k"]["x"]]
    assert len(finals) >= 12
    for k in finals:
        assert [str(x) for x in _row_of_frame(k)] == real[k["t"]]
    # No candle missing between the first and the last final pushed.
    opens = [k["t"] for k in finals]
    assert opens == [t for t in real if opens[0] <= t <= opens[-1]]
