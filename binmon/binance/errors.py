"""Exceptions raised by the Binance layer (codec, REST client, stream client).

Everything derives from :class:`BinanceError`, so a caller that only wants "the
exchange did not give me data" catches one type. The API errors keep Binance's own
numeric ``code`` (e.g. ``-1121`` invalid symbol) so callers can branch on it, and
every ``str()`` is one line a user can read in a status bar or a log.
"""

from __future__ import annotations


class BinanceError(Exception):
    """Base for everything the binance layer raises."""


class BinanceAPIError(BinanceError):
    """The exchange answered with an error body such as ``{"code": -1121, "msg": "Invalid symbol."}``.

    ``status`` is the HTTP status, ``code`` Binance's error code (0 when the body
    carried none, e.g. an HTML page from a firewall), ``msg`` its message and
    ``url`` the request that failed ("" when unknown).
    """

    def __init__(self, status: int, code: int, msg: str, url: str = "") -> None:
        self.status = status
        self.code = code
        self.msg = msg
        self.url = url
        super().__init__(self._describe())

    def _describe(self) -> str:
        text = f"Binance error {self.code} (HTTP {self.status}): {self.msg}"
        return f"{text} [{self.url}]" if self.url else text

    def __reduce__(self) -> tuple[object, ...]:
        # Exception pickling replays ``self.args`` (our one formatted string) into
        # __init__, which takes four arguments: rebuild from the attributes instead so
        # errors survive a trip through a process pool or a multiprocessing queue.
        return (type(self), (self.status, self.code, self.msg, self.url))


class _BackoffError(BinanceAPIError):
    """An API error that tells the caller how long to stay away (``retry_after`` seconds)."""

    def __init__(self, status: int, code: int, msg: str, url: str = "", retry_after: float = 0.0) -> None:
        self.retry_after = float(retry_after)
        super().__init__(status, code, msg, url)

    def _describe(self) -> str:
        text = super()._describe()
        return f"{text} (retry after {self.retry_after:g} s)" if self.retry_after > 0 else text

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.status, self.code, self.msg, self.url, self.retry_after))


class RateLimitedError(_BackoffError):
    """HTTP 429: the request weight budget is spent; back off for ``retry_after`` seconds.

    Ignoring it turns into :class:`IPBannedError`.
    """


class IPBannedError(_BackoffError):
    """HTTP 418: this IP is banned (2 minutes up to 3 days) for ``retry_after`` seconds."""


class NetworkError(BinanceError):
    """Unreachable host, timeout, connection reset: the exchange was never heard."""


class ProtocolError(BinanceError):
    """A response we cannot decode: not JSON, wrong shape, wrong types, missing keys."""


def describe_connect_error(exc: BaseException) -> str:
    """A few plain words for why a websocket could not be opened or was lost.

    Users read this in the status bar and the CLI ("connection refused", "host name not
    found"); the exception itself goes to the log.
    """
    # Imported here: this module is the dependency-free root of the binance layer.
    import socket

    from websockets.exceptions import InvalidStatus

    if isinstance(exc, InvalidStatus):
        return f"server refused the connection (HTTP {exc.response.status_code})"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, socket.gaierror):
        return "host name not found"
    if isinstance(exc, ConnectionResetError):
        return "connection reset by peer"
    if isinstance(exc, TimeoutError):
        return "connection timed out"
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text if len(text) <= 120 else text[:120] + "..."
