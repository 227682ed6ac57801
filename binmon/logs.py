"""Logging set-up shared by every entry point.

Users see one-line messages on stderr; details (tracebacks, frame dumps) go to the
log at DEBUG level, or to a log file when one is configured.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


def setup_logging(level: str = "WARNING", log_file: Path | None = None) -> None:
    """Configure the root logger: ``level`` on stderr, everything at DEBUG into ``log_file``.

    Idempotent: calling it again replaces the handlers it installed before.
    """
    root = logging.getLogger()
    for h in list(root.handlers):
        if getattr(h, "_binmon", False):
            root.removeHandler(h)
    console = logging.StreamHandler(sys.stderr)
    console.setLevel(level.upper())
    console.setFormatter(logging.Formatter(_FORMAT))
    console._binmon = True  # type: ignore[attr-defined]
    root.addHandler(console)
    root.setLevel(logging.DEBUG if log_file else level.upper())
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        fh = logging.FileHandler(log_file, encoding="utf-8")
        fh.setLevel(logging.DEBUG)
        fh.setFormatter(logging.Formatter(_FORMAT))
        fh._binmon = True  # type: ignore[attr-defined]
        root.addHandler(fh)
    # websockets logs every rejected handshake and keepalive detail at INFO/DEBUG: noise for users.
    logging.getLogger("websockets").setLevel(max(logging.WARNING, root.level))
    logging.getLogger("urllib3").setLevel(logging.WARNING)
