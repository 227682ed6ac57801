"""pytest-qt set-up for the GUI tests: headless Qt, QtWebEngine as root, failing on page errors.

The environment is set at import time, before pytest-qt or anything else creates the
QApplication: Qt reads it once.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
from concurrent.futures import ThreadPoolExecutor

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# Chromium refuses to run as root with its sandbox; CI and this machine run as root.
os.environ.setdefault("QTWEBENGINE_DISABLE_SANDBOX", "1")
# Only effective when this conftest is loaded before pytest-qt configures (pytest tests/gui);
# otherwise pytest-qt finds PySide6 anyway, the only binding installed.
os.environ.setdefault("PYTEST_QT_API", "pyside6")

# QtWebEngine must be imported before the QApplication is created.
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import PySide6.QtWebEngineWidgets  # noqa: F401
import pytest
import qasync
import shiboken6
from PySide6.QtCore import QtMsgType
from PySide6.QtWidgets import QApplication

from binmon.binance.codec import decode_kline_row
from binmon.core.models import Kline

# Messages Qt prints on the offscreen platform / without a GPU that say nothing about our code.
_BENIGN_QT = (
    "This plugin does not support",
    "QRhiGles2",
    "Failed to create RHI",
    "QVulkanInstance",
    "GBM is not supported",
    "Sandboxing disabled",
    "GPUInfo not initialized",
)


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(autouse=True)
def chart_problems_fail(request: pytest.FixtureRequest, qtlog: Any) -> Iterator[_Collect]:
    """Fail the test on any WARNING+ log of the chart code or the page's JS console, and on Qt
    warnings (beyond known platform noise). Tests that provoke errors on purpose take the
    handler (this fixture) and clear ``records`` after checking them."""
    handler = _Collect()
    logger = logging.getLogger("binmon.ui.chart")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
    problems = [f"{r.name} {r.levelname}: {r.getMessage()}" for r in handler.records]
    problems += [
        f"Qt {rec.type.name}: {rec.message}"
        for rec in qtlog.records
        if rec.type in (QtMsgType.QtWarningMsg, QtMsgType.QtCriticalMsg, QtMsgType.QtFatalMsg)
        and not rec.message.startswith(_BENIGN_QT)
    ]
    if problems:
        pytest.fail("chart problems:\n" + "\n".join(problems), pytrace=False)


@pytest.fixture(scope="session")
def xrpeth_bars(real_dir: Path) -> list[Kline]:
    """The 2,469 real XRPETH 1m klines (tiny prices, minutes without trades missing)."""
    text = (real_dir / "XRPETH-1m-2019-10-11_13.csv").read_text()
    return [decode_kline_row("XRPETH", "1m", line.split(",")) for line in text.splitlines() if line]


@pytest.fixture
def make_chart(qtbot: Any) -> Iterator[Callable[..., Any]]:
    """``make_chart(**kwargs)`` -> a shown 1280x800 WebChart (not waited for); deleted after the test.

    Deleting the views explicitly (not whenever Python collects them) keeps every page gone
    before the web profile is, which Qt otherwise warns about at exit.
    """
    from binmon.ui.chart.web_chart import WebChart

    made: list[WebChart] = []

    def make(**kwargs: Any) -> WebChart:
        view = WebChart(**kwargs)
        made.append(view)
        view.resize(1280, 800)
        view.show()
        return view

    yield make
    for view in made:
        view.close()
        shiboken6.delete(view)


@pytest.fixture
def chart(qtbot: Any, make_chart: Callable[..., Any]) -> Any:
    """A shown 1280x800 WebChart whose page is ready."""
    view = make_chart()
    with qtbot.waitSignal(view.ready, timeout=20_000):
        pass
    return view


def _wait_result(qtbot: Any, start: Callable[[Callable[[Any], None]], None], timeout: int) -> Any:
    box: list[Any] = []
    start(box.append)
    qtbot.waitUntil(lambda: bool(box), timeout=timeout)
    return box[0]


@pytest.fixture
def read_state(qtbot: Any) -> Callable[..., dict[str, Any]]:
    """``read_state(chart)`` -> the page's state after every call made so far."""
    return lambda view, timeout=10_000: _wait_result(qtbot, view.state, timeout)


@pytest.fixture
def read_bars(qtbot: Any) -> Callable[..., list[list[float]]]:
    """``read_bars(chart)`` -> every bar row the page holds after every call made so far."""
    return lambda view, timeout=10_000: _wait_result(qtbot, view.page_bars, timeout)


@pytest.fixture
def wait_drawn(qtbot: Any) -> Callable[..., dict[str, Any]]:
    """``wait_drawn(chart)`` -> once everything sent so far has been painted."""
    return lambda view, timeout=10_000: _wait_result(qtbot, view.when_drawn, timeout)


@pytest.fixture(scope="module")
def qloop() -> Iterator[qasync.QEventLoop]:
    """One qasync loop on the already running Qt event loop (see the platform notes).

    Module-scoped, not session-scoped: while it exists it is asyncio's running loop, and the
    pytest-asyncio tests of other directories (which run after tests/gui) need none to be.
    Tests start coroutines with ``qloop.create_task`` and wait with ``qtbot.waitUntil(task.done)``.
    """
    app = QApplication.instance() or QApplication([])
    loop = qasync.QEventLoop(app, already_running=True)
    # A plain thread pool we can join: qasync's default QThreadExecutor is only shut down by
    # loop.close(), which an already-running loop cannot do without quitting the QApplication.
    executor = ThreadPoolExecutor(4, thread_name_prefix="test-executor")
    loop.set_default_executor(executor)
    asyncio.set_event_loop(loop)
    yield loop
    executor.shutdown(wait=True)
    # Later tests (pytest-asyncio) must not find this loop still marked as running, and an
    # unclosed loop warns when collected. qasync's stop() would call QApplication.exit(),
    # which breaks pytest-qt's waiting in later tests: clear qasync's running flag instead.
    loop._QEventLoop__is_running = False  # type: ignore[attr-defined]
    loop.close()
    asyncio.events._set_running_loop(None)
    asyncio.set_event_loop(None)
    # Collect the loop's Qt objects (its timer) here, on the GUI thread: left to a later full
    # collection, they may be freed on a worker thread (a simulator's, a download's) with their
    # timers still registered, and the next event-loop run crashes (seen with gdb).
    gc.collect()
