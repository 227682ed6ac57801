"""Order fills -> round-trip trades and chart markers. Pure Python, no backtrader.

Built from the broker's fills rather than backtrader's ``notify_trade`` because a trade needs
its exit price and a reversal (long -> short in one order) must become two trades; fills give
both for any strategy, built-in or user-written.

A round trip runs from a flat position until the position is flat again (or changes sign).
Fills that grow the position average into the entry price; fills that shrink it realise
profit against that average and average into the exit price. A fill that crosses zero is
split: the part that closes ends the trade, the rest opens the next one; its commission is
split in proportion to the size.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from binmon.backtest.model import Marker, Trade

__all__ = ["Fill", "markers_from_fills", "trades_from_fills"]

_EPS = 1e-12


@dataclass(frozen=True, slots=True)
class Fill:
    """One executed order: bar index of the fill, signed size (+ buy, - sell), price, commission."""

    bar: int
    size: float
    price: float
    commission: float


class _Open:
    """The round trip being built."""

    def __init__(self, bar: int, sign: int) -> None:
        self.bar = bar
        self.sign = sign
        self.pos = 0.0  # signed
        self.entry_qty = 0.0
        self.entry_value = 0.0
        self.exit_qty = 0.0
        self.exit_value = 0.0
        self.realised = 0.0
        self.commission = 0.0
        # The price of the fills when they all had one price: exact, where value / qty is not.
        self.entry_one: float | None = None
        self.exit_one: float | None = None
        self._entries = self._exits = 0

    def add(self, qty: float, price: float, comm: float) -> None:
        self.pos += self.sign * qty
        self.entry_qty += qty
        self.entry_value += qty * price
        self.commission += comm
        self.entry_one = price if self._entries == 0 or self.entry_one == price else None
        self._entries += 1

    def reduce(self, qty: float, price: float, comm: float) -> None:
        avg = self.entry_value / self.entry_qty if self.entry_one is None else self.entry_one
        self.realised += self.sign * (price - avg) * qty
        self.pos -= self.sign * qty
        self.exit_qty += qty
        self.exit_value += qty * price
        self.commission += comm
        self.exit_one = price if self._exits == 0 or self.exit_one == price else None
        self._exits += 1

    def trade(self, times: np.ndarray, bar: int, *, is_open: bool, last_close: float) -> Trade:
        entry_price = self.entry_value / self.entry_qty if self.entry_one is None else self.entry_one
        pnl = self.realised - self.commission
        if is_open:  # value what is still held at the last close, like the equity curve does
            held = abs(self.pos)
            pnl += self.sign * (last_close - entry_price) * held
            exit_price = (self.exit_value + held * last_close) / self.entry_qty
        else:
            exit_price = self.exit_value / self.exit_qty if self.exit_one is None else self.exit_one
        entry_value = entry_price * self.entry_qty
        return Trade(
            entry_time_ms=int(times[self.bar]),
            exit_time_ms=int(times[bar]),
            entry_price=entry_price,
            exit_price=exit_price,
            size=self.entry_qty,
            side="long" if self.sign > 0 else "short",
            pnl=pnl,
            pnl_pct=100.0 * pnl / entry_value if entry_value else 0.0,
            commission=self.commission,
            bars=bar - self.bar,
            is_open=is_open,
        )


def trades_from_fills(fills: Sequence[Fill], times: np.ndarray, closes: np.ndarray) -> list[Trade]:
    """The round trips of ``fills`` (in execution order); ``times`` / ``closes``: per bar.

    A position still open after the last fill gives a final trade with ``is_open=True``,
    valued at ``closes[-1]`` and ending at the last bar.
    """
    trades: list[Trade] = []
    cur: _Open | None = None
    for f in fills:
        qty = abs(f.size)
        if qty <= _EPS:
            continue
        sign = 1 if f.size > 0 else -1
        price, comm = f.price, f.commission
        if cur is None:
            cur = _Open(f.bar, sign)
            cur.add(qty, price, comm)
            continue
        if sign == cur.sign:
            cur.add(qty, price, comm)
            continue
        held = abs(cur.pos)
        closing = min(qty, held)
        cur.reduce(closing, price, comm * closing / qty)
        if abs(cur.pos) <= _EPS * max(1.0, held):
            trades.append(cur.trade(times, f.bar, is_open=False, last_close=float(closes[-1])))
            cur = None
            rest = qty - closing
            if rest > _EPS * max(1.0, qty):
                cur = _Open(f.bar, sign)
                cur.add(rest, price, comm * rest / qty)
    if cur is not None:
        trades.append(cur.trade(times, len(times) - 1, is_open=True, last_close=float(closes[-1])))
    return trades


def markers_from_fills(fills: Sequence[Fill], times: np.ndarray) -> list[Marker]:
    """One buy/sell marker per fill, at the fill bar's open time and the fill price."""
    return [
        Marker(int(times[f.bar]), f.price, "buy" if f.size > 0 else "sell")
        for f in fills
        if abs(f.size) > _EPS
    ]
