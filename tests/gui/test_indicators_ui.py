"""The indicators UI: add/edit dialog, panel, controller (engine, chart, persistence, templates).

Most tests drive the panel and the dialog as a user does and check what reaches a
``RecordingChart``; THE flow (``test_user_adds_rsi_21_on_the_real_page``) does it on the real
page and compares what the page holds with TA-Lib. Values are always checked against TA-Lib's
function API on the same closes (NaN where TA-Lib has NaN <-> no value on the chart).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import talib
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QColor, QImage, QPainter
from PySide6.QtWidgets import QComboBox, QDialog, QMainWindow, QSpinBox

from binmon.config import AppConfig, load_config, save_config, updated
from binmon.core.candles import Append, Reload, Replace
from binmon.core.models import Kline, SymbolInfo
from binmon.indicators import default_spec, from_dict
from binmon.indicators.layout import arrange, resolve_panes
from binmon.indicators.spec import IndicatorSpec
from binmon.indicators.templates import TEMPLATES_FILE, TemplateStore
from binmon.ui.chart.api import ChartSymbol
from binmon.ui.chart.fake import RecordingChart
from binmon.ui.dialogs.indicator import IndicatorDialog
from binmon.ui.indicator_feed import BIG_BARS
from binmon.ui.indicators_controller import IndicatorController, install_indicators
from binmon.ui.main_window import theme_palette
from binmon.ui.panels.indicators import IndicatorsPanel
from binmon.ui.qt_adapter import QtMarketAdapter

XRPETH = ChartSymbol("XRPETH", "1m", "0.00000001", "XRP", "ETH")


class _Sink:
    """The adapter's trades / watchlist / status panels: not under test here."""

    def add_trades(self, trades: Any) -> None:
        pass

    def update_tickers(self, tickers: Any) -> None:
        pass

    def set_feed(self, *args: Any) -> None:
        pass


def closes(bars: Sequence[Kline]) -> np.ndarray:
    return np.array([b.close for b in bars], dtype=np.float64)


