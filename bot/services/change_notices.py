"""Telling registrants about a change of the event (a new time, a new access link), once.

Sent and recorded like a broadcast (`bot.services.fanout`): the notice of change N to a
registrant is the delivery "event-change:N", claimed only when the rate limiter lets it go, so
a restart resumes with whoever has no row and nobody is told twice. Who is told: for a new
time, every active and waiting registrant; for a new access link, the active ones. Only
registrations made before the change: later ones were shown the new values when they signed
up.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime

from bot.services.event_state import EventSource, Field, value_of
from bot.services.fanout import CONCURRENCY, Claim, Delivery, Tally, Unclaimed, claim_for, fan_out
from bot.storage import UserRepo
from bot.storage.deliveries import DeliveryRepo, DeliveryStatus, Recipient
from bot.storage.event_changes import KIND_PREFIX, EventChangeRepo, StoredChange

log = logging.getLogger(__name__)

BLOCKED_EARLIER = "blocked the bot earlier"

#: Writes and sends the notice of a change to one recipient, through `Sender.send` with the
#: `Claim`.
SendNotice = Callable[[StoredChange, Recipient, Claim], Awaitable[Delivery]]


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
        clock: Callable[[], datetime],
    ) -> None:
        self.events = events
        self.changes = changes
        self.deliveries = deliveries
        self.users = users
        self.clock = clock

    async def to_tell(self, field: Field) -> int:
        """How many registrants the notice of a change of `field` would reach now."""
        return await self.changes.count(audience(field))

    async def recover(self) -> list[StoredChange]:
        """At start-up: reopen the notices a crash caught on the wire (they are sent again);
        the changes still to announce."""
        interrupted = await self.deliveries.reopen_interrupted(KIND_PREFIX)
        if interrupted:
            log.warning(
                "%d change notice(s) on the wire at a crash: sent again (may arrive twice)",
                interrupted,
            )
        return await self.changes.pending()

    async def run(
        self,
        change_id: int,
        send: SendNotice,
        *,
        should_stop: Callable[[], bool] = lambda: False,
        concurrency: int = CONCURRENCY,
    ) -> Tally | None:
        """Send the notice of change `change_id` to whoever has not had it; None when it is not
        pending (done, or superseded by a later change of the same field)."""
        change = await self.changes.get(change_id)
        if change is None or change.announce != "pending":
            return None
        recipients = await self.changes.recipients(change, audience(change.field))
        log.info("Change #%d: telling %d registrant(s)", change.id, len(recipients))
        tally = Tally()

        async def one(recipient: Recipient) -> None:
            status = await self._deliver(change, recipient, send)
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
