"""The audit log of admin actions."""

from __future__ import annotations

from bot.storage.db import Database, to_db, utcnow


class AuditRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def record(self, admin_id: int, action: str, detail: str | None = None) -> None:
        await self.db.execute(
            "INSERT INTO audit_log (admin_id, action, detail, at) VALUES (?, ?, ?, ?)",
            (admin_id, action, detail, to_db(utcnow())),
        )

    async def recent(self, limit: int = 50) -> list[tuple[int, str, str | None, str]]:
        rows = await self.db.fetchall(
            "SELECT admin_id, action, detail, at FROM audit_log ORDER BY id DESC LIMIT ?",
            (limit,),
        )
        return [(r[0], r[1], r[2], r[3]) for r in rows]
