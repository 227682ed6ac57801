"""Blocking client for Binance's public spot REST API (market data only, no keys).

Every request goes through one pipeline (:meth:`RestClient._get`):

1. fail fast if the IP is banned (a ban must never be hammered);
2. reserve the request's weight in the shared :class:`WeightLimiter`;
3. GET, then hand ``X-MBX-USED-WEIGHT-1M`` back to the limiter;
4. by status: 200 -> JSON (ProtocolError if it is not); 429 -> pause the limiter for
   ``Retry-After`` so *every* caller waits, then retry the same request (bounded);
   418 -> pause as a ban and raise IPBannedError; 5xx / connection failures / timeouts
   -> retry with capped exponential backoff and jitter, then BinanceAPIError /
   NetworkError; any other 4xx -> the BinanceAPIError of its body, no retry.

The client is meant to be called from worker threads (never the GUI or asyncio
thread); several threads may share one client and its limiter.
"""

from __future__ import annotations

import contextlib
import logging
import random
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import orjson
import requests
import requests.adapters

from binmon import __version__
from binmon.binance.errors import BinanceError, IPBannedError, NetworkError, ProtocolError
from binmon.binance.limiter import Cancelled, Reservation, WeightLimiter
from binmon.binance.rest_codec import decode_error_body, decode_exchange_info, decode_klines, load_json
from binmon.core.intervals import check_interval
from binmon.core.models import ExchangeInfo, Kline

__all__ = [
    "KLINES_MAX",
    "WEIGHTS",
    "Cancelled",
    "RestClient",
    "RestStats",
    "default_backoff",
    "describe_network_error",
]

_log = logging.getLogger(__name__)

#: Request weights of the endpoints binmon uses (Binance spot docs). The one place they live.
WEIGHTS: dict[str, int] = {
    "/api/v3/ping": 1,
    "/api/v3/time": 1,
    "/api/v3/exchangeInfo": 20,
    "/api/v3/klines": 2,
    "/api/v3/ticker/24hr": 2,  # one symbol
    "/api/v3/ticker/24hr?all": 80,  # no symbol: every symbol
}
#: Most rows one ``GET /api/v3/klines`` returns.
KLINES_MAX = 1000
#: Binance's own symbol pattern.
_SYMBOL_RE = re.compile(r"[A-Z0-9\-_.]{1,20}")
#: Used when a 429 / 418 arrives without a usable Retry-After (418: Binance's shortest ban).
_DEFAULT_429_S = 1.0
_DEFAULT_418_S = 120.0
#: While waiting for weight, re-check this often whether another thread got the IP banned.
_ACQUIRE_POLL_S = 0.25
#: How far before its Date header a server may have read the data it answers with.
_DATE_SLACK_MS = 1000

#: Re-measure the server clock offset this often when responses carry no Date header (a
#: simulator's clock may run at another speed than ours).
_OFFSET_MAX_AGE_S = 300.0
#: Binance's code for "too much request weight used", used for bans we report ourselves.
_CODE_TOO_MUCH_WEIGHT = -1003


def default_backoff(attempt: int) -> float:
    """Delay before retry ``attempt`` (0-based): 0.25 s doubling, capped at 8 s, jittered to 50-100 %.

    Jitter keeps several threads (or several clients) that failed together from
    retrying in lock-step.
    """
    return min(8.0, 0.25 * 2.0**attempt) * (0.5 + 0.5 * random.random())


@dataclass(slots=True)
class RestStats:
    """Counts of what one client has seen (for status displays and tests).

    ``requests`` sent (every attempt), ``retries`` of any kind, and responses by
    outcome: ``rate_limited`` (429), ``banned`` (418), ``server_errors`` (5xx),
    ``network_errors`` (no response at all).
    """

    requests: int = 0
    retries: int = 0
    rate_limited: int = 0
    banned: int = 0
    server_errors: int = 0
    network_errors: int = 0


