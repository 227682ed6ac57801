"""The indicators panel: the chart's indicators as a list, and the buttons that change them.

A view only. It shows what :meth:`IndicatorsPanel.set_items` gives it (one row per indicator:
colour swatch, title such as ``"RSI 21 · close"``, eye toggle) and the template names of
:meth:`IndicatorsPanel.set_templates`, and turns every user action into a signal; the
:class:`~binmon.ui.indicators_controller.IndicatorController` does the rest and calls
``set_items`` again. Keyboard: Enter or double-click edits, Delete removes, Ctrl+Up / Ctrl+Down
move the selected indicator.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from PySide6.QtCore import QEvent, QObject, QPointF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QIcon, QKeyEvent, QPainter, QPainterPath, QPalette, QPen, QPixmap
from PySide6.QtWidgets import (
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

#: Role of a list item holding the indicator id.
ID_ROLE = Qt.ItemDataRole.UserRole + 1


@dataclass(frozen=True, slots=True)
class PanelItem:
    """One row of the panel: ``color`` is the swatch (``#rrggbb``); ``tooltip`` says more
    (pane, parameters, or why the indicator is not computed)."""

    id: str
    title: str
    color: str
    visible: bool = True
    tooltip: str = ""


def eye_icon(color: QColor, open_: bool, size: int = 16) -> QIcon:
    """An eye (``open_``) or a struck-through, faded eye, drawn in ``color``."""
    pix = QPixmap(size, size)
    pix.fill(Qt.GlobalColor.transparent)
    p = QPainter(pix)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    c = QColor(color)
    if not open_:
        c.setAlphaF(0.45)
    p.setPen(QPen(c, 1.4))
    mid, w = size / 2, size - 2.0
    path = QPainterPath(QPointF(1, mid))
    path.quadTo(QPointF(mid, mid - w * 0.55), QPointF(size - 1, mid))
    path.quadTo(QPointF(mid, mid + w * 0.55), QPointF(1, mid))
    p.drawPath(path)
    p.setBrush(c)
    p.drawEllipse(QPointF(mid, mid), size * 0.16, size * 0.16)
    if not open_:
        p.drawLine(QPointF(2, size - 2), QPointF(size - 2, 2))
    p.end()
    return QIcon(pix)


class _Row(QWidget):
    """Swatch, title, eye: the widget shown for one list item (clicks go through to the list)."""

    def __init__(self, item: PanelItem, panel: IndicatorsPanel) -> None:
        super().__init__()
        self._panel = panel
        self.item_id = item.id
        lay = QHBoxLayout(self)
        lay.setContentsMargins(4, 1, 2, 1)
        lay.setSpacing(6)
        self.swatch = QLabel()
        self.swatch.setFixedSize(12, 12)
        self.title = QLabel()
        for w in (self.swatch, self.title):
            w.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.eye = QToolButton()
        self.eye.setObjectName(f"eye_{item.id}")
        self.eye.setCheckable(True)
        self.eye.setAutoRaise(True)
        self.eye.setIconSize(QSize(16, 16))
        self.eye.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.eye.toggled.connect(lambda on: panel.visibilityToggled.emit(self.item_id, on))
        lay.addWidget(self.swatch)
        lay.addWidget(self.title, 1)
        lay.addWidget(self.eye)
        self.show_item(item)

    def show_item(self, item: PanelItem) -> None:
        """Show ``item`` (same id) without recreating the widgets (the eye may be sending a signal)."""
        self.swatch.setStyleSheet(f"background:{item.color}; border-radius:2px;")
        self.title.setText(item.title)
        self.title.setToolTip(item.tooltip)
        self.title.setEnabled(item.visible)  # greyed: hidden on the chart
        self.eye.blockSignals(True)
        self.eye.setChecked(item.visible)
        self.eye.blockSignals(False)
        self.eye.setAccessibleName(f"Show {item.title}")
        self.eye.setToolTip("Hide on the chart" if item.visible else "Show on the chart")
        self.eye.setIcon(eye_icon(self._panel.palette().color(QPalette.ColorRole.Text), item.visible))


class IndicatorsPanel(QWidget):
    """The chart's indicators, in draw order, with Add / Edit / Remove / Up / Down / Templates.

    Signals carry indicator ids (``str``) and template names; nothing changes until the
    controller calls :meth:`set_items` / :meth:`set_templates`.
    """

    addRequested = Signal()
    editRequested = Signal(str)  # id
    removeRequested = Signal(str)  # id
    moveRequested = Signal(str, int)  # id, -1 up / +1 down
    visibilityToggled = Signal(str, bool)  # id, visible
    saveTemplateRequested = Signal(str)  # template name
    applyTemplateRequested = Signal(str)  # template name
    deleteTemplateRequested = Signal(str)  # template name

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("indicatorsPanel")
        self._items: list[PanelItem] = []
        self._templates: list[str] = []
        self.name_dialog: QInputDialog | None = None

        self.list = QListWidget()
        self.list.setObjectName("indicatorList")
        self.list.setAccessibleName("Indicators")
        self.list.setUniformItemSizes(True)
        self.list.itemDoubleClicked.connect(lambda it: self.editRequested.emit(it.data(ID_ROLE)))
        self.list.currentRowChanged.connect(lambda _row: self._update_buttons())
        self.list.installEventFilter(self)
        self.empty = QLabel("No indicators yet: Add… puts RSI, MACD, Bollinger Bands… on the chart.")
        self.empty.setWordWrap(True)
        self.empty.setEnabled(False)

        self.add_button = self._button("Add…", "Add an indicator", self.addRequested.emit)
        self.edit_button = self._button("Edit…", "Edit the selected indicator", self._edit)
        self.remove_button = self._button("Remove", "Remove the selected indicator (Delete)", self._remove)
        self.up_button = self._button("▲", "Move up (Ctrl+Up)", lambda: self._move(-1))
        self.down_button = self._button("▼", "Move down (Ctrl+Down)", lambda: self._move(1))
        self.up_button.setAccessibleName("Move up")
        self.down_button.setAccessibleName("Move down")
        self.templates_button = self._button(
            "Templates", "Save the indicators as a template, or apply one", None
        )
        self.templates_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.templates_menu = QMenu(self.templates_button)
        self.templates_menu.aboutToShow.connect(self._fill_templates_menu)
        self.templates_button.setMenu(self.templates_menu)

        buttons = QHBoxLayout()
        buttons.setSpacing(2)
        for b in (self.add_button, self.edit_button, self.remove_button, self.up_button, self.down_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        bottom = QHBoxLayout()
        bottom.addStretch(1)
        bottom.addWidget(self.templates_button)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addLayout(buttons)
        lay.addWidget(self.list, 1)
        lay.addWidget(self.empty)
        lay.addLayout(bottom)
        self.set_items([])

    # ------------------------------------------------------------ fed by the controller

    def set_items(self, items: Sequence[PanelItem]) -> None:
        """Show ``items`` in order; the selection stays on the same id when it is still there.

        The same ids in the same order update the rows in place (no widget is recreated: this
        runs from the eye button's own signal).
        """
        keep = self.selected_id()
        same = [it.id for it in items] == [it.id for it in self._items] and self.list.count() == len(items)
        self._items = list(items)
        if same:
            for i, it in enumerate(self._items):
                item = self.list.item(i)
                row = self.list.itemWidget(item)
                if isinstance(row, _Row):
                    row.show_item(it)
                item.setToolTip(it.tooltip)
        else:
            self.list.clear()
            for it in self._items:
                row = _Row(it, self)
                item = QListWidgetItem()
                item.setData(ID_ROLE, it.id)
                item.setToolTip(it.tooltip)
                item.setSizeHint(row.sizeHint())
                self.list.addItem(item)
                self.list.setItemWidget(item, row)
            ids = [it.id for it in self._items]
            if keep in ids:
                self.list.setCurrentRow(ids.index(keep))
        self.empty.setVisible(not self._items)
        self._update_buttons()

    def set_templates(self, names: Sequence[str]) -> None:
        """The saved template names (the Templates menu lists them)."""
        self._templates = list(names)

    def items(self) -> list[PanelItem]:
        """What the panel shows, in order."""
        return list(self._items)

    def selected_id(self) -> str | None:
        """The selected indicator's id, None without a selection."""
        item = self.list.currentItem()
        return item.data(ID_ROLE) if item is not None else None

    def select(self, indicator_id: str) -> None:
        """Select the row of ``indicator_id`` (no-op if it is not listed)."""
        for i in range(self.list.count()):
            if self.list.item(i).data(ID_ROLE) == indicator_id:
                self.list.setCurrentRow(i)

    def row_widget(self, indicator_id: str) -> _Row | None:
        """The row widget of ``indicator_id`` (tests and screenshots)."""
        for i in range(self.list.count()):
            item = self.list.item(i)
            if item.data(ID_ROLE) == indicator_id:
                w = self.list.itemWidget(item)
                return w if isinstance(w, _Row) else None
        return None

    # ------------------------------------------------------------ user actions

    def ask_template_name(self) -> QInputDialog:
        """Ask for a template name (window-modal, ``open()``); OK emits :attr:`saveTemplateRequested`."""
        dlg = QInputDialog(self)
        dlg.setWindowTitle("Save indicator template")
        dlg.setLabelText("Template name:")
        dlg.setInputMode(QInputDialog.InputMode.TextInput)
        dlg.setTextEchoMode(QLineEdit.EchoMode.Normal)
        dlg.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dlg.textValueSelected.connect(self._template_named)
        self.name_dialog = dlg
        dlg.open()
        return dlg

    def _template_named(self, name: str) -> None:
        name = " ".join(name.split())
        if name:
            self.saveTemplateRequested.emit(name)

    def _fill_templates_menu(self) -> None:
        menu = self.templates_menu
        menu.clear()
        save = menu.addAction("Save as template…")
        save.setEnabled(bool(self._items))
        save.triggered.connect(self.ask_template_name)
        apply_menu = menu.addMenu("Apply template")
        delete_menu = menu.addMenu("Delete template")
        for name in self._templates:
            apply_menu.addAction(name).triggered.connect(
                lambda _=False, n=name: self.applyTemplateRequested.emit(n)
            )
            delete_menu.addAction(name).triggered.connect(
                lambda _=False, n=name: self.deleteTemplateRequested.emit(n)
            )
        apply_menu.setEnabled(bool(self._templates))
        delete_menu.setEnabled(bool(self._templates))

    def _edit(self) -> None:
        if (sid := self.selected_id()) is not None:
            self.editRequested.emit(sid)

    def _remove(self) -> None:
        if (sid := self.selected_id()) is not None:
            self.removeRequested.emit(sid)

    def _move(self, delta: int) -> None:
        if (sid := self.selected_id()) is not None:
            self.moveRequested.emit(sid, delta)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        """Enter edits, Delete removes, Ctrl+Up / Ctrl+Down move (on the list)."""
        if watched is self.list and event.type() == QEvent.Type.KeyPress and isinstance(event, QKeyEvent):
            key, ctrl = event.key(), bool(event.modifiers() & Qt.KeyboardModifier.ControlModifier)
            if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
                self._edit()
                return True
            if key in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace):
                self._remove()
                return True
            if ctrl and key in (Qt.Key.Key_Up, Qt.Key.Key_Down):
                self._move(-1 if key == Qt.Key.Key_Up else 1)
                return True
        return super().eventFilter(watched, event)

    def changeEvent(self, event: QEvent) -> None:
        """Redraw the eye icons in the new text colour when the theme changes."""
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange:
            for i in range(self.list.count()):
                row = self.list.itemWidget(self.list.item(i))
                if isinstance(row, _Row):
                    row.show_item(self._items[i])

    # ------------------------------------------------------------ internals

    def _button(self, text: str, tip: str, slot: object) -> QToolButton:
        b = QToolButton()
        b.setText(text)
        b.setToolTip(tip)
        b.setAccessibleName(text.rstrip("…"))
        b.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        if callable(slot):
            b.clicked.connect(lambda _=False: slot())
        return b

    def _update_buttons(self) -> None:
        row, n = self.list.currentRow(), self.list.count()
        has = 0 <= row < n
        self.edit_button.setEnabled(has)
        self.remove_button.setEnabled(has)
        self.up_button.setEnabled(has and row > 0)
        self.down_button.setEnabled(has and row < n - 1)
