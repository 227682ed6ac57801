"""The chart's history source: the local candle store first, the exchange for what it lacks.

:class:`StoreHistory` is what :class:`~binmon.services.market.MarketService` asks for bars
when a store is configured. Every method blocks (SQLite, HTTP) and is called on a worker
thread. Missing candles are fetched through the same :class:`~binmon.history.download.Downloader`
the download dialog and ``binmon download`` use, so what the chart fetched is stored, and
what was downloaded opens instantly.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Protocol

from binmon.core.intervals import interval_ms
from binmon.core.models import Kline
from binmon.history.download import Downloader, DownloadRequest
from binmon.history.ranges import SeriesKey
from binmon.history.store import CandleStore

log = logging.getLogger(__name__)

#: When the stored candles end further back than this many bars, the chart does not wait for
#: the whole hole to be downloaded: it shows the newest bars and the stored ones stay on disk
#: (the download dialog fills holes of any size).
MAX_TAIL_BARS = 10_000


class HistorySource(Protocol):
    """What the market service needs of a history source (all methods block)."""

    def cached(self, symbol: str, interval: str, n: int) -> list[Kline]: ...

    def fill_tail(
        self, symbol: str, interval: str, n: int, cancel: threading.Event | None = None
    ) -> list[Kline]: ...

    def older(self, symbol: str, interval: str, before_ms: int, n: int) -> list[Kline]: ...

    def save(self, klines: Sequence[Kline]) -> None: ...


class StoreHistory:
    """A :class:`HistorySource` over a :class:`CandleStore` and a :class:`Downloader` (spot)."""

    def __init__(self, store: CandleStore, downloader: Downloader, *, market: str = "spot") -> None:
        self.store = store
        self.downloader = downloader
        self.market = market

    def _key(self, symbol: str, interval: str) -> SeriesKey:
        return SeriesKey(self.market, symbol, interval)

    def cached(self, symbol: str, interval: str, n: int) -> list[Kline]:
        """The newest ``n`` stored (closed) candles, oldest first; [] when none are stored."""
        return self.store.read_klines(self._key(symbol, interval), last=n)

    def fill_tail(
        self, symbol: str, interval: str, n: int, cancel: threading.Event | None = None
    ) -> list[Kline]:
        """Download what is missing among the newest candles, then return the newest ``n`` stored.

        Fetches from the last stored candle on, or, when that is more than
        :data:`MAX_TAIL_BARS` back (or nothing is stored), only the newest ``n`` bars' span.
        Raises the downloader's errors (network, API) so the caller can retry.
        """
        key = self._key(symbol, interval)
        now = self.downloader.now_ms()
        span = interval_ms(interval)
        start = now - n * span
        bounds = self.store.bounds(key)
        if bounds is not None and bounds.end >= now - MAX_TAIL_BARS * span:
            start = min(start, bounds.end)
        result = self.downloader.run(DownloadRequest(key, max(0, start), None, "rest"), cancel=cancel)
        if result.problems:
            log.warning("history of %s: %s", key, "; ".join(result.problems))
        return self.store.read_klines(key, last=n)

    def older(self, symbol: str, interval: str, before_ms: int, n: int) -> list[Kline]:
        """Up to ``n`` candles before ``before_ms``: downloaded first where the store lacks them."""
        key = self._key(symbol, interval)
        span = interval_ms(interval)
        start = max(0, before_ms - n * span)
        self.downloader.run(DownloadRequest(key, start, before_ms - 1, "rest"))
        return self.store.read_klines(key, end_ms=before_ms - 1, last=n)

    def save(self, klines: Sequence[Kline]) -> None:
        """Store closed live candles (no coverage is claimed: a stream may have skipped some)."""
        by_key: dict[SeriesKey, list[Kline]] = {}
        for k in klines:
            if k.closed:
                by_key.setdefault(self._key(k.symbol, k.interval), []).append(k)
        for key, ks in by_key.items():
            self.store.upsert(key, ks)
