"""Typed, frozen market-data values shared by every layer of binmon.

These are what the codec produces from Binance JSON and what the rest of the
program consumes: nothing downstream of the codec ever sees wire dictionaries.
Prices and quantities are floats (Binance sends decimal strings with 8 places; a
float keeps 15-17 significant digits, enough for every spot price and size).
Times are integer ms since the epoch, UTC.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Kline:
    """One candle, identified by ``(symbol, interval, open_time)``.

    ``closed`` is Binance's ``x`` flag: only a closed candle is final. REST and
    archive rows are closed unless they are the still-forming last candle, which
    the REST decoder marks by comparing ``close_time`` with the server time.
    """

    symbol: str
    interval: str
    open_time: int
    close_time: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    quote_volume: float
    trades: int
    taker_buy_base: float
    taker_buy_quote: float
    closed: bool = True
    first_trade_id: int = -1
    last_trade_id: int = -1

    def same_values(self, other: Kline) -> bool:
        """True when both candles carry the same OHLCV data (ignoring trade ids and ``closed``)."""
        return (
            self.open_time == other.open_time
            and self.open == other.open
            and self.high == other.high
            and self.low == other.low
            and self.close == other.close
            and self.volume == other.volume
            and self.trades == other.trades
        )


# ---------------------------------------------------------------- stream events


@dataclass(frozen=True, slots=True)
class KlineEvent:
    """A ``<symbol>@kline_<interval>`` push: the current state of one candle."""

    event_time: int
    kline: Kline
    stream: str = ""


@dataclass(frozen=True, slots=True)
class TradeEvent:
    """A ``<symbol>@trade`` push. ``buyer_is_maker`` true means the seller was the aggressor."""

    event_time: int
    symbol: str
    trade_id: int
    price: float
    qty: float
    trade_time: int
    buyer_is_maker: bool
    stream: str = ""


@dataclass(frozen=True, slots=True)
class AggTradeEvent:
    """A ``<symbol>@aggTrade`` push: trades at one price and time from one taker order."""

    event_time: int
    symbol: str
    agg_id: int
    price: float
    qty: float
    first_trade_id: int
    last_trade_id: int
    trade_time: int
    buyer_is_maker: bool
    stream: str = ""


@dataclass(frozen=True, slots=True)
class BookTickerEvent:
    """A ``<symbol>@bookTicker`` push: best bid and ask. Spot frames carry no event time (0)."""

    update_id: int
    symbol: str
    bid_price: float
    bid_qty: float
    ask_price: float
    ask_qty: float
    event_time: int = 0
    stream: str = ""


@dataclass(frozen=True, slots=True)
class MiniTicker:
    """One 24 h rolling mini ticker (an element of ``!miniTicker@arr``)."""

    event_time: int
    symbol: str
    close: float
    open: float
    high: float
    low: float
    volume: float
    quote_volume: float

    @property
    def change_pct(self) -> float:
        """24 h change in percent of the open (0 when the open is 0)."""
        return (self.close - self.open) / self.open * 100.0 if self.open else 0.0


@dataclass(frozen=True, slots=True)
class MiniTickerEvent:
    """A ``!miniTicker@arr`` push (or a single ``<symbol>@miniTicker``)."""

    tickers: tuple[MiniTicker, ...]
    stream: str = ""


@dataclass(frozen=True, slots=True)
class ControlReply:
    """Reply to a SUBSCRIBE / UNSUBSCRIBE / LIST_SUBSCRIPTIONS / property frame."""

    id: int | str | None
    result: Any = None


@dataclass(frozen=True, slots=True)
class ErrorReply:
    """``{"error": {"code", "msg"}, "id"}``: a control frame the server refused."""

    id: int | str | None
    code: int
    msg: str


@dataclass(frozen=True, slots=True)
class ServerShutdown:
    """The server announced it will close this connection soon: reconnect now."""

    event_time: int


@dataclass(frozen=True, slots=True)
class UnknownEvent:
    """A well-formed frame the codec does not model (e.g. ``depthUpdate``), kept raw."""

    stream: str
    event_type: str
    data: Any = field(repr=False, default=None)


StreamEvent = (
    KlineEvent
    | TradeEvent
    | AggTradeEvent
    | BookTickerEvent
    | MiniTickerEvent
    | ControlReply
    | ErrorReply
    | ServerShutdown
    | UnknownEvent
)


# ---------------------------------------------------------------- exchange info


@dataclass(frozen=True, slots=True)
class SymbolInfo:
    """One symbol of ``exchangeInfo``: what the chart and validators need of it."""

    symbol: str
    status: str
    base_asset: str
    quote_asset: str
    tick_size: str = "0.00000001"
    step_size: str = "0.00000001"

    @property
    def trading(self) -> bool:
        """True when the symbol is in ``TRADING`` status."""
        return self.status == "TRADING"

    @property
    def price_precision(self) -> int:
        """Decimals to show a price with, from ``tickSize`` (``"0.01000000"`` -> 2)."""
        return decimals_of(self.tick_size)


@dataclass(frozen=True, slots=True)
class RateLimit:
    """One entry of ``exchangeInfo.rateLimits``."""

    kind: str  # REQUEST_WEIGHT, ORDERS, RAW_REQUESTS
    interval: str  # SECOND, MINUTE, DAY
    interval_num: int
    limit: int


@dataclass(frozen=True, slots=True)
class ExchangeInfo:
    """The parts of ``GET /api/v3/exchangeInfo`` binmon uses."""

    server_time: int
    symbols: tuple[SymbolInfo, ...]
    rate_limits: tuple[RateLimit, ...]

    def symbol(self, name: str) -> SymbolInfo | None:
        """The symbol called ``name`` (case-insensitive), or None."""
        name = name.upper()
        for s in self.symbols:
            if s.symbol == name:
                return s
        return None

    def request_weight_per_minute(self, default: int = 6000) -> int:
        """The REQUEST_WEIGHT limit per minute, or ``default`` when absent."""
        for r in self.rate_limits:
            if r.kind == "REQUEST_WEIGHT" and r.interval == "MINUTE" and r.interval_num == 1:
                return r.limit
        return default


def decimals_of(step: str) -> int:
    """Number of significant decimals in a Binance step string (``"0.00000100"`` -> 6, ``"1.000"`` -> 0)."""
    if "." not in step:
        return 0
    frac = step.split(".", 1)[1].rstrip("0")
    return len(frac)
