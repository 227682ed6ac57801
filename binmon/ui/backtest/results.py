"""A finished run on screen: metrics (with buy-and-hold), the trade list and the plots.

:class:`MetricsTable` shows one column per run (the strategy and buy-and-hold, or two runs
side by side in the comparison); :class:`TradesModel` is the trade list's model (sortable
through a proxy: numbers sort as numbers); :class:`ResultView` lays them out with the plots
and the export buttons. Prices are shown with the precision the candles themselves carry
(tiny prices like 0.00000638 keep their digits).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSizePolicy,
    QSplitter,
    QTableView,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from binmon.backtest.metrics import compute_metrics
from binmon.backtest.model import BacktestResult, Metrics, Trade
from binmon.history.dates import format_ms
from binmon.ui.backtest.plots import PlotData, ResultPlots
from binmon.ui.format import MISSING, format_pct, format_qty

_Index = QModelIndex | QPersistentModelIndex
#: Shown above the plots until the mouse is over a bar.
HINT = (
    "Drag to pan, wheel to zoom (the time axes are linked) · hover for a bar's prices · "
    "double-click a trade to zoom on it"
)


def _num(x: float, decimals: int = 2) -> str:
    return MISSING if not math.isfinite(x) else f"{x:,.{decimals}f}"


def _duration(ms: int) -> str:
    if ms <= 0:
        return "0"
    days, rest = divmod(ms // 60_000, 1440)
    hours, minutes = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    return f"{hours}h {minutes}m" if hours else f"{minutes}m"


#: (label, how to show it, True when the row is about trades: empty for buy-and-hold).
METRIC_ROWS: tuple[tuple[str, Callable[[Metrics], str], bool], ...] = (
    ("Net profit", lambda m: _num(m.net_profit), False),
    ("Total return", lambda m: format_pct(m.total_return_pct), False),
    ("CAGR", lambda m: format_pct(m.cagr_pct), False),
    ("Sharpe", lambda m: _num(m.sharpe), False),
    ("Sortino", lambda m: _num(m.sortino), False),
    ("Max drawdown", lambda m: f"{m.max_drawdown_pct:.2f}%", False),
    ("Max DD duration", lambda m: _duration(m.max_drawdown_ms), False),
    ("Trades", lambda m: f"{m.trades:,}", True),
    ("Win rate", lambda m: f"{m.win_rate_pct:.1f}%", True),
    ("Profit factor", lambda m: "∞" if math.isinf(m.profit_factor) else _num(m.profit_factor), True),
    ("Average trade", lambda m: f"{_num(m.avg_trade)} ({format_pct(m.avg_trade_pct)})", True),
    ("Exposure", lambda m: f"{m.exposure_pct:.1f}%", False),
    ("Buy & hold return", lambda m: format_pct(m.buy_hold_return_pct), False),
    ("Final equity", lambda m: _num(m.final_equity), False),
)


def buy_hold_metrics(result: BacktestResult) -> Metrics:
    """Buy-and-hold's own metrics over the same bars (held from the first close, no fees)."""
    r = result.request
    bh = result.buy_hold
    closes = bh / bh[0] if bh.size else bh
    return compute_metrics(
        cash=r.cash,
        interval=r.interval,
        times=result.times,
        equity=bh,
        position=np.ones(bh.size),
        closes=closes,
        trades=(),
    )


