"""One indicator's live state: a TA-Lib stream handle plus its output series. No Qt.

The exactness strategy (why live values equal a full recomputation, bit for bit):

TA-Lib 0.8 has a streaming API (``talib.stream``) for all of its functions. A handle opened
on history carries the function's whole internal state forward (running sums, EMA seeds,
Wilder smoothing, SAR's trend, OBV's total, Hilbert-transform filters...), and TA-Lib
documents every value it produces as bit-identical to the function API on the same bars.
So no tail window, no convergence argument and no per-function window length are needed:

* load: ``open_and_fill`` on every bar but the last (one pass gives the handle *and* the batch
  series), then ``peek`` the last bar, which may still be forming;
* the forming bar changes (same open time): ``peek`` it again (commits nothing);
* a newer bar arrives: ``update`` with the final version of the previous bar (its finished
  values), then ``peek`` the new one.

Our tests replay real candles bar by bar (each bar first as a partial version, then final)
and compare with TA-Lib's function API on the same prefix: equal, NaN for NaN, for all 201
functions (see tests/unit/test_indicator_engine.py).

Fallbacks, both exact by construction (the function API over all bars):

* ``pending``: too little history to open a handle (TA-Lib raises InsufficientHistory):
  recompute in full (cheap, the series is short) and retry opening on the next new bar;
* ``full``: an input column is not finite somewhere (TA-Lib streams are undefined on NaN in
  the history), or a handle failed: recompute in full on every update.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import talib
from talib import stream as ta_stream

from binmon.indicators.catalog import FunctionInfo, function_info, lookback
from binmon.indicators.spec import IndicatorSpec

__all__ = ["Buffer", "Track", "TrackMode", "input_slots"]

log = logging.getLogger(__name__)

TrackMode = Literal["stream", "pending", "full"]
_MIN_CAPACITY = 1024


class Buffer:
    """A growable 1-d array: amortised O(1) append (100k-bar series must not be copied per bar)."""

    __slots__ = ("data", "n")

    def __init__(self, values: np.ndarray, dtype: Any = np.float64) -> None:
        self.n = int(values.size)
        self.data = np.empty(max(_MIN_CAPACITY, self.n + self.n // 4), dtype=dtype)
        self.data[: self.n] = values

    def view(self) -> np.ndarray:
        """The ``n`` values (a view: valid until the next append)."""
        return self.data[: self.n]

    def append(self, value: float) -> None:
        """Add one value at the end, growing the storage by 1.5x when full."""
        if self.n == self.data.size:
            grown = np.empty(self.data.size + self.data.size // 2, dtype=self.data.dtype)
            grown[: self.n] = self.data[: self.n]
            self.data = grown
        self.data[self.n] = value
        self.n += 1

    def assign(self, values: np.ndarray) -> None:
        """Replace every value (a full recompute)."""
        if values.size > self.data.size:
            self.data = np.empty(values.size + values.size // 4, dtype=self.data.dtype)
        self.data[: values.size] = values
        self.n = int(values.size)


class Track:
    """The live state of one validated spec over an engine's columns.

    ``slots`` name the engine columns the function reads, positionally (``close`` replaced
    by the spec's source for a single-price function, e.g. ``hl2``). Not thread-safe: build
    it on any thread, then use it from one.
    """

    __slots__ = (
        "_handle",
        "_kwargs",
        "_need",
        "_stream_cls",
        "info",
        "mode",
        "names",
        "outputs",
        "slots",
        "spec",
    )

    def __init__(self, spec: IndicatorSpec) -> None:
        self.spec = spec
        self.info: FunctionInfo = function_info(spec.function)
        self.names: tuple[str, ...] = self.info.output_names
        self.slots: tuple[str, ...] = input_slots(spec)
        self._kwargs: dict[str, int | float] = dict(spec.params)
        self._stream_cls: Any = getattr(ta_stream, self.info.name)
        # A handle needs at least lookback + 1 closed bars (a few functions a little more:
        # TA-Lib says so with InsufficientHistory, and we retry on the next bar).
        self._need = lookback(self.info.name, self._kwargs) + 1
        self._handle: Any = None
        self.mode: TrackMode = "pending"
        self.outputs: list[Buffer] = [Buffer(np.empty(0)) for _ in self.info.outputs]

    # ------------------------------------------------------------ whole series

    def build(self, cols: Mapping[str, np.ndarray], n: int, finite: bool) -> None:
        """Compute every value over the first ``n`` bars of ``cols`` and open the handle if possible.

        ``finite``: every value of the input columns is finite (else ``full`` mode).
        """
        arrays = [cols[s][:n] for s in self.slots]
        self._handle = None
        if n == 0:  # TA-Lib wants at least one bar
            self.mode = "pending"
            for buf in self.outputs:
                buf.assign(np.empty(0))
            return
        if not finite:
            self.mode = "full"
        elif n - 1 >= self._need and self._open(arrays, n):
            return
        else:
            self.mode = "pending"
        self._full(arrays)

    def _open(self, arrays: Sequence[np.ndarray], n: int) -> bool:
        """Open on bars ``[0, n-1)`` and peek bar ``n-1``; False when TA-Lib wants more history."""
        try:
            handle, batch = self._stream_cls.open_and_fill(*[a[: n - 1] for a in arrays], **self._kwargs)
        except talib.InsufficientHistory:
            return False
        last = _floats(handle.peek(*[float(a[n - 1]) for a in arrays]))
        for buf, series, value in zip(self.outputs, _tuple(batch), last, strict=True):
            buf.assign(np.asarray(series, dtype=np.float64))
            buf.append(value)
        self._handle = handle
        self.mode = "stream"
        return True

    def _full(self, arrays: Sequence[np.ndarray]) -> None:
        out = _tuple(getattr(talib, self.info.name)(*arrays, **self._kwargs))
        for buf, series in zip(self.outputs, out, strict=True):
            buf.assign(np.asarray(series, dtype=np.float64))

    # ------------------------------------------------------------ live

    def replace_last(self, cols: Mapping[str, np.ndarray], n: int, bar: Sequence[float]) -> tuple[float, ...]:
        """The forming last bar (index ``n-1``, already written in ``cols``) changed: its new values.

        ``bar``: this track's inputs at ``n-1``, in slot order.
        """
        if self.mode == "stream":
            try:
                values = _floats(self._handle.peek(*bar))
            except Exception as exc:  # a handle refusing a bar (non-finite): recompute instead
                return self._fail(exc, cols, n)
            for buf, v in zip(self.outputs, values, strict=True):
                buf.data[buf.n - 1] = v
            return values
        self._full([cols[s][:n] for s in self.slots])
        return self._last()

    def commit_last(self, prev: Sequence[float]) -> tuple[float, ...] | None:
        """Before an append: feed the final version of the last bar; its finished values.

        None when not streaming (the append's full recompute covers it).
        """
        if self.mode != "stream":
            return None
        try:
            values = _floats(self._handle.update(*prev))
        except Exception as exc:
            log.warning("%s: stream update failed (%s); full recomputes from now on", self.spec.function, exc)
            self._handle, self.mode = None, "full"
            return None
        for buf, v in zip(self.outputs, values, strict=True):
            buf.data[buf.n - 1] = v
        return values

    def append(self, cols: Mapping[str, np.ndarray], n: int, bar: Sequence[float]) -> tuple[float, ...]:
        """A new last bar (index ``n-1``, already appended to ``cols``): its values."""
        if self.mode == "stream":
            try:
                values = _floats(self._handle.peek(*bar))
            except Exception as exc:
                return self._fail(exc, cols, n)
            for buf, v in zip(self.outputs, values, strict=True):
                buf.append(v)
            return values
        arrays = [cols[s][:n] for s in self.slots]
        if self.mode == "pending" and n - 1 >= self._need and self._open(arrays, n):
            return self._last()
        self._full(arrays)
        return self._last()

    def catch_up(self, cols: Mapping[str, np.ndarray], start: int, n: int, finite: bool) -> None:
        """Bring a track built on the first ``start`` bars up to ``n`` bars (see Engine.attach).

        Bars ``start-1 .. n-2`` are final now: fed to the handle in order; bar ``n-1`` is peeked.
        A track that is not streaming is simply rebuilt (short history or full mode).
        """
        if self.mode != "stream" or not finite:
            self.build(cols, n, finite)
            return
        rows = [cols[s] for s in self.slots]
        for i in range(start - 1, n - 1):
            values = _floats(self._handle.update(*[float(r[i]) for r in rows]))
            for buf, v in zip(self.outputs, values, strict=True):
                if i < buf.n:
                    buf.data[i] = v
                else:
                    buf.append(v)
        last = _floats(self._handle.peek(*[float(r[n - 1]) for r in rows]))
        for buf, v in zip(self.outputs, last, strict=True):
            if n - 1 < buf.n:
                buf.data[n - 1] = v
            else:
                buf.append(v)

    def values(self) -> dict[str, np.ndarray]:
        """Output name -> read-only view of its series (valid until the next update)."""
        out: dict[str, np.ndarray] = {}
        for info, buf in zip(self.info.outputs, self.outputs, strict=True):
            view = buf.view()
            view.flags.writeable = False
            out[info.name] = view
        return out

    def _last(self) -> tuple[float, ...]:
        return tuple(float(b.data[b.n - 1]) for b in self.outputs)

    def _fail(self, exc: Exception, cols: Mapping[str, np.ndarray], n: int) -> tuple[float, ...]:
        log.warning("%s: stream failed (%s); recomputing in full from now on", self.spec.function, exc)
        self._handle, self.mode = None, "full"
        self._full([cols[s][:n] for s in self.slots])
        return self._last()


def input_slots(spec: IndicatorSpec) -> tuple[str, ...]:
    """The columns ``spec`` reads, in TA-Lib's positional order (its source replacing the price input)."""
    info = function_info(spec.function)
    slots = list(info.inputs)
    if info.source_index is not None:
        slots[info.source_index] = spec.source
    return tuple(slots)


def _tuple(value: Any) -> tuple[Any, ...]:
    """TA-Lib's result as a tuple (single-output functions return a bare value or array)."""
    return value if isinstance(value, tuple) else (value,)


def _floats(value: Any) -> tuple[float, ...]:
    """A stream result as floats (integer outputs, e.g. candlestick patterns, come back as int)."""
    return tuple(float(v) for v in value) if isinstance(value, tuple) else (float(value),)
