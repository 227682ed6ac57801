"""The history download dialog: pick a series and a range, see what is stored, download it.

Everything that blocks runs on worker threads: the download itself (``Downloader.run``), the
listing lookups (``listing_start``, debounced and cached per symbol and interval) and the
store reads of the "Stored" section. Workers reach the GUI thread only through the signals of
a small relay object (queued connections), guarded so that nothing is emitted once the dialog
is gone. The rules the form is checked with are in :mod:`binmon.ui.dialogs.download_check`.

The dialog stays open after a run and shows its result; closing it while a download runs
cancels the download and closes once the worker has stopped (the GUI never waits).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import cast

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QProgressBar,
    QVBoxLayout,
    QWidget,
)

from binmon.core.intervals import DAY_MS, MINUTE_MS
from binmon.core.models import SymbolInfo
from binmon.history.download import Progress, Source
from binmon.history.ranges import SeriesKey, TimeRange
from binmon.ui.dialogs.download_check import (
    Check,
    Listing,
    Stored,
    StoreLike,
    check_download,
    error_text,
    problem_lines,
    progress_permille,
    progress_text,
    read_stored,
    result_text,
)
from binmon.ui.dialogs.download_parts import (
    MIN_DATE_MS,
    PRESETS,
    DownloaderLike,
    Outcome,
    Poster,
    RangeForm,
    Relay,
    StoredView,
    count_of,
    error_colour,
    note_colour,
    spawn,
    to_qdt,
    wall_ms,
)

log = logging.getLogger(__name__)

__all__ = ["DownloadDialog", "DownloaderLike", "open_download_dialog"]


class DownloadDialog(QDialog):
    """Download candle history of one spot series into the store (see the module docstring).

    ``downloader`` and ``store`` are duck-typed (:class:`DownloaderLike`,
    :class:`~binmon.ui.dialogs.download_check.StoreLike`); ``infos`` the exchange's symbols
    (TRADING ones can be downloaded; empty: not loaded, the exchange decides); ``pick`` the
    initial (symbol, interval); ``now_ms`` the server's clock without I/O (default: the wall
    clock). ``finishedDownload(symbol, interval)`` is emitted after every run that stored
    candles (also a cancelled or failed one), so the chart can be refreshed.
    """

    finishedDownload = Signal(str, str)

    def __init__(
        self,
        downloader: DownloaderLike,
        store: StoreLike,
        infos: Sequence[SymbolInfo],
        pick: tuple[str, str],
        *,
        now_ms: Callable[[], int] | None = None,
        parent: QWidget | None = None,
        debounce_ms: int = 300,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Download history")
        self.setObjectName("download_dialog")
        self._downloader = downloader
        self._store = store
        self._infos = {s.symbol: s for s in infos}
        self._now_fn = now_ms or wall_ms
        self._listings: dict[tuple[str, str], Listing] = {}
        self._looking_up: set[tuple[str, str]] = set()
        self._since_listing: tuple[str, str] | None = None  # "Since listing" waits for this lookup
        self._stored_token: tuple[SeriesKey, TimeRange | None] | None = None
        self._check = Check(None)
        self._run = 0
        self._run_key: SeriesKey | None = None
        self._cancel: threading.Event | None = None
        self._thread: threading.Thread | None = None
        self._close_when_done = False
        self._setting_dates = False

        self._relay = Relay(self)
        self._poster = Poster()
        self._relay.destroyed.connect(self._poster.close)
        self._relay.listing.connect(self._on_listing)
        self._relay.stored.connect(self._on_stored)
        self._relay.progress.connect(self._on_progress)
        self._relay.finished.connect(self._on_finished)
        self._debounce = QTimer(self, singleShot=True, interval=debounce_ms)
        self._debounce.timeout.connect(self._lookup)

        self._build(infos)
        symbol, interval = pick
        self.symbol_edit.setText(symbol)
        self.interval_box.set_interval(interval)
        self.apply_preset(7)
        self._wire()
        self._changed()

    # ------------------------------------------------------------------ construction

    def _build(self, infos: Sequence[SymbolInfo]) -> None:
        form = RangeForm(self, infos)
        self.symbol_edit, self.interval_box = form.symbol_edit, form.interval_box
        self.start_edit, self.end_edit, self.source_box = form.start_edit, form.end_edit, form.source_box
        self.preset_buttons = form.preset_buttons
        for label, days in PRESETS:
            self.preset_buttons[label].clicked.connect(lambda _=False, d=days: self.apply_preset(d))
        self.message_label = QLabel(self)
        self.message_label.setObjectName("download_message")
        self.message_label.setWordWrap(True)

        self.stored_box = StoredView(self)

        self.progress_bar = QProgressBar(self)
        self.progress_bar.setRange(0, 1000)
        self.progress_bar.setValue(0)
        self.progress_bar.setTextVisible(False)
        self.progress_bar.hide()  # until the first download
        self.progress_label = QLabel("", self)
        self.progress_label.hide()
        self.result_label = QLabel("", self)
        self.result_label.setWordWrap(True)
        self.result_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        buttons = QDialogButtonBox(self)
        self.download_button = buttons.addButton("&Download", QDialogButtonBox.ButtonRole.ActionRole)
        self.download_button.setDefault(True)
        self.cancel_button = buttons.addButton("&Cancel download", QDialogButtonBox.ButtonRole.ActionRole)
        self.cancel_button.setEnabled(False)
        self.close_button = buttons.addButton(QDialogButtonBox.StandardButton.Close)
        self.close_button.setAutoDefault(False)
        self.download_button.clicked.connect(self.start_download)
        self.cancel_button.clicked.connect(self.cancel_download)
        buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.message_label)
        layout.addWidget(self.stored_box)
        layout.addWidget(self.progress_bar)
        layout.addWidget(self.progress_label)
        layout.addWidget(self.result_label)
        layout.addStretch(1)
        layout.addSpacing(6)
        layout.addWidget(buttons)
        self.setMinimumWidth(560)

    def _wire(self) -> None:
        self.symbol_edit.textChanged.connect(self._changed)
        self.interval_box.currentTextChanged.connect(self._changed)
        self.source_box.currentIndexChanged.connect(self._changed)
        self.start_edit.dateTimeChanged.connect(self._dates_changed)
        self.end_edit.dateTimeChanged.connect(self._dates_changed)

    # ------------------------------------------------------------------ public API

    @property
    def running(self) -> bool:
        """True while a download runs."""
        return self._thread is not None

    def check(self) -> Check:
        """The current validation of the form."""
        return self._check

    def set_range(self, start_ms: int, to_ms: int) -> None:
        """Set From / To (ms, UTC; To exclusive), as if typed."""
        self._setting_dates = True
        try:
            self.start_edit.setDateTime(to_qdt(start_ms))
            self.end_edit.setDateTime(to_qdt(to_ms))
        finally:
            self._setting_dates = False
        self._since_listing = None
        self._changed()

    def apply_preset(self, days: int | None) -> None:
        """The last ``days`` days up to now (to the minute), or since the symbol's listing (None)."""
        now = self._now() // MINUTE_MS * MINUTE_MS
        if days is not None:
            self.set_range(max(MIN_DATE_MS, now - days * DAY_MS), now)
            return
        key = self._series()
        found = self._listings.get(key) if key else None
        start = found.first_open if found is not None and found.first_open is not None else MIN_DATE_MS
        self.set_range(max(MIN_DATE_MS, start), now)
        if key and (found is None or found.first_open is None):
            self._since_listing = key  # the lookup's answer moves From there
            self._lookup()

    def start_download(self) -> None:
        """Start the download the form describes (ignored while invalid or running)."""
        req = self._check.request
        if req is None or self.running:
            return
        self._run += 1
        run, cancel = self._run, threading.Event()
        downloader, store, relay, poster = self._downloader, self._store, self._relay, self._poster

        def work() -> None:  # on the worker thread: touches no widget, only the relay
            before = count_of(store, req.key)
            try:
                result = downloader.run(
                    req, progress=lambda p: poster.emit(relay.progress, run, p), cancel=cancel
                )
                outcome = Outcome(result, None, result.written)
            except Exception as exc:  # shown as one line; the details go to the log
                log.warning("download of %s failed: %s", req.key, exc, exc_info=True)
                outcome = Outcome(None, exc, max(0, count_of(store, req.key) - before))
            poster.emit(relay.finished, run, outcome)

        self._cancel = cancel
        self._run_key = req.key
        self._set_running(True)
        self.progress_bar.show()
        self.progress_label.show()
        self.progress_bar.setRange(0, 0)  # busy until the plan is known
        self.progress_label.setText("Planning…")
        self.result_label.setText("")
        self._thread = spawn("binmon-download-dialog", work)

    def cancel_download(self) -> None:
        """Ask the running download to stop; what it fetched so far is kept."""
        if self._cancel is not None and not self._cancel.is_set():
            self._cancel.set()
            self.cancel_button.setEnabled(False)
            self.progress_label.setText("Cancelling… (requests in flight finish first)")

    def shutdown(self, timeout_s: float = 10.0) -> bool:
        """For the app's exit path: cancel, wait up to ``timeout_s`` for the worker (this
        blocks), and stop every signal from workers. True when no download is left running."""
        self.cancel_download()
        thread = self._thread
        if thread is not None:
            thread.join(timeout_s)
        self._poster.close()
        return thread is None or not thread.is_alive()

    def reject(self) -> None:
        """Close (Esc, Close, the window's X); while a download runs, cancel it and close when
        the worker has stopped."""
        if self.running:
            self._close_when_done = True
            self.cancel_download()
            self.progress_label.setText("Cancelling… the dialog closes when the download has stopped")
            return
        super().reject()

    # ------------------------------------------------------------------ form state

    def _now(self) -> int:
        try:
            return int(self._now_fn())
        except Exception as exc:  # a clock that needs the network may fail: ours is close enough
            log.info("server clock unavailable (%s); using the local clock", exc)
            return wall_ms()

    def _shown_key(self) -> tuple[str, str] | None:
        key = self._run_key
        return (key.symbol, key.interval) if key is not None else None

    def _series(self) -> tuple[str, str] | None:
        symbol = self.symbol_edit.text().strip().upper()
        return (symbol, self.interval_box.interval()) if symbol else None

    def _dates_changed(self) -> None:
        if not self._setting_dates:
            self._since_listing = None
            self._changed()

    def _changed(self) -> None:
        key = self._series()
        if key != self._since_listing:
            self._since_listing = None
        if self._run_key is not None and not self.running and key != self._shown_key():
            # The last run's result is about another series now: do not let it look current.
            self._run_key = None
            self.progress_bar.hide()
            self.result_label.setText("")
        self._revalidate()
        self._debounce.start()

    def _revalidate(self) -> None:
        key = self._series()
        check = check_download(
            self.symbol_edit.text(),
            self._infos,
            self.interval_box.interval(),
            self.start_edit.dateTime().toMSecsSinceEpoch(),
            self.end_edit.dateTime().toMSecsSinceEpoch(),
            self._now(),
            cast(Source, self.source_box.currentData()),
            self._listings.get(key) if key else None,
        )
        self._check = check
        if check.error:
            self._show_message(check.error, error=True)
        elif key is not None and key in self._looking_up and key not in self._listings:
            checking = f"Checking when {key[0]} {key[1]} starts…"
            self._show_message("\n".join((*check.notes, checking)), error=False)
        else:
            self._show_message("\n".join(check.notes), error=False)
        self.download_button.setEnabled(check.request is not None and not self.running)
        title = f"Stored — {check.symbol} {self.interval_box.interval()}" if check.symbol else "Stored"
        self.stored_box.setTitle(title)

    def _show_message(self, text: str, *, error: bool) -> None:
        colour = error_colour(self) if error else note_colour(self)
        self.message_label.setStyleSheet(f"color: {colour};")
        self.message_label.setText(("⚠ " if error and text else "") + text)
        self.message_label.setProperty("error", error)

    def _set_running(self, running: bool) -> None:
        for w in (self.symbol_edit, self.interval_box, self.start_edit, self.end_edit, self.source_box):
            w.setEnabled(not running)
        for button in self.preset_buttons.values():
            button.setEnabled(not running)
        self.cancel_button.setEnabled(running)
        self.download_button.setEnabled(not running and self._check.request is not None)

    # ------------------------------------------------------------------ lookups (worker threads)

    def _lookup(self) -> None:
        """Start the listing lookup (when not cached) and the "Stored" read for the form now."""
        key = self._series()
        if key is not None:
            try:
                SeriesKey.spot(*key)
            except ValueError:
                key = None  # not a symbol at all: nothing to ask the exchange
        if key is not None:
            self._start_listing(key)
        self._refresh_stored()

    def _start_listing(self, key: tuple[str, str]) -> None:
        cached = self._listings.get(key)
        final = cached is not None and (cached.error is None or cached.unknown_symbol)
        if key in self._looking_up or final:
            return  # asked already; a failed lookup (network) is asked again
        if self._infos and not (key[0] in self._infos and self._infos[key[0]].trading):
            return
        self._looking_up.add(key)
        downloader, relay, poster = self._downloader, self._relay, self._poster

        def work() -> None:
            try:
                found = Listing(downloader.listing_start(*key))
            except Exception as exc:
                log.info("listing lookup of %s %s failed: %s", *key, exc)
                found = Listing(None, exc)
            poster.emit(relay.listing, key, found)

        spawn("binmon-listing", work)
        self._revalidate()

    def _on_listing(self, key: tuple[str, str], found: Listing) -> None:
        self._looking_up.discard(key)
        self._listings[key] = found
        if key == self._since_listing and found.first_open is not None and not self.running:
            self._since_listing = None
            self._setting_dates = True
            try:
                self.start_edit.setDateTime(to_qdt(max(MIN_DATE_MS, found.first_open)))
            finally:
                self._setting_dates = False
        if key == self._series():
            self._revalidate()
            self._refresh_stored()

    def _refresh_stored(self) -> None:
        key_t = self._series()
        try:
            key = SeriesKey.spot(*key_t) if key_t else None
        except ValueError:
            key = None
        if key is None:
            self._stored_token = None
            self.stored_box.show_stored(None)
            return
        req = self._check.request
        span = None
        if req is not None:
            end = req.end_ms if req.end_ms is not None else self._now()
            listing = self._listings.get(key_t) if key_t else None
            first = listing.first_open if listing is not None and listing.first_open is not None else 0
            start = max(req.start_ms, first)  # nothing exists before the listing: do not count it
            span = TimeRange(start, max(start, end))
        token = (key, span)
        self._stored_token = token
        store, relay, poster = self._store, self._relay, self._poster

        def work() -> None:
            try:
                got: Stored | Exception = read_stored(store, key, span)
            except Exception as exc:
                log.warning("cannot read the stored %s: %s", key, exc, exc_info=True)
                got = exc
            poster.emit(relay.stored, token, got)

        spawn("binmon-stored", work)

    def _on_stored(self, token: object, got: Stored | Exception) -> None:
        if token != self._stored_token:
            return  # an older read; a newer one is on its way
        self.stored_box.show_stored(got)

    # ------------------------------------------------------------------ the download's reports

    def _on_progress(self, run: int, p: Progress) -> None:
        if run != self._run or not self.running:
            return
        if p.phase == "planning":
            return
        self.progress_bar.setRange(0, 1000)
        self.progress_bar.setValue(progress_permille(p))
        if self._cancel is not None and self._cancel.is_set():
            return  # keep saying "Cancelling…"
        text = progress_text(p)
        self.progress_label.setText(f"{text}\n{p.note}" if p.note else text)

    def _on_finished(self, run: int, outcome: Outcome) -> None:
        if run != self._run:
            return
        self._thread = None
        self._cancel = None
        self._set_running(False)
        self.progress_bar.setRange(0, 1000)
        self.progress_label.setText("")
        self.progress_label.hide()
        r = outcome.result
        if r is not None:
            if not r.cancelled:
                self.progress_bar.setValue(1000)
            lines = [result_text(r)]
            if r.problems:
                lines.append("Problems worked around:")
                lines += [f"• {line}" for line in problem_lines(r.problems)]
            self.result_label.setStyleSheet("")
            self.result_label.setText("\n".join(lines))
            self.result_label.setToolTip("")
        else:
            kept = f"; {outcome.gained:,} candles kept, download again to resume" if outcome.gained else ""
            text = f"Download failed: {error_text(outcome.error)}{kept}"
            self.result_label.setStyleSheet(f"color: {error_colour(self)};")
            self.result_label.setText(text)
            self.result_label.setToolTip(str(outcome.error))
        self._revalidate()
        self._refresh_stored()
        key = self._run_key
        if outcome.gained > 0 and key is not None:
            self.finishedDownload.emit(key.symbol, key.interval)
        if self._close_when_done:
            self._close_when_done = False
            super().reject()


def open_download_dialog(
    parent: QWidget,
    downloader: DownloaderLike,
    store: StoreLike,
    infos: Sequence[SymbolInfo],
    pick: tuple[str, str],
    *,
    now_ms: Callable[[], int] | None = None,
    on_downloaded: Callable[[str, str], None] | None = None,
) -> DownloadDialog:
    """Show the download dialog for ``pick`` = (symbol, interval) over ``parent``.

    Non-modal (``show()``, never ``exec()``): the chart stays usable during a long download.
    When one is already open it is raised and returned instead of opening a second one. The
    dialog deletes itself when closed. ``on_downloaded(symbol, interval)`` is connected to
    :attr:`DownloadDialog.finishedDownload` of a new dialog (once, never twice).
    """
    for existing in parent.findChildren(DownloadDialog):
        if existing.isVisible():
            existing.raise_()
            existing.activateWindow()
            return existing
    dialog = DownloadDialog(downloader, store, infos, pick, now_ms=now_ms, parent=parent)
    if on_downloaded is not None:
        dialog.finishedDownload.connect(on_downloaded)
    dialog.finished.connect(dialog.deleteLater)
    dialog.show()
    return dialog
