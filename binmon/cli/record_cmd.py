"""``binmon record STREAM... --out FILE.jsonl``: capture raw frames with receive times."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from pathlib import Path
from typing import Any

from binmon.binance.codec import parse_stream_name
from binmon.binance.rest import RestClient
from binmon.cli.common import CliError, add_endpoint_args, check_symbol, endpoints
from binmon.history.record import CaptureWriter, record


def register(sub: Any) -> None:
    """Add the ``record`` subcommand to ``sub`` (an argparse subparsers object)."""
    p = sub.add_parser("record", help="capture raw websocket frames into a JSON-lines file")
    p.add_argument(
        "streams",
        nargs="+",
        metavar="STREAM",
        help="stream names, e.g. btcusdt@trade btcusdt@kline_1m '!miniTicker@arr'",
    )
    p.add_argument("--out", "-o", type=Path, required=True, help="capture file to write (JSON lines)")
    p.add_argument("--duration", type=float, default=None, metavar="S", help="stop after S seconds")
    p.add_argument(
        "--no-check",
        action="store_true",
        help="do not check the symbols over REST first (e.g. when REST is blocked)",
    )
    add_endpoint_args(p)
    p.set_defaults(func=run)


def _normalise(streams: list[str]) -> list[str]:
    out: list[str] = []
    for s in streams:
        name = s if s.startswith("!") else s.lower()
        try:
            parse_stream_name(name)
        except ValueError as exc:
            raise CliError(f"not a Binance stream name: {s!r} ({exc})") from exc
        if name not in out:
            out.append(name)
    return out


def run(args: argparse.Namespace) -> int:
    """Entry point of ``binmon record``: returns the exit code."""
    streams = _normalise(args.streams)
    if args.duration is not None and args.duration <= 0:
        raise CliError("--duration must be positive")
    with endpoints(args) as ep:
        if not args.no_check:
            with RestClient(ep.rest) as rest:
                for sym in sorted({parse_stream_name(s)[0] for s in streams} - {""}):
                    check_symbol(rest, sym)
        try:
            writer = CaptureWriter(args.out, ep.ws, streams)
        except OSError as exc:
            raise CliError(f"cannot write {args.out}: {exc.strerror or exc}") from exc
        with writer:
            asyncio.run(_record(ep.ws, streams, writer, args.duration))
        st = writer.stats
        print(
            f"binmon: recorded {st.frames} frames ({st.bytes} bytes, {st.gaps} gaps) to {args.out}",
            file=sys.stderr,
        )
    return 0


async def _record(ws_url: str, streams: list[str], writer: CaptureWriter, duration: float | None) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if duration is not None:
        loop.call_later(duration, stop.set)
    try:
        await record(
            ws_url,
            streams,
            writer,
            stop,
            on_status=lambda m: print(f"binmon: {m}", file=sys.stderr, flush=True),
        )
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(Exception):
                loop.remove_signal_handler(sig)
