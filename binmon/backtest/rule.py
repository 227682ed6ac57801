"""The ``rule`` strategy: entry and exit conditions are alert-rule conditions. No Qt.

What you alert on you can backtest: the signal is exactly
:func:`binmon.alerts.evaluate.condition_series` of the two conditions, the same function the
alert engine's closed-bar evaluation is defined by. Entry fires -> buy (+1); exit fires ->
sell (-1; with ``long_short`` that also opens a short); both on one bar -> nothing.

Conditions travel in requests (and JSON) in the dict form of the alert rules' JSON
(``{"subject": ..., "operator": ..., "operand": ..., "bars": ...}``, as inside
``binmon.alerts.rules.rule_to_dict(rule)["condition"]``); :func:`condition_from_value`
accepts that dict or a ``Condition``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from binmon.alerts.evaluate import condition_series, subject_series
from binmon.alerts.rules import (
    MOVING_OPERATORS,
    AlertRule,
    Condition,
    Operand,
    Operator,
    Subject,
    rule_from_dict,
    rule_to_dict,
)
from binmon.backtest.model import IndicatorLine, ParamInfo, StrategyInfo
from binmon.indicators.spec import default_spec

__all__ = ["INFO", "check", "condition_from_value", "condition_to_value", "signals"]


def _wrap(condition: Condition) -> AlertRule:
    # The alert rules' JSON reader/writer work on whole rules; a throwaway rule around the
    # condition reuses them (and their validation) instead of a second format.
    return AlertRule(id="backtest", symbol="BACKTEST", interval="1m", condition=condition, created_ms=0)


def condition_to_value(condition: Condition) -> dict[str, Any]:
    """The JSON-safe dict form of ``condition`` (the ``condition`` of the alert rule JSON)."""
    return dict(rule_to_dict(_wrap(condition))["condition"])


def condition_from_value(value: Condition | Mapping[str, Any], what: str = "condition") -> Condition:
    """A validated :class:`Condition` from a Condition or its dict form; ValueError (one line) otherwise."""
    if isinstance(value, Condition):
        value = condition_to_value(value)  # round trip: validates it the same way
    if not isinstance(value, Mapping):
        raise ValueError(f"{what} must be a condition (got {type(value).__name__})")
    d = rule_to_dict(_wrap(_default_entry()))
    d["condition"] = dict(value)
    try:
        return rule_from_dict(d).condition
    except ValueError as exc:
        raise ValueError(f"{what}: {exc}") from None


def _rsi_subject() -> Subject:
    return Subject.of_indicator(default_spec("RSI", id="rsi"), "real")


def _default_entry() -> Condition:
    return Condition(_rsi_subject(), Operator.CROSSING_UP, Operand.of_value(30.0))


def _default_exit() -> Condition:
    return Condition(_rsi_subject(), Operator.CROSSING_DOWN, Operand.of_value(70.0))


INFO = StrategyInfo(
    "rule",
    "Alert rule conditions",
    "Buy when the entry condition fires at a bar's close, sell when the exit condition fires: the "
    "same conditions and semantics as alert rules (price, volume or any indicator, crossing, "
    "channels, moving by an amount).",
    (
        ParamInfo("entry", "condition", condition_to_value(_default_entry()), title="Entry condition"),
        ParamInfo("exit", "condition", condition_to_value(_default_exit()), title="Exit condition"),
    ),
)


def check(params: dict[str, Any]) -> None:
    """Validate both conditions and store their dict form back in ``params`` (JSON-safe requests)."""
    for name in ("entry", "exit"):
        params[name] = condition_to_value(condition_from_value(params[name], name))


def _lines(conditions: tuple[Condition, ...], candles: pd.DataFrame) -> list[IndicatorLine]:
    """One plot line per distinct indicator subject, with the levels its conditions compare with."""
    found: dict[tuple[Any, ...], tuple[Subject, list[float]]] = {}
    for cond in conditions:
        subjects = [cond.subject] + ([cond.operand.subject] if cond.operand.subject is not None else [])
        for s in subjects:
            if s.kind != "indicator" or s.indicator is None:
                continue
            guides = found.setdefault(s.key, (s, []))[1]
            o = cond.operand
            if (
                s is cond.subject
                and o.kind == "value"
                and o.value is not None
                and Operator(cond.operator) not in MOVING_OPERATORS
            ):
                guides.append(float(o.value))
            elif s is cond.subject and o.kind == "channel" and o.low is not None and o.high is not None:
                guides.extend((float(o.low), float(o.high)))
    out: list[IndicatorLine] = []
    for s, guides in found.values():
        assert s.indicator is not None
        pane = "price" if s.indicator.pane == "price" else "separate"
        label = s.label()
        values = subject_series(s, candles)
        uniq = tuple(sorted(set(guides))) if pane == "separate" else ()
        out.append(IndicatorLine(label, values, pane, label, uniq))  # type: ignore[arg-type]
    return out


def signals(candles: pd.DataFrame, params: dict[str, Any]) -> Any:
    """The rule strategy's :class:`~binmon.backtest.strategies.Prepared` on ``candles``."""
    from binmon.backtest.strategies import Prepared

    entry = condition_from_value(params["entry"], "entry")
    exit_ = condition_from_value(params["exit"], "exit")
    buy = condition_series(entry, candles)
    sell = condition_series(exit_, candles)
    lines = _lines((entry, exit_), candles)
    return Prepared(buy.astype(np.int8) - sell.astype(np.int8), tuple(lines))
