"""Backtest commands: ``binmon backtest`` and ``binmon optimize``, over the local candle store.

* ``backtest SYMBOL --interval 1h --start 2024-01-01 [--end ...] --strategy sma_cross
  --param fast=10 --param slow=30 [--cash 10000] [--commission 0.001] [--slippage 0]
  [--size 95%|0.5] [--long-short] [--strategy-file F.py] [--download] [--json FILE]``
  prints a metrics table; ``--json`` writes the request, metrics and trades.
* ``optimize ... --grid fast=5:20:5 --grid slow=20,30,50 [--workers N] [--cluster tcp://H:P]
  [--sort sharpe] [--top 20] [--json FILE]`` runs every combination in parallel.

Candles come from the store ``binmon download`` fills (``--basedir``, ``--demo`` as there).
Missing candles are an error naming how many and the command that fetches them, or with
``--download`` are fetched first through the same downloader.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from binmon.cli.common import add_archive_arg, add_endpoint_args
from binmon.cli.history_cmd import _date_arg, _interval_arg, _market_arg

#: The metric ``optimize --sort`` accepts (fields of binmon.backtest.model.Metrics).
SORT_CHOICES = (
    "total_return_pct",
    "net_profit",
    "cagr_pct",
    "sharpe",
    "sortino",
    "max_drawdown_pct",
    "profit_factor",
    "win_rate_pct",
    "avg_trade",
    "trades",
    "exposure_pct",
)


def _lazy(name: str) -> Any:
    """``binmon.cli.backtest_run.<name>``, imported when the command runs (it loads backtrader,
    TA-Lib, pandas: ~1 s the other commands need not pay)."""

    def call(args: argparse.Namespace) -> int:
        from binmon.cli import backtest_run

        return int(getattr(backtest_run, name)(args))

    return call


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("symbol", metavar="SYMBOL", help="e.g. BTCUSDT")
    _interval_arg(p, required=True)
    p.add_argument("--start", required=True, type=_date_arg, help="first candle's date (UTC unless zoned)")
    p.add_argument("--end", type=_date_arg, default=None, help="last date, inclusive (default: now)")
    _market_arg(p)
    g = p.add_argument_group("strategy")
    g.add_argument(
        "--strategy",
        default="sma_cross",
        help="sma_cross (default), ema_cross, rsi, macd, bbands or rule",
    )
    g.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a strategy parameter (repeat); the rule strategy's entry/exit take a condition as JSON",
    )
    g.add_argument(
        "--strategy-file",
        type=Path,
        default=None,
        metavar="FILE",
        help="a .py file holding one backtrader.Strategy subclass (replaces --strategy)",
    )
    b = p.add_argument_group("broker")
    b.add_argument("--cash", type=float, default=10_000.0, help="starting cash (default 10000)")
    b.add_argument(
        "--commission",
        type=float,
        default=0.001,
        help="per-side fraction of the traded value (default 0.001)",
    )
    b.add_argument(
        "--slippage", type=float, default=0.0, help="fraction of the price, against you (default 0)"
    )
    b.add_argument(
        "--size",
        default="95%",
        metavar="SIZE",
        help="position size: a percent of equity (95%%, the default) or a fixed amount of the base asset",
    )
    b.add_argument("--long-short", action="store_true", help="sell signals also open shorts")
    p.add_argument(
        "--download",
        action="store_true",
        help="fetch missing candles first (REST / archive, like `download`)",
    )
    p.add_argument(
        "--allow-gaps",
        action="store_true",
        help="run on what is stored even where candles are missing (e.g. an imported CSV never checked "
        "against the exchange)",
    )
    p.add_argument("--json", type=Path, default=None, metavar="FILE", help="also write the results as JSON")
    p.add_argument("--basedir", type=Path, default=None, help="keep binmon's data under DIR/data")
    add_endpoint_args(p)  # --demo (the demo store, and simulator endpoints for --download)
    add_archive_arg(p)


def register(sub: Any) -> None:
    """Add ``backtest`` and ``optimize`` to ``sub`` (argparse subparsers)."""
    p = sub.add_parser("backtest", help="backtest a strategy on stored candles")
    _common(p)
    p.add_argument("--trades", type=int, default=10, metavar="N", help="list the last N trades (default 10)")
    p.set_defaults(func=_lazy("run_backtest_cmd"))

    p = sub.add_parser("optimize", help="backtest a grid of strategy parameters in parallel")
    _common(p)
    p.add_argument(
        "--grid",
        action="append",
        default=[],
        required=True,
        metavar="NAME=SPEC",
        help="values to try: FROM:TO:STEP (TO included) or a comma list, e.g. fast=5:20:5 slow=20,30,50",
    )
    p.add_argument("--workers", type=int, default=None, help="local worker processes (default: CPU count)")
    p.add_argument(
        "--cluster",
        default=None,
        metavar="tcp://HOST:PORT",
        help="run on a Dask scheduler (needs binmon[cluster])",
    )
    p.add_argument(
        "--sort", choices=SORT_CHOICES, default="total_return_pct", help="rank by (default total return)"
    )
    p.add_argument("--top", type=int, default=20, metavar="N", help="rows to print (default 20)")
    p.set_defaults(func=_lazy("run_optimize_cmd"))
