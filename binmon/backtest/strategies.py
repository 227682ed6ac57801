"""Built-in strategies as pure signal functions over TA-Lib indicators, and user strategy files.

Why signals and not backtrader indicators: every built-in is "compute TA-Lib series once, find
the bars where a line crosses another". Computing that with numpy before the run (one C call
per indicator) and feeding backtrader a precomputed signal column leaves backtrader only the
broker simulation, which is what makes the runner faster than plain backtrader, and lets the
tests check entries against TA-Lib directly.

A signal array has one int8 per bar: ``+1`` buy (go long; from a short, reverse), ``-1``
sell (close the long; with ``long_short`` go short), ``0`` nothing. It is decided at the
bar's close; the runner fills it at the next bar's open.

Crossing: ``a`` crosses up through ``b`` at bar ``i`` when ``a[i-1] <= b[i-1]`` and
``a[i] > b[i]`` (both bars finite); crosses down symmetrically (``>=`` then ``<``).
"""

from __future__ import annotations

import ast
import importlib.util
import inspect
import sys
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd
import talib

from binmon.backtest.model import IndicatorLine, ParamInfo, StrategyInfo

__all__ = [
    "BUILTINS",
    "Builtin",
    "Prepared",
    "StrategyFileError",
    "cross_down",
    "cross_up",
    "load_user_strategy",
    "prepare",
]


@dataclass(frozen=True, slots=True)
class Prepared:
    """A built-in's precomputed output: the signal per bar and the lines to plot."""

    signal: np.ndarray
    indicators: tuple[IndicatorLine, ...]


@dataclass(frozen=True, slots=True)
class Builtin:
    """A built-in strategy: its description, a parameter cross-check and its signal function."""

    info: StrategyInfo
    check: Callable[[dict[str, Any]], None]
    signals: Callable[[pd.DataFrame, dict[str, Any]], Prepared]


def cross_up(a: np.ndarray, b: np.ndarray | float) -> np.ndarray:
    """Bool per bar: ``a`` crosses up through ``b`` (module docstring); False at bar 0 and near NaN."""
    a = np.asarray(a, dtype=np.float64)
    bb = np.broadcast_to(np.asarray(b, dtype=np.float64), a.shape)
    out = np.zeros(a.shape, dtype=bool)
    if a.size > 1:
        with np.errstate(invalid="ignore"):
            out[1:] = (a[:-1] <= bb[:-1]) & (a[1:] > bb[1:])
    return out


def cross_down(a: np.ndarray, b: np.ndarray | float) -> np.ndarray:
    """Bool per bar: ``a`` crosses down through ``b``; False at bar 0 and near NaN."""
    a = np.asarray(a, dtype=np.float64)
    bb = np.broadcast_to(np.asarray(b, dtype=np.float64), a.shape)
    out = np.zeros(a.shape, dtype=bool)
    if a.size > 1:
        with np.errstate(invalid="ignore"):
            out[1:] = (a[:-1] >= bb[:-1]) & (a[1:] < bb[1:])
    return out


def _signal(buy: np.ndarray, sell: np.ndarray) -> np.ndarray:
    """+1 where ``buy``, -1 where ``sell``; a bar with both is 0 (contradictory: do nothing)."""
    return buy.astype(np.int8) - sell.astype(np.int8)


def _close(candles: pd.DataFrame) -> np.ndarray:
    return np.ascontiguousarray(candles["close"].to_numpy(dtype=np.float64))


# ---------------------------------------------------------------- the built-ins


def _check_fast_slow(p: dict[str, Any]) -> None:
    if p["fast"] >= p["slow"]:
        raise ValueError("fast must be < slow")


def _ma_cross(kind: str) -> Callable[[pd.DataFrame, dict[str, Any]], Prepared]:
    fn = talib.SMA if kind == "SMA" else talib.EMA

    def signals(candles: pd.DataFrame, p: dict[str, Any]) -> Prepared:
        close = _close(candles)
        fast = fn(close, timeperiod=p["fast"])
        slow = fn(close, timeperiod=p["slow"])
        return Prepared(
            _signal(cross_up(fast, slow), cross_down(fast, slow)),
            (
                IndicatorLine(f"{kind}({p['fast']})", fast, "price"),
                IndicatorLine(f"{kind}({p['slow']})", slow, "price"),
            ),
        )

    return signals


