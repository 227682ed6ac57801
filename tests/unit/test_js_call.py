"""The pure chart-side helpers, without Qt: :func:`js_call` escaping, the fake chart's bar model,
and finding the chart's resources.

Escaping is checked by evaluating the generated code with Node (the JavaScript engine family
the page runs in) when it is installed, and by structural checks everywhere.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from binmon import resources
from binmon.core.candles import Append, Gap, Reload, Replace
from binmon.core.models import Kline
from binmon.ui.chart.api import ChartSymbol
from binmon.ui.chart.bar_window import ChartDataError, price_format
from binmon.ui.chart.fake import RecordingChart
from binmon.ui.chart.jscall import js_call, js_value

NASTY = [
    'quote " and \\ backslash',
    "single ' quote",
    "</script><script>alert(1)</script>",
    "<!-- comment -->",
    "line\u2028separator\u2029paragraph",
    "new\nline\rreturn\ttab\0nul",
    "emoji \U0001f680 and accents éü",
    "${template} `backtick`",
    "& ampersand > gt",
]


def test_plain_call_shape() -> None:
    assert js_call("binmon.setTheme", "dark") == 'binmon.setTheme("dark")'
    assert js_call("binmon.stateJSON") == "binmon.stateJSON()"
    assert js_call("f", 1, 2.5, None, True, [1, [2]], {"a": "b"}) == 'f(1,2.5,null,true,[1,[2]],{"a":"b"})'


@pytest.mark.parametrize("text", NASTY)
def test_strings_are_escaped_completely(text: str) -> None:
    code = js_call("binmon.setMessage", text)
    assert code.startswith('binmon.setMessage("') and code.endswith('")')
    body = code[len("binmon.setMessage(") : -1]
    # Nothing that could close a script element, open a comment or end a JS line survives.
    for bad in ("</", "<!--", "\u2028", "\u2029", "\n", "\r", "\0", "<", ">", "&"):
        assert bad not in body
    assert body.isascii()
    assert json.loads(body) == text  # still valid JSON meaning exactly the same text


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -math.inf])
def test_non_finite_numbers_are_rejected(bad: float) -> None:
    with pytest.raises(ValueError, match="JavaScript"):
        js_call("binmon.apply", [["u", 1, 2, 3, bad, 5, 6]])
    with pytest.raises(ValueError):
        js_value({"deep": [[bad]]})


def test_unencodable_values_are_rejected() -> None:
    with pytest.raises(ValueError):
        js_value(object())
    with pytest.raises(ValueError):
        js_value({1j: 2})


@pytest.mark.parametrize(
    "name", ["", "binmon.set Theme", "alert(1);binmon.x", "a..b", "a[0]", "1abc", "binmon.x\n", "a.b.", "é"]
)
def test_function_name_must_be_a_plain_dotted_identifier(name: str) -> None:
    with pytest.raises(ValueError, match="function name"):
        js_call(name)


def test_floats_keep_every_digit() -> None:
    # Tiny real prices (0.00000638 BTC) must arrive exactly, not rounded.
    for x in (0.00000638, 0.00141418, 1e-8, 69420.12345678):
        assert float(js_value(x)) == x


@pytest.mark.skipif(shutil.which("node") is None, reason="node not installed")
def test_node_evaluates_the_calls_to_the_same_values() -> None:
    args = [*NASTY, 0.00000638, -0.0, 2**53, None, [1.5, "x"], {"k\u2028": "v</script>"}]
    calls = "\n".join(f"out.push({js_call('same', a)});" for a in args)
    script = f"const out = []; const same = (x) => x;\n{calls}\nprocess.stdout.write(JSON.stringify(out));"
    done = subprocess.run(["node", "-e", script], capture_output=True, text=True, timeout=30, check=True)
    assert json.loads(done.stdout) == [0.0 if a == 0 and isinstance(a, float) else a for a in args]


# --------------------------------------------------------------------------- the fake's bar model


def bar(i: int, close: float = 1.0, symbol: str = "XRPETH") -> Kline:
    t = 1_570_752_000_000 + i * 60_000
    return Kline(symbol, "1m", t, t + 59_999, close, close, close, close, 1.0, 1.0, 1, 0.5, 0.5)


def test_price_format_from_tick_size() -> None:
    assert price_format(ChartSymbol("XRPETH", "1m", "0.00000001")) == {
        "type": "price",
        "precision": 8,
        "minMove": 1e-8,
    }
    assert price_format(ChartSymbol("BTCUSDT", "1m", "0.01000000"))["precision"] == 2
    assert price_format(ChartSymbol("X", "1m", "1.00000000"))["precision"] == 0
    for bad in ("0", "-0.01", "abc", "nan"):
        with pytest.raises(ValueError):
            price_format(ChartSymbol("X", "1m", bad))


def test_fake_applies_like_series_update() -> None:
    c = RecordingChart()
    c.set_bars([bar(0), bar(1)])
    c.apply([Replace(bar(1, 2.0)), Gap(1, 2), Append(bar(3)), Append(replace(bar(3), close=3.0))])
    assert [b.open_time for b in c.bars] == [bar(i).open_time for i in (0, 1, 3)]
    assert c.bars[1].close == 2.0 and c.bars[2].close == 3.0  # equal time replaces, as LWC does
    with pytest.raises(ChartDataError, match="older"):
        c.apply([Append(bar(4)), Replace(bar(2))])
    assert c.bars[-1] == bar(4)  # the ops before the rejected one were applied
    c.apply([Reload((bar(7), bar(8)))])
    assert c.bars == (bar(7), bar(8))
    assert [name for name, _ in c.calls] == ["set_bars", "apply", "apply", "apply"]


def test_fake_bounds_the_window_like_the_page() -> None:
    c = RecordingChart(max_bars=3)
    c.set_bars([bar(i) for i in range(10, 15)])
    assert c.bars == tuple(bar(i) for i in range(12, 15))  # newest kept
    c.apply([Append(bar(15))])
    assert c.bars == tuple(bar(i) for i in range(13, 16))  # oldest dropped
    c.prepend_bars([bar(1), bar(2)])
    assert len(c.bars) == 3 and c.bars[0] == bar(13)  # full: older history is not loaded
    c = RecordingChart(max_bars=4)
    c.set_bars([bar(10), bar(11)])
    c.prepend_bars([bar(5), bar(6), bar(7)])
    assert c.bars == (bar(6), bar(7), bar(10), bar(11))  # as many as fit, the newest of them
    with pytest.raises(ChartDataError, match="not older"):
        c.prepend_bars([bar(12)])


def test_fake_rejects_what_the_page_rejects() -> None:
    c = RecordingChart()
    with pytest.raises(ChartDataError, match="sorted"):
        c.set_bars([bar(2), bar(1)])
    with pytest.raises(ChartDataError, match="sorted"):
        c.set_bars([bar(1), bar(1)])
    with pytest.raises(ChartDataError, match="non-finite"):
        c.set_bars([replace(bar(1), high=math.nan)])
    c.set_symbol(ChartSymbol("XRPETH", "1m", "0.00000001"))
    with pytest.raises(ChartDataError, match="BTCUSDT 1m bar given to the XRPETH 1m chart"):
        c.set_bars([bar(1), bar(2, symbol="BTCUSDT")])
    c.set_bars([bar(1)])
    with pytest.raises(ChartDataError, match="BTCUSDT"):
        c.apply([Append(bar(2, symbol="BTCUSDT"))])
    assert c.bars == (bar(1),)
    with pytest.raises(ValueError):
        c.set_theme("blue")
    with pytest.raises(ValueError):
        c.set_timezone("Mars/Olympus")
    c.set_timezone("Asia/Kolkata")
    assert c.timezone == "Asia/Kolkata"


def test_fake_fires_events_the_way_the_page_reports_them() -> None:
    c = RecordingChart()
    seen: list[object] = []
    c.on_crosshair(seen.append)
    c.on_visible_range(seen.append)
    c.set_bars([bar(i) for i in range(5)])
    ev = c.fire_crosshair(bar(3).open_time)
    assert ev.bar == bar(3) and ev.time_ms == bar(3).open_time
    assert c.fire_crosshair(bar(9).open_time).bar is None
    rng = c.fire_visible_range(-3, 2)
    assert (rng.from_ms, rng.to_ms, rng.bars_before) == (bar(0).open_time, bar(2).open_time, 0)
    assert c.fire_visible_range(2, 99).bars_before == 2
    assert len(seen) == 4


# --------------------------------------------------------------------------- resources


def test_resources_come_from_the_checkout_or_the_bundle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert resources.resource_path("chart", "index.html").is_file()
    assert resources.chart_lib_path().name == "lightweight-charts.standalone.production.js"
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)  # as in a PyInstaller bundle
    assert resources.resource_path("chart", "index.html") == tmp_path / "resources" / "chart" / "index.html"
    with pytest.raises(FileNotFoundError, match="make chart-lib"):
        resources.chart_lib_path()
