"""Pieces shared by the terminal commands: endpoint options, demo mode, symbol checks."""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from binmon.binance.errors import BinanceAPIError
from binmon.binance.rest import RestClient
from binmon.core.models import ExchangeInfo, SymbolInfo

#: Real Binance spot endpoints (the client code never knows whether it talks to them or the simulator).
BINANCE_WS = "wss://stream.binance.com:9443"
BINANCE_REST = "https://api.binance.com"
#: The kline archive (the simulator serves its copy at its REST root URL).
BINANCE_ARCHIVE = "https://data.binance.vision"


class CliError(Exception):
    """A user-facing error: printed as one line, exit code 1."""


@dataclass(frozen=True)
class Endpoints:
    """Where the client connects: only these URLs differ between Binance and the simulator."""

    ws: str
    rest: str
    demo: bool = False
    archive: str = BINANCE_ARCHIVE
    #: The simulated market's name in demo mode (``binmon.sim.config.market_id``).
    market_id: str = ""
    #: ``--replay``: the embedded simulator replaying the file (a running
    #: :class:`~binmon.sim.thread.SimThread`, whose clock the replay controls drive); else None.
    replay: Any = None


def add_endpoint_args(p: argparse.ArgumentParser) -> None:
    """Add ``--ws-url``, ``--rest-url`` and ``--demo`` to a command's parser."""
    g = p.add_argument_group("endpoints")
    g.add_argument("--ws-url", default=None, help=f"websocket base URL (default {BINANCE_WS})")
    g.add_argument("--rest-url", default=None, help=f"REST base URL (default {BINANCE_REST})")
    g.add_argument(
        "--demo",
        action="store_true",
        help="start the embedded Binance-compatible simulator and use it (no network needed)",
    )


#: Speeds offered for ``--replay-speed`` (and by the window's replay bar).
REPLAY_SPEEDS = (1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0)


def add_replay_args(p: argparse.ArgumentParser) -> None:
    """Add ``--replay FILE``, ``--replay-speed N`` and ``--replay-symbol S`` (the app's replay mode)."""
    g = p.add_argument_group("replay")
    g.add_argument(
        "--replay",
        type=Path,
        default=None,
        metavar="FILE",
        help="play a `binmon record` capture or a data.binance.vision trades CSV into the app as a live "
        "market, through the embedded simulator (pause/resume and speed in the window)",
    )
    g.add_argument(
        "--replay-speed", type=_speed, default=1.0, metavar="N", help="replay speed, 1 to 100 (default 1)"
    )
    g.add_argument(
        "--replay-symbol", default=None, metavar="S", help="the trades CSV's symbol (default: its name)"
    )


def _speed(text: str) -> float:
    try:
        x = float(text.lower().removesuffix("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a speed: {text!r}") from None
    if not 1.0 <= x <= 100.0:
        raise argparse.ArgumentTypeError(f"replay speed must be between 1 and 100, got {text}")
    return x


def add_archive_arg(p: argparse.ArgumentParser) -> None:
    """Add ``--archive-url`` (for commands that read data.binance.vision) to a command's parser."""
    p.add_argument(
        "--archive-url",
        default=None,
        help=f"kline archive root URL (default {BINANCE_ARCHIVE}; with --demo the simulator's). "
        "When --rest-url points at a simulator, pass the same URL here",
    )


@contextlib.contextmanager
def endpoints(args: argparse.Namespace) -> Iterator[Endpoints]:
    """Resolve the endpoints from the parsed args, running the simulator for ``--demo``.

    The simulator runs on its own thread and event loop for the duration of the block.
    ``--archive-url`` (when the command has it) sets :attr:`Endpoints.archive`; with
    ``--demo`` the archive is the simulator's root URL.
    """
    archive_url = getattr(args, "archive_url", None)
    if getattr(args, "replay", None) is not None:
        if args.demo or args.ws_url or args.rest_url or archive_url:
            raise CliError("--replay cannot be combined with --demo/--ws-url/--rest-url/--archive-url")
        with _replay_endpoints(args) as ep:
            yield ep
        return
    if args.demo and (args.ws_url or args.rest_url or archive_url):
        raise CliError("--demo cannot be combined with --ws-url/--rest-url/--archive-url")
    if not args.demo:
        yield Endpoints(
            ws=(args.ws_url or BINANCE_WS).rstrip("/"),
            rest=(args.rest_url or BINANCE_REST).rstrip("/"),
            archive=(archive_url or BINANCE_ARCHIVE).rstrip("/"),
        )
        return
    # Imported here so that plain client use never loads the simulator.
    from binmon.sim.config import demo_config, market_id
    from binmon.sim.server import ServerConfig
    from binmon.sim.thread import run_sim

    config = demo_config()
    with run_sim(config, ServerConfig()) as sim:
        yield Endpoints(
            ws=sim.urls.ws, rest=sim.urls.rest, demo=True, archive=sim.urls.rest, market_id=market_id(config)
        )


@contextlib.contextmanager
def _replay_endpoints(args: argparse.Namespace) -> Iterator[Endpoints]:
    """``--replay FILE``: the embedded simulator replaying FILE at ``--replay-speed``.

    Replayed candles are simulated data: like the demo's they go to a store of their own,
    named after the file (``market_id="replay-<stem>"``, ``demo=True``). When ``args`` has a
    ``symbol`` / ``interval`` not given, they are set to the replayed symbol and ``1m`` so
    the window opens on what is being replayed.
    """
    from binmon.sim.config import SimConfig
    from binmon.sim.replay import replay_symbol
    from binmon.sim.server import ServerConfig
    from binmon.sim.thread import run_sim

    path: Path = args.replay
    if not path.is_file():
        raise CliError(f"--replay: no such file {path}")
    symbol = getattr(args, "replay_symbol", None)
    config = SimConfig(replay=path, replay_symbol=symbol.upper() if symbol else None, speed=args.replay_speed)
    try:
        sim = run_sim(config, ServerConfig())
    except (ValueError, OSError) as exc:
        raise CliError(f"--replay {path.name}: {exc}") from None
    with sim:
        replayed = replay_symbol(config) if sim.server.capture is None else None
        symbols = [replayed] if replayed else [s.symbol for s in sim.server.market.symbols]
        if getattr(args, "symbol", "") is None and symbols:
            args.symbol = symbols[0]
        if getattr(args, "interval", "") is None:
            args.interval = "1m"
        yield Endpoints(
            ws=sim.urls.ws,
            rest=sim.urls.rest,
            demo=True,
            archive=sim.urls.rest,
            market_id=f"replay-{path.stem}",
            replay=sim,
        )


def check_symbol(
    rest: RestClient, symbol: str, *, require_trading: bool = True
) -> tuple[SymbolInfo, ExchangeInfo]:
    """Look ``symbol`` up in exchangeInfo; raise :class:`CliError` with a clear message if unknown,
    or (with ``require_trading``) not trading: a halted symbol still has history to download."""
    symbol = symbol.upper()
    try:
        info = rest.exchange_info([symbol])
    except BinanceAPIError as exc:
        if exc.code == -1121:
            raise CliError(f"unknown symbol {symbol!r} on {rest.base_url}") from exc
        raise
    found = info.symbol(symbol)
    if found is None:
        raise CliError(f"unknown symbol {symbol!r} on {rest.base_url}")
    if require_trading and not found.trading:
        raise CliError(f"symbol {symbol} is not trading (status {found.status})")
    return found, info