def _check_rsi(p: dict[str, Any]) -> None:
    if p["low"] >= p["high"]:
        raise ValueError("low must be < high")


def _rsi(candles: pd.DataFrame, p: dict[str, Any]) -> Prepared:
    rsi = talib.RSI(_close(candles), timeperiod=p["period"])
    name = f"RSI({p['period']})"
    return Prepared(
        _signal(cross_up(rsi, p["low"]), cross_down(rsi, p["high"])),
        (IndicatorLine(name, rsi, "separate", name, (float(p["low"]), float(p["high"]))),),
    )


def _macd(candles: pd.DataFrame, p: dict[str, Any]) -> Prepared:
    macd, signal, hist = talib.MACD(
        _close(candles), fastperiod=p["fast"], slowperiod=p["slow"], signalperiod=p["signal"]
    )
    group = f"MACD({p['fast']},{p['slow']},{p['signal']})"
    return Prepared(
        _signal(cross_up(macd, signal), cross_down(macd, signal)),
        (
            IndicatorLine("MACD", macd, "separate", group, (0.0,)),
            IndicatorLine("signal", signal, "separate", group),
            IndicatorLine("histogram", hist, "separate", group),
        ),
    )


def _bbands(candles: pd.DataFrame, p: dict[str, Any]) -> Prepared:
    close = _close(candles)
    dev = float(p["nbdev"])
    upper, middle, lower = talib.BBANDS(
        close, timeperiod=p["period"], nbdevup=dev, nbdevdn=dev, matype=talib.MA_Type.SMA
    )
    return Prepared(
        _signal(cross_down(close, lower), cross_up(close, upper)),
        (
            IndicatorLine("BB upper", upper, "price"),
            IndicatorLine("BB middle", middle, "price"),
            IndicatorLine("BB lower", lower, "price"),
        ),
    )


def _no_check(p: dict[str, Any]) -> None:
    return None


def _int(name: str, default: int, lo: int, hi: int, title: str, help: str = "") -> ParamInfo:
    return ParamInfo(name, "int", default, lo, hi, 1, title, help)


def _builtins() -> dict[str, Builtin]:
    b: dict[str, Builtin] = {}
    for kind, title in (("SMA", "simple"), ("EMA", "exponential")):
        name = f"{kind.lower()}_cross"
        b[name] = Builtin(
            StrategyInfo(
                name,
                f"{kind} cross",
                f"Buy when the fast {title} moving average of the close crosses above the slow one; "
                "sell when it crosses below (TA-Lib " + kind + ").",
                (
                    _int("fast", 10, 1, 100_000, "Fast period"),
                    _int("slow", 30, 2, 100_000, "Slow period"),
                ),
            ),
            _check_fast_slow,
            _ma_cross(kind),
        )
    b["rsi"] = Builtin(
        StrategyInfo(
            "rsi",
            "RSI oversold/overbought",
            "Buy when RSI crosses up through the low level (leaving oversold); sell when it crosses "
            "down through the high level (leaving overbought). TA-Lib RSI of the close.",
            (
                _int("period", 14, 2, 100_000, "RSI period"),
                ParamInfo("low", "float", 30.0, 0.0, 100.0, 1.0, "Oversold level"),
                ParamInfo("high", "float", 70.0, 0.0, 100.0, 1.0, "Overbought level"),
            ),
        ),
        _check_rsi,
        _rsi,
    )
    b["macd"] = Builtin(
        StrategyInfo(
            "macd",
            "MACD signal cross",
            "Buy when the MACD line crosses above its signal line; sell when it crosses below "
            "(TA-Lib MACD of the close).",
            (
                _int("fast", 12, 2, 100_000, "Fast EMA"),
                _int("slow", 26, 2, 100_000, "Slow EMA"),
                _int("signal", 9, 1, 100_000, "Signal EMA"),
            ),
        ),
        _check_fast_slow,
        _macd,
    )
    b["bbands"] = Builtin(
        StrategyInfo(
            "bbands",
            "Bollinger mean reversion",
            "Buy when the close crosses down through the lower Bollinger band (stretched low, "
            "expect a return); sell when it crosses up through the upper band (TA-Lib BBANDS, SMA).",
            (
                _int("period", 20, 2, 100_000, "Period"),
                ParamInfo("nbdev", "float", 2.0, 0.1, 10.0, 0.5, "Width (std devs)"),
            ),
        ),
        _no_check,
        _bbands,
    )
    from binmon.backtest import rule  # after the others: it builds on the alert rules

    b["rule"] = Builtin(rule.INFO, rule.check, rule.signals)
    return b


