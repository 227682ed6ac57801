"""A small in-app notification ("toast") over the main window's top-right corner.

The fallback when no desktop notification service answers: it never blocks, never takes the
focus, hides itself after a few seconds, and a click on it calls ``on_clicked(payload)`` (the
alerts controller brings that symbol's chart to the front). Several notices in a row stack,
newest on top, up to :data:`MAX_LINES`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QEvent, QObject, Qt, QTimer
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QFrame, QLabel, QVBoxLayout, QWidget

#: Notices shown at once (older ones drop off the bottom).
MAX_LINES = 3
HIDE_AFTER_MS = 8000


class Toast(QFrame):
    """See the module docstring. ``host`` is the window it floats over (as a child widget)."""

    def __init__(
        self,
        host: QWidget,
        *,
        on_clicked: Callable[[Any], None] | None = None,
        hide_after_ms: int = HIDE_AFTER_MS,
    ) -> None:
        super().__init__(host)
        self.setObjectName("alert_toast")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setAttribute(Qt.WidgetAttribute.WA_ShowWithoutActivating)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.setStyleSheet(
            "#alert_toast { background: #2a2e39; border: 1px solid #ff9800; border-radius: 6px; }"
            "#alert_toast QLabel { color: #d1d4dc; }"
            "#alert_toast QLabel[role='title'] { color: #ff9800; font-weight: bold; }"
        )
        self.on_clicked = on_clicked
        self._items: list[tuple[str, str, Any]] = []  # (title, body, payload), newest first
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(10, 8, 10, 8)
        self._labels: list[QLabel] = []
        self._timer = QTimer(self, singleShot=True, interval=hide_after_ms)
        self._timer.timeout.connect(self.dismiss)
        host.installEventFilter(self)
        self.hide()

    def show_notice(self, title: str, body: str, payload: Any = None) -> bool:
        """Show a notice (on top of the ones still shown); restart the hide timer; True."""
        self._items.insert(0, (title, body, payload))
        del self._items[MAX_LINES:]
        self._render()
        self.show()
        self.raise_()
        self._place()
        self._timer.start()
        return True

    def texts(self) -> list[str]:
        """``"title: body"`` of the notices shown, newest first (empty when hidden)."""
        return [f"{t}: {b}" for t, b, _p in self._items] if self.isVisible() else []

    def dismiss(self) -> None:
        """Hide and forget the notices."""
        self._items.clear()
        self.hide()

    def mousePressEvent(self, event: QMouseEvent) -> None:
        """A click calls ``on_clicked`` with the newest notice's payload and hides the toast."""
        payload = self._items[0][2] if self._items else None
        self.dismiss()
        if self.on_clicked is not None and payload is not None:
            self.on_clicked(payload)
        event.accept()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        """Follow the host window's size (stay in its top-right corner)."""
        if watched is self.parent() and event.type() == QEvent.Type.Resize and self.isVisible():
            self._place()
        return False

    def _render(self) -> None:
        for label in self._labels:
            self._layout.removeWidget(label)
            label.deleteLater()
        self._labels = []
        for title, body, _p in self._items:
            head = QLabel(title, self)
            head.setProperty("role", "title")
            text = QLabel(body, self)
            text.setWordWrap(True)
            for label in (head, text):
                label.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
                self._layout.addWidget(label)
                self._labels.append(label)

    def _place(self) -> None:
        host = self.parentWidget()
        if host is None:
            return
        self.setFixedWidth(min(360, max(200, host.width() - 40)))
        self.adjustSize()
        self.move(host.width() - self.width() - 16, 56)
