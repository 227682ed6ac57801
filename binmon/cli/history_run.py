"""The history commands' work (see :mod:`binmon.cli.history_cmd` for the commands and options).

Kept apart from the argument definitions so that only a history command loads pandas, numpy
and the store.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from binmon.binance.errors import BinanceError
from binmon.binance.rest import RestClient
from binmon.cli.common import CliError, check_symbol, endpoints
from binmon.history.archive import ArchiveError
from binmon.history.archive_client import ArchiveClient
from binmon.history.dates import DateError, format_ms, parse_date, parse_range
from binmon.history.download import Downloader, DownloadRequest, Progress, store_clock
from binmon.history.download_plan import file_range
from binmon.history.kline_io import infer_series, iter_stored_klines, read_kline_file, write_klines_csv
from binmon.history.planner import missing
from binmon.history.ranges import SeriesKey, TimeRange, intersect_ranges, merge_ranges
from binmon.history.store import CandleStore, StoreError, default_store_path, demo_store_path
from binmon.paths import AppPaths

#: A non-terminal stderr gets one progress line this often.
_LOG_EVERY_S = 5.0


def _store_path(args: argparse.Namespace) -> Path:
    """The store the command works on: the app's, or with ``--demo`` the demo market's own file
    (simulated candles must never mix with the exchange's history of the same symbols)."""
    data_dir = AppPaths.resolve(args.basedir).data_dir
    if getattr(args, "demo", False):
        from binmon.sim.config import demo_config, market_id  # the app's demo uses the same file

        return demo_store_path(data_dir, market_id(demo_config()))
    return default_store_path(data_dir)


@contextlib.contextmanager
def _store(args: argparse.Namespace, *, create: bool, clock: Any = None) -> Iterator[CandleStore]:
    path = _store_path(args)
    if not create and not path.exists():
        raise CliError(f"no candle store at {path} (nothing downloaded or imported yet)")
    try:
        store = CandleStore.open(path, clock=clock)
    except StoreError as exc:
        raise CliError(str(exc)) from None
    except OSError as exc:
        raise CliError(f"cannot create the candle store at {path}: {exc.strerror or exc}") from None
    with store:
        try:
            yield store
        except StoreError as exc:
            raise CliError(str(exc)) from None


# ---------------------------------------------------------------- download


def run_download(args: argparse.Namespace) -> int:
    """Entry point of ``binmon download``: returns the exit code."""
    if args.workers < 1:
        raise CliError("--workers must be at least 1")
    csv_out: Path | None = getattr(args, "csv", None)
    if csv_out is not None and str(csv_out) == "-":  # stdout carries the summary line
        raise CliError("--csv needs a file name (for stdout use `binmon export --out -`)")
    with endpoints(args) as ep, RestClient(ep.rest) as rest, ArchiveClient(ep.archive) as archive:
        info, _ = check_symbol(rest, args.symbol, require_trading=False)
        now = rest.server_now_ms()
        try:
            start_ms, end_ms = parse_range(args.start, args.end, now)
        except DateError as exc:
            raise CliError(str(exc)) from None
        assert start_ms is not None
        key = SeriesKey.spot(info.symbol, args.interval)
        req = DownloadRequest(key, start_ms, end_ms, args.source)
        with _store(args, create=True, clock=store_clock(rest)) as store:
            dl = Downloader(store, rest, archive, workers=args.workers)
            plan = dl.plan(req)  # run() plans again (cheap, cached): this one is for the notes
            for note in plan.notes:
                print(f"binmon: note: {note}", file=sys.stderr)
            printer = _ProgressPrinter(sys.stderr, skip_notes=plan.notes)
            cancel = threading.Event()
            before = store.count(key)
            with _cancel_on_sigint(cancel):
                try:
                    result = dl.run(req, progress=printer, cancel=cancel)
                except (BinanceError, StoreError) as exc:
                    printer.finish()
                    gained = store.count(key) - before
                    kept = f"; kept {gained} new candles, run the same command again to resume"
                    raise CliError(f"{exc}{kept if gained else ''}") from None
            printer.finish()
            for problem in result.problems:
                print(f"binmon: warning: {problem}", file=sys.stderr)
            held = store.count(key)
            bounds = store.bounds(key)
            exported = None
            if csv_out is not None and not result.cancelled:
                exported = _export_range(store, key, start_ms, end_ms, csv_out, header=args.header)
        span = f"{format_ms(bounds.start)} .. {format_ms(bounds.end)}" if bounds else "none"
        if result.cancelled:
            print(
                f"binmon: cancelled: kept the {result.written} candles fetched so far "
                f"({held} stored for {key.symbol} {key.interval}); run the same command again to resume",
                file=sys.stderr,
            )
            return 130
        print(
            f"{key.symbol} {key.interval}: {result.written} candles written, {result.already_had} already "
            f"stored; {result.rest_requests} REST requests, {result.archive_files} archive files, "
            f"{result.seconds:.1f} s. Store holds {held} candles ({span})."
        )
        if exported is not None:
            what = f"{exported} {key.symbol} {key.interval} candles"
            print(f"binmon: exported {what} to {csv_out}", file=sys.stderr)
    return 0


def _export_range(
    store: CandleStore, key: SeriesKey, start_ms: int, end_ms: int | None, out: Path, *, header: bool
) -> int:
    """``download --csv``: write the stored candles of ``key`` in ``[start_ms, end_ms]`` to ``out``
    atomically, in ``binmon export``'s format; return the number of rows (0: an empty file, or
    only the header, when the range holds no candle, e.g. a symbol listed after ``end_ms``)."""
    chunks = iter_stored_klines(store, key, start_ms, end_ms)
    return _write_atomically(out, lambda f: write_klines_csv(f, chunks, header=header))


@contextlib.contextmanager
def _cancel_on_sigint(cancel: threading.Event) -> Iterator[None]:
    """Ctrl-C sets ``cancel`` (the download stops and keeps its data); a second one aborts."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        if cancel.is_set():
            raise KeyboardInterrupt
        cancel.set()
        print("\nbinmon: stopping (Ctrl-C again to abort at once)...", file=sys.stderr, flush=True)

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


class _ProgressPrinter:
    """Progress reports -> stderr: one rewritten line on a terminal, a line every few seconds otherwise."""

    def __init__(self, out: TextIO, skip_notes: tuple[str, ...] = ()) -> None:
        self.out = out
        self.tty = out.isatty()
        self.skip_notes = skip_notes  # already printed once
        self._width = 0
        self._last = -float("inf")

    def __call__(self, p: Progress) -> None:
        if p.phase == "planning" or p.total_units == 0:
            return
        eta = f"ETA {p.eta_s:.0f} s" if p.eta_s is not None else "ETA ?"
        pct = 100.0 * p.done_candles / p.total_candles if p.total_candles else 100.0
        text = (
            f"{p.phase}: {pct:5.1f}% {p.done_candles}/{p.total_candles} candles, "
            f"{p.done_units}/{p.total_units} requests, {p.candles_per_s:,.0f} candles/s, {eta}"
        )
        if p.note and p.note not in self.skip_notes:
            text += f" - {p.note}"
        if self.tty:
            self.out.write("\r" + text.ljust(self._width))
            self._width = len(text)
            self.out.flush()
        elif time.monotonic() - self._last >= _LOG_EVERY_S or p.phase == "done":
            self._last = time.monotonic()
            print(f"binmon: {text}", file=self.out, flush=True)

    def finish(self) -> None:
        if self.tty and self._width:
            self.out.write("\n")
            self.out.flush()
            self._width = 0


# ---------------------------------------------------------------- export


def run_export(args: argparse.Namespace) -> int:
    """Entry point of ``binmon export``: returns the exit code."""
    try:
        start_ms = parse_date(args.start) if args.start else None
        end_ms = parse_date(args.end, end_of_day=True) if args.end else None
    except DateError as exc:
        raise CliError(str(exc)) from None
    if start_ms is not None and end_ms is not None and end_ms < start_ms:
        raise CliError(f"end {format_ms(end_ms)} is before start {format_ms(start_ms)}")
    key = _key(args.market, args.symbol, args.interval)
    with _store(args, create=False) as store:
        if store.count(key) == 0:
            raise CliError(f"no stored candles for {key.symbol} {key.interval} ({key.market})")
        first = next(iter_stored_klines(store, key, start_ms, end_ms, chunk=1), None)
        if first is None:
            raise CliError(f"no stored {key.symbol} {key.interval} candles in the requested range")
        chunks = iter_stored_klines(store, key, start_ms, end_ms)
        if args.out == "-":
            try:
                n = write_klines_csv(sys.stdout, chunks, header=args.header)
                sys.stdout.flush()
            except BrokenPipeError:  # `binmon export ... | head`: the reader had enough
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
                return 0
        else:
            n = _write_atomically(Path(args.out), lambda f: write_klines_csv(f, chunks, header=args.header))
    where = "stdout" if args.out == "-" else args.out
    print(f"binmon: exported {n} {key.symbol} {key.interval} candles to {where}", file=sys.stderr)
    return 0


def _write_atomically(path: Path, write: Any) -> int:
    """Write through a temporary file in the same directory, then rename: never a half file."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or Path("."))
    except OSError as exc:
        raise CliError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            n = int(write(f))
        umask = os.umask(0)  # mkstemp makes the file 0600; give it what open() would have
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise CliError(f"cannot write {path}: {exc.strerror or exc}") from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return n


def _key(market: str, symbol: str, interval: str) -> SeriesKey:
    try:
        return SeriesKey(market, symbol.strip().upper(), interval)
    except ValueError as exc:
        raise CliError(str(exc)) from None


# ---------------------------------------------------------------- import


def run_import(args: argparse.Namespace) -> int:
    """Entry point of ``binmon import``: returns the exit code."""
    path: Path = args.file
    inferred = infer_series(path.name)
    symbol = args.symbol or (inferred[0] if inferred else None)
    interval = args.interval or (inferred[1] if inferred else None)
    if symbol is None or interval is None:
        raise CliError(
            f"cannot tell the symbol and interval from the name {path.name!r}; pass --symbol and --interval"
        )
    key = _key(args.market, symbol, interval)
    try:
        arr = read_kline_file(path, key.symbol, key.interval)
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror or exc}") from None
    except (ArchiveError, ValueError) as exc:  # bad rows, bad checksum, bad interval: nothing stored
        raise CliError(f"{path.name}: {exc}") from None
    # A data.binance.vision file holds its whole day or month: record it as fetched, so a
    # download does not ask for it again (only when the file is what its name says).
    fetched: TimeRange | None = None
    if inferred and inferred[2] is not None and (inferred[0], inferred[1]) == (key.symbol, key.interval):
        f = inferred[2]
        ot = arr["open_time"]
        if not ot.size or (f.start_ms <= int(ot[0]) and int(ot[-1]) <= f.end_ms):
            fetched = file_range(f)
    with _store(args, create=True) as store:
        n = store.upsert_array(key, arr, fetched=fetched)
    if arr.size:
        span = f"{format_ms(int(arr['open_time'][0]))} .. {format_ms(int(arr['open_time'][-1]))}"
    else:
        span = "no rows"
    print(f"imported {n} {key.symbol} {key.interval} candles ({span}) from {path.name}")
    return 0


