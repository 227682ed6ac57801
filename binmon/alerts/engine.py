"""The live alert engine: rules in, klines in, fires out. Pure, synchronous, one thread. No Qt.

Per ``(symbol, interval)`` stream the engine keeps the bars (history from :meth:`AlertEngine.load`,
then every live kline) and the indicators its rules watch, in a
:class:`binmon.indicators.engine.Engine` (incremental, equal to a full recompute). Each
kline updates that stream only and evaluates only that stream's rules, with the semantics of
:mod:`binmon.alerts.evaluate` (:func:`~binmon.alerts.evaluate.fires`): a forming kline
compares the forming bar's current value with the previous CLOSED bar, a closed kline is
exactly what :func:`~binmon.alerts.evaluate.condition_series` says for that bar.

Frequencies:

* ``once`` - the first event that satisfies the condition (intrabar too); the rule is then
  ``triggered`` and never fires again (until :meth:`AlertEngine.reset`).
* ``once_per_bar`` - at most one fire per bar, intrabar allowed (the first update that
  satisfies it).
* ``once_per_bar_close`` - only closed klines, at most once per bar.
* ``every_time`` - every kline event that satisfies it, but never two within
  ``min_interval_s``.

Idempotence: a kline older than the stream's last, a repeat of the last (same values), a
closed kline of a bar already closed, or a forming update with less volume than one already
seen is ignored. On top of that the ledger (:class:`~binmon.alerts.ledger.Ledger`) records
the event each rule last fired on; a rule fires only for a later bar (per-bar frequencies) or
a later event (``every_time``). The ledger is a small serialisable value: restored after a
restart, a reload of the history plus a backfill of bars that already fired fires nothing.
:meth:`AlertEngine.load` never fires.

Expiry: a rule whose ``expires_ms`` has passed never fires and reports ``expired``; a disabled
rule is ``paused``.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np

from binmon.alerts.evaluate import fires
from binmon.alerts.ledger import Fire, Ledger, LedgerEntry
from binmon.alerts.rules import (
    AlertRule,
    Frequency,
    Operator,
    Subject,
    describe_condition,
    format_message,
    validate_rule,
)
from binmon.core.models import Kline
from binmon.indicators.engine import Engine
from binmon.indicators.inputs import BASE_COLUMNS, CandlesLike, candle_columns
from binmon.indicators.spec import IndicatorSpec
from binmon.indicators.track import Buffer

__all__ = ["AlertEngine", "Fire", "Ledger", "LedgerEntry", "Status", "StreamKey"]

log = logging.getLogger(__name__)

Status = Literal["active", "triggered", "expired", "paused"]
StreamKey = tuple[str, str]
NAN = math.nan
_PER_BAR = (Frequency.ONCE, Frequency.ONCE_PER_BAR, Frequency.ONCE_PER_BAR_CLOSE)


def _wall_ms() -> int:
    return int(time.time() * 1000)


@dataclass(slots=True)
class _Compiled:
    """A rule prepared for the hot path."""

    rule: AlertRule
    op: Operator
    freq: Frequency
    subject: tuple[Any, ...]  # key into the stream's series
    operand: tuple[Any, ...] | None  # series operand key, None for a level / channel
    level: float
    low: float
    high: float
    bars: int
    min_interval_ms: int
    name: str


class _Stream:
    """The bars and indicators of one (symbol, interval), and the rules watching it."""

    def __init__(self, symbol: str, interval: str) -> None:
        self.symbol, self.interval = symbol, interval
        self.cols: dict[str, Buffer] = {c: Buffer(np.empty(0)) for c in BASE_COLUMNS}
        self.times = Buffer(np.empty(0, dtype=np.int64), dtype=np.int64)
        self.indicators = Engine()
        self.spec_ids: dict[tuple[Any, ...], str] = {}  # indicator compute key -> engine spec id
        self.rules: list[_Compiled] = []
        self.last_closed = True  # is the newest bar final?
        self.last_row: tuple[float, ...] | None = None  # (close, high, low, volume) of the newest bar
        self.loaded = False
        self._next_id = 0

    @property
    def n(self) -> int:
        return self.times.n

    @property
    def last_open(self) -> int | None:
        return int(self.times.data[self.times.n - 1]) if self.times.n else None

    def set_indicators(self, specs: Iterable[IndicatorSpec]) -> None:
        """Hold exactly ``specs`` (deduplicated by what they compute), keeping computed ones."""
        wanted: dict[tuple[Any, ...], IndicatorSpec] = {}
        for spec in specs:
            wanted.setdefault(spec.compute_key, spec)
        ids: dict[tuple[Any, ...], str] = {}
        for k in wanted:
            if k in self.spec_ids:
                ids[k] = self.spec_ids[k]
            else:
                self._next_id += 1
                ids[k] = f"alert-ind-{self._next_id}"
        self.indicators.set_specs(replace(spec, id=ids[k]) for k, spec in wanted.items())
        self.spec_ids = ids

    def series(self, key: tuple[Any, ...]) -> np.ndarray:
        """The full series of a subject key (a view, valid until the next update)."""
        if key[0] == "indicator":
            values = self.indicators.values(self.spec_ids[key[1]])
            return values[key[2]] if values else _EMPTY
        return self.cols[key[1]].view()

    def load(self, cols: Mapping[str, np.ndarray], times: np.ndarray) -> None:
        """Replace the bars with closed history; keep live bars newer than it (merged, not lost)."""
        tail: list[dict[str, float | int]] = []
        if self.n and times.size:
            newer = np.nonzero(self.times.view() > times[-1])[0]
            tail = [
                {
                    "open_time": int(self.times.data[i]),
                    **{c: float(self.cols[c].data[i]) for c in BASE_COLUMNS},
                }
                for i in newer
            ]
        elif self.n:
            return  # empty history: what was seen live stays
        last_closed = self.last_closed
        self.cols = {c: Buffer(np.asarray(cols[c], dtype=np.float64)) for c in BASE_COLUMNS}
        self.times = Buffer(np.asarray(times, dtype=np.int64), dtype=np.int64)
        self.indicators.load({"open_time": times, **{c: cols[c] for c in BASE_COLUMNS}})
        self.last_closed = True
        for bar in tail:
            self.append(bar)
        if tail:
            self.last_closed = last_closed
        self.last_row = self._row(self.n - 1) if self.n else None
        self.loaded = True

    def append(self, bar: Mapping[str, Any]) -> None:
        for c in BASE_COLUMNS:
            self.cols[c].append(float(bar[c]))
        self.times.append(int(bar["open_time"]))
        self.indicators.update(bar)

    def _row(self, i: int) -> tuple[float, ...]:
        return tuple(float(self.cols[c].data[i]) for c in ("close", "high", "low", "volume"))


_EMPTY = np.empty(0)


class AlertEngine:
    """See the module docstring. ``clock`` gives "now" in ms (for :meth:`status`)."""

    def __init__(
        self,
        rules: Iterable[AlertRule] = (),
        ledger: Ledger | None = None,
        clock: Callable[[], int] = _wall_ms,
    ) -> None:
        self.ledger = ledger if ledger is not None else Ledger()
        self._clock = clock
        self._rules: dict[str, AlertRule] = {}
        self._streams: dict[StreamKey, _Stream] = {}
        self.errors: dict[str, str] = {}  # rule id -> why it is not evaluated
        self._verdicts: dict[AlertRule, list[str]] = {}
        self.set_rules(rules)

    # ------------------------------------------------------------ rules

    @property
    def rules(self) -> list[AlertRule]:
        """Every rule held (valid or not), in the order given."""
        return list(self._rules.values())

    def set_rules(self, rules: Iterable[AlertRule]) -> None:
        """Hold exactly ``rules``. Invalid ones are kept (for :meth:`status`), listed in
        :attr:`errors` and never evaluated. Streams keep their bars across calls; a stream no
        rule can fire on any more is dropped. The ledger forgets rules that are gone."""
        self._rules = {r.id: r for r in rules}
        self.errors = {}
        by_stream: dict[StreamKey, list[AlertRule]] = {}
        # Validation dry-runs TA-Lib per indicator: remember the verdicts of unchanged rules so
        # one edit among 1,000 rules does not re-validate all of them.
        verdicts = {r: self._verdicts.get(r) for r in self._rules.values()}
        for rule in self._rules.values():
            problems = verdicts[rule]
            if problems is None:
                problems = verdicts[rule] = validate_rule(rule)
            if problems:
                self.errors[rule.id] = problems[0]
                log.warning("alert %s not evaluated: %s", rule.id, problems[0])
                continue
            if self._armed(rule):
                by_stream.setdefault(rule.stream_key, []).append(rule)
        self._streams = {k: self._streams.get(k) or _Stream(*k) for k in by_stream}
        for key, stream in self._streams.items():
            rules_here = by_stream[key]
            if [c.rule for c in stream.rules] == rules_here:
                continue  # unchanged: keep its indicators and compiled rules as they are
            specs = [s.indicator for r in rules_here for s in _subjects(r) if s.indicator is not None]
            stream.set_indicators(specs)
            stream.rules = [_compile(r) for r in rules_here]
        self.ledger.keep_only(set(self._rules))
        self._verdicts = {r: v for r, v in verdicts.items() if v is not None}

    def reset(self, rule_id: str) -> None:
        """Forget that ``rule_id`` fired (re-arms a triggered "once" rule); call set_rules after."""
        self.ledger.reset(rule_id)

    def streams(self) -> set[StreamKey]:
        """The ``(symbol, interval)`` streams the active rules need now."""
        now = self._clock()
        return {r.stream_key for r in self._rules.values() if self._status(r, now) == "active"}

    def loaded(self, symbol: str, interval: str) -> bool:
        """True when the stream's history was loaded (or it is not needed: nothing to load)."""
        stream = self._streams.get((symbol, interval))
        return stream is None or stream.loaded

    def status(self, rule_id: str) -> Status:
        """``triggered`` (a used-up "once" rule), ``expired``, ``paused`` (disabled) or ``active``.
        KeyError for an unknown rule."""
        return self._status(self._rules[rule_id], self._clock())

    def last_fired(self, rule_id: str) -> int | None:
        """Wall time (ms) of the rule's last fire, None when it never fired (since a reset)."""
        entry = self.ledger.get(rule_id)
        return entry.time_ms if entry is not None else None

    def _status(self, rule: AlertRule, now_ms: int) -> Status:
        entry = self.ledger.get(rule.id)
        if entry is not None and entry.triggered:
            return "triggered"
        if rule.expires_ms is not None and now_ms >= rule.expires_ms:
            return "expired"
        return "active" if rule.enabled else "paused"

    def _armed(self, rule: AlertRule) -> bool:
        """Could still fire some day (expiry is checked per event)."""
        entry = self.ledger.get(rule.id)
        return rule.enabled and not (entry is not None and entry.triggered)

    # ------------------------------------------------------------ data

    def load(self, symbol: str, interval: str, candles: Sequence[Kline] | CandlesLike) -> bool:
        """Give a stream its history: CLOSED bars, oldest first (Klines, a candle frame or a
        mapping of arrays). Computes the rules' indicators; fires nothing. Live bars newer
        than the history that were already applied are kept. Returns False (and ignores the
        data) when no rule needs the stream."""
        stream = self._streams.get((symbol, interval))
        if stream is None:
            return False
        cols, times = _columns(candles)
        stream.load(cols, times)
        return True

    def on_kline(self, symbol: str, interval: str, kline: Kline, now_ms: int) -> list[Fire]:
        """Apply one kline (``kline.closed``: final or forming) and return the fires it causes.

        Ignored (returns ``[]``): a stream no rule needs, a bar older than the last, a repeat.
        """
        stream = self._streams.get((symbol, interval))
        if stream is None:
            return []
        k = kline
        last = stream.last_open
        row = (k.close, k.high, k.low, k.volume)
        if last is not None:
            if k.open_time < last:
                return []
            if k.open_time == last:
                if stream.last_closed:
                    return []  # the bar is final already: a re-delivery
                assert stream.last_row is not None
                if row == stream.last_row and not k.closed:
                    return []  # the same forming state again
                if k.volume < stream.last_row[3]:
                    return []  # an older state of the forming bar (e.g. a REST backfill row)
        if last is not None and k.open_time == last:
            n = stream.n
            for c, v in zip(BASE_COLUMNS, (k.open, k.high, k.low, k.close, k.volume), strict=True):
                stream.cols[c].data[n - 1] = v
        else:
            for c, v in zip(BASE_COLUMNS, (k.open, k.high, k.low, k.close, k.volume), strict=True):
                stream.cols[c].append(v)
            stream.times.append(k.open_time)
        stream.indicators.update(k)
        stream.last_closed = k.closed
        stream.last_row = row
        return self._evaluate(stream, k, now_ms)

    # ------------------------------------------------------------ evaluation (hot path)

    def _evaluate(self, stream: _Stream, k: Kline, now_ms: int) -> list[Fire]:
        out: list[Fire] = []
        i = stream.n - 1
        mark = (k.open_time, k.volume, k.closed)
        cache: dict[tuple[Any, ...], np.ndarray] = {}
        ledger = self.ledger
        for c in stream.rules:
            rule = c.rule
            if not k.closed and c.freq is Frequency.ONCE_PER_BAR_CLOSE:
                continue
            if rule.expires_ms is not None and now_ms >= rule.expires_ms:
                continue
            entry = ledger.get(rule.id)
            if entry is not None:
                if entry.triggered:
                    continue
                if c.freq in _PER_BAR:
                    if entry.bar_open_ms >= k.open_time:
                        continue
                elif mark <= entry.mark or now_ms - entry.time_ms < c.min_interval_ms:
                    continue
            hit, value = _check(c, stream, i, cache)
            if not hit:
                continue
            ledger.record(
                rule.id,
                LedgerEntry(k.open_time, k.volume, k.closed, now_ms, triggered=c.freq is Frequency.ONCE),
            )
            message = format_message(
                rule, price=k.close, value=value, bar_time_ms=k.open_time, fired_ms=now_ms
            )
            out.append(
                Fire(
                    rule.id,
                    stream.symbol,
                    stream.interval,
                    k.open_time,
                    now_ms,
                    k.close,
                    value,
                    message,
                    c.name,
                    k.closed,
                )
            )
        return out


