"""The alert rule values: operators, frequencies, subjects, operands, conditions, rules. No Qt.

Plain frozen dataclasses and string enums; :mod:`binmon.alerts.rules` re-exports all of them
with validation, text and the JSON form (import from there).
"""

from __future__ import annotations

import math
import time
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any, Literal

from binmon.indicators.catalog import function_info
from binmon.indicators.spec import IndicatorSpec

__all__ = [
    "CHANNEL_OPERATORS",
    "MOVING_OPERATORS",
    "PRICE_FIELDS",
    "AlertRule",
    "Condition",
    "Frequency",
    "Operand",
    "OperandKind",
    "Operator",
    "Subject",
    "SubjectKind",
    "format_number",
    "new_rule_id",
]

#: Price fields a ``price`` subject may watch.
PRICE_FIELDS: tuple[str, ...] = ("close", "high", "low")
SubjectKind = Literal["price", "volume", "indicator"]
OperandKind = Literal["value", "channel", "series"]


class Operator(StrEnum):
    """How the subject is compared with the operand (exact semantics: :mod:`binmon.alerts.evaluate`)."""

    CROSSING = "crossing"
    CROSSING_UP = "crossing_up"
    CROSSING_DOWN = "crossing_down"
    GREATER_THAN = "greater_than"
    LESS_THAN = "less_than"
    ENTERING_CHANNEL = "entering_channel"
    EXITING_CHANNEL = "exiting_channel"
    INSIDE_CHANNEL = "inside_channel"
    OUTSIDE_CHANNEL = "outside_channel"
    MOVING_UP = "moving_up"
    MOVING_DOWN = "moving_down"
    MOVING_UP_PCT = "moving_up_pct"
    MOVING_DOWN_PCT = "moving_down_pct"

    @property
    def text(self) -> str:
        """Human text for the panel (``"crossing up"``, ``"moving up %"``)."""
        return _OPERATOR_TEXT[self]

    @property
    def operand_kinds(self) -> tuple[OperandKind, ...]:
        """The operand kinds this operator takes."""
        if self in CHANNEL_OPERATORS:
            return ("channel",)
        if self in MOVING_OPERATORS:
            return ("value",)
        return ("value", "series")


_OPERATOR_TEXT: dict[Operator, str] = {
    Operator.CROSSING: "crossing",
    Operator.CROSSING_UP: "crossing up",
    Operator.CROSSING_DOWN: "crossing down",
    Operator.GREATER_THAN: "greater than",
    Operator.LESS_THAN: "less than",
    Operator.ENTERING_CHANNEL: "entering channel",
    Operator.EXITING_CHANNEL: "exiting channel",
    Operator.INSIDE_CHANNEL: "inside channel",
    Operator.OUTSIDE_CHANNEL: "outside channel",
    Operator.MOVING_UP: "moving up",
    Operator.MOVING_DOWN: "moving down",
    Operator.MOVING_UP_PCT: "moving up %",
    Operator.MOVING_DOWN_PCT: "moving down %",
}
#: Operators whose operand is a channel (low, high).
CHANNEL_OPERATORS = frozenset(
    {
        Operator.ENTERING_CHANNEL,
        Operator.EXITING_CHANNEL,
        Operator.INSIDE_CHANNEL,
        Operator.OUTSIDE_CHANNEL,
    }
)
#: Operators that take an amount and ``bars`` N.
MOVING_OPERATORS = frozenset(
    {Operator.MOVING_UP, Operator.MOVING_DOWN, Operator.MOVING_UP_PCT, Operator.MOVING_DOWN_PCT}
)


class Frequency(StrEnum):
    """How often a rule may fire (see :mod:`binmon.alerts.engine`)."""

    ONCE = "once"
    ONCE_PER_BAR = "once_per_bar"
    ONCE_PER_BAR_CLOSE = "once_per_bar_close"
    EVERY_TIME = "every_time"

    @property
    def text(self) -> str:
        """Human text for the panel (``"once per bar close"``)."""
        return self.value.replace("_", " ")


# ---------------------------------------------------------------- the values


