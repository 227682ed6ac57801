"""The app as ``binmon`` assembles it (real page), offline, switched to the demo market by a click.

Nothing listens on the configured exchange address, so the window must say it is offline,
offer "Use demo market" in the status bar, and after the click show the simulator's
candles on the real chart page, with the title saying it is the demo market.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import qasync
import shiboken6
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from binmon.app import AppParts, DemoSwitch, build_app
from binmon.config import AppConfig
from binmon.core.events import ConnState
from binmon.paths import AppPaths
from binmon.ui.dialogs import DownloadDialog


def _dead_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def offline_app(
    qtbot: QtBot, qloop: qasync.QEventLoop, tmp_path: Path
) -> Iterator[tuple[AppParts, DemoSwitch]]:
    port = _dead_port()
    paths = AppPaths.resolve(tmp_path).ensure()
    parts = build_app(paths, AppConfig(), f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}")
    parts.window.resize(1280, 800)
    parts.window.show()
    stack = contextlib.ExitStack()
    demo = DemoSwitch(parts, stack)

    def run(coro: Any, timeout_ms: int = 20_000) -> None:
        task = qloop.create_task(coro)
        qtbot.waitUntil(task.done, timeout=timeout_ms)
        task.result()

    run(parts.service.start("ETHUSDT", "1m"))
    try:
        yield parts, demo
    finally:
        run(demo.close())
        run(parts.service.close())
        parts.adapter.statusChanged.disconnect()
        parts.close_sync()
        stack.close()  # stops the simulator the switch started
        parts.window.close()
        shiboken6.delete(parts.chart)


def test_offline_window_offers_demo_and_switches(
    qtbot: QtBot,
    offline_app: tuple[AppParts, DemoSwitch],
    read_bars: Callable[..., list[list[float]]],
    read_state: Callable[..., dict[str, Any]],
) -> None:
    parts, demo = offline_app
    window, status = parts.window, parts.window.status
    # Offline: said in the chart area and the status bar, with the way out offered.
    qtbot.waitUntil(lambda: status.demo_button.isVisible(), timeout=20_000)
    st = status.status()
    assert st is not None and st.state in (ConnState.OFFLINE, ConnState.RECONNECTING)
    qtbot.waitUntil(lambda: (read_state(parts.chart)["message"] or "").startswith("Offline"), timeout=20_000)
    state = read_state(parts.chart)
    message = state["message"]
    assert state["messageVisible"]
    assert message.startswith("Offline") and "Use demo market" in message, message
    assert window.demo_action.isEnabled()
    assert "demo" not in window.windowTitle()

    qtbot.mouseClick(status.demo_button, Qt.MouseButton.LeftButton)

    qtbot.waitUntil(lambda: demo.task is not None and demo.task.done(), timeout=20_000)
    assert demo.task is not None and demo.task.exception() is None
    qtbot.waitUntil(lambda: len(parts.chart.bars) >= 1000, timeout=30_000)
    qtbot.waitUntil(
        lambda: status.status() is not None and status.status().state is ConnState.LIVE, timeout=20_000
    )
    # The same pick, now on the simulator; the offer is gone, the title says what this is.
    assert parts.service.current == ("ETHUSDT", "1m")
    assert "demo market" in window.windowTitle()
    assert not status.demo_button.isVisible()
    assert not window.demo_action.isEnabled()
    assert not read_state(parts.chart)["messageVisible"]
    # The page holds what the service holds (history from the simulator's REST API).
    parts.adapter.flush()
    rows = read_bars(parts.chart)
    series = parts.service.series
    assert series is not None
    assert [r[0] * 1000 for r in rows[:-1]] == [b.open_time for b in series.bars[: len(rows) - 1]]
    # History > Download... opens the dialog on the series shown, over the demo market's store.
    window.download_action.trigger()
    dialogs = window.findChildren(DownloadDialog)
    assert len(dialogs) == 1 and dialogs[0].isVisible()
    assert dialogs[0].symbol_edit.text() == "ETHUSDT" and dialogs[0].interval_box.currentText() == "1m"
    assert "candles-demo-" in str(parts.store.path)
    dialogs[0].close()
    assert rows[0][1:5] == [
        series.bars[0].open,
        series.bars[0].high,
        series.bars[0].low,
        series.bars[0].close,
    ]
