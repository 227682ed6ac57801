"""Indicators on the real chart page, through the app's path. Prints ONE JSON object.

The path is the app's: ``QtMarketAdapter`` -> ``IndicatorController`` / ``IndicatorFeed`` ->
``WebChart`` (shown, 1280x800, offscreen), 100,000 synthetic 1m bars of history (the chart holds
the newest 20,000, as the app runs).

* ``history_build_*``: history of 100k bars with 10 indicators (SMA 20, EMA 50, BBANDS, RSI,
  MACD, STOCH, ATR, ADX, OBV, MFI): from ``market_history`` to every indicator drawn on the page;
  ``history_gui_max_gap_ms``: the longest the GUI event loop went without running a 5 ms timer
  meanwhile (the engine is built on the worker thread).
* ``add_until_drawn_ms``: adding ONE indicator (SMA, BBANDS, MACD, RSI; median of ``RUNS`` each,
  removed between runs) with 100k bars held by the engine, from ``controller.add`` until the page
  confirms it painted (``when_drawn``): worker compute + attach + rows for 20k bars + page.
  ``add_python_ms``: the GUI-thread part of it (compute hand-off, attach, ``set_indicator``);
  ``add_page_ms``: from ``set_indicator`` returning to painted (transfer, page, frames).
  Target <= 300 ms.
* ``flush_ms``: one adapter flush (a live Replace or Append) with the 10 indicators: the flush
  hook (engine update + rows, ``flush_hook_ms``) + ``chart.apply`` (Python side: checks,
  encoding, queueing; ``flush_chart_side_ms``), p50 / p99 / max; ``flush_no_indicators_ms``: the
  same flush without indicators (the baseline).

Run as a desktop user would (Chromium must not get a higher priority than Python):
``setpriv --bounding-set=-sys_nice --inh-caps=-sys_nice python benchmarks/indicator_draw.py [--gc-freeze]``.
"""

from __future__ import annotations

import dataclasses
import gc
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("QTWEBENGINE_DISABLE_SANDBOX", "1")  # Chromium refuses root otherwise
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import PySide6.QtWebEngineWidgets  # noqa: F401  (before the QApplication)
import shiboken6
from PySide6.QtCore import QElapsedTimer, QEventLoop, QTimer
from PySide6.QtWidgets import QApplication

from binmon.core.candles import Append, Replace
from binmon.core.models import Kline
from binmon.ui.chart.api import ChartSymbol
from binmon.ui.chart.web_chart import WebChart
from binmon.ui.indicators_controller import IndicatorController
from binmon.ui.qt_adapter import QtMarketAdapter

SYMBOL = ChartSymbol("BTCUSDT", "1m", "0.01")
START_MS = 1_600_000_000_000 // 60_000 * 60_000
BARS = 100_000
RUNS = 5
FLUSHES = 400
TARGET_ADD_MS = 300.0
#: ``--gc-freeze``: move everything alive after the history load out of the cyclic GC's reach
#: (``gc.freeze()``), to show how much of the GUI-thread time is full collections over the
#: big heap (100k Klines, the chart's per-bar rows) triggered by the chart's allocations.
GC_FREEZE = "--gc-freeze" in sys.argv
TEN = [
    ("SMA", {"timeperiod": 20}),
    ("EMA", {"timeperiod": 50}),
    ("BBANDS", {}),
    ("RSI", {}),
    ("MACD", {}),
    ("STOCH", {}),
    ("ATR", {}),
    ("ADX", {}),
    ("OBV", {}),
    ("MFI", {}),
]


class _Sink:
    def add_trades(self, trades: Any) -> None:
        pass

    def update_tickers(self, tickers: Any) -> None:
        pass

    def set_feed(self, *args: Any) -> None:
        pass


