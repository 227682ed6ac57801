"""data.binance.vision kline archives: file layout, download planning, checksums and parsing. No I/O.

Binance publishes closed candles as zipped CSVs (see ``../shared/binance-facts.md``)::

    data/<market>/<monthly|daily>/klines/<SYM>/<iv>/<SYM>-<iv>-<YYYY-MM[-DD]>.zip[.CHECKSUM]

``<market>`` is ``spot``, ``futures/um`` or ``futures/cm``; ``1M`` is spelled ``1mo`` in paths
and names; daily files exist only for intervals up to ``1d`` (:data:`DAILY_INTERVALS`). A
file holds the candles whose *open time* lies in its month or day; it is published once the
period is over (and, for ``3d`` / ``1w``, the last candle opening in it has closed), so
every row is final. The ``.CHECKSUM`` sibling is one ``sha256sum`` line.

Spot CSVs have no header and the 12 REST columns; from 2025-01-01 on their times are in
microseconds. Futures CSVs keep milliseconds and gained a header row around 2022. Both are
told apart per file, by content, never by date or market.

:func:`plan_archive` says which files cover a span and from which open time REST must fill
the tail; :func:`read_kline_zip` / :func:`parse_kline_csv` turn a verified file into
:class:`~binmon.core.models.Kline` values (strict: a bad row is an error naming its line).
The HTTP side is :mod:`binmon.history.archive_client`; the simulator serves the same layout
from :mod:`binmon.sim.archive` using the helpers here.
"""

from __future__ import annotations

import calendar
import csv
import hashlib
import io
import re
import zipfile
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime

from binmon.binance.errors import BinanceError, ProtocolError
from binmon.binance.rest_codec import MICROSECONDS_FROM, decode_kline_row
from binmon.core.intervals import DAY_MS, check_interval, next_open, open_time
from binmon.core.models import Kline

__all__ = [
    "DAILY_INTERVALS",
    "MARKETS",
    "ArchiveError",
    "ArchiveFile",
    "ArchiveFormatError",
    "ChecksumMismatch",
    "archive_file",
    "checksum_line",
    "file_for",
    "parse_archive_path",
    "parse_checksum",
    "parse_kline_csv",
    "path_interval",
    "plan_archive",
    "read_kline_zip",
    "verify",
]

