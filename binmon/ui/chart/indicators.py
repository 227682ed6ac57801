"""Indicators as the chart draws them: descriptors, rows, and the model of what the page holds. No Qt.

The indicator engine (:mod:`binmon.indicators`) computes values; the chart only draws them.
What crosses to the page:

* an :class:`IndicatorDraw` (title, pane, one :class:`OutputDraw` per output, guide lines), sent
  as JSON by :func:`draw_arg`;
* rows ``[t, v1, v2, ...]``: ``t`` the bar's open time in UTC seconds (the page shifts it for
  the time zone exactly as it shifts the bar), one value per output, NaN / None for no value.
  :func:`check_rows` checks them into :class:`Columns` (numpy, fast for 100k rows); whole
  series travel as base64 float64 columns (:meth:`Columns.arg`), live values as ops in
  ``binmon.apply`` (:func:`encode_rows`: JSON-ready rows, ``null`` for no value).

:class:`IndicatorBook` is to indicators what :class:`~binmon.ui.chart.bar_window.BarWindow` is to
bars: the model of the page (``resources/chart/bm-indicators.js``). Values are held per bar
time and only for bars the chart holds: rows older than the first bar are dropped (the window
does not reach back there), rows for any other time the chart does not hold raise
:class:`ChartDataError`; when bars leave the window (trimmed, reloaded, new symbol) their
values go too. Panes are resolved as the page resolves them (Lightweight Charts pane indices:
0 is the price pane; an empty indicator pane disappears and the ones below move up).
"""

from __future__ import annotations

import base64
import bisect
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal, get_args

import numpy as np

from binmon.core.candles import Append, ChartOp, Reload
from binmon.ui.chart.bar_window import BarWindow, ChartDataError, apply_op

__all__ = [
    "DRAW_KINDS",
    "Columns",
    "DrawKind",
    "DrawPane",
    "IndicatorBook",
    "IndicatorDraw",
    "IndicatorRows",
    "OutputDraw",
    "check_draw",
    "check_rows",
    "draw_arg",
    "encode_rows",
    "rows_from_columns",
]

#: How an output is drawn. ``markers``: a marker on the candles at every bar whose value is
#: not 0 (candlestick patterns: > 0 bullish, up arrow below the bar; < 0 bearish, down arrow
#: above it); ``histogram``: bars from 0, coloured by sign; the others are line series.
DrawKind = Literal["line", "dashed", "dotted", "points", "histogram", "markers"]
DRAW_KINDS: tuple[DrawKind, ...] = get_args(DrawKind)
MarkerPosition = Literal["by_sign", "above", "below"]
#: ``"price"`` (= 0): on the candles; ``"own"``: a new pane below; ``n >= 1``: pane n if it
#: exists (shared with what is there), else a new pane at the bottom.
DrawPane = Literal["price", "own"] | int
#: Rows as given to the chart: a sequence of ``[t_seconds, v1, ...]`` (None or NaN for no
#: value) or a 2-D float array of the same shape.
IndicatorRows = Sequence[Sequence[float | None]] | np.ndarray

_COLOR = re.compile(r"#(?:[0-9a-fA-F]{3,4}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})|rgba?\([0-9.,%\s]+\)")
_MAX_ID = 200


@dataclass(frozen=True, slots=True)
class OutputDraw:
    """How one output of an indicator is drawn.

    ``color``: ``#rgb[a]``, ``#rrggbb[aa]`` or ``rgb[a](...)``; for histograms the colour of
    values >= 0 and for markers of bullish (> 0) ones. ``neg_color``: values < 0 (None: the
    page's red). ``width``: 1-4 px. ``marker_text`` / ``marker_position`` only for markers.
    """

    name: str
    color: str
    width: int = 1
    kind: DrawKind = "line"
    visible: bool = True
    neg_color: str | None = None
    marker_text: str = ""
    marker_position: MarkerPosition = "by_sign"


@dataclass(frozen=True, slots=True)
class IndicatorDraw:
    """One indicator on the chart: its outputs are drawn together, in one pane (markers on the candles).

    ``title`` heads its legend line (e.g. ``"RSI 14"``); ``guides`` are dashed horizontal lines
    in its pane (RSI 30 / 70); ``precision``: decimals of its values (None: the symbol's on the
    price pane, else chosen from the values' magnitude).
    """

    id: str
    title: str
    pane: DrawPane
    outputs: tuple[OutputDraw, ...]
    guides: tuple[float, ...] = ()
    visible: bool = True
    precision: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "outputs", tuple(self.outputs))
        object.__setattr__(self, "guides", tuple(self.guides))

    @property
    def has_series(self) -> bool:
        """True when some output is a line or histogram (it then lives in a pane; markers alone do not)."""
        return any(o.kind != "markers" for o in self.outputs)


