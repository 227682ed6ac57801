"""A chart without Qt: :class:`RecordingChart`, the test double of the chart.

It keeps its bars in a :class:`~binmon.ui.chart.bar_window.BarWindow` and its indicators in an
:class:`~binmon.ui.chart.indicators.IndicatorBook`, the same models the real
:class:`~binmon.ui.chart.web_chart.WebChart` checks every call against, so a controller test on
the fake fails where the real chart would.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from binmon.core.candles import ChartOp
from binmon.core.models import Kline
from binmon.ui.chart.api import ChartSymbol, Crosshair, PriceLine, VisibleRange, price_lines_arg
from binmon.ui.chart.bar_window import (
    DEFAULT_MAX_BARS,
    BarWindow,
    check_theme,
    check_timezone,
    price_format,
)
from binmon.ui.chart.indicators import IndicatorBook, IndicatorDraw, IndicatorRows, check_updates


class RecordingChart:
    """A :class:`~binmon.ui.chart.api.ChartView` that records calls and keeps the page's bars.

    ``calls`` lists every call as ``(method, args)``; ``bars`` is what the real page would
    show after them; :meth:`fire_crosshair` and :meth:`fire_visible_range` play the user.
    Bad data raises here as the real chart raises (ChartDataError, ValueError).
    """

    def __init__(self, max_bars: int = DEFAULT_MAX_BARS) -> None:
        """An empty chart in the dark theme, UTC, no symbol."""
        self.window = BarWindow(max_bars)
        self.book = IndicatorBook()
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.symbol: ChartSymbol | None = None
        self.price_format: dict[str, Any] | None = None
        self.theme = "dark"
        self.timezone = "UTC"
        self.message: str | None = None
        self.price_lines: tuple[PriceLine, ...] = ()
        self._crosshair_cbs: list[Callable[[Crosshair], None]] = []
        self._range_cbs: list[Callable[[VisibleRange], None]] = []

    @property
    def bars(self) -> tuple[Kline, ...]:
        """The bars the page would hold now."""
        return self.window.bars

    @property
    def indicators(self) -> tuple[IndicatorDraw, ...]:
        """The indicators the page would draw, in legend order."""
        return self.book.draws

    def indicator_rows(self, indicator_id: str) -> list[list[Any]]:
        """``[t, v...]`` of every bar held that has values (what the page's indicatorJSON reports)."""
        return self.book.rows(indicator_id, self.window)

    def indicator_pane(self, indicator_id: str) -> int:
        """The pane the indicator would be drawn in (0: the price pane)."""
        return self.book.pane(indicator_id)

    def calls_to(self, method: str) -> list[tuple[Any, ...]]:
        """The arguments of every call to ``method``, in order."""
        return [args for name, args in self.calls if name == method]

    # ------------------------------------------------------------------ ChartView

    def set_symbol(self, sym: ChartSymbol) -> None:
        """Record; clear the bars; take the price format from the tick size."""
        self.calls.append(("set_symbol", (sym,)))
        self.price_format = price_format(sym)
        self.symbol = sym
        self.window.clear(sym.symbol, sym.interval)
        self.book.retain(self.window)

    def set_bars(self, bars: Sequence[Kline]) -> None:
        """Record; replace all bars (newest ``max_bars`` kept); indicator values stay for bars still held."""
        self.calls.append(("set_bars", (tuple(bars),)))
        self.window.load(bars)
        self.book.retain(self.window)

    def prepend_bars(
        self, bars: Sequence[Kline], indicators: Mapping[str, IndicatorRows] | None = None
    ) -> None:
        """Record; add older bars on the left as far as ``max_bars`` allows, with their indicator values."""
        updates = check_updates(indicators)
        self.calls.append(("prepend_bars", (tuple(bars), dict(updates)) if updates else (tuple(bars),)))
        if bars and self.window.prepend(bars):
            for key, rows in updates.items():
                self.book.merge(key, rows, self.window)

    def apply(self, ops: Sequence[ChartOp], indicators: Mapping[str, IndicatorRows] | None = None) -> None:
        """Record; apply the ops, then the indicator values, as the page does (ChartDataError on
        an update older than the last bar, or a value for a bar not held)."""
        updates = check_updates(indicators)
        self.calls.append(("apply", (tuple(ops), dict(updates)) if updates else (tuple(ops),)))
        for op in ops:
            self.book.apply_op(self.window, op)
        for key, rows in updates.items():
            for row in rows:
                self.book.update(key, row, self.window)

    def update_indicators(self, updates: Mapping[str, IndicatorRows]) -> None:
        """Record; live indicator values (as :meth:`apply` with no ops)."""
        self.calls.append(("update_indicators", (dict(updates),)))
        for key, rows in check_updates(updates).items():
            for row in rows:
                self.book.update(key, row, self.window)

    def set_indicator(self, desc: IndicatorDraw, rows: IndicatorRows) -> None:
        """Record; add or replace an indicator (ChartDataError for bad descriptors or rows)."""
        self.calls.append(("set_indicator", (desc, rows)))
        self.book.set(desc, rows, self.window)

    def prepend_indicator(self, indicator_id: str, rows: IndicatorRows) -> None:
        """Record; merge values for bars already held."""
        self.calls.append(("prepend_indicator", (indicator_id, rows)))
        self.book.merge(indicator_id, rows, self.window)

    def remove_indicator(self, indicator_id: str) -> None:
        """Record; remove an indicator (ChartDataError if unknown)."""
        self.calls.append(("remove_indicator", (indicator_id,)))
        self.book.remove(indicator_id)

    def set_indicator_visible(self, indicator_id: str, visible: bool) -> None:
        """Record; show or hide an indicator."""
        self.calls.append(("set_indicator_visible", (indicator_id, visible)))
        self.book.set_visible(indicator_id, visible)

    def set_message(self, text: str | None) -> None:
        """Record; show or clear the overlay text."""
        self.calls.append(("set_message", (text,)))
        self.message = text or None

    def set_price_lines(self, lines: Sequence[PriceLine]) -> None:
        """Record; the lines drawn from now on (ValueError for bad prices or ids)."""
        price_lines_arg(lines)
        self.calls.append(("set_price_lines", (tuple(lines),)))
        self.price_lines = tuple(lines)

    def set_theme(self, theme: str) -> None:
        """Record; ValueError for an unknown theme."""
        self.calls.append(("set_theme", (theme,)))
        self.theme = check_theme(theme)

    def set_timezone(self, tz: str) -> None:
        """Record; ValueError for an unknown zone."""
        self.calls.append(("set_timezone", (tz,)))
        self.timezone = check_timezone(tz)

    def on_crosshair(self, callback: Callable[[Crosshair], None]) -> None:
        """Register ``callback`` for :meth:`fire_crosshair`."""
        self._crosshair_cbs.append(callback)

    def on_visible_range(self, callback: Callable[[VisibleRange], None]) -> None:
        """Register ``callback`` for :meth:`fire_visible_range`."""
        self._range_cbs.append(callback)

    # ------------------------------------------------------------------ playing the user

    def fire_crosshair(self, time_ms: int | None, price: float | None = None) -> Crosshair:
        """Move the crosshair to the bar at ``time_ms`` (None: off the chart), at the height of
        ``price``; return the event.

        As from the real chart, ``bar`` is None when no bar is held at ``time_ms``.
        """
        event = Crosshair(time_ms, self.window.find(time_ms) if time_ms is not None else None, price)
        for cb in self._crosshair_cbs:
            cb(event)
        return event

    def fire_visible_range(self, first: int, last: int) -> VisibleRange:
        """Scroll so bars ``first``..``last`` (indices) are in view; return the event sent."""
        event = self.window.visible_range(first, last)
        for cb in self._range_cbs:
            cb(event)
        return event
