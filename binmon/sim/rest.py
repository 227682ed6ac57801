"""REST side of the simulator: Binance's public market-data endpoints, weights and errors.

Served from the websocket server's ``process_request`` hook (one port for both): every plain
HTTP GET lands in :meth:`RestApi.handle`, which answers with a complete
``websockets.http11.Response`` (``Connection: close``).

Binance behaviours reproduced here, because clients must cope with them:

* request weight per IP, 429 and 418 (the accounting is :mod:`binmon.sim.weights`; its
  names are re-exported here because this module used to hold them);
* a ``Date`` header (RFC 7231) on every answer, from the *simulator's* clock, so a client can
  learn the server time of a sped-up or back-dated simulator from any response (stamped by
  the server's ``process_response`` hook with :func:`http_date`, which also covers the
  websocket handshake);
* error bodies ``{"code": -11xx, "msg": ...}`` with Binance's codes and wording;
* parameters validated like Binance: upper-case symbols only, integer times, ``limit`` capped
  at 1000, unknown or repeated parameters refused.
"""

from __future__ import annotations

import asyncio
import email.utils
import http
import logging
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

import orjson
from websockets.datastructures import Headers
from websockets.http11 import Response

from binmon.core.intervals import INTERVALS, interval_ms
from binmon.sim import wire
from binmon.sim.faults import Faults
from binmon.sim.weights import Admission, WeightAccounting, WeightLimiter, window_label

if TYPE_CHECKING:
    from binmon.sim.server import ServerConfig, SimStats

__all__ = [
    "JSON_TYPE",
    "Admission",
    "ApiError",
    "RestApi",
    "WeightLimiter",
    "http_date",
    "json_response",
    "make_response",
    "window_label",
]

log = logging.getLogger("binmon.sim.rest")
JSON_TYPE = "application/json;charset=UTF-8"
_SYMBOL_RANGE = "^[A-Z0-9-_.]{1,20}$"
_SYMBOL_RE = re.compile(r"^[A-Z0-9\-_.]{1,20}$")
_INT_RE = re.compile(r"^[0-9]{1,20}$")
_TZ_RE = re.compile(r"^([+-]?)(\d{1,2})(?::(\d{2}))?$")
_ARRAY_RANGE = '^\\[("[A-Z0-9-_.]{1,20}"(,"[A-Z0-9-_.]{1,20}"){0,}){0,1}\\]$'


class ApiError(Exception):
    """A Binance error answer: HTTP ``status`` with body ``{"code": code, "msg": msg}``."""

    def __init__(self, status: int, code: int, msg: str) -> None:
        super().__init__(msg)
        self.status, self.code, self.msg = status, code, msg


# ---------------------------------------------------------------- responses


def make_response(
    status: int, body: bytes, content_type: str = JSON_TYPE, extra: list[tuple[str, str]] | None = None
) -> Response:
    """A complete HTTP/1.1 answer that closes the connection (websockets serves one per socket)."""
    headers = Headers(
        [
            ("Content-Type", content_type),
            ("Content-Length", str(len(body))),
            ("Connection", "close"),
            *(extra or []),
        ]
    )
    try:
        phrase = http.HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    return Response(status, phrase, headers, body)


