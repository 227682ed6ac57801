"""binmon.sim market model: clock, config, generator and Market (REST/websocket semantics)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from decimal import Decimal
from functools import cache
from itertools import pairwise

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from binmon.core.aggregate import aggregate_trades
from binmon.core.intervals import DAY_MS, INTERVALS, IntervalError, interval_ms, next_open, open_time
from binmon.core.models import Kline
from binmon.sim.clock import ManualClock, SimClock
from binmon.sim.config import DEFAULT_SYMBOLS, SimConfig, SimSymbol, decimal_units
from binmon.sim.generator import LRU, split_int
from binmon.sim.market import Market, TradeBatch, UnknownSymbolError

MIN = 60_000


def ms(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> int:
    return int(datetime(year, month, day, hour, minute, second, tzinfo=UTC).timestamp() * 1000)


START = ms(2024, 3, 4, 13, 37, 12) + 345  # deliberately not on a minute


def market(now: int = START, **cfg: object) -> tuple[Market, ManualClock]:
    clock = ManualClock(START)
    clock.set(now)
    return Market(SimConfig(**cfg), clock), clock  # type: ignore[arg-type]


def agg(b: TradeBatch, interval: str, now: int) -> list[Kline]:
    return aggregate_trades(
        b.symbol, interval, b.ids, b.prices, b.qtys, b.times, b.buyer_is_maker, closed_before_ms=now
    )


def same_trades(a: TradeBatch, b: TradeBatch) -> bool:
    return all(
        np.array_equal(getattr(a, f), getattr(b, f))
        for f in ("ids", "prices", "qtys", "times", "buyer_is_maker")
    )


def concat(symbol: str, parts: list[TradeBatch]) -> TradeBatch:
    return TradeBatch(
        symbol,
        *(
            np.concatenate([getattr(p, f) for p in parts])
            for f in ("ids", "prices", "qtys", "times", "buyer_is_maker")
        ),
    )


# ---------------------------------------------------------------- clock


def test_sim_clock_runs_speed_times_faster_than_the_monotonic_clock() -> None:
    real = [100.0]
    clock = SimClock(start_ms=1_000_000, speed=10.0, monotonic=lambda: real[0])
    assert clock.now_ms() == 1_000_000
    real[0] += 1.5
    assert clock.now_ms() == 1_015_000
    assert clock.real_seconds_until(1_035_000) == pytest.approx(2.0)
    assert clock.real_seconds_until(1_000_000) == 0.0  # the past: no sleep
    real[0] += 0.0001234  # sub-ms progress truncates, never rounds ahead
    assert clock.now_ms() == 1_015_001
    assert (clock.start_ms, clock.speed) == (1_000_000, 10.0)


def test_sim_clock_starts_at_the_wall_clock_by_default() -> None:
    before = time.time() * 1000
    clock = SimClock()
    assert before - 1 <= clock.start_ms <= time.time() * 1000 + 1
    assert clock.now_ms() >= clock.start_ms


def test_manual_clock_moves_only_when_told() -> None:
    clock = ManualClock(5_000, speed=4.0)
    assert clock.now_ms() == clock.start_ms == 5_000
    assert clock.advance(1_000) == 6_000
    assert clock.real_seconds_until(14_000) == pytest.approx(2.0)  # 8 s of sim time at 4x
    assert clock.real_seconds_until(1) == 0.0
    clock.set(2_000)
    assert clock.now_ms() == 2_000
    with pytest.raises(ValueError, match="backwards"):
        clock.advance(-1)


@pytest.mark.parametrize("speed", [0.0, -1.0])
def test_clocks_refuse_a_non_positive_speed(speed: float) -> None:
    with pytest.raises(ValueError, match="speed"):
        SimClock(0, speed)
    with pytest.raises(ValueError, match="speed"):
        ManualClock(0, speed)


# ---------------------------------------------------------------- config


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0.01000000", (2, 1)),
        ("0.05", (2, 5)),
        ("1.00000000", (0, 1)),
        ("10", (0, 10)),
        ("0.00000001", (8, 1)),
    ],
)
def test_decimal_units(text: str, expected: tuple[int, int]) -> None:
    assert decimal_units(text) == expected


@pytest.mark.parametrize("bad", ["0", "-0.1", "abc", "0.000000001", "nan"])
def test_decimal_units_refuses_bad_steps(bad: str) -> None:
    with pytest.raises(ValueError):
        decimal_units(bad)


def test_default_symbols_cover_the_awkward_cases() -> None:
    by_name = {s.symbol: s for s in DEFAULT_SYMBOLS}
    assert 7 <= len(by_name) <= 10
    assert by_name["BTCUSDT"].tick_size == "0.01" and by_name["BTCUSDT"].price > 10_000
    assert by_name["XRPUSDT"].tick_size == "0.0001"
    assert by_name["ETHBTC"].tick_size == "0.00001"
    tiny = [s for s in DEFAULT_SYMBOLS if s.price < 1e-5]
    assert tiny and all(s.tick_size == "0.00000001" for s in tiny)
    assert [s.symbol for s in DEFAULT_SYMBOLS if not s.trading] == ["MATICUSDT"]
    info = by_name["BTCUSDT"].info()
    assert (info.tick_size, info.step_size, info.price_precision) == ("0.01000000", "0.00001000", 2)


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="upper-case"):
        SimSymbol("btcusdt", "BTC", "USDT", 1.0, "0.01", "0.01", 1.0)
    with pytest.raises(ValueError, match="price"):
        SimSymbol("X", "X", "Y", 0.0, "0.01", "0.01", 1.0)
    with pytest.raises(ValueError, match="duplicate"):
        SimConfig(symbols=(DEFAULT_SYMBOLS[0], DEFAULT_SYMBOLS[0]))
    with pytest.raises(ValueError, match="speed"):
        SimConfig(speed=0)
    too_fine = SimSymbol("ABCDEF", "ABC", "DEF", 0.05, "0.00001", "0.0001", 1.0)  # 5 + 4 decimals
    with pytest.raises(ValueError, match="decimals"):
        Market(SimConfig(symbols=(too_fine,)), ManualClock(START))


# ---------------------------------------------------------------- trades


def test_same_seed_same_trades_and_another_seed_different_trades() -> None:
    w = (START - 3 * 3_600_000, START)
    a, _ = market(history_days=1)
    b, _ = market(history_days=1)
    c, _ = market(history_days=1, seed=7)
    ta, tb, tc = (m.trades("ETHUSDT", *w) for m in (a, b, c))
    assert len(ta) > 10_000
    assert same_trades(ta, tb)
    assert not np.array_equal(ta.prices[:1000], tc.prices[:1000])


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(1, 4 * 3_600_000 - 1), max_size=12, unique=True), st.booleans())
def test_trades_in_pieces_equal_trades_in_one_go(cuts: list[int], reverse: bool) -> None:
    lo = ms(2024, 3, 3, 22, 0)  # the window crosses midnight, hence a day block
    edges = [lo, *sorted(lo + c for c in cuts), lo + 4 * 3_600_000]
    whole = _reference_market().trades("BNBUSDT", edges[0], edges[-1])
    fresh, _ = market(history_days=2)  # a cold market, asked in a different order
    pieces = list(pairwise(edges))
    got = {p: fresh.trades("BNBUSDT", *p) for p in (pieces[::-1] if reverse else pieces)}
    assert same_trades(concat("BNBUSDT", [got[p] for p in pieces]), whole)


@cache
def _reference_market() -> Market:
    return market(history_days=2)[0]


def test_live_streaming_equals_history_and_pushed_klines_equal_rest_klines() -> None:
    """What the websocket streams (trades every few 100 ms, current klines) equals REST later."""
    live, clock = market(history_days=1)
    history, _ = market(now=START + 20 * MIN, history_days=1)  # another instance, asked afterwards
    rng = np.random.default_rng(1)
    t0 = last = open_time("5m", clock.now_ms())  # the stream starts with the open 5m candle
    streamed: list[TradeBatch] = []
    pushed: dict[tuple[str, int], Kline] = {}
    while clock.now_ms() < open_time("5m", t0 + 11 * MIN):
        clock.advance(int(rng.integers(1, 400)))
        now = clock.now_ms()
        streamed.append(live.trades("SOLUSDT", last, now))
        last = now
        for iv in ("1s", "1m", "5m"):
            k = live.current_kline("SOLUSDT", iv)
            if k is not None:
                # a push is what the trades of its candle so far add up to
                assert not k.closed and agg(history.trades("SOLUSDT", k.open_time, now), iv, now) == [k]
                pushed[iv, k.open_time] = k
    stream = concat("SOLUSDT", streamed)
    assert len(stream) > 1000 and np.all(np.diff(stream.ids) == 1)
    assert same_trades(history.trades("SOLUSDT", t0, last), stream)
    # REST's closed candles are what the streamed trades add up to; every push of one was a
    # prefix of it (a server pushes the closed candle when the clock passes its close time).
    for iv in ("1s", "1m", "5m"):
        rest = history.klines("SOLUSDT", iv, t0, last - 1, 1000)
        from_stream = [k for k in agg(stream, iv, history.clock.now_ms()) if k.close_time < last]
        assert len(from_stream) > 1 and rest[: len(from_stream)] == from_stream
        for k in from_stream:
            p = pushed.get((iv, k.open_time))
            assert p is not None or iv == "1s" or k.close_time < START  # pushed if live then
            if p is not None:
                assert (p.open, p.first_trade_id) == (k.open, k.first_trade_id) and p.trades <= k.trades


def test_trade_ids_are_consecutive_and_times_ordered_across_minutes_and_days() -> None:
    m, _ = market(history_days=2)
    b = m.trades("XRPUSDT", ms(2024, 3, 3, 23, 0), ms(2024, 3, 4, 1, 0))
    assert len(b) > 5_000
    assert np.all(np.diff(b.ids) == 1)
    assert np.all(np.diff(b.times) >= 0)
    assert np.any(np.diff(b.times) == 0)  # fills of one order share a millisecond, as on Binance
    # and across separately asked windows
    nxt = m.trades("XRPUSDT", ms(2024, 3, 4, 1, 0), ms(2024, 3, 4, 2, 0))
    assert nxt.ids[0] == b.ids[-1] + 1


@pytest.mark.parametrize("sym", DEFAULT_SYMBOLS, ids=lambda s: s.symbol)
def test_prices_and_quantities_lie_on_the_symbol_grid(sym: SimSymbol) -> None:
    m, _ = market(history_days=3)
    b = m.trades(sym.symbol, START - 2 * DAY_MS - 3 * 3_600_000, START - 2 * DAY_MS)
    assert len(b) > 0
    for values, step in ((b.prices, sym.tick_size), (b.qtys, sym.step_size)):
        assert np.all(values > 0)
        dec, units = decimal_units(step)
        grid = np.rint(values * 10**dec).astype(np.int64)
        assert np.array_equal(grid / 10**dec, values), "off the decimal grid"
        assert np.all(grid % units == 0) and np.all(grid > 0)
        # the float is the one Binance's decimal string parses to
        sample = values[:: max(1, len(values) // 200)]
        assert all(float(Decimal(f"{v:.8f}")) == v for v in sample)
    assert set(np.unique(b.buyer_is_maker)) == {False, True}


def test_the_tiny_priced_pair_stays_realistic_and_on_tick() -> None:
    m, _ = market()
    bars = m.klines("DOGEBTC", "1h", None, None, 1000)
    assert len(bars) >= 30 * 24 - 1
    highs, lows = np.array([k.high for k in bars]), np.array([k.low for k in bars])
    assert lows.min() > 0.5 * 0.00000638 and highs.max() < 2 * 0.00000638
    assert len(set(np.round(highs * 1e8).tolist())) > 20  # it moves...
    for values in (highs, lows, np.array([k.close for k in bars])):
        assert np.array_equal(np.round(values * 1e8) / 1e8, values)  # ...tick by tick


def test_the_halted_symbol_has_history_but_no_recent_trades() -> None:
    m, _ = market(history_days=5)
    assert not m.symbol("MATICUSDT").trading  # type: ignore[union-attr]
    assert len(m.trades("MATICUSDT", START - DAY_MS, START)) == 0
    assert len(m.trades("MATICUSDT", START - 3 * DAY_MS, START - 2 * DAY_MS)) > 1000
    assert m.current_kline("MATICUSDT", "1m") is None
    last = m.klines("MATICUSDT", "1m", None, None, 5)
    assert len(last) == 5 and last[-1].open_time < START - DAY_MS and last[-1].closed
    t = m.ticker_24h("MATICUSDT")
    assert (t.count, t.volume, t.first_id, t.last_id) == (0, 0.0, -1, -1)
    assert t.close == last[-1].close == t.prev_close


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 10_000), st.integers(1, 40)), min_size=1, max_size=20),
    st.integers(0, 99),
)
def test_split_int_splits_each_total_exactly_into_non_negative_parts(
    segs: list[tuple[int, int]], seed: int
) -> None:
    total = np.array([t for t, _ in segs], dtype=np.int64)
    lens = np.array([n for _, n in segs], dtype=np.int64)
    starts = np.cumsum(lens) - lens
    seg = np.repeat(np.arange(len(segs)), lens)
    weights = np.random.default_rng(seed).lognormal(0.0, 2.0, seg.size)
    parts = split_int(total, weights, seg, starts, lens)
    assert np.all(parts >= 0)
    assert np.array_equal(np.add.reduceat(parts, starts), total)


def test_lru_evicts_by_weight_oldest_first() -> None:
    lru = LRU(10)
    lru.put(1, "a", 4)
    lru.put(2, "b", 4)
    assert lru.hit(1) == "a"  # 1 is now the most recent
    lru.put(3, "c", 4)
    assert (lru.hit(2), lru.hit(1), lru.hit(3), lru.weight) == (None, "a", "c", 8)
    lru.put(4, "huge", 50)  # bigger than the capacity: kept alone
    assert (lru.hit(1), lru.hit(4), lru.weight) == (None, "huge", 50)


def test_evicted_days_regenerate_identically() -> None:
    m, _ = market(history_days=8)
    w = (START - 7 * DAY_MS, START - 7 * DAY_MS + 3 * MIN)
    first = m.trades("ETHUSDT", *w)
    for d in range(6, 0, -1):  # expand minutes of six other days: day 1's levels leave the cache
        m.trades("ETHUSDT", START - d * DAY_MS, START - d * DAY_MS + MIN)
    assert same_trades(m.trades("ETHUSDT", *w), first) and len(first) > 100


def test_concurrent_cold_queries_agree_with_a_single_thread() -> None:
    queries = [("BTCUSDT", iv, None, None, 300) for iv in ("1m", "1h", "1d", "1s")] * 2
    ref, _ = market(history_days=4)
    expected = [ref.klines(*q) for q in queries]
    m, _ = market(history_days=4)
    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(lambda q: m.klines(*q), queries)) == expected


# ---------------------------------------------------------------- klines vs a brute-force reference

# Few trades (one every 250 s), 70 days: empty minutes, and 1w / 1M candles across months.
_SPARSE = {"trade_rate": 0.004, "history_days": 70.0}
_NOWS = (START, START + 7_384_567, START + 9 * DAY_MS + 1)


@cache
def _sparse(now: int) -> Market:
    return market(now=now, **_SPARSE)[0]


@cache
def _all_trades(now: int) -> TradeBatch:
    return _sparse(now).trades("SOLUSDT", 0, now)


@cache
def _all_klines(now: int, interval: str) -> tuple[Kline, ...]:
    """Reference: aggregate every trade so far, straight from the trades."""
    return tuple(agg(_all_trades(now), interval, now))


@settings(max_examples=150, deadline=None)
@given(
    now=st.sampled_from(_NOWS),
    interval=st.sampled_from(INTERVALS),
    start=st.none() | st.integers(START - 75 * DAY_MS, START + 10 * DAY_MS),
    length=st.none() | st.integers(0, 40 * DAY_MS),
    limit=st.integers(1, 1000),
)
def test_klines_select_like_binance_and_equal_the_trades(
    now: int, interval: str, start: int | None, length: int | None, limit: int
) -> None:
    end = None if length is None else (start if start is not None else now - 20 * DAY_MS) + length
    got = _sparse(now).klines("SOLUSDT", interval, start, end, limit)
    cands = [
        k
        for k in _all_klines(now, "1s" if interval == "1s" else interval)
        if (start is None or k.open_time >= start) and (end is None or k.open_time <= end)
    ]
    expected = cands[:limit] if start is not None else cands[-limit:]
    assert got == expected


def test_the_reference_covers_gaps_open_candles_and_calendar_intervals() -> None:
    ks = _all_klines(START, "1m")
    assert ks[0].open_time >= _sparse(START).listing_ms("SOLUSDT") == START // MIN * MIN - 70 * DAY_MS
    assert np.any(np.diff([k.open_time for k in ks]) > MIN)  # minutes without trades have no kline
    days = _all_klines(START, "1d")
    assert not days[-1].closed and all(k.closed for k in days[:-1])
    months = _all_klines(START, "1M")
    assert [datetime.fromtimestamp(k.open_time / 1000, UTC).month for k in months] == [12, 1, 2, 3]


# ---------------------------------------------------------------- busy symbols, every interval


@pytest.mark.parametrize("interval", INTERVALS[: INTERVALS.index("1d") + 1])
def test_busy_klines_equal_aggregating_their_trades(interval: str) -> None:
    sym = "BTCUSDT" if INTERVALS.index(interval) <= INTERVALS.index("1h") else "ETHBTC"
    m, _ = market(history_days=5)
    for start in (START - 4 * DAY_MS - 1234, START - 3 * interval_ms(interval) - 977):
        ks = m.klines(sym, interval, start, None, 3)
        assert len(ks) == 3 and ks[0].open_time >= start
        b = m.trades(sym, ks[0].open_time, ks[-1].close_time + 1)
        assert len(b) > 3 * 3 and agg(b, interval, START) == ks


def test_week_and_month_candles_open_on_mondays_and_the_first() -> None:
    m = _sparse(START)
    weeks = m.klines("SOLUSDT", "1w", None, None, 100)
    months = m.klines("SOLUSDT", "1M", None, None, 100)
    assert len(weeks) == 11 and len(months) == 4
    for k in weeks:
        d = datetime.fromtimestamp(k.open_time / 1000, UTC)
        assert (d.weekday(), d.hour, d.minute) == (0, 0, 0)
        assert k.close_time == k.open_time + 7 * DAY_MS - 1
    for k in months:
        d = datetime.fromtimestamp(k.open_time / 1000, UTC)
        assert (d.day, d.hour) == (1, 0)
        assert k.close_time == next_open("1M", k.open_time) - 1
    assert months[2].close_time == ms(2024, 3, 1) - 1  # February 2024 has 29 days
    assert [k.closed for k in months] == [True, True, True, False]
    assert sum(k.trades for k in months) == sum(k.trades for k in weeks)
    assert sum(k.trades for k in months) == len(_all_trades(START))


# ---------------------------------------------------------------- REST semantics on a busy symbol


def test_default_query_returns_the_newest_candles_with_the_open_one_last() -> None:
    m, _ = market(history_days=2)
    ks = m.klines("BTCUSDT", "1m", None, None, 500)
    assert len(ks) == 500
    assert ks[-1].open_time == open_time("1m", START) and not ks[-1].closed
    assert all(k.closed for k in ks[:-1])
    assert np.all(np.diff([k.open_time for k in ks]) == MIN)
    assert ks[-1].last_trade_id == m.trades("BTCUSDT", START - MIN, START).ids[-1]
    assert m.current_kline("BTCUSDT", "1m") == ks[-1]


def test_start_time_excludes_the_candle_it_falls_in_and_nothing_comes_from_the_future() -> None:
    m, _ = market(history_days=2)
    s = open_time("1h", START - 5 * 3_600_000) + 1
    ks = m.klines("ETHUSDT", "1h", s, None, 1000)
    assert ks[0].open_time == open_time("1h", s) + 3_600_000
    assert len(ks) == 5 and not ks[-1].closed
    assert m.klines("ETHUSDT", "1h", START + 1, None, 10) == []
    assert m.klines("ETHUSDT", "1m", None, START + DAY_MS, 3)[-1].open_time == open_time("1m", START)
    assert m.klines("ETHUSDT", "1m", START - 10 * MIN, START + DAY_MS, 1000)[-1].open_time == open_time(
        "1m", START
    )
    assert len(m.trades("ETHUSDT", START - 1000, START + DAY_MS)) == len(
        m.trades("ETHUSDT", START - 1000, START)
    )


def test_end_time_only_gives_the_newest_candles_up_to_it() -> None:
    m, _ = market(history_days=2)
    end = START - 7 * MIN - 1
    ks = m.klines("BTCUSDT", "1m", None, end, 3)
    assert [k.open_time for k in ks] == [open_time("1m", end) - i * MIN for i in (2, 1, 0)]
    assert all(k.closed for k in ks)


def test_paging_by_start_time_gives_the_same_candles_as_one_query() -> None:
    m, _ = market(history_days=2)
    one = m.klines("BNBUSDT", "1m", START - 900 * MIN, None, 1000)
    pages: list[Kline] = []
    start = START - 900 * MIN
    while page := m.klines("BNBUSDT", "1m", start, None, 137):
        pages += page
        start = page[-1].open_time + 1
    assert pages == one and len(one) >= 895


def test_nothing_exists_before_the_listing() -> None:
    m, _ = market(history_days=2)
    listing = m.listing_ms("SOLUSDT")
    assert listing == (START - 2 * DAY_MS) // MIN * MIN
    assert len(m.trades("SOLUSDT", 0, listing)) == 0
    first = m.trades("SOLUSDT", 0, listing + MIN)
    assert first.times[0] == listing
    ks = m.klines("SOLUSDT", "1d", 0, None, 10)
    assert ks[0].open_time == open_time("1d", listing) and ks[0].first_trade_id == first.ids[0]
    assert m.klines("SOLUSDT", "1m", None, listing - 1, 10) == []
    assert m.klines("SOLUSDT", "1d", listing - 1, None, 10)[0].open_time > listing  # its day opened before


def test_current_kline_is_none_until_the_candle_has_a_trade() -> None:
    m, clock = market(history_days=1)
    clock.set(open_time("1m", START))  # the minute just opened: no trade in it yet
    assert m.current_kline("BTCUSDT", "1m") is None
    before = m.klines("BTCUSDT", "1m", None, None, 1)[0]
    assert before.closed and before.close_time == clock.now_ms() - 1
    clock.advance(5_000)
    k = m.current_kline("BTCUSDT", "1m")
    assert k is not None and not k.closed and k.open_time == open_time("1m", START)
    assert k.trades == len(m.trades("BTCUSDT", k.open_time, clock.now_ms()))
    month = m.current_kline("BTCUSDT", "1M")
    assert month is not None and month.open_time == ms(2024, 3, 1) and not month.closed


def test_errors() -> None:
    m, _ = market(history_days=1)
    with pytest.raises(UnknownSymbolError):
        m.klines("NOPE", "1m", None, None, 10)
    with pytest.raises(UnknownSymbolError):
        m.trades("NOPE", 0, 1)
    with pytest.raises(IntervalError):
        m.klines("BTCUSDT", "2M", None, None, 10)
    with pytest.raises(ValueError, match="limit"):
        m.klines("BTCUSDT", "1m", None, None, 0)
    assert m.symbol("btcusdt") is m.symbol("BTCUSDT") is not None
    assert m.symbol("NOPE") is None


def test_handed_out_arrays_are_read_only() -> None:
    m, _ = market(history_days=1)
    b = m.trades("BTCUSDT", START - 1000, START)
    with pytest.raises(ValueError, match="read-only"):
        b.prices[0] = 1.0


# ---------------------------------------------------------------- 24 h ticker


def test_ticker_agrees_with_the_1m_klines_of_the_last_day() -> None:
    m, _ = market(now=open_time("1m", START), history_days=2)
    now = open_time("1m", START)
    ks = m.klines("ETHUSDT", "1m", now - DAY_MS, None, 1000)
    ks += m.klines("ETHUSDT", "1m", ks[-1].open_time + 1, None, 1000)
    assert len(ks) == 1440 and all(k.closed for k in ks)
    t = m.ticker_24h("ETHUSDT")
    assert (t.open_time, t.close_time) == (now - DAY_MS, now)
    assert (t.open, t.close) == (ks[0].open, ks[-1].close)
    assert (t.high, t.low) == (max(k.high for k in ks), min(k.low for k in ks))
    assert t.count == sum(k.trades for k in ks) == t.last_id - t.first_id + 1
    assert (t.first_id, t.last_id) == (ks[0].first_trade_id, ks[-1].last_trade_id)
    assert t.volume == pytest.approx(sum(k.volume for k in ks), rel=1e-12)
    assert t.quote_volume == pytest.approx(sum(k.quote_volume for k in ks), rel=1e-12)
    assert t.weighted_avg_price == pytest.approx(t.quote_volume / t.volume)


def test_ticker_agrees_with_the_trades_of_the_last_day() -> None:
    m, _ = market(history_days=2)
    b = m.trades("XRPUSDT", START - DAY_MS, START)
    t = m.ticker_24h("XRPUSDT")
    assert (t.count, t.first_id, t.last_id) == (len(b), b.ids[0], b.ids[-1])
    assert (t.open, t.close, t.high, t.low) == (b.prices[0], b.prices[-1], b.prices.max(), b.prices.min())
    units = np.rint(b.qtys * 10).astype(np.int64)  # XRPUSDT step 0.1: exact
    assert t.volume == int(units.sum()) / 10
    assert t.last_qty == b.qtys[-1]
    before = m.trades("XRPUSDT", START - DAY_MS - 10 * MIN, START - DAY_MS)
    assert t.prev_close == before.prices[-1]
    assert t.price_change == t.close - t.open
    assert t.price_change_pct == pytest.approx((t.close - t.open) / t.open * 100)


# ---------------------------------------------------------------- speed


def test_speed_budget() -> None:
    """Loose bounds (a loaded CI box): the real figures are in the report / benchmark."""
    t = time.perf_counter()
    m, clock = market(trade_rate=400.0, symbols=DEFAULT_SYMBOLS[:5])
    assert time.perf_counter() - t < 0.5
    t = time.perf_counter()
    assert len(m.klines("BTCUSDT", "1m", None, None, 1000)) == 1000
    assert time.perf_counter() - t < 0.5
    t = time.perf_counter()
    assert len(m.klines("ETHUSDT", "1d", None, None, 1000)) == 31
    assert time.perf_counter() - t < 3.0
    last = clock.now_ms()
    n, worst = 0, 0.0
    for _ in range(40):
        clock.advance(50)
        t = time.perf_counter()
        b = m.trades("BTCUSDT", last, clock.now_ms())
        worst = max(worst, time.perf_counter() - t) if _ else 0.0  # the first call expands the minute
        last, n = clock.now_ms(), n + len(b)
    assert 400 < n < 1600  # ~400 trades/s for 2 s
    assert worst < 0.02
