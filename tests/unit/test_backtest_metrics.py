"""Backtest metrics, checked independently of binmon.backtest.metrics.

1. A 12-bar series small enough to trade by hand: SMA(2)/SMA(3) cross, fixed size 100,
   commission 0.1 %: the trades, the equity curve and every metric are worked out below.
2. Real candles: every metric recomputed here in plain Python from the result's trade list
   and equity curve (not by calling the code under test).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from binmon.backtest.model import BacktestRequest, BacktestResult, Metrics, Trade
from binmon.backtest.runner import run_backtest

HOUR = 3_600_000
T0 = 1_699_999_200_000  # 2023-11-14 22:00 UTC, an hour boundary

# bar:        0   1  2  3   4   5   6  7  8    9  10  11
CLOSE = [10.0, 9, 8, 9, 11, 12, 11, 9, 8, 9.5, 12, 13]
# SMA(2):    -  9.5 8.5 8.5 10  11.5 11.5 10  8.5  8.75 10.75 12.5
# SMA(3):    -   -  9   8.67 9.33 10.67 11.33 10.67 9.33 8.83 9.83 11.5
# bar 4: SMA2 goes from <= SMA3 (8.5 <= 8.67) to > (10 > 9.33): buy at bar 5's open.
# bar 7: from >= (11.5 >= 11.33) to < (10 < 10.67): sell at bar 8's open.
# bar 10: from <= (8.75 <= 8.83) to > (10.75 > 9.83): buy at bar 11's open; still open at the end.
OPEN = [10.0, 10, 9, 8, 9, 11.5, 12, 11, 8.5, 8, 9.5, 12.5]
#
# Trade 1: buy 100 @ 11.5 (value 1150, commission 1.15): cash 10000 - 1151.15 = 8848.85.
#   equity at closes 5, 6, 7: 8848.85 + 100 x (12, 11, 9) = 10048.85, 9948.85, 9748.85
#   sell 100 @ 8.5 (850, commission 0.85): cash 8848.85 + 849.15 = 9698.00
#   pnl = (8.5 - 11.5) x 100 - 1.15 - 0.85 = -302.00; pnl % = -302 / 1150 = -26.2609 %
# Trade 2: buy 100 @ 12.5 (1250, commission 1.25): cash 9698 - 1251.25 = 8446.75
#   equity at close 11: 8446.75 + 1300 = 9746.75; open trade pnl = 50 - 1.25 = 48.75
EQUITY = [10000.0] * 5 + [10048.85, 9948.85, 9748.85, 9698.0, 9698.0, 9698.0, 9746.75]


def _frame(close: list[float], open_: list[float], t0: int = T0, step: int = HOUR) -> pd.DataFrame:
    c, o = np.array(close, dtype=float), np.array(open_, dtype=float)
    return pd.DataFrame(
        {
            "open_time": t0 + step * np.arange(c.size, dtype=np.int64),
            "open": o,
            "high": np.maximum(o, c) * 1.01,
            "low": np.minimum(o, c) * 0.99,
            "close": c,
            "volume": np.ones(c.size),
        }
    )


def _hand_request() -> BacktestRequest:
    return BacktestRequest(
        "TESTUSDT",
        "1h",
        T0,
        T0 + 11 * HOUR,
        strategy="sma_cross",
        params={"fast": 2, "slow": 3},
        sizing="fixed",
        size=100,
        commission=0.001,
    )


# ---------------------------------------------------------------- independent metrics


def independent_metrics(res: BacktestResult, closes: list[float]) -> dict[str, float]:
    """Every metric from the trade list and equity curve, in plain Python (formulas as documented)."""
    cash = res.request.cash
    eq = [float(x) for x in res.equity]
    times = [int(t) for t in res.times]
    n = len(eq)
    interval = times[1] - times[0]
    year = 365.25 * 86_400_000
    years = (times[-1] + interval - times[0]) / year
    rets = [eq[0] / cash - 1] + [eq[i] / eq[i - 1] - 1 for i in range(1, n)]
    mean = sum(rets) / n
    var = sum((r - mean) ** 2 for r in rets) / (n - 1)
    per_year = year / interval
    sharpe = mean / math.sqrt(var) * math.sqrt(per_year) if var > 0 else 0.0
    down = math.sqrt(sum(min(r, 0.0) ** 2 for r in rets) / n)
    sortino = mean / down * math.sqrt(per_year) if down > 0 else 0.0
    # drawdown: walk the curve keeping the peak (starting at the cash) and the deepest point
    peak, peak_bar, worst, worst_peak, worst_peak_bar, worst_bar = cash, -1, 0.0, cash, -1, -1
    for i, v in enumerate(eq):
        if v >= peak:
            peak, peak_bar = v, i
        dd = 1 - v / peak
        if dd > worst:
            worst, worst_peak, worst_peak_bar, worst_bar = dd, peak, peak_bar, i
    if worst_bar < 0:
        dd_bars = 0
    else:
        recovered = next((i for i in range(worst_bar, n) if eq[i] >= worst_peak), n - 1)
        dd_bars = recovered - worst_peak_bar
    closed = [t for t in res.trades if not t.is_open]
    wins = [t.pnl for t in closed if t.pnl > 0]
    losses = [-t.pnl for t in closed if t.pnl < 0]
    pf = sum(wins) / sum(losses) if losses else (math.inf if wins else 0.0)
    in_position = sum(1 for p in res.position if p != 0)
    return {
        "net_profit": eq[-1] - cash,
        "total_return_pct": 100 * (eq[-1] / cash - 1),
        "cagr_pct": 100 * ((eq[-1] / cash) ** (1 / years) - 1),
        "sharpe": sharpe,
        "sortino": sortino,
        "max_drawdown_pct": 100 * worst,
        "max_drawdown_bars": dd_bars,
        "trades": len(closed),
        "win_rate_pct": 100 * len(wins) / len(closed) if closed else 0.0,
        "profit_factor": pf,
        "avg_trade": sum(t.pnl for t in closed) / len(closed) if closed else 0.0,
        "exposure_pct": 100 * in_position / n,
        "buy_hold_return_pct": 100 * (closes[-1] / closes[0] - 1),
        "final_equity": eq[-1],
    }


def assert_metrics(m: Metrics, expected: dict[str, float]) -> None:
    for name, want in expected.items():
        got = getattr(m, name)
        assert got == pytest.approx(want, rel=1e-9, abs=1e-9), name


# ---------------------------------------------------------------- the hand-checked case


def test_hand_checked_sma_cross() -> None:
    res = run_backtest(_hand_request(), _frame(CLOSE, OPEN))
    assert res.bars == 12
    assert res.equity.tolist() == pytest.approx(EQUITY, abs=1e-9)
    t1, t2 = res.trades
    assert t1 == Trade(
        entry_time_ms=T0 + 5 * HOUR,
        exit_time_ms=T0 + 8 * HOUR,
        entry_price=11.5,
        exit_price=8.5,
        size=100.0,
        side="long",
        pnl=pytest.approx(-302.0),
        pnl_pct=pytest.approx(-302 / 1150 * 100),
        commission=pytest.approx(2.0),
        bars=3,
        is_open=False,
    )
    assert (t2.entry_time_ms, t2.entry_price, t2.size, t2.is_open) == (T0 + 11 * HOUR, 12.5, 100.0, True)
    assert t2.pnl == pytest.approx(48.75) and t2.exit_price == 13.0
    assert [(m.time_ms, m.price, m.kind) for m in res.markers] == [
        (T0 + 5 * HOUR, 11.5, "buy"),
        (T0 + 8 * HOUR, 8.5, "sell"),
        (T0 + 11 * HOUR, 12.5, "buy"),
    ]
    assert res.position.tolist() == [0, 0, 0, 0, 0, 100, 100, 100, 0, 0, 0, 100]

    m = res.metrics
    # By hand: net -253.25; one closed trade, a loser: win rate 0, profit factor 0, avg -302.
    assert m.net_profit == pytest.approx(-253.25)
    assert m.total_return_pct == pytest.approx(-2.5325)
    assert (m.trades, m.win_rate_pct, m.profit_factor) == (1, 0.0, 0.0)
    assert m.avg_trade == pytest.approx(-302.0)
    # In position at the closes of bars 5, 6, 7 and 11: 4 of 12 bars.
    assert m.exposure_pct == pytest.approx(100 * 4 / 12)
    # Peak 10048.85 (bar 5), trough 9698 (bar 8), never recovered: until bar 11 = 6 bars.
    assert m.max_drawdown_pct == pytest.approx(100 * (1 - 9698 / 10048.85))
    assert (m.max_drawdown_bars, m.max_drawdown_ms) == (6, 6 * HOUR)
    assert m.buy_hold_return_pct == pytest.approx(30.0)  # 10 -> 13
    assert_metrics(m, independent_metrics(res, CLOSE))
    # drawdown curve: percent below the running peak
    assert res.drawdown_pct[8] == pytest.approx(-m.max_drawdown_pct)
    assert res.buy_hold.tolist() == pytest.approx([10000 * c / 10 for c in CLOSE])


def test_percent_sizing_and_slippage_by_hand() -> None:
    req = BacktestRequest(
        "TESTUSDT", "1h", T0, T0 + 11 * HOUR, params={"fast": 2, "slow": 3}, size=50.0, slippage=0.01
    )
    res = run_backtest(req, _frame(CLOSE, OPEN))
    t1 = res.trades[0]
    # Signal at bar 4: 50 % of equity 10000 at close 11 -> 454.545... units; fills at bar 5's
    # open 11.5 + 1 % = 11.615, exit at bar 8's open 8.5 - 1 % = 8.415.
    size = 10000 * 0.5 / 11
    assert t1.size == pytest.approx(size)
    assert (t1.entry_price, t1.exit_price) == (pytest.approx(11.615), pytest.approx(8.415))
    comm = 0.001 * size * (11.615 + 8.415)
    assert t1.pnl == pytest.approx((8.415 - 11.615) * size - comm)
    assert_metrics(res.metrics, independent_metrics(res, CLOSE))


def test_long_short_reversal_splits_trades() -> None:
    req = BacktestRequest(
        "TESTUSDT", "1h", T0, T0 + 11 * HOUR, params={"fast": 2, "slow": 3}, sizing="fixed", size=100,
        direction="long_short",
    )  # fmt: skip
    res = run_backtest(req, _frame(CLOSE, OPEN))
    # long 5 -> 8, then short 100 from bar 8 (8.5) to bar 11 (12.5), then long again (open)
    sides = [(t.side, t.entry_time_ms, t.exit_time_ms, t.is_open) for t in res.trades]
    assert sides == [
        ("long", T0 + 5 * HOUR, T0 + 8 * HOUR, False),
        ("short", T0 + 8 * HOUR, T0 + 11 * HOUR, False),
        ("long", T0 + 11 * HOUR, T0 + 11 * HOUR, True),
    ]
    short = res.trades[1]
    # (8.5 - 12.5) x 100 - commission (0.85 + 1.25) on the short's own halves of the fills
    assert short.pnl == pytest.approx(-400 - 0.85 - 1.25)
    assert sum(t.pnl for t in res.trades) == pytest.approx(res.metrics.net_profit)
    assert_metrics(res.metrics, independent_metrics(res, CLOSE))


# ---------------------------------------------------------------- real candles


@pytest.mark.parametrize(("strategy", "direction"), [("rsi", "long_short"), ("sma_cross", "long")])
def test_metrics_recomputed_on_real_candles(real_dir: Path, strategy: str, direction: str) -> None:
    df = pd.read_csv(real_dir / "ETHBTC-5m-2018-01-10_30.ohlcv.csv")
    req = BacktestRequest(
        "ETHBTC", "5m", int(df.open_time.iloc[0]), int(df.open_time.iloc[-1]), strategy=strategy,
        direction=direction,  # type: ignore[arg-type]
    )  # fmt: skip
    res = run_backtest(req, df)
    assert res.metrics.trades > 5
    assert_metrics(res.metrics, independent_metrics(res, df.close.tolist()))
    # the trades' pnl (the open one marked to market) adds up to the equity's change
    assert sum(t.pnl for t in res.trades) == pytest.approx(res.metrics.net_profit, rel=1e-9)
    # each closed trade's pnl from its prices, size and commission
    for t in res.trades:
        if not t.is_open:
            sign = 1 if t.side == "long" else -1
            assert t.pnl == pytest.approx(sign * (t.exit_price - t.entry_price) * t.size - t.commission)


def test_result_json_round_trip() -> None:
    res = run_backtest(_hand_request(), _frame(CLOSE, OPEN))
    back = BacktestResult.from_dict(res.to_dict())
    assert back.metrics == res.metrics and back.trades == res.trades and back.markers == res.markers
    assert back.request == res.request
    np.testing.assert_array_equal(back.equity, res.equity)
    assert [i.name for i in back.indicators] == ["SMA(2)", "SMA(3)"]
    lean = res.to_dict(curves=False)
    assert "equity" not in lean and lean["metrics"]["trades"] == 1
