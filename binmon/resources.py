"""Where binmon's non-Python files (``resources/``) are, in a source checkout or a bundle."""

from __future__ import annotations

import sys
from pathlib import Path

#: The Lightweight Charts bundle the chart page loads, relative to ``resources/``.
_CHART_LIB = (
    "chart",
    "node_modules",
    "lightweight-charts",
    "dist",
    "lightweight-charts.standalone.production.js",
)


def resource_path(*parts: str) -> Path:
    """The path of ``resources/<parts...>`` (not checked for existence).

    In a PyInstaller bundle ``resources/`` sits in the unpack directory (``sys._MEIPASS``,
    so the spec must add it as ``resources``); in a source checkout it sits next to the
    ``binmon`` package.
    """
    bundle = getattr(sys, "_MEIPASS", None)
    base = Path(bundle) if bundle else Path(__file__).resolve().parent.parent
    return base.joinpath("resources", *parts)


def chart_lib_path() -> Path:
    """The Lightweight Charts standalone bundle; FileNotFoundError telling how to get it if missing.

    It is installed from npm with a lockfile (``resources/chart/package-lock.json``), never
    fetched at run time.
    """
    path = resource_path(*_CHART_LIB)
    if not path.is_file():
        raise FileNotFoundError(
            f"the chart library is missing ({path}); run `make chart-lib` "
            "(it runs `npm ci --prefix resources/chart`) to install it"
        )
    return path