class RestClient:
    """Binance spot market-data REST client; thread-safe; use as a context manager."""

    def __init__(
        self,
        base_url: str,
        *,
        limiter: WeightLimiter | None = None,
        session: requests.Session | None = None,
        timeout: float = 10.0,
        max_retries: int = 4,
        backoff: Callable[[int], float] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        user_agent: str = f"binmon/{__version__}",
        wall: Callable[[], float] = time.time,
    ) -> None:
        """A client for ``base_url`` (``https://api.binance.com`` or a simulator's root URL).

        Share ``limiter`` between every client of the same IP. A ``session`` passed in
        (its User-Agent gets set) stays the caller's to close; one created here is
        closed by :meth:`close`.
        ``timeout`` bounds connect and each read; ``max_retries`` bounds the retries
        of each request, separately for 429s and for 5xx / network failures;
        ``backoff(attempt)`` gives the delay before a 5xx / network retry, slept with
        ``sleep``. ``wall`` is our clock, used with the server clock's measured offset
        for the "closed" flag of the newest candle (see :meth:`_server_now_ms`).
        Raises ValueError for a URL that is not http(s)://host.
        """
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"base URL must be http(s)://host[:port], got {base_url!r}")
        if max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {max_retries}")
        self.base_url = base_url.rstrip("/")
        self.host = parts.netloc
        self.limiter = limiter if limiter is not None else WeightLimiter()
        self.timeout = timeout
        self.max_retries = max_retries
        self._backoff = backoff or default_backoff
        self._sleep = sleep
        self._wall = wall
        self._owns_session = session is None
        self._session = session if session is not None else pooled_session()
        self._session.headers["User-Agent"] = user_agent
        self.stats = RestStats()
        # Server clock minus our wall clock (ms), and our wall time when it was measured.
        self._offset: tuple[int, float] | None = None
        self._server_sends_date = True
        self._time_lock = threading.Lock()
        self._stats_lock = threading.Lock()

    # ------------------------------------------------------------------ endpoints

    def ping(self) -> None:
        """``GET /api/v3/ping``: returns when the server answered, raises otherwise."""
        self._get("/api/v3/ping")

    def server_time(self) -> int:
        """``GET /api/v3/time``: the server's clock in ms. ProtocolError on a malformed answer."""
        body, _ = self._get("/api/v3/time")
        t = body.get("serverTime") if isinstance(body, dict) else None
        if type(t) is not int:
            raise ProtocolError(f"time: expected {{'serverTime': int}}, got {body!r:.200}")
        self._learn_server_time(t)
        return t

    def server_now_ms(self, max_age_s: float = 60.0) -> int:
        """A lower bound of the server's clock now, in ms: our wall clock plus the measured offset.

        The offset is learned from ``/api/v3/time`` and ``exchangeInfo`` answers, measured when
        the answer arrived, so the estimate errs early, never late: a candle it calls closed is
        closed. It is (re)measured with one ``GET /api/v3/time`` (weight 1) when unknown or
        older than ``max_age_s`` seconds; ``math.inf`` never re-measures a known offset (no
        I/O: safe as a store's clock). A simulator running its clock faster than ours makes an
        old offset lag behind, which is the safe side. When a re-measure fails but an older
        offset is known, the older one is used (logged); with none, the error propagates
        (NetworkError, BinanceAPIError, Cancelled never: no cancel is taken).
        """
        offset = self._offset
        if offset is None or self._wall() - offset[1] > max_age_s:
            # One thread measures; the others wait for its answer instead of asking too.
            with self._time_lock:
                offset = self._offset
                if offset is None or self._wall() - offset[1] > max_age_s:
                    try:
                        self.server_time()
                    except BinanceError as exc:
                        if offset is None:
                            raise
                        _log.info("cannot re-measure the server clock (%s); using the last offset", exc)
        offset = self._offset
        assert offset is not None  # set by server_time() or known before
        return int(self._wall() * 1000) + offset[0]

    def exchange_info(self, symbols: Sequence[str] | None = None) -> ExchangeInfo:
        """``GET /api/v3/exchangeInfo`` for all symbols or just ``symbols``.

        Also adopts the ``REQUEST_WEIGHT`` per-minute limit it announces into the
        limiter (keeping the current one when the answer has none).
        """
        params: dict[str, str] = {}
        if symbols is not None:
            names = [_check_symbol(s) for s in symbols]
            if len(names) == 1:
                params["symbol"] = names[0]
            elif names:
                params["symbols"] = orjson.dumps(names).decode()
        body, _ = self._get("/api/v3/exchangeInfo", params)
        info = decode_exchange_info(body)
        self._learn_server_time(info.server_time)
        self.limiter.set_limit(info.request_weight_per_minute(default=self.limiter.limit))
        return info

    def klines(
        self,
        symbol: str,
        interval: str,
        *,
        start_ms: int | None = None,
        end_ms: int | None = None,
        limit: int = KLINES_MAX,
        cancel: threading.Event | None = None,
    ) -> list[Kline]:
        """One ``GET /api/v3/klines`` page: up to ``limit`` (1..1000) candles, oldest first.

        With ``start_ms`` only, Binance returns the oldest candles from there on; with
        neither bound, the newest. ``closed``: every candle but the last is closed (a
        later one has already opened); the last is closed when its close time is
        before a lower bound of the server's clock (see :meth:`_server_now_ms`, which
        may first ask ``/api/v3/time`` once), so a candle that closed a moment ago may
        still read as open, never the reverse.
        The symbol and interval are checked locally (ValueError / IntervalError)
        before any request; whether the symbol exists is the server's call
        (BinanceAPIError -1121).
        """
        params = self._kline_params(symbol, interval, start_ms, end_ms, limit)
        # The clock offset must be known, and our clock read, BEFORE the request: only the
        # time we sent it bounds the server's clock from below when it answered.
        # Binance sends a Date header, which is enough; a server seen without one (the
        # simulator may run its clock fast) gets its clock measured first.
        if not self._server_sends_date:
            self._ensure_offset()
        sent_wall = self._wall()
        body, resp = self._get("/api/v3/klines", params, cancel=cancel)
        self._server_sends_date = "Date" in resp.headers
        server_ms = self._server_now_ms(resp, sent_wall)
        ks = decode_klines(params["symbol"], interval, body, server_time_ms=server_ms)
        if len(ks) > 1 and not ks[-2].closed:
            # The server only returns candles that have opened, so every candle followed by
            # another one is over, whatever our estimate of the server's clock says.
            last_open = ks[-1].open_time
            ks = [replace(k, closed=True) if k.close_time < last_open else k for k in ks]
        return ks

    def iter_klines(
        self,
        symbol: str,
        interval: str,
        start_ms: int,
        end_ms: int | None = None,
        *,
        cancel: threading.Event | None = None,
    ) -> Iterator[list[Kline]]:
        """Yield pages of up to 1000 candles from ``start_ms`` to ``end_ms`` (inclusive) or now.

        Pages follow each other by ``startTime = last open time + 1``, so they never
        overlap. Stops after a page shorter than 1000 (an empty one included: the
        server has nothing more in the range) or once past ``end_ms``; it never relies
        on clocks. Raises :class:`Cancelled` when ``cancel`` is set between or during
        requests, and ProtocolError if a page does not move forward.
        """
        start = start_ms
        while end_ms is None or start <= end_ms:
            if cancel is not None and cancel.is_set():
                raise Cancelled("kline download cancelled")
            page = self.klines(
                symbol, interval, start_ms=start, end_ms=end_ms, limit=KLINES_MAX, cancel=cancel
            )
            if page and page[0].open_time < start:
                raise ProtocolError(
                    f"klines page for startTime={start} begins earlier, at {page[0].open_time}"
                )
            if page:
                yield page
            if len(page) < KLINES_MAX:
                return
            start = page[-1].open_time + 1

    def ticker_24hr(self, symbol: str | None = None) -> list[dict[str, Any]]:
        """``GET /api/v3/ticker/24hr`` for one symbol (weight 2) or all of them (weight 80).

        Returns Binance's ticker objects as parsed (a one-element list for a symbol);
        ProtocolError when the answer is not an object / a list of objects.
        """
        params = {"symbol": _check_symbol(symbol)} if symbol is not None else {}
        body, _ = self._get("/api/v3/ticker/24hr", params)
        rows = [body] if isinstance(body, dict) else body
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise ProtocolError(f"ticker/24hr: expected an object or a list of objects, got {body!r:.200}")
        return rows

    # ------------------------------------------------------------------ lifetime

    def close(self) -> None:
        """Close the HTTP session if this client created it. Idempotent."""
        if self._owns_session:
            self._session.close()

    def __enter__(self) -> RestClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ------------------------------------------------------------------ pipeline

    def _get(
        self,
        path: str,
        params: dict[str, str] | None = None,
        *,
        cancel: threading.Event | None = None,
    ) -> tuple[Any, requests.Response]:
        """GET ``path`` through the limiter with the retry policy of the module docstring.

        Returns the parsed JSON body and the response.
        """
        params = params or {}
        weight = request_weight(path, params)
        url = self.base_url + path
        failures = 0  # 5xx and network failures, retried with backoff
        limited = 0  # 429s, retried after the limiter's pause
        while True:
            reservation = self._acquire(weight, url, cancel)
            self._count("requests")
            try:
                resp = self._session.get(url, params=params, timeout=self.timeout)
            except requests.RequestException as exc:
                self.limiter.record(None, reservation)
                self._count("network_errors")
                reason = describe_network_error(exc, self.timeout)
                if failures >= self.max_retries:
                    raise NetworkError(f"cannot reach {self.host}: {reason}") from exc
                _log.info("GET %s failed (%s); retrying", path, reason)
                failures = self._retry_pause(failures)
                continue
            self.limiter.record(_int_header(resp, "X-MBX-USED-WEIGHT-1M"), reservation)
            status = resp.status_code
            if status == 200:
                return load_json(resp.content, path.rsplit("/", 1)[-1]), resp
            full_url = resp.url or url
            if status == 429:
                self._count("rate_limited")
                wait = _retry_after(resp, _DEFAULT_429_S)
                # Pausing the shared limiter holds back every thread, not just this one.
                self.limiter.pause(wait)
                if limited >= self.max_retries:
                    raise decode_error_body(status, resp.content, full_url, wait)
                _log.warning("rate limited by %s (429); all requests wait %.1f s", self.host, wait)
                limited += 1
                self._count("retries")
                continue
            if status == 418:
                self._count("banned")
                wait = _retry_after(resp, _DEFAULT_418_S)
                self.limiter.pause(wait, banned=True)
                _log.error("IP banned by %s (418) for %.0f s", self.host, wait)
                raise decode_error_body(status, resp.content, full_url, wait)
            if status >= 500:
                self._count("server_errors")
                if failures >= self.max_retries:
                    raise decode_error_body(status, resp.content, full_url)
                _log.info("GET %s: HTTP %d; retrying", path, status)
                failures = self._retry_pause(failures)
                continue
            raise decode_error_body(status, resp.content, full_url)

    def _acquire(self, weight: int, url: str, cancel: threading.Event | None) -> Reservation:
        """Reserve ``weight``, giving up at once if the IP is (or becomes) banned meanwhile."""
        while True:
            banned_for = self.limiter.banned_for
            if banned_for > 0:
                raise IPBannedError(
                    418,
                    _CODE_TOO_MUCH_WEIGHT,
                    f"IP banned by {self.host}; no requests until the ban ends",
                    url,
                    banned_for,
                )
            try:
                return self.limiter.acquire(weight, cancel=cancel, timeout=_ACQUIRE_POLL_S)
            except TimeoutError:
                continue

    def _retry_pause(self, failures: int) -> int:
        self._count("retries")
        delay = self._backoff(failures)
        if delay > 0:
            self._sleep(delay)
        return failures + 1

    def _count(self, field: str) -> None:
        with self._stats_lock:
            setattr(self.stats, field, getattr(self.stats, field) + 1)

    def _learn_server_time(self, server_ms: int) -> None:
        """Remember the server clock's offset from ours, measured when the answer arrived.

        Measuring at arrival (not at sending) makes ``wall + offset`` a lower bound of the
        server's clock: it errs towards "still open", never towards "closed".
        """
        now = self._wall()
        self._offset = (server_ms - int(now * 1000), now)

    def _offset_stale(self) -> bool:
        offset = self._offset
        return offset is None or self._wall() - offset[1] > _OFFSET_MAX_AGE_S

    def _ensure_offset(self) -> None:
        """Measure the server clock's offset with ``GET /api/v3/time`` when unknown or stale.

        One thread measures; the others wait for its answer instead of asking too.
        """
        if self._offset_stale():
            with self._time_lock:
                if self._offset_stale():
                    self.server_time()

    def _server_now_ms(self, resp: requests.Response, sent_wall: float) -> int:
        """A lower bound of the server's clock when it produced ``resp``.

        The larger of the ``Date`` header (whole seconds, rounded down) and our clock when
        the request was sent plus the offset learned from ``/time`` or ``exchangeInfo``
        (measured at arrival, so itself a lower bound). Our bare wall clock is never
        trusted: it may run ahead of the server's (or behind a sped-up simulator's). With
        no bound at all it returns 0: the newest candle then reads as still open, the
        safe side (a consumer never takes a half-filled candle for a final one).
        """
        bounds: list[int] = []
        date = resp.headers.get("Date")
        if date:
            with contextlib.suppress(TypeError, ValueError):  # a malformed Date is just ignored
                # Date is stamped when the answer is written, a moment after the data was
                # read: one second less keeps it a lower bound of the data's time.
                bounds.append(int(parsedate_to_datetime(date).timestamp() * 1000) - _DATE_SLACK_MS)
        offset = self._offset
        if offset is not None:
            bounds.append(int(sent_wall * 1000) + offset[0])
        return max(bounds) if bounds else 0

    @staticmethod
    def _kline_params(
        symbol: str, interval: str, start_ms: int | None, end_ms: int | None, limit: int
    ) -> dict[str, str]:
        params = {"symbol": _check_symbol(symbol), "interval": check_interval(interval)}
        if not 1 <= limit <= KLINES_MAX:
            raise ValueError(f"limit must be 1..{KLINES_MAX}, got {limit}")
        params["limit"] = str(limit)
        if start_ms is not None:
            params["startTime"] = str(int(start_ms))
        if end_ms is not None:
            params["endTime"] = str(int(end_ms))
        if start_ms is not None and end_ms is not None and end_ms < start_ms:
            raise ValueError(f"end_ms {end_ms} is before start_ms {start_ms}")
        return params


