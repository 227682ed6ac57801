"""IndicatorSpec: validation messages, JSON round trip, sets and templates."""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any

import pytest
import talib
from hypothesis import given, settings
from hypothesis import strategies as st

from binmon.indicators.hints import PALETTE
from binmon.indicators.spec import (
    FORMAT_VERSION,
    SET_FORMAT,
    FrozenMap,
    IndicatorSpec,
    OutputStyle,
    SpecError,
    default_spec,
    dump_set,
    from_dict,
    load_set,
    new_id,
    to_dict,
    validate,
    with_new_ids,
)


def _rsi(**changes: Any) -> IndicatorSpec:
    return dataclasses.replace(default_spec("RSI", id="rsi-1"), **changes)


def _error(spec: IndicatorSpec) -> str:
    with pytest.raises(SpecError) as info:
        validate(spec)
    message = str(info.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize("name", sorted(talib.get_functions()))
def test_default_spec_validates_and_round_trips_through_json(name: str) -> None:
    spec = default_spec(name, id=f"id-{name}")
    assert validate(spec) == spec
    text = json.dumps(to_dict(spec))
    back = from_dict(json.loads(text))
    assert back == spec and hash(back) == hash(spec)
    assert set(spec.styles) == set(spec.styles.keys())


def test_default_spec_contents() -> None:
    rsi = default_spec("rsi", id="a")
    assert rsi.function == "RSI" and dict(rsi.params) == {"timeperiod": 14}
    assert rsi.pane == "own" and rsi.guides == (30.0, 70.0) and rsi.source == "close"
    assert rsi.styles["real"] == OutputStyle(PALETTE[0], 1, "line", True)
    assert default_spec("SMA", id="b").pane == "price"
    macd = default_spec("MACD", id="c", used_colors=[PALETTE[0].lower()])
    assert [s.color for s in macd.styles.values()] == list(PALETTE[1:4])
    assert macd.styles["macdhist"].kind == "histogram"
    assert default_spec("STOCH", id="d").styles["slowk"].kind == "line"
    assert default_spec("CDLDOJI", id="e").styles["integer"].kind == "markers"
    assert not default_spec("SUPERTREND", id="f").styles["trend"].visible
    assert default_spec("SMA").id.startswith("ind-") and new_id() != new_id()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"params": {"timeperiod": 0}}, "RSI: timeperiod must be between 2 and 100000 (got 0)"),
        ({"params": {"timeperiod": -5}}, "RSI: timeperiod must be between 2 and 100000 (got -5)"),
        ({"params": {"timeperiod": 100_001}}, "RSI: timeperiod must be between 2 and 100000 (got 100001)"),
        ({"params": {"timeperiod": 2.5}}, "RSI: timeperiod must be a whole number (got 2.5)"),
        ({"params": {"timeperiod": True}}, "RSI: timeperiod must be a number (got True)"),
        ({"params": {"timeperiod": "14"}}, "RSI: timeperiod must be a number (got '14')"),
        ({"params": {"timeperiod": math.nan}}, "RSI: timeperiod must be a finite number (got nan)"),
        ({"params": {"period": 14}}, "RSI: unknown parameter 'period' (parameters: timeperiod)"),
        (
            {"source": "hl3"},
            "RSI: source must be one of close, open, high, low, hl2, hlc3, ohlc4 (got 'hl3')",
        ),
        ({"pane": -1}, "RSI: pane must be 'price', 'own' or a number 1 to 64 (got -1)"),
        ({"pane": "left"}, "RSI: pane must be 'price', 'own' or a number 1 to 64 (got 'left')"),
        (
            {"styles": {"real": OutputStyle("red")}},
            "RSI: colour of real must be #rrggbb or #rrggbbaa (got 'red')",
        ),
        ({"styles": {"real": OutputStyle("#ff0000", 5)}}, "RSI: width of real must be 1 to 4 (got 5)"),
        ({"styles": {"real": OutputStyle("#ff0000", 0)}}, "RSI: width of real must be 1 to 4 (got 0)"),
        ({"styles": {"real": OutputStyle("#ff0000", 1, "area")}}, "RSI: style of real must be one of"),  # type: ignore[arg-type]
        ({"styles": {"rsi": OutputStyle("#ff0000")}}, "RSI: unknown output 'rsi' (outputs: real)"),
        ({"guides": (30.0, math.inf)}, "RSI: guide lines must be finite numbers (got inf)"),
        ({"visible": "yes"}, "RSI: visible must be true or false (got 'yes')"),
        ({"id": ""}, "indicator id must be a non-empty string (got '')"),
        ({"function": "NOPE"}, "unknown indicator function 'NOPE'"),
    ],
)
def test_validation_messages(changes: dict[str, Any], message: str) -> None:
    assert _error(_rsi(**changes)).startswith(message)


