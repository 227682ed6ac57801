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
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from binmon.cli.common import CliError, add_endpoint_args, add_replay_args, endpoints
from binmon.config import load_config, save_config
from binmon.core.intervals import INTERVALS
from binmon.history.store_schema import StoreError
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
    add_replay_args(p)  # --replay FILE (issue 4): the embedded simulator replays FILE
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
    g.add_argument(
        "--smoke-test",
        action="store_true",
        help="check the app end to end on the demo market and exit 0 or 1 with a reason (binmon.smoke)",
    )


def _prepare_environment() -> None:
    # Chromium refuses to run as root without its sandbox disabled.
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        os.environ.setdefault("QTWEBENGINE_DISABLE_SANDBOX", "1")


def run_app(args: argparse.Namespace) -> int:
    """Run the desktop app until its window is closed (or ``--exit-after``); return the exit code."""
    if args.exit_after is not None and args.exit_after <= 0:
        raise CliError("--exit-after must be positive")
    smoke_test = bool(getattr(args, "smoke_test", False))
    if smoke_test:  # demo market, throw-away basedir, watchdog; read back in _main
        from binmon.smoke import SmokeTest

        args.smoke_run = SmokeTest.prepare(args)
    if (args.screenshot or args.dump_chart) and args.exit_after is None and not smoke_test:
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
    # The stack holds the embedded simulator (``--demo``, or started later from the window)
    # until the loop is done.
    with contextlib.ExitStack() as stack:
        ep = stack.enter_context(endpoints(args))
        loop = qasync.QEventLoop(app)
        asyncio.set_event_loop(loop)
        try:
            with loop:
                return loop.run_until_complete(_main(args, paths, config, loaded.problems, ep, stack))
        finally:
            asyncio.set_event_loop(None)


@dataclass
class AppParts:
    """Everything :func:`build_app` makes, handed to whoever runs it (the app, benchmarks)."""

    rest: Any  # RestClient
    chart: Any  # WebChart
    window: Any  # MainWindow
    adapter: Any  # QtMarketAdapter
    service: Any  # MarketService
    controller: Any  # Controller
    store: Any  # CandleStore
    downloader: Any  # Downloader
    paths: AppPaths
    indicators: Any  # IndicatorController
    alerts: Any = None  # AlertsController (binmon.ui.alerts_controller)

    def close_sync(self) -> None:
        """Stop the adapter, release the REST client and the store (after ``await service.close()``)."""
        if self.alerts is not None:
            self.alerts.close()
        self.indicators.close()
        self.adapter.stop()
        self.rest.close()
        self.store.close()


def make_history(paths: AppPaths, rest: Any, archive_url: str, demo: str | None) -> tuple[Any, Any, Any]:
    """The candle store, its downloader and the chart's history source.

    ``demo`` is the simulated market's id in demo mode (None for an exchange): simulated
    candles go to a file of their own per market (:func:`~binmon.history.store.demo_store_path`).
    """
    from binmon.history.archive_client import ArchiveClient
    from binmon.history.download import Downloader, store_clock
    from binmon.history.store import CandleStore, default_store_path, demo_store_path
    from binmon.services.history import StoreHistory

    path = default_store_path(paths.data_dir) if demo is None else demo_store_path(paths.data_dir, demo)
    store = CandleStore.open(path, clock=store_clock(rest))
    downloader = Downloader(store, rest, ArchiveClient(archive_url))
    return store, downloader, StoreHistory(store, downloader)


