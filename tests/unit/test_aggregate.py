"""Trades -> klines and klines -> coarser klines, checked bit for bit against real Binance candles."""

from __future__ import annotations

import random
from dataclasses import replace
from decimal import ROUND_FLOOR, Decimal
from itertools import pairwise

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from binmon.core import intervals
from binmon.core.aggregate import (
    aggregate_klines,
    aggregate_trades,
    bucket_close_times,
    bucket_open_times,
    to_units,
    trade_quote_units,
)
from binmon.core.models import Kline

Trades = dict[str, np.ndarray]
T0 = 1_570_752_000_000  # 2019-10-11 00:00 UTC
EIGHT = Decimal("0.00000001")


def row(k: Kline) -> list[str]:
    """A kline as the 12 columns of a Binance kline CSV row / REST array, 8-decimal strings."""
    return [
        str(k.open_time),
        *(f"{x:.8f}" for x in (k.open, k.high, k.low, k.close, k.volume)),
        str(k.close_time),
        f"{k.quote_volume:.8f}",
        str(k.trades),
        f"{k.taker_buy_base:.8f}",
        f"{k.taker_buy_quote:.8f}",
        "0",
    ]


def from_trades(trades: Trades, interval: str, **kw: int) -> list[Kline]:
    return aggregate_trades(
        "XRPETH",
        interval,
        trades["id"],
        trades["price"],
        trades["qty"],
        trades["time_ms"],
        trades["maker"],
        **kw,
    )


# ---------------------------------------------------------------- the real data


def test_real_trades_rebuild_the_real_1m_klines_bit_for_bit(
    xrpeth_trades: Trades, xrpeth_1m_rows: list[list[str]]
) -> None:
    klines = from_trades(xrpeth_trades, "1m")
    assert len(klines) == len(xrpeth_1m_rows) == 2469
    for k, expected in zip(klines, xrpeth_1m_rows, strict=True):
        assert row(k) == expected, f"kline {k.open_time} differs"
    assert all(k.closed and k.symbol == "XRPETH" and k.interval == "1m" for k in klines)
    # Trade ids chain without overlap or loss from one kline to the next.
    assert klines[0].first_trade_id == xrpeth_trades["id"][0]
    assert klines[-1].last_trade_id == xrpeth_trades["id"][-1]
    assert all(b.first_trade_id == a.last_trade_id + 1 for a, b in pairwise(klines))
    assert sum(k.trades for k in klines) == len(xrpeth_trades["id"])


def test_trade_quote_matches_the_archive_quote_qty_column(xrpeth_trades: Trades) -> None:
    quote = trade_quote_units(to_units(xrpeth_trades["price"]), to_units(xrpeth_trades["qty"]))
    assert np.array_equal(quote, to_units(xrpeth_trades["quote_qty"]))


def test_trade_order_does_not_matter(xrpeth_trades: Trades) -> None:
    order = np.random.default_rng(7).permutation(len(xrpeth_trades["id"]))
    shuffled = {k: v[order] for k, v in xrpeth_trades.items()}
    assert from_trades(shuffled, "1m") == from_trades(xrpeth_trades, "1m")


@pytest.mark.parametrize("interval", ["3m", "5m", "15m", "30m", "1h", "4h", "12h", "1d", "3d", "1w", "1M"])
def test_rolling_up_1m_equals_aggregating_the_trades(xrpeth_trades: Trades, interval: str) -> None:
    direct = from_trades(xrpeth_trades, interval)
    assert aggregate_klines(from_trades(xrpeth_trades, "1m"), interval) == direct
    assert direct[0].open_time == intervals.open_time(interval, int(xrpeth_trades["time_ms"][0]))


@pytest.mark.parametrize("interval", ["5m", "1h", "1d"])
def test_rolling_up_archive_rows_equals_aggregating_the_trades(
    xrpeth_trades: Trades, xrpeth_1m: list[Kline], interval: str
) -> None:
    # Archive/REST klines carry no trade ids: everything else must still agree to the bit.
    rolled = aggregate_klines(xrpeth_1m, interval)
    direct = from_trades(xrpeth_trades, interval)
    assert [row(k) for k in rolled] == [row(k) for k in direct]
    assert all(k.first_trade_id == k.last_trade_id == -1 for k in rolled)


