"""The indicator engine: specs in, series out; full computation and live updates. No Qt.

* :func:`compute` - one spec over a candle frame with TA-Lib's function API (the reference).
* :class:`Engine` - several specs over one candle series: :meth:`Engine.load` computes them
  all, :meth:`Engine.update` applies a live bar (replace the forming bar / append a new one)
  in O(1) per indicator, with values bit-identical to a full recomputation (how: see
  :mod:`.track`).

Threading. TA-Lib releases the GIL while it computes (its calls run ``with nogil``; measured in
benchmarks/indicators.py: a Python loop on the main thread never pauses more than ~2 ms while
a worker runs a 600 ms TA-Lib call), so heavy work runs well on a worker thread. The rule:

* an :class:`Engine` belongs to one thread (the GUI thread): only that thread calls its methods;
* heavy work goes to an executor on *new* objects: :func:`build_engine` (load 100k+ bars with
  many indicators) returns a ready Engine to swap in; :func:`prepare` builds one indicator on
  an :meth:`Engine.snapshot` and :meth:`Engine.attach` adds it on the GUI thread, catching up
  with the bars that arrived meanwhile (O(1) per bar);
* :func:`compute_async`, :func:`build_engine_async`, :func:`prepare_async` are that glue for
  asyncio (``loop.run_in_executor``); a UI without asyncio calls the plain functions on a
  worker thread the same way.

Bars that arrive while :func:`build_engine` runs are applied to the new engine with
:meth:`Engine.update` after the swap: updating the last bar again is a replace (idempotent);
bars older than :attr:`Engine.last_open_time` are skipped by the caller (``update`` raises
:class:`OutOfOrderBar` for them).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Iterable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Literal

import numpy as np
import talib

from binmon.indicators.inputs import (
    BASE_COLUMNS,
    DERIVED_SOURCES,
    CandlesLike,
    InputError,
    bar_fields,
    candle_columns,
    derived_column,
    derived_value,
)
from binmon.indicators.spec import IndicatorSpec, validate
from binmon.indicators.track import Buffer, Track, input_slots

__all__ = [
    "Engine",
    "EngineSnapshot",
    "LiveUpdate",
    "OutOfOrderBar",
    "PreparedIndicator",
    "StaleSnapshot",
    "build_engine",
    "build_engine_async",
    "compute",
    "compute_async",
    "prepare",
    "prepare_async",
]

log = logging.getLogger(__name__)

Values = dict[str, np.ndarray]


class OutOfOrderBar(ValueError):
    """A live bar older than the engine's last bar: reload the series instead."""


class StaleSnapshot(RuntimeError):
    """A prepared indicator was built on data the engine no longer holds (it was reloaded)."""


@dataclass(frozen=True, slots=True)
class LiveUpdate:
    """What one live bar changed: every indicator's values at the last bar.

    ``kind``: ``replace`` (same open time as the last bar) or ``append`` (a newer bar).
    ``values``: spec id -> output -> value at ``index`` (NaN where TA-Lib has NaN).
    ``finished``: on append, the final values of the previous bar (``index - 1``), which may
    differ from what was last shown for it if its final version came with this update.
    """

    kind: Literal["replace", "append"]
    index: int
    open_time: int
    values: Mapping[str, Mapping[str, float]]
    finished: Mapping[str, Mapping[str, float]] | None = None


@dataclass(frozen=True, slots=True)
class EngineSnapshot:
    """A copy of an engine's candles for a worker thread (see :func:`prepare`)."""

    columns: Mapping[str, np.ndarray]
    open_time: np.ndarray
    generation: int


@dataclass(frozen=True, slots=True)
class PreparedIndicator:
    """An indicator computed on a snapshot, ready for :meth:`Engine.attach`."""

    track: Track
    bars: int
    last_open_time: int | None
    generation: int


# ---------------------------------------------------------------- one-shot


