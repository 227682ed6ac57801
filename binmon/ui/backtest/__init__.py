"""The Backtest tab (issue 7): form, runs in a process pool, result plots, optimisation.

Importing this package imports no Qt (the pool's workers import :mod:`.userfile` from it);
:func:`install_backtest_tab` loads the widgets when called.
"""

from __future__ import annotations

from typing import Any


def install_backtest_tab(parts: Any) -> Any:
    """Add the Backtest tab to the window (:func:`binmon.ui.backtest.install.install_backtest_tab`)."""
    from binmon.ui.backtest.install import install_backtest_tab as install

    return install(parts)
