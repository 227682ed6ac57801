"""The simulator's data.binance.vision, end to end through ArchiveClient and the sim's REST API.

The sim clock starts on Monday 2025-02-03 00:00:30 with 40 days of history (listing on
2024-12-25), so one run has: a partial listing month in milliseconds (2024-12), a whole
month in microseconds (2025-01), complete days of the current month, and a current day and
month that must not be served yet.
"""

from __future__ import annotations

import calendar
import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Iterator
from dataclasses import replace

import pytest
import requests

from binmon.binance.limiter import Cancelled
from binmon.binance.rest import RestClient
from binmon.core.intervals import DAY_MS
from binmon.core.models import Kline
from binmon.history.archive import (
    ArchiveFile,
    ChecksumMismatch,
    archive_file,
    parse_checksum,
    plan_archive,
    read_kline_zip,
)
from binmon.history.archive_client import ArchiveClient
from binmon.sim.archive import SimArchive
from binmon.sim.clock import ManualClock
from binmon.sim.config import DEFAULT_SYMBOLS, SimConfig
from binmon.sim.faults import Faults
from binmon.sim.thread import SimThread


def ms(y: int, mo: int, d: int = 1) -> int:
    return calendar.timegm((y, mo, d, 0, 0, 0)) * 1000


START_MS = ms(2025, 2, 3) + 30_000
LISTING_MS = ms(2024, 12, 25)
SYMBOLS = tuple(s for s in DEFAULT_SYMBOLS if s.symbol in ("BTCUSDT", "ETHBTC", "MATICUSDT"))


@pytest.fixture
def sim_config() -> SimConfig:
    return SimConfig(seed=11, history_days=40.0, trade_rate=5.0, start_ms=START_MS, symbols=SYMBOLS)


@pytest.fixture
def archive(sim_thread: SimThread) -> Iterator[ArchiveClient]:
    with ArchiveClient(sim_thread.urls.rest, max_retries=1, backoff=lambda _: 0.0) as client:
        yield client


@pytest.fixture
def rest(sim_thread: SimThread) -> Iterator[RestClient]:
    with RestClient(sim_thread.urls.rest) as client:
        yield client


def rest_span(rest: RestClient, f: ArchiveFile) -> list[Kline]:
    return [k for page in rest.iter_klines(f.symbol, f.interval, f.start_ms, f.end_ms) for k in page]


def raw_csv(data: bytes) -> list[list[str]]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        (info,) = zf.infolist()
        assert info.filename.endswith(".csv")
        return [line.split(",") for line in zf.read(info).decode().splitlines()]


# ---------------------------------------------------------------- contents


@pytest.mark.parametrize(
    ("interval", "period", "date"),
    [("1m", "monthly", "2025-01"), ("1m", "monthly", "2024-12"), ("1h", "daily", "2025-02-02"),
     ("15m", "daily", "2024-12-31"), ("1w", "monthly", "2025-01"), ("1d", "monthly", "2025-01")],
)  # fmt: skip
def test_files_equal_rest_rows(
    archive: ArchiveClient, rest: RestClient, interval: str, period: str, date: str
) -> None:
    f = archive_file("BTCUSDT", interval, period, date)
    got = archive.fetch(f)
    assert got is not None and got
    expected = rest_span(rest, f)
    assert got == expected  # every field, `closed` included: a complete period is all closed
    assert all(k.closed for k in got)
    if date == "2024-12":  # the listing month: served, from the listing on
        assert got[0].open_time >= LISTING_MS


def test_2025_files_use_microseconds_2024_files_milliseconds(archive: ArchiveClient) -> None:
    jan = archive.download(archive_file("BTCUSDT", "1h", "daily", "2025-01-01"))
    dec = archive.download(archive_file("BTCUSDT", "1h", "daily", "2024-12-31"))
    assert jan is not None and dec is not None
    row = raw_csv(jan)[0]
    assert len(row) == 12 and len(row[0]) == 16 and row[0] == str(ms(2025, 1, 1) * 1000)
    assert row[6] == str((ms(2025, 1, 1) + 3_600_000) * 1000 - 1)  # the candle's last microsecond
    assert raw_csv(dec)[0][0] == str(ms(2024, 12, 31))
    assert read_kline_zip(jan, "BTCUSDT", "1h")[0].open_time == ms(2025, 1, 1)


def test_1M_uses_1mo_and_matches_rest(
    sim_thread: SimThread, archive: ArchiveClient, rest: RestClient
) -> None:
    f = archive_file("ETHBTC", "1M", "monthly", "2025-01")
    assert "/1mo/ETHBTC-1mo-2025-01.zip" in f.path
    got = archive.fetch(f)
    assert got is not None and len(got) == 1 and got == rest_span(rest, f)
    r = requests.get(
        f"{sim_thread.urls.rest}/data/spot/monthly/klines/ETHBTC/1M/ETHBTC-1M-2025-01.zip", timeout=10
    )
    assert r.status_code == 404


