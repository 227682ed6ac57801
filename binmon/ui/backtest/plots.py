"""The result plots: candles with trade markers and overlays, indicator panes, equity, drawdown.

One :class:`ResultPlots` (a GraphicsLayoutWidget) holds plots stacked with linked time axes
(pan or zoom one, all follow). It draws a :class:`PlotData`: plain arrays, so the widget knows
nothing of the runner and the benchmark can feed it synthetic data. Built for 500k candles:

* candles: :class:`~binmon.ui.backtest.candles.CandleItem` (visible range only, one merged bar
  per pixel column);
* lines: ``clipToView`` + ``autoDownsample`` (peak method, extremes kept), ``connect="finite"``
  so indicator warm-up NaNs leave a gap instead of breaking the line;
* no grid with alpha (pyqtgraph gets ~4x slower with it); y follows the visible x range.

Times are open times in seconds, UTC (``DateAxisItem(utcOffset=0)``). Colours follow the
application palette (dark or light theme) and are re-applied when it changes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QPointF, Qt, Signal
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QWidget

from binmon.backtest.model import IndicatorLine, Marker
from binmon.history.dates import format_ms
from binmon.ui.backtest.candles import DOWN_COLOUR, UP_COLOUR, CandleItem

EQUITY_COLOUR = "#2962ff"
HOLD_COLOUR = "#ff9800"
DRAWDOWN_COLOUR = "#ef5350"
#: Indicator line colours, in order of appearance.
LINE_COLOURS = ("#f7b500", "#ab47bc", "#29b6f6", "#ec407a", "#8d6e63", "#66bb6a", "#ffa726")
PRICE_PANE = "price"
MARKER_SIZE = 11


@dataclass
class PlotData:
    """Everything the plots draw, aligned on ``times_s`` (open times, seconds UTC, ascending)."""

    times_s: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    equity: np.ndarray
    buy_hold: np.ndarray
    drawdown_pct: np.ndarray  # <= 0
    markers: Sequence[Marker] = ()  # time_ms, price, kind ("buy" / "sell")
    lines: Sequence[IndicatorLine] = ()
    title: str = ""
    #: Another run's equity to compare with (the "Compare" view): (label, times_s, equity).
    compare: tuple[str, np.ndarray, np.ndarray] | None = None


def _marker_tip(x: float, y: float, data: Marker) -> str:
    return f"{data.kind.capitalize()} {data.price:.10g}\n{format_ms(data.time_ms)}"


def _pane(line: IndicatorLine) -> str:
    return line.group or line.name


def _curve(
    values: np.ndarray, times: np.ndarray, colour: str, name: str, *, gaps: bool = True
) -> pg.PlotDataItem:
    """A line; ``gaps``: NaNs (indicator warm-up) leave a gap. Without gaps the path (and a
    fill under it) is one piece, much cheaper to fill than pyqtgraph's per-segment fills."""
    # 1-pixel pens: wider ones make the raster engine ~5x slower on long curves.
    connect = "finite" if gaps else "all"
    item = pg.PlotDataItem(times, values, pen=pg.mkPen(colour, width=1), name=name, connect=connect)
    # One peak pair per pixel column is all a screen shows (pyqtgraph's default keeps ~5).
    item.opts["autoDownsampleFactor"] = 1.0
    # clipToView and peak downsampling come from the PlotItem when added (setting them on a
    # curve before it is in a ViewBox trips pyqtgraph 0.14).
    return item


