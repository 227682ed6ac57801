"""Sans-I/O Binance websocket codec: frames in, frozen domain events out.

:class:`Decoder` turns raw and combined-stream frames into the events of
:mod:`binmon.core.models`; nothing downstream ever sees a wire dictionary. It never
raises on bad input: a frame it cannot decode is counted in :class:`DecodeStats`,
logged (rate-limited) and dropped. Well-formed frames it does not model (e.g.
``depthUpdate``) come out as :class:`UnknownEvent` so callers can still see them.

This module also re-exports the stream-name and frame builders of
:mod:`binmon.binance.streams` and the REST decoders of :mod:`binmon.binance.rest_codec`,
so ``binmon.binance.codec`` is the one import for everything wire-format.

Speed matters (a busy combined stream is thousands of frames per second on a GUI
process): frames are parsed with orjson, dispatched with a short ``if`` chain on the
event type (kline first, it is the hot one), and each field is type-checked exactly
once, while it is being read.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import orjson

from binmon.binance.rest_codec import (
    MICROSECONDS_FROM,
    decode_error_body,
    decode_exchange_info,
    decode_kline_row,
    decode_klines,
    kline_to_row,
    load_json,
)
from binmon.binance.streams import (
    MINI_TICKER_ALL,
    agg_trade_stream,
    book_ticker_stream,
    exchange_symbol,
    get_property_frame,
    kline_stream,
    list_subscriptions_frame,
    mini_ticker_stream,
    parse_stream_name,
    set_property_frame,
    stream_symbol,
    subscribe_frame,
    trade_stream,
    unsubscribe_frame,
)
from binmon.binance.ws_events import (
    decode_agg_trade,
    decode_book_ticker,
    decode_error_reply,
    decode_kline,
    decode_mini_ticker,
    decode_trade,
    event_type_of,
    kind_of,
    request_id_of,
)
from binmon.core.models import ControlReply, MiniTickerEvent, ServerShutdown, StreamEvent, UnknownEvent

__all__ = [
    "MICROSECONDS_FROM",
    "MINI_TICKER_ALL",
    "DecodeStats",
    "Decoder",
    "agg_trade_stream",
    "book_ticker_stream",
    "decode_error_body",
    "decode_exchange_info",
    "decode_kline_row",
    "decode_klines",
    "exchange_symbol",
    "get_property_frame",
    "kline_stream",
    "kline_to_row",
    "list_subscriptions_frame",
    "load_json",
    "mini_ticker_stream",
    "parse_stream_name",
    "set_property_frame",
    "stream_symbol",
    "subscribe_frame",
    "trade_stream",
    "unsubscribe_frame",
]

_log = logging.getLogger(__name__)

_loads = orjson.loads
#: Malformed frames are logged for the first few, then every Nth, so a broken feed
#: cannot flood the log (or the disk) at thousands of lines per second.
_LOG_FIRST = 10
_LOG_EVERY = 1000
#: Distinct unknown event types logged once each; the cap bounds memory on garbage.
_MAX_UNKNOWN_TYPES_LOGGED = 64
_SNIPPET = 200


class _Malformed(ValueError):
    """Raised inside the decoder for a frame that parses as JSON but is not a valid message."""


@dataclass(slots=True)
class DecodeStats:
    """Running counts of one :class:`Decoder`.

    ``frames`` fed, ``events`` produced, ``malformed`` frames dropped (bad JSON, wrong
    types, missing keys), ``unknown`` well-formed frames not modelled (emitted as
    :class:`UnknownEvent`), and ``last_error`` describing the latest malformed frame.
    """

    frames: int = 0
    events: int = 0
    malformed: int = 0
    unknown: int = 0
    last_error: str = ""


class Decoder:
    """Feed websocket frames, get domain events. One per connection (stats are per decoder).

    ``feed`` never raises on bad input: malformed frames are counted in ``stats``,
    logged (the first 10, then every 1000th) and produce ``[]``.
    """

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self.stats = DecodeStats()
        self._log = logger or _log
        self._unknown_logged: set[str] = set()

    def feed(self, text: str | bytes) -> list[StreamEvent]:
        """Decode one frame (str or bytes) into zero or more events (never more than one today).

        Raw (``{"e": ...}``) and combined (``{"stream": ..., "data": ...}``) frames are
        both accepted; the event's ``stream`` is the combined frame's name, or derived
        from the payload for raw frames (``btcusdt@kline_1m``).
        """
        stats = self.stats
        stats.frames += 1
        try:
            obj = _loads(text)
        except (orjson.JSONDecodeError, TypeError) as exc:
            return self._malformed(f"not JSON: {exc}", text)
        try:
            if obj.__class__ is dict:
                if "stream" in obj:
                    stream = obj["stream"]
                    data = obj["data"]
                    if stream.__class__ is not str:
                        raise _Malformed("combined frame: stream is not a string")
                    if data.__class__ is list:
                        ev: StreamEvent = self._array(data, stream)
                    elif data.__class__ is not dict:
                        raise _Malformed("combined frame: data is neither an object nor an array")
                    elif data.get("e") == "kline":  # the hot path, spared the dispatch call
                        ev = decode_kline(data, stream)
                    else:
                        ev = self._event(data, stream)
                else:
                    ev = self._event(obj, "")
            elif obj.__class__ is list:
                ev = self._array(obj, "")
            else:
                raise _Malformed(f"a bare JSON {type(obj).__name__} is no Binance message")
        except KeyError as exc:
            return self._malformed(f"missing key {exc}", text)
        except (TypeError, ValueError, IndexError) as exc:
            return self._malformed(str(exc) or type(exc).__name__, text)
        except Exception as exc:  # a decoder bug must not kill the stream: count it loudly
            self._log.exception("decoder bug on frame %r", _snippet(text))
            return self._malformed(f"decoder error {type(exc).__name__}: {exc}", text)
        stats.events += 1
        return [ev]

    def _event(self, d: dict[str, Any], stream: str) -> StreamEvent:
        e = d.get("e")
        if e == "kline":
            return decode_kline(d, stream)
        if e == "aggTrade":
            return decode_agg_trade(d, stream)
        if e == "trade":
            return decode_trade(d, stream)
        if e == "bookTicker":
            return decode_book_ticker(d, stream)
        if e == "24hrMiniTicker":
            t = decode_mini_ticker(d)
            return MiniTickerEvent((t,), stream or f"{stream_symbol(t.symbol)}@miniTicker")
        if e == "serverShutdown":
            when = d["E"]
            if when.__class__ is not int:
                raise TypeError("serverShutdown: E is not an integer")
            return ServerShutdown(when)
        if e is None:
            return self._untyped(d, stream)
        if e.__class__ is not str:
            raise TypeError(f"event type e is not a string: {e!r:.40}")
        return self._unknown(stream, e, d)

    def _array(self, items: list[Any], stream: str) -> StreamEvent:
        """A JSON array: ``!miniTicker@arr`` (decoded) or another all-market stream (unknown)."""
        first = items[0] if items else None
        if (
            ("miniTicker" in stream)
            if stream
            else (first is None or event_type_of(first) == "24hrMiniTicker")
        ):
            return MiniTickerEvent(tuple(map(decode_mini_ticker, items)), stream or MINI_TICKER_ALL)
        kind = event_type_of(first)
        if kind.__class__ is not str:
            raise _Malformed("array of something other than events")
        return self._unknown(stream, kind_of(stream) if stream else kind, items)

    def _untyped(self, d: dict[str, Any], stream: str) -> StreamEvent:
        """Frames without an ``e`` key: spot bookTicker, control replies, errors, partial depth."""
        if "u" in d and "B" in d and "A" in d:
            return decode_book_ticker(d, stream)
        if stream:
            # The wrapper already vouches for a real stream (e.g. @depth20 snapshots).
            return self._unknown(stream, kind_of(stream), d)
        if "result" in d:
            return ControlReply(request_id_of(d), d["result"])
        if "error" in d:
            return decode_error_reply(d["error"], request_id_of(d))
        if "code" in d and "msg" in d:
            # Some servers (and older Binance builds) send errors as a top-level object.
            return decode_error_reply(d, request_id_of(d))
        if "lastUpdateId" in d:
            return self._unknown("", "depth", d)
        raise _Malformed(f"unrecognised message with keys {sorted(d)[:8]}")

    def _unknown(self, stream: str, event_type: str, data: Any) -> UnknownEvent:
        self.stats.unknown += 1
        if event_type not in self._unknown_logged and len(self._unknown_logged) < _MAX_UNKNOWN_TYPES_LOGGED:
            self._unknown_logged.add(event_type)
            self._log.info(
                "unmodelled event type %r (stream %r): passed on as UnknownEvent", event_type, stream
            )
        return UnknownEvent(stream, event_type, data)

    def _malformed(self, reason: str, text: object) -> list[StreamEvent]:
        stats = self.stats
        stats.malformed += 1
        stats.last_error = reason
        n = stats.malformed
        if n <= _LOG_FIRST or n % _LOG_EVERY == 0:
            self._log.warning("malformed frame #%d dropped: %s; frame: %r", n, reason, _snippet(text))
        return []


def _snippet(text: object) -> object:
    """The start of a frame for a log line (frames can be megabytes)."""
    if isinstance(text, str | bytes | bytearray):
        return text[:_SNIPPET]
    return type(text).__name__
