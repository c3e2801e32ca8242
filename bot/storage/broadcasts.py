"""Broadcasts: what the organisers send, to whom, and whether it is still being sent.

The recipients of broadcast N are the rows of `deliveries` with kind "broadcast:N".
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from bot.storage.db import Database, from_db, to_db

_COLUMNS = (
    "id, admin_id, audience, texts, status, progress_chat_id, progress_message_id, "
    "created_at, finished_at"
)


@dataclass(frozen=True, slots=True)
class Broadcast:
    id: int
    admin_id: int
    audience: str  # "all", "waiting" or "lang:<code>"
    texts: dict[str, str]  # language → HTML text; the key "*" for one text for everyone
    status: str  # running, done, cancelled
    progress_chat_id: int | None
    progress_message_id: int | None
    created_at: datetime
    finished_at: datetime | None

    @property
    def kind(self) -> str:
        """The `deliveries.kind` of its recipients."""
        return f"broadcast:{self.id}"


def _row(row: tuple) -> Broadcast:
    return Broadcast(
        id=row[0],
        admin_id=row[1],
        audience=row[2],
        texts=json.loads(row[3]),
        status=row[4],
        progress_chat_id=row[5],
        progress_message_id=row[6],
        created_at=from_db(row[7]),
        finished_at=from_db(row[8]) if row[8] else None,
    )


class BroadcastRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(
        self, admin_id: int, audience: str, texts: dict[str, str], now: datetime
    ) -> Broadcast | None:
        """A new running broadcast; None while another one is running (one at a time)."""
        async with self.db.transaction() as conn:
            if await self.running() is not None:
                return None
            cursor = await conn.execute(
                "INSERT INTO broadcasts (admin_id, audience, texts, status, created_at) "
                "VALUES (?, ?, ?, 'running', ?)",
                (admin_id, audience, json.dumps(texts, ensure_ascii=False), to_db(now)),
            )
            broadcast_id = cursor.lastrowid or 0
        created = await self.get(broadcast_id)
        assert created is not None
        return created

    async def get(self, broadcast_id: int) -> Broadcast | None:
        row = await self.db.fetchone(
            f"SELECT {_COLUMNS} FROM broadcasts WHERE id = ?", (broadcast_id,)
        )
        return _row(tuple(row)) if row else None

    async def running(self) -> Broadcast | None:
        row = await self.db.fetchone(
            f"SELECT {_COLUMNS} FROM broadcasts WHERE status = 'running' ORDER BY id LIMIT 1"
        )
        return _row(tuple(row)) if row else None

    async def set_progress_message(self, broadcast_id: int, chat_id: int, message_id: int) -> None:
        await self.db.execute(
            "UPDATE broadcasts SET progress_chat_id = ?, progress_message_id = ? WHERE id = ?",
            (chat_id, message_id, broadcast_id),
        )

    async def finish(self, broadcast_id: int, status: str, now: datetime) -> None:
        await self.db.execute(
            "UPDATE broadcasts SET status = ?, finished_at = ? "
            "WHERE id = ? AND status = 'running'",
            (status, to_db(now), broadcast_id),
        )