def _check(
    c: _Compiled, stream: _Stream, i: int, cache: dict[tuple[Any, ...], np.ndarray]
) -> tuple[bool, float]:
    """Does ``c`` fire at bar ``i`` (the newest)? And the subject's value there."""
    a = cache.get(c.subject)
    if a is None:
        a = cache[c.subject] = stream.series(c.subject)
    if a.size <= i:
        return False, NAN
    cur = float(a[i])
    prev = float(a[i - 1]) if i >= 1 else NAN
    back = float(a[i - c.bars]) if i >= c.bars else NAN
    if c.operand is not None:
        b = cache.get(c.operand)
        if b is None:
            b = cache[c.operand] = stream.series(c.operand)
        if b.size <= i:
            return False, cur
        ocur = float(b[i])
        oprev = float(b[i - 1]) if i >= 1 else NAN
    else:
        ocur = oprev = c.level
    return bool(fires(c.op, cur, prev, back, ocur, oprev, c.low, c.high)), cur


def _subjects(rule: AlertRule) -> list[Subject]:
    cond = rule.condition
    out = [cond.subject]
    if cond.operand.kind == "series" and cond.operand.subject is not None:
        out.append(cond.operand.subject)
    return out


def _compile(rule: AlertRule) -> _Compiled:
    cond = rule.condition
    opnd = cond.operand
    return _Compiled(
        rule=rule,
        op=Operator(cond.operator),
        freq=Frequency(rule.frequency),
        subject=_key(cond.subject),
        operand=_key(opnd.subject) if opnd.kind == "series" and opnd.subject is not None else None,
        level=float(opnd.value) if opnd.kind == "value" and opnd.value is not None else NAN,
        low=float(opnd.low) if opnd.low is not None else NAN,
        high=float(opnd.high) if opnd.high is not None else NAN,
        bars=cond.bars,
        min_interval_ms=int(rule.min_interval_s * 1000) if rule.frequency == Frequency.EVERY_TIME else 0,
        name=rule.name or describe_condition(rule.condition),
    )


def _key(subject: Subject) -> tuple[Any, ...]:
    """A subject's key into :meth:`_Stream.series`: ``("price", "close")``,
    ``("indicator", compute_key, output)``."""
    if subject.indicator is not None:
        return ("indicator", subject.indicator.compute_key, subject.field)
    return (subject.kind, "volume" if subject.kind == "volume" else subject.field)


def _columns(candles: Sequence[Kline] | CandlesLike) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Closed candles as columns + open times (Klines: the forming ones are dropped)."""
    if isinstance(candles, Sequence) and not isinstance(candles, str):
        rows = [k for k in candles if isinstance(k, Kline) and k.closed]
        cols = {c: np.array([getattr(k, c) for k in rows], dtype=np.float64) for c in BASE_COLUMNS}
        return cols, np.array([k.open_time for k in rows], dtype=np.int64)
    return candle_columns(candles)
