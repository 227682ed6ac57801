"""Read a user strategy file's class and parameters in a worker process. No Qt.

Loading a strategy file runs the user's code; the tab does that in its process pool (this
module is what the worker imports), never in the GUI process, so a file that hangs, crashes
or imports something heavy cannot take the window down.
"""

from __future__ import annotations

from typing import Any


def describe_strategy_file(path: str) -> tuple[str, dict[str, Any]]:
    """``(class name, {param: default})`` of the single ``backtrader.Strategy`` subclass in ``path``.

    Raises :class:`~binmon.backtest.strategies.StrategyFileError` (one line) for a bad file.
    Defaults that are not plain JSON values (numbers, strings, booleans, None) are given as
    their ``repr``.
    """
    from binmon.backtest.strategies import load_user_strategy

    cls = load_user_strategy(path)
    params: dict[str, Any] = {}
    for name, default in cls.params._getitems():
        plain = default is None or isinstance(default, bool | int | float | str)
        params[str(name)] = default if plain else repr(default)
    return cls.__name__, params
