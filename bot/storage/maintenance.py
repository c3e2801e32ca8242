"""Operations on the database file from outside the running bot: inspection and online backup.

These run in a separate process (`run_bot.py --check`, `--backup`) beside a bot that may be
writing. They open their own read-only connection with the standard `sqlite3` module: in WAL
mode a reader never blocks the bot's writes, and the backup API copies one consistent
snapshot (every transaction committed before it started, none after).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from bot.storage.event_changes import StoredChange, read_changes
from bot.storage.schema import MIGRATIONS


class BackupError(Exception):
    """The backup could not be written or did not pass the integrity check."""


@dataclass(frozen=True, slots=True)
class DatabaseInfo:
    schema_version: int
    registrations: dict[str, int] = field(default_factory=dict)  # by status
    event_changes: list[StoredChange] = field(default_factory=list)  # made with /edit

    @property
    def current_version(self) -> int:
        return len(MIGRATIONS)


def _open_read_only(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=10.0)
    conn.execute("PRAGMA query_only = ON")
    return conn


def _info(conn: sqlite3.Connection) -> DatabaseInfo:
    (version,) = conn.execute("PRAGMA user_version").fetchone()
    counts: dict[str, int] = {}
    with contextlib.suppress(sqlite3.OperationalError):  # no table yet: an empty database
        rows = conn.execute("SELECT status, count(*) FROM registrations GROUP BY status")
        counts = {str(status): int(n) for status, n in rows}
    return DatabaseInfo(int(version), counts, read_changes(conn))


def inspect(path: Path) -> DatabaseInfo:
    """Schema version and registration counts of an existing database file, read-only."""
    conn = _open_read_only(path)
    try:
        return _info(conn)
    finally:
        conn.close()


def online_backup(source: Path, target: Path) -> DatabaseInfo:
    """Copy `source` to `target` with SQLite's backup API while the bot may be writing.

    The copy is written beside `target` and renamed into place only once it has passed
    `PRAGMA integrity_check`, so `target` is either absent or a complete, valid database. It
    is switched to the rollback journal so that it is one self-contained file.
    """
    partial = target.with_name(f".{target.name}.partial")
    partial.unlink(missing_ok=True)
    try:
        src = _open_read_only(source)
        try:
            dest = sqlite3.connect(partial)
            try:
                src.backup(dest)  # all pages in one step: one consistent snapshot
                dest.execute("PRAGMA journal_mode = DELETE")
                (integrity,) = dest.execute("PRAGMA integrity_check").fetchone()
                info = _info(dest)
            finally:
                dest.close()
        finally:
            src.close()
    except sqlite3.Error as exc:
        partial.unlink(missing_ok=True)
        raise BackupError(f"backup of {source} failed: {exc}") from exc
    if integrity != "ok":
        partial.unlink(missing_ok=True)
        raise BackupError(f"backup of {source} failed the integrity check: {integrity}")
    os.replace(partial, target)
    return info
