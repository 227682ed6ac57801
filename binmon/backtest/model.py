"""The backtest API as data: requests, results and strategy descriptions. Pure, no Qt, picklable.

Everything here crosses a process boundary (the runner works in a spawned process) and is
saved as JSON (``--json``, the tab's exports and recent runs), so every value is a frozen
dataclass of plain numbers, strings, tuples and numpy arrays, with ``to_dict`` / ``from_dict``.
Names are stable: fields are only ever added.

Execution model (what every result means):

* A strategy decides at the **close** of bar ``i``; its market order fills at the **open** of
  bar ``i + 1`` (backtrader's default), moved against the trader by ``slippage`` (a fraction
  of the price) and charged ``commission`` (a fraction of the traded value, per side).
* ``sizing="percent"``: each entry targets ``size`` percent of the current equity (valued at
  the signal bar's close); ``sizing="fixed"``: ``size`` units of the base asset.
* ``direction="long"``: buy signals open a long, sell signals close it. ``"long_short"``: a
  sell signal also opens a short (reversal in one order), a buy signal reverses back.
* The equity curve is the broker value at each bar's close, aligned to the bar open times.
  A position still open after the last bar stays open: it is valued at the last close, listed
  as a trade with ``is_open=True`` and left out of the trade statistics (count, win rate,
  profit factor, average), which cover closed trades only.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Literal

import numpy as np

__all__ = [
    "DIRECTIONS",
    "SIZINGS",
    "BacktestCancelled",
    "BacktestRequest",
    "BacktestResult",
    "IndicatorLine",
    "Marker",
    "Metrics",
    "ParamInfo",
    "StrategyInfo",
    "Trade",
    "strategies",
    "strategy_info",
    "validate_params",
]

Sizing = Literal["percent", "fixed"]
Direction = Literal["long", "long_short"]
SIZINGS: tuple[str, ...] = ("percent", "fixed")
DIRECTIONS: tuple[str, ...] = ("long", "long_short")

#: ``BacktestRequest.strategy`` of a user strategy loaded from ``BacktestRequest.strategy_file``.
USER_STRATEGY = "file"


class BacktestCancelled(Exception):
    """The run was cancelled through its ``cancel`` flag (nothing is returned)."""


def _finite_or_none(x: float) -> float | None:
    """JSON has no inf/nan: they are written as null (e.g. profit factor with no losing trade)."""
    return x if math.isfinite(x) else None


# ---------------------------------------------------------------- request


@dataclass(frozen=True)
class BacktestRequest:
    """What to test: a series, a date range, a strategy with parameters and the broker settings.

    ``start_ms``/``end_ms``: open times (ms, UTC, inclusive) of the first/last candle used.
    ``params``: the strategy's parameters (see :func:`validate_params`; unknown names are an
    error, missing ones take defaults). ``commission`` and ``slippage`` are fractions
    (0.001 = 0.1 %). ``size``: percent of equity (``sizing="percent"``, 0 < size <= 100) or
    units of the base asset (``sizing="fixed"``). ``strategy_file``: with
    ``strategy="file"``, the ``.py`` file holding a ``backtrader.Strategy`` subclass.
    ValueError (one line) on an impossible value; ``params`` are checked by the runner.
    """

    symbol: str
    interval: str
    start_ms: int
    end_ms: int
    market: str = "spot"
    strategy: str = "sma_cross"
    params: dict[str, Any] = field(default_factory=dict, hash=False)
    cash: float = 10_000.0
    commission: float = 0.001
    slippage: float = 0.0
    sizing: Sizing = "percent"
    size: float = 95.0
    direction: Direction = "long"
    strategy_file: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "params", dict(self.params))  # a private copy: frozen means frozen
        if self.end_ms < self.start_ms:
            raise ValueError("end is before start")
        if not self.cash > 0:
            raise ValueError(f"cash must be > 0 (got {self.cash})")
        if not 0 <= self.commission < 0.5:
            raise ValueError(f"commission must be a fraction in [0, 0.5) (got {self.commission})")
        if not 0 <= self.slippage < 0.5:
            raise ValueError(f"slippage must be a fraction in [0, 0.5) (got {self.slippage})")
        if self.sizing not in SIZINGS:
            raise ValueError(f"sizing must be one of {', '.join(SIZINGS)} (got {self.sizing!r})")
        if self.sizing == "percent" and not 0 < self.size <= 100:
            raise ValueError(f"percent size must be in (0, 100] (got {self.size})")
        if self.sizing == "fixed" and not self.size > 0:
            raise ValueError(f"fixed size must be > 0 (got {self.size})")
        if self.direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {', '.join(DIRECTIONS)} (got {self.direction!r})")
        if self.strategy == USER_STRATEGY and not self.strategy_file:
            raise ValueError("strategy 'file' needs strategy_file")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (params are expected to be JSON values already, e.g. a condition's dict)."""
        return {
            f.name: (dict(self.params) if f.name == "params" else getattr(self, f.name)) for f in fields(self)
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> BacktestRequest:
        """Inverse of :meth:`to_dict`; unknown keys are ignored (a newer binmon's file).

        ValueError on a bad value."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


# ---------------------------------------------------------------- results


@dataclass(frozen=True, slots=True)
class Trade:
    """One round trip. Times are bar open times (ms) of the fills; prices include slippage.

    ``size`` > 0 in base units; ``side`` "long" or "short". ``commission``: entry + exit
    commission (entry only while open). ``pnl``: net of commission, in quote currency;
    ``pnl_pct``: ``pnl`` over the entry value (entry price x size) x 100. ``is_open``: still
    held after the last bar, valued at the last close (exit = last bar).
    """

    entry_time_ms: int
    exit_time_ms: int
    entry_price: float
    exit_price: float
    size: float
    side: Literal["long", "short"]
    pnl: float
    pnl_pct: float
    commission: float
    bars: int = 0
    is_open: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Trade:
        """Inverse of :meth:`to_dict`."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


@dataclass(frozen=True, slots=True)
class Metrics:
    """Summary figures (formulas: :mod:`binmon.backtest.metrics`). Percentages are in percent.

    ``profit_factor`` is ``inf`` with winners and no loser (``null`` in JSON); ratios that are
    undefined (no variance, no trade) are 0.
    """

    net_profit: float
    total_return_pct: float
    cagr_pct: float
    sharpe: float
    sortino: float
    max_drawdown_pct: float
    max_drawdown_bars: int
    max_drawdown_ms: int
    trades: int
    win_rate_pct: float
    profit_factor: float
    avg_trade: float
    avg_trade_pct: float
    exposure_pct: float
    buy_hold_return_pct: float
    final_equity: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (non-finite floats become None)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            out[f.name] = _finite_or_none(v) if isinstance(v, float) else v
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Metrics:
        """Inverse of :meth:`to_dict` (None back to inf for ``profit_factor``, else nan)."""
        kw: dict[str, Any] = {}
        for f in fields(cls):
            v = d.get(f.name)
            if v is None:
                v = math.inf if f.name == "profit_factor" else math.nan
            kw[f.name] = v
        return cls(**kw)


@dataclass(frozen=True, slots=True)
class Marker:
    """A fill to draw on the candles: bar open time (ms), fill price, ``"buy"`` or ``"sell"``."""

    time_ms: int
    price: float
    kind: Literal["buy", "sell"]


@dataclass(frozen=True, slots=True)
class IndicatorLine:
    """An indicator series the strategy used, aligned to the bars (NaN during warm-up).

    ``pane``: ``"price"`` (drawn over the candles) or ``"separate"`` (a pane below; lines
    with the same ``group`` share one pane). ``guides``: horizontal levels (e.g. RSI 30/70).
    """

    name: str
    values: np.ndarray
    pane: Literal["price", "separate"] = "price"
    group: str = ""
    guides: tuple[float, ...] = ()


@dataclass(frozen=True, slots=True)
class BacktestResult:
    """A finished run. Arrays have one element per bar, aligned to ``times`` (bar open, ms, int64).

    ``equity``: broker value at each close; ``buy_hold``: ``cash`` invested at the first close,
    no commission; ``drawdown_pct``: equity below its running peak, in percent (<= 0);
    ``position``: signed position size held at each close. ``warnings``: one-line notes
    (e.g. an order the broker rejected for lack of cash).
    """

    request: BacktestRequest
    metrics: Metrics
    trades: tuple[Trade, ...]
    times: np.ndarray
    equity: np.ndarray
    buy_hold: np.ndarray
    drawdown_pct: np.ndarray
    position: np.ndarray
    markers: tuple[Marker, ...]
    indicators: tuple[IndicatorLine, ...]
    bars: int
    elapsed_s: float
    warnings: tuple[str, ...] = ()

    def to_dict(self, *, curves: bool = True) -> dict[str, Any]:
        """JSON-ready dict; ``curves=False`` leaves the per-bar arrays out (metrics + trades only)."""
        d: dict[str, Any] = {
            "request": self.request.to_dict(),
            "metrics": self.metrics.to_dict(),
            "trades": [t.to_dict() for t in self.trades],
            "markers": [{"time_ms": m.time_ms, "price": m.price, "kind": m.kind} for m in self.markers],
            "bars": self.bars,
            "elapsed_s": self.elapsed_s,
            "warnings": list(self.warnings),
        }
        if curves:
            d["times"] = self.times.tolist()
            for name in ("equity", "buy_hold", "drawdown_pct", "position"):
                d[name] = [_finite_or_none(x) for x in getattr(self, name).tolist()]
            d["indicators"] = [
                {
                    "name": ind.name,
                    "pane": ind.pane,
                    "group": ind.group,
                    "guides": list(ind.guides),
                    "values": [_finite_or_none(x) for x in ind.values.tolist()],
                }
                for ind in self.indicators
            ]
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> BacktestResult:
        """Inverse of :meth:`to_dict` (a dict without curves gives empty arrays)."""

        def arr(name: str, dtype: Any = np.float64) -> np.ndarray:
            return np.array([np.nan if x is None else x for x in d.get(name, [])], dtype=dtype)

        return cls(
            request=BacktestRequest.from_dict(d["request"]),
            metrics=Metrics.from_dict(d["metrics"]),
            trades=tuple(Trade.from_dict(t) for t in d.get("trades", [])),
            times=np.array(d.get("times", []), dtype=np.int64),
            equity=arr("equity"),
            buy_hold=arr("buy_hold"),
            drawdown_pct=arr("drawdown_pct"),
            position=arr("position"),
            markers=tuple(
                Marker(int(m["time_ms"]), float(m["price"]), m["kind"]) for m in d.get("markers", [])
            ),
            indicators=tuple(
                IndicatorLine(
                    i["name"],
                    np.array([np.nan if x is None else x for x in i["values"]], dtype=np.float64),
                    i.get("pane", "price"),
                    i.get("group", ""),
                    tuple(i.get("guides", ())),
                )
                for i in d.get("indicators", [])
            ),
            bars=int(d.get("bars", 0)),
            elapsed_s=float(d.get("elapsed_s", 0.0)),
            warnings=tuple(d.get("warnings", ())),
        )


# ---------------------------------------------------------------- strategies


@dataclass(frozen=True, slots=True)
class ParamInfo:
    """One strategy parameter, enough for the UI to build and validate a form field.

    ``kind``: ``"int"``, ``"float"`` or ``"condition"`` (an alert-rule condition, as the dict
    form of ``binmon.alerts.rules.Condition``). ``minimum``/``maximum`` are inclusive bounds
    (None: unbounded); ``step``: a sensible spin-box / grid step.
    """

    name: str
    kind: Literal["int", "float", "condition"]
    default: Any
    minimum: float | None = None
    maximum: float | None = None
    step: float | None = None
    title: str = ""
    help: str = ""


@dataclass(frozen=True, slots=True)
class StrategyInfo:
    """A built-in strategy: ``name`` (used in requests and on the CLI), a short ``title`` for menus,
    a one-paragraph ``description`` and its parameters in form order."""

    name: str
    title: str
    description: str
    params: tuple[ParamInfo, ...]

    def defaults(self) -> dict[str, Any]:
        """``{param: default}``."""
        return {p.name: p.default for p in self.params}


def strategies() -> list[StrategyInfo]:
    """The built-in strategies, in menu order (user strategy files are not listed)."""
    from binmon.backtest.strategies import BUILTINS

    return [s.info for s in BUILTINS.values()]


def strategy_info(name: str) -> StrategyInfo:
    """The :class:`StrategyInfo` of built-in ``name``; ValueError (one line) when unknown."""
    from binmon.backtest.strategies import BUILTINS

    try:
        return BUILTINS[name].info
    except KeyError:
        raise ValueError(f"unknown strategy {name!r}; use one of {', '.join(BUILTINS)}") from None


def validate_params(name: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` of built-in ``name`` checked and completed with defaults -> a new dict.

    Ints and floats are coerced (``"10"`` -> 10, ``10.0`` -> 10 for an int; ``10.5`` for an
    int is an error) and bounds-checked; cross-parameter rules apply ("fast must be < slow").
    Raises ValueError with one line naming the parameter, e.g. ``"period must be >= 2"``.
    """
    from binmon.backtest.strategies import BUILTINS

    info = strategy_info(name)
    unknown = sorted(set(params) - {p.name for p in info.params})
    if unknown:
        raise ValueError(
            f"{name} has no parameter {unknown[0]!r} (it has: {', '.join(p.name for p in info.params)})"
        )
    out: dict[str, Any] = {}
    for p in info.params:
        out[p.name] = _coerce(p, params.get(p.name, p.default))
    BUILTINS[name].check(out)
    return out


def _coerce(p: ParamInfo, value: Any) -> Any:
    if p.kind == "condition":
        return value  # checked by the rule strategy's own check (it needs binmon.alerts)
    try:
        if p.kind == "int":
            f = float(value)
            if not f.is_integer():
                raise ValueError
            x: float = int(f)
        else:
            x = float(value)
            if not math.isfinite(x):
                raise ValueError
    except (TypeError, ValueError):
        raise ValueError(
            f"{p.name} must be {'an integer' if p.kind == 'int' else 'a number'} (got {value!r})"
        ) from None
    if p.minimum is not None and x < p.minimum:
        raise ValueError(f"{p.name} must be >= {_num(p.minimum)}")
    if p.maximum is not None and x > p.maximum:
        raise ValueError(f"{p.name} must be <= {_num(p.maximum)}")
    return x


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)
