"""The local candle store: one SQLite file under the data directory, shared by every binmon process.

Contract:

* Candles are keyed by ``(market, symbol, interval, open time)``. Only closed candles are stored;
  upserts are idempotent (the same candles written twice leave the same store) and a newer
  write of an open time replaces the older one.
* *Coverage* records the open-time ranges a download fetched completely from the exchange. A
  covered open time without a candle is *confirmed empty* (the exchange had no trade there),
  so the planner does not fetch it again. Candles and the coverage they justify are written in
  one transaction: a crash never leaves coverage without its candles.
* Durability: WAL journal, ``synchronous=NORMAL``. Every committed transaction survives a kill
  of the process (not necessarily a power cut: the last commits may be lost, never the file).
* Several processes (the app, ``binmon download``, a backtest) may open the same file; writes
  are short ``BEGIN IMMEDIATE`` transactions and a busy timeout makes the others wait.
* A file that is not a binmon store, is damaged, or comes from a newer binmon raises
  :class:`StoreError` with a one-line message naming the path; it is never overwritten.

Layout (why: reading a million candles row by row from SQLite takes seconds; from column blocks
it is a memcpy): table ``series`` (id, market, symbol, interval, block_ms), table ``blocks`` (one
row per series and open-time span of ``block_ms``: first/last open time, count, and the candles
as a column block, see :mod:`binmon.history.store_blocks`), table ``coverage`` (merged, aligned,
inclusive ranges per series). A series keeps the ``block_ms`` it was created with, so retuning
:data:`~binmon.history.store_blocks.BLOCK_CANDLES` never invalidates an existing file.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import numpy as np
import pandas as pd

from binmon.core.intervals import next_open, open_time
from binmon.core.models import Kline
from binmon.history import store_blocks as sb
from binmon.history.ranges import (
    SeriesKey,
    TimeRange,
    align_inward,
    check_aligned,
    merge_ranges,
    prev_open,
    runs,
    subtract_ranges,
)
from binmon.history.store_schema import STORE_FILENAME, StoreError, prepare

__all__ = ["CandleStore", "SeriesInfo", "StoreError", "default_store_path"]


@dataclass(frozen=True, slots=True)
class SeriesInfo:
    """What the store holds of one series: candle count, first/last open time (None when no candle)."""

    key: SeriesKey
    count: int
    first_open: int | None
    last_open: int | None


def default_store_path(data_dir: Path) -> Path:
    """Where the candle store lives inside binmon's data directory (``AppPaths.data_dir``)."""
    return data_dir / STORE_FILENAME


#: Demo stores are named ``candles-demo-<market id>.sqlite`` (see ``binmon.sim.config.market_id``).
DEMO_STORE_PREFIX = "candles-demo"


def demo_store_path(data_dir: Path, market: str, *, remove_others: bool = True) -> Path:
    """The store of the simulated market named ``market``; other demo markets' stores are deleted.

    Simulated candles never mix with the exchange's history (a file of their own), nor with
    another simulated market's: a demo started on another day generates another market, whose
    candles would contradict the stored ones. Only ``candles-demo*`` files are ever removed.
    """
    name = f"{DEMO_STORE_PREFIX}-{market}.sqlite" if market else f"{DEMO_STORE_PREFIX}.sqlite"
    path = data_dir / name
    if remove_others and data_dir.is_dir():
        for old in data_dir.glob(f"{DEMO_STORE_PREFIX}*.sqlite*"):
            if not old.name.startswith(name):  # keep this store and its -wal / -shm
                with contextlib.suppress(OSError):
                    old.unlink()
    return path


def _wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


