"""The history download dialog: validation, the Stored section, progress, cancel, errors, closing,
the main window's entry points, and one run through the real downloader against the simulator."""

from __future__ import annotations

import gc
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import shiboken6
from PySide6.QtCore import QDateTime, QPoint, Qt, QTimeZone
from PySide6.QtWidgets import QLabel
from pytestqt.qtbot import QtBot

from binmon.binance.errors import BinanceAPIError, NetworkError
from binmon.binance.rest import RestClient
from binmon.core.intervals import DAY_MS, HOUR_MS, MINUTE_MS
from binmon.core.models import SymbolInfo
from binmon.history.archive_client import ArchiveClient
from binmon.history.download import Downloader, DownloadRequest, DownloadResult, Progress, store_clock
from binmon.history.ranges import SeriesKey, TimeRange
from binmon.history.store import CandleStore
from binmon.sim.config import SimConfig
from binmon.sim.server import ServerConfig
from binmon.sim.thread import run_sim
from binmon.ui.dialogs import DownloadDialog, open_download_dialog
from binmon.ui.dialogs.download_check import (
    Listing,
    check_download,
    format_eta,
    progress_text,
    result_text,
)
from binmon.ui.main_window import MainWindow

#: 2024-06-03 00:00:30 UTC (the simulator fixtures' start).
NOW = 1_717_372_830_000
DAY0 = NOW - 30_000  # 2024-06-03 00:00
#: ETHUSDT 1h's first candle on the real exchange: 2017-08-17 04:00 UTC.
ETH_LISTING = 1_502_942_400_000
INFOS = [
    SymbolInfo("BTCUSDT", "TRADING", "BTC", "USDT"),
    SymbolInfo("ETHUSDT", "TRADING", "ETH", "USDT"),
    SymbolInfo("ETHBTC", "TRADING", "ETH", "BTC"),
    SymbolInfo("OLDUSDT", "BREAK", "OLD", "USDT"),
]


