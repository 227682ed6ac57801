"""A pyqtgraph candle item that stays fast with hundreds of thousands of candles.

Each paint draws only the candles inside the visible x range, and once candles get narrower
than a few pixels it merges them into one high-low bar per pixel column (open of the first,
close of the last decides the colour), so a paint costs O(visible candles) in numpy plus
O(pixel width) in Qt, whatever the number held. ``dataBounds`` answers the y range of the
visible candles, so the price axis follows the view when panning (``setAutoVisible(y=True)``).

x is the candle's open time in seconds (UTC), the unit of pyqtgraph's DateAxisItem.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF
from PySide6.QtGui import QPainter, QPainterPath
from PySide6.QtWidgets import QStyleOptionGraphicsItem, QWidget

UP_COLOUR = "#26a69a"
DOWN_COLOUR = "#ef5350"
#: Below this many pixels per candle, bodies are not drawn: one high-low line per column.
_BODY_MIN_PX = 3.0


class CandleItem(pg.GraphicsObject):
    """Candles at ``times_s`` (open times, seconds, ascending) with the given OHLC arrays."""

    def __init__(
        self,
        times_s: np.ndarray,
        open_: np.ndarray,
        high: np.ndarray,
        low: np.ndarray,
        close: np.ndarray,
        *,
        up: str = UP_COLOUR,
        down: str = DOWN_COLOUR,
    ) -> None:
        super().__init__()
        self._pens = (pg.mkPen(down), pg.mkPen(up))
        self._brushes = (pg.mkBrush(down), pg.mkBrush(up))
        self.set_data(times_s, open_, high, low, close)
        #: (columns drawn, candles merged into them) of the last paint: for tests and benchmarks.
        self.last_paint: tuple[int, int] = (0, 0)

    def set_data(
        self, times_s: np.ndarray, open_: np.ndarray, high: np.ndarray, low: np.ndarray, close: np.ndarray
    ) -> None:
        """Replace the candles (arrays of equal length; times ascending)."""
        self.prepareGeometryChange()
        self.t = np.ascontiguousarray(times_s, dtype=np.float64)
        self.o = np.ascontiguousarray(open_, dtype=np.float64)
        self.h = np.ascontiguousarray(high, dtype=np.float64)
        self.l = np.ascontiguousarray(low, dtype=np.float64)
        self.c = np.ascontiguousarray(close, dtype=np.float64)
        n = self.t.size
        # The candle spacing: the median step, so gaps (minutes without trades) do not widen it.
        self.step = float(np.median(np.diff(self.t))) if n > 1 else 60.0
        if n:
            lo, hi = float(np.nanmin(self.l)), float(np.nanmax(self.h))
            self._rect = QRectF(self.t[0] - self.step, lo, self.t[-1] - self.t[0] + 2 * self.step, hi - lo)
        else:
            self._rect = QRectF()
        self.update()

    def __len__(self) -> int:
        return int(self.t.size)

    # ---------------------------------------------------------------- pyqtgraph protocol

    def boundingRect(self) -> QRectF:
        return QRectF(self._rect)

    def dataBounds(
        self, ax: int, frac: float = 1.0, orthoRange: tuple[float, float] | None = None
    ) -> tuple[float, float] | None:
        """x: first to last open time; y: the low/high of the candles in ``orthoRange`` (x)."""
        if not self.t.size:
            return None
        if ax == 0:
            return float(self.t[0]) - self.step / 2, float(self.t[-1]) + self.step / 2
        i0, i1 = 0, self.t.size
        if orthoRange is not None:
            i0, i1 = self._index_range(*orthoRange)
        if i1 <= i0:
            return None
        return float(np.nanmin(self.l[i0:i1])), float(np.nanmax(self.h[i0:i1]))

    def _index_range(self, x0: float, x1: float) -> tuple[int, int]:
        i0 = int(np.searchsorted(self.t, x0 - self.step, side="left"))
        i1 = int(np.searchsorted(self.t, x1 + self.step, side="right"))
        return i0, i1

    def paint(self, p: QPainter, opt: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        vb = self.getViewBox()
        if vb is None or not self.t.size:
            return
        (x0, x1), _ = vb.viewRange()
        width_px = max(1.0, float(vb.width()))
        s_per_px = (x1 - x0) / width_px
        if s_per_px <= 0:
            return
        i0, i1 = self._index_range(x0, x1)
        if i1 <= i0:
            self.last_paint = (0, 0)
            return
        p.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        if self.step / s_per_px >= _BODY_MIN_PX:
            self._paint_bodies(p, i0, i1)
            self.last_paint = (i1 - i0, i1 - i0)
        else:
            self._paint_merged(p, i0, i1, x0, s_per_px)

    def _paint_bodies(self, p: QPainter, i0: int, i1: int) -> None:
        t, o, h, lo, c = self.t[i0:i1], self.o[i0:i1], self.h[i0:i1], self.l[i0:i1], self.c[i0:i1]
        half = self.step * 0.4
        for side in (0, 1):
            sel = (c >= o) if side else (c < o)
            if not sel.any():
                continue
            ts, os_, cs = t[sel], o[sel], c[sel]
            p.setPen(self._pens[side])
            p.drawPath(_pairs(ts, lo[sel], h[sel]))
            p.setBrush(self._brushes[side])
            bottom, top = np.minimum(os_, cs), np.maximum(os_, cs)
            p.drawRects(
                [QRectF(x - half, b, 2 * half, tp - b) for x, b, tp in zip(ts, bottom, top, strict=True)]
            )

    def _paint_merged(self, p: QPainter, i0: int, i1: int, x0: float, s_per_px: float) -> None:
        sl = slice(i0, i1)
        xs, low, high, up, n = merge_columns(
            self.t[sl], self.o[sl], self.h[sl], self.l[sl], self.c[sl], x0, s_per_px
        )
        for side, sel in ((0, ~up), (1, up)):
            if sel.any():
                p.setPen(self._pens[side])
                p.drawPath(_pairs(xs[sel], low[sel], high[sel]))
        self.last_paint = (int(xs.size), n)


def merge_columns(
    t: np.ndarray, o: np.ndarray, h: np.ndarray, lo: np.ndarray, c: np.ndarray, x0: float, width: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """Merge candles (times ``t`` ascending, non-empty) into columns ``[x0 + k*width, x0 + (k+1)*width)``.

    Returns ``(x, low, high, up, n)`` for every column holding a candle: its centre, the lowest
    low and highest high of its candles, whether the last close is >= the first open, and
    ``n`` = candles merged. Cost: O(candles) for the min/max, O(columns * log candles) to cut.
    """
    # Column k's first candle by binary search over the column edges, instead of flooring
    # every candle's time.
    k0 = int(np.floor((t[0] - x0) / width))
    k1 = int(np.floor((t[-1] - x0) / width)) + 1
    edges = x0 + np.arange(k0, k1 + 1) * width
    bounds = np.searchsorted(t, edges, side="left")
    bounds[0], bounds[-1] = 0, t.size
    keep = np.flatnonzero(bounds[1:] > bounds[:-1])  # columns holding a candle
    starts = bounds[keep]
    ends = bounds[keep + 1] - 1
    high = np.maximum.reduceat(h, starts)
    low = np.minimum.reduceat(lo, starts)
    up = c[ends] >= o[starts]
    # One vertical line per pixel column, at the column's centre (not at its first candle).
    return edges[keep] + 0.5 * width, low, high, up, int(t.size)


def _pairs(x: np.ndarray, y0: np.ndarray, y1: np.ndarray) -> QPainterPath:
    """A path of vertical segments (x, y0) -> (x, y1)."""
    xx = np.repeat(x, 2)
    yy = np.empty(xx.size)
    yy[0::2], yy[1::2] = y0, y1
    return pg.arrayToQPath(xx, yy, connect="pairs", finiteCheck=False)