class MetricsTable(QTableWidget):
    """Metrics in rows, one column per run."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(len(METRIC_ROWS), 1, parent)
        self.setObjectName("bt_metrics")
        self.setVerticalHeaderLabels([label for label, _, _ in METRIC_ROWS])
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        self.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 3)  # all rows in view
        self.setAlternatingRowColors(True)

    def set_columns(self, columns: Sequence[tuple[str, Metrics, bool]]) -> None:
        """``(title, metrics, has_trades)`` per column; rows about trades are blank without trades."""
        self.setColumnCount(len(columns))
        self.setHorizontalHeaderLabels([title for title, _, _ in columns])
        for c, (_, m, has_trades) in enumerate(columns):
            for r, (_, show, about_trades) in enumerate(METRIC_ROWS):
                text = show(m) if has_trades or not about_trades else MISSING
                item = QTableWidgetItem(text)
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                if METRIC_ROWS[r][0] == "Max DD duration":
                    item.setToolTip(f"{m.max_drawdown_bars:,} bars")
                self.setItem(r, c, item)

    def value(self, label: str, column: int = 0) -> str:
        """The text shown for metric ``label`` in ``column``."""
        row = [lbl for lbl, _, _ in METRIC_ROWS].index(label)
        item = self.item(row, column)
        return item.text() if item is not None else ""


@dataclass(frozen=True)
class _Col:
    title: str
    text: Callable[[Trade], str]
    key: Callable[[Trade], Any]


class TradesModel(QAbstractTableModel):
    """The trade list: one row per trade (an open one marked "open").

    Sorts itself (:meth:`sort`, one Python sort of the trades): a QSortFilterProxyModel would
    call :meth:`data` for every comparison, seconds for 10k trades on the GUI thread.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._trades: list[Trade] = []
        self._number: list[int] = []  # each row's trade number (1 = the first trade)
        self._decimals = 8
        d = lambda: self._decimals  # noqa: E731  (read at call time)
        self._cols = (
            _Col("#", lambda t: "", lambda t: 0),  # the number is per row: see data() and sort()
            _Col("Side", lambda t: t.side + (" (open)" if t.is_open else ""), lambda t: t.side),
            _Col("Entry time", lambda t: format_ms(t.entry_time_ms), lambda t: t.entry_time_ms),
            _Col("Entry price", lambda t: f"{t.entry_price:.{d()}f}", lambda t: t.entry_price),
            _Col("Exit time", lambda t: format_ms(t.exit_time_ms), lambda t: t.exit_time_ms),
            _Col("Exit price", lambda t: f"{t.exit_price:.{d()}f}", lambda t: t.exit_price),
            _Col("Size", lambda t: format_qty(t.size), lambda t: t.size),
            _Col("PnL", lambda t: f"{t.pnl:,.{min(d(), 8)}f}", lambda t: t.pnl),
            _Col("PnL %", lambda t: format_pct(t.pnl_pct), lambda t: t.pnl_pct),
            _Col("Bars", lambda t: f"{t.bars:,}", lambda t: t.bars),
        )

    def set_trades(self, trades: Sequence[Trade], price_decimals: int) -> None:
        """Show ``trades``; prices at ``price_decimals``."""
        self.beginResetModel()
        self._trades = list(trades)
        self._number = list(range(1, len(self._trades) + 1))
        self._decimals = max(0, min(12, price_decimals))
        self.endResetModel()

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        """Sort the rows by ``column`` (numbers as numbers, times as times)."""
        if not 0 <= column < len(self._cols):
            return
        self.layoutAboutToBeChanged.emit()
        rows = list(zip(self._number, self._trades, strict=True))
        key = self._cols[column].key
        rows.sort(key=(lambda r: r[0]) if column == 0 else (lambda r: key(r[1])))
        if order == Qt.SortOrder.DescendingOrder:
            rows.reverse()
        self._number = [n for n, _ in rows]
        self._trades = [t for _, t in rows]
        # No persistent indexes to move: the view keeps none on this model but its selection,
        # which a re-sort clears anyway.
        self.layoutChanged.emit()

    def trade(self, row: int) -> Trade:
        """The trade of ``row``."""
        return self._trades[row]

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._trades)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._cols)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return self._cols[section].title
        return None

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        t, col = self._trades[index.row()], index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return str(self._number[index.row()]) if col == 0 else self._cols[col].text(t)
        if role == Qt.ItemDataRole.TextAlignmentRole and col >= 3 and col != 4:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ForegroundRole and col in (7, 8) and t.pnl != 0:
            return QColor("#26a69a") if t.pnl > 0 else QColor("#ef5350")
        return None


def price_decimals(values: np.ndarray) -> int:
    """Decimals that show every price in ``values`` exactly (up to 10): the data's own precision."""
    sample = values[np.isfinite(values)][:2000]
    for d in range(0, 11):
        if np.allclose(np.round(sample, d), sample, rtol=0, atol=10 ** -(d + 3)):
            return max(d, 2)
    return 10


