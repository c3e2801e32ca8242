"""Named values kept across restarts, and the record of recently handled updates."""

from __future__ import annotations

from collections.abc import Iterable

from bot.storage.db import Database


class MetaRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, key: str) -> str | None:
        row = await self.db.fetchone("SELECT value FROM meta WHERE key = ?", (key,))
        return row[0] if row else None

    async def set(self, key: str, value: str) -> None:
        await self.db.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )


class HandledUpdateRepo:
    """Update ids handled lately, each with a digest of the update and when (Unix seconds)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def since(self, when: int) -> dict[int, tuple[str, int]]:
        rows = await self.db.fetchall(
            "SELECT update_id, digest, handled_at FROM handled_updates WHERE handled_at >= ?",
            (when,),
        )
        return {row[0]: (row[1], row[2]) for row in rows}

    async def record(self, handled: Iterable[tuple[int, str]], when: int) -> None:
        """Record `(update_id, digest)` pairs; an id reused by a new update replaces the old."""
        async with self.db.transaction() as conn:
            await conn.executemany(
                "INSERT INTO handled_updates (update_id, digest, handled_at) VALUES (?, ?, ?) "
                "ON CONFLICT (update_id) DO UPDATE "
                "SET digest = excluded.digest, handled_at = excluded.handled_at",
                [(update_id, digest, when) for update_id, digest in handled],
            )

    async def forget_before(self, when: int) -> None:
        await self.db.execute("DELETE FROM handled_updates WHERE handled_at < ?", (when,))
