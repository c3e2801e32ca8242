"""Reminders before the session: who gets which, when, and what happened.

Each offset in `reminders_before` is one reminder kind ("reminder:1h"). A registrant gets it
when their registration is active at the reminder's time and was made before that time. The
waiting list gets nothing while waiting; someone promoted before a reminder's time gets it.

Decisions about time use the injected clock. At start-up, `plan()` says for each reminder:
schedule it (still ahead), send it now (fell due while the bot was down, session not started,
and no later reminder is due too), or record it as skipped (the session has started, or a
later reminder supersedes it: nobody needs "tomorrow" and "in one hour" at once).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from bot.event import Event, format_offset
from bot.services.event_state import EventSource
from bot.services.fanout import CONCURRENCY, Claim, Delivery, Tally, Unclaimed, claim_for, fan_out
from bot.storage import UserRepo
from bot.storage.deliveries import DeliveryRepo, DeliveryStatus, Recipient

log = logging.getLogger(__name__)

KIND_PREFIX = "reminder:"
SESSION_STARTED = "session started"
SUPERSEDED = "a later reminder was due"
BLOCKED_EARLIER = "blocked the bot earlier"


class Action(StrEnum):
    SCHEDULE = "schedule"
    NOW = "now"
    SKIP = "skip"


@dataclass(frozen=True, slots=True)
class ReminderPlan:
    offset: timedelta
    kind: str
    due: datetime
    action: Action
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class ReminderInfo:
    """What the message for one reminder needs besides the recipient."""

    offset: timedelta
    last: bool  # the last reminder before the session: tells how to pick interpretation


#: Writes and sends one reminder to one recipient, through `Sender.send` with the `Claim`.
SendReminder = Callable[[Recipient, ReminderInfo, Claim], Awaitable[Delivery]]


def reminder_kind(offset: timedelta, start: datetime | None = None) -> str:
    """ "reminder:1h"; for a session moved from the file's time (/edit), the start in force
    too ("reminder:1h@20300613T1400Z"): each offset is sent once for each time in force, and
    deliveries recorded for the file's time keep their key."""
    kind = KIND_PREFIX + format_offset(offset)
    if start is not None:
        kind += "@" + start.astimezone(UTC).strftime("%Y%m%dT%H%MZ")
    return kind


class ReminderService:
    def __init__(
        self,
        events: EventSource,
        deliveries: DeliveryRepo,
        users: UserRepo,
        clock: Callable[[], datetime],
    ) -> None:
        self.events = events
        self.deliveries = deliveries
        self.users = users
        self.clock = clock

    @property
    def event(self) -> Event:
        """The event in force (`bot.services.event_state`)."""
        return self.events.current

    def kind(self, offset: timedelta) -> str:
        """The delivery kind of the reminder `offset` before the start in force."""
        start = self.event.start
        return reminder_kind(offset, None if start == self.events.base.start else start)

    def due(self, offset: timedelta) -> datetime:
        return self.event.start - offset

    def _decide(self, offset: timedelta, now: datetime) -> tuple[Action, str | None]:
        if self.event.has_started(now):
            return Action.SKIP, SESSION_STARTED
        if self.due(offset) > now:
            return Action.SCHEDULE, None
        later_due = [o for o in self.event.reminders_before if o < offset and self.due(o) <= now]
        if later_due:
            return Action.SKIP, SUPERSEDED
        return Action.NOW, None

    def plan(self) -> list[ReminderPlan]:
        """What to do with each reminder at start-up (see the module docstring)."""
        now = self.clock()
        plans = []
        for offset in self.event.reminders_before:
            action, reason = self._decide(offset, now)
            plans.append(ReminderPlan(offset, self.kind(offset), self.due(offset), action, reason))
        return plans

    async def recover(self) -> list[ReminderPlan]:
        """At start-up: reopen the deliveries a crash caught on the wire (they are sent
        again), record the skipped reminders, and return the plan for the rest."""
        interrupted = await self.deliveries.reopen_interrupted(KIND_PREFIX)
        if interrupted:
            log.warning(
                "%d reminder(s) on the wire at a crash: sent again (may arrive twice)", interrupted
            )
        return await self.settle()

    async def settle(self) -> list[ReminderPlan]:
        """Record the skipped reminders and return the plan for the rest: at start-up, and
        when the session is moved (its reminders are then those of the new time)."""
        plans = self.plan()
        for plan in plans:
            if plan.action is Action.SKIP:
                await self._skip(plan.offset, plan.reason or SESSION_STARTED)
        return plans

    async def _skip(self, offset: timedelta, reason: str) -> int:
        kind = self.kind(offset)
        now = self.clock()
        skipped = 0
        for recipient in await self.deliveries.reminder_recipients(kind, self.due(offset)):
            if await self.deliveries.record(
                recipient.user_id, kind, DeliveryStatus.SKIPPED, now, reason
            ):
                skipped += 1
        if skipped:
            log.info("Reminder %s skipped for %d registrant(s): %s", kind, skipped, reason)
        return skipped

    async def run(
        self,
        offset: timedelta,
        send: SendReminder,
        *,
        should_stop: Callable[[], bool] = lambda: False,
        concurrency: int = CONCURRENCY,
    ) -> Tally:
        """Send the reminder for `offset` to everyone due who has not had it (the database
        is read now, so it may run again safely: nobody gets it twice)."""
        kind = self.kind(offset)
        start = self.event.start
        tally = Tally()
        now = self.clock()
        action, reason = self._decide(offset, now)
        if action is Action.SKIP:
            tally.counts[DeliveryStatus.SKIPPED] = await self._skip(offset, reason or "")
            return tally
        info = ReminderInfo(offset, offset == min(self.event.reminders_before))
        recipients = await self.deliveries.reminder_recipients(kind, self.due(offset))

        async def one(recipient: Recipient) -> None:
            status = await self._deliver(kind, recipient, info, send)
            if status is not None:
                tally.add(status)

        def stop() -> bool:  # the session was moved meanwhile: its reminders are rebuilt
            return should_stop() or self.event.start != start

        tally.completed = await fan_out(recipients, one, should_stop=stop, concurrency=concurrency)
        log.info(
            "Reminder %s: %s%s",
            kind,
            ", ".join(f"{s.value} {n}" for s, n in tally.counts.items() if n),
            "" if tally.completed else " (stopped early, resumes at the next start)",
        )
        return tally

    async def _deliver(
        self, kind: str, recipient: Recipient, info: ReminderInfo, send: SendReminder
    ) -> DeliveryStatus | None:
        now = self.clock()
        if recipient.blocked:
            recorded = await self.deliveries.record(
                recipient.user_id, kind, DeliveryStatus.BLOCKED, now, BLOCKED_EARLIER
            )
            return DeliveryStatus.BLOCKED if recorded else None
        claim = claim_for(self.deliveries, recipient.user_id, kind, self.clock)
        try:
            delivery = await send(recipient, info, claim)
        except Unclaimed:
            return None  # done by another run, or the user erased their data
        await self.deliveries.finish(
            recipient.user_id, kind, delivery.status, self.clock(), delivery.error
        )
        if delivery.status is DeliveryStatus.BLOCKED:
            await self.users.mark_blocked(recipient.user_id)
        return delivery.status
