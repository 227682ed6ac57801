"""Alerts in the app: the service, the panel, the dialog, the chart's lines and notifications.

:class:`AlertsController` is the :class:`~binmon.services.alerts.AlertSink` of an
:class:`~binmon.services.alerts.AlertService` (both on the qasync loop, so the sink's calls
arrive on the GUI thread). It

* shows the rules and the alert log in the :class:`~binmon.ui.panels.alerts.AlertsPanel` and
  turns the panel's actions into service calls (create / edit through the non-modal
  :class:`~binmon.ui.dialogs.alert.AlertDialog`, delete, pause / resume);
* adds "Add alert at <price>" (the price under the cursor, at the symbol's tick size) and
  "Add alert…" to the chart's context menu;
* draws the price levels of the shown symbol's alerts as price lines on the chart;
* hands each fire to its :class:`~binmon.ui.alert_notifications.AlertNotifications` (desktop
  service, else tray balloon, else in-app toast, else log; Settings ▸ Notifications…); clicking
  a notification shows that symbol's chart and raises the window (:meth:`AlertsController.show_chart_of`).

The market service is replaced when the user switches to the demo market; the controller
notices (the adapter's ``symbolsLoaded``) and moves the alerts onto the new stream with
:meth:`AlertsController.bind`. The composition root calls :func:`install_alerts`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMainWindow, QTabWidget

from binmon.alerts.engine import Fire
from binmon.alerts.notify import SETTINGS_FILE, DesktopNotifier, Notice
from binmon.alerts.rules import AlertRule, describe, price_alert
from binmon.core.models import SymbolInfo, decimals_of
from binmon.services.alerts import AlertService
from binmon.ui.alert_notifications import AlertNotifications
from binmon.ui.chart.api import ChartView, Crosshair, PriceLine
from binmon.ui.dialogs.alert import AlertDialog
from binmon.ui.panels.alerts import AlertsPanel, LogRow, RuleRow

__all__ = ["RULES_FILE", "AlertsController", "alert_log_path", "install_alerts", "quick_price"]

log = logging.getLogger(__name__)

RULES_FILE = "alerts.json"
#: Fires shown in the panel's log.
LOG_ROWS = 200


def alert_log_path(data_dir: Path, demo: bool) -> Path:
    """The alert log (and fired ledger): one for the exchange, one for the simulated market
    (its bar times are not the exchange's, so their ledgers must not mix)."""
    return data_dir / ("alerts-demo.sqlite" if demo else "alerts.sqlite")


def quick_price(price: float, tick_size: str) -> tuple[float, str]:
    """``price`` rounded to the tick and its label (``19250.004, "0.01"`` -> ``19250.0, "19,250.00"``)."""
    decimals = decimals_of(tick_size)
    tick = float(tick_size)
    rounded = round(round(price / tick) * tick, decimals) if tick > 0 else price
    return rounded, f"{rounded:,.{decimals}f}"


class AlertsController(QObject):
    """See the module docstring. ``market()`` / ``rest()`` return the app's current market
    service and REST client (they change on the switch to the demo market); ``indicators``
    is the app's IndicatorController (its specs are the subjects offered), or None."""

    message = Signal(str)

    def __init__(
        self,
        window: QMainWindow,
        chart: ChartView,
        adapter: Any,
        *,
        rules_path: Path,
        log_path: Path,
        settings_path: Path,
        market: Callable[[], Any],
        rest: Callable[[], Any] | None = None,
        indicators: Any = None,
        desktop: DesktopNotifier | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.window, self.chart, self.adapter = window, chart, adapter
        self.rules_path, self.log_path, self.settings_path = rules_path, log_path, settings_path
        self._market, self._rest, self.indicators = market, rest, indicators
        self.panel = AlertsPanel()
        self.service: AlertService | None = None
        self._hub: Any = None
        self._closed: AlertService | None = None  # the service aclose() closed
        self._start_task: asyncio.Task[None] | None = None
        self._rest_now: Any = None  # the REST client of the bound market (history of the alerts' streams)
        self.dialog: AlertDialog | None = None
        self._symbol: SymbolInfo | None = None
        self._interval = ""
        self._hover_price: float | None = None
        self._menu_price: float | None = None
        self._last_close: float | None = None

        self.notifications = AlertNotifications(
            window, settings_path, on_clicked=self.show_chart_of, say=self._say, desktop=desktop, parent=self
        )

        self.panel.addRequested.connect(lambda: self.open_create_dialog())
        self.panel.editRequested.connect(self.open_edit_dialog)
        self.panel.removeRequested.connect(self.remove)
        self.panel.enableRequested.connect(self.set_enabled)
        adapter.switching.connect(self._on_switching)
        adapter.historyLoaded.connect(self._on_history)
        adapter.symbolsLoaded.connect(lambda _s: self._follow_market())
        chart.on_crosshair(self._on_crosshair)
        self._build_actions()

    # ------------------------------------------------------------ service lifetime

    def bind(self, market: Any, rest: Any = None, *, now: bool = False) -> asyncio.Task[None] | None:
        """Run the alerts on ``market``'s stream (closing the service of a previous market); the
        task that starts the service, None when there is nothing to start yet.

        While no alert was ever saved (no rules file, no log) and ``now`` is False the service
        is not built: it starts with the first alert added, so a user without alerts runs no
        alert machinery. Needs the running loop (RuntimeError without one; nothing changes)."""
        loop = asyncio.get_running_loop()
        self._rest_now = rest
        if self.service is None and not now and not (self.rules_path.exists() or self.log_path.exists()):
            self._hub = market
            return None
        old = self.service
        self._hub = market
        fetch = (lambda s, i, n: rest.klines(s, i, limit=n)) if rest is not None else None
        self.service = AlertService(market, fetch, self, self.rules_path, self.log_path)
        previous = self._start_task
        self._start_task = loop.create_task(
            self._start(self.service, old, previous), name="binmon-alerts-start"
        )
        return self._start_task

    async def _start(self, service: AlertService, old: AlertService | None, previous: Any) -> None:
        if previous is not None and not previous.done():
            previous.cancel()
        if old is not None:
            await old.close()
        await service.start()
        self.alerts_changed()

    def _follow_market(self) -> None:
        market = self._market()
        if market is not None and market is not self._hub:
            if self._hub is not None:  # the app only ever swaps the exchange for the demo market
                log.info("alerts follow the new market service")
                self.log_path = alert_log_path(self.log_path.parent, demo=True)
            self.bind(market, self._rest() if self._rest else None)

    async def aclose(self) -> None:
        """Stop the service, the pending notifications and the desktop connection (app shutdown)."""
        task, self._start_task = self._start_task, None
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        if self.service is not None:
            await self.service.close()
            self._closed = self.service
        await self.notifications.aclose()

    def close(self) -> None:
        """The synchronous shutdown (``AppParts.close_sync``, after the market service closed):
        cancel the alerts' tasks (the app's last sweep gathers them), drop the desktop
        connection, close the alert log. Starts no coroutine: the loop may not run again."""
        with contextlib.suppress(RuntimeError):  # no running loop: no task either
            for task in asyncio.all_tasks(asyncio.get_running_loop()):
                if task.get_name().startswith("binmon-alerts") and not task.done():
                    task.cancel()
        self.notifications.close()
        service = self.service
        if service is not None and service is not self._closed and service.alert_log is not None:
            service.alert_log.close()

    # ------------------------------------------------------------ AlertSink

    def alert_fired(self, fire: Fire) -> None:
        """Notify (asynchronously, never raising into the service) and refresh the panel."""
        self.notifications.notify_fire(fire)
        self._refresh_panel()

    def alerts_changed(self) -> None:
        """Rules or statuses changed: the panel and the chart's lines."""
        self._refresh_panel()
        self._refresh_lines()

    def alert_message(self, text: str) -> None:
        """A one-line problem of the service: the status bar."""
        self._say(text)

    # ------------------------------------------------------------ commands

    def add(self, rule: AlertRule) -> bool:
        """Add ``rule``; False (and a message) when the service refuses it."""
        return self._do(lambda s: s.add(rule), f"Alert added: {describe(rule)}")

    def update(self, rule: AlertRule) -> bool:
        """Replace the rule with ``rule.id``; False (and a message) when refused."""
        return self._do(lambda s: s.update(rule), f"Alert changed: {describe(rule)}")

    def remove(self, rule_id: str) -> bool:
        """Delete a rule."""
        return self._do(lambda s: s.remove(rule_id), "Alert deleted")

    def set_enabled(self, rule_id: str, enabled: bool) -> bool:
        """Pause (False) or resume (True) a rule."""
        return self._do(
            lambda s: s.set_enabled(rule_id, enabled), "Alert resumed" if enabled else "Alert paused"
        )

    def add_at_price(self, price: float) -> AlertRule | None:
        """The chart's quick add: the shown symbol's close crossing ``price`` (rounded to its tick)."""
        if self._symbol is None or not self._interval:
            self._say("No chart shown: cannot add an alert")
            return None
        level, _label = quick_price(price, self._symbol.tick_size)
        rule = price_alert(self._symbol.symbol, self._interval, level, last_price=self._last_close)
        return rule if self.add(rule) else None

    def open_create_dialog(self, price: float | None = None) -> AlertDialog:
        """Open the create dialog (non-modal) for the chart's symbol; OK adds the rule."""
        sym = self._symbol.symbol if self._symbol else "BTCUSDT"
        dlg = AlertDialog(
            self.window,
            symbol=sym,
            interval=self._interval or "1m",
            indicators=self._indicator_specs(),
            symbols=self._symbols(),
            price=price if price is not None else self._last_close,
        )
        return self._open(dlg, self.add)

    def open_edit_dialog(self, rule_id: str) -> AlertDialog | None:
        """Open the edit dialog of ``rule_id`` (non-modal); OK replaces the rule."""
        rule = next((r for r in self.rules() if r.id == rule_id), None)
        if rule is None:
            return None
        dlg = AlertDialog(self.window, rule=rule, indicators=self._indicator_specs(), symbols=self._symbols())
        return self._open(dlg, self.update)

    def rules(self) -> list[AlertRule]:
        """The rules (empty before the service is bound)."""
        return self.service.rules() if self.service is not None else []

    def show_chart_of(self, what: Notice | Fire | Any) -> None:
        """Bring the chart of the notice's (or fire's) symbol and interval to the front."""
        fire = what.fire if isinstance(what, Notice) and what.fire is not None else what
        symbol = getattr(fire, "symbol", "") or getattr(what, "symbol", "")
        interval = getattr(fire, "interval", "") or getattr(what, "interval", "")
        market = self._market()
        if symbol and market is not None and (symbol, interval) != getattr(market, "current", None):
            market.request_switch(symbol, interval or None)
        central = self.window.centralWidget()
        if isinstance(central, QTabWidget):
            central.setCurrentIndex(0)  # the chart is the first tab
        if self.window.isMinimized():
            self.window.showNormal()
        self.window.show()
        self.window.raise_()
        self.window.activateWindow()

    # ------------------------------------------------------------ chart

    def _build_actions(self) -> None:
        w = self.window
        menu = getattr(w, "chart_menu", None)
        self.quick_action = QAction("Add alert", self)
        self.quick_action.triggered.connect(self._quick_add)
        self.create_action = QAction("Add alert…", self)
        self.create_action.triggered.connect(lambda: self.open_create_dialog(self._menu_price))
        if menu is not None:
            first = menu.actions()[0] if menu.actions() else None
            menu.insertAction(first, self.quick_action)
            menu.insertAction(first, self.create_action)
            if first is not None:
                menu.insertSeparator(first)
            menu.aboutToShow.connect(self._menu_about_to_show)
        self.notifications.add_menu()

    def _menu_about_to_show(self) -> None:
        self._menu_price = self._hover_price
        ok = self._menu_price is not None and self._symbol is not None
        if ok and self._symbol is not None and self._menu_price is not None:
            _level, label = quick_price(self._menu_price, self._symbol.tick_size)
            self.quick_action.setText(f"Add alert at {label}")
        else:
            self.quick_action.setText("Add alert at the cursor's price")
        self.quick_action.setEnabled(ok)

    def _quick_add(self) -> None:
        if self._menu_price is not None:
            self.add_at_price(self._menu_price)

    def _on_crosshair(self, ev: Crosshair) -> None:
        # None off the candles' pane (an indicator pane, outside the chart): no quick add there.
        # The menu reads it when it opens, before the cursor's leaving the page is reported.
        self._hover_price = ev.price if ev.price is not None and math.isfinite(ev.price) else None

    def _on_switching(self, info: SymbolInfo, interval: str) -> None:
        self._symbol, self._interval = info, interval
        self._hover_price = self._last_close = None
        self._refresh_lines()

    def _on_history(self, _symbol: str, _interval: str, bars: Any) -> None:
        if bars:
            self._last_close = bars[-1].close

    def _refresh_lines(self) -> None:
        if self._symbol is None:
            return
        lines: list[PriceLine] = []
        for rule in self.rules():
            if rule.symbol != self._symbol.symbol or rule.condition.subject.kind != "price":
                continue
            status = self._status(rule.id)
            if status not in ("active", "paused"):
                continue
            opnd = rule.condition.operand
            # The axis label shows the level: the line says what it waits for, briefly.
            title = rule.name if rule.name and len(rule.name) <= 20 else rule.condition.operator.text
            if opnd.kind == "value" and opnd.value is not None and rule.condition.operator not in _MOVING:
                lines.append(PriceLine(rule.id, opnd.value, title, status == "active"))
            elif opnd.kind == "channel" and opnd.low is not None and opnd.high is not None:
                lines.append(PriceLine(f"{rule.id}:low", opnd.low, title, status == "active"))
                lines.append(PriceLine(f"{rule.id}:high", opnd.high, title, status == "active"))
        try:
            self.chart.set_price_lines(lines)
        except ValueError as exc:
            log.warning("alert lines not drawn: %s", exc)

    # ------------------------------------------------------------ helpers

    def _refresh_panel(self) -> None:
        rows = [
            RuleRow(
                r.id,
                r.name or describe(r).split(": ", 1)[-1],
                r.symbol,
                r.interval,
                self._status(r.id),
                self._last_fired(r.id),
                r.enabled,
            )
            for r in self.rules()
        ]
        self.panel.set_rules(rows)
        fires = self.service.log(LOG_ROWS) if self.service is not None else []
        self.panel.set_log([LogRow(f.time_ms, f.symbol, f.message) for f in fires])

    def _status(self, rule_id: str) -> str:
        try:
            return self.service.status(rule_id) if self.service is not None else "active"
        except KeyError:
            return "active"

    def _last_fired(self, rule_id: str) -> int | None:
        try:
            return self.service.last_fired(rule_id) if self.service is not None else None
        except KeyError:
            return None

    def _do(self, action: Callable[[AlertService], None], done: str) -> bool:
        if self.service is None and self._hub is not None:
            # The first alert: start the service now. A rule added before its start() runs is
            # saved at once and read back by start().
            self.bind(self._hub, self._rest_now, now=True)
        if self.service is None:
            self._say("Alerts are not ready yet")
            return False
        try:
            action(self.service)
        except (KeyError, ValueError) as exc:
            text = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
            self._say(f"Alert not saved: {text}")
            return False
        self._say(done)
        return True

    def _open(self, dlg: AlertDialog, apply: Callable[[AlertRule], bool]) -> AlertDialog:
        dlg.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.dialog = dlg

        def accepted() -> None:
            rule = dlg.rule()
            if rule is not None:
                apply(rule)

        dlg.accepted.connect(accepted)
        dlg.finished.connect(lambda _r: setattr(self, "dialog", None) if self.dialog is dlg else None)
        dlg.show()  # non-modal: the chart stays usable (never exec(): it breaks qasync)
        return dlg

    def _indicator_specs(self) -> list[Any]:
        return list(getattr(self.indicators, "specs", []) or [])

    def _symbols(self) -> list[SymbolInfo]:
        market = self._market()
        symbols = getattr(market, "symbols", None) or {}
        return list(symbols.values())

    def _say(self, text: str) -> None:
        log.info("%s", text)
        self.message.emit(text)


_MOVING = ("moving_up", "moving_down", "moving_up_pct", "moving_down_pct")


def install_alerts(
    parts: Any, *, demo: bool = False, desktop: DesktopNotifier | None = None
) -> AlertsController:
    """Build the alerts of the app ``parts`` (AppParts): controller, dock, menus; start the service.

    The rules live in ``config_dir/alerts.json``, the log in ``data_dir/alerts.sqlite``
    (``alerts-demo.sqlite`` on the simulated market), the notification settings in
    ``config_dir/notifications.json``. Needs the running qasync loop (the service starts on
    it). Shutdown: ``controller.close()`` in ``AppParts.close_sync`` (or ``await
    controller.aclose()`` where the loop goes on running, e.g. tests).
    """
    window = parts.window
    controller = AlertsController(
        window,
        parts.chart,
        parts.adapter,
        rules_path=parts.paths.config_dir / RULES_FILE,
        log_path=alert_log_path(parts.paths.data_dir, demo),
        settings_path=parts.paths.config_dir / SETTINGS_FILE,
        market=lambda: parts.service,
        rest=lambda: parts.rest,
        indicators=parts.indicators,
        desktop=desktop,
        parent=window,
    )
    dock = window.add_panel("Alerts", "dock.alerts", controller.panel, below=window.trades_dock)
    window.restoreDockWidget(dock)  # the saved layout was applied before this dock existed
    controller.message.connect(lambda text: window.statusBar().showMessage(text, 8000))
    try:
        controller.bind(parts.service, parts.rest)
    except RuntimeError:  # no running loop yet: bound when the market service reports its symbols
        log.info("alerts start once the market service is up")
    return controller
