"""Decoders for Binance REST bodies and archive rows, and the kline row encoder. Pure, no I/O.

Kline rows have the same 12 columns whether they come from ``GET /api/v3/klines``
(JSON: ints for times and counts, decimal strings for the rest) or from a
data.binance.vision CSV (all strings), so one decoder takes both. Bad input raises
:class:`~binmon.binance.errors.ProtocolError` naming what was wrong; it never
produces a half-valid candle.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from binmon.binance.errors import BinanceAPIError, IPBannedError, ProtocolError, RateLimitedError
from binmon.binance.streams import exchange_symbol
from binmon.core.intervals import check_interval
from binmon.core.models import ExchangeInfo, Kline, RateLimit, SymbolInfo

#: Spot archive files switched to microsecond timestamps on 2025-01-01. A millisecond
#: time of 10**14 would be in the year 5138, so anything at or above it is microseconds.
MICROSECONDS_FROM = 10**14

_ROW_COLUMNS = (
    "open_time",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "close_time",
    "quote_volume",
    "trades",
    "taker_buy_base",
    "taker_buy_quote",
    "ignore",
)
_INT_COLUMNS = frozenset((0, 6, 8))


def _to_int(v: object) -> int:
    # JSON rows carry ints, CSV rows digit strings. Bools (an int subclass), floats and
    # signed strings are refused: none of them is a time or a trade count Binance sends.
    if type(v) is int:
        return v
    if type(v) is str and v.isascii() and v.isdigit():
        return int(v)
    raise TypeError(f"expected an integer, got {v!r:.40}")


def _to_float(v: object) -> float:
    if isinstance(v, str | int | float) and not isinstance(v, bool):
        f = float(v)
        # f - f is 0.0 for every finite float and NaN for inf/NaN: one test for both.
        if f - f == 0.0:
            return f
        raise ValueError(f"not a finite number: {v!r:.40}")
    raise TypeError(f"expected a decimal string, got {v!r:.40}")


def load_json(body: bytes | str, what: str) -> Any:
    """Parse a JSON body; ProtocolError (naming ``what``) when it is not JSON."""
    try:
        return orjson.loads(body)
    except (orjson.JSONDecodeError, TypeError) as exc:
        raise ProtocolError(f"{what}: not valid JSON ({exc})") from None


def _explain_row(row: Sequence[object]) -> str:
    """Name the first bad column of a kline row (the slow path, only after a failure)."""
    for i, v in enumerate(row[:11]):
        try:
            _to_int(v) if i in _INT_COLUMNS else _to_float(v)
        except (TypeError, ValueError) as exc:
            return f"column {i} ({_ROW_COLUMNS[i]}): {exc}"
    return "close_time before open_time"


def _decode_row(symbol: str, interval: str, row: object, server_time_ms: int | None) -> Kline:
    if not isinstance(row, list | tuple) or len(row) != 12:
        raise ProtocolError(f"kline row must be a list of 12 columns, got {row!r:.200}")
    try:
        ot = _to_int(row[0])
        ct = _to_int(row[6])
        if ot >= MICROSECONDS_FROM:
            ot //= 1000
        if ct >= MICROSECONDS_FROM:
            ct //= 1000
        if ct < ot:
            raise ValueError("close_time before open_time")
        return Kline(
            symbol,
            interval,
            ot,
            ct,
            _to_float(row[1]),
            _to_float(row[2]),
            _to_float(row[3]),
            _to_float(row[4]),
            _to_float(row[5]),
            _to_float(row[7]),
            _to_int(row[8]),
            _to_float(row[9]),
            _to_float(row[10]),
            server_time_ms is None or ct < server_time_ms,
        )
    except (TypeError, ValueError):
        raise ProtocolError(f"bad {symbol} {interval} kline row {row!r:.200}: {_explain_row(row)}") from None


def decode_kline_row(
    symbol: str, interval: str, row: Sequence[object], server_time_ms: int | None = None
) -> Kline:
    """One REST / archive kline row (12 columns) -> :class:`Kline`.

    Times may be ints or digit strings; microsecond times (spot archives from 2025)
    are converted to ms. ``closed`` is ``close_time < server_time_ms``, or True when
    ``server_time_ms`` is None (archive rows are all final). The symbol's ASCII letters
    are upper-cased.
    Raises ProtocolError on a bad row, IntervalError (a ValueError) on a bad interval.
    """
    return _decode_row(exchange_symbol(symbol), check_interval(interval), row, server_time_ms)


def decode_klines(symbol: str, interval: str, rows: object, server_time_ms: int | None = None) -> list[Kline]:
    """A ``GET /api/v3/klines`` answer (parsed JSON, or the raw bytes / str body) -> klines.

    Rows keep their order; see :func:`decode_kline_row` for each row. Raises
    ProtocolError if the body is not a JSON array or any row is bad.
    """
    if isinstance(rows, bytes | str):
        rows = load_json(rows, "klines")
    if not isinstance(rows, list):
        raise ProtocolError(f"klines: expected a JSON array of rows, got {rows!r:.200}")
    symbol = exchange_symbol(symbol)
    check_interval(interval)
    return [_decode_row(symbol, interval, row, server_time_ms) for row in rows]


def kline_to_row(k: Kline) -> list[object]:
    """Inverse of :func:`decode_kline_row`: Binance's 12 columns, decimals as 8-place strings.

    Written with ``csv.writer`` it reproduces a data.binance.vision (pre-2025, ms)
    kline CSV line. Exact for values with at most ~15 significant digits (float's
    limit): a volume like ``123456789.12345678`` comes back rounded.
    """
    return [
        k.open_time,
        f"{k.open:.8f}",
        f"{k.high:.8f}",
        f"{k.low:.8f}",
        f"{k.close:.8f}",
        f"{k.volume:.8f}",
        k.close_time,
        f"{k.quote_volume:.8f}",
        k.trades,
        f"{k.taker_buy_base:.8f}",
        f"{k.taker_buy_quote:.8f}",
        "0",
    ]


# ---------------------------------------------------------------- exchangeInfo


def _str_field(obj: dict[str, Any], key: str) -> str:
    v = obj[key]
    if not isinstance(v, str):
        raise TypeError(f"{key} must be a string, got {v!r:.40}")
    return v


def _step_field(obj: dict[str, Any], key: str) -> str:
    v = _str_field(obj, key)
    try:
        negative = _to_float(v) < 0
    except ValueError:
        raise ValueError(f"{key} is not a decimal: {v!r:.40}") from None
    if negative:
        raise ValueError(f"{key} is negative: {v!r}")
    return v


def _int_field(obj: dict[str, Any], key: str) -> int:
    v = obj[key]
    if type(v) is not int:
        raise TypeError(f"{key} must be an integer, got {v!r:.40}")
    return v


def _decode_symbol(s: object) -> SymbolInfo:
    if not isinstance(s, dict):
        raise TypeError(f"symbol entry must be an object, got {s!r:.60}")
    tick, step = "0.00000001", "0.00000001"
    filters = s.get("filters", [])
    if not isinstance(filters, list):
        raise TypeError("filters must be a list")
    for f in filters:
        if not isinstance(f, dict):
            raise TypeError(f"filter must be an object, got {f!r:.60}")
        kind = f.get("filterType")
        if kind == "PRICE_FILTER":
            tick = _step_field(f, "tickSize")
        elif kind == "LOT_SIZE":
            step = _step_field(f, "stepSize")
    return SymbolInfo(
        symbol=_str_field(s, "symbol"),
        status=_str_field(s, "status"),
        base_asset=_str_field(s, "baseAsset"),
        quote_asset=_str_field(s, "quoteAsset"),
        tick_size=tick,
        step_size=step,
    )


def _decode_rate_limit(r: object) -> RateLimit:
    if not isinstance(r, dict):
        raise TypeError(f"rate limit entry must be an object, got {r!r:.60}")
    return RateLimit(
        kind=_str_field(r, "rateLimitType"),
        interval=_str_field(r, "interval"),
        interval_num=_int_field(r, "intervalNum"),
        limit=_int_field(r, "limit"),
    )


def decode_exchange_info(obj: object) -> ExchangeInfo:
    """``GET /api/v3/exchangeInfo`` (or ``/fapi/v1/exchangeInfo``) -> :class:`ExchangeInfo`.

    Accepts the parsed JSON or the raw body. ``tick_size`` comes from each symbol's
    PRICE_FILTER, ``step_size`` from LOT_SIZE (SymbolInfo defaults when a filter is
    absent); ``rate_limits`` from ``rateLimits`` (empty when absent). Every symbol is
    kept, whatever its status. Raises ProtocolError naming the offending entry.
    """
    if isinstance(obj, bytes | str):
        obj = load_json(obj, "exchangeInfo")
    if not isinstance(obj, dict):
        raise ProtocolError(f"exchangeInfo: expected a JSON object, got {obj!r:.200}")
    where = "serverTime"
    try:
        server_time = _int_field(obj, "serverTime")
        where = "symbols"
        raw_symbols = obj["symbols"]
        if not isinstance(raw_symbols, list):
            raise TypeError("symbols must be a list")
        symbols = []
        for i, s in enumerate(raw_symbols):
            where = f"symbols[{i}]" + (f" ({s.get('symbol')!r:.40})" if isinstance(s, dict) else "")
            symbols.append(_decode_symbol(s))
        where = "rateLimits"
        raw_limits = obj.get("rateLimits", [])
        if not isinstance(raw_limits, list):
            raise TypeError("rateLimits must be a list")
        limits = tuple(_decode_rate_limit(r) for r in raw_limits)
    except KeyError as exc:
        raise ProtocolError(f"exchangeInfo: {where}: missing key {exc}") from None
    except (TypeError, ValueError) as exc:
        raise ProtocolError(f"exchangeInfo: {where}: {exc}") from None
    return ExchangeInfo(server_time=server_time, symbols=tuple(symbols), rate_limits=limits)


# ---------------------------------------------------------------- error bodies


def decode_error_body(
    status: int, body: bytes | str, url: str = "", retry_after: float = 0.0
) -> BinanceAPIError:
    """An error response -> the exception to raise (returned, not raised).

    ``{"code": -1121, "msg": "Invalid symbol."}`` gives that code and message; any
    other body (HTML from a firewall, empty, truncated) gives code 0 and a short,
    whitespace-collapsed excerpt as the message. 429 gives :class:`RateLimitedError`,
    418 :class:`IPBannedError` (both carrying ``retry_after``, which the REST client
    reads from the ``Retry-After`` header), anything else :class:`BinanceAPIError`.
    """
    code, msg = 0, ""
    try:
        obj = orjson.loads(body)
    except (orjson.JSONDecodeError, TypeError):
        obj = None
    if isinstance(obj, dict) and type(obj.get("code")) is int and isinstance(obj.get("msg"), str):
        code, msg = obj["code"], obj["msg"]
    else:
        text = body.decode("utf-8", "replace") if isinstance(body, bytes | bytearray) else str(body)
        excerpt = " ".join(text.split())
        excerpt = excerpt if len(excerpt) <= 200 else excerpt[:200] + "..."
        msg = f"unexpected response body: {excerpt}" if excerpt else "empty response body"
        if status == 403:
            msg = f"request refused by the exchange firewall (WAF); {msg}"
    if status == 429:
        return RateLimitedError(status, code, msg, url, retry_after)
    if status == 418:
        return IPBannedError(status, code, msg, url, retry_after)
    return BinanceAPIError(status, code, msg, url)