@dataclass
class FakeStore:
    """Enough of CandleStore for the Stored section: one series' runs and coverage."""

    present_runs: dict[SeriesKey, list[TimeRange]] = field(default_factory=dict)
    covered: dict[SeriesKey, list[TimeRange]] = field(default_factory=dict)

    def present(self, key: SeriesKey) -> list[TimeRange]:
        return list(self.present_runs.get(key, []))

    def coverage(self, key: SeriesKey) -> list[TimeRange]:
        return list(self.covered.get(key, []))

    def count(self, key: SeriesKey) -> int:
        step = MINUTE_MS if key.interval == "1m" else HOUR_MS
        return sum((r.end - r.start) // step + 1 for r in self.present_runs.get(key, []))

    def bounds(self, key: SeriesKey) -> TimeRange | None:
        runs = self.present_runs.get(key)
        return TimeRange(runs[0].start, runs[-1].end) if runs else None


class FakeDownloader:
    """Scripted downloads: ``steps`` progress reports, each released by ``step.set()`` when
    ``gated``; listing answers from ``listings`` (an exception is raised)."""

    def __init__(self, store: FakeStore | None = None) -> None:
        self.store = store
        self.listings: dict[tuple[str, str], int | Exception | None] = {}
        self.listing_calls: list[tuple[str, str]] = []
        self.requests: list[DownloadRequest] = []
        self.steps = 4
        self.gated = False
        self.step = threading.Event()
        self.error: Exception | None = None
        self.problems: tuple[str, ...] = ()
        self.per_step = 1000
        self.listing_gate: threading.Event | None = None

    def listing_start(self, symbol: str, interval: str) -> int | None:
        self.listing_calls.append((symbol, interval))
        if self.listing_gate is not None:
            self.listing_gate.wait(10)
        got = self.listings.get((symbol, interval), ETH_LISTING)
        if isinstance(got, Exception):
            raise got
        return got

    def run(
        self,
        req: DownloadRequest,
        *,
        progress: Callable[[Progress], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> DownloadResult:
        self.requests.append(req)
        total = self.steps * self.per_step
        done = 0
        assert progress is not None and cancel is not None
        progress(Progress("planning", 0, 0, 0, 0, 0.0, None))
        for i in range(self.steps):
            if self.gated:
                while not self.step.wait(0.05):
                    if cancel.is_set():
                        break
                self.step.clear()
            if cancel.is_set():
                return DownloadResult(done, 0, i, 0, (), True, 0.5)
            if self.error is not None and i == 1:
                raise self.error
            done += self.per_step
            progress(Progress("rest", done, total, i + 1, self.steps, 8200.0, 42.0 * (self.steps - i - 1)))
        progress(Progress("done", done, total, self.steps, self.steps, 8200.0, 0.0))
        return DownloadResult(done, 120, self.steps, 2, self.problems, False, 4.1)


@pytest.fixture
def make_dialog(qtbot: QtBot) -> Iterator[Callable[..., DownloadDialog]]:
    made: list[DownloadDialog] = []

    def make(
        downloader: Any = None, store: Any = None, pick: tuple[str, str] = ("ETHUSDT", "1h"), **kw: Any
    ) -> DownloadDialog:
        store = store if store is not None else FakeStore()
        downloader = downloader if downloader is not None else FakeDownloader(store)
        kw.setdefault("now_ms", lambda: NOW)
        kw.setdefault("debounce_ms", 10)
        dialog = DownloadDialog(downloader, store, kw.pop("infos", INFOS), pick, **kw)
        qtbot.addWidget(dialog)
        dialog.show()
        qtbot.waitExposed(dialog)
        made.append(dialog)
        return dialog

    yield make
    for dialog in made:
        dialog.shutdown(5.0)
        # Delete on the GUI thread now: a parentless widget left to Python's cyclic GC may be
        # destroyed on whichever thread the GC runs (a worker's), leaving its timers dangling.
        if shiboken6.isValid(dialog):
            shiboken6.delete(dialog)


def settle(qtbot: QtBot, dialog: DownloadDialog) -> None:
    """Wait for the debounced lookups of the form as it is now."""
    qtbot.wait(30)
    qtbot.waitUntil(lambda: not dialog._looking_up and not dialog._debounce.isActive(), timeout=5000)
    qtbot.wait(20)


def message(dialog: DownloadDialog) -> str:
    return dialog.message_label.text()


# ---------------------------------------------------------------- the pure checks


def test_check_rules_without_qt() -> None:
    infos = {s.symbol: s for s in INFOS}
    ok = check_download("ethusdt", infos, "1h", DAY0 - DAY_MS, DAY0, NOW)
    assert ok.request == DownloadRequest(SeriesKey.spot("ETHUSDT", "1h"), DAY0 - DAY_MS, DAY0 - 1, "auto")
    assert check_download("", infos, "1h", DAY0 - DAY_MS, DAY0, NOW).error.startswith("Enter a symbol")
    # An empty symbol list (not loaded yet) lets any well-formed symbol through.
    assert check_download("NEWUSDT", {}, "1m", DAY0 - DAY_MS, DAY0, NOW).request is not None
    assert "Bad symbol" in check_download("ETH-USDT", {}, "1m", DAY0 - DAY_MS, DAY0, NOW).error
    one_day = check_download("ETHUSDT", infos, "1d", DAY0 + HOUR_MS, DAY0 + 2 * HOUR_MS, NOW + DAY_MS)
    assert one_day.error == "No 1d candle opens in this range; widen it"
    nothing = check_download("ETHUSDT", infos, "1h", 0, DAY0, NOW, listing=Listing(None))
    assert nothing.error == "The exchange has no ETHUSDT 1h candles"
    assert format_eta(42) == "0:42" and format_eta(3723) == "1:02:03" and format_eta(None) == "—"
    p = Progress("rest", 12_345, 43_200, 3, 9, 8_200.0, 42.0)
    assert progress_text(p) == "12,345 of 43,200 candles · 8,200/s · ETA 0:42"
    assert (
        result_text(DownloadResult(43_200, 0, 3, 12, (), False, 4.1))
        == "Downloaded 43,200 candles (12 archive files, 3 requests) in 4.1 s"
    )
    assert (
        result_text(DownloadResult(20_000, 0, 20, 0, (), True, 2.0))
        == "Cancelled — 20,000 candles kept; download again to resume"
    )
    nothing_new = result_text(DownloadResult(0, 4320, 0, 0, (), False, 0.01))
    assert nothing_new == "Nothing to download: the 4,320 candles of this range are already stored"


# ---------------------------------------------------------------- validation in the dialog


def test_valid_form_enables_download_and_looks_up_the_listing_once(
    qtbot: QtBot, make_dialog: Callable[..., DownloadDialog]
) -> None:
    dl = FakeDownloader()
    dialog = make_dialog(dl)
    settle(qtbot, dialog)
    assert dialog.download_button.isEnabled() and message(dialog) == ""
    assert dialog.check().request == DownloadRequest(
        SeriesKey.spot("ETHUSDT", "1h"), DAY0 - 7 * DAY_MS, DAY0 - 1, "auto"
    )
    # Quick changes are debounced: 15m is never asked about.
    dialog.interval_box.setCurrentText("15m")
    dialog.interval_box.setCurrentText("4h")
    settle(qtbot, dialog)
    # Switching back, and editing dates, uses the cached answer.
    dialog.interval_box.setCurrentText("1h")
    dialog.set_range(DAY0 - 2 * DAY_MS, DAY0)
    settle(qtbot, dialog)
    assert dl.listing_calls == [("ETHUSDT", "1h"), ("ETHUSDT", "4h")]
    dialog.source_box.setCurrentIndex(2)
    req = dialog.check().request
    assert req is not None and req.source == "archive"
    assert all(dialog.source_box.itemData(i, Qt.ItemDataRole.ToolTipRole) for i in range(3))


@pytest.mark.parametrize(
    ("symbol", "expected"),
    [
        ("FOOBAR", "Unknown symbol 'FOOBAR'"),
        ("oldusdt", "OLDUSDT is not trading (status BREAK)"),
        ("", "Enter a symbol, e.g. BTCUSDT"),
    ],
)
def test_bad_symbols_are_errors(
    qtbot: QtBot, make_dialog: Callable[..., DownloadDialog], symbol: str, expected: str
) -> None:
    dl = FakeDownloader()
    dialog = make_dialog(dl)
    dialog.symbol_edit.clear()
    qtbot.keyClicks(dialog.symbol_edit, symbol)
    settle(qtbot, dialog)
    assert expected in message(dialog)
    assert not dialog.download_button.isEnabled() and dialog.check().request is None
    assert all(sym == "ETHUSDT" for sym, _ in dl.listing_calls)  # never asked about a bad one


def test_date_errors_and_the_future_end_note(
    qtbot: QtBot, make_dialog: Callable[..., DownloadDialog]
) -> None:
    dialog = make_dialog()
    settle(qtbot, dialog)
    dialog.set_range(DAY0, DAY0 - DAY_MS)
    assert message(dialog) == "⚠ End 2024-06-02 00:00 UTC is before start 2024-06-03 00:00 UTC"
    assert not dialog.download_button.isEnabled()
    dialog.set_range(DAY0, DAY0)
    assert "The range is empty" in message(dialog)
    dialog.set_range(DAY0 + DAY_MS, DAY0 + 2 * DAY_MS)
    assert message(dialog) == "⚠ Start 2024-06-04 00:00 UTC is in the future (now 2024-06-03 00:00:30 UTC)"
    # An end in the future is clamped to now, with a note, and does not block.
    dialog.set_range(DAY0 - DAY_MS, DAY0 + DAY_MS)
    assert message(dialog) == "End is in the future: the download stops at the newest closed candle"
    assert dialog.download_button.isEnabled()
    req = dialog.check().request
    assert req is not None and req.end_ms is None
    assert dialog.message_label.property("error") is False


def test_a_start_before_the_listing_is_clamped_with_a_note(
    qtbot: QtBot, make_dialog: Callable[..., DownloadDialog]
) -> None:
    dialog = make_dialog()
    dialog.set_range(1_500_000_000_000, 1_510_000_000_000)  # 2017-07-14 .. 2017-11-06
    settle(qtbot, dialog)
    assert message(dialog) == "ETHUSDT 1h starts 2017-08-17 04:00 UTC; the download will start there"
    assert dialog.download_button.isEnabled()
    dialog.set_range(1_500_000_000_000, 1_501_000_000_000)  # ends before the listing
    assert message(dialog) == "⚠ ETHUSDT 1h starts 2017-08-17 04:00 UTC: nothing to download before that"
    assert not dialog.download_button.isEnabled()
    # "Since listing" moves From to the first candle.
    dialog.preset_buttons["Since listing"].click()
    settle(qtbot, dialog)
    assert dialog.start_edit.dateTime().toMSecsSinceEpoch() == ETH_LISTING
    assert message(dialog) == "" and dialog.download_button.isEnabled()


def test_listing_lookup_failures(qtbot: QtBot, make_dialog: Callable[..., DownloadDialog]) -> None:
    dl = FakeDownloader()
    dl.listings[("ETHBTC", "1h")] = BinanceAPIError(400, -1121, "Invalid symbol.")
    dl.listings[("BTCUSDT", "1h")] = NetworkError("connection refused")
    dialog = make_dialog(dl, pick=("ETHBTC", "1h"))
    settle(qtbot, dialog)
    assert message(dialog) == "⚠ The exchange does not know ETHBTC"
    assert not dialog.download_button.isEnabled()
    dialog.symbol_edit.setText("BTCUSDT")
    settle(qtbot, dialog)
    assert message(dialog).startswith("Could not check when BTCUSDT 1h starts: cannot reach the exchange")
    assert dialog.download_button.isEnabled()  # the downloader clamps by itself


def test_stored_section_follows_the_choice(qtbot: QtBot, make_dialog: Callable[..., DownloadDialog]) -> None:
    key = SeriesKey.spot("ETHUSDT", "1h")
    first, hole_at = DAY0 - 10 * DAY_MS, DAY0 - 5 * DAY_MS
    store = FakeStore(
        {key: [TimeRange(first, hole_at - HOUR_MS), TimeRange(hole_at + 3 * HOUR_MS, DAY0 - HOUR_MS)]}
    )
    dialog = make_dialog(store=store)
    settle(qtbot, dialog)
    labels = {k: v.text() for k, v in dialog.stored_box.labels.items()}
    assert labels == {
        "Candles": "237",
        "First": "2024-05-24 00:00 UTC",
        "Last": "2024-06-02 23:00 UTC",
        "Holes": "1 (download again to fill)",
        "In range": "165 of 168 candles",
    }
    assert dialog.stored_box.title() == "Stored — ETHUSDT 1h"
    # A confirmed-empty span (covered, no candle) is no hole.
    store.covered[key] = [TimeRange(hole_at, hole_at + 2 * HOUR_MS)]
    dialog.interval_box.setCurrentText("4h")
    settle(qtbot, dialog)
    assert dialog.stored_box.labels["Candles"].text() == "none stored yet"
    dialog.interval_box.setCurrentText("1h")
    settle(qtbot, dialog)
    assert dialog.stored_box.labels["Holes"].text() == "none"


# ---------------------------------------------------------------- running


def test_progress_reaches_the_bar_and_the_result_stays(
    qtbot: QtBot, make_dialog: Callable[..., DownloadDialog]
) -> None:
    dl = FakeDownloader()
    dl.gated = True
    dl.problems = ("BTCUSDT-1m-2024-05.zip failed its checksum; fetched its candles from REST instead",)
    dialog = make_dialog(dl)
    settle(qtbot, dialog)
    finished: list[tuple[str, str]] = []
    dialog.finishedDownload.connect(lambda s, i: finished.append((s, i)))
    qtbot.mouseClick(dialog.download_button, Qt.MouseButton.LeftButton)
    assert dialog.running and not dialog.download_button.isEnabled() and dialog.cancel_button.isEnabled()
    assert not dialog.symbol_edit.isEnabled() and not dialog.start_edit.isEnabled()
    dl.step.set()
    qtbot.waitUntil(lambda: dialog.progress_bar.value() == 250, timeout=5000)
    assert dialog.progress_label.text() == "1,000 of 4,000 candles · 8,200/s · ETA 2:06"
    dl.step.set()
    qtbot.waitUntil(lambda: dialog.progress_bar.value() == 500, timeout=5000)
    for _ in range(2):
        dl.step.set()
        qtbot.wait(20)
    qtbot.waitUntil(lambda: not dialog.running, timeout=5000)
    assert dialog.progress_bar.value() == 1000 and dialog.isVisible()
    assert dialog.result_label.text().splitlines() == [
        "Downloaded 4,000 candles (2 archive files, 4 requests) in 4.1 s; 120 were already stored",
        "Problems worked around:",
        "• BTCUSDT-1m-2024-05.zip failed its checksum; fetched its candles from REST instead",
    ]
    assert finished == [("ETHUSDT", "1h")]
    assert dialog.download_button.isEnabled() and not dialog.cancel_button.isEnabled()
    assert dialog.symbol_edit.isEnabled()


def test_cancel_keeps_what_was_fetched(qtbot: QtBot, make_dialog: Callable[..., DownloadDialog]) -> None:
    dl = FakeDownloader()
    dl.gated = True
    dialog = make_dialog(dl)
    settle(qtbot, dialog)
    finished: list[tuple[str, str]] = []
    dialog.finishedDownload.connect(lambda s, i: finished.append((s, i)))
    dialog.start_download()
    dl.step.set()
    qtbot.waitUntil(lambda: dialog.progress_bar.value() == 250, timeout=5000)
    qtbot.mouseClick(dialog.cancel_button, Qt.MouseButton.LeftButton)
    assert dialog.progress_label.text().startswith("Cancelling")
    qtbot.waitUntil(lambda: not dialog.running, timeout=5000)
    assert dialog.result_label.text() == "Cancelled — 1,000 candles kept; download again to resume"
    assert finished == [("ETHUSDT", "1h")]


def test_worker_errors_are_one_line(
    qtbot: QtBot, make_dialog: Callable[..., DownloadDialog], caplog: pytest.LogCaptureFixture
) -> None:
    dl = FakeDownloader()
    dl.error = NetworkError("GET http://127.0.0.1:9/api/v3/klines: connection refused\nmore detail")
    dialog = make_dialog(dl)
    settle(qtbot, dialog)
    finished: list[tuple[str, str]] = []
    dialog.finishedDownload.connect(lambda s, i: finished.append((s, i)))
    dialog.start_download()
    qtbot.waitUntil(lambda: not dialog.running, timeout=5000)
    assert dialog.result_label.text() == (
        "Download failed: cannot reach the exchange (GET http://127.0.0.1:9/api/v3/klines: connection refused"
    )
    assert "color: #" in dialog.result_label.styleSheet()
    assert any("download of spot:ETHUSDT:1h failed" in r.getMessage() for r in caplog.records)
    assert finished == []  # the fake store gained nothing
    assert dialog.download_button.isEnabled()  # try again


def test_closing_while_running_cancels_then_closes(
    qtbot: QtBot, make_dialog: Callable[..., DownloadDialog]
) -> None:
    dl = FakeDownloader()
    dl.gated = True
    dialog = make_dialog(dl)
    settle(qtbot, dialog)
    dialog.start_download()
    dl.step.set()
    qtbot.waitUntil(lambda: dialog.progress_bar.value() == 250, timeout=5000)
    with qtbot.waitSignal(dialog.finished, timeout=5000):
        dialog.close()  # the window's X: reject() -> cancel, close when the worker stopped
        assert dialog.isVisible()  # not yet: the GUI did not block either
    assert not dialog.isVisible() and not dialog.running


def test_a_lookup_answering_after_the_dialog_is_gone_is_dropped(qtbot: QtBot) -> None:
    dl = FakeDownloader()
    dl.listing_gate = threading.Event()
    dialog = DownloadDialog(dl, FakeStore(), INFOS, ("ETHUSDT", "1h"), now_ms=lambda: NOW, debounce_ms=1)
    dialog.show()
    qtbot.waitUntil(lambda: bool(dl.listing_calls), timeout=5000)
    assert "Checking when ETHUSDT 1h starts" in message(dialog)
    poster = dialog._poster
    shiboken6.delete(dialog)  # as when the main window closes under it
    assert not poster._open  # the relay's destruction closed it: workers emit nothing now
    workers = [t for t in threading.enumerate() if t.name == "binmon-listing"]
    dl.listing_gate.set()
    for t in workers:
        t.join(5)
    qtbot.wait(50)  # nothing was queued to the deleted dialog, nothing crashes


# ---------------------------------------------------------------- the entry points


@pytest.fixture
def gui_owned(qtbot: QtBot) -> Iterator[list[Any]]:
    """Widgets appended here are closed and deleted on the GUI thread after the test."""
    widgets: list[Any] = []
    yield widgets
    for w in widgets:
        if shiboken6.isValid(w):
            w.close()
            shiboken6.delete(w)


def test_history_menu_and_chart_context_menu_request_the_dialog(qtbot: QtBot, gui_owned: list[Any]) -> None:
    chart = QLabel("chart")
    window = MainWindow(chart)
    gui_owned.append(window)
    window.show()
    qtbot.waitExposed(window)
    titles = [a.text() for a in window.menuBar().actions()]
    assert "&History" in titles
    assert window.download_action.shortcut().toString() == "Ctrl+D"
    with qtbot.waitSignal(window.downloadRequested, timeout=1000):
        window.download_action.trigger()
    assert chart.contextMenuPolicy() == Qt.ContextMenuPolicy.CustomContextMenu
    chart.customContextMenuRequested.emit(QPoint(10, 10))
    qtbot.waitUntil(window.chart_menu.isVisible, timeout=2000)
    assert [a.text() for a in window.chart_menu.actions()] == ["Download history…"]
    with qtbot.waitSignal(window.downloadRequested, timeout=1000):
        window.chart_download_action.trigger()
    window.chart_menu.hide()


def test_right_click_in_the_real_chart_opens_our_menu_not_the_pages(
    qtbot: QtBot, gui_owned: list[Any]
) -> None:
    from binmon.ui.chart.web_chart import WebChart

    chart = WebChart()
    window = MainWindow(chart)
    gui_owned.append(window)  # deleting the window deletes the view before the web profile goes
    with qtbot.waitSignal(chart.ready, timeout=20_000):
        window.show()
    target = chart.focusProxy() or chart  # Chromium's render widget receives the mouse
    with qtbot.waitSignal(chart.customContextMenuRequested, timeout=5000):
        qtbot.mousePress(target, Qt.MouseButton.RightButton, pos=QPoint(200, 200))
        qtbot.mouseRelease(target, Qt.MouseButton.RightButton, pos=QPoint(200, 200))
    qtbot.waitUntil(window.chart_menu.isVisible, timeout=2000)
    with qtbot.waitSignal(window.downloadRequested, timeout=1000):
        window.chart_download_action.trigger()
    window.chart_menu.hide()


def test_open_download_dialog_reuses_an_open_one(qtbot: QtBot, gui_owned: list[Any]) -> None:
    parent = QLabel("parent")
    gui_owned.append(parent)
    parent.show()
    store = FakeStore()
    dl = FakeDownloader(store)
    got: list[tuple[str, str]] = []

    def record(symbol: str, interval: str) -> None:
        got.append((symbol, interval))

    pick = ("BTCUSDT", "1m")
    first = open_download_dialog(parent, dl, store, INFOS, pick, now_ms=lambda: NOW, on_downloaded=record)
    qtbot.waitExposed(first)
    again = open_download_dialog(parent, dl, store, INFOS, ("ETHUSDT", "1h"), on_downloaded=record)
    assert again is first and first.parent() is parent and not first.isModal()
    settle(qtbot, first)
    first.start_download()
    qtbot.waitUntil(lambda: not first.running, timeout=5000)
    assert got == [("BTCUSDT", "1m")]  # connected once
    with qtbot.waitSignal(first.finished, timeout=5000):
        first.close()
    qtbot.waitUntil(lambda: not shiboken6.isValid(first), timeout=5000)  # deleted itself


# ---------------------------------------------------------------- through the real downloader


@pytest.fixture(scope="module")
def sim() -> Iterator[Any]:
    cfg = SimConfig(seed=3, history_days=5.0, trade_rate=5.0, start_ms=NOW)
    server = ServerConfig(
        pump_interval_s=0.02, shutdown_grace_s=0.3, close_timeout_s=2.0, open_timeout_s=10.0
    )
    with run_sim(cfg, server) as t:
        yield t


@pytest.mark.parametrize("source", [0, 2], ids=["auto", "archive"])
def test_real_download_of_three_days(
    qtbot: QtBot, make_dialog: Callable[..., DownloadDialog], sim: Any, tmp_path: Path, source: int
) -> None:
    # The download allocates a lot on worker threads, so Python's cyclic GC may run there. Earlier
    # modules leave Qt objects in garbage cycles (a closed qasync loop's timer object): destroyed
    # on a worker thread, their timers stay registered and crash the next event loop run. Collect
    # them here, on the GUI thread.
    gc.collect()
    with (
        RestClient(sim.urls.rest) as rest,
        ArchiveClient(sim.urls.rest) as archive,
        CandleStore.open(tmp_path / "candles.db", clock=store_clock(rest)) as store,
    ):
        infos = rest.exchange_info().symbols
        clock = store_clock(rest)
        dialog = make_dialog(
            Downloader(store, rest, archive), store, ("BTCUSDT", "1h"), infos=infos, now_ms=clock
        )
        dialog.symbol_edit.clear()
        qtbot.keyClicks(dialog.symbol_edit, "ethusdt")
        dialog.interval_box.setCurrentText("1m")
        dialog.source_box.setCurrentIndex(source)
        start, to = DAY0 - 3 * DAY_MS, DAY0
        dialog.start_edit.setDateTime(QDateTime.fromMSecsSinceEpoch(start, QTimeZone.utc()))
        dialog.end_edit.setDateTime(QDateTime.fromMSecsSinceEpoch(to, QTimeZone.utc()))
        settle(qtbot, dialog)
        assert message(dialog) == "" and dialog.stored_box.labels["Candles"].text() == "none stored yet"
        finished: list[tuple[str, str]] = []
        dialog.finishedDownload.connect(lambda s, i: finished.append((s, i)))
        qtbot.mouseClick(dialog.download_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: not dialog.running, timeout=60_000)
        key = SeriesKey.spot("ETHUSDT", "1m")
        reference = [k for page in rest.iter_klines("ETHUSDT", "1m", start, to - 1) for k in page]
        assert len(reference) == 3 * 1440
        assert store.read_klines(key) == reference
        assert finished == [("ETHUSDT", "1m")]
        text = dialog.result_label.text()
        if source == 0:
            assert text.startswith("Downloaded 4,320 candles (5 requests) in ")
        else:
            assert text.startswith("Downloaded 4,320 candles (3 archive files) in ")
        qtbot.waitUntil(lambda: dialog.stored_box.labels["Candles"].text() == "4,320", timeout=5000)
        labels = {k: v.text() for k, v in dialog.stored_box.labels.items()}
        assert labels["First"] == "2024-05-31 00:00 UTC" and labels["Last"] == "2024-06-02 23:59 UTC"
        assert labels["Holes"] == "none" and labels["In range"] == "4,320 of 4,320 candles"
        dialog.shutdown(5.0)
