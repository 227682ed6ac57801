"""Replaying a real trades archive in place of the generator for one symbol.

The file is data.binance.vision's spot (or futures) trades layout:
``trade_id,price,qty,quote_qty,time,is_buyer_maker[,is_best_match]``, booleans ``True``/
``False``, an optional header row, and times in microseconds (16 digits) in spot files from
2025 on. Its trades become the symbol's trades exactly; klines and tickers are derived from
them the same way as from generated trades, and after the file's last trade there are none.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd

from binmon.core.aggregate import to_units
from binmon.sim.bars import I64, MINUTE_MS, Bars, Trades, bars_from_trades
from binmon.sim.config import MAX_DECIMALS, SimConfig, SimSymbol

#: Quote assets recognised when splitting a replayed symbol's name (longest first wins).
QUOTE_ASSETS = ("FDUSD", "USDT", "USDC", "BUSD", "TUSD", "BTC", "ETH", "BNB", "EUR", "TRY", "BRL", "DAI")
_US_THRESHOLD = 10**14  # ms timestamps stay below this until the year 5138; us ones are above


@dataclass(frozen=True, slots=True)
class Replayed:
    """A loaded replay file: its symbol, trades, and a symbol description derived from them."""

    symbol: str
    trades: Trades
    derived: SimSymbol


def replay_symbol(config: SimConfig) -> str | None:
    """The symbol ``config`` replays: ``replay_symbol``, else the file name's prefix (``XRPETH-...``)."""
    if config.replay is None:
        return None
    name = config.replay_symbol or Path(config.replay).name.split("-", 1)[0]
    return name.upper()


def _has_header(first_line: str) -> bool:
    return not first_line.split(",", 1)[0].strip().isdigit()


def _first_data_line(path: Path) -> str | None:
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip() and not _has_header(line):
                return line
    return None


def replay_start_ms(config: SimConfig) -> int | None:
    """Time of the replay file's first trade (ms), to start the clock at; None without replay.

    Reads only the first data row (archives are in trade-id, hence time, order). Raise
    ValueError for a file without trades.
    """
    if config.replay is None:
        return None
    line = _first_data_line(Path(config.replay))
    if line is None:
        raise ValueError(f"{config.replay}: no trades")
    t = int(line.split(",")[4])
    return t // 1000 if t >= _US_THRESHOLD else t


def load_trades_csv(path: Path) -> Trades:
    """Read a trades archive into time-ordered :class:`Trades`. Raise ValueError when malformed."""
    path = Path(path)
    with open(path, encoding="utf-8") as f:
        header = _has_header(f.readline())
    try:
        df = pd.read_csv(
            path,
            header=0 if header else None,
            usecols=[0, 1, 2, 4, 5],
            dtype=str,
            keep_default_na=False,
        )
    except (ValueError, pd.errors.ParserError) as exc:
        raise ValueError(f"{path}: not a trades archive ({exc})") from exc
    if df.shape[1] != 5 or not len(df):
        raise ValueError(f"{path}: expected trade_id,price,qty,quote_qty,time,is_buyer_maker columns")
    cols = [df.iloc[:, i] for i in range(5)]
    try:
        ids = cols[0].astype(np.int64).to_numpy()
        prices = np.array([float(x) for x in cols[1]], dtype=np.float64)  # correctly rounded parse
        qtys = np.array([float(x) for x in cols[2]], dtype=np.float64)
        times = cols[3].astype(np.int64).to_numpy()
    except ValueError as exc:
        raise ValueError(f"{path}: bad number ({exc})") from exc
    maker_text = cols[4].str.strip().str.lower()
    if not maker_text.isin(["true", "false"]).all():
        raise ValueError(f"{path}: is_buyer_maker must be True/False")
    maker = (maker_text == "true").to_numpy()
    if times.size and int(times.max()) >= _US_THRESHOLD:
        times = times // 1000
    if np.any(np.diff(times) < 0):
        order = np.lexsort((ids, times))
        ids, prices, qtys, times, maker = ids[order], prices[order], qtys[order], times[order], maker[order]
    p8, q8 = to_units(prices), to_units(qtys)
    if p8.dtype == object or q8.dtype == object or np.any(p8 <= 0) or np.any(q8 <= 0):
        raise ValueError(f"{path}: prices and quantities must be positive and below 4e10")
    return Trades(ids, prices, qtys, times, maker, p8.astype(np.int64), q8.astype(np.int64))


def _step_of(units: I64) -> str:
    """The coarsest decimal step every value (1e-8 units) is a multiple of, as ``"0.0001"``."""
    g = int(np.gcd.reduce(units)) if units.size else 1
    decimals = MAX_DECIMALS
    while decimals > 0 and g % 10 == 0:
        g //= 10
        decimals -= 1
    return f"{Decimal(1).scaleb(-decimals):f}"


def derive_symbol(name: str, trades: Trades) -> SimSymbol:
    """A :class:`SimSymbol` for a replayed symbol the config does not list.

    Tick and step come from the data (the most decimals any price / qty has), the price from
    the first trade, the rate from the trade count over the file's time span.
    """
    quote = next((q for q in QUOTE_ASSETS if name.endswith(q) and len(name) > len(q)), "")
    span_s = max(1.0, (int(trades.times[-1]) - int(trades.times[0])) / 1000.0)
    return SimSymbol(
        symbol=name,
        base=name[: len(name) - len(quote)] if quote else name,
        quote=quote,
        price=float(trades.prices[0]),
        tick_size=_step_of(trades.price_units),
        step_size=_step_of(trades.qty_units),
        trade_rate=len(trades) / span_s,
    )


def load_replay(config: SimConfig) -> Replayed:
    """Read ``config.replay``. Raise ValueError without a replay file or for a malformed or empty one."""
    name = replay_symbol(config)
    if config.replay is None or name is None:
        raise ValueError("the config has no replay file")
    trades = load_trades_csv(Path(config.replay))
    return Replayed(name, trades, derive_symbol(name, trades))


class ReplaySource:
    """The trades of a replayed file (all in memory), as a market source."""

    def __init__(self, trades: Trades) -> None:
        if not len(trades):
            raise ValueError("nothing to replay")
        self.listing_ms = int(trades.times[0])
        self.end_ms = int(trades.times[-1]) + 1
        self._trades = trades
        self._bars = bars_from_trades(trades)

    def bars(self, m0: int, m1: int) -> Bars:
        """Statistics of the minutes ``m0 <= minute < m1`` that have trades."""
        return self._bars.between(m0, m1)

    def minute_trades(self, minute: int) -> Trades:
        """The file's trades in the epoch minute ``minute`` (views)."""
        return self._trades.between(minute * MINUTE_MS, (minute + 1) * MINUTE_MS)
