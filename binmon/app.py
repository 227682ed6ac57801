"""The composition root: builds the services and the window from arguments, runs, shuts down.

``binmon`` (or ``binmon gui``) runs :func:`run_app`. Nothing else in the program reaches for
globals: paths, config, endpoints, the REST and stream clients, the chart, the window, the
adapter and the controller are all made here and handed to each other.

Qt is imported inside :func:`run_app` only, after the environment is prepared (QtWebEngine
reads its sandbox switch at start-up, and must be imported before the QApplication exists),
so the terminal commands that import this module for its arguments never load Qt.

Shutdown follows the qasync 0.28 pattern: the app does not quit on the last window; the
window's ``closing`` signal sets an asyncio.Event the main coroutine awaits, which then closes
the stream client, stops the simulator, saves config and layout, and returns 0.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import sys
from functools import partial
from pathlib import Path
from typing import Any

from binmon.cli.common import CliError, add_endpoint_args, endpoints
from binmon.config import load_config, save_config
from binmon.core.intervals import INTERVALS
from binmon.logs import setup_logging
from binmon.paths import AppPaths

log = logging.getLogger("binmon.app")


def register(sub: Any) -> argparse.ArgumentParser:
    """Add the ``gui`` subcommand (also what a bare ``binmon`` runs) to ``sub``."""
    p = sub.add_parser("gui", help="open the desktop window (the default command)")
    add_gui_args(p)
    p.set_defaults(func=run_app)
    return p


def add_gui_args(p: argparse.ArgumentParser) -> None:
    """The app's options: endpoints, ``--basedir``, start symbol/interval, and smoke-test hooks."""
    add_endpoint_args(p)
    p.add_argument("--basedir", type=Path, default=None, help="keep config, state, data and logs under DIR")
    p.add_argument("--symbol", default=None, help="symbol to open (default: the last one shown)")
    p.add_argument("--interval", default=None, choices=INTERVALS, metavar="INTERVAL", help="interval to open")
    g = p.add_argument_group("diagnostics (tests, smoke runs)")
    g.add_argument("--exit-after", type=float, default=None, metavar="S", help="quit after S seconds")
    g.add_argument(
        "--screenshot", type=Path, default=None, metavar="PATH", help="with --exit-after: save the window"
    )
    g.add_argument(
        "--dump-chart",
        type=Path,
        default=None,
        metavar="PATH",
        help="with --exit-after: write the chart page's bars and the series as JSON",
    )


def _prepare_environment() -> None:
    # Chromium refuses to run as root without its sandbox disabled.
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        os.environ.setdefault("QTWEBENGINE_DISABLE_SANDBOX", "1")


def run_app(args: argparse.Namespace) -> int:
    """Run the desktop app until its window is closed (or ``--exit-after``); return the exit code."""
    if args.exit_after is not None and args.exit_after <= 0:
        raise CliError("--exit-after must be positive")
    if (args.screenshot or args.dump_chart) and args.exit_after is None:
        raise CliError("--screenshot and --dump-chart need --exit-after")
    paths = AppPaths.resolve(args.basedir)
    try:
        paths.ensure()
    except OSError as exc:
        raise CliError(f"cannot create binmon's directories: {exc}") from exc
    setup_logging(args.log_level, paths.log_file)
    loaded = load_config(paths.config_file)
    config = loaded.config
    _prepare_environment()

    import PySide6.QtWebEngineWidgets  # noqa: F401  (must precede the QApplication)
    import qasync
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([sys.argv[0]])
    assert isinstance(app, QApplication)
    app.setApplicationName("binmon")
    app.setOrganizationName("binmon")
    app.setQuitOnLastWindowClosed(False)
    with endpoints(args) as ep:
        loop = qasync.QEventLoop(app)
        asyncio.set_event_loop(loop)
        try:
            with loop:
                return loop.run_until_complete(_main(args, paths, config, loaded.problems, ep))
        finally:
            asyncio.set_event_loop(None)


