"""Built-in strategies on real candles: trades happen exactly where TA-Lib says, runs are
deterministic, and the rule strategy enters where the alert engine fires."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import talib

from binmon.alerts.engine import AlertEngine
from binmon.alerts.evaluate import condition_series
from binmon.alerts.rules import AlertRule, Condition, Frequency, Operand, Operator, Subject
from binmon.backtest.model import BacktestRequest, BacktestResult, strategies, strategy_info, validate_params
from binmon.backtest.rule import condition_to_value
from binmon.backtest.runner import run_backtest
from binmon.core.models import Kline
from binmon.indicators.spec import default_spec

FILE = "ETHBTC-5m-2018-01-10_30.ohlcv.csv"
FIVE_MIN = 300_000


@pytest.fixture(scope="module")
def candles(real_dir: Path) -> pd.DataFrame:
    return pd.read_csv(real_dir / FILE)


def _req(df: pd.DataFrame, strategy: str, params: dict[str, Any] | None = None, **kw: Any) -> BacktestRequest:
    return BacktestRequest(
        "ETHBTC",
        "5m",
        int(df.open_time.iloc[0]),
        int(df.open_time.iloc[-1]),
        strategy=strategy,
        params=params or {},
        **kw,
    )


def _up(a: np.ndarray, b: np.ndarray | float) -> np.ndarray:
    """Written again here on purpose (not binmon's cross_up): a[i-1] <= b[i-1] and a[i] > b[i]."""
    b = np.broadcast_to(b, a.shape)
    out = np.zeros(a.size, dtype=bool)
    for i in range(1, a.size):
        out[i] = bool(a[i - 1] <= b[i - 1] and a[i] > b[i])
    return out


def _down(a: np.ndarray, b: np.ndarray | float) -> np.ndarray:
    b = np.broadcast_to(b, a.shape)
    out = np.zeros(a.size, dtype=bool)
    for i in range(1, a.size):
        out[i] = bool(a[i - 1] >= b[i - 1] and a[i] < b[i])
    return out


def talib_signals(name: str, df: pd.DataFrame, p: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """(buy, sell) bars straight from TA-Lib, as each strategy's description says."""
    c = df.close.to_numpy(dtype=float)
    if name in ("sma_cross", "ema_cross"):
        f = talib.SMA if name == "sma_cross" else talib.EMA
        fast, slow = f(c, p["fast"]), f(c, p["slow"])
        return _up(fast, slow), _down(fast, slow)
    if name == "rsi":
        r = talib.RSI(c, p["period"])
        return _up(r, p["low"]), _down(r, p["high"])
    if name == "macd":
        m, s, _ = talib.MACD(c, p["fast"], p["slow"], p["signal"])
        return _up(m, s), _down(m, s)
    if name == "bbands":
        upper, _, lower = talib.BBANDS(c, p["period"], p["nbdev"], p["nbdev"], 0)
        return _down(c, lower), _up(c, upper)
    raise AssertionError(name)


def expected_trades(buy: np.ndarray, sell: np.ndarray, long_short: bool) -> list[tuple[int, int, str]]:
    """(entry bar, exit bar or -1, side) walking the signals: a decision at bar i fills at i + 1."""
    n = buy.size
    pos, entry, out = 0, -1, []
    for i in range(n - 1):  # a signal on the last bar has no next bar to fill on
        b, s = buy[i] and not sell[i], sell[i] and not buy[i]
        if b and pos <= 0:
            if pos < 0:
                out.append((entry, i + 1, "short"))
            pos, entry = 1, i + 1
        elif s and pos > 0:
            out.append((entry, i + 1, "long"))
            pos, entry = (-1, i + 1) if long_short else (0, -1)
        elif s and pos == 0 and long_short:
            pos, entry = -1, i + 1
    if pos != 0:
        out.append((entry, -1, "long" if pos > 0 else "short"))
    return out


def actual_trades(res: BacktestResult) -> list[tuple[int, int, str]]:
    t0 = int(res.times[0])
    return [
        (
            (t.entry_time_ms - t0) // FIVE_MIN,
            -1 if t.is_open else (t.exit_time_ms - t0) // FIVE_MIN,
            t.side,
        )
        for t in res.trades
    ]


PARAMS: dict[str, dict[str, Any]] = {
    "sma_cross": {"fast": 7, "slow": 25},
    "ema_cross": {"fast": 12, "slow": 40},
    "rsi": {"period": 10, "low": 25, "high": 75},
    "macd": {},
    "bbands": {"period": 30, "nbdev": 2.5},
}


def test_candles_have_no_gaps_in_time(candles: pd.DataFrame) -> None:
    # the bar-index arithmetic of these tests relies on it
    assert (np.diff(candles.open_time.to_numpy()) == FIVE_MIN).all()


@pytest.mark.parametrize("direction", ["long", "long_short"])
@pytest.mark.parametrize("name", list(PARAMS))
def test_trades_where_talib_says(candles: pd.DataFrame, name: str, direction: str) -> None:
    params = validate_params(name, PARAMS[name])
    res = run_backtest(_req(candles, name, params, direction=direction), candles)
    buy, sell = talib_signals(name, candles, params)
    want = expected_trades(buy, sell, direction == "long_short")
    assert len(want) >= 5
    assert actual_trades(res) == want
    assert not res.warnings
    # fills at the next bar's open (no slippage by default)
    opens = candles.open.to_numpy()
    for t, (entry, _, _) in zip(res.trades, want, strict=True):
        assert t.entry_price == opens[entry]
    assert {i.name for i in res.indicators}  # something to plot


def test_runs_are_deterministic(candles: pd.DataFrame) -> None:
    req = _req(candles, "macd", direction="long_short", slippage=0.0005)
    a, b = run_backtest(req, candles), run_backtest(req, candles)
    da, db = a.to_dict(), b.to_dict()
    da.pop("elapsed_s"), db.pop("elapsed_s")
    assert da == db


def test_strategy_infos_and_validation() -> None:
    names = [s.name for s in strategies()]
    assert names == ["sma_cross", "ema_cross", "rsi", "macd", "bbands", "rule"]
    for s in strategies():
        assert s.title and s.description and s.params
        validate_params(s.name, s.defaults())
    assert validate_params("sma_cross", {"fast": "5", "slow": 20.0}) == {"fast": 5, "slow": 20}
    bad = {
        ("sma_cross", "fast", 30): "fast must be < slow",
        ("rsi", "period", 1): "period must be >= 2",
        ("rsi", "low", 80): "low must be < high",
        ("sma_cross", "fast", 2.5): "fast must be an integer (got 2.5)",
        ("bbands", "nbdev", "x"): "nbdev must be a number (got 'x')",
    }
    for (name, param, value), message in bad.items():
        with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
            validate_params(name, {param: value})
    with pytest.raises(ValueError, match="has no parameter 'speed'"):
        validate_params("macd", {"speed": 3})
    with pytest.raises(ValueError, match="unknown strategy 'nope'"):
        strategy_info("nope")


# ---------------------------------------------------------------- rule strategy vs alert engine


def _klines(df: pd.DataFrame) -> list[Kline]:
    return [
        Kline("ETHBTC", "5m", int(t), int(t) + FIVE_MIN - 1, o, h, lo, c, v, 0.0, 0, 0.0, 0.0, True)
        for t, o, h, lo, c, v in zip(df.open_time, df.open, df.high, df.low, df.close, df.volume, strict=True)
    ]


def _rsi(period: int) -> Subject:
    spec = default_spec("RSI", id="rsi")
    return Subject.of_indicator(replace(spec, params={"timeperiod": period}), "real")


CONDITIONS = {
    "rsi_up": Condition(_rsi(10), Operator.CROSSING_UP, Operand.of_value(30.0)),
    "close_over_ema": Condition(
        Subject.price(),
        Operator.CROSSING_UP,
        Operand.of_series(
            Subject.of_indicator(replace(default_spec("EMA", id="ema"), params={"timeperiod": 50}))
        ),
    ),
}


@pytest.mark.parametrize("which", list(CONDITIONS))
def test_rule_strategy_enters_where_the_alert_engine_fires(candles: pd.DataFrame, which: str) -> None:
    entry = CONDITIONS[which]
    exit_ = Condition(_rsi(10), Operator.CROSSING_DOWN, Operand.of_value(70.0))
    # the alert engine, fed bar by bar after a history of `warm` bars (load never fires)
    warm = 300
    rule = AlertRule("r1", "ETHBTC", "5m", entry, frequency=Frequency.ONCE_PER_BAR_CLOSE, created_ms=0)
    engine = AlertEngine([rule], clock=lambda: 0)
    assert engine.load("ETHBTC", "5m", candles.iloc[:warm])
    fired = [
        f.bar_open_ms for k in _klines(candles.iloc[warm:]) for f in engine.on_kline("ETHBTC", "5m", k, 0)
    ]
    assert len(fired) >= 5

    params = {"entry": condition_to_value(entry), "exit": condition_to_value(exit_)}
    res = run_backtest(_req(candles, "rule", params), candles)
    times = candles.open_time.to_numpy()
    buy = condition_series(entry, candles)
    sell = condition_series(exit_, candles)
    # 1. the strategy's buy signals are the engine's fires (after its history) ...
    assert times[buy][times[buy] >= times[warm]].tolist() == fired
    # 2. ... and the trades follow those signals exactly
    assert actual_trades(res) == expected_trades(buy, sell, False)
    # every entry was decided on a bar where the alert fired (or would have, inside the history)
    decided = [int(np.searchsorted(times, t.entry_time_ms)) - 1 for t in res.trades]
    assert all(buy[i] for i in decided)


def test_rule_with_the_rsi_conditions_equals_the_rsi_strategy(candles: pd.DataFrame) -> None:
    params = {
        "entry": condition_to_value(Condition(_rsi(14), Operator.CROSSING_UP, Operand.of_value(30.0))),
        "exit": condition_to_value(Condition(_rsi(14), Operator.CROSSING_DOWN, Operand.of_value(70.0))),
    }
    a = run_backtest(_req(candles, "rule", params), candles)
    b = run_backtest(_req(candles, "rsi"), candles)
    assert a.trades == b.trades and a.metrics == b.metrics


def test_rule_params_are_checked() -> None:
    good = strategy_info("rule").defaults()
    bad = dict(good, entry={**good["entry"], "operator": "sideways"})
    with pytest.raises(ValueError, match=r"^entry: operator 'sideways' is unknown"):
        validate_params("rule", bad)
    with pytest.raises(ValueError, match=re.escape("exit must be a condition (got int)")):
        validate_params("rule", dict(good, exit=3))