#: Markets data.binance.vision has kline files for (the path segment after ``data/``).
MARKETS: tuple[str, ...] = ("spot", "futures/um", "futures/cm")
#: Intervals with daily files; ``3d``, ``1w`` and ``1M`` only come monthly.
DAILY_INTERVALS: frozenset[str] = frozenset(
    ("1s", "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d")
)
_PERIODS = ("monthly", "daily")
_DATE_RE = {"monthly": re.compile(r"^(\d{4})-(\d{2})$"), "daily": re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")}
_PATH_RE = re.compile(
    r"^/?data/(spot|futures/um|futures/cm)/(monthly|daily)/klines/([A-Z0-9_.\-]{1,40})/([0-9a-zA-Z]{2,4})/"
    r"([A-Z0-9_.\-]{1,40})-([0-9a-zA-Z]{2,4})-(\d{4}-\d{2}(?:-\d{2})?)\.zip(\.CHECKSUM)?$"
)
_HEX64_RE = re.compile(r"^[0-9a-fA-F]{64}$")


class ArchiveError(BinanceError):
    """Base of the archive errors: the file exists but cannot be used."""


class ArchiveFormatError(ArchiveError, ProtocolError, ValueError):
    """A file that is not what data.binance.vision publishes: bad zip, bad row, bad ``.CHECKSUM``.

    Also a ValueError, so parsers of text (``parse_checksum``) raise it where a ValueError is
    the natural contract.
    """


class ChecksumMismatch(ArchiveError):
    """The zip's SHA-256 differs from its ``.CHECKSUM``: the download is not stored."""


# ---------------------------------------------------------------- files


def path_interval(interval: str) -> str:
    """The interval as spelled in archive paths and names: ``1M`` -> ``1mo``, others unchanged."""
    return "1mo" if check_interval(interval) == "1M" else interval


def _month_start(ts_ms: int) -> int:
    return open_time("1M", ts_ms)


def _ms_of(year: int, month: int, day: int = 1) -> int:
    return calendar.timegm((year, month, day, 0, 0, 0)) * 1000


def _iso(ts_ms: int, period: str) -> str:
    d = datetime.fromtimestamp(ts_ms / 1000, tz=UTC)
    return f"{d.year:04d}-{d.month:02d}" + (f"-{d.day:02d}" if period == "daily" else "")


@dataclass(frozen=True, slots=True)
class ArchiveFile:
    """One archive file: the candles of ``symbol`` / ``interval`` opening in one month or day.

    ``date`` is ``YYYY-MM`` (monthly) or ``YYYY-MM-DD`` (daily); ``start_ms`` .. ``end_ms``
    (both inclusive, UTC ms) is the open-time span it covers: candles with
    ``start_ms <= open_time <= end_ms``. Build them with :func:`archive_file` or
    :func:`file_for`, which check the fields agree.
    """

    market: str
    period: str
    symbol: str
    interval: str
    date: str
    start_ms: int
    end_ms: int

    @property
    def name(self) -> str:
        """The zip's file name: ``BTCUSDT-1mo-2024-05.zip``."""
        return f"{self.symbol}-{path_interval(self.interval)}-{self.date}.zip"

    @property
    def path(self) -> str:
        """URL path of the zip relative to the archive root (no leading slash)."""
        iv = path_interval(self.interval)
        return f"data/{self.market}/{self.period}/klines/{self.symbol}/{iv}/{self.name}"

    @property
    def checksum_path(self) -> str:
        """URL path of the ``.CHECKSUM`` sibling, relative to the archive root."""
        return self.path + ".CHECKSUM"

    @property
    def ready_ms(self) -> int:
        """The earliest time the file can exist: every candle opening in it has closed by then.

        The period's end, or later for ``3d`` / ``1w`` candles that open in the period and
        close after it (a monthly ``1w`` file waits for its last week).
        """
        last_open = open_time(self.interval, self.end_ms)
        return max(self.end_ms + 1, next_open(self.interval, last_open))


def archive_file(symbol: str, interval: str, period: str, date: str, market: str = "spot") -> ArchiveFile:
    """The file for ``date`` (``YYYY-MM`` when monthly, ``YYYY-MM-DD`` when daily).

    Raises ValueError for an unknown market or period, a malformed or impossible date, an
    interval Binance does not know (IntervalError), one without daily files asked daily,
    or ``1s`` outside spot.
    """
    check_interval(interval)
    if market not in MARKETS:
        raise ValueError(f"unknown archive market {market!r}; use one of {', '.join(MARKETS)}")
    if period not in _PERIODS:
        raise ValueError(f"period must be 'monthly' or 'daily', got {period!r}")
    if period == "daily" and interval not in DAILY_INTERVALS:
        raise ValueError(f"data.binance.vision has no daily {interval} files (monthly only)")
    if interval == "1s" and market != "spot":
        raise ValueError("1s klines exist only on spot")
    m = _DATE_RE[period].match(date)
    if m is None:
        raise ValueError(f"bad {period} archive date {date!r}")
    year, month, day = int(m[1]), int(m[2]), int(m[3]) if period == "daily" else 1
    if not (1 <= month <= 12 and 1 <= day <= calendar.monthrange(year, month)[1]):
        raise ValueError(f"no such date: {date!r}")
    start = _ms_of(year, month, day)
    end = next_open("1M", start) if period == "monthly" else start + DAY_MS
    return ArchiveFile(market, period, symbol.upper(), interval, date, start, end - 1)


def file_for(symbol: str, interval: str, period: str, ts_ms: int, market: str = "spot") -> ArchiveFile:
    """The ``period`` file whose span contains the instant ``ts_ms``. Errors as :func:`archive_file`."""
    return archive_file(symbol, interval, period, _iso(ts_ms, period), market)


def parse_archive_path(path: str) -> tuple[ArchiveFile, bool]:
    """A kline archive URL path (leading slash optional) -> ``(file, is_checksum)``.

    ``1mo`` in the path means ``1M``; the symbol and interval must be spelled the same in
    the directory and the name. ValueError for anything else (other data types, bad dates,
    lower-case symbols: the archive's keys are case-sensitive).
    """
    m = _PATH_RE.match(path)
    if m is None:
        raise ValueError(f"not a kline archive path: {path!r:.200}")
    market, period, sym, iv, sym2, iv2, date, checksum = m.groups()
    if sym != sym2 or iv != iv2:
        raise ValueError(f"directory and file name disagree: {path!r:.200}")
    if iv in ("1M", "1mo"):
        if iv == "1M":  # the archive never spells it so
            raise ValueError("archive paths spell the 1M interval '1mo'")
        iv = "1M"
    return archive_file(sym, iv, period, date, market), checksum is not None


# ---------------------------------------------------------------- planning


def plan_archive(
    symbol: str,
    interval: str,
    start_ms: int,
    end_ms: int,
    now_ms: int,
    market: str = "spot",
    *,
    publish_lag_ms: int = 0,
) -> tuple[list[ArchiveFile], int | None]:
    """Which archive files cover the candles opening in ``[start_ms, end_ms]``, and where REST takes over.

    Returns ``(files, rest_from)``: files oldest first, covering one contiguous stretch of
    open times from the range's start; ``rest_from`` is the first open time they do not
    cover (fetch ``[rest_from, end_ms]`` from REST), or None when they cover the range.
    Months wholly inside the range come as monthly files; the days of a month the range only
    partly covers (its edges, the current month, a month not yet published) as daily files.
    ``3d`` / ``1w`` / ``1M`` have no daily files: their months come monthly whether the range
    covers them wholly or not. A file is used only once it can exist: its
    :attr:`ArchiveFile.ready_ms` plus ``publish_lag_ms`` is at or before ``now_ms``
    (Binance publishes a day's file some hours into the next day: pass a lag to avoid
    asking for files too early; the simulator publishes at once).
    Files may hold candles outside the range (a partial first day or month); callers trim.
    A 404 for a planned file means "not there" (not listed yet, or not published): the caller
    then needs REST for that file's span. Raises ValueError for ``end_ms < start_ms``, a
    negative lag, or the arguments :func:`archive_file` refuses.
    """
    check_interval(interval)
    if end_ms < start_ms:
        raise ValueError(f"end_ms {end_ms} is before start_ms {start_ms}")
    if publish_lag_ms < 0:
        raise ValueError("publish_lag_ms must be >= 0")
    # Refuse a bad market or interval up front, not only once the loop reaches a file.
    archive_file(symbol, interval, "monthly", "2020-01", market)

    def ready(f: ArchiveFile) -> bool:
        return f.ready_ms + publish_lag_ms <= now_ms

    files: list[ArchiveFile] = []
    t = start_ms  # the first open time not covered yet
    daily = interval in DAILY_INTERVALS
    while t <= end_ms:
        month = file_for(symbol, interval, "monthly", t, market)
        # Candles of a daily-capable interval align with month starts: the month is wanted
        # whole when the range holds its first and last open times.
        whole = start_ms <= month.start_ms and end_ms >= open_time(interval, month.end_ms)
        if (whole or not daily) and ready(month):
            files.append(month)
            t = month.end_ms + 1
            continue
        if not daily:
            break
        last_day = min(end_ms, month.end_ms)
        while t <= last_day:
            day = file_for(symbol, interval, "daily", t, market)
            if not ready(day):
                break
            files.append(day)
            t = day.end_ms + 1
        if t <= last_day:  # a day not published yet: everything after it is REST's
            break
    return files, (t if t <= end_ms else None)


# ---------------------------------------------------------------- checksums


def parse_checksum(text: str | bytes, *, name: str | None = None) -> str:
    """The lower-case SHA-256 hex digest in a ``.CHECKSUM`` (``<hex>  <file name>``, sha256sum format).

    A bare digest is accepted too. With ``name``, the line must name that file. Raises
    :class:`ArchiveFormatError` (a ValueError) saying what is wrong otherwise.
    """
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    if len(lines) != 1:
        excerpt = " ".join(text.split())[:120]
        raise ArchiveFormatError(f"checksum file must hold one line, got {len(lines)}: {excerpt!r}")
    digest, _, rest = lines[0].strip().partition(" ")
    if not _HEX64_RE.match(digest):
        raise ArchiveFormatError(f"checksum file does not start with a SHA-256 hex digest: {lines[0]!r:.120}")
    listed = rest.strip().lstrip("*")  # sha256sum marks binary mode with '*'
    if name is not None and listed and listed != name:
        raise ArchiveFormatError(f"checksum file is for {listed!r}, not {name!r}")
    return digest.lower()


def checksum_line(data: bytes, name: str) -> str:
    """The ``.CHECKSUM`` text for ``data`` published as ``name`` (with its trailing newline)."""
    return f"{hashlib.sha256(data).hexdigest()}  {name}\n"


def verify(data: bytes, checksum_text: str | bytes, *, name: str | None = None) -> None:
    """Raise :class:`ChecksumMismatch` unless ``data`` hashes to the digest in ``checksum_text``.

    ``name`` (the zip's file name) labels the message and, when the ``.CHECKSUM`` names a
    file, must be that one. A malformed ``.CHECKSUM`` raises :class:`ArchiveFormatError`.
    """
    expected = parse_checksum(checksum_text, name=name)
    got = hashlib.sha256(data).hexdigest()
    if got != expected:
        raise ChecksumMismatch(
            f"{name or 'archive file'}: SHA-256 {got[:16]}... does not match its .CHECKSUM "
            f"{expected[:16]}... ({len(data)} bytes downloaded)"
        )


# ---------------------------------------------------------------- parsing


def _is_digits(s: str) -> bool:
    return s.isascii() and s.isdigit()


def parse_kline_csv(data: bytes | str, symbol: str, interval: str) -> list[Kline]:
    """One archive CSV -> closed klines, in file order.

    Accepts spot files (no header; ms times, or µs from 2025 — detected per file from the
    first row's magnitude, and every row must then use the same unit) and futures files
    (a header row, told by a first field that is not a number). Rows are decoded exactly
    like REST rows (:func:`~binmon.binance.rest_codec.decode_kline_row`). Strict: a bad row,
    a header anywhere but line 1, a row in the other time unit, an open time not on the
    interval's grid or not after the previous row's raises :class:`ArchiveFormatError`
    naming the line (1-based, the header counts). Blank lines are only allowed at the end.
    """
    if isinstance(data, bytes | bytearray):
        try:
            data = bytes(data).decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise ArchiveFormatError(f"kline CSV is not UTF-8 ({exc.reason} at byte {exc.start})") from None
    else:
        data = data.removeprefix("\ufeff")
    check_interval(interval)
    out: list[Kline] = []
    micro: bool | None = None
    prev = -1
    blank_at = 0
    for n, row in enumerate(csv.reader(io.StringIO(data)), start=1):
        if not row or row == [""]:
            blank_at = blank_at or n
            continue
        if blank_at:
            raise ArchiveFormatError(f"line {n}: data after the blank line {blank_at}")
        first = row[0]
        if not _is_digits(first):
            if n == 1:
                continue  # futures header (open_time,open,high,...)
            raise ArchiveFormatError(f"line {n}: not a kline row: {','.join(row)!r:.200}")
        try:
            k = decode_kline_row(symbol, interval, row)
        except ProtocolError as exc:
            raise ArchiveFormatError(f"line {n}: {exc}") from None
        row_micro = int(first) >= MICROSECONDS_FROM
        if micro is None:
            micro = row_micro
        if row_micro != micro or (int(row[6]) >= MICROSECONDS_FROM) != micro:
            unit = "microseconds" if micro else "milliseconds"
            raise ArchiveFormatError(f"line {n}: times not in {unit} like the rest of the file: {row[0]}")
        if k.open_time != open_time(interval, k.open_time):
            raise ArchiveFormatError(f"line {n}: open time {k.open_time} is not on the {interval} grid")
        if k.open_time <= prev:
            raise ArchiveFormatError(f"line {n}: open time {k.open_time} does not follow {prev}")
        prev = k.open_time
        out.append(k)
    return out


def read_kline_zip(data: bytes, symbol: str, interval: str) -> list[Kline]:
    """An archive zip (one CSV inside) -> closed klines; see :func:`parse_kline_csv`.

    Raises :class:`ArchiveFormatError` for a file that is not a zip, is damaged (bad CRC,
    truncated), or holds other than exactly one file.
    """
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            members = [i for i in zf.infolist() if not i.is_dir()]
            if len(members) != 1:
                names = ", ".join(i.filename for i in members[:5]) or "nothing"
                raise ArchiveFormatError(f"expected one CSV in the zip, found {len(members)}: {names}")
            raw = zf.read(members[0])
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as exc:
        raise ArchiveFormatError(f"not a readable zip ({exc})") from None
    return parse_kline_csv(raw, symbol, interval)
