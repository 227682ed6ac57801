"""Watchlist, trades, pickers and status bar against real exchangeInfo and real trades."""

from __future__ import annotations

import json
import os
import random
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

os.environ.setdefault("PYTEST_QT_API", "pyside6")

import pytest
from PySide6.QtCore import QModelIndex, Qt

from binmon.binance.rest_codec import decode_exchange_info
from binmon.core.events import ConnectionStatus, ConnState
from binmon.core.intervals import INTERVALS
from binmon.core.models import ExchangeInfo, MiniTicker, TradeEvent
from binmon.ui.panels.trades import COL_PRICE, COL_SIZE, COL_TIME, TradesPanel
from binmon.ui.panels.watchlist import (
    COL_CHANGE,
    COL_LAST,
    COL_SYMBOL,
    COL_VOLUME,
    DOWN_COLOR,
    UP_COLOR,
    WatchlistPanel,
)
from binmon.ui.widgets.status_bar import StatusBar
from binmon.ui.widgets.symbol_picker import MAX_MATCHES, IntervalPicker, SymbolPicker, rank_symbols

# Qt warnings fail every test here through the autouse check in tests/gui/conftest.py.


def _real_dir() -> Path:
    env = os.environ.get("BINMON_FIXTURES")
    path = Path(env) if env else Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "real"
    if not path.is_dir():
        pytest.fail(f"real market data not found at {path} (set BINMON_FIXTURES)", pytrace=False)
    return path


@pytest.fixture(scope="module")
def exchange_info() -> ExchangeInfo:
    """The real 2021 spot exchangeInfo capture (1,262 TRADING and 433 BREAK symbols)."""
    line = (_real_dir() / "cryptofeed" / "BINANCE.0").read_text().splitlines()[0]
    return decode_exchange_info(json.loads(line.split(": ", 1)[1]))


@pytest.fixture(scope="module")
def real_trades() -> list[TradeEvent]:
    """12,477 real XRPETH trades, oldest first."""
    out = []
    for line in (_real_dir() / "XRPETH-trades-2019-10-11_13.csv").read_text().splitlines():
        tid, price, qty, _quote, t, maker, _best = line.split(",")
        out.append(TradeEvent(int(t), "XRPETH", int(tid), float(price), float(qty), int(t), maker == "True"))
    return out


def _ticker(sym: str, close: float, open_: float, qvol: float, t: int = 1) -> MiniTicker:
    return MiniTicker(t, sym, close, open_, max(close, open_), min(close, open_), qvol / close, qvol)


def _column(panel: WatchlistPanel, col: int) -> list[str]:
    p = panel.proxy
    return [p.data(p.index(r, col)) for r in range(p.rowCount())]


@pytest.fixture
def watchlist(qtbot, exchange_info: ExchangeInfo) -> WatchlistPanel:
    panel = WatchlistPanel()
    qtbot.addWidget(panel)
    panel.set_symbol_info({s.symbol: s for s in exchange_info.symbols})
    panel.set_symbols(["BTCUSDT", "ETHBTC", "XRPBTC", "DOGEUSDT"])
    return panel


# ------------------------------------------------------------------ watchlist


def test_watchlist_model_is_consistent(qtmodeltester, watchlist: WatchlistPanel) -> None:
    watchlist.update_tickers([_ticker("BTCUSDT", 57312.15, 55000, 2.1e9)])
    qtmodeltester.check(watchlist.model)
    # The tester keeps watching while the list is edited.
    watchlist.add_symbol("ETHUSDT")
    watchlist.model.remove_symbols(["ETHBTC"])
    watchlist.set_symbols(["BNBBTC"])