def synthetic(n: int) -> list[Kline]:
    """``n`` 1m bars of a seeded random walk."""
    rng = np.random.default_rng(5)
    close = np.round(30_000 * np.exp(np.cumsum(rng.normal(0, 6e-4, n))), 2)
    out = []
    prev = float(close[0])
    for i in range(n):
        c = float(close[i])
        hi, lo = round(max(prev, c) * 1.0003, 2), round(min(prev, c) * 0.9997, 2)
        t = START_MS + i * 60_000
        volume = 1.0 + i % 97
        out.append(Kline("BTCUSDT", "1m", t, t + 59_999, prev, hi, lo, c, volume, volume * c, 10, 0.0, 0.0))
        prev = c
    return out


def spin_until(cond: Callable[[], bool], timeout_s: float = 60) -> None:
    """Run the Qt event loop until ``cond()``."""
    t0 = time.perf_counter()
    while not cond():
        QApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 5)
        if time.perf_counter() - t0 > timeout_s:
            raise TimeoutError("timed out")


def drawn(chart: WebChart) -> None:
    box: list[Any] = []
    chart.when_drawn(box.append)
    spin_until(lambda: bool(box))


def stats(ms: list[float]) -> dict[str, float]:
    a = np.asarray(ms)
    return {
        "p50": round(float(np.percentile(a, 50)), 3),
        "p99": round(float(np.percentile(a, 99)), 3),
        "max": round(float(a.max()), 3),
    }


def setup(bars: list[Kline]) -> tuple[WebChart, QtMarketAdapter, IndicatorController]:
    chart = WebChart()
    ready: list[bool] = []
    chart.ready.connect(lambda: ready.append(True))
    chart.resize(1280, 800)
    chart.show()
    spin_until(lambda: bool(ready))
    adapter = QtMarketAdapter(chart, _Sink(), _Sink(), _Sink())
    adapter.historyLoaded.connect(lambda _s, _i, b: chart.set_bars(b))
    ctl = IndicatorController(chart, adapter)
    chart.set_symbol(SYMBOL)
    return chart, adapter, ctl


def history_build(bars: list[Kline]) -> dict[str, Any]:
    chart, adapter, ctl = setup([])
    ctl.restore([])
    for name, params in TEN:
        ctl.add(ctl.new_spec(name, **params))
    drawn(chart)
    gaps: list[float] = []
    clock = QElapsedTimer()
    clock.start()
    tick = QTimer()
    tick.setInterval(5)
    last = [clock.elapsed()]

    def beat() -> None:
        now = clock.elapsed()
        gaps.append(now - last[0])
        last[0] = now

    tick.timeout.connect(beat)
    tick.start()
    t0 = time.perf_counter()
    adapter.market_history("BTCUSDT", "1m", bars)
    handed = time.perf_counter() - t0
    spin_until(lambda: ctl.engine is not None and not ctl.busy)
    spin_until(lambda: all(len(chart.indicator_rows(s.id)) == 20_000 for s in ctl.specs))
    drawn(chart)
    if GC_FREEZE:
        gc.freeze()
    total = time.perf_counter() - t0
    tick.stop()
    result = {
        "history_build_until_drawn_ms": round(total * 1e3, 1),
        "history_gui_thread_ms": round(handed * 1e3, 1),
        "history_gui_max_gap_ms": round(max(gaps), 1) if gaps else None,
    }
    result.update(flushes(chart, adapter, ctl))
    close(chart, ctl)
    return result


