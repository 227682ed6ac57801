"""The Backtest tab's background work: candles from the store (downloading what is missing),
the app's process pool, and the thread plumbing back to the GUI.

Nothing here blocks the GUI thread: the store reads, the download and the wait for a run
happen on a worker thread per run, which reports through a :class:`Relay` (queued signals,
guarded by the download dialog's :class:`~binmon.ui.dialogs.download_parts.Poster` so nothing
is emitted once the tab is gone). Runs execute in :class:`WorkerPool`'s processes (spawn
context, created on first use, shut down with the window).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QProgressBar

from binmon.backtest.data import load_candles, missing_count, missing_ranges, series_key
from binmon.backtest.model import BacktestRequest
from binmon.core.models import SymbolInfo
from binmon.history.download import DownloadRequest, Progress
from binmon.history.ranges import TimeRange
from binmon.ui.dialogs.download_check import error_text, progress_permille, progress_text

log = logging.getLogger(__name__)

#: What a progress report says: (text, permille or -1 for "busy").
Report = Callable[[str, int], None]
CANDLE_COLUMNS = ("open_time", "open", "high", "low", "close")


class Cancelled(Exception):
    """The user cancelled while candles were being prepared."""


class Relay(QObject):
    """Signals the worker threads emit, queued to the tab on the GUI thread."""

    progress = Signal(int, str, int)  # run number, text, permille (-1: busy)
    started = Signal(int, object)  # run number, BacktestJob
    finished = Signal(int, object)  # run number, Outcome


@dataclass(frozen=True)
class Outcome:
    """How a run ended: ``value`` (a BacktestResult, or optimisation rows) with the candles it
    was run on, or ``error`` (one line), or ``cancelled``."""

    value: Any = None
    candles: dict[str, np.ndarray] | None = None
    error: str = ""
    cancelled: bool = False


@dataclass
class Services:
    """What the tab reads from the app, each read when needed (the user may switch to the demo
    market, which replaces the store and the downloader)."""

    store: Callable[[], Any]  # CandleStore
    downloader: Callable[[], Any | None]  # Downloader (None: no downloads, e.g. tests)
    now_ms: Callable[[], int]
    symbols: Callable[[], Sequence[SymbolInfo]]
    pick: Callable[[], tuple[str, str]]
    runs_file: Path | None = None
    #: The chart's indicators (offered as subjects when editing a rule condition).
    indicators: Callable[[], Sequence[Any]] = tuple


class WorkerPool:
    """The app's one backtest process pool (spawn context), created on first use."""

    def __init__(self, workers: int | None = None) -> None:
        self.workers = workers or max(1, os.cpu_count() or 1)
        self._executor: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def executor(self) -> Executor:
        """The pool (started now if needed; safe from any thread)."""
        from binmon.backtest.runner import spawn_context

        with self._lock:
            if self._executor is None:
                self._executor = ProcessPoolExecutor(self.workers, mp_context=spawn_context())
            return self._executor

    def shutdown(self, timeout_s: float = 3.0) -> None:
        """Stop the workers and the runner's progress manager, without waiting for work.

        Queued tasks are dropped. A task still running after ``timeout_s`` (an optimisation
        chunk cannot stop halfway) has its process terminated: closing the window must not
        wait for a sweep to finish.
        """
        from binmon.backtest import runner

        with self._lock:
            ex, self._executor = self._executor, None
        if ex is not None:
            # The processes, read before shutdown() forgets them (no public API in 3.11).
            processes = list((getattr(ex, "_processes", None) or {}).values())
            ex.shutdown(wait=False, cancel_futures=True)
            deadline = time.monotonic() + timeout_s
            for proc in processes:
                proc.join(max(0.0, deadline - time.monotonic()))
                if proc.is_alive():
                    log.info("terminating backtest worker %s (still busy at exit)", proc.pid)
                    proc.terminate()
                    proc.join(1.0)
        runner.shutdown()


def prepare_candles(
    services: Services, req: BacktestRequest, cancel: threading.Event, report: Report
) -> pd.DataFrame:
    """The request's candles from the store, downloading the missing ones first (worker thread).

    Raises :class:`Cancelled`, or ValueError (one line) when there is nothing to test.
    """
    store = services.store()
    report("Checking the local store…", -1)
    miss: list[TimeRange] = missing_ranges(
        store, req.symbol, req.interval, req.start_ms, req.end_ms, req.market, now_ms=services.now_ms()
    )
    downloader = services.downloader()
    if miss and downloader is not None:
        n = missing_count(miss, req.interval)
        report(f"Downloading {n:,} missing candles…", -1)
        dl = DownloadRequest(series_key(req.symbol, req.interval, req.market), req.start_ms, req.end_ms)

        def progress(p: Progress) -> None:
            report(f"Downloading candles: {progress_text(p)}", progress_permille(p))

        try:
            result = downloader.run(dl, progress=progress, cancel=cancel)
        except Exception as exc:  # run on what the store has; say why the rest is missing
            log.warning("download for the backtest failed: %s", exc, exc_info=True)
            report(f"Download failed ({error_text(exc)}); using the stored candles", -1)
        else:
            for line in result.problems:
                log.info("download problem: %s", line)
    if cancel.is_set():
        raise Cancelled()
    report("Loading candles…", -1)
    frame = load_candles(store, req.symbol, req.interval, req.start_ms, req.end_ms, req.market)
    if frame.empty:
        raise ValueError(
            f"No {req.symbol} {req.interval} candles in this range (download failed or none exist)"
        )
    return frame


def candle_arrays(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """The plot's columns of ``frame`` as numpy arrays."""
    return {c: frame[c].to_numpy() for c in CANDLE_COLUMNS}


def spawn(name: str, target: Callable[[], object]) -> threading.Thread:
    """Run ``target`` on a new daemon thread."""
    thread = threading.Thread(target=target, name=name, daemon=True)
    thread.start()
    return thread


def show_progress(bar: QProgressBar, permille: int) -> None:
    """``permille`` (0..1000) on ``bar``; a negative value: busy, no known fraction."""
    if permille < 0:
        bar.setRange(0, 0)
    else:
        bar.setRange(0, 1000)
        bar.setValue(permille)
