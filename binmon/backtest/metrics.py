"""Backtest metrics from the equity curve and the trade list. Pure numpy, no backtrader.

Formulas (``E[i]``: equity at the close of bar ``i``, ``n`` bars; ``C``: starting cash):

* net profit = ``E[n-1] - C``; total return % = ``100 * (E[n-1] / C - 1)``.
* CAGR % = ``100 * ((E[n-1] / C) ** (1 / years) - 1)``, ``years`` = calendar span from the first
  bar's open to the last bar's close (``times[-1] + interval - times[0]``) / 365.25 days;
  -100 when the equity ends at or below 0.
* Per-bar returns ``r[i] = E[i] / E[i-1] - 1`` (``i >= 1``; the first bar's return is taken
  against ``C``). Bars per year ``B`` = 365.25 days / interval (crypto trades every day;
  ``1M`` counts 30 days). Risk-free rate 0.
  Sharpe = ``mean(r) / std(r, ddof=1) * sqrt(B)``; Sortino = ``mean(r) / sqrt(mean(min(r, 0)**2)) * sqrt(B)``;
  both 0 when the denominator is 0 (flat equity, or no losing bar for Sortino).
* Drawdown % per bar = ``100 * (E[i] / max(E[0..i], C) - 1)`` (<= 0); max drawdown % is its
  largest magnitude. Its duration: bars from the peak before the deepest point to the first
  bar back at or above that peak (to the last bar when never recovered); ms = bars x interval.
* Trade statistics over **closed** trades: count, win rate % = winners (pnl > 0) / count,
  profit factor = gross profit / gross loss (``inf`` with no loss and some profit, 0 with no
  trade), average trade = mean pnl (and mean pnl %).
* Exposure % = ``100 * (bars whose closing position is not 0) / n``.
* Buy and hold % = ``100 * (close[n-1] / close[0] - 1)`` (bought at the first close, no fees).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from binmon.backtest.model import Metrics, Trade
from binmon.core.intervals import interval_ms

__all__ = ["YEAR_MS", "bars_per_year", "compute_metrics", "drawdown_pct"]

YEAR_MS = 365.25 * 86_400_000


def bars_per_year(interval: str) -> float:
    """How many bars of ``interval`` make a year (365.25 days, markets open every day)."""
    return YEAR_MS / interval_ms(interval)


def drawdown_pct(equity: np.ndarray, cash: float) -> np.ndarray:
    """Percent below the running peak (the peak starts at ``cash``), <= 0, per bar."""
    peak = np.maximum.accumulate(np.maximum(equity, cash)) if equity.size else equity
    with np.errstate(divide="ignore", invalid="ignore"):
        dd = 100.0 * (equity / peak - 1.0)
    return np.asarray(np.nan_to_num(dd, nan=0.0), dtype=np.float64)


def _max_drawdown(equity: np.ndarray, cash: float, dd: np.ndarray) -> tuple[float, int]:
    if not equity.size or dd.min() >= 0:
        return 0.0, 0
    trough = int(np.argmin(dd))
    peaks = np.maximum.accumulate(np.maximum(equity, cash))
    peak_value = peaks[trough]
    # the peak bar: the last bar at the peak value before the trough (-1: the starting cash)
    before = np.flatnonzero(equity[: trough + 1] >= peak_value)
    peak_bar = int(before[-1]) if before.size else -1
    after = np.flatnonzero(equity[trough:] >= peak_value)
    end_bar = trough + int(after[0]) if after.size else equity.size - 1
    return float(-dd[trough]), end_bar - peak_bar


def compute_metrics(
    *,
    cash: float,
    interval: str,
    times: np.ndarray,
    equity: np.ndarray,
    position: np.ndarray,
    closes: np.ndarray,
    trades: Sequence[Trade],
) -> Metrics:
    """The :class:`Metrics` of one run (formulas in the module docstring); arrays are per bar."""
    n = int(equity.size)
    if n == 0:
        raise ValueError("no bars")
    final = float(equity[-1])
    iv = interval_ms(interval)
    years = (int(times[-1]) + iv - int(times[0])) / YEAR_MS
    growth = final / cash
    cagr = -100.0 if growth <= 0 else 100.0 * (growth ** (1.0 / years) - 1.0)
    prev = np.concatenate(([cash], equity[:-1]))
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(prev != 0, equity / prev - 1.0, 0.0)
    scale = math.sqrt(bars_per_year(interval))
    sd = float(np.std(r, ddof=1)) if n > 1 else 0.0
    mean = float(np.mean(r))
    sharpe = mean / sd * scale if sd > 0 else 0.0
    down = math.sqrt(float(np.mean(np.minimum(r, 0.0) ** 2)))
    sortino = mean / down * scale if down > 0 else 0.0
    dd = drawdown_pct(equity, cash)
    mdd, mdd_bars = _max_drawdown(equity, cash, dd)
    closed = [t for t in trades if not t.is_open]
    wins = [t.pnl for t in closed if t.pnl > 0]
    losses = [t.pnl for t in closed if t.pnl < 0]
    gross_win, gross_loss = sum(wins), -sum(losses)
    pf = gross_win / gross_loss if gross_loss > 0 else (math.inf if gross_win > 0 else 0.0)
    k = len(closed)
    return Metrics(
        net_profit=final - cash,
        total_return_pct=100.0 * (growth - 1.0),
        cagr_pct=cagr,
        sharpe=sharpe,
        sortino=sortino,
        max_drawdown_pct=mdd,
        max_drawdown_bars=mdd_bars,
        max_drawdown_ms=mdd_bars * iv,
        trades=k,
        win_rate_pct=100.0 * len(wins) / k if k else 0.0,
        profit_factor=pf,
        avg_trade=sum(t.pnl for t in closed) / k if k else 0.0,
        avg_trade_pct=sum(t.pnl_pct for t in closed) / k if k else 0.0,
        exposure_pct=100.0 * int(np.count_nonzero(position)) / n,
        buy_hold_return_pct=100.0 * (float(closes[-1]) / float(closes[0]) - 1.0),
        final_equity=final,
    )
