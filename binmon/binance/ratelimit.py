"""Pacing of the frames a client sends on one websocket connection.

Binance counts every incoming message on a connection (control frames, pings *and*
pongs) against 5 per second and disconnects, then bans, offenders. The pongs are sent by
websockets on its own, so the client paces its own frames below the limit (4/s by
default) and leaves the rest for them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable


class Pacer:
    """Spaces calls to :meth:`acquire` at least ``1 / rate`` seconds apart.

    A minimum spacing (a token bucket of depth one) rather than a "N per window" budget:
    with a spacing of ``1/rate`` no half-open one-second window, however aligned, holds more than
    ``ceil(rate)`` frames, so the server's own window alignment does not matter.
    """

    def __init__(
        self,
        rate: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        """``rate`` is frames per second (> 0); ``clock``/``sleep`` are injectable for tests."""
        if rate <= 0:
            raise ValueError(f"rate must be > 0, got {rate}")
        self.interval = 1.0 / rate
        self._clock = clock
        self._sleep = sleep
        self._next = float("-inf")
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        """Wait until the next frame may be sent, and reserve that slot.

        Callers are served in FIFO order (the lock is fair), so a keepalive ping cannot be
        starved by a long run of control frames.
        """
        async with self._lock:
            now = self._clock()
            if now < self._next:
                await self._sleep(self._next - now)
                now = self._clock()
            self._next = max(now, self._next) + self.interval