# ---------------------------------------------------------------------- helpers


def pooled_session() -> requests.Session:
    """A session for several worker threads: room for 16 pooled connections without urllib3
    discarding any, and no urllib3 retries (the clients retry on their own schedule)."""
    session = requests.Session()
    adapter = requests.adapters.HTTPAdapter(pool_connections=2, pool_maxsize=16, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def request_weight(path: str, params: dict[str, str]) -> int:
    """The weight Binance charges for ``GET path?params`` (see :data:`WEIGHTS`)."""
    if path == "/api/v3/ticker/24hr" and "symbol" not in params:
        return WEIGHTS["/api/v3/ticker/24hr?all"]
    return WEIGHTS[path]


def _check_symbol(symbol: str) -> str:
    """Upper-case ``symbol`` and check it against Binance's pattern (ValueError if not)."""
    name = symbol.strip().upper() if isinstance(symbol, str) else ""
    if not _SYMBOL_RE.fullmatch(name):
        raise ValueError(f"not a valid Binance symbol: {symbol!r}")
    return name


def _int_header(resp: requests.Response, name: str) -> int | None:
    value = resp.headers.get(name)
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _retry_after(resp: requests.Response, default: float) -> float:
    """``Retry-After`` in seconds (delta-seconds or an HTTP date), else ``default``."""
    value = resp.headers.get("Retry-After")
    if value:
        try:
            return max(0.0, float(value))
        except ValueError:
            pass
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            pass
    return default


def describe_network_error(exc: BaseException, timeout: float) -> str:
    """A few words for why no response came (``connection refused``, ``no response within 10 s``).

    ``exc`` is what ``requests`` raised; ``timeout`` the one the request used (named in timeout
    messages). Shared by every HTTP client of binmon (REST, archive).
    """
    if isinstance(exc, requests.ConnectTimeout):
        return f"connection timed out after {timeout:g} s"
    if isinstance(exc, requests.ReadTimeout):
        return f"no response within {timeout:g} s"
    # requests wraps urllib3 wraps the OSError: look through the whole chain.
    seen: list[BaseException] = []
    todo: list[BaseException] = [exc]
    while todo and len(seen) < 20:
        e = todo.pop()
        if e in seen:
            continue
        seen.append(e)
        todo.extend(x for x in (e.__cause__, e.__context__, getattr(e, "reason", None)) if x is not None)
        todo.extend(a for a in e.args if isinstance(a, BaseException))
    text = " ".join(str(e) for e in seen)
    if any(isinstance(e, ConnectionRefusedError) for e in seen) or "Connection refused" in text:
        return "connection refused"
    if any(isinstance(e, ConnectionResetError) for e in seen) or "Connection reset" in text:
        return "connection reset by peer"
    if "Name or service not known" in text or "NameResolutionError" in text or "getaddrinfo" in text:
        return "host name not found"
    if "RemoteDisconnected" in text or "Connection aborted" in text:
        return "connection closed without a response"
    first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return first if len(first) <= 160 else first[:160] + "..."


#: The old private name, kept for callers that still import it.
_describe_network_error = describe_network_error