def test_watchlist_precision_sort_and_colours(watchlist: WatchlistPanel) -> None:
    watchlist.update_tickers(
        [
            _ticker("BTCUSDT", 57312.1, 52000.0, 2.1e9),  # +10.22 %
            _ticker("ETHBTC", 0.061833, 0.0634, 3.1e3),  # -2.47 %
            _ticker("XRPBTC", 0.00000638, 0.0000058, 12.5),  # +10.0 %
            _ticker("DOGEUSDT", 0.2391, 0.2172, 9.7e8),  # +10.08 %
        ]
    )
    rows = dict(zip(_column(watchlist, COL_SYMBOL), _column(watchlist, COL_LAST), strict=True))
    # Each at its own tickSize precision: XRPBTC 1e-8, ETHBTC 1e-6, BTCUSDT 0.01, DOGEUSDT 1e-4.
    assert rows == {"BTCUSDT": "57312.10", "ETHBTC": "0.061833", "XRPBTC": "0.00000638", "DOGEUSDT": "0.2391"}

    watchlist.view.sortByColumn(COL_CHANGE, Qt.SortOrder.DescendingOrder)
    # Numeric, not text, order: "+9.x" would sort above "+10.x" as strings.
    assert _column(watchlist, COL_SYMBOL) == ["BTCUSDT", "DOGEUSDT", "XRPBTC", "ETHBTC"]
    assert _column(watchlist, COL_CHANGE) == ["+10.22%", "+10.08%", "+10.00%", "-2.47%"]
    watchlist.view.sortByColumn(COL_VOLUME, Qt.SortOrder.AscendingOrder)
    assert _column(watchlist, COL_SYMBOL) == ["XRPBTC", "ETHBTC", "DOGEUSDT", "BTCUSDT"]
    assert _column(watchlist, COL_VOLUME) == ["12.50", "3.10K", "970.00M", "2.10B"]

    m = watchlist.model
    row_of = {s: i for i, s in enumerate(m.symbols())}
    assert m.data(m.index(row_of["BTCUSDT"], COL_CHANGE), Qt.ItemDataRole.ForegroundRole) == UP_COLOR
    assert m.data(m.index(row_of["ETHBTC"], COL_CHANGE), Qt.ItemDataRole.ForegroundRole) == DOWN_COLOR

    # A live re-sort: ETHBTC rallies to the top of a change-% sort.
    watchlist.view.sortByColumn(COL_CHANGE, Qt.SortOrder.DescendingOrder)
    watchlist.update_tickers([_ticker("ETHBTC", 0.0761, 0.0634, 3.3e3, t=2)])
    assert _column(watchlist, COL_SYMBOL)[0] == "ETHBTC"
    # The Last cell shows the direction of the last tick.
    assert m.data(m.index(row_of["ETHBTC"], COL_LAST), Qt.ItemDataRole.ForegroundRole) == UP_COLOR


def test_watchlist_emits_data_changed_for_changed_cells_only(qtbot, watchlist: WatchlistPanel) -> None:
    first = [_ticker(s, 1.0, 1.0, 100.0) for s in ("BTCUSDT", "ETHBTC", "XRPBTC", "DOGEUSDT")]
    watchlist.update_tickers(first)
    spans: list[tuple[int, int, int, int]] = []

    def record(tl: QModelIndex, br: QModelIndex, _roles: object) -> None:
        spans.append((tl.row(), tl.column(), br.row(), br.column()))

    watchlist.model.dataChanged.connect(record)
    others = [_ticker(f"X{i}USDT", 1.0 + i, 1.0, 5.0) for i in range(2_000)]  # not listed
    same = _ticker("BTCUSDT", 1.0, 1.0, 100.0, t=2)  # new event, same values
    vol_only = _ticker("ETHBTC", 1.0, 1.0, 250.0, t=2)
    assert watchlist.update_tickers([*others, same, vol_only]) == 1
    row = watchlist.model.symbols().index("ETHBTC")
    assert spans == [(row, COL_VOLUME, row, COL_VOLUME)]


def test_watchlist_handles_2000_symbols_every_second(watchlist: WatchlistPanel) -> None:
    rnd = random.Random(7)
    names = [f"S{i:04d}USDT" for i in range(2_000)]
    watchlist.set_symbols(names)
    watchlist.view.sortByColumn(COL_CHANGE, Qt.SortOrder.DescendingOrder)
    last: dict[str, MiniTicker] = {}
    for second in range(5):
        batch = [_ticker(n, rnd.uniform(0.5, 1.5), 1.0, rnd.uniform(1, 1e9), t=second) for n in names]
        last.update((t.symbol, t) for t in batch)
        assert watchlist.update_tickers(batch) == 2_000
    assert watchlist.proxy.rowCount() == 2_000
    changes = [
        watchlist.proxy.data(watchlist.proxy.index(r, COL_CHANGE), Qt.ItemDataRole.UserRole + 1)
        for r in range(2_000)
    ]
    assert changes == sorted((t.change_pct for t in last.values()), reverse=True)


