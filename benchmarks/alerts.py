"""Alert rule evaluation under a busy feed: cost per kline frame, setup costs, memory. Prints JSON.

1,000 active rules over 50 symbols (20 per symbol: price, volume and indicator subjects -
RSI, SMA vs SMA, MACD vs its signal, Bollinger bands, EMA - every operator, every frequency),
each symbol loaded with 1,000 closed 1m bars of a random walk. Then a feed of kline frames
as a 2,000 frames/s stream delivers them (each frame: one symbol's forming or closing bar;
a bar closes every 40 updates, i.e. once a second per symbol - like the simulator at 60x),
fed in-process straight to :meth:`AlertEngine.on_kline` (the decode and the websocket are
measured by benchmarks/app_latency.py; this is the rule evaluation the alert service adds).

Measured per frame (``perf_counter_ns`` around ``on_kline``): p50 / p99 / max in microseconds,
the same in thread CPU time (``thread_time_ns``: without preemption by other processes, which
dominates the wall-clock tail on a loaded machine), and the share of one core the evaluation
takes at 2,000 frames/s. Target: p99 <= 1 ms.
Also: ``set_rules`` and history load times, fires, and the RSS growth of the process.

``python benchmarks/alerts.py [--frames 60000] [--symbols 50] [--rules-per-symbol 20]``
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from binmon.alerts.engine import AlertEngine
from binmon.alerts.rules import AlertRule, Condition, Frequency, Operand, Operator, Subject
from binmon.core.models import Kline
from binmon.indicators.spec import default_spec

MIN = 60_000
T0 = 1_717_372_800_000
UPDATES_PER_BAR = 40
FRAME_RATE = 2_000.0


def rss_mb() -> float:
    """Resident set size of this process (Linux /proc), MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def walk(rng: np.random.Generator, n: int, price: float) -> dict[str, np.ndarray]:
    """``n`` closed 1m bars of a log random walk around ``price``."""
    close = price * np.exp(np.cumsum(rng.normal(0, 0.002, n)))
    open_ = np.concatenate([[price], close[:-1]])
    spread = np.abs(rng.normal(0, 0.001, n)) * close
    return {
        "open_time": T0 + np.arange(n, dtype=np.int64) * MIN,
        "open": open_,
        "high": np.maximum(open_, close) + spread,
        "low": np.minimum(open_, close) - spread,
        "close": close,
        "volume": rng.gamma(2.0, 50.0, n),
    }


