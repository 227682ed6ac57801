"""Domain values -> the exact bytes Binance puts on the wire.

Shapes, key order and value types follow the real captures in
``../shared/fixtures/real/cryptofeed`` (``BINANCE.ws.1.0`` for stream frames, ``BINANCE.0`` for
exchangeInfo) and Binance's spot docs for the frames the captures lack (``trade``,
``24hrMiniTicker``): integers for ids and times, ``true``/``false`` flags, and every price or
quantity as a decimal string with 8 places.

Frames are built with f-strings rather than ``json.dumps`` of dicts: it is ~3x faster, keeps
the key order by construction, and every interpolated string is either a symbol (validated to
``[A-Z0-9-_.]``) or a number, so nothing needs escaping. Stream frames come out as ``bytes`` so
one encoding is sent to every subscriber (``websockets.broadcast`` sends bytes without
re-encoding). REST bodies, which are built far less often, go through ``orjson``.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

import numpy as np
import orjson

from binmon.core.models import Kline


class TradeArrays(Protocol):
    """What the encoder needs of a ``Market.trades`` batch (parallel numpy arrays)."""

    ids: Any
    prices: Any
    qtys: Any
    times: Any
    buyer_is_maker: Any

    def __len__(self) -> int: ...


def d8(x: float) -> str:
    """A price or quantity as Binance prints it: a decimal string with exactly 8 places."""
    return f"{x:.8f}"


def dec8(s: str | float) -> str:
    """A decimal given as text (``"0.01"``) normalised to 8 places (``"0.01000000"``), exactly."""
    return f"{Decimal(str(s)).quantize(Decimal('0.00000001')):f}"  # "f": never "1E-8"


def _b(v: bool) -> str:
    return "true" if v else "false"


# ---------------------------------------------------------------- stream payloads


def trade_frames(symbol: str, batch: TradeArrays, event_ms: int) -> list[bytes]:
    """One ``trade`` payload per trade of ``batch`` (Binance never batches trades into one frame).

    ``E`` is ``event_ms`` but never earlier than the trade's own time ``T``.
    """
    out: list[bytes] = []
    ids = np.asarray(batch.ids).tolist()
    prices = np.asarray(batch.prices).tolist()
    qtys = np.asarray(batch.qtys).tolist()
    times = np.asarray(batch.times).tolist()
    makers = np.asarray(batch.buyer_is_maker).tolist()
    for tid, p, q, t, m in zip(ids, prices, qtys, times, makers, strict=True):
        out.append(
            f'{{"e":"trade","E":{max(event_ms, t)},"s":"{symbol}","t":{tid},"p":"{p:.8f}",'
            f'"q":"{q:.8f}","T":{t},"m":{"true" if m else "false"},"M":true}}'.encode()
        )
    return out


def agg_groups(batch: TradeArrays) -> list[tuple[int, int]]:
    """Index ranges ``[first, last]`` of consecutive trades with the same price, time and side.

    That is how Binance forms an aggregate trade (one taker order filled at one price).
    """
    n = len(batch)
    if n == 0:
        return []
    p = np.asarray(batch.prices)
    t = np.asarray(batch.times)
    m = np.asarray(batch.buyer_is_maker)
    # A new group starts wherever any of the three differs from the previous trade.
    starts = np.flatnonzero(np.r_[True, (p[1:] != p[:-1]) | (t[1:] != t[:-1]) | (m[1:] != m[:-1])])
    ends = np.r_[starts[1:] - 1, n - 1]
    return list(zip(starts.tolist(), ends.tolist(), strict=True))


def agg_trade_frames(symbol: str, batch: TradeArrays, first_agg_id: int, event_ms: int) -> list[bytes]:
    """``aggTrade`` payloads for ``batch``, numbered consecutively from ``first_agg_id``.

    The caller keeps the running aggregate id; a group never spans two batches because
    batches are cut by time and a group shares one trade time.
    """
    ids = np.asarray(batch.ids).tolist()
    prices = np.asarray(batch.prices).tolist()
    times = np.asarray(batch.times).tolist()
    makers = np.asarray(batch.buyer_is_maker).tolist()
    qty_units = np.rint(np.asarray(batch.qtys, dtype=np.float64) * 1e8).astype(np.int64)
    csum = np.r_[0, np.cumsum(qty_units)].tolist()
    out: list[bytes] = []
    for k, (i, j) in enumerate(agg_groups(batch)):
        # Sum in integer units of 1e-8 so the total prints exactly like Binance's decimal sum.
        q = (csum[j + 1] - csum[i]) / 1e8
        out.append(
            f'{{"e":"aggTrade","E":{max(event_ms, times[j])},"s":"{symbol}","a":{first_agg_id + k},'
            f'"p":"{prices[i]:.8f}","q":"{q:.8f}","f":{ids[i]},"l":{ids[j]},"T":{times[i]},'
            f'"m":{_b(makers[i])},"M":true}}'.encode()
        )
    return out


def kline_frame(k: Kline, event_ms: int, closed: bool | None = None) -> bytes:
    """A ``kline`` payload for ``k``; ``closed`` overrides ``k.closed`` for the ``x`` flag."""
    x = k.closed if closed is None else closed
    return (
        f'{{"e":"kline","E":{event_ms},"s":"{k.symbol}","k":{{"t":{k.open_time},"T":{k.close_time},'
        f'"s":"{k.symbol}","i":"{k.interval}","f":{k.first_trade_id},"L":{k.last_trade_id},'
        f'"o":"{k.open:.8f}","c":"{k.close:.8f}","h":"{k.high:.8f}","l":"{k.low:.8f}",'
        f'"v":"{k.volume:.8f}","n":{k.trades},"x":{_b(x)},"q":"{k.quote_volume:.8f}",'
        f'"V":"{k.taker_buy_base:.8f}","Q":"{k.taker_buy_quote:.8f}","B":"0"}}}}'
    ).encode()


@dataclass(frozen=True, slots=True)
class Book:
    """A synthetic best bid/ask (the sim has no order book: it brackets the last trade)."""

    update_id: int
    bid: float
    bid_qty: float
    ask: float
    ask_qty: float


def book_ticker_frame(symbol: str, book: Book) -> bytes:
    """A spot ``bookTicker`` payload: no ``e`` and no ``E``, as in the real capture."""
    return (
        f'{{"u":{book.update_id},"s":"{symbol}","b":"{book.bid:.8f}","B":"{book.bid_qty:.8f}",'
        f'"a":"{book.ask:.8f}","A":"{book.ask_qty:.8f}"}}'
    ).encode()


def mini_ticker_obj(t: Any, event_ms: int) -> str:
    """One ``24hrMiniTicker`` object (text) from a ``Ticker24h``-like value."""
    return (
        f'{{"e":"24hrMiniTicker","E":{event_ms},"s":"{t.symbol}","c":"{t.close:.8f}",'
        f'"o":"{t.open:.8f}","h":"{t.high:.8f}","l":"{t.low:.8f}","v":"{t.volume:.8f}",'
        f'"q":"{t.quote_volume:.8f}"}}'
    )


def mini_ticker_arr(tickers: list[Any], event_ms: int) -> bytes:
    """The ``!miniTicker@arr`` payload: a JSON array of mini tickers."""
    return ("[" + ",".join(mini_ticker_obj(t, event_ms) for t in tickers) + "]").encode()


def server_shutdown_frame(event_ms: int) -> bytes:
    """The ``serverShutdown`` announcement (sent unwrapped, also on combined connections)."""
    return f'{{"e":"serverShutdown","E":{event_ms}}}'.encode()


def combined(stream: str, payload: bytes) -> bytes:
    """Wrap a payload for a combined-stream connection: ``{"stream":..,"data":..}``."""
    return b'{"stream":"' + stream.encode() + b'","data":' + payload + b"}"


# ---------------------------------------------------------------- control replies


def result_reply(req_id: Any, result: Any = None) -> bytes:
    """``{"result":..,"id":N}``: a control frame's success reply."""
    return orjson.dumps({"result": result, "id": req_id})