def test_watchlist_double_click_activates(qtbot, watchlist: WatchlistPanel) -> None:
    watchlist.show()
    qtbot.waitExposed(watchlist)
    watchlist.view.sortByColumn(COL_SYMBOL, Qt.SortOrder.AscendingOrder)
    index = watchlist.proxy.index(2, COL_LAST)  # sorted: BTCUSDT DOGEUSDT ETHBTC XRPBTC
    pos = watchlist.view.visualRect(index).center()
    # Qt 6's QTest double-click sends no press first; the view only activates the pressed index.
    qtbot.mouseClick(watchlist.view.viewport(), Qt.MouseButton.LeftButton, pos=pos)
    with qtbot.waitSignal(watchlist.symbolActivated) as sig:
        qtbot.mouseDClick(watchlist.view.viewport(), Qt.MouseButton.LeftButton, pos=pos)
    assert sig.args == ["ETHBTC"]


def test_watchlist_add_and_remove(qtbot, watchlist: WatchlistPanel) -> None:
    watchlist.show()
    qtbot.waitExposed(watchlist)
    # Completion offers only TRADING symbols (OAXETH was in BREAK in this capture).
    offered = watchlist.add_edit.completer().model().stringList()
    assert "ETHUSDT" in offered and "OAXETH" not in offered

    with qtbot.waitSignal(watchlist.symbolsChanged) as sig:
        qtbot.keyClicks(watchlist.add_edit, "ethusdt")
        qtbot.keyClick(watchlist.add_edit, Qt.Key.Key_Return)
    assert sig.args == [["BTCUSDT", "ETHBTC", "XRPBTC", "DOGEUSDT", "ETHUSDT"]]
    assert watchlist.add_edit.text() == ""

    with qtbot.assertNotEmitted(watchlist.symbolsChanged):
        watchlist.add_edit.setText("NOPEUSDT")
        qtbot.keyClick(watchlist.add_edit, Qt.Key.Key_Return)
        assert "Unknown symbol NOPEUSDT" in watchlist.error_text()
        assert not watchlist.add_symbol("ETHUSDT")  # already listed
    qtbot.keyClicks(watchlist.add_edit, "x")  # typing clears the message
    assert watchlist.error_text() == ""

    watchlist.view.sortByColumn(COL_SYMBOL, Qt.SortOrder.AscendingOrder)
    sel = watchlist.view.selectionModel()
    watchlist.view.setCurrentIndex(watchlist.proxy.index(0, 0))  # BTCUSDT
    sel.select(watchlist.proxy.index(3, 0), sel.SelectionFlag.Select | sel.SelectionFlag.Rows)  # ETHUSDT
    watchlist.view.setFocus()
    with qtbot.waitSignal(watchlist.symbolsChanged) as sig:
        qtbot.keyClick(watchlist.view, Qt.Key.Key_Delete)
    assert sig.args == [["ETHBTC", "XRPBTC", "DOGEUSDT"]]

    watchlist.view.setCurrentIndex(watchlist.proxy.index(0, 0))  # DOGEUSDT after the removal
    with qtbot.waitSignal(watchlist.symbolsChanged) as sig:
        watchlist.remove_action.trigger()  # the context-menu entry
    assert sig.args == [["ETHBTC", "XRPBTC"]]
    assert watchlist.view.contextMenuPolicy() == Qt.ContextMenuPolicy.ActionsContextMenu


# ------------------------------------------------------------------ trades


def _trade(i: int, maker: bool = False) -> TradeEvent:
    return TradeEvent(
        1_570_752_000_000 + i,
        "BTCUSDT",
        i,
        57_000 + i / 100,
        0.001 * (i % 7 + 1),
        1_570_752_000_000 + i,
        maker,
    )


