"""binmon.sim replay: a real trades archive in place of the generator."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from binmon.core.aggregate import aggregate_trades
from binmon.core.intervals import DAY_MS
from binmon.core.models import Kline
from binmon.sim.clock import ManualClock
from binmon.sim.config import DEFAULT_SYMBOLS, SimConfig, SimSymbol
from binmon.sim.market import Market
from binmon.sim.replay import load_trades_csv, replay_start_ms

TRADES = "XRPETH-trades-2019-10-11_13.csv"
FIRST_MS, LAST_MS = 1570752011620, 1570965568844  # the file's first and last trade times


@pytest.fixture
def trades_file(real_dir: Path) -> Path:
    return real_dir / TRADES


def replay_market(path: Path, now: int, **cfg: object) -> tuple[Market, ManualClock]:
    config = SimConfig(replay=path, **cfg)  # type: ignore[arg-type]
    start = replay_start_ms(config)
    assert start is not None
    clock = ManualClock(start)
    clock.set(now)
    return Market(config, clock), clock


def row(k: Kline) -> list[str]:
    """A kline as the archive's 12 CSV strings."""
    d8 = "{:.8f}".format
    return [
        str(k.open_time), d8(k.open), d8(k.high), d8(k.low), d8(k.close), d8(k.volume), str(k.close_time),
        d8(k.quote_volume), str(k.trades), d8(k.taker_buy_base), d8(k.taker_buy_quote), "0",
    ]  # fmt: skip


def all_1m(m: Market, symbol: str) -> list[Kline]:
    out: list[Kline] = []
    start = 0
    while page := m.klines(symbol, "1m", start, None, 1000):
        out += page
        start = page[-1].open_time + 1
    return out


def test_replayed_klines_equal_the_exchanges_1m_archive(
    trades_file: Path, xrpeth_1m_rows: list[list[str]]
) -> None:
    m, _ = replay_market(trades_file, LAST_MS + 5 * 60_000)
    got = all_1m(m, "XRPETH")
    assert len(got) == len(xrpeth_1m_rows) == 2469
    assert [row(k) for k in got] == xrpeth_1m_rows
    assert all(k.closed for k in got)


def test_the_clock_starts_at_the_first_trade_and_trades_are_the_files(
    trades_file: Path, xrpeth_trades: dict[str, np.ndarray]
) -> None:
    assert replay_start_ms(SimConfig(replay=trades_file)) == FIRST_MS
    assert replay_start_ms(SimConfig()) is None
    m, _ = replay_market(trades_file, LAST_MS + 1)
    assert m.listing_ms("XRPETH") == FIRST_MS
    b = m.trades("XRPETH", 0, LAST_MS + 10 * DAY_MS)
    assert np.array_equal(b.ids, xrpeth_trades["id"])
    assert np.array_equal(b.prices, xrpeth_trades["price"])
    assert np.array_equal(b.qtys, xrpeth_trades["qty"])
    assert np.array_equal(b.times, xrpeth_trades["time_ms"])
    assert np.array_equal(b.buyer_is_maker, xrpeth_trades["maker"])


def test_midway_only_the_past_exists_and_the_current_candle_is_open(
    trades_file: Path, xrpeth_trades: dict[str, np.ndarray]
) -> None:
    times = xrpeth_trades["time_ms"]
    now = int(times[6000]) + 1  # just after a trade, mid-file
    hour_open = now // 3_600_000 * 3_600_000
    m, clock = replay_market(trades_file, now)
    assert len(m.trades("XRPETH", 0, 2**62)) == int(np.sum(times < now))
    hours = m.klines("XRPETH", "1h", None, None, 1000)
    assert hours[-1].open_time == hour_open and not hours[-1].closed
    assert hours[-1].last_trade_id == xrpeth_trades["id"][times < now][-1]
    assert all(k.closed for k in hours[:-1])
    # an hour later the same candle is complete and equals aggregating the file's trades
    clock.advance(3_600_000)
    sel = (times >= hour_open) & (times < hour_open + 3_600_000)
    expected = aggregate_trades(
        "XRPETH", "1h", xrpeth_trades["id"][sel], xrpeth_trades["price"][sel], xrpeth_trades["qty"][sel],
        times[sel], xrpeth_trades["maker"][sel],
    )  # fmt: skip
    assert m.klines("XRPETH", "1h", hour_open, hour_open, 10) == expected
    assert expected[0].trades > hours[-1].trades


@pytest.mark.parametrize("interval", ["1s", "5m", "4h", "1d", "1w", "1M"])
def test_every_interval_equals_aggregating_the_files_trades(
    trades_file: Path, xrpeth_trades: dict[str, np.ndarray], interval: str
) -> None:
    now = LAST_MS + 3 * DAY_MS
    m, _ = replay_market(trades_file, now)
    t = xrpeth_trades
    expected = aggregate_trades(
        "XRPETH", interval, t["id"], t["price"], t["qty"], t["time_ms"], t["maker"], closed_before_ms=now
    )
    got = m.klines("XRPETH", interval, 0, None, 1000)
    assert got == expected[:1000]
    assert m.klines("XRPETH", interval, None, None, 7) == expected[-7:]


