"""History commands: ``binmon download``, ``export``, ``import`` and ``stored``, over the local store.

* ``download SYMBOL --interval 1h --start 2024-01-01 [--end ...] [--source auto|rest|archive]``
  fetches what the store lacks (the same :class:`~binmon.history.download.Downloader` the app
  uses). Progress on stderr (one updating line on a terminal, a line every few seconds
  otherwise), a summary on stdout. Ctrl-C cancels: what was fetched stays stored, exit 130,
  and running the same command again resumes. ``--csv FILE [--header]`` then writes the
  requested range (what the store holds of it) to FILE, exactly as ``export`` would.
* ``export SYMBOL --interval 1h [--start] [--end] --out FILE|- [--header]``: Binance's
  12-column kline CSV, formatted as Binance writes it.
* ``import FILE [--symbol S --interval I]``: a data.binance.vision ``.zip`` or ``.csv`` (symbol
  and interval read from its name when not given; a sibling ``.CHECKSUM`` is verified).
* ``stored``: what the store holds.

Dates: ``YYYY-MM-DD``, ``YYYY-MM-DD HH:MM[:SS]``, ISO 8601 with a zone, or epoch ms; UTC unless
a zone is given; a bare ``--end`` date includes that whole day (:mod:`binmon.history.dates`).
The store is the app's, ``<data dir>/candles.sqlite`` (``--basedir DIR`` puts it under ``DIR/data``);
with ``--demo`` it is the demo market's own file (simulated candles never mix with real ones).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from binmon.cli.common import add_archive_arg, add_endpoint_args
from binmon.core.intervals import IntervalError, check_interval
from binmon.history.dates import DateError, parse_date

#: binmon.history.ranges.MARKETS, spelled out: importing it would load numpy for every command.
_MARKETS = ("spot", "um", "cm")


def _lazy(name: str) -> Any:
    """The command ``name`` of :mod:`binmon.cli.history_run`, imported only when it runs (it loads
    pandas, numpy and SQLite: ~0.3 s that ``binmon sim`` or the GUI need not pay)."""

    def call(args: argparse.Namespace) -> int:
        from binmon.cli import history_run

        return int(getattr(history_run, name)(args))

    return call


def register(sub: Any) -> None:
    """Add ``download``, ``export``, ``import`` and ``stored`` to ``sub`` (argparse subparsers)."""
    p = sub.add_parser("download", help="download candle history into the local store (resumable)")
    p.add_argument("symbol", metavar="SYMBOL", help="e.g. BTCUSDT")
    _interval_arg(p, required=True)
    p.add_argument("--start", required=True, type=_date_arg, help="first candle's date (UTC unless zoned)")
    p.add_argument("--end", type=_date_arg, default=None, help="last date, inclusive (default: now)")
    p.add_argument(
        "--source",
        choices=["auto", "rest", "archive"],
        default="auto",
        help="auto (default): the archive for long ranges, REST for the tail; rest; archive",
    )
    p.add_argument("--workers", type=int, default=4, help="requests in flight at once (default 4)")
    p.add_argument(
        "--csv",
        type=Path,
        default=None,
        metavar="FILE",
        help="then write the requested range to FILE as `binmon export` does (Binance kline CSV)",
    )
    p.add_argument("--header", action="store_true", help="with --csv: write a header row first")
    _basedir_arg(p)
    add_endpoint_args(p)
    add_archive_arg(p)
    p.set_defaults(func=_lazy("run_download"))

    p = sub.add_parser("export", help="write stored candles as a Binance kline CSV")
    p.add_argument("symbol", metavar="SYMBOL")
    _interval_arg(p, required=True)
    p.add_argument("--start", type=_date_arg, default=None, help="first date (default: the first stored)")
    p.add_argument("--end", type=_date_arg, default=None, help="last date, inclusive (default: the last)")
    p.add_argument("--out", "-o", required=True, help="file to write, or - for stdout")
    p.add_argument("--header", action="store_true", help="write a header row (spot archives have none)")
    _market_arg(p)
    _basedir_arg(p, demo=True)
    p.set_defaults(func=_lazy("run_export"))

    p = sub.add_parser("import", help="import a data.binance.vision kline .zip or .csv into the store")
    p.add_argument("file", type=Path, metavar="FILE")
    p.add_argument("--symbol", default=None, help="default: from the file name (BTCUSDT-1m-2024-01.zip)")
    _interval_arg(p, required=False)
    _market_arg(p)
    _basedir_arg(p, demo=True)
    p.set_defaults(func=_lazy("run_import"))

    p = sub.add_parser("stored", help="list the candle series in the local store")
    _basedir_arg(p, demo=True)
    p.set_defaults(func=_lazy("run_stored"))


def _interval_arg(p: argparse.ArgumentParser, *, required: bool) -> None:
    p.add_argument("--interval", "-i", required=required, type=_interval, help="e.g. 1m, 1h, 1d, 1M")


def _market_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--market", choices=_MARKETS, default="spot", help="spot (default), um or cm futures")


def _basedir_arg(p: argparse.ArgumentParser, *, demo: bool = False) -> None:
    p.add_argument("--basedir", type=Path, default=None, help="keep binmon's data under DIR/data")
    if demo:  # `download --demo` (an endpoint option) picks the demo store too
        p.add_argument("--demo", action="store_true", help="the demo market's store (what --demo downloaded)")


def _interval(text: str) -> str:
    try:
        return check_interval(text)
    except IntervalError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _date_arg(text: str) -> str:
    """Check a date at parse time (a bad one is a usage error, exit 2); keep the text."""
    try:
        parse_date(text)
    except DateError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text