def build_app(
    paths: AppPaths,
    config: Any,
    rest_url: str,
    ws_url: str,
    *,
    archive_url: str | None = None,
    demo: str | None = None,
) -> AppParts:
    """Build the services and the window (not shown, nothing started): the composition root.

    Needs a QApplication and a running qasync loop; the caller shows the window and awaits
    ``service.start(...)``. ``archive_url`` defaults to data.binance.vision; ``demo`` is the
    simulated market's id when the endpoints are the embedded simulator's. Raises
    :class:`~binmon.history.store.StoreError` when the candle store cannot be opened.
    """
    from PySide6.QtCore import QSettings

    from binmon.binance.rest import RestClient
    from binmon.cli.common import BINANCE_ARCHIVE
    from binmon.services.market import MarketService
    from binmon.ui.alerts_controller import install_alerts
    from binmon.ui.chart.web_chart import WebChart
    from binmon.ui.controller import Controller
    from binmon.ui.indicators_controller import TEMPLATES_FILE, install_indicators
    from binmon.ui.main_window import MainWindow
    from binmon.ui.qt_adapter import QtMarketAdapter

    # Few REST retries: the service retries on its own schedule and says so in the window,
    # which beats a window frozen in "loading" while requests time out four times.
    rest = RestClient(rest_url, timeout=8.0, max_retries=1)
    store, downloader, history = make_history(paths, rest, archive_url or BINANCE_ARCHIVE, demo)
    chart = WebChart()
    settings = QSettings(str(paths.window_state_file), QSettings.Format.IniFormat)
    window = MainWindow(chart, settings=settings)
    adapter = QtMarketAdapter(chart, window.trades, window.watchlist, window.status, parent=window)
    service = MarketService(rest, ws_url, adapter, history=history)
    controller = Controller(service, window, chart, adapter, config, partial(save_config, paths.config_file))
    controller.apply_config()
    indicators_panel, indicators = install_indicators(
        window,
        chart,
        adapter,
        controller.config.indicators,
        partial(_save_indicators, controller),
        paths.config_dir / TEMPLATES_FILE,
    )
    window.add_panel("Indicators", "dock.indicators", indicators_panel, below=window.trades_dock)
    window.restore_layout()
    parts = AppParts(rest, chart, window, adapter, service, controller, store, downloader, paths, indicators)
    window.downloadRequested.connect(partial(open_downloads, parts))
    parts.alerts = install_alerts(parts, demo=demo is not None)
    from binmon.ui.backtest import install_backtest_tab  # the Backtest tab (issue 7)

    install_backtest_tab(parts)
    return parts


async def switch_to_demo(parts: AppParts, stack: contextlib.ExitStack) -> None:
    """Leave the exchange for the embedded simulator, keeping the window, chart and pick.

    The old service is closed first (its streams, retries and REST client go), the simulator
    starts on its own thread (kept until the app exits), and a new service on it shows the
    same symbol and interval.
    """
    from binmon.binance.rest import RestClient
    from binmon.services.market import MarketService
    from binmon.sim.config import demo_config, market_id
    from binmon.sim.server import ServerConfig
    from binmon.sim.thread import run_sim

    old = parts.service
    symbol, interval = old.pick or (parts.controller.config.symbol, parts.controller.config.interval)
    await old.close()
    parts.rest.close()
    sim_config = demo_config()
    sim = await asyncio.get_running_loop().run_in_executor(
        None, stack.enter_context, run_sim(sim_config, ServerConfig())
    )
    parts.rest = RestClient(sim.urls.rest, timeout=8.0, max_retries=1)
    close_downloads(parts, close=True)  # they download into the exchange's store, closed next
    parts.store.close()
    parts.store, parts.downloader, history = make_history(
        parts.paths, parts.rest, sim.urls.rest, market_id(sim_config)
    )
    parts.service = MarketService(parts.rest, sim.urls.ws, parts.adapter, history=history)
    parts.controller.set_service(parts.service)
    parts.window.set_demo(True)
    log.info("switched to the demo market at %s", sim.urls.rest)
    await parts.service.start(symbol, interval)


class DemoSwitch:
    """Runs :func:`switch_to_demo` (once) when the window asks for the demo market."""

    def __init__(self, parts: AppParts, stack: contextlib.ExitStack) -> None:
        self._parts, self._stack = parts, stack
        self.task: asyncio.Task[None] | None = None
        self._closed = False
        parts.window.demoRequested.connect(self.request)

    def request(self) -> None:
        """Start the switch unless it ran already or the app is closing."""
        if self.task is None and not self._closed:
            self.task = asyncio.create_task(switch_to_demo(self._parts, self._stack), name="binmon-demo")
            self.task.add_done_callback(_report_failure)

    async def close(self) -> None:
        """Cancel a switch still in progress (shutdown)."""
        self._closed = True
        if self.task is not None and not self.task.done():
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)


