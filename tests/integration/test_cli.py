"""The terminal commands as a user runs them: real processes, real sockets, the simulator."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

BINMON = [sys.executable, "-m", "binmon"]
ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}


def _run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*BINMON, *args], capture_output=True, text=True, timeout=timeout, env=ENV)


@pytest.fixture(scope="module")
def sim_proc() -> Iterator[dict[str, str]]:
    """``binmon sim`` at 60x speed (a 1m candle closes every real second)."""
    p = subprocess.Popen(
        [*BINMON, "sim", "--speed", "60", "--history-days", "2", "--symbols", "BTCUSDT,ETHUSDT,DOGEBTC"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    )
    assert p.stdout is not None
    line = p.stdout.readline()
    if not line:
        p.kill()
        pytest.fail(f"binmon sim printed nothing: {p.stderr.read() if p.stderr else ''}")
    urls = json.loads(line)
    assert set(urls) >= {"ws", "rest"}
    yield urls
    p.send_signal(signal.SIGINT)
    try:
        _, err = p.communicate(timeout=10)
    finally:
        p.kill()
    assert p.returncode == 0, err
    assert "Traceback" not in err


def _sim_klines(rest: str, symbol: str, interval: str, start: int) -> list[list[object]]:
    r = requests.get(
        f"{rest}/api/v3/klines",
        params={"symbol": symbol, "interval": interval, "startTime": start, "limit": 1000},
        timeout=10,
    )
    r.raise_for_status()
    return r.json()


def _csv_rows(path: Path) -> list[list[str]]:
    with path.open(newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0][0] == "open_time"
    return rows[1:]


def _assert_rows_match_sim(rows: list[list[str]], urls: dict[str, str], symbol: str) -> None:
    assert rows, "no closed candle written"
    opens = [int(r[0]) for r in rows]
    assert opens == sorted(set(opens)), "CSV rows out of order or duplicated"
    served = {int(r[0]): [str(x) for x in r] for r in _sim_klines(urls["rest"], symbol, "1m", opens[0])}
    for row in rows:
        assert row == served[int(row[0])], f"CSV row differs from the simulator's kline: {row}"
    # No hole: every 1m candle the simulator has between the first and last row is present.
    expected = [t for t in served if opens[0] <= t <= opens[-1]]
    assert opens == expected


def test_sim_prints_urls_and_serves(sim_proc: dict[str, str]) -> None:
    assert sim_proc["ws"].startswith("ws://127.0.0.1:")
    r = requests.get(f"{sim_proc['rest']}/api/v3/ping", timeout=5)
    assert r.status_code == 200 and r.json() == {}


def test_stream_writes_closed_candles_to_csv(sim_proc: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "btc.csv"
    p = _run(
        "stream",
        "BTCUSDT",
        "--interval",
        "1m",
        "--csv",
        str(out),
        "--duration",
        "6",
        "--ws-url",
        sim_proc["ws"],
        "--rest-url",
        sim_proc["rest"],
    )
    assert p.returncode == 0, p.stderr
    assert "Traceback" not in p.stderr
    assert "closed" in p.stdout and "BTCUSDT 1m" in p.stdout
    rows = _csv_rows(out)
    assert len(rows) >= 3
    _assert_rows_match_sim(rows, sim_proc, "BTCUSDT")


def test_stream_survives_drop_and_backfills(sim_proc: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "eth.csv"
    p = subprocess.Popen(
        [
            *BINMON,
            "stream",
            "ETHUSDT",
            "--csv",
            str(out),
            "--duration",
            "12",
            "--ws-url",
            sim_proc["ws"],
            "--rest-url",
            sim_proc["rest"],
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    )
    time.sleep(4)
    # Drop every connection and refuse new ones for 3 s (= 3 sim minutes of missed candles).
    for name, value in (("refuse", "3"), ("drop_all", "")):
        r = requests.get(f"{sim_proc['rest']}/_sim/fault", params={"name": name, "value": value}, timeout=5)
        assert r.status_code == 200, r.text
    _, err_s = p.communicate(timeout=40)
    assert p.returncode == 0, err_s
    assert "reconnecting" in err_s
    assert "Traceback" not in err_s
    rows = _csv_rows(out)
    assert len(rows) >= 8
    _assert_rows_match_sim(rows, sim_proc, "ETHUSDT")


def test_stream_resumes_csv_without_duplicates(sim_proc: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "resume.csv"
    common = ["--csv", str(out), "--ws-url", sim_proc["ws"], "--rest-url", sim_proc["rest"]]
    assert _run("stream", "BTCUSDT", "--duration", "3", *common).returncode == 0
    first = _csv_rows(out)
    time.sleep(3)  # three sim minutes pass with nobody streaming
    assert _run("stream", "BTCUSDT", "--duration", "3", *common).returncode == 0
    rows = _csv_rows(out)
    assert rows[: len(first)] == first
    _assert_rows_match_sim(rows, sim_proc, "BTCUSDT")


def test_stream_sigint_flushes_and_exits_cleanly(sim_proc: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "int.csv"
    p = subprocess.Popen(
        [
            *BINMON,
            "stream",
            "DOGEBTC",
            "--csv",
            str(out),
            "--ws-url",
            sim_proc["ws"],
            "--rest-url",
            sim_proc["rest"],
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    )
    time.sleep(5)
    p.send_signal(signal.SIGINT)
    _, err_s = p.communicate(timeout=20)
    assert p.returncode == 0, err_s
    assert "Traceback" not in err_s
    rows = _csv_rows(out)
    assert rows
    # Tiny prices keep their 8 decimals.
    assert all(r[4].startswith("0.0000") for r in rows)
    _assert_rows_match_sim(rows, sim_proc, "DOGEBTC")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["stream", "NOSUCHCOIN"], "unknown symbol 'NOSUCHCOIN'"),
        (["stream", "BTCUSDT", "--interval", "7m"], "invalid choice"),
        (["stream", "BTCUSDT", "--history", "-3"], "--history"),
        (["record", "btcusdt@nonsense"], "--out"),
        (["record", "not a stream", "--out", "x.jsonl"], "not a Binance stream name"),
    ],
)
def test_bad_input_is_one_clear_line(sim_proc: dict[str, str], args: list[str], message: str) -> None:
    p = _run(*args, "--ws-url", sim_proc["ws"], "--rest-url", sim_proc["rest"])
    assert p.returncode != 0
    assert message in p.stderr
    assert "Traceback" not in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1, p.stderr


def test_unreachable_host_is_one_clear_line() -> None:
    # Port 9 (discard) on loopback: nothing listens, the connection is refused at once.
    p = _run("stream", "BTCUSDT", "--ws-url", "ws://127.0.0.1:9", "--rest-url", "http://127.0.0.1:9")
    assert p.returncode == 1
    assert "Traceback" not in p.stderr
    assert "127.0.0.1:9" in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1, p.stderr


def test_record_captures_raw_frames(sim_proc: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "cap.jsonl"
    p = _run(
        "record",
        "btcusdt@trade",
        "btcusdt@kline_1m",
        "!miniTicker@arr",
        "--out",
        str(out),
        "--duration",
        "3",
        "--ws-url",
        sim_proc["ws"],
        "--rest-url",
        sim_proc["rest"],
    )
    assert p.returncode == 0, p.stderr
    lines = out.read_text().splitlines()
    header = json.loads(lines[0])
    assert header["binmon_capture"] == 1
    assert header["streams"] == ["btcusdt@trade", "btcusdt@kline_1m", "!miniTicker@arr"]
    recs = [json.loads(x) for x in lines[1:]]
    streams = {json.loads(r["frame"])["stream"] for r in recs if "frame" in r}
    assert streams == {"btcusdt@trade", "btcusdt@kline_1m", "!miniTicker@arr"}
    ts = [r["t"] for r in recs]
    assert ts == sorted(ts)
