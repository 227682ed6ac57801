"""A trades-CSV replay under the pausable clock: pause, resume and speed changes over real sockets."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from websockets.sync.client import ClientConnection, connect

from binmon.sim.config import SimConfig
from binmon.sim.server import ServerConfig
from binmon.sim.thread import SimThread, run_sim

TRADES = "XRPETH-trades-2019-10-11_13.csv"


@pytest.fixture
def sim(real_dir: Path) -> Iterator[SimThread]:
    cfg = SimConfig(replay=real_dir / TRADES, speed=200.0)
    with run_sim(cfg, ServerConfig(pump_interval_s=0.02, shutdown_grace_s=0.2)) as s:
        yield s


def file_ids(real_dir: Path) -> list[int]:
    return [int(line.split(",", 1)[0]) for line in (real_dir / TRADES).read_text().splitlines()]


def read_for(ws: ClientConnection, seconds: float) -> list[dict[str, object]]:
    """Every frame that arrives within ``seconds`` (decoded)."""
    out: list[dict[str, object]] = []
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        try:
            out.append(json.loads(ws.recv(timeout=left)))
        except TimeoutError:
            break
    return out


def trades(frames: list[dict[str, object]]) -> list[int]:
    return [int(f["t"]) for f in frames if f.get("e") == "trade"]  # type: ignore[call-overload]


def test_pause_stops_trades_resume_continues_speed_scales(sim: SimThread, real_dir: Path) -> None:
    with connect(sim.urls.ws + "/ws/xrpeth@trade/xrpeth@kline_1m", open_timeout=5) as ws:
        before = trades(read_for(ws, 1.5))
        assert before, "a 200x replay of this file trades several times a second"
        paused = sim.pause()
        assert paused["paused"] is True
        during = read_for(ws, 2.5)
        # Trades still queued when the clock stopped may arrive (a loaded machine delays them),
        # but none happened after the pause.
        tail = trades(during)
        assert all(int(f["T"]) <= paused["now_ms"] for f in during if f.get("e") == "trade")  # type: ignore[call-overload]
        # ...and the forming kline keeps coming, unchanged, every push period (watchdog food).
        klines = [f for f in during if f.get("e") == "kline"]
        assert len(klines) >= 1
        assert all(k["k"] == klines[-1]["k"] for k in klines[-2:])  # type: ignore[index]
        assert sim.clock_state()["now_ms"] == paused["now_ms"]
        assert sim.resume()["now_ms"] == paused["now_ms"]
        after = trades(read_for(ws, 1.5))
        assert after
    got = before + tail + after
    ids = file_ids(real_dir)
    i = ids.index(got[0])
    assert got == ids[i : i + len(got)], "resumed exactly where it stopped: no trade lost or repeated"


def test_speed_change_changes_the_rate(sim: SimThread) -> None:
    def advance(seconds: float) -> int:
        t0 = sim.clock_state()["now_ms"]
        time.sleep(seconds)
        return int(sim.clock_state()["now_ms"]) - int(t0)

    slow = advance(1.0)
    assert sim.set_speed(2000)["speed"] == 2000.0
    fast = advance(1.0)
    assert 5 < fast / slow < 15  # 10x, with scheduling noise
    # Over HTTP too: /_sim/clock?pause=1&speed=X, and a bad value is a 400.
    r = requests.get(sim.urls.rest + "/_sim/clock", params={"pause": "1", "speed": "50"}, timeout=5)
    assert r.status_code == 200 and r.json()["paused"] is True and r.json()["speed"] == 50.0
    frozen = r.json()["now_ms"]
    time.sleep(0.3)
    assert requests.get(sim.urls.rest + "/_sim/clock", timeout=5).json()["now_ms"] == frozen
    assert requests.get(sim.urls.rest + "/_sim/clock", params={"speed": "0"}, timeout=5).status_code == 400
    assert requests.get(sim.urls.rest + "/_sim/clock", params={"pause": "x"}, timeout=5).status_code == 400
    resumed = requests.get(sim.urls.rest + "/_sim/clock", params={"pause": "0"}, timeout=5).json()
    assert resumed["paused"] is False
    with connect(sim.urls.ws + "/ws/xrpeth@trade", open_timeout=5) as ws:
        assert trades(read_for(ws, 2.0)), "trading again after the resume"