def test_trades_burst_keeps_newest_on_top(qtbot, qtmodeltester) -> None:
    panel = TradesPanel()
    qtbot.addWidget(panel)
    qtmodeltester.check(panel.model)
    panel.add_trades([_trade(i, maker=i % 2 == 1) for i in range(5_000)])
    ids = [t.trade_id for t in panel.trades()]
    assert ids == list(range(4_999, 4_799, -1))
    m = panel.model
    assert m.rowCount() == 200
    # Row 0 is trade 4999 (seller aggressor: red); row 1 is 4998 (buyer aggressor: green).
    assert m.data(m.index(0, COL_PRICE), Qt.ItemDataRole.ForegroundRole) == DOWN_COLOR
    assert m.data(m.index(1, COL_SIZE), Qt.ItemDataRole.ForegroundRole) == UP_COLOR
    panel.set_precision(2, 5)
    assert m.data(m.index(0, COL_PRICE)) == "57049.99"
    assert m.data(m.index(0, COL_SIZE)) == "0.00200"  # 0.001 * (4999 % 7 + 1)

    # Small batches go through insert/remove (the model tester checks the signals).
    panel.add_trades([_trade(5_000 + i) for i in range(3)])
    panel.add_trades([_trade(5_003)])
    assert [t.trade_id for t in panel.trades()[:5]] == [5_003, 5_002, 5_001, 5_000, 4_999]
    assert len(panel.trades()) == 200 and panel.trades()[-1].trade_id == 4_804
    panel.clear()
    assert m.rowCount() == 0


def test_trades_real_feed_in_random_bursts(qtbot, qtmodeltester, exchange_info, real_trades) -> None:
    panel = TradesPanel(max_trades=150)
    qtbot.addWidget(panel)
    qtmodeltester.check(panel.model)
    panel.set_symbol_info(exchange_info.symbol("XRPETH"))
    panel.set_timezone(UTC)
    rnd = random.Random(3)
    i = 0
    while i < len(real_trades):
        n = rnd.choice((1, 2, 5, 40, 74, 75, 149, 150, 400))
        panel.add_trades(real_trades[i : i + n])
        i += n
    assert panel.trades() == real_trades[::-1][:150]
    m = panel.model
    newest = real_trades[-1]
    assert m.data(m.index(0, COL_PRICE)) == f"{newest.price:.7f}"  # XRPETH tickSize 0.00000010
    assert m.data(m.index(0, COL_SIZE)) == f"{newest.qty:.0f}"  # stepSize 1.00000000
    when = datetime.fromtimestamp(newest.trade_time / 1000, UTC)
    assert m.data(m.index(0, COL_TIME)) == f"{when:%H:%M:%S}.{newest.trade_time % 1000:03d}"
    assert m.data(m.index(0, COL_TIME)).startswith("11:19:")  # the capture ends 11:19 UTC
    panel.set_timezone(ZoneInfo("Asia/Tokyo"))
    assert m.data(m.index(0, COL_TIME)).startswith("20:19:")


# ------------------------------------------------------------------ pickers


@pytest.fixture
def picker(qtbot, exchange_info: ExchangeInfo) -> SymbolPicker:
    p = SymbolPicker()
    qtbot.addWidget(p)
    p.set_symbols(exchange_info.symbols)
    p.show()
    qtbot.waitExposed(p)
    return p


def test_picker_search_ranks_trading_symbols(picker: SymbolPicker, exchange_info: ExchangeInfo) -> None:
    found = picker.matches("eth")
    assert found[:4] == ["ETHUSDT", "ETHUSDC", "ETHBUSD", "ETHBTC"]  # base ETH, big quotes first
    assert len(found) == MAX_MATCHES
    everything = rank_symbols("eth", exchange_info.symbols, limit=10_000)
    assert everything[:MAX_MATCHES] == found
    assert everything.index("ETHBTC") < everything.index("XRPETH")  # quote-only matches last
    status = {s.symbol: s.status for s in exchange_info.symbols}
    assert "OAXETH" in status and status["OAXETH"] == "BREAK"
    assert all(status[s] == "TRADING" for s in everything)
    assert picker.matches("") == []
    assert picker.matches("  BtCuSd ")[:2] == ["BTCUSDT", "BTCUSDC"]


