"""The result plots' pieces: per-pixel candle merging against a brute-force count, the candle
item's y range, the heatmap grid values."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from binmon.ui.backtest.candles import CandleItem, merge_columns
from binmon.ui.backtest.optimize_model import grid_values


@pytest.fixture(scope="module")
def ethbtc(real_dir: Path) -> pd.DataFrame:
    """The real ETHBTC 5m candles with every 7th one dropped (gaps, as real data has)."""
    raw = pd.read_csv(real_dir / "ETHBTC-5m-2018-01-10_30.ohlcv.csv")
    return raw[raw.index % 7 != 3].reset_index(drop=True)


@pytest.mark.parametrize("width", [123.456789, 299.9, 1234.5678, 86_399.123])
def test_merged_columns_hold_the_extremes_of_their_candles(ethbtc: pd.DataFrame, width: float) -> None:
    t = ethbtc["open_time"].to_numpy() / 1000.0
    o, h, lo, c = (ethbtc[k].to_numpy() for k in ("open", "high", "low", "close"))
    x0 = float(t[0]) - 1000.5
    xs, low, high, up, n = merge_columns(t, o, h, lo, c, x0, width)
    assert n == len(t)
    # Brute force: every candle's column by flooring, then per column min/max/first/last.
    column = np.floor((t - x0) / width).astype(np.int64)
    expected = {}
    for i, k in enumerate(column):
        first_open, lo_k, hi_k, _ = expected.get(k, (o[i], np.inf, -np.inf, None))
        expected[k] = (first_open, min(lo_k, lo[i]), max(hi_k, h[i]), c[i])
    keys = sorted(expected)
    assert len(xs) == len(keys)
    assert np.allclose(xs, [x0 + (k + 0.5) * width for k in keys])
    assert np.array_equal(low, [expected[k][1] for k in keys])
    assert np.array_equal(high, [expected[k][2] for k in keys])
    assert np.array_equal(up, [expected[k][3] >= expected[k][0] for k in keys])


def test_candle_item_y_range_follows_the_visible_candles(qtbot: object, ethbtc: pd.DataFrame) -> None:
    t = ethbtc["open_time"].to_numpy() / 1000.0
    item = CandleItem(t, *(ethbtc[k].to_numpy() for k in ("open", "high", "low", "close")))
    assert len(item) == len(t)
    lo_all, hi_all = item.dataBounds(1)
    assert (lo_all, hi_all) == (ethbtc["low"].min(), ethbtc["high"].max())
    # A window of the data: the bounds of the candles inside it (one candle step of margin).
    a, b = float(t[100]), float(t[200])
    lo_w, hi_w = item.dataBounds(1, orthoRange=(a, b))
    inside = ethbtc[(t >= a - item.step) & (t <= b + item.step)]
    assert (lo_w, hi_w) == (inside["low"].min(), inside["high"].max())
    assert item.step == 300.0  # the median spacing: gaps do not widen the candles
    x_lo, x_hi = item.dataBounds(0)
    assert x_lo < t[0] < t[-1] < x_hi


def test_grid_values() -> None:
    assert grid_values(5, 15, 5, integer=True) == [5, 10, 15]
    assert grid_values(5, 16, 5, integer=True) == [5, 10, 15]
    assert grid_values(0.5, 1.0, 0.1, integer=False) == [0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
    assert grid_values(20, 20, 5, integer=True) == [20]
    assert grid_values(20, 10, 5, integer=True) == [20]  # To below From: the From value alone
    assert grid_values(3, 9, 0, integer=True) == [3]


def test_plots_follow_the_theme(qtbot: object, qapp: object, ethbtc: pd.DataFrame) -> None:
    from PySide6.QtGui import QPalette
    from PySide6.QtWidgets import QApplication

    from binmon.ui.backtest.plots import PlotData, ResultPlots
    from binmon.ui.main_window import theme_palette

    app = QApplication.instance()
    assert isinstance(app, QApplication)
    before = QPalette(app.palette())
    t = ethbtc["open_time"].to_numpy() / 1000.0
    close = ethbtc["close"].to_numpy()
    plots = ResultPlots()
    qtbot.addWidget(plots)  # type: ignore[attr-defined]
    equity = 10_000 * close / close[0]
    plots.show_data(
        PlotData(
            t, *(ethbtc[k].to_numpy() for k in ("open", "high", "low", "close")), equity, equity, 0 * equity
        )
    )
    try:
        for theme in ("dark", "light"):
            app.setPalette(theme_palette(theme))
            app.processEvents()  # the widgets get their PaletteChange events
            base = theme_palette(theme).color(QPalette.ColorRole.Base)
            assert plots.backgroundBrush().color() == base
            assert plots.price is not None
            assert plots.price.getAxis("left").textPen().color() == theme_palette(theme).color(
                QPalette.ColorRole.Text
            )
    finally:
        app.setPalette(before)
