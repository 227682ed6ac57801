"""Backtest runner speed: binmon's fast configuration against plain backtrader, and the
optimisation speed-up with 2 worker processes. Prints JSON.

1. SMA cross (10/30) on N one-minute bars (default 100,000; a seeded geometric random walk,
   the same frame for both): bars/s of :func:`binmon.backtest.runner.run_backtest` (TA-Lib
   signal precomputed, array feed, ``stdstats=False``, the whole result: trades, equity,
   metrics) against plain backtrader with its defaults (``bt.Cerebro()``: standard observers,
   ``PandasData`` feed, ``bt.indicators.SMA`` + ``CrossOver``), same broker settings and
   sizing. Both must make the same trades (checked). Best of ``--repeat`` runs each.
   Target: ours >= 1.3x plain.
2. :func:`binmon.backtest.optimize.optimize` over a grid of 8 points on ``--opt-bars`` bars
   with a spawn process pool of 1 and of 2 workers: wall time with the pool already started
   (the steady state of the app's pool) and including the pool's start-up.

``python benchmarks/backtest.py [--bars 100000] [--repeat 3] [--opt-bars 20000]``
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import backtrader as bt
import numpy as np
import pandas as pd

from binmon.backtest.model import BacktestRequest
from binmon.backtest.optimize import optimize
from binmon.backtest.runner import run_backtest, spawn_context

GRID = {"fast": [5, 10, 15, 20], "slow": [30, 50]}


def candles(n: int, seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.001, n)))
    open_ = np.concatenate(([close[0]], close[:-1]))
    spread = np.abs(rng.normal(0.0, 0.0005, n))
    return pd.DataFrame(
        {
            "open_time": 1_600_000_000_000 + 60_000 * np.arange(n, dtype=np.int64),
            "open": open_,
            "high": np.maximum(open_, close) * (1 + spread),
            "low": np.minimum(open_, close) * (1 - spread),
            "close": close,
            "volume": rng.uniform(1.0, 10.0, n),
        }
    )


class PlainSmaCross(bt.Strategy):
    """The textbook backtrader strategy, doing what binmon's sma_cross does (95 % of equity)."""

    params = (("fast", 10), ("slow", 30))

    def __init__(self) -> None:
        self.cross = bt.indicators.CrossOver(
            bt.indicators.SMA(self.data.close, period=self.p.fast),
            bt.indicators.SMA(self.data.close, period=self.p.slow),
        )
        self.entries = 0

    def next(self) -> None:
        if self.cross[0] > 0 and self.position.size <= 0:
            self.order_target_size(target=self.broker.getvalue() * 0.95 / self.data.close[0])
            self.entries += 1
        elif self.cross[0] < 0 and self.position.size > 0:
            self.order_target_size(target=0.0)


def plain(df: pd.DataFrame) -> tuple[float, int]:
    t0 = time.perf_counter()
    frame = df.set_index(pd.to_datetime(df.open_time, unit="ms"))[["open", "high", "low", "close", "volume"]]
    cerebro = bt.Cerebro()  # defaults: stdstats=True, preload=True, runonce=True
    cerebro.adddata(bt.feeds.PandasData(dataname=frame))
    cerebro.broker.setcash(10_000.0)
    cerebro.broker.setcommission(commission=0.001)
    cerebro.addstrategy(PlainSmaCross)
    strat = cerebro.run()[0]
    return time.perf_counter() - t0, strat.entries


def ours(df: pd.DataFrame) -> tuple[float, int]:
    req = BacktestRequest("BENCH", "1m", int(df.open_time.iloc[0]), int(df.open_time.iloc[-1]))
    t0 = time.perf_counter()
    res = run_backtest(req, df)
    return time.perf_counter() - t0, len(res.trades)


def _warm(_: int) -> int:
    import binmon.backtest.runner  # noqa: F401  (the imports a real task pays once per worker)

    return 0


def opt_time(df: pd.DataFrame, workers: int) -> dict[str, float]:
    req = BacktestRequest("BENCH", "1m", int(df.open_time.iloc[0]), int(df.open_time.iloc[-1]))
    cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime
    t0 = time.perf_counter()
    with ProcessPoolExecutor(workers, mp_context=spawn_context()) as ex:
        list(ex.map(_warm, range(workers)))
        t1 = time.perf_counter()
        rows = optimize(req, GRID, df, ex)
        t2 = time.perf_counter()
    assert all(r.metrics is not None for r in rows)
    # CPU the workers used (start-up included): equal for 1 and 2 workers when the work is
    # the same; wall < CPU means the workers really ran at the same time.
    cpu = resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime - cpu0
    return {"warm_s": round(t2 - t1, 3), "with_startup_s": round(t2 - t0, 3), "workers_cpu_s": round(cpu, 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bars", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--opt-bars", type=int, default=20_000)
    ap.add_argument("--only", choices=["runner", "optimize"], default=None, help="run one of the two parts")
    args = ap.parse_args()
    out: dict[str, Any] = {"cpu_count": os.cpu_count()}
    load_before = os.getloadavg()[0]
    if args.only != "optimize":
        out.update(bench_runner(args.bars, args.repeat))
    if args.only != "runner":
        out["optimize"] = bench_optimize(args.opt_bars)
    # Other processes on this machine take cores too: a load above the core count means the
    # 2-worker figure measures contention, not the pool.
    out["load_avg_1min_before_after"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    print(json.dumps(out, indent=2))


def bench_runner(bars: int, repeat: int) -> dict[str, Any]:
    """Part 1: ours against plain backtrader (runs interleaved: a load change hits both)."""
    df = candles(bars)
    ours_runs, plain_runs = [], []
    for _ in range(repeat):
        ours_runs.append(ours(df))
        plain_runs.append(plain(df))
    ours_s = min(t for t, _ in ours_runs)
    plain_s = min(t for t, _ in plain_runs)
    our_trades, plain_entries = ours_runs[0][1], plain_runs[0][1]
    # Ours lists every round trip (an open one too); plain counts entries: the same number.
    assert our_trades == plain_entries, (our_trades, plain_entries)
    return {
        "bars": bars,
        "trades": our_trades,
        "runner_bars_per_s": round(bars / ours_s),
        "plain_backtrader_bars_per_s": round(bars / plain_s),
        "speedup_vs_plain": round(plain_s / ours_s, 2),
        "runner_s": round(ours_s, 3),
        "plain_s": round(plain_s, 3),
    }


def bench_optimize(bars: int) -> dict[str, Any]:
    """Part 2: the same grid on 1 and on 2 worker processes."""
    small = candles(bars, seed=11)
    one = opt_time(small, 1)
    two = opt_time(small, 2)
    return {
        "grid_points": len(GRID["fast"]) * len(GRID["slow"]),
        "bars": bars,
        "workers_1": one,
        "workers_2": two,
        "speedup_2_workers_warm": round(one["warm_s"] / two["warm_s"], 2),
        "speedup_2_workers_with_startup": round(one["with_startup_s"] / two["with_startup_s"], 2),
    }


if __name__ == "__main__":
    main()
