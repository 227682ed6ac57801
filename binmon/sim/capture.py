"""Raw captures (``binmon record``) as a simulator input: detection, symbols, REST data.

A capture is the JSON-lines file of :mod:`binmon.history.record`: a header
``{"binmon_capture": 1, "url", "streams", "started_ms"}``, then ``{"t", "frame"}`` and
``{"t", "gap"}`` records. ``binmon sim --replay FILE`` takes such a file as well as a
data.binance.vision trades CSV; :func:`is_capture` tells them apart by content.

In capture mode the websocket side sends the recorded frames themselves
(:mod:`binmon.sim.capture_engine`); this module provides the rest:

* :func:`load_capture`: the header, the recorded streams, the first frame's time (where the
  sim clock starts) and one exchangeInfo symbol per symbol named in the streams. A capture
  has no exchangeInfo, so tick and step sizes are guessed from the decimals of the prices and
  quantities in the first :data:`PRESCAN_RECORDS` records (8 decimals when none is seen).
* :class:`CaptureMarket`: what REST serves. ``klines`` answers from the kline frames replayed
  so far, with their values verbatim (only the intervals and symbols that have a kline
  stream in the capture; anything else is an empty list). The 24 h ticker is rolled up from
  those candles (see :meth:`CaptureMarket.ticker_24h`).
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from binmon.core.intervals import DAY_MS, INTERVALS
from binmon.history.record import read_capture
from binmon.sim.clock import Clock
from binmon.sim.config import SimSymbol
from binmon.sim.market import Ticker24h
from binmon.sim.replay import QUOTE_ASSETS

#: Records read at load time to guess each symbol's tick and step sizes.
PRESCAN_RECORDS = 20_000
_KLINE_STRS = ("o", "h", "l", "c", "v", "q", "V", "Q", "B")  # REST row order, minus the ints


def is_capture(path: Path) -> bool:
    """True when ``path`` starts with a binmon capture header line (the content decides, not the name)."""
    with open(path, "rb") as f:
        first = f.readline(1 << 20)
    try:
        header = orjson.loads(first)
    except orjson.JSONDecodeError:
        return False
    return isinstance(header, dict) and "binmon_capture" in header


def stream_symbol(stream: str) -> str | None:
    """The upper-case symbol a stream name is about (``lrcbtc@kline_1m`` -> ``LRCBTC``), or None."""
    sym = stream.partition("@")[0]
    return sym.upper() if sym.isascii() and sym.isalnum() else None


@dataclass(frozen=True)
class Capture:
    """A capture file, summarised by :func:`load_capture` (its records are read lazily)."""

    path: Path
    header: dict[str, Any]
    streams: tuple[str, ...]  # the header's, then any other stream seen in the prescan
    first_ms: int  # receive time of the first frame
    symbols: tuple[SimSymbol, ...]

    def records(self) -> Iterator[dict[str, Any]]:
        """A fresh iterator over the ``{"t", "frame"|"gap"}`` records, in file order.

        It holds the file open: exhaust it or call its ``close()``.
        """
        return read_capture(self.path)[1]


def load_capture(path: Path, prescan: int = PRESCAN_RECORDS) -> Capture:
    """Read a capture's header and first records.

    Raise ValueError when ``path`` is not a capture or holds no frame.
    """
    header, records = read_capture(Path(path))
    first_ms: int | None = None
    streams: dict[str, None] = {}
    raw_streams = header.get("streams")
    if isinstance(raw_streams, list):
        streams.update((s, None) for s in raw_streams if isinstance(s, str))
    decimals: dict[str, list[int]] = {}  # symbol -> [price decimals, qty decimals]
    try:
        for rec in itertools.islice(records, prescan):  # islice pulls at least once: the file closes
            frame = rec.get("frame")
            if not isinstance(frame, str):
                continue
            if first_ms is None:
                first_ms = int(rec["t"])
            _scan_frame(frame, streams, decimals)
        if first_ms is None:  # frames may all lie beyond the prescan window
            first_ms = next((int(r["t"]) for r in records if isinstance(r.get("frame"), str)), None)
    finally:
        close_records(records)
    if first_ms is None:
        raise ValueError(f"{path}: the capture holds no frame")
    names = dict.fromkeys(s for s in map(stream_symbol, streams) if s)
    return Capture(
        Path(path),
        header,
        tuple(streams),
        first_ms,
        tuple(_symbol(n, *decimals.get(n, [-1, -1])) for n in names),
    )


def close_records(records: Iterator[Any]) -> None:
    """Stop reading a record iterator early: ``read_capture``'s holds its file open until closed."""
    close = getattr(records, "close", None)
    if close is not None:
        close()