def test_closed_before_marks_the_forming_candle(xrpeth_trades: Trades) -> None:
    full = from_trades(xrpeth_trades, "1h")
    last = full[-1]
    forming = from_trades(xrpeth_trades, "1h", closed_before_ms=last.close_time)
    assert [k.closed for k in forming] == [True] * (len(full) - 1) + [False]
    assert from_trades(xrpeth_trades, "1h", closed_before_ms=last.close_time + 1) == full
    minutes = from_trades(xrpeth_trades, "1m")
    rolled = aggregate_klines(minutes, "1h", closed_before_ms=last.close_time)
    assert [k.closed for k in rolled] == [k.closed for k in forming]
    # A forming minute makes its hour forming, whatever the clock says.
    minutes[-1] = replace(minutes[-1], closed=False)
    assert not aggregate_klines(minutes, "1h")[-1].closed


# ---------------------------------------------------------------- exactness


def test_sums_are_exact_where_float_addition_drifts() -> None:
    qtys = ["15050359.69771825", "9325183.10399295", "25402443.69824786"]
    naive = 0.0
    for q in qtys:
        naive += float(q)
    exact = f"{sum(Decimal(q) for q in qtys):.8f}"
    assert exact == "49777986.49995906"  # below 2**26: a float still holds every 8-decimal value
    assert f"{naive:.8f}" != exact  # why the aggregator sums integer units of 1e-8
    (k,) = aggregate_trades(
        "X", "1m", [1, 2, 3], [1.0] * 3, [float(q) for q in qtys], [T0, T0 + 1, T0 + 2], [False] * 3
    )
    assert f"{k.volume:.8f}" == f"{k.quote_volume:.8f}" == f"{k.taker_buy_base:.8f}" == exact


def _decimal_klines(trades: list[tuple[int, str, str, int, bool]], interval: str) -> list[list[str]]:
    """Reference aggregation with Python Decimals, one trade at a time."""
    groups: dict[int, list[tuple[int, str, str, int, bool]]] = {}
    for tr in sorted(trades, key=lambda tr: (tr[3], tr[0])):
        groups.setdefault(intervals.open_time(interval, tr[3]), []).append(tr)
    out = []
    for ot in sorted(groups):  # trades were sorted by (time, id): a kline opens with the earliest
        g = groups[ot]
        prices = [Decimal(p) for _, p, _, _, _ in g]
        quotes = [(Decimal(p) * Decimal(q)).quantize(EIGHT, rounding=ROUND_FLOOR) for _, p, q, _, _ in g]
        taker = [not m for *_, m in g]
        out.append(
            [
                str(ot),
                *(f"{x:.8f}" for x in (prices[0], max(prices), min(prices), prices[-1])),
                f"{sum(Decimal(q) for _, _, q, _, _ in g):.8f}",
                str(intervals.close_time(interval, ot)),
                f"{sum(quotes):.8f}",
                str(len(g)),
                f"{sum(Decimal(g[i][2]) for i in range(len(g)) if taker[i]):.8f}",
                f"{sum(quotes[i] for i in range(len(g)) if taker[i]):.8f}",
                "0",
            ]
        )
    return out


_DEC = st.integers(min_value=1, max_value=10**11).map(lambda u: f"{Decimal(u) / 10**8:.8f}")  # <= 1000


@settings(max_examples=200, deadline=None)
@given(
    trades=st.lists(
        st.tuples(_DEC, _DEC, st.integers(min_value=0, max_value=4 * 3_600_000), st.booleans()),
        min_size=1,
        max_size=40,
    ),
    interval=st.sampled_from(["1m", "15m", "1h"]),
)
def test_random_trades_match_a_decimal_reference(
    trades: list[tuple[str, str, int, bool]], interval: str
) -> None:
    numbered = [(i, p, q, T0 + dt, m) for i, (p, q, dt, m) in enumerate(trades)]
    ids, prices, qtys, times, makers = zip(*numbered, strict=True)
    klines = aggregate_trades(
        "X",
        interval,
        list(ids),
        [float(p) for p in prices],
        [float(q) for q in qtys],
        list(times),
        list(makers),
    )
    assert [row(k) for k in klines] == _decimal_klines(numbered, interval)
    fine = aggregate_trades(
        "X", "1m", list(ids), [float(p) for p in prices], [float(q) for q in qtys], list(times), list(makers)
    )
    assert aggregate_klines(fine, interval) == klines


