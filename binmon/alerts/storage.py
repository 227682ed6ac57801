"""Alert persistence: the rules file (JSON, atomic) and the alert log + ledger (SQLite). No Qt.

* :class:`RulesFile` - ``alerts.json``: ``{"format": "binmon.alert-rules", "v": 1, "rules": [...]}``.
  Saved atomically (temp file in the same directory, fsync, ``os.replace``, fsync of the
  directory). A file that is not valid JSON, not a rules file, or from a newer binmon is
  reported in one line and renamed ``<name>.corrupt-<timestamp>`` - never overwritten. A file
  with some bad rules loads the good ones, reports the bad, and a copy of the original is
  kept aside the same way (the next save would otherwise drop the bad entries' text).
* :class:`AlertLog` - ``alerts.sqlite`` (WAL): the fires (time, symbol, interval, rule, message,
  price, value), bounded to the newest ``keep`` rows, and the fired ledger, written in the same
  transaction as the fire, so a restart never re-fires a fired bar and a kill -9 loses at most
  the fire being written. A database SQLite cannot read is kept aside and a new one started.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from binmon.alerts.ledger import Fire, Ledger, LedgerEntry
from binmon.alerts.rules import AlertRule, rule_from_dict, rule_to_dict
from binmon.fileio import atomic_write, keep_aside

__all__ = ["RULES_FORMAT", "RULES_VERSION", "AlertLog", "RulesFile", "atomic_write", "keep_aside"]

log = logging.getLogger(__name__)

RULES_FORMAT = "binmon.alert-rules"
RULES_VERSION = 1
#: Fires kept in the log (older ones are deleted as new ones come).
LOG_KEEP = 10_000


class RulesFile:
    """The alert rules on disk. See the module docstring."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    def load(self) -> tuple[list[AlertRule], list[str]]:
        """``(rules, problems)``: every readable rule, and one line per problem. A missing file
        is no rules and no problem. Never raises for bad content; never leaves a bad file
        where :meth:`save` would overwrite it without a copy."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return [], []
        except OSError as exc:
            return [], [f"Could not read alert rules {self.path}: {exc.strerror or exc}"]
        try:
            doc = json.loads(raw)
            entries = _entries(doc)
        except ValueError as exc:
            aside = keep_aside(self.path)
            log.error("alert rules file %s unreadable (%s); kept aside as %s", self.path, exc, aside)
            return [], [f"Alert rules file is corrupt ({_short(exc)}); kept aside as {aside.name}"]
        rules: list[AlertRule] = []
        problems: list[str] = []
        seen: set[str] = set()
        for i, entry in enumerate(entries, start=1):
            try:
                rule = rule_from_dict(entry)
                if rule.id in seen:
                    raise ValueError(f"duplicate id {rule.id!r}")
            except ValueError as exc:
                problems.append(f"alert rule {i}: {_short(exc)}")
                continue
            seen.add(rule.id)
            rules.append(rule)
        if problems:
            aside = keep_aside(self.path, copy=True)
            log.warning("alert rules %s: %s (original kept as %s)", self.path, "; ".join(problems), aside)
            problems.append(
                f"{len(problems)} alert rule(s) could not be read; the original file is kept as {aside.name}"
            )
        return rules, problems

    def save(self, rules: Iterable[AlertRule]) -> None:
        """Write ``rules`` atomically (OSError on failure; the previous file is then intact)."""
        doc = {"format": RULES_FORMAT, "v": RULES_VERSION, "rules": [rule_to_dict(r) for r in rules]}
        atomic_write(self.path, (json.dumps(doc, indent=1, ensure_ascii=False) + "\n").encode())


def _entries(doc: Any) -> list[Any]:
    if not isinstance(doc, dict) or doc.get("format") != RULES_FORMAT:
        raise ValueError("not a binmon alert rules file")
    version = doc.get("v")
    if not isinstance(version, int) or version < 1:
        raise ValueError(f"bad format version {version!r}")
    if version > RULES_VERSION:
        raise ValueError(f"saved by a newer binmon (format {version})")
    entries = doc.get("rules")
    if not isinstance(entries, list):
        raise ValueError("'rules' is not a list")
    return entries


def _short(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200]


# ---------------------------------------------------------------- the log


_SCHEMA = """
CREATE TABLE IF NOT EXISTS fires (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time_ms INTEGER NOT NULL,
    symbol TEXT NOT NULL,
    interval TEXT NOT NULL,
    rule_id TEXT NOT NULL,
    rule_name TEXT NOT NULL,
    message TEXT NOT NULL,
    price REAL,
    value REAL,
    bar_open_ms INTEGER NOT NULL,
    bar_closed INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS ledger (
    rule_id TEXT PRIMARY KEY,
    bar_open_ms INTEGER NOT NULL,
    volume REAL NOT NULL,
    closed INTEGER NOT NULL,
    time_ms INTEGER NOT NULL,
    triggered INTEGER NOT NULL
);
"""


class AlertLog:
    """The fires and the ledger in one SQLite file (WAL). One thread at a time; cheap calls
    (a fire is one small transaction). ``problems`` lists what went wrong on open (one line each)."""

    def __init__(self, path: Path | str, *, keep: int = LOG_KEEP) -> None:
        self.path = Path(path)
        self.keep = keep
        self.problems: list[str] = []
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = self._open()
        except sqlite3.DatabaseError as exc:
            asides = [keep_aside(p) for p in self._files() if p.exists()]
            log.error("alert log %s unreadable (%s); kept aside as %s", self.path, exc, asides)
            self.problems.append(
                f"Alert log is corrupt ({_short(exc)}); kept aside as {asides[0].name if asides else '?'}"
            )
            self._db = self._open()

    def _files(self) -> list[Path]:
        return [self.path, Path(f"{self.path}-wal"), Path(f"{self.path}-shm")]

    def _open(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable across app crashes
            db.executescript(_SCHEMA)
            db.execute("SELECT count(*) FROM fires").fetchone()
        except sqlite3.DatabaseError:
            db.close()
            raise
        return db

    def close(self) -> None:
        """Close the database (idempotent)."""
        self._db.close()

    def append(self, fires: Sequence[Fire], ledger: Ledger | None = None) -> None:
        """Add ``fires`` and, in the same transaction, their rules' ledger entries; trim to ``keep``."""
        if not fires:
            return
        db = self._db
        db.execute("BEGIN")
        try:
            db.executemany(
                "INSERT INTO fires (time_ms, symbol, interval, rule_id, rule_name, message, price, value,"
                " bar_open_ms, bar_closed) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        f.time_ms,
                        f.symbol,
                        f.interval,
                        f.rule_id,
                        f.rule_name,
                        f.message,
                        _real(f.price),
                        _real(f.value),
                        f.bar_open_ms,
                        int(f.bar_closed),
                    )
                    for f in fires
                ],
            )
            if ledger is not None:
                for rid in {f.rule_id for f in fires}:
                    entry = ledger.get(rid)
                    if entry is not None:
                        self._put_entry(rid, entry)
            db.execute(
                "DELETE FROM fires WHERE id <= (SELECT max(id) FROM fires) - ?",
                (self.keep,),
            )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def recent(self, n: int = 100) -> list[Fire]:
        """The newest ``n`` fires, newest first."""
        rows = self._db.execute(
            "SELECT rule_id, symbol, interval, bar_open_ms, time_ms, price, value, message, rule_name,"
            " bar_closed FROM fires ORDER BY id DESC LIMIT ?",
            (max(0, n),),
        ).fetchall()
        return [
            Fire(
                r[0],
                r[1],
                r[2],
                r[3],
                r[4],
                float("nan") if r[5] is None else r[5],
                float("nan") if r[6] is None else r[6],
                r[7],
                r[8],
                bool(r[9]),
            )
            for r in rows
        ]

    def count(self) -> int:
        """How many fires are stored."""
        return int(self._db.execute("SELECT count(*) FROM fires").fetchone()[0])

    def load_ledger(self) -> Ledger:
        """The stored ledger."""
        rows = self._db.execute(
            "SELECT rule_id, bar_open_ms, volume, closed, time_ms, triggered FROM ledger"
        ).fetchall()
        return Ledger({r[0]: LedgerEntry(r[1], r[2], bool(r[3]), r[4], bool(r[5])) for r in rows})

    def save_ledger(self, ledger: Ledger) -> None:
        """Replace the stored ledger with ``ledger`` (after a reset or a removed rule)."""
        db = self._db
        db.execute("BEGIN")
        try:
            db.execute("DELETE FROM ledger")
            for rid in ledger:
                entry = ledger.get(rid)
                if entry is not None:
                    self._put_entry(rid, entry)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def _put_entry(self, rule_id: str, e: LedgerEntry) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO ledger (rule_id, bar_open_ms, volume, closed, time_ms, triggered)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (rule_id, e.bar_open_ms, e.volume, int(e.closed), e.time_ms, int(e.triggered)),
        )


def _real(x: float) -> float | None:
    return None if x != x else x
