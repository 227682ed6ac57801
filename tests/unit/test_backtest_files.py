"""The Backtest tab's files (no Qt): trades CSV and metrics JSON exports, the recent-runs file."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest

from binmon.backtest.model import BacktestRequest, BacktestResult, Metrics, Trade
from binmon.ui.backtest.files import (
    KEEP,
    RUNS_FORMAT,
    RecentRuns,
    RunEntry,
    thin,
    write_metrics_json,
    write_trades_csv,
)

DAY = 86_400_000


def _metrics(ret: float, pf: float = 1.5) -> Metrics:
    return Metrics(
        net_profit=ret * 100,
        total_return_pct=ret,
        cagr_pct=ret * 2,
        sharpe=1.0,
        sortino=1.2,
        max_drawdown_pct=5.0,
        max_drawdown_bars=10,
        max_drawdown_ms=10 * 60_000,
        trades=2,
        win_rate_pct=50.0,
        profit_factor=pf,
        avg_trade=1.0,
        avg_trade_pct=0.1,
        exposure_pct=40.0,
        buy_hold_return_pct=3.0,
        final_equity=10_000 + ret * 100,
    )


def _result(ret: float, n: int = 5000, fast: int = 10) -> BacktestResult:
    times = 1_600_000_020_000 + 60_000 * np.arange(n, dtype=np.int64)
    equity = 10_000 + np.cumsum(np.ones(n))
    trades = (
        Trade(int(times[1]), int(times[5]), 0.00000638, 0.00000701, 1e6, "long", 0.63, 9.87, 0.0134, 4),
        Trade(
            int(times[7]), int(times[-1]), 0.00000700, 0.00000690, 1e6, "long", -0.1, -1.43, 0.007, 9, True
        ),
    )
    return BacktestResult(
        request=BacktestRequest(
            "XRPETH", "1m", int(times[0]), int(times[-1]), params={"fast": fast, "slow": 30}
        ),
        metrics=_metrics(ret, math.inf),
        trades=trades,
        times=times,
        equity=equity,
        buy_hold=equity,
        drawdown_pct=np.zeros(n),
        position=np.zeros(n),
        markers=(),
        indicators=(),
        bars=n,
        elapsed_s=0.1,
    )


def test_trades_csv_keeps_full_precision_and_iso_times(tmp_path: Path) -> None:
    result = _result(1.0)
    write_trades_csv(tmp_path / "t.csv", result.trades)
    with (tmp_path / "t.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert [float(r["entry_price"]) for r in rows] == [0.00000638, 0.00000700]
    assert rows[0]["entry_time"] == "2020-09-13T12:28:00Z"  # bar 1: 1_600_000_080_000 ms
    assert [r["open"] for r in rows] == ["0", "1"]
    assert float(rows[1]["pnl_pct"]) == -1.43


def test_metrics_json_is_strict_json(tmp_path: Path) -> None:
    result = _result(2.5)
    write_metrics_json(tmp_path / "m.json", result, _metrics(3.0))
    text = (tmp_path / "m.json").read_text()
    doc = json.loads(text, parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}"))
    assert doc["metrics"]["profit_factor"] is None  # inf has no JSON form
    assert doc["metrics"]["total_return_pct"] == 2.5 and doc["buy_and_hold"]["total_return_pct"] == 3.0
    assert doc["request"]["params"] == {"fast": 10, "slow": 30}
    assert doc["first_bar"] == "2020-09-13T12:27:00Z"  # 1_600_000_020_000 ms


def test_thin_keeps_the_ends() -> None:
    t, v = np.arange(10_000), np.arange(10_000) * 2.0
    tt, vv = thin(t, v, 100)
    assert len(tt) <= 101 and tt[0] == 0 and tt[-1] == 9_999 and vv[-1] == 19_998.0
    assert thin(t[:50], v[:50], 100)[0].size == 50


def test_recent_runs_keep_the_newest_and_reload(tmp_path: Path) -> None:
    path = tmp_path / "backtests.json"
    runs = RecentRuns(path)
    runs.load()
    for i in range(KEEP + 3):
        runs.add(RunEntry.of(_result(float(i), fast=i + 1), finished_ms=1_700_000_000_000 + i * DAY))
    assert len(runs.entries) == KEEP and runs.entries[0].request.params["fast"] == KEEP + 3
    again = RecentRuns(path)
    again.load()
    assert again.problems == []
    assert [e.request.params["fast"] for e in again.entries] == [
        e.request.params["fast"] for e in runs.entries
    ]
    first = again.entries[0]
    assert first.result is None and first.metrics.profit_factor == math.inf
    assert first.curve_times[-1] == runs.entries[0].result.times[-1]  # type: ignore[union-attr]
    assert first.curve_times.size <= 2001
    assert "fast=23" in first.label() and "XRPETH 1m" in first.label()


def test_a_newer_file_is_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "backtests.json"
    newer = json.dumps({"format": RUNS_FORMAT, "version": 99, "runs": []})
    path.write_text(newer)
    runs = RecentRuns(path)
    runs.load()
    assert runs.problems and "newer" in runs.problems[0]
    runs.add(RunEntry.of(_result(1.0)))
    assert path.read_text() == newer and len(runs.entries) == 1


def test_a_bad_entry_is_skipped_and_a_bad_file_kept_aside(tmp_path: Path) -> None:
    path = tmp_path / "backtests.json"
    good = RunEntry.of(_result(1.0)).to_dict()
    path.write_text(json.dumps({"format": RUNS_FORMAT, "version": 1, "runs": [{"id": "x"}, good]}))
    runs = RecentRuns(path)
    runs.load()
    assert [e.id for e in runs.entries] == [good["id"]] and runs.problems == []
    path.write_text("[1, 2")
    runs.load()
    assert runs.entries == [] and "kept aside" in runs.problems[0]
    assert not path.exists() and len(list(tmp_path.glob("backtests.json.corrupt-*"))) == 1
