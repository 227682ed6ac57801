"""Trades -> klines and fine klines -> coarse klines, the way Binance builds candles.

Binance computes with exact decimals (8 places) and prints 8-decimal strings. Adding floats
accumulates one rounding error per addition, which reaches the 8th decimal once totals are in
the millions (tests/unit/test_aggregate.py has a 3-trade example), so every sum here is done in
integer units of 1e-8 and divided once at the end: the resulting float is the one nearest to
the exact decimal, and ``f"{x:.8f}"`` gives Binance's string back whenever a float can hold
every 8-decimal value, i.e. below 2**26 = 67,108,864. Above that no float-based
:class:`Kline` can be exact (the sums here still are, and the float is the nearest one).

A trade's quote quantity ``price * qty`` can have up to 16 decimals; it is **truncated** to 8
(:func:`trade_quote_units`) before summing, so rolling klines up (:func:`aggregate_klines`)
gives exactly what aggregating the trades gives. Binance's own rounding of such products is
not pinned down by the reference data (every product there has at most 8 decimals).

Everything is vectorised with numpy: the simulator runs this over millions of trades.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from binmon.core import intervals
from binmon.core.models import Kline

UNIT = 100_000_000
"""Integer units per 1.0 (Binance decimals have 8 places)."""
_SAFE = float(2**62)  # below this an int64 holds the value with room to add two of them

IntArray = npt.NDArray[np.int64]
# Integer units: int64 normally, an object array of Python ints when int64 could overflow.
Units = npt.NDArray[np.int64] | npt.NDArray[np.object_]


# ---------------------------------------------------------------- time buckets


def bucket_open_times(interval: str, times_ms: npt.ArrayLike) -> IntArray:
    """Vectorised :func:`intervals.open_time`: the open time of the candle holding each instant."""
    intervals.check_interval(interval)
    t = np.asarray(times_ms, dtype=np.int64)
    if interval == "1M":
        # numpy's month resolution follows the UTC calendar, as Binance's months do.
        return t.astype("datetime64[ms]").astype("datetime64[M]").astype("datetime64[ms]").astype(np.int64)
    step = intervals.interval_ms(interval)
    offset = 4 * intervals.DAY_MS if interval == "1w" else 0  # weeks open on Monday 00:00 UTC
    out: IntArray = (t - offset) // step * step + offset
    return out


def bucket_close_times(interval: str, open_times_ms: npt.ArrayLike) -> IntArray:
    """Vectorised :func:`intervals.close_time` for candle open times (last ms each covers)."""
    intervals.check_interval(interval)
    t = np.asarray(open_times_ms, dtype=np.int64)
    if interval == "1M":
        months = t.astype("datetime64[ms]").astype("datetime64[M]")
        nxt: IntArray = (months + 1).astype("datetime64[ms]").astype(np.int64)
        return nxt - 1
    out: IntArray = t + (intervals.interval_ms(interval) - 1)
    return out


# ---------------------------------------------------------------- exact decimal sums


def to_units(values: npt.ArrayLike) -> Units:
    """Decimal values (floats parsed from 8-decimal strings) as integer units of 1e-8.

    int64 when every value fits with headroom, else an object array of Python ints (a meme
    coin's monthly volume is ~1e22 units). Rounding to the nearest unit undoes the float's
    representation error, which is below half a unit for values under 2**26 (~6.7e7).
    """
    x = np.asarray(values, dtype=np.float64)
    scaled = np.rint(x * UNIT)
    if not x.size or float(np.abs(scaled).max()) < _SAFE:
        return scaled.astype(np.int64)
    return np.array([int(v) for v in scaled.tolist()], dtype=object)


def trade_quote_units(price_units: Units, qty_units: Units) -> Units:
    """``price * qty`` of each trade in units of 1e-8, truncated to 8 decimals, exactly.

    The exact product has 16 decimals and overflows int64 as one number, so it is split into
    whole and fractional parts of each factor; every partial product is then below the result.
    """
    if price_units.dtype == object or qty_units.dtype == object:
        pairs = zip(price_units.tolist(), qty_units.tolist(), strict=True)
        return np.array([p * q // UNIT for p, q in pairs], dtype=object)
    if price_units.size and float(price_units.max()) * float(qty_units.max()) / UNIT >= _SAFE:
        return trade_quote_units(price_units.astype(object), qty_units.astype(object))
    ph, pl = np.divmod(price_units, UNIT)
    qh, ql = np.divmod(qty_units, UNIT)
    out: IntArray = ph * qh * UNIT + ph * ql + pl * qh + (pl * ql) // UNIT
    return out


def _group_sums(units: Units, starts: IntArray) -> list[int]:
    """Exact sum of ``units`` over each group starting at ``starts`` (as Python ints)."""
    if units.dtype != object:
        # A float estimate of each group's total tells whether int64 can hold it; only then
        # pay for Python ints (a month of BTCUSDT quote volume is ~1e20 units).
        estimate = np.add.reduceat(np.abs(units).astype(np.float64), starts)
        if estimate.size and float(estimate.max()) >= _SAFE:
            units = units.astype(object)
    sums: list[int] = np.add.reduceat(units, starts).tolist()
    return sums


def _group_bounds(keys: IntArray) -> tuple[IntArray, IntArray]:
    """Start and end (inclusive) index of each run of equal values in sorted ``keys``."""
    change = np.flatnonzero(keys[1:] != keys[:-1]) + 1
    starts = np.concatenate(([0], change)).astype(np.int64)
    ends = np.concatenate((change - 1, [keys.size - 1])).astype(np.int64)
    return starts, ends


# ---------------------------------------------------------------- trades -> klines


def aggregate_trades(
    symbol: str,
    interval: str,
    trade_ids: npt.ArrayLike,
    prices: npt.ArrayLike,
    qtys: npt.ArrayLike,
    times_ms: npt.ArrayLike,
    buyer_is_maker: npt.ArrayLike,
    *,
    closed_before_ms: int | None = None,
) -> list[Kline]:
    """Build the ``interval`` klines of a set of trades, oldest first, as Binance does.

    Trades may come in any order: they are sorted by time, then trade id (Binance ids grow with
    time, so this is id order on real data, and it keeps :func:`aggregate_klines` consistent
    even when they do not). A kline opens with its first trade and closes with its last;
    ``first_trade_id``/``last_trade_id`` are theirs; ``volume`` sums qty,
    ``quote_volume`` sums ``price * qty`` (each truncated to 8 decimals), ``taker_buy_*`` sum
    the trades whose buyer was the taker (``buyer_is_maker`` false). Candles without trades
    get no kline. ``closed`` is ``close_time < closed_before_ms`` (all closed when None).
    Raise ValueError when the arrays are not 1-D and of one length, or ``buyer_is_maker``
    is not boolean (or integer).
    """
    ids = np.asarray(trade_ids, dtype=np.int64)
    px = np.asarray(prices, dtype=np.float64)
    qty = np.asarray(qtys, dtype=np.float64)
    ts = np.asarray(times_ms, dtype=np.int64)
    maker = np.asarray(buyer_is_maker)
    if maker.size and maker.dtype.kind not in "biu":
        # numpy turns the strings "False" and "True" both into True: refuse rather than guess.
        raise ValueError(f"buyer_is_maker must be booleans, not {maker.dtype}")
    maker = maker.astype(bool)
    if any(a.ndim != 1 or a.shape != ids.shape for a in (px, qty, ts, maker)):
        raise ValueError("trade arrays must be 1-D and of the same length")
    intervals.check_interval(interval)
    if not ids.size:
        return []
    if not (np.all(np.diff(ts) >= 0) and np.all(np.diff(ids) > 0)):
        order = np.lexsort((ids, ts))  # the last key is the primary one
        ids, px, qty, maker, ts = ids[order], px[order], qty[order], maker[order], ts[order]
    opens = bucket_open_times(interval, ts)
    starts, ends = _group_bounds(opens)

    p_units, q_units = to_units(px), to_units(qty)
    quote = trade_quote_units(p_units, q_units)
    taker = ~maker
    zero = np.zeros(1, dtype=q_units.dtype)
    group_opens = opens[starts]
    return _klines(
        symbol,
        interval,
        group_opens,
        bucket_close_times(interval, group_opens),
        opens=px[starts],
        highs=np.maximum.reduceat(px, starts),
        lows=np.minimum.reduceat(px, starts),
        closes=px[ends],
        volumes=_group_sums(q_units, starts),
        quote_volumes=_group_sums(quote, starts),
        trades=(ends - starts + 1).tolist(),
        taker_base=_group_sums(np.where(taker, q_units, zero), starts),
        taker_quote=_group_sums(np.where(taker, quote, zero.astype(quote.dtype)), starts),
        first_ids=ids[starts],
        last_ids=ids[ends],
        closed=[True] * starts.size,
        closed_before_ms=closed_before_ms,
    )


# ---------------------------------------------------------------- klines -> coarser klines


def aggregate_klines(
    bars: Sequence[Kline], interval: str, *, closed_before_ms: int | None = None
) -> list[Kline]:
    """Roll finer klines of one symbol up into ``interval`` klines (1m -> 1h, 1d -> 1M, ...).

    Gives exactly what :func:`aggregate_trades` gives on the same trades. Bars may be in any
    order; empty bars (no trades and no volume, as some sources fill idle minutes with) are
    skipped, since they carry no trade. A coarse kline is closed when all its bars are and, if
    ``closed_before_ms`` is given, its close time is before it. Trade ids come from its first
    and last bar (-1 stays -1). Raise ValueError for mixed symbols or intervals, duplicate open
    times, or a bar that straddles two ``interval`` candles (e.g. 1w -> 1M).
    """
    intervals.check_interval(interval)
    bars = [b for b in bars if b.trades or b.volume]
    if not bars:
        return []
    symbol, fine = bars[0].symbol, bars[0].interval
    if any(b.symbol != symbol or b.interval != fine for b in bars):
        raise ValueError("aggregate_klines needs bars of one symbol and one interval")
    bars.sort(key=lambda b: b.open_time)
    ot = np.array([b.open_time for b in bars], dtype=np.int64)
    if np.any(np.diff(ot) == 0):
        raise ValueError("duplicate open times in the bars to aggregate")
    opens = bucket_open_times(interval, ot)
    ct = np.array([b.close_time for b in bars], dtype=np.int64)
    if np.any(bucket_open_times(interval, ct) != opens):
        raise ValueError(f"{fine} bars do not nest in {interval} candles")
    starts, ends = _group_bounds(opens)

    def col(name: str) -> npt.NDArray[np.float64]:
        return np.array([getattr(b, name) for b in bars], dtype=np.float64)

    highs, lows = col("high"), col("low")
    closed = np.array([b.closed for b in bars], dtype=bool)
    group_opens = opens[starts]
    return _klines(
        symbol,
        interval,
        group_opens,
        bucket_close_times(interval, group_opens),
        opens=np.array([bars[i].open for i in starts.tolist()]),
        highs=np.maximum.reduceat(highs, starts),
        lows=np.minimum.reduceat(lows, starts),
        closes=np.array([bars[i].close for i in ends.tolist()]),
        volumes=_group_sums(to_units(col("volume")), starts),
        quote_volumes=_group_sums(to_units(col("quote_volume")), starts),
        trades=np.add.reduceat(np.array([b.trades for b in bars], dtype=np.int64), starts).tolist(),
        taker_base=_group_sums(to_units(col("taker_buy_base")), starts),
        taker_quote=_group_sums(to_units(col("taker_buy_quote")), starts),
        first_ids=np.array([bars[i].first_trade_id for i in starts.tolist()], dtype=np.int64),
        last_ids=np.array([bars[i].last_trade_id for i in ends.tolist()], dtype=np.int64),
        closed=np.logical_and.reduceat(closed, starts).tolist(),
        closed_before_ms=closed_before_ms,
    )


def _klines(
    symbol: str,
    interval: str,
    open_times: IntArray,
    close_times: IntArray,
    *,
    opens: npt.NDArray[np.float64],
    highs: npt.NDArray[np.float64],
    lows: npt.NDArray[np.float64],
    closes: npt.NDArray[np.float64],
    volumes: list[int],
    quote_volumes: list[int],
    trades: list[int],
    taker_base: list[int],
    taker_quote: list[int],
    first_ids: IntArray,
    last_ids: IntArray,
    closed: list[bool],
    closed_before_ms: int | None,
) -> list[Kline]:
    # Python int / int is correctly rounded: the float nearest to the exact decimal sum.
    return [
        Kline(
            symbol=symbol,
            interval=interval,
            open_time=ot,
            close_time=ct,
            open=o,
            high=h,
            low=lo,
            close=c,
            volume=v / UNIT,
            quote_volume=qv / UNIT,
            trades=n,
            taker_buy_base=tb / UNIT,
            taker_buy_quote=tq / UNIT,
            closed=bool(x) and (closed_before_ms is None or ct < closed_before_ms),
            first_trade_id=f,
            last_trade_id=la,
        )
        for ot, ct, o, h, lo, c, v, qv, n, tb, tq, f, la, x in zip(
            open_times.tolist(),
            close_times.tolist(),
            opens.tolist(),
            highs.tolist(),
            lows.tolist(),
            closes.tolist(),
            volumes,
            quote_volumes,
            trades,
            taker_base,
            taker_quote,
            first_ids.tolist(),
            last_ids.tolist(),
            closed,
            strict=True,
        )
    ]
