"""What a download must fetch, and from where: archive files and REST pages. Pure, no I/O.

:func:`make_plan` turns a request (series, open-time span, source) plus what the store already
covers, the server's clock and the symbol's listing time into a :class:`DownloadPlan`:

1. the span is clamped to candles closed at ``now`` (never the forming one) and to the listing:
   open times before the first candle ever are ``below_listing``, marked fetched by the
   downloader so nobody asks for them again;
2. :func:`~binmon.history.planner.missing` subtracts the store's coverage: the holes;
3. each hole is split between the archive and REST according to the source:

   * ``rest``: every hole in REST pages of ``per_page`` candles;
   * ``archive``: every file :func:`~binmon.history.archive.plan_archive` offers for the hole
     (monthly files for whole past months, daily files for the rest, partial edge days
     included); REST only for what no published file can hold (the current day);
   * ``auto``: holes of at most :data:`AUTO_ARCHIVE_MIN_PAGES` pages go to REST whole (a few
     weight-2 requests beat two archive requests per file). Longer holes use the archive
     files that each hold at least ``per_page`` wanted candles, i.e. that replace at least
     one full REST page (1m days and months, 1s everything; not 1h months or 5m days, and not
     a day the hole only grazes); the rest, the tail of today included, goes to REST.

REST pages and archive files never overlap, so the downloader can run them in any order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from binmon.history.archive import ArchiveFile, plan_archive
from binmon.history.dates import format_ms
from binmon.history.planner import SPOT_PAGE, clamp_to_closed, missing, pages
from binmon.history.ranges import (
    SeriesKey,
    TimeRange,
    align_inward,
    count_open_times,
    intersect_ranges,
    prev_open,
    subtract_ranges,
)

__all__ = [
    "ARCHIVE_MARKETS",
    "AUTO_ARCHIVE_MIN_PAGES",
    "CLOSED_MARGIN_MS",
    "DownloadPlan",
    "DownloadRequest",
    "Source",
    "file_range",
    "make_plan",
]

Source = Literal["auto", "rest", "archive"]
SOURCES: tuple[str, ...] = ("auto", "rest", "archive")

#: ``auto`` uses the archive only for a hole needing more than this many REST pages: below it
#: (20 pages = 20,000 candles: two weeks of 1m, 2.3 years of 1h) REST is a handful of cheap
#: requests, and whole-file downloads of partly wanted days would cost more than they save.
AUTO_ARCHIVE_MIN_PAGES = 20
#: Candles must have closed this long ago (server time) to be planned: the REST client's own
#: "closed" test uses a lower bound of the server's clock too; the margin keeps the two from
#: disagreeing about a candle that closed a moment ago (it would be stored but not covered).
CLOSED_MARGIN_MS = 2_000
#: SeriesKey market -> the archive's path segment.
ARCHIVE_MARKETS: dict[str, str] = {"spot": "spot", "um": "futures/um", "cm": "futures/cm"}


@dataclass(frozen=True)
class DownloadRequest:
    """Download the candles of ``key`` opening in ``[start_ms, end_ms]`` (ms, inclusive, UTC).

    ``end_ms`` None means up to now (the newest closed candle). ``source`` picks where
    candles come from (see the module docstring).
    """

    key: SeriesKey
    start_ms: int
    end_ms: int | None = None
    source: Source = "auto"

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"source must be one of {', '.join(SOURCES)}, got {self.source!r}")
        if self.end_ms is not None and self.end_ms < self.start_ms:
            raise ValueError(f"end_ms {self.end_ms} is before start_ms {self.start_ms}")


@dataclass(frozen=True)
class DownloadPlan:
    """What one run fetches. Built by :func:`make_plan`.

    ``want``: the requested open times after clamping to closed candles and the listing
    (None: nothing to fetch at all); ``below_listing``: requested open times before the
    symbol's first candle (mark fetched, fetch nothing); ``missing``: the holes of ``want``
    the store does not cover; ``archive_files`` and ``rest_pages``: the units that fill them
    (disjoint; files may reach outside the holes); ``estimated_candles``: open times the
    holes contain (an upper bound: the exchange has no candle where nothing traded);
    ``notes``: one-line remarks for the user (clamped start, nothing closed yet, ...).
    """

    key: SeriesKey
    source: Source
    now_ms: int
    listing_ms: int | None
    want: TimeRange | None
    below_listing: TimeRange | None
    missing: tuple[TimeRange, ...]
    archive_files: tuple[ArchiveFile, ...]
    rest_pages: tuple[TimeRange, ...]
    estimated_candles: int
    notes: tuple[str, ...] = ()

    @property
    def total_units(self) -> int:
        """Archive files plus REST pages."""
        return len(self.archive_files) + len(self.rest_pages)

    @property
    def up_to_date(self) -> bool:
        """True when there is nothing to fetch (everything wanted is covered)."""
        return not self.missing


def file_range(f: ArchiveFile) -> TimeRange | None:
    """The open times an archive file covers completely (its span, aligned inward)."""
    return align_inward(TimeRange(f.start_ms, f.end_ms), f.interval)


def make_plan(
    req: DownloadRequest,
    coverage: Sequence[TimeRange],
    now_ms: int,
    listing_ms: int | None,
    *,
    per_page: int = SPOT_PAGE,
    auto_min_pages: int = AUTO_ARCHIVE_MIN_PAGES,
    publish_lag_ms: int = 0,
    archive_available: bool = True,
) -> DownloadPlan:
    """The plan for ``req`` given the store's ``coverage`` of its series (see the module docstring).

    ``now_ms`` is the server's clock (candles closed :data:`CLOSED_MARGIN_MS` before it are
    planned); ``listing_ms`` the open time of the symbol's first candle at this interval (None:
    unknown, no clamp). ``archive_available`` False (no archive client, or a market the
    archive lacks) turns every source into REST. ``publish_lag_ms`` is passed to
    :func:`~binmon.history.archive.plan_archive`.
    """
    key, iv = req.key, req.key.interval
    end = now_ms if req.end_ms is None else min(req.end_ms, now_ms)
    notes: list[str] = []
    below: TimeRange | None = None
    start = req.start_ms
    if listing_ms is not None and start < listing_ms:
        # Nothing exists before the first candle: cover it once, so it is never asked again.
        below = align_inward(TimeRange(start, prev_open(iv, listing_ms)), iv)
        notes.append(f"{key.symbol} {iv} history starts at {format_ms(listing_ms)}; nothing before it")
        start = listing_ms
    want = clamp_to_closed(TimeRange(start, end), iv, now_ms - CLOSED_MARGIN_MS) if start <= end else None
    if want is None:
        notes.append("no closed candle in the requested range")
        return DownloadPlan(key, req.source, now_ms, listing_ms, None, below, (), (), (), 0, tuple(notes))
    holes = missing(coverage, want, iv)
    source = req.source if archive_available else "rest"
    files: list[ArchiveFile] = []
    seen: set[str] = set()
    for hole in holes:
        for f in _archive_files(req, hole, now_ms, source, per_page, auto_min_pages, publish_lag_ms, holes):
            if f.path not in seen:  # two holes in one day plan the same daily file
                seen.add(f.path)
                files.append(f)
    spans = [r for r in (file_range(f) for f in files) if r is not None]
    rest_ranges = subtract_ranges(holes, spans, iv)
    rest_pages = [p for r in rest_ranges for p in pages(r, iv, per_page)]
    estimate = sum(count_open_times(h, iv) for h in holes)
    return DownloadPlan(
        key,
        req.source,
        now_ms,
        listing_ms,
        want,
        below,
        tuple(holes),
        tuple(files),
        tuple(rest_pages),
        estimate,
        tuple(notes),
    )


def _archive_files(
    req: DownloadRequest,
    hole: TimeRange,
    now_ms: int,
    source: str,
    per_page: int,
    auto_min_pages: int,
    publish_lag_ms: int,
    holes: Sequence[TimeRange],
) -> list[ArchiveFile]:
    iv = req.key.interval
    if source == "rest" or (source == "auto" and count_open_times(hole, iv) <= auto_min_pages * per_page):
        return []
    market = ARCHIVE_MARKETS[req.key.market]
    files, _ = plan_archive(
        req.key.symbol, iv, hole.start, hole.end, now_ms, market, publish_lag_ms=publish_lag_ms
    )
    if source == "archive":
        return files
    # auto: a file is worth its two requests when it replaces at least one full REST page.
    keep = []
    for f in files:
        span = file_range(f)
        wanted = intersect_ranges(holes, [span], iv) if span is not None else []
        if sum(count_open_times(r, iv) for r in wanted) >= per_page:
            keep.append(f)
    return keep