def error_reply(req_id: Any, code: int, msg: str) -> bytes:
    """``{"error":{"code":..,"msg":..},"id":N}``: a refused control frame."""
    return orjson.dumps({"error": {"code": code, "msg": msg}, "id": req_id})


# ---------------------------------------------------------------- REST rows


def kline_row(k: Kline) -> list[Any]:
    """One ``/api/v3/klines`` row: 12 columns, times and trade count as numbers, the rest strings."""
    return [
        k.open_time,
        d8(k.open),
        d8(k.high),
        d8(k.low),
        d8(k.close),
        d8(k.volume),
        k.close_time,
        d8(k.quote_volume),
        k.trades,
        d8(k.taker_buy_base),
        d8(k.taker_buy_quote),
        "0",
    ]


_MAX_PRICE = "1000000.00000000"
_MIN_NOTIONAL = "0.00010000"


def symbol_info(s: Any) -> dict[str, Any]:
    """One exchangeInfo symbol in the shape of the real capture (2021 spot keys and filters)."""
    tick, step = dec8(s.tick_size), dec8(s.step_size)
    return {
        "symbol": s.symbol,
        "status": s.status,
        "baseAsset": s.base,
        "baseAssetPrecision": 8,
        "quoteAsset": s.quote,
        "quotePrecision": 8,
        "quoteAssetPrecision": 8,
        "baseCommissionPrecision": 8,
        "quoteCommissionPrecision": 8,
        "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"],
        "icebergAllowed": True,
        "ocoAllowed": True,
        "quoteOrderQtyMarketAllowed": True,
        "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": False,
        "filters": [
            {"filterType": "PRICE_FILTER", "minPrice": tick, "maxPrice": _MAX_PRICE, "tickSize": tick},
            {"filterType": "PERCENT_PRICE", "multiplierUp": "5", "multiplierDown": "0.2", "avgPriceMins": 5},
            {"filterType": "LOT_SIZE", "minQty": step, "maxQty": "9000000.00000000", "stepSize": step},
            {"filterType": "MIN_NOTIONAL", "minNotional": _MIN_NOTIONAL, "applyToMarket": True,
             "avgPriceMins": 5},
            {"filterType": "ICEBERG_PARTS", "limit": 10},
            {"filterType": "MARKET_LOT_SIZE", "minQty": "0.00000000", "maxQty": "100000.00000000",
             "stepSize": "0.00000000"},
            {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": 200},
            {"filterType": "MAX_NUM_ALGO_ORDERS", "maxNumAlgoOrders": 5},
        ],
        "permissions": ["SPOT"],
    }  # fmt: skip


