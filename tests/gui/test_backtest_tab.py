"""The Backtest tab (issue 7) on the real ETHBTC 5m candles in a temporary store.

A user's flow: choose a strategy, set its parameters (an invalid one keeps Run disabled with
the reason), run it in the process pool, read the metrics, the trade table and the markers
back from the plot items, export, compare two runs, cancel, optimise, and load a strategy
file. The expected figures come from the result and the candles, never from the widgets'
own code paths (markers are checked against the trades, the trades against the candles).
"""

from __future__ import annotations

import csv
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import shiboken6
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QLabel
from pytestqt.qtbot import QtBot

from binmon.history.dates import format_ms
from binmon.history.ranges import SeriesKey, TimeRange
from binmon.history.store import CandleStore
from binmon.ui.backtest.files import RecentRuns
from binmon.ui.backtest.install import DockSwap
from binmon.ui.backtest.tab import BacktestTab
from binmon.ui.backtest.work import Services, WorkerPool

FIVE_MIN = 300_000
KEY = SeriesKey.spot("ETHBTC", "5m")
RUN_TIMEOUT = 60_000


@pytest.fixture(scope="module")
def pool() -> Iterator[WorkerPool]:
    """One two-process pool for the module (spawning workers costs seconds)."""
    p = WorkerPool(2)
    yield p
    p.shutdown()


@pytest.fixture(scope="module")
def candles(real_dir: Path) -> pd.DataFrame:
    raw = pd.read_csv(real_dir / "ETHBTC-5m-2018-01-10_30.ohlcv.csv")
    return raw.assign(
        close_time=raw["open_time"] + FIVE_MIN - 1,
        quote_volume=0.0,
        trades=0,
        taker_buy_base=0.0,
        taker_buy_quote=0.0,
    )


@pytest.fixture
def store(tmp_path: Path, candles: pd.DataFrame) -> Iterator[CandleStore]:
    s = CandleStore.open(tmp_path / "candles.sqlite")
    first, last = int(candles["open_time"].iloc[0]), int(candles["open_time"].iloc[-1])
    s.upsert_frame(KEY, candles, fetched=TimeRange(first, last))
    yield s
    s.close()


class SlowDownloader:
    """A downloader that reports progress and then blocks until cancelled (a long download)."""

    def __init__(self) -> None:
        self.started = threading.Event()

    def run(self, req: Any, *, progress: Any = None, cancel: threading.Event | None = None) -> Any:
        from binmon.history.download import DownloadResult, Progress

        self.started.set()
        if progress is not None:
            progress(Progress("rest", 10, 100, 1, 10, 1000.0, 1.0))
        assert cancel is not None
        cancel.wait(30)
        return DownloadResult(0, 0, 1, 0, (), True, 0.1)


def make_tab(
    qtbot: QtBot, store: CandleStore, pool: WorkerPool, tmp_path: Path, downloader: Any = None
) -> BacktestTab:
    services = Services(
        store=lambda: store,
        downloader=lambda: downloader,
        now_ms=lambda: time.time_ns() // 1_000_000,
        symbols=list,
        pick=lambda: ("ETHBTC", "5m"),
        runs_file=tmp_path / "backtests.json",
    )
    tab = BacktestTab(services, pool)
    qtbot.addWidget(tab)
    tab.resize(1400, 900)
    tab.show()
    qtbot.waitExposed(tab)
    return tab


@pytest.fixture
def tab(qtbot: QtBot, store: CandleStore, pool: WorkerPool, tmp_path: Path) -> Iterator[BacktestTab]:
    t = make_tab(qtbot, store, pool, tmp_path)
    t.use_stored_range()
    yield t
    t.shutdown(stop_pool=False)


def run_and_wait(qtbot: QtBot, tab: BacktestTab) -> None:
    assert tab.run_button.isEnabled(), tab.form.error()
    qtbot.mouseClick(tab.run_button, qtbot_left())
    assert tab.running
    qtbot.waitUntil(lambda: not tab.running, timeout=RUN_TIMEOUT)