def rules_for(symbol: str, price: float, per_symbol: int, rng: random.Random) -> list[AlertRule]:
    """``per_symbol`` rules mixing every operator, subject kind and frequency."""
    sma = default_spec("SMA")
    macd = default_spec("MACD")
    rsi = Subject.of_indicator(default_spec("RSI"))
    subjects = [
        (Subject.price(), price),
        (Subject.price("high"), price),
        (Subject.volume(), 100.0),
        (rsi, 50.0),
        (Subject.of_indicator(default_spec("EMA")), price),
        (Subject.of_indicator(default_spec("BBANDS"), "upperband"), price),
    ]
    series = [
        (
            Subject.of_indicator(replace(sma, params={"timeperiod": 20})),
            Subject.of_indicator(replace(sma, params={"timeperiod": 50})),
        ),
        (Subject.of_indicator(macd, "macd"), Subject.of_indicator(macd, "macdsignal")),
        (Subject.price(), Subject.of_indicator(default_spec("BBANDS"), "lowerband")),
    ]
    ops = list(Operator)
    freqs = [Frequency.ONCE_PER_BAR, Frequency.ONCE_PER_BAR_CLOSE, Frequency.EVERY_TIME, Frequency.ONCE]
    out: list[AlertRule] = []
    for j in range(per_symbol):
        op = ops[j % len(ops)]
        subject, level = subjects[j % len(subjects)]
        if op.operand_kinds == ("channel",):
            operand = Operand.of_channel(level * 0.995, level * 1.005)
            cond = Condition(subject, op, operand)
        elif op.name.startswith("MOVING"):
            amount = 0.3 if op.name.endswith("PCT") else level * 0.003
            cond = Condition(subject, op, Operand.of_value(amount), bars=rng.choice([1, 3, 5]))
        elif j % 4 == 0:
            a, b = series[j % len(series)]
            cond = Condition(a, op, Operand.of_series(b))
        else:
            cond = Condition(subject, op, Operand.of_value(level * rng.uniform(0.99, 1.01)))
        freq = freqs[j % len(freqs)] if j % 10 else Frequency.ONCE
        out.append(AlertRule(f"{symbol}-{j}", symbol, "1m", cond, freq, min_interval_s=1.0, created_ms=0))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=60_000)
    p.add_argument("--symbols", type=int, default=50)
    p.add_argument("--rules-per-symbol", type=int, default=20)
    p.add_argument("--history", type=int, default=1_000)
    p.add_argument("--seed", type=int, default=7)
    args = p.parse_args()
    rng = np.random.default_rng(args.seed)
    prng = random.Random(args.seed)
    rss0 = rss_mb()

    symbols = [f"SYM{i:02d}USDT" for i in range(args.symbols)]
    prices = {s: float(10 ** rng.uniform(-4, 4)) for s in symbols}
    histories = {s: walk(rng, args.history, prices[s]) for s in symbols}
    rules = [
        r
        for s in symbols
        for r in rules_for(s, float(histories[s]["close"][-1]), args.rules_per_symbol, prng)
    ]

    t = time.perf_counter()
    engine = AlertEngine(rules)
    set_rules_ms = (time.perf_counter() - t) * 1000
    assert not engine.errors, next(iter(engine.errors.values()))
    t = time.perf_counter()
    for s in symbols:
        engine.load(s, "1m", histories[s])
    load_ms = (time.perf_counter() - t) * 1000
    rss_loaded = rss_mb()

    # The feed: per symbol a forming bar that moves by small steps and closes every 40 updates.
    state = {s: {"i": args.history, "n": 0, "open": float(histories[s]["close"][-1])} for s in symbols}
    for s in symbols:
        st = state[s]
        st.update(close=st["open"], high=st["open"], low=st["open"], volume=0.0)
    frames: list[tuple[str, Kline]] = []
    for _ in range(args.frames):
        s = symbols[prng.randrange(len(symbols))]
        st = state[s]
        st["n"] += 1
        st["close"] *= float(np.exp(prng.gauss(0, 0.0006)))
        st["high"], st["low"] = max(st["high"], st["close"]), min(st["low"], st["close"])
        st["volume"] += prng.expovariate(1 / 3.0)
        closed = st["n"] % UPDATES_PER_BAR == 0
        ot = T0 + int(st["i"]) * MIN
        frames.append(
            (
                s,
                Kline(
                    s,
                    "1m",
                    ot,
                    ot + MIN - 1,
                    st["open"],
                    st["high"],
                    st["low"],
                    st["close"],
                    st["volume"],
                    0.0,
                    1,
                    0.0,
                    0.0,
                    closed,
                ),
            )
        )
        if closed:
            st["i"] += 1
            st.update(open=st["close"], high=st["close"], low=st["close"], volume=0.0)

    gc.collect()
    rss_before_feed = rss_mb()  # the generated frames are the benchmark's, not the engine's
    gc.freeze()  # the setup (60k frames, histories) is not garbage: keep it out of every collection
    costs = np.empty(len(frames), dtype=np.int64)
    cpu = np.empty(len(frames), dtype=np.int64)
    fires = 0
    now = int(time.time() * 1000)
    step_ms = 1000.0 / FRAME_RATE
    clock, cpu_clock = time.perf_counter_ns, time.thread_time_ns
    for n, (s, k) in enumerate(frames):
        c0 = cpu_clock()
        t0 = clock()
        fired = engine.on_kline(s, "1m", k, now + int(n * step_ms))
        costs[n] = clock() - t0
        cpu[n] = cpu_clock() - c0
        fires += len(fired)
    us = costs / 1000.0
    cpu_us = cpu / 1000.0
    feed_s = len(frames) / FRAME_RATE
    result: dict[str, Any] = {
        "benchmark": "alerts",
        "rules": len(rules),
        "symbols": len(symbols),
        "history_bars": args.history,
        "frames": len(frames),
        "bar_closes": sum(1 for _, k in frames if k.closed),
        "frame_rate": FRAME_RATE,
        "per_frame_us": {
            "p50": round(float(np.percentile(us, 50)), 1),
            "p90": round(float(np.percentile(us, 90)), 1),
            "p99": round(float(np.percentile(us, 99)), 1),
            "max": round(float(us.max()), 1),
            "mean": round(float(us.mean()), 1),
        },
        # The same frames in CPU time of this thread: without the time other processes took
        # the core (on a busy 2-core machine the wall-clock tail is mostly preemption).
        "per_frame_cpu_us": {
            "p50": round(float(np.percentile(cpu_us, 50)), 1),
            "p99": round(float(np.percentile(cpu_us, 99)), 1),
            "max": round(float(cpu_us.max()), 1),
        },
        "per_closing_frame_p99_us": round(float(np.percentile(us[[k.closed for _, k in frames]], 99)), 1),
        "cpu_share_at_2000_fps": round(float(costs.sum()) / 1e9 / feed_s, 4),
        "fires": fires,
        "fires_per_s_of_feed": round(fires / feed_s, 1),
        "set_rules_ms": round(set_rules_ms, 1),
        "load_histories_ms": round(load_ms, 1),
        "memory_mb": {
            "rss_start": round(rss0, 1),
            "rss_after_load": round(rss_loaded, 1),
            "rss_before_feed": round(rss_before_feed, 1),
            "rss_after_feed": round(rss_mb(), 1),
        },
        "target_p99_us": 1000,
        "ok": bool(np.percentile(us, 99) <= 1000),
        "ok_cpu": bool(np.percentile(cpu_us, 99) <= 1000),
    }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
