"""SimClock: pause / resume / set_speed keep sim time continuous (no jump, never backwards)."""

from __future__ import annotations

import pytest

from binmon.sim.clock import PAUSED_POLL_S, SimClock


class FakeMonotonic:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def make(speed: float = 1.0) -> tuple[SimClock, FakeMonotonic]:
    mono = FakeMonotonic()
    return SimClock(start_ms=1_000_000, speed=speed, monotonic=mono), mono


def test_runs_at_speed() -> None:
    clock, mono = make(10.0)
    mono.t += 1.5
    assert clock.now_ms() == 1_015_000
    assert clock.real_seconds_until(1_025_000) == pytest.approx(1.0)
    assert clock.real_seconds_until(1_000_000) == 0.0


def test_pause_freezes_and_resume_continues_from_the_same_time() -> None:
    clock, mono = make(2.0)
    mono.t += 1.0
    assert clock.pause() == 1_002_000 and clock.paused
    mono.t += 50.0
    assert clock.now_ms() == 1_002_000
    # Sleepers re-check soon; a time already reached is due at once.
    assert clock.real_seconds_until(1_002_001) == PAUSED_POLL_S
    assert clock.real_seconds_until(1_002_000) == 0.0
    assert clock.pause() == 1_002_000  # idempotent
    assert clock.resume() == 1_002_000 and not clock.paused
    assert clock.now_ms() == 1_002_000
    mono.t += 0.5
    assert clock.now_ms() == 1_003_000
    assert clock.real_seconds_until(1_005_000) == pytest.approx(1.0)


def test_set_speed_continues_from_now_running_or_paused() -> None:
    clock, mono = make(1.0)
    mono.t += 2.0
    assert clock.set_speed(100) == 1_002_000 and clock.speed == 100.0
    assert clock.now_ms() == 1_002_000
    mono.t += 1.0
    assert clock.now_ms() == 1_102_000
    clock.pause()
    clock.set_speed(5)
    mono.t += 10
    assert clock.paused and clock.now_ms() == 1_102_000 and clock.speed == 5.0
    clock.resume()
    mono.t += 1
    assert clock.now_ms() == 1_107_000
    assert clock.state() == {"now_ms": 1_107_000, "speed": 5.0, "paused": False}
    with pytest.raises(ValueError):
        clock.set_speed(0)
    assert clock.speed == 5.0


def test_never_goes_back_over_many_changes() -> None:
    clock, mono = make(3.0)
    last = clock.now_ms()
    for i in range(1000):
        mono.t += 0.0007 * (i % 7)
        if i % 3 == 0:
            clock.pause()
        elif i % 3 == 1:
            clock.resume()
        else:
            clock.set_speed(1 + i % 13)
        now = clock.now_ms()
        assert now >= last
        last = now
