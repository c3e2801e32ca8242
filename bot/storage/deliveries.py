"""Messages sent on the bot's own initiative, recipient by recipient.

A delivery row is written as 'pending' just before the message leaves (once the rate limiter
has let it go, not while it waits for its turn: see `bot.sending`) and updated with the
outcome once Telegram answered. An answer that proves the message was not delivered (a 429,
a 5xx) deletes the row again before the wait (`release`): the delivery is to do, as if never
tried. So 'pending' means "on the wire, no answer yet", and a crash leaves it only on the
messages really under way. The next start deletes those rows (`reopen_interrupted`) and sends
them again: one of them may arrive twice, but nobody is left without the message.
Recipients without a row are the ones still to do.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from bot.storage.db import Database, to_db


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

    async def release(self, user_id: int, kind: str) -> None:
        """Delete the 'pending' row of a delivery Telegram refused: it is to do again."""
        async with self.db.transaction() as conn:
            await conn.execute(
                "DELETE FROM deliveries WHERE user_id = ? AND kind = ? AND status = 'pending'",
                (user_id, kind),
            )

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

    async def reopen_interrupted(self, kind_prefix: str) -> int:
        """At start-up: delete the 'pending' rows a crash left (messages on the wire at the
        crash, which may or may not have arrived), so that they are sent again."""
        async with self.db.transaction() as conn:
            cursor = await conn.execute(
                "DELETE FROM deliveries WHERE status = 'pending' AND kind LIKE ? ESCAPE '\\'",
                (_like_prefix(kind_prefix),),
            )
            return cursor.rowcount

    async def status(self, user_id: int, kind: str) -> DeliveryStatus | None:
        """How delivery `kind` to `user_id` went (None: no row)."""
        row = await self.db.fetchone(
            "SELECT status FROM deliveries WHERE user_id = ? AND kind = ?", (user_id, kind)
        )
        return None if row is None else DeliveryStatus(row[0])

    async def sent_without(self, kind_prefix: str, suffix: str) -> list[tuple[int, str]]:
        """(user_id, kind) of the sent deliveries `kind_prefix…` whose next message, the
        delivery `kind + suffix`, has no row: a crash came between the two."""
        rows = await self.db.fetchall(
            "SELECT d.user_id, d.kind FROM deliveries d "
            "WHERE d.status = 'sent' AND d.kind LIKE ? ESCAPE '\\' AND d.kind NOT LIKE ? "
            "ESCAPE '\\' AND NOT EXISTS (SELECT 1 FROM deliveries f "
            "WHERE f.user_id = d.user_id AND f.kind = d.kind || ?) ORDER BY d.at, d.kind",
            (_like_prefix(kind_prefix), "%" + _escape_like(suffix), suffix),
        )
        return [(int(r[0]), str(r[1])) for r in rows]

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


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _like_prefix(prefix: str) -> str:
    return _escape_like(prefix) + "%"
