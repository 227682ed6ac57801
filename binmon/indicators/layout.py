"""How an indicator set is laid out and titled, and candles as engine input. No Qt.

* Titles: ``"RSI 21"``, ``"BBANDS 20 2 2"``, ``"RSI 21 · hl2"`` (:func:`spec_title`).
* Panes: a set is drawn in order and each spec's pane resolved as the chart resolves it
  (``"own"`` opens a new pane below, ``n`` joins pane ``n`` when it exists). A set is kept
  *normalised* (:func:`arrange`): the first indicator of a pane has ``"own"``, the others in that
  pane the pane's index, so drawing it in order always gives the same layout, on the page and
  after a restart, whatever edits, removals and reorders came before.
* Candles: :class:`~binmon.core.models.Kline` sequences as engine columns, older parts joined
  to newer ones (older bars loaded when the user scrolls back).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import replace

import numpy as np

from binmon.core.models import Kline
from binmon.indicators.catalog import function_info, lookback
from binmon.indicators.hints import BULL_COLOR
from binmon.indicators.inputs import BASE_COLUMNS
from binmon.indicators.spec import IndicatorSpec, Pane, default_spec

__all__ = [
    "Columns",
    "arrange",
    "cached_lookback",
    "has_series",
    "join_parts",
    "kline_columns",
    "number_text",
    "parse_guides",
    "parts_len",
    "resolve_panes",
    "spec_title",
    "start_spec",
]

Columns = dict[str, np.ndarray]


def number_text(v: float) -> str:
    """``2`` not ``2.0``, ``0.02`` not ``0.020000``."""
    if float(v).is_integer() and abs(v) < 1e15:
        return str(int(v))
    return format(v, ".10f").rstrip("0").rstrip(".")


def parse_guides(text: str) -> tuple[float, ...]:
    """``"30, 70"`` -> ``(30.0, 70.0)``; ValueError naming the bad entry."""
    out = []
    for part in re.split(r"[,;\s]+", text.strip()):
        if not part:
            continue
        try:
            out.append(float(part))
        except ValueError:
            raise ValueError(f"guide lines must be numbers separated by commas (got {part!r})") from None
    return tuple(out)


def start_spec(function: str, used_colors: Iterable[str] = ()) -> IndicatorSpec:
    """A new indicator as the dialog starts it: :func:`default_spec` with free palette colours,
    histograms in the up colour (the chart draws values below 0 in red: a palette red or pink
    would make the two signs look alike)."""
    spec = default_spec(function, used_colors=used_colors)
    hist = {k: replace(st, color=BULL_COLOR) for k, st in spec.styles.items() if st.kind == "histogram"}
    return replace(spec, styles={**spec.styles, **hist}) if hist else spec


def spec_title(spec: IndicatorSpec, *, source: bool = False) -> str:
    """``"RSI 21"`` (parameters in TA-Lib's order, MA types by short name when not the default);
    the price source after ``·`` when ``source`` or when it is not close (``"RSI 21 · hl2"``)."""
    info = function_info(spec.function)
    parts = [info.name]
    for p in info.params:
        v = spec.params.get(p.name, p.default)
        if p.kind == "matype":
            if v != p.default:
                parts.append(dict(p.choices).get(int(v), str(v)))
        else:
            parts.append(number_text(v))
    title = " ".join(parts)
    if info.takes_single_price and (source or spec.source != "close"):
        title += f" · {spec.source}"
    return title


def has_series(spec: IndicatorSpec) -> bool:
    """True when some output is drawn as a series (markers alone live on the candles, in no pane)."""
    return any(s.kind != "markers" for s in spec.styles.values())


def resolve_panes(specs: Sequence[IndicatorSpec]) -> list[int]:
    """The pane each spec lands in when the set is drawn in order (0: price pane), as the page
    resolves them: ``"own"`` opens a new pane, ``n`` joins pane n if it exists."""
    count, out = 1, []
    for s in specs:
        p = s.pane
        if not has_series(s) or p in ("price", 0):
            out.append(0)
        elif isinstance(p, int) and p < count:
            out.append(p)
        else:
            out.append(count)
            count += 1
    return out


def arrange(specs: Sequence[IndicatorSpec], groups: Sequence[Hashable]) -> list[IndicatorSpec]:
    """``specs`` with normalised panes putting specs of one group together (group 0: price pane).

    Panes are numbered by first appearance; the first spec of a pane gets ``"own"``, the others
    its index, so drawing the result in order gives exactly these groups.
    """
    index: dict[Hashable, int] = {}
    out = []
    for s, g in zip(specs, groups, strict=True):
        if not has_series(s):
            out.append(s)
            continue
        if g == 0:
            pane: Pane = "price"
        elif g in index:
            pane = index[g]
        else:
            index[g] = len(index) + 1
            pane = "own"
        out.append(s if s.pane == pane else replace(s, pane=pane))
    return out


def kline_columns(bars: Sequence[Kline]) -> Columns:
    """``open_time`` and the base OHLCV columns of ``bars`` as numpy arrays."""
    n = len(bars)
    cols: Columns = {"open_time": np.fromiter((b.open_time for b in bars), np.int64, n)}
    for name in BASE_COLUMNS:
        cols[name] = np.fromiter((getattr(b, name) for b in bars), np.float64, n)
    return cols


def join_parts(parts: Sequence[Sequence[Kline] | Columns]) -> Columns:
    """Older-to-newer parts as one column set; rows not older than the next part's first are dropped."""
    cols = [p if isinstance(p, dict) else kline_columns(p) for p in parts]
    keep: list[Columns] = []
    for i, c in enumerate(cols):
        if i + 1 < len(cols) and cols[i + 1]["open_time"].size:
            mask = c["open_time"] < cols[i + 1]["open_time"][0]
            c = {k: v[mask] for k, v in c.items()}
        keep.append(c)
    return {k: np.concatenate([c[k] for c in keep]) for k in ("open_time", *BASE_COLUMNS)}


def parts_len(parts: Sequence[Sequence[Kline] | Columns]) -> int:
    """Bars in ``parts``."""
    return sum(int(p["open_time"].size) if isinstance(p, dict) else len(p) for p in parts)


@functools.lru_cache(maxsize=256)
def cached_lookback(key: tuple[str, tuple[tuple[str, int | float], ...], str]) -> int:
    """:func:`~binmon.indicators.catalog.lookback` by ``spec.compute_key`` (cached: used per live value)."""
    return lookback(key[0], dict(key[1]))
