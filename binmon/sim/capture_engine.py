"""Capture replay on the websocket side: the recorded frames, verbatim, at their recorded pace.

:class:`CaptureEngine` is the :class:`~binmon.sim.hub.Hub` of capture mode (``binmon sim
--replay CAPTURE``). It reads the capture's records lazily (a capture may be far larger than
memory) and sends each frame when the sim clock reaches its recorded receive time; the clock
starts at the first frame's time and runs at ``--speed``, so the recorded pacing is kept,
scaled.

* A well-formed combined frame ``{"stream": s, "data": d}`` goes to the connections following
  ``s``: the recorded text unchanged on combined (``/stream``) connections, ``d`` on raw
  (``/ws``) ones, sliced out of the recorded text so its bytes are the recorded ones too.
* Anything else is sent exactly as recorded, because replaying faults is what captures are
  for: a frame whose first bytes still name a stream (``{"stream":"s",...`` cut short) goes to
  the followers of ``s``; one that names none goes to every connection following at least one
  of the capture's streams. Both framings get the same bytes.
* A gap record (the recorder's connection dropped there) is replayed as a drop: every
  connection following a recorded stream is aborted (1006), as the recorder's was.
* At the end of the capture nothing more is sent; connections stay open (no loop).

Subscribing works as on Binance (any name is accepted); a stream only carries what was
recorded for it, from the moment it is followed. Kline frames also feed the
:class:`~binmon.sim.capture.CaptureMarket` REST answers from, and bookTicker frames the best
bid/ask of REST's 24 h ticker. The fault switches ``silent``, ``malformed``, ``drop_all``,
``server_shutdown``, ``refuse`` and the REST ones act in capture mode as in the generated one;
``duplicate_klines`` and ``reorder_klines`` do not (the capture's own order is what is replayed).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import orjson

from binmon.sim import wire
from binmon.sim.capture import Capture, CaptureMarket, close_records
from binmon.sim.faults import Faults
from binmon.sim.hub import Hub
from binmon.sim.streams import combined_stream_of

if TYPE_CHECKING:
    from binmon.sim.server import ServerConfig, SimStats
    from binmon.sim.ws import Session

log = logging.getLogger("binmon.sim.capture")

#: Most records one pump tick replays: after a clock jump (or at a speed the machine cannot
#: keep up with) the backlog is sent over several ticks instead of freezing the event loop.
MAX_RECORDS_PER_TICK = 20_000


class CaptureEngine(Hub):
    """Replays a :class:`~binmon.sim.capture.Capture` to the sessions that follow its streams."""

    def __init__(
        self,
        capture: Capture,
        market: CaptureMarket,
        clock: Any,
        config: ServerConfig,
        faults: Faults,
        stats: SimStats,
    ) -> None:
        super().__init__(clock, config, faults, stats)
        self.capture = capture
        self.market = market
        self._recorded = frozenset(capture.streams)
        self._records: Iterator[dict[str, Any]] | None = None
        self._next: dict[str, Any] | None = None
        self.frames_replayed = 0
        self.frames_unparsed = 0  # sent as recorded, not as a combined frame
        self.gaps_replayed = 0
        self.finished = False
        #: stream -> (recorded combined frame, its object) of the last kline frame replayed.
        self._last_kline: dict[str, tuple[bytes, dict[str, Any]]] = {}
        self._idle_due_s = 0.0

    # ------------------------------------------------------------ subscriptions

    def _activate(self, name: str, now: int) -> None:
        # Nothing to start: the capture is read whether or not anybody follows a stream.
        if name not in self._recorded:
            log.debug("%s is not in the capture: it will carry nothing", name)

    def _deactivate(self, name: str) -> None:
        # Nothing to stop: a recorded stream keeps no per-stream state.
        return

    # ------------------------------------------------------------ the pump

    async def run(self) -> None:
        """Open the capture and replay it until cancelled (the file is closed either way)."""
        records = self.capture.records()
        self._records = records
        self._next = self._pull()
        try:
            await super().run()
        finally:
            self._records = self._next = None
            close_records(records)

    def _pause(self) -> float:
        """Until the next record is due (at most the pump period), so frames go out on time."""
        period = self._config.pump_interval_s
        nxt = self._next
        if nxt is None:
            return period
        return min(period, self.clock.real_seconds_until(int(nxt["t"])))

    def _pull(self) -> dict[str, Any] | None:
        for rec in self._records or ():
            if isinstance(rec.get("frame"), str) or "gap" in rec:
                return rec
        return None

    def produce(self, now: int) -> None:
        """Replay every record due at sim time ``now`` (up to :data:`MAX_RECORDS_PER_TICK`)."""
        n = 0
        while (rec := self._next) is not None and rec["t"] <= now and n < MAX_RECORDS_PER_TICK:
            if "gap" in rec and n:
                break  # flush what came before the drop first: it reached the recorder
            self._next = self._pull()
            n += 1
            frame = rec.get("frame")
            if isinstance(frame, str):
                self._replay_frame(frame.encode())
            else:
                self._replay_gap(rec)
        if self._next is None and self._records is not None and not self.finished:
            self.finished = True
            log.info("capture %s replayed to its end (%d frames)", self.capture.path, self.frames_replayed)

    def _replay_frame(self, data: bytes) -> None:
        self.frames_replayed += 1
        try:
            obj = orjson.loads(data)
        except orjson.JSONDecodeError:
            obj = None
        if isinstance(obj, dict) and isinstance(obj.get("stream"), str) and "data" in obj:
            stream: str = obj["stream"]
            self._observe(stream, obj["data"])
            if "@kline_" in stream:
                self._last_kline[stream] = (data, obj)
            raw: bytes | None = None
            for s in self.subscribers(stream):
                if s.combined:
                    self.queue(s, data)
                else:
                    if raw is None:
                        raw = _unwrapped(data, obj)
                    self.queue(s, raw)
            return
        self.frames_unparsed += 1
        named = combined_stream_of(data)
        targets = self.subscribers(named) if named is not None else self._recorded_followers()
        for s in targets:
            self.queue(s, data)

    def idle(self, now: int, real_s: float) -> None:
        """Paused clock: each kline stream's last recorded frame again, every kline push period
        (what a quiet Binance market sends; keeps clients' watchdogs quiet). Nothing else."""
        if real_s < self._idle_due_s:
            return
        self._idle_due_s = real_s + self._config.kline_push_s
        for stream, (data, obj) in self._last_kline.items():
            for s in self.subscribers(stream):
                self.queue(s, data if s.combined else _unwrapped(data, obj))

    def _replay_gap(self, rec: dict[str, Any]) -> None:
        self.gaps_replayed += 1
        victims = self._recorded_followers()
        log.info("capture gap at %d (%s): dropping %d connection(s)", rec["t"], rec.get("gap"), len(victims))
        for s in victims:
            s.abort()

    def _recorded_followers(self) -> list[Session]:
        return [s for s in self.sessions if not s.closing and any(n in self._recorded for n in s.streams)]

    def _observe(self, stream: str, payload: Any) -> None:
        """Feed REST's view: candles from kline frames, best bid/ask from bookTicker frames."""
        if not isinstance(payload, dict):
            return
        if payload.get("e") == "kline":
            self.market.observe_kline(payload.get("k"))
        elif stream.endswith("@bookTicker"):
            try:
                sym = str(payload["s"]).upper()
                book = wire.Book(
                    int(payload["u"]),
                    float(payload["b"]),
                    float(payload["B"]),
                    float(payload["a"]),
                    float(payload["A"]),
                )
            except (KeyError, TypeError, ValueError):
                return  # a malformed book is still replayed, just not remembered
            self.books[sym] = book

    def state(self) -> dict[str, Any]:
        """Progress of the replay, for ``GET /_sim/state``."""
        nxt = self._next
        return {
            "path": str(self.capture.path),
            "streams": list(self.capture.streams),
            "frames_replayed": self.frames_replayed,
            "frames_unparsed": self.frames_unparsed,
            "gaps_replayed": self.gaps_replayed,
            "next_ms": None if nxt is None else int(nxt["t"]),
            "finished": self.finished,
        }


def _unwrapped(data: bytes, obj: dict[str, Any]) -> bytes:
    """The ``data`` part of a combined frame: its recorded bytes when the wrapper is Binance's."""
    if len(obj) == 2:
        prefix = b'{"stream":' + orjson.dumps(obj["stream"]) + b',"data":'
        if data.startswith(prefix) and data.endswith(b"}"):
            return data[len(prefix) : -1]
    return orjson.dumps(obj["data"])  # an unusual wrapper (spaces, extra keys): same value
