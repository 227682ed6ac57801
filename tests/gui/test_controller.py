"""Controller + market service + adapter + MainWindow against the simulator (chart stand-in).

The simulator runs on its own thread; the app's side runs on one qasync loop that is driven by
Qt's event loop while ``qtbot.waitUntil`` waits (the pattern the platform notes require).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import qasync
import requests
from PySide6.QtWidgets import QLabel
from pytestqt.qtbot import QtBot

from binmon.binance.rest import RestClient
from binmon.config import AppConfig, load_config, save_config
from binmon.core.candles import Append, ChartOp, Reload, Replace
from binmon.core.models import Kline
from binmon.services.market import MarketService
from binmon.sim.config import SimConfig
from binmon.sim.server import ServerConfig
from binmon.sim.thread import SimThread, run_sim
from binmon.ui.chart.api import ChartSymbol, VisibleRange
from binmon.ui.controller import Controller
from binmon.ui.main_window import MainWindow
from binmon.ui.qt_adapter import QtMarketAdapter

START_MS = 1_717_372_830_000  # 2024-06-03 00:00:30 UTC


class StandInChart:
    """A ChartView without Qt that keeps bars like the page and checks what it is given.

    It raises (failing the flush, which the adapter logs: the test then sees an ERROR log and
    missing bars) on an update older than its last bar or on a bar of another symbol.
    """

    def __init__(self) -> None:
        self.symbol: ChartSymbol | None = None
        self.bars: list[Kline] = []
        self.calls: list[tuple[str, Any]] = []
        self.message: str | None = None
        self.theme = ""
        self.timezone = ""
        self.range_cb: Callable[[VisibleRange], None] | None = None
        self.foreign: list[Kline] = []

    def set_symbol(self, sym: ChartSymbol) -> None:
        self.calls.append(("set_symbol", sym))
        self.symbol, self.bars = sym, []

    def set_bars(self, bars: Sequence[Kline]) -> None:
        self.calls.append(("set_bars", len(bars)))
        self._check(bars)
        self.bars = list(bars)

    def prepend_bars(self, bars: Sequence[Kline]) -> None:
        self.calls.append(("prepend_bars", len(bars)))
        self._check(bars)
        assert not self.bars or bars[-1].open_time < self.bars[0].open_time
        self.bars = [*bars, *self.bars]

    def apply(self, ops: Sequence[ChartOp]) -> None:
        self.calls.append(("apply", len(ops)))
        for op in ops:
            if isinstance(op, Reload):
                self._check(op.bars)
                self.bars = list(op.bars)
            elif isinstance(op, Append | Replace):
                self._check([op.bar])
                if self.bars and op.bar.open_time < self.bars[-1].open_time:
                    raise AssertionError("update older than the last bar")
                if self.bars and op.bar.open_time == self.bars[-1].open_time:
                    self.bars[-1] = op.bar
                else:
                    self.bars.append(op.bar)

    def set_message(self, text: str | None) -> None:
        self.calls.append(("set_message", text))
        self.message = text

    def set_theme(self, theme: str) -> None:
        self.theme = theme

    def set_timezone(self, tz: str) -> None:
        self.timezone = tz

    def on_crosshair(self, callback: Any) -> None:
        pass

    def on_visible_range(self, callback: Callable[[VisibleRange], None]) -> None:
        self.range_cb = callback

    def _check(self, bars: Sequence[Kline]) -> None:
        sym = self.symbol
        for b in bars:
            if sym is None or (b.symbol, b.interval) != (sym.symbol, sym.interval):
                self.foreign.append(b)


@pytest.fixture(scope="module")
def sim() -> Iterator[SimThread]:
    """A simulator at 60x: a 1m candle closes every real second."""
    cfg = SimConfig(seed=7, history_days=3.0, trade_rate=20.0, start_ms=START_MS, speed=60.0)
    server = ServerConfig(pump_interval_s=0.02, shutdown_grace_s=0.3, close_timeout_s=2.0)
    with run_sim(cfg, server) as t:
        yield t


class Rig:
    """Everything the app builds, minus WebEngine."""

    def __init__(self, qtbot: QtBot, loop: qasync.QEventLoop, rest_url: str, ws_url: str, tmp: Path) -> None:
        self.qtbot, self.loop = qtbot, loop
        self.chart = StandInChart()
        self.window = MainWindow(QLabel("chart"))
        qtbot.addWidget(self.window)
        self.adapter = QtMarketAdapter(
            self.chart, self.window.trades, self.window.watchlist, self.window.status
        )
        self.rest = RestClient(rest_url, timeout=3.0, max_retries=0)
        self.service = MarketService(
            self.rest, ws_url, self.adapter, backoff_factory=lambda: iter([0.2] * 1000)
        )
        self.config_path = tmp / "config.json"
        self.controller = Controller(
            self.service,
            self.window,
            self.chart,
            self.adapter,
            AppConfig(),
            lambda c: save_config(self.config_path, c),
        )
        self.controller.apply_config()

    def run(self, coro: Any, timeout: float = 10.0) -> Any:
        task = self.loop.create_task(coro)
        self.qtbot.waitUntil(task.done, timeout=int(timeout * 1000))
        return task.result()

    def close(self) -> None:
        self.adapter.stop()  # no flush into panels pytest-qt may delete
        # The final CLOSED status is of no interest to a window that pytest-qt may already
        # have torn down.
        self.adapter.statusChanged.disconnect()
        self.run(self.service.close())
        self.rest.close()


@pytest.fixture
def rig(qtbot: QtBot, qloop: qasync.QEventLoop, sim: SimThread, tmp_path: Path) -> Iterator[Rig]:
    r = Rig(qtbot, qloop, sim.urls.rest, sim.urls.ws, tmp_path)
    yield r
    r.close()


def server_streams(sim: SimThread) -> set[str]:
    state = requests.get(f"{sim.urls.rest}/_sim/state", timeout=5).json()
    return {s for sess in state["sessions"] for s in sess["streams"]}


def live_applies(chart: StandInChart) -> int:
    """``apply`` calls since the last ``set_bars``."""
    n = 0
    for name, _ in reversed(chart.calls):
        if name == "set_bars":
            return n
        n += name == "apply"
    return 0


def test_history_then_live_then_switch(rig: Rig, sim: SimThread) -> None:
    chart, service, qtbot = rig.chart, rig.service, rig.qtbot
    rig.run(service.start("BTCUSDT", "1m"))
    qtbot.waitUntil(lambda: live_applies(chart) >= 3, timeout=15000)
    names = [c[0] for c in chart.calls]
    assert names.index("set_symbol") < names.index("set_bars") < names.index("apply")
    assert chart.symbol == ChartSymbol("BTCUSDT", "1m", "0.01000000", "BTC", "USDT")
    assert len(chart.bars) >= 1000 and chart.message is None
    assert service.stream.subscriptions == {"!miniTicker@arr", "btcusdt@kline_1m", "btcusdt@trade"}
    qtbot.waitUntil(lambda: "btcusdt@kline_1m" in server_streams(sim), timeout=5000)
    qtbot.waitUntil(lambda: len(rig.window.trades.trades()) > 0, timeout=5000)
    qtbot.waitUntil(lambda: rig.window.watchlist.model.ticker("ETHUSDT") is not None, timeout=5000)

    # Switch through the window, as the symbol picker does.
    rig.window.symbolRequested.emit("ETHUSDT")
    qtbot.waitUntil(lambda: chart.symbol is not None and chart.symbol.symbol == "ETHUSDT", timeout=5000)
    qtbot.waitUntil(lambda: chart.calls[-1][0] == "apply" and live_applies(chart) >= 3, timeout=15000)
    assert service.stream.subscriptions == {"!miniTicker@arr", "ethusdt@kline_1m", "ethusdt@trade"}
    qtbot.waitUntil(lambda: server_streams(sim) == set(service.stream.subscriptions), timeout=5000)
    assert chart.foreign == []  # no BTC bar reached the chart after the switch (nor ETH before)
    assert {b.symbol for b in chart.bars} == {"ETHUSDT"}
    assert all(t.symbol == "ETHUSDT" for t in rig.window.trades.trades())
    assert load_config(rig.config_path).config.symbol == "ETHUSDT"

    # Interval switch keeps the symbol.
    rig.window.intervalRequested.emit("5m")
    qtbot.waitUntil(lambda: chart.symbol is not None and chart.symbol.interval == "5m", timeout=5000)
    qtbot.waitUntil(lambda: any(c[0] == "set_bars" for c in chart.calls[-3:]), timeout=5000)
    assert service.stream.subscriptions == {"!miniTicker@arr", "ethusdt@kline_5m", "ethusdt@trade"}
    assert load_config(rig.config_path).config.interval == "5m"
    assert chart.foreign == []


def test_closed_bars_equal_rest_after_a_drop(rig: Rig, sim: SimThread) -> None:
    chart, service, qtbot = rig.chart, rig.service, rig.qtbot
    rig.run(service.start("SOLUSDT", "1m"))
    qtbot.waitUntil(lambda: live_applies(chart) >= 3, timeout=15000)
    first_live = chart.bars[-1].open_time
    requests.get(f"{sim.urls.rest}/_sim/fault", params={"name": "drop_all"}, timeout=5).raise_for_status()
    # Live bars resume after the reconnect (and its backfill) and go well past the drop.
    qtbot.waitUntil(lambda: chart.bars[-1].open_time >= first_live + 8 * 60_000, timeout=20000)
    rig.run(service.close())
    rig.adapter.flush()
    closed = [b for b in chart.bars if b.closed]
    assert len(closed) > 1000
    want = rig.rest.klines("SOLUSDT", "1m", start_ms=closed[-200].open_time, limit=200)
    by_time = {k.open_time: k for k in want}
    for b in closed[-200:]:
        assert b.same_values(by_time[b.open_time]), b
    # The chart holds exactly the service's series: contiguous 1m bars, none missing.
    assert chart.bars == list(service.series.bars)  # type: ignore[union-attr]
    times = [b.open_time for b in chart.bars]
    assert times == list(range(times[0], times[-1] + 1, 60_000))


def test_scroll_back_prepends_older_bars(rig: Rig) -> None:
    chart, service, qtbot = rig.chart, rig.service, rig.qtbot
    rig.run(service.start("XRPUSDT", "5m"))  # 3 days of history: 864 bars, all loaded
    qtbot.waitUntil(lambda: any(c[0] == "set_bars" for c in chart.calls), timeout=10000)
    assert chart.range_cb is not None
    chart.range_cb(VisibleRange(0, 0, bars_before=0))
    qtbot.wait(300)  # REST has nothing older: nothing is prepended
    assert "prepend_bars" not in [c[0] for c in chart.calls]
    rig.window.intervalRequested.emit("1m")  # 4,320 bars of history: 1,000 loaded
    qtbot.waitUntil(lambda: service.series is not None and service.series.interval == "1m", timeout=10000)
    qtbot.waitUntil(lambda: chart.calls[-1][0] != "set_symbol", timeout=10000)
    n, first = len(chart.bars), chart.bars[0].open_time
    chart.range_cb(VisibleRange(first, first + 3_600_000, bars_before=10))
    chart.range_cb(VisibleRange(first, first + 3_600_000, bars_before=5))  # no second request
    qtbot.waitUntil(lambda: any(c[0] == "prepend_bars" for c in chart.calls), timeout=10000)
    added = len(chart.bars) - n
    assert added > 0 and [c[0] for c in chart.calls].count("prepend_bars") == 1
    times = [b.open_time for b in chart.bars]
    assert times == sorted(set(times)) and times[added] == first
    # Far from the left edge: nothing is loaded.
    chart.range_cb(VisibleRange(first, first, bars_before=500))
    qtbot.wait(300)
    assert [c[0] for c in chart.calls].count("prepend_bars") == 1


def test_unknown_symbol_keeps_the_current_one(rig: Rig) -> None:
    chart, service, qtbot = rig.chart, rig.service, rig.qtbot
    rig.run(service.start("BNBUSDT", "1m"))
    qtbot.waitUntil(lambda: service.series is not None, timeout=10000)
    rig.window.symbolRequested.emit("NOPEUSDT")
    qtbot.wait(200)
    assert service.current == ("BNBUSDT", "1m")
    assert "Unknown symbol" in rig.window.statusBar().currentMessage()
    assert chart.symbol is not None and chart.symbol.symbol == "BNBUSDT"


def test_theme_and_timezone_are_applied_and_saved(rig: Rig) -> None:
    rig.window.themeRequested.emit("light")
    rig.window.timezoneRequested.emit("Europe/Paris")
    assert rig.chart.theme == "light" and rig.chart.timezone == "Europe/Paris"
    saved = json.loads(rig.config_path.read_text())
    assert saved["theme"] == "light" and saved["timezone"] == "Europe/Paris"
    rig.window.timezoneRequested.emit("Mars/Olympus")
    assert rig.chart.timezone == "Europe/Paris"
    assert load_config(rig.config_path).config.timezone == "Europe/Paris"


def test_offline_says_so_and_retries(
    qtbot: QtBot, qloop: qasync.QEventLoop, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A port nobody listens on: exchangeInfo and the websocket both fail.
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    r = Rig(qtbot, qloop, f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}", tmp_path)
    try:
        r.run(r.service.start("BTCUSDT", "1m"))
        qtbot.waitUntil(lambda: r.chart.message is not None and "Offline" in r.chart.message, timeout=5000)
        qtbot.waitUntil(
            lambda: (
                r.service.stream.status.state.value in ("offline", "reconnecting")
                and r.service.stream.status.attempt > 0
            ),
            timeout=10000,
        )
        qtbot.waitUntil(lambda: r.window.status.status() is r.service.stream.status, timeout=5000)
        assert r.chart.message is not None and f"127.0.0.1:{port}" in r.chart.message
        assert "Use demo market" in r.chart.message
        assert not r.window.status.demo_button.isHidden()  # the way out, one click away (window not shown)
        assert "\n" not in r.chart.message and "Traceback" not in r.chart.message
        assert r.service.current is None and not r.service.ready
        assert not [rec for rec in caplog.records if rec.levelname in ("ERROR", "CRITICAL")]
    finally:
        r.close()
