"""The "fired" ledger and the :class:`Fire` record: small serialisable values. No Qt.

The ledger remembers, per rule, the last kline event it fired on - ``(bar open time, volume,
closed)`` - the time of that fire and whether a "once" rule is used up. That is all the
engine needs to stay idempotent across reconnects, backfills, replays and restarts: an event
fires only when it is newer than the one recorded (see :mod:`binmon.alerts.engine`).
Within one bar the volume only grows, so ``(open time, volume, closed)`` orders the events
of a bar without storing them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["Fire", "Ledger", "LedgerEntry", "fire_from_dict", "fire_to_dict"]

LEDGER_VERSION = 1


@dataclass(frozen=True, slots=True)
class Fire:
    """One alert that fired: on which bar (``bar_open_ms``), when (``time_ms``, the wall clock),
    the price (the kline's close) and the subject's ``value`` at that moment, the formatted
    ``message``, the rule's name (its condition text when unnamed). ``bar_closed``: fired on a
    closed bar (False: intrabar, on the forming bar)."""

    rule_id: str
    symbol: str
    interval: str
    bar_open_ms: int
    time_ms: int
    price: float
    value: float
    message: str
    rule_name: str
    bar_closed: bool = True


def fire_to_dict(fire: Fire) -> dict[str, Any]:
    """JSON-safe form of a fire (NaN values become None)."""
    d = asdict(fire)
    for key in ("price", "value"):
        if d[key] != d[key]:
            d[key] = None
    return d


def fire_from_dict(obj: object) -> Fire:
    """A fire from :func:`fire_to_dict`'s form; ValueError (one line) when malformed."""
    if not isinstance(obj, Mapping):
        raise ValueError(f"a fire must be a JSON object (got {type(obj).__name__})")
    try:
        return Fire(
            rule_id=str(obj["rule_id"]),
            symbol=str(obj["symbol"]),
            interval=str(obj["interval"]),
            bar_open_ms=int(obj["bar_open_ms"]),
            time_ms=int(obj["time_ms"]),
            price=float("nan") if obj["price"] is None else float(obj["price"]),
            value=float("nan") if obj["value"] is None else float(obj["value"]),
            message=str(obj["message"]),
            rule_name=str(obj.get("rule_name", "")),
            bar_closed=bool(obj.get("bar_closed", True)),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"malformed fire record: {exc}") from None


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """The last event a rule fired on, when, and whether a "once" rule is used up."""

    bar_open_ms: int
    volume: float
    closed: bool
    time_ms: int
    triggered: bool = False

    @property
    def mark(self) -> tuple[int, float, bool]:
        """The event's place in time: bars by open time, events within a bar by volume, close last."""
        return (self.bar_open_ms, self.volume, self.closed)


class Ledger:
    """Rule id -> :class:`LedgerEntry`. Mutable, owned by one engine; JSON via :meth:`to_dict`."""

    def __init__(self, entries: Mapping[str, LedgerEntry] | None = None) -> None:
        self._entries: dict[str, LedgerEntry] = dict(entries or {})

    def get(self, rule_id: str) -> LedgerEntry | None:
        """The rule's entry, None when it never fired (or was reset)."""
        return self._entries.get(rule_id)

    def record(self, rule_id: str, entry: LedgerEntry) -> None:
        """Remember a fire."""
        self._entries[rule_id] = entry

    def reset(self, rule_id: str) -> None:
        """Forget a rule's fires (re-arms a triggered "once" rule)."""
        self._entries.pop(rule_id, None)

    def keep_only(self, rule_ids: set[str]) -> None:
        """Drop the entries of rules that no longer exist."""
        for rid in set(self._entries) - rule_ids:
            del self._entries[rid]

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Ledger) and self._entries == other._entries

    __hash__ = None  # type: ignore[assignment]  # mutable

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form: ``{"v": 1, "rules": {id: {bar_open_ms, volume, closed, time_ms, triggered}}}``."""
        return {"v": LEDGER_VERSION, "rules": {rid: asdict(e) for rid, e in self._entries.items()}}

    @classmethod
    def from_dict(cls, obj: object) -> Ledger:
        """A ledger from :meth:`to_dict`'s form; ValueError (one line) when malformed."""
        if not isinstance(obj, Mapping) or not isinstance(obj.get("rules"), Mapping):
            raise ValueError("the alert ledger must be an object with a 'rules' object")
        if not isinstance(obj.get("v", 1), int) or obj.get("v", 1) > LEDGER_VERSION:
            raise ValueError(f"alert ledger of format {obj.get('v')!r}; this binmon reads {LEDGER_VERSION}")
        entries: dict[str, LedgerEntry] = {}
        for rid, e in obj["rules"].items():
            try:
                entries[str(rid)] = LedgerEntry(
                    bar_open_ms=int(e["bar_open_ms"]),
                    volume=float(e["volume"]),
                    closed=bool(e["closed"]),
                    time_ms=int(e["time_ms"]),
                    triggered=bool(e.get("triggered", False)),
                )
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                raise ValueError(f"alert ledger: malformed entry for {rid!r}: {exc}") from None
        return cls(entries)
