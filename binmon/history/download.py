"""The one download code path: the history dialog, ``binmon download`` and the backfill all use it.

:class:`Downloader` plans a request over the store's coverage (:mod:`binmon.history.download_plan`)
and fetches the plan's units on a thread pool:

* a REST page is one ``GET /api/v3/klines`` of at most ``per_page`` candles (the range is cut so
  one request returns all of it), through the shared weight limiter: ``workers`` requests are
  in flight at once, the limiter holds them back before the server would say 429, a 429 that
  comes anyway pauses every thread for its ``Retry-After``, 5xx and network failures are
  retried (all inside :class:`~binmon.binance.rest.RestClient`). Each page is stored as soon as
  it arrives, with ``fetched=`` its range: open times in it without a candle are confirmed
  empty (nothing traded), and a kill at any moment keeps every completed page;
* an archive file is downloaded, verified against its ``.CHECKSUM`` and stored with ``fetched=``
  its span. A 404 (not published, symbol listed later), a checksum mismatch, a damaged file or
  an unreachable archive sends that span to REST; all but the 404 are reported in
  :attr:`DownloadResult.problems`, and nothing of a bad file is stored.

Running a request again plans only what is still missing, so a cancelled, killed or failed run
resumes where it stopped, and a complete one costs no page request at all.

The store's coverage must be cut with the same clock as the plan: open the store with
``clock=store_clock(rest)`` (the server's clock, never ours: a simulator may run at 60x).
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from binmon.binance.errors import BinanceError, NetworkError
from binmon.binance.limiter import Cancelled
from binmon.binance.rest import KLINES_MAX, RestClient
from binmon.core.models import Kline
from binmon.history.archive import ArchiveError, ArchiveFile, ArchiveFormatError, ChecksumMismatch
from binmon.history.archive_client import ArchiveClient
from binmon.history.download_plan import (
    AUTO_ARCHIVE_MIN_PAGES,
    DownloadPlan,
    DownloadRequest,
    Source,
    file_range,
    make_plan,
)
from binmon.history.planner import pages
from binmon.history.ranges import SeriesKey, TimeRange, align_inward, count_open_times, intersect_ranges
from binmon.history.store_schema import StoreError

if TYPE_CHECKING:
    from binmon.history.store import CandleStore

__all__ = [
    "DownloadPlan",
    "DownloadRequest",
    "DownloadResult",
    "Downloader",
    "Progress",
    "Source",
    "fetch_rest_range",
    "store_clock",
]

_log = logging.getLogger(__name__)

#: After this many archive network failures in one run the archive is given up for the rest
#: of it (data.binance.vision is blocked in some places where the API is not).
_ARCHIVE_NETWORK_FAILURES = 2


@dataclass(frozen=True)
class Progress:
    """A progress report. ``phase``: ``planning`` | ``archive`` (archive files still to do) |
    ``rest`` | ``done``.

    ``done_candles`` / ``total_candles`` count candle *slots* (open times) of the plan: a unit
    adds its slots when it completes, so the pair ends equal even where the exchange has no
    candle. ``done_units`` / ``total_units``: archive files plus REST pages (a failed archive
    file adds its REST pages to the total). ``candles_per_s`` and ``eta_s`` (None until
    known) are over the slots; ``note`` is the latest remark worth showing.
    """

    phase: str
    done_candles: int
    total_candles: int
    done_units: int
    total_units: int
    candles_per_s: float
    eta_s: float | None
    note: str = ""


@dataclass(frozen=True)
class DownloadResult:
    """What a run did. ``written``: candles stored (new or replacing); ``already_had``: candles of
    the requested range in the store before the run; ``rest_requests``: kline pages requested;
    ``archive_files``: files stored; ``problems``: one line per failure worked around (bad
    checksum, damaged file, unreachable archive); ``cancelled``: stopped by ``cancel`` (run
    again to resume); ``seconds``: wall time."""

    written: int
    already_had: int
    rest_requests: int
    archive_files: int
    problems: tuple[str, ...]
    cancelled: bool
    seconds: float


def store_clock(rest: RestClient) -> Callable[[], int]:
    """The clock to open a download's store with: the server's, without any I/O once measured."""
    return lambda: rest.server_now_ms(max_age_s=float("inf"))


def fetch_rest_range(
    rest: RestClient,
    symbol: str,
    interval: str,
    r: TimeRange,
    *,
    cancel: threading.Event | None = None,
    per_page: int = KLINES_MAX,
) -> list[Kline]:
    """Every candle opening in ``r`` (narrowed to open times), oldest first; one request per page.

    ``r`` is cut into :func:`~binmon.history.planner.pages` of ``per_page`` candles and each is
    asked with ``startTime``/``endTime``, so each answer is complete for its page: a candle it
    lacks does not exist. Stops after a page ending with a candle that is not closed (the
    forming one: nothing opens after it). The last candle may be open (``closed`` false).
    Raises Cancelled when ``cancel`` is set, and the RestClient's errors.
    """
    out: list[Kline] = []
    for page in pages(r, interval, per_page):
        if cancel is not None and cancel.is_set():
            raise Cancelled("kline download cancelled")
        got = rest.klines(
            symbol, interval, start_ms=page.start, end_ms=page.end, limit=per_page, cancel=cancel
        )
        got = [k for k in got if page.start <= k.open_time <= page.end]
        out.extend(got)
        if got and not got[-1].closed:
            break
    return out


@dataclass
class _Unit:
    page: TimeRange | None = None  # a REST page ...
    file: ArchiveFile | None = None  # ... or an archive file
    slots: int = 0  # open times of the plan's holes it fills


@dataclass
class _Run:
    """Counters of one run (touched by the run's own thread only, except via the lock)."""

    lock: threading.Lock
    written: int = 0
    rest_requests: int = 0
    archive_files: int = 0
    archive_network_failures: int = 0
    note: str = ""


class Downloader:
    """Downloads candle history into a store. Thread-safe to share; one :meth:`run` per request."""

    def __init__(
        self,
        store: CandleStore,
        rest: RestClient,
        archive: ArchiveClient | None = None,
        *,
        workers: int = 4,
        now_ms: Callable[[], int] | None = None,
        per_page: int = KLINES_MAX,
        auto_min_pages: int = AUTO_ARCHIVE_MIN_PAGES,
        publish_lag_ms: int = 0,
        progress_interval_s: float = 0.1,
    ) -> None:
        """``archive`` None means REST only whatever the request's source. ``workers``: units
        in flight at once (REST pages and archive files alike). ``now_ms``: the server's
        clock (default ``rest.server_now_ms``, re-measured when 5 s old). ``per_page``
        (1..1000) candles per REST request; ``auto_min_pages`` and ``publish_lag_ms``: see
        :func:`~binmon.history.download_plan.make_plan`. ``progress_interval_s``: least time
        between two progress reports. ValueError for ``workers < 1`` or a bad ``per_page``.
        """
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        if not 1 <= per_page <= KLINES_MAX:
            raise ValueError(f"per_page must be 1..{KLINES_MAX}, got {per_page}")
        self.store, self.rest, self.archive = store, rest, archive
        self.workers = workers
        self.per_page = per_page
        self.auto_min_pages = auto_min_pages
        self.publish_lag_ms = publish_lag_ms
        self.progress_interval_s = progress_interval_s
        #: The server's clock (ms) the plans use; public for callers planning their own spans.
        #: Re-measured when 5 s old: a simulator's fast clock makes an old offset lag (by
        #: 59 s per second at 60x), and one weight-1 request per run is nothing.
        self.now_ms: Callable[[], int] = now_ms or (lambda: rest.server_now_ms(max_age_s=5.0))
        self._listings: dict[tuple[str, str], int | None] = {}
        self._listing_lock = threading.Lock()

    # ------------------------------------------------------------------ planning

    def listing_start(self, symbol: str, interval: str) -> int | None:
        """Open time of the symbol's first candle at ``interval`` (one ``startTime=0, limit=1``
        request, then cached); None when the exchange has none. Raises the RestClient's errors
        (BinanceAPIError -1121 for an unknown symbol)."""
        k = (symbol, interval)
        with self._listing_lock:
            if k in self._listings:
                return self._listings[k]
        first = self.rest.klines(symbol, interval, start_ms=0, limit=1)
        found = first[0].open_time if first else None
        with self._listing_lock:
            self._listings[k] = found
        return found

    def plan(self, req: DownloadRequest) -> DownloadPlan:
        """The plan for ``req`` over the store's coverage now (see :func:`make_plan`).

        Asks the exchange for the server time (when not known lately) and, only when
        something is missing, the listing time. ValueError for a market other than spot (the
        REST client speaks the spot API only); the RestClient's errors.
        """
        if req.key.market != "spot":
            raise ValueError(f"cannot download {req.key}: only spot series can be downloaded")
        now = self.now_ms()
        coverage = self.store.coverage(req.key)

        def make(listing: int | None) -> DownloadPlan:
            return make_plan(
                req,
                coverage,
                now,
                listing,
                per_page=self.per_page,
                auto_min_pages=self.auto_min_pages,
                publish_lag_ms=self.publish_lag_ms,
                archive_available=self.archive is not None,
            )

        # An up-to-date series costs no listing request.
        first = make(None)
        if first.up_to_date:
            return first
        return make(self.listing_start(req.key.symbol, req.key.interval))

    # ------------------------------------------------------------------ running

    def run(
        self,
        req: DownloadRequest,
        *,
        progress: Callable[[Progress], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> DownloadResult:
        """Plan and fetch ``req``; blocks (call it from a worker thread) until done or cancelled.

        ``progress`` is called from the thread calling run, at most every
        ``progress_interval_s`` and once at the end (phase ``done``). Setting ``cancel`` stops
        it soon (requests in flight finish and are stored); the result then has
        ``cancelled=True``. An error it cannot work around (the API unreachable after the
        client's retries, a ban, an API error, a broken store) is raised as is (BinanceError,
        StoreError) once the requests in flight are done: everything completed before it is
        stored, and running again resumes. ValueError for a non-spot series.
        """
        t0 = time.monotonic()
        cancel = cancel or threading.Event()
        state = _Run(threading.Lock())
        tracker = _Tracker(progress, self.progress_interval_s)
        tracker.emit("planning", force=True)
        already = 0
        problems: list[str] = []

        def result(cancelled: bool) -> DownloadResult:
            return DownloadResult(
                state.written,
                already,
                state.rest_requests,
                state.archive_files,
                tuple(problems),
                cancelled,
                time.monotonic() - t0,
            )

        try:
            already = self._present_in(req)
            plan = self.plan(req)
            if plan.below_listing is not None:
                self.store.mark_fetched(req.key, plan.below_listing)
        except Cancelled:
            return result(True)
        for n in plan.notes:
            tracker.note = n
        units = [_Unit(file=f, slots=_file_slots(plan, f)) for f in plan.archive_files]
        units += [_Unit(page=p, slots=count_open_times(p, req.key.interval)) for p in plan.rest_pages]
        tracker.start(plan.estimated_candles, len(units))
        error = self._execute(req.key, plan, deque(units), state, tracker, problems, cancel)
        cancelled = cancel.is_set() and tracker.done_units < tracker.total_units
        tracker.emit("done", force=True)
        if error is not None:
            # The original error, so callers branch on its type (retry a NetworkError, report a
            # BinanceAPIError); what completed before it is stored, and a rerun resumes.
            raise error
        return result(cancelled)

    def _present_in(self, req: DownloadRequest) -> int:
        end = req.end_ms if req.end_ms is not None else self.now_ms()
        span = align_inward(TimeRange(req.start_ms, max(req.start_ms, end)), req.key.interval)
        if span is None:
            return 0
        have = intersect_ranges(self.store.present(req.key), [span], req.key.interval)
        return sum(count_open_times(r, req.key.interval) for r in have)

    def _execute(
        self,
        key: SeriesKey,
        plan: DownloadPlan,
        pending: deque[_Unit],
        state: _Run,
        tracker: _Tracker,
        problems: list[str],
        cancel: threading.Event,
    ) -> Exception | None:
        """Run the units on the pool; the first fatal error (None when none)."""
        error: Exception | None = None
        inflight: dict[cf.Future[list[_Unit]], _Unit] = {}
        with cf.ThreadPoolExecutor(self.workers, thread_name_prefix="binmon-download") as pool:
            while True:
                while pending and len(inflight) < self.workers and error is None and not cancel.is_set():
                    unit = pending.popleft()
                    inflight[pool.submit(self._do_unit, key, plan, unit, state, problems, cancel)] = unit
                tracker.archive_left = sum(u.file is not None for u in (*pending, *inflight.values()))
                if not inflight:
                    break
                done, _ = cf.wait(inflight, timeout=0.25, return_when=cf.FIRST_COMPLETED)
                for fut in done:
                    unit = inflight.pop(fut)
                    try:
                        follow = fut.result()
                    except Cancelled:
                        continue
                    except (BinanceError, StoreError, OSError, ValueError) as exc:
                        _log.warning("download of %s stopped: %s", key, exc)
                        error = error or exc
                        continue
                    if follow:  # an archive file's span, to fetch from REST instead
                        pending.extend(follow)
                        tracker.add_units(len(follow))
                        tracker.complete(0)
                    else:
                        tracker.complete(unit.slots)
                    tracker.note = state.note or tracker.note
                tracker.emit("archive" if tracker.archive_left else "rest")
        return error

    def _do_unit(
        self,
        key: SeriesKey,
        plan: DownloadPlan,
        unit: _Unit,
        state: _Run,
        problems: list[str],
        cancel: threading.Event,
    ) -> list[_Unit]:
        """Fetch and store one unit (on a pool thread); the REST units replacing a failed file."""
        if unit.page is not None:
            with state.lock:
                state.rest_requests += 1
            got = fetch_rest_range(
                self.rest, key.symbol, key.interval, unit.page, cancel=cancel, per_page=self.per_page
            )
            n = self.store.upsert(key, got, fetched=unit.page)
            with state.lock:
                state.written += n
            return []
        f = unit.file
        assert f is not None
        try:
            if self.archive is None or state.archive_network_failures >= _ARCHIVE_NETWORK_FAILURES:
                return self._fallback(key, plan, f, state, "")
            data = self.archive.download(f, cancel)
            if data is None:  # not published, or the symbol was listed later
                return self._fallback(key, plan, f, state, f"{f.name} is not in the archive; using REST")
            # Imported here: pandas is for this path only, and the backfill (the stream's
            # reconnect path) imports this module.
            from binmon.history.kline_io import read_kline_zip_array

            arr = read_kline_zip_array(data, key.symbol, key.interval)
            ot = arr["open_time"]
            if ot.size and not (f.start_ms <= int(ot[0]) and int(ot[-1]) <= f.end_ms):
                raise ArchiveFormatError(f"holds candles outside {f.date}")
        except ArchiveError as exc:  # a bad checksum or a damaged file: report, store nothing of it
            text = str(exc) if str(exc).startswith(f.name) else f"{f.name}: {exc}"
            what = "failed its checksum" if isinstance(exc, ChecksumMismatch) else "is damaged"
            with state.lock:
                problems.append(f"{text}; fetched its candles from REST instead")
            return self._fallback(key, plan, f, state, f"{f.name} {what}; fetching its span from REST")
        except (NetworkError, BinanceError) as exc:
            with state.lock:
                state.archive_network_failures += 1
                if state.archive_network_failures == _ARCHIVE_NETWORK_FAILURES:
                    problems.append(f"archive unreachable ({exc}); using REST for the rest")
                elif state.archive_network_failures < _ARCHIVE_NETWORK_FAILURES:
                    problems.append(f"{f.name}: {exc}; fetched its candles from REST instead")
            return self._fallback(key, plan, f, state, f"archive failed for {f.name}; using REST")
        span = file_range(f)
        n = self.store.upsert_array(key, arr, fetched=span)
        with state.lock:
            state.written += n
            state.archive_files += 1
        return []

    def _fallback(
        self, key: SeriesKey, plan: DownloadPlan, f: ArchiveFile, state: _Run, note: str
    ) -> list[_Unit]:
        """REST pages for the part of the plan's holes that ``f`` was to fill."""
        if note:
            with state.lock:
                state.note = note
        span = file_range(f)
        ranges = intersect_ranges(plan.missing, [span], key.interval) if span is not None else []
        return [
            _Unit(page=p, slots=count_open_times(p, key.interval))
            for r in ranges
            for p in pages(r, key.interval, self.per_page)
        ]


def _file_slots(plan: DownloadPlan, f: ArchiveFile) -> int:
    span = file_range(f)
    if span is None:
        return 0
    iv = plan.key.interval
    return sum(count_open_times(r, iv) for r in intersect_ranges(plan.missing, [span], iv))


class _Tracker:
    """Progress bookkeeping and throttled reports (touched by the run's thread only)."""

    def __init__(self, callback: Callable[[Progress], None] | None, min_interval_s: float) -> None:
        self.callback = callback
        self.min_interval_s = min_interval_s
        self.total_candles = self.done_candles = 0
        self.total_units = self.done_units = 0
        self.archive_left = 0
        self.note = ""
        self._t0 = time.monotonic()
        self._last = -float("inf")

    def start(self, total_candles: int, total_units: int) -> None:
        self.total_candles, self.total_units = total_candles, total_units
        self._t0 = time.monotonic()

    def add_units(self, n: int) -> None:
        self.total_units += n

    def complete(self, slots: int) -> None:
        self.done_units += 1
        self.done_candles += slots

    def emit(self, phase: str, force: bool = False) -> None:
        if self.callback is None:
            return
        now = time.monotonic()
        if not force and now - self._last < self.min_interval_s:
            return
        self._last = now
        elapsed = now - self._t0
        rate = self.done_candles / elapsed if elapsed > 0 else 0.0
        left = self.total_candles - self.done_candles
        eta = 0.0 if left <= 0 else (left / rate if rate > 0 else None)
        report = Progress(
            phase,
            self.done_candles,
            self.total_candles,
            self.done_units,
            self.total_units,
            rate,
            eta,
            self.note,
        )
        try:
            self.callback(report)
        except Exception:  # a broken progress display must not break the download
            _log.exception("progress callback failed")
