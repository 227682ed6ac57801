"""The candle store's block codec: numpy arrays of candles <-> column blocks (BLOBs). Pure, no I/O.

In memory a batch of candles is a structured array of :data:`KLINE_DTYPE` (one record per
candle, the Kline fields binmon keeps). On disk one block holds the candles of one series whose
open times fall in one fixed span, sorted by open time, unique, laid out *column by column*:
``open_time[0..n) open[0..n) ... taker_buy_quote[0..n)``, every value 8 bytes little-endian.
The column layout is what makes reading fast: a column of a whole series is one
``np.concatenate`` of ``np.frombuffer`` views, with no per-record work, and the open times alone
(what coverage queries need) are the first ``8 * n`` bytes of each block.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence

import numpy as np
import pandas as pd

from binmon.core.intervals import interval_ms, open_time
from binmon.core.models import Kline

#: Stored Kline fields, in block order. ``symbol``/``interval`` are the series key; ``closed`` is
#: always true in the store; Binance's trade ids are not kept (the archives do not carry them).
FIELDS: tuple[str, ...] = (
    "open_time",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "close_time",
    "quote_volume",
    "trades",
    "taker_buy_base",
    "taker_buy_quote",
)
INT_FIELDS: frozenset[str] = frozenset({"open_time", "close_time", "trades"})
KLINE_DTYPE = np.dtype([(f, "<i8" if f in INT_FIELDS else "<f8") for f in FIELDS])
#: Bytes one candle takes in a block.
RECORD_BYTES = KLINE_DTYPE.itemsize
#: Nominal candles per block. 4096 1m candles (360 KB, ~2.8 days) keep a 1M-candle series at
#: ~245 blocks: few enough rows that a full read is dominated by memcpy, small enough that an
#: upsert of one page (1000 candles) rewrites at most ~700 KB. See benchmarks/store_read.py.
BLOCK_CANDLES = 4096
#: ``1M`` has no fixed length; a 31-day month is an upper bound, so a block never holds more
#: than BLOCK_CANDLES months.
_MONTH_NOMINAL_MS = 31 * 24 * 3600 * 1000


class BlockError(ValueError):
    """A stored block whose bytes do not match its recorded length (a damaged store)."""


def block_span_ms(interval: str, candles: int | None = None) -> int:
    """Length in ms of the open-time span one block of ``interval`` covers (``candles`` candles,
    :data:`BLOCK_CANDLES` when None). A new series is created with this span and keeps it."""
    step = _MONTH_NOMINAL_MS if interval == "1M" else interval_ms(interval)
    return step * (BLOCK_CANDLES if candles is None else candles)


def empty_array(n: int = 0) -> np.ndarray:
    """A zeroed candle array of length ``n``."""
    return np.zeros(n, dtype=KLINE_DTYPE)


def klines_to_array(klines: Sequence[Kline]) -> np.ndarray:
    """The candles' stored fields as a :data:`KLINE_DTYPE` array, in the given order."""
    arr = empty_array(len(klines))
    # Column by column: ~40 % faster than one tuple per candle (no tuple per record).
    for f in FIELDS:
        arr[f] = np.fromiter(map(operator.attrgetter(f), klines), dtype=KLINE_DTYPE[f], count=len(klines))
    return arr


def array_to_klines(arr: np.ndarray, symbol: str, interval: str) -> list[Kline]:
    """Closed :class:`Kline` values of ``symbol``/``interval`` for every record of ``arr``.

    About 5 s per million candles (building frozen dataclasses is the cost): for bulk work
    read a DataFrame instead.
    """
    # tolist() turns each column into Python ints/floats in C; zipping them is far cheaper than
    # indexing records one by one.
    c = {f: arr[f].tolist() for f in FIELDS}
    return [
        Kline(symbol, interval, ot, ct, o, h, lo, cl, v, qv, n, tb, tq, True)
        for ot, o, h, lo, cl, v, ct, qv, n, tb, tq in zip(*(c[f] for f in FIELDS), strict=True)
    ]


