"""Widgets and thread plumbing of the download dialog (:mod:`binmon.ui.dialogs.download`)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from PySide6.QtCore import QDateTime, QObject, QStringListModel, Qt, QTimeZone, Signal
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import (
    QComboBox,
    QCompleter,
    QDateTimeEdit,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QWidget,
)

from binmon.core.models import SymbolInfo
from binmon.history.download import DownloadRequest, DownloadResult, Progress
from binmon.history.ranges import SeriesKey
from binmon.ui.dialogs.download_check import Stored, StoreLike, error_text, stored_lines
from binmon.ui.widgets.symbol_picker import IntervalPicker, rank_symbols

#: (value, label, tooltip) of the source choices.
SOURCES: tuple[tuple[str, str, str], ...] = (
    (
        "auto",
        "Auto",
        "REST for short ranges; for long ones the data.binance.vision archive files that each "
        "replace at least one full REST page, REST for the rest (recommended)",
    ),
    (
        "rest",
        "REST",
        "Only the exchange's /api/v3/klines pages (1,000 candles each, counted against the weight limit)",
    ),
    (
        "archive",
        "Archive",
        "Every archive file (monthly and daily zip files from data.binance.vision, checksum-verified); "
        "REST only for today and for files the archive lacks",
    ),
)
#: (label, days) of the quick range buttons; None: since the symbol's first candle.
PRESETS: tuple[tuple[str, int | None], ...] = (
    ("Last 7 days", 7),
    ("Last 30 days", 30),
    ("Last year", 365),
    ("Since listing", None),
)
#: 2017-07-01 00:00 UTC: Binance opened in July 2017; no spot candle is older.
MIN_DATE_MS = 1_498_867_200_000
#: 2100-01-01 00:00 UTC: far enough to type a future date (which the form then refuses).
MAX_DATE_MS = 4_102_444_800_000
UTC = QTimeZone.utc()


class Relay(QObject):
    """Signals the worker threads emit; they are queued to the dialog on the GUI thread."""

    listing = Signal(object, object)  # (symbol, interval), Listing
    stored = Signal(object, object)  # token, Stored | Exception
    progress = Signal(int, object)  # run number, Progress
    finished = Signal(int, object)  # run number, _Outcome


class Poster:
    """Emits relay signals from worker threads until :meth:`close` (the relay's destruction)."""

    def __init__(self) -> None:
        """Open: :meth:`emit` emits."""
        self._lock = threading.Lock()
        self._open = True

    def emit(self, signal: Any, *args: Any) -> None:
        """``signal.emit(*args)`` unless closed."""
        # Under the lock, so the relay cannot be destroyed between the check and the emit.
        with self._lock:
            if self._open:
                signal.emit(*args)

    def close(self, *_: Any) -> None:
        """Emit nothing from now on (connected to the relay's ``destroyed``)."""
        with self._lock:
            self._open = False


def spawn(name: str, target: Callable[[], None]) -> threading.Thread:
    """Run ``target`` on a new daemon thread named ``name``."""
    thread = threading.Thread(target=target, name=name, daemon=True)
    thread.start()
    return thread


def to_qdt(ms: int) -> QDateTime:
    """``ms`` (UTC) as a QDateTime in UTC."""
    return QDateTime.fromMSecsSinceEpoch(ms, UTC)


def wall_ms() -> int:
    """The local wall clock in ms."""
    return time.time_ns() // 1_000_000


class SymbolEdit(QLineEdit):
    """A line edit completing TRADING symbols, best matches first (see ``rank_symbols``)."""

    def __init__(self, infos: Sequence[SymbolInfo], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._infos = list(infos)
        self.setPlaceholderText("Symbol, e.g. BTCUSDT")
        self._model = QStringListModel(self)
        completer = QCompleter(self._model, self)
        completer.setCompletionMode(QCompleter.CompletionMode.UnfilteredPopupCompletion)
        completer.setMaxVisibleItems(12)
        self.setCompleter(completer)
        self.textEdited.connect(lambda text: self._model.setStringList(rank_symbols(text, self._infos)))
        self.editingFinished.connect(lambda: self.setText(self.text().strip().upper()))


def make_date_edit(parent: QWidget, tip: str) -> QDateTimeEdit:
    """A minute-resolution date-time field in UTC between :data:`MIN_DATE_MS` and :data:`MAX_DATE_MS`."""
    edit = QDateTimeEdit(parent)
    edit.setTimeZone(UTC)
    edit.setDisplayFormat("yyyy-MM-dd HH:mm 'UTC'")
    edit.setCalendarPopup(True)
    edit.setMinimumDateTime(to_qdt(MIN_DATE_MS))
    edit.setMaximumDateTime(to_qdt(MAX_DATE_MS))
    edit.setToolTip(tip)
    return edit


class StoredView(QGroupBox):
    """The "Stored" section: candles held, first/last, holes, and how much of the range is held."""

    FIELDS = ("Candles", "First", "Last", "Holes", "In range")

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Stored", parent)
        form = QFormLayout(self)
        self.labels: dict[str, QLabel] = {}
        for name in self.FIELDS:
            value = QLabel("…", self)
            value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            form.addRow(name, value)
            self.labels[name] = value
        self.labels["Holes"].setToolTip(
            "Spans between the first and last stored candle that were never downloaded "
            "(times known to have had no trade do not count)"
        )
        self.labels["In range"].setToolTip("Candles of the chosen From/To range already in the store")

    def show_stored(self, got: Stored | Exception | None) -> None:
        """Show ``got`` (None: no series chosen; an exception: the store could not be read)."""
        lines = {name: "—" for name in self.FIELDS}
        if isinstance(got, Exception):
            lines["Candles"] = f"cannot read the store: {error_text(got)}"
        elif got is not None:
            lines = stored_lines(got)
        for name, label in self.labels.items():
            label.setText(lines.get(name, "—"))


class DownloaderLike(Protocol):
    """The part of :class:`~binmon.history.download.Downloader` the dialog uses (both block)."""

    def run(
        self,
        req: DownloadRequest,
        *,
        progress: Callable[[Progress], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> DownloadResult: ...

    def listing_start(self, symbol: str, interval: str) -> int | None: ...


@dataclass(frozen=True)
class Outcome:
    """What a download run ended with (the worker thread's report)."""

    result: DownloadResult | None
    error: BaseException | None
    gained: int  # candles the store gained (the result's ``written`` when there is one)


def count_of(store: StoreLike, key: SeriesKey) -> int:
    """``store.count(key)``; 0 when the store cannot be read (the error is the run's to report)."""
    try:
        return store.count(key)
    except Exception:
        return 0


def _dark(widget: QWidget) -> bool:
    return widget.palette().color(QPalette.ColorRole.Window).lightness() < 128


def error_colour(widget: QWidget) -> str:
    """Red that reads well on ``widget``'s background (the dark or the light theme)."""
    return "#ef5350" if _dark(widget) else "#c62828"


def note_colour(widget: QWidget) -> str:
    """A muted colour for non-blocking notes on ``widget``'s background."""
    return "#9598a1" if _dark(widget) else "#5d606b"


class RangeForm(QFormLayout):
    """The dialog's fields: symbol and interval, From / To with quick ranges, source.

    The widgets belong to ``owner``; the preset buttons are not connected (the dialog does it).
    """

    def __init__(self, owner: QWidget, infos: Sequence[SymbolInfo]) -> None:
        super().__init__()
        self.symbol_edit = SymbolEdit(infos, owner)
        self.interval_box = IntervalPicker(owner)
        self.start_edit = make_date_edit(
            owner, "The first candle to download opens at or after this time (UTC)"
        )
        self.end_edit = make_date_edit(
            owner, "Download the candles opening before this time (UTC); a future time means up to now"
        )
        self.source_box = QComboBox(owner)
        for i, (value, label, tip) in enumerate(SOURCES):
            self.source_box.addItem(label, value)
            self.source_box.setItemData(i, tip, Qt.ItemDataRole.ToolTipRole)
        self.preset_buttons: dict[str, QPushButton] = {}
        presets = QHBoxLayout()
        presets.setContentsMargins(0, 0, 0, 0)
        for label, _days in PRESETS:
            button = QPushButton(label, owner)
            button.setAutoDefault(False)  # Enter downloads; it never picks a preset
            presets.addWidget(button)
            self.preset_buttons[label] = button
        presets.addStretch(1)
        series = QHBoxLayout()
        series.addWidget(self.symbol_edit, 1)
        series.addWidget(QLabel("Interval", owner))
        series.addWidget(self.interval_box)
        self.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        symbol_label = QLabel("&Symbol", owner)
        symbol_label.setBuddy(self.symbol_edit)  # a row holding a layout gets no buddy by itself
        self.addRow(symbol_label, series)
        self.addRow("&From", self.start_edit)
        self.addRow("&To", self.end_edit)
        self.addRow("", presets)
        self.addRow("S&ource", self.source_box)
