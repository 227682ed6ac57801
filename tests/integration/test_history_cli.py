"""``binmon download / export / import / stored`` as a user runs them: real processes, the simulator."""

from __future__ import annotations

import csv
import io
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from binmon.binance.codec import kline_to_row
from binmon.binance.rest import RestClient
from binmon.history.ranges import SeriesKey
from binmon.history.store import CandleStore, default_store_path
from binmon.paths import AppPaths
from binmon.sim.config import SimConfig
from binmon.sim.server import ServerConfig
from binmon.sim.thread import SimThread, run_sim

BINMON = [sys.executable, "-m", "binmon"]
ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}
#: 2024-06-03 00:00:30 UTC; 3 days of history.
START_MS = 1_717_372_830_000
REAL_CSV = "XRPETH-1m-2019-10-11_13.csv"


def run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*BINMON, *args], capture_output=True, text=True, timeout=timeout, env=ENV)


def one_line_error(p: subprocess.CompletedProcess[str], code: int, text: str) -> None:
    assert p.returncode == code, (p.stdout, p.stderr)
    assert "Traceback" not in p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, p.stderr
    assert text in lines[0]


@pytest.fixture(scope="module")
def sim() -> Iterator[SimThread]:
    cfg = SimConfig(seed=3, history_days=3.0, trade_rate=5.0, start_ms=START_MS)
    server = ServerConfig(pump_interval_s=0.02, shutdown_grace_s=0.3, close_timeout_s=2.0)
    with run_sim(cfg, server) as s:
        yield s


def endpoint_args(sim: SimThread, basedir: Path) -> list[str]:
    u = sim.urls.rest
    return ["--rest-url", u, "--archive-url", u, "--basedir", str(basedir)]


def store_at(basedir: Path) -> Path:
    return default_store_path(AppPaths.resolve(basedir).data_dir)


def test_download_stored_export_and_rerun(sim: SimThread, tmp_path: Path) -> None:
    args = ["download", "BTCUSDT", "--interval", "1h", "--start", "2024-05-01", *endpoint_args(sim, tmp_path)]
    first = run(*args)
    assert first.returncode == 0, first.stderr
    assert "Traceback" not in first.stderr
    # Listed 2024-05-31 00:00: the earlier part is clamped with a note, not an error.
    assert "note: BTCUSDT 1h history starts at 2024-05-31 00:00 UTC" in first.stderr
    assert "BTCUSDT 1h: 72 candles written, 0 already stored" in first.stdout
    again = run(*args)
    assert again.returncode == 0 and "0 candles written, 72 already stored; 0 REST requests" in again.stdout

    stored = run("stored", "--basedir", str(tmp_path))
    assert stored.returncode == 0
    row = next(line for line in stored.stdout.splitlines() if "BTCUSDT" in line).split()
    assert row[:4] == ["spot", "BTCUSDT", "1h", "72"] and row[-2:] == ["0", "0"]

    out = tmp_path / "btc.csv"
    exp = run("export", "BTCUSDT", "-i", "1h", "--out", str(out), "--header", "--basedir", str(tmp_path))
    assert exp.returncode == 0, exp.stderr
    lines = out.read_text().splitlines()
    assert lines[0].startswith("open_time,open,high,low,close,volume,close_time")
    with RestClient(sim.urls.rest) as rest:
        served = rest.klines("BTCUSDT", "1h", start_ms=0, limit=72)
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(kline_to_row(k) for k in served)
    assert "\n".join(lines[1:]) + "\n" == buf.getvalue()
    # A range, to stdout.
    part = run("export", "BTCUSDT", "-i", "1h", "--start", "2024-06-01", "--end", "2024-06-01 02:00",
               "--out", "-", "--basedir", str(tmp_path))  # fmt: skip
    assert part.returncode == 0 and part.stdout == "".join(buf.getvalue().splitlines(keepends=True)[24:27])


