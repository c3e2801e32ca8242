"""Messages sent on the bot's own initiative, recipient by recipient.

A delivery row is written as 'pending' just before the message leaves (once the rate limiter
has let it go, not while it waits for its turn: see `bot.sending`) and updated with the
outcome right after, so a crash in between leaves 'pending': the message may or may not have
reached the user. Such rows are closed as 'failed' ("interrupted") on the next start and never
sent again: a missed reminder is better than a duplicate. Recipients without a row are the
ones still to do.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from bot.storage.db import Database, to_db

INTERRUPTED = "interrupted"


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    BLOCKED = "blocked"  # the user blocked the bot, deleted their account, or is unknown
    FAILED = "failed"
    SKIPPED = "skipped"  # deliberately not sent (e.g. a reminder due after the session began)


@dataclass(frozen=True, slots=True)
class Recipient:
    """Who gets a message, and what is needed to write it."""

    user_id: int
    language: str
    timezone: str | None
    session_language: str | None
    blocked: bool
    place: str | None = None  # the city the user typed for `timezone` (bot.storage.users)


_RECIPIENT = (
    "u.user_id, u.language, u.timezone, r.session_language, u.blocked_at, u.timezone_place"
)


def _recipient(row: sqlite3.Row) -> Recipient:
    return Recipient(row[0], row[1], row[2], row[3], row[4] is not None, row[5])


class DeliveryRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def claim(self, user_id: int, kind: str, now: datetime) -> bool:
        """Write the 'pending' row; False when this delivery exists already (or the user is
        gone), so two runs can never both send it."""
        return await self._insert(user_id, kind, DeliveryStatus.PENDING, now, None)

    async def finish(
        self,
        user_id: int,
        kind: str,
        status: DeliveryStatus,
        now: datetime,
        error: str | None = None,
    ) -> None:
        """Record the outcome of a claimed delivery."""
        await self.db.execute(
            "UPDATE deliveries SET status = ?, error = ?, at = ? WHERE user_id = ? AND kind = ?",
            (status.value, error, to_db(now), user_id, kind),
        )

    async def record(
        self,
        user_id: int,
        kind: str,
        status: DeliveryStatus,
        now: datetime,
        error: str | None = None,
    ) -> bool:
        """Record a delivery decided without sending (skipped, known to be blocked)."""
        return await self._insert(user_id, kind, status, now, error)

    async def _insert(
        self, user_id: int, kind: str, status: DeliveryStatus, now: datetime, error: str | None
    ) -> bool:
        try:
            async with self.db.transaction() as conn:
                cursor = await conn.execute(
                    "INSERT INTO deliveries (user_id, kind, status, error, at) "
                    "VALUES (?, ?, ?, ?, ?) ON CONFLICT (user_id, kind) DO NOTHING",
                    (user_id, kind, status.value, error, to_db(now)),
                )
                return cursor.rowcount == 1
        except sqlite3.IntegrityError:  # the user erased their data meanwhile
            return False

    async def close_interrupted(self, kind_prefix: str, now: datetime) -> int:
        """Turn 'pending' rows left by a crash into 'failed' (they may have been delivered)."""
        async with self.db.transaction() as conn:
            cursor = await conn.execute(
                "UPDATE deliveries SET status = 'failed', error = ?, at = ? "
                "WHERE status = 'pending' AND kind LIKE ? ESCAPE '\\'",
                (INTERRUPTED, to_db(now), _like_prefix(kind_prefix)),
            )
            return cursor.rowcount

    async def counts(self, kind: str) -> dict[DeliveryStatus, int]:
        rows = await self.db.fetchall(
            "SELECT status, COUNT(*) FROM deliveries WHERE kind = ? GROUP BY status", (kind,)
        )
        counts = dict.fromkeys(DeliveryStatus, 0)
        for status, count in rows:
            counts[DeliveryStatus(status)] = count
        return counts

    async def statuses(self, kind: str) -> dict[int, tuple[DeliveryStatus, str | None]]:
        """Every recipient of `kind` and how their delivery went."""
        rows = await self.db.fetchall(
            "SELECT user_id, status, error FROM deliveries WHERE kind = ?", (kind,)
        )
        return {r[0]: (DeliveryStatus(r[1]), r[2]) for r in rows}

    # -- who is due -----------------------------------------------------------------------

    async def reminder_recipients(self, kind: str, registered_before: datetime) -> list[Recipient]:
        """Active registrants who signed up before `registered_before` and have no `kind` row."""
        rows = await self.db.fetchall(
            f"SELECT {_RECIPIENT} FROM registrations r JOIN users u ON u.user_id = r.user_id "
            "WHERE r.status = 'active' AND r.created_at < ? AND NOT EXISTS "
            "(SELECT 1 FROM deliveries d WHERE d.user_id = r.user_id AND d.kind = ?) "
            "ORDER BY r.created_at, r.id",
            (to_db(registered_before), kind),
        )
        return [_recipient(r) for r in rows]

    async def audience(self, audience: str, kind: str | None = None) -> list[Recipient]:
        """Registrants of a broadcast audience ("all", "waiting", "lang:<code>"), without those
        who already have a `kind` row."""
        where, params = _audience_filter(audience)
        sql = (
            f"SELECT {_RECIPIENT} FROM registrations r JOIN users u ON u.user_id = r.user_id "
            f"WHERE {where}"
        )
        if kind is not None:
            sql += (
                " AND NOT EXISTS (SELECT 1 FROM deliveries d "
                "WHERE d.user_id = r.user_id AND d.kind = ?)"
            )
            params.append(kind)
        rows = await self.db.fetchall(sql + " ORDER BY r.created_at, r.id", params)
        return [_recipient(r) for r in rows]


def _audience_filter(audience: str) -> tuple[str, list[object]]:
    if audience == "all":
        return "r.status = 'active'", []
    if audience == "waiting":
        return "r.status = 'waiting'", []
    if audience.startswith("lang:"):
        return "r.status = 'active' AND u.language = ?", [audience.removeprefix("lang:")]
    raise ValueError(f"unknown audience {audience!r}")


def _like_prefix(prefix: str) -> str:
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
