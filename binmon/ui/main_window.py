"""The main window: chart in the centre, pickers in a toolbar, panels in docks, status bar.

It only shows things and reports what the user asks for (``symbolRequested``,
``intervalRequested``, ``themeRequested``, ``timezoneRequested``, ``downloadRequested``,
``closing``); the
controller decides what happens. Setters called by the controller (``set_current``,
``apply_theme``, ``apply_timezone``) never emit those signals, so there are no loops.
Theme and timezone menu choices are applied here at once (instant feedback) and then
reported, so the controller can pass them to the chart and persist them.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, tzinfo
from zoneinfo import ZoneInfo, available_timezones

from PySide6.QtCore import QByteArray, QPoint, QSettings, Qt, Signal
from PySide6.QtGui import QAction, QActionGroup, QCloseEvent, QColor, QKeySequence, QPalette
from PySide6.QtWidgets import (
    QApplication,
    QDialog,
    QDockWidget,
    QInputDialog,
    QMainWindow,
    QMenu,
    QTabWidget,
    QToolBar,
    QWidget,
)

from binmon.core.models import SymbolInfo
from binmon.ui.panels.trades import TradesPanel
from binmon.ui.panels.watchlist import WatchlistPanel
from binmon.ui.widgets.status_bar import StatusBar
from binmon.ui.widgets.symbol_picker import IntervalPicker, SymbolPicker

APP_NAME = "binmon"
THEMES = ("dark", "light")
#: Bump when docks/toolbars change so an old saved state is ignored instead of misapplied.
LAYOUT_VERSION = 1
_KEY_GEOMETRY = "mainwindow/geometry"
_KEY_STATE = "mainwindow/state"
_KEY_WATCH_HEADER = "mainwindow/watchlist_header"

#: TradingView-like dark colours (role -> colour), on top of Fusion's own palette.
_DARK = {
    QPalette.ColorRole.Window: "#1e222d",
    QPalette.ColorRole.WindowText: "#d1d4dc",
    QPalette.ColorRole.Base: "#131722",
    QPalette.ColorRole.AlternateBase: "#1a1e29",
    QPalette.ColorRole.ToolTipBase: "#2a2e39",
    QPalette.ColorRole.ToolTipText: "#d1d4dc",
    QPalette.ColorRole.PlaceholderText: "#787b86",
    QPalette.ColorRole.Text: "#d1d4dc",
    QPalette.ColorRole.Button: "#2a2e39",
    QPalette.ColorRole.ButtonText: "#d1d4dc",
    QPalette.ColorRole.BrightText: "#ef5350",
    QPalette.ColorRole.Link: "#2962ff",
    QPalette.ColorRole.Highlight: "#2962ff",
    QPalette.ColorRole.HighlightedText: "#ffffff",
    QPalette.ColorRole.Light: "#363a45",
    QPalette.ColorRole.Midlight: "#2a2e39",
    QPalette.ColorRole.Mid: "#1e222d",
    QPalette.ColorRole.Dark: "#131722",
    QPalette.ColorRole.Shadow: "#0b0e14",
}
_DARK_DISABLED = {
    QPalette.ColorRole.WindowText: "#5d606b",
    QPalette.ColorRole.Text: "#5d606b",
    QPalette.ColorRole.ButtonText: "#5d606b",
}


def theme_palette(theme: str) -> QPalette:
    """The application palette for ``"dark"`` or ``"light"`` (Fusion's standard one)."""
    if theme not in THEMES:
        raise ValueError(f"unknown theme {theme!r}; use one of {', '.join(THEMES)}")
    palette = QApplication.style().standardPalette()
    if theme == "dark":
        for role, color in _DARK.items():
            palette.setColor(role, QColor(color))
        for role, color in _DARK_DISABLED.items():
            palette.setColor(QPalette.ColorGroup.Disabled, role, QColor(color))
    return palette


def timezone_of(name: str) -> tzinfo | None:
    """``"UTC"`` -> UTC, ``"local"`` -> None (the machine's zone), else an IANA zone.

    Raises ValueError for a name the zone database does not know.
    """
    if name == "UTC":
        return UTC
    if name == "local":
        return None
    try:
        return ZoneInfo(name)
    except (KeyError, ValueError, OSError) as e:
        # ZoneInfoNotFoundError is a KeyError; malformed keys give ValueError, directories OSError.
        raise ValueError(f"unknown time zone {name!r}") from e


def zone_names() -> list[str]:
    """IANA zone names offered by "Choose…" (without the posix/ and right/ duplicate trees)."""
    return sorted(z for z in available_timezones() if not z.startswith(("posix/", "right/")))


class MainWindow(QMainWindow):
    """binmon's window around any chart widget (the WebEngine chart, or a QLabel in tests)."""

    symbolRequested = Signal(str)
    intervalRequested = Signal(str)
    themeRequested = Signal(str)
    timezoneRequested = Signal(str)
    demoRequested = Signal()
    #: History ▸ Download… or the chart's context menu: open the download dialog.
    downloadRequested = Signal()
    closing = Signal()

    def __init__(self, chart_widget: QWidget, *, settings: QSettings | None = None) -> None:
        super().__init__()
        self._settings = settings
        self._theme = ""
        self._timezone = "UTC"
        self._infos: dict[str, SymbolInfo] = {}
        self._pair = ""
        self.tz_dialog: QInputDialog | None = None
        self.chart_widget = chart_widget
        self.setCentralWidget(chart_widget)
        self.setWindowTitle(APP_NAME)
        self.resize(1280, 800)

        self.symbol_picker = SymbolPicker(self)
        self.symbol_picker.setFixedWidth(180)
        self.symbol_picker.symbolChosen.connect(self.symbolRequested)
        self.interval_picker = IntervalPicker(self)
        self.interval_picker.intervalChosen.connect(self.intervalRequested)
        self.toolbar = QToolBar("Symbol and interval", self)
        self.toolbar.setObjectName("toolbar.symbol")  # saveState() needs object names
        self.toolbar.addWidget(self.symbol_picker)
        self.toolbar.addWidget(self.interval_picker)
        self.addToolBar(Qt.ToolBarArea.TopToolBarArea, self.toolbar)

        self.watchlist = WatchlistPanel(self)
        self.watchlist.symbolActivated.connect(self.symbolRequested)
        self.trades = TradesPanel(parent=self)
        self.watchlist_dock = self._dock("Watchlist", "dock.watchlist", self.watchlist)
        self.trades_dock = self._dock("Trades", "dock.trades", self.trades)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.watchlist_dock)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.trades_dock)
        self.splitDockWidget(self.watchlist_dock, self.trades_dock, Qt.Orientation.Vertical)
        self.resizeDocks([self.watchlist_dock], [340], Qt.Orientation.Horizontal)

        self.status = StatusBar(self)
        self.setStatusBar(self.status)
        self.status.demo_button.clicked.connect(self.demoRequested)
        self._demo = False
        self._build_menus()
        self.apply_timezone("UTC")

    # ------------------------------------------------------------- construction

    def add_panel(
        self, title: str, name: str, widget: QWidget, *, below: QDockWidget | None = None
    ) -> QDockWidget:
        """Dock ``widget`` on the right (tabbed with ``below``'s area when given), listed in View.

        ``name`` is the dock's object name, which the saved layout refers to.
        """
        dock = self._dock(title, name, widget)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, dock)
        if below is not None:
            self.splitDockWidget(below, dock, Qt.Orientation.Vertical)
        self.view_menu.addAction(dock.toggleViewAction())
        return dock

    def add_tab(self, title: str, widget: QWidget) -> QTabWidget:
        """Show ``widget`` as a tab next to the chart; the first call turns the centre into tabs.

        The chart becomes the first tab ("Chart"); its docks and toolbar stay where they are.
        """
        tabs = self.centralWidget()
        if not isinstance(tabs, QTabWidget):
            tabs = QTabWidget(self)
            tabs.setObjectName("central_tabs")
            tabs.setDocumentMode(True)
            self.takeCentralWidget()  # keeps the chart alive (setCentralWidget would delete it)
            tabs.addTab(self.chart_widget, "Chart")
            self.setCentralWidget(tabs)
        tabs.addTab(widget, title)
        return tabs

    def _dock(self, title: str, name: str, widget: QWidget) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(name)
        dock.setWidget(widget)
        dock.setFeatures(
            QDockWidget.DockWidgetFeature.DockWidgetClosable
            | QDockWidget.DockWidgetFeature.DockWidgetMovable
            | QDockWidget.DockWidgetFeature.DockWidgetFloatable
        )
        return dock

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        self.demo_action = QAction("Use &demo market", self)
        self.demo_action.setToolTip("Switch to the built-in simulated exchange (works without a network)")
        self.demo_action.triggered.connect(self.demoRequested)
        file_menu.addAction(self.demo_action)
        file_menu.addSeparator()
        self.quit_action = QAction("&Quit", self)
        self.quit_action.setShortcut(QKeySequence.StandardKey.Quit)
        self.quit_action.triggered.connect(self.close)
        file_menu.addAction(self.quit_action)

        view = self.view_menu = self.menuBar().addMenu("&View")
        self.find_symbol_action = QAction("Find &symbol…", self)
        self.find_symbol_action.setShortcut(QKeySequence("Ctrl+K"))
        self.find_symbol_action.triggered.connect(self._focus_symbol_picker)
        view.addAction(self.find_symbol_action)
        view.addSeparator()
        view.addAction(self.watchlist_dock.toggleViewAction())
        view.addAction(self.trades_dock.toggleViewAction())
        view.addAction(self.toolbar.toggleViewAction())
        view.addSeparator()

        theme_menu = view.addMenu("&Theme")
        self._theme_group = QActionGroup(self)
        self.theme_actions: dict[str, QAction] = {}
        for theme in THEMES:
            action = QAction(theme.capitalize(), self, checkable=True)
            action.triggered.connect(lambda _=False, t=theme: self._user_theme(t))
            self._theme_group.addAction(action)
            theme_menu.addAction(action)
            self.theme_actions[theme] = action

        tz_menu = view.addMenu("Time&zone")
        self._tz_group = QActionGroup(self)
        self.tz_actions: dict[str, QAction] = {}
        for key, label in (("UTC", "UTC"), ("local", "Local")):
            action = QAction(label, self, checkable=True)
            action.triggered.connect(lambda _=False, k=key: self._user_timezone(k))
            self._tz_group.addAction(action)
            tz_menu.addAction(action)
            self.tz_actions[key] = action
        # Shows the zone picked with "Choose…"; hidden while UTC or local is in use.
        self.tz_other_action = QAction("", self, checkable=True)
        self.tz_other_action.setVisible(False)
        self._tz_group.addAction(self.tz_other_action)
        tz_menu.addAction(self.tz_other_action)
        tz_menu.addSeparator()
        self.tz_choose_action = QAction("Choose…", self)
        self.tz_choose_action.triggered.connect(self.choose_timezone)
        tz_menu.addAction(self.tz_choose_action)

        history = self.menuBar().addMenu("&History")
        self.download_action = QAction("&Download…", self)
        self.download_action.setShortcut(QKeySequence("Ctrl+D"))
        self.download_action.setToolTip("Download candle history into the local store")
        self.download_action.triggered.connect(self.downloadRequested)
        history.addAction(self.download_action)

        # Help stays last: menus added later go before it (menuBar().insertMenu(help_menu.menuAction(), m)).
        self.help_menu = self.menuBar().addMenu("&Help")
        self.about_action = QAction("&About binmon", self)
        self.about_action.triggered.connect(self.open_about)
        self.help_menu.addAction(self.about_action)

        # The chart's own context menu: ours, never the web page's (Back / Reload / Inspect).
        # CustomContextMenu on a QWebEngineView emits customContextMenuRequested instead of
        # showing the page's menu; any other chart widget (a QLabel in tests) does the same.
        self.chart_menu = QMenu(self)
        self.chart_download_action = QAction("Download history…", self)
        self.chart_download_action.triggered.connect(self.downloadRequested)
        self.chart_menu.addAction(self.chart_download_action)
        self.chart_widget.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.chart_widget.customContextMenuRequested.connect(self._chart_context_menu)

    # ------------------------------------------------------------- controller API

    def set_symbol_infos(self, infos: Iterable[SymbolInfo]) -> None:
        """exchangeInfo symbols: feed the symbol picker, watchlist completion and precisions."""
        self._infos = {s.symbol: s for s in infos}
        self.symbol_picker.set_symbols(self._infos.values())
        self.watchlist.set_symbol_info(self._infos)

    def set_demo(self, demo: bool) -> None:
        """Mark the window as showing the simulated market: say so, and stop offering the switch."""
        self._demo = demo
        self.demo_action.setEnabled(not demo)
        self.status.set_demo(demo)
        self.setWindowTitle(self._title)

    @property
    def _title(self) -> str:
        suffix = " (demo market)" if self._demo else ""
        return f"{self._pair} — {APP_NAME}{suffix}" if self._pair else f"{APP_NAME}{suffix}"

    def set_current(self, symbol: str, interval: str) -> None:
        """Show ``symbol`` / ``interval`` as the charted pair; emits no request signals."""
        self.symbol_picker.set_current(symbol)
        self.interval_picker.set_interval(interval)
        self._pair = f"{symbol} · {interval}"
        self.setWindowTitle(self._title)
        self.trades_dock.setWindowTitle(f"Trades · {symbol}")
        # The dock's toggle action copies its title; the View menu should keep saying "Trades".
        self.trades_dock.toggleViewAction().setText("Trades")
        info = self._infos.get(symbol)
        if info is not None:
            self.trades.set_symbol_info(info)

    def apply_theme(self, theme: str) -> None:
        """Fusion style plus the dark or light palette for the whole application; no signal."""
        palette = theme_palette(theme)
        app = QApplication.instance()
        if isinstance(app, QApplication):
            # App-wide, not on the window: popups (completer, menus) and dialogs are separate
            # top-level windows that a window palette would not reach.
            if app.style().name().lower() != "fusion":
                app.setStyle("Fusion")
                palette = theme_palette(theme)
            app.setPalette(palette)
        self._theme = theme
        self.theme_actions[theme].setChecked(True)

    def theme(self) -> str:
        """The theme last applied ("" before the first :meth:`apply_theme`)."""
        return self._theme

    def apply_timezone(self, name: str) -> None:
        """Show trade times in ``name`` (``"UTC"``, ``"local"`` or IANA); no signal.

        Raises ValueError for an unknown zone, leaving the current one in place.
        """
        tz = timezone_of(name)
        self._timezone = name
        self.trades.set_timezone(tz)
        if name in self.tz_actions:
            self.tz_actions[name].setChecked(True)
            self.tz_other_action.setVisible(False)
        else:
            self.tz_other_action.setText(name)
            self.tz_other_action.setVisible(True)
            self.tz_other_action.setChecked(True)

    def timezone(self) -> str:
        """The zone name last applied."""
        return self._timezone

    def choose_timezone(self) -> QInputDialog:
        """Open the zone chooser (window-modal via ``open()``: ``exec()`` would break qasync)."""
        dialog = QInputDialog(self)
        dialog.setWindowTitle("Timezone")
        dialog.setLabelText("Time zone for the chart and trades:")
        names = zone_names()
        dialog.setComboBoxItems(names)
        dialog.setComboBoxEditable(False)
        if self._timezone in names:
            dialog.setTextValue(self._timezone)
        dialog.finished.connect(self._timezone_dialog_done)
        self.tz_dialog = dialog
        dialog.open()
        return dialog

    def save_layout(self) -> bool:
        """Store geometry, dock/toolbar state and the watchlist's columns; False without settings."""
        if self._settings is None:
            return False
        self._settings.setValue(_KEY_GEOMETRY, self.saveGeometry())
        self._settings.setValue(_KEY_STATE, self.saveState(LAYOUT_VERSION))
        self._settings.setValue(_KEY_WATCH_HEADER, self.watchlist.view.horizontalHeader().saveState())
        self._settings.sync()
        return True

    def restore_layout(self) -> bool:
        """Restore what :meth:`save_layout` stored; False when there was nothing usable."""
        if self._settings is None:
            return False
        geometry = self._settings.value(_KEY_GEOMETRY)
        state = self._settings.value(_KEY_STATE)
        header = self._settings.value(_KEY_WATCH_HEADER)
        geometry_ok = isinstance(geometry, QByteArray) and self.restoreGeometry(geometry)
        state_ok = isinstance(state, QByteArray) and self.restoreState(state, LAYOUT_VERSION)
        if isinstance(header, QByteArray):
            self.watchlist.view.horizontalHeader().restoreState(header)
        return bool(geometry_ok and state_ok)

    # ------------------------------------------------------------- events

    def open_about(self) -> QWidget:
        """Open Help ▸ About (version and licences); returns the dialog."""
        from binmon.ui.dialogs.about import open_about_dialog

        return open_about_dialog(self)

    def closeEvent(self, event: QCloseEvent) -> None:
        """Save the layout, tell the controller (``closing``), and close."""
        self.save_layout()
        self.closing.emit()
        event.accept()

    def _user_theme(self, theme: str) -> None:
        self.apply_theme(theme)
        self.themeRequested.emit(theme)

    def _user_timezone(self, name: str) -> None:
        self.apply_timezone(name)
        self.timezoneRequested.emit(name)

    def _timezone_dialog_done(self, result: int) -> None:
        dialog, self.tz_dialog = self.tz_dialog, None
        if dialog is None:
            return
        name = dialog.textValue()
        dialog.deleteLater()
        if result == QDialog.DialogCode.Accepted and name:
            self._user_timezone(name)

    def _chart_context_menu(self, pos: QPoint) -> None:
        # popup(), not exec(): no nested event loop under qasync.
        self.chart_menu.popup(self.chart_widget.mapToGlobal(pos))

    def _focus_symbol_picker(self) -> None:
        self.symbol_picker.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.symbol_picker.selectAll()
