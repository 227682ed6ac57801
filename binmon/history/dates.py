"""Dates as users type them on the command line -> UTC milliseconds. Pure, no I/O.

Accepted forms (UTC unless a zone is written):

* ``2024-01-01`` — midnight at the start of that day;
* ``2024-01-01 13:45``, ``2024-01-01T13:45:30`` (optionally ``.123`` fractions);
* ISO 8601 with a zone: ``2024-01-01T13:45:00Z``, ``2024-01-01T13:45+02:00``, ``...+0200``;
* epoch milliseconds: ``1704067200000`` (11 to 14 digits; a 9-10 digit number is taken for
  epoch *seconds* and refused with a hint, the commonest slip).

Every error is a :class:`DateError` (a ValueError) whose text is one line a user can act on:
``bad date '2024-13-01': month must be in 1..12``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

__all__ = ["DateError", "format_ms", "parse_date", "parse_range"]

_DATE_RE = re.compile(
    r"^(?P<y>\d{4})-(?P<mo>\d{1,2})-(?P<d>\d{1,2})"
    r"(?:[T ](?P<h>\d{1,2}):(?P<mi>\d{2})(?::(?P<s>\d{2})(?:\.(?P<frac>\d{1,9}))?)?)?"
    r"\s*(?P<zone>Z|z|UTC|[+-]\d{2}(?::?\d{2})?)?$"
)
_DAY_MS = 86_400_000


class DateError(ValueError):
    """A date the user typed cannot be used; ``str()`` is the one-line reason."""


def parse_date(text: str, *, end_of_day: bool = False) -> int:
    """``text`` (one of the forms of the module docstring) -> epoch milliseconds, UTC.

    ``end_of_day``: a bare date (no time) means the *last* millisecond of that day, so that
    ``--end 2024-06-30`` includes June 30; a date with a time is that instant either way.
    Raises :class:`DateError` naming the problem (bad month, day out of range, bad zone,
    epoch seconds instead of milliseconds, unknown format).
    """
    s = text.strip()
    if not s:
        raise DateError("bad date '': empty")
    if s.isascii() and s.isdigit():
        return _epoch_ms(text, s)
    m = _DATE_RE.match(s)
    if m is None:
        raise DateError(
            f"bad date {text!r}: expected YYYY-MM-DD, 'YYYY-MM-DD HH:MM[:SS]', ISO 8601 with a zone "
            "or epoch milliseconds"
        )
    tz = _zone(text, m["zone"])
    frac = m["frac"] or ""
    micro = int((frac + "000000")[:6]) if frac else 0
    try:
        dt = datetime(
            int(m["y"]),
            int(m["mo"]),
            int(m["d"]),
            int(m["h"] or 0),
            int(m["mi"] or 0),
            int(m["s"] or 0),
            micro,
            tzinfo=tz,
        )
    except ValueError as exc:  # datetime's messages are already the words we want
        raise DateError(f"bad date {text!r}: {exc}") from None
    ms = _to_ms(dt)
    if end_of_day and m["h"] is None:
        ms += _DAY_MS - 1
    return ms


def parse_range(
    start: str | None, end: str | None, now_ms: int, *, default_start_ms: int | None = None
) -> tuple[int | None, int | None]:
    """``(start_ms, end_ms)`` from the ``--start`` / ``--end`` texts, checked against each other.

    ``end`` is inclusive; a bare end date covers its whole day (see :func:`parse_date`).
    ``start`` None gives ``default_start_ms`` (may be None); ``end`` None stays None ("up to
    now"). Raises :class:`DateError` for a bad date, an end before the start, or a start
    after ``now_ms`` (the server's clock: nothing can be stored from the future).
    """
    start_ms = parse_date(start) if start is not None else default_start_ms
    end_ms = parse_date(end, end_of_day=True) if end is not None else None
    if start_ms is not None and start_ms > now_ms:
        raise DateError(f"start {format_ms(start_ms)} is in the future (server time {format_ms(now_ms)})")
    if start_ms is not None and end_ms is not None and end_ms < start_ms:
        raise DateError(f"end {format_ms(end_ms)} is before start {format_ms(start_ms)}")
    return start_ms, end_ms


def format_ms(ms: int) -> str:
    """``ms`` as ``YYYY-MM-DD HH:MM[:SS] UTC`` (seconds only when not zero), for messages and listings."""
    dt = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)
    text = dt.strftime("%Y-%m-%d %H:%M:%S" if dt.second or dt.microsecond else "%Y-%m-%d %H:%M")
    return f"{text} UTC"


def _epoch_ms(text: str, digits: str) -> int:
    n = len(digits)
    if n in (9, 10):
        raise DateError(f"bad date {text!r}: looks like epoch seconds; give epoch milliseconds ({digits}000)")
    if not 11 <= n <= 14:
        raise DateError(f"bad date {text!r}: epoch times must be milliseconds (11 to 14 digits)")
    return int(digits)


def _zone(text: str, zone: str | None) -> timezone:
    if zone is None or zone in ("Z", "z", "UTC"):
        return UTC
    sign = -1 if zone[0] == "-" else 1
    digits = zone[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:] or 0)
    if hours > 23 or minutes > 59:
        raise DateError(f"bad date {text!r}: zone offset {zone} must be within -23:59..+23:59")
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


def _to_ms(dt: datetime) -> int:
    # timedelta arithmetic, not timestamp(): exact for any year datetime allows, no float.
    delta = dt - datetime(1970, 1, 1, tzinfo=UTC)
    return delta.days * _DAY_MS + delta.seconds * 1000 + delta.microseconds // 1000