def compute(spec: IndicatorSpec, candles: CandlesLike) -> Values:
    """``spec`` over all ``candles`` with TA-Lib's function API: output name -> float64 array.

    Arrays are aligned with the candles, NaN where TA-Lib gives NaN (integer outputs, e.g.
    candlestick patterns, are TA-Lib's integers as floats, 0 in the warm-up as TA-Lib has
    them). Raises SpecError for an invalid spec, InputError for missing columns.
    """
    spec = validate(spec)
    track = Track(spec)
    cols, _ = candle_columns(candles, _extras([track]))
    arrays = [derived_column(cols, s) for s in track.slots]
    out = getattr(talib, track.info.name)(*arrays, **dict(spec.params))
    outs = out if isinstance(out, tuple) else (out,)
    return {o.name: np.asarray(a, dtype=np.float64) for o, a in zip(track.info.outputs, outs, strict=True)}


# ---------------------------------------------------------------- the engine


class Engine:
    """Several indicators over one candle series, kept up to date bar by bar (one thread only)."""

    def __init__(self, specs: Iterable[IndicatorSpec] = ()) -> None:
        self._cols: dict[str, Buffer] = {c: Buffer(np.empty(0)) for c in BASE_COLUMNS}
        self._times = Buffer(np.empty(0, dtype=np.int64), dtype=np.int64)
        self._finite: dict[str, bool] = dict.fromkeys(BASE_COLUMNS, True)
        self._specs: dict[str, IndicatorSpec] = {}  # every spec, in order
        self._tracks: dict[str, Track] = {}  # the computed ones
        self._errors: dict[str, str] = {}  # the others: why not
        self.generation = 0
        for spec in specs:
            self.add(spec)

    # ------------------------------------------------------------ reading

    def __len__(self) -> int:
        return self._times.n

    @property
    def specs(self) -> list[IndicatorSpec]:
        """Every spec held, in order (including those listed in :attr:`errors`)."""
        return list(self._specs.values())

    @property
    def errors(self) -> Mapping[str, str]:
        """Spec id -> why it is not computed on the loaded candles (a column they lack)."""
        return dict(self._errors)

    @property
    def last_open_time(self) -> int | None:
        """Open time (ms) of the last bar, None when empty."""
        return int(self._times.data[self._times.n - 1]) if self._times.n else None

    def open_times(self) -> np.ndarray:
        """The bars' open times (ms, int64; a read-only view valid until the next update)."""
        view = self._times.view()
        view.flags.writeable = False
        return view

    def values(self, spec_id: str) -> Values:
        """Output name -> series of one indicator (read-only views valid until the next update;
        copy to keep); ``{}`` for a spec in :attr:`errors`. KeyError for an unknown id."""
        if spec_id in self._tracks:
            return self._tracks[spec_id].values()
        if spec_id in self._specs:
            return {}
        raise KeyError(spec_id)

    def mode(self, spec_id: str) -> str:
        """How an indicator is kept up to date: ``stream``, ``pending`` (short history), ``full``
        (recomputed per update), or ``error`` (see :attr:`errors`). KeyError for an unknown id."""
        if spec_id in self._tracks:
            return self._tracks[spec_id].mode
        if spec_id in self._specs:
            return "error"
        raise KeyError(spec_id)

    # ------------------------------------------------------------ specs

    def add(self, spec: IndicatorSpec) -> Values:
        """Add ``spec`` (or replace the one with its id, keeping its place) and compute it now.

        An edit that changes only presentation (style, pane, guides, visibility) keeps the
        computed series. Raises SpecError (invalid), InputError (a column the candles lack:
        nothing is added then).
        """
        return self._add(validate(spec), keep_on_error=False)

    def remove(self, spec_id: str) -> None:
        """Drop an indicator (no error if absent)."""
        self._specs.pop(spec_id, None)
        self._tracks.pop(spec_id, None)
        self._errors.pop(spec_id, None)

    def set_specs(self, specs: Iterable[IndicatorSpec]) -> None:
        """Make the engine hold exactly ``specs`` in that order (add, edit, remove, reorder).

        Every spec is validated first (SpecError: nothing changes). A spec whose input the
        candles lack is kept and listed in :attr:`errors`.
        """
        wanted = [validate(s) for s in specs]
        for spec_id in set(self._specs) - {s.id for s in wanted}:
            self.remove(spec_id)
        for spec in wanted:
            self._add(spec, keep_on_error=True)
        self._specs = {s.id: s for s in wanted}

    def _add(self, spec: IndicatorSpec, keep_on_error: bool) -> Values:
        old = self._tracks.get(spec.id)
        if old is not None and old.spec.compute_key == spec.compute_key:
            old.spec = spec
            self._specs[spec.id] = spec
            return old.values()
        track = Track(spec)
        try:
            self._ensure_columns(track)
        except InputError as exc:
            if not keep_on_error:
                raise
            self._specs[spec.id] = spec
            self._tracks.pop(spec.id, None)
            self._errors[spec.id] = f"{spec.function}: {exc}"
            log.warning("indicator %s not computed: %s", spec.id, exc)
            return {}
        track.build(self._views(), len(self), finite=all(self._finite[s] for s in track.slots))
        self._specs[spec.id] = spec
        self._tracks[spec.id] = track
        self._errors.pop(spec.id, None)
        return track.values()

    # ------------------------------------------------------------ data

    def load(self, candles: CandlesLike) -> None:
        """Replace the candles (oldest first) and recompute every indicator in full.

        The last candle is treated as possibly still forming (a later update with its open
        time replaces it). An indicator whose inputs the candles lack is kept, listed in
        :attr:`errors`, and not computed; the others are.
        """
        specs = self.specs
        wanted = dict.fromkeys(s for spec in specs for s in input_slots(spec))
        available = [e for e in wanted if e not in BASE_COLUMNS and e not in DERIVED_SOURCES and e in candles]
        cols, times = candle_columns(candles, available)
        self._cols = {name: Buffer(col) for name, col in cols.items()}
        self._times = Buffer(times, dtype=np.int64)
        self._finite = {name: bool(np.isfinite(col).all()) for name, col in cols.items()}
        self._tracks, self._errors = {}, {}
        self.generation += 1
        for spec in specs:
            self._add(spec, keep_on_error=True)

    def update(self, bar: object) -> LiveUpdate:
        """Apply one live bar (a Kline or a mapping with open_time, open, high, low, close, volume).

        Same open time as the last bar: replace it. Newer: append it (the previous bar's
        current version becomes final). Older: :class:`OutOfOrderBar`. A bar missing a field
        raises InputError before anything changes.
        """
        extra = [c for c in self._cols if c not in BASE_COLUMNS and c not in DERIVED_SOURCES]
        open_time, fields = bar_fields(bar, extra)
        n = len(self)
        last = self.last_open_time
        if last is not None and open_time < last:
            raise OutOfOrderBar(f"bar at {open_time} is older than the last bar ({last})")
        row = self._row(fields)
        if last is not None and open_time == last:
            for name, value in row.items():
                self._cols[name].data[n - 1] = value
            self._note_finite(row)
            views = self._views()
            values = {
                sid: _named(t, t.replace_last(views, n, [row[s] for s in t.slots]))
                for sid, t in self._tracks.items()
            }
            return LiveUpdate("replace", n - 1, open_time, values)
        finished: dict[str, dict[str, float]] = {}
        if n:
            for sid, t in self._tracks.items():
                done = t.commit_last([float(self._cols[s].data[n - 1]) for s in t.slots])
                if done is not None:
                    finished[sid] = _named(t, done)
        for name, value in row.items():
            self._cols[name].append(value)
        self._times.append(open_time)
        self._note_finite(row)
        views = self._views()
        values = {
            sid: _named(t, t.append(views, n + 1, [row[s] for s in t.slots]))
            for sid, t in self._tracks.items()
        }
        if n:  # indicators recomputed in full: their finished values are in the series now
            for sid, t in self._tracks.items():
                if sid not in finished:
                    finished[sid] = _named(t, tuple(float(b.data[n - 1]) for b in t.outputs))
        return LiveUpdate("append", n, open_time, values, finished if n else None)

    # ------------------------------------------------------------ worker hand-off

    def snapshot(self) -> EngineSnapshot:
        """A copy of the candles (~1 ms per 100k bars) that a worker may read while this engine runs on."""
        cols = {name: buf.view().copy() for name, buf in self._cols.items()}
        return EngineSnapshot(cols, self._times.view().copy(), self.generation)

    def attach(self, prepared: PreparedIndicator) -> Values:
        """Add an indicator built by :func:`prepare`, catching up with the bars since its snapshot.

        Raises :class:`StaleSnapshot` when the engine was reloaded since (prepare again).
        """
        start, n = prepared.bars, len(self)
        if prepared.generation != self.generation or start > n:
            raise StaleSnapshot("the candles were reloaded since this indicator was prepared")
        if start and int(self._times.data[start - 1]) != prepared.last_open_time:
            raise StaleSnapshot("the candles changed since this indicator was prepared")
        track = prepared.track
        self._ensure_columns(track)
        if start == 0:
            track.build(self._views(), n, finite=all(self._finite[s] for s in track.slots))
        else:
            track.catch_up(self._views(), start, n, finite=all(self._finite[s] for s in track.slots))
        self._specs[track.spec.id] = track.spec
        self._tracks[track.spec.id] = track
        self._errors.pop(track.spec.id, None)
        return track.values()

    # ------------------------------------------------------------ internals

    def _views(self) -> dict[str, np.ndarray]:
        return {name: buf.view() for name, buf in self._cols.items()}

    def _row(self, fields: Mapping[str, float]) -> dict[str, float]:
        """The bar's value of every column the engine holds (base, extra inputs, derived sources)."""
        return {name: fields[name] if name in fields else derived_value(fields, name) for name in self._cols}

    def _note_finite(self, row: Mapping[str, float]) -> None:
        for name, value in row.items():
            if not np.isfinite(value):
                self._finite[name] = False

    def _ensure_columns(self, track: Track) -> None:
        """Create the derived source columns (hl2, ...) the track reads; InputError for a missing input."""
        base = self._views()
        for slot in track.slots:
            if slot in self._cols:
                continue
            if slot not in DERIVED_SOURCES:
                if len(self):
                    raise InputError(f"candles have no {slot!r} column")
                col = np.empty(0)  # an extra input (MAVP's periods) of an empty engine: load brings it
            else:
                col = derived_column(base, slot)
            self._cols[slot] = Buffer(col)
            self._finite[slot] = bool(np.isfinite(col).all())


