"""Backfill of kline streams after a reconnect or a live gap.

One task per stream: it asks the injected ``backfill`` for the klines from the last
candle the consumer saw, hands them to the :class:`~binmon.binance.sequencer.StreamSequencer`
(which emits them before the live updates it held back), and retries with backoff when
the fetch fails. Live data is held back at most ``wait_s`` seconds: after that the
buffer is released (the consumer sees the gap) and a later success fills the gap late.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable, Iterable, Iterator

from binmon.binance.sequencer import StreamSequencer
from binmon.core.models import Kline

#: ``(symbol, interval, start_open_ms) -> klines since then (closed + the forming one), oldest first``.
#: It may raise anything (NetworkError, ...): the call is retried with backoff. The newest
#: row is never taken as final, whatever its ``closed`` flag says (see sequencer).
BackfillFn = Callable[[str, str, int], Awaitable[list[Kline]]]

_log = logging.getLogger(__name__)

#: Successful fetches that still leave a hole (the source lags) before giving up on it.
MAX_SHORT_FILLS = 5


class Repairer:
    """Runs and tracks the backfill tasks of one stream client.

    ``is_wanted(stream)`` says whether the stream is still subscribed and the client open;
    ``on_change()`` is called whenever a stream is held or released (status refresh).
    ``concurrency`` bounds simultaneous fetches (the REST weight budget is shared);
    ``call_timeout`` bounds one fetch so a hung request cannot stall a stream forever;
    ``gap_cooldown_s`` pauses live-gap repairs of a stream whose last one found nothing
    missing (see :meth:`start`).
    """

    def __init__(
        self,
        seq: StreamSequencer,
        backfill: BackfillFn | None,
        *,
        backoff_factory: Callable[[], Iterator[float]],
        wait_s: float,
        is_wanted: Callable[[str], bool],
        on_change: Callable[[], None],
        logger: logging.Logger | None = None,
        concurrency: int = 4,
        call_timeout: float = 30.0,
        gap_cooldown_s: float = 30.0,
    ) -> None:
        self._seq = seq
        self._backfill = backfill
        self._backoff_factory = backoff_factory
        self._wait_s = wait_s
        self._is_wanted = is_wanted
        self._on_change = on_change
        self._log = logger or _log
        self._sem = asyncio.Semaphore(concurrency)
        self._call_timeout = call_timeout
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._gap_cooldown_s = gap_cooldown_s
        self._quiet_until: dict[str, float] = {}
        self._late: set[str] = set()  # released before the backfill succeeded
        self.failures = 0
        self.last_error = ""

    def after_reconnect(self, streams: Iterable[str]) -> None:
        """Hold and backfill every kline stream that has a reference point."""
        if self._backfill is None:
            return
        for stream in sorted(streams):
            if "@kline_" in stream and self._seq.hold(stream) is not None:
                self._spawn(stream)
        self._on_change()

    def start(self, stream: str) -> bool:
        """Backfill a live gap the sequencer found; False to let the gap pass unrepaired.

        After a repair that found nothing missing (the gap was a quiet interval: an illiquid
        symbol has no candle when nothing trades), further gaps of that stream pass without
        a repair for ``gap_cooldown_s``, or every quiet interval would cost a REST call.
        """
        if self._backfill is None or stream in self._tasks:
            return False
        if asyncio.get_running_loop().time() < self._quiet_until.get(stream, -math.inf):
            return False
        self._spawn(stream, gap=True)
        self._on_change()
        return True

    def cancel(self, stream: str) -> None:
        """Stop the backfill of ``stream`` (unsubscribed)."""
        task = self._tasks.get(stream)
        if task is not None:
            task.cancel()

    async def close(self) -> None:
        """Cancel and await every backfill task."""
        tasks = list(self._tasks.values())
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def pending_reason(self) -> str:
        """A status-bar note about gaps released before their backfill succeeded ("" when none)."""
        if not self._late:
            return ""
        return f"gap not yet backfilled in {len(self._late)} stream(s): {self.last_error}"

    # ------------------------------------------------------------ internals

    def _spawn(self, stream: str, gap: bool = False) -> None:
        if stream in self._tasks:
            return
        task = asyncio.create_task(self._run(stream, gap), name=f"binmon-backfill-{stream}")
        self._tasks[stream] = task

    async def _run(self, stream: str, gap: bool) -> None:
        assert self._backfill is not None
        seq = self._seq
        si = seq.symbol_interval(stream)
        baseline = seq.backfill_start(stream)
        timer = asyncio.get_running_loop().call_later(self._wait_s, self._give_up_hold, stream)
        delays = self._backoff_factory()
        short_fills = filled = 0
        try:
            while si is not None and baseline is not None and self._is_wanted(stream):
                start = seq.backfill_start(stream)
                start = baseline if start is None else start
                try:
                    async with self._sem:
                        klines = await asyncio.wait_for(
                            self._backfill(si[0], si[1], start), self._call_timeout
                        )
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # NetworkError, 429, bugs: all retried
                    self.failures += 1
                    self.last_error = f"{type(exc).__name__}: {exc}"
                    delay = next(delays)
                    self._log.warning(
                        "backfill of %s from %d failed (%s); retry in %.2f s", stream, start, exc, delay
                    )
                    self._on_change()
                    await asyncio.sleep(delay)
                    continue
                if not self._is_wanted(stream):
                    break
                if seq.is_held(stream):
                    filled += seq.release(stream, klines)
                else:
                    filled += seq.late_fill(stream, klines)
                self._on_change()
                if not seq.is_held(stream) and not seq.holes(stream):
                    break
                # The source lags behind the live feed (or a new gap opened meanwhile).
                short_fills += 1
                if short_fills >= MAX_SHORT_FILLS:
                    seq.release(stream, None, force=True)
                    self._log.warning(
                        "%s: giving up on gaps %s (backfill lacks them)", stream, seq.forget_holes(stream)
                    )
                    break
                await asyncio.sleep(next(delays))
        finally:
            timer.cancel()
            self._late.discard(stream)
            if self._tasks.get(stream) is asyncio.current_task():
                del self._tasks[stream]
            if gap and filled == 0:
                # Nothing was missing: a quiet interval. Do not ask again for every one.
                self._quiet_until[stream] = asyncio.get_running_loop().time() + self._gap_cooldown_s
            seq.repair_done(stream, release=self._is_wanted(stream))
            self._on_change()

    def _give_up_hold(self, stream: str) -> None:
        if self._seq.is_held(stream):
            self._log.warning(
                "%s: backfill not done after %g s; releasing live data (the gap is filled later)",
                stream,
                self._wait_s,
            )
            self._late.add(stream)
            self._seq.release(stream, None, force=True)
            self._on_change()
