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
"""

from __future__ import annotations

import argparse
import json
import platform
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from binmon.binance.rest import RestClient
from binmon.core.intervals import DAY_MS
from binmon.history.archive_client import ArchiveClient
from binmon.history.download import Downloader, DownloadRequest, Source, store_clock
from binmon.history.ranges import SeriesKey
from binmon.history.store import CandleStore


def start_sim(days: int) -> tuple[subprocess.Popen[str], str]:
    cmd = [sys.executable, "-m", "binmon", "sim", "--symbols", "BTCUSDT", "--history-days", str(days + 1)]
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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--days", type=int, default=60)
    ap.add_argument("--interval", default="1m")
    ap.add_argument("--workers", type=int, default=4)
    args = ap.parse_args()
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
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
    print(json.dumps(out))
    return 0 if all(out[n]["rate_limited_429"] == 0 for n in ("rest", "archive_cold", "archive")) else 1


if __name__ == "__main__":
    sys.exit(main())
