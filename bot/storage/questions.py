"""Questions and comments for the panel, sent with /ask."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bot.storage.db import Database, from_db, to_db, utcnow

_COLUMNS = "id, user_id, language, text, created_at"


@dataclass(frozen=True, slots=True)
class Question:
    id: int
    user_id: int
    language: str
    text: str
    created_at: datetime


def _row(row: tuple) -> Question:
    return Question(row[0], row[1], row[2], row[3], from_db(row[4]))


class QuestionRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def add(self, user_id: int, language: str, text: str) -> Question:
        now = utcnow()
        question_id = await self.db.execute(
            "INSERT INTO questions (user_id, language, text, created_at) VALUES (?, ?, ?, ?)",
            (user_id, language, text, to_db(now)),
        )
        return Question(question_id, user_id, language, text, now)

    async def count(self) -> int:
        row = await self.db.fetchone("SELECT COUNT(*) FROM questions")
        return int(row[0]) if row else 0

    async def newest(self, limit: int, before_id: int | None = None) -> list[Question]:
        """Newest first (ids grow with time); `before_id` pages further back."""
        rows = await self.db.fetchall(
            f"SELECT {_COLUMNS} FROM questions WHERE id < ? ORDER BY id DESC LIMIT ?",
            (before_id if before_id is not None else 2**63 - 1, limit),
        )
        return [_row(tuple(r)) for r in rows]
