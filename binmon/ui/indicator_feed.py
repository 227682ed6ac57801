"""The engine side of the chart's indicators: computing them and keeping the chart's series current.

:class:`IndicatorFeed` holds one :class:`~binmon.indicators.engine.Engine` over the candles the
chart shows, for the indicator set its owner (:class:`~binmon.ui.indicators_controller.
IndicatorController`) gives it in :attr:`IndicatorFeed.specs`:

* history loaded / older bars / a Reload: the engine is rebuilt, on a worker thread when the
  series is big (more than :data:`BIG_BARS` bars or :data:`BIG_SPECS` indicators) so the GUI
  stays responsive. A generation counter drops results that are no longer current; live bars
  flushed meanwhile are applied to the new engine before it is swapped in. Then every indicator
  is drawn (``chart.set_indicator``) with the rows of the newest ``max_rows`` bars (what the
  chart holds), on the next turn of the event loop so the chart has its bars first.
* adding or editing one indicator on a big series: computed on the worker from an engine
  snapshot, attached on the GUI thread (:func:`~binmon.indicators.engine.prepare`).
* live bars: :meth:`IndicatorFeed.flush_hook` runs in every adapter flush, updates the engine
  with the flush's ops and returns the new values, which the adapter hands to the chart in the
  same ``chart.apply`` call as the candles (one page batch).

Errors (engine, chart) become :attr:`IndicatorFeed.message`, never exceptions in Qt.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal

from binmon.core.candles import Append, ChartOp, Reload, Replace
from binmon.core.models import Kline
from binmon.indicators.catalog import function_info
from binmon.indicators.engine import Engine, LiveUpdate, OutOfOrderBar, StaleSnapshot, build_engine, prepare
from binmon.indicators.hints import hint_for
from binmon.indicators.inputs import BASE_COLUMNS, InputError
from binmon.indicators.layout import Columns, cached_lookback, join_parts, parts_len, spec_title
from binmon.indicators.spec import IndicatorSpec, SpecError
from binmon.ui.chart.api import ChartView
from binmon.ui.chart.bar_window import DEFAULT_MAX_BARS
from binmon.ui.chart.indicators import IndicatorDraw, IndicatorRows, OutputDraw, rows_from_columns
from binmon.ui.qt_adapter import QtMarketAdapter

__all__ = ["BIG_BARS", "BIG_SPECS", "STAGED_ROWS", "IndicatorFeed", "spec_draw"]

log = logging.getLogger(__name__)

#: A (re)computation over more bars than this runs on the worker thread.
BIG_BARS = 20_000
#: A full rebuild of more indicators than this runs on the worker thread.
BIG_SPECS = 5
#: A redraw sending more rows than this (all indicators) goes one indicator per event-loop turn.
STAGED_ROWS = 40_000


def spec_draw(spec: IndicatorSpec) -> IndicatorDraw:
    """The chart's descriptor of a (validated) spec: one output per TA-Lib output, in order."""
    info = function_info(spec.function)
    markers = hint_for(info).markers
    outputs = []
    for o in info.outputs:
        st = spec.styles[o.name]
        mk = markers.get(o.name)
        outputs.append(
            OutputDraw(
                o.name,
                st.color,
                st.width,
                st.kind,
                st.visible,
                neg_color=mk.bear_color if mk is not None and st.kind == "markers" else None,
                marker_text=mk.text if mk is not None else "",
                marker_position=mk.position if mk is not None else "by_sign",
            )
        )
    return IndicatorDraw(spec.id, spec_title(spec), spec.pane, tuple(outputs), spec.guides, spec.visible)


def engine_columns(engine: Engine) -> Columns:
    """The candles an engine holds (a copy, with ``open_time``)."""
    snap = engine.snapshot()
    return {"open_time": snap.open_time, **{c: snap.columns[c] for c in BASE_COLUMNS}}


def _frozen(bars: Sequence[Kline]) -> Sequence[Kline]:
    """``bars`` as an immutable sequence a worker may read (the service gives tuples already)."""
    return bars if isinstance(bars, tuple) else tuple(bars)


def _build_job(specs: list[IndicatorSpec], parts: list[Sequence[Kline] | Columns]) -> Engine:
    return build_engine(specs, join_parts(parts))


class _Relay(QObject):
    """Worker results, queued to the GUI thread: ``(callback, future)``."""

    done = Signal(object)


