"""Questions and comments for the panel: taking them from participants, listing them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

from bot.event import Event
from bot.services.event_state import EventSource
from bot.services.reports import utc_iso, write_csv, zone_iso
from bot.services.validation import QUESTION_MAX, clean_multiline
from bot.storage import UserRepo
from bot.storage.questions import Question, QuestionRepo

QUESTION_COLUMNS: tuple[str, ...] = (
    "id",
    "asked_at_utc",
    "asked_at_event_tz",
    "language",
    "text",
)
CHUNK = 1000


class EmptyQuestion(Exception):
    """Nothing readable was left after cleaning."""


class QuestionTooLong(Exception):
    def __init__(self, length: int) -> None:
        super().__init__(length)
        self.length = length


class QuestionService:
    def __init__(self, repo: QuestionRepo, users: UserRepo, events: EventSource) -> None:
        self.repo = repo
        self.users = users
        self.events = events

    @property
    def event(self) -> Event:
        """The event in force (`bot.services.event_state`)."""
        return self.events.current

    async def ask(self, user_id: int, language: str, text: str) -> Question:
        """Store a question; EmptyQuestion or QuestionTooLong (nothing stored) otherwise."""
        cleaned = clean_multiline(text)
        if not cleaned:
            raise EmptyQuestion
        if len(cleaned) > QUESTION_MAX:
            raise QuestionTooLong(len(cleaned))
        await self.users.ensure(user_id, language)
        return await self.repo.add(user_id, language, cleaned)

    async def count(self) -> int:
        return await self.repo.count()

    async def newest(self, limit: int) -> list[Question]:
        return await self.repo.newest(limit)

    def row(self, question: Question) -> list[str]:
        return [
            str(question.id),
            utc_iso(question.created_at),
            zone_iso(question.created_at, self.event),
            question.language,
            question.text,
        ]

    async def export(self) -> tuple[Path, int]:
        """All questions, newest first, as a CSV file (the caller deletes it)."""

        async def batches() -> AsyncIterator[list[Question]]:
            before: int | None = None
            while batch := await self.repo.newest(CHUNK, before):
                before = batch[-1].id
                yield batch

        return await write_csv(QUESTION_COLUMNS, batches(), self.row, "questions-")
