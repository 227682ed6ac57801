"""Alert rules as data: validation, the JSON round trip, message templates, panel text."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from binmon.alerts.rules import (
    AlertRule,
    Condition,
    Frequency,
    Operand,
    Operator,
    Subject,
    describe,
    format_message,
    format_number,
    new_rule_id,
    price_alert,
    rule_from_dict,
    rule_to_dict,
    validate_rule,
)
from binmon.indicators.spec import default_spec


def rsi_rule(**kw: Any) -> AlertRule:
    cond = Condition(
        Subject.of_indicator(default_spec("RSI", "ind-rsi")), Operator.CROSSING_UP, Operand.of_value(30)
    )
    base = AlertRule("alert-1", "BTCUSDT", "1m", cond, Frequency.ONCE_PER_BAR_CLOSE, created_ms=1)
    return replace(base, **kw)


def every_kind_of_rule() -> list[AlertRule]:
    sma50 = replace(default_spec("SMA", "a"), params={"timeperiod": 50})
    sma200 = replace(default_spec("SMA", "b"), params={"timeperiod": 200})
    bb = default_spec("BBANDS", "c")
    return [
        price_alert("BTCUSDT", "1m", 19250.0, last_price=19000.0, now_ms=5),
        rsi_rule(),
        rsi_rule(
            id="alert-2",
            condition=Condition(
                Subject.of_indicator(sma50),
                Operator.CROSSING_UP,
                Operand.of_series(Subject.of_indicator(sma200)),
            ),
            frequency=Frequency.EVERY_TIME,
            min_interval_s=30.0,
            expires_ms=1_900_000_000_000,
            message="{symbol} golden cross at {price}",
            enabled=False,
            name="golden",
        ),
        rsi_rule(
            id="alert-3",
            condition=Condition(
                Subject.of_indicator(bb, "upperband"), Operator.EXITING_CHANNEL, Operand.of_channel(1, 2)
            ),
        ),
        rsi_rule(
            id="alert-4",
            condition=Condition(Subject.volume(), Operator.MOVING_UP_PCT, Operand.of_value(50), bars=3),
        ),
        rsi_rule(
            id="alert-5",
            condition=Condition(Subject.price("low"), Operator.LESS_THAN, Operand.of_value(1e-8)),
        ),
    ]


@pytest.mark.parametrize("rule", every_kind_of_rule(), ids=lambda r: r.id)
def test_valid_rules_round_trip_through_json_text(rule: AlertRule) -> None:
    assert validate_rule(rule) == []
    text = json.dumps(rule_to_dict(rule))
    back = rule_from_dict(json.loads(text))
    assert back == rule
    assert rule_to_dict(back) == rule_to_dict(rule)


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"interval": "2m"}, "interval '2m' is unknown"),
        ({"symbol": "btc usdt"}, "symbol must be upper-case"),
        ({"id": " "}, "rule id must be a non-empty string"),
        ({"frequency": "sometimes"}, "frequency 'sometimes' is unknown"),
        ({"min_interval_s": -1.0}, "minimum interval"),
        ({"expires_ms": 0}, "expiry must be"),
        ({"message": "hi {nobody}"}, "unknown placeholder {nobody}"),
        (
            {"condition": Condition(Subject.price(), Operator.INSIDE_CHANNEL, Operand.of_channel(3, 2))},
            "channel: the lower bound 3 must be below the upper bound 2",
        ),
        (
            {"condition": Condition(Subject.price(), Operator.INSIDE_CHANNEL, Operand.of_value(3))},
            "inside channel needs a channel, not a value",
        ),
        (
            {"condition": Condition(Subject.price(), Operator.CROSSING, Operand.of_channel(1, 2))},
            "crossing needs a value or a series, not a channel",
        ),
        (
            {"condition": Condition(Subject.price(), Operator.MOVING_UP, Operand.of_value(1), bars=0)},
            "bars must be a whole number from 1 to",
        ),
        (
            {"condition": Condition(Subject.price(), Operator.MOVING_DOWN, Operand.of_value(-1), bars=2)},
            "moving down: the amount must be above 0",
        ),
        (
            {"condition": Condition(Subject.price(), Operator.GREATER_THAN, Operand.of_value(1), bars=5)},
            "bars applies to the moving operators only",
        ),
        (
            {"condition": Condition(Subject.price("open"), Operator.GREATER_THAN, Operand.of_value(1))},
            "price field must be one of close, high, low",
        ),
        (
            {
                "condition": Condition(
                    Subject("indicator", "nope", default_spec("RSI")), Operator.LESS_THAN, Operand.of_value(1)
                )
            },
            "RSI has no output 'nope'",
        ),
        (
            {"condition": Condition(Subject.price(), "sideways", Operand.of_value(1))},  # type: ignore[arg-type]
            "operator 'sideways' is unknown",
        ),
    ],
)
def test_validation_names_the_problem_in_one_line(change: dict[str, Any], fragment: str) -> None:
    problems = validate_rule(rsi_rule(**change))
    assert problems, change
    assert any(fragment in p for p in problems), problems
    assert all("\n" not in p for p in problems)


def test_bad_indicator_parameters_are_reported_from_the_indicator_module() -> None:
    bad = replace(default_spec("RSI"), params={"timeperiod": 0})
    problems = validate_rule(
        rsi_rule(condition=Condition(Subject.of_indicator(bad), Operator.LESS_THAN, Operand.of_value(1)))
    )
    assert problems == ["subject: RSI: timeperiod must be between 2 and 100000 (got 0)"]


@pytest.mark.parametrize(
    ("obj", "fragment"),
    [
        ([], "an alert rule must be a JSON object"),
        ({**rule_to_dict(rsi_rule()), "v": 99}, "format 99"),
        ({**rule_to_dict(rsi_rule()), "interval": "7m"}, "interval '7m' is unknown"),
        ({**rule_to_dict(rsi_rule()), "symbol": 5}, "symbol must be a str"),
        (
            {**rule_to_dict(rsi_rule()), "condition": {"operator": "up", "subject": {}, "operand": {}}},
            "operator 'up'",
        ),
        (
            {
                **rule_to_dict(rsi_rule()),
                "condition": {**rule_to_dict(rsi_rule())["condition"], "operand": {"kind": "x"}},
            },
            "operand kind must be value, channel or series",
        ),
        (
            {
                **rule_to_dict(rsi_rule()),
                "condition": {
                    **rule_to_dict(rsi_rule())["condition"],
                    "subject": {"kind": "indicator", "indicator": {"function": "NOPE"}},
                },
            },
            "unknown indicator function 'NOPE'",
        ),
    ],
)
def test_from_dict_raises_a_clear_value_error(obj: object, fragment: str) -> None:
    with pytest.raises(ValueError, match=None) as info:
        rule_from_dict(obj)
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


def test_from_dict_ignores_unknown_keys_and_fills_defaults() -> None:
    d = rule_to_dict(rsi_rule())
    for key in ("message", "enabled", "name", "min_interval_s", "expires_ms"):
        del d[key]
    d["future_field"] = {"x": 1}
    rule = rule_from_dict(d)
    assert rule == rsi_rule()


def test_labels_and_describe() -> None:
    macd = default_spec("MACD")
    assert Subject.of_indicator(default_spec("RSI")).label() == "RSI(14)"
    assert Subject.of_indicator(default_spec("BBANDS"), "upperband").label() == "BBANDS(20, 2, 2).upperband"
    assert Subject.of_indicator(macd, "macdsignal").label() == "MACD(12, 26, 9).macdsignal"
    assert Subject.price("high").label() == "high"
    assert describe(price_alert("BTCUSDT", "1m", 19250.0)) == "BTCUSDT 1m: close crossing 19,250"
    assert describe(rsi_rule()) == "BTCUSDT 1m: RSI(14) crossing up 30"
    moving = rsi_rule(
        condition=Condition(Subject.price(), Operator.MOVING_DOWN_PCT, Operand.of_value(2.5), bars=3)
    )
    assert describe(moving) == "BTCUSDT 1m: close moving down 2.5% in 3 bars"
    chan = rsi_rule(
        condition=Condition(Subject.volume(), Operator.ENTERING_CHANNEL, Operand.of_channel(10, 20.5))
    )
    assert describe(chan) == "BTCUSDT 1m: volume entering channel 10 – 20.5"


def test_price_alert_names_the_direction_but_uses_crossing() -> None:
    above = price_alert("btcusdt", "5m", 19250.0, last_price=19000.0)
    below = price_alert("BTCUSDT", "5m", 18000.0, last_price=19000.0)
    assert above.symbol == "BTCUSDT" and above.condition.operator is Operator.CROSSING
    assert above.name == "BTCUSDT crossing up 19,250"
    assert below.name == "BTCUSDT crossing down 18,000"
    assert above.id != below.id and above.id.startswith("alert-") and new_rule_id() != new_rule_id()
    assert above.frequency is Frequency.ONCE


def test_numbers_are_formatted_for_people() -> None:
    assert format_number(19250.0) == "19,250"
    assert format_number(19250.25) == "19,250.25"
    assert format_number(0.00000638) == "0.00000638"
    assert format_number(0.1 + 0.2) == "0.3"  # float noise is not shown to users
    assert format_number(0.0014375060699999998) == "0.00143750607"  # a computed XRPETH level
    assert format_number(65432.10987654321) == "65,432.1098765432"  # 15 significant digits kept
    assert format_number(-1234567.5) == "-1,234,567.5"
    assert format_number(None) == "?"


def test_message_templates() -> None:
    rule = rsi_rule(message="{symbol} {interval} RSI {value} at {price} ({rule}) {time} {unknown} {")
    text = format_message(rule, price=19251.5, value=30.25, bar_time_ms=1_717_372_800_000)
    assert text == "BTCUSDT 1m RSI 30.25 at 19,251.5 (RSI(14) crossing up 30) 2024-06-03 00:00 {unknown} {"
    named = replace(rule, message="", name="oversold")
    assert format_message(named, price=1.0, value=2.0) == "BTCUSDT 1m: oversold (price 1)"
    assert (
        format_message(rsi_rule(), price=2.5, value=31.0) == "BTCUSDT 1m: RSI(14) crossing up 30 (price 2.5)"
    )