class IndicatorFeed(QObject):
    """See the module docstring. ``specs`` is the set in draw order (validated, normalised panes),
    assigned by the owner before it calls :meth:`compute` / :meth:`draw` / :meth:`redraw_all`."""

    message = Signal(str)  # one line for the user
    engineReady = Signal(int)  # a (re)built engine was swapped in: its bar count
    redrawn = Signal()  # every indicator was drawn again (panel tooltips may change)

    def __init__(
        self,
        chart: ChartView,
        adapter: QtMarketAdapter | None = None,
        *,
        max_rows: int = DEFAULT_MAX_BARS,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.chart = chart
        self.specs: list[IndicatorSpec] = []
        self._max_rows = max_rows
        self._engine: Engine | None = None
        self._gen = 0  # bumped by every rebuild / series change; stale worker results are dropped
        self._building: list[Sequence[Kline] | Columns] | None = None  # the parts being built
        self._backlog: list[ChartOp] = []  # ops flushed while building
        self._pending: dict[str, IndicatorSpec] = {}  # specs computed on the worker right now
        self._drawn: set[str] = set()  # ids the chart has
        self._series: tuple[str, str] | None = None
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="indicators")
        self._relay = _Relay(self)
        self._relay.done.connect(self._job_done)
        self._jobs = 0
        self._queue: list[str] = []  # ids still to draw in a staged redraw, in order
        self._closed = False
        if adapter is not None:
            adapter.switching.connect(self._on_switching)
            adapter.historyLoaded.connect(self._on_history)
            adapter.olderLoaded.connect(self._on_older)
            adapter.add_flush_hook(self.flush_hook)

    @property
    def engine(self) -> Engine | None:
        """The current engine (None while none is built for the series shown)."""
        return self._engine

    @property
    def busy(self) -> bool:
        """True while a worker job runs, a rebuild is under way or a staged redraw goes on."""
        return self._jobs > 0 or self._building is not None or bool(self._queue)

    @property
    def errors(self) -> dict[str, str]:
        """Spec id -> why it is not computed on these candles."""
        return dict(self._engine.errors) if self._engine is not None else {}

    def drop(self, spec_id: str) -> None:
        """Forget an indicator: out of the engine and off the chart."""
        self._pending.pop(spec_id, None)
        if self._engine is not None:
            self._engine.remove(spec_id)
        self.undraw(spec_id)

    def set_visible(self, spec_id: str, visible: bool) -> None:
        """Show or hide a drawn indicator (draw it when the chart does not have it yet)."""
        if spec_id in self._drawn:
            self._chart_call(self.chart.set_indicator_visible, spec_id, visible)
        elif (spec := next((s for s in self.specs if s.id == spec_id), None)) is not None:
            self.draw(spec)

    def replace_all(self) -> None:
        """The whole set changed (restore, template): off the chart, into the engine, drawn anew."""
        for sid in list(self._drawn):
            self.undraw(sid)
        self._pending.clear()
        if self._engine is not None:
            try:
                self._engine.set_specs(self.specs)
            except (SpecError, InputError) as exc:
                self._say(f"Indicators: {exc}")
        self.redraw_all()

    def _on_switching(self, *_: Any) -> None:
        """A new series: nothing computed holds for it; wait for its history."""
        self._gen += 1
        self._engine, self._building, self._backlog = None, None, []
        self._pending.clear()
        self._series = None

    def _on_history(self, symbol: str, interval: str, bars: Sequence[Kline]) -> None:
        self._series = (symbol, interval)
        self._rebuild([_frozen(bars)], [])

    def _on_older(self, symbol: str, interval: str, bars: Sequence[Kline]) -> None:
        if (symbol, interval) != self._series or not bars:
            return
        if self._building is not None:
            self._rebuild([_frozen(bars), *self._building], self._backlog)
        elif self._engine is not None:
            self._rebuild([_frozen(bars), engine_columns(self._engine)], [])

    def flush_hook(self, ops: Sequence[ChartOp]) -> dict[str, IndicatorRows] | None:
        """The adapter's flush hook: update the engine with ``ops``, return the new values.

        Rows per indicator drawn: the updated bar and, after an append, the final values of the
        bar before. While a rebuild runs the ops wait for the new engine; a Reload starts one.
        """
        if self._closed:
            return None
        if self._building is not None:
            self._backlog.extend(ops)
            return None
        engine = self._engine
        if engine is None:
            return None
        rows: dict[str, dict[int, list[float]]] = {}
        for k, op in enumerate(ops):
            if isinstance(op, Reload):
                self._rebuild([op.bars], list(ops[k + 1 :]))
                return None
            if not isinstance(op, Append | Replace):
                continue
            try:
                update = engine.update(op.bar)
            except (OutOfOrderBar, InputError) as exc:
                self._say(f"Indicators paused until the next reload: {exc}")
                self._engine = None
                return None
            self._collect(engine, update, rows)
        out: dict[str, IndicatorRows] = {sid: [r[t] for t in sorted(r)] for sid, r in rows.items()}
        return out or None

    def _collect(self, engine: Engine, update: LiveUpdate, rows: dict[str, dict[int, list[float]]]) -> None:
        t = update.open_time // 1000
        prev_t = int(engine.open_times()[update.index - 1]) // 1000 if update.index else None
        for s in self.specs:
            sid = s.id
            if sid not in self._drawn or sid in self._pending or sid not in update.values:
                continue
            names = function_info(s.function).output_names
            lb = cached_lookback(s.compute_key)
            vals = update.values[sid]
            by_t = rows.setdefault(sid, {})
            by_t[t] = [t, *(vals[n] if update.index >= lb else np.nan for n in names)]
            done = update.finished.get(sid) if update.finished else None
            if done is not None and prev_t is not None:
                by_t[prev_t] = [prev_t, *(done[n] if update.index - 1 >= lb else np.nan for n in names)]

    def _rebuild(self, parts: list[Sequence[Kline] | Columns], backlog: list[ChartOp]) -> None:
        """Build a new engine over ``parts`` (old to new) + ``backlog``; on the worker when big."""
        self._gen += 1
        gen = self._gen
        self._engine, self._building, self._backlog = None, parts, list(backlog)
        specs = list(self.specs)
        if parts_len(parts) > BIG_BARS or len(specs) > BIG_SPECS:
            self._submit(lambda fut: self._built(gen, fut), _build_job, specs, parts)
            return
        fut: Future[Engine] = Future()
        try:
            fut.set_result(_build_job(specs, parts))
        except Exception as exc:
            fut.set_exception(exc)
        self._built(gen, fut)

    def _built(self, gen: int, fut: Future[Any]) -> None:
        if gen != self._gen or self._closed:
            return  # superseded by a newer series or rebuild
        backlog, self._building, self._backlog = self._backlog, None, []
        try:
            engine: Engine = fut.result()
            engine.set_specs(self.specs)  # the set may have changed during the build
        except Exception as exc:
            self._say(f"Indicators not computed: {exc}")
            return
        for k, op in enumerate(backlog):
            if isinstance(op, Reload):
                self._rebuild([op.bars], backlog[k + 1 :])
                return
            last = engine.last_open_time
            if isinstance(op, Append | Replace) and (last is None or op.bar.open_time >= last):
                try:
                    engine.update(op.bar)
                except (OutOfOrderBar, InputError) as exc:
                    self._say(f"Indicators not computed: {exc}")
                    return
        self._engine = engine
        self._pending.clear()
        titles = {s.id: spec_title(s) for s in self.specs}
        for sid, err in engine.errors.items():
            self._say(f"{titles.get(sid, sid)} not computed: {err}")
        # Drawn on the next turn of the loop: the chart gets the bars first (the app's
        # controller handles the same signal, maybe after us).
        QTimer.singleShot(0, self, lambda: self.redraw_all() if gen == self._gen else None)
        self.engineReady.emit(len(engine))

    def compute(self, spec: IndicatorSpec) -> None:
        """Make the engine hold ``spec`` (on the worker when the series is big and values change)."""
        engine = self._engine
        if engine is None:
            return  # the build under way (or the next one) computes it
        held = {s.id: s for s in engine.specs}.get(spec.id)
        if held is None and spec.id in self._pending:
            held = self._pending[spec.id]
        same = held is not None and held.compute_key == spec.compute_key
        if len(engine) <= BIG_BARS or same:
            self._pending.pop(spec.id, None)
            try:
                engine.add(spec)
            except (SpecError, InputError) as exc:
                self._say(f"{spec_title(spec)}: {exc}")
            return
        self._pending[spec.id] = spec
        snap = engine.snapshot()
        self._submit(lambda fut: self._prepared(engine, spec, fut), prepare, spec, snap)

    def _prepared(self, engine: Engine, spec: IndicatorSpec, fut: Future[Any]) -> None:
        if self._engine is not engine or self._pending.get(spec.id) != spec or self._closed:
            return  # rebuilt, edited again or removed meanwhile
        self._pending.pop(spec.id)
        try:
            try:
                engine.attach(fut.result())
            except StaleSnapshot:
                engine.add(spec)
        except Exception as exc:
            self._say(f"{spec_title(spec)}: {exc}")
            return
        current = next((s for s in self.specs if s.id == spec.id), None)
        if current is not None:
            self.draw(current)

    def _submit(self, done: Callable[[Future[Any]], None], fn: Callable[..., Any], *args: Any) -> None:
        self._jobs += 1
        fut = self._executor.submit(fn, *args)
        relay = self._relay

        def finished(f: Future[Any]) -> None:
            with contextlib.suppress(RuntimeError):  # the controller is gone (app shutting down)
                relay.done.emit((done, f))

        fut.add_done_callback(finished)

    def _job_done(self, payload: tuple[Callable[[Future[Any]], None], Future[Any]]) -> None:
        self._jobs -= 1
        done, fut = payload
        try:
            done(fut)
        except Exception as exc:  # never into Qt
            log.exception("indicator job failed")
            self._say(f"Indicators: {exc}")

    def _rows(self, spec: IndicatorSpec) -> np.ndarray:
        names = function_info(spec.function).output_names
        engine = self._engine
        empty = np.empty((0, len(names) + 1))
        if engine is None or spec.id in self._pending or engine.mode(spec.id) == "error":
            return empty
        values = engine.values(spec.id)
        times = engine.open_times()
        start = max(0, times.size - self._max_rows)
        rows = rows_from_columns(times[start:], [values[n][start:] for n in names])
        warm = cached_lookback(spec.compute_key) - start
        if warm > 0:
            rows[:warm, 1:] = np.nan  # integer outputs hold 0 there, not NaN
        return rows

    def draw(self, spec: IndicatorSpec) -> None:
        """Send ``spec`` with its rows to the chart (queued behind a staged redraw under way, so
        the chart still gets the set in order)."""
        if self._queue and (spec.id in self._queue or spec.id not in self._drawn):
            if spec.id not in self._queue:
                self._queue.append(spec.id)
            return
        if self._chart_call(self.chart.set_indicator, spec_draw(spec), self._rows(spec)):
            self._drawn.add(spec.id)

    def undraw(self, spec_id: str) -> None:
        """Take an indicator off the chart."""
        if spec_id in self._queue:
            self._queue.remove(spec_id)
        if spec_id in self._drawn:
            self._drawn.discard(spec_id)
            self._chart_call(self.chart.remove_indicator, spec_id)

    def redraw_all(self, relayout: bool = False) -> None:
        """Draw every indicator again (``relayout``: removed first, so panes follow the order).

        With many rows to send (more than :data:`STAGED_ROWS` in all) the indicators are sent one
        per turn of the event loop: each ``set_indicator`` of 20k rows costs the GUI thread tens
        of ms (checks and encoding), so ten at once would freeze it for most of a second.
        """
        if relayout:
            for sid in list(self._drawn):
                self.undraw(sid)
        self._queue.clear()
        held = min(len(self._engine), self._max_rows) if self._engine is not None else 0
        if held * len(self.specs) <= STAGED_ROWS:
            for s in self.specs:
                self.draw(s)
            self.redrawn.emit()
            return
        self._queue = [s.id for s in self.specs]
        self._draw_next()

    def _draw_next(self) -> None:
        if not self._queue or self._closed:
            return
        sid = self._queue.pop(0)
        spec = next((s for s in self.specs if s.id == sid), None)
        if spec is not None and self._chart_call(self.chart.set_indicator, spec_draw(spec), self._rows(spec)):
            self._drawn.add(sid)
        if self._queue:
            QTimer.singleShot(0, self, self._draw_next)
        else:
            self.redrawn.emit()

    def _chart_call(self, fn: Callable[..., object], *args: Any) -> bool:
        try:
            fn(*args)
        except Exception as exc:  # ChartDataError, ValueError...: reported, never raised into Qt
            log.warning("chart %s failed: %s", getattr(fn, "__name__", fn), exc)
            self._say(f"Chart: {exc}")
            return False
        return True

    def _say(self, text: str) -> None:
        log.info("%s", text)
        self.message.emit(text)

    def close(self) -> None:
        """Stop: no more worker results, no more flush work (app shutdown)."""
        self._closed = True
        self._gen += 1
        self._executor.shutdown(wait=False, cancel_futures=True)
