"""Client-side accounting of Binance's per-IP request weight.

Binance counts the weight of every request an IP sends in fixed windows aligned to
wall-clock minutes and reports the running total in ``X-MBX-USED-WEIGHT-1M``. Going
over the limit earns a 429, ignoring 429s earns a 418 (an IP ban of minutes to days).
:class:`WeightLimiter` keeps the client under ``safety * limit`` so that, in normal
operation, the server never has to say 429 at all.

The usage estimate for the current window is::

    used = max(weight we saw complete, last server header) + weight still in flight

Requests are reserved when they are acquired (so concurrent threads cannot all see
the same free budget) and reconciled when their response is recorded. Requests that
are in flight when a window rolls over are carried into the new window, because the
server may count them there.

Time is injected: ``wall`` places the window boundaries, ``clock`` (monotonic) times
pauses, ``sleep`` is how waiting happens. Tests pass fakes and run in milliseconds.
"""

from __future__ import annotations

import concurrent.futures
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

#: Longest single nap while waiting, so cancellation and limit changes are noticed promptly.
_MAX_NAP_S = 0.1


class Cancelled(concurrent.futures.CancelledError):
    """``acquire`` gave up because its ``cancel`` event was set."""


@dataclass(frozen=True, slots=True)
class Reservation:
    """Weight reserved by :meth:`WeightLimiter.acquire`; hand it back to :meth:`WeightLimiter.record`.

    ``window`` is the index of the window the reservation was taken in: a server
    header for a request that straddled a window boundary cannot be attributed to
    either window reliably, so it is not trusted.
    """

    weight: int
    window: int


