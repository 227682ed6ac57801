"""The chart behind a small interface (architecture guide, point 7).

The controller and the panels talk to a :class:`ChartView`; the real one drives
Lightweight Charts in a QWebEngineView (:mod:`binmon.ui.chart.web_chart`), and a
recording fake (:mod:`binmon.ui.chart.fake`) lets panels, dialogs and the controller be
tested without WebEngine. Indicators are drawn from values computed in Python, described by
:class:`~binmon.ui.chart.indicators.IndicatorDraw` (see :mod:`binmon.ui.chart.indicators` for
rows, panes and what the chart keeps). Alert levels are :class:`PriceLine` values.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from binmon.core.candles import ChartOp
from binmon.core.models import Kline

if TYPE_CHECKING:  # indicators imports bar_window, which imports this module
    from binmon.ui.chart.indicators import IndicatorDraw, IndicatorRows


@dataclass(frozen=True, slots=True)
class ChartSymbol:
    """What the chart needs to know about the instrument it shows.

    ``tick_size`` is Binance's PRICE_FILTER step as a decimal string ("0.00000001");
    prices are formatted with exactly its number of decimals.
    """

    symbol: str
    interval: str
    tick_size: str
    base_asset: str = ""
    quote_asset: str = ""


@dataclass(frozen=True, slots=True)
class Crosshair:
    """The bar under the crosshair (None fields when the cursor left the chart); ``price`` is
    the price at the cursor's height in the candles' pane (None elsewhere)."""

    time_ms: int | None
    bar: Kline | None
    price: float | None = None


@dataclass(frozen=True, slots=True)
class PriceLine:
    """A horizontal line at ``price`` on the candles (an alert's level); ``active`` False draws
    it as paused. ``id`` is unique within one :meth:`ChartView.set_price_lines` call."""

    id: str
    price: float
    title: str = ""
    active: bool = True


def price_lines_arg(lines: Sequence[PriceLine]) -> list[dict[str, object]]:
    """The page's form of ``lines``; ValueError for a non-finite price or a repeated/empty id."""
    seen: set[str] = set()
    out: list[dict[str, object]] = []
    for line in lines:
        if not isinstance(line.price, int | float) or not math.isfinite(line.price):
            raise ValueError(f"price line {line.id!r}: price must be a finite number (got {line.price!r})")
        if not line.id or line.id in seen:
            raise ValueError(f"price line ids must be unique and non-empty (got {line.id!r})")
        seen.add(line.id)
        out.append({"id": line.id, "price": float(line.price), "title": line.title, "active": line.active})
    return out


@dataclass(frozen=True, slots=True)
class VisibleRange:
    """Logical range shown: ``bars_before`` is how many loaded bars lie left of the view."""

    from_ms: int
    to_ms: int
    bars_before: int


class ChartView(Protocol):
    """What the rest of the UI may ask of a chart. Every method is cheap to call and
    safe before the page is ready (calls are buffered until then)."""

    def set_symbol(self, sym: ChartSymbol) -> None:
        """Start showing ``sym``: clears all bars; price format from its tick size."""

    def set_bars(self, bars: Sequence[Kline]) -> None:
        """Replace all bars (history load, reload); bars sorted by open time, unique."""

    def prepend_bars(
        self, bars: Sequence[Kline], indicators: Mapping[str, IndicatorRows] | None = None
    ) -> None:
        """Add older bars on the left (scrolling back), keeping the view where it is;
        ``indicators``: id -> rows of indicator values for them, drawn with them."""

    def apply(self, ops: Sequence[ChartOp], indicators: Mapping[str, IndicatorRows] | None = None) -> None:
        """Apply coalesced live updates (Append / Replace / Reload; Gap is ignored), then the
        indicator values in ``indicators`` (id -> rows ``[t, v...]``), in one batch to the page."""

    def update_indicators(self, updates: Mapping[str, IndicatorRows]) -> None:
        """Live indicator values (id -> rows ``[t, v...]``); the newest per bar goes with the next batch."""

    def set_indicator(self, desc: IndicatorDraw, rows: IndicatorRows) -> None:
        """Draw an indicator (or replace the one with its id); rows ``[t_seconds, v...]`` per bar."""

    def prepend_indicator(self, indicator_id: str, rows: IndicatorRows) -> None:
        """Add values for bars already held (older bars loaded with :meth:`prepend_bars`)."""

    def remove_indicator(self, indicator_id: str) -> None:
        """Remove an indicator; its pane goes when nothing else is drawn there."""

    def set_indicator_visible(self, indicator_id: str, visible: bool) -> None:
        """Show or hide an indicator (its pane and values stay)."""

    def set_message(self, text: str | None) -> None:
        """Show ``text`` over the chart area (e.g. offline), or clear it with None."""

    def set_price_lines(self, lines: Sequence[PriceLine]) -> None:
        """Draw exactly ``lines`` as horizontal price lines (alert levels); ``[]`` removes them."""

    def set_theme(self, theme: str) -> None:
        """``"dark"`` or ``"light"``."""

    def set_timezone(self, tz: str) -> None:
        """``"UTC"``, ``"local"`` or an IANA zone name; applied to the time axis and legend."""

    def on_crosshair(self, callback: Callable[[Crosshair], None]) -> None:
        """Register a callback for crosshair moves."""

    def on_visible_range(self, callback: Callable[[VisibleRange], None]) -> None:
        """Register a callback for scrolls/zooms (the controller loads older bars near the left edge)."""
