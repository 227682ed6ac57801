"""WeightLimiter with a fake clock: windows, safety margin, pauses, cancel, threads."""

from __future__ import annotations

import random
import threading
import time
from collections import defaultdict

import pytest

from binmon.binance.limiter import Cancelled, Reservation, WeightLimiter


class FakeTime:
    """A monotonic clock and a wall clock that only move when somebody sleeps.

    Thread-safe, so several threads blocked in ``acquire`` can share it.
    """

    def __init__(self, wall: float = 1_000_000.0) -> None:
        self._lock = threading.Lock()
        self.mono = 500.0
        self.wall_now = wall
        self.naps: list[float] = []

    def clock(self) -> float:
        with self._lock:
            return self.mono

    def wall(self) -> float:
        with self._lock:
            return self.wall_now

    def sleep(self, dt: float) -> None:
        assert dt > 0, "the limiter must never nap for 0 s (it would spin)"
        with self._lock:
            self.naps.append(dt)
            self.mono += dt
            self.wall_now += dt
        time.sleep(0)  # let other threads run

    def advance(self, dt: float) -> None:
        with self._lock:
            self.mono += dt
            self.wall_now += dt


def make(ft: FakeTime, limit: int = 100, safety: float = 0.8, window_s: float = 60.0) -> WeightLimiter:
    return WeightLimiter(
        limit, safety=safety, window_s=window_s, clock=ft.clock, wall=ft.wall, sleep=ft.sleep
    )


def test_budget_is_safety_times_limit_and_acquire_within_it_does_not_wait() -> None:
    ft = FakeTime(wall=600.0)  # exactly on a window boundary
    lim = make(ft)
    assert lim.budget == 80
    for _ in range(40):
        lim.acquire(2)
    assert ft.naps == []
    assert lim.used == 80


def test_acquire_past_the_safety_margin_waits_for_the_window_boundary() -> None:
    ft = FakeTime(wall=600.0 + 15.0)  # 15 s into a 60 s window
    lim = make(ft)
    for _ in range(40):
        lim.record(None, lim.acquire(2))
    t0 = ft.wall()
    lim.acquire(2)  # the 81st and 82nd unit do not fit under 80
    assert ft.wall() >= 660.0  # the next window
    assert ft.wall() - t0 < 45.0 + 0.2  # and not much later than needed
    assert max(ft.naps) <= 0.1 + 1e-9  # waits in short naps, so cancel is noticed
    assert lim.used == 2


def test_in_flight_weight_carries_into_the_next_window_only() -> None:
    ft = FakeTime(wall=630.0)
    lim = make(ft)
    lim.acquire(50)  # never recorded: in flight (or leaked by a buggy caller)
    ft.advance(30.0)
    assert lim.used == 50  # may be counted by the server in the new window
    lim.acquire(30)
    with pytest.raises(TimeoutError):
        lim.acquire(1, timeout=59.0)
    ft.advance(1.0)  # two windows later the unrecorded reservation is forgotten
    assert lim.used == 30


def test_window_resets_at_the_boundary_once_requests_are_recorded() -> None:
    ft = FakeTime(wall=600.0)
    lim = make(ft)
    res = [lim.acquire(10) for _ in range(8)]
    for r in res:
        lim.record(None, r)
    assert lim.used == 80
    ft.advance(59.999)
    assert lim.used == 80
    ft.advance(0.002)
    assert lim.used == 0
    lim.acquire(80)
    assert ft.naps == []


def test_server_header_is_authoritative_when_higher() -> None:
    ft = FakeTime(wall=600.0)
    lim = make(ft)
    r = lim.acquire(2)
    lim.record(70, r)  # another program on the same IP used 68
    assert lim.used == 70
    lim.acquire(10)
    with pytest.raises(TimeoutError):
        lim.acquire(2, timeout=1.0)
    assert lim.used == 80  # a timed-out acquire reserves nothing


def test_lower_header_does_not_lower_the_estimate() -> None:
    # Responses of concurrent requests arrive out of order: a stale, lower count must not win.
    ft = FakeTime(wall=600.0)
    lim = make(ft)
    a, b = lim.acquire(20), lim.acquire(20)
    lim.record(40, b)
    lim.record(20, a)
    assert lim.used == 40


def test_header_of_a_request_that_straddled_the_boundary_is_ignored() -> None:
    ft = FakeTime(wall=659.0)
    lim = make(ft)
    r = lim.acquire(2)
    ft.advance(2.0)  # the response arrives in the next window...
    lim.record(78, r)  # ...carrying the old window's count
    assert lim.used == 2  # only the request itself, counted conservatively