class WeightLimiter:
    """Thread-safe weight budget for one Binance base URL / IP.

    One instance must be shared by every client that talks to the same IP; REST calls
    run in worker threads, so every method takes the internal lock.
    """

    def __init__(
        self,
        limit_per_minute: int = 6000,
        *,
        safety: float = 0.8,
        window_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """Create a limiter allowing ``safety * limit_per_minute`` weight per ``window_s`` window.

        ``limit_per_minute`` is the server's limit for one window (the name follows
        Binance's ``REQUEST_WEIGHT`` / ``MINUTE`` limit; tests and the simulator may use
        shorter windows). Raises ValueError for a non-positive limit or window, or a
        safety factor outside (0, 1].
        """
        if limit_per_minute <= 0:
            raise ValueError(f"limit must be positive, got {limit_per_minute}")
        if not 0.0 < safety <= 1.0:
            raise ValueError(f"safety must be in (0, 1], got {safety}")
        if window_s <= 0:
            raise ValueError(f"window_s must be positive, got {window_s}")
        self._limit = limit_per_minute
        self._safety = safety
        self._window_s = window_s
        self._clock = clock
        self._wall = wall
        self._sleep = sleep
        self._lock = threading.Lock()
        self._window = self._window_index()
        self._completed = 0  # weight of requests recorded in this window (our own count)
        self._server = 0  # highest X-MBX-USED-WEIGHT-1M seen for this window
        # Weight acquired but not yet recorded, by the window it was acquired in. Only
        # this window's and the previous one's count: a reservation older than that was
        # leaked by a caller that never recorded it, and must not block the limiter forever.
        self._inflight: dict[int, int] = {}
        self._paused_until = -math.inf  # in clock() time
        self._banned_until = -math.inf  # in clock() time

    # ------------------------------------------------------------------ properties

    @property
    def limit(self) -> int:
        """The server's weight limit per window."""
        return self._limit

    @property
    def budget(self) -> int:
        """The weight this limiter lets through per window: ``floor(safety * limit)``, at least 1."""
        return max(1, int(self._safety * self._limit))

    @property
    def window_s(self) -> float:
        """Length of one accounting window in seconds."""
        return self._window_s

    @property
    def used(self) -> int:
        """Estimated weight used in the current window, including requests in flight."""
        with self._lock:
            self._roll()
            return self._used()

    @property
    def paused_until(self) -> float:
        """``clock()`` time until which every caller waits (``-inf`` when never paused)."""
        with self._lock:
            return self._paused_until

    @property
    def banned_for(self) -> float:
        """Seconds left of a ban reported by a 418 (0.0 when not banned)."""
        with self._lock:
            return max(0.0, self._banned_until - self._clock())

    # ------------------------------------------------------------------ operations

    def acquire(
        self,
        weight: int,
        *,
        cancel: threading.Event | None = None,
        timeout: float | None = None,
    ) -> Reservation:
        """Block until ``weight`` fits in the current window's budget and no pause is active.

        Reserves the weight and returns the reservation; pass it to :meth:`record` once
        the response (or the failure) is in. A request heavier than the budget (even
        than the limit) is let through alone into an otherwise empty window, so it
        cannot wait forever; the server's header then holds the others back.
        Raises :class:`Cancelled` when ``cancel`` is set (checked before and while
        waiting), TimeoutError when it would have to wait longer than ``timeout``
        seconds, ValueError when ``weight`` is not positive.
        """
        if weight <= 0:
            raise ValueError(f"weight must be positive, got {weight}")
        deadline = None if timeout is None else self._clock() + timeout
        while True:
            if cancel is not None and cancel.is_set():
                raise Cancelled("weight acquisition cancelled")
            with self._lock:
                self._roll()
                now = self._clock()
                if now < self._paused_until:
                    wait = self._paused_until - now
                else:
                    used = self._used()
                    if used + weight <= self.budget or used == 0:
                        self._inflight[self._window] = self._inflight.get(self._window, 0) + weight
                        return Reservation(weight, self._window)
                    wait = self._seconds_to_next_window()
            if deadline is not None:
                left = deadline - self._clock()
                if left <= 0:
                    raise TimeoutError(f"no room for weight {weight} within {timeout:g} s")
                wait = min(wait, left)
            # Never nap 0 s: a wall clock sitting exactly on a boundary would spin.
            self._sleep(min(max(wait, 1e-3), _MAX_NAP_S))

    def record(self, used_weight_header: int | None, reservation: Reservation | None = None) -> None:
        """Take in a response: release ``reservation`` and learn the server's count.

        ``used_weight_header`` is ``X-MBX-USED-WEIGHT-1M`` (None when absent or the
        request failed without a response). The server is authoritative: its count
        raises the estimate when other programs share the IP. It never lowers it,
        because headers of concurrent requests arrive out of order.
        """
        with self._lock:
            self._roll()
            if reservation is not None:
                left = self._inflight.get(reservation.window, 0) - reservation.weight
                if left > 0:
                    self._inflight[reservation.window] = left
                else:
                    self._inflight.pop(reservation.window, None)
                # Counted in the current window even if it was reserved in the previous
                # one: the server may have counted it in either, so assume the worse.
                self._completed += reservation.weight
            trusted = reservation is None or reservation.window == self._window
            if used_weight_header is not None and trusted:
                self._server = max(self._server, used_weight_header)

    def pause(self, seconds: float, *, banned: bool = False) -> None:
        """Make every caller of :meth:`acquire` wait ``seconds`` from now (after a 429 / 418).

        Pauses only ever extend: a shorter pause never cuts a longer one. ``banned``
        marks the pause as an IP ban (418), which :attr:`banned_for` reports so that
        clients can fail fast instead of queueing behind a ban of hours.
        """
        with self._lock:
            until = self._clock() + max(0.0, seconds)
            self._paused_until = max(self._paused_until, until)
            if banned:
                self._banned_until = max(self._banned_until, until)

    def set_limit(self, limit_per_minute: int) -> None:
        """Adopt the server's limit per window (from ``exchangeInfo.rateLimits``)."""
        if limit_per_minute <= 0:
            raise ValueError(f"limit must be positive, got {limit_per_minute}")
        with self._lock:
            self._limit = limit_per_minute

    # ------------------------------------------------------------------ internals (lock held)

    def _window_index(self) -> int:
        return math.floor(self._wall() / self._window_s)

    def _roll(self) -> None:
        index = self._window_index()
        # `!=` rather than `>`: a wall clock stepped backwards must not freeze the window.
        if index != self._window:
            self._window = index
            self._completed = 0
            self._server = 0
            # Requests in flight across the boundary may be counted by the server in
            # this window: keep the previous window's reservations, drop older ones.
            self._inflight = {w: n for w, n in self._inflight.items() if w in (index - 1, index)}

    def _used(self) -> int:
        return max(self._completed, self._server) + sum(self._inflight.values())

    def _seconds_to_next_window(self) -> float:
        return (self._window + 1) * self._window_s - self._wall()