def assert_matches(rows: Sequence[Sequence[Any]], bars: Sequence[Kline], ref: np.ndarray) -> None:
    """Chart rows ``[t, v]`` == TA-Lib's values for ``bars`` (NaN <-> None), bar by bar."""
    assert [r[0] for r in rows] == [b.open_time // 1000 for b in bars]
    for r, want in zip(rows, ref, strict=True):
        if math.isnan(want):
            assert r[1] is None, r
        else:
            assert r[1] == want, (r, want)


def setup(
    qtbot: Any, chart: Any, bars: Sequence[Kline], **kwargs: Any
) -> tuple[QtMarketAdapter, IndicatorController, IndicatorsPanel]:
    """Adapter + panel + controller around ``chart``; ``bars`` loaded as the app loads history."""
    adapter = QtMarketAdapter(chart, _Sink(), _Sink(), _Sink())
    adapter.historyLoaded.connect(lambda _s, _i, b: chart.set_bars(b))  # the app's controller does this
    panel = IndicatorsPanel()
    qtbot.addWidget(panel)
    ctl = IndicatorController(chart, adapter, panel=panel, **kwargs)
    chart.set_symbol(XRPETH)
    adapter.market_history("XRPETH", "1m", bars)
    qtbot.waitUntil(lambda: not ctl.busy and ctl.engine is not None, timeout=20_000)
    return adapter, ctl, panel


def choose(qtbot: Any, dlg: IndicatorDialog, query: str, params: dict[str, str] | None = None) -> None:
    """Type ``query`` in the search, Enter, type each parameter (keyboard only)."""
    qtbot.keyClicks(dlg.search, query)
    qtbot.keyClick(dlg.search, Qt.Key.Key_Return)
    for name, text in (params or {}).items():
        w = dlg.param_widget(name)
        assert isinstance(w, QSpinBox)
        w.lineEdit().selectAll()
        qtbot.keyClicks(w, text)


# ---------------------------------------------------------------- the dialog


def test_dialog_rejects_zero_and_negative_periods_with_a_message(qtbot: Any) -> None:
    dlg = IndicatorDialog()
    qtbot.addWidget(dlg)
    dlg.open()
    choose(qtbot, dlg, "rsi")
    assert dlg.function == "RSI" and dlg.ok.isEnabled() and dlg.message.text() == ""
    period = dlg.param_widget("timeperiod")
    assert isinstance(period, QSpinBox)
    assert period.lineEdit().selectedText() == "14"  # Enter went to the first field, selected
    for typed in ("0", "-5"):
        period.lineEdit().selectAll()
        qtbot.keyClicks(period, typed)
        assert dlg.message.text() == f"RSI: timeperiod must be between 2 and 100000 (got {typed})"
        assert not dlg.ok.isEnabled() and dlg.spec() is None
    period.lineEdit().selectAll()
    qtbot.keyClicks(period, "-")  # half typed: no number yet
    assert dlg.message.text() == "RSI: timeperiod needs a number" and not dlg.ok.isEnabled()
    # The arrows stay in TA-Lib's range.
    period.setValue(100000)
    period.stepBy(5)
    assert period.value() == 100000
    period.setValue(-3)
    period.stepBy(1)
    assert period.value() == 2 and dlg.ok.isEnabled()
    period.lineEdit().selectAll()
    qtbot.keyClicks(period, "21")
    assert dlg.message.text() == "" and dlg.ok.isEnabled()
    dlg.guides.setText("30, seventy")
    assert "guide lines must be numbers" in dlg.message.text() and not dlg.ok.isEnabled()
    dlg.guides.setText("25; 75")
    assert dlg.ok.isEnabled()
    qtbot.keyClick(period, Qt.Key.Key_Return)  # Enter = OK
    assert dlg.result() == QDialog.DialogCode.Accepted
    spec = dlg.spec()
    assert spec is not None and dict(spec.params) == {"timeperiod": 21} and spec.guides == (25.0, 75.0)


def test_dialog_search_lists_and_keyboard(qtbot: Any) -> None:
    dlg = IndicatorDialog()
    qtbot.addWidget(dlg)
    dlg.open()

    def listed() -> list[str]:
        tree = dlg.functions
        return [
            tree.topLevelItem(i).child(k).text(0)
            for i in range(tree.topLevelItemCount())
            for k in range(tree.topLevelItem(i).childCount())
        ]

    everything = listed()
    assert len(everything) == 200 and "MAVP" not in everything  # MAVP needs a periods series
    assert dlg.functions.topLevelItem(0).text(0) == "Cycle Indicators"
    qtbot.keyClicks(dlg.search, "rsi")
    assert listed() == ["RSI", "STOCHRSI"] and dlg.function == "RSI"
    dlg.search.clear()
    qtbot.keyClicks(dlg.search, "bollinger")
    assert listed() == ["BBANDS"] and dlg.function == "BBANDS"
    assert dlg.source is not None and dlg.pane.currentData() == "price"  # an overlay
    dlg.search.clear()
    qtbot.keyClicks(dlg.search, "macd")
    assert listed()[:3] == ["MACD", "MACDEXT", "MACDFIX"] and dlg.function == "MACD"
    assert dlg.pane.currentData() == "own" and dlg.guides.text() == "0"
    # Down goes to the list, Down again to the next hit, Enter picks it.
    qtbot.keyClick(dlg.search, Qt.Key.Key_Down)
    qtbot.keyClick(dlg.functions, Qt.Key.Key_Down)
    qtbot.keyClick(dlg.functions, Qt.Key.Key_Return)
    assert dlg.function == "MACDEXT" and dlg.result() == 0  # picked, not accepted
    matype = dlg.param_widget("fastmatype")
    assert isinstance(matype, QComboBox) and matype.currentText().startswith("SMA")
    matype.setCurrentIndex(matype.findData(1))
    spec = dlg.spec()
    assert spec is not None and spec.params["fastmatype"] == 1
    dlg.search.clear()
    qtbot.keyClicks(dlg.search, "stoch")
    assert dlg.function == "STOCH" and dlg.source is None  # high/low/close: no source choice
    dlg.search.clear()
    qtbot.keyClicks(dlg.search, "mavp zzz")
    assert listed() == [] and not dlg.ok.isEnabled() and "No indicator matches" in dlg.heading.text()
    qtbot.keyClick(dlg.search, Qt.Key.Key_Escape)
    assert dlg.result() == QDialog.DialogCode.Rejected and not dlg.isVisible()


def test_dialog_styles_colour_pane_and_edit_mode(qtbot: Any) -> None:
    dlg = IndicatorDialog(panes=[(1, "RSI 14")], used_colors=["#2962FF"])
    qtbot.addWidget(dlg)
    dlg.open()
    choose(qtbot, dlg, "macd")
    row = dlg.output_row("macdhist")
    assert row.kind.currentData() == "histogram" and dlg.output_row("macd").color != "#2962FF"
    cd = dlg.choose_color(row)  # open(), not exec(): returns at once
    assert cd.isVisible() and cd.isModal()
    cd.colorSelected.emit(QColor("#123456"))
    cd.close()
    row.width.setValue(3)
    row.kind.setCurrentIndex(row.kind.findData("line"))
    dlg.pane.setCurrentIndex(dlg.pane.findData(1))
    spec = dlg.spec()
    assert spec is not None and spec.pane == 1
    assert spec.styles["macdhist"] == dataclasses.replace(
        spec.styles["macdhist"], color="#123456", width=3, kind="line"
    )

    edit = IndicatorDialog(spec=spec, panes=[(1, "RSI 14, MACD (this one)")], current_pane=1)
    qtbot.addWidget(edit)
    edit.open()
    assert not edit.search.isVisibleTo(edit) and edit.function == "MACD" and edit.ok.isEnabled()
    assert edit.pane.currentData() == 1 and edit.output_row("macdhist").color == "#123456"
    assert edit.spec() == spec  # unchanged form -> the same spec (id kept)


# ---------------------------------------------------------------- panel -> controller -> chart


def test_panel_actions_drive_the_chart(qtbot: Any, xrpeth_bars: list[Kline]) -> None:
    bars = xrpeth_bars[:1500]
    chart = RecordingChart()
    saved: list[list[dict[str, Any]]] = []
    _adapter, ctl, panel = setup(qtbot, chart, bars, save=saved.append)

    def add(query: str, params: dict[str, str] | None = None, pane: object = None) -> IndicatorSpec:
        qtbot.mouseClick(panel.add_button, Qt.MouseButton.LeftButton)
        dlg = ctl.dialog
        assert dlg is not None and dlg.isVisible()
        choose(qtbot, dlg, query, params)
        if pane is not None:
            dlg.pane.setCurrentIndex(dlg.pane.findData(pane))
        qtbot.mouseClick(dlg.ok, Qt.MouseButton.LeftButton)
        return ctl.specs[-1]

    rsi = add("rsi", {"timeperiod": "21"})
    macd = add("macd")
    sma = add("sma", {"timeperiod": "20"})
    assert [i.title for i in panel.items()] == ["RSI 21 · close", "MACD 12 26 9 · close", "SMA 20 · close"]
    assert [d.title for d in chart.indicators] == ["RSI 21", "MACD 12 26 9", "SMA 20"]
    assert [chart.indicator_pane(s.id) for s in ctl.specs] == [1, 2, 0]
    assert_matches(chart.indicator_rows(rsi.id), bars, talib.RSI(closes(bars), 21))
    assert len(saved) == 3 and saved[-1][0]["params"] == {"timeperiod": 21}

    # Eye: hide / show.
    row = panel.row_widget(rsi.id)
    assert row is not None
    row.eye.click()
    assert chart.calls[-1] == ("set_indicator_visible", (rsi.id, False)) and not ctl.specs[0].visible
    assert not panel.items()[0].visible and saved[-1][0]["visible"] is False
    panel.row_widget(rsi.id).eye.click()  # type: ignore[union-attr]
    assert chart.calls[-1] == ("set_indicator_visible", (rsi.id, True))

    # Reorder: SMA up twice -> first in the legend; the oscillators keep their panes' order.
    panel.select(sma.id)
    qtbot.mouseClick(panel.up_button, Qt.MouseButton.LeftButton)
    qtbot.keyClick(panel.list, Qt.Key.Key_Up, Qt.KeyboardModifier.ControlModifier)
    assert [s.id for s in ctl.specs] == [sma.id, rsi.id, macd.id] == [d.id for d in chart.indicators]
    assert not panel.up_button.isEnabled() and panel.selected_id() == sma.id
    # MACD above RSI: the panes swap with them.
    panel.select(macd.id)
    qtbot.mouseClick(panel.up_button, Qt.MouseButton.LeftButton)
    assert [chart.indicator_pane(i) for i in (macd.id, rsi.id)] == [1, 2]

    # Edit by double-click: RSI into MACD's pane, period 9.
    panel.resize(300, 400)
    panel.show()
    qtbot.waitExposed(panel)
    item = panel.list.item([s.id for s in ctl.specs].index(rsi.id))
    rect = panel.list.visualItemRect(item)
    # (QTest's double click lacks the first press a real one has: click first.)
    qtbot.mouseClick(panel.list.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    qtbot.mouseDClick(panel.list.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    dlg = ctl.dialog
    assert dlg is not None and dlg.function == "RSI" and dlg.pane.currentData() == 2
    period = dlg.param_widget("timeperiod")
    assert isinstance(period, QSpinBox)
    period.lineEdit().selectAll()
    qtbot.keyClicks(period, "9")
    dlg.pane.setCurrentIndex(dlg.pane.findData(1))
    qtbot.mouseClick(dlg.ok, Qt.MouseButton.LeftButton)
    assert [chart.indicator_pane(i) for i in (macd.id, rsi.id)] == [1, 1] and chart.book.pane_count == 2
    assert_matches(chart.indicator_rows(rsi.id), bars, talib.RSI(closes(bars), 9))
    assert panel.items()[2].title == "RSI 9 · close"

    # Remove with the button and with the Delete key.
    panel.select(macd.id)
    qtbot.mouseClick(panel.remove_button, Qt.MouseButton.LeftButton)
    assert [d.id for d in chart.indicators] == [sma.id, rsi.id] and chart.indicator_pane(rsi.id) == 1
    panel.select(sma.id)
    qtbot.keyClick(panel.list, Qt.Key.Key_Delete)
    assert [d.id for d in chart.indicators] == [rsi.id] and [i.id for i in panel.items()] == [rsi.id]
    assert [d["id"] for d in saved[-1]] == [rsi.id]


def test_live_values_go_with_the_candles_in_one_apply(qtbot: Any, xrpeth_bars: list[Kline]) -> None:
    bars = xrpeth_bars[:1000]
    chart = RecordingChart()
    adapter, ctl, _panel = setup(qtbot, chart, bars)
    rsi = dataclasses.replace(default_spec("RSI", "rsi"), params={"timeperiod": 21})
    assert (
        ctl.add(rsi)
        and ctl.add(default_spec("MACD", "macd"))
        and ctl.add(default_spec("CDLENGULFING", "eng"))
    )
    newer = dataclasses.replace(bars[-1], close=bars[-1].close * 1.003)
    adapter.market_ops([Replace(newer), Append(xrpeth_bars[1000])])
    adapter.flush()
    name, args = chart.calls[-1]
    assert name == "apply" and len(args) == 2 and set(args[1]) == {"rsi", "macd", "eng"}
    c = closes([*bars[:-1], newer, xrpeth_bars[1000]])
    t = [b.open_time // 1000 for b in (newer, xrpeth_bars[1000])]
    ref = talib.RSI(c, 21)
    assert args[1]["rsi"] == [[t[0], ref[-2]], [t[1], ref[-1]]]
    assert chart.indicator_rows("rsi")[-2:] == [[t[0], ref[-2]], [t[1], ref[-1]]]
    m = talib.MACD(c, 12, 26, 9)
    assert chart.indicator_rows("macd")[-1] == [t[1], m[0][-1], m[1][-1], m[2][-1]]
    # A Reload: no values in that apply; everything is redrawn right after, on the next turn.
    adapter.market_ops([Reload(tuple(xrpeth_bars[:1200]))])
    adapter.flush()
    assert chart.calls[-1][0] == "apply" and len(chart.calls[-1][1]) == 1
    qtbot.waitUntil(lambda: len(chart.indicator_rows("rsi")) == 1200, timeout=20_000)
    assert_matches(chart.indicator_rows("rsi"), xrpeth_bars[:1200], talib.RSI(closes(xrpeth_bars[:1200]), 21))


def test_adapter_flush_hooks(xrpeth_bars: list[Kline], caplog: pytest.LogCaptureFixture) -> None:
    chart = RecordingChart()
    adapter = QtMarketAdapter(chart, _Sink(), _Sink(), _Sink())
    chart.set_symbol(XRPETH)
    chart.set_bars(xrpeth_bars[:10])
    seen: list[list[Any]] = []

    def broken(ops: Any) -> None:
        raise RuntimeError("boom")

    adapter.add_flush_hook(lambda ops: seen.append(list(ops)))  # returns None: no values
    adapter.add_flush_hook(broken)
    adapter.market_ops([Append(xrpeth_bars[10])])
    adapter.flush()
    assert seen == [[Append(xrpeth_bars[10])]]
    assert chart.calls[-1] == ("apply", ((Append(xrpeth_bars[10]),),))  # candles applied anyway
    assert any("flush hook" in r.getMessage() for r in caplog.records)


def test_persistence_round_trip(qtbot: Any, xrpeth_bars: list[Kline], tmp_path: Path) -> None:
    bars = xrpeth_bars[:800]
    chart = RecordingChart()
    config_path = tmp_path / "config.json"
    config = [AppConfig()]

    def save(items: list[dict[str, Any]]) -> None:  # how the app wires it: into its one AppConfig
        config[0] = updated(config[0], indicators=items)
        save_config(config_path, config[0])

    _a, ctl, _p = setup(qtbot, chart, bars, save=save)
    ctl.add(dataclasses.replace(default_spec("RSI"), params={"timeperiod": 21}, source="hl2"))
    ctl.add(default_spec("BBANDS"))
    ctl.add(dataclasses.replace(default_spec("MACD"), pane=1))  # shares RSI's pane
    ctl.set_visible(ctl.specs[1].id, False)

    loaded = load_config(config_path)
    assert loaded.problems == () and len(loaded.config.indicators) == 3
    chart2 = RecordingChart()
    adapter2 = QtMarketAdapter(chart2, _Sink(), _Sink(), _Sink())
    adapter2.historyLoaded.connect(lambda _s, _i, b: chart2.set_bars(b))
    ctl2 = IndicatorController(chart2, adapter2)
    ctl2.restore(loaded.config.indicators)
    chart2.set_symbol(XRPETH)
    adapter2.market_history("XRPETH", "1m", bars)
    qtbot.waitUntil(lambda: all(len(chart2.indicator_rows(s.id)) == 800 for s in ctl2.specs), timeout=20_000)
    assert ctl2.specs == ctl.specs and chart2.indicators == chart.indicators
    for s in ctl.specs:
        assert chart2.indicator_rows(s.id) == chart.indicator_rows(s.id)
        assert chart2.indicator_pane(s.id) == chart.indicator_pane(s.id)
    assert [chart2.indicator_pane(s.id) for s in ctl2.specs] == [1, 0, 1]
    # An old config file (no indicators field) still loads; bad entries are reported, not fatal.
    config_path.write_text(json.dumps({"version": 1, "theme": "light"}))
    assert load_config(config_path).config.indicators == ()
    messages: list[str] = []
    ctl3 = IndicatorController(RecordingChart())
    ctl3.message.connect(messages.append)
    ctl3.restore([{"function": "RSI", "params": {"timeperiod": 0}}, {"function": "SMA"}])
    assert [s.function for s in ctl3.specs] == ["SMA"]
    assert messages == ["Indicators: indicator 1: RSI: timeperiod must be between 2 and 100000 (got 0)"]


def test_templates_save_apply_delete_and_corrupt_file(
    qtbot: Any, xrpeth_bars: list[Kline], tmp_path: Path
) -> None:
    path = tmp_path / "indicator-templates.json"
    chart = RecordingChart()
    _a, ctl, panel = setup(qtbot, chart, xrpeth_bars[:500], templates=TemplateStore(path))
    messages: list[str] = []
    ctl.message.connect(messages.append)
    ctl.restore([])
    ctl.add(default_spec("SMA"))
    ctl.add(default_spec("RSI"))
    dlg = panel.ask_template_name()
    dlg.setTextValue("  Trend   and momentum ")
    dlg.accept()
    assert json.loads(path.read_text())["templates"][0]["name"] == "Trend and momentum"
    panel.templates_menu.aboutToShow.emit()
    apply_menu = next(a.menu() for a in panel.templates_menu.actions() if a.text() == "Apply template")
    assert [a.text() for a in apply_menu.actions()] == ["Trend and momentum"]
    # Another chart gets the template (fresh ids, same indicators).
    chart2 = RecordingChart()
    _a2, ctl2, panel2 = setup(qtbot, chart2, xrpeth_bars[:500], templates=TemplateStore(path))
    ctl2.restore([])
    ctl2.add(default_spec("ATR"))
    panel2.templates_menu.aboutToShow.emit()
    menu2 = next(a.menu() for a in panel2.templates_menu.actions() if a.text() == "Apply template")
    menu2.actions()[0].trigger()
    assert [s.function for s in ctl2.specs] == ["SMA", "RSI"] and {s.id for s in ctl2.specs}.isdisjoint(
        {s.id for s in ctl.specs}
    )
    assert [d.title for d in chart2.indicators] == ["SMA 30", "RSI 14"]
    assert chart2.indicator_rows(ctl2.specs[1].id) == chart.indicator_rows(ctl.specs[1].id)
    ctl2.delete_template("Trend and momentum")
    assert json.loads(path.read_text())["templates"] == []

    # A corrupt file: reported, moved aside, never overwritten; saving starts a new file.
    path.write_text('{"format": "binmon.indicator-templates", oops')
    ctl.restore([{"function": "SMA"}])
    assert any("is corrupt" in m and "kept as indicator-templates.json.corrupt-" in m for m in messages)
    aside = list(tmp_path.glob("indicator-templates.json.corrupt-*"))
    assert len(aside) == 1 and aside[0].read_text().endswith("oops")
    ctl.save_template("After")
    assert [t["name"] for t in json.loads(path.read_text())["templates"]] == ["After"]
    assert aside[0].read_text().endswith("oops")
    # A file from a newer binmon is left alone.
    newer = '{"format": "binmon.indicator-templates", "v": 9, "templates": []}'
    path.write_text(newer)
    messages.clear()
    ctl.restore([])
    ctl.save_template("X")
    assert path.read_text() == newer and any("newer binmon" in m for m in messages)
    assert messages[-1].startswith("Template 'X' not saved")


def test_big_history_is_built_off_the_gui_thread(qtbot: Any) -> None:
    n = BIG_BARS + 10_000
    rng = np.random.default_rng(3)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 1e-3, n + 2)))
    t0 = 1_600_000_000_000 // 60_000 * 60_000

    def bar(i: int, c: float | None = None) -> Kline:
        c = float(close[i]) if c is None else c
        t = t0 + i * 60_000
        return Kline("XRPETH", "1m", t, t + 59_999, c, c * 1.001, c * 0.999, c, 1.0, 0, 1, 0, 0)

    bars = [bar(i) for i in range(n)]
    chart = RecordingChart()
    adapter = QtMarketAdapter(chart, _Sink(), _Sink(), _Sink())
    adapter.historyLoaded.connect(lambda _s, _i, b: chart.set_bars(b))
    ctl = IndicatorController(chart, adapter)
    ctl.restore([{"id": "rsi", "function": "RSI"}, {"id": "bb", "function": "BBANDS"}])
    chart.set_symbol(XRPETH)
    adapter.market_history("XRPETH", "1m", bars)
    assert ctl.busy and ctl.engine is None  # handed to the worker, the GUI goes on
    adapter.market_ops([Replace(bar(n - 1, 101.0)), Append(bar(n))])  # live bars meanwhile
    adapter.flush()
    with qtbot.waitSignal(ctl.feed.engineReady, timeout=20_000):
        pass
    qtbot.waitUntil(lambda: len(chart.indicator_rows("rsi")) == 20_000, timeout=20_000)
    full = [*bars[:-1], bar(n - 1, 101.0), bar(n)]
    ref = talib.RSI(closes(full), 14)
    assert_matches(chart.indicator_rows("rsi"), full[-20_000:], ref[-20_000:])
    # Adding one indicator to the big series: computed on the worker, attached, drawn.
    ctl.add(default_spec("EMA", "ema"))
    assert ctl.busy and chart.indicator_rows("ema") == []
    qtbot.waitUntil(lambda: not ctl.busy and len(chart.indicator_rows("ema")) == 20_000, timeout=20_000)
    assert_matches(chart.indicator_rows("ema"), full[-20_000:], talib.EMA(closes(full), 30)[-20_000:])
    ctl.close()


def test_older_bars_and_a_new_series(qtbot: Any, xrpeth_bars: list[Kline]) -> None:
    chart = RecordingChart()
    adapter, ctl, _p = setup(qtbot, chart, xrpeth_bars[1000:2000])
    adapter.olderLoaded.connect(lambda _s, _i, b: chart.prepend_bars(b))  # the app's controller
    ctl.add(dataclasses.replace(default_spec("EMA", "ema"), params={"timeperiod": 50}))
    adapter.market_older("XRPETH", "1m", xrpeth_bars[:1000])
    # The whole series is computed again: unstable functions (EMA) change with more history.
    full = xrpeth_bars[:2000]
    qtbot.waitUntil(lambda: len(chart.indicator_rows("ema")) == 2000, timeout=20_000)
    assert_matches(chart.indicator_rows("ema"), full, talib.EMA(closes(full), 50))
    adapter.market_ops([Append(xrpeth_bars[2000])])
    adapter.flush()
    ref = talib.EMA(closes(xrpeth_bars[:2001]), 50)
    assert chart.indicator_rows("ema")[-1] == [xrpeth_bars[2000].open_time // 1000, ref[-1]]
    # Another series: nothing computed holds; live ops before its history are ignored.
    eth = SymbolInfo("ETHBTC", "TRADING", "ETH", "BTC")
    adapter.market_switching(eth, "1m")
    chart.set_symbol(ChartSymbol("ETHBTC", "1m", "0.00000001"))
    assert ctl.engine is None and chart.indicator_rows("ema") == []
    adapter.market_ops([Append(dataclasses.replace(xrpeth_bars[0], symbol="ETHBTC"))])
    adapter.flush()
    assert chart.calls[-1][0] == "apply" and len(chart.calls[-1][1]) == 1  # candles only
    other = [dataclasses.replace(b, symbol="ETHBTC") for b in xrpeth_bars[:700]]
    adapter.market_history("ETHBTC", "1m", other)
    qtbot.waitUntil(lambda: len(chart.indicator_rows("ema")) == 700, timeout=20_000)
    assert_matches(chart.indicator_rows("ema"), other, talib.EMA(closes(other), 50))


def test_errors_become_messages(qtbot: Any, xrpeth_bars: list[Kline]) -> None:
    chart = RecordingChart()
    _a, ctl, _p = setup(qtbot, chart, xrpeth_bars[:300])
    messages: list[str] = []
    ctl.message.connect(messages.append)
    bad = dataclasses.replace(default_spec("RSI"), params={"timeperiod": -5})
    assert not ctl.add(bad)
    assert messages == ["RSI: timeperiod must be between 2 and 100000 (got -5)"] and ctl.specs == []

    def broken(*_: Any) -> None:
        raise ValueError("page gone")

    chart.set_indicator = broken  # type: ignore[method-assign,assignment]
    assert ctl.add(default_spec("SMA"))
    assert messages[-1] == "Chart: page gone"


def test_install_indicators_for_the_app(qtbot: Any, xrpeth_bars: list[Kline], tmp_path: Path) -> None:
    window = QMainWindow()
    qtbot.addWidget(window)
    chart = RecordingChart()
    adapter = QtMarketAdapter(chart, _Sink(), _Sink(), _Sink(), parent=window)
    adapter.historyLoaded.connect(lambda _s, _i, b: chart.set_bars(b))
    stored: list[list[dict[str, Any]]] = []
    saved = [{"id": "r", "function": "RSI", "params": {"timeperiod": 21}}, {"function": "NOPE"}]
    panel, ctl = install_indicators(window, chart, adapter, saved, stored.append, tmp_path / TEMPLATES_FILE)
    assert isinstance(panel, IndicatorsPanel) and ctl.parent() is window
    assert [i.title for i in panel.items()] == ["RSI 21 · close"] and stored == []  # restoring saves nothing
    assert "unknown indicator function 'NOPE'" in window.statusBar().currentMessage()
    chart.set_symbol(XRPETH)
    adapter.market_history("XRPETH", "1m", xrpeth_bars[:300])
    qtbot.waitUntil(lambda: len(chart.indicator_rows("r")) == 300, timeout=20_000)
    assert_matches(chart.indicator_rows("r"), xrpeth_bars[:300], talib.RSI(closes(xrpeth_bars[:300]), 21))
    ctl.save_template("Mine")
    assert (
        tmp_path / TEMPLATES_FILE
    ).exists() and "Saved indicator template" in window.statusBar().currentMessage()
    ctl.close()


def test_pane_arrangement_is_stable() -> None:
    a, b, c = (default_spec(f, i) for f, i in (("RSI", "a"), ("MACD", "b"), ("CCI", "c")))
    sma = default_spec("SMA", "s")
    specs = arrange([a, sma, b, c], [7, 0, 8, 7])  # c joins a's pane
    assert [s.pane for s in specs] == ["own", "price", "own", 1]
    assert resolve_panes(specs) == [1, 0, 2, 1]
    moved = arrange(specs[::-1], resolve_panes(specs)[::-1])  # reversed order keeps the groups
    assert resolve_panes(moved) == [1, 2, 0, 1]
    assert [from_dict({"function": "RSI", "pane": 0}).pane] == ["price"]


# ---------------------------------------------------------------- the real page


def read_indicator(qtbot: Any, chart: Any, indicator_id: str) -> list[list[Any]]:
    box: list[Any] = []
    chart.page_indicator(indicator_id, box.append)
    qtbot.waitUntil(lambda: bool(box), timeout=10_000)
    assert box[0] is not None
    return box[0]


def test_user_adds_rsi_21_on_the_real_page(
    chart: Any, xrpeth_bars: list[Kline], qtbot: Any, read_state: Callable[..., dict[str, Any]]
) -> None:
    bars = xrpeth_bars[:-2]
    adapter, ctl, panel = setup(qtbot, chart, bars)
    # The user: Add…, types "rsi", Enter (picks RSI, goes to its period), "21", OK.
    qtbot.mouseClick(panel.add_button, Qt.MouseButton.LeftButton)
    dlg = ctl.dialog
    assert dlg is not None
    qtbot.keyClicks(dlg.search, "rsi")
    qtbot.keyClick(dlg.search, Qt.Key.Key_Return)
    qtbot.keyClicks(dlg.param_widget("timeperiod"), "21")
    qtbot.mouseClick(dlg.ok, Qt.MouseButton.LeftButton)
    (rsi,) = ctl.specs
    assert rsi.function == "RSI" and dict(rsi.params) == {"timeperiod": 21}
    page = read_indicator(qtbot, chart, rsi.id)
    assert_matches(page, bars, talib.RSI(closes(bars), 21))
    st = read_state(chart)
    (ind,) = st["indicators"]
    assert (ind["title"], ind["pane"], ind["visible"]) == ("RSI 21", 1, True)
    ref = talib.RSI(closes(bars), 21)
    assert ind["seriesPoints"] == [int(np.isfinite(ref).sum())]  # a point per value, none in the warm-up

    # Live: the forming bar changes, then a new bar: values in the candles' batch.
    scripts: list[str] = []
    real_call = chart.bridge.call

    def spy(script: str, callback: Any = None) -> None:
        scripts.append(script)
        real_call(script, callback)

    chart.bridge.call = spy
    newer = dataclasses.replace(bars[-1], close=bars[-1].close * 1.002, trades=bars[-1].trades + 1)
    adapter.market_ops([Replace(newer)])
    adapter.market_ops([Append(xrpeth_bars[-2])])
    adapter.flush()
    chart.bridge.call = real_call
    applies = [s for s in scripts if s.startswith("binmon.apply(")]
    assert len(applies) == 1, scripts
    ops = json.loads(applies[0][len("binmon.apply(") : -1])
    assert [o[0] for o in ops] == ["u", "u", "i", "i"]  # both candles, then both RSI values
    full = [*bars[:-1], newer, xrpeth_bars[-2]]
    ref = talib.RSI(closes(full), 21)
    page = read_indicator(qtbot, chart, rsi.id)
    assert_matches(page, full, ref)
    assert page[-2:] == [[full[-2].open_time // 1000, ref[-2]], [full[-1].open_time // 1000, ref[-1]]]
    assert read_state(chart)["recent"][-1] == "apply"


def test_screenshot_chart_with_indicators_and_panel(
    chart: Any,
    xrpeth_bars: list[Kline],
    qtbot: Any,
    wait_drawn: Callable[..., dict[str, Any]],
    read_state: Callable[..., dict[str, Any]],
) -> None:
    _adapter, ctl, panel = setup(qtbot, chart, xrpeth_bars)
    for function, params in (("SMA", {"timeperiod": 20}), ("BBANDS", {}), ("RSI", {}), ("MACD", {})):
        assert ctl.add(ctl.new_spec(function, **params))  # as the dialog starts them (free colours)
    panel.setPalette(theme_palette("dark"))  # as the app's dark theme shows it
    panel.resize(300, 800)
    panel.show()
    panel.select(ctl.specs[2].id)
    wait_drawn(chart)
    qtbot.wait(100)  # the widget's own pixels follow the page's frame
    left, right = chart.grab(), panel.grab()
    img = QImage(left.width() + right.width(), max(left.height(), right.height()), QImage.Format.Format_RGB32)
    img.fill(QColor("#202020"))
    p = QPainter(img)
    p.drawPixmap(QPoint(0, 0), left)
    p.drawPixmap(QPoint(left.width(), 0), right)
    p.end()
    out = os.environ.get("BINMON_SCREENSHOT", "/tmp/indicators_ui.png")
    assert img.save(out)
    # Pixels: every indicator drew its lines / bars in its colour, in its pane (not a blank chart).
    heights = [p["height"] for p in read_state(chart)["panes"]]
    assert len(heights) == 3
    chart_img = left.toImage()
    w = chart_img.width() - 120  # the price scale's labels are in the series' colours too
    top = [0, heights[0], heights[0] + heights[1]]
    panes = [chart_img.copy(0, top[k], w, heights[k]) for k in range(3)]
    _sma, bb, rsi, macd = ctl.specs
    assert count_near(panes[0], bb.styles["upperband"].color) > 200
    assert count_near(panes[1], rsi.styles["real"].color) > 200
    assert count_near(panes[2], macd.styles["macd"].color) > 200
    assert count_near(panes[2], macd.styles["macdhist"].color, tolerance=0) > 800  # solid bars
    assert count_near(panes[1], macd.styles["macd"].color) == 0  # nothing in the wrong pane


def count_near(img: QImage, color: str, tolerance: int = 40) -> int:
    """Pixels of ``img`` within ``tolerance`` (per channel) of ``color``."""
    rgb = img.convertToFormat(QImage.Format.Format_RGB888)
    h, w = rgb.height(), rgb.width()
    arr = np.frombuffer(rgb.constBits(), np.uint8).reshape(h, rgb.bytesPerLine())[:, : w * 3].reshape(h, w, 3)
    want = QColor(color)
    target = np.array([want.red(), want.green(), want.blue()], dtype=np.int16)
    return int((np.abs(arr.astype(np.int16) - target).max(axis=2) <= tolerance).sum())
