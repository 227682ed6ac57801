"""Each alert operator fires on exactly the bars its definition says, on real candles.

The expected bars are computed here with plain Python loops over the real closes (and TA-Lib
called directly for indicators), independently of the vectorised ``condition_series``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import talib

from binmon.alerts.evaluate import condition_series
from binmon.alerts.rules import Condition, Operand, Operator, Subject
from binmon.core.models import Kline
from binmon.indicators.spec import default_spec

Cols = dict[str, np.ndarray]


@pytest.fixture(scope="module")
def xrp(xrpeth_1m: list[Kline]) -> Cols:
    """The real XRPETH 1m candles as columns (2,469 bars with real gaps)."""
    cols = {
        c: np.array([getattr(k, c) for k in xrpeth_1m], dtype=np.float64)
        for c in ("open", "high", "low", "close", "volume")
    }
    cols["open_time"] = np.array([k.open_time for k in xrpeth_1m], dtype=np.int64)
    return cols


@pytest.fixture(scope="module")
def ethbtc(real_dir: Path) -> Cols:
    """The real ETHBTC 5m candles (5,760 bars)."""
    lines = (real_dir / "ETHBTC-5m-2018-01-10_30.ohlcv.csv").read_text().splitlines()
    header, rows = lines[0].split(","), [line.split(",") for line in lines[1:] if line]
    return {name: np.array([float(r[i]) for r in rows]) for i, name in enumerate(header)}


def bars_where(n: int, pred: Callable[[int], bool]) -> list[int]:
    return [i for i in range(n) if pred(i)]


def fired(cond: Condition, cols: Cols) -> list[int]:
    out = condition_series(cond, cols)
    assert out.dtype == bool and out.shape == (len(cols["close"]),)
    return [int(i) for i in np.nonzero(out)[0]]


def ok(*values: float) -> bool:
    return all(not math.isnan(v) for v in values)


# ---------------------------------------------------------------- plain-Python definitions


def crosses_up(a: Sequence[float], b: Sequence[float], i: int) -> bool:
    """TradingView's ta.crossover: above now, at or below on the previous bar."""
    return i >= 1 and ok(a[i], a[i - 1], b[i], b[i - 1]) and a[i - 1] <= b[i - 1] and a[i] > b[i]


def crosses_down(a: Sequence[float], b: Sequence[float], i: int) -> bool:
    return i >= 1 and ok(a[i], a[i - 1], b[i], b[i - 1]) and a[i - 1] >= b[i - 1] and a[i] < b[i]


def inside(v: float, lo: float, hi: float) -> bool:
    return ok(v) and lo <= v <= hi


def outside(v: float, lo: float, hi: float) -> bool:
    return ok(v) and (v < lo or v > hi)


def expected_for(op: Operator, a: list[float], level: float, lo: float, hi: float, n_back: int) -> list[int]:
    lv = [level] * len(a)
    rules: dict[Operator, Callable[[int], bool]] = {
        Operator.CROSSING_UP: lambda i: crosses_up(a, lv, i),
        Operator.CROSSING_DOWN: lambda i: crosses_down(a, lv, i),
        Operator.CROSSING: lambda i: crosses_up(a, lv, i) or crosses_down(a, lv, i),
        Operator.GREATER_THAN: lambda i: ok(a[i]) and a[i] > level,
        Operator.LESS_THAN: lambda i: ok(a[i]) and a[i] < level,
        Operator.INSIDE_CHANNEL: lambda i: inside(a[i], lo, hi),
        Operator.OUTSIDE_CHANNEL: lambda i: outside(a[i], lo, hi),
        Operator.ENTERING_CHANNEL: lambda i: i >= 1 and inside(a[i], lo, hi) and outside(a[i - 1], lo, hi),
        Operator.EXITING_CHANNEL: lambda i: i >= 1 and outside(a[i], lo, hi) and inside(a[i - 1], lo, hi),
        Operator.MOVING_UP: lambda i: (
            i >= n_back and ok(a[i], a[i - n_back]) and a[i] - a[i - n_back] >= level
        ),
        Operator.MOVING_DOWN: lambda i: (
            i >= n_back and ok(a[i], a[i - n_back]) and a[i - n_back] - a[i] >= level
        ),
        Operator.MOVING_UP_PCT: lambda i: (
            i >= n_back
            and ok(a[i], a[i - n_back])
            and a[i - n_back] != 0
            and a[i] - a[i - n_back] >= level / 100.0 * abs(a[i - n_back])
        ),
        Operator.MOVING_DOWN_PCT: lambda i: (
            i >= n_back
            and ok(a[i], a[i - n_back])
            and a[i - n_back] != 0
            and a[i - n_back] - a[i] >= level / 100.0 * abs(a[i - n_back])
        ),
    }
    return bars_where(len(a), rules[op])


