"""The main window around a placeholder chart: signals, docks, layout persistence, theme, timezone."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC
from pathlib import Path
from zoneinfo import ZoneInfo

os.environ.setdefault("PYTEST_QT_API", "pyside6")

import pytest
from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication, QLabel

from binmon.binance.rest_codec import decode_exchange_info
from binmon.core.events import ConnectionStatus, ConnState
from binmon.core.models import ExchangeInfo, MiniTicker, TradeEvent
from binmon.ui.main_window import MainWindow, timezone_of
from binmon.ui.panels.watchlist import COL_SYMBOL

# Qt warnings fail every test here through the autouse check in tests/gui/conftest.py.


@pytest.fixture(autouse=True)
def _restore_app_look(qapp) -> Iterator[None]:
    """apply_theme changes the application's style and palette: give other tests theirs back."""
    style, palette = qapp.style().name(), QPalette(qapp.palette())
    yield
    if qapp.style().name() != style:
        qapp.setStyle(style)
    qapp.setPalette(palette)


@pytest.fixture(scope="module")
def exchange_info() -> ExchangeInfo:
    """The real 2021 spot exchangeInfo capture."""
    env = os.environ.get("BINMON_FIXTURES")
    real = Path(env) if env else Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "real"
    if not real.is_dir():
        pytest.fail(f"real market data not found at {real} (set BINMON_FIXTURES)", pytrace=False)
    line = (real / "cryptofeed" / "BINANCE.0").read_text().splitlines()[0]
    return decode_exchange_info(json.loads(line.split(": ", 1)[1]))


def _make(qtbot, exchange_info: ExchangeInfo, settings: QSettings | None = None) -> MainWindow:
    chart = QLabel("chart")
    chart.setAlignment(Qt.AlignmentFlag.AlignCenter)
    window = MainWindow(chart, settings=settings)
    qtbot.addWidget(window)
    window.set_symbol_infos(exchange_info.symbols)
    window.set_current("BTCUSDT", "1m")
    window.show()
    qtbot.waitExposed(window)
    return window


@pytest.fixture
def window(qtbot, exchange_info: ExchangeInfo) -> MainWindow:
    return _make(qtbot, exchange_info)


def test_layout_of_the_window(window: MainWindow) -> None:
    assert isinstance(window.centralWidget(), QLabel)
    assert window.watchlist_dock.widget() is window.watchlist
    assert window.trades_dock.widget() is window.trades
    assert window.statusBar() is window.status
    assert {window.watchlist_dock.objectName(), window.trades_dock.objectName()} == {
        "dock.watchlist",
        "dock.trades",
    }
    menus = [a.text() for a in window.menuBar().actions()]
    assert menus == ["&File", "&View", "&History", "&Help"]  # Help last (Help ▸ About binmon)
    assert window.windowTitle() == "BTCUSDT · 1m — binmon"
    assert window.trades_dock.windowTitle() == "Trades · BTCUSDT"


def test_user_requests_are_signalled(qtbot, window: MainWindow) -> None:
    with qtbot.waitSignal(window.symbolRequested) as sig:
        window.symbol_picker.setFocus()
        window.symbol_picker.selectAll()
        qtbot.keyClicks(window.symbol_picker, "ethbtc")
        qtbot.keyClick(window.symbol_picker, Qt.Key.Key_Return)
    assert sig.args == ["ETHBTC"]
    with qtbot.waitSignal(window.intervalRequested) as sig:
        qtbot.keyClick(window.interval_picker, Qt.Key.Key_Down)
    assert sig.args == ["3m"]

    window.watchlist.set_symbols(["XRPBTC"])
    index = window.watchlist.proxy.index(0, COL_SYMBOL)
    with qtbot.waitSignal(window.symbolRequested) as sig:
        window.watchlist.view.doubleClicked.emit(index)
    assert sig.args == ["XRPBTC"]


