"""Engine inputs: candle columns, price sources and live bars as plain floats. No Qt.

Candles come as a pandas DataFrame (``CandleStore.read_frame``: columns ``open_time, open,
high, low, close, volume, ...``) or a mapping of numpy arrays with the same names. Derived
price sources are computed with the same floating-point operations, in the same order, for a
whole column (numpy) and for one bar (Python floats), so both give bit-identical values:
that is what lets the incremental path equal a full recomputation exactly.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, TypeAlias

import numpy as np
import pandas as pd

__all__ = [
    "BASE_COLUMNS",
    "DERIVED_SOURCES",
    "CandlesLike",
    "InputError",
    "bar_fields",
    "candle_columns",
    "derived_column",
    "derived_value",
]

#: The columns every candle input has (``open_time`` is read when present).
BASE_COLUMNS: tuple[str, ...] = ("open", "high", "low", "close", "volume")
#: Price sources computed from OHLC: hl2 = (h+l)/2, hlc3 = (h+l+c)/3, ohlc4 = (o+h+l+c)/4.
DERIVED_SOURCES: tuple[str, ...] = ("hl2", "hlc3", "ohlc4")

#: A candle frame (pandas) or a mapping of column name -> array-like.
CandlesLike: TypeAlias = pd.DataFrame | Mapping[str, Any]


class InputError(ValueError):
    """Candles or a bar lack a column an indicator needs, or have the wrong shape."""


def candle_columns(
    candles: CandlesLike, extra: Iterable[str] = ()
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """``(columns, open_time)`` from a candle frame or mapping, oldest first.

    ``columns`` holds contiguous float64 copies of the base columns plus each name in ``extra``
    (e.g. MAVP's ``periods``); ``open_time`` is int64 ms (``0..n-1`` when the input has none,
    for callers that only compute). Raises :class:`InputError` for a missing column or columns
    of different lengths.
    """
    names = list(dict.fromkeys([*BASE_COLUMNS, *extra]))
    cols: dict[str, np.ndarray] = {}
    for name in names:
        if name not in candles:
            raise InputError(f"candles have no {name!r} column")
        cols[name] = np.array(_values(candles[name]), dtype=np.float64, copy=True, order="C")
    lengths = {a.shape for a in cols.values()}
    if len(lengths) != 1 or len(next(iter(lengths))) != 1:
        raise InputError(f"candle columns must be 1-d and of one length (got shapes {sorted(lengths)})")
    n = next(iter(cols.values())).size
    if "open_time" in candles:
        times = np.array(_values(candles["open_time"]), copy=True)
        if np.issubdtype(times.dtype, np.datetime64):
            times = times.astype("datetime64[ms]")  # pandas 3 gives [us]: convert, never divide
        times = times.astype(np.int64)
        if times.shape != (n,):
            raise InputError(f"open_time has {times.size} values for {n} candles")
    else:
        times = np.arange(n, dtype=np.int64)
    return cols, times


def _values(col: Any) -> Any:
    return col.to_numpy() if isinstance(col, pd.Series | pd.Index) else col


def derived_column(cols: Mapping[str, np.ndarray], source: str) -> np.ndarray:
    """A whole derived source column (``hl2``, ``hlc3``, ``ohlc4``); base names return the column itself."""
    if source not in DERIVED_SOURCES:
        return cols[source]
    o, h, low, c = cols["open"], cols["high"], cols["low"], cols["close"]
    # Same operations and order as derived_value: left-to-right sums, then one division.
    if source == "hl2":
        return (h + low) / 2.0
    if source == "hlc3":
        return (h + low + c) / 3.0
    return (o + h + low + c) / 4.0


def derived_value(bar: Mapping[str, float], source: str) -> float:
    """One bar's value of ``source`` (bit-identical to the same row of :func:`derived_column`)."""
    if source not in DERIVED_SOURCES:
        return bar[source]
    if source == "hl2":
        return (bar["high"] + bar["low"]) / 2.0
    if source == "hlc3":
        return (bar["high"] + bar["low"] + bar["close"]) / 3.0
    return (bar["open"] + bar["high"] + bar["low"] + bar["close"]) / 4.0


def bar_fields(bar: object, extra: Iterable[str] = ()) -> tuple[int, dict[str, float]]:
    """``(open_time, {column: float})`` of a live bar: a :class:`~binmon.core.models.Kline`, any
    object with those attributes, or a mapping with those keys. ``extra`` names further
    inputs (MAVP's ``periods``). Raises :class:`InputError` when one is missing.
    """
    get = bar.get if isinstance(bar, Mapping) else lambda k, d=None: getattr(bar, k, d)
    open_time = get("open_time")
    if open_time is None:
        raise InputError("bar has no open_time")
    values: dict[str, float] = {}
    for name in (*BASE_COLUMNS, *extra):
        v = get(name)
        if v is None:
            raise InputError(f"bar has no {name!r}")
        values[name] = float(v)
    return int(open_time), values
