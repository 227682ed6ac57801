"""The Backtest tab: the form on the left; results, recent runs and optimisation on the right.

A run: the form's request -> a worker thread checks the store, downloads missing candles
(the app's Downloader, with progress), loads the candles for the plots and starts the
backtest in the app's process pool (:func:`binmon.backtest.runner.start_backtest`); a GUI
timer polls the job's cross-process progress; Cancel stops the download or the run. The
GUI thread only draws. :func:`install_backtest_tab` puts the tab in the main window.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import CancelledError
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from binmon.backtest.model import BacktestCancelled, BacktestRequest, BacktestResult, strategies
from binmon.backtest.runner import BacktestJob, start_backtest
from binmon.ui.backtest.files import RecentRuns, RunEntry
from binmon.ui.backtest.form import BacktestForm
from binmon.ui.backtest.optimize_view import OptimizeView
from binmon.ui.backtest.results import ResultView
from binmon.ui.backtest.runs_view import RunsView
from binmon.ui.backtest.work import (
    Cancelled,
    Outcome,
    Relay,
    Services,
    WorkerPool,
    candle_arrays,
    prepare_candles,
    show_progress,
    spawn,
)
from binmon.ui.dialogs.download_parts import Poster, error_colour, note_colour

log = logging.getLogger(__name__)

#: How often the run's progress is read from the worker process.
POLL_MS = 100


class BacktestTab(QWidget):
    """See the module docstring. ``resultShown(BacktestResult)`` after each finished run."""

    resultShown = Signal(object)

    def __init__(self, services: Services, pool: WorkerPool, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("backtest_tab")
        self.services = services
        self.pool = pool
        self._run = 0
        self._cancel: threading.Event | None = None
        self._job: BacktestJob | None = None
        self._thread: threading.Thread | None = None
        self._file_thread: threading.Thread | None = None
        self._strategy_dir = ""
        self._save_thread: threading.Thread | None = None
        self._closed = False
        self.dock_swap: QObject | None = None  # set by install_backtest_tab
        self.runs = RecentRuns(services.runs_file)
        self.runs.load()

        self._relay = Relay(self)
        self._poster = Poster()
        self._relay.destroyed.connect(self._poster.close)
        self._relay.progress.connect(self._on_progress)
        self._relay.started.connect(self._on_started)
        self._relay.finished.connect(self._on_finished)
        self._poll = QTimer(self, interval=POLL_MS)
        self._poll.timeout.connect(self._poll_job)
        self._build()
        self.runs_view.set_entries(self.runs.entries)
        if self.runs.problems:
            self._say(self.runs.problems[0], error=True)

    # ------------------------------------------------------------------ construction

    def _build(self) -> None:
        self.form = BacktestForm(
            strategies(),
            self.services.pick(),
            symbols=self.services.symbols,
            indicators=self.services.indicators,
            now_ms=self.services.now_ms,
        )
        self.form.changed.connect(self._form_changed)
        self.form.loadFileRequested.connect(self.choose_strategy_file)
        self.form.stored_button.clicked.connect(self.use_stored_range)
        scroll = QScrollArea(self)
        scroll.setWidget(self.form)
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)

        self.run_button = QPushButton("&Run backtest", self)
        self.run_button.setObjectName("bt_run")
        self.run_button.setDefault(True)
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.setObjectName("bt_cancel")
        self.cancel_button.setEnabled(False)
        self.run_button.clicked.connect(self.run)
        self.cancel_button.clicked.connect(self.cancel)
        self.progress_bar = QProgressBar(self)
        self.progress_bar.setRange(0, 1000)
        self.progress_bar.setTextVisible(False)
        self.progress_bar.hide()
        self.status_label = QLabel("", self)
        self.status_label.setObjectName("bt_status")
        self.status_label.setWordWrap(True)
        buttons = QHBoxLayout()
        buttons.addWidget(self.run_button, 1)
        buttons.addWidget(self.cancel_button)

        left = QWidget(self)
        lay = QVBoxLayout(left)
        lay.setContentsMargins(6, 6, 6, 6)
        lay.addWidget(scroll, 1)
        lay.addLayout(buttons)
        lay.addWidget(self.progress_bar)
        lay.addWidget(self.status_label)
        left.setMinimumWidth(320)

        self.result_view = ResultView(self)
        self.result_view.export_trades_button.clicked.connect(self.export_trades)
        self.result_view.export_metrics_button.clicked.connect(self.export_metrics)
        self.result_view.export_png_button.clicked.connect(self.export_png)
        self.runs_view = RunsView(self)
        self.runs_view.openRequested.connect(self.open_run)
        self.optimize_view = OptimizeView(self.form, self.services, self.pool, self)
        self.optimize_view.openRequested.connect(self.run_with_params)
        self.views = QTabWidget(self)
        self.views.setObjectName("bt_views")
        self.views.addTab(self.result_view, "Result")
        self.views.addTab(self.runs_view, "Recent runs")
        self.views.addTab(self.optimize_view, "Optimise")

        splitter = QSplitter(Qt.Orientation.Horizontal, self)
        splitter.addWidget(left)
        splitter.addWidget(self.views)
        splitter.setStretchFactor(0, 0)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([360, 1040])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(splitter)
        self._form_changed()

    # ------------------------------------------------------------------ public API

    @property
    def running(self) -> bool:
        """True while a run (download, load or backtest) is in progress."""
        return self._thread is not None

    def run(self) -> bool:
        """Start the run the form describes; False when the form is invalid or a run is going."""
        req = self.form.request()
        if req is None or self.running or self._closed:
            return False
        self._run += 1
        run, cancel = self._run, threading.Event()
        services, pool, relay, poster = self.services, self.pool, self._relay, self._poster

        def report(text: str, permille: int) -> None:
            poster.emit(relay.progress, run, text, permille)

        def work() -> None:  # worker thread: no widget, only the relay
            try:
                frame = prepare_candles(services, req, cancel, report)
                candles = candle_arrays(frame)
                report("Starting the backtest…", -1)
                store_path = getattr(services.store(), "path", None)
                job = start_backtest(req, str(store_path) if store_path else frame, pool.executor())
                poster.emit(relay.started, run, job)
                if cancel.is_set():
                    job.cancel()
                outcome = Outcome(job.future.result(), candles)
            except (Cancelled, BacktestCancelled, CancelledError):
                outcome = Outcome(cancelled=True)
            except ValueError as exc:  # bad parameters, a bad strategy file, no candles
                outcome = Outcome(error=str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            except Exception as exc:
                log.warning("backtest of %s failed", req, exc_info=True)
                outcome = Outcome(error=f"The backtest failed: {type(exc).__name__}: {exc}".splitlines()[0])
            poster.emit(relay.finished, run, outcome)

        self._cancel = cancel
        self._set_running(True)
        self.progress_bar.setRange(0, 0)
        self._say("Preparing…", error=False)
        self._thread = spawn("binmon-backtest", work)
        return True

    def cancel(self) -> None:
        """Stop the download or the backtest in progress."""
        if self._cancel is not None and not self._cancel.is_set():
            self._cancel.set()
            if self._job is not None:
                self._job.cancel()
            self.cancel_button.setEnabled(False)
            self._say("Cancelling…", error=False)

    def run_with_params(self, params: dict[str, Any]) -> bool:
        """Put ``params`` in the form and run (the optimisation's "Open")."""
        self.form.set_params(params)
        self.views.setCurrentWidget(self.result_view)
        return self.run()

    def open_run(self, run_id: str) -> None:
        """Show a recent run: its result when this session holds it, else load it into the form
        and run it again (runs are deterministic)."""
        entry = self.runs.get(run_id)
        if entry is None:
            return
        self.form.load(entry.request)
        self.views.setCurrentWidget(self.result_view)
        if entry.result is not None and entry.candles is not None:
            self._show(entry.result, entry.candles)
            return
        self.run()

    def use_stored_range(self) -> None:
        """Set From/To to what the store holds of the form's series (read on a thread)."""
        from binmon.backtest.data import series_key
        from binmon.core.intervals import interval_ms

        symbol, interval = self.form.symbol_edit.text().strip().upper(), self.form.interval_box.interval()
        try:
            key = series_key(symbol, interval)
        except ValueError as exc:
            self._say(str(exc), error=True)
            return
        store = self.services.store()
        try:
            bounds = store.bounds(key)  # one indexed query: cheap enough for a click
        except Exception as exc:
            self._say(f"Cannot read the store: {exc}", error=True)
            return
        if bounds is None:
            self._say(f"No {symbol} {interval} candles stored yet: pick a range to download", error=False)
            return
        self.form.set_range(bounds.start, bounds.end + interval_ms(interval))
        self._say("", error=False)

    def choose_strategy_file(self) -> None:
        """Ask for a strategy file (a normal slot: the static dialog is fine here)."""
        from binmon.resources import resource_path

        start = self._strategy_dir or str(resource_path("strategies"))  # the example to copy first
        path, _ = QFileDialog.getOpenFileName(self, "Load strategy file", start, "Python files (*.py)")
        if path:
            self._strategy_dir = str(Path(path).parent)
            self.load_strategy_file(path)

    def load_strategy_file(self, path: str) -> None:
        """Read ``path``'s strategy class and params in the process pool, then offer it."""
        from binmon.ui.backtest.userfile import describe_strategy_file

        self._say(f"Reading {path}…", error=False)
        pool, relay, poster = self.pool, self._relay, self._poster

        def work() -> None:
            try:
                name, params = pool.executor().submit(describe_strategy_file, path).result(timeout=60)
                outcome = Outcome(value=(path, name, params))
            except Exception as exc:  # the user's file: one line, the details in the log
                log.info("cannot load strategy file %s: %s", path, exc, exc_info=True)
                outcome = Outcome(error=str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            poster.emit(relay.finished, -1, outcome)  # -1: not a run

        self._file_thread = spawn("binmon-strategy-file", work)

    def export_trades(self) -> None:
        """Ask where, then write the trades CSV."""
        result = self.result_view.result
        if result is None:
            return
        path, _ = QFileDialog.getSaveFileName(
            self, "Export trades", _default_name(result, "trades.csv"), "CSV (*.csv)"
        )
        if path:
            self.write_export("trades", path)

    def export_metrics(self) -> None:
        """Ask where, then write the metrics JSON."""
        result = self.result_view.result
        if result is None:
            return
        path, _ = QFileDialog.getSaveFileName(
            self, "Export metrics", _default_name(result, "metrics.json"), "JSON (*.json)"
        )
        if path:
            self.write_export("metrics", path)

    def export_png(self) -> None:
        """Ask where, then save the plots as PNG."""
        result = self.result_view.result
        if result is None:
            return
        path, _ = QFileDialog.getSaveFileName(
            self, "Save plot", _default_name(result, "plot.png"), "PNG (*.png)"
        )
        if path:
            self.write_export("png", path)

    def write_export(self, kind: str, path: str) -> bool:
        """Write export ``kind`` ("trades", "metrics", "png") of the result shown to ``path``."""
        from binmon.ui.backtest.files import write_metrics_json, write_trades_csv

        result = self.result_view.result
        if result is None:
            return False
        try:
            if kind == "trades":
                write_trades_csv(Path(path), result.trades)
            elif kind == "metrics":
                write_metrics_json(Path(path), result, self.result_view.hold)
            elif kind == "png":
                if not self.result_view.plots.grab().save(path, "PNG"):
                    raise OSError("Qt could not write the image")
            else:
                raise ValueError(f"unknown export {kind!r}")
        except OSError as exc:
            log.warning("export to %s failed", path, exc_info=True)
            self._say(f"Could not write {path}: {exc}", error=True)
            return False
        self._say(f"Saved {path}", error=False)
        return True

    def flush_runs(self, timeout_s: float = 5.0) -> bool:
        """Wait for the recent-runs file to be written; True when it is."""
        thread = self._save_thread
        if thread is not None:
            thread.join(timeout_s)
        return thread is None or not thread.is_alive()

    def shutdown(self, timeout_s: float = 5.0, *, stop_pool: bool = True) -> None:
        """For the app's exit: cancel what runs, wait briefly for the threads, stop the pool
        (unless ``stop_pool`` is False: a pool shared with other tabs, e.g. in tests)."""
        self._closed = True
        self.cancel()
        self.optimize_view.cancel()
        self._poll.stop()
        for thread in (self._thread, self._file_thread, self.optimize_view.worker, self._save_thread):
            if thread is not None:
                thread.join(timeout_s)
        self._poster.close()
        self.optimize_view.close_relay()
        if stop_pool:
            self.pool.shutdown()

    # ------------------------------------------------------------------ run state

    def _form_changed(self) -> None:
        self.run_button.setEnabled(self.form.request() is not None and not self.running)
        self.run_button.setToolTip(self.form.error())
        self.optimize_view.form_changed()

    def _set_running(self, running: bool) -> None:
        self.form.set_editable(not running)
        self.run_button.setEnabled(not running and self.form.request() is not None)
        self.cancel_button.setEnabled(running)
        self.progress_bar.setVisible(running)
        if not running:
            self._poll.stop()

    def _say(self, text: str, *, error: bool) -> None:
        colour = error_colour(self) if error else note_colour(self)
        self.status_label.setStyleSheet(f"color: {colour};")
        self.status_label.setText(("⚠ " + text) if error and text else text)
        self.status_label.setProperty("error", error)

    def _on_progress(self, run: int, text: str, permille: int) -> None:
        if run != self._run:
            return
        self._say(text, error=False)
        show_progress(self.progress_bar, permille)

    def _on_started(self, run: int, job: BacktestJob) -> None:
        if run != self._run:
            return
        self._job = job
        self.progress_bar.setRange(0, 1000)
        self.progress_bar.setValue(0)
        self._say("Backtesting…", error=False)
        self._poll.start()

    def _poll_job(self) -> None:
        job = self._job
        if job is None:
            return
        fraction = job.progress()
        self.progress_bar.setValue(int(fraction * 1000))
        if not (self._cancel and self._cancel.is_set()):
            self._say(f"Backtesting… {fraction * 100:.0f} %", error=False)

    def _on_finished(self, run: int, outcome: Outcome) -> None:
        if run == -1:  # a strategy file was read
            if outcome.error:
                self._say(outcome.error, error=True)
            else:
                path, name, params = outcome.value
                self.form.set_user_strategy(path, params, name)
                self._say(f"Loaded {name} from {path}", error=False)
            self._file_thread = None
            return
        if run != self._run:
            return
        self._thread, self._job, self._cancel = None, None, None
        self._set_running(False)
        if outcome.cancelled:
            self._say("Cancelled", error=False)
        elif outcome.error:
            self._say(outcome.error, error=True)
        else:
            result: BacktestResult = outcome.value
            assert outcome.candles is not None
            entry = RunEntry.of(result)
            entry.candles = outcome.candles  # kept for "Open" during this session
            self.runs.add(entry, save=False)
            # JSON + fsync off the GUI thread (the next save replaces this one's file anyway).
            self._save_thread = spawn("binmon-backtest-runs", self.runs.save)
            self.runs_view.set_entries(self.runs.entries)
            self._show(result, outcome.candles)
            self.views.setCurrentWidget(self.result_view)
            warn = f" · ⚠ {result.warnings[0]}" if result.warnings else ""
            self._say(
                f"Done: {result.bars:,} bars, {len(result.trades):,} trades, {result.elapsed_s:.2f} s{warn}",
                error=False,
            )
        self._form_changed()

    def _show(self, result: BacktestResult, candles: Any) -> None:
        self.result_view.show_result(result, candles)
        self.resultShown.emit(result)


def _default_name(result: BacktestResult, suffix: str) -> str:
    r = result.request
    return f"{r.symbol}-{r.interval}-{r.strategy}-{suffix}"


__all__ = ["BacktestRequest", "BacktestTab"]