def test_picker_enter_emits_once_and_rejects_unknown(qtbot, picker: SymbolPicker) -> None:
    with qtbot.waitSignal(picker.symbolChosen) as sig:
        qtbot.keyClicks(picker, "ethusdt")
        qtbot.keyClick(picker, Qt.Key.Key_Return)
    assert sig.args == ["ETHUSDT"] and picker.current() == "ETHUSDT"
    with qtbot.assertNotEmitted(picker.symbolChosen):
        qtbot.keyClick(picker, Qt.Key.Key_Return)  # nothing edited since: no second request

    for text, reason in (("FOOBAR", "Unknown symbol"), ("OAXETH", "not trading")):
        picker.clear()
        with qtbot.assertNotEmitted(picker.symbolChosen):
            qtbot.keyClicks(picker, text)
            qtbot.keyClick(picker, Qt.Key.Key_Return)
        assert reason in picker.error_text()
        assert "#ef5350" in picker.styleSheet()
    picker.set_current("BTCUSDT")
    assert picker.error_text() == "" and picker.text() == "BTCUSDT"


def test_picker_popup_choice_emits_once(qtbot, picker: SymbolPicker) -> None:
    chosen: list[str] = []
    picker.symbolChosen.connect(chosen.append)
    picker.setFocus()
    qtbot.keyClicks(picker, "eth")
    popup = picker.completer().popup()
    qtbot.waitUntil(popup.isVisible)
    qtbot.keyClick(popup, Qt.Key.Key_Down)
    qtbot.keyClick(popup, Qt.Key.Key_Return)
    assert chosen == ["ETHUSDT"]


def test_interval_picker(qtbot) -> None:
    p = IntervalPicker()
    qtbot.addWidget(p)
    assert [p.itemText(i) for i in range(p.count())] == list(INTERVALS) and p.count() == 16
    with qtbot.assertNotEmitted(p.intervalChosen):
        p.set_interval("1M")
    assert p.interval() == "1M"
    with pytest.raises(ValueError):
        p.set_interval("2m")
    with qtbot.waitSignal(p.intervalChosen) as sig:
        qtbot.keyClick(p, Qt.Key.Key_Up)
    assert sig.args == ["1w"]


# ------------------------------------------------------------------ status bar


@pytest.mark.parametrize(
    ("status", "text"),
    [
        (ConnectionStatus(ConnState.LIVE, "spot"), "live"),
        (ConnectionStatus(ConnState.CONNECTING, "spot"), "connecting"),
        (
            ConnectionStatus(ConnState.RECONNECTING, "spot", attempt=3, retry_in=4.0),
            "reconnecting (attempt 3, retry in 4 s)",
        ),
        (ConnectionStatus(ConnState.RECONNECTING, "spot", attempt=1), "reconnecting (attempt 1)"),
        (ConnectionStatus(ConnState.BACKFILLING, "spot"), "backfilling"),
        (
            ConnectionStatus(ConnState.OFFLINE, "spot", reason="cannot reach stream.binance.com"),
            "offline: cannot reach stream.binance.com",
        ),
        (ConnectionStatus(ConnState.OFFLINE, "spot", attempt=5, retry_in=30.0), "offline: retry in 30 s"),
        (ConnectionStatus(ConnState.CLOSED, "spot"), "closed"),
    ],
)
def test_status_bar_states(qtbot, status: ConnectionStatus, text: str) -> None:
    bar = StatusBar()
    qtbot.addWidget(bar)
    assert bar.state_text() == "—"
    bar.set_status(status)
    assert bar.state_text() == text
    assert text.replace("<", "&lt;") in bar.state_label.text() and "●" in bar.state_label.text()


def test_status_bar_feed_and_countdown(qtbot) -> None:
    now = [100.0]
    bar = StatusBar(clock=lambda: now[0])
    qtbot.addWidget(bar)
    assert bar.delay_label.text() == "delay —"
    bar.set_feed(120.0, 35.2)
    assert (bar.delay_label.text(), bar.rate_label.text()) == ("delay 120 ms", "35 msg/s")
    assert bar.delay_label.styleSheet() == ""
    bar.set_feed(2_500.0, 4.0)
    assert "#f0b90b" in bar.delay_label.styleSheet()  # far behind the market: amber
    bar.set_status(ConnectionStatus(ConnState.RECONNECTING, "spot", attempt=2, retry_in=8.0, reason="<EOF>"))
    now[0] += 3.0
    bar.refresh()
    assert bar.state_text() == "reconnecting (attempt 2, retry in 5 s)"
    assert "&lt;EOF&gt;" not in bar.state_label.toolTip() and "<EOF>" in bar.state_label.toolTip()
    bar.showMessage("Loaded 1000 bars", 2000)
    assert bar.currentMessage() == "Loaded 1000 bars"
