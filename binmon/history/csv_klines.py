"""Kline CSV files in Binance's 12-column layout (as on data.binance.vision), append-safe.

The writer is built for long-running captures: each closed candle is written and
flushed as one line, a restart resumes after the last complete row (a torn last line
left by a kill is cut off), and candles at or before the last written open time are
skipped, so a file never holds a candle twice.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from types import TracebackType

from binmon.binance.codec import kline_to_row
from binmon.core.models import Kline

#: Column names used by data.binance.vision's futures CSVs (spot files have no header).
HEADER: tuple[str, ...] = (
    "open_time",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "close_time",
    "quote_volume",
    "count",
    "taker_buy_volume",
    "taker_buy_quote_volume",
    "ignore",
)


def _last_complete_line(path: Path) -> tuple[str | None, int]:
    """The last newline-terminated line of ``path`` and the byte length up to its end."""
    size = path.stat().st_size
    if size == 0:
        return None, 0
    with path.open("rb") as f:
        chunk = min(size, 64 * 1024)
        f.seek(size - chunk)
        tail = f.read(chunk)
    end = tail.rfind(b"\n")
    if end < 0:
        return None, 0 if chunk == size else size  # one torn line (or a huge one): keep as is
    start = tail.rfind(b"\n", 0, end) + 1
    return tail[start:end].decode("utf-8", "replace"), size - chunk + end + 1


class KlineCsvWriter:
    """Appends closed candles to ``path``; see the module docstring for the guarantees.

    ``header`` writes the column names when the file is new. ``last_open_time`` is the
    open time of the last row written (or found on resume), ``None`` for an empty file.
    """

    def __init__(self, path: Path, *, header: bool = True) -> None:
        self.path = path
        self.last_open_time: int | None = None
        self.rows_written = 0
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            line, good_len = _last_complete_line(path)
            if good_len < path.stat().st_size:
                # A torn final line from an interrupted write: drop it rather than mix rows.
                with path.open("r+b") as f:
                    f.truncate(good_len)
            if line and line[:1].isdigit():
                self.last_open_time = int(line.split(",", 1)[0])
        new = not path.exists() or path.stat().st_size == 0
        self._f = path.open("a", encoding="utf-8", newline="")
        if new and header:
            self._f.write(",".join(HEADER) + "\n")
            self._f.flush()

    def write(self, k: Kline) -> bool:
        """Append ``k`` if it is closed and newer than the last row; return whether it was written."""
        if not k.closed or (self.last_open_time is not None and k.open_time <= self.last_open_time):
            return False
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerow(kline_to_row(k))
        self._f.write(buf.getvalue())
        # One flush per candle: at most one candle per interval, and it must survive a kill.
        self._f.flush()
        self.last_open_time = k.open_time
        self.rows_written += 1
        return True

    def close(self) -> None:
        """Flush to disk and close the file."""
        if not self._f.closed:
            self._f.flush()
            os.fsync(self._f.fileno())
            self._f.close()

    def __enter__(self) -> KlineCsvWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
