"""REST backfill for the stream client: fetch the candles a reconnect may have missed."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from binmon.binance.rest import RestClient
from binmon.core.models import Kline

BackfillFn = Callable[[str, str, int], Awaitable[list[Kline]]]


def rest_backfill(rest: RestClient) -> BackfillFn:
    """Return an async ``backfill(symbol, interval, start_open_ms)`` for :class:`StreamClient`.

    It pages ``GET /api/v3/klines`` from ``start_open_ms`` up to now on a worker thread
    (requests is blocking; the event loop must stay free) and returns the candles oldest
    first, the still-forming one last. There is deliberately no cap: a long outage on a
    short interval costs a few more 1000-candle pages, and a cap would leave a hole.
    """

    def fetch(symbol: str, interval: str, start_ms: int) -> list[Kline]:
        out: list[Kline] = []
        for page in rest.iter_klines(symbol, interval, start_ms):
            out.extend(page)
        return out

    async def backfill(symbol: str, interval: str, start_ms: int) -> list[Kline]:
        return await asyncio.get_running_loop().run_in_executor(None, fetch, symbol, interval, start_ms)

    return backfill