def flushes(chart: WebChart, adapter: QtMarketAdapter, ctl: IndicatorController) -> dict[str, Any]:
    """``FLUSHES`` live flushes (Replace, Append alternating) with the 10 indicators, then without."""

    hook_ms: list[float] = []
    hook = ctl.feed.flush_hook

    def timed_hook(ops: Any) -> Any:
        t = time.perf_counter()
        rows = hook(ops)
        hook_ms.append((time.perf_counter() - t) * 1e3)
        return rows

    # The adapter holds the bound method: swap it in its hook list.
    hooks = adapter._flush_hooks
    hooks[hooks.index(hook)] = timed_hook

    def run() -> list[float]:
        last = chart.bars[-1]
        out = []
        for i in range(FLUSHES):
            if i % 2 == 0:
                last = dataclasses.replace(last, close=round(last.close * 1.0001, 2), trades=last.trades + 1)
                op: Any = Replace(last)
            else:
                t = last.open_time + 60_000
                last = dataclasses.replace(last, open_time=t, close_time=t + 59_999)
                op = Append(last)
            adapter.market_ops([op])
            t0 = time.perf_counter()
            adapter.flush()
            out.append((time.perf_counter() - t0) * 1e3)
            QApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 10)  # the page answers
        drawn(chart)
        return out

    with_ind = run()
    hook_with = list(hook_ms)
    for s in ctl.specs:
        ctl.remove(s.id)
    without = run()
    return {
        "flush_ms": stats(with_ind),
        "flush_hook_ms": stats(hook_with),
        "flush_chart_side_ms": stats([a - b for a, b in zip(with_ind, hook_with, strict=True)]),
        "flush_no_indicators_ms": stats(without),
        "flushes": FLUSHES,
    }


def adds(bars: list[Kline]) -> dict[str, Any]:
    chart, adapter, ctl = setup(bars)
    ctl.restore([])
    adapter.market_history("BTCUSDT", "1m", bars)
    spin_until(lambda: ctl.engine is not None and not ctl.busy)
    drawn(chart)
    if GC_FREEZE:
        gc.freeze()
    out: dict[str, Any] = {}
    py: dict[str, float] = {}
    feed = ctl.feed
    attach = feed._prepared  # the GUI-thread part when the worker is done: attach + draw
    spent: list[float] = []

    def timed(*args: Any) -> None:
        t = time.perf_counter()
        attach(*args)
        spent.append(time.perf_counter() - t)

    feed._prepared = timed  # type: ignore[method-assign]
    sent: list[float] = []
    set_indicator = chart.set_indicator

    def timed_set(*args: Any) -> None:
        set_indicator(*args)
        sent.append(time.perf_counter())

    chart.set_indicator = timed_set  # type: ignore[method-assign]
    page: dict[str, float] = {}
    for name in ("SMA", "BBANDS", "MACD", "RSI"):
        total, gui, on_page = [], [], []
        for _ in range(RUNS):
            spec = ctl.new_spec(name)
            spent.clear()
            t0 = time.perf_counter()
            ctl.add(spec)
            g = time.perf_counter() - t0
            spin_until(lambda s=spec: not ctl.busy and len(chart.indicator_rows(s.id)) == 20_000)  # type: ignore[misc]
            g += sum(spent)
            drawn(chart)
            done = time.perf_counter()
            total.append((done - t0) * 1e3)
            gui.append(g * 1e3)
            on_page.append((done - sent[-1]) * 1e3)
            ctl.remove(spec.id)
            drawn(chart)
        out[name] = round(statistics.median(total), 1)
        py[name] = round(statistics.median(gui), 1)
        page[name] = round(statistics.median(on_page), 1)
    close(chart, ctl)
    return {"add_until_drawn_ms": out, "add_python_ms": py, "add_page_ms": page}


def close(chart: WebChart, ctl: IndicatorController) -> None:
    ctl.close()
    chart.close()
    shiboken6.delete(chart)


def main() -> None:
    app = QApplication.instance() or QApplication(sys.argv[:1])
    bars = synthetic(BARS)
    out: dict[str, Any] = {"benchmark": "indicator_draw", "bars": BARS, "held_on_page": 20_000, "runs": RUNS}
    out["gc_freeze"] = GC_FREEZE
    out.update(adds(bars))
    out.update(history_build(bars))
    out["target_add_ms"] = TARGET_ADD_MS
    out["targets_met"] = max(out["add_until_drawn_ms"].values()) <= TARGET_ADD_MS
    print(json.dumps(out))
    app.processEvents()


if __name__ == "__main__":
    main()
