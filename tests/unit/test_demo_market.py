"""The demo's simulated market is the same for every run of a UTC day, and its store follows it."""

from __future__ import annotations

from pathlib import Path

from binmon.history.store import demo_store_path
from binmon.sim.clock import ManualClock
from binmon.sim.config import DAY_MS, demo_config, market_id
from binmon.sim.market import Market

DAY0 = 1_764_028_800_000  # 2025-11-25 00:00 UTC


def test_two_demo_runs_on_one_day_serve_the_same_history() -> None:
    early, late = DAY0 + 3_600_000, DAY0 + 20 * 3_600_000
    a = Market(demo_config(early), ManualClock(early))
    b = Market(demo_config(late), ManualClock(late))
    assert market_id(demo_config(early)) == market_id(demo_config(late)) == "s42-20251026"
    # The early run's whole past, as the later run serves it: identical candles.
    ka = a.klines("BTCUSDT", "1m", start_ms=DAY0 - 2 * DAY_MS, end_ms=early - 60_000, limit=5000)
    kb = b.klines("BTCUSDT", "1m", start_ms=DAY0 - 2 * DAY_MS, end_ms=early - 60_000, limit=5000)
    assert len(ka) > 2500 and ka == kb


def test_a_demo_on_another_day_is_another_market() -> None:
    assert market_id(demo_config(DAY0)) != market_id(demo_config(DAY0 + DAY_MS))
    # Without a fixed listing the market depends on the clock's start: no stable id.
    assert market_id(demo_config(DAY0).__class__()) == ""


def test_demo_store_path_removes_only_other_demo_markets(tmp_path: Path) -> None:
    keep = tmp_path / "candles.sqlite"
    keep.write_bytes(b"exchange data")
    other = tmp_path / "candles-demo-s42-20251025.sqlite"
    other.write_bytes(b"x")
    (tmp_path / "candles-demo-s42-20251025.sqlite-wal").write_bytes(b"x")
    old_style = tmp_path / "candles-demo.sqlite"
    old_style.write_bytes(b"x")
    path = demo_store_path(tmp_path, "s42-20251026")
    assert path == tmp_path / "candles-demo-s42-20251026.sqlite"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["candles.sqlite"]
    assert keep.read_bytes() == b"exchange data"