def _scan_frame(frame: str, streams: dict[str, None], decimals: dict[str, list[int]]) -> None:
    try:
        obj = orjson.loads(frame)
    except orjson.JSONDecodeError:
        return  # a malformed frame says nothing about tick sizes
    if not isinstance(obj, dict) or not isinstance(obj.get("stream"), str):
        return
    stream = obj["stream"]
    streams.setdefault(stream, None)
    sym = stream_symbol(stream)
    data = obj.get("data")
    if sym is None or not isinstance(data, dict):
        return
    dec = decimals.setdefault(sym, [-1, -1])
    prices, qtys = _price_qty_fields(data)
    for i, values in ((0, prices), (1, qtys)):
        for v in values:
            dec[i] = max(dec[i], _decimals(v))


def _price_qty_fields(data: dict[str, Any]) -> tuple[list[Any], list[Any]]:
    """The price and quantity strings of one payload, by event type (keys mean different things)."""
    k = data.get("k")
    if isinstance(k, dict):  # kline: "q" and "Q" are quote volumes, "B" is unused
        return [k.get(f) for f in "ohlc"], [k.get("v"), k.get("V")]
    e = data.get("e")
    if e in ("trade", "aggTrade"):
        return [data.get("p")], [data.get("q")]
    if e == "24hrMiniTicker":
        return [data.get(f) for f in "ohlc"], [data.get("v")]
    prices: list[Any] = []
    qtys: list[Any] = []
    levels = [data.get(f) for f in ("b", "a", "bids", "asks")]
    if any(isinstance(v, list) for v in levels):  # depth: [[price, qty], ...]
        for side in levels:
            for level in side if isinstance(side, list) else ():
                if isinstance(level, list) and len(level) == 2:
                    prices.append(level[0])
                    qtys.append(level[1])
    elif "u" in data:  # bookTicker
        prices, qtys = [data.get("b"), data.get("a")], [data.get("B"), data.get("A")]
    return prices, qtys


def _decimals(s: Any) -> int:
    """Significant decimals of a decimal string (``"0.35270000"`` -> 4); -1 for anything else."""
    if not isinstance(s, str) or not s.replace(".", "", 1).isdigit():
        return -1
    return min(8, len(s.partition(".")[2].rstrip("0")))


def _symbol(name: str, price_dec: int, qty_dec: int) -> SimSymbol:
    quote = next((q for q in QUOTE_ASSETS if name.endswith(q) and len(name) > len(q)), "")

    def step(dec: int) -> str:
        dec = 8 if dec < 0 else dec
        return "1" if dec == 0 else f"0.{'0' * (dec - 1)}1"

    return SimSymbol(
        symbol=name,
        base=name[: len(name) - len(quote)] if quote else name,
        quote=quote,
        price=1.0,  # not served anywhere: the capture's frames carry the prices
        tick_size=step(price_dec),
        step_size=step(qty_dec),
        trade_rate=0.0,
    )


# ---------------------------------------------------------------- REST data


@dataclass(frozen=True, slots=True)
class _Candle:
    row: list[Any]  # the 12 REST columns, values as recorded
    first_id: int
    last_id: int


