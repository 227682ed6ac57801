"""Kline CSV files in and out of the store: fast archive parsing, import from disk, export. No network.

* :func:`parse_kline_csv_array` is :func:`~binmon.history.archive.parse_kline_csv` returning a
  store array (:data:`~binmon.history.store_blocks.KLINE_DTYPE`) instead of Kline objects, ~20x
  faster: pandas' C reader parses the file, vectorised checks enforce the same rules, and any
  file the fast path is not sure about goes through the strict parser, which then raises its
  error naming the line (or accepts it). Floats are parsed with ``round_trip`` precision, so the
  values equal the REST decoder's ``float(text)`` bit for bit.
* :func:`read_kline_file` reads a data.binance.vision ``.zip`` or ``.csv`` from disk (verifying a
  sibling ``.CHECKSUM``), :func:`infer_series` reads symbol and interval from such a file's name.
* :func:`write_klines_csv` writes Binance's 12-column layout with the same formatting as
  :class:`~binmon.history.csv_klines.KlineCsvWriter` (``kline_to_row`` + ``csv.writer``): a
  millisecond-era archive file imported and exported comes back byte for byte.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import pandas as pd

from binmon.binance.codec import kline_to_row
from binmon.binance.rest_codec import MICROSECONDS_FROM
from binmon.core.intervals import IntervalError, check_interval, interval_ms, next_open, open_time
from binmon.core.models import Kline
from binmon.history import store_blocks as sb
from binmon.history.archive import ArchiveFile, ArchiveFormatError, archive_file, parse_kline_csv, verify
from binmon.history.csv_klines import HEADER
from binmon.history.ranges import SeriesKey
from binmon.history.store import CandleStore

__all__ = [
    "infer_series",
    "iter_stored_klines",
    "parse_kline_csv_array",
    "read_kline_file",
    "read_kline_zip_array",
    "write_klines_csv",
]

#: ``SYMBOL-INTERVAL-...`` at the start of a data.binance.vision file name (``1mo`` is ``1M``).
_NAME_RE = re.compile(r"^([A-Za-z0-9_]{2,40})-(1mo|\d{1,2}[smhdwM])-(.+)\.(zip|csv)$")
_ARCHIVE_DATE_RE = re.compile(r"^\d{4}-\d{2}(?:-\d{2})?$")
_INT_COLS = (0, 6, 8)
_FLOAT_COLS = (1, 2, 3, 4, 5, 7, 9, 10)
#: pandas before 3.1 parses floats with a fast converter that may be 1 ulp off Python's float();
#: "round_trip" is Python's own (bit-equal to the REST decoder). 3.1 made every mode exact and
#: deprecated the argument.
_PANDAS = tuple(int(p) for p in re.findall(r"\d+", pd.__version__)[:2])
_PRECISION: dict[str, Any] = {} if _PANDAS >= (3, 1) else {"float_precision": "round_trip"}
#: Array field of each CSV column (column 11, "ignore", is not kept).
_COLUMN_FIELDS = dict(enumerate(sb.FIELDS))  # the CSV's first 11 columns, in the same order


# ---------------------------------------------------------------- parsing


def parse_kline_csv_array(data: bytes, symbol: str, interval: str) -> np.ndarray:
    """One kline CSV (archive layout) -> a sorted :data:`~binmon.history.store_blocks.KLINE_DTYPE` array.

    Same contract as :func:`~binmon.history.archive.parse_kline_csv`: spot (no header, ms or
    µs times detected per file, µs converted to ms) and futures files (a header row); strict
    rows, open times on the interval's grid and increasing; :class:`ArchiveFormatError` naming
    the line otherwise. ``symbol`` only labels errors.
    """
    check_interval(interval)
    fast = _parse_fast(data, interval)
    if fast is not None:
        return fast
    return sb.klines_to_array(parse_kline_csv(data, symbol, interval))


def read_kline_zip_array(data: bytes, symbol: str, interval: str) -> np.ndarray:
    """An archive zip (one CSV inside) -> candle array; see :func:`parse_kline_csv_array`.

    :class:`ArchiveFormatError` for a file that is not a zip, is damaged, or holds other than
    exactly one file (as :func:`~binmon.history.archive.read_kline_zip`).
    """
    return parse_kline_csv_array(_unzip(data), symbol, interval)


def _unzip(data: bytes) -> bytes:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            members = [i for i in zf.infolist() if not i.is_dir()]
            if len(members) != 1:
                names = ", ".join(i.filename for i in members[:5]) or "nothing"
                raise ArchiveFormatError(f"expected one CSV in the zip, found {len(members)}: {names}")
            return zf.read(members[0])
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as exc:
        raise ArchiveFormatError(f"not a readable zip ({exc})") from None


def _parse_fast(data: bytes, interval: str) -> np.ndarray | None:
    """The candles of a well-formed file, or None when the strict parser must decide."""
    body = data.removeprefix(b"\xef\xbb\xbf").rstrip(b"\r\n")
    if not body:
        return sb.empty_array()
    # Blank lines inside, quotes: rare, and the strict parser has the exact rules for them.
    if b"\n\n" in body or b"\n\r\n" in body or b'"' in body:
        return None
    skip = 0 if body[:1].isdigit() else 1  # a futures header on line 1
    dtypes = {**{c: np.int64 for c in _INT_COLS}, **{c: np.float64 for c in _FLOAT_COLS}}
    try:
        frame = pd.read_csv(
            io.BytesIO(body),
            header=None,
            skiprows=skip,
            dtype=dtypes,
            skip_blank_lines=False,
            engine="c",
            **_PRECISION,
        )
    except (ValueError, pd.errors.ParserError, pd.errors.EmptyDataError, OverflowError):
        return None
    if frame.shape[1] != 12 or frame.empty:
        return None
    ot = frame[0].to_numpy(np.int64)
    ct = frame[6].to_numpy(np.int64)
    micro = bool(ot[0] >= MICROSECONDS_FROM)
    if (
        np.any((ot >= MICROSECONDS_FROM) != micro)
        or np.any((ct >= MICROSECONDS_FROM) != micro)
        or np.any(ot < 0)
        or np.any(frame[8].to_numpy(np.int64) < 0)
    ):
        return None
    if micro:
        ot, ct = ot // 1000, ct // 1000
    if np.any(ct < ot) or np.any(np.diff(ot) <= 0):
        return None
    arr = sb.empty_array(len(frame))
    for col, field in _COLUMN_FIELDS.items():
        if col in _FLOAT_COLS:
            values = frame[col].to_numpy(np.float64)
            if not np.all(np.isfinite(values)):
                return None
            arr[field] = values
    arr["open_time"], arr["close_time"], arr["trades"] = ot, ct, frame[8].to_numpy(np.int64)
    try:
        sb.check_times(arr, interval)
    except ValueError:
        return None
    return arr


# ---------------------------------------------------------------- files on disk


def infer_series(name: str) -> tuple[str, str, ArchiveFile | None] | None:
    """``(symbol, interval, archive file)`` from a data.binance.vision file name, None when it is not one.

    ``BTCUSDT-1m-2024-01.zip`` -> ``("BTCUSDT", "1m", <monthly file>)``; a name that only
    starts like one (``XRPETH-1m-2019-10-11_13.csv``) gives the symbol and interval with no
    archive file. ``1mo`` means ``1M``. The archive file (spot layout) tells which period the
    file covers completely.
    """
    m = _NAME_RE.match(Path(name).name)
    if m is None:
        return None
    symbol, iv, rest = m[1].upper(), m[2], m[3]
    iv = "1M" if iv == "1mo" else iv
    try:
        check_interval(iv)
    except IntervalError:
        return None
    archive: ArchiveFile | None = None
    if _ARCHIVE_DATE_RE.match(rest):
        period = "daily" if len(rest) == 10 else "monthly"
        try:
            archive = archive_file(symbol, iv, period, rest)
        except ValueError:
            archive = None
    return symbol, iv, archive


def read_kline_file(path: Path, symbol: str, interval: str) -> np.ndarray:
    """The candles of a kline ``.zip`` or ``.csv`` on disk, checked, as a sorted store array.

    A sibling ``<file>.CHECKSUM`` (as data.binance.vision publishes) is verified first
    (:class:`~binmon.history.archive.ChecksumMismatch`). Zip or CSV is told by content.
    Besides the parser's checks, every close time must end a candle of ``interval`` opening
    at its open time, which catches a file of another interval (1h rows are on the 1m grid
    too). Raises ArchiveFormatError (a ValueError) naming the problem, OSError when unreadable.
    """
    data = path.read_bytes()
    checksum = path.with_name(path.name + ".CHECKSUM")
    if checksum.is_file():
        verify(data, checksum.read_bytes(), name=path.name)
    raw = _unzip(data) if data[:4] == b"PK\x03\x04" else data
    arr = parse_kline_csv_array(raw, symbol, interval)
    _check_close_times(arr, interval)
    return arr


def _check_close_times(arr: np.ndarray, interval: str) -> None:
    ot, ct = arr["open_time"], arr["close_time"]
    if interval == "1M":
        bad = [i for i in range(ot.size) if int(ct[i]) != next_open(interval, int(ot[i])) - 1]
    else:
        bad = np.flatnonzero(ct != ot + interval_ms(interval) - 1)[:1].tolist()
    if bad:
        i = bad[0]
        raise ArchiveFormatError(
            f"candle {i + 1} (open time {int(ot[i])}) closes at {int(ct[i])}: not a {interval} candle "
            "(is the file of another interval?)"
        )


# ---------------------------------------------------------------- export


def iter_stored_klines(
    store: CandleStore, key: SeriesKey, start_ms: int | None, end_ms: int | None, chunk: int = 100_000
) -> Iterator[list[Kline]]:
    """The stored candles of ``key`` in ``[start_ms, end_ms]`` (None: unbounded), oldest first,
    in lists of about ``chunk`` candles (memory stays bounded on a series of millions)."""
    bounds = store.bounds(key)
    if bounds is None:
        return
    lo = bounds.start if start_ms is None else max(start_ms, bounds.start)
    hi = bounds.end if end_ms is None else min(end_ms, bounds.end)
    span = 32 * 86_400_000 * chunk if key.interval == "1M" else interval_ms(key.interval) * chunk
    t = open_time(key.interval, lo)
    while t <= hi:
        stop = min(hi, t + span - 1)
        part = store.read_klines(key, max(t, lo), stop)
        if part:
            yield part
        t = stop + 1


def write_klines_csv(out: TextIO, chunks: Iterable[Iterable[Kline]], *, header: bool = False) -> int:
    """Write candles to ``out`` in Binance's 12-column kline layout; return the number of rows.

    Formatting is exactly :class:`~binmon.history.csv_klines.KlineCsvWriter`'s
    (``kline_to_row``: 8-decimal strings, ms times, ``\\n`` line ends); ``header`` writes
    the futures-style column names first (spot archive files have none).
    """
    writer = csv.writer(out, lineterminator="\n")
    if header:
        writer.writerow(HEADER)
    n = 0
    for chunk in chunks:
        rows = [kline_to_row(k) for k in chunk]
        writer.writerows(rows)
        n += len(rows)
    return n
