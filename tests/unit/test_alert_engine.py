"""The live alert engine: frequencies, expiry, pause, idempotence, restarts, and agreement
with the vectorised semantics when the real candles are replayed bar by bar."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from binmon.alerts.engine import AlertEngine, Fire
from binmon.alerts.evaluate import condition_series
from binmon.alerts.ledger import Ledger, fire_from_dict, fire_to_dict
from binmon.alerts.rules import AlertRule, Condition, Frequency, Operand, Operator, Subject
from binmon.core.models import Kline
from binmon.indicators.spec import default_spec

MIN = 60_000
T0 = 1_717_372_800_000


def kl(i: int, close: float, *, closed: bool = True, volume: float = 1.0, symbol: str = "BTCUSDT") -> Kline:
    """Bar ``i`` of a synthetic 1m series (open = close, high/low around it)."""
    t = T0 + i * MIN
    return Kline(
        symbol, "1m", t, t + MIN - 1, close, close + 0.5, close - 0.5, close, volume, 0.0, 1, 0.0, 0.0, closed
    )


def rule(cond: Condition, freq: Frequency = Frequency.ONCE_PER_BAR_CLOSE, **kw: object) -> AlertRule:
    base = AlertRule("r1", "BTCUSDT", "1m", cond, freq, created_ms=0)
    return replace(base, **kw)  # type: ignore[arg-type]


def above(level: float) -> Condition:
    return Condition(Subject.price(), Operator.GREATER_THAN, Operand.of_value(level))


def cross(level: float) -> Condition:
    return Condition(Subject.price(), Operator.CROSSING_UP, Operand.of_value(level))


def feed(engine: AlertEngine, klines: list[Kline], now_ms: int = 0) -> list[Fire]:
    out: list[Fire] = []
    for k in klines:
        out += engine.on_kline(k.symbol, k.interval, k, now_ms)
    return out


def history(n: int, close: float = 1.0) -> list[Kline]:
    return [kl(i, close) for i in range(n)]


# ---------------------------------------------------------------- agreement with condition_series


def forming_steps(k: Kline) -> list[Kline]:
    """Two intrabar states of a real bar before its close (volume growing, prices inside the bar)."""
    mid = (k.high + k.low) / 2
    return [
        replace(k, closed=False, close=k.open, high=k.open, low=k.open, volume=k.volume / 3),
        replace(k, closed=False, close=mid, high=max(k.open, mid), low=min(k.open, mid), volume=k.volume / 2),
    ]


SMA = default_spec("SMA")
REPLAY_CASES = {
    "rsi_up_30": Condition(
        Subject.of_indicator(default_spec("RSI")), Operator.CROSSING_UP, Operand.of_value(30)
    ),
    "sma20_x_sma50": Condition(
        Subject.of_indicator(replace(SMA, params={"timeperiod": 20})),
        Operator.CROSSING,
        Operand.of_series(Subject.of_indicator(replace(SMA, params={"timeperiod": 50}))),
    ),
    "macd_down_signal": Condition(
        Subject.of_indicator(default_spec("MACD"), "macd"),
        Operator.CROSSING_DOWN,
        Operand.of_series(Subject.of_indicator(default_spec("MACD"), "macdsignal")),
    ),
    "close_moving_down_pct": Condition(
        Subject.price(), Operator.MOVING_DOWN_PCT, Operand.of_value(0.4), bars=4
    ),
    "high_entering": Condition(
        Subject.price("high"), Operator.ENTERING_CHANNEL, Operand.of_channel(0.00146, 0.00149)
    ),
    "volume_above": Condition(Subject.volume(), Operator.GREATER_THAN, Operand.of_value(20000.0)),
}


@pytest.mark.parametrize("name", list(REPLAY_CASES))
def test_live_replay_in_once_per_bar_close_fires_exactly_where_condition_series_is_true(
    xrpeth_1m: list[Kline], name: str
) -> None:
    cond = REPLAY_CASES[name]
    start = 300
    r = replace(rule(cond), symbol="XRPETH")
    engine = AlertEngine([r])
    assert engine.load("XRPETH", "1m", xrpeth_1m[:start])
    fired: list[int] = []
    for k in xrpeth_1m[start:]:
        for step in [*forming_steps(k), k]:
            for f in engine.on_kline("XRPETH", "1m", step, 0):
                assert step.closed and f.bar_closed
                fired.append(f.bar_open_ms)
    cols = {
        c: np.array([getattr(k, c) for k in xrpeth_1m]) for c in ("open", "high", "low", "close", "volume")
    }
    want = [xrpeth_1m[i].open_time for i in np.nonzero(condition_series(cond, cols))[0] if i >= start]
    assert want, "the case must fire in the replayed part"
    assert fired == want


# ---------------------------------------------------------------- frequencies


def test_once_fires_intrabar_then_is_triggered_for_good() -> None:
    engine = AlertEngine([rule(above(2.0), Frequency.ONCE)])
    engine.load("BTCUSDT", "1m", history(5))
    assert engine.streams() == {("BTCUSDT", "1m")}
    assert feed(engine, [kl(5, 1.5, closed=False, volume=1)]) == []
    (f,) = feed(engine, [kl(5, 2.5, closed=False, volume=2)], now_ms=123)
    assert (f.rule_id, f.bar_open_ms, f.price, f.value, f.bar_closed, f.time_ms) == (
        "r1",
        T0 + 5 * MIN,
        2.5,
        2.5,
        False,
        123,
    )
    assert (
        f.message == "BTCUSDT 1m: close greater than 2 (price 2.5)" and f.rule_name == "close greater than 2"
    )
    assert engine.status("r1") == "triggered" and engine.last_fired("r1") == 123
    assert feed(engine, [kl(5, 3.0, volume=3), kl(6, 4.0), kl(7, 5.0)]) == []
    assert engine.streams() == set()
    engine.reset("r1")
    engine.set_rules(engine.rules)
    assert engine.status("r1") == "active"
    assert len(feed(engine, [kl(8, 5.0)])) == 1


def test_once_per_bar_fires_at_the_first_intrabar_hit_and_not_again_in_that_bar() -> None:
    engine = AlertEngine([rule(above(2.0), Frequency.ONCE_PER_BAR)])
    engine.load("BTCUSDT", "1m", history(5))
    bar5 = [
        kl(5, 1.8, closed=False, volume=1),
        kl(5, 2.2, closed=False, volume=2),
        kl(5, 2.4, closed=False, volume=3),
        kl(5, 2.6, volume=4),
    ]
    fires = feed(engine, bar5)
    assert [(f.bar_open_ms, f.price, f.bar_closed) for f in fires] == [(T0 + 5 * MIN, 2.2, False)]
    fires = feed(engine, [kl(6, 2.7, closed=False, volume=1), kl(6, 2.8, volume=2), kl(7, 1.0, volume=1)])
    assert [(f.bar_open_ms, f.price) for f in fires] == [(T0 + 6 * MIN, 2.7)]


def test_intrabar_crossing_compares_with_the_previous_closed_bar() -> None:
    # The forming bar crosses 2.0 and comes back: once_per_bar fires intrabar, once_per_bar_close does not.
    per_bar = rule(cross(2.0), Frequency.ONCE_PER_BAR)
    on_close = replace(rule(cross(2.0), Frequency.ONCE_PER_BAR_CLOSE), id="r2")
    engine = AlertEngine([per_bar, on_close])
    engine.load("BTCUSDT", "1m", history(5, close=1.5))
    fires = feed(
        engine, [kl(5, 2.5, closed=False, volume=1), kl(5, 1.9, closed=False, volume=2), kl(5, 1.9, volume=3)]
    )
    assert [(f.rule_id, f.price) for f in fires] == [("r1", 2.5)]
    # Next bar: intrabar 1.9 -> 2.1 crosses relative to the CLOSED 1.9; both fire (r2 at the close).
    fires = feed(engine, [kl(6, 2.1, closed=False, volume=1), kl(6, 2.2, volume=2)])
    assert [(f.rule_id, f.price, f.bar_closed) for f in fires] == [("r1", 2.1, False), ("r2", 2.2, True)]


def test_once_per_bar_close_ignores_forming_updates() -> None:
    engine = AlertEngine([rule(above(2.0), Frequency.ONCE_PER_BAR_CLOSE)])
    engine.load("BTCUSDT", "1m", history(5))
    assert feed(engine, [kl(5, 3.0, closed=False, volume=v) for v in (1, 2, 3)]) == []
    assert feed(engine, [kl(5, 1.0, volume=4)]) == []  # closed below: nothing
    assert [f.bar_open_ms for f in feed(engine, [kl(6, 2.5, closed=False), kl(6, 2.5, volume=2)])] == [
        T0 + 6 * MIN
    ]


def test_every_time_respects_the_minimum_interval() -> None:
    engine = AlertEngine([rule(above(2.0), Frequency.EVERY_TIME, min_interval_s=10.0)])
    engine.load("BTCUSDT", "1m", history(5))
    times = []
    for j, now in enumerate([0, 4_000, 9_999, 10_000, 15_000, 20_500]):
        times += [
            f.time_ms for f in engine.on_kline("BTCUSDT", "1m", kl(5, 2.5, closed=False, volume=j + 1), now)
        ]
    assert times == [0, 10_000, 20_500]
    no_gap = AlertEngine([rule(above(2.0), Frequency.EVERY_TIME)])
    no_gap.load("BTCUSDT", "1m", history(5))
    steps = [kl(5, 2.5, closed=False, volume=1), kl(5, 2.6, closed=False, volume=2), kl(5, 2.7, volume=3)]
    assert len(feed(no_gap, steps)) == 3


def test_expiry_and_pause() -> None:
    now = [0]
    expiring = rule(above(2.0), Frequency.ONCE_PER_BAR, expires_ms=1_000)
    paused = replace(rule(above(2.0), Frequency.ONCE_PER_BAR), id="r2", enabled=False)
    engine = AlertEngine([expiring, paused], clock=lambda: now[0])
    engine.load("BTCUSDT", "1m", history(5))
    assert (engine.status("r1"), engine.status("r2")) == ("active", "paused")
    assert [f.rule_id for f in engine.on_kline("BTCUSDT", "1m", kl(5, 3.0), 999)] == ["r1"]
    now[0] = 1_000
    assert engine.status("r1") == "expired"
    assert engine.streams() == set()
    assert engine.on_kline("BTCUSDT", "1m", kl(6, 3.0), 1_000) == []
    with pytest.raises(KeyError):
        engine.status("nope")


# ---------------------------------------------------------------- idempotence


def test_redelivered_bars_never_fire_twice() -> None:
    engine = AlertEngine(
        [
            rule(above(2.0), Frequency.ONCE_PER_BAR_CLOSE),
            replace(rule(above(2.0), Frequency.ONCE_PER_BAR), id="r2"),
            replace(rule(above(2.0), Frequency.EVERY_TIME), id="r3"),
        ]
    )
    engine.load("BTCUSDT", "1m", history(5))
    live = [
        kl(5, 2.5, closed=False, volume=1),
        kl(5, 2.6, volume=2),
        kl(6, 2.7, closed=False, volume=1),
        kl(6, 2.8, volume=2),
    ]
    first = feed(engine, live)
    assert sorted((f.rule_id, f.bar_open_ms - T0) for f in first) == sorted(
        [("r1", 5 * MIN), ("r1", 6 * MIN), ("r2", 5 * MIN), ("r2", 6 * MIN)]
        + [("r3", t) for t in (5 * MIN, 5 * MIN, 6 * MIN, 6 * MIN)]
    )
    # A reconnect: the backfill re-delivers closed bars, then a stale forming row, then the same bar again.
    again = [kl(5, 2.6, volume=2), kl(6, 2.7, closed=False, volume=1), kl(6, 2.8, volume=2), kl(4, 1.0)]
    assert feed(engine, again) == []
    assert feed(engine, [kl(7, 3.0, closed=False, volume=1), kl(7, 3.0, closed=False, volume=1)]) != []
    assert feed(engine, [kl(7, 3.0, closed=False, volume=1)]) == []  # the same event again


def test_a_restart_with_the_saved_ledger_does_not_refire(xrpeth_1m: list[Kline]) -> None:
    cond = REPLAY_CASES["close_moving_down_pct"]
    rules = [
        replace(rule(cond, Frequency.ONCE_PER_BAR_CLOSE), symbol="XRPETH"),
        replace(rule(cond, Frequency.EVERY_TIME), id="r2", symbol="XRPETH"),
        replace(rule(cond, Frequency.ONCE_PER_BAR), id="r3", symbol="XRPETH"),
    ]
    first = AlertEngine(rules)
    first.load("XRPETH", "1m", xrpeth_1m[:300])
    before = feed(first, xrpeth_1m[300:1200])
    assert {f.rule_id for f in before} == {"r1", "r2", "r3"}
    saved = json.dumps(first.ledger.to_dict())

    # The app restarts: the stored history ends before the last fires, and the stream
    # client backfills the bars from there (bars that already fired come again).
    second = AlertEngine(rules, Ledger.from_dict(json.loads(saved)))
    second.load("XRPETH", "1m", xrpeth_1m[:1000])
    assert feed(second, xrpeth_1m[1000:1200]) == []
    after = feed(second, xrpeth_1m[1200:])
    reference = AlertEngine(rules)
    reference.load("XRPETH", "1m", xrpeth_1m[:300])
    everything = feed(reference, xrpeth_1m[300:])
    assert after and [(f.rule_id, f.bar_open_ms) for f in after] == [
        (f.rule_id, f.bar_open_ms) for f in everything if f.bar_open_ms >= xrpeth_1m[1200].open_time
    ]


def test_load_keeps_live_bars_newer_than_the_history_and_never_fires() -> None:
    engine = AlertEngine([rule(cross(2.0), Frequency.ONCE_PER_BAR_CLOSE)])
    # Live bars arrive before the history (the stream was already subscribed by the chart).
    assert feed(engine, [kl(10, 1.0), kl(11, 1.5, closed=False)]) == []
    assert engine.load("BTCUSDT", "1m", [kl(i, 3.0 if i == 9 else 1.0) for i in range(10)])
    assert engine.loaded("BTCUSDT", "1m")
    # Bar 11 closes at 2.5: crossing relative to bar 10 (1.0), which the load did not lose.
    assert [f.bar_open_ms for f in feed(engine, [kl(11, 2.5, volume=2)])] == [T0 + 11 * MIN]


def test_unneeded_streams_and_invalid_rules_are_ignored() -> None:
    bad = replace(rule(above(1.0)), id="bad", interval="2m")
    engine = AlertEngine([rule(above(1.0)), bad])
    assert "bad" in engine.errors and "interval" in engine.errors["bad"]
    assert not engine.load("ETHUSDT", "1m", history(3))
    assert engine.on_kline("ETHUSDT", "1m", kl(0, 5.0, symbol="ETHUSDT"), 0) == []


def test_fires_and_ledgers_round_trip_through_json() -> None:
    engine = AlertEngine([rule(above(2.0), Frequency.ONCE)])
    engine.load("BTCUSDT", "1m", history(3))
    (f,) = feed(engine, [kl(3, 2.5)])
    assert fire_from_dict(json.loads(json.dumps(fire_to_dict(f)))) == f
    assert Ledger.from_dict(json.loads(json.dumps(engine.ledger.to_dict()))) == engine.ledger
    with pytest.raises(ValueError, match="malformed entry"):
        Ledger.from_dict({"v": 1, "rules": {"x": {"bar_open_ms": "soon"}}})
