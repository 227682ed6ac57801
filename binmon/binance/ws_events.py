"""Per-event decoders of Binance websocket payloads, used by :class:`binmon.binance.codec.Decoder`.

Each ``decode_*`` takes one event object (a dict parsed by orjson) and the stream name
("" for a raw frame, in which case the name is derived from the payload) and returns
one frozen event, or raises KeyError / TypeError / ValueError for a bad payload: the
Decoder turns those into a counted "malformed" frame.

Integers must be JSON integers (not bools, not strings), checked with one class
test each. Decimals (Binance sends them as strings) are converted by
:func:`_decimals`, which hands all of a payload's decimals to orjson in one call:
``float()`` costs ~220 ns a string on this machine, a kline has eight, and they are
most of the hot path's time. Every field is checked once, while being read.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from operator import itemgetter
from typing import Any, TypeVar

import orjson

from binmon.binance.streams import stream_symbol
from binmon.core.intervals import INTERVALS
from binmon.core.models import (
    AggTradeEvent,
    BookTickerEvent,
    ErrorReply,
    Kline,
    KlineEvent,
    MiniTicker,
    TradeEvent,
)

_T = TypeVar("_T")


def fast_constructor(cls: type[_T]) -> Callable[..., _T]:
    """A constructor for a frozen, slotted dataclass that skips its generated ``__init__``.

    A frozen dataclass sets each field through ``object.__setattr__``: for Kline's 16
    fields that is ~2.3 us, a third of a kline frame's decoding time. This builds
    (like dataclasses itself does, with ``exec``) a function taking every field
    positionally, in declaration order, that stores them through the slots'
    descriptors: the same object, ~2x faster. Refuses classes where that would skip
    behaviour: ``__post_init__``, or fields that are not slots.
    """
    if not dataclasses.is_dataclass(cls) or hasattr(cls, "__post_init__"):
        raise TypeError(f"{cls.__name__}: not a plain dataclass")
    names = [f.name for f in dataclasses.fields(cls)]
    namespace: dict[str, Any] = {"_new": object.__new__, "_cls": cls}
    lines = [f"def make_{cls.__name__}({', '.join(names)}):", "    obj = _new(_cls)"]
    for name in names:
        descriptor: Any = cls.__dict__.get(name)
        if type(descriptor).__name__ != "member_descriptor":
            raise TypeError(f"{cls.__name__}.{name} is not a slot")
        namespace[f"_set_{name}"] = descriptor.__set__
        lines.append(f"    _set_{name}(obj, {name})")
    lines.append("    return obj")
    exec("\n".join(lines), namespace)
    maker: Callable[..., _T] = namespace[f"make_{cls.__name__}"]
    return maker


_Kline = fast_constructor(Kline)
_KlineEvent = fast_constructor(KlineEvent)
_TradeEvent = fast_constructor(TradeEvent)
_AggTradeEvent = fast_constructor(AggTradeEvent)
_BookTickerEvent = fast_constructor(BookTickerEvent)
_MiniTicker = fast_constructor(MiniTicker)

_INTERVALS = frozenset(INTERVALS)
_loads = orjson.loads
_join_e0 = "e0,".join
_KLINE_DECIMALS = itemgetter("o", "h", "l", "c", "v", "q", "V", "Q")
_TRADE_DECIMALS = itemgetter("p", "q")
_BOOK_DECIMALS = itemgetter("b", "B", "a", "A")
_MINI_DECIMALS = itemgetter("c", "o", "h", "l", "v", "q")


def _decimals(values: tuple[Any, ...]) -> list[float]:
    """Binance decimal strings -> finite floats, all in one orjson call.

    ``("0.1", "25")`` becomes the JSON text ``[0.1e0,25e0]``: the ``e0`` exponent makes
    orjson return a float even for integer-looking strings (futures send ``"3917"``),
    and is valid only right after digits, so a value that is not a plain decimal
    makes the text invalid JSON (ValueError). ``str.join`` refuses non-strings
    (TypeError). A value holding a comma could smuggle extra or nested elements, so
    the separators are counted. orjson refuses numbers that overflow a double, so
    every result is finite. orjson rounds exactly like ``float()`` (property-tested).
    """
    text = _join_e0(values)
    if text.count(",") != len(values) - 1:
        raise ValueError(f"not a decimal string among {values!r:.80}")
    result: list[float] = _loads("[" + text + "e0]")
    return result


def decode_kline(d: dict[str, Any], stream: str) -> KlineEvent:
    """``{"e":"kline","E","s","k":{...}}`` -> :class:`KlineEvent` (``x`` becomes ``closed``)."""
    k = d["k"]
    s = d["s"]
    E = d["E"]
    t = k["t"]
    T = k["T"]
    n = k["n"]
    f = k["f"]
    L = k["L"]
    x = k["x"]
    i = k["i"]
    if (
        E.__class__ is not int
        or t.__class__ is not int
        or T.__class__ is not int
        or n.__class__ is not int
        or f.__class__ is not int
        or L.__class__ is not int
        or x.__class__ is not bool
        or s.__class__ is not str
        or i not in _INTERVALS
    ):
        raise TypeError("kline: a field has the wrong type (or unknown interval)")
    # _decimals inlined: this is the hottest line of a live chart.
    text = _join_e0(_KLINE_DECIMALS(k))
    if text.count(",") != 7:
        raise ValueError(f"kline: not a decimal string among {_KLINE_DECIMALS(k)!r:.80}")
    o, h, lo, c, v, q, tb, tq = _loads("[" + text + "e0]")
    return _KlineEvent(
        E,
        _Kline(s, i, t, T, o, h, lo, c, v, q, n, tb, tq, x, f, L),
        stream or f"{stream_symbol(s)}@kline_{i}",
    )


def decode_agg_trade(d: dict[str, Any], stream: str) -> AggTradeEvent:
    """``{"e":"aggTrade","E","s","a","p","q","f","l","T","m"}`` -> :class:`AggTradeEvent`."""
    s = d["s"]
    E = d["E"]
    a = d["a"]
    f = d["f"]
    L = d["l"]
    T = d["T"]
    m = d["m"]
    if (
        E.__class__ is not int
        or a.__class__ is not int
        or f.__class__ is not int
        or L.__class__ is not int
        or T.__class__ is not int
        or m.__class__ is not bool
        or s.__class__ is not str
    ):
        raise TypeError("aggTrade: a field has the wrong type")
    p, q = _decimals(_TRADE_DECIMALS(d))
    return _AggTradeEvent(E, s, a, p, q, f, L, T, m, stream or f"{stream_symbol(s)}@aggTrade")


def decode_trade(d: dict[str, Any], stream: str) -> TradeEvent:
    """``{"e":"trade","E","s","t","p","q","T","m"}`` -> :class:`TradeEvent`."""
    s = d["s"]
    E = d["E"]
    t = d["t"]
    T = d["T"]
    m = d["m"]
    if (
        E.__class__ is not int
        or t.__class__ is not int
        or T.__class__ is not int
        or m.__class__ is not bool
        or s.__class__ is not str
    ):
        raise TypeError("trade: a field has the wrong type")
    p, q = _decimals(_TRADE_DECIMALS(d))
    return _TradeEvent(E, s, t, p, q, T, m, stream or f"{stream_symbol(s)}@trade")


def decode_book_ticker(d: dict[str, Any], stream: str) -> BookTickerEvent:
    """``{"u","s","b","B","a","A"}`` -> :class:`BookTickerEvent`.

    Spot frames have no ``e``/``E`` (event_time 0); futures ones add e="bookTicker", E and T.
    """
    s = d["s"]
    u = d["u"]
    E = d.get("E", 0)
    if u.__class__ is not int or E.__class__ is not int or s.__class__ is not str:
        raise TypeError("bookTicker: a field has the wrong type")
    b, bq, a, aq = _decimals(_BOOK_DECIMALS(d))
    return _BookTickerEvent(u, s, b, bq, a, aq, E, stream or f"{stream_symbol(s)}@bookTicker")


def decode_mini_ticker(d: Any) -> MiniTicker:
    """One ``24hrMiniTicker`` object -> :class:`MiniTicker` (TypeError if ``d`` is not a dict)."""
    if d.__class__ is not dict:
        raise TypeError("miniTicker: element is not an object")
    s = d["s"]
    E = d["E"]
    if E.__class__ is not int or s.__class__ is not str:
        raise TypeError("miniTicker: a field has the wrong type")
    c, o, h, lo, v, q = _decimals(_MINI_DECIMALS(d))
    return _MiniTicker(E, s, c, o, h, lo, v, q)


def request_id_of(obj: dict[str, Any]) -> int | str | None:
    """The ``id`` of a control reply: int, str or None (TypeError for anything else)."""
    rid = obj.get("id")
    if rid is None or rid.__class__ is int or rid.__class__ is str:
        return rid
    raise TypeError(f"id must be an integer, a string or null, got {rid!r:.40}")


def decode_error_reply(err: object, rid: int | str | None) -> ErrorReply:
    """``{"code": int, "msg": str}`` (the ``error`` member, or a top-level error) -> :class:`ErrorReply`."""
    if not isinstance(err, dict):
        raise TypeError("error must be an object")
    code = err["code"]
    msg = err["msg"]
    if code.__class__ is not int or msg.__class__ is not str:
        raise TypeError("error: code must be an integer and msg a string")
    return ErrorReply(rid, code, msg)


def event_type_of(item: object) -> object:
    """The ``e`` of an array element, None when it is not an object or has none."""
    return item.get("e") if isinstance(item, dict) else None


def kind_of(stream: str) -> str:
    """The event type of an ``e``-less frame, from its stream name.

    ``"btcusdt@depth20@100ms"`` -> ``"depth20"``; ``"!markPrice@arr@1s"`` -> ``"markPrice"``.
    """
    if stream.startswith("!"):
        return stream[1:].partition("@")[0] or stream
    return stream.partition("@")[2].partition("@")[0] or stream
