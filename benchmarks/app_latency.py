"""The whole app under a busy live feed: latency to the chart, loop lag, losses, memory. Prints JSON.

``binmon sim`` runs as a separate process pushing trade + kline_1m for 5 symbols (about
2,000 frames/s in all, trades being most of them; the generated market has busy and quiet
spells, so the offered rate varies around that). The app is built exactly as ``binmon``
builds it (:func:`binmon.app.build_app`), shown offscreen, opened on BTCUSDT 1m, and also
subscribed to the other four symbols' streams, so it decodes the whole feed. Measured:

* ``kline_to_chart_ms``: per kline update of the chart's symbol, from the frame's event
  time (the simulator's send time; same machine, same clock) to the page's ``Date.now()``
  right after the ``binmon.apply`` batch carrying it has run in the page.
* ``trade_to_panel_ms``: per trade of the chart's symbol, event time to the trades panel
  having taken it (Python side, after the flush).
* ``loop_lag_ms``: how late a 20 ms asyncio timer fires on the qasync loop (the GUI thread).
* ``flushes_per_s``: chart flushes (the adapter's cap is 20/s).
* ``closed_*``: after the run, the closed bars the page holds against the simulator's REST
  klines for the same span: every one must be there, equal.
* ``memory``: RSS and PSS of this process plus its QtWebEngine processes, sampled every 5 s
  (the simulator subprocess excluded; its own RSS is shown apart).

Run it as a desktop user would (Chromium must not get a higher priority than Python):
``setpriv --bounding-set=-sys_nice --inh-caps=-sys_nice python benchmarks/app_latency.py``.
Targets: latency p99 <= 150 ms, loop lag p99 <= 20 ms, 0 closed candles lost, memory flat.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("QTWEBENGINE_DISABLE_SANDBOX", "1")  # Chromium refuses root otherwise
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import PySide6.QtWebEngineWidgets  # noqa: F401  (before the QApplication)
import qasync
from PySide6.QtWidgets import QApplication

from binmon.app import AppParts, build_app
from binmon.binance.codec import kline_stream, trade_stream
from binmon.config import load_config
from binmon.core.models import TradeEvent
from binmon.paths import AppPaths

SYMBOLS = ["BTCUSDT", "ETHUSDT", "BNBUSDT", "SOLUSDT", "XRPUSDT"]
CHART = ("BTCUSDT", "1m")
LAG_TICK_S = 0.020
MEM_EVERY_S = 5.0


# ------------------------------------------------------------------ process memory


def _tree(root: int, exclude: int | None = None) -> list[int]:
    """``root`` and all its descendants (QtWebEngineProcess and its zygotes/renderers),
    without ``exclude`` and its own descendants (the simulator is this script's child too)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        if pid == exclude:
            continue
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def _kb(path: str, field: str) -> int:
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(field):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _kind(pid: int) -> str:
    """``python`` for this process, else the Chromium process type (renderer, gpu-process...)."""
    if pid == os.getpid():
        return "python"
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            args = f.read().split(b"\0")
    except OSError:
        return "gone"
    for a in args:
        if a.startswith(b"--type="):
            return "webengine-" + a[7:].decode()  # renderers forked from the zygote keep its argv
    return os.path.basename(args[0].decode()) if args and args[0] else "?"


def memory_mb(exclude: int | None) -> tuple[float, float, int, dict[str, float]]:
    """(RSS sum, PSS sum, process count, PSS by process kind) of this process tree, in MiB."""
    pids = _tree(os.getpid(), exclude)
    rss = sum(_kb(f"/proc/{p}/status", "VmRSS:") for p in pids)
    by_kind: dict[str, float] = {}
    pss = 0
    for p in pids:
        kb = _kb(f"/proc/{p}/smaps_rollup", "Pss:")
        pss += kb
        kind = _kind(p)
        by_kind[kind] = round(by_kind.get(kind, 0.0) + kb / 1024, 1)
    return rss / 1024, pss / 1024, len(pids), by_kind


# ------------------------------------------------------------------ probes


class Samples:
    """A preallocated float64 buffer: the benchmark's own bookkeeping must not show up as the
    app's memory growth (a Python list of 600k floats is ~20 MB)."""

    def __init__(self, capacity: int) -> None:
        self._buf = np.zeros(capacity)  # zeros, not empty: the pages are touched up front
        self.n = 0

    def add(self, values: Iterable[float]) -> None:
        for v in values:
            if self.n < len(self._buf):
                self._buf[self.n] = v
                self.n += 1

    def values(self) -> np.ndarray:
        return self._buf[: self.n]

    def __len__(self) -> int:
        return self.n


class Probe:
    """Sits between the market service and the app's adapter; forwards everything, notes times.

    The service calls ``market_feed(E)`` for each event and then, for a kline of the chart's
    series, ``market_ops``: so the ops carry the event time noted just before them.
    """

    def __init__(self, parts: AppParts, capacity: int) -> None:
        self._adapter = parts.adapter
        self._chart = parts.chart
        self._last_event_ms = 0
        self.pending_klines: list[int] = []  # event times of ops waiting for the next flush
        self.kline_lat = Samples(capacity // 100 + 1000)
        self.trade_lat = Samples(capacity)
        self.flushes = 0
        self.measuring = False
        parts.adapter.flushed.connect(self._on_flushed)
        trades = parts.window.trades
        orig_add = trades.add_trades

        def add_trades(batch: Sequence[TradeEvent]) -> None:
            orig_add(batch)
            if self.measuring:
                now = time.time() * 1000.0
                self.trade_lat.add(now - t.event_time for t in batch)

        trades.add_trades = add_trades  # the adapter calls the panel's attribute: shadow it

    def __getattr__(self, name: str) -> Any:  # every other MarketSink call goes straight through
        return getattr(self._adapter, name)

    def market_feed(self, event_time_ms: int) -> None:
        self._last_event_ms = event_time_ms
        self._adapter.market_feed(event_time_ms)

    def market_ops(self, ops: Any) -> None:
        self.pending_klines.append(self._last_event_ms)
        self._adapter.market_ops(ops)

    def _on_flushed(self, n_ops: int) -> None:
        # Emitted right after chart.apply() queued the batch: the ops noted so far are in it.
        batch, self.pending_klines = self.pending_klines, []
        if not self.measuring:
            return
        self.flushes += 1

        def ran(js_now: Any) -> None:
            self.kline_lat.add(float(js_now) - e for e in batch)

        # Runs in the page after the apply batch (calls run in order): Date.now() there is
        # the moment the update has been applied.
        self._chart.call_js("Date.now", callback=ran)


def _pct(values: Sequence[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 1) if len(values) else None


def _summary(values: np.ndarray) -> dict[str, Any]:
    return {
        "n": len(values),
        "p50": _pct(values, 50),
        "p99": _pct(values, 99),
        "max": round(float(values.max()), 1) if len(values) else None,
    }


async def _wait_for(cond: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def _ask(method: Any, timeout: float = 30.0) -> Any:
    fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    method(lambda result: fut.done() or fut.set_result(result))
    return await asyncio.wait_for(fut, timeout)


async def bench(
    urls: dict[str, str], duration: float, warmup: float, sim_pid: int, without: Sequence[str] = ()
) -> dict[str, Any]:
    basedir = Path(tempfile.mkdtemp(prefix="binmon-bench-"))
    paths = AppPaths.resolve(basedir).ensure()
    parts = build_app(paths, load_config(paths.config_file).config, urls["rest"], urls["ws"])
    parts.window.resize(1400, 900)
    parts.window.show()
    probe = Probe(parts, int(3000 * (duration + warmup)))  # trades/s offered, with room
    if "trades" in without:
        parts.window.trades.add_trades = lambda batch: None
    if "watchlist" in without:
        parts.window.watchlist.update_tickers = lambda tickers: None
    if "chart" in without:
        parts.chart.apply = lambda ops: None
    service = parts.service
    service.sink = probe  # the stream client's status callback stays bound to the adapter
    loop = asyncio.get_running_loop()

    lags = Samples(int((duration + warmup) / LAG_TICK_S) + 1000)
    lag_by_s: list[float] = []

    async def lag_probe() -> None:
        while True:
            t = loop.time()
            await asyncio.sleep(LAG_TICK_S)
            lags.add(((loop.time() - t - LAG_TICK_S) * 1000.0,))

    mem: list[tuple[float, float, float, int]] = []
    kinds: list[dict[str, float]] = []
    py_rss: list[float] = []
    sim_rss: list[float] = []  # not the app's: shown to tell the two apart
    await service.start(*CHART)
    await _wait_for(lambda: service.series is not None and parts.chart.bridge.is_ready, 60, "the chart")
    others = [s for s in SYMBOLS if s != CHART[0]]
    extra = [trade_stream(s) for s in others] + [kline_stream(s, "1m") for s in others]
    await service.stream.subscribe(extra)
    lag_task = asyncio.create_task(lag_probe())
    await asyncio.sleep(warmup)
    stats0 = service.stream.stats.copy()
    probe.measuring = True
    lags.n = 0
    snap0 = tracemalloc.take_snapshot() if tracemalloc.is_tracing() else None
    t0 = time.monotonic()
    next_mem = t0
    while (now := time.monotonic()) < t0 + duration:
        if now >= next_mem:
            rss, pss, procs, by_kind = memory_mb(sim_pid)
            mem.append((round(now - t0, 1), round(rss, 1), round(pss, 1), procs))
            kinds.append(by_kind)
            py_rss.append(round(_kb("/proc/self/status", "VmRSS:") / 1024, 1))
            sim_rss.append(round(_kb(f"/proc/{sim_pid}/status", "VmRSS:") / 1024, 1))
            next_mem += MEM_EVERY_S
        n = lags.n
        await asyncio.sleep(1.0)
        lag_by_s.append(float(lags.values()[n:].max(initial=0.0)))
    elapsed = time.monotonic() - t0
    probe.measuring = False
    if snap0 is not None:  # --tracemalloc: where Python memory grew (diagnosis, to stderr)
        top = tracemalloc.take_snapshot().compare_to(snap0, "traceback")[:8]
        for stat in top:
            print(stat, *stat.traceback.format()[-6:], sep="\n  ", file=sys.stderr)
    stats = service.stream.stats
    lag_task.cancel()

    # Stop the feed, settle the page, then read its bars back and check them against REST.
    await service.close()
    parts.adapter.flush()
    rows = await _ask(parts.chart.page_bars)
    closed = [r for r in rows[:-1]]  # the last bar may still be forming
    first_ms = int(closed[0][0] * 1000) if closed else 0
    ref = await asyncio.to_thread(
        parts.rest.klines, CHART[0], CHART[1], start_ms=first_ms, limit=min(1000, max(1, len(closed)))
    )
    ref_by_t = {k.open_time: k for k in ref if k.closed}
    mismatched = missing = 0
    for r in closed:
        t = int(r[0] * 1000)
        k = ref_by_t.pop(t, None)
        if k is None:
            continue  # beyond the reference page
        if (k.open, k.high, k.low, k.close) != tuple(r[1:5]):
            mismatched += 1
    # Closed candles REST has that the page lacks, inside the page's span.
    last_page = int(closed[-1][0] * 1000) if closed else 0
    missing = sum(1 for t in ref_by_t if first_ms <= t <= last_page)
    parts.close_sync()
    parts.window.close()

    third = max(1, len(mem) // 3)
    return {
        "benchmark": "app_live_feed",
        "symbols": len(SYMBOLS),
        "streams": 2 * len(SYMBOLS) + 1,
        "seconds": round(elapsed, 1),
        "frames": stats.frames - stats0.frames,
        "frames_per_s": round((stats.frames - stats0.frames) / elapsed, 1),
        "malformed": stats.malformed - stats0.malformed,
        "reconnects": stats.reconnects - stats0.reconnects,
        "gaps": stats.gaps - stats0.gaps,
        "missed_closes": stats.missed_closes - stats0.missed_closes,
        "kline_to_chart_ms": _summary(probe.kline_lat.values()),
        "trade_to_panel_ms": _summary(probe.trade_lat.values()),
        "loop_lag_ms": _summary(lags.values()),
        "loop_lag_worst_second_ms_p50": round(statistics.median(lag_by_s), 1) if lag_by_s else None,
        "flushes_per_s": round(probe.flushes / elapsed, 1),
        "closed_checked": len(closed),
        "closed_mismatched": mismatched,
        "closed_missing": missing,
        "memory": {
            "sim_rss_mb_first": sim_rss[0] if sim_rss else None,
            "sim_rss_mb_last": sim_rss[-1] if sim_rss else None,
            "python_rss_mb_first": py_rss[0] if py_rss else None,
            "python_rss_mb_last": py_rss[-1] if py_rss else None,
            "rss_mb_first": mem[0][1] if mem else None,
            "rss_mb_median_first_third": statistics.median(m[1] for m in mem[:third]) if mem else None,
            "rss_mb_median_last_third": statistics.median(m[1] for m in mem[-third:]) if mem else None,
            "rss_mb_max": max(m[1] for m in mem) if mem else None,
            "pss_mb_median_first_third": statistics.median(m[2] for m in mem[:third]) if mem else None,
            "pss_mb_median_last_third": statistics.median(m[2] for m in mem[-third:]) if mem else None,
            "processes": mem[-1][3] if mem else None,
            "pss_mb_by_process_first": kinds[0] if kinds else None,
            "pss_mb_by_process_last": kinds[-1] if kinds else None,
            "samples_every_30s": [m for m in mem if int(m[0]) % 30 < MEM_EVERY_S],
        },
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=300.0, help="measured seconds (default 300)")
    ap.add_argument("--warmup", type=float, default=5.0)
    ap.add_argument("--rate", type=float, default=2000.0, help="nominal total trades/s of the simulator")
    ap.add_argument("--tracemalloc", action="store_true", help="print where Python memory grew (slow)")
    ap.add_argument(
        "--without",
        action="append",
        default=[],
        choices=["trades", "watchlist", "chart"],
        help="diagnosis: do not feed this part of the window (repeatable)",
    )
    args = ap.parse_args()
    if args.tracemalloc:
        tracemalloc.start(12)
    sim = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "binmon",
            "sim",
            "--symbols",
            ",".join(SYMBOLS),
            "--trade-rate",
            str(args.rate / len(SYMBOLS)),
            "--history-days",
            "2",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert sim.stdout is not None
        urls = json.loads(sim.stdout.readline())
        app = QApplication.instance() or QApplication([sys.argv[0]])
        app.setQuitOnLastWindowClosed(False)
        # As binmon.app.run_app does: qasync.run() crashes on exit when WebEngine was used.
        loop = qasync.QEventLoop(app)
        asyncio.set_event_loop(loop)
        with loop:
            result = loop.run_until_complete(bench(urls, args.duration, args.warmup, sim.pid, args.without))
        result["sim_rate_target"] = args.rate
        print(json.dumps(result))
    finally:
        sim.terminate()
        sim.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
