"""The market service: one symbol and interval on screen, fed live, with no Qt.

:class:`MarketService` owns the REST client and the stream client. It loads exchangeInfo
(retrying in the background with backoff while Binance is unreachable), keeps the current
``(symbol, interval)`` as a :class:`~binmon.core.candles.CandleSeries`, and turns everything
into calls on a :class:`MarketSink` (the Qt adapter in the app, a recorder in tests), always on
the event loop's thread.

Switching is ordered so that no stale bar can reach the sink: the old kline and trade streams
are unsubscribed and the series replaced *before* the new history is loaded, live klines are
only accepted for the current series, and every awaited step re-checks a generation counter
so a switch overtaken by a newer one (or a scroll-back page for an old symbol) is dropped.
The history is seeded into the stream client, which backfills from the last closed bar before
passing live klines, so no candle is lost between the REST load and the subscription.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Coroutine, Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from binmon.binance.backoff import backoff
from binmon.binance.codec import MINI_TICKER_ALL, kline_stream, trade_stream
from binmon.binance.errors import BinanceAPIError, BinanceError
from binmon.binance.rest import RestClient
from binmon.binance.stream import StreamClient
from binmon.core.candles import CandleSeries, ChartOp
from binmon.core.events import ConnectionStatus
from binmon.core.intervals import INTERVALS
from binmon.core.models import (
    Kline,
    KlineEvent,
    MiniTicker,
    MiniTickerEvent,
    StreamEvent,
    SymbolInfo,
    TradeEvent,
)
from binmon.history.backfill import rest_backfill

if TYPE_CHECKING:
    from binmon.services.history import HistorySource

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Bars of history loaded on a switch, and per scroll-back page (one REST request each).
HISTORY_BARS = 1000


class MarketSink(Protocol):
    """What the service reports. Called on the event loop's thread; must return quickly."""

    def market_switching(self, symbol: SymbolInfo, interval: str) -> None:
        """A switch started: drop anything buffered for the previous series."""

    def market_history(self, symbol: str, interval: str, bars: Sequence[Kline]) -> None:
        """The history of the new series is loaded (sorted, unique): live ops follow."""

    def market_older(self, symbol: str, interval: str, bars: Sequence[Kline]) -> None:
        """Older bars (scroll-back) to prepend; all older than every bar shown."""

    def market_ops(self, ops: Sequence[ChartOp]) -> None:
        """Chart operations from a live (or backfilled) kline of the current series."""

    def market_trade(self, trade: TradeEvent) -> None:
        """A trade of the current symbol."""

    def market_tickers(self, tickers: Sequence[MiniTicker]) -> None:
        """A ``!miniTicker@arr`` batch (the symbols that changed)."""

    def market_feed(self, event_time_ms: int) -> None:
        """A stream event was received (for feed delay and message rate)."""

    def market_status(self, status: ConnectionStatus) -> None:
        """The stream connection's state changed."""

    def market_symbols(self, symbols: Mapping[str, SymbolInfo]) -> None:
        """exchangeInfo loaded: every symbol by name."""

    def market_message(self, text: str | None, blocking: bool) -> None:
        """A one-line message. ``blocking`` ones describe why no chart can be shown (offline,
        loading) and are cleared with ``None``; the others are passing notices."""


