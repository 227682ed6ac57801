"""Help ▸ About binmon: the version, binmon's licence, and the bundled components' licences.

The texts come from :mod:`binmon.licenses` (the same data the .deb's copyright file is made
from). Lightweight Charts' attribution notice and the link to tradingview.com its licence asks
for are shown in full. Opened with ``open()`` (never ``exec()``: see the platform notes).
"""

from __future__ import annotations

import html
import platform
import sys
from pathlib import Path

from PySide6.QtCore import Qt, qVersion
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from binmon import __version__
from binmon.licenses import APP_COPYRIGHT, APP_HOMEPAGE, APP_LICENSE, COMPONENTS, LWC_NOTICE
from binmon.resources import resource_path


def about_html() -> str:
    """The licences part of the dialog, as HTML (components in a table, then the TradingView notice)."""
    rows = "".join(
        f"<tr><td><a href='{html.escape(c.url)}'>{html.escape(c.name)}</a></td>"
        f"<td>{html.escape(c.license)}</td><td>{html.escape(c.copyright)}"
        + (f"<br><small>{html.escape(c.note)}</small>" if c.note else "")
        + "</td></tr>"
        for c in COMPONENTS
    )
    notice = "<br>".join(html.escape(line) for line in LWC_NOTICE.splitlines())
    notice = notice.replace(
        "https://www.tradingview.com/",
        "<a href='https://www.tradingview.com/'>https://www.tradingview.com/</a>",
    )
    return (
        f"<p>binmon is free software under the <a href='{APP_HOMEPAGE}'>GNU General Public License, "
        f"version 3 or later</a> ({APP_LICENSE}), copyright {html.escape(APP_COPYRIGHT)}. It comes "
        "with no warranty.</p>"
        "<p>The charts are made with TradingView Lightweight Charts™ (Apache-2.0):</p>"
        f"<blockquote>{notice}</blockquote>"
        "<p>binmon bundles these components:</p>"
        "<table cellspacing='0' cellpadding='3' border='1'>"
        "<tr><th>Component</th><th>Licence</th><th>Copyright</th></tr>"
        f"{rows}</table>"
        f"<p>{html.escape(_licence_texts_note())}</p>"
    )


def _licence_texts_note() -> str:
    bundle = getattr(sys, "_MEIPASS", None)  # the packaged app carries every licence text
    if bundle:
        return f"The full licence texts are in {Path(bundle) / 'licenses'}."
    return "The full licence texts come with each component's distribution."


class AboutDialog(QDialog):
    """The About box. :attr:`header` (version line) and :attr:`licences` (a QTextBrowser) for tests."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("About binmon")
        self.setObjectName("aboutDialog")
        self.resize(640, 560)
        icon = QLabel()
        pixmap = QPixmap(str(resource_path("icons", "binmon-64.png")))
        if not pixmap.isNull():
            icon.setPixmap(pixmap)
        self.header = QLabel(
            f"<h2>binmon {html.escape(__version__)}</h2>"
            "<p>Desktop Binance market monitor: live charts, TA-Lib indicators, alerts and backtests.</p>"
            f"<p><small>Qt {qVersion()} · Python {platform.python_version()}</small></p>"
        )
        self.header.setTextFormat(Qt.TextFormat.RichText)
        self.header.setWordWrap(True)
        top = QHBoxLayout()
        top.addWidget(icon, 0, Qt.AlignmentFlag.AlignTop)
        top.addWidget(self.header, 1)
        self.licences = QTextBrowser()
        self.licences.setOpenExternalLinks(True)
        self.licences.setHtml(about_html())
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.licences, 1)
        layout.addWidget(buttons)


def open_about_dialog(parent: QWidget | None) -> AboutDialog:
    """Open (or raise) the About dialog over ``parent``; it is deleted when closed."""
    if parent is not None:
        existing = parent.findChild(AboutDialog)
        if existing is not None:
            existing.raise_()
            existing.activateWindow()
            return existing
    dlg = AboutDialog(parent)
    dlg.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    dlg.open()
    return dlg
