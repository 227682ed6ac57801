"""The alerts UI on the real chart page: quick add from the context menu, price lines in the page,
the create/edit dialog (RSI(14) crossing up 30 once per bar close), pause, delete, a fire shown
as a toast and logged, persistence across a rebuild, and a corrupt rules file kept aside.

The window is a real MainWindow around a real WebChart; the market is a small stand-in hub
(the AlertService only needs ``add_listener`` / ``set_extra_streams``), fed with the real
XRPETH candles. The desktop service is a fake that is absent, so fires take the toast path
(the real daemon path is tested in tests/integration/test_notify_dunst.py).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
import qasync
import shiboken6
from PySide6.QtCore import QPoint, Qt
from PySide6.QtTest import QTest
from pytestqt.qtbot import QtBot

from binmon.alerts.ledger import Fire
from binmon.alerts.notify import DesktopNotifier
from binmon.alerts.rules import Frequency, Operator
from binmon.core.models import Kline, KlineEvent, StreamEvent, SymbolInfo
from binmon.ui.alerts_controller import AlertsController, quick_price
from binmon.ui.chart.api import ChartSymbol, Crosshair
from binmon.ui.chart.web_chart import WebChart
from binmon.ui.indicators_controller import IndicatorController
from binmon.ui.main_window import MainWindow
from binmon.ui.qt_adapter import QtMarketAdapter

INFO = SymbolInfo("XRPETH", "TRADING", "XRP", "ETH", tick_size="0.00000001")


class Hub:
    """The market service as the alerts see it: listeners, extra streams, symbols, switches."""

    def __init__(self) -> None:
        self.listeners: list[Callable[[StreamEvent], None]] = []
        self.extra: dict[str, set[str]] = {}
        self.symbols = {INFO.symbol: INFO}
        self.current: tuple[str, str] | None = ("XRPETH", "1m")
        self.switches: list[tuple[str, str | None]] = []

    def add_listener(self, cb: Callable[[StreamEvent], None]) -> None:
        self.listeners.append(cb)

    def remove_listener(self, cb: Callable[[StreamEvent], None]) -> None:
        self.listeners.remove(cb)

    async def set_extra_streams(self, owner: str, streams: Iterable[str]) -> None:
        self.extra[owner] = set(streams)

    def request_switch(self, symbol: str, interval: str | None = None) -> None:
        self.switches.append((symbol, interval))

    def push(self, k: Kline) -> None:
        for cb in list(self.listeners):
            cb(KlineEvent(k.close_time, k))


class Absent:
    """desktop-notifier with no service on the bus."""

    async def get_capabilities(self) -> Any:
        raise RuntimeError("org.freedesktop.Notifications was not provided by any .service files")


class App:
    def __init__(self, qtbot: QtBot, qloop: qasync.QEventLoop, tmp: Path, bars: list[Kline]) -> None:
        self.qtbot, self.qloop, self.tmp, self.bars = qtbot, qloop, tmp, bars
        self.chart = WebChart()
        self.window = MainWindow(self.chart)
        self.window.resize(1280, 800)
        self.window.show()
        self.adapter = QtMarketAdapter(
            self.chart, self.window.trades, self.window.watchlist, self.window.status
        )
        self.indicators = IndicatorController(self.chart, self.adapter)
        self.hub = Hub()
        self.messages: list[str] = []
        with qtbot.waitSignal(self.chart.ready, timeout=20_000):
            pass
        self.chart.set_symbol(ChartSymbol("XRPETH", "1m", INFO.tick_size, "XRP", "ETH"))
        self.adapter.market_switching(INFO, "1m")
        self.chart.set_bars(bars)
        self.adapter.market_history("XRPETH", "1m", bars)
        self.ctl = self.controller()

    def controller(self) -> AlertsController:
        ctl = AlertsController(
            self.window,
            self.chart,
            self.adapter,
            rules_path=self.tmp / "config" / "alerts.json",
            log_path=self.tmp / "data" / "alerts.sqlite",
            settings_path=self.tmp / "config" / "notifications.json",
            market=lambda: self.hub,
            indicators=self.indicators,
            desktop=DesktopNotifier(factory=lambda _app: Absent(), timeout_s=0.5),
            parent=self.window,
        )
        ctl.message.connect(self.messages.append)
        ctl._on_switching(INFO, "1m")  # the chart already shows XRPETH (switched before it existed)
        ctl._on_history("XRPETH", "1m", self.bars)
        task = ctl.bind(self.hub)  # None while no alert was ever saved: starts with the first one
        if task is not None:
            self.run(task)
        return ctl

    def started(self) -> None:
        """Wait until the alert service runs (it starts with the first alert)."""
        task = self.ctl._start_task
        assert task is not None
        self.run(task)

    def run(self, task: Any, timeout_ms: int = 20_000) -> Any:
        if not hasattr(task, "done"):
            task = self.qloop.create_task(task)
        self.qtbot.waitUntil(task.done, timeout=timeout_ms)
        return task.result()

    def page_lines(self) -> list[dict[str, Any]]:
        box: list[Any] = []
        self.chart.page_price_lines(box.append)
        self.qtbot.waitUntil(lambda: bool(box), timeout=10_000)
        lines: list[dict[str, Any]] = box[0]
        return lines

    def close(self) -> None:
        self.run(self.ctl.aclose())
        self.ctl.close()
        self.indicators.close()
        self.adapter.stop()


@pytest.fixture
def app(qtbot: QtBot, qloop: qasync.QEventLoop, tmp_path: Path, xrpeth_bars: list[Kline]) -> Iterator[App]:
    a = App(qtbot, qloop, tmp_path, xrpeth_bars[:600])
    try:
        yield a
    finally:
        a.close()
        a.window.close()
        shiboken6.delete(a.window)  # takes the chart with it


def _row(app: App, rule_id: str) -> int:
    return next(i for i, r in enumerate(app.ctl.panel.rows()) if r.id == rule_id)


def test_quick_add_from_the_context_menu_draws_a_price_line(app: App, qtbot: QtBot) -> None:
    seen: list[Crosshair] = []
    app.chart.on_crosshair(seen.append)
    QTest.mouseMove(app.chart.focusProxy() or app.chart, QPoint(640, 300))
    qtbot.waitUntil(lambda: bool(seen) and seen[-1].price is not None, timeout=5000)
    cursor_price = seen[-1].price
    assert cursor_price is not None
    lows = min(b.low for b in app.bars)
    highs = max(b.high for b in app.bars)
    assert lows * 0.9 < cursor_price < highs * 1.1  # a price in the candles' range, not a pixel

    menu = app.window.chart_menu
    app.window._chart_context_menu(QPoint(640, 300))  # the user's right-click
    qtbot.waitUntil(menu.isVisible, timeout=5000)
    level, label = quick_price(cursor_price, INFO.tick_size)
    action = app.ctl.quick_action
    assert action.text() == f"Add alert at {label}" and action.isEnabled()
    assert label.count(".") == 1 and len(label.split(".")[1]) == 8  # the tick size's decimals
    action.trigger()
    menu.hide()

    app.started()
    (rule,) = app.ctl.rules()
    assert (rule.symbol, rule.interval, rule.condition.operator) == ("XRPETH", "1m", Operator.CROSSING)
    assert rule.condition.operand.value == level
    lines = app.page_lines()
    assert [(x["id"], x["price"]) for x in lines] == [(rule.id, level)]
    assert lines[0]["color"] == "#ff9800"
    assert app.ctl.panel.rows()[0].status == "active"

    # Paused: the line stays, greyed; resumed: orange again.
    app.ctl.panel.select(rule.id)
    qtbot.mouseClick(app.ctl.panel.pause_button, Qt.MouseButton.LeftButton)
    assert app.ctl.panel.rows()[0].status == "paused"
    assert app.ctl.panel.pause_button.text() == "Resume"
    assert app.page_lines()[0]["color"] == "#787b86"
    qtbot.mouseClick(app.ctl.panel.pause_button, Qt.MouseButton.LeftButton)
    assert app.ctl.panel.rows()[0].status == "active" and app.page_lines()[0]["color"] == "#ff9800"

    # The price crosses the level: the rule fires once, shown as a toast (no desktop service) and logged.
    last = app.bars[-1]
    above = max(level * 1.01, last.close * 1.01)
    t = last.open_time + 60_000
    below = dataclasses.replace(
        last, open_time=t, close_time=t + 59_999, close=level * 0.99, low=level * 0.99
    )
    app.hub.push(below)  # a closed bar under the level, then the forming bar above it
    forming = dataclasses.replace(below, open_time=t + 60_000, close_time=t + 119_999, closed=False)
    app.hub.push(dataclasses.replace(forming, close=above, high=above))
    qtbot.waitUntil(lambda: bool(app.ctl.notifications.toast.texts()), timeout=10_000)
    (text,) = app.ctl.notifications.toast.texts()
    assert text.startswith("XRPETH 1m alert: ") and "XRPETH" in text
    assert app.ctl.panel.rows()[0].status == "triggered"
    assert app.ctl.panel.log_table.rowCount() == 1
    assert app.ctl.panel.log_table.item(0, 1).text() == "XRPETH"
    assert app.page_lines() == []  # a used-up "once" alert has no line any more
    # Clicking the toast brings the chart of that symbol to the front.
    app.hub.current = ("ETHBTC", "5m")
    qtbot.mouseClick(app.ctl.notifications.toast, Qt.MouseButton.LeftButton)
    assert app.hub.switches == [("XRPETH", "1m")] and not app.ctl.notifications.toast.isVisible()

    # Delete: gone from the panel, the file and the page.
    app.ctl.panel.select(rule.id)
    qtbot.mouseClick(app.ctl.panel.delete_button, Qt.MouseButton.LeftButton)
    assert app.ctl.rules() == [] and app.ctl.panel.rows() == []
    assert json.loads((app.tmp / "config" / "alerts.json").read_text())["rules"] == []


def test_rsi_crossing_up_30_once_per_bar_close_through_the_dialog(app: App, qtbot: QtBot) -> None:
    assert app.indicators.add(app.indicators.new_spec("RSI"))
    qtbot.mouseClick(app.ctl.panel.add_button, Qt.MouseButton.LeftButton)
    dlg = app.ctl.dialog
    assert dlg is not None and dlg.isVisible() and not dlg.isModal()
    dlg.subject_box.setCurrentIndex(dlg.subject_box.findText("RSI(14)"))
    dlg.operator_box.setCurrentIndex(dlg.operator_box.findText("crossing up"))
    dlg.value_edit.clear()
    assert not dlg.ok.isEnabled() and dlg.problem() == "Enter the value"
    qtbot.keyClicks(dlg.value_edit, "3O")  # a typo
    assert not dlg.ok.isEnabled() and dlg.problem() == "Enter the value as a number"
    dlg.value_edit.clear()
    qtbot.keyClicks(dlg.value_edit, "30")
    dlg.frequency_box.setCurrentIndex(dlg.frequency_box.findText("once per bar close"))
    qtbot.keyClicks(dlg.message_edit, "{symbol}: RSI {value} {nope}")
    assert not dlg.ok.isEnabled() and dlg.problem().startswith("Message: unknown placeholder {nope}")
    dlg.message_edit.setText("{symbol}: RSI {value}")
    assert dlg.ok.isEnabled() and dlg.problem() == ""
    assert app.ctl.service is None  # no alert yet: nothing runs
    qtbot.mouseClick(dlg.ok, Qt.MouseButton.LeftButton)
    app.started()

    (rule,) = app.ctl.rules()
    cond = rule.condition
    assert cond.subject.kind == "indicator" and cond.subject.indicator is not None
    assert cond.subject.indicator.function == "RSI" and dict(cond.subject.indicator.params) == {
        "timeperiod": 14
    }
    assert (cond.operator, cond.operand.value, rule.frequency) == (
        Operator.CROSSING_UP,
        30.0,
        Frequency.ONCE_PER_BAR_CLOSE,
    )
    assert app.ctl.panel.rows()[0].text == "RSI(14) crossing up 30"
    assert app.page_lines() == []  # not a price level: no line
    assert app.hub.extra["alerts"] == {"xrpeth@kline_1m"}

    # Edit (double-click): a channel with low above high is refused in words, then fixed.
    app.ctl.panel.table.cellDoubleClicked.emit(_row(app, rule.id), 0)
    dlg = app.ctl.dialog
    assert dlg is not None and dlg.value_edit.text() == "30" and dlg.ok.isEnabled()
    dlg.operator_box.setCurrentIndex(dlg.operator_box.findText("entering channel"))
    assert dlg.low_edit.isVisibleTo(dlg) and not dlg.value_edit.isVisibleTo(dlg)
    qtbot.keyClicks(dlg.low_edit, "70")
    qtbot.keyClicks(dlg.high_edit, "30")
    assert not dlg.ok.isEnabled()
    assert dlg.problem() == "Channel: the lower bound 70 must be below the upper bound 30"
    dlg.low_edit.setText("20")
    assert dlg.ok.isEnabled()
    qtbot.mouseClick(dlg.ok, Qt.MouseButton.LeftButton)
    (edited,) = app.ctl.rules()
    assert edited.id == rule.id and edited.condition.operator == Operator.ENTERING_CHANNEL
    assert (edited.condition.operand.low, edited.condition.operand.high) == (20.0, 30.0)
    assert app.ctl.panel.rows()[0].text == "RSI(14) entering channel 20 – 30"


def test_rules_persist_across_a_rebuild_and_a_corrupt_file_is_kept_aside(app: App, qtbot: QtBot) -> None:
    first = app.ctl.add_at_price(app.bars[-1].close * 1.05)
    assert first is not None
    app.run(app.ctl.aclose())
    app.ctl.close()
    app.ctl = app.controller()  # the next start of the app
    assert [r.id for r in app.ctl.rules()] == [first.id] and app.ctl.rules()[0] == first
    assert [x["id"] for x in app.page_lines()] == [first.id]

    rules_file = app.tmp / "config" / "alerts.json"
    app.run(app.ctl.aclose())
    app.ctl.close()
    rules_file.write_text('{"format": "binmon.alert-rules", "v": 1, "rules": [')  # a torn write
    app.messages.clear()
    app.ctl = app.controller()
    assert app.ctl.rules() == []
    (message,) = [m for m in app.messages if "corrupt" in m]
    assert "\n" not in message and "kept" in message
    (aside,) = rules_file.parent.glob("alerts.json.corrupt-*")
    assert aside.read_text().endswith('"rules": [')
    second = app.ctl.add_at_price(app.bars[-1].close * 0.95)  # saving again never touches the copy
    assert second is not None and aside.read_text().endswith('"rules": [')


def test_settings_test_notification_falls_back_to_the_toast_and_settings_persist(
    app: App, qtbot: QtBot
) -> None:
    menus = [a.text() for a in app.window.menuBar().actions()]
    assert "&Settings" in menus
    app.ctl.notifications.settings_action.trigger()
    dlg = app.ctl.notifications.settings_dialog
    assert dlg is not None and dlg.isVisible() and not dlg.isModal()
    assert dlg.desktop_check.isChecked() and not dlg.sound_check.isChecked()
    qtbot.mouseClick(dlg.test_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dlg.test_button.isEnabled(), timeout=10_000)
    text = dlg.result_label.text()
    assert text.startswith("Test notification shown over the binmon window: no desktop notification service")
    assert app.ctl.notifications.toast.texts() == [
        "binmon test notification: Alerts will be shown like this."
    ]

    dlg.sound_check.setChecked(True)
    dlg.desktop_check.setChecked(False)
    saved = json.loads((app.tmp / "config" / "notifications.json").read_text())
    assert saved == {"desktop": False, "sound": True}
    assert [s.name for s in app.ctl.notifications.notifier.sinks] == ["tray", "toast", "log"]
    qtbot.mouseClick(dlg.test_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dlg.test_button.isEnabled(), timeout=10_000)
    assert (
        dlg.result_label.text()
        == "Test notification shown over the binmon window (desktop notifications are off)."
    )
    dlg.close()
    app.run(app.ctl.aclose())
    app.ctl.close()
    app.ctl = app.controller()  # the next start reads them back
    assert (app.ctl.notifications.settings.desktop, app.ctl.notifications.settings.sound) == (False, True)


def test_catch_up_fires_after_an_outage_become_one_notification(app: App, qtbot: QtBot) -> None:
    t0 = app.bars[0].open_time
    now = t0 + 3_600_000  # an hour later a backfill catches up on three old bars, then one live fire
    late = [Fire("r", "XRPETH", "1m", t0 + i * 60_000, now, 1.0, 1.0, f"late {i}", "rule") for i in range(3)]
    live = Fire("r", "XRPETH", "1m", now - 60_000, now, 1.0, 1.0, "live", "rule")
    for fire in [*late, live]:
        app.ctl.notifications.notify_fire(fire)
    qtbot.waitUntil(lambda: len(app.ctl.notifications.toast.texts()) == 2, timeout=10_000)
    assert app.ctl.notifications.toast.texts() == [  # newest first: the live one came at once
        "binmon alerts (late): 3 alerts fired while binmon was catching up; newest: late 2",
        "XRPETH 1m alert: live",
    ]


def test_quick_add_price_is_rounded_to_the_tick_and_labelled_with_its_decimals() -> None:
    assert quick_price(19250.004, "0.01") == (19250.0, "19,250.00")
    assert quick_price(19249.996, "0.01000000") == (19250.0, "19,250.00")
    assert quick_price(0.0000063849, "0.00000001") == (0.00000638, "0.00000638")
    assert quick_price(1234567.8, "1") == (1234568.0, "1,234,568")
