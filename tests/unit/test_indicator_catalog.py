"""The indicator catalogue matches TA-Lib's own metadata and behaviour; hints and search."""

from __future__ import annotations

import math
from typing import Any, cast

import pytest
import talib
from talib import abstract

from binmon.indicators.catalog import (
    STYLE_KINDS,
    catalog,
    function_info,
    groups,
    lookback,
    ma_type_name,
    search,
)
from binmon.indicators.hints import PALETTE, hint_for
from binmon.indicators.talib_meta import TalibParamError, call_talib, flat_inputs, probe_inputs


def _abstract(name: str) -> Any:
    return cast(Any, abstract).Function(name)  # TA-Lib's stubs omit Function


def test_every_talib_function_is_catalogued_in_its_group() -> None:
    cat = catalog()
    assert set(cat) == set(talib.get_functions())
    assert len(cat) >= 150
    for group, names in talib.get_function_groups().items():
        for name in names:
            assert cat[name].group == group
    assert dict(groups()) == {g: tuple(n) for g, n in talib.get_function_groups().items()}


@pytest.mark.parametrize("name", sorted(talib.get_functions()))
def test_entry_mirrors_talib_abstract(name: str) -> None:
    info = function_info(name)
    fn = _abstract(name)
    assert info.display_name == fn.info["display_name"]
    assert info.defaults() == dict(fn.parameters)
    assert info.output_names == tuple(fn.output_names)
    flat = [s for v in fn.input_names.values() for s in ([v] if isinstance(v, str) else v)]
    assert list(info.inputs) == flat
    assert all(o.style in STYLE_KINDS for o in info.outputs)
    for p in info.params:
        assert p.kind in ("int", "float", "matype")
        assert p.display_name
        if p.minimum is not None:
            assert p.minimum <= p.default
        if p.maximum is not None:
            assert p.default <= p.maximum


def test_lookup_is_case_insensitive_and_unknown_names_fail() -> None:
    assert function_info("rsi").name == "RSI"
    with pytest.raises(KeyError, match="NOPE"):
        function_info("NOPE")


def test_known_ranges_and_kinds() -> None:
    rsi = function_info("RSI").param("timeperiod")
    assert (rsi.kind, rsi.minimum, rsi.maximum, rsi.default) == ("int", 2, 100_000, 14)
    assert function_info("STOCH").param("fastk_period").minimum == 1
    mama = function_info("MAMA").param("fastlimit")
    assert (mama.kind, mama.minimum, mama.maximum) == ("float", 0.01, 0.99)
    nbdev = function_info("BBANDS").param("nbdevup")
    assert (nbdev.kind, nbdev.minimum, nbdev.maximum) == ("float", None, None)
    assert function_info("SAR").param("acceleration").minimum == 0.0
    matype = function_info("BBANDS").param("matype")
    assert matype.kind == "matype"
    assert dict(matype.choices)[0] == "SMA" and dict(matype.choices)[1] == "EMA"
    assert ma_type_name(1) == "Exponential Moving Average"
    # MAVP constrains its two periods together; each alone spans TA-Lib's whole range.
    mavp = function_info("MAVP")
    assert (mavp.param("minperiod").minimum, mavp.param("minperiod").maximum) == (1, 100_000)
    assert (mavp.param("maxperiod").minimum, mavp.param("maxperiod").maximum) == (1, 100_000)
    assert function_info("RSI").param("timeperiod").help


def _accepts(name: str, params: dict[str, Any]) -> bool:
    data = probe_inputs()
    try:
        call_talib(
            name, [data[s] for _, s in flat_inputs(name)], {**function_info(name).defaults(), **params}
        )
    except TalibParamError:
        return False
    return True


@pytest.mark.parametrize("name", sorted(n for n in talib.get_functions() if function_info(n).params))
def test_ranges_are_exactly_what_talib_enforces(name: str) -> None:
    """Each bound is accepted and one step beyond it rejected (other integer periods at the same extreme)."""
    info = function_info(name)
    ints = [p for p in info.params if p.kind == "int"]
    for p in info.params:
        if p.kind == "matype":
            assert all(_accepts(name, {p.name: c}) for c, _ in p.choices)
            assert not _accepts(name, {p.name: max(c for c, _ in p.choices) + 1})
            continue
        for bound, outward in ((p.minimum, -math.inf), (p.maximum, math.inf)):
            if bound is None:
                continue
            if p.kind == "int":
                lows = bound == p.minimum
                others = {q.name: (q.minimum if lows else q.maximum) for q in ints if q.name != p.name}
                beyond: int | float = int(bound) + (-1 if lows else 1)
            else:
                others = {}
                beyond = math.nextafter(float(bound), outward)
            assert _accepts(name, {**others, p.name: bound}), (p.name, bound)
            assert not _accepts(name, {**others, p.name: beyond}), (p.name, beyond)


