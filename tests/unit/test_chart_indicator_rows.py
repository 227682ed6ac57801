"""The Qt-free side of drawing indicators: descriptors, row encoding, and IndicatorBook (the model of
what the page holds), through the recording fake chart as the controller will use it."""

from __future__ import annotations

import base64
import json
import math
from dataclasses import replace

import numpy as np
import pytest

from binmon.core.candles import Append, Gap, Reload, Replace
from binmon.core.models import Kline
from binmon.ui.chart.bar_window import BarWindow, ChartDataError
from binmon.ui.chart.fake import RecordingChart
from binmon.ui.chart.indicators import (
    IndicatorBook,
    IndicatorDraw,
    OutputDraw,
    check_draw,
    draw_arg,
    encode_rows,
    rows_from_columns,
)
from binmon.ui.chart.jscall import js_call

T0 = 1_570_752_000_000  # ms


def bars(n: int, start: int = 0) -> list[Kline]:
    out = []
    for i in range(start, start + n):
        t = T0 + i * 60_000
        out.append(Kline("TEST", "1m", t, t + 59_999, 1.0, 2.0, 0.5, 1.5, 10.0, 0, 1, 0, 0))
    return out


def secs(i: int) -> int:
    return (T0 + i * 60_000) // 1000


def line(id: str, pane: str | int = "own", n: int = 1, **kw: object) -> IndicatorDraw:
    outs = tuple(OutputDraw(f"o{k}", "#2962FF") for k in range(n))
    return IndicatorDraw(id, id.upper(), pane, outs, **kw)  # type: ignore[arg-type]


def window(n: int, max_bars: int = 1000) -> BarWindow:
    w = BarWindow(max_bars)
    w.load(bars(n))
    return w


# ---------------------------------------------------------------- encode_rows


def test_encode_rows_nan_and_none_become_null() -> None:
    rows: list[list[float | None]] = [[secs(0), math.nan, 1.5], [secs(1), None, -2.0], [secs(2), 3.0, 0.0]]
    out = encode_rows(rows, 2)
    assert out == [[secs(0), None, 1.5], [secs(1), None, -2.0], [secs(2), 3.0, 0.0]]
    assert all(type(r[0]) is int for r in out) and type(out[0][2]) is float
    assert js_call("f", out).startswith("f([[1570752000,null,1.5]")  # valid JSON, no NaN


def test_encode_rows_from_numpy_is_exact_and_fast_enough() -> None:
    n = 20_000
    t_ms = T0 + np.arange(n, dtype=np.int64) * 60_000
    a = np.random.default_rng(1).random(n)
    a[:30] = np.nan
    rows = rows_from_columns(t_ms, [a, a * 2, -a])
    out = encode_rows(rows, 3)
    assert len(out) == n and out[0] == [T0 // 1000, None, None, None]
    assert out[-1] == [int(t_ms[-1] // 1000), float(a[-1]), float(a[-1] * 2), float(-a[-1])]
    assert json.loads(json.dumps(out)) == out


@pytest.mark.parametrize(
    ("rows", "match"),
    [
        ([[secs(0), 1.0, 2.0]], "shape"),  # one value too many
        ([[secs(0)]], "shape"),
        ([[secs(0), 1.0], [secs(1)]], "rows must be"),  # ragged
        ([[secs(0), math.inf]], "infinite"),
        ([[secs(0), -math.inf]], "infinite"),
        ([[secs(1), 1.0], [secs(0), 1.0]], "increase"),
        ([[secs(1), 1.0], [secs(1), 1.0]], "increase"),
        ([[secs(0) + 0.5, 1.0]], "whole seconds"),
        ([[math.nan, 1.0]], "whole seconds"),
        ([["x", 1.0]], "rows must be"),
    ],
)
def test_encode_rows_rejects(rows: list[list[object]], match: str) -> None:
    with pytest.raises(ChartDataError, match=match):
        encode_rows(rows, 1)  # type: ignore[arg-type]


def test_empty_rows() -> None:
    assert encode_rows([], 3) == [] and encode_rows(np.empty((0, 4)), 3) == []


# ---------------------------------------------------------------- descriptors


def test_draw_arg_is_what_the_page_reads() -> None:
    macd = IndicatorDraw(
        "m",
        "MACD 12 26 9",
        "own",
        (OutputDraw("macd", "#2962FF"), OutputDraw("hist", "#26A69A", kind="histogram", neg_color="#EF5350")),
        guides=(0,),
    )
    arg = draw_arg(check_draw(macd))
    assert arg["pane"] == "own" and arg["guides"] == [0.0] and arg["precision"] is None
    assert arg["outputs"][1] == {
        "name": "hist",
        "kind": "histogram",
        "color": "#26A69A",
        "negColor": "#EF5350",
        "width": 1,
        "visible": True,
        "text": "",
        "position": "by_sign",
    }
    as_list = replace(macd, outputs=list(macd.outputs))  # type: ignore[arg-type]
    assert macd.has_series and draw_arg(as_list)["outputs"] == arg["outputs"]
    js_call("binmon.setIndicator", arg, [])  # encodable


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"id": ""}, "id"),
        ({"pane": "left"}, "pane"),
        ({"pane": -1}, "pane"),
        ({"pane": True}, "pane"),
        ({"outputs": ()}, "no outputs"),
        ({"outputs": (OutputDraw("a", "#fff"), OutputDraw("a", "#fff"))}, "unique"),
        ({"outputs": (OutputDraw("a", "red"),)}, "colour"),
        ({"outputs": (OutputDraw("a", "#fff", neg_color="#12"),)}, "colour"),
        ({"outputs": (OutputDraw("a", "#fff", width=5),)}, "width"),
        ({"outputs": (OutputDraw("a", "#fff", kind="area"),)}, "kind"),  # type: ignore[arg-type]
        ({"guides": (math.nan,)}, "guide"),
        ({"precision": 13}, "precision"),
        ({"visible": 1}, "visible"),
    ],
)
def test_check_draw_rejects(change: dict[str, object], match: str) -> None:
    with pytest.raises(ChartDataError, match=match):
        check_draw(replace(line("x"), **change))  # type: ignore[arg-type]


