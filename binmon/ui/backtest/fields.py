"""The form's building blocks: generated parameter fields and a few small widgets.

:class:`ParamField` turns a :class:`~binmon.backtest.model.ParamInfo` into a widget (spin boxes
bounded by its limits, the alert dialog for a rule condition, free text for a user file's
other parameters) and reads it back.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtGui import QFocusEvent
from PySide6.QtWidgets import QDoubleSpinBox, QLineEdit, QSpinBox, QWidget

from binmon.backtest.model import ParamInfo
from binmon.core.models import SymbolInfo
from binmon.ui.backtest.condition import ConditionField
from binmon.ui.dialogs.download_parts import SymbolEdit

#: Decimals of float parameters with fine steps (0.001); coarser ones show two.
_FLOAT_DECIMALS = 4


class ParamField:
    """One generated parameter field: its widget and how to read it back."""

    def __init__(
        self, info: ParamInfo, parent: QWidget, *, condition: Callable[[ParamInfo], QWidget] | None = None
    ) -> None:
        """``condition`` makes the widget of a built-in's condition parameter (else: text)."""
        self.info = info
        self.widget: QWidget
        if info.kind == "int":
            box = QSpinBox(parent)
            box.setRange(_int_bound(info.minimum, -(2**31) + 1), _int_bound(info.maximum, 2**31 - 1))
            box.setSingleStep(max(1, int(info.step or 1)))
            box.setValue(int(info.default))
            self.widget = box
        elif info.kind == "float":
            dbox = QDoubleSpinBox(parent)
            # Two decimals for steps like 0.5 or 1 (RSI 30.00), more for finer ones.
            dbox.setDecimals(2 if (info.step or 0.1) >= 0.01 else _FLOAT_DECIMALS)
            dbox.setRange(
                -1e12 if info.minimum is None else info.minimum,
                1e12 if info.maximum is None else info.maximum,
            )
            dbox.setSingleStep(info.step or 0.1)
            dbox.setValue(float(info.default))
            self.widget = dbox
        elif info.kind == "condition" and condition is not None:
            self.widget = condition(info)
        else:  # a user file's parameter of any type: free text (JSON values parsed)
            edit = QLineEdit(parent)
            edit.setText(_text_of(info.default))
            self.widget = edit
        self.widget.setObjectName(f"param_{info.name}")
        self.widget.setMinimumWidth(70)
        self.widget.setToolTip(info.help or info.title or info.name)

    def value(self) -> Any:
        """The value as the runner takes it (text fields: JSON when it parses, else the text)."""
        w = self.widget
        if isinstance(w, QSpinBox):
            return w.value()
        if isinstance(w, QDoubleSpinBox):
            return w.value()
        if isinstance(w, ConditionField):
            return w.value()
        assert isinstance(w, QLineEdit)
        text = w.text().strip()
        try:
            return json.loads(text)
        except ValueError:
            return text

    def set_value(self, value: Any) -> None:
        """Show ``value`` (as if typed); a value a spin box cannot hold is clamped by it."""
        w = self.widget
        if isinstance(w, QSpinBox):
            w.setValue(int(value))
        elif isinstance(w, QDoubleSpinBox):
            w.setValue(float(value))
        elif isinstance(w, ConditionField):
            w.set_value(value)
        elif isinstance(w, QLineEdit):
            w.setText(_text_of(value))

    def connect(self, slot: Callable[[], None]) -> None:
        """Call ``slot`` on every edit."""
        w = self.widget
        if isinstance(w, QSpinBox | QDoubleSpinBox):
            w.valueChanged.connect(slot)
        elif isinstance(w, QLineEdit):
            w.textChanged.connect(slot)
        elif isinstance(w, ConditionField):
            w.changed.connect(slot)


def _int_bound(x: float | None, default: int) -> int:
    return default if x is None or not math.isfinite(x) else int(max(-(2**31) + 1, min(2**31 - 1, x)))


def _text_of(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def user_param_infos(defaults: Mapping[str, Any]) -> tuple[ParamInfo, ...]:
    """:class:`ParamInfo` for a user strategy's ``params`` (name -> default): numbers get spin
    boxes (unbounded), anything else a text field."""
    out = []
    for name, value in defaults.items():
        if isinstance(value, int) and not isinstance(value, bool):
            out.append(ParamInfo(name, "int", value, step=1, title=name))
        elif isinstance(value, float):
            out.append(ParamInfo(name, "float", value, step=abs(value) / 10 or 0.1, title=name))
        else:
            out.append(ParamInfo(name, "condition", value, title=name))
    return tuple(out)


class FormSymbolEdit(SymbolEdit):
    """The download dialog's symbol field, told about symbols that arrive later."""

    focused = Signal()

    def set_infos(self, infos: Sequence[SymbolInfo]) -> None:
        """Complete over ``infos`` from now on."""
        self._infos = list(infos)

    def focusInEvent(self, event: QFocusEvent) -> None:
        super().focusInEvent(event)
        self.focused.emit()


def money_box(parent: QWidget, value: float, lo: float, hi: float, decimals: int, tip: str) -> QDoubleSpinBox:
    box = QDoubleSpinBox(parent)
    box.setDecimals(decimals)
    box.setRange(lo, hi)
    box.setValue(value)
    box.setToolTip(tip)
    box.setGroupSeparatorShown(True)
    return box