def test_checksum_file_is_sha256sum_format(sim_thread: SimThread) -> None:
    f = archive_file("BTCUSDT", "4h", "monthly", "2025-01")
    base = sim_thread.urls.rest
    c = requests.get(f"{base}/{f.checksum_path}", timeout=10)
    z = requests.get(f"{base}/{f.path}", timeout=10)
    assert c.status_code == z.status_code == 200
    assert z.headers["Content-Type"] == "application/zip"
    assert c.text.endswith(f"  {f.name}\n")
    assert parse_checksum(c.text, name=f.name) == hashlib.sha256(z.content).hexdigest()
    # Built once, then served from the cache: byte-identical.
    assert requests.get(f"{base}/{f.path}", timeout=10).content == z.content


# ---------------------------------------------------------------- what is not there


@pytest.mark.parametrize(
    ("symbol", "interval", "period", "date"),
    [
        ("BTCUSDT", "1m", "daily", "2025-02-03"),  # today: not over
        ("BTCUSDT", "1m", "monthly", "2025-02"),  # this month: not over
        ("BTCUSDT", "1w", "monthly", "2025-02"),
        ("BTCUSDT", "1m", "monthly", "2024-11"),  # before the listing
        ("BTCUSDT", "1h", "daily", "2024-12-24"),
        ("MATICUSDT", "1h", "daily", "2025-02-02"),  # halted: no candle that day, no file
        ("NOPEUSDT", "1h", "daily", "2025-02-02"),  # unknown symbol
    ],
)
def test_not_published_is_none_and_a_404(
    sim_thread: SimThread, archive: ArchiveClient, symbol: str, interval: str, period: str, date: str
) -> None:
    f = archive_file(symbol, interval, period, date)
    assert archive.fetch(f) is None
    r = requests.get(f"{sim_thread.urls.rest}/{f.path}", timeout=10)
    assert r.status_code == 404 and r.headers["Content-Type"] == "application/xml"
    assert "<Code>NoSuchKey</Code>" in r.text and f"<Key>{f.path}</Key>" in r.text


def test_other_archive_paths_are_404(sim_thread: SimThread) -> None:
    for path in (
        "/data/spot/monthly/trades/BTCUSDT/BTCUSDT-trades-2025-01.zip",
        "/data/futures/um/monthly/klines/BTCUSDT/1m/BTCUSDT-1m-2025-01.zip",  # the sim is spot only
        "/data/spot/daily/klines/BTCUSDT/1w/BTCUSDT-1w-2025-01-06.zip",
        "/data/",
    ):
        assert requests.get(sim_thread.urls.rest + path, timeout=10).status_code == 404, path


# ---------------------------------------------------------------- fault switches


def test_corrupt_switch_gives_checksum_mismatch(sim_thread: SimThread, archive: ArchiveClient) -> None:
    bad = archive_file("BTCUSDT", "1h", "daily", "2025-02-01")
    good = archive_file("BTCUSDT", "1h", "daily", "2025-02-02")
    sim_thread.faults.set_archive_corrupt([bad.name])
    with pytest.raises(ChecksumMismatch, match=bad.name) as info:
        archive.fetch(bad)
    assert "\n" not in str(info.value)
    assert archive.stats.mismatches == 2  # fetched twice: a replaced file would heal, this one does not
    assert archive.fetch(good)
    # The corrupted zip is still a valid zip: only the checksum can tell.
    r = requests.get(f"{sim_thread.urls.rest}/{bad.path}", timeout=10)
    assert len(read_kline_zip(r.content, "BTCUSDT", "1h")) == 23
    sim_thread.faults.set_archive_corrupt([])
    got = archive.fetch(bad)
    assert got is not None and len(got) == 24


def test_missing_switch_and_globs_over_http(sim_thread: SimThread, archive: ArchiveClient) -> None:
    base = sim_thread.urls.rest
    day = archive_file("BTCUSDT", "1h", "daily", "2025-02-01")
    month = archive_file("BTCUSDT", "1h", "monthly", "2025-01")
    r = requests.get(
        f"{base}/_sim/fault", params={"name": "archive_missing", "value": "*/daily/*"}, timeout=10
    )
    assert r.status_code == 200 and r.json()["ok"] is True
    assert archive.fetch(day) is None
    assert archive.fetch(month)
    state = requests.get(f"{base}/_sim/state", timeout=10).json()["archive"]
    assert state["archive_missing"] == ["*/daily/*"] and state["archive_corrupt"] == []
    assert state["not_found"] >= 1 and state["built"] >= 1
    requests.get(f"{base}/_sim/fault", params={"name": "archive_corrupt", "value": "all"}, timeout=10)
    with pytest.raises(ChecksumMismatch):
        archive.fetch(month)
    for name in ("archive_missing", "archive_corrupt"):
        requests.get(f"{base}/_sim/fault", params={"name": name, "value": "off"}, timeout=10)
    assert archive.fetch(day) and archive.fetch(month)