#: Built-in strategies by name, in menu order.
BUILTINS: dict[str, Builtin] = _builtins()


def prepare(name: str, candles: pd.DataFrame, params: Mapping[str, Any]) -> Prepared:
    """Signals and plot lines of built-in ``name`` on ``candles`` (columns ``open .. close``,
    oldest first) with ``params`` already validated (:func:`~binmon.backtest.model.validate_params`)."""
    return BUILTINS[name].signals(candles, dict(params))


# ---------------------------------------------------------------- user strategy files


class StrategyFileError(ValueError):
    """A user strategy file cannot be used; ``str()`` is one line naming the file and the reason."""


def load_user_strategy(path: str | Path) -> type[Any]:
    """The single ``backtrader.Strategy`` subclass defined in the ``.py`` file at ``path``.

    The file is run as a fresh module each time (a new module name, so an edited file is
    reloaded; it stays in ``sys.modules`` because backtrader looks strategy modules up there).
    Classes merely imported into the file do not count. Raises
    :class:`StrategyFileError` (one line) when the file is missing or unreadable, has a
    syntax error, fails while loading, or holds no Strategy subclass or more than one.
    """
    import backtrader as bt

    p = Path(path)
    try:
        source = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise StrategyFileError(f"{p}: no such strategy file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise StrategyFileError(f"{p}: cannot read it ({exc})") from None
    try:
        ast.parse(source, str(p))
    except SyntaxError as exc:
        raise StrategyFileError(f"{p.name}: syntax error at line {exc.lineno}: {exc.msg}") from None
    name = f"binmon_user_strategy_{uuid.uuid4().hex}"
    spec = importlib.util.spec_from_file_location(name, p)
    assert spec is not None and spec.loader is not None
    module: ModuleType = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # the user's code: any error is theirs, report it in one line
        sys.modules.pop(name, None)
        raise StrategyFileError(f"{p.name}: error while loading: {type(exc).__name__}: {exc}") from None
    found = [
        obj
        for obj in vars(module).values()
        if inspect.isclass(obj)
        and issubclass(obj, bt.Strategy)
        and obj is not bt.Strategy
        and obj.__module__ == module.__name__
    ]
    if not found:
        raise StrategyFileError(f"{p.name}: no backtrader.Strategy subclass defined in the file")
    if len(found) > 1:
        names = ", ".join(sorted(c.__name__ for c in found))
        raise StrategyFileError(f"{p.name}: more than one Strategy subclass ({names}); keep one per file")
    return found[0]


def user_params(cls: type[Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` checked against the user strategy's ``params`` (names only; values are cast to
    the type of the default when it is a number). ValueError (one line) for an unknown name."""
    known = dict(cls.params._getitems())
    out: dict[str, Any] = {}
    for k, v in params.items():
        if k not in known:
            raise ValueError(f"{cls.__name__} has no parameter {k!r} (it has: {', '.join(known) or 'none'})")
        default = known[k]
        try:
            if isinstance(default, bool):
                out[k] = v if isinstance(v, bool) else str(v).lower() in ("1", "true", "yes")
            elif isinstance(default, int):
                out[k] = int(float(v))
            elif isinstance(default, float):
                out[k] = float(v)
            else:
                out[k] = v
        except (TypeError, ValueError):
            raise ValueError(f"{k} must be a number (got {v!r})") from None
    return out
