"""Run one backtest with backtrader, in this process (:func:`run_backtest`). No Qt.

The fast configuration (why it beats plain backtrader on the same data, see
``benchmarks/backtest.py``):

* built-in strategies compute their TA-Lib indicators and the crossing signal with numpy
  before the run (:mod:`binmon.backtest.strategies`); backtrader only reads one extra
  ``signal`` line and simulates the broker;
* the feed (:class:`ArrayFeed`) preloads its lines from numpy arrays in one copy per line
  instead of backtrader's bar-by-bar ``_load``;
* ``stdstats=False`` (no observers), ``preload=True``, ``runonce=True``;
* equity, position and fills are recorded by one small analyzer into preallocated arrays.

Progress and cancel are checked by that analyzer every ~1 % of the bars: ``progress`` gets a
fraction in [0, 1]; ``cancel`` is a ``threading.Event``-like object (``is_set()``) or a
callable returning True to stop, which raises :class:`~binmon.backtest.model.BacktestCancelled`.
Runs are deterministic: the same request and candles give the same result.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import multiprocessing
import multiprocessing.context
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from dataclasses import replace
from multiprocessing.managers import SyncManager
from pathlib import Path
from typing import Any, Protocol, TypeAlias

import backtrader as bt
import numpy as np
import pandas as pd

from binmon.backtest.fills import Fill, markers_from_fills, trades_from_fills
from binmon.backtest.metrics import compute_metrics, drawdown_pct
from binmon.backtest.model import (
    USER_STRATEGY,
    BacktestCancelled,
    BacktestRequest,
    BacktestResult,
    IndicatorLine,
    validate_params,
)

__all__ = [
    "ArrayFeed",
    "BacktestJob",
    "Cancel",
    "CandleSource",
    "Progress",
    "default_executor",
    "run_backtest",
    "select_candles",
    "shutdown",
    "spawn_context",
    "start_backtest",
]

log = logging.getLogger(__name__)

Progress = Callable[[float], None]


class _HasIsSet(Protocol):
    def is_set(self) -> bool: ...


#: An Event-like flag or a callable; either says "stop".
Cancel = _HasIsSet | Callable[[], bool]

#: bt.date2num(datetime(1970, 1, 1)): backtrader's float day number of the epoch.
_EPOCH_NUM = 719163.0
_DAY_MS = 86_400_000.0
_COLUMNS = ("open_time", "open", "high", "low", "close", "volume")


def _cancel_check(cancel: Cancel | None) -> Callable[[], bool]:
    if cancel is None:
        return lambda: False
    is_set = getattr(cancel, "is_set", None)
    if is_set is not None:
        return is_set  # type: ignore[no-any-return,unused-ignore]
    assert callable(cancel)
    return cancel


class ArrayFeed(bt.feeds.DataBase):
    """A backtrader feed over numpy arrays, with an extra ``signal`` line.

    ``dataname``: dict of equal-length float arrays for ``datetime`` (backtrader day numbers,
    UTC), ``open high low close volume`` and ``signal``. :meth:`preload` copies each array into
    its line buffer at once; ``_load`` (used only with ``preload=False``) goes bar by bar.
    """

    lines: Any = ("signal",)
    _FIELDS = ("datetime", "open", "high", "low", "close", "volume", "signal")

    def start(self) -> None:
        super().start()
        self._i = 0

    def preload(self) -> None:
        cols = self.p.dataname
        for name in self._FIELDS:
            line = getattr(self.lines, name)
            line.array.frombytes(np.ascontiguousarray(cols[name], dtype=np.float64).tobytes())
        self.lines.openinterest.array.frombytes(np.zeros(len(cols["close"])).tobytes())
        self.home()  # what the bar-by-bar preload leaves: every bar in the buffer, pointer rewound

    # The tick_* attributes serve resampling / replay / live feeds, which this feed never is;
    # the broker falls back to the bar's own prices without them. Skipping them saves ~15 %.
    def _tick_nullify(self) -> None:
        return None

    def _tick_fill(self, force: bool = False) -> None:
        return None

    def _load(self) -> bool:
        cols = self.p.dataname
        if self._i >= len(cols["close"]):
            return False
        for name in self._FIELDS:
            getattr(self.lines, name)[0] = float(cols[name][self._i])
        self.lines.openinterest[0] = 0.0
        self._i += 1
        return True


class _Recorder(bt.Analyzer):
    """Equity and position at each close, every fill, progress and cancel."""

    params = (("n", 0), ("progress", None), ("cancel", None))

    def start(self) -> None:
        n = self.p.n
        self.equity = np.full(n, np.nan)
        self.position = np.zeros(n)
        self.fills: list[Fill] = []
        self.warnings: list[str] = []
        self._step = max(1, n // 100)
        self._cancelled = _cancel_check(self.p.cancel)
        self._broker = self.strategy.broker
        self._data = self.strategy.datas[0]

    def next(self) -> None:
        i = len(self._data) - 1
        self.equity[i] = self._broker.getvalue()
        self.position[i] = self._broker.getposition(self._data).size
        if i % self._step == 0:
            if self._cancelled():
                raise BacktestCancelled()
            if self.p.progress is not None:
                self.p.progress(i / self.p.n)

    def notify_order(self, order: Any) -> None:
        i = len(self._data) - 1
        if order.status == order.Completed:
            ex = order.executed
            if abs(ex.size) + 1e-12 < abs(order.created.size):
                self.warnings.append(
                    f"bar {i}: order for {order.created.size:g} filled only {ex.size:g} (not enough cash)"
                )
            prices = {b.price for b in ex.exbits}
            # backtrader averages the price over the execution bits, inexactly even for one bit
            price = prices.pop() if len(prices) == 1 else ex.price
            self.fills.append(Fill(i, float(ex.size), float(price), float(ex.comm)))
        elif order.status in (order.Margin, order.Rejected):
            self.warnings.append(f"bar {i}: order for {order.created.size:g} rejected (not enough cash)")


class _SignalStrategy(bt.Strategy):
    """Trades the precomputed ``signal`` line (+1 buy, -1 sell; see binmon.backtest.model)."""

    params = (("long_short", False), ("sizing", "percent"), ("size", 95.0))

    def start(self) -> None:
        self._signal = self.data.signal
        self._close = self.data.close

    def _target(self) -> float:
        if self.p.sizing == "fixed":
            return float(self.p.size)
        return float(self.broker.getvalue() * self.p.size / 100.0 / self._close[0])

    def next(self) -> None:
        s = self._signal[0]
        if s == 0:
            return
        pos = self.position.size
        if s > 0:
            if pos <= 0:
                self.order_target_size(target=self._target())
        elif pos > 0 or (pos == 0 and self.p.long_short):
            self.order_target_size(target=-self._target() if self.p.long_short else 0.0)


def select_candles(candles: pd.DataFrame, start_ms: int, end_ms: int) -> pd.DataFrame:
    """The rows of ``candles`` with ``start_ms <= open_time <= end_ms``, prices as float64.

    ``candles``: the store's frame (``CandleStore.read_frame``) or any frame with columns
    ``open_time`` (ms) and ``open high low close volume``, oldest first. ValueError (one line)
    when a column is missing, times are not strictly increasing, or nothing is in the range.
    """
    missing = [c for c in _COLUMNS if c not in candles.columns]
    if missing:
        raise ValueError(f"candles lack the column {missing[0]!r}")
    ot = candles["open_time"].to_numpy(dtype=np.int64)
    lo, hi = int(np.searchsorted(ot, start_ms, "left")), int(np.searchsorted(ot, end_ms, "right"))
    frame = candles.iloc[lo:hi]
    if frame.empty:
        raise ValueError("no candles in the requested range")
    if not bool(np.all(np.diff(ot[lo:hi]) > 0)):
        raise ValueError("candle open times are not strictly increasing")
    out = pd.DataFrame({"open_time": ot[lo:hi]})
    for c in _COLUMNS[1:]:
        out[c] = frame[c].to_numpy(dtype=np.float64)
    return out


def _strategy(
    request: BacktestRequest, frame: pd.DataFrame
) -> tuple[type[Any], dict[str, Any], np.ndarray, tuple[IndicatorLine, ...]]:
    """(strategy class, its kwargs, the signal line, the plot lines) for ``request``."""
    from binmon.backtest import strategies

    n = len(frame)
    if request.strategy == USER_STRATEGY:
        assert request.strategy_file is not None
        cls = strategies.load_user_strategy(request.strategy_file)
        return cls, strategies.user_params(cls, request.params), np.zeros(n), ()
    params = validate_params(request.strategy, request.params)
    prep = strategies.prepare(request.strategy, frame, params)
    kwargs = {"long_short": request.direction == "long_short", "sizing": request.sizing, "size": request.size}
    return _SignalStrategy, kwargs, prep.signal.astype(np.float64), prep.indicators


def _user_indicators(strat: Any, n: int) -> tuple[IndicatorLine, ...]:
    """Best effort: the lines of the indicators a user strategy created, for plotting."""
    out: list[IndicatorLine] = []
    for ind in strat.getindicators():
        try:
            pane = "separate" if ind.plotinfo.subplot else "price"
            label = type(ind).__name__
            for k in range(ind.lines.size()):
                arr = np.frombuffer(ind.lines[k].array, dtype=np.float64)
                if arr.size == n:
                    name = ind.lines._getlinealias(k)
                    out.append(IndicatorLine(f"{label}.{name}", arr.copy(), pane, label))  # type: ignore[arg-type]
        except Exception:  # a plot nicety must never fail a run
            log.debug("cannot read indicator %r", ind, exc_info=True)
    return tuple(out)


def run_backtest(
    request: BacktestRequest,
    candles: pd.DataFrame,
    *,
    progress: Progress | None = None,
    cancel: Cancel | None = None,
) -> BacktestResult:
    """Backtest ``request`` on ``candles`` (the rows inside its start..end are used).

    Deterministic. Raises ValueError (one line) for bad parameters or no candles in range,
    :class:`~binmon.backtest.strategies.StrategyFileError` (a ValueError) for a bad user file
    or a user strategy that fails while running,
    :class:`~binmon.backtest.model.BacktestCancelled` when ``cancel`` fires.
    """
    t0 = time.perf_counter()
    frame = select_candles(candles, request.start_ms, request.end_ms)
    n = len(frame)
    times = frame["open_time"].to_numpy(dtype=np.int64)
    closes = frame["close"].to_numpy()
    cls, kwargs, signal, indicators = _strategy(request, frame)
    if request.strategy != USER_STRATEGY:  # the result says which parameters ran, defaults included
        request = replace(request, params=validate_params(request.strategy, request.params))
    cols = {c: frame[c].to_numpy() for c in ("open", "high", "low", "close", "volume")}
    cols["datetime"] = times / _DAY_MS + _EPOCH_NUM
    cols["signal"] = signal
    cerebro = bt.Cerebro(stdstats=False, preload=True, runonce=True, maxcpus=1)
    cerebro.adddata(ArrayFeed(dataname=cols))
    broker = cerebro.broker
    broker.setcash(request.cash)
    broker.setcommission(commission=request.commission)
    if request.slippage:
        broker.set_slippage_perc(request.slippage, slip_open=True, slip_match=True, slip_out=False)
    if request.strategy == USER_STRATEGY:  # their own buy()/sell() calls take the requested sizing
        if request.sizing == "fixed":
            cerebro.addsizer(bt.sizers.FixedSize, stake=request.size)
        else:
            cerebro.addsizer(bt.sizers.PercentSizer, percents=request.size)
    cerebro.addstrategy(cls, **kwargs)
    cerebro.addanalyzer(_Recorder, _name="rec", n=n, progress=progress, cancel=cancel)
    if request.strategy != USER_STRATEGY:
        strat = cerebro.run()[0]
    else:
        try:
            strat = cerebro.run()[0]
        except BacktestCancelled:
            raise
        except Exception as exc:  # the user's code (or too few bars for its indicators)
            from binmon.backtest.strategies import StrategyFileError

            log.debug("user strategy failed", exc_info=True)
            name = Path(request.strategy_file or "").name
            hint = " (fewer bars than its indicators need?)" if isinstance(exc, IndexError) else ""
            raise StrategyFileError(
                f"{name}: failed while running: {type(exc).__name__}: {exc}{hint}"
            ) from None
    rec = strat.analyzers.rec
    equity = rec.equity
    if np.isnan(equity).any():  # bars before a user strategy's warm-up: nothing traded yet
        equity = np.where(np.isnan(equity), request.cash, equity)
    if request.strategy == USER_STRATEGY:
        indicators = _user_indicators(strat, n)
    trades = trades_from_fills(rec.fills, times, closes)
    metrics = compute_metrics(
        cash=request.cash,
        interval=request.interval,
        times=times,
        equity=equity,
        position=rec.position,
        closes=closes,
        trades=trades,
    )
    if progress is not None:
        progress(1.0)
    return BacktestResult(
        request=request,
        metrics=metrics,
        trades=tuple(trades),
        times=times,
        equity=equity,
        buy_hold=request.cash * closes / closes[0],
        drawdown_pct=drawdown_pct(equity, request.cash),
        position=rec.position,
        markers=tuple(markers_from_fills(rec.fills, times)),
        indicators=indicators,
        bars=n,
        elapsed_s=time.perf_counter() - t0,
        warnings=tuple(rec.warnings),
    )


# ---------------------------------------------------------------- in a separate process

#: Candles given directly, or the path of the candle store to read them from (in the worker).
CandleSource: TypeAlias = pd.DataFrame | str | Path

_lock = threading.Lock()
_manager: SyncManager | None = None
_executor: ProcessPoolExecutor | None = None


def spawn_context() -> multiprocessing.context.SpawnContext:
    """The multiprocessing context of every binmon worker: spawn, never fork (forking a process
    that runs Qt, or any threads, copies locks in unknown states)."""
    return multiprocessing.get_context("spawn")


def _shared() -> SyncManager:
    """A manager process (started once per process) serving the progress values and cancel
    flags of jobs: its proxies pickle into any worker, whatever executor runs the job."""
    global _manager
    with _lock:
        if _manager is None:
            _manager = spawn_context().Manager()
            atexit.register(shutdown)
        return _manager


def default_executor() -> ProcessPoolExecutor:
    """binmon's backtest worker pool (one spawn-context process, reused: backtrader and TA-Lib
    are imported once). Created on first use; :func:`shutdown` ends it."""
    global _executor
    with _lock:
        if _executor is None:
            _executor = ProcessPoolExecutor(max_workers=1, mp_context=spawn_context())
            atexit.register(shutdown)
        return _executor


def shutdown() -> None:
    """Stop the default worker pool and the manager process (idempotent; also run at exit)."""
    global _manager, _executor
    with _lock:
        ex, _executor = _executor, None
        mgr, _manager = _manager, None
    if ex is not None:
        ex.shutdown(wait=True, cancel_futures=True)
    if mgr is not None:
        mgr.shutdown()


def _job_main(
    request: BacktestRequest, source: CandleSource, shared_progress: Any, cancel: Any
) -> BacktestResult:
    """Worker side of :func:`start_backtest` (module level so that it pickles)."""
    if isinstance(source, pd.DataFrame):
        candles = source
    else:
        from binmon.backtest.data import load_candles

        candles = load_candles(
            source, request.symbol, request.interval, request.start_ms, request.end_ms, request.market
        )

    def report(fraction: float) -> None:
        shared_progress.value = fraction

    return run_backtest(request, candles, progress=report, cancel=cancel)


class BacktestJob:
    """A backtest running in another process. Poll :meth:`progress` (e.g. from a GUI timer),
    :meth:`cancel` it, and take the result from :attr:`future` (a
    ``concurrent.futures.Future[BacktestResult]``; it raises BacktestCancelled after a cancel
    that reached the worker, CancelledError if it never started, or the run's error)."""

    def __init__(self, future: Future[BacktestResult], progress: Any, cancel: Any) -> None:
        self.future = future
        self._progress = progress
        self._cancel = cancel

    def progress(self) -> float:
        """Fraction of the bars done, 0..1 (1 once the result is ready)."""
        if self.future.done():
            return 1.0
        try:
            return float(self._progress.value)
        except (OSError, EOFError):  # the manager is gone (shutting down)
            return 0.0

    def cancel(self) -> None:
        """Ask the run to stop (it stops within ~1 % of its bars); harmless when already done."""
        self.future.cancel()
        with contextlib.suppress(OSError, EOFError):
            self._cancel.set()

    def done(self) -> bool:
        """True when the future has a result, an error or was cancelled."""
        return self.future.done()


def start_backtest(
    request: BacktestRequest, candles: CandleSource, executor: Executor | None = None
) -> BacktestJob:
    """Run :func:`run_backtest` in a worker process and return at once.

    ``candles``: a DataFrame (pickled to the worker) or the path of the candle store (the
    worker reads the request's range itself: nothing big crosses the process boundary).
    ``executor``: any ``concurrent.futures`` executor whose workers are processes of this
    machine or a cluster; default :func:`default_executor`. Never a fork-based pool in a Qt
    process.
    """
    mgr = _shared()
    shared_progress = mgr.Value("d", 0.0)
    cancel = mgr.Event()
    if isinstance(candles, Path):
        candles = str(candles)
    future = (executor or default_executor()).submit(_job_main, request, candles, shared_progress, cancel)
    return BacktestJob(future, shared_progress, cancel)