def test_colours_accepted() -> None:
    for c in ("#fff", "#ffff", "#2962FF", "#2962FF80", "rgba(41, 98, 255, 0.5)", "rgb(1,2,3)"):
        check_draw(replace(line("x"), outputs=(OutputDraw("a", c),)))


# ---------------------------------------------------------------- IndicatorBook: values and the window


def test_rows_align_with_the_bars_held() -> None:
    w = window(100)
    book = IndicatorBook()
    rows = [[secs(i), float(i)] for i in range(-50, 100)]  # 50 rows older than the window: dropped
    sent = book.set(line("a"), rows, w).rows()
    assert len(sent) == 100 and sent[0] == [secs(0), 0.0]
    assert book.rows("a", w) == sent
    with pytest.raises(ChartDataError, match="not a bar"):
        book.set(line("b"), [[secs(100), 1.0]], w)  # newer than the last bar
    with pytest.raises(ChartDataError, match="not a bar"):
        book.set(line("b"), [[secs(5) + 1, 1.0]], w)  # between bars
    assert "b" not in book and len(book) == 1


def test_live_updates_and_trimming_follow_the_window() -> None:
    w = window(10, max_bars=10)
    book = IndicatorBook()
    book.set(line("a"), [[secs(i), float(i)] for i in range(10)], w)
    assert book.update("a", [secs(9), 99.0], w) == ["i", "a", secs(9), 99.0]
    book.apply_op(w, Append(bars(1, 10)[0]))  # trims bar 0 and its value
    assert book.update("a", [secs(10), math.nan], w) == ["i", "a", secs(10), None]
    rows = book.rows("a", w)
    assert [r[0] for r in rows] == list(w.seconds) and rows[-2:] == [[secs(9), 99.0], [secs(10), None]]
    with pytest.raises(ChartDataError, match="not a bar"):
        book.update("a", [secs(0), 1.0], w)  # trimmed: an update must name a bar held
    book.apply_op(w, Replace(replace(bars(1, 10)[0], close=3.0)))
    book.apply_op(w, Gap(0, 1))
    assert len(book.rows("a", w)) == 10
    book.apply_op(w, Reload(tuple(bars(3, 20))))  # nothing held any more has a value
    assert book.rows("a", w) == []


def test_merge_after_prepend() -> None:
    w = BarWindow(100)
    w.load(bars(50, 50))
    book = IndicatorBook()
    book.set(line("a"), [[secs(i), 1.0] for i in range(50, 100)], w)
    w.prepend(bars(50))
    assert len(book.rows("a", w)) == 50
    book.update("a", [secs(99), 5.0], w)  # a live value
    book.merge("a", [[secs(i), 2.0] for i in range(50)], w)
    assert [r[1] for r in book.rows("a", w)] == [2.0] * 50 + [1.0] * 49 + [5.0]
    book.merge("a", [[secs(98), 3.0], [secs(99), 4.0]], w)  # merged values win, also over live ones
    assert [r[1] for r in book.rows("a", w)][-3:] == [1.0, 3.0, 4.0]


