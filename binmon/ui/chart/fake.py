"""A chart without Qt: :class:`RecordingChart`, the test double of the chart.

It keeps its bars in a :class:`~binmon.ui.chart.bar_window.BarWindow`, the same model the real
:class:`~binmon.ui.chart.web_chart.WebChart` checks every call against, so a controller test on
the fake fails where the real chart would.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from binmon.core.candles import ChartOp
from binmon.core.models import Kline
from binmon.ui.chart.api import ChartSymbol, Crosshair, VisibleRange
from binmon.ui.chart.bar_window import (
    DEFAULT_MAX_BARS,
    BarWindow,
    apply_ops,
    check_theme,
    check_timezone,
    price_format,
)


class RecordingChart:
    """A :class:`~binmon.ui.chart.api.ChartView` that records calls and keeps the page's bars.

    ``calls`` lists every call as ``(method, args)``; ``bars`` is what the real page would
    show after them; :meth:`fire_crosshair` and :meth:`fire_visible_range` play the user.
    Bad data raises here as the real chart raises (ChartDataError, ValueError).
    """

    def __init__(self, max_bars: int = DEFAULT_MAX_BARS) -> None:
        """An empty chart in the dark theme, UTC, no symbol."""
        self.window = BarWindow(max_bars)
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.symbol: ChartSymbol | None = None
        self.price_format: dict[str, Any] | None = None
        self.theme = "dark"
        self.timezone = "UTC"
        self.message: str | None = None
        self._crosshair_cbs: list[Callable[[Crosshair], None]] = []
        self._range_cbs: list[Callable[[VisibleRange], None]] = []

    @property
    def bars(self) -> tuple[Kline, ...]:
        """The bars the page would hold now."""
        return self.window.bars

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

    def set_bars(self, bars: Sequence[Kline]) -> None:
        """Record; replace all bars (newest ``max_bars`` kept)."""
        self.calls.append(("set_bars", (tuple(bars),)))
        self.window.load(bars)

    def prepend_bars(self, bars: Sequence[Kline]) -> None:
        """Record; add older bars on the left as far as ``max_bars`` allows."""
        self.calls.append(("prepend_bars", (tuple(bars),)))
        self.window.prepend(bars)

    def apply(self, ops: Sequence[ChartOp]) -> None:
        """Record; apply the ops as the page does (ChartDataError on an update older than the last)."""
        self.calls.append(("apply", (tuple(ops),)))
        apply_ops(self.window, ops)

    def set_message(self, text: str | None) -> None:
        """Record; show or clear the overlay text."""
        self.calls.append(("set_message", (text,)))
        self.message = text or None

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

    def fire_crosshair(self, time_ms: int | None) -> Crosshair:
        """Move the crosshair to the bar at ``time_ms`` (None: off the chart); return the event.

        As from the real chart, ``bar`` is None when no bar is held at ``time_ms``.
        """
        event = Crosshair(time_ms, self.window.find(time_ms) if time_ms is not None else None)
        for cb in self._crosshair_cbs:
            cb(event)
        return event

    def fire_visible_range(self, first: int, last: int) -> VisibleRange:
        """Scroll so bars ``first``..``last`` (indices) are in view; return the event sent."""
        event = self.window.visible_range(first, last)
        for cb in self._range_cbs:
            cb(event)
        return event
