"""Reconnect delays as a pure generator (the shape websockets uses for its own client).

Keeping the policy a plain iterator of floats lets the supervisor stay policy-free and
lets tests inject ``lambda: iter([0.01] * 100)`` or a seeded ``random.Random``.
"""

from __future__ import annotations

import random
from collections.abc import Iterator


def backoff(
    initial: float = 0.5,
    factor: float = 2.0,
    cap: float = 30.0,
    jitter: float = 0.5,
    rng: random.Random | None = None,
) -> Iterator[float]:
    """Yield an endless sequence of delays in seconds: capped exponential with jitter.

    The n-th nominal delay is ``min(cap, initial * factor**n)``; each yielded value is drawn
    uniformly from ``[nominal * (1 - jitter), nominal]``. ``jitter=1`` is AWS-style "full
    jitter", ``jitter=0`` is deterministic. Jitter spreads the reconnects of many clients
    (or many markets of one client) so they do not hit the server in lock-step after an
    outage. Every value lies in ``[0, cap]``; the nominal sequence never decreases.

    Raises ValueError for ``initial <= 0``, ``factor < 1``, ``cap < initial`` or ``jitter``
    outside ``[0, 1]``.
    """
    if initial <= 0:
        raise ValueError(f"initial must be > 0, got {initial}")
    if factor < 1:
        raise ValueError(f"factor must be >= 1, got {factor}")
    if cap < initial:
        raise ValueError(f"cap ({cap}) must be >= initial ({initial})")
    if not 0.0 <= jitter <= 1.0:
        raise ValueError(f"jitter must be in [0, 1], got {jitter}")
    rng = rng or random.Random()
    nominal = initial
    while True:
        yield nominal * (1.0 - jitter * rng.random())
        # Stop multiplying once capped: avoids float overflow after ~1000 attempts.
        nominal = min(cap, nominal * factor)
