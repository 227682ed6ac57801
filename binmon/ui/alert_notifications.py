"""Notifications of the alerts in the app: the fallback chain, the tray and toast sinks, settings.

:class:`AlertNotifications` owns the :class:`~binmon.alerts.notify.FallbackNotifier` the alerts
controller hands every fire to: the desktop notification service (when on in the settings),
then the tray balloon (only where a system tray shows messages), then the in-app
:class:`~binmon.ui.widgets.toast.Toast`, then the log. Sound: asked of the desktop service when
it can play one, else ``QApplication.beep()``. It also adds Settings ▸ Notifications… (desktop
on/off, sound on/off, "Send test notification") and keeps the choices in
``config_dir/notifications.json``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, Qt, QTimer
from PySide6.QtGui import QAction, QIcon
from PySide6.QtWidgets import QApplication, QMainWindow, QStyle, QSystemTrayIcon

from binmon.alerts.engine import Fire
from binmon.alerts.notify import (
    CallableSink,
    DesktopNotifier,
    FallbackNotifier,
    LogNotifier,
    Notice,
    NotificationSink,
    NotifySettings,
    catch_up_notice,
    is_catch_up,
    load_settings,
    save_settings,
)
from binmon.ui.dialogs.notifications import NotificationsDialog
from binmon.ui.widgets.toast import Toast

__all__ = ["AlertNotifications"]

log = logging.getLogger(__name__)

#: Catch-up fires arriving within this of each other become one notification.
CATCH_UP_WAIT_MS = 500


class AlertNotifications(QObject):
    """See the module docstring. ``on_clicked(notice)``: a notification (desktop, tray or toast)
    was clicked; ``say(text)``: a one-line message for the status bar; ``desktop``: the desktop
    sink (tests pass one with a fake service)."""

    def __init__(
        self,
        window: QMainWindow,
        settings_path: Path,
        *,
        on_clicked: Callable[[Notice], None],
        say: Callable[[str], None],
        desktop: DesktopNotifier | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._window, self.settings_path = window, settings_path
        self._on_clicked, self._say = on_clicked, say
        self.settings, problems = load_settings(settings_path)
        for p in problems:
            say(p)
        self.desktop = desktop or DesktopNotifier("binmon")
        self.desktop.on_clicked = on_clicked
        self.desktop.on_no_sound = QApplication.beep
        self.toast = Toast(window, on_clicked=on_clicked)
        self.tray: QSystemTrayIcon | None = None
        self._tray_notice: Notice | None = None
        self.log_sink = LogNotifier()
        self.notifier = FallbackNotifier(self._sinks())
        self.settings_dialog: NotificationsDialog | None = None
        self.settings_action = QAction("&Notifications…", self)
        self.settings_action.triggered.connect(self.open_settings_dialog)
        self._late: list[Fire] = []
        self._late_timer = QTimer(self)
        self._late_timer.setSingleShot(True)
        self._late_timer.setInterval(CATCH_UP_WAIT_MS)
        self._late_timer.timeout.connect(self._flush_late)

    def add_menu(self) -> None:
        """Add Settings ▸ Notifications… to the window's menu bar (before Help when there is one)."""
        bar = self._window.menuBar()
        settings_menu = bar.addMenu("&Settings")
        help_menu = getattr(self._window, "help_menu", None)
        if help_menu is not None:  # Help stays last
            bar.insertMenu(help_menu.menuAction(), settings_menu)
        settings_menu.addAction(self.settings_action)

    def notify_fire(self, fire: Fire) -> None:
        """Show ``fire`` through the chain, asynchronously; never raises. Catch-up fires (bars
        that closed long ago, after an outage) are gathered for :data:`CATCH_UP_WAIT_MS` and
        shown as one summary."""
        if is_catch_up(fire):
            self._late.append(fire)
            self._late_timer.start()
            return
        self._submit(
            Notice(
                title=f"{fire.symbol} {fire.interval} alert",
                body=fire.message,
                symbol=fire.symbol,
                interval=fire.interval,
                sound=self.settings.sound,
                fire=fire,
            )
        )

    def _flush_late(self) -> None:
        late, self._late = self._late, []
        if late:
            self._submit(catch_up_notice(late, sound=self.settings.sound))

    def _submit(self, notice: Notice) -> None:
        try:
            self.notifier.submit(notice)
        except RuntimeError:  # no running loop (cannot happen in the app): at least log it
            log.info("alert: %s", notice.body)

    async def aclose(self) -> None:
        """Cancel pending notifications, drop the desktop connection."""
        await self.notifier.close()
        self.close()

    def close(self) -> None:
        """:meth:`aclose` without awaiting (the app's synchronous shutdown)."""
        self._late_timer.stop()
        self.notifier.cancel()
        self.desktop.disconnect()
        if self.tray is not None:
            self.tray.hide()

    def apply_settings(self, settings: NotifySettings) -> None:
        """Use ``settings`` from now on and save them (a failed save is reported)."""
        self.settings = settings
        self.notifier.sinks = self._sinks()
        try:
            save_settings(self.settings_path, settings)
        except OSError as exc:
            self._say(f"Notification settings not saved: {exc.strerror or exc}")

    def open_settings_dialog(self) -> NotificationsDialog:
        """Settings ▸ Notifications… (non-modal; raised when already open)."""
        if self.settings_dialog is None:
            dlg = NotificationsDialog(self.settings, self._window)
            dlg.settingsChanged.connect(self.apply_settings)
            dlg.testRequested.connect(self.send_test)
            dlg.finished.connect(lambda _r: setattr(self, "settings_dialog", None))
            dlg.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
            self.settings_dialog = dlg
        self.settings_dialog.show()
        self.settings_dialog.raise_()
        return self.settings_dialog

    def send_test(self) -> asyncio.Task[str]:
        """Send a test notification through the chain; the result goes to the settings dialog."""

        async def run() -> str:
            notice = Notice(
                "binmon test notification",
                "Alerts will be shown like this.",
                sound=self.settings.sound,
            )
            used = await self.notifier.deliver(notice)
            text = _result_text(used, self.desktop.last_error, self.settings.desktop)
            if self.settings_dialog is not None:
                self.settings_dialog.show_result(text)
            self._say(text)
            return text

        return asyncio.get_running_loop().create_task(run(), name="binmon-test-notification")

    def _sinks(self) -> list[NotificationSink]:
        sinks: list[NotificationSink] = [self.desktop] if self.settings.desktop else []
        return [
            *sinks,
            CallableSink("tray", self._tray_show),
            CallableSink("toast", self._toast_show),
            self.log_sink,
        ]

    def _tray_show(self, notice: Notice) -> bool:
        if not (QSystemTrayIcon.isSystemTrayAvailable() and QSystemTrayIcon.supportsMessages()):
            return False
        if self.tray is None:
            icon = self._window.windowIcon()
            if icon.isNull():
                icon = self._window.style().standardIcon(QStyle.StandardPixmap.SP_MessageBoxInformation)
            self.tray = QSystemTrayIcon(QIcon(icon), self)
            self.tray.messageClicked.connect(self._tray_clicked)
            self.tray.show()
        self._tray_notice = notice
        self.tray.showMessage(notice.title, notice.body, QSystemTrayIcon.MessageIcon.Information, 8000)
        if notice.sound:
            QApplication.beep()
        return True

    def _tray_clicked(self) -> None:
        if self._tray_notice is not None:
            self._on_clicked(self._tray_notice)

    def _toast_show(self, notice: Notice) -> bool:
        if notice.sound:
            QApplication.beep()
        return self.toast.show_notice(notice.title, notice.body, notice)


def _result_text(used: str | None, desktop_error: str | None, desktop_on: bool) -> str:
    if used == "desktop":
        return "Test notification sent to the desktop notification service."
    where = {"tray": "as a tray balloon", "toast": "over the binmon window", "log": "in the log only"}
    shown = f"Test notification shown {where.get(used or '', 'nowhere')}"
    if not desktop_on:
        return f"{shown} (desktop notifications are off)."
    return f"{shown}: {desktop_error or 'the desktop notification service did not take it'}."
