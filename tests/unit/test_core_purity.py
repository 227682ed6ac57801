"""The pure packages never import Qt (or pyqtgraph/qasync), so they run and test without a display."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PURE_PACKAGES = ("core", "binance", "sim", "history", "services", "indicators", "alerts", "backtest")
FORBIDDEN = frozenset({"PySide6", "shiboken6", "pyqtgraph", "qasync"})
_DYNAMIC_IMPORTERS = frozenset({"import_module", "__import__"})


def _forbidden(module: str | None) -> bool:
    return module is not None and module.split(".", 1)[0] in FORBIDDEN


def qt_imports(source: str, filename: str = "<string>") -> list[str]:
    """``"file:line: what"`` for every import of a forbidden package in ``source``.

    Catches ``import X[.y]``, ``from X[.y] import z`` and ``importlib.import_module("X...")`` /
    ``__import__("X...")`` with a literal name, wherever they appear (also inside functions
    and ``TYPE_CHECKING`` blocks: a lazy Qt import still ties the module to Qt).
    """
    found: list[str] = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names if _forbidden(a.name)]
            found += [f"{filename}:{node.lineno}: import {n}" for n in names]
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0 and _forbidden(node.module):
                found.append(f"{filename}:{node.lineno}: from {node.module} import ...")
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if name in _DYNAMIC_IMPORTERS and node.args:
                arg = node.args[0]
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and _forbidden(arg.value):
                    found.append(f"{filename}:{node.lineno}: {name}({arg.value!r})")
    return found


def _pure_files() -> list[Path]:
    return sorted(p for pkg in PURE_PACKAGES for p in (ROOT / "binmon" / pkg).rglob("*.py"))


def test_pure_packages_do_not_import_qt() -> None:
    files = _pure_files()
    assert any(p.parent.name == "core" for p in files), f"no binmon/core sources under {ROOT}"
    offences = [o for p in files for o in qt_imports(p.read_text(), str(p.relative_to(ROOT)))]
    assert not offences, "Qt-free packages import Qt:\n" + "\n".join(offences)


@pytest.mark.parametrize(
    "source",
    [
        "import PySide6.QtCore",
        "import os, pyqtgraph as pg",
        "from PySide6.QtWidgets import QApplication",
        "from shiboken6 import isValid",
        "import qasync",
        "def f():\n    from PySide6 import QtGui\n",
        "import importlib\nimportlib.import_module('PySide6.QtCore')",
        "from importlib import import_module\nimport_module('pyqtgraph')",
        "__import__('qasync')",
    ],
)
def test_the_checker_catches_every_form(source: str) -> None:
    (offence,) = qt_imports(source, "bad.py")
    assert offence.startswith("bad.py:")
    line = int(offence.split(":")[1])
    assert any(name in source.splitlines()[line - 1] for name in FORBIDDEN)


@pytest.mark.parametrize(
    "source",
    [
        "import numpy, pandas",
        "from . import PySide6",  # a relative module of ours, not the Qt package
        "import PySide6_helpers",
        "x = 'PySide6 is not imported here'",
        "importlib.import_module(name)",
    ],
)
def test_the_checker_allows_the_rest(source: str) -> None:
    assert qt_imports(source) == []
