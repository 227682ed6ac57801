"""The Qt adapter: bursts become one chart call per flush, nothing lost, order kept."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import pytest
from pytestqt.qtbot import QtBot

from binmon.core.candles import Append, CandleSeries, ChartOp, Gap, Reload, Replace
from binmon.core.models import Kline, MiniTicker, SymbolInfo, TradeEvent
from binmon.ui.qt_adapter import QtMarketAdapter

T0 = 1_717_372_800_000  # 2024-06-03 00:00 UTC


class PageLikeChart:
    """Applies ops the way Lightweight Charts' ``series.update`` does (raises on an older bar)."""

    def __init__(self) -> None:
        self.bars: list[Kline] = []
        self.apply_calls: list[list[ChartOp]] = []
        self.calls: list[str] = []

    def apply(self, ops: Sequence[ChartOp]) -> None:
        self.apply_calls.append(list(ops))
        self.calls.append("apply")
        for op in ops:
            if isinstance(op, Reload):
                self.bars = list(op.bars)
            elif isinstance(op, Append | Replace):
                bar = op.bar
                if self.bars and bar.open_time < self.bars[-1].open_time:
                    raise AssertionError(f"update older than the last bar: {bar.open_time}")
                if self.bars and bar.open_time == self.bars[-1].open_time:
                    self.bars[-1] = bar
                else:
                    self.bars.append(bar)
            else:
                raise AssertionError(f"the chart should never see {op!r}")

    def set_bars(self, bars: Sequence[Kline]) -> None:
        self.calls.append("set_bars")
        self.bars = list(bars)

    def prepend_bars(self, bars: Sequence[Kline]) -> None:
        self.calls.append("prepend")
        self.bars = [*bars, *self.bars]


class Panels:
    """Stands in for the trades panel, the watchlist and the status bar."""

    def __init__(self) -> None:
        self.trades: list[TradeEvent] = []
        self.trade_batches = 0
        self.tickers: dict[str, MiniTicker] = {}
        self.ticker_batches = 0
        self.feed: list[tuple[float | None, float]] = []

    def add_trades(self, trades: Sequence[TradeEvent]) -> None:
        self.trade_batches += 1
        self.trades.extend(trades)

    def update_tickers(self, tickers: Any) -> None:
        self.ticker_batches += 1
        for t in tickers:
            self.tickers[t.symbol] = t

    def set_feed(self, delay_ms: float | None, msgs_per_s: float) -> None:
        self.feed.append((delay_ms, msgs_per_s))


def kline(i: int, version: int, closed: bool = False) -> Kline:
    """Bar ``i`` (1m), its ``version``-th update: more trades and volume each time."""
    p = 100.0 + i
    return Kline(
        "BTCUSDT", "1m", T0 + i * 60_000, T0 + i * 60_000 + 59_999,
        p, p + version, p - 1, p + version / 2, 1.0 + version, 100.0 + version,
        version + 1, 0.5, 50.0, closed,
    )  # fmt: skip


def burst(n_bars: int, per_bar: int) -> list[Kline]:
    """Every update of ``n_bars`` bars, ``per_bar`` versions each, the last one closed."""
    return [kline(i, v, closed=v == per_bar - 1) for i in range(n_bars) for v in range(per_bar)]


@pytest.fixture
def rig(qtbot: QtBot) -> tuple[QtMarketAdapter, PageLikeChart, Panels]:
    chart, panels = PageLikeChart(), Panels()
    adapter = QtMarketAdapter(chart, panels, panels, panels, wall_ms=lambda: T0 + 1_000.0)  # type: ignore[arg-type]
    yield adapter, chart, panels
    adapter.stop()


def test_burst_of_5000_is_one_apply_and_loses_nothing(qtbot: QtBot, rig: Any) -> None:
    adapter, chart, panels = rig
    series = CandleSeries("BTCUSDT", "1m")
    updates = burst(500, 10)  # 5,000 klines
    trades = [TradeEvent(T0 + i, "BTCUSDT", i, 100.0, 1.0, T0 + i, i % 2 == 0) for i in range(5000)]
    for i, k in enumerate(updates):
        adapter.market_feed(k.open_time)
        adapter.market_ops(series.apply(k))
        adapter.market_trade(trades[i])
        adapter.market_tickers([MiniTicker(T0 + i, f"S{i % 7}", float(i), 1.0, 1.0, 1.0, 1.0, 1.0)])
    assert chart.apply_calls == []  # nothing crosses before the timer fires
    qtbot.waitUntil(lambda: not adapter.pending, timeout=2000)
    assert len(chart.apply_calls) == 1
    assert len(chart.apply_calls[0]) == 500  # one op per open time
    assert chart.bars == list(series.bars)
    assert all(b.closed for b in chart.bars)
    # Trades: one batch, the newest ones, in order.
    assert panels.trade_batches == 1
    assert panels.trades == trades[-500:]
    # Tickers: latest per symbol.
    assert panels.ticker_batches == 1
    latest = {f"S{i % 7}": float(i) for i in range(5000)}
    assert {s: t.close for s, t in panels.tickers.items()} == latest


