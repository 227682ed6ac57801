"""The indicator catalogue, built from TA-Lib's own metadata (``talib.abstract``). No Qt.

Every function TA-Lib reports (201 in TA-Lib 0.8), in TA-Lib's groups, with its inputs,
parameters (default, kind, valid range as TA-Lib enforces it: see :mod:`.talib_meta`) and
outputs (default drawing style from TA-Lib's output flags). Nothing here is written per
indicator; the few presentation hints that help (guide lines, ...) live in :mod:`.hints`.

* ``overlay`` is TA-Lib's "Output scale same as input" flag: such functions draw on the
  price pane by default.
* ``takes_single_price``: the function has exactly one ``price`` input (a real series, close by
  default), which the user may replace by another source (open, hl2, ...). Functions on fixed
  series (STOCH on high/low/close, BETA on two series, PVO on volume) do not.
* Candlestick patterns (flag "Output is a candlestick") output integers (-200..200, 0 = none):
  their outputs default to the ``markers`` style.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal, cast

import talib

from binmon.indicators.talib_meta import (
    MeasuredParam,
    ParamKind,
    abstract_function,
    flat_inputs,
    probe_function,
)

__all__ = [
    "STYLE_KINDS",
    "FunctionInfo",
    "OutputInfo",
    "ParamInfo",
    "StyleKind",
    "catalog",
    "function_info",
    "groups",
    "lookback",
    "ma_type_name",
    "search",
]

StyleKind = Literal["line", "dashed", "dotted", "points", "histogram", "markers"]
#: Every drawing style a series can have (``markers``: one marker per non-zero bar).
STYLE_KINDS: tuple[StyleKind, ...] = ("line", "dashed", "dotted", "points", "histogram", "markers")

#: TA-Lib output flag -> drawing style, most specific first.
_FLAG_STYLES: tuple[tuple[str, StyleKind], ...] = (
    ("Histogram", "histogram"),
    ("Dashed Line", "dashed"),
    ("Dotted Line", "dotted"),
    ("Dot", "points"),
    ("Line", "line"),
)
_OVERLAY_FLAG = "Output scale same as input"
_CANDLE_FLAG = "Output is a candlestick"
_CANDLE_INPUTS = frozenset({"open", "high", "low", "close", "volume"})


@dataclass(frozen=True, slots=True)
class ParamInfo:
    """One optional parameter of a TA-Lib function.

    ``kind``: ``int``, ``float`` or ``matype`` (an int code chosen from ``choices``,
    ``(code, short name)`` pairs). ``minimum`` / ``maximum``: inclusive bounds TA-Lib enforces,
    None when unbounded. ``help``: TA-Lib's one-line description.
    """

    name: str
    display_name: str
    default: int | float
    kind: ParamKind
    minimum: int | float | None
    maximum: int | float | None
    choices: tuple[tuple[int, str], ...] = ()
    help: str = ""


@dataclass(frozen=True, slots=True)
class OutputInfo:
    """One output series: its TA-Lib name, default style, and whether TA-Lib returns integers."""

    name: str
    style: StyleKind
    integer: bool
    flags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class FunctionInfo:
    """Everything the UI and the engine need to know about one TA-Lib function.

    ``inputs``: the series TA-Lib takes, positionally (``("high", "low", "close")``,
    ``("close", "volume")`` for OBV, ``("close", "periods")`` for MAVP). ``source_index``: the
    position in ``inputs`` of the one replaceable price input, None unless
    ``takes_single_price``.
    """

    name: str
    group: str
    display_name: str
    inputs: tuple[str, ...]
    params: tuple[ParamInfo, ...]
    outputs: tuple[OutputInfo, ...]
    overlay: bool
    source_index: int | None
    flags: tuple[str, ...]

    @property
    def takes_single_price(self) -> bool:
        """True when the UI should offer the price source choice (close, hl2, ...)."""
        return self.source_index is not None

    @property
    def chartable(self) -> bool:
        """Every input is a candle column (False for MAVP, which needs a per-bar ``periods`` series)."""
        return all(s in _CANDLE_INPUTS for s in self.inputs)

    @property
    def output_names(self) -> tuple[str, ...]:
        """Output names in TA-Lib's order."""
        return tuple(o.name for o in self.outputs)

    @property
    def candlestick(self) -> bool:
        """A candlestick pattern recogniser (integer output, drawn as markers)."""
        return _CANDLE_FLAG in self.flags

    @property
    def unstable(self) -> bool:
        """TA-Lib flags an unstable period (EMA, RSI, ...): values depend on all history before them."""
        return "Function has an unstable period" in self.flags

    def param(self, name: str) -> ParamInfo:
        """The parameter called ``name``; KeyError if the function has none."""
        for p in self.params:
            if p.name == name:
                return p
        raise KeyError(f"{self.name} has no parameter {name!r}")

    def defaults(self) -> dict[str, int | float]:
        """Every parameter at its default."""
        return {p.name: p.default for p in self.params}


