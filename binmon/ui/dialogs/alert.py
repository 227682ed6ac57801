"""The alert create/edit dialog: a form generated from the rule model, checked as the user types.

The fields follow :class:`~binmon.alerts.rules.AlertRule`: symbol and interval; the subject
(price close/high/low, volume, or an output of an indicator on the chart); the operator;
the operand the operator takes (a value, a channel low-high, or another series), with bars N
and the amount for the ``moving_*`` operators; the frequency (and the minimum interval of
"every time"); an optional expiry; a message template; enabled. Every change re-checks the
form with :func:`~binmon.alerts.rules.validate_rule` (plus the parsing of typed numbers): the
first problem is shown in one line under the form and OK stays disabled until there is none.

Non-modal: the controller opens it with ``open()``/``show()`` (``exec()`` breaks qasync).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, cast

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDateTimeEdit,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from binmon.alerts.rules import (
    MOVING_OPERATORS,
    PLACEHOLDERS,
    AlertRule,
    Condition,
    Frequency,
    Operand,
    Operator,
    Subject,
    format_number,
    new_rule_id,
    validate_rule,
)
from binmon.core.models import SymbolInfo
from binmon.indicators.spec import IndicatorSpec
from binmon.ui.dialogs.download_parts import UTC, SymbolEdit, error_colour, to_qdt
from binmon.ui.widgets.symbol_picker import IntervalPicker

__all__ = ["AlertDialog", "parse_number", "subject_choices"]

_PCT = (Operator.MOVING_UP_PCT, Operator.MOVING_DOWN_PCT)


def parse_number(text: str) -> float | None:
    """A typed number: ``"19,250.50"``, ``" 30 "``, ``"-1e3"``; None when it is not one (or not finite)."""
    cleaned = text.strip().replace(",", "").replace("_", "").replace(" ", "")
    try:
        value = float(cleaned)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def subject_choices(indicators: Sequence[IndicatorSpec]) -> list[tuple[str, Subject]]:
    """What a rule can watch: price close/high/low, volume, then every output of ``indicators``."""
    out: list[tuple[str, Subject]] = [
        ("Price (close)", Subject.price("close")),
        ("Price (high)", Subject.price("high")),
        ("Price (low)", Subject.price("low")),
        ("Volume", Subject.volume()),
    ]
    for spec in indicators:
        for output in spec.styles:
            subject = Subject("indicator", output, spec)
            out.append((subject.label(), subject))
    return out


class AlertDialog(QDialog):
    """Create (``rule=None``) or edit ``rule``; :meth:`rule` is the checked rule (None while invalid).

    ``symbol`` / ``interval``: the new rule's series (the chart's); ``indicators``: the specs on
    the chart (their outputs are offered as subjects and series operands); ``symbols``: the
    exchange's symbols (a symbol outside them is refused; empty: not loaded, any is allowed);
    ``price``: the new rule's level (e.g. the last price).
    """

    def __init__(
        self,
        parent: QWidget | None = None,
        *,
        rule: AlertRule | None = None,
        symbol: str = "BTCUSDT",
        interval: str = "1m",
        indicators: Sequence[IndicatorSpec] = (),
        symbols: Sequence[SymbolInfo] = (),
        price: float | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("alert_dialog")
        self.setWindowTitle("Edit alert" if rule is not None else "Create alert")
        self._editing = rule
        self._known = {s.symbol for s in symbols}
        self._subjects = subject_choices(indicators)
        for s in (rule.condition.subject, rule.condition.operand.subject) if rule else ():
            if s is not None and all(c.key != s.key for _l, c in self._subjects):
                self._subjects.append((f"{s.label()} (not on the chart)", s))
        self._rule: AlertRule | None = None
        self._build(symbols)
        self._load(rule, symbol, interval, price)
        self._wire()
        self._changed()

    # ------------------------------------------------------------------ construction

    def _build(self, symbols: Sequence[SymbolInfo]) -> None:
        form = QFormLayout()
        self.name_edit = QLineEdit(self)
        self.name_edit.setPlaceholderText("optional; the condition is shown when empty")
        self.symbol_edit = SymbolEdit([s for s in symbols if s.status == "TRADING"], self)
        self.interval_box = IntervalPicker(self)
        series = QHBoxLayout()
        series.addWidget(self.symbol_edit, 1)
        series.addWidget(self.interval_box)
        self.subject_box = QComboBox(self)
        self.operator_box = QComboBox(self)
        for op in Operator:
            self.operator_box.addItem(op.text, op.value)  # Qt keeps plain str, not the enum
        self.operand_kind_box = QComboBox(self)
        self.operand_kind_box.addItem("a value", "value")
        self.operand_kind_box.addItem("another series", "series")
        self.value_edit = QLineEdit(self)
        self.value_edit.setPlaceholderText("e.g. 19,250.00")
        self.low_edit = QLineEdit()
        self.low_edit.setPlaceholderText("low")
        self.high_edit = QLineEdit()
        self.high_edit.setPlaceholderText("high")
        self.channel_row = QWidget(self)
        channel = QHBoxLayout(self.channel_row)
        channel.setContentsMargins(0, 0, 0, 0)
        channel.addWidget(self.low_edit)
        channel.addWidget(QLabel("–", self.channel_row))
        channel.addWidget(self.high_edit)
        self.series_box = QComboBox(self)
        for label, subject in self._subjects:
            self.subject_box.addItem(label, subject)
            self.series_box.addItem(label, subject)
        self.bars_spin = QSpinBox(self)
        self.bars_spin.setRange(1, 10_000)
        self.bars_spin.setToolTip("N: the move is measured from the value N bars back")
        self.frequency_box = QComboBox(self)
        for f in Frequency:
            self.frequency_box.addItem(f.text, f.value)
        self.min_interval_spin = QDoubleSpinBox(self)
        self.min_interval_spin.setRange(0.0, 86_400.0)
        self.min_interval_spin.setDecimals(1)
        self.min_interval_spin.setSuffix(" s")
        self.min_interval_spin.setToolTip("Every time: at least this long between two notifications")
        self.expires_check = QCheckBox("Expires", self)
        self.expires_edit = QDateTimeEdit(self)
        self.expires_edit.setTimeZone(UTC)
        self.expires_edit.setDisplayFormat("yyyy-MM-dd HH:mm 'UTC'")
        self.expires_edit.setCalendarPopup(True)
        expiry = QHBoxLayout()
        expiry.addWidget(self.expires_check)
        expiry.addWidget(self.expires_edit, 1)
        self.message_edit = QLineEdit(self)
        self.message_edit.setPlaceholderText("{symbol} {interval}: {rule} (price {price})")
        help_text = "Placeholders: " + ", ".join("{" + p + "}" for p in PLACEHOLDERS)
        self.placeholders_label = QLabel(help_text, self)
        self.placeholders_label.setWordWrap(True)
        self.message_edit.setToolTip(help_text)
        self.enabled_check = QCheckBox("Enabled", self)

        form.addRow("Name", self.name_edit)
        form.addRow("Symbol", series)
        form.addRow("Condition", self.subject_box)
        form.addRow("", self.operator_box)
        form.addRow("Compare with", self.operand_kind_box)
        self.value_label = QLabel("Value", self)
        form.addRow(self.value_label, self.value_edit)
        form.addRow("Channel", self.channel_row)
        form.addRow("Series", self.series_box)
        form.addRow("Within bars", self.bars_spin)
        form.addRow("Trigger", self.frequency_box)
        form.addRow("Min. interval", self.min_interval_spin)
        form.addRow("Expiry", expiry)
        form.addRow("Message", self.message_edit)
        form.addRow("", self.placeholders_label)
        form.addRow("", self.enabled_check)
        self._form = form

        self.message = QLabel("", self)
        self.message.setObjectName("alert_message")
        self.message.setWordWrap(True)
        self.message.setStyleSheet(f"color: {error_colour(self)};")
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self
        )
        ok = buttons.button(QDialogButtonBox.StandardButton.Ok)
        assert isinstance(ok, QPushButton)
        self.ok = ok
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.message)
        layout.addWidget(buttons)
        self.setMinimumWidth(460)

    def _load(self, rule: AlertRule | None, symbol: str, interval: str, price: float | None) -> None:
        if rule is None:
            self.symbol_edit.setText(symbol)
            self.interval_box.set_interval(interval)
            self.operator_box.setCurrentIndex(self.operator_box.findData(Operator.CROSSING.value))
            if price is not None:
                self.value_edit.setText(format_number(price))
            self.frequency_box.setCurrentIndex(self.frequency_box.findData(Frequency.ONCE.value))
            self.expires_edit.setDateTime(to_qdt(_now_ms() + 30 * 86_400_000))
            self.enabled_check.setChecked(True)
            return
        cond = rule.condition
        self.name_edit.setText(rule.name)
        self.symbol_edit.setText(rule.symbol)
        self.interval_box.set_interval(rule.interval)
        self.subject_box.setCurrentIndex(self._subject_index(cond.subject))
        self.operator_box.setCurrentIndex(self.operator_box.findData(Operator(cond.operator).value))
        opnd = cond.operand
        if opnd.kind == "series" and opnd.subject is not None:
            self.operand_kind_box.setCurrentIndex(1)
            self.series_box.setCurrentIndex(self._subject_index(opnd.subject))
        elif opnd.kind == "channel":
            self.low_edit.setText(format_number(opnd.low))
            self.high_edit.setText(format_number(opnd.high))
        else:
            self.value_edit.setText(format_number(opnd.value))
        self.bars_spin.setValue(cond.bars)
        self.frequency_box.setCurrentIndex(self.frequency_box.findData(Frequency(rule.frequency).value))
        self.min_interval_spin.setValue(rule.min_interval_s)
        self.expires_check.setChecked(rule.expires_ms is not None)
        self.expires_edit.setDateTime(to_qdt(rule.expires_ms or _now_ms() + 30 * 86_400_000))
        self.message_edit.setText(rule.message)
        self.enabled_check.setChecked(rule.enabled)

    def _subject_index(self, subject: Subject) -> int:
        return next((i for i, (_l, s) in enumerate(self._subjects) if s.key == subject.key), 0)

    def _wire(self) -> None:
        for edit in (self.name_edit, self.symbol_edit, self.value_edit, self.low_edit, self.high_edit):
            edit.textChanged.connect(self._changed)
        self.message_edit.textChanged.connect(self._changed)
        for box in (
            self.interval_box,
            self.subject_box,
            self.operator_box,
            self.operand_kind_box,
            self.series_box,
            self.frequency_box,
        ):
            box.currentIndexChanged.connect(self._changed)
        self.bars_spin.valueChanged.connect(self._changed)
        self.min_interval_spin.valueChanged.connect(self._changed)
        self.expires_check.toggled.connect(self._changed)
        self.expires_edit.dateTimeChanged.connect(self._changed)
        self.enabled_check.toggled.connect(self._changed)

    # ------------------------------------------------------------------ reading the form

    def rule(self) -> AlertRule | None:
        """The rule the form describes, checked; None while the form has a problem."""
        return self._rule

    def problem(self) -> str:
        """The first problem of the form ("" when there is none)."""
        return self.message.text()

    def _changed(self) -> None:
        op = self._operator()
        kinds = op.operand_kinds if isinstance(op, Operator) else ("value",)
        both = kinds == ("value", "series")
        series = both and self.operand_kind_box.currentData() == "series"
        channel = kinds == ("channel",)
        moving = op in MOVING_OPERATORS
        self._show_row(self.operand_kind_box, both)
        self._show_row(self.value_edit, not series and not channel)
        self._show_row(self.channel_row, channel)
        self._show_row(self.series_box, series)
        self._show_row(self.bars_spin, moving)
        self._show_row(self.min_interval_spin, self._frequency() is Frequency.EVERY_TIME)
        self.value_label.setText(
            "Amount %" if op in _PCT else "Amount" if op in MOVING_OPERATORS else "Value"
        )
        self.expires_edit.setEnabled(self.expires_check.isChecked())
        rule, problem = self._read(op, series, channel, moving)
        self._rule = rule if not problem else None
        self.message.setText(problem)
        self.ok.setEnabled(self._rule is not None)

    def _read(self, op: object, series: bool, channel: bool, moving: bool) -> tuple[AlertRule | None, str]:
        if not isinstance(op, Operator):
            return None, "Choose an operator"
        symbol = self.symbol_edit.text().strip().upper()
        if not symbol:
            return None, "Enter a symbol"
        if self._known and symbol not in self._known:
            return None, f"Unknown symbol {symbol!r}"
        subject = self.subject_box.currentData()
        if series:
            operand = Operand.of_series(self.series_box.currentData())
        elif channel:
            low, high = parse_number(self.low_edit.text()), parse_number(self.high_edit.text())
            if low is None or high is None:
                return None, "Channel: enter both bounds as numbers"
            operand = Operand.of_channel(low, high)
        else:
            value = parse_number(self.value_edit.text())
            if value is None:
                what = "the amount" if moving else "the value"
                return (
                    None,
                    f"Enter {what} as a number" if self.value_edit.text().strip() else f"Enter {what}",
                )
            operand = Operand.of_value(value)
        if series and operand.subject is not None and operand.subject.key == subject.key:
            return None, "Compare the series with a different one"
        expires = self.expires_edit.dateTime().toMSecsSinceEpoch() if self.expires_check.isChecked() else None
        if expires is not None and self._editing is None and expires <= _now_ms():
            return None, "The expiry is in the past"
        base = self._editing
        rule = AlertRule(
            id=base.id if base is not None else new_rule_id(),
            symbol=symbol,
            interval=self.interval_box.interval(),
            condition=Condition(subject, op, operand, self.bars_spin.value() if moving else 1),
            frequency=self._frequency(),
            min_interval_s=self.min_interval_spin.value()
            if self._frequency() is Frequency.EVERY_TIME
            else 0.0,
            expires_ms=expires,
            message=self.message_edit.text(),
            enabled=self.enabled_check.isChecked(),
            name=self.name_edit.text().strip(),
        )
        if base is not None:
            rule = replace(rule, created_ms=base.created_ms)
        errors = validate_rule(rule)
        return (None, _sentence(errors[0])) if errors else (rule, "")

    # ------------------------------------------------------------------ helpers

    def _operator(self) -> Operator | None:
        data = self.operator_box.currentData()
        return Operator(data) if isinstance(data, str) and data in Operator._value2member_map_ else None

    def _frequency(self) -> Frequency:
        data = self.frequency_box.currentData()
        return (
            Frequency(data)
            if isinstance(data, str) and data in Frequency._value2member_map_
            else Frequency.ONCE
        )

    def _show_row(self, widget: QWidget, visible: bool) -> None:
        position = cast(tuple[int, Any], self._form.getWidgetPosition(widget))  # (row, role)
        self._form.setRowVisible(position[0], visible)


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def _now_ms() -> int:
    return int(time.time() * 1000)
