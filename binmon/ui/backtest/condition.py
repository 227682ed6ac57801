"""A "condition" parameter (the rule strategy's entry and exit) edited with the alert dialog.

What you alert on you can backtest: the field shows the condition in the alert panel's words
(:func:`~binmon.alerts.rules.describe_condition`) and "Edit…" opens the same
:class:`~binmon.ui.dialogs.alert.AlertDialog` the alerts use, on a throw-away rule around the
condition, with the rows that only matter to alerts (name, series, trigger, expiry, message)
hidden. The dialog is non-modal (``open()``), as everywhere in binmon.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QDialog, QFormLayout, QHBoxLayout, QLabel, QPushButton, QWidget

from binmon.alerts.rules import AlertRule, describe_condition
from binmon.backtest.rule import condition_from_value, condition_to_value
from binmon.indicators.spec import IndicatorSpec

#: Rows of the alert dialog's form a backtest condition does not use (name, series, trigger,
#: min. interval, expiry, message, placeholders, enabled).
_ALERT_ONLY_ROWS = (0, 1, 9, 10, 11, 12, 13, 14)


class ConditionField(QWidget):
    """Shows a condition (its dict form) with an "Edit…" button; ``changed`` after an edit."""

    changed = Signal()

    def __init__(
        self,
        value: Any,
        *,
        title: str,
        series: Callable[[], tuple[str, str]],
        indicators: Callable[[], Sequence[IndicatorSpec]],
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._value = value
        self._title = title
        self._series = series
        self._indicators = indicators
        self.dialog: QDialog | None = None
        self.summary = QLabel(self)
        self.summary.setWordWrap(True)
        self.edit_button = QPushButton("Edit…", self)
        self.edit_button.setAutoDefault(False)
        self.edit_button.clicked.connect(self.open_editor)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.summary, 1)
        layout.addWidget(self.edit_button)
        self._show()

    def value(self) -> Any:
        """The condition in its dict form (what requests carry)."""
        return self._value

    def set_value(self, value: Any) -> None:
        """Show ``value`` (a condition dict)."""
        self._value = value
        self._show()
        self.changed.emit()

    def _show(self) -> None:
        try:
            text = describe_condition(condition_from_value(self._value))
        except (ValueError, TypeError, KeyError) as exc:
            text = f"invalid: {exc}"
        self.summary.setText(text)
        self.summary.setToolTip(text)

    def open_editor(self) -> QDialog:
        """Open the alert dialog on this condition (non-modal); its OK sets the new condition."""
        from binmon.ui.dialogs.alert import AlertDialog

        symbol, interval = self._series()
        rule: AlertRule | None = None
        try:
            cond = condition_from_value(self._value)
            rule = AlertRule(
                id="backtest", symbol=symbol or "BTCUSDT", interval=interval, condition=cond, created_ms=0
            )
        except (ValueError, TypeError, KeyError):
            rule = None  # an unreadable condition: start from the dialog's blank one
        specs = list(self._indicators())
        dialog = AlertDialog(
            self.window(), rule=rule, symbol=symbol or "BTCUSDT", interval=interval, indicators=specs
        )
        dialog.setWindowTitle(self._title)
        form = dialog.findChild(QFormLayout)
        if form is not None:
            for row in _ALERT_ONLY_ROWS:
                if row < form.rowCount():
                    form.setRowVisible(row, False)
        dialog.finished.connect(self._edited)
        self.dialog = dialog
        dialog.open()
        return dialog

    def _edited(self, result: int) -> None:
        from binmon.ui.dialogs.alert import AlertDialog

        dialog, self.dialog = self.dialog, None
        if dialog is None:
            return
        assert isinstance(dialog, AlertDialog)
        rule = dialog.rule()
        dialog.deleteLater()
        if result == QDialog.DialogCode.Accepted and rule is not None:
            self.set_value(condition_to_value(rule.condition))
