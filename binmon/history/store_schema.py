"""The candle store's file format: SQLite schema, identity, version checks. No I/O beyond ``conn``.

A binmon store is an SQLite file with ``PRAGMA application_id`` = :data:`APPLICATION_ID` and
``PRAGMA user_version`` = :data:`SCHEMA_VERSION`. :func:`prepare` only ever *writes* to a file that
has no schema at all (new, or zero bytes); anything else is checked read-only and refused with
:class:`StoreError`, so a foreign or damaged file is never touched.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

#: ``PRAGMA application_id`` of a binmon candle store ("bmcs"): tells our files from other SQLite files.
APPLICATION_ID = 0x626D6373
#: ``PRAGMA user_version``: the schema version this code reads and writes.
SCHEMA_VERSION = 1
#: Page size for new files: blocks are ~360 KB BLOBs, and bigger pages mean shorter overflow chains.
PAGE_SIZE = 16384
STORE_FILENAME = "candles.sqlite"
WAL_SIZE_LIMIT = 64 * 2**20

_SCHEMA = """
CREATE TABLE series (
    id INTEGER PRIMARY KEY,
    market TEXT NOT NULL,
    symbol TEXT NOT NULL,
    interval TEXT NOT NULL,
    block_ms INTEGER NOT NULL,
    UNIQUE (market, symbol, interval)
);
CREATE TABLE blocks (
    series_id INTEGER NOT NULL REFERENCES series (id),
    block INTEGER NOT NULL,
    first_open INTEGER NOT NULL,
    last_open INTEGER NOT NULL,
    n INTEGER NOT NULL,
    data BLOB NOT NULL,
    UNIQUE (series_id, block)
);
CREATE TABLE coverage (
    series_id INTEGER NOT NULL REFERENCES series (id),
    first_open INTEGER NOT NULL,
    last_open INTEGER NOT NULL,
    PRIMARY KEY (series_id, first_open)
) WITHOUT ROWID;
"""


class StoreError(Exception):
    """The store file cannot be used (not a binmon store, damaged, newer schema, locked too long)."""


def prepare(conn: sqlite3.Connection, path: Path) -> None:
    """Check that ``conn``'s file is a binmon store this code can use, or make an empty file one.

    Reads first, writes only to a file with no schema at all (new or zero bytes), so a foreign
    or damaged file is never touched. sqlite3.DatabaseError for a file that is not SQLite.
    """
    app_id = conn.execute("PRAGMA application_id").fetchone()[0]
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
    if app_id == 0 and version == 0 and tables == 0:
        conn.execute(f"PRAGMA page_size = {PAGE_SIZE}")  # only effective before the first write
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Re-check under the write lock: another process may have created it meanwhile.
            if conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0:
                for stmt in _SCHEMA.split(";"):
                    if stmt.strip():
                        conn.execute(stmt)
                conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
        version = conn.execute("PRAGMA user_version").fetchone()[0]
    if app_id != APPLICATION_ID:
        raise StoreError(f"{path}: an SQLite database, but not a binmon candle store")
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"{path}: candle store schema {version} is newer than this binmon reads ({SCHEMA_VERSION})"
        )
    if version < SCHEMA_VERSION:
        raise StoreError(
            f"{path}: candle store schema {version} is not supported (expected {SCHEMA_VERSION})"
        )
    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        raise StoreError(f"{path}: cannot switch the candle store to WAL mode (got {mode})")
    conn.execute("PRAGMA synchronous = NORMAL")
    # A bulk load grows the WAL to the size of its transaction; without a limit the file keeps
    # that size until the last connection closes. Truncate it back after each checkpoint.
    conn.execute(f"PRAGMA journal_size_limit = {WAL_SIZE_LIMIT}")