def test_import_then_export_is_byte_identical(real_dir: Path, tmp_path: Path) -> None:
    src = real_dir / REAL_CSV
    imp = run("import", str(src), "--basedir", str(tmp_path))
    assert imp.returncode == 0, imp.stderr
    assert "imported 2469 XRPETH 1m candles" in imp.stdout
    out = tmp_path / "out.csv"
    exp = run("export", "XRPETH", "--interval", "1m", "--out", str(out), "--basedir", str(tmp_path))
    assert exp.returncode == 0, exp.stderr
    assert out.read_bytes() == src.read_bytes()
    # Importing it again changes nothing; a bad file is refused whole, nothing lost.
    bad = tmp_path / "XRPETH-1m-bad.csv"
    bad.write_bytes(src.read_bytes().replace(b"0.00141580", b"0.0014x580", 1))
    one_line_error(run("import", str(bad), "--basedir", str(tmp_path)), 1, "XRPETH-1m-bad.csv: line 3:")
    nameless = tmp_path / "prices.csv"
    nameless.write_bytes(src.read_bytes())
    one_line_error(
        run("import", str(nameless), "--basedir", str(tmp_path)), 1, "pass --symbol and --interval"
    )
    one_line_error(
        run("import", str(nameless), "--symbol", "XRPETH", "-i", "1s", "--basedir", str(tmp_path)),
        1,
        "not a 1s candle",
    )
    with CandleStore.open(store_at(tmp_path)) as store:
        assert store.count(SeriesKey.spot("XRPETH", "1m")) == 2469
        assert store.count(SeriesKey.spot("XRPETH", "1s")) == 0


def test_import_of_an_archive_zip_covers_its_day(sim: SimThread, tmp_path: Path) -> None:
    name = "ETHUSDT-1m-2024-06-01.zip"
    base = f"{sim.urls.rest}/data/spot/daily/klines/ETHUSDT/1m/{name}"
    (tmp_path / name).write_bytes(requests.get(base, timeout=10).content)
    (tmp_path / (name + ".CHECKSUM")).write_bytes(requests.get(base + ".CHECKSUM", timeout=10).content)
    imp = run("import", str(tmp_path / name), "--basedir", str(tmp_path))
    assert imp.returncode == 0, imp.stderr
    dl = run("download", "ETHUSDT", "-i", "1m", "--start", "2024-06-01", "--end", "2024-06-01",
             *endpoint_args(sim, tmp_path))  # fmt: skip
    assert "0 candles written, 1440 already stored; 0 REST requests, 0 archive files" in dl.stdout
    (tmp_path / (name + ".CHECKSUM")).write_text("0" * 64 + f"  {name}\n")
    one_line_error(run("import", str(tmp_path / name), "--basedir", str(tmp_path)), 1, "does not match")


@pytest.mark.parametrize(
    ("args", "code", "text"),
    [
        (["--start", "2024-13-01"], 2, "argument --start: bad date '2024-13-01': month must be in 1..12"),
        (["--start", "2024-06-01", "--end", "1717200000"], 2, "looks like epoch seconds"),
        (["--start", "2024-06-02", "--end", "2024-06-01"], 1, "end 2024-06-01 23:59:59 UTC is before start"),
        (["--start", "2024-07-01"], 1, "start 2024-07-01 00:00 UTC is in the future"),
        (["--start", "2024-06-01", "--interval", "7m"], 2, "unknown interval '7m'"),
        (["--start", "2024-06-01", "--symbol-typo"], 2, "unrecognized arguments"),
    ],
)
def test_bad_download_arguments_are_one_line(
    sim: SimThread, tmp_path: Path, args: list[str], code: int, text: str
) -> None:
    base = ["download", "BTCUSDT"] if "--interval" in args else ["download", "BTCUSDT", "-i", "1h"]
    one_line_error(run(*base, *args, *endpoint_args(sim, tmp_path)), code, text)
    assert not store_at(tmp_path).exists()  # refused before anything was touched


