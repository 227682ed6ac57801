"""Render the Backtest tab with a real run for the README: ``docs/backtest.png`` (1400x900).

    .venv/bin/python tools/backtest_screenshot.py [--theme dark|light] [--view result|optimise|runs] [OUT]

The real ETHBTC 5m candles of ``../shared/fixtures/real/`` go into a throw-away store; the tab
runs "RSI oversold/overbought" (period 14, 30/70) on them in its process pool, exactly as a
user's click does, and the window is grabbed offscreen. ``--view optimise`` also runs a
small SMA-cross grid and shows its table and heatmap.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SIZE = (int(os.environ.get("BT_W", 1400)), int(os.environ.get("BT_H", 900)))
FIXTURE = ROOT.parent / "shared" / "fixtures" / "real" / "ETHBTC-5m-2018-01-10_30.ohlcv.csv"


def main() -> int:
    """Render and save; 0 on success."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", nargs="?", type=Path, default=ROOT / "docs" / "backtest.png")
    p.add_argument("--theme", choices=("dark", "light"), default="dark")
    p.add_argument("--view", choices=("result", "optimise", "runs"), default="result")
    args = p.parse_args()
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    sys.path.insert(0, str(ROOT))

    import pandas as pd
    from PySide6.QtWidgets import QApplication

    from binmon.history.ranges import SeriesKey, TimeRange
    from binmon.history.store import CandleStore
    from binmon.ui.backtest.tab import BacktestTab
    from binmon.ui.backtest.work import Services, WorkerPool
    from binmon.ui.main_window import theme_palette

    existing = QApplication.instance()
    app = existing if isinstance(existing, QApplication) else QApplication([sys.argv[0]])
    app.setStyle("Fusion")
    app.setPalette(theme_palette(args.theme))
    raw = pd.read_csv(FIXTURE)
    frame = raw.assign(
        close_time=raw["open_time"] + 299_999,
        quote_volume=0.0,
        trades=0,
        taker_buy_base=0.0,
        taker_buy_quote=0.0,
    )
    with tempfile.TemporaryDirectory() as tmp, CandleStore.open(Path(tmp) / "candles.sqlite") as store:
        key = SeriesKey.spot("ETHBTC", "5m")
        first, last = int(raw["open_time"].iloc[0]), int(raw["open_time"].iloc[-1])
        store.upsert_frame(key, frame, fetched=TimeRange(first, last))
        services = Services(
            store=lambda: store,
            downloader=lambda: None,
            now_ms=lambda: time.time_ns() // 1_000_000,
            symbols=list,
            pick=lambda: ("ETHBTC", "5m"),
            runs_file=Path(tmp) / "backtests.json",
        )
        tab = BacktestTab(services, WorkerPool(2))
        tab.setWindowTitle("binmon — Backtest")
        tab.resize(*SIZE)
        tab.show()
        tab.use_stored_range()

        def wait(busy: object) -> None:
            deadline = time.monotonic() + 120
            while busy() and time.monotonic() < deadline:  # type: ignore[operator]
                app.processEvents()
                time.sleep(0.01)

        try:
            if args.view in ("result", "runs"):
                if args.view == "runs":
                    tab.form.set_strategy("sma_cross")
                    tab.run()
                    wait(lambda: tab.running)
                tab.form.set_strategy("rsi")
                tab.form.set_params({"period": 14, "low": 30, "high": 70})
                tab.run()
                wait(lambda: tab.running)
                if args.view == "runs":
                    tab.views.setCurrentWidget(tab.runs_view)
                    tab.runs_view.select(0, 1)
                    tab.runs_view.compare_selected()
            else:
                tab.form.set_strategy("sma_cross")
                tab.optimize_view.set_range("fast", 5, 30, 5)
                tab.optimize_view.set_range("slow", 40, 120, 20)
                tab.views.setCurrentWidget(tab.optimize_view)
                tab.optimize_view.run()
                wait(lambda: tab.optimize_view.running)
            for _ in range(5):
                app.processEvents()
            print(tab.status_label.text() or tab.optimize_view.status_label.text())
            args.out.parent.mkdir(parents=True, exist_ok=True)
            ok = tab.grab().save(str(args.out))
        finally:
            tab.shutdown()
    print(args.out if ok else "could not save the image")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
