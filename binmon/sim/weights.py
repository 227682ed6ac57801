"""Binance's per-IP request-weight accounting, as the simulator's REST API applies it.

* request weight per IP in fixed windows aligned to the wall clock (real time, not the sim
  clock: a client's rate limiter runs on real time whatever the sim's speed), reported in
  ``X-MBX-USED-WEIGHT-1M`` on every answer;
* over the limit a 429 with ``Retry-After`` (seconds to the window end);
* ``ban_after`` 429s in one window, then a 418 IP ban of ``ban_seconds``.

:class:`WeightLimiter` is the counter; :class:`WeightAccounting` adds what the HTTP layer needs
(each endpoint's weight, the headers, the refusal body).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


def window_label(window_s: float) -> tuple[str, int]:
    """``(interval, intervalNum)`` of a rate-limit window as exchangeInfo names it (60 -> MINUTE, 1)."""
    w = int(window_s)
    for name, unit in (("DAY", 86400), ("HOUR", 3600), ("MINUTE", 60)):
        if w % unit == 0:
            return name, w // unit
    return "SECOND", w


@dataclass(frozen=True)
class Admission:
    """The limiter's verdict: ``status`` 200 (go on), 429 or 418, with the header values."""

    status: int
    used: int
    retry_after: int = 0
    banned_until_ms: int = 0


class WeightLimiter:
    """Binance's per-IP request-weight accounting in fixed, wall-clock-aligned windows.

    Refused requests add no weight. Within one window the first ``ban_after`` refusals are
    429s; the next request made while still over the limit earns a ban (418) that outlives
    the window.
    """

    def __init__(
        self,
        limit: int,
        window_s: float,
        ban_after: int,
        ban_seconds: float,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.limit, self.window_s, self.ban_after, self.ban_seconds = limit, window_s, ban_after, ban_seconds
        self._now = now
        self._lock = threading.Lock()
        self._ips: dict[str, list[float]] = {}  # ip -> [window start, used, 429s, banned until]

    def admit(self, ip: str, weight: int) -> Admission:
        """Charge ``weight`` to ``ip`` now, or refuse the request."""
        with self._lock:
            now = self._now()
            win = math.floor(now / self.window_s) * self.window_s
            st = self._ips.setdefault(ip, [win, 0, 0, 0.0])
            if st[0] != win:
                st[0], st[1], st[2] = win, 0, 0
            if now < st[3]:
                return Admission(418, int(st[1]), math.ceil(st[3] - now), int(st[3] * 1000))
            if st[1] + weight > self.limit:
                if st[2] >= self.ban_after:
                    st[2], st[3] = 0, now + self.ban_seconds  # after the ban: ban_after more 429s
                    return Admission(418, int(st[1]), math.ceil(self.ban_seconds), int(st[3] * 1000))
                st[2] += 1
                return Admission(429, int(st[1]), max(1, math.ceil(win + self.window_s - now)))
            st[1] += weight
            return Admission(200, int(st[1]))

    def used(self, ip: str) -> int:
        """Weight ``ip`` has used in the current window."""
        with self._lock:
            st = self._ips.get(ip)
            win = math.floor(self._now() / self.window_s) * self.window_s
            return int(st[1]) if st and st[0] == win else 0


def request_weight(path: str, params: dict[str, str]) -> int:
    """Binance's weight of ``GET path?params`` (spot docs, 2026); unknown paths weigh 1."""
    if path == "/api/v3/exchangeInfo":
        return 20
    if path == "/api/v3/klines":
        return 2
    if path == "/api/v3/ticker/24hr":
        if "symbol" in params:
            return 2
        if "symbols" in params:
            n = params["symbols"].count(",") + 1
            return 2 if n <= 20 else 40 if n <= 100 else 80
        return 80
    return 1


class WeightAccounting:
    """A :class:`WeightLimiter` plus the answers built from its verdicts."""

    def __init__(
        self,
        limit: int,
        window_s: float,
        ban_after: int,
        ban_seconds: float,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.limiter = WeightLimiter(limit, window_s, ban_after, ban_seconds, now)
        #: ``(interval, intervalNum)`` of the window, as exchangeInfo's rateLimits name it.
        self.label = window_label(window_s)

    def admit(self, ip: str, path: str, params: dict[str, str]) -> Admission:
        """Charge the request's weight to ``ip``, or refuse it (the Admission says which)."""
        return self.limiter.admit(ip, request_weight(path, params))

    def headers(self, used: int) -> list[tuple[str, str]]:
        """The used-weight headers of an answer, given the weight used in the current window."""
        # Clients read X-MBX-USED-WEIGHT-1M; a test window that is not one minute still fills
        # that header (with the current window's weight) and also the exact-interval one.
        out = [("X-MBX-USED-WEIGHT", str(used)), ("X-MBX-USED-WEIGHT-1M", str(used))]
        name, num = self.label
        if (name, num) != ("MINUTE", 1):
            out.append((f"X-MBX-USED-WEIGHT-{num}{name[0]}", str(used)))
        return out

    def refusal(self, adm: Admission, ip: str) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        """Body and headers of a 429 or 418 answer, worded like Binance's."""
        headers = [*self.headers(adm.used), ("Retry-After", str(adm.retry_after))]
        if adm.status == 418:
            msg = (
                f"Way too much request weight used; IP banned until {adm.banned_until_ms}. "
                "Please use WebSocket Streams for live updates to avoid bans."
            )
        else:
            name, num = self.label
            msg = (
                f"Too many requests; current limit of IP({ip}) request weight is "
                f"{self.limiter.limit} request weight per {num} {name}. "
                "Please use WebSocket Streams for live updates to avoid polling the API."
            )
        return {"code": -1003, "msg": msg}, headers
