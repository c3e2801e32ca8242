"""Telling registrants about a change of the event (a new time, a new access link), once.

Sent and recorded like a broadcast (`bot.services.fanout`): the notice of change N to a
registrant is the delivery "event-change:N", claimed only when the rate limiter lets it go, so
a restart resumes with whoever has no row and nobody is told twice. Who is told: for a new
time, every active and waiting registrant; for a new access link, the active ones. Only
registrations made before the change: later ones were shown the new values when they signed
up.

A new time's notice is followed, once sent, by a new calendar file, the delivery
"event-change:N:calendar", recorded the same way. A kill leaves it in one of these states,
settled at the next start (`recover`): on the wire ('pending'): the row is deleted and the
file sent again; the notice sent and no file row: the file is sent. Once the session has
started, such a file is recorded as skipped instead; so is one whose change a later change of
the time superseded (that change's notice brings its own file), or whose recipient is no
longer registered.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from bot.services.event_state import EventSource, Field, value_of
from bot.services.fanout import CONCURRENCY, Claim, Delivery, Tally, Unclaimed, claim_for, fan_out
from bot.storage import RegistrationRepo, UserRepo
from bot.storage.deliveries import DeliveryRepo, DeliveryStatus, Recipient
from bot.storage.event_changes import CALENDAR_SUFFIX, KIND_PREFIX, EventChangeRepo, StoredChange

log = logging.getLogger(__name__)

BLOCKED_EARLIER = "blocked the bot earlier"
# Why a calendar file left unsent at a crash is not sent at the next start.
SESSION_STARTED = "session started"
SUPERSEDED = "superseded by a later change"
NOT_REGISTERED = "no longer registered"

#: Writes and sends the notice of a change to one recipient, through `Sender.send` with the
#: `Claim`.
SendNotice = Callable[[StoredChange, Recipient, Claim], Awaitable[Delivery]]
#: Builds and sends the new calendar file to (user id, language), through
#: `Sender.send_document` with the `Claim`.
SendFile = Callable[[int, str, Claim], Awaitable[Delivery]]


@dataclass(frozen=True, slots=True)
class MissingFile:
    """A calendar file a crash kept from following its notice: sent at start-up."""

    change: StoredChange
    user_id: int
    language: str


@dataclass(frozen=True, slots=True)
class Recovered:
    """What start-up resumes: the notices still to send, and the files that did not follow."""

    changes: list[StoredChange]
    files: list[MissingFile]


def audience(field: str) -> tuple[str, ...]:
    """Registration statuses told of a change of `field`."""
    if field == Field.SCHEDULE:
        return ("active", "waiting")
    return ("active",)


class ChangeNotices:
    def __init__(
        self,
        events: EventSource,
        changes: EventChangeRepo,
        deliveries: DeliveryRepo,
        users: UserRepo,
        registrations: RegistrationRepo,
        clock: Callable[[], datetime],
    ) -> None:
        self.events = events
        self.changes = changes
        self.deliveries = deliveries
        self.users = users
        self.registrations = registrations
        self.clock = clock

    async def to_tell(self, field: Field) -> int:
        """How many registrants the notice of a change of `field` would reach now."""
        return await self.changes.count(audience(field))

    async def recover(self) -> Recovered:
        """At start-up: reopen the notices and files a crash caught on the wire (they are sent
        again); the changes still to announce, and the calendar files that did not follow a
        notice sent (recorded as skipped instead once the session has started)."""
        interrupted = await self.deliveries.reopen_interrupted(KIND_PREFIX)
        if interrupted:
            log.warning(
                "%d change notice(s) or file(s) on the wire at a crash: sent again (may arrive "
                "twice)",
                interrupted,
            )
        files = await self._files_missing()
        if files:
            log.info("%d calendar file(s) did not follow a change notice: sending", len(files))
        return Recovered(await self.changes.pending(), files)

    async def _files_missing(self) -> list[MissingFile]:
        """The calendar files to send after a notice of a new time sent; those not worth
        sending any more are recorded as skipped."""
        now = self.clock()
        started = self.events.current.has_started(now)
        changes: dict[int, StoredChange | None] = {}
        missing = []
        for user_id, kind in await self.deliveries.sent_without(KIND_PREFIX, CALENDAR_SUFFIX):
            change_id = int(kind.removeprefix(KIND_PREFIX))
            if change_id not in changes:
                changes[change_id] = await self.changes.get(change_id)
            change = changes[change_id]
            if change is None or change.field != Field.SCHEDULE:
                continue  # a new link's notice: no file follows it
            user = await self.users.get(user_id)
            if started:
                why = SESSION_STARTED
            elif change.announce == "superseded":
                why = SUPERSEDED
            elif user is None or await self.registrations.live(user_id) is None:
                why = NOT_REGISTERED
            else:
                missing.append(MissingFile(change, user_id, user.language))
                continue
            await self.deliveries.record(
                user_id, change.calendar_kind, DeliveryStatus.SKIPPED, now, why
            )
        return missing

    async def send_files(
        self,
        files: list[MissingFile],
        send: SendFile,
        *,
        should_stop: Callable[[], bool] = lambda: False,
        concurrency: int = CONCURRENCY,
    ) -> bool:
        """Send the calendar files `recover` found missing; whether all were done."""

        async def one(file: MissingFile) -> None:
            await self._deliver_file(file.change, file.user_id, file.language, send)

        return await fan_out(files, one, should_stop=should_stop, concurrency=concurrency)

    async def run(
        self,
        change_id: int,
        send: SendNotice,
        send_file: SendFile,
        *,
        should_stop: Callable[[], bool] = lambda: False,
        concurrency: int = CONCURRENCY,
    ) -> Tally | None:
        """Send the notice of change `change_id` to whoever has not had it, each followed by
        the new calendar file for a new time; None when it is not pending (done, or superseded
        by a later change of the same field)."""
        change = await self.changes.get(change_id)
        if change is None or change.announce != "pending":
            return None
        recipients = await self.changes.recipients(change, audience(change.field))
        log.info("Change #%d: telling %d registrant(s)", change.id, len(recipients))
        tally = Tally()

        async def one(recipient: Recipient) -> None:
            status = await self._deliver(change, recipient, send)
            if status is DeliveryStatus.SENT and change.field == Field.SCHEDULE:
                await self._deliver_file(change, recipient.user_id, recipient.language, send_file)
            if status is not None:
                tally.add(status)

        def stop() -> bool:  # a later change of the same field supersedes this notice
            return should_stop() or value_of(self.events.current, field) != change.value

        field = Field(change.field)

        tally.completed = await fan_out(recipients, one, should_stop=stop, concurrency=concurrency)
        if tally.completed:
            await self.changes.finish(change.id)
        log.info(
            "Change #%d notice: %s%s",
            change.id,
            ", ".join(f"{s.value} {n}" for s, n in tally.counts.items() if n),
            "" if tally.completed else " (stopped early)",
        )
        return tally

    async def _deliver(
        self, change: StoredChange, recipient: Recipient, send: SendNotice
    ) -> DeliveryStatus | None:
        kind = change.kind
        if recipient.blocked:
            recorded = await self.deliveries.record(
                recipient.user_id, kind, DeliveryStatus.BLOCKED, self.clock(), BLOCKED_EARLIER
            )
            return DeliveryStatus.BLOCKED if recorded else None
        claim = claim_for(self.deliveries, recipient.user_id, kind, self.clock)
        try:
            delivery = await send(change, recipient, claim)
        except Unclaimed:
            return None
        await self.deliveries.finish(
            recipient.user_id, kind, delivery.status, self.clock(), delivery.error
        )
        if delivery.status is DeliveryStatus.BLOCKED:
            await self.users.mark_blocked(recipient.user_id)
        return delivery.status

    async def _deliver_file(
        self, change: StoredChange, user_id: int, language: str, send: SendFile
    ) -> None:
        """Send and record the calendar file after the notice of `change` to `user_id`; a
        failure is logged (the notice, sent, is what counts in the tally)."""
        kind = change.calendar_kind
        try:
            claim = claim_for(self.deliveries, user_id, kind, self.clock)
            delivery = await send(user_id, language, claim)
        except Unclaimed:
            return
        await self.deliveries.finish(user_id, kind, delivery.status, self.clock(), delivery.error)
        if delivery.status is not DeliveryStatus.SENT:
            log.warning(
                "Change #%d: a calendar file was not delivered: %s", change.id, delivery.error
            )
