"""Settings ▸ Notifications…: desktop notifications on/off, sound on/off, "Send test notification".

Non-modal (``show()``). Each change is reported at once with ``settingsChanged(NotifySettings)``;
the test button emits ``testRequested`` and :meth:`NotificationsDialog.show_result` says which
way the test notification went (desktop service, tray, in-app toast) and why a fallback was used.
"""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from binmon.alerts.notify import NotifySettings


class NotificationsDialog(QDialog):
    """See the module docstring."""

    settingsChanged = Signal(object)  # NotifySettings
    testRequested = Signal()

    def __init__(self, settings: NotifySettings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("notifications_dialog")
        self.setWindowTitle("Notifications")
        self.desktop_check = QCheckBox("Desktop notifications (the system's notification service)", self)
        self.desktop_check.setToolTip(
            "Off, or when no notification service answers: a tray balloon or a note over the window"
        )
        self.sound_check = QCheckBox("Play a sound", self)
        self.test_button = QPushButton("Send test notification", self)
        self.result_label = QLabel("", self)
        self.result_label.setObjectName("notifications_result")
        self.result_label.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.close)
        lay = QVBoxLayout(self)
        lay.addWidget(self.desktop_check)
        lay.addWidget(self.sound_check)
        lay.addWidget(self.test_button)
        lay.addWidget(self.result_label)
        lay.addStretch(1)
        lay.addWidget(buttons)
        self.set_settings(settings)
        self.desktop_check.toggled.connect(self._changed)
        self.sound_check.toggled.connect(self._changed)
        self.test_button.clicked.connect(self._test)
        self.setMinimumWidth(420)

    def settings(self) -> NotifySettings:
        """The choices shown."""
        return NotifySettings(desktop=self.desktop_check.isChecked(), sound=self.sound_check.isChecked())

    def set_settings(self, settings: NotifySettings) -> None:
        """Show ``settings`` without emitting ``settingsChanged``."""
        for box, value in ((self.desktop_check, settings.desktop), (self.sound_check, settings.sound)):
            box.blockSignals(True)
            box.setChecked(value)
            box.blockSignals(False)

    def show_result(self, text: str) -> None:
        """Say how the test notification went; re-enable the button."""
        self.result_label.setText(text)
        self.test_button.setEnabled(True)

    def _changed(self) -> None:
        self.settingsChanged.emit(self.settings())

    def _test(self) -> None:
        self.test_button.setEnabled(False)
        self.result_label.setText("Sending…")
        self.testRequested.emit()
