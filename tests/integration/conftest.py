"""Fixtures for tests that talk to the simulator over real loopback sockets.

``sim``
    A started :class:`~binmon.sim.server.SimServer` on the test's own event loop (use it from
    ``async def`` tests). Never call blocking I/O (``requests``) on that loop: the server would
    stall; use ``await asyncio.to_thread(requests.get, ...)`` or the ``sim_thread`` fixture.
``sim_thread``
    The same simulator running on its own thread and loop (:class:`~binmon.sim.thread.SimThread`):
    for synchronous tests and clients with their own loop. ``sim_thread.urls``,
    ``sim_thread.faults`` (thread-safe), ``sim_thread.call(fn, *args)`` to run ``fn`` (say a
    Market query) on the simulator's thread.
``sim_config`` / ``server_config``
    The settings both use: a fixed start time (2024-06-03 00:00:30 UTC), 2 days of history,
    40 trades/s per symbol, real-time speed, a 20 ms pump, short grace periods. Override either
    fixture in a test module to change them, or build ``SimServer(replace(FAST_SIM, ...))``.
``make_sim``
    A factory for one-off settings: ``async with make_sim(speed=20.0, server={"max_streams": 3},
    clock=None) as sim: ...``; keyword arguments replace fields of ``sim_config``, ``server``
    replaces fields of ``server_config``. It returns an unstarted SimServer.
``real_dir``, ``real_ws_frames``, ``real_exchange_info``
    The real captures in ``../shared/fixtures/real`` (``BINMON_FIXTURES`` overrides the path):
    stream frames grouped by stream type (``"kline_1m"``, ``"aggTrade"``, ``"bookTicker"``,
    ``"depth@100ms"``) as parsed ``data`` objects, and the real exchangeInfo body.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from binmon.sim.config import SimConfig
from binmon.sim.server import ServerConfig, SimServer
from binmon.sim.thread import SimThread, run_sim

#: 2024-06-03 00:00:30 UTC: a Monday, half a minute into the day (boundaries come soon).
START_MS = 1_717_372_830_000

FAST_SIM = SimConfig(seed=7, history_days=2.0, trade_rate=40.0, start_ms=START_MS)
FAST_SERVER = ServerConfig(
    pump_interval_s=0.02, shutdown_grace_s=0.3, close_timeout_s=2.0, open_timeout_s=10.0
)


@pytest.fixture
def sim_config() -> SimConfig:
    """Market settings for ``sim`` / ``sim_thread`` (override per module to change)."""
    return FAST_SIM


@pytest.fixture
def server_config() -> ServerConfig:
    """Server settings for ``sim`` / ``sim_thread`` (override per module to change)."""
    return FAST_SERVER


@pytest.fixture
async def sim(sim_config: SimConfig, server_config: ServerConfig) -> AsyncIterator[SimServer]:
    """A started simulator on the test's event loop; stopped (all sockets closed) afterwards."""
    async with SimServer(sim_config, server_config) as server:
        yield server


@pytest.fixture
def make_sim(sim_config: SimConfig, server_config: ServerConfig) -> Callable[..., SimServer]:
    """Build (not start) a SimServer from the test settings with some fields replaced."""

    def make(server: dict[str, Any] | None = None, clock: Any = None, **sim_fields: Any) -> SimServer:
        return SimServer(replace(sim_config, **sim_fields), replace(server_config, **(server or {})), clock)

    return make


@pytest.fixture
def sim_thread(sim_config: SimConfig, server_config: ServerConfig) -> Iterator[SimThread]:
    """A started simulator on its own thread and loop; stopped and joined afterwards."""
    with run_sim(sim_config, server_config) as t:
        yield t


@pytest.fixture(scope="session")
def real_ws_frames(real_dir: Path) -> dict[str, list[Any]]:
    """Real combined-stream payloads from ``BINANCE.ws.1.0``, grouped by stream type."""
    out: dict[str, list[Any]] = {}
    lines = (real_dir / "cryptofeed" / "BINANCE.ws.1.0").read_text().splitlines()
    for line in lines[1:]:  # the first line is the URL
        if ": " not in line:
            continue
        frame = json.loads(line.split(": ", 1)[1])
        out.setdefault(frame["stream"].split("@", 1)[1], []).append(frame["data"])
    return out


@pytest.fixture(scope="session")
def real_exchange_info(real_dir: Path) -> dict[str, Any]:
    """The real ``GET /api/v3/exchangeInfo`` body captured in ``BINANCE.0``."""
    for line in (real_dir / "cryptofeed" / "BINANCE.0").read_text().splitlines():
        if "/api/v3/exchangeInfo" in line.split(" -> ", 1)[0]:
            body: dict[str, Any] = json.loads(line.split(": ", 1)[1])
            return body
    pytest.fail("no exchangeInfo capture in BINANCE.0")


def _wait_for_fresh_minute(margin_s: float = 10.0) -> None:
    left = 60.0 - time.time() % 60.0
    if left < margin_s:
        time.sleep(left + 0.05)


@pytest.fixture
def fresh_minute() -> Callable[..., None]:
    """``fresh_minute(margin_s=10)`` sleeps into the next wall-clock minute when fewer
    than ``margin_s`` seconds are left in this one.

    Binance (and the simulator) count REST weight per wall-clock minute: a test that
    checks exact weights must not straddle a boundary, or the count resets mid-test.
    """
    return _wait_for_fresh_minute