# ---------------------------------------------------------------- IndicatorBook: panes


def test_panes_as_the_page_resolves_them() -> None:
    w = window(5)
    book = IndicatorBook()
    book.set(line("sma", "price"), [], w)
    book.set(line("rsi"), [], w)  # own -> pane 1
    book.set(line("macd"), [], w)  # own -> pane 2
    book.set(line("stoch", 1), [], w)  # shares pane 1
    book.set(line("cci", 9), [], w)  # no pane 9: a new pane at the bottom
    marks = IndicatorDraw("cdl", "CDL", "own", (OutputDraw("integer", "#26A69A", kind="markers"),))
    book.set(marks, [], w)  # markers alone: on the candles
    assert [book.pane(k) for k in ("sma", "rsi", "macd", "stoch", "cci", "cdl")] == [0, 1, 2, 1, 3, 0]
    assert book.pane_count == 4
    book.set(replace(line("rsi"), title="RSI 21"), [], w)  # a restyle keeps its pane
    assert book.pane("rsi") == 1
    book.remove("macd")  # pane 2 goes, the one below moves up
    assert (book.pane("cci"), book.pane_count) == (2, 3)
    book.set(line("cci", "price"), [], w)  # moved onto the candles: its pane goes
    assert (book.pane("cci"), book.pane_count) == (0, 2)
    book.remove("rsi")
    assert (book.pane("stoch"), book.pane_count) == (1, 2)
    book.remove("stoch")
    assert book.pane_count == 1
    with pytest.raises(ChartDataError, match="no indicator"):
        book.remove("stoch")
    assert [d.id for d in book.draws] == ["sma", "cci", "cdl"]  # a replaced id keeps its place


def test_visibility_is_kept_in_the_draw() -> None:
    book = IndicatorBook()
    book.set(line("a"), [], window(1))
    book.set_visible("a", False)
    assert book.draw("a").visible is False and draw_arg(book.draw("a"))["visible"] is False
    with pytest.raises(ChartDataError):
        book.set_visible("a", 0)  # type: ignore[arg-type]


# ---------------------------------------------------------------- the fake chart


def test_recording_chart_keeps_what_the_page_keeps() -> None:
    chart = RecordingChart(max_bars=20)
    chart.set_bars(bars(20))
    chart.set_indicator(line("a", n=2), [[secs(i), float(i), None] for i in range(20)])
    chart.apply([Append(bars(1, 20)[0])], {"a": [[secs(20), 20.0, 1.0]]})
    rows = chart.indicator_rows("a")
    assert len(rows) == 20 and rows[0][0] == secs(1) and rows[-1] == [secs(20), 20.0, 1.0]
    chart.update_indicators({"a": [[secs(20), 21.0, None]]})
    assert chart.indicator_rows("a")[-1] == [secs(20), 21.0, None]
    chart.set_indicator_visible("a", False)
    assert chart.indicators[0].visible is False and chart.indicator_pane("a") == 1
    chart.set_bars(bars(10, 15))  # values stay for bars still held
    assert [r[0] for r in chart.indicator_rows("a")] == [secs(i) for i in range(15, 21)]
    chart.prepend_bars(bars(5, 10), {"a": [[secs(i), 0.0, 0.0] for i in range(10, 15)]})
    assert len(chart.indicator_rows("a")) == 11
    chart.remove_indicator("a")
    assert chart.indicators == ()
    assert [name for name, _ in chart.calls][-3:] == ["set_bars", "prepend_bars", "remove_indicator"]


def test_columns_travel_as_base64_float64_columns() -> None:
    w = window(3)
    book = IndicatorBook()
    desc = replace(line("m"), outputs=(OutputDraw("a", "#fff"), OutputDraw("b", "#000")))
    cols = book.set(desc, [[secs(0), 1.5, None], [secs(1), math.nan, -2.0], [secs(2), 3.0, 4.0]], w)
    arg = cols.arg()
    flat = np.frombuffer(base64.b64decode(arg["b64"]), dtype="<f8")
    assert arg["n"] == 3 and len(flat) == 9
    assert flat[:3].tolist() == [secs(0), secs(1), secs(2)]  # times, then one column per output
    assert flat[3:6].tolist()[::2] == [1.5, 3.0] and math.isnan(flat[4])
    assert math.isnan(flat[6]) and flat[7:].tolist() == [-2.0, 4.0]
    assert cols.rows() == [[secs(0), 1.5, None], [secs(1), None, -2.0], [secs(2), 3.0, 4.0]]
