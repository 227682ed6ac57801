"""The Backtest tab's files: exports (trades CSV, metrics JSON) and the recent-runs list. No Qt.

Recent runs live in memory (full results of this session) and in ``backtests.json`` under the
app's data dir: the newest :data:`KEEP` runs, each with its request, metrics, trade count
and the equity curve thinned to at most :data:`CURVE_POINTS` points, enough to compare two
runs' curves after a restart without keeping megabytes of bars. The file is written
atomically; a file that cannot be read is kept aside (``.corrupt-<stamp>``) and reported in
one line, never overwritten.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from binmon.backtest.model import BacktestRequest, BacktestResult, Metrics, Trade
from binmon.fileio import atomic_write, keep_aside
from binmon.history.dates import format_ms

log = logging.getLogger(__name__)

RUNS_FILE = "backtests.json"
RUNS_FORMAT = "binmon-backtests"
RUNS_VERSION = 1
KEEP = 20
CURVE_POINTS = 2000

TRADE_COLUMNS = (
    "side",
    "entry_time",
    "entry_price",
    "exit_time",
    "exit_price",
    "size",
    "pnl",
    "pnl_pct",
    "commission",
    "bars",
    "open",
)


def iso_ms(ms: int) -> str:
    """``ms`` as ISO 8601 UTC (``2024-06-01T12:00:00Z``)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms / 1000))


