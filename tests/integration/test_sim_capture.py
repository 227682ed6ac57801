"""Capture replay (``binmon sim --replay CAPTURE``) over real sockets: verbatim frames, pace, REST."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests
import websockets
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosedError
from websockets.sync.client import connect as sync_connect

from binmon.history.record import CaptureWriter, read_capture
from binmon.sim.clock import ManualClock
from binmon.sim.config import SimConfig
from binmon.sim.server import ServerConfig, SimServer

T0 = 1_717_372_800_000  # 2024-06-03 00:00 UTC
BINMON = [sys.executable, "-m", "binmon"]


def capture_sim(path: Path, server: ServerConfig, clock: Any = None, speed: float = 1.0) -> SimServer:
    return SimServer(SimConfig(replay=path, speed=speed), server, clock)


async def rest(sim: SimServer, path: str, **params: Any) -> requests.Response:
    return await asyncio.to_thread(requests.get, sim.urls.rest + path, params=params, timeout=10)


async def recv_n(ws: ClientConnection, n: int, timeout: float = 5.0) -> list[str | bytes]:
    out: list[str | bytes] = []
    async with asyncio.timeout(timeout):
        while len(out) < n:
            out.append(await ws.recv())
    return out


async def nothing_more(ws: ClientConnection, seconds: float = 0.3) -> bool:
    try:
        await asyncio.wait_for(ws.recv(), seconds)
    except TimeoutError:
        return True
    return False


async def subscribe(ws: ClientConnection, streams: list[str], req_id: int = 1) -> None:
    await ws.send(json.dumps({"method": "SUBSCRIBE", "params": streams, "id": req_id}))
    assert json.loads(await asyncio.wait_for(ws.recv(), 5)) == {"result": None, "id": req_id}


def combined(stream: str, data: dict[str, Any]) -> str:
    return json.dumps({"stream": stream, "data": data}, separators=(",", ":"))


def kline(close: str, n: int, closed: bool) -> dict[str, Any]:
    return {"e": "kline", "E": T0 + n, "s": "BTCUSDT", "k": {
        "t": T0, "T": T0 + 59_999, "s": "BTCUSDT", "i": "1m", "f": 1, "L": n, "o": "1.00000000",
        "c": close, "h": "3.00000000", "l": "0.50000000", "v": "10.00000000", "n": n, "x": closed,
        "q": "12.00000000", "V": "4.00000000", "Q": "5.00000000", "B": "0"}}  # fmt: skip


def row(k: dict[str, Any]) -> list[Any]:
    return [k["t"], k["o"], k["h"], k["l"], k["c"], k["v"], k["T"], k["q"], k["n"], k["V"], k["Q"], k["B"]]


# ---------------------------------------------------------------- a hand-made capture


K1 = combined("btcusdt@kline_1m", kline("2.00000000", 3, False))
TR1 = combined("btcusdt@trade", {"e": "trade", "E": T0 + 200, "s": "BTCUSDT", "t": 1, "p": "2.0"})
TORN = '{"stream":"btcusdt@trade","data":{"e":"tra'  # cut short: still names its stream
JUNK = "not json at all, \u00e9"  # names no stream
SPACED = '{ "stream" : "btcusdt@trade", "data" : {"e":"trade","t":2} }'  # an unusual wrapper
BOOK = combined("ethusdt@bookTicker", {"u": 7, "s": "ETHUSDT", "b": "3.01000000", "B": "1.00000000",
                                       "a": "3.02000000", "A": "2.00000000"})  # fmt: skip
K2 = combined("btcusdt@kline_1m", kline("2.50000000", 4, True))
TR3 = combined("btcusdt@trade", {"e": "trade", "E": T0 + 61_000, "s": "BTCUSDT", "t": 3, "p": "2.5"})


def data_of(frame: str) -> str:
    """The ``data`` text of a compact combined frame, sliced (what a raw connection must get)."""
    head = frame.index(',"data":') + len(',"data":')
    return frame[head:-1]


@pytest.fixture
def small_capture(tmp_path: Path) -> Path:
    path = tmp_path / "small.capture"
    streams = ["btcusdt@kline_1m", "btcusdt@trade", "ethusdt@bookTicker"]
    with CaptureWriter(path, "ws://example/stream", streams) as w:
        for t, frame in [(100, K1), (200, TR1), (300, TORN), (400, JUNK), (500, SPACED), (600, BOOK),
                         (60_100, K2)]:  # fmt: skip
            w.frame(T0 + t, frame)
        w.gap(T0 + 60_200, "connection reset")
        w.frame(T0 + 61_000, TR3)
    return path


async def test_frames_go_out_verbatim_wrapped_or_not_and_garbage_as_recorded(
    small_capture: Path, server_config: ServerConfig
) -> None:
    clock = ManualClock(T0)  # before the first frame: nothing is due until the test says so
    sim = capture_sim(small_capture, server_config, clock)
    async with (
        sim,
        websockets.connect(sim.urls.ws + "/stream?streams=btcusdt@kline_1m/btcusdt@trade") as comb,
        websockets.connect(sim.urls.ws + "/ws/btcusdt@trade") as raw,
        websockets.connect(sim.urls.ws + "/ws") as book,
        websockets.connect(sim.urls.ws + "/ws/solusdt@trade") as other,
    ):
        assert sim.capture is not None
        await subscribe(book, ["ethusdt@bookTicker"])
        clock.set(T0 + 600)
        assert await recv_n(comb, 5) == [K1, TR1, TORN, JUNK, SPACED]
        assert await recv_n(raw, 4) == [data_of(TR1), TORN, JUNK, '{"e":"trade","t":2}']
        assert await recv_n(book, 2) == [JUNK, data_of(BOOK)]  # it follows a recorded stream
        assert await nothing_more(other)  # it does not: not even the garbage
        for ws in (comb, raw, book):
            assert await nothing_more(ws, 0.1)

        # REST: the capture's symbols, the candle as last pushed, the sim clock's Date.
        info = (await rest(sim, "/api/v3/exchangeInfo")).json()
        assert [s["symbol"] for s in info["symbols"]] == ["BTCUSDT", "ETHUSDT"]
        r = await rest(sim, "/api/v3/klines", symbol="BTCUSDT", interval="1m")
        assert r.json() == [row(json.loads(K1)["data"]["k"])]
        assert r.headers["Date"] == "Mon, 03 Jun 2024 00:00:00 GMT"
        assert (await rest(sim, "/api/v3/klines", symbol="BTCUSDT", interval="5m")).json() == []
        assert (await rest(sim, "/api/v3/klines", symbol="SOLUSDT", interval="1m")).status_code == 400
        ticker = (await rest(sim, "/api/v3/ticker/24hr", symbol="ETHUSDT")).json()
        assert (ticker["bidPrice"], ticker["askQty"], ticker["count"]) == ("3.01000000", "2.00000000", 0)

        clock.set(T0 + 60_100)
        assert await recv_n(comb, 1) == [K2]
        r = await rest(sim, "/api/v3/klines", symbol="BTCUSDT", interval="1m")
        assert r.json() == [row(json.loads(K2)["data"]["k"])]  # the final push replaced the forming one

        # The recorder's connection dropped here: so do those following recorded streams.
        clock.set(T0 + 60_200)
        for ws in (comb, raw, book):
            with pytest.raises(ConnectionClosedError):
                await recv_n(ws, 1)
            assert ws.close_code == 1006
        assert await nothing_more(other, 0.1)  # still open: it followed nothing recorded
        async with websockets.connect(sim.urls.ws + "/ws/btcusdt@trade") as again:
            clock.set(T0 + 61_000)
            assert await recv_n(again, 1) == [data_of(TR3)]
        state = (await rest(sim, "/_sim/state")).json()["capture"]
        assert state["finished"] is True and state["next_ms"] is None
        assert (state["frames_replayed"], state["frames_unparsed"], state["gaps_replayed"]) == (8, 2, 1)


async def test_frames_are_paced_by_their_receive_times_scaled_by_speed(
    tmp_path: Path, server_config: ServerConfig
) -> None:
    path = tmp_path / "paced.jsonl"
    offsets = [2000, 3000, 3500, 5500, 6000]  # sim ms after the first frame
    with CaptureWriter(path, "ws://example/stream", ["btcusdt@trade"]) as w:
        w.frame(T0, combined("ethusdt@trade", {"e": "trade"}))  # the clock starts here
        for i, dt in enumerate(offsets):
            w.frame(T0 + dt, combined("btcusdt@trade", {"e": "trade", "t": i}))
    sim = capture_sim(path, server_config, speed=4.0)  # SimClock from the first frame's time
    t_start = time.monotonic()  # (the clock started a moment earlier, in the constructor)
    async with sim, websockets.connect(sim.urls.ws + "/ws/btcusdt@trade") as ws:
        got: list[tuple[float, int]] = []
        for _ in offsets:
            msg = await asyncio.wait_for(ws.recv(), 5)
            got.append((time.monotonic() - t_start, json.loads(msg)["t"]))
    assert [t for _, t in got] == list(range(len(offsets)))
    for (arrived, _), dt in zip(got, offsets, strict=True):
        due = dt / 1000 / 4.0
        # Never early (the clock started before t_start); late only by scheduling latency.
        assert due - 0.005 <= arrived <= due + 0.15, (arrived, due)


# ---------------------------------------------------------------- the real cryptofeed capture


def convert_cryptofeed(src: Path, dst: Path) -> list[tuple[int, str]]:
    """Write cryptofeed's ``BINANCE.ws.1.0`` (URL line, then ``<unix_ts>: <frame>``) as a capture."""
    lines = src.read_text().splitlines()
    url = lines[0].split(" <-> ")[0]
    records = []
    for line in lines[1:]:
        ts, sep, frame = line.partition(": ")
        if sep:
            records.append((int(Decimal(ts) * 1000), frame))
    with CaptureWriter(dst, url, url.split("streams=", 1)[1].split("/")) as w:
        for t, frame in records:
            w.frame(t, frame)
    return records


