"""The Alerts panel: the rules as a table, the buttons that change them, and the alert log.

A view only. It shows what :meth:`AlertsPanel.set_rules` and :meth:`AlertsPanel.set_log` give
it and turns every user action into a signal; the
:class:`~binmon.ui.alerts_controller.AlertsController` does the rest. Keyboard: Enter or a
double-click edits, Delete removes, Space pauses or resumes the selected rule.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtGui import QColor, QKeyEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

#: Role of a rule row's first cell holding the rule id.
ID_ROLE = Qt.ItemDataRole.UserRole + 1
RULE_COLUMNS = ("Alert", "Symbol", "Interval", "Status", "Last fired")
LOG_COLUMNS = ("Time", "Symbol", "Message")
#: Status colours (TradingView-like): active green, triggered orange, expired / paused grey.
_STATUS_COLOURS = {"active": "#089981", "triggered": "#ff9800", "expired": "#787b86", "paused": "#787b86"}


@dataclass(frozen=True, slots=True)
class RuleRow:
    """One rule in the table: ``text`` is its name or description, ``status`` one of active,
    triggered, expired, paused; ``last_fired_ms`` None when it never fired."""

    id: str
    text: str
    symbol: str
    interval: str
    status: str
    last_fired_ms: int | None = None
    enabled: bool = True


@dataclass(frozen=True, slots=True)
class LogRow:
    """One line of the alert log."""

    time_ms: int
    symbol: str
    message: str


def format_when(ms: int | None, *, short: bool = False) -> str:
    """``2026-11-24 14:05:09`` UTC (``short``: ``11-24 14:05``), or ``—`` for None."""
    if ms is None:
        return "—"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%m-%d %H:%M" if short else "%Y-%m-%d %H:%M:%S")


class AlertsPanel(QWidget):
    """Rules table + buttons (Add, Edit, Pause/Resume, Delete) above the alert log."""

    addRequested = Signal()
    editRequested = Signal(str)
    removeRequested = Signal(str)
    #: (rule id, enabled): pause (False) or resume (True).
    enableRequested = Signal(str, bool)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("alerts_panel")
        self._rows: list[RuleRow] = []

        def button(text: str, tip: str) -> QToolButton:
            b = QToolButton(self)
            b.setText(text)
            b.setToolTip(tip)
            b.setAutoRaise(True)
            return b

        self.add_button = button("+ Add", "Create an alert")
        self.edit_button = button("Edit", "Edit the selected alert (Enter, double-click)")
        self.pause_button = button("Pause", "Pause or resume the selected alert (Space)")
        self.delete_button = button("Delete", "Delete the selected alert (Del)")
        bar = QHBoxLayout()
        bar.setContentsMargins(0, 0, 0, 0)
        for b in (self.add_button, self.edit_button, self.pause_button, self.delete_button):
            bar.addWidget(b)
        bar.addStretch(1)

        self.table = _table(self, RULE_COLUMNS)
        # The description gets what the narrow dock has left; the rest is sized to its contents.
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.table.horizontalHeader().setMinimumSectionSize(40)
        self.log_table = _table(self, LOG_COLUMNS)
        self.log_table.horizontalHeader().setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.log_table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        split = QSplitter(Qt.Orientation.Vertical, self)
        split.addWidget(self.table)
        split.addWidget(self.log_table)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)

        lay = QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        lay.addLayout(bar)
        lay.addWidget(split, 1)

        self.add_button.clicked.connect(self.addRequested)
        self.edit_button.clicked.connect(lambda: self._with_selected(self.editRequested.emit))
        self.delete_button.clicked.connect(lambda: self._with_selected(self.removeRequested.emit))
        self.pause_button.clicked.connect(self._toggle_selected)
        self.table.cellDoubleClicked.connect(lambda r, _c: self._emit_row(r, self.editRequested.emit))
        self.table.itemSelectionChanged.connect(self._update_buttons)
        self.table.installEventFilter(self)
        self._update_buttons()

    # ------------------------------------------------------------------ controller API

    def set_rules(self, rows: Sequence[RuleRow]) -> None:
        """Show ``rows`` (keeping the selection by id)."""
        selected = self.selected_id()
        self._rows = list(rows)
        t = self.table
        t.setRowCount(len(rows))
        for r, row in enumerate(rows):
            cells = (
                row.text,
                row.symbol,
                row.interval,
                row.status,
                format_when(row.last_fired_ms, short=True),
            )
            items: list[QTableWidgetItem] = []
            for c, text in enumerate(cells):
                item = t.item(r, c)
                if item is None:
                    item = QTableWidgetItem()
                    item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEditable)
                    t.setItem(r, c, item)
                item.setText(text)
                items.append(item)
            items[0].setData(ID_ROLE, row.id)
            items[0].setToolTip(row.text)
            items[4].setToolTip(
                format_when(row.last_fired_ms) + " UTC" if row.last_fired_ms else "never fired"
            )
            items[3].setForeground(QColor(_STATUS_COLOURS.get(row.status, "#787b86")))
        if selected is not None:
            self.select(selected)
        self._update_buttons()

    def set_log(self, rows: Sequence[LogRow]) -> None:
        """Show the alert log, newest first."""
        t = self.log_table
        ordered = sorted(rows, key=lambda x: x.time_ms, reverse=True)
        t.setRowCount(len(ordered))
        for r, row in enumerate(ordered):
            for c, text in enumerate((format_when(row.time_ms), row.symbol, row.message)):
                item = QTableWidgetItem(text)
                item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEditable)
                if c == 2:
                    item.setToolTip(text)
                t.setItem(r, c, item)

    def rows(self) -> list[RuleRow]:
        """The rules shown, in order."""
        return list(self._rows)

    def selected_id(self) -> str | None:
        """The id of the selected rule, None when none is selected."""
        rows = self.table.selectionModel().selectedRows() if self.table.selectionModel() else []
        if not rows:
            return None
        item = self.table.item(rows[0].row(), 0)
        return item.data(ID_ROLE) if item is not None else None

    def select(self, rule_id: str) -> bool:
        """Select the row of ``rule_id``; False when it is not shown."""
        for r, row in enumerate(self._rows):
            if row.id == rule_id:
                self.table.selectRow(r)
                return True
        return False

    # ------------------------------------------------------------------ events

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        """Enter edits, Delete removes, Space pauses/resumes the selected rule."""
        if watched is self.table and event.type() == QEvent.Type.KeyPress and isinstance(event, QKeyEvent):
            key = event.key()
            if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
                return self._with_selected(self.editRequested.emit)
            if key == Qt.Key.Key_Delete:
                return self._with_selected(self.removeRequested.emit)
            if key == Qt.Key.Key_Space:
                self._toggle_selected()
                return True
        return super().eventFilter(watched, event)

    def _row_by_id(self, rule_id: str | None) -> RuleRow | None:
        return next((r for r in self._rows if r.id == rule_id), None)

    def _with_selected(self, emit: object) -> bool:
        rule_id = self.selected_id()
        if rule_id is None or not callable(emit):
            return False
        emit(rule_id)
        return True

    def _emit_row(self, r: int, emit: object) -> None:
        item = self.table.item(r, 0)
        if item is not None and callable(emit):
            emit(item.data(ID_ROLE))

    def _toggle_selected(self) -> None:
        row = self._row_by_id(self.selected_id())
        if row is not None:
            self.enableRequested.emit(row.id, not row.enabled)

    def _update_buttons(self) -> None:
        row = self._row_by_id(self.selected_id())
        for b in (self.edit_button, self.delete_button, self.pause_button):
            b.setEnabled(row is not None)
        self.pause_button.setText("Resume" if row is not None and not row.enabled else "Pause")


def _table(parent: QWidget, columns: Sequence[str]) -> QTableWidget:
    t = QTableWidget(0, len(columns), parent)
    t.setHorizontalHeaderLabels(list(columns))
    t.verticalHeader().setVisible(False)
    t.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    t.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    t.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    t.setAlternatingRowColors(True)
    t.setWordWrap(False)
    t.horizontalHeader().setHighlightSections(False)
    t.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    return t