class CaptureMarket:
    """The market REST sees in capture mode: the capture's symbols and the candles replayed so far.

    Fed by the capture engine (:meth:`observe_kline`) as it sends each kline frame; only
    touched from the server's event loop.
    """

    def __init__(self, symbols: tuple[SimSymbol, ...], clock: Clock) -> None:
        self.symbols = symbols
        self.clock = clock
        self._by_name = {s.symbol: s for s in symbols}
        self._opens: dict[tuple[str, str], list[int]] = {}  # sorted open times
        self._candles: dict[tuple[str, str], dict[int, _Candle]] = {}

    def symbol(self, name: str) -> SimSymbol | None:
        """The symbol called ``name`` (case-insensitive), or None."""
        return self._by_name.get(name.upper())

    def observe_kline(self, k: Any) -> bool:
        """Record one kline frame's ``k`` object (the latest push of a candle wins).

        Returns False, storing nothing, for a ``k`` that is not a well-formed kline (recorded
        garbage is still sent on the websocket, but never served over REST).
        """
        if not isinstance(k, dict):
            return False
        # bool is an int subclass but never a time or a count.
        ints = [v for v in (k.get(f) for f in ("t", "T", "n", "f", "L")) if isinstance(v, int)]
        ints = [v for v in ints if not isinstance(v, bool)]
        strs = [v for v in (k.get(f) for f in _KLINE_STRS) if isinstance(v, str)]
        sym, iv = k.get("s"), k.get("i")
        if not isinstance(sym, str) or iv not in INTERVALS or len(ints) != 5 or len(strs) != 9:
            return False
        t, close_t, n, first, last = ints
        o, h, lo, c, v, q, vb, qb, b = strs
        key = (sym.upper(), str(iv))
        opens = self._opens.setdefault(key, [])
        candles = self._candles.setdefault(key, {})
        if t not in candles:
            bisect.insort(opens, t)
        candles[t] = _Candle([t, o, h, lo, c, v, close_t, q, n, vb, qb, b], first, last)
        return True

    def kline_rows(
        self, symbol: str, interval: str, start_ms: int | None, end_ms: int | None, limit: int
    ) -> list[list[Any]]:
        """``GET /api/v3/klines`` rows from the candles seen so far, selected as Binance does.

        With ``start_ms``: the oldest with ``open_time >= start_ms`` (and ``<= end_ms``);
        without: the newest with ``open_time <= end_ms`` (or any). Oldest first, at most
        ``limit``; the forming candle is included as last pushed.
        """
        key = (symbol.upper(), interval)
        opens = self._opens.get(key, [])
        candles = self._candles.get(key, {})
        hi = len(opens) if end_ms is None else bisect.bisect_right(opens, end_ms)
        if start_ms is not None:
            lo = bisect.bisect_left(opens, start_ms)
            picked = opens[lo : min(hi, lo + limit)]
        else:
            picked = opens[max(0, hi - limit) : hi]
        return [list(candles[t].row) for t in picked]

    def ticker_24h(self, symbol: str) -> Ticker24h:
        """A 24 h ticker rolled up from the finest captured kline interval of ``symbol``.

        It covers the candles that opened in the last 24 h of sim time (so the window starts
        at a candle boundary, not at exactly now - 24 h). Without any captured candle the
        symbol looks idle: prices and volumes 0, ids -1, ``count`` 0.
        """
        name = symbol.upper()
        now = self.clock.now_ms()
        since = now - DAY_MS
        ivs = [iv for iv in INTERVALS if (name, iv) in self._opens]
        rows: list[_Candle] = []
        prev: _Candle | None = None
        if ivs:
            opens, candles = self._opens[(name, ivs[0])], self._candles[(name, ivs[0])]
            lo = bisect.bisect_left(opens, since)
            rows = [candles[t] for t in opens[lo:] if t < now]
            prev = candles[opens[lo - 1]] if lo > 0 else None
        if not rows:
            last = float(prev.row[4]) if prev else 0.0
            return Ticker24h(name, last, last, last, last, 0.0, 0.0, since, now, -1, -1, 0, last, 0.0, 0.0)
        volume = sum(float(c.row[5]) for c in rows)
        quote = sum(float(c.row[7]) for c in rows)
        return Ticker24h(
            symbol=name,
            open=float(rows[0].row[1]),
            high=max(float(c.row[2]) for c in rows),
            low=min(float(c.row[3]) for c in rows),
            close=float(rows[-1].row[4]),
            volume=volume,
            quote_volume=quote,
            open_time=since,
            close_time=now,
            first_id=rows[0].first_id,
            last_id=rows[-1].last_id,
            count=sum(int(c.row[8]) for c in rows),
            prev_close=float(prev.row[4]) if prev else float(rows[0].row[1]),
            last_qty=0.0,  # not in a kline
            weighted_avg_price=quote / volume if volume else 0.0,
        )
