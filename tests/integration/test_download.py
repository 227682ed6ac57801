"""The downloader against the simulator: concurrent REST under the weight limit, the archive path,
its failures, cancel and resume, a 429, and a ``binmon download`` killed with SIGKILL."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from binmon.binance.limiter import WeightLimiter
from binmon.binance.rest import RestClient
from binmon.core.intervals import DAY_MS, HOUR_MS, MINUTE_MS
from binmon.core.models import Kline
from binmon.history.archive_client import ArchiveClient
from binmon.history.backfill import rest_backfill
from binmon.history.download import Downloader, DownloadRequest, Progress, store_clock
from binmon.history.ranges import SeriesKey
from binmon.history.store import CandleStore, default_store_path
from binmon.paths import AppPaths
from binmon.sim.config import SimConfig
from binmon.sim.server import ServerConfig
from binmon.sim.thread import SimThread, run_sim

#: 2024-06-03 00:00:30 UTC, as the shared fixtures.
START_MS = 1_717_372_830_000
SERVER = ServerConfig(pump_interval_s=0.02, shutdown_grace_s=0.3, close_timeout_s=2.0, open_timeout_s=10.0)
#: A tight budget: 60 weight per 1-second window (the client keeps 80 % of it: 24 pages/s).
TIGHT = 60
KEY = SeriesKey.spot("BTCUSDT", "1m")
#: 2024-06-03 00:00, the simulator's day.
DAY0 = START_MS - 30_000


class CountingRest(RestClient):
    """A RestClient that records every kline page it asks for and the most requests in flight."""

    def __init__(self, *a: Any, **kw: Any) -> None:
        super().__init__(*a, **kw)
        self.pages: list[int] = []
        self._flying = 0
        self.max_flying = 0
        self._mx = threading.Lock()

    def klines(self, symbol: str, interval: str, **kw: Any) -> list[Kline]:
        with self._mx:
            if kw.get("limit") != 1:  # not the listing lookup
                self.pages.append(kw["start_ms"])
            self._flying += 1
            self.max_flying = max(self.max_flying, self._flying)
        try:
            return super().klines(symbol, interval, **kw)
        finally:
            with self._mx:
                self._flying -= 1


@pytest.fixture(scope="module")
def tight_sim() -> Iterator[SimThread]:
    """10 days of history, a 60-weight-per-second limit."""
    cfg = SimConfig(seed=7, history_days=10.0, trade_rate=5.0, start_ms=START_MS)
    server = replace(SERVER, weight_limit=TIGHT, weight_window_s=1.0)
    with run_sim(cfg, server) as sim:
        yield sim


#: Six hours into June 3: the REST tail after the last daily file is 360 candles.
ARCHIVE_START_MS = START_MS + 6 * HOUR_MS


@pytest.fixture(scope="module")
def archive_sim() -> Iterator[SimThread]:
    """45 days of history (listed 2024-04-19 06:00): daily April files, May monthly, June days."""
    cfg = SimConfig(seed=11, history_days=45.0, trade_rate=5.0, start_ms=ARCHIVE_START_MS)
    with run_sim(cfg, SERVER) as sim:
        yield sim


@pytest.fixture(scope="module")
def archive_reference(archive_sim: SimThread) -> list[Kline]:
    """Every closed 1m candle of BTCUSDT on the archive sim, as REST serves them."""
    with RestClient(archive_sim.urls.rest) as rest:
        return [k for page in rest.iter_klines("BTCUSDT", "1m", 0) for k in page if k.closed]


def tight_client(sim: SimThread) -> CountingRest:
    return CountingRest(sim.urls.rest, limiter=WeightLimiter(TIGHT, window_s=1.0))


def reference(rest: RestClient, start: int, end: int) -> list[Kline]:
    return [k for page in rest.iter_klines("BTCUSDT", "1m", start, end) for k in page]


def same_history(got: list[Kline], ref: list[Kline]) -> None:
    """``got`` is ``ref``, give or take the newest candle (the sim's clock ran on between the two)."""
    n = min(len(got), len(ref))
    assert abs(len(got) - len(ref)) <= 1
    assert got[:n] == ref[:n]


# ---------------------------------------------------------------- REST


def test_rest_download_is_concurrent_exact_idempotent_and_never_429(
    tight_sim: SimThread, tmp_path: Path
) -> None:
    stats = tight_sim.server.stats
    limited_before = stats.rest_limited
    start, end = DAY0 - 2 * DAY_MS, DAY0 - MINUTE_MS  # 2880 open times: 29 pages of 100
    with (
        tight_client(tight_sim) as rest,
        CandleStore.open(tmp_path / "s.db", clock=store_clock(rest)) as store,
    ):
        dl = Downloader(store, rest, None, workers=4, per_page=100)
        reports: list[Progress] = []
        result = dl.run(DownloadRequest(KEY, start, end, "rest"), progress=reports.append)
        assert not result.cancelled and result.problems == ()
        assert result.rest_requests == 29 and result.already_had == 0
        assert 2800 < result.written <= 2880  # a quiet minute has no candle
        # 61 weight against a 48-per-second budget: the limiter had to spread it over windows,
        # with several requests in flight at a time, and the server never said 429.
        assert rest.limiter.budget < 2 * 29 + 3
        assert rest.max_flying >= 2
        assert rest.stats.rate_limited == 0 and stats.rest_limited == limited_before
        assert reports[0].phase == "planning" and reports[-1].phase == "done"
        assert reports[-1].done_units == reports[-1].total_units == 29
        assert reports[-1].done_candles == reports[-1].total_candles == 2880
        assert len(rest.pages) == len(set(rest.pages)) == 29
        assert store.read_klines(KEY) == reference(rest, start, end)
        assert len(store.confirmed_empty(KEY)) == 2880 - result.written  # quiet minutes are covered
        # Again: nothing to fetch, not even a request.
        requests_before = stats.rest_requests
        again = Downloader(store, rest, None, per_page=100).run(DownloadRequest(KEY, start, end, "rest"))
        assert (again.written, again.rest_requests, again.already_had) == (0, 0, result.written)
        assert stats.rest_requests == requests_before


def test_cancel_keeps_what_was_fetched_and_a_rerun_completes_without_refetching(
    tight_sim: SimThread, tmp_path: Path
) -> None:
    key = SeriesKey.spot("ETHUSDT", "1m")
    start, end = DAY0 - 3 * DAY_MS, DAY0 - DAY_MS - MINUTE_MS  # 2880 open times, 29 pages
    cancel = threading.Event()

    def stop_after_some(p: Progress) -> None:
        if p.done_units >= 6:
            cancel.set()

    tight_sim.faults.set_rest_delay(0.05)
    try:
        with (
            tight_client(tight_sim) as rest,
            CandleStore.open(tmp_path / "s.db", clock=store_clock(rest)) as store,
        ):
            dl = Downloader(store, rest, None, workers=4, per_page=100, progress_interval_s=0.0)
            first = dl.run(DownloadRequest(key, start, end, "rest"), progress=stop_after_some, cancel=cancel)
            assert first.cancelled
            assert 6 <= first.rest_requests < 29
            assert store.count(key) == first.written > 0
            kept = len(rest.pages)
            second = Downloader(store, rest, None, per_page=100).run(DownloadRequest(key, start, end, "rest"))
            assert not second.cancelled and second.already_had == first.written
            # Every page asked exactly once over both runs.
            assert len(rest.pages) == len(set(rest.pages)) == 29 and kept < 29
            want = [k for p in rest.iter_klines("ETHUSDT", "1m", start, end) for k in p]
            assert store.read_klines(key) == want
    finally:
        tight_sim.faults.set_rest_delay(0.0)


def test_a_429_and_5xx_are_obeyed_and_no_page_is_lost(tight_sim: SimThread, tmp_path: Path) -> None:
    start, end = DAY0 - 5 * DAY_MS, DAY0 - 4 * DAY_MS - MINUTE_MS  # 1440 open times, 15 pages
    with (
        tight_client(tight_sim) as rest,
        CandleStore.open(tmp_path / "s.db", clock=store_clock(rest)) as store,
    ):
        rest.server_now_ms()  # measured before the faults: they hit kline pages
        tight_sim.faults.set_rest_errors(429, 2)
        t0 = time.monotonic()
        result = Downloader(store, rest, None, per_page=100).run(DownloadRequest(KEY, start, end, "rest"))
        assert time.monotonic() - t0 >= 0.9  # a 429 without Retry-After: every thread waits 1 s
        assert rest.stats.rate_limited == 2 and not result.cancelled and result.written > 1400
        tight_sim.faults.set_rest_errors(503, 2)
        other = SeriesKey.spot("BNBUSDT", "1m")
        again = Downloader(store, rest, None, per_page=100).run(DownloadRequest(other, start, end, "rest"))
        assert rest.stats.server_errors == 2 and again.written == store.count(other) > 1000
        assert store.read_klines(KEY) == reference(rest, start, end)


# ---------------------------------------------------------------- archive


def run_archive(sim: SimThread, path: Path, source: str) -> tuple[Any, list[Kline], CountingRest]:
    rest = CountingRest(sim.urls.rest)
    with ArchiveClient(sim.urls.rest) as archive, CandleStore.open(path, clock=store_clock(rest)) as store:
        result = Downloader(store, rest, archive).run(DownloadRequest(KEY, 0, None, source))  # type: ignore[arg-type]
        got = store.read_klines(KEY)
    rest.close()
    return result, got, rest


def test_archive_months_days_and_rest_tail_equal_rest(
    archive_sim: SimThread, archive_reference: list[Kline], tmp_path: Path
) -> None:
    result, got, rest = run_archive(archive_sim, tmp_path / "a.db", "archive")
    # April 19-30 daily, May monthly, June 1-2 daily; June 3 (today) from REST.
    assert result.archive_files == 12 + 1 + 2 and result.problems == ()
    assert result.rest_requests == 1 and rest.pages == [DAY0]  # from June 3 00:00
    same_history(got, archive_reference)
    auto, got_auto, _ = run_archive(archive_sim, tmp_path / "b.db", "auto")
    assert auto.archive_files == result.archive_files
    same_history(got_auto, got)


def test_a_corrupt_month_is_reported_and_comes_from_rest(
    archive_sim: SimThread, archive_reference: list[Kline], tmp_path: Path
) -> None:
    archive_sim.faults.set_archive_corrupt(["BTCUSDT-1m-2024-05.zip"])
    try:
        result, got, _ = run_archive(archive_sim, tmp_path / "a.db", "archive")
    finally:
        archive_sim.faults.set_archive_corrupt([])
    assert len(result.problems) == 1 and "BTCUSDT-1m-2024-05.zip" in result.problems[0]
    assert "CHECKSUM" in result.problems[0] or "checksum" in result.problems[0]
    assert result.archive_files == 14
    assert result.rest_requests == 45 + 1  # May's 44,640 candles in pages, and today's tail
    same_history(got, archive_reference)


def test_missing_archive_files_fall_back_to_rest(
    archive_sim: SimThread, archive_reference: list[Kline], tmp_path: Path
) -> None:
    archive_sim.faults.set_archive_missing(["*/daily/*-2024-04-2*"])
    try:
        result, got, _ = run_archive(archive_sim, tmp_path / "a.db", "archive")
    finally:
        archive_sim.faults.set_archive_missing([])
    assert result.problems == ()  # a 404 is "not published": normal, not a problem
    assert result.archive_files == 15 - 10  # April 20-29 gone
    assert result.rest_requests == 10 * 2 + 1  # each day's 1440 candles in 2 pages, and today's tail
    same_history(got, archive_reference)


# ---------------------------------------------------------------- kill -9


def test_a_killed_download_leaves_a_readable_store_and_a_rerun_completes(
    archive_sim: SimThread, archive_reference: list[Kline], tmp_path: Path
) -> None:
    url = archive_sim.urls.rest
    cmd = [sys.executable, "-m", "binmon", "download", "BTCUSDT", "--interval", "1m", "--start", "2024-01-01"]
    cmd += ["--source", "rest", "--rest-url", url, "--archive-url", url, "--basedir", str(tmp_path)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    path = default_store_path(AppPaths.resolve(tmp_path).data_dir)
    archive_sim.faults.set_rest_delay(0.2)
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        deadline = time.monotonic() + 30
        count = 0
        while time.monotonic() < deadline and count < 8000:
            time.sleep(0.1)
            if path.exists():  # opened while the downloader creates and writes it: must wait, not fail
                with CandleStore.open(path) as store:
                    count = store.count(KEY)
    finally:
        p.send_signal(signal.SIGKILL)  # also when the loop failed: never leave it running
        p.communicate(timeout=10)
        archive_sim.faults.set_rest_delay(0.0)
    assert p.returncode == -signal.SIGKILL
    with CandleStore.open(path) as store:
        partial = store.count(KEY)
        assert 8000 <= partial < len(archive_reference)
        # Coverage never claims more than the candles committed with it: the only span
        # without candles is the one before the listing.
        assert [r.end for r in store.confirmed_empty(KEY)] == [archive_reference[0].open_time - MINUTE_MS]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    with CandleStore.open(path) as store:
        same_history(store.read_klines(KEY), archive_reference)


# ---------------------------------------------------------------- backfill and the server clock


def test_backfill_pages_like_a_download_and_saves_closed_candles(
    archive_sim: SimThread, tmp_path: Path
) -> None:
    with (
        RestClient(archive_sim.urls.rest) as rest,
        CandleStore.open(tmp_path / "s.db", clock=store_clock(rest)) as store,
    ):
        now = rest.server_now_ms()
        start = now - now % MINUTE_MS - 1500 * MINUTE_MS  # two pages back
        got = asyncio.run(rest_backfill(rest, store)("BTCUSDT", "1m", start + 1))  # rounded up
        assert got[0].open_time == start + MINUTE_MS
        assert [k.open_time for k in got] == sorted({k.open_time for k in got})
        closed = [k for k in got if k.closed]
        assert len(got) - len(closed) <= 1 and closed[-1].open_time >= start + 1498 * MINUTE_MS
        assert store.read_klines(KEY) == closed
        assert store.coverage(KEY)[0].start == start + MINUTE_MS
        assert store.coverage(KEY)[-1].end <= closed[-1].open_time
        # The old call (no store) still works and stores nothing.
        assert asyncio.run(rest_backfill(rest)("ETHUSDT", "1m", start))[0].open_time == start
        assert store.count(SeriesKey.spot("ETHUSDT", "1m")) == 0


def test_server_now_ms_is_a_lower_bound_of_a_fast_sim_clock() -> None:
    cfg = SimConfig(seed=1, history_days=1.0, trade_rate=1.0, speed=60.0, start_ms=START_MS)
    with run_sim(cfg, SERVER) as sim, RestClient(sim.urls.rest) as rest:
        now = rest.server_now_ms()
        sim_now = sim.call(lambda: sim.server.clock.now_ms())
        assert sim_now - 5_000 <= now <= sim_now  # 60x: a 50 ms round trip is 3 sim seconds
        requests_before = sim.server.stats.rest_requests
        time.sleep(0.2)
        cached = rest.server_now_ms(max_age_s=float("inf"))  # no request: our clock + the offset
        assert sim.server.stats.rest_requests == requests_before
        assert now + 150 <= cached <= sim.call(lambda: sim.server.clock.now_ms())
        fresh = rest.server_now_ms(max_age_s=0.0)  # re-measured: catches up with the 60x clock
        assert sim.server.stats.rest_requests == requests_before + 1
        assert fresh - cached >= 5_000