def test_set_current_does_not_emit(qtbot, window: MainWindow) -> None:
    with qtbot.assertNotEmitted(window.symbolRequested), qtbot.assertNotEmitted(window.intervalRequested):
        window.set_current("XRPBTC", "1M")
    assert window.symbol_picker.text() == "XRPBTC"
    assert window.interval_picker.interval() == "1M"
    assert window.windowTitle() == "XRPBTC · 1M — binmon"
    # The trades panel took XRPBTC's precision (tickSize 1e-8, stepSize 1).
    window.trades.add_trades([TradeEvent(1, "XRPBTC", 1, 0.00000638, 1500.0, 1, False)])
    m = window.trades.model
    assert (m.data(m.index(0, 1)), m.data(m.index(0, 2))) == ("0.00000638", "1500")


def test_docks_hide_and_come_back(qtbot, window: MainWindow) -> None:
    view_actions = {a.text(): a for a in window.menuBar().actions()[1].menu().actions()}
    trades_toggle = view_actions["Trades"]
    assert trades_toggle is window.trades_dock.toggleViewAction()
    window.trades_dock.close()  # the dock's own close button
    qtbot.waitUntil(lambda: not window.trades_dock.isVisible())
    assert not trades_toggle.isChecked()
    trades_toggle.trigger()
    qtbot.waitUntil(window.trades_dock.isVisible)
    view_actions["Watchlist"].trigger()
    qtbot.waitUntil(lambda: not window.watchlist_dock.isVisible())
    view_actions["Watchlist"].trigger()
    qtbot.waitUntil(window.watchlist_dock.isVisible)


def test_layout_round_trip_and_closing(qtbot, exchange_info: ExchangeInfo, tmp_path: Path) -> None:
    settings = QSettings(str(tmp_path / "ui.ini"), QSettings.Format.IniFormat)
    first = _make(qtbot, exchange_info, settings)
    assert not first.restore_layout()  # nothing saved yet
    # Within the offscreen screen (800x800), which clamps larger windows.
    first.resize(760, 560)
    first.trades_dock.hide()
    first.watchlist.view.sortByColumn(2, Qt.SortOrder.DescendingOrder)
    qtbot.waitUntil(lambda: first.size().width() == 760)
    with qtbot.waitSignal(first.closing):
        first.quit_action.trigger()  # File > Quit closes the window, which saves the layout
    assert not first.isVisible()
    assert "mainwindow" in QSettings(str(tmp_path / "ui.ini"), QSettings.Format.IniFormat).childGroups()

    second = _make(qtbot, exchange_info, QSettings(str(tmp_path / "ui.ini"), QSettings.Format.IniFormat))
    assert second.trades_dock.isVisible()
    assert second.restore_layout()
    qtbot.waitUntil(lambda: not second.trades_dock.isVisible())
    assert (second.size().width(), second.size().height()) == (760, 560)
    header = second.watchlist.view.horizontalHeader()
    assert (header.sortIndicatorSection(), header.sortIndicatorOrder()) == (2, Qt.SortOrder.DescendingOrder)
    assert not MainWindow(QLabel(), settings=None).save_layout()


def test_theme_switch_changes_the_palette(qtbot, qapp, window: MainWindow) -> None:
    with qtbot.waitSignal(window.themeRequested) as sig:
        window.theme_actions["dark"].trigger()
    assert sig.args == ["dark"]
    assert qapp.style().name().lower() == "fusion"
    assert QApplication.palette().color(QPalette.ColorRole.Window) == QColor("#1e222d")
    # Widgets pick the application palette up through posted events.
    qtbot.waitUntil(
        lambda: window.watchlist.view.palette().color(QPalette.ColorRole.Base) == QColor("#131722")
    )
    with qtbot.assertNotEmitted(window.themeRequested):
        window.apply_theme("light")
    assert QApplication.palette().color(QPalette.ColorRole.Window).lightness() > 200
    assert window.theme() == "light" and window.theme_actions["light"].isChecked()
    with pytest.raises(ValueError):
        window.apply_theme("solarized")