def qtbot_left() -> Any:
    from PySide6.QtCore import Qt

    return Qt.MouseButton.LeftButton


def test_parameters_are_generated_and_validated(tab: BacktestTab) -> None:
    form = tab.form
    assert set(form.strategies()) >= {"sma_cross", "ema_cross", "rsi", "macd", "bbands"}
    form.set_strategy("sma_cross")
    assert set(form.param_fields()) == {"fast", "slow"}
    assert tab.run_button.isEnabled()
    form.set_params({"fast": 50, "slow": 20})  # fast must stay below slow
    assert form.request() is None
    assert not tab.run_button.isEnabled()
    assert "fast" in form.error() and "slow" in form.error()
    assert form.message_label.text().startswith("⚠") and "fast" in form.message_label.text()
    assert tab.run() is False  # nothing starts while invalid
    form.set_params({"slow": 60})
    assert form.error() == "" and tab.run_button.isEnabled()
    assert form.request() is not None and form.request().params == {"fast": 50, "slow": 60}
    # A range that ends before it starts is refused too.
    req = form.request()
    form.set_range(req.end_ms, req.start_ms)
    assert not tab.run_button.isEnabled() and "before" in form.error()
    # The stored range is exactly the fixture's candles (To exclusive).
    tab.use_stored_range()
    req = form.request()
    assert req is not None and (req.start_ms, req.end_ms) == (1515560100000, 1515560100000 + 5759 * FIVE_MIN)


