"""The simulator's notion of "now", injectable so tests and benchmarks control time.

:class:`SimClock` runs ``speed`` times faster than real time from ``start_ms``, reading a
monotonic clock (wall-clock jumps must not make the market jump). :class:`ManualClock` only
moves when told to, for deterministic tests.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol


class Clock(Protocol):
    """What the market and the servers need of a clock."""

    start_ms: int
    speed: float

    def now_ms(self) -> int:
        """Simulated time, integer ms since the epoch (never decreases on its own)."""
        ...

    def real_seconds_until(self, sim_ms: int) -> float:
        """Real seconds to sleep until the clock reaches ``sim_ms`` (0 if already there)."""
        ...


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


def _check_speed(speed: float) -> float:
    if not speed > 0:
        raise ValueError(f"clock speed must be > 0, got {speed}")
    return float(speed)


class SimClock:
    """A clock that starts at ``start_ms`` (default: the wall clock now) and runs ``speed`` x real time."""

    def __init__(
        self, start_ms: int | None = None, speed: float = 1.0, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self.start_ms: int = _wall_ms() if start_ms is None else int(start_ms)
        self.speed: float = _check_speed(speed)
        self._monotonic = monotonic
        self._t0 = monotonic()

    def now_ms(self) -> int:
        """``start_ms`` plus the real time elapsed since construction, times ``speed``, in whole ms.

        Truncating (not rounding) keeps it monotonic and never ahead of the exact value.
        """
        return self.start_ms + int((self._monotonic() - self._t0) * 1000.0 * self.speed)

    def real_seconds_until(self, sim_ms: int) -> float:
        """Real seconds until :meth:`now_ms` reaches ``sim_ms``; 0.0 when it already has."""
        due = (sim_ms - self.start_ms) / (1000.0 * self.speed)
        return max(0.0, due - (self._monotonic() - self._t0))

    def __repr__(self) -> str:
        return f"SimClock(start_ms={self.start_ms}, speed={self.speed})"


class ManualClock:
    """A clock that moves only through :meth:`advance` and :meth:`set` (tests).

    ``speed`` only scales :meth:`real_seconds_until`, so code that sleeps on the clock can
    be tested with the same arithmetic it uses against a :class:`SimClock`.
    """

    def __init__(self, start_ms: int | None = None, speed: float = 1.0) -> None:
        self.start_ms: int = _wall_ms() if start_ms is None else int(start_ms)
        self.speed: float = _check_speed(speed)
        self._now = self.start_ms

    def now_ms(self) -> int:
        """The time last set (initially ``start_ms``)."""
        return self._now

    def advance(self, ms: int) -> int:
        """Move forward by ``ms`` >= 0 and return the new time. Raise ValueError for a negative step."""
        if ms < 0:
            raise ValueError("a clock does not run backwards; use set() to rewind a test")
        self._now += int(ms)
        return self._now

    def set(self, ms: int) -> None:
        """Jump to ``ms`` (either direction: tests may rewind; the market is a pure function of time)."""
        self._now = int(ms)

    def real_seconds_until(self, sim_ms: int) -> float:
        """Real seconds a :class:`SimClock` of the same speed would take to reach ``sim_ms`` (>= 0)."""
        return max(0.0, (sim_ms - self._now) / (1000.0 * self.speed))

    def __repr__(self) -> str:
        return f"ManualClock(now_ms={self._now}, speed={self.speed})"