async def _main(
    args: argparse.Namespace,
    paths: AppPaths,
    config: Any,
    problems: Any,
    ep: Any,
    stack: contextlib.ExitStack,
) -> int:
    try:
        demo_market = ep.market_id if ep.demo else None
        parts = build_app(paths, config, ep.rest, ep.ws, archive_url=ep.archive, demo=demo_market)
    except StoreError as exc:
        raise CliError(f"cannot open the candle store: {exc}") from exc
    window = parts.window
    window.set_demo(ep.demo)
    # ---- replay mode (--replay): the play/pause/speed bar driving the embedded simulator ----
    if getattr(ep, "replay", None) is not None:
        from binmon.ui.widgets.replay_bar import install_replay

        install_replay(parts, ep.replay)
    # ---- end replay mode ----
    window.show()
    for p in problems:
        window.statusBar().showMessage(p, 15000)

    closing = asyncio.Event()
    window.closing.connect(closing.set)
    demo = DemoSwitch(parts, stack)
    await parts.service.start(args.symbol or config.symbol, args.interval or config.interval)
    smoke = getattr(args, "smoke_run", None)
    if smoke is not None:
        smoke.start(parts)
    diag: asyncio.Task[None] | None = None
    if args.exit_after is not None:
        diag = asyncio.create_task(_diagnostics(args, parts), name="binmon-diag")
    try:
        await closing.wait()
    finally:
        if diag is not None and not diag.done():
            diag.cancel()
            await asyncio.gather(diag, return_exceptions=True)
        await demo.close()
        close_downloads(parts)
        await parts.service.close()
        parts.close_sync()
        window.save_layout()
        with contextlib.suppress(OSError):
            save_config(paths.config_file, parts.controller.config)
        # Let qasync finish callbacks the shutdown scheduled before the loop is closed.
        pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for t in pending:
            t.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
    log.info("binmon closed cleanly")
    return smoke.exit_code if smoke is not None else 0


def _save_indicators(controller: Any, items: list[dict[str, Any]]) -> None:
    # Through the controller's config: the app saves that one at exit (a copy would be lost).
    controller.remember(indicators=tuple(items))


def open_downloads(parts: AppParts) -> Any:
    """Open (or raise) the download dialog for the series on screen; refresh it after a download."""
    from binmon.history.download import store_clock
    from binmon.ui.dialogs import open_download_dialog

    service = parts.service  # read at click time: the user may have switched to the demo market
    pick = service.pick or (parts.controller.config.symbol, parts.controller.config.interval)

    def downloaded(symbol: str, interval: str) -> None:
        if parts.service.current == (symbol, interval):
            parts.service.request_reload()  # show the new candles from the store

    return open_download_dialog(
        parts.window,
        parts.downloader,
        parts.store,
        list(service.symbols.values()),
        pick,
        now_ms=store_clock(parts.rest),  # the server's clock without I/O (a simulator may run fast)
        on_downloaded=downloaded,
    )


def close_downloads(parts: AppParts, timeout_s: float = 5.0, *, close: bool = False) -> None:
    """Cancel running downloads and wait for their workers (before the store closes); ``close``
    also closes their dialogs."""
    from binmon.ui.dialogs import DownloadDialog

    for dialog in parts.window.findChildren(DownloadDialog):
        dialog.shutdown(timeout_s)
        if close:
            dialog.close()


def _report_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("%s failed", task.get_name(), exc_info=task.exception())


async def _diagnostics(args: argparse.Namespace, parts: AppParts) -> None:
    """``--exit-after``: wait, freeze the feed, write the requested artefacts, close the window."""
    try:
        await asyncio.sleep(args.exit_after)
        service = parts.service  # read late: the user may have switched to the demo market
        adapter, chart, window = parts.adapter, parts.chart, parts.window
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
