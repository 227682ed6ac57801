"""The backtest runner across processes: a worker process with progress and cancel, user
strategy files, candles from the store, and parameter sweeps on a process pool and on a Dask
cluster (loopback) that equal the serial results."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from binmon.backtest import runner
from binmon.backtest.data import load_candles, missing_count, missing_ranges
from binmon.backtest.model import USER_STRATEGY, BacktestCancelled, BacktestRequest
from binmon.backtest.optimize import close_cluster_executor, cluster_executor, optimize, sort_rows
from binmon.backtest.runner import run_backtest, spawn_context, start_backtest
from binmon.backtest.strategies import StrategyFileError, load_user_strategy
from binmon.history.kline_io import read_kline_file
from binmon.history.ranges import SeriesKey, TimeRange
from binmon.history.store import CandleStore

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "resources" / "strategies" / "example_strategy.py"
ETH = "ETHBTC-5m-2018-01-10_30.ohlcv.csv"
XRP = "XRPETH-1m-2019-10-11_13.csv"


@pytest.fixture(scope="module")
def eth(real_dir: Path) -> pd.DataFrame:
    return pd.read_csv(real_dir / ETH)


@pytest.fixture(scope="module")
def worker() -> Iterator[None]:
    """binmon's default worker pool, ended after this module (it is a process-wide singleton)."""
    yield
    runner.shutdown()


def _req(df: pd.DataFrame, **kw: object) -> BacktestRequest:
    return BacktestRequest("ETHBTC", "5m", int(df.open_time.iloc[0]), int(df.open_time.iloc[-1]), **kw)  # type: ignore[arg-type]


def _tiled(df: pd.DataFrame, times: int) -> pd.DataFrame:
    """The real candles repeated (prices joined end to start), for a run long enough to watch."""
    big = pd.concat([df] * times, ignore_index=True)
    big["open_time"] = int(df.open_time.iloc[0]) + 300_000 * np.arange(len(big), dtype=np.int64)
    return big


def test_worker_process_reports_progress_and_result(eth: pd.DataFrame, worker: None) -> None:
    big = _tiled(eth, 3)
    req = _req(big, strategy="rsi", direction="long_short")
    job = start_backtest(req, big)
    seen = []
    while not job.done():
        seen.append(job.progress())
        time.sleep(0.01)
    res = job.future.result(timeout=60)
    assert job.progress() == 1.0
    assert any(0 < p < 1 for p in seen), seen
    assert seen == sorted(seen)  # never goes backwards
    local = run_backtest(req, big)
    assert res.metrics == local.metrics and res.trades == local.trades  # deterministic across processes


def test_cancel_reaches_the_worker(eth: pd.DataFrame, worker: None) -> None:
    big = _tiled(eth, 6)
    job = start_backtest(_req(big, strategy="macd"), big)
    deadline = time.monotonic() + 30
    while job.progress() == 0 and time.monotonic() < deadline:
        time.sleep(0.005)
    job.cancel()
    with pytest.raises(BacktestCancelled):
        job.future.result(timeout=30)
    # the worker is free again for the next run
    small = start_backtest(_req(eth), eth)
    assert small.future.result(timeout=30).bars == len(eth)


def _store_with_xrp(real_dir: Path, path: Path) -> SeriesKey:
    key = SeriesKey.spot("XRPETH", "1m")
    arr = read_kline_file(real_dir / XRP, "XRPETH", "1m")
    with CandleStore.open(path) as store:
        store.upsert_array(key, arr)
    return key


def test_candles_from_the_store_in_the_worker(real_dir: Path, tmp_path: Path, worker: None) -> None:
    path = tmp_path / "candles.sqlite"
    key = _store_with_xrp(real_dir, path)
    start, end = 1_570_752_000_000, 1_570_838_399_999  # 2019-10-11, the whole day
    frame = load_candles(path, "xrpeth", "1m", start, end)
    assert 0 < len(frame) < 1440  # real data: minutes without a trade have no candle
    # minutes never downloaded (no coverage) are missing; once fetched they are known empty
    gaps = missing_ranges(path, "XRPETH", "1m", start, end)
    assert missing_count(gaps, "1m") == 1440 - len(frame)
    with CandleStore.open(path) as store:
        store.mark_fetched(key, TimeRange(start, end - 59_999))
    assert missing_ranges(path, "XRPETH", "1m", start, end) == []
    assert missing_ranges(tmp_path / "none.sqlite", "XRPETH", "1m", start, start + 119_999) == [
        TimeRange(start, start + 60_000)
    ]

    req = BacktestRequest("XRPETH", "1m", start, end, strategy="ema_cross", params={"fast": 5, "slow": 20})
    job = start_backtest(req, path)  # the worker reads the store itself
    res = job.future.result(timeout=60)
    assert res.bars == len(frame) and res.metrics == run_backtest(req, frame).metrics


# ---------------------------------------------------------------- user strategy files


