"""Presentation hints: the few things TA-Lib's metadata does not say and a chart wants. No Qt.

Everything else (groups, parameters, ranges, output styles, price-pane overlays) comes from
TA-Lib (:mod:`.catalog`). What is listed here, and why:

* guide lines where traders expect them (RSI 30/70, stochastics 20/80, CCI +-100, ...);
* a fixed value range for bounded oscillators, so a pane need not rescale on every update;
* pane overrides where TA-Lib's "same scale as input" flag misleads (AVGDEV is a deviation,
  not a price) or is missing (FRACTAL marks prices on the candles);
* output style overrides where TA-Lib's flags read oddly on a chart (it flags both STOCH
  lines dashed; %K is usually solid);
* outputs hidden by default (SUPERTREND's +-1 trend code would flatten the price pane);
* ``value_format``: volume-scale outputs (OBV, AD, ...) want volume formatting, not price
  precision.

Candlestick patterns and FRACTAL output integers (non-zero = pattern found on that bar). They
are drawn as markers on the price pane: :class:`MarkerHint` says where. The sign of a
candlestick value is its direction (> 0 bullish, < 0 bearish; +-200 means confirmed where a
pattern has a confirmation, e.g. CDLHIKKAKE), so by default a bullish pattern gets a green
up-arrow below the bar, a bearish one a red down-arrow above it, labelled with the pattern
name without its ``CDL`` prefix.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

from binmon.indicators.catalog import FunctionInfo, StyleKind

__all__ = [
    "BEAR_COLOR",
    "BULL_COLOR",
    "GUIDE_COLOR",
    "PALETTE",
    "Hint",
    "MarkerHint",
    "hint_for",
]

#: Default series colours, assigned in order (distinct on dark and light backgrounds).
PALETTE: tuple[str, ...] = (
    "#2962FF",
    "#FF6D00",
    "#AB47BC",
    "#26A69A",
    "#EF5350",
    "#FFB300",
    "#00BCD4",
    "#EC407A",
    "#7CB342",
    "#8D6E63",
)
GUIDE_COLOR = "#787B86"
BULL_COLOR = "#26A69A"
BEAR_COLOR = "#EF5350"

ValueFormat = Literal["price", "volume", "number"]
MarkerPosition = Literal["by_sign", "above", "below"]


@dataclass(frozen=True, slots=True)
class MarkerHint:
    """How an integer output becomes markers: one per bar whose value is not 0.

    ``position``: ``by_sign`` puts a positive value below the bar (bullish, up arrow) and a
    negative one above it (bearish, down arrow); ``above`` / ``below`` fix the side.
    """

    position: MarkerPosition
    text: str
    bull_color: str = BULL_COLOR
    bear_color: str = BEAR_COLOR


@dataclass(frozen=True, slots=True)
class Hint:
    """Presentation hints for one function; every field optional (empty = no hint)."""

    guides: tuple[float, ...] = ()
    pane: Literal["price", "own"] | None = None
    styles: Mapping[str, StyleKind] = field(default_factory=dict)
    hidden: frozenset[str] = frozenset()
    value_range: tuple[float, float] | None = None
    value_format: ValueFormat | None = None
    markers: Mapping[str, MarkerHint] = field(default_factory=dict)


_PCT = (0.0, 100.0)
_STOCH = Hint(guides=(20.0, 80.0), value_range=_PCT)
_ZERO = Hint(guides=(0.0,))
_VOLUME = Hint(value_format="volume")

#: The hand-written part, by function name. Keep it short: TA-Lib's metadata says the rest.
_HINTS: Mapping[str, Hint] = MappingProxyType(
    {
        "RSI": Hint(guides=(30.0, 70.0), value_range=_PCT),
        "STOCH": Hint(guides=(20.0, 80.0), value_range=_PCT, styles={"slowk": "line"}),
        "STOCHF": _STOCH,
        "STOCHRSI": _STOCH,
        "KDJ": Hint(guides=(20.0, 80.0)),
        "MFI": Hint(guides=(20.0, 80.0), value_range=_PCT),
        "CCI": Hint(guides=(-100.0, 100.0)),
        "WILLR": Hint(guides=(-80.0, -20.0), value_range=(-100.0, 0.0)),
        "ADX": Hint(guides=(25.0,), value_range=_PCT),
        "ADXR": Hint(guides=(25.0,), value_range=_PCT),
        "DX": Hint(value_range=_PCT),
        "PLUS_DI": Hint(value_range=_PCT),
        "MINUS_DI": Hint(value_range=_PCT),
        "AROON": Hint(value_range=_PCT),
        "AROONOSC": Hint(guides=(0.0,), value_range=(-100.0, 100.0)),
        "ULTOSC": Hint(guides=(30.0, 70.0), value_range=_PCT),
        "CMO": Hint(guides=(-50.0, 50.0), value_range=(-100.0, 100.0)),
        "MACD": _ZERO,
        "MACDEXT": _ZERO,
        "MACDFIX": _ZERO,
        "PPO": _ZERO,
        "APO": _ZERO,
        "MOM": _ZERO,
        "TRIX": _ZERO,
        "AVGDEV": Hint(pane="own"),
        "SUPERTREND": Hint(hidden=frozenset({"trend"})),
        "FRACTAL": Hint(
            pane="price",
            styles={"swinghigh": "markers", "swinglow": "markers"},
            markers={"swinghigh": MarkerHint("above", "H"), "swinglow": MarkerHint("below", "L")},
        ),
        "OBV": _VOLUME,
        "AD": _VOLUME,
        "ADOSC": Hint(guides=(0.0,), value_format="volume"),
        "PVT": _VOLUME,
        "EFI": Hint(guides=(0.0,), value_format="volume"),
    }
)


def hint_for(info: FunctionInfo) -> Hint:
    """The hints for a catalogue function: the hand-written entry plus the generic rules.

    Generic rules: candlestick patterns get ``by_sign`` markers labelled with the pattern name;
    overlays format values as prices; everything else as plain numbers.
    """
    base = _HINTS.get(info.name, Hint())
    markers = dict(base.markers)
    if info.candlestick:
        label = info.name.removeprefix("CDL")
        markers.update({o.name: MarkerHint("by_sign", label) for o in info.outputs})
    pane = base.pane or ("price" if info.overlay else "own")
    plain: ValueFormat = "price" if pane == "price" and not info.candlestick else "number"
    fmt: ValueFormat = base.value_format or plain
    return Hint(
        guides=base.guides,
        pane=pane,
        styles=MappingProxyType(dict(base.styles)),
        hidden=base.hidden,
        value_range=base.value_range,
        value_format=fmt,
        markers=MappingProxyType(markers),
    )
