"""The reconnect-delay generator and the control-frame pacer: pure timing policy."""

from __future__ import annotations

import asyncio
import itertools
import random
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from binmon.binance.backoff import backoff
from binmon.binance.ratelimit import Pacer


def test_without_jitter_the_sequence_is_exponential_then_capped() -> None:
    delays = list(itertools.islice(backoff(initial=0.5, factor=2.0, cap=5.0, jitter=0.0), 8))
    assert delays == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0, 5.0, 5.0]


def test_seeded_rng_makes_the_jittered_sequence_reproducible() -> None:
    a = list(itertools.islice(backoff(rng=random.Random(7)), 20))
    b = list(itertools.islice(backoff(rng=random.Random(7)), 20))
    c = list(itertools.islice(backoff(rng=random.Random(8)), 20))
    assert a == b
    assert a != c


def test_full_jitter_spreads_delays_over_the_whole_range() -> None:
    # jitter=1: uniform in [0, nominal]; with the cap reached after 3 steps, 2000 draws
    # must cover both the low and the high end of [0, 4].
    draws = list(
        itertools.islice(backoff(initial=1, factor=2, cap=4, jitter=1.0, rng=random.Random(1)), 2000)
    )
    tail = draws[3:]
    assert min(tail) < 0.2
    assert max(tail) > 3.8


@given(
    initial=st.floats(0.01, 5),
    factor=st.floats(1, 4),
    extra_cap=st.floats(0, 100),
    jitter=st.floats(0, 1),
    seed=st.integers(0, 2**32),
)
def test_every_delay_lies_between_its_jitter_floor_and_the_cap(
    initial: float, factor: float, extra_cap: float, jitter: float, seed: int
) -> None:
    cap = initial + extra_cap
    nominal = initial
    for d in itertools.islice(backoff(initial, factor, cap, jitter, random.Random(seed)), 60):
        assert 0 <= d <= cap
        assert nominal * (1 - jitter) - 1e-9 <= d <= nominal + 1e-9
        nominal = min(cap, nominal * factor)


def test_it_never_overflows_after_very_many_attempts() -> None:
    gen = backoff(initial=1, factor=10, cap=30, jitter=0)
    for d in itertools.islice(gen, 5000):
        assert d <= 30
    assert next(gen) == 30


@pytest.mark.parametrize(
    "kwargs",
    [{"initial": 0}, {"factor": 0.5}, {"initial": 5, "cap": 1}, {"jitter": -0.1}, {"jitter": 1.5}],
)
def test_bad_parameters_are_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        next(backoff(**kwargs))


# ---------------------------------------------------------------- Pacer


class FakeTime:
    """A clock that only moves when the pacer sleeps."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


async def test_pacer_spaces_acquisitions_by_one_over_rate() -> None:
    t = FakeTime()
    pacer = Pacer(4.0, clock=t.clock, sleep=t.sleep)
    stamps = []
    for _ in range(9):
        await pacer.acquire()
        stamps.append(t.now)
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    assert gaps == pytest.approx([0.25] * 8)
    # No half-open one-second window holds more than 4 of them.
    assert max(sum(1 for s in stamps if a <= s < a + 1) for a in stamps) == 4


async def test_pacer_does_not_wait_after_a_quiet_period() -> None:
    t = FakeTime()
    pacer = Pacer(4.0, clock=t.clock, sleep=t.sleep)
    await pacer.acquire()
    t.now += 10  # quiet: no credit is accumulated (depth one), but no wait either
    await pacer.acquire()
    await pacer.acquire()
    assert t.sleeps == pytest.approx([0.25])


async def test_concurrent_callers_are_served_in_order_and_spaced() -> None:
    t = FakeTime()
    pacer = Pacer(2.0, clock=t.clock, sleep=t.sleep)
    order: list[tuple[int, float]] = []

    async def caller(i: int) -> None:
        await pacer.acquire()
        order.append((i, t.now))

    await asyncio.gather(*(caller(i) for i in range(5)))
    assert [i for i, _ in order] == [0, 1, 2, 3, 4]
    assert [s for _, s in order] == pytest.approx([100.0, 100.5, 101.0, 101.5, 102.0])


def test_pacer_rejects_a_non_positive_rate() -> None:
    with pytest.raises(ValueError):
        Pacer(0)
