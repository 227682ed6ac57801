"""The stream pump of the generated (or trades-replay) market: Market trades -> stream frames.

:class:`StreamEngine` is the :class:`~binmon.sim.hub.Hub` that produces each active stream's
frames once per pump tick from the :class:`~binmon.sim.market.Market` (trade, aggTrade,
bookTicker, kline, miniTicker, ``!miniTicker@arr``) and fans them out to the subscribers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from binmon.core.intervals import open_time
from binmon.sim import wire
from binmon.sim.faults import Faults
from binmon.sim.hub import Hub
from binmon.sim.streams import StreamKey, parse_stream

if TYPE_CHECKING:
    from binmon.sim.server import ServerConfig, SimStats

_PROBE_MAX_MS = 60_000


@dataclass
class _KlineState:
    symbol: str
    interval: str
    open_ms: int  # the candle being tracked; finals are pushed for every candle up to now
    probe_ms: int  # while waiting for the candle's first trade: trades before this were none
    next_push_ms: int = 0
    waiting: bool = True  # no trade in the current candle yet: look every tick, cheaply
    sig: tuple[int, int] | None = None  # (trades, last id) of the last forming push
    last: bytes | None = None  # the last frame pushed (for the reorder fault)
    idle_due_s: float = 0.0  # paused clock: monotonic time of the next keep-alive push


class StreamEngine(Hub):
    """Turns the Market into stream frames, once per stream, and fans them out to sessions.

    :meth:`~binmon.sim.hub.Hub.tick` runs every few tens of ms (real time). Trades are fetched
    per symbol as ``market.trades(sym, cursor, now)`` with the cursor moved to ``now``, so
    consecutive pushes neither miss nor repeat a trade. Klines follow Binance: a forming-candle
    push every 2 s of sim time (1 s for ``1s``) when it changed, and at each boundary one final
    ``"x":true`` push per closed candle, taken from ``market.klines`` so live equals history.
    """

    def __init__(
        self, market: Any, clock: Any, config: ServerConfig, faults: Faults, stats: SimStats
    ) -> None:
        super().__init__(clock, config, faults, stats)
        self.market = market
        self._keys: dict[str, StreamKey] = {}  # active streams that carry data
        self._cursor: dict[str, int] = {}  # symbol -> trades sent up to this sim ms
        self._agg_next: dict[str, int] = {}
        self._klines: dict[str, _KlineState] = {}
        self._mini_due: dict[str, int] = {}

    # ------------------------------------------------------------ stream activation

    def _activate(self, name: str, now: int) -> None:
        key = parse_stream(name)
        if key is None or (key.symbol and self.market.symbol(key.symbol) is None):
            return  # accepted, like Binance, but nothing will ever be sent
        self._keys[name] = key
        if key.kind in ("trade", "aggTrade", "bookTicker"):
            self._cursor.setdefault(key.symbol, now)
        elif key.kind == "kline":
            start = open_time(key.interval, now)
            self._klines[name] = _KlineState(key.symbol, key.interval, start, probe_ms=start)
        else:
            self._mini_due[name] = now

    def _deactivate(self, name: str) -> None:
        key = self._keys.pop(name, None)
        if key is None:
            return
        self._klines.pop(name, None)
        self._mini_due.pop(name, None)
        s = key.symbol.lower()
        if key.kind in ("trade", "aggTrade", "bookTicker") and not any(
            f"{s}@{k}" in self._keys for k in ("trade", "aggTrade", "bookTicker")
        ):
            self._cursor.pop(key.symbol, None)

    # ------------------------------------------------------------ the pump

    def produce(self, now: int) -> None:
        """Queue everything due at sim time ``now``: trades, kline pushes, mini tickers."""
        for sym in list(self._cursor):
            self._trades_tick(sym, now)
        for name, st in list(self._klines.items()):
            self._kline_tick(name, st, now)
        if self._mini_due:
            self._mini_tick(now)

    def idle(self, now: int, real_s: float) -> None:
        """Paused clock: every kline stream gets its candle as it stands, unchanged, once per push
        period of real time (Binance keeps pushing a quiet market's kline every 2 s; a client's
        watchdog allows three periods of silence). Trades, book tickers and mini tickers stay
        silent: nothing trades while the replay is paused."""
        for name, st in list(self._klines.items()):
            if real_s < st.idle_due_s:
                continue
            push_s = self._config.kline_push_1s_s if st.interval == "1s" else self._config.kline_push_s
            st.idle_due_s = real_s + push_s
            k = self.market.current_kline(st.symbol, st.interval)
            if k is not None and k.open_time == open_time(st.interval, now):
                self.fan(name, [wire.kline_frame(k, now, closed=False)])
            elif st.last is not None:  # no trade in this candle yet: repeat the last push
                self.fan(name, [st.last])

    def _period_ms(self, sim_s: float) -> int:
        """A push cadence given in sim seconds, but never shorter than ``min_push_interval_s`` real.

        At 100x a 2 s cadence would mean recomputing every forming candle and every 24 h
        ticker 50 times a real second, for a chart that redraws ~10 times a second anyway.
        """
        speed = float(getattr(self.clock, "speed", 1.0))
        return int(max(sim_s, self._config.min_push_interval_s * speed) * 1000)

    def _trades_tick(self, sym: str, now: int) -> None:
        start = self._cursor[sym]
        if now <= start:
            return
        batch = self.market.trades(sym, start, now)
        self._cursor[sym] = now
        if not len(batch):
            return
        s = sym.lower()
        if f"{s}@trade" in self._keys:
            self.fan(f"{s}@trade", wire.trade_frames(sym, batch, now))
        if f"{s}@aggTrade" in self._keys:
            first = self._agg_next.setdefault(sym, int(batch.ids[0]))
            frames = wire.agg_trade_frames(sym, batch, first, now)
            self._agg_next[sym] = first + len(frames)
            self.fan(f"{s}@aggTrade", frames)
        info = self.market.symbol(sym)
        book = wire.synthetic_book(
            int(batch.ids[-1]),
            float(batch.prices[-1]),
            bool(batch.buyer_is_maker[-1]),
            float(info.tick_size),
            float(info.step_size),
        )
        self.books[sym] = book
        if f"{s}@bookTicker" in self._keys:
            self.fan(f"{s}@bookTicker", [wire.book_ticker_frame(sym, book)])

    def _kline_tick(self, name: str, st: _KlineState, now: int) -> None:
        cur_open = open_time(st.interval, now)
        frames: list[bytes] = []
        if cur_open > st.open_ms:
            # Boundary crossed: one final push per closed candle, exactly as REST reports it.
            for k in self.market.klines(st.symbol, st.interval, st.open_ms, cur_open - 1, 1000):
                if st.open_ms <= k.open_time < cur_open:
                    frames.append(wire.kline_frame(k, now, closed=True))
            st.open_ms, st.probe_ms, st.waiting, st.sig = cur_open, cur_open, True, None
        if st.waiting:
            # The new candle appears with its first trade, not up to 2 s later: probe only the
            # trades since the last look, which costs next to nothing while there are none.
            # After a long gap (a fresh subscription to 1M, a clock jump) expanding every trade
            # since the probe would be slow: ask for the candle itself instead.
            if now - st.probe_ms > _PROBE_MAX_MS:
                started = self.market.current_kline(st.symbol, st.interval) is not None
            else:
                started = len(self.market.trades(st.symbol, st.probe_ms, now)) > 0
            st.probe_ms = now
            if started:
                st.waiting, st.next_push_ms = False, now
        if not st.waiting and now >= st.next_push_ms:
            push_s = self._config.kline_push_1s_s if st.interval == "1s" else self._config.kline_push_s
            st.next_push_ms = now + self._period_ms(push_s)
            k = self.market.current_kline(st.symbol, st.interval)
            # Binance sends nothing for an unchanged candle.
            if k is not None and k.open_time == cur_open and (k.trades, k.last_trade_id) != st.sig:
                st.sig = (k.trades, k.last_trade_id)
                frames.append(wire.kline_frame(k, now, closed=False))
        if not frames:
            return
        out: list[bytes] = []
        for f in frames:
            out.append(f)
            if self._faults.duplicate_klines:
                out.append(f)
            if self._faults.reorder_klines and st.last is not None:
                out.append(st.last)
            st.last = f
        self.fan(name, out)

    def _mini_tick(self, now: int) -> None:
        cache: dict[str, Any] = {}

        def ticker(sym: str) -> Any:
            if sym not in cache:
                cache[sym] = self.market.ticker_24h(sym)
            return cache[sym]

        period = self._period_ms(self._config.miniticker_push_s)
        for name, due in list(self._mini_due.items()):
            if now < due:
                continue
            self._mini_due[name] = now + period
            key = self._keys[name]
            if key.kind == "allMiniTickers":
                syms = [s.symbol for s in self.market.symbols if s.status == "TRADING"]
                tickers = [t for t in map(ticker, syms) if t is not None and t.count > 0]
                if tickers:
                    self.fan(name, [wire.mini_ticker_arr(tickers, now)])
            else:
                t = ticker(key.symbol)
                if t is not None and t.count > 0:
                    self.fan(name, [wire.mini_ticker_obj(t, now).encode()])
