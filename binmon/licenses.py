"""binmon's licence and those of the components a packaged binmon ships, as data.

One list for every place that states them: the About dialog (binmon.ui.dialogs.about) and the
Debian package's machine-readable ``copyright`` file (tools/make_deb.py). Licences are SPDX
expressions. Because backtrader is GPL-3.0-or-later, the bundle as a whole is distributed under
GPL-3.0-or-later; every other component's licence is compatible with that.
"""

from __future__ import annotations

from dataclasses import dataclass

APP_LICENSE = "GPL-3.0-or-later"
APP_COPYRIGHT = "binmon developers"
APP_HOMEPAGE = "https://www.gnu.org/licenses/gpl-3.0.html"

#: The attribution notice of TradingView Lightweight Charts (its NOTICE file, which the npm
#: package omits; upstream writes the "c" of "(c)" as a Cyrillic letter). Its README asks for
#: this notice and a link to https://www.tradingview.com/ where users see it: the chart keeps
#: the default attribution logo (a link to tradingview.com) and the About dialog shows both.
LWC_NOTICE = (
    "TradingView Lightweight Charts\nCopyright (c) 2023 TradingView, Inc. https://www.tradingview.com/"
)


@dataclass(frozen=True)
class Component:
    """A bundled third-party component."""

    name: str
    license: str  # SPDX expression
    copyright: str
    url: str
    note: str = ""


COMPONENTS: tuple[Component, ...] = (
    Component("Python", "PSF-2.0", "Python Software Foundation", "https://www.python.org/"),
    Component(
        "Qt 6 and PySide6 / Shiboken6",
        "LGPL-3.0-only",
        "The Qt Company Ltd. and other contributors",
        "https://www.qt.io/",
        "used under the LGPL-3.0; the bundled Qt libraries are unmodified shared libraries and "
        "may be replaced",
    ),
    Component(
        "Qt WebEngine (Chromium)",
        "LGPL-3.0-only AND BSD-3-Clause",
        "The Qt Company Ltd.; The Chromium Authors and other third parties",
        "https://doc.qt.io/qt-6/qtwebengine-licensing.html",
        "Chromium is BSD-3-Clause and includes third-party code under other permissive licences",
    ),
    Component(
        "TradingView Lightweight Charts",
        "Apache-2.0",
        "2023 TradingView, Inc.",
        "https://www.tradingview.com/",
        "includes parts of tslib (0BSD, (c) Microsoft Corporation) and fancy-canvas (MIT, TradingView)",
    ),
    Component("TA-Lib (C library)", "BSD-3-Clause", "TicTacTec LLC and contributors", "https://ta-lib.org/"),
    Component(
        "TA-Lib (Python wrapper)",
        "BSD-2-Clause",
        "John Benediktsson",
        "https://github.com/TA-Lib/ta-lib-python",
    ),
    Component("backtrader", "GPL-3.0-or-later", "Daniel Rodriguez", "https://www.backtrader.com/"),
    Component(
        "pandas", "BSD-3-Clause", "The pandas Development Team and others", "https://pandas.pydata.org/"
    ),
    Component(
        "NumPy",
        "BSD-3-Clause AND 0BSD AND MIT AND Zlib AND CC0-1.0",
        "NumPy Developers",
        "https://numpy.org/",
        "bundles OpenBLAS (BSD-3-Clause) and the GCC Fortran runtime (GPL-3.0 with the GCC "
        "runtime library exception)",
    ),
    Component(
        "pyqtgraph", "MIT", "Luke Campagnola and the pyqtgraph contributors", "https://www.pyqtgraph.org/"
    ),
    Component("requests", "Apache-2.0", "Kenneth Reitz and contributors", "https://requests.readthedocs.io/"),
    Component("urllib3", "MIT", "Andrey Petrov and contributors", "https://urllib3.readthedocs.io/"),
    Component("certifi", "MPL-2.0", "Kenneth Reitz", "https://github.com/certifi/python-certifi"),
    Component("idna", "BSD-3-Clause", "Kim Davies and contributors", "https://github.com/kjd/idna"),
    Component("charset-normalizer", "MIT", "Ahmed Tahri", "https://github.com/jawah/charset_normalizer"),
    Component(
        "websockets",
        "BSD-3-Clause",
        "Aymeric Augustin and contributors",
        "https://websockets.readthedocs.io/",
    ),
    Component(
        "qasync",
        "BSD-2-Clause",
        "Gerard Marull-Paretas, Mark Harviston and contributors",
        "https://github.com/CabbageDevelopment/qasync",
    ),
    Component("desktop-notifier", "MIT", "Sam Schott", "https://github.com/samschott/desktop-notifier"),
    Component(
        "dbus-fast",
        "MIT",
        "J. Nick Koston and contributors",
        "https://github.com/Bluetooth-Devices/dbus-fast",
    ),
    Component("orjson", "MPL-2.0 AND (Apache-2.0 OR MIT)", "ijl", "https://github.com/ijl/orjson"),
    Component(
        "platformdirs", "MIT", "The platformdirs developers", "https://github.com/tox-dev/platformdirs"
    ),
    Component(
        "PyInstaller bootloader",
        "GPL-2.0-or-later WITH Bootloader-exception",
        "PyInstaller Development Team",
        "https://pyinstaller.org/",
        "the launcher of the packaged app; its exception allows any licence for the bundled program",
    ),
)
