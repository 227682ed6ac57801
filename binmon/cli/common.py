"""Pieces shared by the terminal commands: endpoint options, demo mode, symbol checks."""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

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
