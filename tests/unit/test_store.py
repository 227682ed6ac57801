"""CandleStore: round trips on real candles, idempotent upserts, coverage, damaged files."""

from __future__ import annotations

import calendar
import random
import sqlite3
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from binmon.core.intervals import DAY_MS, MINUTE_MS, WEEK_MS, close_time
from binmon.core.models import Kline
from binmon.history import store_blocks
from binmon.history.ranges import SeriesKey, TimeRange, merge_ranges, runs, subtract_ranges
from binmon.history.store import CandleStore, SeriesInfo, StoreError, default_store_path
from binmon.history.store_schema import APPLICATION_ID, SCHEMA_VERSION

M = MINUTE_MS
KEY = SeriesKey.spot("BTCUSDT", "1m")
XRP = SeriesKey.spot("XRPETH", "1m")
COLUMNS = [
    "open_time",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "close_time",
    "quote_volume",
    "trades",
    "taker_buy_base",
    "taker_buy_quote",
]
FAR_FUTURE_MS = 4_102_444_800_000  # 2100-01-01: every test candle is closed by then


def R(a: int, b: int) -> TimeRange:
    return TimeRange(a * M, b * M)


def k(
    i: int, *, price: float = 1.0, closed: bool = True, symbol: str = "BTCUSDT", interval: str = "1m"
) -> Kline:
    """Candle ``i`` of a 1m series: open time ``i`` minutes, values derived from ``i`` and ``price``."""
    t = i * M
    p = price + i / 1000
    return Kline(
        symbol,
        interval,
        t,
        t + M - 1,
        p,
        p + 0.5,
        p - 0.5,
        p + 0.25,
        10.0 + i,
        100.0 + i,
        i,
        1.5,
        2.5,
        closed,
    )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[CandleStore]:
    with CandleStore.open(tmp_path / "data" / "candles.sqlite", clock=lambda: FAR_FUTURE_MS) as s:
        yield s


# ---------------------------------------------------------------- files


def test_open_creates_parent_dirs_and_reopens(tmp_path: Path) -> None:
    path = default_store_path(tmp_path / "basedir" / "data")
    assert path == tmp_path / "basedir" / "data" / "candles.sqlite"
    with CandleStore.open(path) as s:
        s.upsert(KEY, [k(0), k(1)])
    with CandleStore.open(path) as s:
        assert s.count(KEY) == 2
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    assert con.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    con.close()


def test_closed_store_refuses_use(tmp_path: Path) -> None:
    s = CandleStore.open(tmp_path / "c.sqlite")
    s.close()
    s.close()  # idempotent
    with pytest.raises(StoreError, match="closed"):
        s.count(KEY)


def _assert_refused(path: Path, match: str) -> None:
    before = path.read_bytes()
    with pytest.raises(StoreError, match=match) as info:
        CandleStore.open(path)
    msg = str(info.value)
    assert str(path) in msg and "\n" not in msg
    assert path.read_bytes() == before  # never overwritten


def test_garbage_file_is_refused_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "candles.sqlite"
    path.write_bytes(np.random.default_rng(3).bytes(20_000))
    _assert_refused(path, "not a usable binmon candle store")
    text = tmp_path / "notes.sqlite"
    text.write_text("these are my notes, not a database\n" * 50)
    _assert_refused(text, "not a usable binmon candle store")


def test_other_sqlite_database_is_refused_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "other.sqlite"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE t (x)")
    con.execute("INSERT INTO t VALUES (1)")
    con.commit()
    con.close()
    _assert_refused(path, "not a binmon candle store")


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    CandleStore.open(path).close()
    con = sqlite3.connect(path)
    con.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    con.commit()
    con.close()
    _assert_refused(path, "newer")


