"""Blocking HTTP client for data.binance.vision kline files (or the simulator's copy of them).

:meth:`ArchiveClient.fetch` downloads a file's ``.CHECKSUM``, then the zip, verifies the
SHA-256 and parses the CSV (:mod:`binmon.history.archive`). Outcomes:

* the candles (possibly an empty list for an empty file);
* None on 404 of either part: not published yet, or the symbol was not listed then;
* :class:`~binmon.history.archive.ChecksumMismatch` when the zip does not hash to its
  ``.CHECKSUM`` even after fetching both once more (Binance replaces files now and then; a
  pair read across a replacement heals on the second try, a bad file does not);
* :class:`~binmon.history.archive.ArchiveFormatError` for a damaged zip, a bad row, a
  malformed ``.CHECKSUM`` or rows outside the file's span;
* :class:`~binmon.binance.errors.NetworkError` (no answer) or
  :class:`~binmon.binance.errors.BinanceAPIError` (an HTTP error status) once the retries are
  spent: 5xx, 429 and connection failures are retried with capped, jittered backoff;
  other statuses are not;
* :class:`~binmon.binance.limiter.Cancelled` as soon as ``cancel`` is seen set (between
  requests, during a backoff pause or between received chunks).

It is not weight-limited: the archive is a CDN, not the API. Thread-safe; meant for worker
threads, several of which may share one client.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from urllib.parse import urlsplit

import requests
import requests.adapters

from binmon import __version__
from binmon.binance.errors import NetworkError
from binmon.binance.limiter import Cancelled
from binmon.binance.rest import default_backoff, describe_network_error, pooled_session
from binmon.binance.rest_codec import decode_error_body
from binmon.core.models import Kline
from binmon.history.archive import (
    ArchiveFile,
    ArchiveFormatError,
    ChecksumMismatch,
    parse_checksum,
    read_kline_zip,
    verify,
)

__all__ = ["ARCHIVE_URL", "ArchiveClient", "ArchiveStats", "Cancelled"]

_log = logging.getLogger(__name__)

#: The real archive's root.
ARCHIVE_URL = "https://data.binance.vision"
#: Read this much at a time, checking ``cancel`` in between.
_CHUNK = 256 * 1024
#: A kline zip is at most ~100 MB (a month of 1s candles); anything far bigger is not one.
_MAX_BYTES = 1 << 30
#: Statuses worth retrying: the CDN's own overload answers and server failures.
_RETRY_STATUSES = frozenset((429, 500, 502, 503, 504))


@dataclass(slots=True)
class ArchiveStats:
    """What one client has done: HTTP ``requests`` (every attempt), ``retries``, ``not_found``
    (404s), ``mismatches`` (checksum failures, including healed ones), ``bytes`` received."""

    requests: int = 0
    retries: int = 0
    not_found: int = 0
    mismatches: int = 0
    bytes: int = 0


class _NotFound(Exception):
    """A 404: the file is not there (internal, turned into a None result)."""


class ArchiveClient:
    """Downloads and verifies archive files; use as a context manager or call :meth:`close`."""

    def __init__(
        self,
        base_url: str = ARCHIVE_URL,
        *,
        session: requests.Session | None = None,
        timeout: float = 30.0,
        max_retries: int = 4,
        backoff: Callable[[int], float] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        user_agent: str = f"binmon/{__version__}",
    ) -> None:
        """A client for ``base_url``: ``https://data.binance.vision`` or a simulator's root URL.

        A ``session`` passed in stays the caller's to close; one created here is closed by
        :meth:`close`. ``timeout`` bounds connecting and each read (not a whole download);
        ``max_retries`` bounds the retries of each request; ``backoff(attempt)`` gives the
        pause before a retry (default: 0.25 s doubling, capped at 8 s, jittered), slept with
        ``sleep`` (or waited on ``cancel`` when one is given, so a cancel cuts it short).
        Raises ValueError for a URL that is not ``http(s)://host[:port][/prefix]``.
        """
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"archive URL must be http(s)://host[:port], got {base_url!r}")
        if max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {max_retries}")
        self.base_url = base_url.rstrip("/")
        self.host = parts.netloc
        self.timeout = timeout
        self.max_retries = max_retries
        self._backoff = backoff or default_backoff
        self._sleep = sleep
        self._owns_session = session is None
        self._session = session if session is not None else pooled_session()
        self._session.headers["User-Agent"] = user_agent
        self.stats = ArchiveStats()
        self._stats_lock = threading.Lock()

    # ------------------------------------------------------------------ API

    def fetch(self, file: ArchiveFile, cancel: threading.Event | None = None) -> list[Kline] | None:
        """Download, verify and parse ``file``: its candles oldest first, or None when it does not exist.

        Every candle is closed and opens inside the file's span (ArchiveFormatError
        otherwise). See the module docstring for the errors.
        """
        data = self.download(file, cancel)
        if data is None:
            return None
        try:
            klines = read_kline_zip(data, file.symbol, file.interval)
        except ArchiveFormatError as exc:
            raise ArchiveFormatError(f"{file.name}: {exc}") from None
        # The parser checked the open times increase: the first and the last bound them all.
        for k in (klines[0], klines[-1]) if klines else ():
            if not file.start_ms <= k.open_time <= file.end_ms:
                raise ArchiveFormatError(
                    f"{file.name}: holds a candle opening at {k.open_time}, outside {file.date}"
                )
        return klines

    def download(self, file: ArchiveFile, cancel: threading.Event | None = None) -> bytes | None:
        """The zip of ``file``, verified against its ``.CHECKSUM``; None when either is missing (404).

        Raises ChecksumMismatch when a second fetch of both still disagrees, and the errors of
        the module docstring. The bytes are not parsed.
        """
        for attempt in range(2):
            checksum = self._get_or_none(file.checksum_path, cancel)
            if checksum is None:
                return None
            try:  # a bad .CHECKSUM fails before the big download
                parse_checksum(checksum, name=file.name)
            except ArchiveFormatError as exc:
                raise ArchiveFormatError(f"{file.name}.CHECKSUM: {exc}") from None
            data = self._get_or_none(file.path, cancel)
            if data is None:
                return None
            try:
                verify(data, checksum, name=file.name)
                return data
            except ChecksumMismatch:
                self._count("mismatches")
                if attempt:
                    raise
                _log.info("%s does not match its checksum; fetching both again", file.name)
        raise AssertionError("unreachable")  # pragma: no cover

    # ------------------------------------------------------------------ lifetime

    def close(self) -> None:
        """Close the HTTP session if this client created it. Idempotent."""
        if self._owns_session:
            self._session.close()

    def __enter__(self) -> ArchiveClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # ------------------------------------------------------------------ transport

    def _get_or_none(self, path: str, cancel: threading.Event | None) -> bytes | None:
        """The body of ``path``, or None (counted) on 404."""
        try:
            return self._get(path, cancel)
        except _NotFound:
            self._count("not_found")
            return None

    def _get(self, path: str, cancel: threading.Event | None) -> bytes:
        """GET ``base_url/path`` with the retry policy; the body, or _NotFound on 404."""
        url = f"{self.base_url}/{path}"
        failures = 0
        while True:
            _check(cancel)
            self._count("requests")
            try:
                with self._session.get(url, timeout=self.timeout, stream=True) as resp:
                    status = resp.status_code
                    if status == 200:
                        return self._read_body(resp, url, cancel)
                    body = resp.content[:4096] if status != 404 else b""
            except requests.RequestException as exc:
                reason = describe_network_error(exc, self.timeout)
                if failures >= self.max_retries:
                    raise NetworkError(
                        f"cannot download {path.rsplit('/', 1)[-1]} from {self.host}: {reason}"
                    ) from exc
                _log.info("GET %s failed (%s); retrying", url, reason)
                failures = self._pause(failures, cancel)
                continue
            if status == 404:
                raise _NotFound(url)
            if status in _RETRY_STATUSES and failures < self.max_retries:
                _log.info("GET %s: HTTP %d; retrying", url, status)
                failures = self._pause(failures, cancel)
                continue
            raise decode_error_body(status, body, url)

    def _read_body(self, resp: requests.Response, url: str, cancel: threading.Event | None) -> bytes:
        chunks: list[bytes] = []
        size = 0
        for chunk in resp.iter_content(_CHUNK):
            _check(cancel)
            size += len(chunk)
            if size > _MAX_BYTES:
                raise ArchiveFormatError(f"{url}: larger than {_MAX_BYTES >> 20} MiB: not a kline archive")
            chunks.append(chunk)
        with self._stats_lock:
            self.stats.bytes += size
        return b"".join(chunks)

    def _pause(self, failures: int, cancel: threading.Event | None) -> int:
        self._count("retries")
        delay = self._backoff(failures)
        if cancel is not None:
            if cancel.wait(delay):
                raise Cancelled("archive download cancelled")
        elif delay > 0:
            self._sleep(delay)
        return failures + 1

    def _count(self, field: str) -> None:
        with self._stats_lock:
            setattr(self.stats, field, getattr(self.stats, field) + 1)


def _check(cancel: threading.Event | None) -> None:
    if cancel is not None and cancel.is_set():
        raise Cancelled("archive download cancelled")
