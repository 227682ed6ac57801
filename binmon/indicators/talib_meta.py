"""What TA-Lib itself says about a function: inputs, parameter ranges, output types. No Qt.

``talib.abstract`` exposes names, groups, defaults and flags, but not the valid range of a
parameter: TA-Lib's C metadata has one (``TA_OptInputParameterInfo.dataSet``) and the
Python binding does not bind it. Reading it with ``ctypes`` works on this build but means
guessing C struct layouts, and the bundled C library's ``TA_FuncInfo`` does *not* match
the layout the binding's ``.pxd`` declares (a wrong guess segfaults). So the ranges here are
measured instead: TA-Lib checks every parameter on every call and answers ``TA_BAD_PARAM``,
so a few calls on a 64-bar series find the exact boundaries (bit-exact for float
parameters, by bisecting the ordered doubles). Checked by hand against the C metadata read
with ctypes on TA-Lib 0.8.2: identical for all 201 functions. Cost: ~10-20 ms once.

Parameters are probed with the others at their defaults; integer bounds are then widened by a
second probe with the other integer parameters at their own extremes, because a few
functions constrain parameters together (MAVP: ``minperiod <= maxperiod``). A spec's
combination is still checked as a whole by a dry run (:func:`dry_run`).
"""

from __future__ import annotations

import functools
import math
import struct
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

import numpy as np
import talib
from talib import abstract

__all__ = [
    "PROBE_BARS",
    "MeasuredParam",
    "ParamKind",
    "ProbeResult",
    "TalibParamError",
    "abstract_function",
    "call_talib",
    "dry_run",
    "flat_inputs",
    "probe_function",
    "probe_inputs",
]

#: Bars in the synthetic series the probes run on: longer than any default lookback does not
#: matter (TA-Lib checks parameters before it looks at the data).
PROBE_BARS = 64
#: A float parameter accepted at +-1e37 has no real bound (TA-Lib's "unbounded" is +-3e37;
#: -4e37 is its "use the default" sentinel, which must not be probed).
_UNBOUNDED = 1e37
#: TA-Lib's "use the default" sentinel for integers is INT_MIN: never probe it.
_INT_LOW = -(2**31) + 1
_INT_HIGH = 2**31 - 1
#: The MA types probed (TA-Lib 0.8 knows 14; room for more).
_MATYPE_PROBE = range(64)

ParamKind = Literal["int", "float", "matype"]


def abstract_function(name: str, **params: Any) -> Any:
    """``talib.abstract.Function(name, **params)`` (untyped: TA-Lib's stubs omit it)."""
    return cast(Any, abstract).Function(name, **params)


class TalibParamError(ValueError):
    """TA-Lib refused the parameters (``TA_BAD_PARAM``)."""


@dataclass(frozen=True, slots=True)
class MeasuredParam:
    """A parameter's kind and its accepted values as TA-Lib enforces them.

    ``kind`` is ``"int"``, ``"float"`` or ``"matype"``. ``minimum`` / ``maximum`` are None when
    unbounded; ``choices`` lists the accepted MA type codes (``matype`` only).
    """

    name: str
    kind: ParamKind
    default: int | float
    minimum: int | float | None
    maximum: int | float | None
    choices: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """One function as measured: its parameters and whether each output is an integer series."""

    params: tuple[MeasuredParam, ...]
    integer_outputs: tuple[bool, ...]


@functools.cache
def flat_inputs(function: str) -> tuple[tuple[str, str], ...]:
    """``(input group, series name)`` in the positional order TA-Lib's function API wants.

    The group is abstract's input name (``price``, ``price0``, ``prices``, ``periods``), the
    series the default column: ``OBV`` -> ``(("price", "close"), ("prices", "volume"))``.
    """
    out: list[tuple[str, str]] = []
    for group, series in abstract_function(function).input_names.items():
        names = [series] if isinstance(series, str) else list(series)
        out += [(group, str(s)) for s in names]
    return tuple(out)


def probe_inputs(bars: int = PROBE_BARS) -> dict[str, np.ndarray]:
    """A small, deterministic, well-formed candle series (plus a ``periods`` column for MAVP)."""
    i = np.arange(bars, dtype=np.float64)
    close = 100.0 + 3.0 * np.sin(i / 3.0) + 0.1 * i
    return {
        "open": close - 0.2 * np.cos(i),
        "high": close + 1.0 + 0.1 * np.sin(i),
        "low": close - 1.0 - 0.1 * np.cos(i),
        "close": close,
        "volume": 10.0 + 5.0 * np.abs(np.sin(i / 2.0)),
        "periods": np.full(bars, 5.0),
    }


def call_talib(
    function: str, arrays: Sequence[np.ndarray], params: Mapping[str, Any]
) -> tuple[np.ndarray, ...]:
    """TA-Lib's function API on positional ``arrays``: always a tuple of outputs.

    Raises :class:`TalibParamError` for ``TA_BAD_PARAM``; other TA-Lib failures propagate.
    """
    try:
        out = getattr(talib, function)(*arrays, **params)
    except Exception as exc:  # TA-Lib raises a bare Exception naming the C error code
        if "TA_BAD_PARAM" in str(exc):
            raise TalibParamError(str(exc)) from None
        raise
    return out if isinstance(out, tuple) else (out,)