class ResultView(QWidget):
    """Plots on top; metrics and trades below; export buttons above. Empty until :meth:`show_result`."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.result: BacktestResult | None = None
        self.hold: Metrics | None = None
        self.title = QLabel("Run a backtest to see its results here.", self)
        self.title.setObjectName("bt_result_title")
        # Long titles are cut, never widen the tab (it shares the window with the docks).
        self.title.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.export_trades_button = QPushButton("Trades CSV…", self)
        self.export_metrics_button = QPushButton("Metrics JSON…", self)
        self.export_png_button = QPushButton("Plot PNG…", self)
        self.fit_button = QPushButton("Fit", self)
        self.fit_button.setToolTip("Show the whole range")
        bar = QHBoxLayout()
        bar.addWidget(self.title, 1)
        bar.addWidget(self.fit_button)
        bar.addWidget(QLabel("Export:", self))
        for b in (self.export_trades_button, self.export_metrics_button, self.export_png_button):
            bar.addWidget(b)
        self.plots = ResultPlots(self)
        self.readout = QLabel("", self)
        self.readout.setObjectName("bt_readout")
        self.readout.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.readout.setMinimumHeight(self.fontMetrics().height() + 4)  # no jump when text comes
        self.readout.setText(HINT)
        self.plots.hovered.connect(self._show_bar)
        self._decimals = 8
        self._candles: dict[str, np.ndarray] | None = None
        self.metrics = MetricsTable(self)
        self.trades_model = TradesModel(self)
        self.trades_view = QTableView(self)
        self.trades_view.setObjectName("bt_trades")
        self.trades_view.setModel(self.trades_model)
        self.trades_view.setSortingEnabled(True)
        self.trades_view.sortByColumn(0, Qt.SortOrder.AscendingOrder)
        self.trades_view.verticalHeader().hide()
        self.trades_view.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 6)
        self.trades_view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        # Widths from the first rows (ResizeToContents would re-measure every row on each change).
        self.trades_view.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.trades_view.horizontalHeader().setResizeContentsPrecision(50)
        self.trades_view.horizontalHeader().setStretchLastSection(True)
        self.trades_view.doubleClicked.connect(self._go_to_trade)
        bottom = QSplitter(Qt.Orientation.Horizontal, self)
        bottom.addWidget(self.metrics)
        bottom.addWidget(self.trades_view)
        bottom.setStretchFactor(0, 2)
        bottom.setStretchFactor(1, 3)
        bottom.setSizes([330, 600])
        self.splitter = QSplitter(Qt.Orientation.Vertical, self)
        self.splitter.addWidget(self.plots)
        self.splitter.addWidget(bottom)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([580, 310])  # the plots get most of the height
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(bar)
        layout.addWidget(self.readout)
        layout.addWidget(self.splitter, 1)
        self.fit_button.clicked.connect(self.plots.fit)
        self._set_exports(False)

    def _set_exports(self, on: bool) -> None:
        for b in (
            self.export_trades_button,
            self.export_metrics_button,
            self.export_png_button,
            self.fit_button,
        ):
            b.setEnabled(on)

    def show_result(self, result: BacktestResult, candles: dict[str, np.ndarray]) -> None:
        """Show ``result``; ``candles``: ``open_time`` (ms) and ``open/high/low/close`` arrays of
        the same bars (the runner's result carries no prices)."""
        self.result = result
        self.hold = buy_hold_metrics(result) if result.bars else None
        r = result.request
        params = ", ".join(f"{k}={v}" for k, v in r.params.items())
        self.title.setText(
            f"<b>{r.symbol} {r.interval}</b> · {r.strategy}({params}) · {result.bars:,} bars · "
            f"{len(result.trades):,} trades · {result.elapsed_s:.2f} s"
            + (f" · ⚠ {result.warnings[0]}" if result.warnings else "")
        )
        columns = [("Strategy", result.metrics, True)]
        if self.hold is not None:
            columns.append(("Buy & hold", self.hold, False))
        self.metrics.set_columns(columns)
        decimals = self._decimals = price_decimals(candles["close"])
        self.trades_model.set_trades(result.trades, decimals)
        self.trades_view.horizontalHeader().setSortIndicator(0, Qt.SortOrder.AscendingOrder)
        self.trades_view.resizeColumnsToContents()  # measures the first 50 rows only
        data = plot_data(result, candles)
        self._candles = {"open": data.open, "high": data.high, "low": data.low, "close": data.close}
        self.plots.show_data(data)
        self.readout.setText(HINT)
        self._set_exports(True)

    def _show_bar(self, i: int) -> None:
        """The hovered bar's time, prices, equity and drawdown, in one line above the plots."""
        r, c = self.result, self._candles
        if r is None or c is None or not 0 <= i < r.bars:
            return
        d = self._decimals
        o, h, lo, cl = (c[k][i] for k in ("open", "high", "low", "close"))
        self.readout.setText(
            f"{format_ms(int(r.times[i]))}   O {o:.{d}f}  H {h:.{d}f}  L {lo:.{d}f}  C {cl:.{d}f}   "
            f"Equity {r.equity[i]:,.2f}   Buy & hold {r.buy_hold[i]:,.2f}   Drawdown {r.drawdown_pct[i]:.2f}%"
        )

    def _go_to_trade(self, index: QModelIndex) -> None:
        """Double-clicking a trade zooms the plots on it (with some bars around)."""
        if self.result is None or self.plots.price is None:
            return
        t = self.trades_model.trade(index.row())
        step = float(np.median(np.diff(self.result.times))) if self.result.bars > 1 else 60_000.0
        pad = max(30 * step, (t.exit_time_ms - t.entry_time_ms) * 0.5)
        self.plots.price.setXRange((t.entry_time_ms - pad) / 1000, (t.exit_time_ms + pad) / 1000, padding=0)


def plot_data(result: BacktestResult, candles: dict[str, np.ndarray]) -> PlotData:
    """What the plots draw for ``result`` on ``candles`` (aligned by open time)."""
    times = result.times
    ot = np.asarray(candles["open_time"], dtype=np.int64)
    if ot.size != times.size or not np.array_equal(ot, times):
        idx = np.searchsorted(ot, times).clip(0, max(ot.size - 1, 0))
        pick = {k: np.asarray(candles[k], dtype=np.float64)[idx] for k in ("open", "high", "low", "close")}
    else:
        pick = {k: np.asarray(candles[k], dtype=np.float64) for k in ("open", "high", "low", "close")}
    return PlotData(
        times_s=times / 1000.0,
        open=pick["open"],
        high=pick["high"],
        low=pick["low"],
        close=pick["close"],
        equity=result.equity,
        buy_hold=result.buy_hold,
        drawdown_pct=result.drawdown_pct,
        markers=result.markers,
        lines=result.indicators,
    )
