"""Binance stream names and the control frames that (un)subscribe them. Pure, no I/O.

Stream names are what the websocket client puts in ``SUBSCRIBE`` frames and what
the simulator parses back, so both directions live here and are tested against
each other. Binance wants stream names lower-case (``btcusdt@kline_1m``) while
interval names stay case-sensitive (``kline_1M`` is a month).
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence

import orjson

from binmon.core.intervals import check_interval

#: The all-market 24 h mini ticker stream (one JSON array per second).
MINI_TICKER_ALL = "!miniTicker@arr"

_MAX_SYMBOL_LEN = 40
# Stream "kinds" (the part after the symbol) are identifiers such as trade, aggTrade,
# bookTicker, depth20, ticker_1h; the optional suffixes are update speeds (@100ms, @1s)
# or the kline timezone (@+08:00).
_KIND_RE = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_SUFFIX_RE = re.compile(r"[A-Za-z0-9_+:.\-]+(?:@[A-Za-z0-9_+:.\-]+)*")
_MARKET_RE = re.compile(r"![A-Za-z][A-Za-z0-9_]*(?:@[A-Za-z0-9_+:.\-]+)*")
_MAX_REQUEST_ID = 2**63 - 1


# Only ASCII letters change case: Unicode case mapping is not reversible ("İ".lower() is
# two code points) and Binance's non-ASCII symbols (e.g. Chinese) have no case anyway.
_TO_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)
_TO_UPPER = str.maketrans(string.ascii_lowercase, string.ascii_uppercase)


def stream_symbol(symbol: str) -> str:
    """The symbol as it appears in a stream name: ASCII letters lower-cased, nothing checked."""
    return symbol.lower() if symbol.isascii() else symbol.translate(_TO_LOWER)


def exchange_symbol(symbol: str) -> str:
    """The symbol as Binance's payloads spell it: ASCII letters upper-cased, nothing checked."""
    return symbol.upper() if symbol.isascii() else symbol.translate(_TO_UPPER)


def _symbol_part(symbol: str) -> str:
    """Validate a symbol and return its lower-case stream form.

    Symbols are letters and digits (futures add ``_``); Binance has listed
    non-ASCII symbols, so "letters" is Unicode-aware. ``@``, ``/``, spaces and the
    like would corrupt a combined-stream URL or a frame, hence rejected.
    """
    if not isinstance(symbol, str):
        raise TypeError(f"symbol must be a str, not {type(symbol).__name__}")
    if not symbol or len(symbol) > _MAX_SYMBOL_LEN or not symbol.replace("_", "").isalnum():
        raise ValueError(f"invalid symbol {symbol!r}")
    return stream_symbol(symbol)


def kline_stream(symbol: str, interval: str) -> str:
    """``kline_stream("BTCUSDT", "1m") == "btcusdt@kline_1m"``.

    Raises ValueError for a bad symbol and :class:`~binmon.core.intervals.IntervalError`
    (a ValueError) for an interval Binance does not know.
    """
    return f"{_symbol_part(symbol)}@kline_{check_interval(interval)}"


def trade_stream(symbol: str) -> str:
    """``trade_stream("BTCUSDT") == "btcusdt@trade"``; ValueError for a bad symbol."""
    return f"{_symbol_part(symbol)}@trade"


def agg_trade_stream(symbol: str) -> str:
    """``agg_trade_stream("BTCUSDT") == "btcusdt@aggTrade"``; ValueError for a bad symbol."""
    return f"{_symbol_part(symbol)}@aggTrade"


def book_ticker_stream(symbol: str) -> str:
    """``book_ticker_stream("BTCUSDT") == "btcusdt@bookTicker"``; ValueError for a bad symbol."""
    return f"{_symbol_part(symbol)}@bookTicker"


def mini_ticker_stream(symbol: str) -> str:
    """``mini_ticker_stream("BTCUSDT") == "btcusdt@miniTicker"``; ValueError for a bad symbol."""
    return f"{_symbol_part(symbol)}@miniTicker"