class MarketService:
    """See the module docstring. Build, :meth:`start`, then :meth:`request_switch`; :meth:`close`."""

    def __init__(
        self,
        rest: RestClient,
        ws_url: str,
        sink: MarketSink,
        *,
        stream_factory: Callable[..., StreamClient] = StreamClient,
        backoff_factory: Callable[[], Iterator[float]] = backoff,
        history_bars: int = HISTORY_BARS,
        history: HistorySource | None = None,
        save_every_s: float = 5.0,
    ) -> None:
        """``stream_factory(ws_url, on_event=, on_status=, backfill=)`` builds the stream client.

        With ``history`` (the local store), a switch shows the stored bars at once, then fills
        the tail from the exchange through it; closed live candles are saved into it every
        ``save_every_s`` (one transaction each time), and on :meth:`close`.
        """
        self.rest = rest
        self.sink = sink
        self._backoff = backoff_factory
        self._history_bars = history_bars
        self.history = history
        self._save_every_s = save_every_s
        self._unsaved: list[Kline] = []  # closed live candles waiting to be stored
        # Set on close: a history download running on a worker thread stops at its next page.
        self._cancel = threading.Event()
        self._stream = stream_factory(
            ws_url, on_event=self._on_event, on_status=sink.market_status, backfill=rest_backfill(rest)
        )
        self.symbols: dict[str, SymbolInfo] = {}
        self.series: CandleSeries | None = None  # the series on screen once its history is loaded
        self.current: tuple[str, str] | None = None  # what is on screen or being loaded
        self._wanted: tuple[str, str] | None = None
        self.generation = 0
        self._older_done = False  # REST has nothing older than the series' first bar
        self._tasks: set[asyncio.Task[None]] = set()
        self._switch_task: asyncio.Task[None] | None = None
        self._older_task: asyncio.Task[None] | None = None
        self._run_task: asyncio.Task[None] | None = None
        self._closed = False
        # Other services (alerts) that watch the same stream client: they get every event after
        # this service, and the streams they need survive a symbol switch (see set_extra_streams).
        self._listeners: list[Callable[[StreamEvent], None]] = []
        self._extra: dict[str, frozenset[str]] = {}

    # ------------------------------------------------------------ lifetime

    @property
    def stream(self) -> StreamClient:
        """The stream client (its ``subscriptions`` and ``stats`` are useful to tests and benchmarks)."""
        return self._stream

    @property
    def pick(self) -> tuple[str, str] | None:
        """(symbol, interval) shown, being loaded, or waiting for exchangeInfo to be known."""
        return self.current or self._wanted

    @property
    def ready(self) -> bool:
        """True once exchangeInfo is loaded."""
        return bool(self.symbols)

    async def start(self, symbol: str, interval: str) -> None:
        """Start the stream client and the exchangeInfo loader; show ``symbol`` once it is known."""
        self._wanted = (symbol.upper(), interval)
        self._run_task = asyncio.create_task(self._stream.run(), name="binmon-stream")
        await self._stream.subscribe([MINI_TICKER_ALL])
        self._spawn(self._bootstrap(), "binmon-exchange-info")
        if self.history is not None:
            self._spawn(self._save_loop(self._save_every_s), "binmon-save-candles")

    async def close(self) -> None:
        """Cancel pending work, close the stream client (and its socket). Idempotent."""
        self._closed = True
        self._cancel.set()
        tasks = list(self._tasks)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._stream.close()
        if self._run_task is not None:
            await asyncio.gather(self._run_task, return_exceptions=True)
        await self._save_unsaved()  # the stream is closed: nothing is added after this

    # ------------------------------------------------------------ commands

    def request_reload(self) -> None:
        """Load the current series again (e.g. after a download filled the store under it)."""
        if self.current is not None:
            self.request_switch(*self.current, force=True)

    def request_switch(self, symbol: str, interval: str | None = None, *, force: bool = False) -> None:
        """Show ``symbol`` at ``interval`` (default: the current one), replacing any switch in flight.

        Unknown symbols and intervals are reported with a passing message; nothing changes then.
        Before exchangeInfo is loaded the request is remembered and done when it is.
        """
        symbol = symbol.strip().upper()
        interval = interval or (self.current or self._wanted or ("", "1m"))[1]
        if interval not in INTERVALS:
            self.sink.market_message(f"Unknown interval {interval!r}", False)
            return
        if not self.ready:
            self._wanted = (symbol, interval)
            return
        info = self.symbols.get(symbol)
        if info is None:
            self.sink.market_message(f"Unknown symbol {symbol!r}: staying on {self._current_name()}", False)
            return
        if (symbol, interval) == self.current and not force:
            return
        if self._switch_task is not None:
            self._switch_task.cancel()
        self._switch_task = self._spawn(self.switch(info, interval), f"binmon-switch-{symbol}")

    def request_older(self) -> None:
        """Load one page of bars before the first one shown (no-op while one is loading or at the start)."""
        if self.series is None or self._older_done or (self._older_task and not self._older_task.done()):
            return
        self._older_task = self._spawn(self.load_older(), "binmon-older")

    async def switch(self, info: SymbolInfo, interval: str) -> None:
        """Swap the streams to ``info.symbol`` at ``interval``: unsubscribe, load history, seed, subscribe."""
        self.generation += 1
        gen = self.generation
        self.current = (info.symbol, interval)
        self.series = None  # live klines of the old series are dropped from here on
        self._older_done = False
        self.sink.market_switching(info, interval)
        # Everything but the ticker array goes, including streams of a switch that was
        # overtaken half-way: no stream of an earlier symbol can leak.
        await self._stream.unsubscribe(self._stream.subscriptions - {MINI_TICKER_ALL} - self.extra_streams())
        self.sink.market_message(f"Loading {info.symbol} {interval}…", True)
        history = self.history
        if history is None:
            bars = await self._retrying(
                lambda: self.rest.klines(info.symbol, interval, limit=self._history_bars),
                f"history of {info.symbol} {interval}",
                gen,
            )
        else:
            bars = await self._load_from_history(history, info.symbol, interval, gen)
        if bars is None:
            return
        if bars and bars[-1].closed:
            # Only a row followed by another one is certainly final: the REST client's "closed"
            # for the newest row is an estimate of the server's clock (seen wrong against a
            # sped-up simulator under load). Demoted, it gets replaced by the stream's final
            # version, and the seed below backfills from the row before it.
            bars = [*bars[:-1], replace(bars[-1], closed=False)]
        series = CandleSeries(info.symbol, interval)
        series.merge(bars)
        self.series = series
        self.sink.market_history(info.symbol, interval, series.bars)
        self.sink.market_message(None, True)
        kstream = kline_stream(info.symbol, interval)
        if series.last_closed_open_time is not None:
            # A candle closing between the REST load and the subscription is never pushed
            # live: the stream client backfills from our last closed bar first.
            self._stream.seed(kstream, series.last_closed_open_time)
        await self._stream.subscribe([kstream, trade_stream(info.symbol)])

    async def _load_from_history(
        self, history: HistorySource, symbol: str, interval: str, gen: int
    ) -> list[Kline] | None:
        """Stored bars at once (shown), then the tail filled from the exchange; None if overtaken."""
        loop = asyncio.get_running_loop()
        n = self._history_bars
        try:
            cached = await loop.run_in_executor(None, history.cached, symbol, interval, n)
        except Exception as exc:  # a broken store must not keep the chart from the exchange
            log.error("reading stored candles of %s %s failed", symbol, interval, exc_info=exc)
            self.sink.market_message(f"Could not read stored candles: {_one_line(exc)}", False)
            cached = []
        if gen != self.generation:
            return None
        if cached:
            series = CandleSeries(symbol, interval)
            series.merge(cached)
            self.series = series
            self.sink.market_history(symbol, interval, series.bars)
            self.sink.market_message(None, True)
            self.sink.market_message(
                f"Showing stored {symbol} {interval}; updating from the exchange…", False
            )
        return await self._retrying(
            lambda: history.fill_tail(symbol, interval, n, self._cancel),
            f"history of {symbol} {interval}",
            gen,
        )

    async def _save_loop(self, period_s: float) -> None:
        """Store closed live candles every ``period_s`` (batched: one transaction each time)."""
        while True:
            await asyncio.sleep(period_s)
            await self._save_unsaved()

    async def _save_unsaved(self) -> None:
        history, batch = self.history, self._unsaved
        if history is None or not batch:
            return
        self._unsaved = []
        try:
            await asyncio.get_running_loop().run_in_executor(None, history.save, batch)
        except Exception as exc:
            log.error("storing %d live candles failed", len(batch), exc_info=exc)
            self.sink.market_message(f"Could not store live candles: {_one_line(exc)}", False)

    async def load_older(self) -> None:
        """Fetch up to ``history_bars`` bars before the first bar and report them (scroll-back)."""
        series, gen = self.series, self.generation
        if series is None or not len(series):
            return
        first = series.bars[0].open_time
        loop = asyncio.get_running_loop()
        history = self.history
        try:
            if history is not None:
                page = await loop.run_in_executor(
                    None, history.older, series.symbol, series.interval, first, self._history_bars
                )
            else:
                page = await loop.run_in_executor(
                    None,
                    lambda: self.rest.klines(
                        series.symbol, series.interval, end_ms=first - 1, limit=self._history_bars
                    ),
                )
        except BinanceError as exc:
            self.sink.market_message(f"Could not load older bars: {_one_line(exc)}", False)
            return
        if gen != self.generation or self._closed:
            return
        older = [k for k in page if k.open_time < first]
        if not older:
            self._older_done = True
            return
        # Merged so later reloads keep them; the chart gets them as a prepend, not a reload.
        series.merge(older)
        self.sink.market_older(series.symbol, series.interval, series.bars[: len(older)])

    # ------------------------------------------------------------ sharing the stream client

    def add_listener(self, callback: Callable[[StreamEvent], None]) -> None:
        """Also pass every stream event to ``callback`` (on the loop, after this service's own
        handling; its exceptions are logged, never fatal to the feed)."""
        self._listeners.append(callback)

    def remove_listener(self, callback: Callable[[StreamEvent], None]) -> None:
        """Stop passing events to ``callback`` (no error if absent)."""
        if callback in self._listeners:
            self._listeners.remove(callback)

    def extra_streams(self) -> frozenset[str]:
        """Streams other owners need (kept subscribed across symbol switches)."""
        return frozenset().union(*self._extra.values())

    async def set_extra_streams(self, owner: str, streams: Iterable[str]) -> None:
        """Make ``owner`` need exactly ``streams`` (names as :func:`kline_stream` makes them).

        New ones are subscribed; ones no owner needs any more are unsubscribed unless this
        service shows them (the chart's kline and trade streams, the ticker array), so the
        two sets never take a stream from each other.
        """
        before = self.extra_streams()
        self._extra[owner] = frozenset(s.lower() for s in streams)
        after = self.extra_streams()
        if after - before:
            await self._stream.subscribe(after - before)
        mine = {MINI_TICKER_ALL}
        if self.current is not None:
            mine |= {kline_stream(*self.current), trade_stream(self.current[0])}
        gone = (before - after) - mine
        if gone:
            await self._stream.unsubscribe(gone)

    # ------------------------------------------------------------ stream events (hot path)

    def _on_event(self, ev: StreamEvent) -> None:
        self._handle(ev)
        for callback in self._listeners:
            try:
                callback(ev)
            except Exception:
                log.exception("stream listener %r raised; the feed goes on", callback)

    def _handle(self, ev: StreamEvent) -> None:
        sink = self.sink
        if isinstance(ev, KlineEvent):
            sink.market_feed(ev.event_time)
            series = self.series
            k = ev.kline
            if series is not None and k.symbol == series.symbol and k.interval == series.interval:
                ops = series.apply(k)
                if ops:
                    sink.market_ops(ops)
                    if k.closed and self.history is not None:
                        self._unsaved.append(k)
        elif isinstance(ev, TradeEvent):
            sink.market_feed(ev.event_time)
            cur = self.current
            if cur is not None and ev.symbol == cur[0] and self.series is not None:
                sink.market_trade(ev)
        elif isinstance(ev, MiniTickerEvent) and ev.tickers:
            sink.market_feed(ev.tickers[0].event_time)
            sink.market_tickers(ev.tickers)

    # ------------------------------------------------------------ helpers

    async def _bootstrap(self) -> None:
        info = await self._retrying(self.rest.exchange_info, "exchange info", None)
        if info is None:
            return
        self.symbols = {s.symbol: s for s in info.symbols}
        self.sink.market_symbols(self.symbols)
        self.sink.market_message(None, True)
        symbol, interval = self._wanted or ("BTCUSDT", "1m")
        if symbol not in self.symbols:
            fallback = next((s.symbol for s in info.symbols if s.trading), None)
            self.sink.market_message(f"Unknown symbol {symbol!r}; showing {fallback}", False)
            if fallback is None:
                return
            symbol = fallback
        self.request_switch(symbol, interval)

    async def _retrying(self, fetch: Callable[[], T], what: str, gen: int | None) -> T | None:
        """``fetch()`` in an executor until it works; None when overtaken by a newer switch.

        Network trouble is reported as a blocking one-line message and retried with backoff
        (Binance unreachable must never become a traceback); an API error such as an unknown
        symbol is reported once and not retried.
        """
        loop = asyncio.get_running_loop()
        delays = self._backoff()
        while True:
            try:
                return await loop.run_in_executor(None, fetch)
            except BinanceAPIError as exc:
                if exc.status < 500 and exc.status not in (418, 429):
                    self.sink.market_message(f"Could not load {what}: {_one_line(exc)}", True)
                    return None
                err: BinanceError = exc
            except BinanceError as exc:
                err = exc
            if gen is not None and gen != self.generation:
                return None
            delay = next(delays)
            log.info("loading %s failed (%s); retrying in %.1f s", what, err, delay)
            text = _one_line(err)
            # NetworkError texts already name the host; API errors (5xx, 429) do not.
            where = "" if self.rest.host in text else f"{self.rest.host}: "
            self.sink.market_message(
                f"Offline — {where}{text[:1].upper()}{text[1:]}. Retrying in {delay:.1f} s "
                "(File ▸ Use demo market works without a network)",
                True,
            )
            await asyncio.sleep(delay)
            if gen is not None and gen != self.generation:
                return None

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            log.error("%s failed", task.get_name(), exc_info=exc)
            self.sink.market_message(f"Internal error in {task.get_name()}: {_one_line(exc)}", False)

    def _current_name(self) -> str:
        return f"{self.current[0]} {self.current[1]}" if self.current else "nothing"


def _one_line(exc: BaseException | None) -> str:
    return " ".join(str(exc).split())[:300]