# ---------------------------------------------------------------- stored


def run_stored(args: argparse.Namespace) -> int:
    """Entry point of ``binmon stored``: returns the exit code."""
    path = _store_path(args)
    if not path.exists():
        print(f"nothing stored yet ({path})")
        return 0
    with _store(args, create=False) as store:
        rows = []
        for s in store.series():
            iv = s.key.interval
            gaps = empty = 0
            if s.first_open is not None and s.last_open is not None:
                span = TimeRange(s.first_open, s.last_open)
                known = merge_ranges([*store.present(s.key), *store.coverage(s.key)], iv)
                gaps = len(missing(known, span, iv))
                empty = len(intersect_ranges(store.confirmed_empty(s.key), [span], iv))
            first = _short(s.first_open)
            last = _short(s.last_open)
            rows.append((s.key.market, s.key.symbol, iv, str(s.count), first, last, str(gaps), str(empty)))
    header = ("MARKET", "SYMBOL", "INTERVAL", "CANDLES", "FIRST (UTC)", "LAST (UTC)", "GAPS", "EMPTY")
    if not rows:
        print(f"nothing stored yet ({path})")
        return 0
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]
    for r in (header, *rows):
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    print(
        "\nGAPS: stretches inside FIRST..LAST never downloaded; EMPTY: stretches the exchange has no "
        f"candle for (nothing traded). Store: {path}"
    )
    return 0


def _short(ms: int | None) -> str:
    return format_ms(ms).removesuffix(" UTC") if ms is not None else "-"
