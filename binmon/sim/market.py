"""The simulated exchange's market data: trades, klines and 24 h tickers at the clock's "now".

:class:`Market` is pure (no I/O after construction, no asyncio): the servers ask it for what
Binance would answer. At clock time ``now`` the market consists of the trades with
``time < now``; every answer is a function of those trades only, so the websocket (which
streams ``trades(sym, last_sent, now)``) and REST (``klines``) always agree.

Per symbol a *source* holds the trades: the generator (:mod:`binmon.sim.generator`) or a
replayed archive file (:mod:`binmon.sim.replay`). Sources describe complete minutes as exact
integer :class:`~binmon.sim.bars.Bars`; partial minutes (the one forming now, a window edge)
are summarised from their trades. Klines >= 1m are those rows rolled up; 1s klines come from
the trades through :func:`binmon.core.aggregate.aggregate_trades`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from binmon.core.aggregate import UNIT, aggregate_trades
from binmon.core.intervals import DAY_MS, check_interval, interval_ms, next_open, open_time
from binmon.core.models import Kline
from binmon.sim.bars import MINUTE_MS, Bars, Trades, bars_from_trades, empty_bars, group_starts, rollup
from binmon.sim.clock import Clock
from binmon.sim.config import SimConfig, SimSymbol
from binmon.sim.generator import GeneratedSource
from binmon.sim.replay import ReplaySource, load_replay

#: A halted (non-TRADING) symbol's last trade is this long before the clock's start.
HALT_BEFORE_START_MS = DAY_MS


class UnknownSymbolError(KeyError):
    """The market has no symbol of that name (Binance: -1121 Invalid symbol)."""


@dataclass(frozen=True, slots=True)
class TradeBatch:
    """Trades of one symbol in time order, as parallel numpy arrays (ids consecutive per source)."""

    symbol: str
    ids: npt.NDArray[np.int64]
    prices: npt.NDArray[np.float64]
    qtys: npt.NDArray[np.float64]
    times: npt.NDArray[np.int64]
    buyer_is_maker: npt.NDArray[np.bool_]

    def __len__(self) -> int:
        return int(self.ids.size)


@dataclass(frozen=True, slots=True)
class Ticker24h:
    """The rolling 24 h statistics of ``GET /api/v3/ticker/24hr``, over ``open_time <= t < close_time``.

    Without a trade in the window the prices are the last trade's (0 if none ever), the
    volumes 0, ``count`` 0 and the ids -1, as Binance reports idle symbols.
    """

    symbol: str
    open: float
    high: float
    low: float
    close: float
    volume: float
    quote_volume: float
    open_time: int
    close_time: int
    first_id: int
    last_id: int
    count: int
    prev_close: float
    last_qty: float
    weighted_avg_price: float

    @property
    def price_change(self) -> float:
        """``close - open``."""
        return self.close - self.open

    @property
    def price_change_pct(self) -> float:
        """Change in percent of the open (0 when the open is 0)."""
        return (self.close - self.open) / self.open * 100.0 if self.open else 0.0


class Source(Protocol):
    """Where one symbol's trades come from."""

    listing_ms: int

    def bars(self, m0: int, m1: int) -> Bars:
        """Statistics of the minutes ``m0 <= minute < m1`` that have trades."""
        ...

    def minute_trades(self, minute: int) -> Trades:
        """Every trade of one epoch minute, in time order."""
        ...


