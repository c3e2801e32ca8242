"""Promotion notices: telling someone promoted from the waiting list, once, across crashes.

The notice to registration N is the delivery "promoted:N" (see `bot.storage.deliveries`). Like
a broadcast message it is claimed only when the rate limiter lets it go (`bot.services.fanout`),
so a kill leaves one of two states, both settled by `recover` at the next start:

* no row: the notice never left (the kill came while it waited for its turn, or between the
  promotion and the send). It is sent after the restart.
* 'pending': it was under way and may have arrived. It is recorded as failed ("interrupted")
  and never sent again: a missed notice is better than a duplicate.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from bot.event import Event
from bot.services.event_state import EventSource
from bot.services.fanout import Delivery, Sender, Unclaimed, claim_for
from bot.storage import Registration, RegistrationRepo, utcnow
from bot.storage.deliveries import DeliveryRepo, DeliveryStatus

log = logging.getLogger(__name__)

KIND_PREFIX = "promoted:"
EVENT_ENDED = "event ended"  # why a notice left unsent is no longer sent


def notice_kind(registration_id: int) -> str:
    """The `deliveries.kind` of the promotion notice of a registration."""
    return f"{KIND_PREFIX}{registration_id}"


class PromotionService:
    def __init__(
        self,
        registrations: RegistrationRepo,
        deliveries: DeliveryRepo,
        events: EventSource,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.registrations = registrations
        self.deliveries = deliveries
        self.events = events
        self.clock = clock

    @property
    def event(self) -> Event:
        """The event in force (`bot.services.event_state`)."""
        return self.events.current

    async def recover(self) -> list[Registration]:
        """At start-up: close the notices a crash interrupted; return the promoted registrants
        never told, first promoted first (once the event has ended, they are recorded as
        skipped instead: the notice would only confuse)."""
        now = self.clock()
        interrupted = await self.deliveries.close_interrupted(KIND_PREFIX, now)
        if interrupted:
            log.warning(
                "%d promotion notice(s) interrupted by a restart recorded as failed", interrupted
            )
        untold = await self.registrations.promoted_without_delivery(KIND_PREFIX)
        if not self.event.has_ended(now):
            if untold:
                log.info("%d promotion notice(s) not sent before a restart: sending", len(untold))
            return untold
        for registration in untold:
            await self.deliveries.record(
                registration.user_id,
                notice_kind(registration.id),
                DeliveryStatus.SKIPPED,
                now,
                EVENT_ENDED,
            )
        return []

    async def notify(
        self, registration: Registration, text: str, sender: Sender
    ) -> Delivery | None:
        """Send `text` as the promotion notice of `registration` and record the outcome; None
        when it was sent (or is being sent) already, or the user erased their data."""
        user_id, kind = registration.user_id, notice_kind(registration.id)
        claim = claim_for(self.deliveries, user_id, kind, self.clock)
        try:
            delivery = await sender.send(user_id, text, claim)
        except Unclaimed:
            return None
        await self.deliveries.finish(user_id, kind, delivery.status, self.clock(), delivery.error)
        return delivery
