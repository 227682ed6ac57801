"""The one place where market events cross into Qt, and where they are throttled.

:class:`QtMarketAdapter` is the :class:`~binmon.services.market.MarketSink` of the app. The
service calls it on the GUI thread (qasync runs asyncio there) at the feed's rate; the adapter
only buffers, and a single-shot 50 ms QTimer flushes the buffers, so however fast the feed is
the window sees at most ~20 flushes a second, and each flush is ONE ``chart.apply`` call:

* chart ops are coalesced per open time: the latest version of a bar wins, its position (and
  kind, Append or Replace) is that of its first op, so the order is kept; a Reload drops what
  was buffered before it; Gaps are dropped (the page cannot draw a missing candle);
* trades are batched (only the newest ``max_trades`` of a burst: the panel shows fewer);
* tickers keep the latest per symbol.

Flush hooks (:meth:`QtMarketAdapter.add_flush_hook`) see the ops of a flush right before the
chart gets them and may return indicator values for the same bars: they go to the page in the
same ``chart.apply(ops, indicators)`` call, so candles and indicators are drawn together.

Rare, order-sensitive events (switching, history loaded, older bars, symbols, status,
messages) are re-emitted at once as Qt signals for the controller, after the buffers were
settled: buffered ops are dropped on a switch or a history load (they belong to the old
series) and flushed before older bars are prepended.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol

from PySide6.QtCore import QObject, QTimer, Signal

from binmon.core.candles import Append, ChartOp, Gap, Reload, Replace
from binmon.core.events import ConnectionStatus
from binmon.core.models import Kline, MiniTicker, SymbolInfo, TradeEvent
from binmon.ui.chart.api import ChartView
from binmon.ui.chart.indicators import IndicatorRows

#: A flush hook: gets the ops about to be applied, returns indicator rows (id -> ``[t, v...]``
#: rows) to send with them, or None.
FlushHook = Callable[[Sequence[ChartOp]], Mapping[str, IndicatorRows] | None]

log = logging.getLogger(__name__)

#: Flush period: 50 ms caps the window at 20 updates/s, well under a human's notice.
FLUSH_MS = 50
#: How often the feed delay and message rate are shown.
FEED_MS = 1000


class _Trades(Protocol):
    def add_trades(self, trades: Sequence[TradeEvent]) -> None: ...


class _Watchlist(Protocol):
    def update_tickers(self, tickers: Iterable[MiniTicker]) -> object: ...


class _Status(Protocol):
    def set_feed(self, delay_ms: float | None, msgs_per_s: float) -> None: ...


class QtMarketAdapter(QObject):
    """Buffers the service's hot events and flushes them to ``chart`` and the window's panels.

    ``trades``, ``watchlist`` and ``status`` are the window's panels (see the module
    docstring); ``wall_ms`` is the clock the feed delay is measured with.
    """

    switching = Signal(object, str)  # SymbolInfo, interval
    historyLoaded = Signal(str, str, object)  # symbol, interval, Sequence[Kline]
    olderLoaded = Signal(str, str, object)  # symbol, interval, Sequence[Kline]
    symbolsLoaded = Signal(object)  # Mapping[str, SymbolInfo]
    statusChanged = Signal(object)  # ConnectionStatus
    message = Signal(object, bool)  # str | None, blocking
    flushed = Signal(int)  # number of chart ops applied (for tests and benchmarks)

    def __init__(
        self,
        chart: ChartView,
        trades: _Trades,
        watchlist: _Watchlist,
        status: _Status,
        *,
        flush_ms: int = FLUSH_MS,
        max_trades: int = 500,
        wall_ms: Callable[[], float] = lambda: time.time() * 1000.0,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._chart, self._trades, self._watchlist, self._status = chart, trades, watchlist, status
        self._max_trades = max_trades
        self._wall_ms = wall_ms
        self._delay_of: Callable[[int], float] | None = None
        self._reload: Reload | None = None
        self._ops: dict[int, Append | Replace] = {}
        self._trade_buf: list[TradeEvent] = []
        self._tickers: dict[str, MiniTicker] = {}
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(flush_ms)
        self._timer.timeout.connect(self.flush)
        # Feed figures: events since the last report and the newest event time seen.
        self._count = 0
        self._max_delay_ms = float("-inf")
        self._feed_at = time.monotonic()
        self._feed_timer = QTimer(self)
        self._feed_timer.setInterval(FEED_MS)
        self._feed_timer.timeout.connect(self._report_feed)
        self._feed_timer.start()
        self.flush_count = 0
        self._stopped = False
        self._flush_hooks: list[FlushHook] = []

    # ------------------------------------------------------------ MarketSink: hot path

    def market_ops(self, ops: Sequence[ChartOp]) -> None:
        """Buffer chart ops, coalesced per open time."""
        buf = self._ops
        for op in ops:
            if isinstance(op, Gap):
                continue
            if isinstance(op, Reload):
                self._reload = op
                buf.clear()
                continue
            t = op.bar.open_time
            held = buf.get(t)
            # Keep the first op's kind (an Append must stay an Append) with the newest bar.
            buf[t] = op if held is None else type(held)(op.bar)
        self._schedule()

    def market_trade(self, trade: TradeEvent) -> None:
        """Buffer one trade of the current symbol."""
        self._trade_buf.append(trade)
        if len(self._trade_buf) > 2 * self._max_trades:
            del self._trade_buf[: -self._max_trades]
        self._schedule()

    def market_tickers(self, tickers: Sequence[MiniTicker]) -> None:
        """Keep the latest ticker of each symbol."""
        buf = self._tickers
        for t in tickers:
            buf[t.symbol] = t
        self._schedule()

    def market_feed(self, event_time_ms: int) -> None:
        """Count one stream event (message rate) and its delay on arrival (now - event time).

        The delay is taken when the event arrives, not when it is reported: with a quiet
        feed, the age of the last event would read as a lag that is not there.
        """
        self._count += 1
        delay = self._wall_ms() - event_time_ms if self._delay_of is None else self._delay_of(event_time_ms)
        if delay > self._max_delay_ms:
            self._max_delay_ms = delay

    def measure_delay_with(self, delay_of: Callable[[int], float] | None) -> None:
        """Measure the feed delay with ``delay_of(event_time_ms) -> ms`` instead of the wall
        clock (None: the wall clock again). A replay's events carry the replayed day's times:
        against the wall clock they would read as years late."""
        self._delay_of = delay_of

    # ------------------------------------------------------------ MarketSink: rare events

    def market_switching(self, symbol: SymbolInfo, interval: str) -> None:
        """Drop what was buffered for the previous series, then tell the controller."""
        self._drop_series_buffers()
        self.switching.emit(symbol, interval)

    def market_history(self, symbol: str, interval: str, bars: Sequence[Kline]) -> None:
        """History replaces everything: buffered ops are older than it."""
        self._reload = None
        self._ops.clear()
        self.historyLoaded.emit(symbol, interval, bars)

    def market_older(self, symbol: str, interval: str, bars: Sequence[Kline]) -> None:
        """Flush first: a buffered Reload applied after the prepend would drop the older bars."""
        self.flush()
        self.olderLoaded.emit(symbol, interval, bars)

    def market_symbols(self, symbols: Mapping[str, SymbolInfo]) -> None:
        """exchangeInfo loaded."""
        self.symbolsLoaded.emit(symbols)

    def market_status(self, status: ConnectionStatus) -> None:
        """Connection state changed."""
        self.statusChanged.emit(status)

    def market_message(self, text: str | None, blocking: bool) -> None:
        """A one-line message for the user."""
        self.message.emit(text, blocking)

    # ------------------------------------------------------------ flushing

    def add_flush_hook(self, hook: FlushHook) -> None:
        """Call ``hook(ops)`` in every flush that has chart ops, right before ``chart.apply``.

        ``ops`` are exactly what the chart is about to apply (a Reload first, then Append /
        Replace in time order, one per open time). The hook may return indicator values for
        those bars (id -> rows ``[t_seconds, v...]``); the values of all hooks go to the chart
        in the same ``chart.apply(ops, indicators)`` call (one page batch with the candles).
        A hook that raises is logged and skipped: the candles are applied anyway. Hooks run
        on the GUI thread and must be fast (they add to every flush).
        """
        self._flush_hooks.append(hook)

    @property
    def pending(self) -> bool:
        """True while something waits for the next flush."""
        return bool(self._reload or self._ops or self._trade_buf or self._tickers)

    def flush(self) -> None:
        """Deliver everything buffered now: one ``chart.apply``, one trades batch, one ticker batch."""
        self._timer.stop()
        ops: list[ChartOp] = []
        if self._reload is not None:
            ops.append(self._reload)
            self._reload = None
        if self._ops:
            ops.extend(self._ops.values())
            self._ops.clear()
        trades, self._trade_buf = self._trade_buf, []
        tickers, self._tickers = self._tickers, {}
        if ops:
            self.flush_count += 1
            indicators = self._run_hooks(ops)
            if indicators:
                self._guard(self._chart.apply, ops, indicators)
            else:
                self._guard(self._chart.apply, ops)
            self.flushed.emit(len(ops))
        if trades:
            self._guard(self._trades.add_trades, trades[-self._max_trades :])
        if tickers:
            self._guard(self._watchlist.update_tickers, list(tickers.values()))

    def stop(self) -> None:
        """Stop both timers and drop the buffers for good (shutdown): later events only buffer."""
        self._stopped = True
        self._timer.stop()
        self._feed_timer.stop()
        self._drop_series_buffers()
        self._tickers.clear()

    def _run_hooks(self, ops: Sequence[ChartOp]) -> dict[str, IndicatorRows]:
        merged: dict[str, IndicatorRows] = {}
        for hook in self._flush_hooks:
            try:
                rows = hook(ops)
            except Exception:
                log.exception("flush hook %r failed", hook)
                continue
            if rows:
                merged.update(rows)
        return merged

    def _schedule(self) -> None:
        # Single-shot and started only when idle: an idle app never wakes up, a busy one
        # flushes every FLUSH_MS at most.
        if not self._timer.isActive() and not self._stopped:
            self._timer.start()

    def _drop_series_buffers(self) -> None:
        self._reload = None
        self._ops.clear()
        self._trade_buf.clear()

    def _report_feed(self) -> None:
        now = time.monotonic()
        elapsed = max(now - self._feed_at, 1e-6)
        count, self._count, self._feed_at = self._count, 0, now
        delay: float | None = None
        if count:
            # The worst of the period; clamped: a server clock ahead of ours (or a sped-up
            # simulator) is "no delay".
            delay = max(0.0, self._max_delay_ms)
        self._max_delay_ms = float("-inf")
        # No event in the last period: the delay is unknown (None), not the age of the last one.
        self._guard(self._status.set_feed, delay, count / elapsed)

    def _guard(self, fn: Callable[..., object], *args: Any) -> None:
        # A broken panel must not stop the others, nor the feed (this runs from a timer).
        try:
            fn(*args)
        except Exception:
            log.exception("%s failed", getattr(fn, "__qualname__", fn))