@pytest.fixture
def real_capture(real_dir: Path, tmp_path: Path) -> tuple[Path, list[tuple[int, str]]]:
    dst = tmp_path / "BINANCE.ws.capture"
    return dst, convert_cryptofeed(real_dir / "cryptofeed" / "BINANCE.ws.1.0", dst)


def recorded(records: list[tuple[int, str]], stream: str) -> list[str]:
    return [f for _, f in records if json.loads(f)["stream"] == stream]


async def test_real_capture_subscribers_get_exactly_the_recorded_frames_in_order(
    real_capture: tuple[Path, list[tuple[int, str]]], server_config: ServerConfig
) -> None:
    path, records = real_capture
    header, recs = read_capture(path)
    assert sum(1 for _ in recs) == len(records) == 265 and len(header["streams"]) == 16
    clock = ManualClock(records[0][0] - 1)
    sim = capture_sim(path, server_config, clock)
    streams = ["lrcbtc@kline_1m", "nknusdt@kline_1m", "nknusdt@bookTicker", "nknusdt@depth@100ms"]
    async with (
        sim,
        websockets.connect(sim.urls.ws + "/ws") as raw,  # subscribes by control frame
        websockets.connect(sim.urls.ws + "/stream?streams=" + "/".join(streams)) as comb,
        websockets.connect(sim.urls.ws + "/ws/lrcbtc@kline_1m") as kl,
    ):
        await subscribe(raw, ["lrcbtc@kline_1m"])
        clock.set(records[-1][0])
        want = [f for _, f in records if json.loads(f)["stream"] in streams]
        assert len(want) == 1 + 1 + 74 + 150
        assert await recv_n(comb, len(want)) == want  # byte for byte, in recorded order
        lrc = recorded(records, "lrcbtc@kline_1m")
        assert await recv_n(raw, 1) == await recv_n(kl, 1) == [data_of(f) for f in lrc]
        assert json.loads(data_of(lrc[0]))["k"]["s"] == "LRCBTC"
        for ws in (raw, comb, kl):
            assert await nothing_more(ws, 0.2)
        # REST answers the recorded candle and lists the 4 symbols with ticks read off the prices.
        r = await rest(sim, "/api/v3/klines", symbol="LRCBTC", interval="1m")
        assert r.json() == [row(json.loads(lrc[0])["data"]["k"])]
        info = (await rest(sim, "/api/v3/exchangeInfo")).json()
        ticks = {s["symbol"]: s["filters"][0]["tickSize"] for s in info["symbols"]}
        assert ticks == {"NKNUSDT": "0.00010000", "BLZETH": "0.00000001", "LRCBTC": "0.00000001",
                         "RUNEEUR": "0.00100000"}  # fmt: skip
        server_time = (await rest(sim, "/api/v3/time")).json()["serverTime"]
        assert server_time == records[-1][0] == 1633998542077