def test_validation_of_other_kinds() -> None:
    bb = default_spec("BBANDS", id="bb")
    assert _error(dataclasses.replace(bb, params={"matype": 99})) == (
        "BBANDS: matype must be an MA type code between 0 and 13 (got 99)"
    )
    assert _error(dataclasses.replace(default_spec("MAMA", id="m"), params={"fastlimit": 1.5})) == (
        "MAMA: fastlimit must be between 0.01 and 0.99 (got 1.5)"
    )
    assert _error(dataclasses.replace(default_spec("SAR", id="s"), params={"acceleration": -0.1})) == (
        "SAR: acceleration must be at least 0 (got -0.1)"
    )
    assert _error(dataclasses.replace(default_spec("STOCH", id="st"), source="hl2")) == (
        "STOCH: uses high, low, close; a price source does not apply (got 'hl2')"
    )
    assert _error(dataclasses.replace(default_spec("CDLDOJI", id="d"), params={"timeperiod": 3})) == (
        "CDLDOJI: unknown parameter 'timeperiod' (it has no parameters)"
    )
    # A constraint between parameters is TA-Lib's: caught by the dry run.
    mavp = dataclasses.replace(default_spec("MAVP", id="v"), params={"minperiod": 40, "maxperiod": 30})
    assert (
        _error(mavp)
        == "MAVP: TA-Lib rejects these parameters together (minperiod=40, maxperiod=30, matype=0)"
    )


def test_validate_normalises() -> None:
    spec = IndicatorSpec("x", "bbands", {"timeperiod": 10.0}, pane=0)
    valid = validate(spec)
    assert valid.function == "BBANDS" and valid.pane == "price"
    assert dict(valid.params) == {"timeperiod": 10, "nbdevup": 2.0, "nbdevdn": 2.0, "matype": 0}
    assert isinstance(valid.params["timeperiod"], int) and isinstance(valid.params["nbdevup"], float)
    assert set(valid.styles) == {"upperband", "middleband", "lowerband"}
    assert validate(_rsi(pane=3)).pane == 3
    assert validate(_rsi(source="hlc3")).source == "hlc3"
    assert validate(dataclasses.replace(default_spec("OBV", id="o"), source="hl2")).source == "hl2"


@settings(max_examples=300, deadline=None)
@given(
    value=st.one_of(
        st.integers(min_value=-(2**40), max_value=2**40),
        st.floats(allow_nan=True, allow_infinity=True),
        st.booleans(),
        st.none(),
        st.text(max_size=5),
    )
)
def test_any_parameter_value_is_accepted_or_rejected_with_a_message(value: Any) -> None:
    try:
        spec = validate(_rsi(params={"timeperiod": value}))
    except SpecError as exc:
        assert str(exc).startswith("RSI: timeperiod must be")
    else:
        assert 2 <= spec.params["timeperiod"] <= 100_000


def test_spec_is_immutable_and_hashable() -> None:
    spec = _rsi()
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.function = "EMA"  # type: ignore[misc]
    with pytest.raises(TypeError):
        spec.params["timeperiod"] = 3  # type: ignore[index]
    params = {"timeperiod": 14}
    built = IndicatorSpec("a", "RSI", params)
    params["timeperiod"] = 3
    assert built.params["timeperiod"] == 14
    assert {spec: 1}[_rsi()] == 1
    assert FrozenMap({"a": 1}) == {"a": 1} and hash(FrozenMap({"a": 1})) == hash(FrozenMap([("a", 1)]))
    assert _rsi(pane="price").compute_key == _rsi().compute_key != _rsi(source="hl2").compute_key