async def _main(args: argparse.Namespace, paths: AppPaths, config: Any, problems: Any, ep: Any) -> int:
    from PySide6.QtCore import QSettings

    from binmon.binance.rest import RestClient
    from binmon.services.market import MarketService
    from binmon.ui.chart.web_chart import WebChart
    from binmon.ui.controller import Controller
    from binmon.ui.main_window import MainWindow
    from binmon.ui.qt_adapter import QtMarketAdapter

    # Few REST retries: the service retries on its own schedule and says so in the window,
    # which beats a window frozen in "loading" while requests time out four times.
    rest = RestClient(ep.rest, timeout=8.0, max_retries=1)
    chart = WebChart()
    settings = QSettings(str(paths.window_state_file), QSettings.Format.IniFormat)
    window = MainWindow(chart, settings=settings)
    adapter = QtMarketAdapter(chart, window.trades, window.watchlist, window.status, parent=window)
    service = MarketService(rest, ep.ws, adapter)
    controller = Controller(service, window, chart, adapter, config, partial(save_config, paths.config_file))
    controller.apply_config()
    window.restore_layout()
    window.show()
    for p in problems:
        window.statusBar().showMessage(p, 15000)

    closing = asyncio.Event()
    window.closing.connect(closing.set)
    await service.start(args.symbol or config.symbol, args.interval or config.interval)
    diag: asyncio.Task[None] | None = None
    if args.exit_after is not None:
        diag = asyncio.create_task(_diagnostics(args, service, adapter, chart, window), name="binmon-diag")
    try:
        await closing.wait()
    finally:
        if diag is not None and not diag.done():
            diag.cancel()
            await asyncio.gather(diag, return_exceptions=True)
        await service.close()
        adapter.stop()
        rest.close()
        window.save_layout()
        with contextlib.suppress(OSError):
            save_config(paths.config_file, controller.config)
        # Let qasync finish callbacks the shutdown scheduled before the loop is closed.
        pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for t in pending:
            t.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
    log.info("binmon closed cleanly")
    return 0


async def _diagnostics(args: argparse.Namespace, service: Any, adapter: Any, chart: Any, window: Any) -> None:
    """``--exit-after``: wait, freeze the feed, write the requested artefacts, close the window."""
    try:
        await asyncio.sleep(args.exit_after)
        if args.screenshot:
            await _ask(chart.when_drawn)  # everything sent so far is painted
            args.screenshot.parent.mkdir(parents=True, exist_ok=True)
            if not window.grab().save(str(args.screenshot)):
                log.error("could not save the screenshot to %s", args.screenshot)
        # Close the feed so the page and the series stop changing, flush what the adapter
        # still holds, then read the page back: the answer comes after every call sent before.
        await service.close()
        adapter.flush()
        rows = await _ask(chart.page_bars) if args.dump_chart else None
        if args.dump_chart:
            series = service.series
            dump = {
                "current": list(service.current) if service.current else None,
                "page": rows,
                "series": [_bar_json(k) for k in series.bars] if series is not None else [],
                "subscriptions": sorted(service.stream.subscriptions),
            }
            args.dump_chart.parent.mkdir(parents=True, exist_ok=True)
            args.dump_chart.write_text(json.dumps(dump))
    except Exception:
        log.exception("diagnostics failed")
    finally:
        window.close()


async def _ask(method: Any, timeout: float = 15.0) -> Any:
    """Call a chart method that answers through a callback, and await the answer."""
    fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

    def answer(result: Any) -> None:
        if not fut.done():
            fut.set_result(result)

    method(answer)
    return await asyncio.wait_for(fut, timeout)


def _bar_json(k: Any) -> dict[str, Any]:
    return {
        "time": k.open_time,
        "open": k.open,
        "high": k.high,
        "low": k.low,
        "close": k.close,
        "volume": k.volume,
        "closed": k.closed,
    }