async def test_real_capture_plays_at_speed_from_its_first_frame(
    real_capture: tuple[Path, list[tuple[int, str]]], server_config: ServerConfig
) -> None:
    path, records = real_capture
    sim = capture_sim(path, server_config, speed=20.0)
    async with sim, websockets.connect(sim.urls.ws + "/ws/lrcbtc@kline_1m") as ws:
        assert sim.clock.start_ms == records[0][0]
        frame = await asyncio.wait_for(ws.recv(), 5)
        t_kline = next(t for t, f in records if '"lrcbtc@kline_1m"' in f)
        assert sim.clock.now_ms() >= t_kline  # not sent before its time
        assert frame == data_of(recorded(records, "lrcbtc@kline_1m")[0])


# ---------------------------------------------------------------- the command line


def test_cli_replays_a_capture(real_capture: tuple[Path, list[tuple[int, str]]]) -> None:
    path, records = real_capture
    p = subprocess.Popen(
        [*BINMON, "sim", "--replay", str(path), "--speed", "5"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert p.stdout is not None
        urls = json.loads(p.stdout.readline())
        books = recorded(records, "nknusdt@bookTicker")
        with sync_connect(urls["ws"] + "/stream?streams=nknusdt@bookTicker") as ws:
            got = [ws.recv(timeout=5) for _ in range(5)]
        # Joined a moment after the start: the frames are a run of the recorded ones, in order.
        i = books.index(got[0])
        assert got == books[i : i + 5]
        info = requests.get(urls["rest"] + "/api/v3/exchangeInfo", timeout=10).json()
        assert len(info["symbols"]) == 4
    finally:
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=15)
    assert p.returncode == 0 and "Traceback" not in err and out == ""


def test_cli_refuses_replay_symbol_with_a_capture(small_capture: Path) -> None:
    r = subprocess.run(
        [*BINMON, "sim", "--replay", str(small_capture), "--replay-symbol", "BTCUSDT"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.strip().splitlines() == [
        "binmon sim: error: --replay-symbol applies to a trades CSV, not to a capture"
    ]


def test_a_trades_csv_with_a_json_name_is_still_a_trades_csv(real_dir: Path, tmp_path: Path) -> None:
    csv = tmp_path / "XRPETH-trades.jsonl"
    csv.write_bytes((real_dir / "XRPETH-trades-2019-10-11_13.csv").read_bytes())
    sim = SimServer(SimConfig(replay=csv), ServerConfig())
    assert sim.capture is None and sim.market.symbol("XRPETH") is not None
