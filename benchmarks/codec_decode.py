"""Decoder throughput: combined kline frames, trade frames and ``!miniTicker@arr`` arrays.

Prints ONE JSON object. The frames are built from a real Binance kline frame (LRCBTC,
fixtures/real/cryptofeed/BINANCE.ws.1.0) with varied symbols, times and 8-decimal
prices, as ``str`` (what the websockets library hands the client for text frames).
Each figure is the best of ``--repeat`` passes over all frames, one Decoder per pass,
events dropped as they come (a consumer keeps none of them either).

    python benchmarks/codec_decode.py [--frames 50000] [--repeat 5] [--tickers 1500] [--check]

``--check`` exits 1 when combined kline decoding is under the 150k frames/s target.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import sys
import time
from collections.abc import Callable
from typing import Any

import orjson

from binmon.binance.codec import Decoder

TARGET_KLINE_FRAMES_PER_S = 150_000
BASES = ("BTC", "ETH", "LRC", "NKN", "XRP", "SOL", "DOGE")
SYMBOLS = [f"{base}{quote}" for base in BASES for quote in ("USDT", "BTC")]


def decimal(rng: random.Random, scale: float) -> str:
    return f"{rng.random() * scale:.8f}"


def kline_frames(n: int, rng: random.Random) -> list[str]:
    frames = []
    for i in range(n):
        sym = SYMBOLS[i % len(SYMBOLS)]
        t = 1633998480000 + (i // len(SYMBOLS)) * 60_000
        k = {"t": t, "T": t + 59_999, "s": sym, "i": "1m", "f": 12368013 + i, "L": 12368013 + i + 5,
             "o": decimal(rng, 0.0001), "c": decimal(rng, 0.0001), "h": decimal(rng, 0.0001),
             "l": decimal(rng, 0.0001), "v": decimal(rng, 10_000), "n": rng.randint(1, 500), "x": i % 30 == 0,
             "q": decimal(rng, 1), "V": decimal(rng, 5_000), "Q": decimal(rng, 0.5), "B": "0"}  # fmt: skip
        data = {"e": "kline", "E": t + 1234, "s": sym, "k": k}
        frames.append(orjson.dumps({"stream": f"{sym.lower()}@kline_1m", "data": data}).decode())
    return frames


def trade_frames(n: int, rng: random.Random) -> list[str]:
    frames = []
    for i in range(n):
        sym = SYMBOLS[i % len(SYMBOLS)]
        data = {"e": "trade", "E": 1672515782136 + i, "s": sym, "t": 12345 + i, "p": decimal(rng, 30_000),
                "q": decimal(rng, 2), "T": 1672515782136 + i, "m": i % 2 == 0, "M": True}  # fmt: skip
        frames.append(orjson.dumps({"stream": f"{sym.lower()}@trade", "data": data}).decode())
    return frames


def mini_ticker_frames(n: int, tickers: int, rng: random.Random) -> list[str]:
    frames = []
    for i in range(n):
        arr = []
        for j in range(tickers):
            arr.append({"e": "24hrMiniTicker", "E": 1672515782136 + i * 1000, "s": f"SYM{j}USDT",
                        "c": decimal(rng, 100), "o": decimal(rng, 100), "h": decimal(rng, 100),
                        "l": decimal(rng, 100), "v": decimal(rng, 1e6), "q": decimal(rng, 1e7)})  # fmt: skip
        frames.append(orjson.dumps({"stream": "!miniTicker@arr", "data": arr}).decode())
    return frames


def measure(frames: list[str], repeat: int) -> dict[str, Any]:
    """Best-of-``repeat`` wall time to feed every frame to a fresh Decoder."""
    best = float("inf")
    for _ in range(repeat):
        dec = Decoder()
        feed: Callable[[str], list[Any]] = dec.feed
        start = time.perf_counter()
        for frame in frames:
            feed(frame)
        best = min(best, time.perf_counter() - start)
        # A benchmark of a decoder that drops frames would measure nothing.
        if dec.stats.malformed or dec.stats.events != len(frames):
            raise SystemExit(f"decoder rejected benchmark frames: {dec.stats}")
    return {"frames": len(frames), "seconds": round(best, 4), "frames_per_s": round(len(frames) / best)}


def main(argv: list[str] | None = None) -> int:
    """Run the three measurements and print one JSON object; see the module docstring."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=50_000, help="kline and trade frames per pass")
    ap.add_argument("--repeat", type=int, default=5, help="passes; the best one is reported")
    ap.add_argument("--tickers", type=int, default=1500, help="tickers per !miniTicker@arr frame")
    ap.add_argument("--check", action="store_true", help="exit 1 if kline decoding misses the target")
    args = ap.parse_args(argv)
    rng = random.Random(20211012)
    kline = measure(kline_frames(args.frames, rng), args.repeat)
    trade = measure(trade_frames(args.frames, rng), args.repeat)
    mini = measure(mini_ticker_frames(max(1, args.frames // 1000), args.tickers, rng), args.repeat)
    mini["tickers_per_frame"] = args.tickers
    mini["tickers_per_s"] = round(mini["frames_per_s"] * args.tickers)
    result = {
        "benchmark": "codec_decode",
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "combined_kline": kline,
        "combined_trade": trade,
        "mini_ticker_arr": mini,
        "target_kline_frames_per_s": TARGET_KLINE_FRAMES_PER_S,
        "target_met": kline["frames_per_s"] >= TARGET_KLINE_FRAMES_PER_S,
    }
    sys.stdout.write(orjson.dumps(result).decode() + "\n")
    return 1 if args.check and not result["target_met"] else 0


if __name__ == "__main__":
    sys.exit(main())
