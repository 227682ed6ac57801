"""What the download dialog checks and says: validation, progress, result and "stored" texts.

Pure functions, no Qt (unit-tested without a display); the dialog only wires them to widgets.

Rules of :func:`check_download` (the dialog shows ``error`` in red and disables Download;
``notes`` are shown in a neutral colour and do not block):

* the symbol must be a known, TRADING symbol (when the symbol list is empty, i.e. not loaded
  yet, any well-formed symbol passes and the exchange's answer to the listing lookup decides);
* "To" is *exclusive*: the candles opening in ``[from, to)`` are downloaded, so 2024-06-01
  00:00 -> 2024-06-04 00:00 is exactly three days (4,320 1m candles);
* an end before (or equal to) the start is an error; a start in the future is an error;
* an end in the future is clamped to "now" with a note (the download stops at the newest
  closed candle), because the time keeps moving and presets end at "now" anyway;
* a start before the symbol's first candle (looked up with ``listing_start``) is clamped with a
  note — the downloader marks the span before the listing as fetched, so it is never asked
  again; a range that ends before the first candle, or holds no open time of the interval,
  is an error (nothing to download).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from binmon.binance.errors import BinanceAPIError, NetworkError
from binmon.core.models import SymbolInfo
from binmon.history.dates import format_ms
from binmon.history.download import DownloadRequest, DownloadResult, Progress, Source
from binmon.history.ranges import (
    SeriesKey,
    TimeRange,
    align_inward,
    count_open_times,
    intersect_ranges,
    merge_ranges,
    subtract_ranges,
)

__all__ = [
    "Check",
    "Listing",
    "StoreLike",
    "Stored",
    "check_download",
    "error_text",
    "format_eta",
    "problem_lines",
    "progress_permille",
    "progress_text",
    "read_stored",
    "result_text",
    "stored_lines",
]

#: Binance's "Invalid symbol." error code.
INVALID_SYMBOL = -1121


class StoreLike(Protocol):
    """The part of :class:`~binmon.history.store.CandleStore` the dialog reads."""

    def coverage(self, key: SeriesKey) -> list[TimeRange]: ...

    def present(self, key: SeriesKey) -> list[TimeRange]: ...

    def count(self, key: SeriesKey) -> int: ...

    def bounds(self, key: SeriesKey) -> TimeRange | None: ...


@dataclass(frozen=True)
class Listing:
    """The answer of a ``listing_start`` lookup: the first candle's open time (None: the exchange
    has no candle of the series), or the error the lookup raised."""

    first_open: int | None
    error: BaseException | None = None

    @property
    def unknown_symbol(self) -> bool:
        """True when the exchange answered "invalid symbol"."""
        return isinstance(self.error, BinanceAPIError) and self.error.code == INVALID_SYMBOL


@dataclass(frozen=True)
class Check:
    """The outcome of :func:`check_download`: a request to run (None while ``error``), the
    one-line ``error`` ("" when valid), the non-blocking ``notes``, and the normalised symbol."""

    request: DownloadRequest | None
    error: str = ""
    notes: tuple[str, ...] = ()
    symbol: str = ""


def check_download(
    symbol_text: str,
    infos: Mapping[str, SymbolInfo],
    interval: str,
    start_ms: int,
    to_ms: int,
    now_ms: int,
    source: Source = "auto",
    listing: Listing | None = None,
) -> Check:
    """Validate the dialog's fields (see the module docstring for the rules).

    ``to_ms`` is the exclusive end; ``listing`` the lookup result for this symbol and
    interval (None while unknown or pending).
    """
    symbol = symbol_text.strip().upper()
    if not symbol:
        return Check(None, "Enter a symbol, e.g. BTCUSDT", symbol=symbol)
    info = infos.get(symbol)
    if infos and info is None:
        return Check(None, f"Unknown symbol {symbol!r}", symbol=symbol)
    if info is not None and not info.trading:
        return Check(None, f"{symbol} is not trading (status {info.status})", symbol=symbol)
    try:
        key = SeriesKey.spot(symbol, interval)
    except ValueError as exc:
        return Check(None, str(exc).replace("bad symbol", "Bad symbol"), symbol=symbol)
    if listing is not None and listing.unknown_symbol:
        return Check(None, f"The exchange does not know {symbol}", symbol=symbol)
    if to_ms < start_ms:
        return Check(None, f"End {format_ms(to_ms)} is before start {format_ms(start_ms)}", symbol=symbol)
    if to_ms == start_ms:
        return Check(None, "The range is empty: start and end are the same", symbol=symbol)
    if start_ms >= now_ms:
        future = f"Start {format_ms(start_ms)} is in the future (now {format_ms(now_ms)})"
        return Check(None, future, symbol=symbol)
    notes: list[str] = []
    end_ms: int | None = to_ms - 1
    if to_ms > now_ms:
        notes.append("End is in the future: the download stops at the newest closed candle")
        end_ms = None
    last = now_ms if end_ms is None else end_ms
    if listing is not None and listing.error is None:
        first = listing.first_open
        if first is None:
            return Check(None, f"The exchange has no {symbol} {interval} candles", symbol=symbol)
        if last < first:
            return Check(
                None,
                f"{symbol} {interval} starts {format_ms(first)}: nothing to download before that",
                symbol=symbol,
            )
        if start_ms < first:
            notes.append(f"{symbol} {interval} starts {format_ms(first)}; the download will start there")
    elif listing is not None:
        notes.append(f"Could not check when {symbol} {interval} starts: {error_text(listing.error)}")
    if align_inward(TimeRange(start_ms, last), interval) is None:
        return Check(None, f"No {interval} candle opens in this range; widen it", symbol=symbol)
    return Check(DownloadRequest(key, start_ms, end_ms, source), "", tuple(notes), symbol)


# ---------------------------------------------------------------- stored


@dataclass(frozen=True)
class Stored:
    """What the store holds of one series: candle count, first/last open time, holes (spans
    inside ``[first, last]`` neither stored nor confirmed empty), and, for the chosen range,
    the candles stored and the open times it has (``None`` without a range)."""

    count: int
    first_open: int | None
    last_open: int | None
    holes: int
    in_range: int | None = None
    range_slots: int | None = None


def read_stored(store: StoreLike, key: SeriesKey, span: TimeRange | None = None) -> Stored:
    """Read :class:`Stored` for ``key`` (blocking: call it on a worker thread).

    ``span`` (open times, any alignment) also counts what the store has inside it.
    """
    count = store.count(key)
    bounds = store.bounds(key)
    present = store.present(key) if bounds is not None else []
    holes = 0
    if bounds is not None:
        known = merge_ranges([*present, *store.coverage(key)], key.interval)
        holes = len(subtract_ranges([bounds], known, key.interval))
    in_range = slots = None
    if span is not None:
        aligned = align_inward(span, key.interval)
        slots = 0 if aligned is None else count_open_times(aligned, key.interval)
        inside = [] if aligned is None else intersect_ranges(present, [aligned], key.interval)
        in_range = sum(count_open_times(r, key.interval) for r in inside)
    return Stored(
        count,
        bounds.start if bounds else None,
        bounds.end if bounds else None,
        holes,
        in_range,
        slots,
    )


def stored_lines(stored: Stored) -> dict[str, str]:
    """Field label -> text for the dialog's "Stored" section."""
    if stored.count == 0 or stored.first_open is None or stored.last_open is None:
        lines = {"Candles": "none stored yet", "First": "—", "Last": "—", "Holes": "—"}
    else:
        holes = "none" if stored.holes == 0 else f"{stored.holes:,} (download again to fill)"
        lines = {
            "Candles": f"{stored.count:,}",
            "First": format_ms(stored.first_open),
            "Last": format_ms(stored.last_open),
            "Holes": holes,
        }
    if stored.in_range is not None and stored.range_slots is not None:
        lines["In range"] = f"{stored.in_range:,} of {stored.range_slots:,} candles"
    else:
        lines["In range"] = "—"
    return lines


