"""Stream names and websocket URLs as Binance spells them.

Pure parsing, shared by the session layer (which routes a handshake) and the stream engine
(which decides what a subscribed name carries).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import NamedTuple
from urllib.parse import unquote

from binmon.core.intervals import INTERVALS

_SYMBOL_RE = re.compile(r"^[a-z0-9\-_.]{1,20}$")


class StreamKey(NamedTuple):
    """What a stream name means. ``symbol`` is upper-case ("" for ``!miniTicker@arr``)."""

    kind: str  # kline, trade, aggTrade, bookTicker, miniTicker, allMiniTickers
    symbol: str
    interval: str = ""


def parse_stream(name: str) -> StreamKey | None:
    """The meaning of a stream name, or None for a name that carries no data here.

    Binance accepts any string as a stream and simply sends nothing for names it does not
    serve (upper-case symbols, unknown symbols, depth streams, the ``@+08:00`` kline variant):
    the simulator behaves the same, so None is not an error.
    """
    if name == "!miniTicker@arr":
        return StreamKey("allMiniTickers", "")
    sym, sep, rest = name.partition("@")
    if not sep or not _SYMBOL_RE.match(sym):
        return None
    if rest.startswith("kline_"):
        iv = rest[6:]
        return StreamKey("kline", sym.upper(), iv) if iv in INTERVALS else None
    if rest in ("trade", "aggTrade", "bookTicker", "miniTicker"):
        return StreamKey(rest, sym.upper())
    return None


@dataclass(frozen=True)
class Route:
    """A parsed websocket URL: combined framing or not, and the streams named in the URL."""

    combined: bool
    streams: tuple[str, ...]


def parse_ws_path(path: str) -> Route | str | None:
    """Route a websocket request path; None when it is not a websocket path (-> 404).

    ``/ws``, ``/ws/<s1>/<s2>``, ``/stream`` and ``/stream?streams=<s1>/<s2>``. A ``str`` result
    is the reason to refuse it with HTTP 400 (an unsupported ``timeUnit``).
    """
    base, _, query = path.partition("?")
    params: dict[str, str] = {}
    for part in query.split("&") if query else ():
        k, _, v = part.partition("=")
        params[k] = v
    unit = params.get("timeUnit", "MILLISECOND").upper()
    if unit not in ("MILLISECOND", "MILLISECONDS", "MS"):
        return f"timeUnit {params['timeUnit']!r} is not supported by the simulator"
    if base in ("/ws", "/ws/"):
        return Route(False, ())
    # Clients may percent-encode "!" and "@" (!miniTicker@arr); stream names never contain "%".
    if base.startswith("/ws/"):
        return Route(False, tuple(unquote(s) for s in base[4:].split("/") if s))
    if base in ("/stream", "/stream/"):
        return Route(True, tuple(unquote(s) for s in params.get("streams", "").split("/") if s))
    return None


def combined_stream_of(frame: bytes) -> str | None:
    """The stream name of a combined frame ``{"stream":"<name>",...``, read off its first bytes.

    No parsing, so it also names the stream of a truncated frame; None when the frame does not
    start like a combined one.
    """
    if frame.startswith(b'{"stream":"'):
        end = frame.find(b'"', 11)
        if end > 0:
            return frame[11:end].decode(errors="replace")
    return None