def condition_for(
    op: Operator, subject: Subject, level: float, lo: float, hi: float, n_back: int
) -> Condition:
    if op.operand_kinds == ("channel",):
        return Condition(subject, op, Operand.of_channel(lo, hi))
    if op.name.startswith("MOVING"):
        return Condition(subject, op, Operand.of_value(level), bars=n_back)
    return Condition(subject, op, Operand.of_value(level))


# Levels from the data itself: the median close crosses often; the channel is the middle third.
PRICE_CASES = [(op, "close", None) for op in Operator if not op.name.startswith("MOVING")] + [
    (Operator.MOVING_UP, "close", ("abs", 0.000004, 3)),
    (Operator.MOVING_DOWN, "close", ("abs", 0.000004, 3)),
    (Operator.MOVING_UP_PCT, "close", ("pct", 0.3, 5)),
    (Operator.MOVING_DOWN_PCT, "close", ("pct", 0.3, 5)),
    (Operator.CROSSING_UP, "high", None),
    (Operator.CROSSING_DOWN, "low", None),
    (Operator.MOVING_UP_PCT, "volume", ("pct", 400.0, 1)),
    (Operator.OUTSIDE_CHANNEL, "volume", None),
]


@pytest.mark.parametrize(("op", "field", "moving"), PRICE_CASES, ids=lambda v: str(v) if v else "-")
def test_each_operator_on_real_xrpeth_prices(
    xrp: Cols, op: Operator, field: str, moving: tuple[str, float, int] | None
) -> None:
    a = [float(x) for x in xrp[field]]
    lo, hi = np.quantile(a, [1 / 3, 2 / 3])
    level, n_back = float(np.median(a)), 1
    if moving is not None:
        level, n_back = moving[1], moving[2]
    subject = Subject.volume() if field == "volume" else Subject.price(field)
    want = expected_for(op, a, level, float(lo), float(hi), n_back)
    got = fired(condition_for(op, subject, level, float(lo), float(hi), n_back), xrp)
    assert want, f"{op} on {field}: the case must fire somewhere to mean anything"
    assert got == want


@pytest.mark.parametrize("op", list(Operator))
def test_each_operator_on_real_ethbtc_closes(ethbtc: Cols, op: Operator) -> None:
    a = [float(x) for x in ethbtc["close"]]
    lo, hi = (float(q) for q in np.quantile(a, [0.4, 0.6]))
    level, n_back = float(np.quantile(a, 0.55)), 1
    if op in (Operator.MOVING_UP, Operator.MOVING_DOWN):
        level, n_back = 0.0005, 4
    elif op in (Operator.MOVING_UP_PCT, Operator.MOVING_DOWN_PCT):
        level, n_back = 1.0, 6
    want = expected_for(op, a, level, lo, hi, n_back)
    assert want
    assert fired(condition_for(op, Subject.price(), level, lo, hi, n_back), ethbtc) == want


def test_ties_follow_tradingview_crossover() -> None:
    # Touching the level is not crossing it; leaving it upwards from exactly the level is.
    closes = [1.0, 2.0, 2.0, 3.0, 2.0, 1.0, 2.0, 2.5]
    cols = {"open": closes, "high": closes, "low": closes, "close": closes, "volume": [1.0] * 8}
    up = Condition(Subject.price(), Operator.CROSSING_UP, Operand.of_value(2.0))
    down = Condition(Subject.price(), Operator.CROSSING_DOWN, Operand.of_value(2.0))
    both = Condition(Subject.price(), Operator.CROSSING, Operand.of_value(2.0))
    assert fired(up, cols) == [3, 7]
    assert fired(down, cols) == [5]
    assert fired(both, cols) == [3, 5, 7]
    inside = Condition(Subject.price(), Operator.INSIDE_CHANNEL, Operand.of_channel(2.0, 2.5))
    entering = Condition(Subject.price(), Operator.ENTERING_CHANNEL, Operand.of_channel(2.0, 2.5))
    assert fired(inside, cols) == [1, 2, 4, 6, 7]  # bounds inclusive
    assert fired(entering, cols) == [1, 4, 6]


