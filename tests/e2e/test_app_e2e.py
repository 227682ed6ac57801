"""The app as a subprocess against the simulator: the chart's bars equal the exchange's klines.

The app runs offscreen with ``--exit-after``: it saves a screenshot, closes its feed, reads
every bar back from the page (``--dump-chart``) and quits. Closed bars must equal the
simulator's REST klines exactly; the page must hold exactly the bars of the app's series; the
app must exit 0 leaving no process behind, with no traceback on stderr.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
import requests
from PySide6.QtGui import QImage

from binmon.binance.rest import RestClient

pytestmark = pytest.mark.slow


def check_bars_match_exchange(run: Any, urls: Any, symbol: str, interval_ms: int) -> int:
    """Assert the dump against REST; return the number of closed bars compared."""
    assert run.returncode == 0, run.stderr[-3000:]
    assert "Traceback" not in run.stderr, run.stderr[-3000:]
    assert "Event loop stopped before Future completed" not in run.stderr
    dump = run.dump
    assert dump["current"][0] == symbol
    page, series = dump["page"], dump["series"]
    assert len(series) >= 1000
    # The page holds exactly the series (the open bar included: the feed was closed and the
    # adapter flushed before the page was read).
    assert [r[0] * 1000 for r in page] == [b["time"] for b in series]
    for row, bar in zip(page, series, strict=True):
        assert row[1:] == [bar["open"], bar["high"], bar["low"], bar["close"], bar["volume"]], bar
    # Contiguous: no candle lost (the simulator trades every minute).
    times = [b["time"] for b in series]
    assert times == list(range(times[0], times[-1] + 1, interval_ms))
    closed = [b for b in series if b["closed"]]
    assert not [b for b in series[:-1] if not b["closed"]]  # only the last may be open
    with RestClient(urls.rest) as rest:
        want: dict[int, Any] = {}
        for page_ in rest.iter_klines(symbol, dump["current"][1], closed[0]["time"], closed[-1]["time"]):
            want.update({k.open_time: k for k in page_})
    wrong = [
        (i, b, want[b["time"]])
        for i, b in enumerate(closed)
        if (b["open"], b["high"], b["low"], b["close"], b["volume"])
        != (want[b["time"]].open, want[b["time"]].high, want[b["time"]].low, want[b["time"]].close,
            want[b["time"]].volume)
    ]  # fmt: skip
    assert not wrong, (
        f"{len(wrong)} of {len(closed)} closed bars differ, first at index {wrong[0][0]}: {wrong[0]}"
    )
    check_open_bar(page[-1], series[-1], rest_url=urls.rest, symbol=symbol, interval=dump["current"][1])
    return len(closed)


def check_open_bar(
    row: list[float], bar: dict[str, Any], *, rest_url: str, symbol: str, interval: str
) -> None:
    """The page's newest bar is the simulator's candle as it stood a moment ago.

    The simulator keeps trading after the app closed its feed, so the candle cannot be equal
    now; once the simulator has closed it, it must extend the page's version: same open, a
    range at least as wide, at least the volume.
    """
    if bar["closed"]:
        return
    t = bar["time"]
    with RestClient(rest_url) as rest:
        deadline = time.monotonic() + 10
        while True:
            final = [k for k in rest.klines(symbol, interval, start_ms=t, limit=2) if k.open_time == t]
            if final and final[0].closed:
                break
            assert time.monotonic() < deadline, "the simulator never closed the open candle"
            time.sleep(0.2)
    k = final[0]
    assert row[1] == k.open, (row, k)
    assert k.low <= row[3] <= min(row[1], row[4]) and max(row[1], row[4]) <= row[2] <= k.high, (row, k)
    assert 0 < row[5] <= k.volume, (row, k)


def check_screenshot(run: Any) -> None:
    img = QImage(str(run.screenshot))
    assert not img.isNull() and img.width() >= 800 and img.height() >= 500
    colours = set()
    for y in range(0, img.height(), 4):
        for x in range(0, img.width(), 4):
            colours.add(img.pixel(x, y))
    assert len(colours) > 200, f"screenshot looks blank: {len(colours)} colours"


def test_app_shows_the_exchange_klines(sim_proc: Any, run_app: Callable[..., Any]) -> None:
    run = run_app(sim_proc, 6.0, "--symbol", "ETHUSDT", "--interval", "1m")
    n = check_bars_match_exchange(run, sim_proc, "ETHUSDT", 60_000)
    assert n >= 1000
    # Live bars arrived: at 60x, 6 s of running closes ~6 one-minute candles after the history.
    assert len(run.dump["series"]) >= 1003
    assert run.dump["subscriptions"] == ["!miniTicker@arr", "ethusdt@kline_1m", "ethusdt@trade"]
    check_screenshot(run)
    # The choice was saved under --basedir, and the layout too.
    assert '"symbol": "ETHUSDT"' in (run.basedir / "config" / "config.json").read_text()
    assert (run.basedir / "state" / "window.ini").exists()


def test_app_recovers_from_a_forced_disconnect(sim_proc: Any, run_app: Callable[..., Any]) -> None:
    def drop_twice(_: Any) -> None:
        for _ in range(2):
            time.sleep(3.0)
            requests.get(
                f"{sim_proc.rest}/_sim/fault", params={"name": "drop_all"}, timeout=5
            ).raise_for_status()

    run = run_app(sim_proc, 10.0, "--symbol", "BTCUSDT", during=drop_twice)
    state = requests.get(f"{sim_proc.rest}/_sim/state", timeout=5).json()
    assert state["stats"]["connections_total"] >= 3  # the app reconnected after each drop
    check_bars_match_exchange(run, sim_proc, "BTCUSDT", 60_000)
    assert len(run.dump["series"]) >= 1007
    check_screenshot(run)