class ResultPlots(pg.GraphicsLayoutWidget):
    """The stacked, x-linked result plots (see the module docstring). ``hovered(bar index)``
    when the mouse moves over a bar (the tab shows its prices and equity)."""

    hovered = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("backtest_plots")
        self.ci.layout.setSpacing(2)
        self.ci.setContentsMargins(4, 4, 4, 4)
        self.candles: CandleItem | None = None
        self.buy_markers: pg.ScatterPlotItem | None = None
        self.sell_markers: pg.ScatterPlotItem | None = None
        self.price: pg.PlotItem | None = None
        self.panes: dict[str, pg.PlotItem] = {}
        self.equity: pg.PlotItem | None = None
        self.drawdown: pg.PlotItem | None = None
        self.lines: dict[str, pg.PlotDataItem] = {}
        self._legends: list[pg.LegendItem] = []
        self._data: PlotData | None = None
        self._cursor_lines: list[pg.InfiniteLine] = []
        self._apply_palette()
        self.scene().sigMouseMoved.connect(self._mouse_moved)

    # ------------------------------------------------------------------ public API

    def plots(self) -> list[pg.PlotItem]:
        """The plots, top to bottom."""
        out = [self.price, *self.panes.values(), self.equity, self.drawdown]
        return [p for p in out if p is not None]

    def clear_plots(self) -> None:
        """Remove everything (an empty widget)."""
        self.ci.clear()
        self.candles = self.buy_markers = self.sell_markers = None
        self.price = self.equity = self.drawdown = None
        self.panes = {}
        self.lines = {}
        self._legends = []
        self._cursor_lines = []
        self._data = None

    def show_data(self, data: PlotData) -> None:
        """Draw ``data`` (replacing what was shown) and fit the whole time range."""
        self.clear_plots()
        self._data = data
        t = np.asarray(data.times_s, dtype=np.float64)
        pane_names = list(dict.fromkeys(_pane(ln) for ln in data.lines if ln.pane == "separate"))
        row = 0
        price = self._add_plot(row, "Price", stretch=5)
        self.price = price
        self.candles = CandleItem(t, data.open, data.high, data.low, data.close)
        price.addItem(self.candles)
        legend = self._legend(price)
        colours = iter(LINE_COLOURS * 4)
        for ln in data.lines:
            if ln.pane == PRICE_PANE:
                item = _curve(np.asarray(ln.values, dtype=np.float64), t, next(colours), ln.name)
                price.addItem(item)
                self.lines[ln.name] = item
        self._add_markers(price, data.markers)
        if not any(ln.pane == PRICE_PANE for ln in data.lines):
            legend.hide()
        for name in pane_names:
            row += 1
            pane = self._add_plot(row, name, stretch=2)
            legend = self._legend(pane)
            guides: set[float] = set()
            for ln in data.lines:
                if ln.pane == "separate" and _pane(ln) == name:
                    item = _curve(np.asarray(ln.values, dtype=np.float64), t, next(colours), ln.name)
                    pane.addItem(item)
                    self.lines[ln.name] = item
                    guides.update(ln.guides)
            if sum(1 for ln in data.lines if ln.pane == "separate" and _pane(ln) == name) == 1:
                legend.hide()  # one line: the pane's axis label already names it
            for level in sorted(guides):
                pane.addItem(
                    pg.InfiniteLine(level, angle=0, pen=pg.mkPen("#787b86", style=Qt.PenStyle.DashLine))
                )
            self.panes[name] = pane
        row += 1
        self.equity = self._add_plot(row, "Equity", stretch=3)
        self._legend(self.equity)
        self.equity.addItem(
            _curve(np.asarray(data.equity, dtype=np.float64), t, EQUITY_COLOUR, "Strategy", gaps=False)
        )
        self.equity.addItem(
            _curve(np.asarray(data.buy_hold, dtype=np.float64), t, HOLD_COLOUR, "Buy & hold", gaps=False)
        )
        if data.compare is not None:
            label, ct, ce = data.compare
            self.equity.addItem(_curve(np.asarray(ce, dtype=np.float64), np.asarray(ct), "#9e9e9e", label))
        row += 1
        self.drawdown = self._add_plot(row, "Drawdown %", stretch=2)
        dd = _curve(
            np.asarray(data.drawdown_pct, dtype=np.float64), t, DRAWDOWN_COLOUR, "Drawdown", gaps=False
        )
        dd.setFillLevel(0.0)
        dd.setBrush(pg.mkBrush(QColor(239, 83, 80, 90)))
        self.drawdown.addItem(dd)
        plots = self.plots()
        for p in plots[:-1]:
            p.getAxis("bottom").setStyle(showValues=False)
            p.getAxis("bottom").setHeight(4)
        for p in plots[1:]:
            p.setXLink(price)
        cursor_pen = pg.mkPen("#787b86", width=1, style=Qt.PenStyle.DashLine)
        self._cursor_lines = []
        for p in plots:  # a vertical cursor through every plot, moved together
            line = pg.InfiniteLine(angle=90, movable=False, pen=cursor_pen)
            line.hide()
            p.addItem(line, ignoreBounds=True)
            self._cursor_lines.append(line)
        self._apply_palette()
        self.fit()

    def fit(self) -> None:
        """Show the whole time range (y of every plot follows)."""
        if self.price is None or self.candles is None or not len(self.candles):
            return
        x = self.candles.dataBounds(0)
        if x is not None:
            self.price.setXRange(x[0], x[1], padding=0.01)

    def x_range(self) -> tuple[float, float]:
        """The visible time range (seconds UTC); (0, 0) when nothing is shown."""
        if self.price is None:
            return (0.0, 0.0)
        (x0, x1), _ = self.price.vb.viewRange()
        return float(x0), float(x1)

    def marker_counts(self) -> tuple[int, int]:
        """(buy markers, sell markers) drawn."""
        buys = 0 if self.buy_markers is None else len(self.buy_markers.data)
        sells = 0 if self.sell_markers is None else len(self.sell_markers.data)
        return buys, sells

    def _mouse_moved(self, pos: QPointF) -> None:
        if self.candles is None or not len(self.candles):
            return
        for plot in self.plots():
            if plot.vb.sceneBoundingRect().contains(pos):
                x = plot.vb.mapSceneToView(pos).x()
                t = self.candles.t
                i = int(np.clip(np.searchsorted(t, x - self.candles.step / 2), 0, t.size - 1))
                for line in self._cursor_lines:
                    line.setPos(float(t[i]))
                    line.show()
                self.hovered.emit(i)
                return

    # ------------------------------------------------------------------ construction

    def _add_plot(self, row: int, label: str, *, stretch: int) -> pg.PlotItem:
        axis = pg.DateAxisItem(orientation="bottom", utcOffset=0)
        plot = self.addPlot(row=row, col=0, axisItems={"bottom": axis})
        plot.setMenuEnabled(False)
        plot.hideButtons()
        plot.setClipToView(True)
        plot.setDownsampling(auto=True, mode="peak")
        plot.getAxis("left").setWidth(72)
        plot.getAxis("left").enableAutoSIPrefix(False)  # tiny prices: 0.0000064, never "6.4 µ"
        plot.setLabel("left", label)
        plot.vb.setMouseEnabled(x=True, y=False)  # drag/wheel moves time; y follows the data
        plot.enableAutoRange(y=True)
        plot.setAutoVisible(y=True)
        self.ci.layout.setRowStretchFactor(row, stretch)
        return plot

    def _legend(self, plot: pg.PlotItem) -> pg.LegendItem:
        legend = plot.addLegend(offset=(8, 4), labelTextSize="8pt", verSpacing=-6)
        self._legends.append(legend)
        return legend

    def _add_markers(self, plot: pg.PlotItem, markers: Sequence[Marker]) -> None:
        items = []
        for kind, symbol, edge, fill in (
            ("buy", "t1", "#0b3d36", UP_COLOUR),
            ("sell", "t", "#4a0f0e", DOWN_COLOUR),
        ):
            chosen = [m for m in markers if (m.kind == "buy") == (kind == "buy")]
            item = pg.ScatterPlotItem(
                x=[m.time_ms / 1000 for m in chosen],
                y=[m.price for m in chosen],
                data=chosen,  # the Marker itself; the tip formats it only when hovered
                symbol=symbol,
                size=MARKER_SIZE,
                pen=pg.mkPen(edge, width=1),
                brush=pg.mkBrush(fill),
                name=kind.capitalize(),
                hoverable=True,
                tip=_marker_tip,
            )
            plot.addItem(item)
            items.append(item)
        self.buy_markers, self.sell_markers = items

    # ------------------------------------------------------------------ theme

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        # The base class changes roles while it is constructed, before our attributes exist.
        if event.type() == QEvent.Type.PaletteChange and hasattr(self, "_legends"):
            self._apply_palette()

    def _apply_palette(self) -> None:
        palette = self.palette()
        bg = palette.color(QPalette.ColorRole.Base)
        fg = palette.color(QPalette.ColorRole.Text)
        dark = bg.lightness() < 128
        axis_colour = QColor("#5d606b") if dark else QColor("#9598a1")
        self.setBackground(bg)
        for plot in self.plots():
            for name in ("left", "bottom"):
                axis = plot.getAxis(name)
                axis.setPen(pg.mkPen(axis_colour))
                axis.setTextPen(pg.mkPen(fg))
        legend_bg = QColor(bg)
        legend_bg.setAlpha(200)
        for legend in self._legends:
            legend.setBrush(pg.mkBrush(legend_bg))
            legend.setLabelTextColor(fg)