# ---------------------------------------------------------------- indicators, against TA-Lib itself


def test_rsi_crossing_up_30(xrp: Cols) -> None:
    rsi = [float(x) for x in talib.RSI(xrp["close"], timeperiod=14)]
    want = bars_where(len(rsi), lambda i: crosses_up(rsi, [30.0] * len(rsi), i))
    cond = Condition(Subject.of_indicator(default_spec("RSI")), Operator.CROSSING_UP, Operand.of_value(30))
    assert want and all(i > 14 for i in want)  # never in the warm-up
    assert fired(cond, xrp) == want


def test_sma50_crossing_up_sma200(ethbtc: Cols) -> None:
    fast = [float(x) for x in talib.SMA(ethbtc["close"], timeperiod=50)]
    slow = [float(x) for x in talib.SMA(ethbtc["close"], timeperiod=200)]
    want = bars_where(len(fast), lambda i: crosses_up(fast, slow, i))
    sma = default_spec("SMA")
    cond = Condition(
        Subject.of_indicator(replace(sma, params={"timeperiod": 50})),
        Operator.CROSSING_UP,
        Operand.of_series(Subject.of_indicator(replace(sma, params={"timeperiod": 200}))),
    )
    assert want and min(want) >= 200
    assert fired(cond, ethbtc) == want


def test_macd_crossing_down_its_signal_and_above_zero(ethbtc: Cols) -> None:
    macd, signal, _hist = (list(map(float, s)) for s in talib.MACD(ethbtc["close"], 12, 26, 9))
    spec = default_spec("MACD")
    down = Condition(
        Subject.of_indicator(spec, "macd"),
        Operator.CROSSING_DOWN,
        Operand.of_series(Subject.of_indicator(spec, "macdsignal")),
    )
    want = bars_where(len(macd), lambda i: crosses_down(macd, signal, i))
    assert want
    assert fired(down, ethbtc) == want
    above = Condition(Subject.of_indicator(spec, "macd"), Operator.GREATER_THAN, Operand.of_value(0.0))
    assert fired(above, ethbtc) == bars_where(len(macd), lambda i: ok(macd[i]) and macd[i] > 0.0)


def test_close_crossing_up_the_upper_bollinger_band(xrp: Cols) -> None:
    upper, _mid, _lower = (list(map(float, s)) for s in talib.BBANDS(xrp["close"], 20, 2.0, 2.0, 0))
    closes = [float(x) for x in xrp["close"]]
    cond = Condition(
        Subject.price(),
        Operator.CROSSING_UP,
        Operand.of_series(Subject.of_indicator(default_spec("BBANDS"), "upperband")),
    )
    want = bars_where(len(closes), lambda i: crosses_up(closes, upper, i))
    assert want
    assert fired(cond, xrp) == want


def test_rsi_moving_up_and_exiting_a_channel(xrp: Cols) -> None:
    rsi = [float(x) for x in talib.RSI(xrp["close"], timeperiod=14)]
    subject = Subject.of_indicator(default_spec("RSI"))
    moving = Condition(subject, Operator.MOVING_UP, Operand.of_value(15.0), bars=3)
    want = bars_where(len(rsi), lambda i: i >= 3 and ok(rsi[i], rsi[i - 3]) and rsi[i] - rsi[i - 3] >= 15.0)
    assert want and fired(moving, xrp) == want
    exiting = Condition(subject, Operator.EXITING_CHANNEL, Operand.of_channel(30, 70))
    want = bars_where(len(rsi), lambda i: i >= 1 and outside(rsi[i], 30, 70) and inside(rsi[i - 1], 30, 70))
    assert want and fired(exiting, xrp) == want
