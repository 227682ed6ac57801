"""kill -9 during a download leaves a readable store holding every acknowledged commit.

A separate process upserts overlapping batches of 1m candles, each with its coverage
(``fetched=``), and prints the batch number after each commit returns. The test kills it with
SIGKILL at a random point (often inside a transaction: each batch takes a few ms), reopens the
file and checks: the file is intact, every acknowledged batch is there with its exact values,
nothing newer than the one in-flight batch is, and coverage never claims a candle that is
missing (only the minutes left out on purpose read as confirmed empty). Three rounds, each
resuming where the last one stopped, so recovery from a hot WAL is exercised too.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from binmon.core.intervals import MINUTE_MS
from binmon.history.ranges import SeriesKey, TimeRange, subtract_ranges
from binmon.history.store import CandleStore

ROOT = Path(__file__).resolve().parents[2]
KEY = SeriesKey.spot("BTCUSDT", "1m")
STEP = 15_000  # batch i starts at minute i * STEP ...
SIZE = 20_000  # ... and holds up to SIZE minutes: each batch rewrites the previous one's tail
GAP_EVERY = 97  # minutes divisible by this have no candle (no trades): confirmed empty when covered

# The writer derives every value from the minute index, so a rewrite is idempotent and a torn
# or misplaced value shows up as a mismatch.
WRITER = f"""
import sys
from pathlib import Path
import numpy as np
from binmon.history import store_blocks as sb
from binmon.history.ranges import SeriesKey, TimeRange
from binmon.history.store import CandleStore

M = 60_000
key = SeriesKey.spot("BTCUSDT", "1m")
i = int(sys.argv[2])
with CandleStore.open(Path(sys.argv[1])) as store:
    while True:
        idx = np.arange(i * {STEP}, i * {STEP} + {SIZE}, dtype=np.int64)
        idx = idx[idx % {GAP_EVERY} != 0]
        arr = sb.empty_array(idx.size)
        arr["open_time"] = idx * M
        arr["close_time"] = idx * M + M - 1
        for n, f in enumerate(("open", "high", "low", "close", "volume", "quote_volume")):
            arr[f] = idx * 0.001 + n
        arr["trades"] = idx % 1000
        fetched = TimeRange(i * {STEP} * M, (i * {STEP} + {SIZE} - 1) * M)
        store.upsert_array(key, arr, fetched=fetched)
        print(i, flush=True)
        i += 1
"""


def _expected(idx: np.ndarray) -> dict[str, np.ndarray]:
    return {
        "open_time": idx * MINUTE_MS,
        "close": idx * 0.001 + 3,
        "quote_volume": idx * 0.001 + 5,
        "trades": idx % 1000,
    }


def _batch_minutes(i: int) -> np.ndarray:
    idx = np.arange(i * STEP, i * STEP + SIZE, dtype=np.int64)
    return idx[idx % GAP_EVERY != 0]


def _run_and_kill(path: Path, first: int, rng: random.Random) -> list[int]:
    """Start the writer at batch ``first``, SIGKILL it after a few commits; the batches it acknowledged."""
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path), str(first)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    assert proc.stdout is not None and proc.stderr is not None
    acked: list[int] = []
    try:
        want = rng.randint(3, 12)
        while len(acked) < want:
            line = proc.stdout.readline()
            if not line:
                pytest.fail(f"writer exited early: {proc.stderr.read()}")
            acked.append(int(line))
        time.sleep(rng.random() * 0.01)  # land anywhere in the next transaction
        os.kill(proc.pid, signal.SIGKILL)
        # Lines printed before the kill are acknowledged commits too.
        acked += [int(x) for x in proc.stdout.read().split()]
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
        proc.stdout.close()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    return acked


@pytest.mark.slow
def test_kill_9_keeps_every_acknowledged_commit(tmp_path: Path) -> None:
    path = tmp_path / "data" / "candles.sqlite"
    rng = random.Random(20240603)
    first = 0
    for _ in range(3):
        acked = _run_and_kill(path, first, rng)
        assert acked == list(range(first, first + len(acked)))
        last = acked[-1]

        # The store is the first to open the file after the kill: it recovers the hot WAL.
        assert Path(f"{path}-wal").exists()
        with CandleStore.open(path) as store:
            frame = store.read_frame(KEY)
            coverage = store.coverage(KEY)
            present = store.present(KEY)
            empty = store.confirmed_empty(KEY)
        con = sqlite3.connect(path)
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        con.close()

        # Everything acknowledged is there, exactly; at most the in-flight batch beyond it.
        need = np.unique(np.concatenate([_batch_minutes(i) for i in range(last + 1)]))
        upto = np.unique(np.concatenate([_batch_minutes(i) for i in range(last + 2)]))
        stored = frame["open_time"].to_numpy() // MINUTE_MS
        assert np.isin(need, stored).all()
        assert np.isin(stored, upto).all()
        for col, values in _expected(stored).items():
            assert np.array_equal(frame[col].to_numpy(), values), col

        # Coverage: every acknowledged batch, never a candle that is missing.
        acked_range = TimeRange(0, (last * STEP + SIZE - 1) * MINUTE_MS)
        assert subtract_ranges([acked_range], coverage, "1m") == []
        assert subtract_ranges(coverage, present, "1m") == empty
        for r in empty:
            minutes = np.arange(r.start, r.end + 1, MINUTE_MS) // MINUTE_MS
            assert (minutes % GAP_EVERY == 0).all(), f"coverage without candles at {r}"
        # The in-flight batch is all or nothing: its coverage only if its candles are in.
        beyond = [r for r in coverage if r.end > acked_range.end]
        if beyond:
            assert np.isin(_batch_minutes(last + 1), stored).all()
        first = last + 2 if beyond else last + 1