# ---------------------------------------------------------------- progress and results


def format_eta(seconds: float | None) -> str:
    """``42`` -> ``"0:42"``, ``3723`` -> ``"1:02:03"``; None (unknown) -> ``"—"``."""
    if seconds is None or seconds != seconds or seconds < 0:
        return "—"
    s = round(seconds)
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def progress_text(p: Progress) -> str:
    """One line for a progress report: ``"12,345 of 43,200 candles · 8,200/s · ETA 0:42"``."""
    if p.phase == "planning":
        return "Planning…"
    rate = f"{p.candles_per_s:,.0f}/s"
    text = f"{p.done_candles:,} of {p.total_candles:,} candles · {rate} · ETA {format_eta(p.eta_s)}"
    if p.phase == "archive":
        text += " · from the archive"
    return text


def progress_permille(p: Progress) -> int:
    """Progress as 0..1000 (a QProgressBar's range is int32: candle counts could exceed it)."""
    if p.total_candles > 0:
        return max(0, min(1000, p.done_candles * 1000 // p.total_candles))
    if p.total_units > 0:
        return max(0, min(1000, p.done_units * 1000 // p.total_units))
    return 1000 if p.phase == "done" else 0


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}" if n == 1 else f"{n:,} {word}s"


def result_text(r: DownloadResult) -> str:
    """One line for a finished run (see the module docstring of the dialog for examples)."""
    if r.cancelled:
        return f"Cancelled — {r.written:,} candles kept; download again to resume"
    fetched = []
    if r.archive_files:
        fetched.append(_plural(r.archive_files, "archive file"))
    if r.rest_requests or not r.archive_files:
        fetched.append(_plural(r.rest_requests, "request"))
    how = f"({', '.join(fetched)}) in {r.seconds:.1f} s"
    if r.written:
        text = f"Downloaded {r.written:,} candles {how}"
        return text + (f"; {r.already_had:,} were already stored" if r.already_had else "")
    if r.rest_requests == 0 and r.archive_files == 0:
        if r.already_had:
            return f"Nothing to download: the {r.already_had:,} candles of this range are already stored"
        return "Nothing to download in this range"
    return f"No new candles: the exchange has none in this range {how}"


def error_text(exc: BaseException | None) -> str:
    """One line for an error a download or lookup raised (the details go to the log)."""
    if exc is None:
        return ""
    if isinstance(exc, NetworkError):
        text = f"cannot reach the exchange ({exc})"
    elif isinstance(exc, BinanceAPIError):
        text = f"the exchange refused: {exc.msg or exc} (code {exc.code}, HTTP {exc.status})"
    else:
        text = str(exc) or type(exc).__name__
    return text.splitlines()[0] if text else type(exc).__name__


def problem_lines(problems: Sequence[str], limit: int = 5) -> list[str]:
    """The first ``limit`` problems, plus "… and N more" when there are more."""
    lines = list(problems[:limit])
    if len(problems) > limit:
        lines.append(f"… and {len(problems) - limit} more (see the log)")
    return lines
