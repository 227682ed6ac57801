"""History download throughput from the simulator: REST pages vs the archive. Prints ONE JSON object.

Starts ``binmon sim`` as a separate process (its own core and GIL, default weight limit 6000
per minute) with ``--days + 1`` days of history, then downloads the last ``--days`` days of
``--interval`` candles of BTCUSDT into fresh stores, through the same
:class:`~binmon.history.download.Downloader` the app and ``binmon download`` use:

* ``rest``: ``source="rest"``, pages of 1000 with ``--workers`` requests in flight through the
  weight limiter;
* ``archive_cold``: ``source="archive"`` (monthly + daily files, REST for today) on a simulator
  that has not built the files yet (it builds each zip on first request, ~1 s per month of
  1m: the real data.binance.vision serves prebuilt files);
* ``archive``: the same again into another fresh store, the simulator's files now cached.

Per run: ``candles`` written (an archive run also stores its first day whole, before the
start), ``seconds``, ``candles_per_s``, ``rest_requests`` (kline pages), ``http_requests``
(every REST request incl. retries), ``archive_files``, ``archive_mb``, ``rate_limited_429``
(must be 0) and ``equals_rest``: the stored candles equal the ``rest`` run's where both hold.

    python benchmarks/download.py [--days 60] [--interval 1m] [--workers 4]

Two more scenarios (issue 4's targets), each its own simulator process:

* ``--scenario limited [--weight-limit 300] [--seconds 150]``: REST only, on a simulator whose
  weight limit is low enough that the client's limiter is what bounds the download; enough 1m
  pages to last ``--seconds``. Reports candles/s, requests/min, 429s and the request rate as a
  fraction of two ceilings: the exchange's (``limit / weight`` requests per minute) and the
  client's budget (the limiter lets through ``0.8 x limit``, so its ceiling is 80% of the
  exchange's). Windows are wall-clock minutes: the first and last are partial (a burst at a
  window's start, then a wait), so the rate over whole windows only is reported too.
* ``--scenario year``: one year (365 days, 525,600 candles) of BTCUSDT 1m from the archive
  path (monthly + daily zips, checksums verified, stored), cold (the simulator builds each zip
  on first request) and warm (zips cached); per run the summed thread-seconds spent in
  ``ArchiveClient.download`` (HTTP + checksum), in parsing the zip and in ``CandleStore.upsert_array``.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from binmon.binance.rest import KLINES_MAX, RestClient, request_weight
from binmon.core.intervals import DAY_MS
from binmon.history import kline_io
from binmon.history.archive_client import ArchiveClient
from binmon.history.download import Downloader, DownloadRequest, Source, store_clock
from binmon.history.ranges import SeriesKey
from binmon.history.store import CandleStore


def start_sim(days: int, *extra: str) -> tuple[subprocess.Popen[str], str]:
    cmd = [sys.executable, "-m", "binmon", "sim", "--symbols", "BTCUSDT", "--history-days", str(days + 1)]
    cmd += list(extra)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        proc.kill()
        raise SystemExit("binmon sim did not start")
    return proc, json.loads(line)["rest"]


def one_run(url: str, key: SeriesKey, days: int, source: Source, workers: int, tmp: Path) -> dict[str, Any]:
    with (
        RestClient(url) as rest,
        ArchiveClient(url) as archive,
        CandleStore.open(tmp / f"{source}-{time.monotonic_ns()}.db", clock=store_clock(rest)) as store,
    ):
        start = rest.server_now_ms() - days * DAY_MS
        dl = Downloader(store, rest, archive, workers=workers)
        t0 = time.perf_counter()
        result = dl.run(DownloadRequest(key, start, None, source))
        seconds = time.perf_counter() - t0
        frame = store.read_frame(key)
        return {
            "candles": result.written,
            "seconds": round(seconds, 3),
            "candles_per_s": round(result.written / seconds) if seconds else None,
            "rest_requests": result.rest_requests,
            "http_requests": rest.stats.requests,
            "archive_files": result.archive_files,
            "archive_mb": round(archive.stats.bytes / 1e6, 2),
            "rate_limited_429": rest.stats.rate_limited,
            "problems": list(result.problems),
            "_frame": frame,
        }


def run_limited(args: argparse.Namespace) -> dict[str, Any]:
    """REST download bounded by a low weight limit: throughput vs the ceilings (see the docstring)."""
    key = SeriesKey.spot("BTCUSDT", "1m")
    limit = args.weight_limit
    weight = request_weight("/api/v3/klines", {})
    budget = int(0.8 * limit)  # WeightLimiter's default safety
    pages = math.ceil(args.seconds / 60 * budget / weight)
    days = math.ceil(pages * KLINES_MAX / (DAY_MS // 60_000))
    proc, url = start_sim(days + 1, "--weight-limit", str(limit))
    sent: list[float] = []  # wall time each request was let through by the limiter
    try:
        with (
            tempfile.TemporaryDirectory() as d,
            RestClient(url) as rest,
            ArchiveClient(url) as archive,
            CandleStore.open(Path(d) / "limited.db", clock=store_clock(rest)) as store,
        ):
            rest.exchange_info(["BTCUSDT"])  # as `binmon download` does: the limiter learns the limit
            assert rest.limiter.limit == limit, rest.limiter.limit
            acquire = rest.limiter.acquire

            def timed_acquire(w: int, **kw: Any) -> Any:
                r = acquire(w, **kw)
                sent.append(time.time())
                return r

            rest.limiter.acquire = timed_acquire  # type: ignore[method-assign]
            start = rest.server_now_ms() - pages * KLINES_MAX * 60_000
            before = rest.stats.requests
            dl = Downloader(store, rest, archive, workers=args.workers)
            t0 = time.perf_counter()
            result = dl.run(DownloadRequest(key, start, None, "rest"))
            seconds = time.perf_counter() - t0
            http = rest.stats.requests - before
            rate_limited = rest.stats.rate_limited
    finally:
        stop_sim(proc)
    rpm = http / seconds * 60
    exchange_rpm = limit / weight
    budget_rpm = budget / weight
    # Whole wall-clock minutes strictly inside the run: the steady state, free of edge effects.
    windows: dict[int, int] = {}
    for t in sent:
        windows[int(t // 60)] = windows.get(int(t // 60), 0) + 1
    inner = sorted(windows)[1:-1]
    inner_rpm = sum(windows[w] for w in inner) / len(inner) if inner else None
    return {
        "benchmark": "download-limited",
        "command": f"python benchmarks/download.py --scenario limited --weight-limit {limit} "
        f"--seconds {args.seconds:g} --workers {args.workers}",
        "exchange_weight_limit_per_min": limit,
        "client_budget_per_min": budget,
        "weight_per_request": weight,
        "candles": result.written,
        "seconds": round(seconds, 2),
        "candles_per_s": round(result.written / seconds),
        "requests": http,
        "kline_pages": result.rest_requests,
        "requests_per_min": round(rpm, 1),
        "ceiling_exchange_rpm": exchange_rpm,
        "ceiling_client_budget_rpm": budget_rpm,
        "fraction_of_exchange_ceiling": round(rpm / exchange_rpm, 3),
        "fraction_of_client_budget": round(rpm / budget_rpm, 3),
        "requests_per_window": [windows[w] for w in sorted(windows)],
        "whole_windows_rpm": inner_rpm,
        "whole_windows_fraction_of_exchange_ceiling": _ratio(inner_rpm, exchange_rpm),
        "whole_windows_fraction_of_client_budget": _ratio(inner_rpm, budget_rpm),
        "rate_limited_429": rate_limited,
        "problems": list(result.problems),
        "ok": rate_limited == 0 and not result.problems,
    }


def run_year(args: argparse.Namespace) -> dict[str, Any]:
    """One year of 1m candles through the archive path, cold then warm (see the docstring)."""
    key = SeriesKey.spot("BTCUSDT", "1m")
    days = 365
    proc, url = start_sim(days + 1)
    runs: dict[str, Any] = {}
    parse = kline_io.read_kline_zip_array
    try:
        with tempfile.TemporaryDirectory() as d:
            for name in ("archive_cold", "archive_warm"):
                spent = {"download": 0.0, "parse": 0.0, "store": 0.0}
                with (
                    RestClient(url) as rest,
                    ArchiveClient(url) as archive,
                    CandleStore.open(Path(d) / f"{name}.db", clock=store_clock(rest)) as store,
                ):
                    archive.download = _timed(archive.download, spent, "download")  # type: ignore[method-assign]
                    # Downloader imports it at call time: patch the module attribute.
                    kline_io.read_kline_zip_array = _timed(parse, spent, "parse")
                    store.upsert_array = _timed(store.upsert_array, spent, "store")  # type: ignore[method-assign]
                    start = rest.server_now_ms() - days * DAY_MS
                    dl = Downloader(store, rest, archive, workers=args.workers)
                    t0 = time.perf_counter()
                    result = dl.run(DownloadRequest(key, start, None, "archive"))
                    seconds = time.perf_counter() - t0
                    in_range = int(store.read_frame(key, start_ms=start).shape[0])
                    runs[name] = {
                        "candles_written": result.written,
                        "candles_in_requested_year": in_range,
                        "seconds": round(seconds, 2),
                        "candles_per_s": round(result.written / seconds),
                        "archive_files": result.archive_files,
                        "archive_mb": round(archive.stats.bytes / 1e6, 2),
                        "rest_requests": result.rest_requests,
                        "checksum_mismatches": archive.stats.mismatches,
                        "download_verify_thread_s": round(spent["download"], 2),
                        "parse_thread_s": round(spent["parse"], 2),
                        "store_thread_s": round(spent["store"], 2),
                        "rate_limited_429": rest.stats.rate_limited,
                        "problems": list(result.problems),
                    }
    finally:
        kline_io.read_kline_zip_array = parse
        stop_sim(proc)
    ok = all(r["rate_limited_429"] == 0 and not r["problems"] for r in runs.values())
    return {
        "benchmark": "download-year",
        "command": f"python benchmarks/download.py --scenario year --workers {args.workers}",
        "target_s": 15,
        "workers": args.workers,
        **runs,
        "ok": ok,
    }


def _ratio(a: float | None, b: float) -> float | None:
    return round(a / b, 3) if a is not None else None


def _timed(fn: Any, spent: dict[str, float], name: str) -> Any:
    """``fn``, adding the seconds each call takes to ``spent[name]`` (thread-seconds: calls overlap)."""

    lock = threading.Lock()

    def call(*a: Any, **kw: Any) -> Any:
        t = time.perf_counter()
        try:
            return fn(*a, **kw)
        finally:
            with lock:
                spent[name] += time.perf_counter() - t

    return call


def stop_sim(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--scenario", choices=["throughput", "limited", "year"], default="throughput")
    ap.add_argument("--days", type=int, default=60)
    ap.add_argument("--interval", default="1m")
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--weight-limit", type=int, default=300, help="limited: the simulator's weight limit")
    ap.add_argument("--seconds", type=float, default=150.0, help="limited: how long the download should last")
    args = ap.parse_args()
    if args.scenario != "throughput":
        out = run_limited(args) if args.scenario == "limited" else run_year(args)
        print(json.dumps(out))
        return 0 if out.get("ok") else 1
    key = SeriesKey.spot("BTCUSDT", args.interval)
    proc, url = start_sim(args.days)
    out: dict[str, Any] = {
        "benchmark": "download",
        "days": args.days,
        "interval": args.interval,
        "workers": args.workers,
        "python": platform.python_version(),
    }
    try:
        with tempfile.TemporaryDirectory() as d:
            runs = {}
            for name, source in (("rest", "rest"), ("archive_cold", "archive"), ("archive", "archive")):
                runs[name] = one_run(url, key, args.days, source, args.workers, Path(d))  # type: ignore[arg-type]
            ref = runs["rest"]["_frame"]
            for name, r in runs.items():
                frame = r.pop("_frame")
                # The runs' spans differ a little (whole first day, a later end): compare where both hold.
                lo, hi = (
                    max(frame.open_time.min(), ref.open_time.min()),
                    min(frame.open_time.max(), ref.open_time.max()),
                )
                a = frame[(frame.open_time >= lo) & (frame.open_time <= hi)].reset_index(drop=True)
                b = ref[(ref.open_time >= lo) & (ref.open_time <= hi)].reset_index(drop=True)
                r["equals_rest"] = bool(a.equals(b))
                out[name] = r
    finally:
        stop_sim(proc)
    print(json.dumps(out))
    return 0 if all(out[n]["rate_limited_429"] == 0 for n in ("rest", "archive_cold", "archive")) else 1


if __name__ == "__main__":
    sys.exit(main())