@dataclass(frozen=True, slots=True)
class Subject:
    """A series: ``price`` (field close/high/low), ``volume`` (field volume) or ``indicator``
    (field = one output name of ``indicator``, e.g. ``real``, ``macd``, ``upperband``)."""

    kind: SubjectKind = "price"
    field: str = "close"
    indicator: IndicatorSpec | None = None

    @classmethod
    def price(cls, field: str = "close") -> Subject:
        """The price: ``close`` (the last price on a forming bar), ``high`` or ``low``."""
        return cls("price", field)

    @classmethod
    def volume(cls) -> Subject:
        """The bar's base-asset volume."""
        return cls("volume", "volume")

    @classmethod
    def of_indicator(cls, spec: IndicatorSpec, output: str | None = None) -> Subject:
        """Output ``output`` of ``spec`` (default: its first output)."""
        if output is None:
            try:
                output = function_info(spec.function).output_names[0]
            except (KeyError, IndexError):
                output = "real"  # validate_rule reports the unknown function
        return cls("indicator", output, spec)

    @property
    def key(self) -> tuple[Any, ...]:
        """What the values depend on: equal keys, equal series (ids and styles aside)."""
        if self.indicator is not None:
            return ("indicator", self.indicator.compute_key, self.field)
        return (self.kind, self.field)

    def label(self) -> str:
        """UI text: ``close``, ``volume``, ``RSI(14)``, ``BBANDS(20, 2, 2).upperband``."""
        if self.kind != "indicator" or self.indicator is None:
            return self.field
        spec = self.indicator
        params = ", ".join(format_number(float(v)) for v in _shown_params(spec))
        head = f"{spec.function}({params})" if params else spec.function
        if spec.source != "close":
            head = f"{head} on {spec.source}"
        outputs = list(spec.styles)
        single = outputs == [self.field] or (not outputs and self.field == "real")
        return head if single else f"{head}.{self.field}"


def _shown_params(spec: IndicatorSpec) -> list[int | float]:
    """The parameter values a label shows: MA-type codes left at their default are omitted
    (``BBANDS(20, 2, 2)``, not ``BBANDS(20, 2, 2, 0)``)."""
    try:
        infos = {p.name: p for p in function_info(spec.function).params}
    except KeyError:
        return list(spec.params.values())
    return [
        v
        for k, v in spec.params.items()
        if not (k in infos and infos[k].kind == "matype" and v == infos[k].default)
    ]


@dataclass(frozen=True, slots=True)
class Operand:
    """What the subject is compared with: ``value`` (a number; the amount of ``moving_*``),
    ``channel`` (``low`` <= ``high``) or ``series`` (another :class:`Subject`)."""

    kind: OperandKind = "value"
    value: float | None = None
    low: float | None = None
    high: float | None = None
    subject: Subject | None = None

    @classmethod
    def of_value(cls, value: float) -> Operand:
        """A fixed level (or the amount of a ``moving_*`` operator)."""
        return cls("value", value=float(value))

    @classmethod
    def of_channel(cls, low: float, high: float) -> Operand:
        """A channel between two levels (bounds inclusive)."""
        return cls("channel", low=float(low), high=float(high))

    @classmethod
    def of_series(cls, subject: Subject) -> Operand:
        """Another series, compared bar by bar (e.g. SMA(50) crossing up SMA(200))."""
        return cls("series", subject=subject)

    def label(self) -> str:
        """UI text: ``19,250``, ``30 – 70``, ``SMA(200)``."""
        if self.kind == "channel":
            return f"{format_number(self.low)} – {format_number(self.high)}"
        if self.kind == "series" and self.subject is not None:
            return self.subject.label()
        return format_number(self.value)


@dataclass(frozen=True, slots=True)
class Condition:
    """``subject operator operand``; ``bars`` is the N of ``moving_*`` (1 for the others)."""

    subject: Subject
    operator: Operator
    operand: Operand
    bars: int = 1


@dataclass(frozen=True, slots=True)
class AlertRule:
    """One alert. ``expires_ms`` None never expires; ``message`` is a template (see
    :func:`format_message`; empty: the default text); ``min_interval_s`` spaces the fires of
    ``every_time`` rules; ``name`` is optional (the panel shows :func:`describe` without)."""

    id: str
    symbol: str
    interval: str
    condition: Condition
    frequency: Frequency = Frequency.ONCE
    min_interval_s: float = 0.0
    expires_ms: int | None = None
    message: str = ""
    enabled: bool = True
    name: str = ""
    created_ms: int = field(default_factory=lambda: int(time.time() * 1000))

    @property
    def stream_key(self) -> tuple[str, str]:
        """``(symbol, interval)`` this rule needs."""
        return (self.symbol, self.interval)


def new_rule_id() -> str:
    """A fresh random rule id (``alert-`` + 12 hex digits)."""
    return f"alert-{uuid.uuid4().hex[:12]}"


def format_number(x: float | None) -> str:
    """A number for people: thousands separators, no float noise, no exponent.

    ``19250.0`` -> ``19,250``; ``19250.5`` -> ``19,250.5``; ``6.38e-06`` -> ``0.00000638``;
    ``0.0014375060699999998`` (a computed value) -> ``0.00143750607``: 15 significant digits, past
    which a float's digits are arithmetic noise, not the market's.
    """
    if x is None:
        return "?"
    if not math.isfinite(x):
        return str(x)
    d = Decimal(format(float(x), ".15g"))
    text = format(d, ",f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text
