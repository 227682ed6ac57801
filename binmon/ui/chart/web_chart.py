"""The real chart: Lightweight Charts in a QWebEngineView, behind :class:`~binmon.ui.chart.api.ChartView`.

Every call is checked against a :class:`~binmon.ui.chart.bar_window.BarWindow` (the model of what
the page holds) and then sent through the :class:`~binmon.ui.chart.bridge.ChartBridge`, so bad
data raises in the caller, synchronously, instead of in the page later. Live updates are
coalesced here: while a batch is in flight, new ops wait, and repeated updates of one bar
collapse to the newest; all waiting ops go to the page as ONE ``binmon.apply`` call.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from typing import Any

from PySide6.QtCore import Qt, QUrl, Signal

# QtWebEngineWidgets must be imported before the QApplication exists; importing this module
# early (as the app does) takes care of it.
from PySide6.QtWebEngineWidgets import QWebEngineView
from PySide6.QtWidgets import QWidget

from binmon.core.candles import ChartOp
from binmon.core.models import Kline
from binmon.resources import chart_lib_path, resource_path
from binmon.ui.chart.api import ChartSymbol, Crosshair, VisibleRange
from binmon.ui.chart.bar_window import (
    DEFAULT_MAX_BARS,
    BarWindow,
    apply_op,
    check_theme,
    check_timezone,
    price_format,
)
from binmon.ui.chart.bridge import ChartBridge, ChartPage
from binmon.ui.chart.jscall import js_call

log = logging.getLogger(__name__)


class WebChart(QWebEngineView):
    """Candles + volume for one symbol, with legend, themes, time zones and a message overlay.

    Safe to use at once: calls made before the page is ready are sent, in order, when it is.
    Signals: :attr:`ready` (each time the page has loaded and received the queued calls),
    :attr:`error` (page errors, load failures, renderer crashes).
    """

    ready = Signal()
    error = Signal(str)

    def __init__(
        self,
        parent: QWidget | None = None,
        *,
        max_bars: int = DEFAULT_MAX_BARS,
        theme: str = "dark",
        timezone: str = "UTC",
    ) -> None:
        """Create the view and start loading the page (FileNotFoundError without the chart library)."""
        chart_lib_path()  # fail here, clearly, rather than with an empty page
        super().__init__(parent)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.NoContextMenu)
        self._page = ChartPage(self)
        self.setPage(self._page)
        self._bridge = ChartBridge(self._page, self)
        self._bridge.add_flush_hook(self._push_ops)
        self._bridge.message.connect(self._on_message)
        self._bridge.ready.connect(self.ready)
        self._bridge.error.connect(self.error)
        self._bridge.reloaded.connect(self._resend_all)
        self._window = BarWindow(max_bars)
        self._ops: list[list[Any]] = []  # encoded ops waiting for the next batch
        self._symbol: ChartSymbol | None = None
        self._theme = check_theme(theme)
        self._timezone = check_timezone(timezone)
        self._message: str | None = None
        self._crosshair_cbs: list[Callable[[Crosshair], None]] = []
        self._range_cbs: list[Callable[[VisibleRange], None]] = []
        self._drawn_cbs: dict[int, Callable[[dict[str, Any]], None]] = {}
        self._next_token = 0
        self._resend_all()
        self.setUrl(QUrl.fromLocalFile(str(resource_path("chart", "index.html"))))

    # ------------------------------------------------------------------ ChartView

    @property
    def bars(self) -> tuple[Kline, ...]:
        """The bars the page holds once the queued calls have run."""
        return self._window.bars

    @property
    def bridge(self) -> ChartBridge:
        """The bridge to the page (diagnostics and tests)."""
        return self._bridge

    def set_symbol(self, sym: ChartSymbol) -> None:
        """Show ``sym``: clears the bars; prices get the tick size's decimals."""
        fmt = price_format(sym)
        self._symbol = sym
        self._window.clear(sym.symbol, sym.interval)
        self._call("binmon.setSymbol", _symbol_arg(sym, fmt))

    def set_bars(self, bars: Sequence[Kline]) -> None:
        """Replace all bars in one call (the newest ``max_bars`` are kept)."""
        rows = self._window.load(bars)
        self._ops.clear()  # superseded: the page gets the full, current bars
        self._call("binmon.setBars", rows)

    def prepend_bars(self, bars: Sequence[Kline]) -> None:
        """Add older bars on the left, keeping the view where it is (up to ``max_bars`` held)."""
        if not bars:
            return
        rows = self._window.prepend(bars)
        if rows:
            self._call("binmon.prependBars", rows)

    def apply(self, ops: Sequence[ChartOp]) -> None:
        """Apply live updates; ChartDataError for an update older than the last bar.

        The ops before a rejected one are kept and sent, as the page would have applied them.
        """
        try:
            for op in ops:
                encoded = apply_op(self._window, op)
                if encoded is not None:
                    self._queue_op(encoded)
        finally:
            self._bridge.flush()

    def set_message(self, text: str | None) -> None:
        """Show ``text`` over the chart, or hide the overlay (None or empty)."""
        self._message = text or None
        self._call("binmon.setMessage", self._message)

    def set_theme(self, theme: str) -> None:
        """``dark`` or ``light`` (ValueError otherwise)."""
        self._theme = check_theme(theme)
        self._call("binmon.setTheme", theme)

    def set_timezone(self, tz: str) -> None:
        """``UTC``, ``local`` or an IANA zone (ValueError otherwise), for the time axis and legend."""
        self._timezone = check_timezone(tz)
        self._call("binmon.setTimezone", tz)

    def on_crosshair(self, callback: Callable[[Crosshair], None]) -> None:
        """Call ``callback`` when the bar under the crosshair changes (at most once a frame)."""
        self._crosshair_cbs.append(callback)

    def on_visible_range(self, callback: Callable[[VisibleRange], None]) -> None:
        """Call ``callback`` when the bars in view change (at most once a frame)."""
        self._range_cbs.append(callback)

    # ------------------------------------------------------------------ diagnostics

    def state(self, callback: Callable[[dict[str, Any]], None]) -> None:
        """Read the page's state after all calls made so far: ``callback(dict)``.

        Keys include count, first, last (rows), shownFirst/shownLast (display times), symbol,
        precision, priceFormat, priceLabel, theme, background, timezone, timeLabelLast, legend,
        message, messageVisible, series, calls, recent (see ``stateJSON`` in bm-api.js).
        """
        self.call_js("binmon.stateJSON", callback=lambda text: callback(json.loads(text)))

    def page_bars(self, callback: Callable[[list[list[float]]], None]) -> None:
        """Read every bar row the page holds, after all calls made so far."""
        self.call_js("binmon.barsJSON", callback=lambda text: callback(json.loads(text)))

    def call_js(self, fn_name: str, *args: Any, callback: Callable[[Any], None] | None = None) -> None:
        """Call a page function (``binmon.*``) after everything sent so far.

        ``callback`` gets its return value (strings, numbers and bools only: page functions
        that return data return JSON text, hence the ``...JSON`` names).
        """
        self._push_ops()
        self._bridge.call(js_call(fn_name, *args), callback)

    def when_drawn(self, callback: Callable[[dict[str, Any]], None]) -> None:
        """Call ``callback`` once everything sent so far has been painted (needs a shown widget)."""
        self._next_token += 1
        self._drawn_cbs[self._next_token] = callback
        self._call("binmon.whenDrawn", self._next_token)

    # ------------------------------------------------------------------ internals

    def _call(self, fn: str, *args: Any) -> None:
        self._push_ops()  # keep the order: ops queued before this call go first
        self._bridge.call(js_call(fn, *args))

    def _queue_op(self, encoded: list[Any]) -> None:
        last = self._ops[-1] if self._ops else None
        # A newer version of the bar the previous waiting update carries replaces it: the page
        # would draw only the last one anyway (same open time -> series.update replaces).
        if last is not None and last[0] == "u" and encoded[0] == "u" and last[1] == encoded[1]:
            self._ops[-1] = encoded
        else:
            self._ops.append(encoded)

    def _push_ops(self) -> None:
        if self._ops:
            ops, self._ops = self._ops, []
            self._bridge.call(js_call("binmon.apply", ops))

    def _resend_all(self) -> None:
        """Queue the whole state: at start, and after the page reloaded (renderer crash)."""
        self._ops.clear()
        self._bridge.call(js_call("binmon.configure", {"maxBars": self._window.max_bars}))
        self._bridge.call(js_call("binmon.setTheme", self._theme))
        self._bridge.call(js_call("binmon.setTimezone", self._timezone))
        if self._symbol is not None:
            arg = _symbol_arg(self._symbol, price_format(self._symbol))
            self._bridge.call(js_call("binmon.setSymbol", arg))
        if len(self._window):
            self._bridge.call(js_call("binmon.setBars", self._window.load(self._window.bars)))
        self._bridge.call(js_call("binmon.setMessage", self._message))
        for token in self._drawn_cbs:  # a reload lost the page's pending frame callbacks
            self._bridge.call(js_call("binmon.whenDrawn", token))

    def _on_message(self, msg: dict[str, Any]) -> None:
        kind = msg.get("type")
        try:
            if kind == "crosshair":
                t = msg.get("time")
                # The bar as Python holds it: a full Kline (trades, quote volume...), and the
                # newest version when updates are still on their way to the page.
                time_ms = int(t) * 1000 if t is not None else None
                bar = self._window.find(time_ms) if time_ms is not None else None
                self._notify(self._crosshair_cbs, Crosshair(time_ms, bar))
            elif kind == "visibleRange":
                rng = VisibleRange(
                    int(msg["fromTime"]) * 1000, int(msg["toTime"]) * 1000, int(msg["barsBefore"])
                )
                self._notify(self._range_cbs, rng)
            elif kind == "state":
                cb = self._drawn_cbs.pop(int(msg["token"]), None) if msg.get("event") == "drawn" else None
                if cb is not None:
                    cb(msg)
            else:
                log.warning("unexpected message from the chart page: %.200r", msg)
        except (KeyError, TypeError, ValueError):
            log.exception("bad %s message from the chart page: %.200r", kind, msg)

    @staticmethod
    def _notify(callbacks: Sequence[Callable[[Any], None]], event: Any) -> None:
        for cb in callbacks:
            try:
                cb(event)
            except Exception:
                log.exception("chart callback %r failed", cb)


def _symbol_arg(sym: ChartSymbol, fmt: dict[str, Any]) -> dict[str, Any]:
    return {
        "symbol": sym.symbol,
        "interval": sym.interval,
        "precision": fmt["precision"],
        "minMove": fmt["minMove"],
    }
