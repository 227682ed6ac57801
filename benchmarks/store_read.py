"""Candle store throughput: write and read a million 1m candles. Prints ONE JSON object.

The series is a random walk with 8-decimal prices and ~3 % of minutes missing (real
markets have gaps), written into a fresh store file in a temporary directory:

* ``write_klines_s``: ``upsert`` of 1M Kline objects in one call (Kline -> array included);
  ``write_array_s``: the same data through ``upsert_array`` (the bulk path, no Kline objects),
  into a second series.
* ``read_frame_s``: ``read_frame`` of all 1M candles into a DataFrame, median of ``--repeat``
  runs (target <= 1 s); ``read_frame_min_s`` the best run.
* ``read_frame_cold_s``: the same after dropping the file from the OS page cache
  (``posix_fadvise(DONTNEED)``), median of 3: what the first read after a reboot costs.
* ``read_last_1000_s``: ``read_klines(last=1000)`` (what the chart opens on), median.
* ``upsert_1000_append_s`` / ``upsert_1000_middle_s``: one page of 1000 candles with
  ``fetched=`` coverage into the existing 1M series, after its end and over candles in the
  middle (block rewrite + merge), median.
* ``present_s`` / ``confirmed_empty_s``: coverage queries over the whole series, median.
* ``file_mb``: the store file (plus WAL) after everything.

    python benchmarks/store_read.py [--candles 1000000] [--repeat 5] [--block-candles 4096] [--check]

``--check`` exits 1 when ``read_frame_s`` is above the 1 s target.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from binmon.history import store_blocks
from binmon.history.ranges import SeriesKey, TimeRange
from binmon.history.store import CandleStore

TARGET_READ_FRAME_S = 1.0
START_MS = 1_577_836_800_000  # 2020-01-01 00:00 UTC
MINUTE = 60_000


def make_candles(n: int, seed: int = 1) -> np.ndarray:
    """``n`` 1m candles from START_MS on, ~3 % of the minutes left out (no trades)."""
    rng = np.random.default_rng(seed)
    minutes = np.arange(int(n * 1.05) + 100, dtype=np.int64)
    minutes = minutes[rng.random(minutes.size) >= 0.03][:n]
    arr = store_blocks.empty_array(n)
    arr["open_time"] = START_MS + minutes * MINUTE
    arr["close_time"] = arr["open_time"] + MINUTE - 1
    close = np.round(30_000 + np.cumsum(rng.normal(0, 10, n)), 2)
    openp = np.concatenate(([close[0]], close[:-1]))
    spread = np.round(np.abs(rng.normal(0, 5, n)), 2)
    arr["open"], arr["close"] = openp, close
    arr["high"] = np.maximum(openp, close) + spread
    arr["low"] = np.minimum(openp, close) - spread
    arr["volume"] = np.round(rng.gamma(2.0, 5.0, n), 8)
    arr["quote_volume"] = np.round(arr["volume"] * close, 8)
    arr["trades"] = rng.integers(1, 2000, n)
    arr["taker_buy_base"] = np.round(arr["volume"] * rng.random(n), 8)
    arr["taker_buy_quote"] = np.round(arr["taker_buy_base"] * close, 8)
    return arr


def drop_cache(path: Path) -> None:
    """Ask the kernel to forget the cached pages of ``path`` (Linux; a no-op elsewhere)."""
    if not hasattr(os, "posix_fadvise"):
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def timed(fn: Callable[[], object], repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--candles", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--block-candles", type=int, default=store_blocks.BLOCK_CANDLES)
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args()
    store_blocks.BLOCK_CANDLES = args.block_candles  # new series take their block span from it

    arr = make_candles(args.candles)
    key = SeriesKey.spot("BTCUSDT", "1m")
    key2 = SeriesKey.spot("ETHUSDT", "1m")
    klines = store_blocks.array_to_klines(arr, key.symbol, key.interval)
    last_open = int(arr["open_time"][-1])
    covered = TimeRange(int(arr["open_time"][0]), last_open)
    result: dict[str, object] = {
        "candles": args.candles,
        "block_candles": args.block_candles,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
    }
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "candles.sqlite"
        with CandleStore.open(path) as store:
            t = time.perf_counter()
            store.upsert(key, klines, fetched=covered)
            result["write_klines_s"] = round(time.perf_counter() - t, 3)
            del klines
            t = time.perf_counter()
            store.upsert_array(key2, arr, fetched=covered)
            result["write_array_s"] = round(time.perf_counter() - t, 3)

        # A fresh connection, as a new process would have (the OS page cache stays warm).
        with CandleStore.open(path) as store:
            frames = timed(lambda: store.read_frame(key), args.repeat)
            frame = store.read_frame(key)
            assert len(frame) == args.candles and np.array_equal(frame["close"].to_numpy(), arr["close"])
            read_frame_s = statistics.median(frames)
            result["read_frame_s"] = round(read_frame_s, 3)
            result["read_frame_min_s"] = round(min(frames), 3)
            # Cold: drop the file's pages from the OS cache first (no root needed for clean pages).
            colds = []
            for _ in range(3):
                drop_cache(path)
                colds += timed(lambda: store.read_frame(key), 1)
            result["read_frame_cold_s"] = round(statistics.median(colds), 3)
            result["read_last_1000_s"] = round(
                statistics.median(timed(lambda: store.read_klines(key, last=1000), args.repeat)), 4
            )
            appends = []
            for i in range(args.repeat):
                page = make_candles(1000, seed=10 + i)
                page["open_time"] = last_open + MINUTE * (1 + i * 1000 + np.arange(1000))
                r = TimeRange(int(page["open_time"][0]), int(page["open_time"][-1]))
                appends += timed(functools.partial(store.upsert_array, key, page, fetched=r), 1)
            result["upsert_1000_append_s"] = round(statistics.median(appends), 4)
            middle = []
            for i in range(args.repeat):
                page = arr[args.candles // 2 + i * 5000 :][:1000].copy()
                page["close"] += 1.0
                r = TimeRange(int(page["open_time"][0]), int(page["open_time"][-1]))
                middle += timed(functools.partial(store.upsert_array, key, page, fetched=r), 1)
            result["upsert_1000_middle_s"] = round(statistics.median(middle), 4)
            result["present_s"] = round(statistics.median(timed(lambda: store.present(key), args.repeat)), 3)
            result["confirmed_empty_s"] = round(
                statistics.median(timed(lambda: store.confirmed_empty(key), args.repeat)), 3
            )
        size = sum(p.stat().st_size for p in Path(tmp).iterdir())
        result["file_mb"] = round(size / 2**20, 1)
        result["bytes_per_candle"] = round(size / (2 * args.candles), 1)
    result["read_frame_target_s"] = TARGET_READ_FRAME_S
    print(json.dumps(result))
    return 1 if args.check and read_frame_s > TARGET_READ_FRAME_S else 0


if __name__ == "__main__":
    sys.exit(main())
