"""Indicator engine costs with 100k bars and 10 indicators. Prints ONE JSON object.

The series is a seeded random walk of 1m candles. The 10 indicators are a typical chart:
SMA 20, EMA 50, BBANDS, RSI, MACD, STOCH, ATR, ADX, OBV, MFI (TA-Lib defaults otherwise).

* ``load_ms``: ``Engine.load`` of the 10 over all bars (median of ``--repeat``); what a worker
  thread does on opening a chart (``build_engine``).
* ``append_ms`` / ``replace_ms``: ``Engine.update`` for a new bar (its first, partial version)
  and for the forming bar changing, p50 / p99 / max over ``--updates`` bars each.
* ``flush_ms``: what one coalesced chart flush costs the indicator side: ``update`` of the
  latest bar + ``chart_points`` (the values handed to the chart), p50 / p99 / max. Target
  p99 <= 5 ms.
* ``add_ms``: adding one indicator: ``Engine.add`` (full computation over all bars) +
  ``chart_series`` + JSON bytes (orjson), for SMA, BBANDS (3 outputs) and MACD, median.
  The drawing is measured with the page (benchmarks/indicator_draw.py); target for
  add-until-drawn <= 300 ms.
  ``add_off_thread_ms``: the worker path for BBANDS (snapshot + prepare + attach + JSON).
* ``rows_json_ms``: BBANDS' chart data as columnar arrays (what ``chart_series`` builds) vs.
  a list of ``{"time", "value"}`` objects per output, both to JSON bytes with orjson.
* ``gil``: whether TA-Lib releases the GIL: the longest pause of a Python loop on the main
  thread while a worker thread runs one long TA-Lib call (SMA over ``--gil-bars`` values),
  compared with that call's duration.

    python benchmarks/indicators.py [--bars 100000] [--updates 2000] [--repeat 5] [--check]

``--check`` exits 1 when flush p99 is above 5 ms or adding BBANDS above 300 ms.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import statistics
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import orjson
import pandas as pd
import talib

from binmon.indicators.chart_data import chart_points, chart_series, dumps
from binmon.indicators.engine import Engine, prepare
from binmon.indicators.spec import IndicatorSpec, default_spec

TARGET_FLUSH_P99_MS = 5.0
TARGET_ADD_MS = 300.0
START_MS = 1_577_836_800_000  # 2020-01-01 00:00 UTC
MINUTE = 60_000


def make_candles(n: int, seed: int = 7) -> pd.DataFrame:
    """``n`` 1m candles (random walk, 8-decimal prices), as ``CandleStore.read_frame`` shapes them."""
    rng = np.random.default_rng(seed)
    close = np.round(30_000 * np.exp(np.cumsum(rng.normal(0, 6e-4, n))), 2)
    openp = np.concatenate(([close[0]], close[:-1]))
    high = np.round(np.maximum(openp, close) * (1 + np.abs(rng.normal(0, 3e-4, n))), 2)
    low = np.round(np.minimum(openp, close) * (1 - np.abs(rng.normal(0, 3e-4, n))), 2)
    volume = np.round(rng.gamma(2.0, 5.0, n), 8)
    return pd.DataFrame(
        {
            "open_time": START_MS + np.arange(n, dtype=np.int64) * MINUTE,
            "open": openp,
            "high": high,
            "low": low,
            "close": close,
            "volume": volume,
        }
    )


def chart_specs() -> list[IndicatorSpec]:
    """The 10 indicators of a typical chart."""
    specs = [
        dataclasses.replace(default_spec("SMA", id="sma20"), params={"timeperiod": 20}),
        dataclasses.replace(default_spec("EMA", id="ema50"), params={"timeperiod": 50}),
    ]
    names = ("BBANDS", "RSI", "MACD", "STOCH", "ATR", "ADX", "OBV", "MFI")
    return specs + [default_spec(name, id=name.lower()) for name in names]


def _stats(samples_s: list[float]) -> dict[str, float]:
    ms = np.asarray(samples_s) * 1e3
    return {
        "p50": round(float(np.percentile(ms, 50)), 4),
        "p99": round(float(np.percentile(ms, 99)), 4),
        "max": round(float(ms.max()), 4),
    }


def _median_ms(fn: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return round(statistics.median(times) * 1e3, 3)


def bench_updates(engine: Engine, frame: pd.DataFrame, updates: int) -> dict[str, Any]:
    """Stream ``updates`` new bars: each first appended (partial), then replaced (final)."""
    append, replace, flush = [], [], []
    last = int(frame["open_time"].iat[-1])
    price = float(frame["close"].iat[-1])
    rng = np.random.default_rng(11)
    for i in range(updates):
        t = last + (i + 1) * MINUTE
        first = {"open_time": t, "open": price, "high": price, "low": price, "close": price, "volume": 0.0}
        t0 = time.perf_counter()
        engine.update(first)
        append.append(time.perf_counter() - t0)
        close = round(price * (1 + rng.normal(0, 6e-4)), 2)
        bar = {**first, "high": max(price, close), "low": min(price, close), "close": close, "volume": 3.5}
        t0 = time.perf_counter()
        engine.update(bar)
        replace.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        chart_points(engine.update(bar))  # what a flush delivers: the latest bar, its values
        flush.append(time.perf_counter() - t0)
        price = close
    return {"append_ms": _stats(append), "replace_ms": _stats(replace), "flush_ms": _stats(flush)}


def bench_add(frame: pd.DataFrame, repeat: int) -> dict[str, Any]:
    engine = Engine(chart_specs())
    engine.load(frame)
    times = engine.open_times()
    out: dict[str, Any] = {}
    for name in ("SMA", "BBANDS", "MACD"):
        spec = default_spec(name, id=f"added-{name}")

        def add(spec: IndicatorSpec = spec) -> bytes:
            engine.remove(spec.id)
            values = engine.add(spec)
            return dumps(chart_series(spec, times, values))

        out[name] = _median_ms(add, repeat)
    bb = default_spec("BBANDS", id="worker-bb")

    def off_thread() -> bytes:
        engine.remove(bb.id)
        prepared = prepare(bb, engine.snapshot())  # the part a worker thread runs
        return dumps(chart_series(bb, engine.open_times(), engine.attach(prepared)))

    return {"add_ms": out, "add_off_thread_ms": {"BBANDS": _median_ms(off_thread, repeat)}}


def bench_rows(frame: pd.DataFrame, repeat: int) -> dict[str, float]:
    spec = default_spec("BBANDS", id="bb")
    engine = Engine([spec])
    engine.load(frame)
    times, values = engine.open_times(), engine.values("bb")

    def objects() -> bytes:
        payload = {}
        secs = (times // 1000).tolist()
        for name, v in values.items():
            keep = np.flatnonzero(np.isfinite(v))
            vals = v.tolist()
            payload[name] = [{"time": secs[i], "value": vals[i]} for i in keep.tolist()]
        return orjson.dumps(payload)

    columnar = _median_ms(lambda: dumps(chart_series(spec, times, values)), repeat)
    return {"columnar": columnar, "objects": _median_ms(objects, repeat)}


def bench_gil(bars: int) -> dict[str, Any]:
    data = np.random.default_rng(3).random(bars)
    t = time.perf_counter()
    talib.SMA(data, timeperiod=50)
    call_ms = (time.perf_counter() - t) * 1e3
    done = threading.Event()

    def worker() -> None:
        for _ in range(5):
            talib.SMA(data, timeperiod=50)
        done.set()

    gaps: list[float] = []
    th = threading.Thread(target=worker)
    prev = time.perf_counter()
    th.start()
    while not done.is_set():
        now = time.perf_counter()
        gaps.append(now - prev)
        prev = now
    th.join()
    max_gap_ms = max(gaps) * 1e3
    return {
        "talib_call_ms": round(call_ms, 2),
        "main_loop_max_pause_ms": round(max_gap_ms, 2),
        "released": bool(max_gap_ms < call_ms / 2),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bars", type=int, default=100_000)
    ap.add_argument("--updates", type=int, default=2_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--gil-bars", type=int, default=5_000_000)
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args()

    frame = make_candles(args.bars)
    specs = chart_specs()
    engine = Engine(specs)
    engine.load(frame.iloc[:100])  # warm caches (catalogue, TA-Lib) outside the timings
    load_ms = _median_ms(lambda: engine.load(frame), args.repeat)
    result: dict[str, Any] = {
        "benchmark": "indicators",
        "bars": args.bars,
        "indicators": [s.function + str(tuple(s.params.values())) for s in specs],
        "load_ms": load_ms,
    }
    result.update(bench_updates(engine, frame, args.updates))
    result["updates"] = args.updates
    result["modes"] = sorted({engine.mode(s.id) for s in specs})
    result.update(bench_add(frame, args.repeat))
    result["rows_json_ms"] = bench_rows(frame, args.repeat)
    result["gil"] = bench_gil(args.gil_bars)
    result["targets"] = {"flush_p99_ms": TARGET_FLUSH_P99_MS, "add_ms": TARGET_ADD_MS}
    ok = result["flush_ms"]["p99"] <= TARGET_FLUSH_P99_MS and result["add_ms"]["BBANDS"] <= TARGET_ADD_MS
    result["ok"] = ok
    result["python"] = platform.python_version()
    result["talib"] = talib.__version__
    print(json.dumps(result))
    return 1 if args.check and not ok else 0


if __name__ == "__main__":
    sys.exit(main())
