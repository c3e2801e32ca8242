"""Ratings and comments given after the session (one row per respondent, see schema 4)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bot.storage.db import Database, from_db, to_db


@dataclass(frozen=True, slots=True)
class FeedbackState:
    """Where one person stands: did they get the follow-up, and what have they answered."""

    received: bool  # the follow-up was sent to them (or may have been: see `received`)
    rating: int | None
    awaiting_comment: bool
    has_comment: bool


@dataclass(frozen=True, slots=True)
class Comment:
    rating: int
    comment: str
    language: str
    commented_at: datetime


@dataclass(frozen=True, slots=True)
class FeedbackCounts:
    responses: int
    total: int  # sum of the ratings
    by_rating: dict[int, int]  # 1..5 → count, every rating present
    comments: int


#: One CSV row: rating, comment, rated_at, commented_at, chat language, and from the person's
#: latest registration: session language, affiliation, country.
ExportRow = tuple[int, str | None, str, str | None, str, str | None, str | None, str | None]


class FeedbackRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def state(self, user_id: int, kind: str) -> FeedbackState:
        """`received` is true when a `kind` delivery row exists that is not 'skipped' (sent,
        or under way at a crash and so maybe delivered, or refused: the person may still
        answer if they have the message)."""
        row = await self.db.fetchone(
            "SELECT EXISTS (SELECT 1 FROM deliveries WHERE user_id = ? AND kind = ? "
            "AND status != 'skipped'), f.rating, f.awaiting_comment, f.comment IS NOT NULL "
            "FROM (SELECT 1) LEFT JOIN feedback f ON f.user_id = ?",
            (user_id, kind, user_id),
        )
        assert row is not None
        return FeedbackState(bool(row[0]), row[1], bool(row[2]), bool(row[3]))

    async def rate(self, user_id: int, kind: str, rating: int, now: datetime) -> bool:
        """Set the rating and wait for a comment; False (nothing written) when the person has
        not received the follow-up `kind` (or no longer exists)."""
        async with self.db.transaction() as conn:
            cursor = await conn.execute(
                "INSERT INTO feedback (user_id, rating, awaiting_comment, rated_at) "
                "SELECT ?, ?, 1, ? WHERE EXISTS (SELECT 1 FROM deliveries "
                "WHERE user_id = ? AND kind = ? AND status != 'skipped') "
                "ON CONFLICT (user_id) DO UPDATE SET rating = excluded.rating, "
                "awaiting_comment = 1, rated_at = excluded.rated_at",
                (user_id, rating, to_db(now), user_id, kind),
            )
            return cursor.rowcount == 1

    async def comment(self, user_id: int, text: str, now: datetime) -> bool:
        """Store the comment awaited after a rating (replacing an earlier one); False when
        none was awaited."""
        async with self.db.transaction() as conn:
            cursor = await conn.execute(
                "UPDATE feedback SET comment = ?, commented_at = ?, awaiting_comment = 0 "
                "WHERE user_id = ? AND awaiting_comment = 1",
                (text, to_db(now), user_id),
            )
            return cursor.rowcount == 1

    async def stop_awaiting(self, user_id: int) -> bool:
        """No comment this time (Skip, /cancel); False when none was awaited."""
        async with self.db.transaction() as conn:
            cursor = await conn.execute(
                "UPDATE feedback SET awaiting_comment = 0 "
                "WHERE user_id = ? AND awaiting_comment = 1",
                (user_id,),
            )
            return cursor.rowcount == 1

    async def counts(self) -> FeedbackCounts:
        rows = await self.db.fetchall(
            "SELECT rating, COUNT(*), COUNT(comment) FROM feedback GROUP BY rating"
        )
        by_rating = dict.fromkeys(range(1, 6), 0)
        comments = 0
        for rating, count, commented in rows:
            by_rating[rating] = count
            comments += commented
        return FeedbackCounts(
            responses=sum(by_rating.values()),
            total=sum(r * n for r, n in by_rating.items()),
            by_rating=by_rating,
            comments=comments,
        )

    async def newest_comments(self, limit: int) -> list[Comment]:
        rows = await self.db.fetchall(
            "SELECT f.rating, f.comment, u.language, f.commented_at FROM feedback f "
            "JOIN users u ON u.user_id = f.user_id WHERE f.comment IS NOT NULL "
            "ORDER BY f.commented_at DESC LIMIT ?",
            (limit,),
        )
        return [Comment(r[0], r[1], r[2], from_db(r[3])) for r in rows]

    async def export_rows(self, after_user_id: int, limit: int) -> list[tuple[int, ExportRow]]:
        """(user id, row) pages in user id order; the user id is for paging only."""
        rows = await self.db.fetchall(
            "SELECT f.user_id, f.rating, f.comment, f.rated_at, f.commented_at, u.language, "
            "r.session_language, r.affiliation, r.country FROM feedback f "
            "JOIN users u ON u.user_id = f.user_id "
            "LEFT JOIN registrations r ON r.id = "
            "(SELECT MAX(id) FROM registrations WHERE user_id = f.user_id) "
            "WHERE f.user_id > ? ORDER BY f.user_id LIMIT ?",
            (after_user_id, limit),
        )
        return [(r[0], tuple(r)[1:]) for r in rows]  # type: ignore[misc]