def test_from_dict_is_tolerant() -> None:
    base = to_dict(default_spec("MACD", id="m"))
    extra = {**base, "future_field": {"x": 1}, "function": "macd"}
    extra["styles"] = {**base["styles"], "gone_output": {"color": "#000000"}, "macd": {"color": "#112233"}}
    spec = from_dict(extra)
    assert spec.function == "MACD" and spec.styles["macd"].color == "#112233"
    assert spec.styles["macd"].kind == "line"  # missing style fields take the defaults
    minimal = from_dict({"function": "EMA"}, make_id=lambda: "fixed")
    assert minimal.id == "fixed" and dict(minimal.params) == {"timeperiod": 30} and minimal.pane == "price"


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        ([], "an indicator must be a JSON object (got list)"),
        ({"function": "NOPE"}, "unknown indicator function 'NOPE'"),
        ({"id": "a"}, "indicator function must be a TA-Lib function name (got None)"),
        (
            {"function": "RSI", "v": FORMAT_VERSION + 1},
            "indicator saved in format 2; this binmon reads up to 1",
        ),
        ({"function": "RSI", "v": "1"}, "indicator format version must be a positive integer (got '1')"),
        ({"function": "RSI", "params": [14]}, "RSI: params must be an object (got list)"),
        (
            {"function": "RSI", "params": {"timeperiod": 0}},
            "RSI: timeperiod must be between 2 and 100000 (got 0)",
        ),
        ({"function": "RSI", "styles": {"real": "red"}}, "RSI: style of real must be an object (got str)"),
        ({"function": "RSI", "guides": 30}, "RSI: guides must be a list (got int)"),
    ],
)
def test_from_dict_errors(obj: Any, message: str) -> None:
    with pytest.raises(SpecError) as info:
        from_dict(obj)
    assert str(info.value) == message


def test_sets_round_trip_and_keep_good_entries() -> None:
    specs = [default_spec("SMA", id="a"), default_spec("RSI", id="b"), default_spec("MACD", id="c")]
    saved = json.loads(json.dumps(dump_set(specs, name="my template")))
    assert saved["format"] == SET_FORMAT and saved["v"] == FORMAT_VERSION and saved["name"] == "my template"
    assert load_set(saved) == specs
    assert load_set(saved["indicators"]) == specs  # a bare list is a set too
    saved["indicators"].insert(1, {"function": "NOPE", "id": "x"})
    saved["indicators"].append({**saved["indicators"][0]})  # duplicate id "a"
    saved["indicators"].append("junk")
    errors: list[str] = []
    assert load_set(saved, errors) == specs
    assert errors == [
        "indicator 2: unknown indicator function 'NOPE'",
        "indicator 5: duplicate id 'a' (kept the first)",
        "indicator 6: an indicator must be a JSON object (got str)",
    ]
    assert load_set(saved) == specs  # errors are optional (logged)


def test_load_set_rejects_what_is_not_a_set() -> None:
    with pytest.raises(SpecError, match="not an indicator set"):
        load_set({"format": "something-else"})
    with pytest.raises(SpecError, match="format 2"):
        load_set({"format": SET_FORMAT, "v": 2, "indicators": []})
    with pytest.raises(SpecError, match="list of indicators"):
        load_set({"indicators": {}})


def test_template_applied_to_another_chart_gets_fresh_ids() -> None:
    specs = [default_spec("SMA", id="a"), default_spec("RSI", id="b")]
    ids = iter(["n1", "n2"])
    moved = with_new_ids(specs, lambda: next(ids))
    assert [s.id for s in moved] == ["n1", "n2"]
    assert [dataclasses.replace(s, id="") for s in moved] == [dataclasses.replace(s, id="") for s in specs]
