"""Real desktop notifications: DesktopNotifier -> a private session bus -> dunst on Xvfb.

Each test starts its own bus, Xvfb and dunst (tests/notify_daemon.py) and stops them in the
fixture's teardown, also when the test fails. The text is read back from dunst itself
(``dunstctl history``); a click is played with ``dunstctl action`` (dunst invokes the
notification's default action over D-Bus, as a mouse click does). Skipped only when the
binaries are missing (.ci/run installs them).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # the toast test's widgets (never a real screen)

from notify_daemon import Daemon, missing_tools, notification_daemon

from binmon.alerts.engine import Fire
from binmon.alerts.notify import (
    CallableSink,
    DesktopNotifier,
    FallbackNotifier,
    LogNotifier,
    Notice,
)
from binmon.alerts.rules import AlertRule, Condition, Frequency, Operand, Operator, Subject
from binmon.binance.rest import RestClient
from binmon.services.alerts import AlertService
from binmon.services.market import MarketService
from binmon.sim.thread import SimThread

pytestmark = pytest.mark.skipif(
    bool(missing_tools()), reason=f"needs {', '.join(missing_tools())} (installed by .ci/run)"
)


@pytest.fixture
def daemon(monkeypatch: pytest.MonkeyPatch) -> Iterator[Daemon]:
    """Bus + Xvfb + dunst; this process's D-Bus clients use that bus."""
    with notification_daemon() as d:
        for key, value in d.env.items():
            monkeypatch.setenv(key, value)
        yield d


async def wait_for(cond: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


async def test_a_fire_arrives_in_dunst_and_a_click_comes_back(daemon: Daemon) -> None:
    clicked: list[Notice] = []
    notifier = DesktopNotifier("binmon", on_clicked=clicked.append)
    fire = Fire("alert-1", "BTCUSDT", "1m", 0, 0, 19250.5, 19250.5, "BTCUSDT crossing 19,250", "crossing")
    notice = Notice("BTCUSDT 1m alert", fire.message, "BTCUSDT", "1m", fire=fire)
    try:
        ident = await notifier.send(notice)
        assert ident  # desktop-notifier's id of the notification
        await asyncio.to_thread(daemon.ctl, "action", "0")  # the user clicks it
        await wait_for(lambda: bool(clicked))
        assert clicked == [notice] and clicked[0].fire is fire
        (shown,) = daemon.close_all_and_read()
        assert (shown["appname"], shown["summary"], shown["body"]) == (
            "binmon",
            "BTCUSDT 1m alert",
            "BTCUSDT crossing 19,250",
        )
    finally:
        await notifier.close()


async def test_without_a_notification_service_the_toast_shows(
    monkeypatch: pytest.MonkeyPatch, qtbot: Any
) -> None:
    from binmon.ui.widgets.toast import Toast

    with notification_daemon(with_dunst=False) as bare:  # a session bus, nothing serving notifications
        for key, value in bare.env.items():
            monkeypatch.setenv(key, value)
        from PySide6.QtWidgets import QMainWindow

        window = QMainWindow()
        qtbot.addWidget(window)
        window.resize(800, 600)
        window.show()
        toast = Toast(window)
        desktop = DesktopNotifier("binmon")
        chain = FallbackNotifier(
            [desktop, CallableSink("toast", lambda n: toast.show_notice(n.title, n.body, n)), LogNotifier()]
        )
        started = time.monotonic()
        used = await chain.deliver(Notice("ETHUSDT 5m alert", "ETHUSDT greater than 3,000"))
        assert used == "toast" and time.monotonic() - started < 2.5
        assert toast.texts() == ["ETHUSDT 5m alert: ETHUSDT greater than 3,000"]
        assert desktop.last_error is not None and "no desktop notification service" in desktop.last_error
        await chain.close()


class _MarketSink:
    def __getattr__(self, name: str) -> Any:
        return lambda *args: None  # the chart's events: not under test


class _AlertSink:
    def __init__(self, chain: FallbackNotifier) -> None:
        self.chain = chain
        self.fires: list[Fire] = []
        self.messages: list[str] = []

    def alert_fired(self, fire: Fire) -> None:
        self.fires.append(fire)
        self.chain.submit(
            Notice(f"{fire.symbol} {fire.interval} alert", fire.message, fire.symbol, fire.interval)
        )

    def alerts_changed(self) -> None:
        pass

    def alert_message(self, text: str) -> None:
        self.messages.append(text)


async def test_a_price_rule_fires_on_the_simulator_and_dunst_shows_it(
    daemon: Daemon, sim_thread: SimThread, tmp_path: Path
) -> None:
    rest = RestClient(sim_thread.urls.rest)
    market = MarketService(rest, sim_thread.urls.ws, _MarketSink())
    chain = FallbackNotifier([DesktopNotifier("binmon"), LogNotifier()])
    sink = _AlertSink(chain)
    alerts = AlertService(
        market,
        lambda s, i, n: rest.klines(s, i, limit=n),
        sink,
        tmp_path / "alerts.json",
        tmp_path / "log.sqlite",
    )
    # ETHUSDT is not on the chart (BTCUSDT is): the service subscribes it for the rule.
    last = (await asyncio.to_thread(rest.klines, "ETHUSDT", "1m", limit=1))[-1].close
    rule = AlertRule(
        "alert-eth",
        "ETHUSDT",
        "1m",
        Condition(Subject.price("close"), Operator.GREATER_THAN, Operand.of_value(round(last * 0.5, 2))),
        Frequency.ONCE,
        message="{symbol} {interval} above {value} (price {price})",
    )
    try:
        await market.start("BTCUSDT", "1m")
        await alerts.start()
        alerts.add(rule)
        await wait_for(lambda: bool(sink.fires), timeout=30.0)
        await chain.drain()
        (fire,) = sink.fires
        assert fire.symbol == "ETHUSDT" and fire.price > rule.condition.operand.value  # type: ignore[operator]
        assert chain.delivered == {"desktop": 1}
        shown = daemon.close_all_and_read()
        assert [(n["summary"], n["body"]) for n in shown] == [("ETHUSDT 1m alert", fire.message)]
        assert fire.message.startswith("ETHUSDT 1m above ")
        # Used up: the service lets the stream it subscribed for the rule go again.
        await wait_for(lambda: "ethusdt@kline_1m" not in market.stream.subscriptions)
        assert alerts.status(rule.id) == "triggered" and sink.messages == []
    finally:
        await alerts.close()
        await market.close()
        await chain.close()
        rest.close()