def test_after_the_file_ends_there_are_no_more_trades(trades_file: Path) -> None:
    m, _ = replay_market(trades_file, LAST_MS + 2 * DAY_MS)
    assert len(m.trades("XRPETH", LAST_MS + 1, LAST_MS + 2 * DAY_MS)) == 0
    assert m.current_kline("XRPETH", "1m") is None
    t = m.ticker_24h("XRPETH")
    assert (t.count, t.volume, t.first_id) == (0, 0.0, -1)
    assert t.close == t.prev_close == 0.00152787 and t.last_qty == 130.0  # the file's last trade


def test_ticker_over_the_replay(trades_file: Path, xrpeth_trades: dict[str, np.ndarray]) -> None:
    now = LAST_MS + 1
    m, _ = replay_market(trades_file, now)
    t = m.ticker_24h("XRPETH")
    times = xrpeth_trades["time_ms"]
    sel = times >= now - DAY_MS
    assert t.count == int(sel.sum()) and t.last_id == xrpeth_trades["id"][-1]
    assert t.open == xrpeth_trades["price"][sel][0] and t.high == xrpeth_trades["price"][sel].max()
    assert t.volume == float(xrpeth_trades["qty"][sel].sum())  # whole XRP: exact in a float
    assert t.prev_close == xrpeth_trades["price"][~sel][-1]


def test_an_unlisted_replayed_symbol_is_described_from_its_data(trades_file: Path) -> None:
    m, _ = replay_market(trades_file, LAST_MS)
    sym = m.symbol("XRPETH")
    assert sym is not None
    assert (sym.base, sym.quote, sym.tick_size, sym.step_size, sym.status) == (
        "XRP",
        "ETH",
        "0.00000001",
        "1",
        "TRADING",
    )
    assert sym.price == 0.00141342
    assert [s.symbol for s in m.symbols] == [*(s.symbol for s in DEFAULT_SYMBOLS), "XRPETH"]
    # generated symbols still work, listed history_days before the (replay) clock start
    assert m.listing_ms("BTCUSDT") == (FIRST_MS - 30 * DAY_MS) // 60_000 * 60_000
    assert m.klines("BTCUSDT", "1h", None, None, 5)[-1].open_time == LAST_MS // 3_600_000 * 3_600_000


def test_a_listed_symbol_keeps_its_description_and_replay_symbol_overrides_the_name(
    tmp_path: Path, trades_file: Path
) -> None:
    renamed = tmp_path / "some-capture.csv"
    renamed.write_bytes(trades_file.read_bytes())
    mine = SimSymbol("XRPETH", "XRP", "ETH", 0.0014, "0.00000001", "1", 1.0, status="BREAK")
    m, _ = replay_market(renamed, LAST_MS + 1, symbols=(mine,), replay_symbol="xrpeth")
    assert m.symbols == (mine,)
    assert len(m.trades("XRPETH", 0, LAST_MS + 1)) == 12_477  # the file's trades, not a halted generator's


def test_microsecond_archives_with_a_header_are_read(tmp_path: Path) -> None:
    f = tmp_path / "BTCUSDT-trades-2025-01-01.csv"
    f.write_text(
        "id,price,qty,quote_qty,time,is_buyer_maker,is_best_match\n"
        "100,93000.01000000,0.00100000,93.00001000,1735689600123456,true,true\n"
        "101,93000.02000000,0.50000000,46500.01000000,1735689600123999,False,True\n"
        "102,92999.99000000,0.25000000,23249.99750000,1735689661000000,True,True\n"
    )
    cfg = SimConfig(replay=f)
    assert replay_start_ms(cfg) == 1735689600123
    tr = load_trades_csv(f)
    assert tr.times.tolist() == [1735689600123, 1735689600123, 1735689661000]
    assert tr.buyer_is_maker.tolist() == [True, False, True]
    m, _ = replay_market(f, 1735689661001)
    assert m.symbol("BTCUSDT") is not None  # a default symbol: replaced, not added
    assert len(m.symbols) == len(DEFAULT_SYMBOLS)
    ks = m.klines("BTCUSDT", "1m", None, None, 10)
    assert [(k.open_time, k.trades, k.high, k.taker_buy_base) for k in ks] == [
        (1735689600000, 2, 93000.02, 0.5),
        (1735689660000, 1, 92999.99, 0.0),
    ]
    assert ks[0].quote_volume == 46593.01001


@pytest.mark.parametrize(
    "text",
    ["", "1,2,3\n", "1,0.1,1,0.1,1570752011620,maybe,True\n", "x,0.1,1,0.1,1570752011620,True,True\n1,a\n"],
)
def test_malformed_archives_are_refused(tmp_path: Path, text: str) -> None:
    f = tmp_path / "XRPETH-trades-bad.csv"
    f.write_text(text)
    with pytest.raises(ValueError):
        load_trades_csv(f)