def _named(track: Track, values: tuple[float, ...]) -> dict[str, float]:
    return dict(zip(track.names, values, strict=True))


def _extras(tracks: Iterable[Track]) -> list[str]:
    """Inputs beyond the candle columns and derived sources (MAVP's ``periods``)."""
    out = [s for t in tracks for s in t.slots if s not in BASE_COLUMNS and s not in DERIVED_SOURCES]
    return list(dict.fromkeys(out))


# ---------------------------------------------------------------- worker functions


def build_engine(specs: Iterable[IndicatorSpec], candles: CandlesLike) -> Engine:
    """A new engine holding ``specs``, loaded with ``candles`` (safe on a worker thread)."""
    engine = Engine(specs)
    engine.load(candles)
    return engine


def prepare(spec: IndicatorSpec, snapshot: EngineSnapshot) -> PreparedIndicator:
    """Compute ``spec`` on a snapshot (safe on a worker thread); give the result to :meth:`Engine.attach`."""
    spec = validate(spec)
    track = Track(spec)
    cols = dict(snapshot.columns)
    for slot in track.slots:
        if slot not in cols:
            if slot not in DERIVED_SOURCES:
                raise InputError(f"candles have no {slot!r} column")
            cols[slot] = derived_column(cols, slot)
    n = int(snapshot.open_time.size)
    track.build(cols, n, finite=all(bool(np.isfinite(cols[s]).all()) for s in track.slots))
    last = int(snapshot.open_time[-1]) if n else None
    return PreparedIndicator(track, n, last, snapshot.generation)


async def compute_async(
    spec: IndicatorSpec, candles: CandlesLike, executor: Executor | None = None
) -> Values:
    """:func:`compute` on ``executor`` (the loop's default thread pool when None)."""
    return await asyncio.get_running_loop().run_in_executor(executor, compute, spec, candles)


async def build_engine_async(
    specs: Iterable[IndicatorSpec], candles: CandlesLike, executor: Executor | None = None
) -> Engine:
    """:func:`build_engine` on ``executor``; swap the result in on the calling (GUI) thread."""
    job = functools.partial(build_engine, list(specs), candles)
    return await asyncio.get_running_loop().run_in_executor(executor, job)


async def prepare_async(
    spec: IndicatorSpec, snapshot: EngineSnapshot, executor: Executor | None = None
) -> PreparedIndicator:
    """:func:`prepare` on ``executor``; then ``engine.attach(result)`` on the engine's thread."""
    return await asyncio.get_running_loop().run_in_executor(executor, prepare, spec, snapshot)
