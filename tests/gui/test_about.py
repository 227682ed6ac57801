"""Help ▸ About: version, binmon's GPL licence, every bundled component's licence and
TradingView's attribution notice with its link (binmon.licenses is the single source)."""

from __future__ import annotations

import os

os.environ.setdefault("PYTEST_QT_API", "pyside6")

from PySide6.QtWidgets import QLabel

from binmon import __version__
from binmon.licenses import COMPONENTS, LWC_NOTICE
from binmon.ui.dialogs.about import AboutDialog
from binmon.ui.main_window import MainWindow


def test_about_from_the_help_menu_shows_version_licences_and_attribution(qtbot, tmp_path) -> None:
    window = MainWindow(QLabel("chart"))
    qtbot.addWidget(window)
    menus = [a.text() for a in window.menuBar().actions()]
    assert menus[-1] == "&Help"
    window.about_action.trigger()
    dlg = window.findChild(AboutDialog)
    assert dlg is not None and dlg.isVisible()
    assert f"binmon {__version__}" in dlg.header.text()

    text = dlg.licences.toPlainText()
    assert "GPL-3.0-or-later" in text
    assert "GNU General Public License, version 3 or later" in text
    names = {c.name for c in COMPONENTS}
    assert {
        "TradingView Lightweight Charts",
        "backtrader",
        "pandas",
        "NumPy",
        "pyqtgraph",
        "requests",
    } <= names
    for c in COMPONENTS:
        assert c.name in text and c.license in text, c
    by_name = {c.name: c.license for c in COMPONENTS}
    assert by_name["backtrader"] == "GPL-3.0-or-later"
    assert by_name["TradingView Lightweight Charts"] == "Apache-2.0"
    assert by_name["Qt 6 and PySide6 / Shiboken6"] == "LGPL-3.0-only"
    # TradingView's notice, line for line, and the link its licence asks for.
    for line in LWC_NOTICE.splitlines():
        assert line in text
    assert "href='https://www.tradingview.com/'" in dlg.licences.toHtml().replace('"', "'")

    # A second trigger raises the same dialog instead of stacking another.
    window.about_action.trigger()
    assert window.findChildren(AboutDialog) == [dlg]
    dlg.reject()
    qtbot.waitUntil(lambda: not dlg.isVisible())


def test_about_dialog_shows_the_icon(qtbot) -> None:
    dlg = AboutDialog()
    qtbot.addWidget(dlg)
    icons = [
        lbl for lbl in dlg.findChildren(QLabel) if lbl.pixmap() is not None and not lbl.pixmap().isNull()
    ]
    assert icons and icons[0].pixmap().width() == 64
