"""The alert service: rules on disk, evaluated on the live stream, fires logged and reported. No Qt.

:class:`AlertService` owns an :class:`~binmon.alerts.engine.AlertEngine`, the rules file and the
alert log (which also keeps the fired ledger). It shares the app's stream client through a
:class:`StreamHub` (the :class:`~binmon.services.market.MarketService`): it listens to every
event and asks for the kline streams its active rules need with ``set_extra_streams`` (kept
apart from the chart's own, so a symbol switch never drops an alert's stream and vice versa).
For each stream it loads recent closed history over REST (on a worker thread) so indicators
and "previous bar" comparisons have their past; live bars that arrive before the history are
merged, not lost.

Idempotence across reconnects: the stream client backfills closed candles after a reconnect
(each once, in order); the engine ignores re-deliveries and the ledger keeps a rule from
firing twice for one bar, also across restarts (ledger and fire are written in one
transaction). Every rule change is saved atomically before it is reported.

All methods run on the event loop's thread; the sink is called there and must return quickly.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Callable, Coroutine, Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

from binmon.alerts.engine import AlertEngine, Fire, Status
from binmon.alerts.rules import AlertRule, validate_rule
from binmon.alerts.storage import AlertLog, RulesFile
from binmon.binance.backoff import backoff
from binmon.binance.codec import kline_stream
from binmon.binance.errors import BinanceAPIError, BinanceError
from binmon.core.models import Kline, KlineEvent, StreamEvent

__all__ = ["HISTORY_BARS", "OWNER", "AlertService", "AlertSink", "StreamHub"]

log = logging.getLogger(__name__)

#: Closed bars of history loaded per stream (one REST request; enough for the warm-up of the
#: usual indicators - TA-Lib's EMA-based ones settle within a few hundred bars).
HISTORY_BARS = 1000
#: The name under which the service asks the hub for its streams.
OWNER = "alerts"
#: History loads running at once (REST weight is per IP; 50 symbols must not burst).
_LOAD_CONCURRENCY = 4


class AlertSink(Protocol):
    """What the service reports (on the loop's thread; must return quickly)."""

    def alert_fired(self, fire: Fire) -> None:
        """A rule fired (already logged)."""

    def alerts_changed(self) -> None:
        """Rules or statuses changed (added, edited, removed, triggered, expired...)."""

    def alert_message(self, text: str) -> None:
        """A one-line problem for the user (e.g. the rules file was corrupt and kept aside)."""


class StreamHub(Protocol):
    """What the service needs of the app's stream owner (MarketService has it)."""

    def add_listener(self, callback: Callable[[StreamEvent], None]) -> None: ...

    def remove_listener(self, callback: Callable[[StreamEvent], None]) -> None: ...

    async def set_extra_streams(self, owner: str, streams: Iterable[str]) -> None: ...


HistoryFetch = Callable[[str, str, int], list[Kline]]


class AlertService:
    """See the module docstring. Build, :meth:`start`, use, :meth:`close`."""

    def __init__(
        self,
        hub: StreamHub,
        fetch_history: HistoryFetch | None,
        sink: AlertSink,
        rules_path: Path | str,
        log_path: Path | str,
        *,
        history_bars: int = HISTORY_BARS,
        clock: Callable[[], int] = lambda: int(time.time() * 1000),
        backoff_factory: Callable[[], Iterator[float]] = backoff,
    ) -> None:
        """``fetch_history(symbol, interval, n)`` (blocking, run on a worker thread) returns the
        newest ``n`` klines, e.g. ``lambda s, i, n: rest.klines(s, i, limit=n)``; None loads no
        history (rules then start from the live bars). ``clock`` gives wall time in ms."""
        self.hub = hub
        self._fetch = fetch_history
        self.sink = sink
        self.rules_file = RulesFile(rules_path)
        self._log_path = Path(log_path)
        self._history_bars = history_bars
        self._clock = clock
        self._backoff = backoff_factory
        self.engine = AlertEngine(clock=clock)
        self.alert_log: AlertLog | None = None
        self._rules: dict[str, AlertRule] = {}
        self._loading: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._statuses: dict[str, Status] = {}
        self._sem = asyncio.Semaphore(_LOAD_CONCURRENCY)
        self._sync_lock = asyncio.Lock()
        self._started = False

    # ------------------------------------------------------------ lifetime

    async def start(self) -> None:
        """Read the rules and the log (problems go to ``alert_message``), listen, subscribe."""
        rules, problems = self.rules_file.load()
        self.alert_log = AlertLog(self._log_path)
        problems += self.alert_log.problems
        ledger = self.alert_log.load_ledger()
        self.engine = AlertEngine(rules, ledger, clock=self._clock)
        for rid, why in self.engine.errors.items():
            problems.append(f"alert {rid} is not evaluated: {why}")
        self._rules = {r.id: r for r in rules}
        for text in problems:
            self.sink.alert_message(text)
        self.hub.add_listener(self._on_event)
        self._started = True
        self._statuses = self._snapshot()
        self._spawn(self._watch_expiry(), "binmon-alerts-expiry")
        await self._sync_streams()

    async def close(self) -> None:
        """Stop listening, cancel loads, release the streams, close the log. Idempotent."""
        if not self._started:
            return
        self._started = False
        self.hub.remove_listener(self._on_event)
        tasks = [*self._tasks, *self._loading.values()]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        with contextlib.suppress(Exception):
            await self.hub.set_extra_streams(OWNER, ())
        if self.alert_log is not None:
            self.alert_log.close()

    # ------------------------------------------------------------ API for the UI

    def rules(self) -> list[AlertRule]:
        """Every rule, in the order added."""
        return list(self._rules.values())

    def add(self, rule: AlertRule) -> None:
        """Add a rule (saved at once). ValueError (one line) when invalid or its id is taken."""
        if rule.id in self._rules:
            raise ValueError(f"an alert with id {rule.id!r} exists already")
        _check(rule)
        self._commit({**self._rules, rule.id: rule})

    def update(self, rule: AlertRule) -> None:
        """Replace the rule with ``rule.id``. A change of what it watches or how often it fires
        re-arms it (a triggered "once" alert becomes active). KeyError / ValueError."""
        old = self._rules[rule.id]
        _check(rule)
        if replace(old, name=rule.name, message=rule.message, enabled=rule.enabled) != rule:
            self.engine.reset(rule.id)
        self._commit({**self._rules, rule.id: rule})

    def remove(self, rule_id: str) -> None:
        """Delete a rule (no error if absent)."""
        if rule_id in self._rules:
            self._commit({k: v for k, v in self._rules.items() if k != rule_id})

    def set_enabled(self, rule_id: str, enabled: bool) -> None:
        """Pause (False) or resume (True) a rule. KeyError for an unknown id."""
        rule = self._rules[rule_id]
        if rule.enabled != enabled:
            self._commit({**self._rules, rule_id: replace(rule, enabled=enabled)})

    def restart(self, rule_id: str) -> None:
        """Re-arm a triggered "once" rule (it may fire again). KeyError for an unknown id."""
        if rule_id not in self._rules:
            raise KeyError(rule_id)
        self.engine.reset(rule_id)
        self._commit(dict(self._rules))

    def status(self, rule_id: str) -> Status:
        """``active``, ``triggered``, ``expired`` or ``paused``. KeyError for an unknown id."""
        return self.engine.status(rule_id)

    def last_fired(self, rule_id: str) -> int | None:
        """Wall time (ms) of the rule's last fire, None if it never fired."""
        return self.engine.last_fired(rule_id)

    def log(self, n: int = 100) -> list[Fire]:
        """The newest ``n`` fires (kept across restarts), newest first."""
        return self.alert_log.recent(n) if self.alert_log is not None else []

    # ------------------------------------------------------------ internals

    def _commit(self, rules: dict[str, AlertRule]) -> None:
        """Save, apply, persist the ledger, report, resubscribe - in that order."""
        try:
            self.rules_file.save(rules.values())
        except OSError as exc:
            log.error("saving alert rules to %s failed", self.rules_file.path, exc_info=exc)
            raise ValueError(f"Could not save the alert rules: {exc.strerror or exc}") from None
        self._rules = rules
        self.engine.set_rules(rules.values())
        if self.alert_log is not None:
            self.alert_log.save_ledger(self.engine.ledger)
        self._statuses = self._snapshot()
        self.sink.alerts_changed()
        if self._started:
            self._spawn(self._sync_streams(), "binmon-alerts-sync")

    def _snapshot(self) -> dict[str, Status]:
        return {rid: self.engine.status(rid) for rid in self._rules}

    def _on_event(self, ev: StreamEvent) -> None:
        """The hot path: one kline to the engine; fires logged, then reported."""
        if type(ev) is not KlineEvent:
            return
        k = ev.kline
        fires = self.engine.on_kline(k.symbol, k.interval, k, self._clock())
        if not fires:
            return
        if self.alert_log is not None:
            try:
                self.alert_log.append(fires, self.engine.ledger)
            except Exception as exc:  # a full disk must not stop the notifications
                log.error("writing the alert log failed", exc_info=exc)
                self.sink.alert_message(f"Could not write the alert log: {exc}")
        for fire in fires:
            self.sink.alert_fired(fire)
        if any(self.engine.status(f.rule_id) == "triggered" for f in fires):
            self._statuses = self._snapshot()
            self.sink.alerts_changed()
            self._spawn(self._sync_streams(), "binmon-alerts-sync")

    async def _sync_streams(self) -> None:
        """Subscribe what the active rules need, release the rest, load missing histories."""
        async with self._sync_lock:
            needed = self.engine.streams()
            await self.hub.set_extra_streams(OWNER, {kline_stream(s, i) for s, i in needed})
            for key in needed:
                if not self.engine.loaded(*key) and key not in self._loading and self._fetch is not None:
                    task = asyncio.create_task(self._load(*key), name=f"binmon-alerts-history-{key[0]}")
                    self._loading[key] = task
                    task.add_done_callback(functools.partial(self._load_done, key))

    async def _load(self, symbol: str, interval: str) -> None:
        """Fetch the stream's recent history (retrying network trouble) and give it to the engine."""
        fetch = self._fetch
        assert fetch is not None
        delays = self._backoff()
        loop = asyncio.get_running_loop()
        while True:
            try:
                async with self._sem:
                    bars = await loop.run_in_executor(None, fetch, symbol, interval, self._history_bars)
                break
            except BinanceAPIError as exc:
                if exc.status < 500 and exc.status not in (418, 429):
                    self.sink.alert_message(f"Alerts on {symbol} {interval}: {_one_line(exc)}")
                    return
                err: BinanceError = exc
            except BinanceError as exc:
                err = exc
            delay = next(delays)
            log.info("alert history %s %s failed (%s); retrying in %.1f s", symbol, interval, err, delay)
            await asyncio.sleep(delay)
        if bars and bars[-1].closed:
            # Only a row followed by another one is certainly final (the REST "closed" of the
            # newest row is an estimate of the server's clock): the stream brings its final value.
            bars = bars[:-1]
        self.engine.load(symbol, interval, [k for k in bars if k.closed])

    def _load_done(self, key: tuple[str, str], task: asyncio.Task[None]) -> None:
        self._loading.pop(key, None)
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            log.error("loading alert history for %s %s failed", *key, exc_info=exc)
            self.sink.alert_message(f"Alerts on {key[0]} {key[1]}: history not loaded ({_one_line(exc)})")

    async def _watch_expiry(self) -> None:
        """Report status changes that come with time (expiry) and release expired rules' streams."""
        while True:
            now = self._clock()
            upcoming = [
                r.expires_ms for r in self._rules.values() if r.expires_ms is not None and r.expires_ms > now
            ]
            wait_ms = min([*upcoming, now + 60_000]) - now
            await asyncio.sleep(max(0.05, min(wait_ms / 1000 + 0.01, 60.0)))
            snap = self._snapshot()
            if snap != self._statuses:
                self._statuses = snap
                self.sink.alerts_changed()
                await self._sync_streams()

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            log.error("%s failed", task.get_name(), exc_info=exc)
            self.sink.alert_message(f"Alerts: internal error in {task.get_name()}: {_one_line(exc)}")


def _check(rule: AlertRule) -> None:
    problems = validate_rule(rule)
    if problems:
        raise ValueError(problems[0])


def _one_line(exc: BaseException | None) -> str:
    return " ".join(str(exc).split())[:300]
