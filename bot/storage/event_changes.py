"""Changes organisers made to the event from Telegram (/edit), in the order they were made.

Values are stored as JSON (see `bot.services.event_state` for what each field holds). The
notice a change calls for goes to the deliveries "event-change:<id>", and the calendar file that
follows the notice of a new time to "event-change:<id>:calendar" (see `bot.storage.deliveries`).
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.storage.db import Database, from_db, to_db
from bot.storage.deliveries import _RECIPIENT, Recipient, _recipient

KIND_PREFIX = "event-change:"
CALENDAR_SUFFIX = ":calendar"
_COLUMNS = "id, token, field, value, previous, file_value, admin_id, announce, at"


@dataclass(frozen=True, slots=True)
class StoredChange:
    id: int
    token: str
    field: str
    value: Any  # decoded JSON
    previous: Any  # the value in force before the change
    file_value: Any  # the event file's own value when the change was made
    admin_id: int
    announce: str  # none, pending, done, superseded
    at: datetime

    @property
    def kind(self) -> str:
        """The `deliveries.kind` of its notice."""
        return f"{KIND_PREFIX}{self.id}"

    @property
    def calendar_kind(self) -> str:
        """The `deliveries.kind` of the calendar file that follows its notice (a new time)."""
        return self.kind + CALENDAR_SUFFIX


def _row(row: sqlite3.Row | tuple[Any, ...]) -> StoredChange:
    return StoredChange(
        id=row[0],
        token=row[1],
        field=row[2],
        value=json.loads(row[3]),
        previous=json.loads(row[4]),
        file_value=json.loads(row[5]),
        admin_id=row[6],
        announce=row[7],
        at=from_db(row[8]),
    )


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def read_changes(conn: sqlite3.Connection) -> list[StoredChange]:
    """Every change, oldest first, through a plain `sqlite3` connection (`--check`); none when
    the database predates the table."""
    try:
        rows = conn.execute(f"SELECT {_COLUMNS} FROM event_changes ORDER BY id").fetchall()
    except sqlite3.OperationalError:
        return []
    return [_row(r) for r in rows]


class EventChangeRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def all(self) -> list[StoredChange]:
        rows = await self.db.fetchall(f"SELECT {_COLUMNS} FROM event_changes ORDER BY id")
        return [_row(r) for r in rows]

    async def get(self, change_id: int) -> StoredChange | None:
        row = await self.db.fetchone(
            f"SELECT {_COLUMNS} FROM event_changes WHERE id = ?", (change_id,)
        )
        return _row(row) if row else None

    async def saved(self, token: str) -> bool:
        """Whether the change drafted as `token` is stored."""
        row = await self.db.fetchone("SELECT 1 FROM event_changes WHERE token = ?", (token,))
        return row is not None

    async def add(
        self,
        token: str,
        field: str,
        value: Any,
        previous: Any,
        file_value: Any,
        admin_id: int,
        announce: bool,
        now: datetime,
    ) -> StoredChange | None:
        """Store a change, and the audit row that goes with it, in one transaction; a notice
        still pending for an earlier change of the same field is superseded by this one's.
        None when the draft `token` was saved already."""
        async with self.db.transaction() as conn:
            cursor = await conn.execute(
                "INSERT INTO event_changes "
                "(token, field, value, previous, file_value, admin_id, announce, at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (token) DO NOTHING",
                (
                    token,
                    field,
                    _json(value),
                    _json(previous),
                    _json(file_value),
                    admin_id,
                    "pending" if announce else "none",
                    to_db(now),
                ),
            )
            if cursor.rowcount != 1:
                return None
            change_id = cursor.lastrowid or 0
            if announce:
                await conn.execute(
                    "UPDATE event_changes SET announce = 'superseded' "
                    "WHERE field = ? AND announce = 'pending' AND id != ?",
                    (field, change_id),
                )
            await conn.execute(
                "INSERT INTO audit_log (admin_id, action, detail, at) VALUES (?, ?, ?, ?)",
                (
                    admin_id,
                    f"edit {field}",
                    f"#{change_id}: {_json(previous)} -> {_json(value)}"[:1000],
                    to_db(now),
                ),
            )
        return await self.get(change_id)

    async def pending(self) -> list[StoredChange]:
        """Changes whose notice is still to be sent, oldest first."""
        rows = await self.db.fetchall(
            f"SELECT {_COLUMNS} FROM event_changes WHERE announce = 'pending' ORDER BY id"
        )
        return [_row(r) for r in rows]

    async def finish(self, change_id: int) -> None:
        await self.db.execute(
            "UPDATE event_changes SET announce = 'done' WHERE id = ? AND announce = 'pending'",
            (change_id,),
        )

    async def recipients(self, change: StoredChange, statuses: tuple[str, ...]) -> list[Recipient]:
        """Registrants with a registration in `statuses` made before the change (later ones
        were shown the new values already) and no delivery of its notice yet."""
        marks = ", ".join("?" for _ in statuses)
        rows = await self.db.fetchall(
            f"SELECT {_RECIPIENT} FROM registrations r JOIN users u ON u.user_id = r.user_id "
            f"WHERE r.status IN ({marks}) AND r.created_at < ? AND NOT EXISTS "
            "(SELECT 1 FROM deliveries d WHERE d.user_id = r.user_id AND d.kind = ?) "
            "ORDER BY r.created_at, r.id",
            (*statuses, to_db(change.at), change.kind),
        )
        return [_recipient(r) for r in rows]

    async def count(self, statuses: tuple[str, ...]) -> int:
        """Current registrations in `statuses`: who a notice sent now would reach."""
        marks = ", ".join("?" for _ in statuses)
        row = await self.db.fetchone(
            f"SELECT COUNT(*) FROM registrations WHERE status IN ({marks})", statuses
        )
        return int(row[0]) if row else 0