def test_zero_byte_file_becomes_a_store(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    path.touch()
    with CandleStore.open(path) as s:
        s.upsert(KEY, [k(0)])
        assert s.count(KEY) == 1


def test_truncated_store_raises_store_error(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    with CandleStore.open(path) as s:
        s.upsert(KEY, [k(i) for i in range(20_000)])
    size = path.stat().st_size
    with path.open("r+b") as f:
        f.truncate(size // 2)
    # On open or on the first read, but a StoreError: never another exception.
    with pytest.raises(StoreError) as info, CandleStore.open(path) as s:
        s.read_frame(KEY)
    assert str(path) in str(info.value)


# ---------------------------------------------------------------- real candles


def test_real_candles_round_trip_exactly(
    store: CandleStore, xrpeth_1m: list[Kline], xrpeth_1m_rows: list[list[str]]
) -> None:
    assert store.upsert(XRP, xrpeth_1m) == len(xrpeth_1m) == 2469
    frame = store.read_frame(XRP)
    assert list(frame.columns) == COLUMNS
    assert isinstance(frame.index, pd.RangeIndex)
    for i, col in enumerate(COLUMNS):
        parse = int if col in ("open_time", "close_time", "trades") else float
        expected = np.array([parse(r[i]) for r in xrpeth_1m_rows])
        assert frame[col].dtype == expected.dtype, col
        assert np.array_equal(frame[col].to_numpy(), expected), col  # bit-exact, no rounding
    assert store.read_klines(XRP) == xrpeth_1m
    # Tiny prices (0.0014 ETH) survive unchanged.
    assert frame["low"].min() == min(float(r[3]) for r in xrpeth_1m_rows)


def test_real_gaps_show_as_present_runs_and_confirmed_empty(
    store: CandleStore, xrpeth_1m: list[Kline]
) -> None:
    first, last = xrpeth_1m[0].open_time, xrpeth_1m[-1].open_time
    store.upsert(XRP, xrpeth_1m, fetched=TimeRange(first, last))
    times = [x.open_time for x in xrpeth_1m]
    expected_runs = runs(times, "1m")
    assert len(expected_runs) > 1, "the real file has minutes without trades"
    assert store.present(XRP) == expected_runs
    assert store.coverage(XRP) == [TimeRange(first, last)]
    empty = store.confirmed_empty(XRP)
    assert empty == subtract_ranges([TimeRange(first, last)], expected_runs, "1m")
    all_minutes = set(range(first, last + 1, M))
    assert {t for r in empty for t in range(r.start, r.end + 1, M)} == all_minutes - set(times)


def test_real_5m_candles_through_a_frame(store: CandleStore, real_dir: Path) -> None:
    raw = pd.read_csv(real_dir / "ETHBTC-5m-2018-01-10_30.ohlcv.csv")
    frame = raw.assign(
        close_time=raw["open_time"] + 5 * M - 1,
        quote_volume=0.0,
        trades=0,
        taker_buy_base=0.0,
        taker_buy_quote=0.0,
    )
    key = SeriesKey.spot("ETHBTC", "5m")
    assert store.upsert_frame(key, frame) == 5760
    back = store.read_frame(key)
    for col in ("open_time", "open", "high", "low", "close", "volume"):
        assert np.array_equal(back[col].to_numpy(), raw[col].to_numpy()), col
    assert store.present(key) == [TimeRange(int(raw["open_time"].iloc[0]), int(raw["open_time"].iloc[-1]))]


# ---------------------------------------------------------------- upsert semantics


def test_upsert_is_idempotent_and_newer_values_replace(store: CandleStore) -> None:
    assert store.upsert(KEY, [k(i) for i in range(10)]) == 10
    before = store.read_frame(KEY)
    assert store.upsert(KEY, [k(i) for i in range(10)]) == 10
    pd.testing.assert_frame_equal(store.read_frame(KEY), before)
    store.upsert(KEY, [k(3, price=50.0), k(3, price=60.0)])  # the later duplicate wins
    frame = store.read_frame(KEY)
    assert len(frame) == 10
    assert frame.loc[3, "open"] == 60.003
    assert frame.loc[2, "open"] == before.loc[2, "open"]


def test_open_candles_are_never_stored_nor_covered(store: CandleStore) -> None:
    n = store.upsert(KEY, [k(0), k(1), k(2, closed=False)], fetched=R(0, 5))
    assert n == 2
    assert store.count(KEY) == 2
    assert store.coverage(KEY) == [R(0, 1)]
    store.upsert(KEY, [k(7, closed=False)], fetched=R(7, 9))
    assert store.coverage(KEY) == [R(0, 1)]
    assert store.count(KEY) == 2


def test_upsert_validates_series_and_alignment(store: CandleStore) -> None:
    with pytest.raises(ValueError, match="ETHBTC 1m candle passed for series spot:BTCUSDT:1m"):
        store.upsert(KEY, [k(0), k(1, symbol="ETHBTC")])
    with pytest.raises(ValueError, match="BTCUSDT 5m"):
        store.upsert(KEY, [k(0, interval="5m")])
    bad = Kline("BTCUSDT", "1m", M + 5, 2 * M - 1, 1, 1, 1, 1, 1, 1, 1, 1, 1)
    with pytest.raises(ValueError, match="not a 1m open time"):
        store.upsert(KEY, [bad])
    with pytest.raises(ValueError, match="not aligned"):
        store.upsert(KEY, [k(0)], fetched=TimeRange(0, M + 1))
    with pytest.raises(ValueError, match="not aligned"):
        store.mark_fetched(KEY, TimeRange(1, M))
    assert store.count(KEY) == 0 and store.series() == []  # nothing half-written


def test_coverage_merges_and_is_clipped_to_closed_candles(tmp_path: Path) -> None:
    now = 100 * M + 30_000
    with CandleStore.open(tmp_path / "c.sqlite", clock=lambda: now) as s:
        s.upsert(KEY, [k(i) for i in range(10, 20)], fetched=R(10, 19))
        s.mark_fetched(KEY, R(20, 29))  # adjacent: coalesces
        s.mark_fetched(KEY, R(40, 49))
        s.mark_fetched(KEY, R(5, 12))  # overlapping
        assert s.coverage(KEY) == [R(5, 29), R(40, 49)]
        s.mark_fetched(KEY, R(30, 39))  # fills the hole exactly
        assert s.coverage(KEY) == [R(5, 49)]
        s.mark_fetched(KEY, R(90, 200))  # the candle open at `now` and the future are not covered
        assert s.coverage(KEY) == [R(5, 49), R(90, 99)]
        s.mark_fetched(KEY, R(100, 200))
        assert s.coverage(KEY) == [R(5, 49), R(90, 99)]
        assert s.confirmed_empty(KEY) == [R(5, 9), R(20, 49), R(90, 99)]
        assert s.present(KEY) == [R(10, 19)]


def test_read_frame_bounds_are_inclusive(store: CandleStore) -> None:
    store.upsert(KEY, [k(i) for i in range(0, 20_000, 2)])  # spans several blocks
    frame = store.read_frame(KEY, 10 * M, 20 * M)
    assert frame["open_time"].tolist() == [t * M for t in range(10, 21, 2)]
    assert isinstance(frame.index, pd.RangeIndex) and frame.index[0] == 0
    assert store.read_frame(KEY, 11 * M, 11 * M).empty
    assert len(store.read_frame(KEY, start_ms=19_000 * M)) == 500
    assert len(store.read_frame(KEY, end_ms=4095 * M)) == 2048
    assert len(store.read_frame(KEY)) == 10_000


def test_empty_reads_keep_columns_and_dtypes(store: CandleStore) -> None:
    frame = store.read_frame(SeriesKey.spot("NOPE", "1h"))
    assert list(frame.columns) == COLUMNS and frame.empty
    assert frame["open_time"].dtype == np.int64 and frame["open"].dtype == np.float64
    assert store.read_klines(KEY) == [] and store.read_klines(KEY, last=5) == []
    assert store.bounds(KEY) is None and store.count(KEY) == 0
    assert store.coverage(KEY) == store.present(KEY) == store.confirmed_empty(KEY) == []


def test_read_klines_last_reads_the_newest(store: CandleStore) -> None:
    data = [k(i) for i in range(10_000)]
    store.upsert(KEY, data)
    assert store.read_klines(KEY, last=1000) == data[-1000:]
    assert store.read_klines(KEY, last=5000) == data[-5000:]  # crosses block boundaries
    assert store.read_klines(KEY, last=20_000) == data
    assert store.read_klines(KEY, end_ms=4999 * M, last=3) == data[4997:5000]
    assert store.read_klines(KEY, 100 * M, 104 * M) == data[100:105]
    assert store.read_klines(KEY, last=0) == []
    assert all(x.closed for x in store.read_klines(KEY, last=10))


def test_bounds_count_series_and_delete(store: CandleStore) -> None:
    eth = SeriesKey.spot("ETHBTC", "1h")
    store.upsert(KEY, [k(i) for i in range(100, 200)], fetched=R(50, 199))
    store.mark_fetched(eth, TimeRange(0, 3_600_000))
    assert store.bounds(KEY) == R(100, 199)
    assert store.count(KEY) == 100
    assert store.series() == [
        SeriesInfo(KEY, 100, 100 * M, 199 * M),
        SeriesInfo(eth, 0, None, None),  # covered, all empty: still listed
    ]
    assert store.delete(KEY, TimeRange(150 * M - 1, 159 * M + 1)) == 10
    assert store.present(KEY) == [R(100, 149), R(160, 199)]
    # The deleted candles are not "confirmed empty": their coverage went with them.
    assert store.coverage(KEY) == [R(50, 149), R(160, 199)]
    assert store.confirmed_empty(KEY) == [R(50, 99)]
    assert store.delete(KEY, R(0, 10)) == 0
    assert store.delete(KEY) == 90
    assert store.count(KEY) == 0 and store.coverage(KEY) == [] and store.bounds(KEY) is None
    assert [i.key for i in store.series()] == [eth]
    store.upsert(KEY, [k(1)])  # the series is usable again after a full delete
    assert store.count(KEY) == 1
    assert store.delete(SeriesKey.spot("NOPE", "1m")) == 0


def test_calendar_intervals(store: CandleStore) -> None:
    def month(y: int, m: int) -> int:
        return calendar.timegm((y, m, 1, 0, 0, 0)) * 1000

    key = SeriesKey.spot("BTCUSDT", "1M")
    opens = [month(2020, m) for m in (1, 2, 3, 5, 6)]
    bars = [Kline("BTCUSDT", "1M", t, close_time("1M", t), 1, 2, 0.5, 1.5, 9, 9, 3, 1, 1) for t in opens]
    store.upsert(key, bars, fetched=TimeRange(month(2019, 12), month(2020, 6)))
    assert store.read_klines(key) == bars
    assert store.present(key) == [TimeRange(opens[0], opens[2]), TimeRange(opens[3], opens[4])]
    assert store.confirmed_empty(key) == [
        TimeRange(month(2019, 12), month(2019, 12)),
        TimeRange(month(2020, 4), month(2020, 4)),
    ]
    week = SeriesKey.spot("BTCUSDT", "1w")
    monday = 4 * DAY_MS + 2600 * WEEK_MS
    wbars = [
        Kline("BTCUSDT", "1w", t, t + WEEK_MS - 1, 1, 2, 0.5, 1.5, 9, 9, 3, 1, 1)
        for t in (monday, monday + WEEK_MS)
    ]
    store.upsert(week, wbars)
    assert store.present(week) == [TimeRange(monday, monday + WEEK_MS)]
    with pytest.raises(ValueError, match="not a 1w open time"):
        store.upsert(week, [Kline("BTCUSDT", "1w", 0, WEEK_MS - 1, 1, 1, 1, 1, 1, 1, 1, 1, 1)])


def test_upsert_frame_validates_columns(store: CandleStore) -> None:
    frame = store_blocks.frame_from_columns({f: store_blocks.empty_array(3)[f] for f in COLUMNS})
    with pytest.raises(ValueError, match="lacks column"):
        store.upsert_frame(KEY, frame.drop(columns=["trades"]))
    bad = frame.astype({"open_time": float})
    bad.loc[1, "open_time"] = 0.5
    with pytest.raises(ValueError, match="non-integer"):
        store.upsert_frame(KEY, bad)


# ---------------------------------------------------------------- sharing


def test_two_handles_on_one_file_see_each_other(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    with CandleStore.open(path) as a, CandleStore.open(path) as b:
        a.upsert(KEY, [k(i) for i in range(10)], fetched=R(0, 9))
        assert b.count(KEY) == 10 and b.coverage(KEY) == [R(0, 9)]
        b.upsert(KEY, [k(i) for i in range(10, 20)], fetched=R(10, 19))
        assert a.count(KEY) == 20 and a.coverage(KEY) == [R(0, 19)]
        assert a.read_frame(KEY).equals(b.read_frame(KEY))


def test_threads_share_a_store(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    with CandleStore.open(path) as shared, CandleStore.open(path) as other:
        errors: list[BaseException] = []

        def work(s: CandleStore, base: int) -> None:
            try:
                for j in range(20):
                    lo = base + j * 50
                    s.upsert(KEY, [k(i) for i in range(lo, lo + 50)], fetched=R(lo, lo + 49))
                    s.read_frame(KEY)
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [
            threading.Thread(target=work, args=(shared if n % 2 else other, n * 1000)) for n in range(4)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        assert shared.count(KEY) == 4000
        assert shared.coverage(KEY) == [R(0, 3999)]


# ---------------------------------------------------------------- properties

universe = st.integers(0, 120)
batch = st.lists(universe, max_size=40)


def _fresh(tmp: str, name: str) -> CandleStore:
    return CandleStore.open(Path(tmp) / name, clock=lambda: FAR_FUTURE_MS)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(batch, max_size=8), st.randoms(use_true_random=False))
def test_any_order_and_duplicates_give_one_sorted_write(batches: list[list[int]], rnd: random.Random) -> None:
    # Blocks of 8 candles: merges cross block boundaries in every example.
    with (
        mock.patch.object(store_blocks, "BLOCK_CANDLES", 8),
        tempfile.TemporaryDirectory() as tmp,
        _fresh(tmp, "a.sqlite") as a,
        _fresh(tmp, "b.sqlite") as b,
    ):
        for chunk in batches:
            chunk = chunk[:]
            rnd.shuffle(chunk)
            a.upsert(KEY, [k(i) for i in chunk])
        union = sorted({i for chunk in batches for i in chunk})
        b.upsert(KEY, [k(i) for i in union])
        pd.testing.assert_frame_equal(a.read_frame(KEY), b.read_frame(KEY))
        assert a.present(KEY) == b.present(KEY) == runs([i * M for i in union], "1m")
        assert a.count(KEY) == len(union)
        for chunk in reversed(batches):  # writing everything again changes nothing
            a.upsert(KEY, [k(i) for i in chunk])
        pd.testing.assert_frame_equal(a.read_frame(KEY), b.read_frame(KEY))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(st.tuples(universe, st.integers(0, 3)), max_size=30), max_size=6))
def test_the_last_write_of_an_open_time_wins(batches: list[list[tuple[int, int]]]) -> None:
    model: dict[int, int] = {}
    with (
        mock.patch.object(store_blocks, "BLOCK_CANDLES", 8),
        tempfile.TemporaryDirectory() as tmp,
        _fresh(tmp, "a.sqlite") as a,
    ):
        for chunk in batches:
            a.upsert(KEY, [k(i, price=float(v)) for i, v in chunk])
            model.update(chunk)
        frame = a.read_frame(KEY)
    assert frame["open_time"].tolist() == [i * M for i in sorted(model)]
    assert frame["open"].tolist() == [k(i, price=float(model[i])).open for i in sorted(model)]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.tuples(st.integers(0, 100), st.integers(0, 15), st.booleans()), max_size=10),
    st.sets(universe, max_size=60),
)
def test_coverage_is_the_merge_of_everything_fetched(
    fetches: list[tuple[int, int, bool]], have: set[int]
) -> None:
    with tempfile.TemporaryDirectory() as tmp, _fresh(tmp, "a.sqlite") as a:
        ranges = [R(s, s + n) for s, n, _ in fetches]
        a.upsert(KEY, [k(i) for i in sorted(have)])
        for r, (_, _, with_candles) in zip(ranges, fetches, strict=True):
            if with_candles:
                a.upsert(KEY, [k(i) for i in range(r.start // M, r.end // M + 1) if i in have], fetched=r)
            else:
                a.mark_fetched(KEY, r)
        cov = merge_ranges(ranges, "1m")
        assert a.coverage(KEY) == cov
        assert a.confirmed_empty(KEY) == subtract_ranges(cov, runs([i * M for i in sorted(have)], "1m"), "1m")
