"""The one SQLite connection: opening, migrations, transactions, backup."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import sqlite3
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiosqlite

from bot.storage.schema import MIGRATIONS

log = logging.getLogger(__name__)

_in_transaction: contextvars.ContextVar[bool] = contextvars.ContextVar("in_tx", default=False)


def utcnow() -> datetime:
    return datetime.now(UTC)


def to_db(when: datetime) -> str:
    """Aware datetime → sortable ISO 8601 text in UTC."""
    return when.astimezone(UTC).isoformat(timespec="microseconds")


def from_db(text: str) -> datetime:
    return datetime.fromisoformat(text)


class SchemaTooNew(Exception):
    """The database was written by a newer version of the bot."""


class Database:
    """A single aiosqlite connection shared by every repository.

    All writes go through `transaction()`, which serialises them with a lock: several tasks
    (handlers, reminders, a broadcast) share the connection, and SQLite has one transaction
    per connection.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._conn: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()
        self._opening = asyncio.Lock()

    @property
    def conn(self) -> aiosqlite.Connection:
        if self._conn is None:
            raise RuntimeError("database is not open")
        return self._conn

    async def open(self) -> None:
        """Open and migrate; idempotent (PTB's persistence may ask first)."""
        async with self._opening:
            if self._conn is not None:
                return
            if str(self.path) != ":memory:":
                self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = await aiosqlite.connect(self.path, isolation_level=None)
            conn.row_factory = sqlite3.Row
            await conn.execute("PRAGMA journal_mode = WAL")
            await conn.execute("PRAGMA synchronous = NORMAL")
            await conn.execute("PRAGMA foreign_keys = ON")
            await conn.execute("PRAGMA busy_timeout = 5000")
            # Deleted rows are overwritten with zeros, not left readable in free space until
            # SQLite reuses the page: /deletemydata must really erase (see `checkpoint`).
            await conn.execute("PRAGMA secure_delete = ON")
            self._conn = conn
            try:
                await self._migrate()
            except BaseException:  # a newer schema, a failed migration: nothing left open
                self._conn = None
                await conn.close()
                raise

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    async def _migrate(self) -> None:
        (version,) = await self.fetchone("PRAGMA user_version") or (0,)
        if version > len(MIGRATIONS):
            raise SchemaTooNew(
                f"{self.path}: schema version {version} is newer than this bot ({len(MIGRATIONS)})"
            )
        for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
            log.info("Migrating database to schema version %d", number)
            await self.conn.executescript(
                f"BEGIN IMMEDIATE;\n{script}\nPRAGMA user_version = {number};\nCOMMIT;"
            )

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """BEGIN IMMEDIATE … COMMIT, rolled back on error; nested calls join the outer one."""
        if _in_transaction.get():
            yield self.conn
            return
        async with self._lock:
            token = _in_transaction.set(True)
            try:
                await self.conn.execute("BEGIN IMMEDIATE")
                try:
                    yield self.conn
                except BaseException:
                    await self.conn.execute("ROLLBACK")
                    raise
                await self.conn.execute("COMMIT")
            finally:
                _in_transaction.reset(token)

    async def execute(self, sql: str, params: Iterable[Any] = ()) -> int:
        """One write statement in its own transaction; returns lastrowid."""
        async with self.transaction() as conn:
            cursor = await conn.execute(sql, tuple(params))
            return cursor.lastrowid or 0

    async def fetchone(self, sql: str, params: Iterable[Any] = ()) -> sqlite3.Row | None:
        """The first row, for queries that return one: a single trip to the database thread
        (a cursor would take three: execute, fetch, close)."""
        rows = await self.conn.execute_fetchall(sql, tuple(params))
        return next(iter(rows), None)

    async def fetchall(self, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]:
        return list(await self.conn.execute_fetchall(sql, tuple(params)))

    async def checkpoint(self) -> bool:
        """Copy the WAL into the database file and empty it (TRUNCATE), so that pages written
        before an erasure, personal data in them, do not stay readable in the WAL file.
        False when a reader (a backup in progress, past busy_timeout) kept it from completing:
        the old pages then stay in the WAL until the next complete one (the next erasure, or
        the bot's stop, when SQLite deletes the WAL)."""
        if _in_transaction.get():
            raise RuntimeError("checkpoint inside a transaction")
        async with self._lock:
            row = await self.fetchone("PRAGMA wal_checkpoint(TRUNCATE)")
        return row is not None and row[0] == 0

    async def backup(self, target: Path | str) -> None:
        """Online backup through SQLite's backup API, consistent while the bot writes."""
        target = Path(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        async with self._lock, aiosqlite.connect(target) as dest:
            await self.conn.backup(dest)
