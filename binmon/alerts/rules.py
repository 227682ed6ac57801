"""Alert rules as data: what is watched, the condition, how often it fires. No Qt.

A rule is a plain frozen value (:class:`AlertRule`) with a versioned JSON form
(:func:`rule_to_dict` / :func:`rule_from_dict`). The panel builds rules, the live engine
(:mod:`binmon.alerts.engine`) and the backtest's rule strategy evaluate them with the same
semantics (:mod:`binmon.alerts.evaluate`, whose docstring is the reference).

* :class:`Subject` - the series watched: price (close/high/low), volume, or one output of an
  indicator (an :class:`~binmon.indicators.spec.IndicatorSpec`, as on the chart).
* :class:`Operand` - a value, a channel (low, high) or another series (a Subject).
* :class:`Condition` - subject, :class:`Operator`, operand and ``bars`` (N of ``moving_*``).
* :class:`Frequency` - once, once per bar, once per bar close, every time (min interval).

Validation messages are one line, fit for the user (``"interval '2m' is unknown ..."``).
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from binmon.alerts.model import (
    CHANNEL_OPERATORS,
    MOVING_OPERATORS,
    PRICE_FIELDS,
    AlertRule,
    Condition,
    Frequency,
    Operand,
    OperandKind,
    Operator,
    Subject,
    SubjectKind,
    format_number,
    new_rule_id,
)
from binmon.core.intervals import INTERVALS
from binmon.indicators.spec import IndicatorSpec, SpecError, validate
from binmon.indicators.spec import from_dict as spec_from_dict
from binmon.indicators.spec import to_dict as spec_to_dict

__all__ = [
    "CHANNEL_OPERATORS",
    "DEFAULT_MESSAGE",
    "FORMAT_VERSION",
    "MOVING_OPERATORS",
    "PLACEHOLDERS",
    "PRICE_FIELDS",
    "AlertRule",
    "Condition",
    "Frequency",
    "Operand",
    "OperandKind",
    "Operator",
    "Subject",
    "SubjectKind",
    "describe",
    "describe_condition",
    "format_message",
    "format_number",
    "new_rule_id",
    "price_alert",
    "rule_from_dict",
    "rule_to_dict",
    "validate_rule",
]

#: Version of the JSON form written by :func:`rule_to_dict` (readers accept this and older).
FORMAT_VERSION = 1
_SYMBOL_RE = re.compile(r"^[A-Z0-9]{2,30}$")
_PLACEHOLDER_RE = re.compile(r"\{(\w+)\}")
#: Placeholders a message template may use.
PLACEHOLDERS: tuple[str, ...] = ("symbol", "interval", "price", "value", "rule", "time")
_MAX_BARS = 10_000
_MAX_MESSAGE = 1_000


def price_alert(
    symbol: str,
    interval: str,
    price: float,
    *,
    last_price: float | None = None,
    frequency: Frequency = Frequency.ONCE,
    now_ms: int | None = None,
) -> AlertRule:
    """The chart's quick "Add alert at 19,250.00": close crossing ``price``, firing once.

    ``last_price`` (the price when the alert is made) only goes into the default name,
    ``"crossing up 19,250"`` when the level is above it, ``"crossing down"`` below; the
    operator stays ``crossing`` (as TradingView's price alert) so a gap over the level fires too.
    """
    name = ""
    if last_price is not None and math.isfinite(last_price) and last_price != price:
        direction = "up" if price > last_price else "down"
        name = f"{symbol.upper()} crossing {direction} {format_number(price)}"
    return AlertRule(
        id=new_rule_id(),
        symbol=symbol.upper(),
        interval=interval,
        condition=Condition(Subject.price("close"), Operator.CROSSING, Operand.of_value(price)),
        frequency=frequency,
        name=name,
        created_ms=now_ms if now_ms is not None else int(time.time() * 1000),
    )


# ---------------------------------------------------------------- validation


def validate_rule(rule: AlertRule) -> list[str]:
    """Every problem of ``rule`` as a one-line message; ``[]`` when it is valid."""
    errors: list[str] = []
    if not isinstance(rule.id, str) or not rule.id.strip():
        errors.append(f"rule id must be a non-empty string (got {rule.id!r})")
    if not isinstance(rule.symbol, str) or not _SYMBOL_RE.match(rule.symbol):
        errors.append(f"symbol must be upper-case letters and digits, like BTCUSDT (got {rule.symbol!r})")
    if rule.interval not in INTERVALS:
        errors.append(f"interval {rule.interval!r} is unknown; use one of {', '.join(INTERVALS)}")
    errors.extend(_condition_errors(rule.condition))
    if not _is_enum(rule.frequency, Frequency):
        errors.append(f"frequency {rule.frequency!r} is unknown; use one of {', '.join(Frequency)}")
    if not _finite(rule.min_interval_s) or rule.min_interval_s < 0:
        errors.append(f"minimum interval must be a number of seconds >= 0 (got {rule.min_interval_s!r})")
    if rule.expires_ms is not None and (
        isinstance(rule.expires_ms, bool) or not isinstance(rule.expires_ms, int) or rule.expires_ms <= 0
    ):
        errors.append(f"expiry must be a time in ms since the epoch or none (got {rule.expires_ms!r})")
    if not isinstance(rule.message, str) or len(rule.message) > _MAX_MESSAGE:
        errors.append(f"message must be text of at most {_MAX_MESSAGE} characters")
    else:
        unknown = [p for p in _PLACEHOLDER_RE.findall(rule.message) if p not in PLACEHOLDERS]
        if unknown:
            known = ", ".join("{" + p + "}" for p in PLACEHOLDERS)
            errors.append(f"message: unknown placeholder {{{unknown[0]}}} (use {known})")
    if not isinstance(rule.enabled, bool):
        errors.append(f"enabled must be true or false (got {rule.enabled!r})")
    if not isinstance(rule.name, str) or len(rule.name) > 200:
        errors.append("name must be text of at most 200 characters")
    if isinstance(rule.created_ms, bool) or not isinstance(rule.created_ms, int):
        errors.append(f"created time must be ms since the epoch (got {rule.created_ms!r})")
    return errors


def _condition_errors(cond: Condition) -> list[str]:
    if not isinstance(cond, Condition):
        return [f"condition must be a Condition (got {type(cond).__name__})"]
    errors = _subject_errors(cond.subject, "subject")
    if not _is_enum(cond.operator, Operator):
        errors.append(f"operator {cond.operator!r} is unknown; use one of {', '.join(Operator)}")
        return errors
    op = Operator(cond.operator)
    opnd = cond.operand
    if not isinstance(opnd, Operand) or opnd.kind not in ("value", "channel", "series"):
        errors.append(f"operand must be a value, a channel or a series (got {opnd!r})")
        return errors
    if opnd.kind not in op.operand_kinds:
        wants = " or ".join(f"a {k}" for k in op.operand_kinds)
        errors.append(f"{op.text} needs {wants}, not a {opnd.kind}")
    elif opnd.kind == "value":
        if not _finite(opnd.value):
            errors.append(f"the level must be a finite number (got {opnd.value!r})")
        elif op in MOVING_OPERATORS and opnd.value is not None and opnd.value <= 0:
            errors.append(f"{op.text}: the amount must be above 0 (got {format_number(opnd.value)})")
    elif opnd.kind == "channel":
        if not _finite(opnd.low) or not _finite(opnd.high):
            errors.append(f"channel bounds must be finite numbers (got {opnd.low!r}, {opnd.high!r})")
        elif opnd.low is not None and opnd.high is not None and opnd.low >= opnd.high:
            errors.append(
                f"channel: the lower bound {format_number(opnd.low)} must be below "
                f"the upper bound {format_number(opnd.high)}"
            )
    elif opnd.subject is None:
        errors.append("a series operand needs a subject")
    else:
        errors.extend(_subject_errors(opnd.subject, "operand"))
    bars = cond.bars
    if isinstance(bars, bool) or not isinstance(bars, int) or not 1 <= bars <= _MAX_BARS:
        errors.append(f"bars must be a whole number from 1 to {_MAX_BARS} (got {bars!r})")
    elif bars != 1 and op not in MOVING_OPERATORS:
        errors.append(f"bars applies to the moving operators only, not to {op.text} (got {bars})")
    return errors


def _subject_errors(subject: object, what: str) -> list[str]:
    if not isinstance(subject, Subject):
        return [f"{what} must be a Subject (got {type(subject).__name__})"]
    if subject.kind == "price":
        if subject.field not in PRICE_FIELDS:
            return [f"{what}: price field must be one of {', '.join(PRICE_FIELDS)} (got {subject.field!r})"]
        return []
    if subject.kind == "volume":
        return [] if subject.field == "volume" else [f"{what}: volume field must be 'volume'"]
    if subject.kind != "indicator":
        return [f"{what}: kind must be price, volume or indicator (got {subject.kind!r})"]
    if not isinstance(subject.indicator, IndicatorSpec):
        return [f"{what}: an indicator subject needs an indicator"]
    try:
        spec = validate(subject.indicator)
    except SpecError as exc:
        return [f"{what}: {exc}"]
    if subject.field not in spec.styles:
        outputs = ", ".join(spec.styles)
        return [f"{what}: {spec.function} has no output {subject.field!r} (outputs: {outputs})"]
    return []


def _finite(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _is_enum(v: object, enum: type[StrEnum]) -> bool:
    return isinstance(v, str) and v in enum._value2member_map_


# ---------------------------------------------------------------- text


def describe(rule: AlertRule) -> str:
    """One line for the panel: ``"BTCUSDT 1m: close crossing 19,250"``.

    Moving operators read ``"close moving up 5% in 3 bars"``; channels ``"RSI(14) entering
    channel 30 – 70"``.
    """
    return f"{rule.symbol} {rule.interval}: {describe_condition(rule.condition)}"


def describe_condition(cond: Condition) -> str:
    """The condition alone: ``"close crossing 19,250"``, ``"SMA(50) crossing up SMA(200)"``."""
    op = Operator(cond.operator)
    subject = cond.subject.label()
    if op in MOVING_OPERATORS:
        amount = cond.operand.label()
        if op in (Operator.MOVING_UP_PCT, Operator.MOVING_DOWN_PCT):
            word = "up" if op is Operator.MOVING_UP_PCT else "down"
            amount = f"{word} {amount}%"
        else:
            amount = f"{'up' if op is Operator.MOVING_UP else 'down'} {amount}"
        span = "1 bar" if cond.bars == 1 else f"{cond.bars} bars"
        return f"{subject} moving {amount} in {span}"
    return f"{subject} {op.text} {cond.operand.label()}"


#: The text of a fire when the rule's template is empty.
DEFAULT_MESSAGE = "{symbol} {interval}: {rule} (price {price})"


def format_message(
    rule: AlertRule,
    *,
    price: float | None,
    value: float | None,
    bar_time_ms: int | None = None,
    fired_ms: int | None = None,
) -> str:
    """The rule's message with ``{symbol} {interval} {price} {value} {rule} {time}`` filled in.

    ``{rule}`` is the rule's name, or its condition text when unnamed; ``{time}`` the UTC
    bar time (``2026-11-24 14:05``; the fire time when no bar time is given). Unknown
    placeholders and stray braces are left as typed (a template is never an error at fire
    time). An empty template gives :data:`DEFAULT_MESSAGE`.
    """
    when = bar_time_ms if bar_time_ms is not None else fired_ms
    stamp = time.strftime("%Y-%m-%d %H:%M", time.gmtime(when / 1000)) if when is not None else "?"
    values = {
        "symbol": rule.symbol,
        "interval": rule.interval,
        "price": format_number(price),
        "value": format_number(value),
        "rule": rule.name or describe_condition(rule.condition),
        "time": stamp,
    }
    template = rule.message.strip() or DEFAULT_MESSAGE
    return _PLACEHOLDER_RE.sub(lambda m: values.get(m.group(1), m.group(0)), template)


# ---------------------------------------------------------------- JSON form


def rule_to_dict(rule: AlertRule) -> dict[str, Any]:
    """The JSON-safe form of ``rule`` (plain dicts, lists, str, numbers, bools, None), versioned ``v``."""
    return {
        "v": FORMAT_VERSION,
        "id": rule.id,
        "symbol": rule.symbol,
        "interval": rule.interval,
        "name": rule.name,
        "condition": {
            "subject": _subject_to_dict(rule.condition.subject),
            "operator": str(rule.condition.operator),
            "operand": _operand_to_dict(rule.condition.operand),
            "bars": rule.condition.bars,
        },
        "frequency": str(rule.frequency),
        "min_interval_s": rule.min_interval_s,
        "expires_ms": rule.expires_ms,
        "message": rule.message,
        "enabled": rule.enabled,
        "created_ms": rule.created_ms,
    }


def _subject_to_dict(s: Subject) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": s.kind, "field": s.field}
    if s.indicator is not None:
        out["indicator"] = spec_to_dict(s.indicator)
    return out


def _operand_to_dict(o: Operand) -> dict[str, Any]:
    if o.kind == "channel":
        return {"kind": "channel", "low": o.low, "high": o.high}
    if o.kind == "series":
        return {"kind": "series", "subject": _subject_to_dict(o.subject) if o.subject else None}
    return {"kind": "value", "value": o.value}


def rule_from_dict(obj: object) -> AlertRule:
    """A validated rule from its JSON form; ValueError with a one-line message otherwise.

    Unknown keys are ignored (newer minor additions); a format version above
    :data:`FORMAT_VERSION`, a missing or mistyped field, or a rule :func:`validate_rule`
    rejects raise. Indicator specs are read with the indicator module's reader (validated,
    normalised).
    """
    d = _mapping(obj, "an alert rule")
    version = d.get("v", 1)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ValueError(f"alert rule format version must be a positive integer (got {version!r})")
    if version > FORMAT_VERSION:
        raise ValueError(f"alert rule saved in format {version}; this binmon reads up to {FORMAT_VERSION}")
    c = _mapping(d.get("condition"), "condition")
    operator = c.get("operator")
    if not _is_enum(operator, Operator):
        raise ValueError(f"operator {operator!r} is unknown; use one of {', '.join(Operator)}")
    frequency = d.get("frequency", Frequency.ONCE.value)
    if not _is_enum(frequency, Frequency):
        raise ValueError(f"frequency {frequency!r} is unknown; use one of {', '.join(Frequency)}")
    expires = d.get("expires_ms")
    rule = AlertRule(
        id=_get(d, "id", str),
        symbol=_get(d, "symbol", str),
        interval=_get(d, "interval", str),
        condition=Condition(
            subject=_subject_from(c.get("subject"), "subject"),
            operator=Operator(str(operator)),
            operand=_operand_from(c.get("operand")),
            bars=c.get("bars", 1),
        ),
        frequency=Frequency(str(frequency)),
        min_interval_s=_number(d.get("min_interval_s", 0.0), "min_interval_s"),
        expires_ms=expires,
        message=d.get("message", "") or "",
        enabled=d.get("enabled", True),
        name=d.get("name", "") or "",
        created_ms=d.get("created_ms", 0),
    )
    errors = validate_rule(rule)
    if errors:
        raise ValueError(errors[0] if len(errors) == 1 else f"{errors[0]} (and {len(errors) - 1} more)")
    return rule


def _mapping(obj: object, what: str) -> Mapping[str, Any]:
    if not isinstance(obj, Mapping):
        raise ValueError(f"{what} must be a JSON object (got {type(obj).__name__})")
    return obj


def _get(d: Mapping[str, Any], key: str, kind: type) -> Any:
    v = d.get(key)
    if not isinstance(v, kind):
        raise ValueError(f"alert rule: {key} must be a {kind.__name__} (got {v!r})")
    return v


def _number(v: object, what: str) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise ValueError(f"{what} must be a number (got {v!r})")
    return float(v)


def _subject_from(obj: object, what: str) -> Subject:
    d = _mapping(obj, what)
    kind = d.get("kind", "price")
    field_ = d.get("field", "close" if kind == "price" else "volume" if kind == "volume" else "real")
    if not isinstance(field_, str):
        raise ValueError(f"{what}: field must be a string (got {field_!r})")
    if kind == "indicator":
        try:
            spec = spec_from_dict(d.get("indicator"))
        except SpecError as exc:
            raise ValueError(f"{what}: {exc}") from None
        return Subject("indicator", field_, spec)
    if kind not in ("price", "volume"):
        raise ValueError(f"{what}: kind must be price, volume or indicator (got {kind!r})")
    return Subject(kind, field_)


def _operand_from(obj: object) -> Operand:
    d = _mapping(obj, "operand")
    kind = d.get("kind", "value")
    if kind == "value":
        return Operand("value", value=_number(d.get("value"), "operand value"))
    if kind == "channel":
        return Operand(
            "channel", low=_number(d.get("low"), "channel low"), high=_number(d.get("high"), "channel high")
        )
    if kind == "series":
        return Operand("series", subject=_subject_from(d.get("subject"), "operand"))
    raise ValueError(f"operand kind must be value, channel or series (got {kind!r})")