def dry_run(function: str, params: Mapping[str, Any]) -> None:
    """Call ``function`` once on the probe series: :class:`TalibParamError` when TA-Lib refuses ``params``."""
    data = probe_inputs()
    call_talib(function, [data[s] for _, s in flat_inputs(function)], params)


def probe_function(function: str) -> ProbeResult:
    """Measure ``function``'s parameter ranges and output types by calling TA-Lib (see module doc)."""
    data = probe_inputs()
    arrays = [data[s] for _, s in flat_inputs(function)]
    defaults: dict[str, Any] = dict(abstract_function(function).parameters)
    outputs = call_talib(function, arrays, defaults)
    integer_outputs = tuple(bool(np.issubdtype(o.dtype, np.integer)) for o in outputs)

    def accepts(overrides: Mapping[str, Any]) -> bool:
        try:
            call_talib(function, arrays, {**defaults, **overrides})
        except TalibParamError:
            return False
        return True

    first = {name: _measure(name, default, _with(accepts, {}, name)) for name, default in defaults.items()}
    return ProbeResult(tuple(_widen(first, accepts).values()), integer_outputs)


def _measure(name: str, default: Any, accepts: Callable[[Any], bool]) -> MeasuredParam:
    if name.endswith("matype"):
        choices = tuple(m for m in _MATYPE_PROBE if accepts(m))
        return MeasuredParam(name, "matype", int(default), min(choices), max(choices), choices)
    if isinstance(default, int):
        lo = _int_bound(accepts, int(default), _INT_LOW, guesses=(1, 2, 0))
        hi = _int_bound(accepts, int(default), _INT_HIGH, guesses=(100_000,))
        return MeasuredParam(name, "int", int(default), lo, hi)
    flo = _float_bound(accepts, float(default), -_UNBOUNDED, guesses=(0.0, 0.01))
    fhi = _float_bound(accepts, float(default), _UNBOUNDED, guesses=(1.0, 0.99, 100.0))
    return MeasuredParam(name, "float", float(default), flo, fhi)


def _widen(
    first: dict[str, MeasuredParam], accepts: Callable[[Mapping[str, Any]], bool]
) -> dict[str, MeasuredParam]:
    """Re-probe integer bounds with the other integer parameters at their extremes (MAVP: min <= max)."""
    ints = {n: p for n, p in first.items() if p.kind == "int"}
    if len(ints) < 2:
        return first
    out = dict(first)
    for name, p in ints.items():
        lows = {n: q.minimum for n, q in ints.items() if n != name and q.minimum is not None}
        highs = {n: q.maximum for n, q in ints.items() if n != name and q.maximum is not None}
        lo, hi = p.minimum, p.maximum
        if lo is not None and accepts(lows):
            lo2 = _int_bound(_with(accepts, lows, name), int(lo), _INT_LOW, guesses=(1, 2, 0))
            lo = lo2 if lo2 is None else min(int(lo), lo2)
        if hi is not None and accepts(highs):
            hi2 = _int_bound(_with(accepts, highs, name), int(hi), _INT_HIGH, guesses=(100_000,))
            hi = hi2 if hi2 is None else max(int(hi), hi2)
        out[name] = MeasuredParam(name, "int", p.default, lo, hi)
    return out


def _with(
    accepts: Callable[[Mapping[str, Any]], bool], others: Mapping[str, Any], name: str
) -> Callable[[Any], bool]:
    """``accepts`` as a function of one parameter, the others fixed."""
    return lambda v: accepts({**others, name: v})


def _int_bound(accepts: Callable[[int], bool], good: int, far: int, guesses: Sequence[int]) -> int | None:
    """The accepted integer nearest ``far`` going from ``good`` (accepted); None if ``far`` is accepted."""
    if accepts(far):
        return None
    step = 1 if far > good else -1
    for g in guesses:  # the usual answers first: two calls instead of ~32
        if (g - good) * step >= 0 and accepts(g) and not accepts(g + step):
            return g
    bad = far
    while abs(bad - good) > 1:
        mid = (good + bad) // 2
        if accepts(mid):
            good = mid
        else:
            bad = mid
    return good


def _float_bound(
    accepts: Callable[[float], bool], good: float, far: float, guesses: Sequence[float]
) -> float | None:
    """As :func:`_int_bound` over doubles, bisecting their bit patterns so the bound is exact."""
    if accepts(far):
        return None
    up = far > good
    for g in guesses:
        if (g >= good if up else g <= good) and accepts(g) and not accepts(math.nextafter(g, far)):
            return g
    gi, bi = _ordered(good), _ordered(far)
    while abs(bi - gi) > 1:
        mid = (gi + bi) // 2
        if accepts(_unordered(mid)):
            gi = mid
        else:
            bi = mid
    return _unordered(gi)


def _ordered(x: float) -> int:
    """A double's position in the total order of doubles (monotonic in ``x``)."""
    (i,) = struct.unpack("<q", struct.pack("<d", x))
    return int(i) if i >= 0 else -(int(i) & 0x7FFF_FFFF_FFFF_FFFF)


def _unordered(i: int) -> float:
    bits = i if i >= 0 else (-i) | -0x8000_0000_0000_0000
    (x,) = struct.unpack("<d", struct.pack("<q", bits))
    return float(x)
