"""The follow-up after the session, and the feedback it asks for.

`follow_up_after` the end of the session, every registrant whose registration is active then
(not the waiting list, not cancelled) gets one message: thanks, the recording, the resources
and "How useful was this webinar for your work?" (1 to 5). It is the delivery "followup" of
each recipient (see `bot.storage.deliveries`), sent like a reminder: claimed only when the
rate limiter lets it go, rebuilt at start-up, never twice. If the bot was down when it fell
due it is sent on return, until `FOLLOW_UP_WINDOW` after the end; later it is recorded as
skipped.

After a rating the person may add a comment (or skip); one rating per person, a new one
replaces it. Only someone the follow-up was sent to can rate.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from pathlib import Path

from bot.countries import country_name
from bot.event import FOLLOW_UP_WINDOW, Event
from bot.i18n import Translator
from bot.services.choices import AFFILIATIONS, label
from bot.services.event_state import EventSource
from bot.services.fanout import CONCURRENCY, Claim, Delivery, Tally, Unclaimed, claim_for, fan_out
from bot.services.reports import StoredTimes, spreadsheet_safe, write_csv
from bot.services.validation import QUESTION_MAX, clean_multiline
from bot.storage import UserRepo
from bot.storage.deliveries import DeliveryRepo, DeliveryStatus, Recipient
from bot.storage.feedback import Comment, ExportRow, FeedbackCounts, FeedbackRepo, FeedbackState

log = logging.getLogger(__name__)

KIND = "followup"
COMMENT_MAX = QUESTION_MAX  # 1,000 characters, like a question to the panel
TOO_LATE = "more than 7 days after the session"
BLOCKED_EARLIER = "blocked the bot earlier"
CHUNK = 1000
RATINGS = range(1, 6)

FEEDBACK_COLUMNS: tuple[str, ...] = (
    "rating",
    "comment",
    "rated_at_utc",
    "rated_at_event_tz",
    "commented_at_utc",
    "language",
    "session_language",
    "affiliation",
    "affiliation_label",
    "country",
    "country_name",
)

#: Writes and sends the follow-up to one recipient, through `deliver` with the `Claim`.
SendFollowUp = Callable[[Recipient, Claim], Awaitable[Delivery]]


class Action(StrEnum):
    OFF = "off"  # follow_up_after = "off"
    SCHEDULE = "schedule"
    NOW = "now"  # fell due while the bot was down, still within the window
    SKIP = "skip"  # past the window


class NotReceived(Exception):
    """A rating from someone the follow-up was not sent to (a stale or forged press)."""


class EmptyComment(Exception):
    """Nothing readable was left after cleaning."""


class CommentTooLong(Exception):
    def __init__(self, length: int) -> None:
        super().__init__(length)
        self.length = length


@dataclass(frozen=True, slots=True)
class FeedbackSummary:
    """The feedback in /stats."""

    responses: int
    average: Decimal | None  # to one decimal, halves rounded up; None without responses
    by_rating: dict[int, int]
    comments: int

    @classmethod
    def of(cls, counts: FeedbackCounts) -> FeedbackSummary:
        average = None
        if counts.responses:
            average = (Decimal(counts.total) / counts.responses).quantize(
                Decimal("0.1"), ROUND_HALF_UP
            )
        return cls(counts.responses, average, counts.by_rating, counts.comments)


class FollowUpService:
    def __init__(
        self,
        events: EventSource,
        deliveries: DeliveryRepo,
        feedback: FeedbackRepo,
        users: UserRepo,
        clock: Callable[[], datetime],
    ) -> None:
        self.events = events
        self.deliveries = deliveries
        self.feedback = feedback
        self.users = users
        self.clock = clock

    @property
    def event(self) -> Event:
        """The event in force (`bot.services.event_state`): /edit may move the session."""
        return self.events.current

    # -- when ------------------------------------------------------------------------------

    @property
    def due(self) -> datetime | None:
        """When the follow-up goes out; None when it is off."""
        if self.event.follow_up_after is None:
            return None
        return self.event.end + self.event.follow_up_after

    @property
    def deadline(self) -> datetime:
        return self.event.end + FOLLOW_UP_WINDOW

    def action(self) -> Action:
        due, now = self.due, self.clock()
        if due is None:
            return Action.OFF
        if now >= self.deadline:
            return Action.SKIP
        return Action.SCHEDULE if now < due else Action.NOW

    def has_gone_out(self) -> bool:
        """Whether ratings may be coming in (cheap: no database), so that typed messages are
        looked at only after the follow-up's time."""
        due = self.due
        return due is not None and self.clock() >= due

    # -- sending ---------------------------------------------------------------------------

    async def recover(self) -> Action:
        """At start-up: reopen the deliveries a crash caught on the wire (they are sent again),
        record everyone as skipped once the window has passed; returns what to do next."""
        interrupted = await self.deliveries.reopen_interrupted(KIND)
        if interrupted:
            log.warning(
                "%d follow-up(s) on the wire at a crash: sent again (may arrive twice)",
                interrupted,
            )
        action = self.action()
        if action is Action.SKIP:
            await self._skip()
        return action

    async def _skip(self) -> int:
        now = self.clock()
        skipped = 0
        for recipient in await self.deliveries.audience("all", KIND):
            if await self.deliveries.record(
                recipient.user_id, KIND, DeliveryStatus.SKIPPED, now, TOO_LATE
            ):
                skipped += 1
        if skipped:
            log.info("Follow-up skipped for %d registrant(s): %s", skipped, TOO_LATE)
        return skipped

    async def run(
        self,
        send: SendFollowUp,
        *,
        should_stop: Callable[[], bool] = lambda: False,
        concurrency: int = CONCURRENCY,
    ) -> Tally:
        """Send the follow-up to every active registrant who has no record of it (the
        database is read now, so a second run sends nothing twice)."""
        tally = Tally()
        action = self.action()
        if action is Action.OFF or action is Action.SCHEDULE:
            return tally  # not (or no longer) due: a job left from before a change
        if action is Action.SKIP:
            tally.counts[DeliveryStatus.SKIPPED] = await self._skip()
            return tally
        recipients = await self.deliveries.audience("all", KIND)

        async def one(recipient: Recipient) -> None:
            status = await self._deliver(recipient, send)
            if status is not None:
                tally.add(status)

        tally.completed = await fan_out(
            recipients, one, should_stop=should_stop, concurrency=concurrency
        )
        log.info(
            "Follow-up: %s%s",
            ", ".join(f"{s.value} {n}" for s, n in tally.counts.items() if n) or "nobody due",
            "" if tally.completed else " (stopped early, resumes at the next start)",
        )
        return tally

    async def _deliver(self, recipient: Recipient, send: SendFollowUp) -> DeliveryStatus | None:
        if recipient.blocked:
            recorded = await self.deliveries.record(
                recipient.user_id, KIND, DeliveryStatus.BLOCKED, self.clock(), BLOCKED_EARLIER
            )
            return DeliveryStatus.BLOCKED if recorded else None
        claim = claim_for(self.deliveries, recipient.user_id, KIND, self.clock)
        try:
            delivery = await send(recipient, claim)
        except Unclaimed:
            return None  # done by another run, or the user erased their data
        await self.deliveries.finish(
            recipient.user_id, KIND, delivery.status, self.clock(), delivery.error
        )
        if delivery.status is DeliveryStatus.BLOCKED:
            await self.users.mark_blocked(recipient.user_id)
        return delivery.status

    # -- answers ---------------------------------------------------------------------------

    async def state(self, user_id: int) -> FeedbackState:
        return await self.feedback.state(user_id, KIND)

    async def rate(self, user_id: int, rating: int) -> None:
        """Record (or change) a rating; NotReceived when the follow-up was not sent to them."""
        if rating not in RATINGS:
            raise ValueError(rating)
        if not await self.feedback.rate(user_id, KIND, rating, self.clock()):
            raise NotReceived

    async def comment(self, user_id: int, text: str) -> bool:
        """Store the comment after a rating; False when none was awaited. EmptyComment or
        CommentTooLong (nothing stored) otherwise."""
        cleaned = clean_multiline(text)
        if not cleaned:
            raise EmptyComment
        if len(cleaned) > COMMENT_MAX:
            raise CommentTooLong(len(cleaned))
        return await self.feedback.comment(user_id, cleaned, self.clock())

    async def skip_comment(self, user_id: int) -> bool:
        return await self.feedback.stop_awaiting(user_id)

    # -- reports ---------------------------------------------------------------------------

    async def summary(self) -> FeedbackSummary:
        return FeedbackSummary.of(await self.feedback.counts())

    async def newest_comments(self, limit: int) -> list[Comment]:
        return await self.feedback.newest_comments(limit)

    async def export(self, t: Translator) -> tuple[Path, int]:
        """Every respondent's rating and comment as a CSV file (the caller deletes it)."""
        times = StoredTimes(self.event.tz)

        def to_row(row: ExportRow) -> list[str]:
            rating, comment, rated_at, commented_at, language, session, affiliation, country = row
            rated_utc, rated_zone = times(rated_at)
            return [
                str(rating),
                spreadsheet_safe(comment or ""),
                rated_utc,
                rated_zone,
                times(commented_at)[0] if commented_at else "",
                language,
                session or "",
                affiliation or "",
                t._(label(AFFILIATIONS, affiliation)) if affiliation else "",
                country or "",
                country_name(country, t.lang) if country else "",
            ]

        async def batches() -> AsyncIterator[list[ExportRow]]:
            after = 0
            while page := await self.feedback.export_rows(after, CHUNK):
                after = page[-1][0]
                yield [row for _, row in page]

        return await write_csv(FEEDBACK_COLUMNS, batches(), to_row, "feedback-")
