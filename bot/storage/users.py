"""People who talked to the bot: language, time zone, deep-link source."""

from __future__ import annotations

from dataclasses import dataclass

from bot.storage.db import Database, to_db, utcnow


@dataclass(frozen=True, slots=True)
class User:
    user_id: int
    language: str
    timezone: str | None
    source: str | None
    blocked: bool
    place: str | None = None  # the city typed for `timezone`, when not the zone's own


class UserRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, user_id: int) -> User | None:
        row = await self.db.fetchone(
            "SELECT user_id, language, timezone, source, blocked_at, timezone_place "
            "FROM users WHERE user_id = ?",
            (user_id,),
        )
        if row is None:
            return None
        return User(row[0], row[1], row[2], row[3], row[4] is not None, row[5])

    async def ensure(self, user_id: int, language: str, source: str | None = None) -> None:
        """Create the user if new; a source is kept from the first deep link only."""
        now = to_db(utcnow())
        await self.db.execute(
            "INSERT INTO users (user_id, language, source, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (user_id) DO UPDATE SET "
            "source = COALESCE(users.source, excluded.source), blocked_at = NULL",
            (user_id, language, source, now, now),
        )

    async def set_language(self, user_id: int, language: str) -> None:
        await self.db.execute(
            "UPDATE users SET language = ?, updated_at = ? WHERE user_id = ?",
            (language, to_db(utcnow()), user_id),
        )

    async def set_timezone(self, user_id: int, zone: str | None, place: str | None = None) -> None:
        await self.db.execute(
            "UPDATE users SET timezone = ?, timezone_place = ?, updated_at = ? WHERE user_id = ?",
            (zone, place, to_db(utcnow()), user_id),
        )

    async def mark_blocked(self, user_id: int) -> None:
        await self.db.execute(
            "UPDATE users SET blocked_at = ? WHERE user_id = ? AND blocked_at IS NULL",
            (to_db(utcnow()), user_id),
        )

    async def delete(self, user_id: int) -> None:
        """Erase the user and, by cascade, everything that refers to them."""
        async with self.db.transaction() as conn:
            await conn.execute("DELETE FROM users WHERE user_id = ?", (user_id,))
            await conn.execute("DELETE FROM user_data WHERE user_id = ?", (user_id,))
            # Conversation keys are JSON lists that end with the user id.
            await conn.execute(
                "DELETE FROM conversations WHERE key LIKE ? OR key = ?",
                (f"%, {user_id}]", f"[{user_id}]"),
            )