def _is_color(value: object) -> bool:
    return isinstance(value, str) and _COLOR.fullmatch(value) is not None


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_draw(desc: IndicatorDraw) -> IndicatorDraw:
    """Return ``desc`` if the page can draw it, else raise :class:`ChartDataError` saying why."""
    if not isinstance(desc, IndicatorDraw):
        raise ChartDataError(f"not an IndicatorDraw: {desc!r}")
    if not isinstance(desc.id, str) or not desc.id or len(desc.id) > _MAX_ID:
        raise ChartDataError(f"indicator id must be a string of 1 to {_MAX_ID} characters (got {desc.id!r})")
    where = f"indicator {desc.id!r}"
    if not isinstance(desc.title, str):
        raise ChartDataError(f"{where}: title must be a string (got {desc.title!r})")
    pane = desc.pane
    if pane not in ("price", "own") and not (isinstance(pane, int) and _is_int(pane) and 0 <= pane <= 64):
        raise ChartDataError(f"{where}: pane must be 'price', 'own' or 0 to 64 (got {desc.pane!r})")
    if not desc.outputs:
        raise ChartDataError(f"{where}: no outputs")
    names = [o.name for o in desc.outputs]
    if len(set(names)) != len(names):
        raise ChartDataError(f"{where}: output names must be unique (got {names})")
    for o in desc.outputs:
        if not isinstance(o, OutputDraw) or not isinstance(o.name, str) or not o.name:
            raise ChartDataError(f"{where}: outputs must be OutputDraw with a name (got {o!r})")
        if not _is_color(o.color) or (o.neg_color is not None and not _is_color(o.neg_color)):
            raise ChartDataError(f"{where}: bad colour for output {o.name!r}: {o.color!r} / {o.neg_color!r}")
        if not _is_int(o.width) or not 1 <= o.width <= 4:
            raise ChartDataError(f"{where}: width of {o.name!r} must be 1 to 4 (got {o.width!r})")
        if o.kind not in DRAW_KINDS:
            raise ChartDataError(f"{where}: kind of {o.name!r} must be one of {', '.join(DRAW_KINDS)}")
        if o.marker_position not in get_args(MarkerPosition) or not isinstance(o.marker_text, str):
            raise ChartDataError(f"{where}: bad marker position or text for {o.name!r}")
        if not isinstance(o.visible, bool):
            raise ChartDataError(f"{where}: visible of {o.name!r} must be a bool")
    for g in desc.guides:
        if not isinstance(g, int | float) or isinstance(g, bool) or not math.isfinite(g):
            raise ChartDataError(f"{where}: guide lines must be finite numbers (got {desc.guides!r})")
    if not isinstance(desc.visible, bool):
        raise ChartDataError(f"{where}: visible must be a bool")
    if desc.precision is not None and not (_is_int(desc.precision) and 0 <= desc.precision <= 12):
        raise ChartDataError(f"{where}: precision must be None or 0 to 12 (got {desc.precision!r})")
    return desc


def draw_arg(desc: IndicatorDraw, at: int | None = None) -> dict[str, Any]:
    """``desc`` as the JSON object ``binmon.setIndicator`` takes (see bm-indicators.js).

    ``at``: put it in this pane index, whatever ``desc.pane`` asks (restoring a page's layout
    after a reload; the page keeps ``desc.pane`` to compare with later versions).
    """
    arg: dict[str, Any] = {
        "id": desc.id,
        "title": desc.title,
        "pane": desc.pane,
        "outputs": [
            {
                "name": o.name,
                "kind": o.kind,
                "color": o.color,
                "negColor": o.neg_color,
                "width": o.width,
                "visible": o.visible,
                "text": o.marker_text,
                "position": o.marker_position,
            }
            for o in desc.outputs
        ],
        "guides": [float(g) for g in desc.guides],
        "visible": desc.visible,
        "precision": desc.precision,
    }
    if at is not None:
        arg["at"] = at
    return arg