class Market:
    """Binance's market data for ``config``'s symbols, as of ``clock.now_ms()``.

    Construction is cheap (sources generate lazily), except that a replay file is read here.
    """

    def __init__(self, config: SimConfig, clock: Clock) -> None:
        self.config = config
        self.clock = clock
        start = clock.start_ms
        listed = config.listing_ms
        if listed is None:
            listed = start - int(config.history_days * DAY_MS)
        listing = listed // MINUTE_MS * MINUTE_MS
        halt = max(listing, (start - HALT_BEFORE_START_MS) // MINUTE_MS * MINUTE_MS)
        symbols = list(config.symbols)
        self._sources: dict[str, Source] = {}
        replayed = load_replay(config) if config.replay is not None else None
        for sym in symbols:
            if replayed is None or sym.symbol != replayed.symbol:
                end = None if sym.trading else halt
                self._sources[sym.symbol] = GeneratedSource(sym, config.seed, listing, end, config.trade_rate)
        if replayed is not None:
            known = {s.symbol: s for s in symbols}
            sym = known.get(replayed.symbol, replayed.derived)
            if sym.symbol not in known:
                symbols.append(sym)
            self._sources[sym.symbol] = ReplaySource(replayed.trades)
        self.symbols: tuple[SimSymbol, ...] = tuple(symbols)
        self._by_name = {s.symbol: s for s in self.symbols}

    # ------------------------------------------------------------ lookups

    def symbol(self, name: str) -> SimSymbol | None:
        """The symbol called ``name`` (case-insensitive), or None."""
        return self._by_name.get(name.upper())

    def listing_ms(self, symbol: str) -> int:
        """Time of the symbol's first possible trade: nothing exists before it.

        Generated symbols: the clock's start minus ``history_days``, floored to the minute
        (their first trade is exactly there); a replayed one: the file's first trade.
        """
        return self._source(symbol).listing_ms

    def _source(self, symbol: str) -> Source:
        src = self._sources.get(symbol.upper())
        if src is None:
            raise UnknownSymbolError(symbol)
        return src

    # ------------------------------------------------------------ trades

    def trades(self, symbol: str, start_ms: int, end_ms: int) -> TradeBatch:
        """Every trade with ``start_ms <= time < end_ms`` and ``time < now``, in time order.

        Asking for a window in one piece or in several gives the same trades.
        Raise UnknownSymbolError for an unknown symbol.
        """
        src = self._source(symbol)
        end = min(end_ms, self.clock.now_ms())
        start = max(start_ms, src.listing_ms)
        name = symbol.upper()
        if start >= end:
            return _batch(name, Trades.concat([]))
        m_a, m_b = start // MINUTE_MS, (end - 1) // MINUTE_MS
        if m_b - m_a <= 2:  # the live path: skip the statistics lookup
            minutes = list(range(m_a, m_b + 1))
        else:  # long windows: only expand the minutes that have trades
            minutes = [m_a, *src.bars(m_a + 1, m_b).minute.tolist(), m_b]
        return _batch(name, Trades.concat([src.minute_trades(m).between(start, end) for m in minutes]))

    # ------------------------------------------------------------ klines

    def klines(
        self, symbol: str, interval: str, start_ms: int | None, end_ms: int | None, limit: int
    ) -> list[Kline]:
        """``GET /api/v3/klines``: at most ``limit`` klines, oldest first, as Binance selects them.

        With ``start_ms``: the oldest klines with ``open_time >= start_ms`` (and ``<= end_ms``
        if given). Without: the newest with ``open_time <= end_ms`` (or now). Only candles
        with trades exist; the one forming now is included with ``closed=False``. Validating
        ``limit`` against Binance's maximum (1000) is the server's job. Raise
        UnknownSymbolError, IntervalError (a ValueError) or ValueError for ``limit < 1``.
        """
        check_interval(interval)
        if limit < 1:
            raise ValueError("limit must be >= 1")
        src = self._source(symbol)
        name = symbol.upper()
        now = self.clock.now_ms()
        last_open = open_time(interval, now - 1 if end_ms is None else min(end_ms, now - 1))
        if start_ms is None:
            first_open = open_time(interval, src.listing_ms)
        else:
            first_open = open_time(interval, start_ms)
            if first_open < start_ms:
                first_open = next_open(interval, first_open)
        if first_open > last_open:
            return []
        span = (max(first_open, src.listing_ms), min(next_open(interval, last_open), now))
        forward = start_ms is not None
        chunks = self._chunks(src, interval, span, limit * interval_ms(interval), forward=forward)
        if interval == "1s":
            return self._second_klines(name, src, span, chunks, now, limit, forward=forward)
        # Only look as far as `limit` candles need: a 1m query must not generate 30 days.
        got: list[Bars] = []
        groups = 0
        for chunk in chunks:
            got.append(chunk)
            groups += group_starts(chunk, interval)[1].size
            if groups >= limit:
                break
        rows = Bars.concat(got if forward else got[::-1])
        _, starts = group_starts(rows, interval)
        if starts.size > limit:
            rows = rows.rows(0, int(starts[limit])) if forward else rows.rows(int(starts[-limit]), len(rows))
        return rollup(name, interval, rows, now)

    def current_kline(self, symbol: str, interval: str) -> Kline | None:
        """The forming ``interval`` kline containing now (``closed=False``); None before its first trade."""
        t = open_time(interval, self.clock.now_ms())
        got = self.klines(symbol, interval, t, None, 1)
        return got[0] if got and got[0].open_time == t else None

    def _chunks(
        self, src: Source, interval: str, span: tuple[int, int], size_ms: int, *, forward: bool
    ) -> Iterator[Bars]:
        """Bars of ``span`` in chunks that double in length, from its oldest or newest end.

        Chunks are cut at ``interval`` candle boundaries (minutes for 1s), so no candle is split.
        """
        unit = "1m" if interval == "1s" else interval
        start, end = span
        while start < end:
            if forward:
                cut = max(open_time(unit, start + size_ms), next_open(unit, open_time(unit, start)))
                cut = min(cut, end)
                yield self._window_bars(src, start, cut)
                start = cut
            else:
                cut = max(start, min(open_time(unit, end - size_ms), open_time(unit, end - 1)))
                yield self._window_bars(src, cut, end)
                end = cut
            size_ms *= 2

    def _second_klines(
        self,
        name: str,
        src: Source,
        span: tuple[int, int],
        chunks: Iterator[Bars],
        now: int,
        limit: int,
        *,
        forward: bool,
    ) -> list[Kline]:
        found: list[list[Kline]] = []
        total = 0
        for chunk in chunks:
            minutes = chunk.minute.tolist()
            for m in minutes if forward else reversed(minutes):
                tr = src.minute_trades(m).between(*span)
                ks = aggregate_trades(
                    name, "1s", tr.ids, tr.prices, tr.qtys, tr.times, tr.buyer_is_maker, closed_before_ms=now
                )
                found.append(ks)
                total += len(ks)
                if total >= limit:
                    break
            if total >= limit:
                break
        if forward:
            return [k for ks in found for k in ks][:limit]
        return [k for ks in reversed(found) for k in ks][-limit:]

    def _window_bars(self, src: Source, start: int, end: int) -> Bars:
        """Per-minute statistics of the trades with ``start <= time < end`` (``end <= now``).

        Whole minutes come from the source; a partial minute at either edge (the one forming
        now, or a window that starts mid-minute) is summarised from its trades.
        """
        if start >= end:
            return empty_bars()
        full_a, full_b = -(-start // MINUTE_MS), end // MINUTE_MS  # whole minutes [full_a, full_b)
        parts: list[Bars] = []
        if start % MINUTE_MS:
            m = start // MINUTE_MS
            parts.append(bars_from_trades(src.minute_trades(m).between(start, end)))
        if full_a < full_b:
            parts.append(src.bars(full_a, full_b))
        if end % MINUTE_MS and end // MINUTE_MS >= full_a:
            m = end // MINUTE_MS
            parts.append(bars_from_trades(src.minute_trades(m).between(m * MINUTE_MS, end)))
        return Bars.concat(parts)

    # ------------------------------------------------------------ ticker

    def ticker_24h(self, symbol: str) -> Ticker24h:
        """The rolling 24 h ticker over the trades with ``now - 24h <= time < now``."""
        src = self._source(symbol)
        now = self.clock.now_ms()
        since = now - DAY_MS
        rows = self._window_bars(src, since, now)
        before = self._last_trade(src, since)
        last = self._last_trade(src, now)
        prev_close = before[0] if before else 0.0
        last_price, last_qty = last if last else (0.0, 0.0)
        if not len(rows):
            return Ticker24h(
                symbol.upper(), *(last_price,) * 4, 0.0, 0.0, since, now, -1, -1, 0, prev_close, last_qty, 0.0
            )
        volume, quote = int(rows.volume.sum(dtype=object)), int(rows.quote.sum(dtype=object))
        return Ticker24h(
            symbol=symbol.upper(),
            open=int(rows.open[0]) / UNIT,
            high=int(rows.high.max()) / UNIT,
            low=int(rows.low.min()) / UNIT,
            close=int(rows.close[-1]) / UNIT,
            volume=volume / UNIT,
            quote_volume=quote / UNIT,
            open_time=since,
            close_time=now,
            first_id=int(rows.first_id[0]),
            last_id=int(rows.last_id[-1]),
            count=int(rows.count.sum()),
            prev_close=prev_close,
            last_qty=last_qty,
            weighted_avg_price=quote / volume if volume else 0.0,
        )

    def _last_trade(self, src: Source, before_ms: int) -> tuple[float, float] | None:
        """Price and qty of the last trade with ``time < before_ms``, or None."""
        m = (before_ms - 1) // MINUTE_MS
        tr = src.minute_trades(m).between(src.listing_ms, before_ms)
        span, lo = DAY_MS // MINUTE_MS, src.listing_ms // MINUTE_MS
        while not len(tr) and m > lo:  # look further back, a growing span at a time
            rows = src.bars(max(lo, m - span), m)
            if len(rows):
                tr = src.minute_trades(int(rows.minute[-1]))
                break
            m, span = m - span, span * 2
        if not len(tr):
            return None
        return float(tr.prices[-1]), float(tr.qtys[-1])


def _batch(symbol: str, tr: Trades) -> TradeBatch:
    return TradeBatch(symbol, tr.ids, tr.prices, tr.qtys, tr.times, tr.buyer_is_maker)