def test_archive_is_not_weight_limited_but_delay_applies(
    sim_thread: SimThread, archive: ArchiveClient
) -> None:
    f = archive_file("ETHBTC", "1d", "monthly", "2025-01")
    assert archive.fetch(f)
    before = sim_thread.server.stats.rest_requests
    sim_thread.faults.set_rest_delay(0.3)
    try:
        t0 = time.monotonic()
        assert archive.fetch(f)
        assert time.monotonic() - t0 >= 0.6  # two requests: .CHECKSUM and zip
    finally:
        sim_thread.faults.set_rest_delay(0)
    assert sim_thread.server.stats.rest_requests == before  # never counted as API requests


def test_cancel_stops_a_fetch(sim_thread: SimThread, archive: ArchiveClient) -> None:
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        archive.fetch(archive_file("BTCUSDT", "1h", "daily", "2025-02-02"), cancel)


# ---------------------------------------------------------------- the plan, end to end


def test_plan_then_fetch_then_rest_tail_equals_rest(
    sim_thread: SimThread, archive: ArchiveClient, rest: RestClient
) -> None:
    now = rest.server_time()
    start = LISTING_MS - 7 * DAY_MS  # before the listing: those files are 404s
    files, rest_from = plan_archive("ETHBTC", "1h", start, now, now)
    assert [f.date for f in files if f.period == "monthly"] == ["2025-01"]
    assert len(files) == 14 + 1 + 2 and rest_from == ms(2025, 2, 3)  # Dec 18-31, January, Feb 1-2
    got: list[Kline] = []
    missing = []
    for f in files:
        ks = archive.fetch(f)
        if ks is None:
            missing.append(f.date)
        got.extend(ks or [])
    assert missing == [f"2024-12-{d}" for d in range(18, 25)]  # the days before the listing
    assert rest_from is not None
    tail = [k for page in rest.iter_klines("ETHBTC", "1h", rest_from, now) for k in page]
    everything = [k for page in rest.iter_klines("ETHBTC", "1h", start, now) for k in page]
    assert [k for k in got if k.open_time >= start] + tail == everything


# ---------------------------------------------------------------- the command line


def test_cli_fault_flags() -> None:
    p = subprocess.Popen(
        [sys.executable, "-m", "binmon", "sim", "--symbols", "BTCUSDT", "--history-days", "3",
         "--fault", "archive_missing=BTCUSDT-1h-*", "--fault", "archive_corrupt"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    try:
        assert p.stdout is not None
        urls = json.loads(p.stdout.readline())
        state = requests.get(urls["rest"] + "/_sim/state", timeout=10).json()["archive"]
        assert state["archive_missing"] == ["BTCUSDT-1h-*"] and state["archive_corrupt"] == ["*"]
        now = requests.get(urls["rest"] + "/api/v3/time", timeout=10).json()["serverTime"]
        day = archive_file(
            "BTCUSDT", "1h", "daily", time.strftime("%Y-%m-%d", time.gmtime(now / 1000 - 86400))
        )
        with ArchiveClient(urls["rest"]) as client:
            assert client.fetch(day) is None
            with pytest.raises(ChecksumMismatch):
                client.fetch(replace(day, interval="4h"))
    finally:
        p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=15)
    assert p.returncode == 0 and "Traceback" not in err


# ---------------------------------------------------------------- capture mode's row source


class _RowsOnly:
    """What capture mode gives the archive: symbols and a row source, no listing time."""

    symbols = ()

    def symbol(self, name: str) -> object | None:
        return object() if name == "LRCBTC" else None


async def test_capture_mode_row_source_is_used_verbatim() -> None:
    day = ms(2024, 6, 2)
    rows = [[day + h * 3_600_000, "0.00000638", "0.00000640", "0.00000630", "0.00000639", "1000.00000000",
             day + (h + 1) * 3_600_000 - 1, "0.00638000", 3, "500.00000000", "0.00319000", "0"]
            for h in range(0, 24, 2)]  # fmt: skip

    def kline_rows(sym: str, iv: str, start: int | None, end: int | None, limit: int) -> list[list[object]]:
        assert (sym, iv, limit) == ("LRCBTC", "1h", 1000)
        return [r for r in rows if (start or 0) <= int(r[0]) <= (end or 2**62)][:limit]

    clock = ManualClock(day + DAY_MS - 1)
    archive = SimArchive(_RowsOnly(), clock, Faults(), kline_rows)
    f = archive_file("LRCBTC", "1h", "daily", "2024-06-02")
    assert (await archive.handle("/" + f.path)).status_code == 404  # the day is not over
    clock.advance(1)
    resp = await archive.handle("/" + f.path + "?x=1")
    assert resp.status_code == 200
    assert raw_csv(resp.body) == [[str(v) for v in r] for r in rows]  # 2024: milliseconds, values as recorded
    assert (
        await archive.handle("/" + archive_file("LRCBTC", "1h", "daily", "2024-06-01").path)
    ).status_code == 404