@dataclass(frozen=True, slots=True, eq=False)
class Columns:
    """Checked rows of one indicator as columns: ``times`` (whole seconds, int64, increasing) and
    ``values`` (rows x outputs, float64, finite or NaN for no value)."""

    times: np.ndarray
    values: np.ndarray

    def __len__(self) -> int:
        return len(self.times)

    def rows(self) -> list[list[Any]]:
        """JSON-ready rows ``[int t, float | None, ...]`` (what the page reports back)."""
        out = np.empty((len(self.times), self.values.shape[1] + 1), dtype=object)
        out[:, 0] = self.times  # numpy ints; tolist() makes them Python ints
        out[:, 1:] = self.values
        out[:, 1:][np.isnan(self.values)] = None
        return out.tolist()

    def arg(self) -> dict[str, Any]:
        """The page's binary form ``{n, b64}``: the times, then each output's values, as
        little-endian float64 columns in base64 (``columns`` in bm-indicators.js).

        Why: 20k rows of 3 outputs are 0.85 MB this way against 1.4 MB of JSON, encode in ~1 ms
        instead of ~15 (and no 100k Python objects), and decode in the page into typed arrays
        in a few ms - the largest share of adding an indicator was moving and parsing its rows.
        """
        cols = np.concatenate([self.times.astype("<f8"), self.values.T.astype("<f8").ravel()])
        return {"n": len(self.times), "b64": base64.b64encode(cols.tobytes()).decode("ascii")}

    def __getitem__(self, index: slice | np.ndarray) -> Columns:
        return Columns(self.times[index], self.values[index])