def write_trades_csv(path: Path, trades: Sequence[Trade]) -> None:
    """One row per trade (header :data:`TRADE_COLUMNS`; times ISO UTC, numbers in full precision)."""
    rows = [
        [
            t.side,
            iso_ms(t.entry_time_ms),
            repr(t.entry_price),
            iso_ms(t.exit_time_ms),
            repr(t.exit_price),
            repr(t.size),
            repr(t.pnl),
            repr(t.pnl_pct),
            repr(t.commission),
            t.bars,
            int(t.is_open),
        ]
        for t in trades
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(TRADE_COLUMNS)
        w.writerows(rows)


def metrics_document(result: BacktestResult, buy_hold: Metrics | None = None) -> dict[str, Any]:
    """The metrics JSON: the request, the strategy's metrics and buy-and-hold's for comparison."""
    doc: dict[str, Any] = {
        "request": result.request.to_dict(),
        "metrics": result.metrics.to_dict(),
        "bars": result.bars,
        "first_bar": iso_ms(int(result.times[0])) if result.times.size else None,
        "last_bar": iso_ms(int(result.times[-1])) if result.times.size else None,
        "warnings": list(result.warnings),
    }
    if buy_hold is not None:
        doc["buy_and_hold"] = buy_hold.to_dict()
    return doc


def write_metrics_json(path: Path, result: BacktestResult, buy_hold: Metrics | None = None) -> None:
    """:func:`metrics_document` as indented JSON (non-finite numbers are null)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, json.dumps(metrics_document(result, buy_hold), indent=2).encode())


def thin(times: np.ndarray, values: np.ndarray, points: int = CURVE_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """At most ``points`` evenly spaced samples, always keeping the last one."""
    n = int(times.size)
    if n <= points:
        return times, values
    idx = np.unique(np.r_[np.linspace(0, n - 1, points).astype(np.int64), n - 1])
    return times[idx], values[idx]


@dataclass
class RunEntry:
    """One recent run: its request and metrics, when it finished, its (thinned) equity curve,
    and the full result while this session holds it."""

    id: str
    finished_ms: int
    request: BacktestRequest
    metrics: Metrics
    trades: int
    curve_times: np.ndarray
    curve_equity: np.ndarray
    result: BacktestResult | None = field(default=None, repr=False, compare=False)
    #: The candles the result was run on (this session only; the plots need the prices).
    candles: dict[str, np.ndarray] | None = field(default=None, repr=False, compare=False)

    @classmethod
    def of(cls, result: BacktestResult, finished_ms: int | None = None) -> RunEntry:
        """The entry of a finished ``result``."""
        t, e = thin(result.times, result.equity)
        return cls(
            uuid.uuid4().hex[:12],
            finished_ms if finished_ms is not None else time.time_ns() // 1_000_000,
            result.request,
            result.metrics,
            len(result.trades),
            t,
            e,
            result,
        )

    def label(self) -> str:
        """A one-line name: strategy(params) symbol interval range."""
        r = self.request
        params = ",".join(f"{k}={v}" for k, v in r.params.items() if not isinstance(v, dict))
        name = r.strategy if r.strategy != "file" else Path(r.strategy_file or "file").stem
        span = f"{format_ms(r.start_ms)[:10]}…{format_ms(r.end_ms)[:10]}"
        return f"{name}({params}) {r.symbol} {r.interval} {span}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (no full result)."""
        return {
            "id": self.id,
            "finished_ms": self.finished_ms,
            "request": self.request.to_dict(),
            "metrics": self.metrics.to_dict(),
            "trades": self.trades,
            "curve": {
                "times": self.curve_times.tolist(),
                "equity": [x if math.isfinite(x) else None for x in self.curve_equity.tolist()],
            },
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunEntry:
        """Inverse of :meth:`to_dict`; KeyError / ValueError / TypeError on a bad entry."""
        curve = d.get("curve", {})
        return cls(
            str(d["id"]),
            int(d["finished_ms"]),
            BacktestRequest.from_dict(d["request"]),
            Metrics.from_dict(d["metrics"]),
            int(d.get("trades", 0)),
            np.asarray(curve.get("times", []), dtype=np.int64),
            np.asarray([np.nan if x is None else x for x in curve.get("equity", [])], dtype=np.float64),
        )


class RecentRuns:
    """The newest :data:`KEEP` runs, newest first, persisted to ``path`` (None: memory only)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.entries: list[RunEntry] = []
        self._write_lock = threading.Lock()  # one writer at a time (saves may run on threads)
        #: One line per problem met while loading (shown once in the tab).
        self.problems: list[str] = []

    def load(self) -> None:
        """Read the file; a missing file is no runs, an unreadable one is kept aside."""
        self.entries, self.problems = [], []
        if self.path is None or not self.path.exists():
            return
        try:
            doc = json.loads(self.path.read_bytes())
            if not isinstance(doc, dict) or doc.get("format") != RUNS_FORMAT:
                raise ValueError("not a binmon backtests file")
            if int(doc.get("version", 0)) > RUNS_VERSION:
                self.problems.append(f"{self.path.name} is from a newer binmon; recent runs are not saved")
                self.path = None  # never overwrite a newer file
                return
            entries = []
            for raw in doc.get("runs", []):
                try:
                    entries.append(RunEntry.from_dict(raw))
                except (KeyError, TypeError, ValueError) as exc:
                    log.warning("skipped a recent run of %s: %s", self.path, exc)
            self.entries = entries[:KEEP]
        except (OSError, ValueError) as exc:
            assert self.path is not None
            aside = keep_aside(self.path)
            log.warning("cannot read %s (%s); kept aside as %s", self.path, exc, aside)
            self.problems.append(f"Recent runs file was unreadable; kept aside as {aside.name}")

    def add(self, entry: RunEntry, *, save: bool = True) -> None:
        """Put ``entry`` first; save unless ``save`` is False (the caller saves, e.g. on a thread)."""
        self.entries = [entry, *self.entries][:KEEP]  # a new list: a saving thread keeps its own
        if save:
            self.save()

    def get(self, run_id: str) -> RunEntry | None:
        """The entry with ``run_id``."""
        return next((e for e in self.entries if e.id == run_id), None)

    def save(self) -> bool:
        """Write the file; False (logged) when it cannot be written."""
        path, entries = self.path, self.entries  # the list is replaced, never changed in place
        if path is None:
            return False
        doc = {"format": RUNS_FORMAT, "version": RUNS_VERSION, "runs": [e.to_dict() for e in entries]}
        try:
            with self._write_lock:
                atomic_write(path, json.dumps(doc).encode())
        except OSError as exc:
            log.warning("cannot save recent backtests to %s: %s", self.path, exc)
            return False
        return True