def test_overlay_single_price_and_styles_come_from_talib_flags() -> None:
    cat = catalog()
    for name in ("SMA", "EMA", "BBANDS", "SAR", "KAMA", "VWAP"):
        assert cat[name].overlay, name
    for name in ("RSI", "MACD", "STOCH", "ATR", "OBV", "ADX"):
        assert not cat[name].overlay, name
    assert cat["RSI"].takes_single_price and cat["RSI"].source_index == 0
    assert cat["OBV"].takes_single_price and cat["OBV"].inputs == ("close", "volume")
    assert cat["MAVP"].inputs == ("close", "periods") and not cat["MAVP"].chartable
    for name in ("STOCH", "BETA", "PVO", "CDLDOJI", "ADD"):
        assert not cat[name].takes_single_price, name
    macd = {o.name: o.style for o in cat["MACD"].outputs}
    assert macd == {"macd": "line", "macdsignal": "dashed", "macdhist": "histogram"}
    assert [o.name for o in cat["BBANDS"].outputs] == ["upperband", "middleband", "lowerband"]
    assert cat["CDLENGULFING"].candlestick and cat["CDLENGULFING"].overlay
    assert [(o.style, o.integer) for o in cat["CDLENGULFING"].outputs] == [("markers", True)]
    assert cat["EMA"].unstable and cat["RSI"].unstable and not cat["SMA"].unstable
    integer = {n for n, i in cat.items() if any(o.integer for o in i.outputs)}
    assert {"MAXINDEX", "HT_TRENDMODE", "SUPERTREND"} <= integer
    assert all(cat[n].candlestick for n in integer if n.startswith("CDL"))


def test_lookback_is_talibs() -> None:
    assert lookback("RSI") == 14
    assert lookback("SMA", {"timeperiod": 20}) == 19
    assert lookback("MACD") == _abstract("MACD").lookback


@pytest.mark.parametrize(
    ("query", "first", "contains"),
    [
        ("rsi", "RSI", {"RSI", "STOCHRSI"}),
        ("RSI", "RSI", {"STOCHRSI"}),
        ("bollinger", "BBANDS", {"BBANDS"}),
        ("macd", "MACD", {"MACD", "MACDEXT", "MACDFIX"}),
        ("moving average", None, {"SMA", "EMA", "WMA", "KAMA", "MA", "T3"}),
        ("stoch", "STOCH", {"STOCHF", "STOCHRSI"}),
        ("doji", None, {"CDLDOJI", "CDLDOJISTAR"}),
    ],
)
def test_search(query: str, first: str | None, contains: set[str]) -> None:
    found = [i.name for i in search(query)]
    assert contains <= set(found)
    if first is not None:
        assert found[0] == first
    assert "CDL3STARSINSOUTH" not in found or query != "rsi"


def test_search_without_words_is_empty() -> None:
    assert search("") == [] and search("  -- ") == []
    assert search("zzzz") == []


def test_hints() -> None:
    cat = catalog()
    assert hint_for(cat["RSI"]).guides == (30.0, 70.0)
    for name in ("STOCH", "STOCHF", "STOCHRSI", "MFI"):
        assert hint_for(cat[name]).guides == (20.0, 80.0), name
    assert hint_for(cat["CCI"]).guides == (-100.0, 100.0)
    assert hint_for(cat["WILLR"]).guides == (-80.0, -20.0)
    assert hint_for(cat["ADX"]).guides == (25.0,)
    assert hint_for(cat["RSI"]).value_range == (0.0, 100.0)
    assert hint_for(cat["STOCH"]).styles == {"slowk": "line"}
    assert hint_for(cat["SMA"]).pane == "price" and hint_for(cat["RSI"]).pane == "own"
    assert hint_for(cat["AVGDEV"]).pane == "own"  # TA-Lib flags it "same scale as input"
    assert hint_for(cat["OBV"]).value_format == "volume"
    assert hint_for(cat["SMA"]).value_format == "price"
    assert "trend" in hint_for(cat["SUPERTREND"]).hidden
    doji = hint_for(cat["CDLDOJI"])
    assert doji.pane == "price" and doji.markers["integer"].position == "by_sign"
    assert doji.markers["integer"].text == "DOJI"
    fractal = hint_for(cat["FRACTAL"])
    assert fractal.pane == "price" and fractal.markers["swinghigh"].position == "above"
    assert len(set(PALETTE)) == len(PALETTE) >= 8