def test_rsi_run_shows_metrics_trades_and_markers(
    qtbot: QtBot, tab: BacktestTab, candles: pd.DataFrame, tmp_path: Path
) -> None:
    tab.form.set_strategy("rsi")
    tab.form.set_params({"period": 14, "low": 30, "high": 70})
    run_and_wait(qtbot, tab)
    view = tab.result_view
    result = view.result
    assert result is not None, tab.status_label.text()
    assert result.request.strategy == "rsi" and result.bars == len(candles) == 5760
    trades = result.trades
    closed = [t for t in trades if not t.is_open]
    assert len(closed) >= 3
    # Metrics panel: the strategy's trade count and the buy-and-hold return of the candles.
    assert view.metrics.value("Trades") == f"{len(closed):,}"
    bh = 100 * (candles["close"].iloc[-1] / candles["close"].iloc[0] - 1)
    assert view.metrics.value("Buy & hold return", 1) == f"{bh:+.2f}%"
    assert view.metrics.value("Total return", 1) == f"{bh:+.2f}%"
    # Markers read back from the plot: a buy at each entry, a sell at each closed exit.
    plots = view.plots
    buys, sells = plots.marker_counts()
    assert buys + sells == 2 * len(closed) + (len(trades) - len(closed))
    assert plots.buy_markers is not None
    bx, _ = plots.buy_markers.getData()
    assert sorted(bx) == sorted(t.entry_time_ms / 1000 for t in trades)
    # Fills happen at a bar's open (plus no slippage here): the entry price is that candle's open.
    by_time = dict(zip(candles["open_time"], candles["open"], strict=True))
    assert all(t.entry_price == pytest.approx(by_time[t.entry_time_ms]) for t in trades)
    # The trade table: one row per trade.
    assert view.trades_model.rowCount() == len(trades)
    # Sorting by a column (a click on its header) sorts the trades, numbers as numbers.
    model = view.trades_model
    view.trades_view.sortByColumn(7, Qt.SortOrder.DescendingOrder)  # PnL
    assert [model.trade(r).pnl for r in range(model.rowCount())] == sorted(
        (t.pnl for t in trades), reverse=True
    )
    view.trades_view.sortByColumn(0, Qt.SortOrder.AscendingOrder)  # back to trade order
    assert [model.trade(r) for r in range(model.rowCount())] == list(trades)
    assert model.index(0, 0).data() == "1"
    # The candles are all there and drawn; RSI has its own pane with its 30/70 guides.
    assert plots.candles is not None and len(plots.candles) == 5760
    plots.grab()
    drawn, merged = plots.candles.last_paint
    assert 0 < drawn <= merged == 5760
    assert len(plots.panes) == 1
    # Linked time axes: zooming the price plot moves every plot.
    assert plots.price is not None and plots.equity is not None
    t0 = float(candles["open_time"].iloc[100]) / 1000
    plots.price.setXRange(t0, t0 + 3600 * 6, padding=0)
    assert plots.equity.vb.viewRange()[0] == pytest.approx([t0, t0 + 3600 * 6])
    # Hovering a bar shows its prices and equity, read from the candles and the result.
    i = 120  # inside the 6 hours shown
    hover = plots.price.vb.mapViewToScene(
        QPointF(candles["open_time"].iloc[i] / 1000, candles["close"].iloc[i])
    )
    plots.scene().sigMouseMoved.emit(hover)
    text = view.readout.text()
    assert text.startswith(format_ms(int(candles["open_time"].iloc[i])))
    assert f"C {candles['close'].iloc[i]:.8f}" in text and f"Equity {result.equity[i]:,.2f}" in text
    # Exports: written and parseable, with what the result holds.
    assert tab.write_export("trades", str(tmp_path / "t.csv"))
    with (tmp_path / "t.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(trades)
    assert [float(r["pnl"]) for r in rows] == [t.pnl for t in trades]
    assert tab.write_export("metrics", str(tmp_path / "m.json"))
    doc = json.loads((tmp_path / "m.json").read_text())
    assert doc["metrics"]["trades"] == len(closed) and doc["request"]["strategy"] == "rsi"
    assert doc["buy_and_hold"]["total_return_pct"] == pytest.approx(bh)
    assert tab.write_export("png", str(tmp_path / "p.png"))
    image = QImage(str(tmp_path / "p.png"))
    assert not image.isNull() and image.width() > 500


def test_recent_runs_are_kept_and_compared(qtbot: QtBot, tab: BacktestTab, tmp_path: Path) -> None:
    tab.form.set_strategy("sma_cross")
    tab.form.set_params({"fast": 10, "slow": 30})
    run_and_wait(qtbot, tab)
    tab.form.set_params({"fast": 20, "slow": 60})
    run_and_wait(qtbot, tab)
    runs = tab.runs_view
    assert runs.table.rowCount() == 2
    newest, oldest = tab.runs.entries
    assert newest.request.params == {"fast": 20, "slow": 60} and oldest.request.params == {
        "fast": 10,
        "slow": 30,
    }
    runs.select(0, 1)
    assert runs.compare_button.isEnabled()
    assert runs.compare_selected()
    assert runs.metrics.columnCount() == 2
    assert runs.metrics.value("Total return", 0) != runs.metrics.value("Total return", 1)
    assert len(runs.curves.getPlotItem().listDataItems()) == 2
    # The file lists both (written on a thread), and reloads (another session).
    assert tab.flush_runs()
    again = RecentRuns(tmp_path / "backtests.json")
    again.load()
    assert [e.request.params for e in again.entries] == [{"fast": 20, "slow": 60}, {"fast": 10, "slow": 30}]
    assert again.entries[0].curve_times.size > 100
    # Opening the older run shows its result again without running.
    runs.select(1)
    qtbot.mouseClick(runs.open_button, qtbot_left())
    assert tab.result_view.result is oldest.result and not tab.running


def test_a_corrupt_runs_file_is_kept_aside(
    qtbot: QtBot, store: CandleStore, pool: WorkerPool, tmp_path: Path
) -> None:
    (tmp_path / "backtests.json").write_text("{not json")
    tab = make_tab(qtbot, store, pool, tmp_path)
    try:
        assert tab.runs.entries == []
        assert "kept aside" in tab.status_label.text()
        assert list(tmp_path.glob("backtests.json.corrupt-*"))
    finally:
        tab.shutdown(stop_pool=False)


def test_missing_candles_are_downloaded_first_and_cancel_stops(
    qtbot: QtBot, store: CandleStore, pool: WorkerPool, tmp_path: Path
) -> None:
    downloader = SlowDownloader()
    tab = make_tab(qtbot, store, pool, tmp_path, downloader)
    try:
        tab.use_stored_range()
        req = tab.form.request()
        assert req is not None
        tab.form.set_range(req.start_ms - 86_400_000, req.end_ms + FIVE_MIN)  # a day before: not stored
        assert tab.run()
        qtbot.waitUntil(downloader.started.is_set, timeout=10_000)
        qtbot.waitUntil(lambda: "Downloading" in tab.status_label.text(), timeout=5_000)
        assert tab.progress_bar.isVisible() and tab.cancel_button.isEnabled()
        assert not tab.form.symbol_edit.isEnabled()  # the form is locked while it runs
        qtbot.mouseClick(tab.cancel_button, qtbot_left())
        qtbot.waitUntil(lambda: not tab.running, timeout=10_000)
        assert tab.status_label.text() == "Cancelled"
        assert tab.result_view.result is None and tab.run_button.isEnabled()
    finally:
        tab.shutdown(stop_pool=False)


def test_cancel_stops_a_running_backtest(qtbot: QtBot, pool: WorkerPool, tmp_path: Path) -> None:
    # 150k synthetic 1m candles: long enough to be caught running.
    n = 150_000
    t = 1_599_999_960_000 + 60_000 * np.arange(n, dtype=np.int64)
    close = 100 * np.exp(np.cumsum(np.random.default_rng(1).normal(0, 0.001, n)))
    frame = pd.DataFrame(
        {
            "open_time": t,
            "open": close,
            "high": close * 1.001,
            "low": close * 0.999,
            "close": close,
            "volume": 1.0,
            "close_time": t + 59_999,
            "quote_volume": 0.0,
            "trades": 0,
            "taker_buy_base": 0.0,
            "taker_buy_quote": 0.0,
        }
    )
    key = SeriesKey.spot("BTCUSDT", "1m")
    with CandleStore.open(tmp_path / "big.sqlite") as big:
        big.upsert_frame(key, frame, fetched=TimeRange(int(t[0]), int(t[-1])))
        tab = make_tab(qtbot, big, pool, tmp_path)
        try:
            tab.form.set_series("BTCUSDT", "1m")
            tab.use_stored_range()
            tab.form.set_strategy("sma_cross")
            assert tab.run()
            qtbot.waitUntil(
                lambda: tab.progress_bar.maximum() == 1000 and tab.progress_bar.value() > 0, timeout=30_000
            )
            tab.cancel()
            qtbot.waitUntil(lambda: not tab.running, timeout=30_000)
            assert tab.status_label.text() == "Cancelled"
            assert tab.result_view.result is None
        finally:
            tab.shutdown(stop_pool=False)


def test_optimisation_grid_heatmap_and_open_best(qtbot: QtBot, tab: BacktestTab) -> None:
    tab.form.set_strategy("sma_cross")
    opt = tab.optimize_view
    opt.set_range("fast", 5, 15, 5)
    opt.set_range("slow", 20, 40, 20)
    assert opt.grid() == {"fast": [5, 10, 15], "slow": [20, 40]}
    assert opt.count_label.text().startswith("6 combinations")
    assert opt.run()
    qtbot.waitUntil(lambda: not opt.running, timeout=RUN_TIMEOUT)
    rows = opt.model.rows
    assert len(rows) == 6 and all(r.metrics is not None for r in rows), opt.status_label.text()
    assert opt.proxy.rowCount() == 6
    # The table is sorted best first by the chosen metric (total return).
    first = opt.proxy.index(0, 0)
    best = opt.best()
    assert best is not None
    assert opt.model.rows[opt.proxy.mapToSource(first).row()] is best
    assert best.metrics is not None and best.metrics.total_return_pct == max(
        r.metrics.total_return_pct for r in rows if r.metrics is not None
    )
    xs, ys, m = opt.heat_matrix()
    assert xs == [5, 10, 15] and ys == [20, 40] and np.isfinite(m).all()
    image = opt.image.image
    assert image is not None and image.shape == (3, 2)
    # "Open best": runs that combination as a normal result.
    qtbot.mouseClick(opt.open_button, qtbot_left())
    qtbot.waitUntil(lambda: not tab.running and tab.result_view.result is not None, timeout=RUN_TIMEOUT)
    result = tab.result_view.result
    assert result is not None and result.request.params == best.params
    assert result.metrics.total_return_pct == pytest.approx(best.metrics.total_return_pct)


STRATEGY_FILE = """
import backtrader as bt


class Breakout(bt.Strategy):
    params = (("period", 20),)

    def __init__(self):
        self.high = bt.indicators.Highest(self.data.high(-1), period=self.p.period)
        self.low = bt.indicators.Lowest(self.data.low(-1), period=self.p.period)

    def next(self):
        if not self.position and self.data.close[0] > self.high[0]:
            self.buy()
        elif self.position and self.data.close[0] < self.low[0]:
            self.close()
"""


def test_a_strategy_file_is_loaded_and_run(qtbot: QtBot, tab: BacktestTab, tmp_path: Path) -> None:
    path = tmp_path / "breakout.py"
    path.write_text(STRATEGY_FILE)
    tab.load_strategy_file(str(path))
    qtbot.waitUntil(lambda: tab.form.strategy() == "file", timeout=RUN_TIMEOUT)
    assert set(tab.form.param_fields()) == {"period"}
    assert "Breakout" in tab.form.strategy_box.currentText()
    tab.form.set_params({"period": 30})
    run_and_wait(qtbot, tab)
    result = tab.result_view.result
    assert result is not None, tab.status_label.text()
    assert result.request.strategy_file == str(path) and result.request.params == {"period": 30}
    assert tab.result_view.trades_model.rowCount() == len(result.trades) > 0
    # The example shipped in resources/strategies loads too, its float parameter as a number.
    from binmon.resources import resource_path

    tab.load_strategy_file(str(resource_path("strategies", "example_strategy.py")))
    qtbot.waitUntil(lambda: "example_strategy" in tab.form.strategy_box.currentText(), timeout=RUN_TIMEOUT)
    assert tab.form.params() == {"period": 20, "threshold": 0.5}
    # A broken file is one line, and the form keeps what it had.
    bad = tmp_path / "bad.py"
    bad.write_text("def oops(:\n")
    tab.load_strategy_file(str(bad))
    qtbot.waitUntil(lambda: "syntax error" in tab.status_label.text(), timeout=RUN_TIMEOUT)
    assert tab.form.strategy() == "file" and "MomentumBreakout" in tab.form.strategy_box.currentText()


def test_main_window_tabs_keep_the_chart(
    qtbot: QtBot, make_chart: Any, wait_drawn: Any, read_bars: Any, xrpeth_bars: Any, tmp_path: Path
) -> None:
    from binmon.ui.chart.api import ChartSymbol
    from binmon.ui.main_window import MainWindow

    chart = make_chart()
    with qtbot.waitSignal(chart.ready, timeout=20_000):
        pass
    window = MainWindow(chart)
    qtbot.addWidget(window)
    other = QLabel("backtest")
    tabs = window.add_tab("Backtest", other)
    window.resize(1280, 800)
    window.show()
    qtbot.waitExposed(window)
    assert window.chart_widget is chart and window.centralWidget() is tabs
    assert [tabs.tabText(i) for i in range(tabs.count())] == ["Chart", "Backtest"]
    chart.set_symbol(ChartSymbol("XRPETH", "1m", "0.00000001"))
    chart.set_bars(xrpeth_bars)
    wait_drawn(chart)
    # The widget's pixels follow the page's paint a little later: poll them.
    qtbot.waitUntil(lambda: _colours(chart.grab().toImage()) > 20, timeout=10_000)
    tabs.setCurrentIndex(1)
    qtbot.waitUntil(lambda: not chart.isVisible())
    chart.set_bars(xrpeth_bars[:1500])  # calls made while hidden are applied too
    tabs.setCurrentIndex(0)
    qtbot.waitUntil(chart.isVisible)
    wait_drawn(chart)
    rows = read_bars(chart)
    assert len(rows) == 1500 and rows[-1][0] == xrpeth_bars[1499].open_time // 1000
    # Still rendering after being hidden and shown: candles, axes and text, not a blank page.
    qtbot.waitUntil(lambda: _colours(chart.grab().toImage()) > 20, timeout=10_000)
    chart.grab().save(str(tmp_path / "chart-after-switch.png"))
    # The Backtest tab gets the full width: the docks hide there and come back on the chart,
    # and closing the window on the Backtest tab still saves them as shown.
    swap = DockSwap(window, tabs, other)
    assert window.watchlist_dock.isVisible() and window.trades_dock.isVisible()
    tabs.setCurrentIndex(1)
    assert not window.watchlist_dock.isVisible() and not window.trades_dock.isVisible()
    tabs.setCurrentIndex(0)
    assert window.watchlist_dock.isVisible() and window.trades_dock.isVisible()
    tabs.setCurrentIndex(1)
    seen: list[bool] = []
    window.closing.connect(lambda: seen.append(window.watchlist_dock.isVisible()))
    window.close()
    assert seen == [True] and swap.hidden == []
    chart.setParent(None)  # make_chart deletes the chart itself
    shiboken6.delete(window)


def _colours(image: QImage) -> int:
    """Distinct colours on a coarse grid of the image (a blank page has one or two)."""
    seen = {image.pixel(x, y) for x in range(0, image.width(), 7) for y in range(0, image.height(), 7)}
    return len(seen)


def test_rule_conditions_are_edited_with_the_alert_dialog(qtbot: QtBot, tab: BacktestTab) -> None:
    from binmon.ui.backtest.condition import ConditionField

    tab.form.set_strategy("rule")
    fields = tab.form.param_fields()
    entry = fields["entry"].widget
    assert isinstance(entry, ConditionField) and isinstance(fields["exit"].widget, ConditionField)
    assert entry.summary.text() == "RSI(14) crossing up 30"
    dialog = entry.open_editor()
    assert dialog.isVisible() and not dialog.symbol_edit.isVisible()  # alert-only rows hidden
    dialog.value_edit.setText("25")
    assert dialog.ok.isEnabled()
    dialog.accept()
    assert entry.summary.text() == "RSI(14) crossing up 25"
    req = tab.form.request()
    assert req is not None and req.params["entry"]["operand"]["value"] == 25.0
    run_and_wait(qtbot, tab)
    result = tab.result_view.result
    assert result is not None, tab.status_label.text()
    assert result.request.params["entry"]["operand"]["value"] == 25.0
    assert tab.result_view.plots.panes  # the RSI the conditions watch is drawn in its pane


def test_closing_during_an_optimisation_does_not_wait_for_it(
    qtbot: QtBot, store: CandleStore, tmp_path: Path
) -> None:
    own = WorkerPool(1)  # this test stops its pool
    tab = make_tab(qtbot, store, own, tmp_path)
    tab.use_stored_range()
    tab.form.set_strategy("sma_cross")
    opt = tab.optimize_view
    opt.set_range("fast", 2, 41, 1)
    opt.set_range("slow", 50, 140, 10)  # 400 backtests in 4 chunks on one worker: tens of seconds
    assert opt.run()
    qtbot.waitUntil(lambda: "Running" in opt.status_label.text(), timeout=RUN_TIMEOUT)
    processes = list(own._executor._processes.values())  # type: ignore[union-attr]
    assert processes and all(p.is_alive() for p in processes)
    t0 = time.monotonic()
    tab.shutdown()
    assert time.monotonic() - t0 < 10
    assert opt.worker is not None and not opt.worker.is_alive()  # the sweep thread ended too
    assert not any(p.is_alive() for p in processes)
