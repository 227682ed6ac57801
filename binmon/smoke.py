"""``binmon --smoke-test``: the whole app, end to end, in under a minute, with a yes/no answer.

Meant for a freshly installed package (CI installs the .deb and runs ``/usr/bin/binmon
--smoke-test``) and for a developer's checkout. It starts the embedded simulator (as
``--demo``; or uses ``--ws-url``/``--rest-url``/``--replay`` when given), keeps config and data
in a throw-away directory (unless ``--basedir``), opens the real main window, then checks in
order (:data:`STEPS`):

1. the chart page said ``ready``;
2. the page holds the history and then a live update of the newest candle;
3. an indicator added the way the app adds one (:meth:`IndicatorController.add`) is in the page
   with values, and the page painted it;
4. an alert added the way the app adds one (:meth:`AlertsController.add`: the shown series'
   close above 0, once) fires on the live feed and is in the alert log;
5. a tiny backtest (SMA cross over the chart's bars) runs in binmon's backtest process pool
   (:func:`binmon.backtest.runner.start_backtest`, ``spawn``): in the frozen app this proves
   ``freeze_support()`` works (a worker that started a second app would break the pool);
6. ``--screenshot FILE``: the window, saved as PNG and checked not to be blank.

The indicator and the alert are removed again at the end (``--basedir`` may be the user's).

It exits 0 and prints ``binmon: smoke test passed ...`` on stdout, or prints ``binmon: smoke
test failed: <step>: <reason>`` on stderr and exits 1. A watchdog thread ends the process with
exit code 3 and one line if the whole run (start-up and shutdown included) exceeds
:data:`HARD_TIMEOUT_S`. On failure the throw-away directory (with the log) is kept and named.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import concurrent.futures
import logging
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

log = logging.getLogger("binmon.smoke")

#: The whole run, from argument parsing to exit; the watchdog ends the process after it.
HARD_TIMEOUT_S = 60.0
#: What the checks themselves may take (the rest is left for a clean shutdown).
STEPS_TIMEOUT_S = 45.0
#: The indicator the smoke test adds (TA-Lib SMA over 20 closes).
INDICATOR = ("SMA", {"timeperiod": 20})
#: The backtest it runs: a built-in strategy over the bars on the chart.
BACKTEST = ("sma_cross", {"fast": 5, "slow": 20})

_OHLCV = ("open", "high", "low", "close", "volume")

EXIT_FAILED = 1
EXIT_TIMEOUT = 3


class SmokeFailure(Exception):
    """A check failed; the message is the one-line reason."""


class SmokeTest:
    """One smoke run: :meth:`prepare` before the app starts, :meth:`start` once the window is up,
    :attr:`exit_code` when the app returns."""

    def __init__(self, args: argparse.Namespace, workdir: Path | None) -> None:
        self.args = args
        self.workdir = workdir  # the throw-away basedir (None with --basedir)
        self.exit_code = EXIT_FAILED  # until every step passed
        self.step = "start-up"
        self.done: list[str] = []
        self.task: asyncio.Task[None] | None = None
        self._t0 = time.monotonic()
        self._problems: list[str] = []
        self._cleanup_steps: list[Callable[[], object]] = []
        self._watchdog = threading.Timer(HARD_TIMEOUT_S, self._timed_out)
        self._watchdog.daemon = True

    # ------------------------------------------------------------------ set-up

    @classmethod
    def prepare(cls, args: argparse.Namespace) -> SmokeTest:
        """Adjust ``args`` for a smoke run (demo market, throw-away basedir) and start the watchdog.

        Raises :class:`~binmon.cli.common.CliError` for options that make no sense with it.
        """
        from binmon.cli.common import CliError

        if args.exit_after is not None or args.dump_chart is not None:
            raise CliError("--smoke-test cannot be combined with --exit-after or --dump-chart")
        if not (args.ws_url or args.rest_url or args.replay is not None):
            args.demo = True
        workdir = None
        if args.basedir is None:
            workdir = Path(tempfile.mkdtemp(prefix="binmon-smoke-"))
            args.basedir = workdir
        smoke = cls(args, workdir)
        smoke._watchdog.start()
        atexit.register(smoke._cleanup)
        return smoke

    def start(self, parts: Any) -> None:
        """Run the checks on the running app (``parts``: :class:`binmon.app.AppParts`); the window
        closes when they are done, which ends the app."""
        parts.chart.error.connect(lambda text: self._problems.append(f"the chart page reported: {text}"))
        logging.getLogger().addHandler(_MissingModules(self._problems))
        self.task = asyncio.create_task(self._run(parts), name="binmon-smoke")

    # ------------------------------------------------------------------ the run

    async def _run(self, parts: Any) -> None:
        steps: list[tuple[str, Callable[[Any], Awaitable[str]]]] = [
            ("chart ready", self._ready),
            ("live candle", self._live_candle),
            ("indicator", self._indicator),
            ("alert", self._alert),
            ("backtest", self._backtest),
        ]
        if self.args.screenshot is not None:
            steps.append(("screenshot", self._screenshot))
        try:
            async with asyncio.timeout(STEPS_TIMEOUT_S):
                for name, step in steps:
                    self.step = name
                    t = time.monotonic()
                    detail = await step(parts)
                    if self._problems:
                        raise SmokeFailure(self._problems[0])
                    log.info("smoke: %s ok in %.2f s: %s", name, time.monotonic() - t, detail)
                    self.done.append(f"{name} ({detail})")
            self.exit_code = 0
            print(
                f"binmon: smoke test passed in {time.monotonic() - self._t0:.1f} s: " + "; ".join(self.done),
                flush=True,
            )
        except asyncio.CancelledError:
            self._fail("the window was closed before the checks finished")
            raise
        except TimeoutError:
            self._fail(f"no answer within {STEPS_TIMEOUT_S:.0f} s")
        except SmokeFailure as exc:
            self._fail(str(exc))
        except Exception as exc:
            log.exception("smoke test step %s crashed", self.step)
            self._fail(f"{type(exc).__name__}: {exc}")
        finally:
            for undo in self._cleanup_steps:
                try:
                    undo()
                except Exception:
                    log.exception("smoke test clean-up failed")
            parts.window.close()

    async def _ready(self, parts: Any) -> str:
        chart = parts.chart
        if not chart.bridge.is_ready:
            ready = asyncio.Event()
            chart.ready.connect(ready.set)
            await ready.wait()
        return "page loaded"

    async def _live_candle(self, parts: Any) -> str:
        first = await self._poll_state(parts, lambda s: s["count"] > 0 and s["last"] is not None)
        last = first["last"]
        # A live update changes the newest row in the page (a new trade, or a new candle).
        state = await self._poll_state(parts, lambda s: s["last"] is not None and s["last"] != last)
        return f"{state['symbol']} {state['interval']}, {state['count']} bars, newest updated live"

    async def _indicator(self, parts: Any) -> str:
        from binmon.indicators.layout import spec_title

        controller = parts.indicators
        spec = controller.new_spec(INDICATOR[0], **INDICATOR[1])
        if not controller.add(spec):
            raise SmokeFailure(f"the indicator {spec_title(spec)} was not added")
        self._cleanup_steps.append(lambda: controller.remove(spec.id))
        rows: list[list[Any]] = []
        deadline = time.monotonic() + 20.0
        while time.monotonic() < deadline:
            rows = await _ask(lambda cb: parts.chart.page_indicator(spec.id, cb)) or []
            if sum(1 for r in rows if len(r) > 1 and isinstance(r[1], int | float)) >= 10:
                break
            await asyncio.sleep(0.1)
        else:
            raise SmokeFailure(f"{spec_title(spec)} has no values in the page ({len(rows)} rows)")
        if spec.id not in {d.id for d in parts.chart.indicators}:
            raise SmokeFailure(f"{spec_title(spec)} is not among the chart's indicators")
        await _ask(parts.chart.when_drawn)  # and the page painted it
        return f"{spec_title(spec)}, {len(rows)} rows in the page"

    async def _alert(self, parts: Any) -> str:
        from binmon.alerts.model import (
            AlertRule,
            Condition,
            Frequency,
            Operand,
            Operator,
            Subject,
            new_rule_id,
        )

        alerts = parts.alerts
        if alerts is None:
            raise SmokeFailure("the app has no alerts controller")
        symbol, interval = parts.service.current
        rule = AlertRule(
            id=new_rule_id(),
            symbol=symbol,
            interval=interval,
            condition=Condition(Subject.price("close"), Operator.GREATER_THAN, Operand.of_value(0.0)),
            frequency=Frequency.ONCE,
            name="binmon smoke test",
        )
        deadline = time.monotonic() + 10.0
        while not alerts.add(rule):  # refused until the market's symbols are loaded
            if time.monotonic() > deadline:
                raise SmokeFailure("the alert was not added")
            await asyncio.sleep(0.2)
        self._cleanup_steps.append(lambda: alerts.remove(rule.id))
        deadline = time.monotonic() + 20.0
        while True:
            service = alerts.service
            fired = [f for f in (service.log(20) if service is not None else []) if f.rule_id == rule.id]
            if fired:
                return f"{symbol} {interval} close > 0 fired at {fired[0].price:g}"
            if time.monotonic() > deadline:
                raise SmokeFailure("the alert did not fire within 20 s on the live feed")
            await asyncio.sleep(0.1)

    async def _backtest(self, parts: Any) -> str:
        import pandas as pd

        from binmon.backtest.model import BacktestRequest
        from binmon.backtest.runner import start_backtest

        bars = parts.chart.bars
        if len(bars) < 50:
            raise SmokeFailure(f"too few bars for a backtest ({len(bars)})")
        frame = pd.DataFrame(
            {
                "open_time": [k.open_time for k in bars],
                **{
                    c: [float(getattr(k, c)) for k in bars]
                    for c in ("open", "high", "low", "close", "volume")
                },
            }
        )
        request = BacktestRequest(
            symbol=bars[-1].symbol,
            interval=bars[-1].interval,
            start_ms=bars[0].open_time,
            end_ms=bars[-1].open_time,
            strategy=BACKTEST[0],
            params=dict(BACKTEST[1]),
        )
        job = start_backtest(request, frame)  # the app's spawn process pool
        try:
            result = await asyncio.wait_for(asyncio.wrap_future(job.future), 30.0)
        except concurrent.futures.process.BrokenProcessPool as exc:
            raise SmokeFailure(
                f"the backtest worker died (a frozen app without freeze_support?): {exc}"
            ) from exc
        if result.bars != len(frame) or len(result.equity) != len(frame):
            raise SmokeFailure(f"the backtest covered {result.bars} of {len(frame)} bars")
        return (
            f"{BACKTEST[0]} over {result.bars} bars in a worker process: {len(result.trades)} trades, "
            f"net {result.metrics.net_profit:+.2f}"
        )

    async def _screenshot(self, parts: Any) -> str:
        path: Path = self.args.screenshot
        await _ask(parts.chart.when_drawn)
        path.parent.mkdir(parents=True, exist_ok=True)
        image = parts.window.grab().toImage()
        if not image.save(str(path)):
            raise SmokeFailure(f"could not save the screenshot to {path}")
        colours = _distinct_colours(image)
        if colours < 16:
            raise SmokeFailure(f"the window looks blank ({colours} colours)")
        return f"{path}, {image.width()}x{image.height()}, {colours}+ colours"

    async def _poll_state(self, parts: Any, ok: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        while True:
            state: dict[str, Any] = await _ask(parts.chart.state)
            if ok(state):
                return state
            await asyncio.sleep(0.1)

    # ------------------------------------------------------------------ outcome

    def _fail(self, reason: str) -> None:
        self.exit_code = EXIT_FAILED
        where = f" (log and data kept in {self.workdir})" if self.workdir else ""
        print(f"binmon: smoke test failed: {self.step}: {reason}{where}", file=sys.stderr, flush=True)

    def _timed_out(self) -> None:
        where = f" (log and data kept in {self.workdir})" if self.workdir else ""
        sys.stderr.write(
            f"binmon: smoke test failed: timed out after {HARD_TIMEOUT_S:.0f} s at step {self.step}{where}\n"
        )
        sys.stderr.flush()
        os._exit(EXIT_TIMEOUT)

    def _cleanup(self) -> None:
        self._watchdog.cancel()
        if self.workdir is not None and self.exit_code == 0:
            shutil.rmtree(self.workdir, ignore_errors=True)


class _MissingModules(logging.Handler):
    """Collects log records that name a missing module: in a frozen app that is a packaging
    bug (a hidden import or data file the spec does not collect), even where the app copes
    (e.g. desktop notifications falling back to in-app toasts)."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__(logging.DEBUG)
        self.problems = problems

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            text += f" ({record.exc_info[1]!r})"
        if "No module named" in text or "ModuleNotFoundError" in text:
            self.problems.append(f"a module is missing: {text[:300]}")


async def _ask(method: Callable[[Callable[[Any], None]], None], timeout: float = 15.0) -> Any:
    """Call a chart method that answers through a callback, and await the answer."""
    fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

    def answer(result: Any) -> None:
        if not fut.done():
            fut.set_result(result)

    method(answer)
    return await asyncio.wait_for(fut, timeout)


def _distinct_colours(image: Any, limit: int = 64) -> int:
    """How many distinct colours a sample grid of ``image`` (a QImage) has, up to ``limit``."""
    seen: set[int] = set()
    w, h = image.width(), image.height()
    for y in range(0, h, max(1, h // 60)):
        for x in range(0, w, max(1, w // 60)):
            seen.add(image.pixel(x, y))
            if len(seen) >= limit:
                return limit
    return len(seen)
