"""Recent runs: a list of the last runs; pick one to open it, or two to compare them.

Comparing shows both runs' metrics side by side and both equity curves on one time axis
(the curves saved with the runs, thinned to ~2,000 points, so runs of an earlier session
compare too).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, Qt, Signal
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from binmon.history.dates import format_ms
from binmon.ui.backtest.files import RunEntry
from binmon.ui.backtest.plots import EQUITY_COLOUR, HOLD_COLOUR
from binmon.ui.backtest.results import MetricsTable
from binmon.ui.format import format_pct

_COLUMNS = ("Finished (UTC)", "Run", "Return", "Max DD", "Trades", "Sharpe")


class RunsView(QWidget):
    """See the module docstring. ``openRequested(run id)`` on Open / double-click."""

    openRequested = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._entries: list[RunEntry] = []
        self.table = QTableWidget(0, len(_COLUMNS), self)
        self.table.setObjectName("bt_runs")
        self.table.setHorizontalHeaderLabels(list(_COLUMNS))
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.verticalHeader().hide()
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.table.itemSelectionChanged.connect(self._selection_changed)
        self.table.cellDoubleClicked.connect(lambda row, _c: self.openRequested.emit(self._entries[row].id))
        self.open_button = QPushButton("Open", self)
        self.open_button.setToolTip("Show this run (runs it again when it is from an earlier session)")
        self.compare_button = QPushButton("Compare", self)
        self.compare_button.setToolTip("Select two runs to compare their metrics and equity curves")
        self.open_button.clicked.connect(self._open)
        self.compare_button.clicked.connect(self.compare_selected)
        self.hint = QLabel("Select one run to open it, or two to compare them.", self)
        bar = QHBoxLayout()
        bar.addWidget(self.hint, 1)
        bar.addWidget(self.open_button)
        bar.addWidget(self.compare_button)

        self.metrics = MetricsTable(self)
        self.caption = QLabel("", self)
        self.caption.setObjectName("bt_compare_caption")
        self.caption.setWordWrap(True)
        self.curves = pg.PlotWidget(
            self, axisItems={"bottom": pg.DateAxisItem(orientation="bottom", utcOffset=0)}
        )
        self.curves.setObjectName("bt_compare_curves")
        self.curves.setMenuEnabled(False)
        self.curves.getPlotItem().hideButtons()
        self.curves.setLabel("left", "Equity")
        self.curves.getAxis("left").enableAutoSIPrefix(False)
        self.legend = self.curves.addLegend(offset=(8, 4), labelTextSize="8pt")
        compare = QSplitter(Qt.Orientation.Horizontal, self)
        left = QWidget(self)
        ll = QVBoxLayout(left)
        ll.setContentsMargins(0, 0, 0, 0)
        ll.addWidget(self.caption)
        ll.addWidget(self.metrics, 1)
        compare.addWidget(left)
        compare.addWidget(self.curves)
        compare.setStretchFactor(0, 2)
        compare.setStretchFactor(1, 3)
        splitter = QSplitter(Qt.Orientation.Vertical, self)
        top = QWidget(self)
        tl = QVBoxLayout(top)
        tl.setContentsMargins(0, 0, 0, 0)
        tl.addLayout(bar)
        tl.addWidget(self.table)
        splitter.addWidget(top)
        splitter.addWidget(compare)
        splitter.setSizes([220, 520])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(splitter)
        self._apply_palette()
        self._selection_changed()

    def set_entries(self, entries: Sequence[RunEntry]) -> None:
        """Show ``entries`` (newest first)."""
        self._entries = list(entries)
        self.table.setRowCount(len(self._entries))
        for row, e in enumerate(self._entries):
            m = e.metrics
            cells = (
                format_ms(e.finished_ms)[:16],
                e.label(),
                format_pct(m.total_return_pct),
                f"{m.max_drawdown_pct:.2f}%",
                f"{m.trades:,}",
                f"{m.sharpe:.2f}",
            )
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if col >= 2:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(row, col, item)
        self._selection_changed()

    def selected(self) -> list[RunEntry]:
        """The selected entries, in list order."""
        rows = sorted({i.row() for i in self.table.selectedIndexes()})
        return [self._entries[r] for r in rows]

    def select(self, *rows: int) -> None:
        """Select ``rows`` (tests, keyboard-free use)."""
        self.table.clearSelection()
        mode = self.table.selectionMode()
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.MultiSelection)
        for r in rows:
            self.table.selectRow(r)
        self.table.setSelectionMode(mode)

    def compare_selected(self) -> bool:
        """Compare the two selected runs; False unless exactly two are selected."""
        chosen = self.selected()
        if len(chosen) != 2:
            return False
        a, b = chosen
        self.metrics.set_columns([("A", a.metrics, True), ("B", b.metrics, True)])
        self.caption.setText(f"<b>A</b> {a.label()}<br><b>B</b> {b.label()}")
        self.curves.clear()
        self.legend.clear()
        for entry, colour, name in ((a, EQUITY_COLOUR, "A"), (b, HOLD_COLOUR, "B")):
            if entry.curve_times.size:
                self.curves.plot(
                    entry.curve_times / 1000.0,
                    np.asarray(entry.curve_equity, dtype=np.float64),
                    pen=pg.mkPen(colour, width=1),
                    name=name,
                )
        return True

    def _open(self) -> None:
        chosen = self.selected()
        if len(chosen) == 1:
            self.openRequested.emit(chosen[0].id)

    def _selection_changed(self) -> None:
        n = len(self.selected())
        self.open_button.setEnabled(n == 1)
        self.compare_button.setEnabled(n == 2)

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange and hasattr(self, "curves"):
            self._apply_palette()

    def _apply_palette(self) -> None:
        palette = self.palette()
        bg, fg = palette.color(QPalette.ColorRole.Base), palette.color(QPalette.ColorRole.Text)
        self.curves.setBackground(bg)
        for name in ("left", "bottom"):
            axis = self.curves.getAxis(name)
            axis.setTextPen(pg.mkPen(fg))
        self.legend.setLabelTextColor(fg)
