"""REST backfill for the stream client: fetch the candles a reconnect may have missed.

It pages the same way as every download (:func:`~binmon.history.download.fetch_rest_range`),
and with a store it also saves what it fetched, so the history the live app keeps has no hole
where the connection dropped.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from binmon.binance.rest import RestClient
from binmon.binance.streams import exchange_symbol
from binmon.core.intervals import next_open, open_time
from binmon.core.models import Kline
from binmon.history.download import fetch_rest_range
from binmon.history.planner import last_closed_open
from binmon.history.ranges import SeriesKey, TimeRange
from binmon.history.store_schema import StoreError

if TYPE_CHECKING:
    from binmon.history.store import CandleStore

BackfillFn = Callable[[str, str, int], Awaitable[list[Kline]]]

_log = logging.getLogger(__name__)


def rest_backfill(rest: RestClient, store: CandleStore | None = None, *, market: str = "spot") -> BackfillFn:
    """Return an async ``backfill(symbol, interval, start_open_ms)`` for :class:`StreamClient`.

    It fetches the candles opening from ``start_open_ms`` (rounded up to an open time) up to
    now on a worker thread (requests is blocking; the event loop must stay free) and returns
    them oldest first, the still-forming one last. "Now" is the server's clock, measured with
    one ``GET /api/v3/time`` per backfill (weight 1: a simulator's clock may run fast, so an old
    offset would lag), plus one interval of slack for a boundary passing meanwhile. There is
    deliberately no cap: a long outage on a short interval costs a few more 1000-candle pages,
    and a cap would leave a hole.

    With ``store``, the closed candles are also upserted into ``market``'s series, with the
    closed part of the fetched range as coverage; a store failure is logged, never raised
    (the live chart matters more than the saved copy).
    """

    def fetch(symbol: str, interval: str, start_ms: int) -> list[Kline]:
        start = open_time(interval, start_ms)
        if start < start_ms:
            start = next_open(interval, start)
        now = rest.server_now_ms(max_age_s=0.0)
        end = next_open(interval, open_time(interval, now))
        if start > end:
            return []
        klines = fetch_rest_range(rest, symbol, interval, TimeRange(start, end))
        if store is not None:
            _save(store, SeriesKey(market, exchange_symbol(symbol), interval), klines, start, now)
        return klines

    async def backfill(symbol: str, interval: str, start_ms: int) -> list[Kline]:
        return await asyncio.get_running_loop().run_in_executor(None, fetch, symbol, interval, start_ms)

    return backfill


def _save(store: CandleStore, key: SeriesKey, klines: list[Kline], start: int, now_ms: int) -> None:
    last_closed = last_closed_open(key.interval, now_ms)
    fetched = TimeRange(start, last_closed) if start <= last_closed else None
    try:
        store.upsert(key, klines, fetched=fetched)
    except (StoreError, ValueError) as exc:
        _log.warning("backfilled %s candles not saved: %s", key, exc)
