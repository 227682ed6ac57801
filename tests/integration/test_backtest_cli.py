"""``binmon backtest`` / ``binmon optimize`` as a user runs them, on a store filled by
``binmon import`` (real candles) or by ``--download`` from the simulator."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from binmon.backtest.data import load_candles
from binmon.backtest.model import BacktestRequest
from binmon.backtest.runner import run_backtest
from binmon.cli import main
from binmon.history.store import default_store_path
from binmon.paths import AppPaths
from binmon.sim.config import SimConfig
from binmon.sim.server import ServerConfig
from binmon.sim.thread import SimThread, run_sim

XRP = "XRPETH-1m-2019-10-11_13.csv"
DAY = ["--start", "2019-10-11", "--end", "2019-10-11"]  # 2019-10-11 00:00 .. 23:59


def store_at(basedir: Path) -> Path:
    return default_store_path(AppPaths.resolve(basedir).data_dir)


@pytest.fixture(scope="module")
def filled(real_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A basedir whose store holds the real XRPETH 1m candles, imported as a user would."""
    base = tmp_path_factory.mktemp("bt")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    p = subprocess.run(
        [sys.executable, "-m", "binmon", "import", str(real_dir / XRP), "--symbol", "XRPETH",
         "--interval", "1m", "--basedir", str(base)],
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    return base


def one_line_error(capsys: pytest.CaptureFixture[str], code: int, argv: list[str], text: str) -> None:
    assert main(argv) == code
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and text in err[0], err


def test_backtest_prints_metrics_and_writes_json(
    filled: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run.json"
    argv = ["backtest", "xrpeth", "-i", "1m", *DAY, "--strategy", "rsi", "--param", "period=9",
            "--param", "low=35", "--size", "50%", "--allow-gaps", "--basedir", str(filled),
            "--json", str(out)]  # fmt: skip
    assert main(argv) == 0
    stdout = capsys.readouterr().out
    # 23:54 is the day's last candle: no trade in its last five minutes (real data has gaps)
    assert (
        "XRPETH 1m 2019-10-11 00:00 UTC .. 2019-10-11 23:54 UTC: rsi (period=9, low=35.0, high=70.0)"
        in stdout
    )
    for label in (
        "Net profit",
        "Total return",
        "Buy and hold",
        "Sharpe",
        "Max drawdown",
        "Win rate",
        "Exposure",
    ):
        assert label in stdout
    data = json.loads(out.read_text())
    # the same run in this process, on the same stored candles, gives the same numbers
    req = BacktestRequest.from_dict(data["request"])
    assert (req.strategy, req.params, req.size, req.sizing) == (
        "rsi",
        {"period": 9, "low": 35.0, "high": 70.0},
        50.0,
        "percent",
    )
    frame = load_candles(store_at(filled), "XRPETH", "1m", req.start_ms, req.end_ms)
    res = run_backtest(req, frame)
    assert data["metrics"] == res.metrics.to_dict()
    assert data["trades"] == [t.to_dict() for t in res.trades] and len(data["trades"]) > 2
    assert "equity" not in data  # the JSON holds the figures, not the curves


def test_missing_candles_and_bad_input_are_one_line(filled: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["-i", "1m", "--basedir", str(filled)]
    one_line_error(
        capsys, 1, ["backtest", "XRPETH", *base, *DAY],
        "candles are missing from the store (from 2019-10-11 00:03, in ",
    )  # fmt: skip
    one_line_error(
        capsys,
        1,
        ["backtest", "XRPETH", *base, *DAY, "--param", "fast=40", "--allow-gaps"],
        "fast must be < slow",
    )
    one_line_error(
        capsys, 1, ["backtest", "XRPETH", *base, *DAY, "--strategy", "nope"], "unknown strategy 'nope'"
    )
    one_line_error(
        capsys, 1, ["backtest", "XRPETH", *base, *DAY, "--strategy-file", "/none/s.py", "--allow-gaps"],
        "no such strategy file",
    )  # fmt: skip
    one_line_error(
        capsys,
        1,
        ["backtest", "XRPETH", *base, "--start", "2020-01-01", "--allow-gaps"],
        "no XRPETH 1m candles",
    )
    one_line_error(capsys, 1, ["optimize", "XRPETH", *base, *DAY, "--grid", "fast=5:1:1"], "need FROM <= TO")


def test_optimize_ranks_and_writes_json(
    filled: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "opt.json"
    argv = ["optimize", "XRPETH", "-i", "1m", *DAY, "--grid", "fast=4:12:4", "--grid", "slow=10,20",
            "--workers", "1", "--sort", "sharpe", "--allow-gaps", "--basedir", str(filled),
            "--json", str(out)]  # fmt: skip
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "Best 6 by sharpe:" in captured.out
    assert "6 combinations" in captured.err and "(1 invalid combinations skipped)" in captured.err
    data = json.loads(out.read_text())
    assert data["grid"] == {"fast": [4, 8, 12], "slow": [10, 20]}
    rows = data["rows"]
    sharpes = [r["metrics"]["sharpe"] for r in rows if r["metrics"]]
    assert len(sharpes) == 5 and sharpes == sorted(sharpes, reverse=True)
    assert rows[-1] == {"params": {"fast": 12, "slow": 10}, "metrics": None, "error": "fast must be < slow"}
    # the top row is what a plain backtest with its parameters gives
    top = rows[0]["params"]
    req = BacktestRequest.from_dict({**data["request"], "params": top})
    frame = load_candles(store_at(filled), "XRPETH", "1m", req.start_ms, req.end_ms)
    assert run_backtest(req, frame).metrics.to_dict() == rows[0]["metrics"]


# ---------------------------------------------------------------- --download from the simulator


@pytest.fixture(scope="module")
def sim() -> Iterator[SimThread]:
    cfg = SimConfig(seed=3, history_days=3.0, trade_rate=5.0, start_ms=1_717_372_830_000)  # 2024-06-03
    server = ServerConfig(pump_interval_s=0.02, shutdown_grace_s=0.3, close_timeout_s=2.0)
    with run_sim(cfg, server) as s:
        yield s


def test_download_then_backtest(sim: SimThread, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    u = sim.urls.rest
    argv = ["backtest", "BTCUSDT", "-i", "1h", "--start", "2024-06-01", "--end", "2024-06-02", "--strategy",
            "ema_cross", "--param", "fast=3", "--param", "slow=8", "--basedir", str(tmp_path),
            "--rest-url", u, "--archive-url", u]  # fmt: skip
    one_line_error(capsys, 1, argv, "48 BTCUSDT 1h candles are missing from the store")
    assert main([*argv, "--download"]) == 0
    captured = capsys.readouterr()
    assert "binmon: downloaded 48 BTCUSDT 1h candles" in captured.err
    assert "Trades" in captured.out and "Bars                   48" in captured.out
    # now stored: the same command runs offline without --download
    assert main(argv) == 0
    assert "Bars                   48" in capsys.readouterr().out