@functools.cache
def catalog() -> Mapping[str, FunctionInfo]:
    """Every TA-Lib function by name (read-only, built once: ~0.1 s, mostly range probing)."""
    entries: dict[str, FunctionInfo] = {}
    for group, names in talib.get_function_groups().items():
        for name in names:
            entries[name] = _build(name, group)
    return MappingProxyType(entries)


def function_info(name: str) -> FunctionInfo:
    """The catalogue entry for ``name`` (case-insensitive); KeyError naming it when unknown."""
    info = catalog().get(name.upper())
    if info is None:
        raise KeyError(f"unknown indicator function {name!r}")
    return info


@functools.cache
def groups() -> Mapping[str, tuple[str, ...]]:
    """TA-Lib's groups in TA-Lib's order, each with its function names."""
    return MappingProxyType({g: tuple(n) for g, n in talib.get_function_groups().items()})


def search(query: str) -> list[FunctionInfo]:
    """Functions whose name or display name matches every word of ``query`` (case-insensitive).

    ``"rsi"`` -> RSI, STOCHRSI; ``"bollinger"`` -> BBANDS; ``"moving average"`` -> SMA, EMA, ....
    A word matches a name at its start, its end or at an ``_`` part (not inside: ``"rsi"``
    does not find CDL3STARSINSOUTH), and a display name at the start of one of its words.
    Best first: exact name, name prefix, other name match, display-name match; ties by name.
    An empty query gives [].
    """
    words = re.findall(r"[a-z0-9]+", query.lower())
    if not words:
        return []
    joined = "".join(words)
    scored: list[tuple[int, str, FunctionInfo]] = []
    for info in catalog().values():
        name, display = info.name.lower(), info.display_name.lower()
        if _name_match(name, joined):
            rank = 0 if name.replace("_", "") == joined else 1 if name.startswith(joined) else 2
        elif all(_name_match(name, w) or re.search(rf"\b{re.escape(w)}", display) for w in words):
            rank = 3
        else:
            continue
        scored.append((rank, info.name, info))
    return [info for _, _, info in sorted(scored, key=lambda s: (s[0], s[1]))]


def _name_match(name: str, word: str) -> bool:
    flat = name.replace("_", "")
    return flat.startswith(word) or flat.endswith(word) or word in name.split("_")


def lookback(function: str, params: Mapping[str, Any] | None = None) -> int:
    """Bars TA-Lib needs before the first valid output with ``params`` (TA-Lib's own lookback).

    Output indexes below it are NaN (0 for integer outputs). Raises KeyError for an unknown function.
    """
    info = function_info(function)
    return int(abstract_function(info.name, **dict(params or {})).lookback)


def ma_type_name(code: int) -> str:
    """TA-Lib's long name of an MA type code (``1`` -> ``"Exponential Moving Average"``)."""
    return str(cast(Any, talib.MA_Type)[code])


# ---------------------------------------------------------------- building


def _build(name: str, group: str) -> FunctionInfo:
    fn = abstract_function(name)
    info = fn.info
    flags = tuple(info.get("function_flags") or ())
    flat = flat_inputs(name)
    price_slots = [i for i, (grp, _) in enumerate(flat) if grp == "price"]
    measured = probe_function(name)
    params = tuple(_param(name, i, m) for i, m in enumerate(measured.params))
    candle = _CANDLE_FLAG in flags
    outputs = tuple(
        OutputInfo(out, "markers" if candle else _style(oflags), integer, tuple(oflags))
        for (out, oflags), integer in zip(info["output_flags"].items(), measured.integer_outputs, strict=True)
    )
    return FunctionInfo(
        name=name,
        group=group,
        display_name=str(info["display_name"]),
        inputs=tuple(series for _, series in flat),
        params=params,
        outputs=outputs,
        overlay=_OVERLAY_FLAG in flags or candle,
        source_index=price_slots[0] if len(price_slots) == 1 else None,
        flags=flags,
    )


def _style(flags: list[str] | tuple[str, ...]) -> StyleKind:
    for flag, style in _FLAG_STYLES:
        if flag in flags:
            return style
    return "line"  # bands ("upper/lower limit") and unflagged outputs


def _param(function: str, index: int, m: MeasuredParam) -> ParamInfo:
    display, help_text = _opt_input_text(function, index, m.name)
    choices = tuple((c, _ma_short(c)) for c in m.choices)
    return ParamInfo(m.name, display, m.default, m.kind, m.minimum, m.maximum, choices, help_text)


def _opt_input_text(function: str, index: int, name: str) -> tuple[str, str]:
    """TA-Lib's display name and hint of a parameter (private binding helper; fallback from the name)."""
    try:
        from talib import _ta_lib

        raw = cast(Any, _ta_lib)._ta_getOptInputParameterInfo(function.encode(), index)
        if raw.get("name") == name:
            return str(raw["display_name"]), str(raw.get("help") or "")
    except Exception:  # a private binding helper: any failure (renamed, other signature) -> fallback
        pass
    return name.replace("_", " ").capitalize(), ""


@functools.cache
def _ma_short_names() -> Mapping[int, str]:
    return {int(getattr(talib.MA_Type, k)): k for k in dir(talib.MA_Type) if k.isupper()}


def _ma_short(code: int) -> str:
    return _ma_short_names().get(code, str(code))
