"""The real chart page in QtWebEngine (offscreen), driven through WebChart and read back from JS.

Every test fails on any JS console warning/error or chart ERROR log (conftest).
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from PySide6.QtGui import QColor, QImage

from binmon.core.candles import Append, ChartOp, Reload, Replace
from binmon.core.models import Kline
from binmon.ui.chart.api import ChartSymbol, Crosshair, VisibleRange
from binmon.ui.chart.bar_window import ChartDataError, bar_row
from binmon.ui.chart.fake import RecordingChart
from binmon.ui.chart.web_chart import WebChart

XRPETH = ChartSymbol("XRPETH", "1m", "0.00000001", "XRP", "ETH")
State = Callable[..., dict[str, Any]]


def rows(bars: list[Kline] | tuple[Kline, ...]) -> list[list[float]]:
    return [bar_row(b) for b in bars]


def synth(start_ms: int, n: int, price: float = 100.0, interval_ms: int = 60_000) -> list[Kline]:
    """``n`` simple bars, every ``interval_ms``, alternating up and down."""
    out = []
    for i in range(n):
        t = start_ms + i * interval_ms
        o = price + (i % 7)
        c = o + (1 if i % 2 else -1)
        out.append(
            Kline(
                "TEST", "1m", t, t + interval_ms - 1, o, max(o, c) + 1, min(o, c) - 1, c, 10 + i, 0, 1, 0, 0
            )
        )
    return out


def test_page_loads_local_and_clean(chart: WebChart, read_state: State) -> None:
    st = read_state(chart)
    assert st["lwcVersion"] == "5.2.1"
    assert st["attributionLogo"] is True  # required by the Lightweight Charts licence
    assert st["series"] == [
        {"type": "Candlestick", "pane": 0, "priceScaleId": "right"},
        {"type": "Histogram", "pane": 0, "priceScaleId": "volume"},
    ]
    assert (st["theme"], st["timezone"], st["count"], st["message"]) == ("dark", "UTC", 0, None)
    assert chart.url().scheme() == "file"


def test_real_bars_round_trip(
    chart: WebChart, xrpeth_bars: list[Kline], read_state: State, read_bars: Any
) -> None:
    bars = xrpeth_bars[:1000]
    chart.set_symbol(XRPETH)
    chart.set_bars(bars)
    st = read_state(chart)
    assert st["count"] == st["seriesCount"] == st["volumeCount"] == 1000
    assert st["first"] == bar_row(bars[0]) and st["last"] == bar_row(bars[-1])
    assert st["seriesLastTime"] == bars[-1].open_time // 1000
    assert read_bars(chart) == rows(bars) == rows(chart.bars)


def test_apply_append_and_replace(
    chart: WebChart, xrpeth_bars: list[Kline], read_state: State, read_bars: Any
) -> None:
    fake = RecordingChart()
    chart.set_symbol(XRPETH)
    fake.set_symbol(XRPETH)
    chart.set_bars(xrpeth_bars[:1000])
    fake.set_bars(xrpeth_bars[:1000])
    last = xrpeth_bars[999]
    newer = replace(last, close=last.close + 1e-8, high=last.high + 1e-8)
    ops: list[ChartOp] = [Replace(newer), Append(xrpeth_bars[1000])]
    chart.apply(ops)
    fake.apply(ops)
    st = read_state(chart)
    assert st["count"] == 1001
    assert st["last"] == bar_row(xrpeth_bars[1000])
    page = read_bars(chart)
    assert page[999] == bar_row(newer)
    assert page == rows(fake.bars)  # the fake keeps exactly what the page keeps

    # An update older than the last bar raises in the caller and never reaches the page.
    with pytest.raises(ChartDataError, match="older"):
        chart.apply([Append(xrpeth_bars[5])])
    assert read_bars(chart) == page

    chart.apply([Reload(tuple(xrpeth_bars[10:20]))])
    assert read_bars(chart) == rows(xrpeth_bars[10:20])


def test_price_precision_from_tick_size(chart: WebChart, xrpeth_bars: list[Kline], read_state: State) -> None:
    chart.set_symbol(XRPETH)
    chart.set_bars(xrpeth_bars[:1])  # close 0.00141418
    st = read_state(chart)
    assert st["priceFormat"] == {"type": "price", "precision": 8, "minMove": 1e-8}
    assert st["priceLabel"] == "0.00141418"
    assert "C 0.00141418" in st["legend"] and "O 0.00141342" in st["legend"]
    assert st["legend"].startswith("XRPETH · 1m")

    tiny = replace(
        xrpeth_bars[0], symbol="ETHBTC", open=0.00000638, high=0.00000641, low=0.00000637, close=0.00000639
    )
    chart.set_symbol(ChartSymbol("ETHBTC", "1m", "0.00000001"))
    chart.set_bars([tiny])
    st = read_state(chart)
    assert st["priceLabel"] == "0.00000639"
    assert "O 0.00000638" in st["legend"] and "H 0.00000641" in st["legend"]

    chart.set_symbol(ChartSymbol("BTCUSDT", "1m", "0.01000000"))
    chart.set_bars([replace(xrpeth_bars[0], symbol="BTCUSDT", close=69420.5)])
    st = read_state(chart)
    assert st["priceFormat"]["precision"] == 2 and st["priceLabel"] == "69420.50"


def test_theme_switch(
    chart: WebChart, xrpeth_bars: list[Kline], read_state: State, wait_drawn: Any, qtbot: Any
) -> None:
    chart.set_symbol(XRPETH)
    chart.set_bars(xrpeth_bars[:300])
    chart.set_theme("light")
    st = read_state(chart)
    assert (st["theme"], st["background"], st["textColor"]) == ("light", "#ffffff", "#131722")
    wait_drawn(chart)
    qtbot.waitUntil(lambda: chart.grab().toImage().pixelColor(600, 20) == QColor("#ffffff"))
    chart.set_theme("dark")
    st = read_state(chart)
    assert (st["theme"], st["background"]) == ("dark", "#131722")
    wait_drawn(chart)
    qtbot.waitUntil(lambda: chart.grab().toImage().pixelColor(600, 20) == QColor("#131722"))
    with pytest.raises(ValueError):
        chart.set_theme("purple")


def wall_clock(t_ms: int, zone: str) -> datetime:
    """The time ``t_ms`` in ``zone`` ("local": the system zone, as the page sees it too)."""
    utc = datetime.fromtimestamp(t_ms / 1000, UTC)
    return utc.astimezone() if zone == "local" else utc.astimezone(ZoneInfo(zone))


def expected_label(t_ms: int, zone: str) -> str:
    return wall_clock(t_ms, zone).strftime("%a %d %b '%y %H:%M")


@pytest.mark.parametrize("zone", ["Asia/Kolkata", "America/New_York", "Europe/Berlin", "local"])
def test_timezone_shifts_axis_and_legend(
    chart: WebChart, xrpeth_bars: list[Kline], read_state: State, zone: str
) -> None:
    chart.set_symbol(XRPETH)
    chart.set_bars(xrpeth_bars[:500])
    chart.set_timezone(zone)
    st = read_state(chart)
    last = xrpeth_bars[499]
    offset = wall_clock(last.open_time, zone).utcoffset()
    assert offset is not None
    assert st["timezone"] == zone
    # The chart draws the wall-clock time of the zone; the canonical time is untouched.
    assert st["shownLast"] - st["last"][0] == offset.total_seconds()
    assert st["last"] == bar_row(last)
    assert st["timeLabelLast"] == expected_label(last.open_time, zone)
    assert expected_label(last.open_time, zone) in st["legend"]
    chart.set_timezone("UTC")
    st = read_state(chart)
    assert st["shownLast"] == st["last"][0]
    assert st["timeLabelLast"] == expected_label(last.open_time, "UTC")
    with pytest.raises(ValueError):
        chart.set_timezone("Not/AZone")


def test_dst_fold_keeps_times_increasing(chart: WebChart, qtbot: Any) -> None:
    # Europe/Berlin fell back at 2019-10-27 01:00 UTC: local 02:00-02:59 happened twice.
    start = int(datetime(2019, 10, 26, 23, 0, tzinfo=UTC).timestamp() * 1000)
    bars = synth(start, 240)
    chart.set_timezone("Europe/Berlin")
    chart.set_symbol(ChartSymbol("TEST", "1m", "0.01"))
    chart.set_bars(bars)
    got: list[Any] = []
    chart.call_js("binmon.labelsJSON", 0, 240, callback=got.append)
    qtbot.waitUntil(lambda: bool(got))
    labels = json.loads(got[0])
    shown = [s for _, s, _ in labels]
    assert len(labels) == 240 and all(a < b for a, b in itertools.pairwise(shown))
    for (t, s, label), b in zip(labels, bars, strict=True):
        assert t * 1000 == b.open_time
        assert label == expected_label(b.open_time, "Europe/Berlin")  # exact, even inside the fold
        utc = datetime.fromtimestamp(t, UTC)
        if utc < datetime(2019, 10, 27, 1, tzinfo=UTC):
            assert s == t + 7200
        elif utc > datetime(2019, 10, 27, 2, 1, tzinfo=UTC):
            assert s == t + 3600


def test_message_overlay(chart: WebChart, read_state: State) -> None:
    chart.set_message("offline — reconnecting in 4 s")
    st = read_state(chart)
    assert st["messageVisible"] is True and st["message"] == "offline — reconnecting in 4 s"
    chart.set_message("</div><b>not html</b>")
    assert read_state(chart)["message"] == "</div><b>not html</b>"  # shown as text
    chart.set_message(None)
    st = read_state(chart)
    assert st["messageVisible"] is False and st["message"] is None


def test_calls_before_ready_arrive_after_it_in_order(
    qtbot: Any, make_chart: Any, xrpeth_bars: list[Kline], read_state: State, read_bars: Any
) -> None:
    view = make_chart()
    view.set_symbol(XRPETH)
    view.set_message("first")
    view.set_bars(xrpeth_bars[:100])
    view.apply([Append(xrpeth_bars[100])])
    view.set_message("second")
    view.set_theme("light")
    assert view.bridge.batches_sent == 0 and not view.bridge.is_ready  # nothing before ready
    with qtbot.waitSignal(view.ready, timeout=20_000):
        pass
    st = read_state(view)
    assert st["recent"][-6:] == ["setSymbol", "setMessage", "setBars", "apply", "setMessage", "setTheme"]
    assert (st["message"], st["theme"], st["count"]) == ("second", "light", 101)
    assert read_bars(view) == rows(xrpeth_bars[:101])


def test_burst_of_10k_applies_is_coalesced_and_complete(
    chart: WebChart, xrpeth_bars: list[Kline], read_bars: Any, read_state: State
) -> None:
    chart.set_symbol(XRPETH)
    chart.set_bars(xrpeth_bars[:1000])
    fake = RecordingChart()
    fake.set_bars(xrpeth_bars[:1000])
    read_state(chart)
    sent_before = chart.bridge.batches_sent
    last = xrpeth_bars[999]
    step = 60_000
    for i in range(10_000):
        # Every 5th op appends a new minute, the others keep replacing the newest bar.
        if i % 5 == 0:
            last = replace(last, open_time=last.open_time + step, close_time=last.close_time + step)
            op: Append | Replace = Append(last)
        else:
            last = replace(last, close=last.close + 1e-8, volume=last.volume + 1)
            op = Replace(last)
        chart.apply([op])
        fake.apply([op])
    assert read_bars(chart, 30_000) == rows(fake.bars)
    assert len(fake.bars) == 3000
    batches = chart.bridge.batches_sent - sent_before
    assert batches < 20, f"10k applies took {batches} JS batches"


def test_window_is_bounded_like_the_fake(make_chart: Any, xrpeth_bars: list[Kline], read_bars: Any) -> None:
    view = make_chart(max_bars=500)
    fake = RecordingChart(max_bars=500)
    calls: list[tuple[str, Any]] = [
        ("set_bars", xrpeth_bars[1000:1800]),
        ("apply", [Append(xrpeth_bars[1800]), Append(xrpeth_bars[1801])]),
        ("prepend_bars", xrpeth_bars[:1000]),
    ]
    for name, arg in calls:
        getattr(view, name)(arg)
        getattr(fake, name)(arg)
        assert read_bars(view) == rows(fake.bars)
    assert len(fake.bars) == 500 and fake.bars[-1] == xrpeth_bars[1801]

    view.set_bars(xrpeth_bars[1000:1200])
    fake.set_bars(xrpeth_bars[1000:1200])
    view.prepend_bars(xrpeth_bars[:1000])
    fake.prepend_bars(xrpeth_bars[:1000])
    assert read_bars(view) == rows(fake.bars) == rows(xrpeth_bars[700:1200])


def test_prepend_keeps_the_view_and_reports_ranges(
    chart: WebChart, xrpeth_bars: list[Kline], read_state: State, wait_drawn: Any, qtbot: Any
) -> None:
    ranges: list[VisibleRange] = []
    chart.on_visible_range(ranges.append)
    chart.set_symbol(XRPETH)
    chart.set_bars(xrpeth_bars[1000:2000])
    wait_drawn(chart)
    qtbot.waitUntil(lambda: bool(ranges))
    # Right after a load the view shows the newest bars.
    assert ranges[-1].to_ms == xrpeth_bars[1999].open_time and ranges[-1].bars_before > 0

    chart.call_js("binmon.setVisibleRange", 10.0, 110.0)  # as if the user scrolled left
    qtbot.waitUntil(lambda: ranges[-1].bars_before == 10)
    assert (ranges[-1].from_ms, ranges[-1].to_ms) == (
        xrpeth_bars[1010].open_time,
        xrpeth_bars[1110].open_time,
    )
    before = read_state(chart)["visible"]

    chart.prepend_bars(xrpeth_bars[:1000])  # what the controller does near the left edge
    qtbot.waitUntil(lambda: ranges[-1].bars_before == 1010)
    after = read_state(chart)["visible"]
    assert after["from"] == pytest.approx(before["from"] + 1000)
    assert (ranges[-1].from_ms, ranges[-1].to_ms) == (
        xrpeth_bars[1010].open_time,
        xrpeth_bars[1110].open_time,
    )


def test_crosshair_reports_full_klines(
    chart: WebChart, xrpeth_bars: list[Kline], qtbot: Any, wait_drawn: Any
) -> None:
    from PySide6.QtCore import QPoint
    from PySide6.QtTest import QTest

    seen: list[Crosshair] = []
    chart.on_crosshair(seen.append)
    chart.set_symbol(XRPETH)
    chart.set_bars(xrpeth_bars[:1000])
    wait_drawn(chart)
    target = chart.focusProxy() or chart
    QTest.mouseMove(target, QPoint(640, 300))
    qtbot.waitUntil(lambda: bool(seen) and seen[-1].bar is not None, timeout=5000)
    hit = seen[-1]
    assert hit.bar in xrpeth_bars[:1000] and hit.time_ms == hit.bar.open_time
    assert hit.bar.trades > 0  # a full Kline, not just what the page knows


def _colour_census(img: QImage) -> tuple[int, dict[str, int]]:
    wanted = {"#089981": 0, "#f23645": 0}
    distinct: set[int] = set()
    for y in range(0, img.height(), 2):
        for x in range(0, img.width(), 2):
            rgb = img.pixel(x, y)
            distinct.add(rgb)
            name = QColor(rgb).name()
            if name in wanted:
                wanted[name] += 1
    return len(distinct), wanted


@pytest.mark.parametrize("theme", ["dark", "light"])
def test_screenshot_shows_candles(
    chart: WebChart, xrpeth_bars: list[Kline], wait_drawn: Any, tmp_path: Path, theme: str, qtbot: Any
) -> None:
    chart.set_symbol(XRPETH)
    chart.set_bars(xrpeth_bars[:1000])
    chart.set_theme(theme)
    wait_drawn(chart)
    background = QColor("#131722" if theme == "dark" else "#ffffff")
    # The page has painted; the frame reaches the widget a little later, asynchronously.
    qtbot.waitUntil(lambda: chart.grab().toImage().pixelColor(600, 20) == background, timeout=5000)
    census: list[tuple[int, dict[str, int]]] = []

    def drawn() -> bool:
        census.append(_colour_census(chart.grab().toImage()))
        distinct, candles = census[-1]
        return distinct > 50 and min(candles.values()) > 500

    try:
        qtbot.waitUntil(drawn, timeout=5000)
    finally:
        pix = chart.grab()
        out = Path(os.environ.get("BINMON_SCREENSHOT_DIR", tmp_path)) / f"chart_{theme}.png"
        assert pix.save(str(out))
    assert (pix.width(), pix.height()) == (1280, 800)
    assert census[-1][0] > 50 and min(census[-1][1].values()) > 500, census[-1]


def test_page_reload_restores_state(
    chart: WebChart, xrpeth_bars: list[Kline], qtbot: Any, read_bars: Any
) -> None:
    from PySide6.QtWebEngineCore import QWebEnginePage

    chart.set_symbol(XRPETH)
    chart.set_bars(xrpeth_bars[:200])
    chart.set_message("offline")
    chart.set_theme("light")
    chart.set_timezone("Asia/Kolkata")
    with qtbot.waitSignal(chart.ready, timeout=20_000):
        chart.page().triggerAction(QWebEnginePage.WebAction.Reload)
    chart.apply([Append(xrpeth_bars[200])])
    assert read_bars(chart) == rows(xrpeth_bars[:201])
    st: list[dict[str, Any]] = []
    chart.state(st.append)
    qtbot.waitUntil(lambda: bool(st))
    assert (st[0]["message"], st[0]["theme"], st[0]["timezone"], st[0]["symbol"]) == (
        "offline",
        "light",
        "Asia/Kolkata",
        "XRPETH",
    )
