"""The Python <-> page bridge on a real QtWebEngine page: handshake, ordering, error routing,
local-only loading, and the PySide6 6.12-on-Python-3.11 crash regression (platform notes)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
import shiboken6
from PySide6.QtCore import QObject, QUrl, Signal
from PySide6.QtWebEngineCore import QWebEnginePage
from PySide6.QtWebEngineWidgets import QWebEngineView

from binmon.resources import resource_path
from binmon.ui.chart.bridge import ChartBridge, ChartPage
from binmon.ui.chart.jscall import js_call
from binmon.ui.chart.web_chart import WebChart


@pytest.fixture
def bare(qtbot: Any) -> Iterator[tuple[QWebEngineView, ChartPage, ChartBridge]]:
    """A view with a ChartPage and a ChartBridge, nothing loaded yet."""
    view = QWebEngineView()
    page = ChartPage(view)
    view.setPage(page)
    bridge = ChartBridge(page, view)
    view.resize(400, 300)
    view.show()
    yield view, page, bridge
    view.close()
    shiboken6.delete(view)


def test_queue_waits_for_ready_then_runs_in_order(qtbot: Any, bare: Any) -> None:
    view, _, bridge = bare
    results: list[Any] = []
    for i in range(5):
        bridge.call(js_call("String", i), results.append)
    bridge.call(js_call("binmon.setMessage", "queued"))
    assert bridge.pending == 6 and bridge.batches_sent == 0
    with qtbot.waitSignal(bridge.ready, timeout=20_000):
        view.setUrl(QUrl.fromLocalFile(str(resource_path("chart", "index.html"))))
    qtbot.waitUntil(lambda: bridge.pending == 0 and len(results) == 5)
    assert results == ["0", "1", "2", "3", "4"]
    # Each batch ends at a call that wants a result: 5 batches, the last one carries setMessage.
    assert bridge.batches_sent == 6 and bridge.calls_sent == 6


def test_a_failing_call_is_reported_and_the_rest_still_run(
    chart: WebChart, qtbot: Any, read_state: Any, chart_problems_fail: Any
) -> None:
    errors: list[str] = []
    chart.error.connect(errors.append)
    chart.call_js("binmon.setTheme", "purple")  # bypasses the Python check on purpose
    chart.set_message("after the failure")
    st = read_state(chart)
    assert st["message"] == "after the failure" and st["theme"] == "dark"
    qtbot.waitUntil(lambda: bool(errors))
    assert "unknown theme" in errors[0]
    logged = [r for r in chart_problems_fail.records if r.levelno == logging.ERROR]
    assert logged and "unknown theme" in logged[0].getMessage()
    chart_problems_fail.records.clear()


def test_console_goes_to_logging(chart: WebChart, qtbot: Any, chart_problems_fail: Any) -> None:
    records = chart_problems_fail.records
    chart.page().runJavaScript("console.warn('careful'); console.error('broken'); console.info('fine')")
    qtbot.waitUntil(lambda: len(records) >= 2)
    got = {(r.name, r.levelno, r.getMessage().split(" (")[0]) for r in records}
    assert got == {
        ("binmon.ui.chart.js", logging.WARNING, "careful"),
        ("binmon.ui.chart.js", logging.ERROR, "broken"),
    }
    records.clear()


def test_load_failure_is_an_error(qtbot: Any, bare: Any, chart_problems_fail: Any) -> None:
    view, _, bridge = bare
    with qtbot.waitSignal(bridge.error, timeout=20_000) as sig:
        view.setUrl(QUrl.fromLocalFile("/nonexistent/binmon/index.html"))
    assert "failed to load" in sig.args[0]
    assert not bridge.is_ready
    chart_problems_fail.records.clear()


def test_remote_requests_are_blocked(qtbot: Any, bare: Any, chart_problems_fail: Any) -> None:
    view, _, bridge = bare
    records = chart_problems_fail.records
    # file: pages may not load remote URLs anyway (Chromium's default); the interceptor is the
    # second wall: even a navigation the page did not ask for never leaves the machine.
    view.setUrl(QUrl("http://127.0.0.1:9/tracker.png"))
    qtbot.waitUntil(lambda: any("blocked" in r.getMessage() for r in records), timeout=10_000)
    assert any("http://127.0.0.1:9/tracker.png" in r.getMessage() for r in records)
    assert not bridge.is_ready
    records.clear()


def test_query_queued_across_a_reload_is_answered(
    chart: WebChart, xrpeth_bars: Any, qtbot: Any, read_state: Any
) -> None:
    chart.set_bars(xrpeth_bars[:50])
    read_state(chart)
    reloads: list[bool] = []
    chart.bridge.reloaded.connect(lambda: reloads.append(True))
    chart.page().triggerAction(QWebEnginePage.WebAction.Reload)
    st = read_state(chart, 20_000)  # asked while the old document goes away
    qtbot.waitUntil(lambda: bool(reloads), timeout=20_000)
    st = read_state(chart)
    assert st["count"] == 50 and st["last"][0] * 1000 == xrpeth_bars[49].open_time


class _Emitter(QObject):
    void = Signal()
    flag = Signal(bool)
    obj = Signal(object)


def test_many_signals_and_scripts_do_not_crash(chart: WebChart, qtbot: Any) -> None:
    """PySide6 6.12 on Python 3.11 dies (none_dealloc / bool_dealloc) after a few thousand of these."""
    em = _Emitter()
    count = [0]

    def bump(*_: Any) -> None:
        count[0] += 1

    em.void.connect(bump)
    em.flag.connect(bump)
    em.obj.connect(bump)
    for i in range(7000):
        em.void.emit()
        em.flag.emit(bool(i % 2))
        em.obj.emit(None)
    assert count[0] == 21_000

    results: list[Any] = []
    for i in range(10_000):
        chart.page().runJavaScript(f"{i} % 3 === 0", 0, results.append)
    qtbot.waitUntil(lambda: len(results) == 10_000, timeout=60_000)
    assert results.count(True) == 3334 and results.count(False) == 6666

    # JS -> Python through the channel's void slot, the path the chart's messages take.
    got: list[Any] = []
    chart.bridge.message.connect(lambda msg: got.append(msg) if msg.get("event") == "echo" else None)
    chart.call_js("binmon.echo", 5000)
    qtbot.waitUntil(lambda: len(got) == 5000, timeout=60_000)
    assert [m["i"] for m in got] == list(range(5000))
