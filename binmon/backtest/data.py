"""Candles for a backtest from the local store, and what the store still lacks. No Qt.

The UI and the CLI call :func:`missing_ranges` first; when it is not empty they fetch those
ranges with :class:`binmon.history.download.Downloader` (the one download path of binmon),
then :func:`load_candles`.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

import pandas as pd

from binmon.core.intervals import interval_ms, open_times
from binmon.history.planner import clamp_to_closed, missing
from binmon.history.ranges import SeriesKey, TimeRange, align_inward, merge_ranges
from binmon.history.store import CandleStore

__all__ = ["load_candles", "missing_count", "missing_ranges", "series_key"]

StoreLike = CandleStore | str | Path


def series_key(symbol: str, interval: str, market: str = "spot") -> SeriesKey:
    """The store's key for ``symbol`` (upper-cased) ``interval`` on ``market``; ValueError when invalid."""
    return SeriesKey(market, symbol.strip().upper(), interval)


def _opened(store: StoreLike) -> AbstractContextManager[CandleStore]:
    """An open store: the one given (left open), or the file at a path (closed after use).

    A path that does not exist raises FileNotFoundError (reading must not create a store);
    a file that is not a store raises StoreError.
    """
    if isinstance(store, CandleStore):
        return nullcontext(store)
    path = Path(store)
    if not path.exists():
        raise FileNotFoundError(f"no candle store at {path}")
    return CandleStore.open(path)


def load_candles(
    store: StoreLike, symbol: str, interval: str, start_ms: int, end_ms: int, market: str = "spot"
) -> pd.DataFrame:
    """The stored candles with ``start_ms <= open_time <= end_ms``, oldest first.

    Columns as :meth:`CandleStore.read_frame` gives them (``open_time, open, high, low, close,
    volume, ...``); empty when nothing is stored there. ``store``: an open store or its path.
    """
    key = series_key(symbol, interval, market)
    with _opened(store) as s:
        return s.read_frame(key, start_ms, end_ms)


def missing_ranges(
    store: StoreLike,
    symbol: str,
    interval: str,
    start_ms: int,
    end_ms: int,
    market: str = "spot",
    *,
    now_ms: int | None = None,
) -> list[TimeRange]:
    """The aligned open-time ranges inside ``[start_ms, end_ms]`` that the store neither holds nor
    knows to be empty (downloaded with no trade), i.e. what a download would still fetch.

    ``now_ms`` (the exchange's clock) leaves out candles not closed yet, which no download can
    store. A path to a store that does not exist yet means everything is missing.
    """
    key = series_key(symbol, interval, market)
    want = TimeRange(start_ms, end_ms)
    if now_ms is not None:
        clamped = clamp_to_closed(want, interval, now_ms)
        if clamped is None:
            return []
        want = clamped
    if not isinstance(store, CandleStore) and not Path(store).exists():
        inner = align_inward(want, interval)
        return [] if inner is None else [inner]
    with _opened(store) as s:
        known = merge_ranges([*s.present(key), *s.coverage(key)], interval)
    return missing(known, want, interval)


def missing_count(ranges: list[TimeRange], interval: str) -> int:
    """How many candles ``ranges`` (aligned, from :func:`missing_ranges`) span."""
    if interval == "1M":
        return sum(len(open_times(interval, r.start, r.end)) for r in ranges)
    step = interval_ms(interval)
    return sum((r.end - r.start) // step + 1 for r in ranges)
