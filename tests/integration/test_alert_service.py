"""The alert service on the real simulator: rules fire on a symbol that is not on screen, survive
a chart switch, and a forced reconnect + backfill never fires a rule twice for one bar."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from binmon.alerts.engine import Fire
from binmon.alerts.rules import AlertRule, Condition, Frequency, Operand, Operator, Subject
from binmon.binance.rest import RestClient
from binmon.core.events import ConnectionStatus, ConnState
from binmon.core.models import KlineEvent
from binmon.indicators.spec import default_spec
from binmon.services.alerts import AlertService
from binmon.services.market import MarketService
from binmon.sim.config import SimConfig
from binmon.sim.thread import SimThread

MIN = 60_000


@pytest.fixture
def sim_config(sim_config: SimConfig) -> SimConfig:
    # 60x: a 1m candle closes every real second.
    return replace(sim_config, speed=60.0)


class MarketSink:
    def __init__(self) -> None:
        self.states: list[ConnState] = []

    def market_status(self, status: ConnectionStatus) -> None:
        self.states.append(status.state)

    def __getattr__(self, name: str) -> Any:
        return lambda *args: None


class AlertSink:
    def __init__(self) -> None:
        self.fires: list[Fire] = []
        self.messages: list[str] = []
        self.changes = 0

    def alert_fired(self, fire: Fire) -> None:
        self.fires.append(fire)

    def alerts_changed(self) -> None:
        self.changes += 1

    def alert_message(self, text: str) -> None:
        self.messages.append(text)

    def bars(self, rule_id: str) -> list[int]:
        return [f.bar_open_ms for f in self.fires if f.rule_id == rule_id]


async def wait_for(cond: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


def eth_rule(rule_id: str, cond: Condition, freq: Frequency) -> AlertRule:
    return AlertRule(rule_id, "ETHUSDT", "1m", cond, freq, created_ms=0)


async def test_rules_fire_off_screen_and_a_reconnect_with_backfill_never_fires_twice(
    sim_thread: SimThread, tmp_path: Path
) -> None:
    rest = RestClient(sim_thread.urls.rest)
    msink, asink = MarketSink(), AlertSink()
    market = MarketService(rest, sim_thread.urls.ws, msink)
    service = AlertService(
        market,
        lambda s, i, n: rest.klines(s, i, limit=n),
        asink,
        tmp_path / "alerts.json",
        tmp_path / "alerts.sqlite",
    )
    every_close = eth_rule(
        "close",
        Condition(Subject.price(), Operator.GREATER_THAN, Operand.of_value(0.0)),
        Frequency.ONCE_PER_BAR_CLOSE,
    )
    every_bar = eth_rule(
        "bar",
        Condition(Subject.volume(), Operator.GREATER_THAN, Operand.of_value(0.0)),
        Frequency.ONCE_PER_BAR,
    )
    rsi = eth_rule(
        "rsi",
        Condition(
            Subject.of_indicator(default_spec("RSI")), Operator.INSIDE_CHANNEL, Operand.of_channel(0, 100)
        ),
        Frequency.ONCE_PER_BAR_CLOSE,
    )
    try:
        await market.start("BTCUSDT", "1m")
        await service.start()
        for r in (every_close, every_bar, rsi):
            service.add(r)
        assert {r.id for r in service.rules()} == {"close", "bar", "rsi"}
        await wait_for(lambda: len(asink.bars("close")) >= 3 and len(asink.bars("rsi")) >= 2)
        await wait_for(
            lambda: market.current == ("BTCUSDT", "1m") and "btcusdt@kline_1m" in market.stream.subscriptions
        )
        assert "ethusdt@kline_1m" in market.stream.subscriptions

        # The chart moves to another symbol: the alert's stream stays.
        market.request_switch("BNBUSDT")
        await wait_for(lambda: "bnbusdt@kline_1m" in market.stream.subscriptions)
        assert "btcusdt@kline_1m" not in market.stream.subscriptions
        assert "ethusdt@kline_1m" in market.stream.subscriptions
        # And vice versa: an alert on the chart's stream, removed again, leaves the chart's stream alone.
        service.add(replace(every_bar, id="bnb", symbol="BNBUSDT"))
        await wait_for(lambda: "bnbusdt@kline_1m" in market.extra_streams())
        service.remove("bnb")
        await wait_for(lambda: "bnbusdt@kline_1m" not in market.extra_streams())
        assert {"bnbusdt@kline_1m", "bnbusdt@trade", "ethusdt@kline_1m"} <= market.stream.subscriptions

        # A network break of ~2 s (two minutes of candles at 60x): reconnect, then the backfill.
        before = len(asink.bars("close"))
        reconnects = msink.states.count(ConnState.RECONNECTING)
        sim_thread.faults.set_duplicate_klines(True)  # and every kline frame twice, for good measure
        sim_thread.faults.refuse_connections(2.0)
        sim_thread.faults.drop_all()
        await wait_for(lambda: msink.states.count(ConnState.RECONNECTING) > reconnects)
        await wait_for(lambda: msink.states[-1] is ConnState.LIVE, timeout=30)
        await wait_for(lambda: len(asink.bars("close")) >= before + 5, timeout=30)
        stats = market.stream.stats
        assert stats.reconnects >= 1 and stats.backfilled_klines > 0 and stats.duplicates > 0

        # A replay of bars already seen (what a second backfill or a recorded feed would
        # deliver) straight into the service's listener: nothing fires again.
        n_fires = len(asink.fires)
        replay = await asyncio.to_thread(rest.klines, "ETHUSDT", "1m", limit=20)
        for k in replay[:-1]:
            service._on_event(KlineEvent(k.close_time, k, "ethusdt@kline_1m"))
        assert [f for f in asink.fires[n_fires:] if f.bar_open_ms <= replay[-2].open_time] == []
    finally:
        await service.close()
        await market.close()
        rest.close()

    for rule_id in ("close", "bar", "rsi"):
        bars = asink.bars(rule_id)
        assert len(bars) == len(set(bars)), f"{rule_id} fired twice for a bar"
        assert bars == sorted(bars)
    closes = asink.bars("close")
    # Every bar once, none missing across the break: the backfilled ones fired too, once.
    assert closes == list(range(closes[0], closes[-1] + MIN, MIN))
    # RSI(14) had its history (loaded over REST): it fired well before 14 live bars could have
    # warmed it up, and from then on on every bar.
    rsis = asink.bars("rsi")
    assert rsis[0] < closes[0] + 14 * MIN
    assert rsis == [b for b in closes if b >= rsis[0]]
    assert sum(1 for f in asink.fires if f.rule_id == "close" and not f.bar_closed) == 0
    assert asink.messages == []

    # Everything was logged, and the log and rules survive a restart of the service.
    again = AlertService(market, None, AlertSink(), tmp_path / "alerts.json", tmp_path / "alerts.sqlite")
    await again.start()
    try:
        assert {r.id for r in again.rules()} == {"close", "bar", "rsi"}
        assert [f.bar_open_ms for f in reversed(again.log(10_000)) if f.rule_id == "close"] == closes
        assert again.last_fired("close") == max(f.time_ms for f in asink.fires if f.rule_id == "close")
        again.set_enabled("rsi", False)
        assert again.status("rsi") == "paused" and again.status("close") == "active"
        again.remove("bar")
    finally:
        await again.close()
    assert {
        r.id
        for r in AlertService(
            market, None, AlertSink(), tmp_path / "alerts.json", tmp_path / "x"
        ).rules_file.load()[0]
    } == {
        "close",
        "rsi",
    }
