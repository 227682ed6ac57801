"""CandleSeries: one test per rule, calendar intervals, and the real XRPETH minutes with their gaps."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from binmon.core import intervals
from binmon.core.candles import Append, CandleSeries, Gap, Reload, Replace, newer_version
from binmon.core.models import Kline

M = 60_000
T0 = 1_570_752_000_000  # 2019-10-11 00:00 UTC, a minute (and day) boundary


def ms(year: int, month: int, day: int) -> int:
    return int(datetime(year, month, day, tzinfo=UTC).timestamp() * 1000)


def kl(
    t: int,
    *,
    closed: bool = True,
    n: int = 10,
    last_id: int = 100,
    volume: float = 5.0,
    close: float = 1.5,
    symbol: str = "BTCUSDT",
    interval: str = "1m",
) -> Kline:
    return Kline(
        symbol=symbol,
        interval=interval,
        open_time=t,
        close_time=intervals.close_time(interval, t),
        open=1.0,
        high=2.0,
        low=0.5,
        close=close,
        volume=volume,
        quote_volume=volume * 1.2,
        trades=n,
        taker_buy_base=volume / 2,
        taker_buy_quote=volume * 0.6,
        closed=closed,
        first_trade_id=last_id - n + 1,
        last_trade_id=last_id,
    )


def series(*bars: Kline, max_bars: int | None = None) -> CandleSeries:
    s = CandleSeries("BTCUSDT", bars[0].interval if bars else "1m", max_bars)
    for b in bars:
        s.apply(b)
    return s


# ---------------------------------------------------------------- the tail


def test_empty_series() -> None:
    s = CandleSeries("BTCUSDT", "1m")
    assert len(s) == 0
    assert s.bars == ()
    assert s.last is None
    assert s.last_closed_open_time is None
    assert s.gaps() == []
    assert s.merge([]) == []


def test_first_and_next_bars_append() -> None:
    s = CandleSeries("BTCUSDT", "1m")
    a, b = kl(T0), kl(T0 + M)
    assert s.apply(a) == [Append(a)]
    assert s.apply(b) == [Append(b)]
    assert list(s.bars) == [a, b]
    assert s.last == b
    assert len(s) == 2


def test_newer_version_of_last_bar_replaces_it() -> None:
    forming = kl(T0, closed=False, n=3, last_id=12)
    update = kl(T0, closed=False, n=5, last_id=14, volume=7.0, close=1.7)
    final = kl(T0, closed=True, n=5, last_id=14, volume=7.0, close=1.7)
    s = series(forming)
    assert s.apply(update) == [Replace(update)]
    assert s.apply(final) == [Replace(final)]
    assert list(s.bars) == [final]


@pytest.mark.parametrize(
    ("older", "newer"),
    [
        (kl(T0, closed=False, n=50, last_id=500), kl(T0, closed=True, n=49, last_id=499)),  # closed first
        (kl(T0, n=4, last_id=100), kl(T0, n=5, last_id=90)),  # then trade count
        (kl(T0, n=5, last_id=99), kl(T0, n=5, last_id=100, volume=1.0)),  # then last trade id
        (kl(T0, n=5, volume=1.0), kl(T0, n=5, volume=2.0)),  # then volume
        (kl(T0, close=1.4), kl(T0, close=1.6)),  # then a fixed order of the other fields
    ],
)
def test_version_order_does_not_depend_on_arrival(older: Kline, newer: Kline) -> None:
    assert newer_version(newer, older)
    assert not newer_version(older, newer)
    assert series(older, newer).bars == series(newer, older).bars == (newer,)
    assert series(newer).apply(older) == []


def test_identical_or_older_version_is_a_no_op() -> None:
    bar = kl(T0, n=5)
    s = series(bar)
    assert s.apply(kl(T0, n=5)) == []  # an equal copy (Binance re-sends unchanged candles)
    assert s.apply(kl(T0, n=4, last_id=99, closed=False)) == []
    assert list(s.bars) == [bar]


def test_rest_copy_without_trade_ids_loses_to_the_stream_copy() -> None:
    stream = kl(T0, n=5, last_id=140)
    rest = kl(T0, n=5, last_id=-1)  # REST rows carry no trade ids
    assert series(stream).apply(rest) == []
    assert series(rest).apply(stream) == [Replace(stream)]


# ---------------------------------------------------------------- gaps


def test_jump_over_missing_minutes_reports_the_gap_first() -> None:
    s = series(kl(T0))
    far = kl(T0 + 4 * M)
    assert s.apply(far) == [Gap(T0 + M, T0 + 3 * M), Append(far)]
    assert s.gaps() == [Gap(T0 + M, T0 + 3 * M)]
    assert intervals.open_times("1m", T0 + M, T0 + 3 * M) == [T0 + M, T0 + 2 * M, T0 + 3 * M]


def test_single_missing_candle_gap_has_start_equal_end() -> None:
    s = series(kl(T0))
    assert s.apply(kl(T0 + 2 * M))[0] == Gap(T0 + M, T0 + M)


def test_monthly_gaps_follow_the_calendar() -> None:
    jan, feb, mar, apr = ms(2024, 1, 1), ms(2024, 2, 1), ms(2024, 3, 1), ms(2024, 4, 1)
    s = series(kl(jan, interval="1M"))
    assert s.apply(kl(feb, interval="1M")) == [Append(kl(feb, interval="1M"))]  # 31 days later: no gap
    ops = s.apply(kl(apr, interval="1M"))
    assert ops == [Gap(mar, mar), Append(kl(apr, interval="1M"))]  # Feb 2024 has 29 days
    dec, may = ms(2023, 12, 1), ms(2024, 5, 1)
    s = series(kl(dec, interval="1M"))
    assert s.apply(kl(may, interval="1M"))[0] == Gap(jan, apr)  # across the new year


def test_weekly_gaps_and_monday_alignment() -> None:
    mon = ms(2019, 10, 7)  # a Monday
    s = series(kl(mon, interval="1w"))
    later = kl(mon + 3 * intervals.WEEK_MS, interval="1w")
    assert s.apply(later) == [Gap(mon + intervals.WEEK_MS, mon + 2 * intervals.WEEK_MS), Append(later)]
    with pytest.raises(ValueError, match="boundary"):
        s.apply(kl(ms(2019, 10, 10), interval="1w"))  # a Thursday: epoch-aligned, not Monday-aligned


# ---------------------------------------------------------------- behind the last bar


def test_new_bar_behind_the_last_reloads() -> None:
    a, c = kl(T0), kl(T0 + 2 * M)
    s = series(a, c)
    b = kl(T0 + M)
    assert s.apply(b) == [Reload((a, b, c))]
    assert s.gaps() == []


def test_newer_version_behind_the_last_reloads_identical_or_older_does_not() -> None:
    a_open, b = kl(T0, closed=False, n=3, last_id=3), kl(T0 + M)
    s = series(a_open, b)
    a = kl(T0, n=4, last_id=4)
    assert s.apply(a) == [Reload((a, b))]
    assert s.apply(kl(T0, n=4, last_id=4)) == []
    assert s.apply(a_open) == []
    assert list(s.bars) == [a, b]


def test_bar_older_than_the_first_is_inserted() -> None:
    b = kl(T0 + M)
    s = series(b)
    a = kl(T0)
    assert s.apply(a) == [Reload((a, b))]


def test_other_symbol_interval_or_misaligned_time_is_refused_and_not_stored() -> None:
    s = series(kl(T0))
    with pytest.raises(ValueError, match="ETHBTC"):
        s.apply(kl(T0 + M, symbol="ETHBTC"))
    with pytest.raises(ValueError, match="5m"):
        s.apply(kl(T0 + 5 * M, interval="5m"))
    with pytest.raises(ValueError, match="boundary"):
        s.apply(kl(T0 + M + 1))
    with pytest.raises(ValueError):
        s.merge([kl(T0 + M), kl(T0 + 2 * M, symbol="ETHBTC")])  # nothing of the batch is kept
    assert list(s.bars) == [kl(T0)]
    with pytest.raises(ValueError):
        CandleSeries("BTCUSDT", "1H")
    with pytest.raises(ValueError):
        CandleSeries("BTCUSDT", "1m", max_bars=0)


def test_last_closed_open_time() -> None:
    s = series(kl(T0), kl(T0 + M), kl(T0 + 2 * M, closed=False))
    assert s.last_closed_open_time == T0 + M
    assert series(kl(T0, closed=False)).last_closed_open_time is None
    assert series(kl(T0), kl(T0 + M)).last_closed_open_time == T0 + M


# ---------------------------------------------------------------- max_bars


def test_max_bars_drops_the_oldest() -> None:
    bars = [kl(T0 + i * M) for i in range(5)]
    s = series(*bars, max_bars=3)
    assert list(s.bars) == bars[2:]
    assert len(s) == 3
    assert s.apply(kl(T0)) == []  # older than every kept bar of a full series: trimmed at once
    newer_b3 = kl(T0 + 3 * M, n=11, last_id=101)
    assert s.apply(newer_b3) == [Reload((bars[2], newer_b3, bars[4]))]
    assert s.gaps() == []


def test_max_bars_insert_behind_last_trims_the_oldest() -> None:
    a, c, d = kl(T0), kl(T0 + 2 * M), kl(T0 + 3 * M)
    s = series(a, c, d, max_bars=3)
    b = kl(T0 + M)
    assert s.apply(b) == [Reload((b, c, d))]


def test_max_bars_memory_stays_bounded_over_many_appends() -> None:
    s = CandleSeries("BTCUSDT", "1m", max_bars=100)
    for i in range(20_000):
        s.apply(kl(T0 + i * M))
    assert len(s) == 100
    assert [b.open_time for b in s.bars] == [T0 + i * M for i in range(19_900, 20_000)]
    # The dead prefix is compacted away: storage is bounded, not one entry per bar ever seen.
    assert len(s._times) <= 2 * max(100, 256) + 1
    assert s.apply(kl(T0 + 19_950 * M, n=11, last_id=101))[0] == Reload(tuple(s.bars))
    assert len(s.bars) == 100


# ---------------------------------------------------------------- merge


def test_merge_into_empty_series_reloads_sorted_unique_newest() -> None:
    s = CandleSeries("BTCUSDT", "1m")
    a, b_open, b, c = kl(T0), kl(T0 + M, closed=False, n=2, last_id=2), kl(T0 + M), kl(T0 + 3 * M)
    ops = s.merge([c, b, a, b_open, a])
    assert ops == [Reload((a, b, c))]
    assert s.gaps() == [Gap(T0 + 2 * M, T0 + 2 * M)]


def test_merge_that_extends_the_tail_gives_replace_gap_append() -> None:
    a, b_open = kl(T0), kl(T0 + M, closed=False, n=2, last_id=2)
    s = series(a, b_open)
    b, c, e = kl(T0 + M), kl(T0 + 2 * M), kl(T0 + 4 * M)
    ops = s.merge([e, a, c, b, c])  # unordered, duplicated, with an unchanged old bar
    assert ops == [Replace(b), Append(c), Gap(T0 + 3 * M, T0 + 3 * M), Append(e)]
    assert list(s.bars) == [a, b, c, e]


def test_merge_with_nothing_new_is_a_no_op() -> None:
    a, b = kl(T0), kl(T0 + M)
    s = series(a, b)
    assert s.merge([b, a, kl(T0, n=3, last_id=3, closed=False)]) == []


def test_merge_that_changes_history_gives_one_reload() -> None:
    a, c = kl(T0), kl(T0 + 2 * M)
    s = series(a, c)
    b, d = kl(T0 + M), kl(T0 + 3 * M)
    assert s.merge([d, b]) == [Reload((a, b, c, d))]


def test_merge_into_full_series_ignores_what_would_be_trimmed() -> None:
    bars = [kl(T0 + i * M) for i in range(2, 5)]
    s = series(*bars, max_bars=3)
    assert s.merge([kl(T0), kl(T0 + M)]) == []
    nxt = kl(T0 + 5 * M)
    assert s.merge([kl(T0), nxt]) == [Append(nxt)]
    assert list(s.bars) == [*bars[1:], nxt]


def test_merge_whose_old_bar_is_pushed_out_by_the_tail_needs_no_reload() -> None:
    # Not full before the merge, but the new tail trims the inserted old bar straight away.
    b, c = kl(T0 + M), kl(T0 + 2 * M)
    s = series(b, c, max_bars=3)
    d = kl(T0 + 3 * M)
    assert s.merge([kl(T0), d]) == [Append(d)]
    assert list(s.bars) == [b, c, d]


# ---------------------------------------------------------------- real data


def test_real_minutes_appended_live_report_exactly_the_missing_minutes(xrpeth_1m: list[Kline]) -> None:
    s = CandleSeries("XRPETH", "1m")
    ops = [op for bar in xrpeth_1m for op in s.apply(bar)]
    assert [op for op in ops if isinstance(op, Append)] == [Append(b) for b in xrpeth_1m]
    assert not any(isinstance(op, Replace | Reload) for op in ops)
    present = {b.open_time for b in xrpeth_1m}
    first, last = min(present), max(present)
    missing = set(range(first, last + M, M)) - present
    reported = [t for g in s.gaps() for t in intervals.open_times("1m", g.start, g.end)]
    assert len(reported) == len(set(reported))
    assert set(reported) == missing
    assert len(missing) == (last - first) // M + 1 - len(xrpeth_1m) > 0  # the file does have holes
    assert [op for op in ops if isinstance(op, Gap)] == s.gaps()


def test_real_minutes_shuffled_and_duplicated_give_the_same_series(xrpeth_1m: list[Kline]) -> None:
    rng = random.Random(20191011)
    shuffled = xrpeth_1m + rng.sample(xrpeth_1m, 500)
    rng.shuffle(shuffled)
    live = CandleSeries("XRPETH", "1m")
    for bar in shuffled:
        live.apply(bar)
    batch = CandleSeries("XRPETH", "1m")
    assert batch.merge(shuffled) == [Reload(tuple(xrpeth_1m))]
    assert list(live.bars) == list(batch.bars) == xrpeth_1m
