"""The simulator's notion of "now", injectable so tests and benchmarks control time.

:class:`SimClock` runs ``speed`` times faster than real time from ``start_ms``, reading a
monotonic clock (wall-clock jumps must not make the market jump). It can be paused, resumed
and sped up or slowed down while running (a replay's play/pause and speed controls): sim
time is continuous across every such change, it never jumps. :class:`ManualClock` only
moves when told to, for deterministic tests.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol


class Clock(Protocol):
    """What the market and the servers need of a clock."""

    start_ms: int

    @property
    def speed(self) -> float:
        """How many sim seconds pass per real second (while running)."""
        ...

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


#: What :meth:`SimClock.real_seconds_until` answers while paused for a time not reached yet:
#: sleepers wake this often to notice a resume (nothing is due while paused).
PAUSED_POLL_S = 0.05


class SimClock:
    """A clock that starts at ``start_ms`` (default: the wall clock now) and runs ``speed`` x real time.

    Pausable: :meth:`pause` freezes :meth:`now_ms`, :meth:`resume` lets it run on from the
    same value, :meth:`set_speed` changes the rate from the current value on. Thread-safe:
    the controls may be called from any thread (the GUI's) while the simulator's loop reads
    the clock; the state is one tuple, replaced whole, so a reader never sees half a change.
    """

    def __init__(
        self, start_ms: int | None = None, speed: float = 1.0, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self.start_ms: int = _wall_ms() if start_ms is None else int(start_ms)
        self._monotonic = monotonic
        self._lock = threading.Lock()  # serialises the controls (readers need no lock)
        # (sim ms at the anchor, monotonic seconds at the anchor, speed, paused)
        self._state: tuple[int, float, float, bool] = (self.start_ms, monotonic(), _check_speed(speed), False)

    @property
    def speed(self) -> float:
        """Sim seconds per real second while running (unchanged by a pause)."""
        return self._state[2]

    @property
    def paused(self) -> bool:
        """True between :meth:`pause` and :meth:`resume`."""
        return self._state[3]

    def now_ms(self) -> int:
        """Sim time in whole ms: the anchor's value plus the real time run since, times ``speed``.

        Truncating (not rounding) keeps it monotonic and never ahead of the exact value; a
        control re-anchors at the current truncated value, so no change ever moves it back or
        makes it jump.
        """
        base, t0, speed, paused = self._state
        if paused:
            return base
        return base + int((self._monotonic() - t0) * 1000.0 * speed)

    def real_seconds_until(self, sim_ms: int) -> float:
        """Real seconds until :meth:`now_ms` reaches ``sim_ms``; 0.0 when it already has.

        While paused and ``sim_ms`` is not reached: :data:`PAUSED_POLL_S`, so a sleeper wakes
        soon after a resume (or a speed change) and computes again.
        """
        base, t0, speed, paused = self._state
        if paused:
            return 0.0 if sim_ms <= base else PAUSED_POLL_S
        due = (sim_ms - base) / (1000.0 * speed)
        return max(0.0, due - (self._monotonic() - t0))

    def pause(self) -> int:
        """Freeze the clock at its current value and return it (no-op when already paused)."""
        with self._lock:
            now = self.now_ms()
            _, _, speed, _ = self._state
            self._state = (now, self._monotonic(), speed, True)
            return now

    def resume(self) -> int:
        """Run on from the frozen value and return it (no-op when running)."""
        with self._lock:
            now = self.now_ms()
            _, _, speed, _ = self._state
            self._state = (now, self._monotonic(), speed, False)
            return now

    def set_speed(self, speed: float) -> int:
        """Run at ``speed`` (> 0, ValueError otherwise) from the current value on; return it.

        Paused or not: a paused clock stays paused and runs at ``speed`` once resumed.
        """
        new = _check_speed(speed)
        with self._lock:
            now = self.now_ms()
            _, _, _, paused = self._state
            self._state = (now, self._monotonic(), new, paused)
            return now

    def state(self) -> dict[str, object]:
        """``{"now_ms", "speed", "paused"}``, read at one instant (for ``GET /_sim/clock``)."""
        base, t0, speed, paused = self._state
        now = base if paused else base + int((self._monotonic() - t0) * 1000.0 * speed)
        return {"now_ms": now, "speed": speed, "paused": paused}

    def __repr__(self) -> str:
        return f"SimClock(start_ms={self.start_ms}, speed={self.speed}, paused={self.paused})"


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
