"""Putting the Backtest tab into the app's window (:func:`install_backtest_tab`)."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QEvent, QObject
from PySide6.QtWidgets import QDockWidget, QMainWindow, QTabWidget, QWidget

from binmon.ui.backtest.files import RUNS_FILE
from binmon.ui.backtest.tab import BacktestTab
from binmon.ui.backtest.work import Services, WorkerPool


class DockSwap(QObject):
    """Gives the Backtest tab the window's full width: the live docks (watchlist, trades, …)
    are hidden while it is shown and come back as they were on the Chart tab. Before the
    window closes (and saves its layout) they are put back, so the saved layout never loses
    them."""

    def __init__(self, window: QMainWindow, tabs: QTabWidget, tab: QWidget) -> None:
        super().__init__(window)
        self._window, self._tabs, self._tab = window, tabs, tab
        self.hidden: list[QDockWidget] = []
        tabs.currentChanged.connect(self._changed)
        window.installEventFilter(self)

    def _changed(self, _index: int) -> None:
        if self._tabs.currentWidget() is self._tab:
            if not self.hidden:
                self.hidden = [
                    d for d in self._window.findChildren(QDockWidget) if d.isVisible() and not d.isFloating()
                ]
                for dock in self.hidden:
                    dock.hide()
        else:
            self.restore()

    def restore(self) -> None:
        """Show the docks hidden for the Backtest tab again."""
        docks, self.hidden = self.hidden, []
        for dock in docks:
            dock.show()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self._window and event.type() == QEvent.Type.Close:
            self.restore()  # before MainWindow.closeEvent saves the layout
        return False


def install_backtest_tab(parts: Any) -> BacktestTab:
    """Add the Backtest tab to ``parts.window`` (an :class:`~binmon.app.AppParts`), with the app's
    store, downloader and a process pool that is shut down when the window closes."""
    from binmon.history.download import store_clock
    from binmon.ui.dialogs.download_parts import wall_ms

    def now_ms() -> int:
        try:
            return int(store_clock(parts.rest)())
        except Exception:  # the server clock needs one request; the local one is close enough
            return wall_ms()

    def pick() -> tuple[str, str]:
        service = parts.service
        return service.pick or (parts.controller.config.symbol, parts.controller.config.interval)

    services = Services(
        store=lambda: parts.store,
        downloader=lambda: parts.downloader,
        now_ms=now_ms,
        symbols=lambda: list(parts.service.symbols.values()),
        pick=pick,
        runs_file=parts.paths.data_dir / RUNS_FILE,
        indicators=lambda: parts.indicators.specs,
    )
    tab = BacktestTab(services, WorkerPool(), parts.window)
    tabs = parts.window.add_tab("Backtest", tab)
    tab.dock_swap = DockSwap(parts.window, tabs, tab)
    parts.window.closing.connect(lambda: tab.shutdown())
    return tab
