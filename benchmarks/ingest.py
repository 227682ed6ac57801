"""Client ingest rate from the simulator, sustained, with backlog and memory over time.

Starts ``binmon sim`` as a separate process (so the simulator does not share the
client's core), subscribes the real StreamClient to trade + kline_1m streams of N
symbols, and for ``--duration`` seconds counts decoded events, the backlog (receive
time minus the frame's event time; both clocks are this machine's) and the client's
RSS. Prints one JSON object. A backlog that grows over the run means the client
cannot keep up; RSS growth means it leaks.

    python benchmarks/ingest.py --duration 60 --rate 8000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

from binmon.binance.codec import kline_stream, trade_stream
from binmon.binance.stream import StreamClient
from binmon.core.models import KlineEvent, StreamEvent, TradeEvent

SYMBOLS = ["BTCUSDT", "ETHUSDT", "BNBUSDT", "SOLUSDT", "XRPUSDT"]


def rss_mb() -> float:
    """Resident set size of this process in MiB (Linux)."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


async def bench(ws: str, duration: float, warmup: float, rate: float) -> dict[str, object]:
    count = 0
    # Preallocated and touched up front, so the benchmark's own bookkeeping does not show
    # up as growth in the client's RSS.
    cap = int(rate * (duration + warmup) * 2) + 10_000
    lag_buf = np.empty(cap)
    lag_buf.fill(0.0)
    n_lags = 0
    per_second: list[int] = []
    lag_by_second: list[float] = []
    rss: list[float] = []

    def on_event(ev: StreamEvent) -> None:
        nonlocal count, n_lags
        count += 1
        if isinstance(ev, TradeEvent | KlineEvent) and n_lags < cap:
            lag_buf[n_lags] = time.time() * 1000 - ev.event_time
            n_lags += 1

    client = StreamClient(ws, on_event=on_event)
    streams = [trade_stream(s) for s in SYMBOLS] + [kline_stream(s, "1m") for s in SYMBOLS]
    async with client:
        await client.subscribe(streams)
        await asyncio.sleep(warmup)
        count, n_lags = 0, 0
        t0 = time.perf_counter()
        for _ in range(int(duration)):
            c0, l0 = count, n_lags
            await asyncio.sleep(1.0)
            per_second.append(count - c0)
            lag_by_second.append(float(np.median(lag_buf[l0:n_lags])) if n_lags > l0 else float("nan"))
            rss.append(rss_mb())
        elapsed = time.perf_counter() - t0
        stats = client.stats
    lags = lag_buf[:n_lags]
    n = len(per_second)
    third = max(1, n // 3)
    return {
        "benchmark": "client_ingest",
        "symbols": len(SYMBOLS),
        "streams": len(streams),
        "seconds": round(elapsed, 2),
        "events": sum(per_second),
        "events_per_s": round(sum(per_second) / elapsed, 1),
        "events_per_s_min_1s": min(per_second) if per_second else 0,
        "backlog_ms_p50": round(float(np.percentile(lags, 50)), 1) if n_lags else None,
        "backlog_ms_p99": round(float(np.percentile(lags, 99)), 1) if n_lags else None,
        "backlog_ms_median_first_third": round(statistics.median(lag_by_second[:third]), 1),
        "backlog_ms_median_last_third": round(statistics.median(lag_by_second[-third:]), 1),
        "rss_mb_first": round(rss[0], 1) if rss else None,
        "rss_mb_median_first_third": round(statistics.median(rss[:third]), 1) if rss else None,
        "rss_mb_median_last_third": round(statistics.median(rss[-third:]), 1) if rss else None,
        "rss_mb_last": round(rss[-1], 1) if rss else None,
        "rss_mb_max": round(max(rss), 1) if rss else None,
        "malformed": getattr(stats, "malformed", None),
        "reconnects": getattr(stats, "reconnects", None),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=60.0)
    ap.add_argument("--warmup", type=float, default=3.0)
    ap.add_argument(
        "--rate",
        type=float,
        default=8000.0,
        help="nominal total trade rate of the simulator (its market has busy and quiet spells: "
        "the offered rate varies around this)",
    )
    args = ap.parse_args()
    per_symbol = args.rate / len(SYMBOLS)
    sim = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "binmon",
            "sim",
            "--symbols",
            ",".join(SYMBOLS),
            "--trade-rate",
            str(per_symbol),
            "--history-days",
            "1",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert sim.stdout is not None
        urls = json.loads(sim.stdout.readline())
        result = asyncio.run(bench(urls["ws"], args.duration, args.warmup, args.rate))
        result["sim_rate_target"] = args.rate
        print(json.dumps(result))
    finally:
        sim.terminate()
        sim.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