def test_timezone_menu_and_chooser(qtbot, window: MainWindow) -> None:
    window.trades.add_trades([TradeEvent(1_570_752_000_123, "BTCUSDT", 1, 1.0, 1.0, 1_570_752_000_123, True)])
    m = window.trades.model
    assert window.timezone() == "UTC" and m.data(m.index(0, 0)) == "00:00:00.123"
    with qtbot.waitSignal(window.timezoneRequested) as sig:
        window.tz_actions["local"].trigger()
    assert sig.args == ["local"] and window.timezone() == "local"

    dialog = window.choose_timezone()
    # open(), not exec(): window-modal and returning at once (a nested exec() loop breaks qasync).
    assert dialog.isVisible() and dialog.windowModality() == Qt.WindowModality.WindowModal
    dialog.setTextValue("Asia/Tokyo")
    with qtbot.waitSignal(window.timezoneRequested) as sig:
        dialog.accept()
    assert sig.args == ["Asia/Tokyo"]
    assert m.data(m.index(0, 0)) == "09:00:00.123"
    assert window.tz_other_action.isVisible() and window.tz_other_action.isChecked()
    assert window.tz_other_action.text() == "Asia/Tokyo"

    dialog = window.choose_timezone()
    with qtbot.assertNotEmitted(window.timezoneRequested):
        dialog.reject()
    assert window.timezone() == "Asia/Tokyo"
    window.apply_timezone("UTC")
    assert not window.tz_other_action.isVisible() and window.tz_actions["UTC"].isChecked()
    with pytest.raises(ValueError):
        window.apply_timezone("Mars/Olympus_Mons")
    assert window.timezone() == "UTC"
    assert timezone_of("UTC") is UTC and timezone_of("local") is None
    assert timezone_of("Europe/Berlin") == ZoneInfo("Europe/Berlin")


def test_screenshot_of_a_populated_window(qtbot, window: MainWindow, tmp_path: Path) -> None:
    """Render the window with populated panels and save it (BINMON_SCREENSHOT_DIR or tmp)."""
    window.apply_theme("dark")
    window.resize(1280, 800)
    window.watchlist.set_symbols(["BTCUSDT", "ETHUSDT", "ETHBTC", "BNBBTC", "XRPBTC", "DOGEUSDT"])
    quotes = {"BTCUSDT": (57312.15, 54870.0), "ETHUSDT": (3544.21, 3601.0), "ETHBTC": (0.061833, 0.0634)}
    quotes |= {"BNBBTC": (0.007092, 0.00695), "XRPBTC": (0.00000638, 0.0000065), "DOGEUSDT": (0.2391, 0.2388)}
    window.watchlist.update_tickers(
        MiniTicker(1, s, c, o, max(c, o), min(c, o), 1e5, 3.2e6 * (i + 1) ** 3)
        for i, (s, (c, o)) in enumerate(quotes.items())
    )
    t0 = 1_633_998_511_000
    trades = [
        TradeEvent(
            t0 + 41 * i,
            "BTCUSDT",
            i,
            57312.15 + (i % 13 - 6) * 0.37,
            0.00042 * (i % 9 + 1),
            t0 + 41 * i,
            i % 3 == 0,
        )
        for i in range(300)
    ]
    window.trades.add_trades(trades)
    window.status.set_status(ConnectionStatus(ConnState.LIVE, "spot"))
    window.status.set_feed(118.0, 41.5)
    window.status.showMessage("Loaded 1000 bars of BTCUSDT 1m")
    qtbot.wait(50)
    image = window.grab().toImage()
    out = Path(os.environ.get("BINMON_SCREENSHOT_DIR", str(tmp_path))) / "main_window.png"
    assert image.save(str(out))
    # Not blank: the dark theme's window colour and some panel text colour are both there.
    colours = {
        image.pixelColor(x, y).name() for x in range(0, image.width(), 7) for y in range(0, image.height(), 7)
    }
    assert "#1e222d" in colours and len(colours) > 20
