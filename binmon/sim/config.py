"""What the simulated market trades: its symbols and the knobs of the generator.

Server things (host, port, limits, fault switches) live in the server's own config; this
module only describes the market, so the market model can be built and tested without any
I/O.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

from binmon.core.intervals import DAY_MS
from binmon.core.models import SymbolInfo

#: Binance prints every price and quantity with 8 decimals: no tick or step can be finer.
MAX_DECIMALS = 8


def decimal_units(step: str) -> tuple[int, int]:
    """A positive decimal string as ``(decimals, units)`` with ``step == units * 10**-decimals``.

    ``"0.01000000"`` -> ``(2, 1)``, ``"0.05"`` -> ``(2, 5)``, ``"1.00000000"`` -> ``(0, 1)``,
    ``"10"`` -> ``(0, 10)``. Raise ValueError for a value that is not a positive decimal with
    at most 8 decimals.
    """
    try:
        d = Decimal(step).normalize()
    except InvalidOperation:
        raise ValueError(f"not a decimal: {step!r}") from None
    if not d.is_finite() or d <= 0:
        raise ValueError(f"step must be a positive decimal, got {step!r}")
    exponent = d.as_tuple().exponent
    assert isinstance(exponent, int)  # finite, checked above
    if exponent >= 0:
        return 0, int(d)
    if -exponent > MAX_DECIMALS:
        raise ValueError(f"{step!r} has more than {MAX_DECIMALS} decimals")
    return -exponent, int(d.scaleb(-exponent))


@dataclass(frozen=True, slots=True)
class SimSymbol:
    """One simulated symbol.

    ``price`` is where the generated price starts and what it mean-reverts to;
    ``trade_rate`` the mean number of trades per second; ``volatility`` the daily standard
    deviation of the log price (crypto majors: 0.02-0.05); ``median_qty`` the median size of
    one trade in the base asset (None: 100 steps). ``tick_size`` and ``step_size`` are
    Binance's filter strings.
    """

    symbol: str
    base: str
    quote: str
    price: float
    tick_size: str
    step_size: str
    trade_rate: float
    status: str = "TRADING"
    volatility: float = 0.03
    median_qty: float | None = None

    def __post_init__(self) -> None:
        if not self.symbol or not self.symbol.isalnum() or self.symbol != self.symbol.upper():
            raise ValueError(f"symbol must be upper-case letters and digits, got {self.symbol!r}")
        if not self.price > 0:
            raise ValueError(f"{self.symbol}: price must be > 0")
        if self.trade_rate < 0 or self.volatility < 0:
            raise ValueError(f"{self.symbol}: trade_rate and volatility must be >= 0")
        if self.median_qty is not None and not self.median_qty > 0:
            raise ValueError(f"{self.symbol}: median_qty must be > 0")
        decimal_units(self.tick_size)
        decimal_units(self.step_size)

    @property
    def trading(self) -> bool:
        """True when the symbol is in ``TRADING`` status (others generate no new trades)."""
        return self.status == "TRADING"

    def info(self) -> SymbolInfo:
        """The symbol as ``exchangeInfo`` describes it."""
        return SymbolInfo(
            symbol=self.symbol,
            status=self.status,
            base_asset=self.base,
            quote_asset=self.quote,
            tick_size=f"{Decimal(self.tick_size):.8f}",
            step_size=f"{Decimal(self.step_size):.8f}",
        )


# Step sizes are chosen so that tick decimals + step decimals <= 8: every trade's quote
# quantity (price * qty) is then an exact 8-decimal number, which lets the generator compute
# candle totals per price level instead of per trade (see generator.py). Real ETHBTC has a
# 0.0001 step; 0.001 is the nearest step that keeps that property.
DEFAULT_SYMBOLS: tuple[SimSymbol, ...] = (
    SimSymbol("BTCUSDT", "BTC", "USDT", 60000.0, "0.01", "0.00001", 8.0, volatility=0.025, median_qty=0.004),
    SimSymbol("ETHUSDT", "ETH", "USDT", 3000.0, "0.01", "0.0001", 5.0, volatility=0.03, median_qty=0.08),
    SimSymbol("BNBUSDT", "BNB", "USDT", 600.0, "0.01", "0.001", 1.5, volatility=0.025, median_qty=0.4),
    SimSymbol("SOLUSDT", "SOL", "USDT", 150.0, "0.01", "0.001", 3.0, volatility=0.04, median_qty=1.5),
    SimSymbol("XRPUSDT", "XRP", "USDT", 0.6, "0.0001", "0.1", 2.0, volatility=0.035, median_qty=300.0),
    SimSymbol("ETHBTC", "ETH", "BTC", 0.05, "0.00001", "0.001", 0.8, volatility=0.02, median_qty=0.1),
    # A tiny price: 638 ticks, so one tick is 0.16 % and the chart shows a staircase, as real
    # satoshi-priced pairs do.
    SimSymbol(
        "DOGEBTC", "DOGE", "BTC", 0.00000638, "0.00000001", "1", 0.3, volatility=0.04, median_qty=5000.0
    ),
    # Halted (MATIC was migrated to POL): it has history, then no trade since the day before
    # the clock started.
    SimSymbol(
        "MATICUSDT",
        "MATIC",
        "USDT",
        0.38,
        "0.0001",
        "0.1",
        1.0,
        status="BREAK",
        volatility=0.035,
        median_qty=500.0,
    ),
)


@dataclass(frozen=True, slots=True)
class SimConfig:
    """The simulated market.

    ``seed`` makes every trade reproducible; ``history_days`` is how long before the clock's
    start the symbols were listed; ``start_ms`` / ``speed`` are for whoever builds the clock
    (None: now, real time). ``replay`` is a data.binance.vision trades CSV that replaces the
    generator for ``replay_symbol`` (default: from the file name), or a ``binmon record``
    capture, which :class:`~binmon.sim.server.SimServer` replays frame by frame instead of
    running a Market (capture mode; the file's content tells the two apart). ``trade_rate`` overrides
    every generated symbol's rate (benchmarks).
    """

    symbols: tuple[SimSymbol, ...] = DEFAULT_SYMBOLS
    seed: int = 42
    speed: float = 1.0
    history_days: float = 30.0
    start_ms: int | None = None
    replay: Path | None = None
    replay_symbol: str | None = None
    trade_rate: float | None = None
    #: When set, generated symbols were listed then (floored to the minute), whatever the clock's
    #: start: the market is then the same for every run with the same seed (see :func:`demo_config`).
    listing_ms: int | None = None

    def __post_init__(self) -> None:
        if not self.speed > 0:
            raise ValueError("speed must be > 0")
        if self.history_days < 0:
            raise ValueError("history_days must be >= 0")
        if self.trade_rate is not None and self.trade_rate < 0:
            raise ValueError("trade_rate must be >= 0")
        if self.seed < 0:
            raise ValueError("seed must be >= 0")
        names = [s.symbol for s in self.symbols]
        if len(set(names)) != len(names):
            raise ValueError("duplicate symbols in the simulator config")


def demo_config(now_ms: int | None = None, *, seed: int = 42, history_days: int = 30) -> SimConfig:
    """The embedded simulator of ``--demo``: listed ``history_days`` before today's UTC midnight.

    Every demo started on the same UTC day serves the same market (same seed, same listing),
    so candles stored by one demo session stay true for the next; see :func:`market_id`.
    """
    now = int(time.time() * 1000) if now_ms is None else now_ms
    midnight = now // DAY_MS * DAY_MS
    return SimConfig(seed=seed, listing_ms=midnight - history_days * DAY_MS)


def market_id(config: SimConfig) -> str:
    """A name for the market ``config`` generates, stable across runs when ``listing_ms`` is set.

    Used to keep the demo's stored candles apart per simulated market (``""`` when the market
    depends on the clock's start and so is different each run).
    """
    if config.listing_ms is None or config.replay is not None:
        return ""
    day = datetime.fromtimestamp(config.listing_ms / 1000, tz=UTC).strftime("%Y%m%d")
    return f"s{config.seed}-{day}"
