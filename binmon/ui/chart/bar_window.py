"""BarWindow, the model of the bars the chart page holds, and the checks the chart makes on its input.

:class:`BarWindow` states exactly what the chart page (``resources/chart/bm-chart.js``) does
with bars: the same ordering rules as Lightweight Charts' ``series.update`` (replace when the
time equals the last bar's, append when newer, raise when older), the same bound on bars held
(``max_bars``: the oldest are dropped, older history is not loaded past it). The real
:class:`~binmon.ui.chart.web_chart.WebChart` runs every call through a BarWindow before sending
it, so the page never sees data it would reject and the crosshair can answer with full klines;
the test double :class:`~binmon.ui.chart.fake.RecordingChart` uses the same model, so a
controller test on the fake fails where the real chart would. The GUI tests check the page
against the model.
"""

from __future__ import annotations

import bisect
import math
import zoneinfo
from collections.abc import Iterable, Sequence
from typing import Any

from binmon.core.candles import Append, ChartOp, Gap, Reload, Replace
from binmon.core.models import Kline, decimals_of
from binmon.ui.chart.api import ChartSymbol, VisibleRange

#: Bars a chart holds by default. Lightweight Charts 5 pays per bar held on every update and
#: every frame (~8 ms a frame at 10k bars, ~130 ms at 100k, see platform notes), so the chart
#: keeps a window and the controller loads older bars when the user scrolls there.
DEFAULT_MAX_BARS = 20_000

THEMES = ("dark", "light")

#: A bar as the page receives it: [open time in UTC seconds, open, high, low, close, volume].
Row = list[float]


class ChartDataError(ValueError):
    """Bars the chart cannot take: out of order, older than the last bar, or not finite."""