def test_user_strategy_file_runs(eth: pd.DataFrame) -> None:
    req = _req(
        eth, strategy=USER_STRATEGY, strategy_file=str(EXAMPLE), params={"period": 30, "threshold": "0.2"}
    )
    res = run_backtest(req, eth)
    assert res.metrics.trades > 3 and len(res.markers) >= 2 * res.metrics.trades
    assert {i.name for i in res.indicators} >= {"SMA.real"}
    assert sum(t.pnl for t in res.trades) == pytest.approx(res.metrics.net_profit)
    with pytest.raises(StrategyFileError, match=r"failed while running: IndexError: .* indicators need\?\)$"):
        run_backtest(_req(eth, strategy=USER_STRATEGY, strategy_file=str(EXAMPLE)), eth.iloc[:10])
    with pytest.raises(ValueError, match="MomentumBreakout has no parameter 'speed'"):
        run_backtest(_req(eth, strategy=USER_STRATEGY, strategy_file=str(EXAMPLE), params={"speed": 1}), eth)


BAD_FILES = {
    "syntax.py": ("class S(bt.Strategy)\n    pass\n", "syntax.py: syntax error at line 1"),
    "empty.py": (
        "import backtrader as bt\nfrom backtrader import Strategy\nX = 1\n",
        "no backtrader.Strategy subclass",
    ),
    "two.py": (
        "import backtrader as bt\nclass A(bt.Strategy):\n    pass\nclass B(bt.Strategy):\n    pass\n",
        "more than one Strategy subclass (A, B)",
    ),
    "boom.py": (
        "raise RuntimeError('no data here')\n",
        "boom.py: error while loading: RuntimeError: no data here",
    ),
}


@pytest.mark.parametrize("name", list(BAD_FILES))
def test_bad_strategy_files_give_one_line(tmp_path: Path, name: str) -> None:
    source, message = BAD_FILES[name]
    f = tmp_path / name
    f.write_text(source)
    with pytest.raises(StrategyFileError) as info:
        load_user_strategy(f)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_missing_strategy_file(tmp_path: Path) -> None:
    with pytest.raises(StrategyFileError, match="no such strategy file"):
        load_user_strategy(tmp_path / "nope.py")


# ---------------------------------------------------------------- optimisation

GRID = {"fast": [5, 10, 20, 30], "slow": [20, 30]}  # 8 points, 3 of them invalid (fast >= slow)


@pytest.fixture(scope="module")
def week(eth: pd.DataFrame) -> pd.DataFrame:
    """A week of the real 5m candles: enough trades per grid point, quick to sweep."""
    return eth.iloc[:2016].reset_index(drop=True)


def _serial(req: BacktestRequest, df: pd.DataFrame) -> list[tuple[dict[str, int], object]]:
    out: list[tuple[dict[str, int], object]] = []
    for fast in GRID["fast"]:
        for slow in GRID["slow"]:
            params = {"fast": fast, "slow": slow}
            metrics = (
                None
                if fast >= slow
                else run_backtest(req.__class__(**{**req.to_dict(), "params": params}), df).metrics
            )
            out.append((params, metrics))
    return out


def test_optimize_on_two_processes_equals_serial(week: pd.DataFrame) -> None:
    req = _req(week)
    progress: list[float] = []
    with ProcessPoolExecutor(2, mp_context=spawn_context()) as ex:
        rows = optimize(req, GRID, week, ex, progress=progress.append)
    assert [(r.params, r.metrics) for r in rows] == _serial(req, week)
    assert [r.error for r in rows if r.metrics is None] == ["fast must be < slow"] * 3
    assert progress[-1] == 1.0 and progress == sorted(progress)
    best = sort_rows(rows, "sharpe")
    assert best[0].metrics is not None and best[-1].metrics is None
    sharpes = [r.metrics.sharpe for r in best if r.metrics is not None]
    assert sharpes == sorted(sharpes, reverse=True)


def test_optimize_cancel_and_bad_grid(week: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="sma_cross has no parameter 'speed'"):
        optimize(_req(week), {"speed": [1]}, week)
    with pytest.raises(BacktestCancelled), ThreadPoolExecutor(1) as ex:  # any executor will do
        optimize(_req(week), GRID, week, ex, cancel=lambda: True)


def test_optimize_on_a_dask_cluster_on_loopback(week: pd.DataFrame) -> None:
    distributed = pytest.importorskip("distributed")
    req = _req(week)
    # Threads in one process (processes=False) keep the cluster's start-up under a second;
    # protocol="tcp" on 127.0.0.1 still makes the client talk to a real scheduler socket.
    with distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=False,
        protocol="tcp",
        host="127.0.0.1",
        dashboard_address=None,
    ) as cluster:
        assert cluster.scheduler_address.startswith("tcp://127.0.0.1:")
        ex = cluster_executor(cluster.scheduler_address)
        try:
            rows = optimize(req, GRID, week, ex)
        finally:
            close_cluster_executor(ex)
    assert [(r.params, r.metrics) for r in rows] == _serial(req, week)


def test_cluster_executor_unreachable() -> None:
    pytest.importorskip("distributed")
    with pytest.raises(ValueError, match=re.escape("cannot reach the Dask scheduler at tcp://127.0.0.1:9")):
        cluster_executor("tcp://127.0.0.1:9", timeout_s=1.0)
