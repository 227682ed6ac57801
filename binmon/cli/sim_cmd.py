"""``binmon sim``: run the Binance-compatible simulator in the foreground.

Prints the URLs as one JSON line on stdout (``{"ws": "ws://127.0.0.1:PORT", "rest":
"http://127.0.0.1:PORT"}``) once it listens, so a parent process (e2e tests, scripts) can read
one line and connect; logs go to stderr. Runs until SIGINT or SIGTERM, then closes every
connection and exits 0. A bad argument is one line on stderr and exit code 2.

``--replay FILE`` takes a data.binance.vision trades CSV (its trades replace the generator's
for one symbol) or a capture written by ``binmon record`` (capture mode: the recorded frames
are replayed verbatim, see :mod:`binmon.sim.capture_engine`); the file's content decides.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from binmon.sim.faults import FAULT_NAMES

log = logging.getLogger("binmon.cli.sim")


def register(sub: Any) -> None:
    """Add the ``sim`` subcommand to ``sub`` (an argparse subparsers object)."""
    p = sub.add_parser("sim", help="run the Binance-compatible market simulator (websocket + REST)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=0, help="port (default 0: any free port)")
    p.add_argument("--seed", type=int, default=42, help="random seed of the generated market (default 42)")
    p.add_argument("--speed", type=float, default=1.0, help="sim seconds per real second (default 1)")
    p.add_argument(
        "--symbols",
        default=None,
        metavar="SYM,SYM",
        help="comma-separated subset of the default symbols (default: all)",
    )
    p.add_argument(
        "--trade-rate",
        type=float,
        default=None,
        metavar="N",
        help="trades per second for every symbol (default: per-symbol rates)",
    )
    p.add_argument(
        "--history-days",
        type=float,
        default=30.0,
        metavar="D",
        help="days of history before the start (default 30)",
    )
    p.add_argument(
        "--replay",
        type=Path,
        default=None,
        metavar="FILE",
        help="replay a data.binance.vision trades CSV instead of generating trades, or a raw "
        "capture written by `binmon record` (told apart by content): its frames are sent verbatim, "
        "paced by their receive times scaled by --speed, until the capture ends",
    )
    p.add_argument("--replay-symbol", default=None, metavar="S", help="symbol the replay file is for")
    p.add_argument(
        "--max-lifetime",
        type=float,
        default=None,
        metavar="S",
        help="close websocket connections after S seconds (default 24 h)",
    )
    p.add_argument(
        "--ping-interval", type=float, default=None, metavar="S", help="server ping period (default 20)"
    )
    p.add_argument(
        "--weight-limit",
        type=int,
        default=None,
        metavar="N",
        help="REST request weight per minute (default 6000)",
    )
    p.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="NAME[=VALUE]",
        help="turn a fault on at start: " + ", ".join(FAULT_NAMES) + " (repeatable)",
    )
    p.set_defaults(func=run)  # fmt: skip


class _BadArgs(Exception):
    pass


def _configs(args: argparse.Namespace) -> tuple[Any, Any]:
    from binmon.sim.config import DEFAULT_SYMBOLS, SimConfig
    from binmon.sim.server import ServerConfig

    symbols = DEFAULT_SYMBOLS
    if args.symbols:
        wanted = [s.strip().upper() for s in args.symbols.split(",") if s.strip()]
        known = {s.symbol: s for s in DEFAULT_SYMBOLS}
        unknown = [w for w in wanted if w not in known]
        if unknown or not wanted:
            raise _BadArgs(f"--symbols: unknown {', '.join(unknown) or '(none)'}; known: {', '.join(known)}")
        symbols = tuple(known[w] for w in dict.fromkeys(wanted))
    if args.replay is not None and not args.replay.is_file():
        raise _BadArgs(f"--replay: no such file {args.replay}")
    if args.replay_symbol and args.replay is None:
        raise _BadArgs("--replay-symbol needs --replay")
    if args.replay_symbol and _is_capture(args.replay):
        raise _BadArgs("--replay-symbol applies to a trades CSV, not to a capture")
    try:
        sim = SimConfig(
            symbols=symbols,
            seed=args.seed,
            speed=args.speed,
            history_days=args.history_days,
            replay=args.replay,
            replay_symbol=args.replay_symbol.upper() if args.replay_symbol else None,
            trade_rate=args.trade_rate,
        )
        server = ServerConfig(host=args.host, port=args.port)
        if args.max_lifetime is not None:
            server = replace(server, max_lifetime_s=args.max_lifetime)
        if args.ping_interval is not None:
            server = replace(server, ping_interval=args.ping_interval)
        if args.weight_limit is not None:
            server = replace(server, weight_limit=args.weight_limit)
    except ValueError as exc:
        raise _BadArgs(str(exc)) from None
    return sim, server


def _is_capture(path: Path) -> bool:
    from binmon.sim.capture import is_capture

    try:
        return is_capture(path)
    except OSError as exc:
        raise _BadArgs(f"--replay: cannot read {path}: {exc.strerror or exc}") from None


def _parse_faults(specs: list[str]) -> list[tuple[str, str | None]]:
    out: list[tuple[str, str | None]] = []
    for spec in specs:
        name, sep, value = spec.partition("=")
        if name not in FAULT_NAMES:
            raise _BadArgs(f"--fault: unknown fault {name!r}; known: {', '.join(FAULT_NAMES)}")
        out.append((name, value if sep else None))
    return out


def run(args: argparse.Namespace) -> int:
    """Entry point of ``binmon sim``: returns the exit code (0 after SIGINT/SIGTERM, 2 for bad args)."""
    try:
        sim, server = _configs(args)
        faults = _parse_faults(args.fault)
    except _BadArgs as exc:
        print(f"binmon sim: error: {exc}", file=sys.stderr)
        return 2
    try:
        return asyncio.run(_serve(sim, server, faults))
    except KeyboardInterrupt:  # a second Ctrl-C while stopping: still no traceback
        return 0


async def _serve(sim: Any, server_cfg: Any, faults: list[tuple[str, str | None]]) -> int:
    from binmon.sim.server import SimServer

    try:
        server = SimServer(sim, server_cfg)
        urls = await server.start()
    except (OSError, ValueError) as exc:
        print(f"binmon sim: error: {exc}", file=sys.stderr)
        return 2
    try:
        for name, value in faults:
            server.faults.apply(name, value)
    except ValueError as exc:
        await server.stop()
        print(f"binmon sim: error: --fault {name}: {exc}", file=sys.stderr)
        return 2
    print(urls.as_json(), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not on this platform/thread
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
        log.info("stopping the simulator")
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)
        await server.stop()
    return 0
