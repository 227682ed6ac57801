"""Wires the main window and the chart to the market service, and persists the user's choices.

User actions (symbol picker, interval picker, watchlist double-click, theme, time zone,
watchlist edits, scrolling near the left edge) become commands on the service or calls on
the chart; what the service reports (through :class:`~binmon.ui.qt_adapter.QtMarketAdapter`'s
signals) becomes chart and panel updates. The config is saved on every change of a choice, so
a crash loses nothing the user set. Everything here runs on the GUI thread.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, tzinfo
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from PySide6.QtCore import QObject

from binmon.config import AppConfig, updated
from binmon.core.events import ConnectionStatus
from binmon.core.models import Kline, SymbolInfo
from binmon.ui.chart.api import ChartSymbol, ChartView, VisibleRange
from binmon.ui.qt_adapter import QtMarketAdapter

log = logging.getLogger(__name__)

#: Load older bars when fewer than this many loaded bars lie left of the view.
OLDER_THRESHOLD = 50


class MarketCommands(Protocol):
    """The part of :class:`~binmon.services.market.MarketService` the controller drives."""

    current: tuple[str, str] | None

    def request_switch(self, symbol: str, interval: str | None = None) -> None: ...

    def request_older(self) -> None: ...


def tz_of(name: str) -> tzinfo | None:
    """``"UTC"`` -> UTC, ``"local"`` -> None (the system zone), else the IANA zone; ValueError if unknown."""
    if name.upper() == "UTC":
        return UTC
    if name.lower() == "local":
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r}") from exc


class Controller(QObject):
    """Connects ``window`` (a MainWindow), ``chart`` and ``adapter`` to ``service``.

    ``save(config)`` persists the config (atomically, see :mod:`binmon.config`); its errors
    are shown as a one-line status message, never raised into Qt.
    """

    def __init__(
        self,
        service: MarketCommands,
        window: Any,
        chart: ChartView,
        adapter: QtMarketAdapter,
        config: AppConfig,
        save: Callable[[AppConfig], None],
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.service, self.window, self.chart, self.adapter = service, window, chart, adapter
        self.config = config
        self._save = save
        self._symbols: dict[str, SymbolInfo] = {}
        self._loaded = False  # the current series' history is on the chart
        self._blocking: str | None = None  # the message shown over the chart, if any

        window.symbolRequested.connect(self.request_symbol)
        window.intervalRequested.connect(self.request_interval)
        window.watchlist.symbolActivated.connect(self.request_symbol)
        window.watchlist.symbolsChanged.connect(self._watchlist_changed)
        window.themeRequested.connect(self.set_theme)
        window.timezoneRequested.connect(self.set_timezone)
        adapter.switching.connect(self._on_switching)
        adapter.historyLoaded.connect(self._on_history)
        adapter.olderLoaded.connect(self._on_older)
        adapter.symbolsLoaded.connect(self._on_symbols)
        adapter.statusChanged.connect(self._on_status)
        adapter.message.connect(self._on_message)
        chart.on_visible_range(self._on_visible_range)

    def set_service(self, service: MarketCommands) -> None:
        """Drive ``service`` from now on (the app swaps services when the user picks demo mode)."""
        self.service = service
        self._loaded = False

    def apply_config(self) -> None:
        """Push the loaded config into the window and chart (theme, zone, watchlist, current pick)."""
        cfg = self.config
        self.window.watchlist.set_symbols(list(cfg.watchlist))
        self.window.apply_theme(cfg.theme)
        self.chart.set_theme(cfg.theme)
        self._apply_timezone(cfg.timezone)
        self.window.set_current(cfg.symbol, cfg.interval)
        self._set_blocking("Connecting…")

    # ------------------------------------------------------------ user actions

    def request_symbol(self, symbol: str) -> None:
        """Show ``symbol`` at the current interval."""
        self.service.request_switch(symbol)

    def request_interval(self, interval: str) -> None:
        """Show the current symbol at ``interval``."""
        cur = self.service.current
        self.service.request_switch(cur[0] if cur else self.config.symbol, interval)

    def set_theme(self, theme: str) -> None:
        """Switch the chart and window theme and remember it."""
        if not self.remember(theme=theme):
            return
        self.window.apply_theme(theme)
        self.chart.set_theme(theme)

    def set_timezone(self, tz: str) -> None:
        """Apply ``tz`` ("UTC", "local" or an IANA name) to the chart and trades panel; remember it."""
        try:
            tz_of(tz)
        except ValueError as exc:
            self._notice(str(exc))
            return
        if self.remember(timezone=tz):
            self._apply_timezone(tz)

    # ------------------------------------------------------------ service events

    def _on_switching(self, info: SymbolInfo, interval: str) -> None:
        self._loaded = False
        self.chart.set_symbol(
            ChartSymbol(info.symbol, interval, info.tick_size, info.base_asset, info.quote_asset)
        )
        self.window.trades.clear()
        self.window.trades.set_symbol_info(info)
        self.window.set_current(info.symbol, interval)

    def _on_history(self, symbol: str, interval: str, bars: Sequence[Kline]) -> None:
        self.chart.set_bars(bars)
        self._loaded = True
        self.remember(symbol=symbol, interval=interval)

    def _on_older(self, symbol: str, interval: str, bars: Sequence[Kline]) -> None:
        if self.service.current == (symbol, interval):
            self.chart.prepend_bars(bars)

    def _on_symbols(self, symbols: Mapping[str, SymbolInfo]) -> None:
        self._symbols = dict(symbols)
        # The window feeds the picker (TRADING ones are choosable), the watchlist and precisions.
        self.window.set_symbol_infos(sorted(self._symbols.values(), key=lambda s: s.symbol))

    def _on_status(self, st: ConnectionStatus) -> None:
        # The status bar shows the websocket's state; the chart area only says why it has no
        # bars (the service's blocking messages), so a REST-reachable, websocket-blocked
        # network still shows history, with "offline" in the status bar.
        self.window.status.set_status(st)

    def _on_message(self, text: str | None, blocking: bool) -> None:
        if blocking:
            # Once bars are shown a loading/offline note must not hide them: it goes to the status bar.
            if text is not None and self._loaded:
                self._notice(text)
            else:
                self._set_blocking(text)
        elif text:
            self._notice(text)

    def _on_visible_range(self, vr: VisibleRange) -> None:
        if self._loaded and vr.bars_before < OLDER_THRESHOLD:
            self.service.request_older()

    # ------------------------------------------------------------ helpers

    def _watchlist_changed(self, symbols: list[str]) -> None:
        self.remember(watchlist=symbols)

    def _apply_timezone(self, tz: str) -> None:
        try:
            self.window.apply_timezone(tz)  # the trades panel's times
        except ValueError as exc:
            self._notice(str(exc))
            return
        self.chart.set_timezone(tz)

    def _set_blocking(self, text: str | None) -> None:
        if text != self._blocking:
            self._blocking = text
            self.chart.set_message(text)

    def _notice(self, text: str) -> None:
        log.info("%s", text)
        bar = self.window.statusBar()
        bar.showMessage(text, 8000)

    def remember(self, **changes: Any) -> bool:
        """Apply ``changes`` to the config and save it; False (and a notice) if a value is invalid."""
        try:
            new = updated(self.config, **changes)
        except ValueError as exc:
            self._notice(f"Not saved: {exc}")
            return False
        if new != self.config:
            self.config = new
            try:
                self._save(new)
            except OSError as exc:
                self._notice(f"Could not save settings: {exc}")
        return True
