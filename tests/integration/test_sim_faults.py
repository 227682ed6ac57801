"""Every fault switch of the simulator does what it says: Python API, HTTP admin and ``--fault``."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import pytest
import requests
import websockets
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, ConnectionClosedError
from websockets.sync.client import connect as sync_connect

from binmon.sim.config import SimConfig
from binmon.sim.server import SimServer
from binmon.sim.thread import SimThread

MakeSim = Callable[..., SimServer]
BINMON = [sys.executable, "-m", "binmon"]


async def admin(sim: SimServer, path: str, **params: Any) -> requests.Response:
    return await asyncio.to_thread(requests.get, sim.urls.rest + path, params=params, timeout=10)


async def frames_for(ws: ClientConnection, seconds: float) -> list[str | bytes]:
    out: list[str | bytes] = []
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        try:
            out.append(await asyncio.wait_for(ws.recv(), left))
        except TimeoutError:
            break
    return out


async def wait_closed(ws: ClientConnection, timeout: float = 5.0) -> None:
    with pytest.raises(ConnectionClosed):
        async with asyncio.timeout(timeout):
            while True:
                await ws.recv()


# ---------------------------------------------------------------- connection faults


@pytest.mark.parametrize("via", ["api", "http"])
async def test_drop_all_aborts_without_close_frame(sim: SimServer, via: str) -> None:
    async with (
        websockets.connect(sim.urls.ws + "/ws/btcusdt@trade") as ws1,
        websockets.connect(sim.urls.ws + "/stream?streams=ethusdt@trade") as ws2,
    ):
        await ws1.recv()
        await ws2.recv()
        if via == "api":
            sim.faults.drop_all()
        else:
            r = await admin(sim, "/_sim/fault", name="drop_all")
            assert r.status_code == 200 and r.json()["ok"] is True
        for ws in (ws1, ws2):
            with pytest.raises(ConnectionClosedError):
                async with asyncio.timeout(5):
                    while True:
                        await ws.recv()
            assert ws.close_code == 1006  # no close frame: like a network drop
    assert sim.stats.dropped_by_fault == 2
    async with websockets.connect(sim.urls.ws + "/ws/btcusdt@trade") as ws:  # reconnecting works
        assert json.loads(await ws.recv())["e"] == "trade"


def test_drop_all_from_another_thread(sim_thread: SimThread) -> None:
    with sync_connect(sim_thread.urls.ws + "/ws/btcusdt@trade") as ws:
        ws.recv(timeout=5)
        sim_thread.faults.drop_all()
        with pytest.raises(ConnectionClosedError):
            while True:
                ws.recv(timeout=5)


async def test_silent_keeps_the_connection_but_sends_no_data(sim: SimServer) -> None:
    async with websockets.connect(sim.urls.ws + "/ws/btcusdt@trade") as ws:
        before = json.loads(await ws.recv())
        sim.faults.set_silent(True)
        await frames_for(ws, 0.1)  # what was already on the wire
        assert await frames_for(ws, 1.2) == []
        pong = await ws.ping()
        await asyncio.wait_for(pong, 2)  # still answering pings
        await ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 1}))
        assert json.loads(await ws.recv()) == {"result": ["btcusdt@trade"], "id": 1}
        sim.faults.set_silent(False)
        after = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert after["t"] > before["t"] + 1  # the trades of the silent period are lost
    assert sim.stats.frames_suppressed > 0


async def test_refuse_connections_for_a_while(sim: SimServer) -> None:
    sim.faults.refuse_connections(1.0)
    with pytest.raises(websockets.InvalidStatus) as exc:
        async with websockets.connect(sim.urls.ws + "/ws"):
            pass
    assert exc.value.response.status_code == 503
    r = await admin(sim, "/api/v3/ping")  # REST is not affected
    assert r.status_code == 200
    await asyncio.sleep(1.1)
    async with websockets.connect(sim.urls.ws + "/ws/btcusdt@trade") as ws:
        assert json.loads(await ws.recv())["e"] == "trade"
    assert sim.stats.connections_refused == 1
    r = await admin(sim, "/_sim/fault", name="refuse", value="5")
    assert r.json()["faults"]["refuse_remaining_s"] > 4
    with pytest.raises(websockets.InvalidStatus):
        async with websockets.connect(sim.urls.ws + "/ws"):
            pass


async def test_server_shutdown_announces_then_closes(sim: SimServer) -> None:
    async with (
        websockets.connect(sim.urls.ws + "/ws/btcusdt@trade") as raw,
        websockets.connect(sim.urls.ws + "/stream?streams=btcusdt@trade") as comb,
    ):
        await raw.recv()
        await comb.recv()
        t0 = time.monotonic()
        sim.faults.server_shutdown()
        for ws in (raw, comb):
            msgs = [json.loads(m) for m in await frames_for(ws, 0.1)]
            notice = [m for m in msgs if m.get("e") == "serverShutdown"]
            assert len(notice) == 1 and isinstance(notice[0]["E"], int) and set(notice[0]) == {"e", "E"}
        # A new connection is still welcome during the grace period (clients reconnect at once).
        async with websockets.connect(sim.urls.ws + "/ws/btcusdt@trade") as fresh:
            await fresh.recv()
        for ws in (raw, comb):
            await wait_closed(ws)
            assert ws.close_code == 1001
        assert 0.25 <= time.monotonic() - t0 < 3.0  # after the 0.3 s grace of the test settings


# ---------------------------------------------------------------- data faults


def classify(msg: str | bytes) -> str:
    if isinstance(msg, bytes):
        return "binary"
    try:
        obj = json.loads(msg)
    except ValueError:
        return "truncated"
    data = obj["data"]
    if data["e"] not in ("trade", "kline"):
        return "unknown"
    if not isinstance(data["E"], int):
        return "wrong_types"
    return "ok"


async def test_malformed_every_third_frame(make_sim: MakeSim) -> None:
    async with make_sim(speed=10.0) as sim:
        sim.faults.set_malformed(3)
        async with websockets.connect(sim.urls.ws + "/stream?streams=btcusdt@trade/btcusdt@kline_1s") as ws:
            msgs = [await asyncio.wait_for(ws.recv(), 5) for _ in range(24)]
        kinds = [classify(m) for m in msgs]
        assert [k != "ok" for k in kinds] == [i % 3 == 2 for i in range(24)], kinds
        assert {"binary", "truncated", "unknown", "wrong_types"} <= set(kinds)
        sim.faults.set_malformed(0)
        async with websockets.connect(sim.urls.ws + "/stream?streams=btcusdt@trade") as ws:
            assert [classify(await ws.recv()) for _ in range(30)] == ["ok"] * 30


async def _kline_frames(sim: SimServer, seconds: float) -> list[dict[str, Any]]:
    async with websockets.connect(sim.urls.ws + "/ws/btcusdt@kline_1s") as ws:
        return [json.loads(m) for m in await frames_for(ws, seconds)]


async def test_duplicate_klines(sim: SimServer) -> None:
    r = await admin(sim, "/_sim/fault", name="duplicate_klines", value="1")
    assert r.json()["faults"]["duplicate_klines"] is True
    frames = await _kline_frames(sim, 2.5)
    assert len(frames) >= 4 and len(frames) % 2 == 0
    assert all(frames[i] == frames[i + 1] for i in range(0, len(frames), 2))
    assert any(f["k"]["x"] for f in frames)


async def test_reorder_klines_resends_an_older_state(sim: SimServer) -> None:
    sim.faults.set_reorder_klines(True)
    frames = await _kline_frames(sim, 3.0)

    def rank(f: dict[str, Any]) -> tuple[int, int, bool]:
        return (f["k"]["t"], f["k"]["n"], f["k"]["x"])

    stale = [b for a, b in itertools.pairwise(frames) if rank(b) < rank(a)]
    assert stale, "no older kline state re-sent"
    # The typical trap: a forming (x=false) state arriving after its candle's final x=true push.
    finals = {f["k"]["t"] for f in frames if f["k"]["x"]}
    assert any(not f["k"]["x"] and f["k"]["t"] in finals for f in stale)
    sim.faults.set_reorder_klines(False)
    clean = await _kline_frames(sim, 2.5)
    assert all(rank(b) >= rank(a) for a, b in itertools.pairwise(clean))


async def test_slow_consumer_is_dropped_others_keep_streaming(
    make_sim: MakeSim, sim_config: SimConfig
) -> None:
    one = sim_config.symbols[:1]
    async with make_sim(
        server={"max_send_buffer": 64 * 1024}, symbols=one, trade_rate=3000.0, speed=2.0
    ) as sim:
        port = int(sim.urls.ws.rsplit(":", 1)[1])
        slow = socket.socket()
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # fill up quickly
        slow.connect(("127.0.0.1", port))
        slow.sendall(
            b"GET /ws/btcusdt@trade HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        try:
            async with websockets.connect(sim.urls.ws + "/ws/btcusdt@trade", max_queue=None) as fast:
                got, last = 0, None
                async with asyncio.timeout(20):
                    while sim.stats.closed_slow == 0 or got < 2000:
                        f = json.loads(await fast.recv())
                        assert last is None or f["t"] == last + 1  # the fast client loses nothing
                        last, got = f["t"], got + 1
        finally:
            slow.close()
        assert sim.stats.closed_slow == 1 and sim.stats.connections_open <= 1


# ---------------------------------------------------------------- REST faults and admin


async def test_rest_errors_then_recovery(sim: SimServer) -> None:
    sim.faults.set_rest_errors(503, 2)
    for _ in range(2):
        r = await admin(sim, "/api/v3/time")
        assert r.status_code == 503
        assert r.json() == {"code": -1000, "msg": "An unknown error occurred while processing the request."}
    assert (await admin(sim, "/api/v3/time")).status_code == 200
    r = await admin(sim, "/_sim/fault", name="rest_errors", value="502:1")
    assert r.json()["faults"]["rest_errors"] == {"status": 502, "remaining": 1}
    assert (await admin(sim, "/api/v3/klines", symbol="BTCUSDT", interval="1m")).status_code == 502
    assert (await admin(sim, "/api/v3/klines", symbol="BTCUSDT", interval="1m")).status_code == 200
    assert sim.stats.rest_injected_errors == 3


async def test_rest_delay(sim: SimServer) -> None:
    sim.faults.set_rest_delay(0.5)
    t0 = time.monotonic()
    assert (await admin(sim, "/api/v3/ping")).status_code == 200
    assert time.monotonic() - t0 >= 0.5
    t0 = time.monotonic()
    assert (await admin(sim, "/_sim/state")).status_code == 200  # admin is never delayed
    assert time.monotonic() - t0 < 0.5
    await admin(sim, "/_sim/fault", name="rest_delay", value="0")
    t0 = time.monotonic()
    await admin(sim, "/api/v3/ping")
    assert time.monotonic() - t0 < 0.5


async def test_every_switch_over_http(sim: SimServer) -> None:
    for name, value in (
        ("silent", "1"),
        ("malformed", "4"),
        ("reorder_klines", "true"),
        ("rest_delay", "0.01"),
    ):
        r = await admin(sim, "/_sim/fault", name=name, value=value)
        assert r.status_code == 200 and r.json()["ok"] is True
    assert (sim.faults.silent, sim.faults.malformed_every) == (True, 4)
    assert (sim.faults.reorder_klines, sim.faults.rest_delay) == (True, 0.01)
    for name in ("silent", "reorder_klines"):
        await admin(sim, "/_sim/fault", name=name, value="0")
    await admin(sim, "/_sim/fault", name="malformed", value="0")
    assert not sim.faults.silent and not sim.faults.reorder_klines and sim.faults.malformed_every == 0
    async with websockets.connect(sim.urls.ws + "/ws/btcusdt@trade") as ws:
        await ws.recv()
        r = await admin(sim, "/_sim/fault", name="server_shutdown")
        assert r.status_code == 200
        msgs = [json.loads(m) for m in await frames_for(ws, 0.2)]
        assert [m["e"] for m in msgs if m.get("e") == "serverShutdown"] == ["serverShutdown"]
        await wait_closed(ws)
        assert ws.close_code == 1001


async def test_admin_state_and_bad_requests(sim: SimServer) -> None:
    async with websockets.connect(sim.urls.ws + "/stream?streams=btcusdt@trade") as ws:
        await ws.recv()
        state = (await admin(sim, "/_sim/state")).json()
    assert state["urls"] == {"ws": sim.urls.ws, "rest": sim.urls.rest}
    assert state["sessions"] == [
        {"peer": state["sessions"][0]["peer"], "combined": True, "streams": ["btcusdt@trade"]}
    ]
    assert state["stats"]["connections_total"] == 1 and state["stats"]["frames_sent"] >= 1
    assert set(state["faults"]) == {
        "silent", "malformed", "duplicate_klines", "reorder_klines", "rest_errors", "rest_delay",
        "refuse_remaining_s",
    }  # fmt: skip
    assert isinstance(state["clock"]["now_ms"], int)
    for params in (
        {"name": "explode"},
        {"name": "silent", "value": "maybe"},
        {"name": "malformed", "value": "x"},
    ):
        r = await admin(sim, "/_sim/fault", **params)
        assert r.status_code == 400 and r.json()["ok"] is False
    assert (await admin(sim, "/_sim/nothing")).status_code == 404


# ---------------------------------------------------------------- the command line


def _start_cli(*args: str) -> tuple[subprocess.Popen[str], dict[str, str]]:
    p = subprocess.Popen(
        [*BINMON, "sim", "--symbols", "BTCUSDT,ETHUSDT", "--history-days", "1", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert p.stdout is not None
    line = p.stdout.readline()
    if not line:
        p.kill()
        pytest.fail(f"binmon sim printed nothing: {p.communicate()[1]}")
    return p, json.loads(line)


def test_cli_prints_urls_applies_faults_and_stops_cleanly() -> None:
    p, urls = _start_cli("--fault", "rest_errors=503:1", "--fault", "malformed=0", "--weight-limit", "50")
    try:
        assert list(urls) == ["ws", "rest"] and urls["ws"].startswith("ws://127.0.0.1:")
        assert requests.get(urls["rest"] + "/api/v3/ping", timeout=10).status_code == 503
        info = requests.get(urls["rest"] + "/api/v3/exchangeInfo", timeout=10).json()
        assert [s["symbol"] for s in info["symbols"]] == ["BTCUSDT", "ETHUSDT"]
        assert info["rateLimits"][0]["limit"] == 50
        with sync_connect(urls["ws"] + "/ws/btcusdt@trade") as ws:
            assert json.loads(ws.recv(timeout=5))["e"] == "trade"
    finally:
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=15)
    assert p.returncode == 0 and "Traceback" not in err and out == ""


def test_cli_sigint_exits_0_without_traceback() -> None:
    p, _ = _start_cli()
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=15)
    assert p.returncode == 0 and "Traceback" not in err


@pytest.mark.parametrize(
    "args",
    [["--symbols", "NOPEUSDT"], ["--fault", "explode"], ["--speed", "0"], ["--replay", "/nonexistent.csv"],
     ["--fault", "malformed=x"], ["--port", "99999"]],
)  # fmt: skip
def test_cli_bad_arguments_exit_2_with_one_line(args: list[str]) -> None:
    r = subprocess.run([*BINMON, "sim", *args], capture_output=True, text=True, timeout=30)
    assert r.returncode == 2, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "error" in r.stderr and r.stdout == ""