def frame_to_array(frame: pd.DataFrame) -> np.ndarray:
    """A DataFrame with (at least) the :data:`FIELDS` columns -> :data:`KLINE_DTYPE` array.

    Raises ValueError naming a missing column, or when a column does not convert (e.g. NaN
    in an integer column).
    """
    missing = [f for f in FIELDS if f not in frame.columns]
    if missing:
        raise ValueError(f"candle frame lacks column(s) {', '.join(missing)}")
    arr = empty_array(len(frame))
    for f in FIELDS:
        col = frame[f].to_numpy()
        # A float column headed for int64 would truncate silently (or fail on NaN): refuse fractions.
        if (
            f in INT_FIELDS
            and col.dtype.kind == "f"
            and (not np.all(np.isfinite(col)) or np.any(col != np.floor(col)))
        ):
            raise ValueError(f"column {f} holds non-integer values")
        try:
            arr[f] = col
        except (TypeError, ValueError) as exc:
            raise ValueError(f"column {f}: {exc}") from None
    return arr


def check_times(arr: np.ndarray, interval: str) -> None:
    """ValueError unless every ``open_time`` of ``arr`` is an open time of ``interval``."""
    ot = arr["open_time"]
    if ot.size == 0:
        return
    if interval == "1M":
        bad = [int(t) for t in np.unique(ot) if open_time(interval, int(t)) != t]
    else:
        step = interval_ms(interval)
        offset = open_time(interval, 0)  # 0 except for 1w (Monday-aligned weeks)
        bad = ot[(ot - offset) % step != 0][:1].tolist()
    if bad:
        raise ValueError(f"open time {bad[0]} is not a {interval} open time")


def normalize(arr: np.ndarray) -> np.ndarray:
    """``arr`` sorted by open time with one record per open time: the *last* given one wins."""
    if arr.size <= 1:
        return arr.copy()
    order = np.argsort(arr["open_time"], kind="stable")
    s = arr[order]
    ot = s["open_time"]
    keep = np.empty(ot.size, dtype=bool)
    keep[:-1] = ot[1:] != ot[:-1]  # last of each group of equal open times
    keep[-1] = True
    return s[keep]


def merge(old: np.ndarray, new: np.ndarray) -> np.ndarray:
    """Normalized ``old`` and ``new`` merged by open time; a record of ``new`` replaces ``old``'s."""
    if old.size == 0:
        return new
    if new.size == 0:
        return old
    if new["open_time"][0] > old["open_time"][-1]:
        return np.concatenate((old, new))  # the common case: appending newer candles
    return normalize(np.concatenate((old, new)))


def encode_block(arr: np.ndarray) -> bytes:
    """A normalized candle array -> block bytes (column after column, 8-byte little-endian)."""
    return b"".join(np.ascontiguousarray(arr[f]).tobytes() for f in FIELDS)


def _column(blob: bytes, n: int, i: int) -> np.ndarray:
    return np.frombuffer(blob, dtype=KLINE_DTYPE[i], count=n, offset=8 * n * i)


def _check(blob: bytes, n: int) -> None:
    if n < 0 or len(blob) != n * RECORD_BYTES:
        raise BlockError(f"damaged block: {len(blob)} bytes for {n} candles")


def decode_block(blob: bytes, n: int) -> np.ndarray:
    """Block bytes holding ``n`` candles -> a new (writable) :data:`KLINE_DTYPE` array."""
    _check(blob, n)
    arr = empty_array(n)
    for i, f in enumerate(FIELDS):
        arr[f] = _column(blob, n, i)
    return arr


def decode_open_times(blob: bytes, n: int) -> np.ndarray:
    """The ``n`` open times at the start of a block (``blob`` may be the whole block or its prefix)."""
    if len(blob) < 8 * n:
        raise BlockError(f"damaged block: {len(blob)} bytes for {n} open times")
    return np.frombuffer(blob, dtype="<i8", count=n)


def concat_columns(blocks: Sequence[tuple[int, bytes]]) -> dict[str, np.ndarray]:
    """``(n, blob)`` blocks in open-time order -> one new contiguous array per field."""
    for n, blob in blocks:
        _check(blob, n)
    return {
        f: np.concatenate([_column(blob, n, i) for n, blob in blocks])
        if blocks
        else np.empty(0, dtype=KLINE_DTYPE[i])
        for i, f in enumerate(FIELDS)
    }


def frame_from_columns(cols: dict[str, np.ndarray]) -> pd.DataFrame:
    """A DataFrame with exactly the :data:`FIELDS` columns, in order, over a RangeIndex."""
    # copy=False: the columns are fresh arrays made for this frame; one more copy per read
    # would cost ~30 ms per million candles for nothing.
    return pd.DataFrame({f: cols[f] for f in FIELDS}, copy=False)