def check_rows(rows: IndicatorRows, n_outputs: int, *, what: str = "indicator") -> Columns:
    """Check ``rows`` and return them as :class:`Columns`.

    Each row is ``[t, v1 .. v_n_outputs]``; ``t`` whole seconds, strictly increasing; values
    finite, or None / NaN for "no value". :class:`ChartDataError` for a wrong width, an
    infinite value, or times out of order.
    """
    width = n_outputs + 1
    try:
        arr = np.array(rows, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ChartDataError(f"{what}: rows must be [t, {n_outputs} values] of numbers: {exc}") from None
    if arr.size == 0:
        return Columns(np.empty(0, dtype=np.int64), np.empty((0, n_outputs)))
    if arr.ndim != 2 or arr.shape[1] != width:
        raise ChartDataError(f"{what}: rows must be [t, {n_outputs} values] (got shape {arr.shape})")
    times = arr[:, 0]
    if not np.isfinite(times).all() or (times != np.floor(times)).any():
        raise ChartDataError(f"{what}: row times must be whole seconds")
    if len(times) > 1 and (np.diff(times) <= 0).any():
        i = int(np.argmax(np.diff(times) <= 0)) + 1
        raise ChartDataError(f"{what}: row times must increase (row {i} at {times[i]:.0f})")
    values = arr[:, 1:]
    bad = np.isinf(values)
    if bad.any():
        i = int(np.argmax(bad.any(axis=1)))
        raise ChartDataError(f"{what}: infinite value in row at {times[i]:.0f}: {values[i].tolist()}")
    return Columns(times.astype(np.int64), values)


def encode_rows(rows: IndicatorRows, n_outputs: int, *, what: str = "indicator") -> list[list[Any]]:
    """Check ``rows`` (:func:`check_rows`) and return them JSON-ready: ``[int t, float | None, ...]``."""
    return check_rows(rows, n_outputs, what=what).rows()


def rows_from_columns(open_time_ms: Sequence[int] | np.ndarray, columns: Sequence[np.ndarray]) -> np.ndarray:
    """Rows for the chart from the engine's output arrays (aligned with ``open_time_ms``)."""
    secs = np.asarray(open_time_ms, dtype=np.int64) // 1000
    return np.column_stack([secs.astype(np.float64), *[np.asarray(c, dtype=np.float64) for c in columns]])


class _Held:
    """The values of one indicator the chart holds: whole series as :class:`Columns` (as sent),
    live values on top (time -> values; they win)."""

    __slots__ = ("cols", "live")

    def __init__(self, cols: Columns) -> None:
        self.cols = cols
        self.live: dict[int, list[float | None]] = {}

    def rows(self, secs: Sequence[int]) -> list[list[Any]]:
        """``[t, v...]`` of the bars ``secs`` that have values."""
        times = self.cols.times
        if not len(secs):
            return []
        s = np.asarray(secs, dtype=np.int64)
        idx = np.minimum(np.searchsorted(times, s), max(len(times) - 1, 0))
        hit = times[idx] == s if len(times) else np.zeros(len(s), dtype=bool)
        bulk = iter(Columns(times[idx[hit]], self.cols.values[idx[hit]]).rows())
        out: list[list[Any]] = []
        for t, h in zip(secs, hit.tolist(), strict=True):
            row = next(bulk) if h else None
            if t in self.live:
                out.append([t, *self.live[t]])
            elif row is not None:
                out.append(row)
        return out

    def merge(self, new: Columns) -> None:
        """Values at ``new``'s times replace what was held there (also live values)."""
        for t in new.times.tolist():
            self.live.pop(t, None)
        times = np.concatenate([new.times, self.cols.times])
        values = np.concatenate([new.values, self.cols.values])
        order = np.argsort(times, kind="stable")  # new first among equal times: it is kept
        times, values = times[order], values[order]
        keep = np.ones(len(times), dtype=bool)
        keep[1:] = times[1:] != times[:-1]
        self.cols = Columns(times[keep], values[keep])

    def retain(self, held: Sequence[int]) -> None:
        """Drop values of bars not in ``held``."""
        keep = np.isin(self.cols.times, np.asarray(held, dtype=np.int64))
        if not keep.all():
            self.cols = self.cols[keep]
        if self.live:
            bars = set(held)
            self.live = {t: v for t, v in self.live.items() if t in bars}


class IndicatorBook:
    """The indicators a chart draws, in draw order, their panes, and their values for the bars held."""

    def __init__(self) -> None:
        """No indicators; only the price pane."""
        self._draws: dict[str, IndicatorDraw] = {}
        self._values: dict[str, _Held] = {}
        self._panes: list[list[str]] = [[]]  # ids with series per Lightweight Charts pane

    def __contains__(self, indicator_id: object) -> bool:
        return indicator_id in self._draws

    def __len__(self) -> int:
        return len(self._draws)

    @property
    def draws(self) -> tuple[IndicatorDraw, ...]:
        """The indicators, in the order they were first set (legend order)."""
        return tuple(self._draws.values())

    @property
    def pane_count(self) -> int:
        """Panes the chart shows: the price pane and one per indicator pane in use."""
        return len(self._panes)

    def draw(self, indicator_id: str) -> IndicatorDraw:
        """The descriptor of ``indicator_id`` (ChartDataError if unknown)."""
        self._known(indicator_id)
        return self._draws[indicator_id]

    def pane(self, indicator_id: str) -> int:
        """The pane index ``indicator_id`` is drawn in (0: price pane, also for markers alone)."""
        self._known(indicator_id)
        return next((i for i, ids in enumerate(self._panes) if indicator_id in ids), 0)

    def rows(self, indicator_id: str, window: BarWindow) -> list[list[Any]]:
        """``[t, v...]`` for every bar held that has values, oldest first (what the page reports)."""
        self._known(indicator_id)
        return self._values[indicator_id].rows(window.seconds)

    def columns(self, indicator_id: str, window: BarWindow) -> Columns:
        """:meth:`rows` as :class:`Columns` (to send the whole series again)."""
        desc = self.draw(indicator_id)
        return check_rows(self.rows(indicator_id, window), len(desc.outputs), what=f"indicator {desc.id!r}")

    # ------------------------------------------------------------------ changes

    def set(self, desc: IndicatorDraw, rows: IndicatorRows, window: BarWindow) -> Columns:
        """Add ``desc`` or replace the indicator with its id; return the values to send (aligned)."""
        check_draw(desc)
        cols = self._aligned(desc, rows, window)
        old = self._draws.get(desc.id)
        old_pane = self.pane(desc.id) if old is not None and old.has_series else None
        if desc.has_series:
            n = len(self._panes)
            if old_pane is not None and old is not None and old.pane == desc.pane:
                target = old_pane  # a restyle keeps its place
            elif desc.pane in ("price", 0):
                target = 0
            elif isinstance(desc.pane, int) and desc.pane < n:
                target = desc.pane
            else:
                target = n
            if target == n:
                self._panes.append([])
            self._panes[target].append(desc.id)
        if old_pane is not None:
            self._panes[old_pane].remove(desc.id)
            self._drop_empty_panes()
        self._draws[desc.id] = desc
        self._values[desc.id] = _Held(cols)
        return cols

    def remove(self, indicator_id: str) -> None:
        """Remove the indicator; its pane goes too when nothing else is drawn there."""
        self._known(indicator_id)
        for ids in self._panes:
            if indicator_id in ids:
                ids.remove(indicator_id)
        self._drop_empty_panes()
        del self._draws[indicator_id], self._values[indicator_id]

    def set_visible(self, indicator_id: str, visible: bool) -> None:
        """Show or hide the indicator (it keeps its pane and values)."""
        self._known(indicator_id)
        if not isinstance(visible, bool):
            raise ChartDataError(f"visible must be a bool (got {visible!r})")
        self._draws[indicator_id] = replace(self._draws[indicator_id], visible=visible)

    def merge(self, indicator_id: str, rows: IndicatorRows, window: BarWindow) -> Columns:
        """Set values at the rows' times (older bars after a prepend); return the values to send."""
        self._known(indicator_id)
        cols = self._aligned(self._draws[indicator_id], rows, window)
        if len(cols):
            self._values[indicator_id].merge(cols)
        return cols

    def update(self, indicator_id: str, row: Sequence[float | None], window: BarWindow) -> list[Any]:
        """A live value (usually at the last bar); return its ``["i", id, t, v...]`` op for binmon.apply."""
        self._known(indicator_id)
        desc = self._draws[indicator_id]
        encoded = encode_rows([row], len(desc.outputs), what=f"indicator {desc.id!r}")
        t, *vals = _at_bar(desc, encoded[0], window.seconds)
        self._values[indicator_id].live[t] = vals
        return ["i", indicator_id, t, *vals]

    def apply_op(self, window: BarWindow, op: ChartOp) -> list[Any] | None:
        """:func:`~binmon.ui.chart.bar_window.apply_op`, dropping the values of bars that left the window."""
        first = window.seconds[0] if len(window) else None
        encoded = apply_op(window, op)
        if isinstance(op, Reload):
            self.retain(window)
        elif isinstance(op, Append) and first is not None and window.seconds[0] != first:
            # One append trims exactly one bar: its live value goes now; the columns keep
            # theirs (fixed size, cut at the next retain) - never shown, as rows are read
            # for the bars held.
            for held in self._values.values():
                held.live.pop(first, None)
        return encoded

    def retain(self, window: BarWindow) -> None:
        """Drop values of bars the window no longer holds (after a load, a reload or a new symbol)."""
        for held in self._values.values():
            held.retain(window.seconds)

    # ------------------------------------------------------------------ internals

    def _known(self, indicator_id: str) -> None:
        if indicator_id not in self._draws:
            raise ChartDataError(f"no indicator {indicator_id!r} on the chart")

    def _drop_empty_panes(self) -> None:
        self._panes[1:] = [ids for ids in self._panes[1:] if ids]

    @staticmethod
    def _aligned(desc: IndicatorDraw, rows: IndicatorRows, window: BarWindow) -> Columns:
        """Check ``rows``; drop those older than the first bar held; ChartDataError for any
        other time the chart does not hold."""
        cols = check_rows(rows, len(desc.outputs), what=f"indicator {desc.id!r}")
        if not len(cols):
            return cols
        secs = np.asarray(window.seconds, dtype=np.int64)
        start = int(np.searchsorted(cols.times, secs[0])) if len(secs) else 0
        if start:
            cols = cols[start:]
        if not len(cols):
            return cols
        idx = np.minimum(np.searchsorted(secs, cols.times), max(len(secs) - 1, 0))
        missing = ~(secs[idx] == cols.times) if len(secs) else np.ones(len(cols), dtype=bool)
        if missing.any():
            t = int(cols.times[int(np.argmax(missing))])
            raise ChartDataError(f"indicator {desc.id!r}: row at {t} s is not a bar the chart holds")
        return cols


def _at_bar(desc: IndicatorDraw, row: list[Any], secs: Sequence[int]) -> list[Any]:
    """``row`` if its time is a bar held, else ChartDataError. Bisects the window's list:
    converting 20k open times to numpy for each live value cost ~1 ms, most of a 10-indicator flush."""
    t = row[0]
    i = bisect.bisect_left(secs, t)
    if i >= len(secs) or secs[i] != t:
        raise ChartDataError(f"indicator {desc.id!r}: row at {t} s is not a bar the chart holds")
    return row


def book_rows(book: IndicatorBook, window: BarWindow) -> Iterable[tuple[dict[str, Any], Columns]]:
    """``(draw_arg, values)`` of every indicator, to send the whole state to a new page.

    In pane order (stable: draw order within a pane) and pinned to its pane (``at``), so the
    new page builds the same panes even when earlier removals moved indicators up.
    """
    for desc in sorted(book.draws, key=lambda d: book.pane(d.id)):
        yield draw_arg(desc, at=book.pane(desc.id)), book.columns(desc.id, window)


def check_updates(updates: Mapping[str, IndicatorRows] | None) -> Mapping[str, IndicatorRows]:
    """``updates`` or an empty mapping; TypeError when it is not a mapping of id -> rows."""
    if updates is None:
        return {}
    if not isinstance(updates, Mapping):
        raise TypeError(f"indicator updates must map id -> rows (got {type(updates).__name__})")
    return updates
