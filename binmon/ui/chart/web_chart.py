"""The real chart: Lightweight Charts in a QWebEngineView, behind :class:`~binmon.ui.chart.api.ChartView`.

Every call is checked against a :class:`~binmon.ui.chart.bar_window.BarWindow` and an
:class:`~binmon.ui.chart.indicators.IndicatorBook` (the models of what the page holds) and then
sent through the :class:`~binmon.ui.chart.bridge.ChartBridge`, so bad data raises in the caller,
synchronously, instead of in the page later. Live updates are coalesced here: while a batch is in
flight, new ops wait, repeated updates of one bar collapse to the newest, and so do indicator
values of one (indicator, bar); all waiting candle and indicator updates go to the page as ONE
``binmon.apply`` call.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from PySide6.QtCore import Qt, QUrl, Signal

# QtWebEngineWidgets must be imported before the QApplication exists; importing this module
# early (as the app does) takes care of it.
from PySide6.QtWebEngineWidgets import QWebEngineView
from PySide6.QtWidgets import QWidget

from binmon.core.candles import ChartOp
from binmon.core.models import Kline
from binmon.resources import chart_lib_path, resource_path
from binmon.ui.chart.api import ChartSymbol, Crosshair, PriceLine, VisibleRange, price_lines_arg
from binmon.ui.chart.bar_window import (
    DEFAULT_MAX_BARS,
    BarWindow,
    check_theme,
    check_timezone,
    price_format,
)
from binmon.ui.chart.bridge import ChartBridge, ChartPage
from binmon.ui.chart.indicators import (
    IndicatorBook,
    IndicatorDraw,
    IndicatorRows,
    book_rows,
    check_updates,
    draw_arg,
)
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
        self._book = IndicatorBook()
        self._ops: list[list[Any]] = []  # encoded ops waiting for the next batch
        # Indicator values waiting for the next batch, newest per (id, bar time); they go after
        # self._ops in that batch (the bars they belong to are then on the page).
        self._ind_ops: dict[tuple[str, int], list[Any]] = {}
        self._symbol: ChartSymbol | None = None
        self._theme = check_theme(theme)
        self._timezone = check_timezone(timezone)
        self._message: str | None = None
        self._price_lines: list[dict[str, object]] = []
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

    @property
    def indicators(self) -> tuple[IndicatorDraw, ...]:
        """The indicators drawn (in legend order), as last set."""
        return self._book.draws

    def indicator_rows(self, indicator_id: str) -> list[list[Any]]:
        """``[t, v...]`` of every bar held that has values, as the page holds them once the calls ran."""
        return self._book.rows(indicator_id, self._window)

    def indicator_pane(self, indicator_id: str) -> int:
        """The pane the indicator is drawn in (0: the price pane)."""
        return self._book.pane(indicator_id)

    def set_symbol(self, sym: ChartSymbol) -> None:
        """Show ``sym``: clears the bars and indicator values (not the indicators); prices get the
        tick size's decimals."""
        fmt = price_format(sym)
        self._symbol = sym
        self._window.clear(sym.symbol, sym.interval)
        self._book.retain(self._window)
        self._call("binmon.setSymbol", _symbol_arg(sym, fmt))

    def set_bars(self, bars: Sequence[Kline]) -> None:
        """Replace all bars in one call (the newest ``max_bars`` are kept).

        Indicator values stay for the bars still held (by open time); send new ones with
        :meth:`set_indicator` when the values changed.
        """
        rows = self._window.load(bars)
        self._book.retain(self._window)
        if not self._ind_ops:
            # Superseded: the page gets the full, current bars. (Not with indicator values
            # waiting: they may belong to bars only those waiting ops add.)
            self._ops.clear()
        self._call("binmon.setBars", rows)

    def prepend_bars(
        self, bars: Sequence[Kline], indicators: Mapping[str, IndicatorRows] | None = None
    ) -> None:
        """Add older bars on the left, keeping the view where it is (up to ``max_bars`` held).

        ``indicators``: id -> rows of indicator values for them (any bars held), drawn with them.
        """
        updates = check_updates(indicators)
        if not bars:
            return
        rows = self._window.prepend(bars)
        if not rows:
            return
        merged: dict[str, dict[str, Any]] = {}
        try:
            for key, ind_rows in updates.items():
                cols = self._book.merge(key, ind_rows, self._window)
                if len(cols):
                    merged[key] = cols.arg()
        finally:  # the bars are in the window now: the page must get them even if some rows were bad
            self._call("binmon.prependBars", rows, *([merged] if merged else []))

    def apply(self, ops: Sequence[ChartOp], indicators: Mapping[str, IndicatorRows] | None = None) -> None:
        """Apply live updates; ChartDataError for an update older than the last bar.

        ``indicators``: id -> rows ``[t, v...]`` of new indicator values (usually the last bar,
        and the one before after an append), applied after ``ops`` and sent in the same batch.
        The ops before a rejected one are kept and sent, as the page would have applied them.
        """
        updates = check_updates(indicators)
        try:
            for op in ops:
                encoded = self._book.apply_op(self._window, op)
                if encoded is not None:
                    self._queue_op(encoded)
            self._queue_indicators(updates)
        finally:
            self._bridge.flush()

    def update_indicators(self, updates: Mapping[str, IndicatorRows]) -> None:
        """Live indicator values without candle ops: :meth:`apply` with ``ops=()``."""
        self.apply((), updates)

    def set_indicator(self, desc: IndicatorDraw, rows: IndicatorRows) -> None:
        """Draw an indicator, or replace the one with its id (a restyle keeps its pane).

        ``rows``: ``[t_seconds, v1, ...]`` per bar (None / NaN: no value), aligned with the bars
        held; rows older than the first bar held are dropped, any other time the chart does not
        hold raises ChartDataError, as do bad descriptors and infinite values.
        """
        cols = self._book.set(desc, rows, self._window)
        self._drop_ind_ops(desc.id)  # superseded by the full rows
        self._call("binmon.setIndicator", draw_arg(desc), cols.arg())

    def prepend_indicator(self, indicator_id: str, rows: IndicatorRows) -> None:
        """Values for bars already held (e.g. older bars after :meth:`prepend_bars`); merged and redrawn."""
        cols = self._book.merge(indicator_id, rows, self._window)
        if len(cols):
            self._call("binmon.prependIndicator", indicator_id, cols.arg())

    def remove_indicator(self, indicator_id: str) -> None:
        """Remove an indicator (ChartDataError if unknown); its pane goes when nothing else is there."""
        self._book.remove(indicator_id)
        self._drop_ind_ops(indicator_id)
        self._call("binmon.removeIndicator", indicator_id)

    def set_indicator_visible(self, indicator_id: str, visible: bool) -> None:
        """Show or hide an indicator (it keeps its pane and values)."""
        self._book.set_visible(indicator_id, visible)
        self._call("binmon.setIndicatorVisible", indicator_id, visible)

    def set_message(self, text: str | None) -> None:
        """Show ``text`` over the chart, or hide the overlay (None or empty)."""
        self._message = text or None
        self._call("binmon.setMessage", self._message)

    def set_price_lines(self, lines: Sequence[PriceLine]) -> None:
        """Draw exactly ``lines`` on the candles (alert levels); ValueError for bad prices or ids."""
        self._price_lines = price_lines_arg(lines)
        self._call("binmon.setPriceLines", self._price_lines)

    def page_price_lines(self, callback: Callable[[list[dict[str, Any]]], None]) -> None:
        """Read the price lines the page draws (id, price, title, color, lineStyle), after all calls."""
        self.call_js("binmon.priceLinesJSON", callback=lambda text: callback(json.loads(text)))

    def set_theme(self, theme: str) -> None:
        """``dark`` or ``light`` (ValueError otherwise)."""
        self._theme = check_theme(theme)
        self._call("binmon.setTheme", theme)

    def set_timezone(self, tz: str) -> None:
        """``UTC``, ``local`` or an IANA zone (ValueError otherwise), for the time axis and legend."""
        self._timezone = check_timezone(tz)
        self._call("binmon.setTimezone", tz)

    def on_crosshair(self, callback: Callable[[Crosshair], None]) -> None:
        """Call ``callback`` when the bar or price under the crosshair changes (at most once a frame)."""
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

    def page_indicator(self, indicator_id: str, callback: Callable[[list[list[Any]] | None], None]) -> None:
        """Read an indicator's rows as the page holds them (None if it has no such indicator)."""
        self.call_js("binmon.indicatorJSON", indicator_id, callback=lambda text: callback(json.loads(text)))

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

    def _queue_indicators(self, updates: Mapping[str, IndicatorRows]) -> None:
        for key, rows in updates.items():
            for row in rows:
                op = self._book.update(key, row, self._window)
                self._ind_ops[(key, op[2])] = op  # the newest value of a bar wins

    def _drop_ind_ops(self, indicator_id: str) -> None:
        for key in [k for k in self._ind_ops if k[0] == indicator_id]:
            del self._ind_ops[key]

    def _push_ops(self) -> None:
        if self._ops or self._ind_ops:
            ops = self._ops + list(self._ind_ops.values())
            self._ops, self._ind_ops = [], {}
            self._bridge.call(js_call("binmon.apply", ops))

    def _resend_all(self) -> None:
        """Queue the whole state: at start, and after the page reloaded (renderer crash)."""
        self._ops.clear()
        self._ind_ops.clear()
        self._bridge.call(js_call("binmon.configure", {"maxBars": self._window.max_bars}))
        self._bridge.call(js_call("binmon.setTheme", self._theme))
        self._bridge.call(js_call("binmon.setTimezone", self._timezone))
        if self._symbol is not None:
            arg = _symbol_arg(self._symbol, price_format(self._symbol))
            self._bridge.call(js_call("binmon.setSymbol", arg))
        if len(self._window):
            self._bridge.call(js_call("binmon.setBars", self._window.load(self._window.bars)))
        for arg, cols in book_rows(self._book, self._window):
            self._bridge.call(js_call("binmon.setIndicator", arg, cols.arg()))
        self._bridge.call(js_call("binmon.setMessage", self._message))
        if self._price_lines:
            self._bridge.call(js_call("binmon.setPriceLines", self._price_lines))
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
                price = msg.get("price")
                price = float(price) if isinstance(price, int | float) else None
                self._notify(self._crosshair_cbs, Crosshair(time_ms, bar, price))
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