def bar_row(bar: Kline) -> Row:
    """``bar`` as the page's compact row; ChartDataError for NaN / infinite values."""
    o, h, lo, c, v = bar.open, bar.high, bar.low, bar.close, bar.volume
    # One check for all five: NaN and infinities propagate through a sum (this runs for every
    # bar of a 100k load, where a per-value check costs a tenth of a second).
    if not math.isfinite(o + h + lo + c + v):
        raise ChartDataError(f"bar at {bar.open_time} has a non-finite value: {[o, h, lo, c, v]}")
    return [bar.open_time // 1000, o, h, lo, c, v]


def price_format(sym: ChartSymbol) -> dict[str, Any]:
    """Lightweight Charts ``priceFormat`` for ``sym``: decimals and minimum move from its tick size."""
    try:
        tick = float(sym.tick_size)
    except ValueError:
        raise ValueError(f"bad tick size {sym.tick_size!r} for {sym.symbol}") from None
    if not math.isfinite(tick) or tick <= 0:
        raise ValueError(f"bad tick size {sym.tick_size!r} for {sym.symbol}")
    return {"type": "price", "precision": decimals_of(sym.tick_size), "minMove": tick}


def check_theme(theme: str) -> str:
    """Return ``theme`` if the page knows it (``dark`` / ``light``), else raise ValueError."""
    if theme not in THEMES:
        raise ValueError(f"unknown chart theme {theme!r}; use one of {', '.join(THEMES)}")
    return theme


def check_timezone(tz: str) -> str:
    """Return ``tz`` if it is ``UTC``, ``local`` or an IANA zone name, else raise ValueError."""
    if tz in ("UTC", "local"):
        return tz
    try:
        zoneinfo.ZoneInfo(tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {tz!r}") from None
    return tz


class BarWindow:
    """The bars a chart holds: sorted, unique by open time (in seconds), at most ``max_bars``."""

    def __init__(self, max_bars: int = DEFAULT_MAX_BARS) -> None:
        """An empty window; ValueError when ``max_bars < 1``."""
        if max_bars < 1:
            raise ValueError(f"max_bars must be at least 1, not {max_bars}")
        self.max_bars = max_bars
        self._bars: list[Kline] = []
        self._secs: list[int] = []
        self._series: tuple[str, str] | None = None  # (symbol, interval) once one is set

    def __len__(self) -> int:
        """Number of bars held."""
        return len(self._bars)

    @property
    def bars(self) -> tuple[Kline, ...]:
        """The bars held, oldest first."""
        return tuple(self._bars)

    @property
    def seconds(self) -> Sequence[int]:
        """Open times of the bars held, in UTC seconds, oldest first (a live view: do not modify)."""
        return self._secs

    def find(self, time_ms: int) -> Kline | None:
        """The bar opening at ``time_ms``, or None."""
        i = bisect.bisect_left(self._secs, time_ms // 1000)
        if i < len(self._secs) and self._secs[i] == time_ms // 1000:
            return self._bars[i]
        return None

    def clear(self, symbol: str | None = None, interval: str | None = None) -> None:
        """Drop every bar; with a symbol and interval, accept only bars of that series from now on."""
        self._bars, self._secs = [], []
        if symbol is not None and interval is not None:
            self._series = (symbol, interval)

    def load(self, bars: Iterable[Kline]) -> list[Row]:
        """Replace all bars (``setData``); keep the newest ``max_bars``. Return their rows."""
        kept, rows = _checked(bars, self.max_bars, self._series)
        self._bars, self._secs = kept, [int(r[0]) for r in rows]
        return rows

    def prepend(self, bars: Iterable[Kline]) -> list[Row]:
        """Add older bars on the left, only as many as fit (the newest of them). Return their rows.

        Onto an empty window this is :meth:`load`. ChartDataError when a bar is not older
        than the first bar held.
        """
        if not self._bars:
            return self.load(bars)
        kept, rows = _checked(bars, None, self._series)
        if rows and rows[-1][0] >= self._secs[0]:
            raise ChartDataError(
                f"prepended bar at {kept[-1].open_time} is not older than the first bar "
                f"at {self._bars[0].open_time}"
            )
        room = self.max_bars - len(self._bars)
        if room <= 0:
            return []
        kept, rows = kept[-room:], rows[-room:]
        self._bars[:0] = kept
        self._secs[:0] = [int(r[0]) for r in rows]
        return rows

    def update(self, bar: Kline) -> Row:
        """``series.update``: replace the last bar at the same time, append a newer one.

        A bar older than the last raises ChartDataError (Lightweight Charts throws there).
        Appending to a full window drops the oldest bar. Return the bar's row.
        """
        _check_series([bar], self._series)
        row = bar_row(bar)
        t = int(row[0])
        if self._secs and t < self._secs[-1]:
            raise ChartDataError(
                f"update at {bar.open_time} is older than the last bar at {self._bars[-1].open_time}"
            )
        if self._secs and t == self._secs[-1]:
            self._bars[-1] = bar
        else:
            self._bars.append(bar)
            self._secs.append(t)
            if len(self._bars) > self.max_bars:
                del self._bars[0], self._secs[0]
        return row

    def visible_range(self, first: int, last: int) -> VisibleRange:
        """What the page reports when bars ``first``..``last`` (indices, clipped) are in view."""
        if not self._bars:
            raise ValueError("no bars: the page reports no visible range")
        n = len(self._bars)
        first = min(n - 1, max(0, first))
        last = min(n - 1, max(0, last))
        return VisibleRange(self._bars[first].open_time, self._bars[last].open_time, first)


def _check_series(bars: list[Kline], series: tuple[str, str] | None) -> None:
    """ChartDataError for a bar of another symbol or interval than the chart shows."""
    if series is None:
        return
    symbol, interval = series
    for b in bars:
        if b.symbol != symbol or b.interval != interval:
            raise ChartDataError(f"{b.symbol} {b.interval} bar given to the {symbol} {interval} chart")


def _checked(
    bars: Iterable[Kline], keep: int | None, series: tuple[str, str] | None
) -> tuple[list[Kline], list[Row]]:
    """Validate series and order of ``bars``; return the newest ``keep`` (None: all) and their rows.

    Values are checked (:func:`bar_row`) only on the bars kept: the others never reach the page.
    """
    kept = list(bars)
    _check_series(kept, series)
    secs = [b.open_time // 1000 for b in kept]
    for i in range(1, len(secs)):
        if secs[i] <= secs[i - 1]:
            raise ChartDataError(
                f"bars must be sorted by open time and unique: {kept[i - 1].open_time} "
                f"then {kept[i].open_time}"
            )
    if keep is not None and len(kept) > keep:
        kept = kept[len(kept) - keep :]
    return kept, [bar_row(b) for b in kept]


def apply_op(window: BarWindow, op: ChartOp) -> list[Any] | None:
    """Apply one op to ``window`` as the page does; return it encoded for ``binmon.apply``.

    Append / Replace -> ``["u", *row]`` (``series.update``: ChartDataError when older than the
    last bar), Reload -> ``["reload", rows]``, Gap -> None (nothing to draw).
    """
    if isinstance(op, Append | Replace):
        return ["u", *window.update(op.bar)]
    if isinstance(op, Reload):
        return ["reload", window.load(op.bars)]
    if isinstance(op, Gap):
        return None
    raise TypeError(f"not a chart op: {op!r}")


def apply_ops(window: BarWindow, ops: Iterable[ChartOp]) -> None:
    """Apply ``ops`` in order; the first one the page would reject raises, after those before it."""
    for op in ops:
        apply_op(window, op)