def test_timeout_raises_and_cancel_raises() -> None:
    ft = FakeTime(wall=600.0)
    lim = make(ft)
    lim.acquire(80)
    t0 = ft.clock()
    with pytest.raises(TimeoutError):
        lim.acquire(1, timeout=2.5)
    assert 2.5 <= ft.clock() - t0 < 2.7

    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        lim.acquire(1, cancel=cancel)
    assert ft.clock() - t0 < 2.7  # an already-set cancel does not wait at all


def test_cancel_while_waiting_from_another_thread_with_real_time() -> None:
    lim = WeightLimiter(10, safety=1.0, window_s=3600.0)
    lim.acquire(10)
    cancel = threading.Event()
    outcome: list[BaseException] = []

    def worker() -> None:
        try:
            lim.acquire(1, cancel=cancel)
        except BaseException as e:
            outcome.append(e)

    th = threading.Thread(target=worker)
    th.start()
    time.sleep(0.15)
    assert th.is_alive()  # genuinely blocked
    t0 = time.monotonic()
    cancel.set()
    th.join(2.0)
    assert not th.is_alive()
    assert time.monotonic() - t0 < 0.5
    assert len(outcome) == 1 and isinstance(outcome[0], Cancelled)
    assert lim.used == 10  # the cancelled acquire reserved nothing


def test_pause_blocks_every_caller_until_it_ends() -> None:
    ft = FakeTime(wall=600.0)
    lim = make(ft)
    lim.pause(5.0)
    end = lim.paused_until
    assert end == pytest.approx(ft.clock() + 5.0)
    lim.pause(1.0)  # a shorter pause never cuts a longer one
    assert lim.paused_until == end
    returned_at: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        lim.acquire(1)
        with lock:
            returned_at.append(ft.clock())

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(5.0)
    assert len(returned_at) == 4
    assert min(returned_at) >= end
    assert lim.banned_for == 0.0


def test_ban_is_reported() -> None:
    ft = FakeTime()
    lim = make(ft)
    lim.pause(120.0, banned=True)
    assert lim.banned_for == pytest.approx(120.0)
    ft.advance(100.0)
    assert lim.banned_for == pytest.approx(20.0)
    ft.advance(30.0)
    assert lim.banned_for == 0.0


def test_set_limit_changes_the_budget_and_weight_checks() -> None:
    ft = FakeTime(wall=600.0)
    lim = make(ft, limit=100)
    lim.set_limit(1000)
    assert lim.limit == 1000 and lim.budget == 800
    lim.acquire(700)
    assert ft.naps == []
    with pytest.raises(ValueError):
        lim.acquire(0)
    with pytest.raises(ValueError):
        lim.set_limit(0)
    with pytest.raises(ValueError):
        WeightLimiter(100, safety=1.5)


def test_request_heavier_than_the_budget_goes_alone_into_an_empty_window() -> None:
    ft = FakeTime(wall=630.0)
    lim = make(ft, limit=100, safety=0.5)  # budget 50
    r = lim.acquire(10)
    lim.record(None, r)
    lim.acquire(80)  # > budget: waits for an empty window instead of for ever
    assert ft.wall() >= 660.0
    lim.acquire(120)  # > the limit itself (e.g. a limit lowered by exchangeInfo): same
    assert ft.wall() >= 780.0  # window 12 still holds the 80 in flight from window 11


def test_concurrent_acquire_never_exceeds_the_budget_per_window() -> None:
    """A fake server counts weight per window at the moment each request "arrives"."""
    ft = FakeTime(wall=1000.0)
    window_s = 1.0
    lim = make(ft, limit=100, safety=0.8, window_s=window_s)
    server: dict[int, int] = defaultdict(int)
    server_lock = threading.Lock()
    done: dict[int, int] = defaultdict(int)
    errors: list[BaseException] = []

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        try:
            for _ in range(150):
                w = rng.randint(1, 6)
                res = lim.acquire(w)
                with server_lock:
                    win = int(ft.wall() // window_s)
                    server[win] += w
                    header = server[win]
                if rng.random() < 0.3:
                    time.sleep(0)  # let others overtake: out-of-order responses
                lim.record(header, res)
                done[seed] += w
        except BaseException as e:  # surfaced by the assertion below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(30.0)
    assert errors == []
    assert len(done) == 8
    assert max(server.values()) <= 80, dict(server)
    total = sum(done.values())
    assert sum(server.values()) == total
    # The budget was actually used, not just avoided by waiting for ever.
    assert len(server) <= total / 80 * 2 + 2


def test_reservation_is_returned() -> None:
    ft = FakeTime(wall=600.0)
    lim = make(ft)
    r = lim.acquire(3)
    assert r == Reservation(3, 10)
