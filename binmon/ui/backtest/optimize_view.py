"""The optimisation view: parameter ranges, a grid run across the process pool, a sortable
results table and a heatmap of one metric over two parameters.

The grid runs :func:`binmon.backtest.optimize.optimize` on the form's request (series, range,
broker settings and the other parameters) from a worker thread, with the app's process pool
as executor; progress comes back after each chunk, Cancel stops submitting. When more than
two parameters vary, each heatmap cell shows the best value over the others. Double-click a
row (or "Open best") to run that combination as a normal result.
"""

from __future__ import annotations

import logging
import math
import threading
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import (
    QEvent,
    QModelIndex,
    QSortFilterProxyModel,
    Qt,
    Signal,
)
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTableView,
    QTableWidget,
    QVBoxLayout,
    QWidget,
)

from binmon.backtest.model import USER_STRATEGY, BacktestCancelled, ParamInfo, strategy_info
from binmon.backtest.optimize import SORT_KEYS, OptimizeRow
from binmon.ui.backtest.form import BacktestForm
from binmon.ui.backtest.optimize_model import LOWER_IS_BETTER, METRIC_TITLES, RowsModel, grid_values
from binmon.ui.backtest.work import (
    Cancelled,
    Outcome,
    Relay,
    Services,
    WorkerPool,
    prepare_candles,
    show_progress,
    spawn,
)
from binmon.ui.dialogs.download_parts import Poster, error_colour, note_colour

log = logging.getLogger(__name__)

#: Grids larger than this are refused (each point is a full backtest).
MAX_COMBOS = 5000
#: Heatmaps up to this many cells show their values.
MAX_CELL_LABELS = 144


