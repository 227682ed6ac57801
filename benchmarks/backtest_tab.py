"""Does the GUI stay live while the Backtest tab runs on 500k candles? Prints one JSON object.

A temporary store gets 500,000 synthetic 1m candles; the tab (as the app builds it, 2-process
pool) runs SMA cross on all of them, exactly as the Run button does. A 5 ms GUI timer
records how late each tick fires: ``max_gui_stall_ms`` during the load + backtest (everything
before the result arrives) and ``show_result_ms`` (drawing the result: metrics, trades,
500k-candle plots, which happens on the GUI thread once), plus the run's wall times.

Run it as a desktop user would:
``setpriv --bounding-set=-sys_nice --inh-caps=-sys_nice .venv/bin/python benchmarks/backtest_tab.py``
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import pandas as pd
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from binmon.history.ranges import SeriesKey, TimeRange
from binmon.history.store import CandleStore
from binmon.ui.backtest.tab import BacktestTab
from binmon.ui.backtest.work import Services, WorkerPool

N = 500_000


def candles(n: int) -> pd.DataFrame:
    """``n`` 1m candles of a seeded random walk, in the store's column layout."""
    rng = np.random.default_rng(3)
    t = 1_600_000_020_000 + 60_000 * np.arange(n, dtype=np.int64)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.001, n)))
    open_ = np.r_[close[0], close[:-1]]
    spread = np.abs(rng.normal(0, 0.0008, n)) * close
    return pd.DataFrame(
        {
            "open_time": t,
            "open": open_,
            "high": np.maximum(open_, close) + spread,
            "low": np.minimum(open_, close) - spread,
            "close": close,
            "volume": 1.0,
            "close_time": t + 59_999,
            "quote_volume": 0.0,
            "trades": 0,
            "taker_buy_base": 0.0,
            "taker_buy_quote": 0.0,
        }
    )


def main() -> None:
    app = QApplication.instance() or QApplication([])
    frame = candles(N)
    with tempfile.TemporaryDirectory() as tmp, CandleStore.open(Path(tmp) / "c.sqlite") as store:
        store.upsert_frame(
            SeriesKey.spot("BTCUSDT", "1m"),
            frame,
            fetched=TimeRange(int(frame["open_time"].iloc[0]), int(frame["open_time"].iloc[-1])),
        )
        services = Services(
            store=lambda: store,
            downloader=lambda: None,
            now_ms=lambda: time.time_ns() // 1_000_000,
            symbols=list,
            pick=lambda: ("BTCUSDT", "1m"),
        )
        pool = WorkerPool(2)
        tab = BacktestTab(services, pool)
        tab.resize(1400, 900)
        tab.show()
        tab.use_stored_range()
        tab.form.set_strategy("sma_cross")
        ticks: list[tuple[float, float]] = []  # (time, ms since the previous tick)
        last = [time.perf_counter()]

        def tick() -> None:
            now = time.perf_counter()
            ticks.append((now, (now - last[0]) * 1000))
            last[0] = now

        timer = QTimer(interval=5)
        timer.timeout.connect(tick)
        shown: list[tuple[float, float]] = []
        original = tab.result_view.show_result

        def timed_show(*args: object) -> None:
            s0 = time.perf_counter()
            original(*args)  # type: ignore[arg-type]
            shown.append((s0, (time.perf_counter() - s0) * 1000))

        tab.result_view.show_result = timed_show  # type: ignore[method-assign,assignment]
        timer.start()
        t0 = time.perf_counter()
        assert tab.run()
        started = None
        while tab.running or not shown:
            app.processEvents()
            if started is None and tab._job is not None:
                started = time.perf_counter()
            time.sleep(0.001)
        done = time.perf_counter()
        timer.stop()
        result = tab.result_view.result
        assert result is not None, tab.status_label.text()
        show_at, show_ms = shown[0]
        before = [gap for at, gap in ticks if at < show_at]
        worst_at, _ = max(((at, gap) for at, gap in ticks if at < show_at), key=lambda x: x[1])
        print(
            json.dumps(
                {
                    "candles": N,
                    "strategy": "sma_cross(10,30)",
                    "trades": len(result.trades),
                    "total_s": round(done - t0, 2),
                    "prepare_s": round((started or done) - t0, 2),
                    "backtest_in_worker_s": round(result.elapsed_s, 2),
                    "max_gui_stall_ms_before_result": round(max(before), 1),
                    "max_gui_stall_at_s": round(worst_at - t0, 2),
                    "p99_gui_tick_gap_ms_before_result": round(float(np.percentile(before, 99)), 1),
                    "show_result_ms": round(show_ms, 1),
                    "ticks": len(before),
                }
            )
        )
        tab.shutdown()


if __name__ == "__main__":
    main()