def test_sub_8_decimal_products_are_truncated_per_trade() -> None:
    # 0.05104100 * 0.04150000 = 0.0021182015 exactly: the 9th and 10th decimals are dropped.
    assert trade_quote_units(to_units([0.051041]), to_units([0.0415])).tolist() == [211820]
    # 0.00000003 * 0.5 = 0.000000015 twice: truncating each gives 2e-8 where rounding the exact
    # sum would give 3e-8. This is the choice that keeps aggregate_klines == aggregate_trades.
    two = aggregate_trades("X", "1m", [1, 2], [0.00000003] * 2, [0.5] * 2, [T0, T0 + 5], [True, True])
    assert f"{two[0].quote_volume:.8f}" == "0.00000002"


def test_huge_values_do_not_overflow_int64() -> None:
    # A meme coin: 5e9 units a trade and 100 trades: the volume in 1e-8 units exceeds 2**63.
    n = 100
    qty = 5_000_000_000.0
    (k,) = aggregate_trades("SHIBUSDT", "1m", range(n), [0.00001234] * n, [qty] * n, [T0] * n, [False] * n)
    assert k.volume == 500_000_000_000.0
    assert k.quote_volume == float(Decimal("0.00001234") * 5_000_000_000 * n)
    # BTC at 60,000 traded a million at once: the product alone is above 2**62 units.
    (big,) = aggregate_trades("BTCUSDT", "1d", [1, 2], [60000.12345678] * 2, [1e6] * 2, [T0, T0], [True] * 2)
    assert big.quote_volume == float(Decimal("60000.12345678") * 2_000_000)
    day = replace(k, interval="1d", close_time=intervals.close_time("1d", T0), volume=1e13, quote_volume=1e8)
    days = [
        replace(day, open_time=T0 + i * intervals.DAY_MS, close_time=day.close_time + i * intervals.DAY_MS)
        for i in range(20)
    ]
    (month,) = aggregate_klines(days, "1M")
    assert month.volume == 2e14
    assert month.quote_volume == 2e9
    assert month.trades == 20 * n


# ---------------------------------------------------------------- time buckets and validation


@given(
    interval=st.sampled_from(intervals.INTERVALS),
    times=st.lists(st.integers(min_value=0, max_value=4_102_444_800_000), min_size=1, max_size=20),
)
def test_bucket_times_match_intervals(interval: str, times: list[int]) -> None:
    opens = bucket_open_times(interval, times)
    assert opens.tolist() == [intervals.open_time(interval, t) for t in times]
    assert bucket_close_times(interval, opens).tolist() == [intervals.close_time(interval, o) for o in opens]


def test_empty_and_malformed_input() -> None:
    assert aggregate_trades("X", "1m", [], [], [], [], []) == []
    assert aggregate_klines([], "1h") == []
    with pytest.raises(ValueError, match="same length"):
        aggregate_trades("X", "1m", [1, 2], [1.0], [1.0, 2.0], [T0, T0], [True, True])
    with pytest.raises(ValueError, match="booleans"):
        aggregate_trades("X", "1m", [1, 2], [1.0, 1.0], [1.0, 1.0], [T0, T0], ["False", "True"])
    with pytest.raises(ValueError, match="unknown interval"):
        aggregate_trades("X", "1H", [1], [1.0], [1.0], [T0], [True])


def test_aggregate_klines_refuses_what_it_cannot_roll_up(xrpeth_1m: list[Kline]) -> None:
    with pytest.raises(ValueError, match="one symbol"):
        aggregate_klines([xrpeth_1m[0], replace(xrpeth_1m[1], symbol="ETHBTC")], "1h")
    with pytest.raises(ValueError, match="duplicate"):
        aggregate_klines([xrpeth_1m[0], xrpeth_1m[0]], "1h")
    monday_sep_30 = 1_569_801_600_000  # its week ends in October: it straddles two months
    week = replace(
        xrpeth_1m[0],
        interval="1w",
        open_time=monday_sep_30,
        close_time=intervals.close_time("1w", monday_sep_30),
    )
    with pytest.raises(ValueError, match="nest"):
        aggregate_klines([week], "1M")
    with pytest.raises(ValueError, match="nest"):
        aggregate_klines(xrpeth_1m[:5], "1s")


def test_empty_bars_are_skipped_and_order_does_not_matter(xrpeth_1m: list[Kline]) -> None:
    hour = xrpeth_1m[:60]
    filler = replace(hour[0], open_time=T0 - 60_000, close_time=T0 - 1, volume=0.0, trades=0, high=9.0)
    shuffled = [*hour, filler]
    random.Random(3).shuffle(shuffled)
    assert aggregate_klines(shuffled, "1d") == aggregate_klines(hour, "1d")
    assert aggregate_klines([filler], "1h") == []