def http_date(ms: int) -> str:
    """``ms`` (epoch milliseconds) as an RFC 7231 HTTP date: ``Mon, 03 Jun 2024 00:00:30 GMT``.

    Whole seconds, rounded down (towards the past), so the header is a lower bound of the time
    it reports, which is how clients use it.
    """
    return email.utils.formatdate(ms // 1000, usegmt=True)


def json_response(status: int, obj: Any, extra: list[tuple[str, str]] | None = None) -> Response:
    """``obj`` as a JSON answer."""
    return make_response(status, orjson.dumps(obj), JSON_TYPE, extra)


# ---------------------------------------------------------------- the API


_ALLOWED: dict[str, frozenset[str]] = {
    "/api/v3/ping": frozenset(),
    "/api/v3/time": frozenset(),
    "/api/v3/exchangeInfo": frozenset({"symbol", "symbols", "permissions", "symbolStatus"}),
    "/api/v3/klines": frozenset({"symbol", "interval", "startTime", "endTime", "limit", "timeZone"}),
    "/api/v3/ticker/24hr": frozenset({"symbol", "symbols", "type"}),
}


#: ``(symbol, interval, startTime, endTime, limit) -> rows``: where ``/api/v3/klines`` rows come from.
KlineRows = Callable[[str, str, int | None, int | None, int], list[list[Any]]]


class RestApi:
    """The public REST endpoints over a Market; admin URLs (``/_sim/...``) go to ``admin``.

    ``kline_rows`` replaces the Market as the source of ``/api/v3/klines`` rows (capture mode
    serves the recorded values verbatim); by default rows are encoded from ``market.klines``.
    """

    def __init__(
        self,
        market: Any,
        clock: Any,
        config: ServerConfig,
        faults: Faults,
        stats: SimStats,
        books: dict[str, wire.Book],
        admin: Callable[[str, dict[str, str]], Response],
        kline_rows: KlineRows | None = None,
    ) -> None:
        self.market, self.clock, self.config, self.faults, self.stats = market, clock, config, faults, stats
        self.books = books
        self.admin = admin
        self._kline_rows = kline_rows if kline_rows is not None else self._market_kline_rows
        self.weights = WeightAccounting(
            config.weight_limit, config.weight_window_s, config.ban_after_429s, config.ban_seconds
        )
        self.limiter = self.weights.limiter

    async def handle(self, target: str, ip: str) -> Response:
        """Answer one GET request for ``target`` (path and query) from client ``ip``."""
        parts = urlsplit(target)
        path = parts.path.rstrip("/") or "/"
        pairs = parse_qsl(parts.query, keep_blank_values=True)
        if path.startswith("/_sim/"):
            return self.admin(path, dict(pairs))
        self.stats.rest_requests += 1
        if self.faults.rest_delay > 0:
            await asyncio.sleep(self.faults.rest_delay)
        injected = self.faults.take_rest_error()
        if injected:
            self.stats.rest_injected_errors += 1
            body = {"code": -1000, "msg": "An unknown error occurred while processing the request."}
            return json_response(injected, body)
        allowed = _ALLOWED.get(path)
        if allowed is None:
            return make_response(404, b"<html><body><h2>404 Not found</h2></body></html>", "text/html")
        params: dict[str, str] = {}
        duplicate = False
        for k, v in pairs:
            duplicate |= k in params
            params[k] = v
        adm = self.weights.admit(ip, path, params)
        if adm.status != 200:
            return self._refused(adm, ip)
        try:
            if duplicate:
                raise ApiError(400, -1101, "Duplicate values for a parameter detected.")
            unknown = [k for k in params if k not in allowed]
            if unknown:
                read = len(params) - len(unknown)
                raise ApiError(
                    400,
                    -1104,
                    f"Not all sent parameters were read; read '{read}' parameter(s) "
                    f"but was sent '{len(params)}'.",
                )
            status, body = 200, self._dispatch(path, params)
        except ApiError as exc:
            self.stats.rest_errors += 1
            status, body = exc.status, {"code": exc.code, "msg": exc.msg}
        log.debug("GET %s from %s -> %d", target, ip, status)
        return json_response(status, body, self.weights.headers(adm.used))

    def _refused(self, adm: Admission, ip: str) -> Response:
        if adm.status == 418:
            self.stats.rest_banned += 1
        else:
            self.stats.rest_limited += 1
        body, headers = self.weights.refusal(adm, ip)
        return json_response(adm.status, body, headers)

    # ------------------------------------------------------------ endpoints

    def _dispatch(self, path: str, p: dict[str, str]) -> Any:
        if path == "/api/v3/ping":
            return {}
        if path == "/api/v3/time":
            return {"serverTime": self.clock.now_ms()}
        if path == "/api/v3/exchangeInfo":
            return self._exchange_info(p)
        if path == "/api/v3/klines":
            return self._klines(p)
        return self._ticker(p)

    def _symbols_param(self, p: dict[str, str]) -> list[str] | None:
        """The symbols named by ``symbol`` or ``symbols`` (validated, known), or None for all."""
        if "symbol" in p and "symbols" in p:
            raise ApiError(400, -1128, "Combination of optional parameters invalid.")
        if "symbol" in p:
            return [self._known_symbol(p, "symbol")]
        if "symbols" in p:
            try:
                names = orjson.loads(p["symbols"])
            except orjson.JSONDecodeError:
                names = None
            if not isinstance(names, list) or not all(
                isinstance(n, str) and _SYMBOL_RE.match(n) for n in names
            ):
                raise ApiError(
                    400,
                    -1100,
                    f"Illegal characters found in parameter 'symbols'; legal range is '{_ARRAY_RANGE}'.",
                )
            if not names:
                raise ApiError(
                    400, -1102, "Mandatory parameter 'symbols' was not sent, was empty/null, or malformed."
                )
            if len(set(names)) != len(names):
                raise ApiError(400, -1151, "Symbol is present multiple times in the list.")
            for n in names:
                if self.market.symbol(n) is None:
                    raise ApiError(400, -1121, "Invalid symbol.")
            return list(names)
        return None

    def _known_symbol(self, p: dict[str, str], name: str = "symbol") -> str:
        sym = p.get(name, "")
        if not sym:
            raise ApiError(
                400, -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."
            )
        if not _SYMBOL_RE.match(sym):
            raise ApiError(
                400,
                -1100,
                f"Illegal characters found in parameter '{name}'; legal range is '{_SYMBOL_RANGE}'.",
            )
        if self.market.symbol(sym) is None:
            raise ApiError(400, -1121, "Invalid symbol.")
        return sym

    def _exchange_info(self, p: dict[str, str]) -> dict[str, Any]:
        wanted = self._symbols_param(p)
        syms = [self.market.symbol(n) for n in wanted] if wanted else list(self.market.symbols)
        if "permissions" in p:
            perms = _str_list(p["permissions"], "permissions")
            syms = [s for s in syms if "SPOT" in perms]  # every simulated symbol is SPOT only
        if "symbolStatus" in p:
            if p["symbolStatus"] not in ("TRADING", "HALT", "BREAK"):
                raise ApiError(400, -1122, "Invalid symbolStatus.")
            syms = [s for s in syms if s.status == p["symbolStatus"]]
        name, num = self.weights.label
        return {
            "timezone": "UTC",
            "serverTime": self.clock.now_ms(),
            "rateLimits": [
                {"rateLimitType": "REQUEST_WEIGHT", "interval": name, "intervalNum": num,
                 "limit": self.config.weight_limit},
                {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
                {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 200000},
                {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "limit": 61000},
            ],
            "exchangeFilters": [],
            "symbols": [wire.symbol_info(s) for s in syms],
        }  # fmt: skip

    def _klines(self, p: dict[str, str]) -> list[list[Any]]:
        sym = self._known_symbol(p)
        iv = p.get("interval", "")
        if not iv:
            raise ApiError(
                400, -1102, "Mandatory parameter 'interval' was not sent, was empty/null, or malformed."
            )
        if iv not in INTERVALS:
            raise ApiError(400, -1120, "Invalid interval.")
        start, end = _opt_int(p, "startTime"), _opt_int(p, "endTime")
        limit = _opt_int(p, "limit")
        if start is not None and end is not None and start > end:
            raise ApiError(400, -1023, "Start time is greater than end time.")
        if limit is not None and limit < 1:
            raise ApiError(400, -1130, "Data sent for parameter 'limit' is not valid.")
        _check_time_zone(p.get("timeZone"), iv)
        return self._kline_rows(sym, iv, start, end, min(limit or 500, 1000))

    def _market_kline_rows(
        self, sym: str, iv: str, start: int | None, end: int | None, limit: int
    ) -> list[list[Any]]:
        return [wire.kline_row(k) for k in self.market.klines(sym, iv, start, end, limit)]

    def _ticker(self, p: dict[str, str]) -> Any:
        kind = p.get("type", "FULL")
        if kind not in ("FULL", "MINI"):
            raise ApiError(400, -1139, "Invalid ticker type.")
        wanted = self._symbols_param(p)
        names = wanted if wanted is not None else [s.symbol for s in self.market.symbols]
        out = [self._ticker_obj(n, kind) for n in names]
        return out[0] if "symbol" in p else out

    def _ticker_obj(self, sym: str, kind: str) -> dict[str, Any]:
        t = self.market.ticker_24h(sym)
        info = self.market.symbol(sym)
        book = self.books.get(sym)
        if book is None:
            book = wire.synthetic_book(int(t.last_id), float(t.close), False, float(info.tick_size),
                                       float(info.step_size))  # fmt: skip
        obj = wire.ticker_24h_obj(t, book, float(getattr(t, "last_qty", 0.0) or 0.0))
        if kind == "MINI":
            keep = ("symbol", "openPrice", "highPrice", "lowPrice", "lastPrice", "volume", "quoteVolume",
                    "openTime", "closeTime", "firstId", "lastId", "count")  # fmt: skip
            return {k: obj[k] for k in keep}
        return obj


# ---------------------------------------------------------------- helpers


def _opt_int(p: dict[str, str], name: str) -> int | None:
    if name not in p:
        return None
    v = p[name]
    if v == "":
        raise ApiError(400, -1105, f"Parameter '{name}' was empty.")
    if not _INT_RE.match(v):
        raise ApiError(
            400, -1100, f"Illegal characters found in parameter '{name}'; legal range is '^[0-9]{{1,20}}$'."
        )
    return int(v)


def _str_list(v: str, name: str) -> list[str]:
    if v.startswith("["):
        try:
            items = orjson.loads(v)
        except orjson.JSONDecodeError:
            items = None
        if isinstance(items, list) and all(isinstance(i, str) for i in items):
            return items
        raise ApiError(400, -1100, f"Illegal characters found in parameter '{name}'.")
    return [v]


def _check_time_zone(tz: str | None, interval: str) -> None:
    """Accept Binance's ``timeZone`` values; refuse offsets that would move this interval's candles.

    The simulator's candles are UTC-aligned. An offset that is a whole number of candles (say
    +08:00 on 1h) changes nothing and is accepted; others are refused rather than answered wrongly.
    """
    if tz is None or tz == "":
        return
    m = _TZ_RE.match(tz)
    if not m:
        raise ApiError(400, -1130, "Data sent for parameter 'timeZone' is not valid.")
    sign = -1 if m.group(1) == "-" else 1
    minutes = sign * (int(m.group(2)) * 60 + int(m.group(3) or 0))
    if not -12 * 60 <= minutes <= 14 * 60:
        raise ApiError(400, -1130, "Data sent for parameter 'timeZone' is not valid.")
    if minutes == 0:
        return
    if interval in ("1w", "1M") or (minutes * 60_000) % interval_ms(interval):
        raise ApiError(
            400,
            -1130,
            f"Data sent for parameter 'timeZone' is not valid (the simulator serves only UTC {interval}).",
        )