def parse_stream_name(stream: str) -> tuple[str, str, str | None]:
    """Split a stream name into ``(SYMBOL, kind, interval)``.

    ``"btcusdt@kline_1m"`` -> ``("BTCUSDT", "kline", "1m")``;
    ``"btcusdt@trade"`` -> ``("BTCUSDT", "trade", None)``;
    ``"btcusdt@depth20@100ms"`` -> ``("BTCUSDT", "depth20", None)`` (speed suffix dropped);
    ``"btcusdt@kline_1m@+08:00"`` -> ``("BTCUSDT", "kline", "1m")`` (timezone suffix dropped);
    all-market streams ``"!miniTicker@arr"`` -> ``("", "!miniTicker@arr", None)``.
    The symbol comes back with its ASCII letters upper-cased, whatever case it was given in.
    Raises ValueError on anything else (empty, no ``@``, bad symbol, unknown kline interval).
    """
    if not isinstance(stream, str):
        raise TypeError(f"stream name must be a str, not {type(stream).__name__}")
    if stream.startswith("!"):
        if not _MARKET_RE.fullmatch(stream):
            raise ValueError(f"invalid stream name {stream!r}")
        return ("", stream, None)
    symbol, sep, rest = stream.partition("@")
    kind, _, suffix = rest.partition("@")
    if not sep or not kind:
        raise ValueError(f"invalid stream name {stream!r}: expected <symbol>@<kind>")
    try:
        symbol = exchange_symbol(_symbol_part(symbol))
    except ValueError:
        raise ValueError(f"invalid stream name {stream!r}: bad symbol") from None
    if (suffix or rest.endswith("@")) and not _SUFFIX_RE.fullmatch(suffix):
        raise ValueError(f"invalid stream name {stream!r}: bad suffix")
    if kind.startswith("kline_"):
        return (symbol, "kline", check_interval(kind[len("kline_") :]))
    if not _KIND_RE.fullmatch(kind):
        raise ValueError(f"invalid stream name {stream!r}: bad kind {kind!r}")
    return (symbol, kind, None)


# ---------------------------------------------------------------- control frames


def _check_request_id(request_id: int) -> int:
    # bool is an int subclass; ``True`` as an id is a caller bug, not a number.
    if type(request_id) is not int:
        raise TypeError(f"request_id must be an int, not {type(request_id).__name__}")
    if not 0 <= request_id <= _MAX_REQUEST_ID:
        raise ValueError(f"request_id {request_id} outside 0..2**63-1")
    return request_id


def _stream_list(streams: Sequence[str]) -> list[str]:
    # A lone str is a Sequence[str] too: iterating it would subscribe to "b", "t", ...
    if isinstance(streams, str | bytes):
        raise TypeError("streams must be a sequence of stream names, not a single string")
    names = list(streams)
    if not names:
        raise ValueError("streams is empty: an empty frame would only spend the 5 messages/s budget")
    for name in names:
        parse_stream_name(name)
    return names


def _frame(method: str, params: Sequence[object] | None, request_id: int) -> str:
    body: dict[str, object] = {"method": method}
    if params is not None:
        body["params"] = list(params)
    body["id"] = _check_request_id(request_id)
    return orjson.dumps(body).decode()


def subscribe_frame(streams: Sequence[str], request_id: int) -> str:
    """``{"method":"SUBSCRIBE","params":[...],"id":N}``, exactly as Binance documents it.

    Every name is checked with :func:`parse_stream_name` (ValueError on garbage);
    ``streams`` must be a non-empty sequence (a bare str raises TypeError).
    """
    return _frame("SUBSCRIBE", _stream_list(streams), request_id)


def unsubscribe_frame(streams: Sequence[str], request_id: int) -> str:
    """``{"method":"UNSUBSCRIBE","params":[...],"id":N}``; validation as :func:`subscribe_frame`."""
    return _frame("UNSUBSCRIBE", _stream_list(streams), request_id)


def list_subscriptions_frame(request_id: int) -> str:
    """``{"method":"LIST_SUBSCRIPTIONS","id":N}`` (Binance's form carries no params)."""
    return _frame("LIST_SUBSCRIPTIONS", None, request_id)


def set_property_frame(name: str, value: object, request_id: int) -> str:
    """``{"method":"SET_PROPERTY","params":[name,value],"id":N}``, e.g. ``("combined", True)``.

    ``value`` must be JSON-serialisable (TypeError otherwise); ``name`` a non-empty str.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"property name must be a non-empty str, got {name!r}")
    return _frame("SET_PROPERTY", [name, value], request_id)


def get_property_frame(name: str, request_id: int) -> str:
    """``{"method":"GET_PROPERTY","params":[name],"id":N}``."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"property name must be a non-empty str, got {name!r}")
    return _frame("GET_PROPERTY", [name], request_id)