class CandleStore:
    """A candle store file; see the module docstring. Build it with :meth:`open`.

    Thread-safe: the methods of one instance are serialized by a lock, so a worker thread
    may read while the GUI thread's code writes. ``clock`` (ms since the epoch) decides which
    candles are closed when coverage is recorded: coverage never extends into the candle that
    is still open at ``clock()``, nor beyond it.
    """

    def __init__(self, conn: sqlite3.Connection, path: Path, clock: Callable[[], int]) -> None:
        self._conn: sqlite3.Connection | None = conn
        self.path = path
        self._clock = clock
        self._lock = threading.RLock()
        self._ids: dict[SeriesKey, tuple[int, int]] = {}

    # ------------------------------------------------------------ open / close

    @classmethod
    def open(
        cls, path: Path, *, clock: Callable[[], int] | None = None, busy_timeout_s: float = 15.0
    ) -> CandleStore:
        """Open the store at ``path``, creating it (and its parent directories) when absent.

        Raises StoreError when ``path`` holds anything but a binmon store this version can
        read; the file is then left exactly as it was. OSError if the directory cannot be made.
        """
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + busy_timeout_s
        while True:
            conn = None
            try:
                # isolation_level=None: transactions are explicit (BEGIN IMMEDIATE for writes).
                conn = sqlite3.connect(
                    path, timeout=busy_timeout_s, isolation_level=None, check_same_thread=False
                )
                prepare(conn, path)
                break
            except sqlite3.DatabaseError as exc:
                if conn is not None:
                    conn.close()
                if "locked" in str(exc) or "busy" in str(exc):
                    # Another process is creating the file (or switching it to WAL): some of
                    # those steps do not wait on the busy timeout, so wait here.
                    if time.monotonic() < deadline:
                        time.sleep(0.05)
                        continue
                    raise StoreError(f"{path}: candle store busy in another process ({exc})") from None
                raise StoreError(f"{path}: not a usable binmon candle store ({exc})") from None
            except StoreError:
                if conn is not None:
                    conn.close()
                raise
        return cls(conn, path, clock or _wall_clock_ms)

    def close(self) -> None:
        """Close the file (idempotent). Committed data is already on disk."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> CandleStore:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # ------------------------------------------------------------ transactions

    @contextmanager
    def _tx(self, write: bool) -> Iterator[sqlite3.Connection]:
        """One transaction (IMMEDIATE for writes: take the write lock up front, so a read-then-write
        never fails half-way on a lock another process took); sqlite errors become StoreError."""
        with self._lock:
            conn = self._conn
            if conn is None:
                raise StoreError(f"{self.path}: the store is closed")
            try:
                conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
                try:
                    yield conn
                except BaseException:
                    self._rollback(conn)
                    raise
                conn.execute("COMMIT")
            except sqlite3.DatabaseError as exc:
                self._rollback(conn)
                raise StoreError(f"{self.path}: {exc}") from None
            except sb.BlockError as exc:
                raise StoreError(f"{self.path}: {exc}") from None

    def _rollback(self, conn: sqlite3.Connection) -> None:
        # A series row created in the rolled-back transaction is gone: forget cached ids, or a
        # later write would file candles under an id that no series row (or another one) has.
        self._ids.clear()
        if conn.in_transaction:
            conn.execute("ROLLBACK")

    def _series(self, conn: sqlite3.Connection, key: SeriesKey, create: bool) -> tuple[int, int] | None:
        """``(series id, block_ms)`` of ``key``; created when ``create`` (inside a write transaction).

        Ids are cached: series rows are never deleted or renumbered, so an id stays valid even
        while other processes write.
        """
        found = self._ids.get(key)
        if found is not None:
            return found
        row = conn.execute(
            "SELECT id, block_ms FROM series WHERE market = ? AND symbol = ? AND interval = ?",
            (key.market, key.symbol, key.interval),
        ).fetchone()
        if row is None:
            if not create:
                return None
            block_ms = sb.block_span_ms(key.interval)
            cur = conn.execute(
                "INSERT INTO series (market, symbol, interval, block_ms) VALUES (?, ?, ?, ?)",
                (key.market, key.symbol, key.interval, block_ms),
            )
            row = (cur.lastrowid, block_ms)
        self._ids[key] = found = (int(row[0]), int(row[1]))
        return found

    # ------------------------------------------------------------ writes

    def upsert(self, key: SeriesKey, klines: Sequence[Kline], *, fetched: TimeRange | None = None) -> int:
        """Store the closed candles of ``klines`` and, in the same transaction, add ``fetched`` to coverage.

        Open candles (``closed`` false) are ignored, and ``fetched`` is cut short before the
        first of them: an open candle is never stored nor covered. When ``klines`` holds one open
        time twice, the later one wins; a stored candle at the same open time is replaced.
        Returns the number of distinct candles written (new or replacing).
        Raises ValueError when a candle is of another symbol/interval than ``key`` or its open
        time is not aligned, or when ``fetched`` is not aligned; StoreError on a store failure.
        """
        for k in klines:
            if k.symbol != key.symbol or k.interval != key.interval:
                raise ValueError(f"{k.symbol} {k.interval} candle passed for series {key}")
        closed = [k for k in klines if k.closed]
        if fetched is not None and len(closed) < len(klines):
            first_open = min(k.open_time for k in klines if not k.closed)
            if first_open <= fetched.start:
                fetched = None
            elif first_open <= fetched.end:
                fetched = TimeRange(fetched.start, prev_open(key.interval, first_open))
        return self.upsert_array(key, sb.klines_to_array(closed), fetched=fetched)

    def upsert_frame(self, key: SeriesKey, frame: pd.DataFrame, *, fetched: TimeRange | None = None) -> int:
        """:meth:`upsert` for a DataFrame of closed candles with the :meth:`read_frame` columns.

        For bulk loads (archive CSVs): no Kline objects are built. Same contract as
        :meth:`upsert`; every row is taken as closed.
        """
        return self.upsert_array(key, sb.frame_to_array(frame), fetched=fetched)

    def upsert_array(self, key: SeriesKey, arr: np.ndarray, *, fetched: TimeRange | None = None) -> int:
        """:meth:`upsert` for a structured array of ``store_blocks.KLINE_DTYPE`` closed candles."""
        if arr.dtype != sb.KLINE_DTYPE:
            raise ValueError(f"expected a KLINE_DTYPE array, got {arr.dtype}")
        sb.check_times(arr, key.interval)
        if fetched is not None:
            check_aligned(fetched, key.interval)
        new = sb.normalize(arr)
        with self._tx(write=True) as conn:
            found = self._series(conn, key, create=True)
            assert found is not None
            sid, block_ms = found
            if new.size:
                self._write_blocks(conn, sid, block_ms, new)
            if fetched is not None:
                self._add_coverage(conn, sid, key.interval, fetched)
        return int(new.size)

    def mark_fetched(self, key: SeriesKey, fetched: TimeRange) -> None:
        """Record ``fetched`` (aligned) as downloaded completely, with no candle to add (an empty page).

        Clipped to the candles closed at ``clock()``. ValueError when ``fetched`` is not aligned.
        """
        check_aligned(fetched, key.interval)
        with self._tx(write=True) as conn:
            found = self._series(conn, key, create=True)
            assert found is not None
            self._add_coverage(conn, found[0], key.interval, fetched)

    def delete(self, key: SeriesKey, r: TimeRange | None = None) -> int:
        """Delete the series' candles with open time in ``r`` (all when None) and the coverage there.

        Coverage goes too: a covered range without candles would otherwise read as confirmed
        empty, and the planner would never fetch it again. Returns the number of candles deleted.
        """
        with self._tx(write=True) as conn:
            found = self._series(conn, key, create=False)
            if found is None:
                return 0
            sid, block_ms = found
            if r is None:
                (deleted,) = conn.execute(
                    "SELECT total(n) FROM blocks WHERE series_id = ?", (sid,)
                ).fetchone()
                conn.execute("DELETE FROM blocks WHERE series_id = ?", (sid,))
                conn.execute("DELETE FROM coverage WHERE series_id = ?", (sid,))
                return int(deleted)
            deleted = 0
            for block, n, blob in conn.execute(
                "SELECT block, n, data FROM blocks WHERE series_id = ? AND block BETWEEN ? AND ? "
                "AND last_open >= ? AND first_open <= ?",
                (sid, r.start // block_ms, r.end // block_ms, r.start, r.end),
            ).fetchall():
                arr = sb.decode_block(blob, n)
                keep = arr[(arr["open_time"] < r.start) | (arr["open_time"] > r.end)]
                deleted += n - keep.size
                self._put_block(conn, sid, block, keep)
            inner = align_inward(r, key.interval)
            if inner is not None:
                cov = self._coverage(conn, sid)
                conn.execute("DELETE FROM coverage WHERE series_id = ?", (sid,))
                self._insert_coverage(conn, sid, subtract_ranges(cov, [inner], key.interval))
            return deleted

    def _write_blocks(self, conn: sqlite3.Connection, sid: int, block_ms: int, new: np.ndarray) -> None:
        blk = new["open_time"] // block_ms
        cuts = np.flatnonzero(blk[1:] != blk[:-1]) + 1
        starts = [0, *cuts.tolist()]
        ends = [*cuts.tolist(), new.size]
        ids = [int(blk[s]) for s in starts]
        old: dict[int, tuple[int, bytes]] = {}
        for i in range(0, len(ids), 500):  # stay far below SQLite's bound-parameter limit
            chunk = ids[i : i + 500]
            marks = ",".join("?" * len(chunk))
            for block, n, blob in conn.execute(
                f"SELECT block, n, data FROM blocks WHERE series_id = ? AND block IN ({marks})", (sid, *chunk)
            ):
                old[block] = (n, blob)
        for block, s, e in zip(ids, starts, ends, strict=True):
            part = new[s:e]
            if block in old:
                part = sb.merge(sb.decode_block(old[block][1], old[block][0]), part)
            self._put_block(conn, sid, block, part)

    @staticmethod
    def _put_block(conn: sqlite3.Connection, sid: int, block: int, arr: np.ndarray) -> None:
        if arr.size == 0:
            conn.execute("DELETE FROM blocks WHERE series_id = ? AND block = ?", (sid, block))
            return
        conn.execute(
            "INSERT INTO blocks (series_id, block, first_open, last_open, n, data) VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (series_id, block) DO UPDATE SET first_open = excluded.first_open, "
            "last_open = excluded.last_open, n = excluded.n, data = excluded.data",
            (
                sid,
                block,
                int(arr["open_time"][0]),
                int(arr["open_time"][-1]),
                int(arr.size),
                sb.encode_block(arr),
            ),
        )

    def _add_coverage(self, conn: sqlite3.Connection, sid: int, interval: str, r: TimeRange) -> None:
        # Never cover the candle still open at clock() (nor later ones): it would read as
        # confirmed empty and never be fetched.
        last_closed = prev_open(interval, open_time(interval, self._clock()))
        if r.start > last_closed:
            return
        r = TimeRange(r.start, min(r.end, last_closed))
        # Stored ranges are merged, so only those touching r (overlapping or adjacent) change.
        touching = [
            TimeRange(a, b)
            for a, b in conn.execute(
                "SELECT first_open, last_open FROM coverage WHERE series_id = ? AND first_open <= ? "
                "AND last_open >= ?",
                (sid, next_open(interval, r.end), prev_open(interval, r.start)),
            )
        ]
        conn.executemany(
            "DELETE FROM coverage WHERE series_id = ? AND first_open = ?", [(sid, t.start) for t in touching]
        )
        self._insert_coverage(conn, sid, merge_ranges([*touching, r], interval))

    @staticmethod
    def _insert_coverage(conn: sqlite3.Connection, sid: int, ranges: Sequence[TimeRange]) -> None:
        conn.executemany(
            "INSERT INTO coverage (series_id, first_open, last_open) VALUES (?, ?, ?)",
            [(sid, r.start, r.end) for r in ranges],
        )

    # ------------------------------------------------------------ reads

    @staticmethod
    def _coverage(conn: sqlite3.Connection, sid: int) -> list[TimeRange]:
        return [
            TimeRange(a, b)
            for a, b in conn.execute(
                "SELECT first_open, last_open FROM coverage WHERE series_id = ? ORDER BY first_open", (sid,)
            )
        ]

    @staticmethod
    def _blocks(
        conn: sqlite3.Connection,
        sid: int,
        block_ms: int,
        start: int | None,
        end: int | None,
        newest_first: bool = False,
    ) -> sqlite3.Cursor:
        """Cursor over ``(n, data)`` of the blocks that may hold open times in ``[start, end]``."""
        lo = -(2**62) if start is None else start
        hi = 2**62 if end is None else end
        return conn.execute(
            "SELECT n, data FROM blocks WHERE series_id = ? AND block BETWEEN ? AND ? "
            f"AND last_open >= ? AND first_open <= ? ORDER BY block {'DESC' if newest_first else 'ASC'}",
            (sid, lo // block_ms, hi // block_ms, lo, hi),
        )

    def coverage(self, key: SeriesKey) -> list[TimeRange]:
        """The merged, sorted open-time ranges downloads have fetched completely."""
        with self._tx(write=False) as conn:
            found = self._series(conn, key, create=False)
            return [] if found is None else self._coverage(conn, found[0])

    def _open_times(self, conn: sqlite3.Connection, key: SeriesKey) -> np.ndarray:
        found = self._series(conn, key, create=False)
        if found is None:
            return np.empty(0, dtype=np.int64)
        # substr: only the open-time column (the first 8*n bytes) of each block is needed.
        parts = [
            sb.decode_open_times(blob, n)
            for n, blob in conn.execute(
                "SELECT n, substr(data, 1, 8 * n) FROM blocks WHERE series_id = ? ORDER BY block", (found[0],)
            )
        ]
        return np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)

    def present(self, key: SeriesKey) -> list[TimeRange]:
        """Maximal runs of consecutive stored candles, sorted."""
        with self._tx(write=False) as conn:
            return runs(self._open_times(conn, key), key.interval)

    def confirmed_empty(self, key: SeriesKey) -> list[TimeRange]:
        """Covered open-time ranges holding no candle: the exchange had no trade there."""
        with self._tx(write=False) as conn:
            found = self._series(conn, key, create=False)
            if found is None:
                return []
            cov = self._coverage(conn, found[0])
            have = runs(self._open_times(conn, key), key.interval)
        return subtract_ranges(cov, have, key.interval)

    def read_frame(
        self, key: SeriesKey, start_ms: int | None = None, end_ms: int | None = None
    ) -> pd.DataFrame:
        """The stored candles with ``start_ms <= open_time <= end_ms`` (None: unbounded), oldest first.

        Columns, exactly: ``open_time, open, high, low, close, volume, close_time, quote_volume,
        trades, taker_buy_base, taker_buy_quote`` (times and trades int64 ms / counts, the rest
        float64) over a RangeIndex. An unknown series gives an empty frame with those columns.
        """
        with self._tx(write=False) as conn:
            found = self._series(conn, key, create=False)
            rows = [] if found is None else self._blocks(conn, *found, start_ms, end_ms).fetchall()
        cols = sb.concat_columns(rows)
        ot = cols["open_time"]
        lo = 0 if start_ms is None else int(np.searchsorted(ot, start_ms, side="left"))
        hi = ot.size if end_ms is None else int(np.searchsorted(ot, end_ms, side="right"))
        if lo > 0 or hi < ot.size:
            cols = {f: c[lo:hi] for f, c in cols.items()}
        return sb.frame_from_columns(cols)

    def read_klines(
        self,
        key: SeriesKey,
        start_ms: int | None = None,
        end_ms: int | None = None,
        *,
        last: int | None = None,
    ) -> list[Kline]:
        """The stored candles in ``[start_ms, end_ms]`` as closed Klines, oldest first.

        ``last=N`` keeps only the newest N of them, and reads only the blocks it needs (the
        chart opens on the newest 1000 without decoding the whole series).
        """
        if last is not None and last <= 0:
            return []
        parts: list[np.ndarray] = []
        with self._tx(write=False) as conn:
            found = self._series(conn, key, create=False)
            if found is None:
                return []
            got = 0
            for n, blob in self._blocks(conn, *found, start_ms, end_ms, newest_first=last is not None):
                arr = sb.decode_block(blob, n)
                # Only the first and last block can reach past the bounds; cutting by
                # searchsorted keeps the others untouched.
                ot = arr["open_time"]
                lo = 0 if start_ms is None else int(np.searchsorted(ot, start_ms, side="left"))
                hi = n if end_ms is None else int(np.searchsorted(ot, end_ms, side="right"))
                arr = arr[lo:hi]
                parts.append(arr)
                got += arr.size
                if last is not None and got >= last:
                    break
        if last is not None:
            parts.reverse()
        arr = np.concatenate(parts) if parts else sb.empty_array()
        if last is not None:
            arr = arr[-last:]
        return sb.array_to_klines(arr, key.symbol, key.interval)

    def bounds(self, key: SeriesKey) -> TimeRange | None:
        """``TimeRange(first open time, last open time)`` of the stored candles; None when none."""
        with self._tx(write=False) as conn:
            found = self._series(conn, key, create=False)
            if found is None:
                return None
            lo, hi = conn.execute(
                "SELECT min(first_open), max(last_open) FROM blocks WHERE series_id = ?", (found[0],)
            ).fetchone()
        return None if lo is None else TimeRange(lo, hi)

    def count(self, key: SeriesKey) -> int:
        """Number of stored candles of ``key``."""
        with self._tx(write=False) as conn:
            found = self._series(conn, key, create=False)
            if found is None:
                return 0
            (n,) = conn.execute("SELECT total(n) FROM blocks WHERE series_id = ?", (found[0],)).fetchone()
        return int(n)

    def series(self) -> list[SeriesInfo]:
        """Every series holding candles or coverage, sorted by (market, symbol, interval)."""
        with self._tx(write=False) as conn:
            rows = conn.execute(
                "SELECT s.market, s.symbol, s.interval, total(b.n), min(b.first_open), max(b.last_open) "
                "FROM series s LEFT JOIN blocks b ON b.series_id = s.id GROUP BY s.id "
                "HAVING count(b.block) > 0 OR EXISTS (SELECT 1 FROM coverage c WHERE c.series_id = s.id) "
                "ORDER BY s.market, s.symbol, s.interval"
            ).fetchall()
        return [SeriesInfo(SeriesKey(m, s, i), int(n), lo, hi) for m, s, i, n, lo, hi in rows]
