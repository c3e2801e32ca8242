"""Promotion notices: telling someone promoted from the waiting list, once, across crashes.

The notice to registration N is the delivery "promoted:N", and the calendar file that follows
it the delivery "promoted:N:calendar" (see `bot.storage.deliveries`). Each is claimed only
while its request is on the wire (`bot.services.fanout`), so a kill leaves one of these
states, all settled at the next start (`recover`):

* no notice row: the notice never left (the kill came while it waited for its turn, or
  between the promotion and the send). Notice and file are sent after the restart.
* a notice row 'pending': it was on the wire. The row is deleted and both are sent again (the
  notice may arrive twice; nobody is left untold).
* the notice sent, no calendar row (or a 'pending' one): the file is sent after the restart.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime

from bot.event import Event
from bot.services.event_state import EventSource
from bot.services.fanout import Claim, Delivery, Document, Sender, Unclaimed, claim_for
from bot.storage import Registration, RegistrationRepo, utcnow
from bot.storage.deliveries import DeliveryRepo, DeliveryStatus

log = logging.getLogger(__name__)

KIND_PREFIX = "promoted:"
CALENDAR_SUFFIX = ":calendar"
EVENT_ENDED = "event ended"  # why a notice left unsent is no longer sent


def notice_kind(registration_id: int) -> str:
    """The `deliveries.kind` of the promotion notice of a registration."""
    return f"{KIND_PREFIX}{registration_id}"


def calendar_kind(registration_id: int) -> str:
    """The `deliveries.kind` of the calendar file sent after the promotion notice."""
    return notice_kind(registration_id) + CALENDAR_SUFFIX


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
        """At start-up: reopen what a crash caught on the wire; return the promoted registrants
        never told, then those told whose calendar file did not follow, first promoted first
        (once the event has ended, what is left is recorded as skipped instead: it would only
        confuse)."""
        now = self.clock()
        interrupted = await self.deliveries.reopen_interrupted(KIND_PREFIX)
        if interrupted:
            log.warning(
                "%d promotion message(s) on the wire at a crash: sent again (may arrive twice)",
                interrupted,
            )
        untold = await self.registrations.promoted_without_delivery(KIND_PREFIX)
        without_file = await self._told_without_calendar({r.id for r in untold})
        if not self.event.has_ended(now):
            if untold or without_file:
                log.info(
                    "%d promotion notice(s) and %d calendar file(s) not sent before a restart: "
                    "sending",
                    len(untold),
                    len(without_file),
                )
            return untold + without_file
        for registration in untold:
            await self.deliveries.record(
                registration.user_id,
                notice_kind(registration.id),
                DeliveryStatus.SKIPPED,
                now,
                EVENT_ENDED,
            )
        for registration in without_file:
            await self.deliveries.record(
                registration.user_id,
                calendar_kind(registration.id),
                DeliveryStatus.SKIPPED,
                now,
                EVENT_ENDED,
            )
        return []

    async def _told_without_calendar(self, untold: set[int]) -> list[Registration]:
        """Active promoted registrations whose notice was sent and whose file has no row."""
        found = []
        for user_id, kind in await self.deliveries.sent_without(KIND_PREFIX, CALENDAR_SUFFIX):
            registration = await self.registrations.live(user_id)
            if (
                registration is not None
                and registration.status == "active"
                and registration.id not in untold
                and notice_kind(registration.id) == kind
            ):
                found.append(registration)
        return sorted(found, key=lambda r: r.id)

    async def notify(
        self, registration: Registration, text: str, calendar: Document, sender: Sender
    ) -> Delivery | None:
        """Send `text` as the promotion notice of `registration`, then, once the notice is
        sent, `calendar`; each recorded. Returns how the notice went, None when it was sent
        (or is being sent) already, or the user erased their data; the file follows a notice
        sent earlier whose file is missing."""
        user_id = registration.user_id
        notice = await self._one(
            user_id,
            notice_kind(registration.id),
            lambda claim: sender.send(user_id, text, claim),
        )
        if await self.deliveries.status(user_id, notice_kind(registration.id)) is (
            DeliveryStatus.SENT
        ):
            file = await self._one(
                user_id,
                calendar_kind(registration.id),
                lambda claim: sender.send_document(user_id, calendar, claim),
            )
            if file is not None and file.status is not DeliveryStatus.SENT:
                log.warning(
                    "Could not send registration %d its calendar file: %s",
                    registration.id,
                    file.error,
                )
        return notice

    async def _one(
        self, user_id: int, kind: str, send: Callable[[Claim], Awaitable[Delivery]]
    ) -> Delivery | None:
        """Send and record delivery `kind`; None when it is not ours to send."""
        try:
            delivery = await send(claim_for(self.deliveries, user_id, kind, self.clock))
        except Unclaimed:
            return None
        await self.deliveries.finish(user_id, kind, delivery.status, self.clock(), delivery.error)
        return delivery