def test_unknown_symbol_and_missing_store(sim: SimThread, tmp_path: Path) -> None:
    one_line_error(
        run("download", "NOPEUSDT", "-i", "1h", "--start", "2024-06-01", *endpoint_args(sim, tmp_path)),
        1,
        "unknown symbol 'NOPEUSDT'",
    )
    one_line_error(
        run("export", "BTCUSDT", "-i", "1h", "-o", "-", "--basedir", str(tmp_path / "x")),
        1,
        "no candle store",
    )
    assert "nothing stored yet" in run("stored", "--basedir", str(tmp_path / "x")).stdout


def test_ctrl_c_keeps_the_candles_and_a_rerun_resumes(sim: SimThread, tmp_path: Path) -> None:
    args = ["download", "ETHUSDT", "-i", "1m", "--start", "2024-05-31", "--source", "rest",
            "--workers", "2", *endpoint_args(sim, tmp_path)]  # fmt: skip
    sim.faults.set_rest_delay(0.5)
    try:
        p = subprocess.Popen(
            [*BINMON, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV
        )
        path = store_at(tmp_path)
        deadline = time.monotonic() + 30
        count = 0
        while time.monotonic() < deadline and count == 0:
            time.sleep(0.1)
            if path.exists():
                with CandleStore.open(path) as store:
                    count = store.count(SeriesKey.spot("ETHUSDT", "1m"))
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=20)
    finally:
        sim.faults.set_rest_delay(0.0)
    assert p.returncode == 130, err
    assert "Traceback" not in err
    assert "run the same command again to resume" in err
    done = run(*args)
    assert done.returncode == 0, done.stderr
    kept = re.search(r"(\d+) candles written, (\d+) already stored", done.stdout)
    assert kept is not None and int(kept[1]) > 0 and int(kept[2]) > 0, done.stdout


def test_demo_downloads_into_a_store_of_its_own(tmp_path: Path) -> None:
    dl = run("download", "ETHBTC", "-i", "1d", "--start", "2020-01-01", "--demo", "--basedir", str(tmp_path))
    assert dl.returncode == 0, dl.stderr
    written = re.search(r"ETHBTC 1d: (\d+) candles written", dl.stdout)
    assert written is not None and 29 <= int(written[1]) <= 31  # 30 days of history
    assert "ETHBTC" in run("stored", "--demo", "--basedir", str(tmp_path)).stdout
    assert "ETHBTC" not in run("stored", "--basedir", str(tmp_path)).stdout


def test_download_with_csv_exports_the_requested_range(sim: SimThread, tmp_path: Path) -> None:
    out = tmp_path / "part.csv"
    args = ["download", "BTCUSDT", "-i", "1h", "--start", "2024-06-01", "--end", "2024-06-01 02:00",
            "--csv", str(out), *endpoint_args(sim, tmp_path)]  # fmt: skip
    dl = run(*args)
    assert dl.returncode == 0, dl.stderr
    assert "exported 3 BTCUSDT 1h candles to" in dl.stderr
    with RestClient(sim.urls.rest) as rest:
        served = rest.klines("BTCUSDT", "1h", start_ms=0, limit=72)
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(kline_to_row(k) for k in served[24:27])
    assert out.read_text() == buf.getvalue()
    # The same bytes as `binmon export` of that range; with --header, its header row first.
    exp = tmp_path / "exp.csv"
    e = run("export", "BTCUSDT", "-i", "1h", "--start", "2024-06-01", "--end", "2024-06-01 02:00",
            "--out", str(exp), "--basedir", str(tmp_path))  # fmt: skip
    assert e.returncode == 0 and exp.read_bytes() == out.read_bytes()
    again = run(*args, "--header")  # nothing left to fetch: still exports
    assert again.returncode == 0 and "0 candles written" in again.stdout
    lines = out.read_text().splitlines()
    assert lines[0].startswith("open_time,open,high,low,close") and len(lines) == 4
    one_line_error(run(*args[:-6], "--csv", "-", *endpoint_args(sim, tmp_path)), 1, "--csv needs a file name")
