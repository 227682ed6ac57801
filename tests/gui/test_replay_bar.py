"""The replay bar: drives a (fake) replay control, and the real app parts replaying real trades.

The second test is the issue's end-to-end check with the app as ``binmon --replay`` builds it
(real chart page): a real trades CSV at 100x, pause -> the chart's last bar stops changing,
resume -> it moves on, and the closed bars equal the simulator's REST klines.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import qasync
import shiboken6
from pytestqt.qtbot import QtBot

from binmon.app import AppParts, build_app
from binmon.binance.rest import RestClient
from binmon.config import AppConfig
from binmon.paths import AppPaths
from binmon.sim.config import SimConfig
from binmon.sim.server import ServerConfig
from binmon.sim.thread import SimThread, run_sim
from binmon.ui.widgets.replay_bar import SPEEDS, ReplayBar, install_replay

TRADES = "XRPETH-trades-2019-10-11_13.csv"


class FakeControl:
    def __init__(self) -> None:
        self.paused = False
        self.speed = 1.0
        self.now = 1_570_752_011_620
        self.calls: list[tuple[str, Any]] = []

    def now_ms(self) -> int:
        return self.now

    def pause(self) -> None:
        self.calls.append(("pause", None))
        self.paused = True

    def resume(self) -> None:
        self.calls.append(("resume", None))
        self.paused = False

    def set_speed(self, speed: float) -> None:
        self.calls.append(("speed", speed))
        self.speed = speed


def test_bar_drives_the_control(qtbot: QtBot) -> None:
    control = FakeControl()
    bar = ReplayBar(control, poll_ms=20)
    qtbot.addWidget(bar)
    assert [bar.speed_box.itemText(i) for i in range(bar.speed_box.count())] == [
        "1x", "2x", "5x", "10x", "25x", "50x", "100x",
    ]  # fmt: skip
    assert bar.play_action.isChecked() and bar.play_action.text() == "Pause"
    assert "2019-10-11 00:00:11 UTC" in bar.time_label.text()
    bar.play_action.trigger()
    assert control.calls == [("pause", None)]
    assert bar.play_action.text() == "Play" and "paused" in bar.time_label.text()
    bar.play_action.trigger()
    assert control.calls[-1] == ("resume", None) and bar.play_action.text() == "Pause"
    bar.speed_box.setCurrentIndex(SPEEDS.index(25.0))
    bar.speed_box.activated.emit(SPEEDS.index(25.0))
    assert control.calls[-1] == ("speed", 25.0)
    # The bar follows changes made elsewhere (e.g. /_sim/clock), time included.
    control.paused, control.speed, control.now = True, 7.0, control.now + 60_000
    qtbot.waitUntil(lambda: bar.play_action.text() == "Play", timeout=2000)
    assert bar.speed_box.currentText() == "7x" and "00:01:11" in bar.time_label.text()
    assert len(control.calls) == 3  # following never calls back into the control


@pytest.fixture
def replay_file(request: pytest.FixtureRequest, tmp_path: Path, real_dir: Path) -> Path:
    """The real trades file; parametrized with a number n: its first n trades only."""
    n = getattr(request, "param", None)
    if n is None:
        return real_dir / TRADES
    path = tmp_path / "XRPETH-trades-short.csv"
    path.write_text("\n".join((real_dir / TRADES).read_text().splitlines()[:n]) + "\n")
    return path


@pytest.fixture
def replay_app(
    qtbot: QtBot, qloop: qasync.QEventLoop, tmp_path: Path, replay_file: Path
) -> Iterator[tuple[AppParts, SimThread, ReplayBar]]:
    sim = run_sim(SimConfig(replay=replay_file, speed=100.0), ServerConfig())
    paths = AppPaths.resolve(tmp_path).ensure()
    parts = build_app(
        paths, AppConfig(), sim.urls.rest, sim.urls.ws, archive_url=sim.urls.rest, demo="replay-XRPETH-trades"
    )
    bar = install_replay(parts, sim)
    parts.window.resize(1280, 800)
    parts.window.show()

    def run(coro: Any, timeout_ms: int = 20_000) -> None:
        task = qloop.create_task(coro)
        qtbot.waitUntil(task.done, timeout=timeout_ms)
        task.result()

    run(parts.service.start("XRPETH", "1m"))
    try:
        yield parts, sim, bar
    finally:
        bar.stop()
        run(parts.service.close())
        parts.adapter.statusChanged.disconnect()
        parts.close_sync()
        sim.stop()
        parts.window.close()
        shiboken6.delete(parts.chart)


def test_replay_pauses_resumes_and_matches_rest(
    qtbot: QtBot, replay_app: tuple[AppParts, SimThread, ReplayBar]
) -> None:
    parts, sim, bar = replay_app
    chart = parts.chart
    assert "candles-demo-replay-XRPETH-trades" in str(parts.store.path)  # never the exchange's store
    qtbot.waitUntil(lambda: len(chart.bars) >= 4, timeout=30_000)
    bar.play_action.trigger()  # pause
    assert sim.clock_state()["paused"]
    qtbot.wait(700)  # what was in flight lands (adapter throttle, page)
    parts.adapter.flush()
    frozen = (len(chart.bars), chart.bars[-1])
    t_end = time.monotonic() + 2.5
    while time.monotonic() < t_end:
        qtbot.wait(250)
        assert (len(chart.bars), chart.bars[-1]) == frozen, "the chart moved while paused"
    assert parts.service.stream.stats.watchdog_trips == 0  # the paused stream still looks alive
    # The status bar's delay is measured on the replay's clock, not against today's wall clock
    # (which would read years: "delay 190000000.0 s").
    delay_text = parts.window.status.delay_label.text()
    assert delay_text.endswith(" ms") or delay_text == "delay —", delay_text
    bar.play_action.trigger()  # resume
    qtbot.waitUntil(lambda: len(chart.bars) >= frozen[0] + 2, timeout=30_000)
    bar.play_action.trigger()  # pause again, to compare with REST at rest
    qtbot.wait(700)
    parts.adapter.flush()
    closed = [k for k in chart.bars if k.closed]
    assert len(closed) >= frozen[0]
    with RestClient(sim.urls.rest) as rest:
        served = rest.klines("XRPETH", "1m", start_ms=closed[0].open_time, limit=1000)
    by_time = {k.open_time: k for k in served}
    for k in closed:
        s = by_time[k.open_time]
        assert (k.open, k.high, k.low, k.close, k.volume, k.trades) == (
            s.open, s.high, s.low, s.close, s.volume, s.trades,
        )  # fmt: skip


@pytest.mark.parametrize("replay_file", [40], indirect=True)  # ten minutes of trades: 6 s at 100x
def test_replay_runs_past_the_end_of_its_file_quietly(
    qtbot: QtBot, replay_app: tuple[AppParts, SimThread, ReplayBar]
) -> None:
    parts, sim, _ = replay_app
    chart = parts.chart
    last_trade_ms = 1_570_752_603_858  # the 40th trade
    qtbot.waitUntil(lambda: sim.clock_state()["now_ms"] > last_trade_ms + 3 * 60_000, timeout=30_000)
    stats0 = parts.service.stream.stats.copy()
    qtbot.wait(8_000)  # 13 more replayed minutes without a trade
    stats = parts.service.stream.stats
    assert (stats.reconnects, stats.watchdog_trips) == (stats0.reconnects, stats0.watchdog_trips)
    assert parts.service.stream.status.state.name == "LIVE"
    parts.adapter.flush()
    with RestClient(sim.urls.rest) as rest:
        served = rest.klines("XRPETH", "1m", start_ms=chart.bars[0].open_time, limit=1000)
    assert [k.open_time for k in chart.bars] == [k.open_time for k in served]
    assert chart.bars[-1].open_time <= last_trade_ms < chart.bars[-1].open_time + 60_000