def test_steady_feed_is_throttled(qtbot: QtBot, rig: Any) -> None:
    adapter, chart, _ = rig
    series = CandleSeries("BTCUSDT", "1m")
    updates = burst(60, 50)
    start = time.monotonic()
    for i, k in enumerate(updates):
        adapter.market_ops(series.apply(k))
        if i % 10 == 0:
            qtbot.wait(1)  # let the event loop (and the flush timer) run, like a live feed
    qtbot.waitUntil(lambda: not adapter.pending, timeout=2000)
    elapsed = time.monotonic() - start
    assert chart.bars == list(series.bars)
    # At most one flush per 50 ms (plus the last one), and each flush one apply call.
    assert adapter.flush_count == len(chart.apply_calls)
    assert len(chart.apply_calls) <= elapsed / 0.05 + 2
    assert len(chart.apply_calls) < len(updates) / 10


def test_coalescing_keeps_first_kind_and_latest_bar(rig: Any) -> None:
    adapter, chart, _ = rig
    chart.set_bars([kline(0, 9, closed=True)])
    adapter.market_ops([Append(kline(1, 0)), Gap(T0, T0)])
    adapter.market_ops([Replace(kline(1, 1))])
    adapter.market_ops([Replace(kline(1, 2)), Append(kline(2, 0))])
    adapter.flush()
    assert chart.apply_calls == [[Append(kline(1, 2)), Append(kline(2, 0))]]


def test_reload_drops_ops_buffered_before_it(rig: Any) -> None:
    adapter, chart, _ = rig
    adapter.market_ops([Append(kline(5, 0))])
    reload = Reload((kline(0, 1, True), kline(1, 1, True)))
    adapter.market_ops([reload, Append(kline(2, 0))])
    adapter.flush()
    assert chart.apply_calls == [[reload, Append(kline(2, 0))]]


def test_switch_and_history_drop_buffered_ops(qtbot: QtBot, rig: Any) -> None:
    adapter, chart, panels = rig
    seen: list[tuple[str, str]] = []
    adapter.switching.connect(lambda info, interval: seen.append((info.symbol, interval)))
    adapter.market_ops([Append(kline(3, 0))])
    adapter.market_trade(TradeEvent(T0, "BTCUSDT", 1, 1.0, 1.0, T0, True))
    adapter.market_switching(SymbolInfo("ETHUSDT", "TRADING", "ETH", "USDT"), "5m")
    assert seen == [("ETHUSDT", "5m")]
    assert not adapter.pending
    adapter.market_ops([Append(kline(4, 0))])
    adapter.market_history("ETHUSDT", "5m", [])
    qtbot.wait(120)
    assert chart.apply_calls == [] and panels.trades == []


def test_older_bars_flush_pending_first(rig: Any) -> None:
    adapter, _, _ = rig
    order: list[str] = []
    adapter.olderLoaded.connect(lambda *a: order.append("older"))
    adapter.flushed.connect(lambda n: order.append(f"flush {n}"))
    adapter.market_ops([Append(kline(3, 0))])
    adapter.market_older("BTCUSDT", "1m", [kline(0, 1, True)])
    assert order == ["flush 1", "older"]


def test_feed_figures(qtbot: QtBot, rig: Any) -> None:
    adapter, _, panels = rig
    for i in range(30):
        adapter.market_feed(T0 + i)
    qtbot.waitUntil(lambda: len(panels.feed) >= 2, timeout=3000)
    delay, rate = panels.feed[0]
    assert delay == pytest.approx(1_000.0) and rate > 0  # the worst delay on arrival in the period
    assert panels.feed[1] == (None, 0.0)  # nothing since: unknown delay, no rate


def test_feed_delay_measured_on_a_replay_clock(qtbot: QtBot, rig: Any) -> None:
    adapter, _, panels = rig
    adapter.measure_delay_with(lambda event_ms: (T0 + 5_000 - event_ms) / 10.0)  # 10x replay
    adapter.market_feed(T0 + 1_000)
    qtbot.waitUntil(lambda: len(panels.feed) >= 1, timeout=3000)
    assert panels.feed[0][0] == pytest.approx(400.0)


def test_a_failing_panel_does_not_stop_the_chart(rig: Any, caplog: pytest.LogCaptureFixture) -> None:
    adapter, chart, panels = rig

    def broken(_: Any) -> None:
        raise RuntimeError("panel bug")

    panels.add_trades = broken  # type: ignore[method-assign]
    adapter.market_trade(TradeEvent(T0, "BTCUSDT", 1, 1.0, 1.0, T0, True))
    adapter.market_ops([Append(kline(0, 0))])
    adapter.flush()
    assert chart.bars == [kline(0, 0)]
    assert "panel bug" in caplog.text