class OptimizeView(QWidget):
    """See the module docstring. ``openRequested(params)``: run these parameters as a result."""

    openRequested = Signal(object)

    def __init__(
        self, form: BacktestForm, services: Services, pool: WorkerPool, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.form, self.services, self.pool = form, services, pool
        self.worker: threading.Thread | None = None
        self._cancel: threading.Event | None = None
        self._run = 0
        self._strategy = ""
        self._ranges: dict[str, tuple[QCheckBox, QDoubleSpinBox, QDoubleSpinBox, QDoubleSpinBox, bool]] = {}
        self._relay = Relay(self)
        self._poster = Poster()
        self._relay.destroyed.connect(self._poster.close)
        self._relay.progress.connect(self._on_progress)
        self._relay.finished.connect(self._on_finished)
        self._build()

    # ------------------------------------------------------------------ construction

    def _build(self) -> None:
        self.ranges = QTableWidget(0, 5, self)
        self.ranges.setObjectName("bt_opt_ranges")
        self.ranges.setHorizontalHeaderLabels(["Vary", "Parameter", "From", "To", "Step"])
        self.ranges.verticalHeader().hide()
        header = self.ranges.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        self.ranges.setMaximumHeight(130)
        self.count_label = QLabel(self)
        self.count_label.setObjectName("bt_opt_count")
        self.run_button = QPushButton("Run grid", self)
        self.run_button.setObjectName("bt_opt_run")
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.setEnabled(False)
        self.open_button = QPushButton("Open best", self)
        self.open_button.setEnabled(False)
        self.run_button.clicked.connect(self.run)
        self.cancel_button.clicked.connect(self.cancel)
        self.open_button.clicked.connect(self.open_best)
        self.progress_bar = QProgressBar(self)
        self.progress_bar.setRange(0, 1000)
        self.progress_bar.setTextVisible(False)
        self.progress_bar.hide()
        self.metric_box = QComboBox(self)
        for key in SORT_KEYS:
            self.metric_box.addItem(METRIC_TITLES.get(key, key), key)
        self.x_box, self.y_box = QComboBox(self), QComboBox(self)
        for box in (self.metric_box, self.x_box, self.y_box):
            box.currentIndexChanged.connect(self._draw_heatmap)
        controls = QHBoxLayout()
        controls.addWidget(self.count_label, 1)
        controls.addWidget(self.run_button)
        controls.addWidget(self.cancel_button)
        controls.addWidget(self.open_button)
        heat_controls = QHBoxLayout()
        for label, box in (("Metric", self.metric_box), ("X", self.x_box), ("Y", self.y_box)):
            heat_controls.addWidget(QLabel(label, self))
            heat_controls.addWidget(box, 1)

        self.model = RowsModel(self)
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSourceModel(self.model)
        self.proxy.setSortRole(RowsModel.SORT_ROLE)
        self.table = QTableView(self)
        self.table.setObjectName("bt_opt_rows")
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 6)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.doubleClicked.connect(self._open_index)

        self.heat = pg.PlotWidget(self)
        self.heat.setObjectName("bt_opt_heatmap")
        self.heat.setMenuEnabled(False)
        self.heat.getPlotItem().hideButtons()
        self.heat.setMouseEnabled(x=False, y=False)
        self.image = pg.ImageItem()
        self._labels: list[pg.TextItem] = []
        self.heat.addItem(self.image)
        self.colour_bar = pg.ColorBarItem(
            values=(0, 1), colorMap=pg.colormap.get("viridis"), interactive=False
        )
        self.colour_bar.setImageItem(self.image, insert_in=self.heat.getPlotItem())
        self.status_label = QLabel(self)
        self.status_label.setWordWrap(True)

        right = QWidget(self)
        rl = QVBoxLayout(right)
        rl.setContentsMargins(0, 0, 0, 0)
        rl.addLayout(heat_controls)
        rl.addWidget(self.heat, 1)
        results = QSplitter(Qt.Orientation.Horizontal, self)
        results.addWidget(self.table)
        results.addWidget(right)
        results.setStretchFactor(0, 1)
        results.setStretchFactor(1, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.ranges)
        layout.addLayout(controls)
        layout.addWidget(self.progress_bar)
        layout.addWidget(self.status_label)
        layout.addWidget(results, 1)
        self._apply_palette()

    # ------------------------------------------------------------------ public API

    @property
    def running(self) -> bool:
        """True while a grid runs."""
        return self.worker is not None

    def form_changed(self) -> None:
        """The form changed: rebuild the ranges when the strategy did; recount."""
        if self.form.strategy() != self._strategy:
            self._strategy = self.form.strategy()
            self._rebuild_ranges()
        self._recount()

    def set_range(self, name: str, lo: float, hi: float, step: float, vary: bool = True) -> None:
        """Set a parameter's range (as if typed)."""
        check, lo_box, hi_box, step_box, _ = self._ranges[name]
        lo_box.setValue(lo)
        hi_box.setValue(hi)
        step_box.setValue(step)
        check.setChecked(vary)

    def grid(self) -> dict[str, list[float]]:
        """The parameter values to combine (only the varied parameters)."""
        out: dict[str, list[float]] = {}
        for name, (check, lo, hi, step, integer) in self._ranges.items():
            if check.isChecked():
                out[name] = grid_values(lo.value(), hi.value(), step.value(), integer=integer)
        return out

    def run(self) -> bool:
        """Start the grid; False when the form or the grid is not usable, or one is running."""
        req = self.form.request()
        grid = self.grid()
        n = math.prod(len(v) for v in grid.values()) if grid else 0
        if req is None or not grid or n > MAX_COMBOS or self.running:
            return False
        self._run += 1
        run, cancel = self._run, threading.Event()
        services, pool, relay, poster = self.services, self.pool, self._relay, self._poster

        def report(text: str, permille: int) -> None:
            poster.emit(relay.progress, run, text, permille)

        def work() -> None:
            from binmon.backtest.optimize import optimize

            try:
                frame = prepare_candles(services, req, cancel, report)
                report(f"Running {n:,} backtests…", 0)
                rows = optimize(
                    req,
                    grid,
                    frame,
                    pool.executor(),
                    progress=lambda f: report(f"Running {n:,} backtests… {f * 100:.0f} %", int(f * 1000)),
                    cancel=cancel,
                )
                outcome = Outcome(rows)
            except (Cancelled, BacktestCancelled):
                outcome = Outcome(cancelled=True)
            except ValueError as exc:
                outcome = Outcome(error=str(exc).splitlines()[0])
            except Exception as exc:
                log.warning("optimisation failed", exc_info=True)
                outcome = Outcome(
                    error=f"The optimisation failed: {type(exc).__name__}: {exc}".splitlines()[0]
                )
            poster.emit(relay.finished, run, outcome)

        self._cancel = cancel
        self._grid_params = list(grid)
        self._set_running(True)
        self._say(f"Preparing {n:,} backtests…", error=False)
        self.worker = spawn("binmon-optimize", work)
        return True

    def cancel(self) -> None:
        """Stop the grid (chunks already in a worker finish there)."""
        if self._cancel is not None and not self._cancel.is_set():
            self._cancel.set()
            self.cancel_button.setEnabled(False)
            self._say("Cancelling…", error=False)

    def close_relay(self) -> None:
        """Emit nothing more from the worker (the app is closing)."""
        self._poster.close()

    def best(self) -> OptimizeRow | None:
        """The best row by the chosen metric (None without a successful row)."""
        key = str(self.metric_box.currentData())
        ok = [r for r in self.model.rows if r.metrics is not None]
        if not ok:
            return None
        if key in LOWER_IS_BETTER:
            return min(ok, key=lambda r: r.value(key))
        return max(ok, key=lambda r: r.value(key))

    def open_best(self) -> None:
        """Run the best row as a normal result."""
        row = self.best()
        if row is not None:
            self.openRequested.emit(dict(row.params))

    def heat_matrix(self) -> tuple[list[Any], list[Any], np.ndarray]:
        """``(x values, y values, matrix[x, y])`` of the chosen metric (NaN: no run there); with
        more than two varied parameters, the best value over the others."""
        key = str(self.metric_box.currentData())
        px, py = self.x_box.currentText(), self.y_box.currentText()
        rows = [r for r in self.model.rows if px in r.params and (not py or py in r.params)]
        xs = sorted({r.params[px] for r in rows})
        ys = sorted({r.params[py] for r in rows}) if py and py != px else [0]
        m = np.full((len(xs), len(ys)), np.nan)
        better = min if key in LOWER_IS_BETTER else max
        for r in rows:
            if r.metrics is None:
                continue
            i = xs.index(r.params[px])
            j = ys.index(r.params[py]) if py and py != px else 0
            v = r.value(key)
            if not math.isfinite(v):
                continue
            m[i, j] = v if math.isnan(m[i, j]) else better(m[i, j], v)
        return xs, ys, m

    # ------------------------------------------------------------------ internals

    def _param_infos(self) -> list[ParamInfo]:
        name = self.form.strategy()
        if name == USER_STRATEGY:
            fields = self.form.param_fields()
            out = []
            for pname, f in fields.items():
                v = f.value()
                if isinstance(v, int | float) and not isinstance(v, bool):
                    if isinstance(v, int):
                        out.append(ParamInfo(pname, "int", v, step=1))
                    else:
                        out.append(ParamInfo(pname, "float", v, step=abs(v) / 10 or 0.1))
            return out
        return [p for p in strategy_info(name).params if p.kind in ("int", "float")]

    def _rebuild_ranges(self) -> None:
        self._ranges = {}
        infos = self._param_infos()
        self.ranges.setRowCount(len(infos))
        current = self.form.params()
        for row, p in enumerate(infos):
            integer = p.kind == "int"
            value = float(current.get(p.name, p.default))
            step = float(p.step or (1 if integer else 0.1))
            check = QCheckBox(self.ranges)
            check.setChecked(row < 2)  # the first two parameters vary by default: a heatmap
            boxes = []
            for v in (value, value + 4 * step if row < 2 else value, step):
                box = QDoubleSpinBox(self.ranges)
                box.setDecimals(0 if integer else 4)
                box.setRange(
                    -1e12 if p.minimum is None else p.minimum, 1e12 if p.maximum is None else p.maximum
                )
                box.setValue(v)
                box.valueChanged.connect(self._recount)
                boxes.append(box)
            boxes[2].setRange(0, 1e12)
            check.toggled.connect(self._recount)
            self.ranges.setCellWidget(row, 0, check)
            self.ranges.setCellWidget(row, 1, QLabel(p.title or p.name, self.ranges))
            for col, box in enumerate(boxes, start=2):
                self.ranges.setCellWidget(row, col, box)
            self._ranges[p.name] = (check, boxes[0], boxes[1], boxes[2], integer)
        names = [p.name for p in infos]
        for combo, pick in ((self.x_box, 0), (self.y_box, 1)):
            combo.blockSignals(True)
            combo.clear()
            combo.addItems(names)
            combo.setCurrentIndex(min(pick, len(names) - 1))
            combo.blockSignals(False)

    def _recount(self) -> None:
        grid = self.grid()
        n = math.prod(len(v) for v in grid.values()) if grid else 0
        req = self.form.request()
        if req is None:
            text, error = f"Fix the form first: {self.form.error()}", True
        elif not grid:
            text, error = "Tick at least one parameter to vary", True
        elif n > MAX_COMBOS:
            text, error = (
                f"{n:,} combinations: at most {MAX_COMBOS:,}; narrow the ranges or widen the steps",
                True,
            )
        else:
            text, error = f"{n:,} combinations on {self.pool.workers} worker processes", False
        self.count_label.setText(text)
        self.count_label.setStyleSheet(f"color: {error_colour(self) if error else note_colour(self)};")
        self.run_button.setEnabled(not error and not self.running)

    def _set_running(self, running: bool) -> None:
        self.run_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)
        self.progress_bar.setVisible(running)
        self.ranges.setEnabled(not running)
        if not running:
            self._recount()

    def _say(self, text: str, *, error: bool) -> None:
        self.status_label.setStyleSheet(f"color: {error_colour(self) if error else note_colour(self)};")
        self.status_label.setText(("⚠ " + text) if error and text else text)

    def _on_progress(self, run: int, text: str, permille: int) -> None:
        if run != self._run:
            return
        if not (self._cancel and self._cancel.is_set()):
            self._say(text, error=False)
        show_progress(self.progress_bar, permille)

    def _on_finished(self, run: int, outcome: Outcome) -> None:
        if run != self._run:
            return
        self.worker, self._cancel = None, None
        self._set_running(False)
        if outcome.cancelled:
            self._say("Cancelled", error=False)
            return
        if outcome.error:
            self._say(outcome.error, error=True)
            return
        rows: list[OptimizeRow] = outcome.value
        self.model.set_rows(rows, self._grid_params)
        key = SORT_KEYS.index(str(self.metric_box.currentData()))
        order = (
            Qt.SortOrder.AscendingOrder if SORT_KEYS[key] in LOWER_IS_BETTER else Qt.SortOrder.DescendingOrder
        )
        self.table.sortByColumn(len(self._grid_params) + key, order)
        failed = sum(1 for r in rows if r.metrics is None)
        self._say(
            f"{len(rows):,} runs" + (f" ({failed:,} skipped: invalid combinations)" if failed else ""),
            error=False,
        )
        self.open_button.setEnabled(self.best() is not None)
        self._draw_heatmap()

    def _open_index(self, index: QModelIndex) -> None:
        row = self.model.rows[self.proxy.mapToSource(index).row()]
        if row.metrics is not None:
            self.openRequested.emit(dict(row.params))

    def _draw_heatmap(self) -> None:
        if not self.model.rows or not self.x_box.currentText():
            return
        xs, ys, m = self.heat_matrix()
        finite = m[np.isfinite(m)]
        if not finite.size:
            self.image.clear()
            return
        lo, hi = float(finite.min()), float(finite.max())
        if hi <= lo:
            hi = lo + 1.0
        self.image.setImage(m, autoLevels=False)
        self.image.setRect(0, 0, len(xs), len(ys))
        self.colour_bar.setLevels((lo, hi))
        plot = self.heat.getPlotItem()
        plot.getAxis("bottom").setTicks([[(i + 0.5, _tick(v)) for i, v in enumerate(xs)]])
        plot.getAxis("left").setTicks([[(j + 0.5, _tick(v)) for j, v in enumerate(ys)]])
        plot.setLabel("bottom", self.x_box.currentText())
        plot.setLabel(
            "left", self.y_box.currentText() if self.y_box.currentText() != self.x_box.currentText() else ""
        )
        plot.setTitle(self.metric_box.currentText())
        plot.setRange(xRange=(0, len(xs)), yRange=(0, len(ys)), padding=0)
        for label in self._labels:
            plot.removeItem(label)
        self._labels = []
        if len(xs) * len(ys) <= MAX_CELL_LABELS:  # values in the cells while they can be read
            for i in range(len(xs)):
                for j in range(len(ys)):
                    if np.isfinite(m[i, j]):
                        dark = (m[i, j] - lo) / (hi - lo) > 0.6  # viridis turns yellow: dark text
                        label = pg.TextItem(
                            f"{m[i, j]:.2f}", color="#131722" if dark else "#ffffff", anchor=(0.5, 0.5)
                        )
                        label.setPos(i + 0.5, j + 0.5)
                        plot.addItem(label)
                        self._labels.append(label)

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange and hasattr(self, "heat"):
            self._apply_palette()

    def _apply_palette(self) -> None:
        palette = self.palette()
        self.heat.setBackground(palette.color(QPalette.ColorRole.Base))
        fg = palette.color(QPalette.ColorRole.Text)
        for name in ("left", "bottom"):
            self.heat.getAxis(name).setTextPen(pg.mkPen(fg))


def _tick(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)
