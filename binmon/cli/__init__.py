"""Command-line entry point: ``binmon [global options] COMMAND ...``.

Without a command (``binmon``, ``binmon --demo``) the desktop app runs, as ``binmon gui``.

Every command reports bad input as one line on stderr and a non-zero exit code;
tracebacks go to the log (``--log-level debug`` shows them).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from binmon import __version__, app
from binmon.binance.errors import BinanceError
from binmon.cli import backtest_cmd, history_cmd, record_cmd, sim_cmd, stream_cmd
from binmon.cli.common import CliError
from binmon.logs import setup_logging

log = logging.getLogger("binmon.cli")


class _Parser(argparse.ArgumentParser):
    """argparse that prints a single-line usage error (no full usage dump)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    """The full parser with every subcommand registered."""
    parser = _Parser(prog="binmon", description="Desktop Binance market monitor.")
    parser.add_argument("--version", action="version", version=f"binmon {__version__}")
    parser.add_argument(
        "--log-level",
        default="warning",
        choices=["debug", "info", "warning", "error"],
        help="log level on stderr (default: warning)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sim_cmd.register(sub)
    stream_cmd.register(sub)
    record_cmd.register(sub)
    history_cmd.register(sub)
    backtest_cmd.register(sub)
    app.register(sub)
    return parser


def _default_to_gui(argv: list[str]) -> list[str]:
    """``argv`` with ``gui`` inserted after the global options when it names no command."""
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--log-level":
            i += 2
        elif arg.startswith("--log-level="):
            i += 1
        else:
            break
    if i < len(argv) and argv[i] in (*_COMMANDS, "-h", "--help", "--version"):
        return argv
    return [*argv[:i], "gui", *argv[i:]]


_COMMANDS = (
    "sim",
    "stream",
    "record",
    "download",
    "export",
    "import",
    "stored",
    "backtest",
    "optimize",
    "gui",
)


def main(argv: Sequence[str] | None = None) -> int:
    """Run binmon with ``argv`` (default: ``sys.argv[1:]``) and return the exit code."""
    parser = build_parser()
    args = parser.parse_args(_default_to_gui(list(sys.argv[1:] if argv is None else argv)))
    setup_logging(args.log_level)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.func(args))
    except (CliError, BinanceError) as exc:
        log.debug("command failed", exc_info=True)
        print(f"binmon: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
