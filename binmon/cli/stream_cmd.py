"""``binmon stream SYMBOL``: print live candles, append closed ones to a CSV.

The candles come from the same stream client, REST client and candle series the
desktop app uses: a reconnect is followed by a REST backfill, so the CSV never misses
a candle, and a restart with the same ``--csv`` resumes after its last row (filling
the hole over REST first).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from binmon.binance.codec import kline_stream
from binmon.binance.rest import RestClient
from binmon.binance.stream import StreamClient
from binmon.cli.common import CliError, add_endpoint_args, check_symbol, endpoints
from binmon.core.candles import CandleSeries
from binmon.core.events import ConnectionStatus, ConnState
from binmon.core.intervals import INTERVALS
from binmon.core.models import Kline, KlineEvent, StreamEvent
from binmon.history.backfill import rest_backfill
from binmon.history.csv_klines import KlineCsvWriter


def register(sub: Any) -> None:
    """Add the ``stream`` subcommand to ``sub`` (an argparse subparsers object)."""
    p = sub.add_parser("stream", help="print live candles of a symbol; append closed candles to a CSV")
    p.add_argument("symbol", help="symbol, e.g. BTCUSDT (case-insensitive)")
    p.add_argument(
        "--interval",
        "-i",
        default="1m",
        choices=INTERVALS,
        metavar="INTERVAL",
        help="kline interval: " + " ".join(INTERVALS) + " (default 1m)",
    )
    p.add_argument("--csv", type=Path, default=None, help="append each closed candle to this CSV file")
    p.add_argument("--no-header", action="store_true", help="do not write a header row into a new CSV")
    p.add_argument(
        "--history",
        type=int,
        default=5,
        metavar="N",
        help="closed candles of history to print first (default 5)",
    )
    p.add_argument("--duration", type=float, default=None, metavar="S", help="stop after S seconds")
    add_endpoint_args(p)
    p.set_defaults(func=run)


def _fmt_time(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


class CandlePrinter:
    """Turns kline updates into terminal lines, prices at the symbol's tick precision."""

    def __init__(self, out: TextIO, precision: int) -> None:
        self.out = out
        self.p = precision

    def line(self, k: Kline) -> str:
        p = self.p
        state = "closed" if k.closed else "open  "
        return (
            f"{_fmt_time(k.open_time)}Z {k.symbol} {k.interval} {state} "
            f"O {k.open:.{p}f}  H {k.high:.{p}f}  L {k.low:.{p}f}  C {k.close:.{p}f}  "
            f"V {k.volume:.8g}  trades {k.trades}"
        )

    def show(self, k: Kline) -> None:
        print(self.line(k), file=self.out, flush=True)


def run(args: argparse.Namespace) -> int:
    """Entry point of ``binmon stream``: returns the exit code."""
    if args.history < 0 or args.history > 1000:
        raise CliError("--history must be between 0 and 1000")
    if args.duration is not None and args.duration <= 0:
        raise CliError("--duration must be positive")
    with endpoints(args) as ep:
        return asyncio.run(_stream(args, ep.ws, ep.rest))


async def _stream(args: argparse.Namespace, ws_url: str, rest_url: str) -> int:
    loop = asyncio.get_running_loop()
    rest = RestClient(rest_url)
    writer: KlineCsvWriter | None = None
    try:
        info, _ = await loop.run_in_executor(None, check_symbol, rest, args.symbol)
        symbol, interval = info.symbol, args.interval
        printer = CandlePrinter(sys.stdout, info.price_precision)
        series = CandleSeries(symbol, interval)
        if args.csv is not None:
            try:
                writer = KlineCsvWriter(args.csv, header=not args.no_header)
            except OSError as exc:
                raise CliError(f"cannot open {args.csv}: {exc.strerror or exc}") from exc

        start = None if writer is None or writer.last_open_time is None else writer.last_open_time + 1
        if start is not None:
            history = await rest_backfill(rest)(symbol, interval, start)
        else:
            history = await loop.run_in_executor(
                None, lambda: rest.klines(symbol, interval, limit=max(args.history, 1) + 1)
            )
        series.merge(history)
        closed = [k for k in series.bars if k.closed]
        for k in closed[-args.history :] if args.history else []:
            printer.show(k)
        for k in closed:
            if writer is not None:
                writer.write(k)

        def on_event(ev: StreamEvent) -> None:
            if not isinstance(ev, KlineEvent):
                return
            k = ev.kline
            if k.symbol != symbol or k.interval != interval:
                return
            if series.apply(k):
                printer.show(k)
            if writer is not None:
                writer.write(k)

        def on_status(st: ConnectionStatus) -> None:
            if st.state is ConnState.CLOSED:
                return
            if st.state is ConnState.LIVE:
                msg = "live"
            elif st.state is ConnState.CONNECTING:
                msg = f"connecting to {ws_url}"
            elif st.state is ConnState.RECONNECTING and st.retry_in is not None:
                msg = f"reconnecting (attempt {st.attempt}, retry in {st.retry_in:.1f} s): {st.reason}"
            else:
                msg = f"{st.state.value} {st.reason}".rstrip()
            print(f"binmon: {msg}", file=sys.stderr, flush=True)

        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        client = StreamClient(ws_url, on_event=on_event, on_status=on_status, backfill=rest_backfill(rest))
        stream = kline_stream(symbol, interval)
        if series.last_closed_open_time is not None:
            # A candle closing between the history request and the subscription is never
            # pushed live: let the client backfill from our last closed candle first.
            client.seed(stream, series.last_closed_open_time)
        async with client:
            await client.subscribe([stream])
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), args.duration)
        return 0
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        if writer is not None:
            writer.close()
        rest.close()