def ticker_24h_obj(t: Any, book: Book | None, last_qty: float) -> dict[str, Any]:
    """One ``/api/v3/ticker/24hr`` object (FULL type) from a ``Ticker24h``-like value."""
    change = t.close - t.open
    pct = change / t.open * 100.0 if t.open else 0.0
    wavg = t.quote_volume / t.volume if t.volume else 0.0
    prev_close = getattr(t, "prev_close", None)
    return {
        "symbol": t.symbol,
        "priceChange": d8(change),
        "priceChangePercent": f"{pct:.3f}",
        "weightedAvgPrice": d8(wavg),
        "prevClosePrice": d8(t.open if prev_close is None else prev_close),
        "lastPrice": d8(t.close),
        "lastQty": d8(last_qty),
        "bidPrice": d8(book.bid if book else t.close),
        "bidQty": d8(book.bid_qty if book else 0.0),
        "askPrice": d8(book.ask if book else t.close),
        "askQty": d8(book.ask_qty if book else 0.0),
        "openPrice": d8(t.open),
        "highPrice": d8(t.high),
        "lowPrice": d8(t.low),
        "volume": d8(t.volume),
        "quoteVolume": d8(t.quote_volume),
        "openTime": int(t.open_time),
        "closeTime": int(t.close_time),
        "firstId": int(t.first_id),
        "lastId": int(t.last_id),
        "count": int(t.count),
    }


def synthetic_book(update_id: int, price: float, buyer_is_maker: bool, tick: float, step: float) -> Book:
    """Best bid/ask around a trade: the taker hit the bid (seller aggressor) or lifted the ask.

    Quantities are a deterministic function of ``update_id`` so the same trade always gives the
    same book, rounded to ``step``.
    """
    h = (update_id * 2654435761) & 0xFFFFFFFF
    bid_qty = _round_step(1.0 + (h % 5000) / 100.0, step)
    ask_qty = _round_step(1.0 + ((h >> 13) % 5000) / 100.0, step)
    if buyer_is_maker:
        bid, ask = price, price + tick
    else:
        bid, ask = max(price - tick, tick), price
    return Book(update_id, bid, bid_qty, ask, ask_qty)


def _round_step(x: float, step: float) -> float:
    if step <= 0:
        return x
    return max(round(round(x / step) * step, 8), step)
