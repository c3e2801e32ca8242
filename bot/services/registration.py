"""Signing up, looking up and cancelling registrations."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from bot.event import Event
from bot.services.event_state import EventSource
from bot.services.timezone import default_zone
from bot.storage import Registration, RegistrationData, RegistrationRepo, UserRepo, utcnow

Clock = Callable[[], datetime]


class RegistrationClosed(Exception):
    """Registration is closed: after `registration_closes` or once the event has ended."""


@dataclass(frozen=True, slots=True)
class SignUp:
    registration: Registration
    created: bool
    position: int | None  # place on the waiting list, when waiting


@dataclass(frozen=True, slots=True)
class Cancellation:
    cancelled: Registration | None
    promoted: Registration | None


class RegistrationService:
    def __init__(
        self, repo: RegistrationRepo, users: UserRepo, events: EventSource, clock: Clock = utcnow
    ) -> None:
        self.repo = repo
        self.users = users
        self.events = events
        self.clock = clock

    @property
    def event(self) -> Event:
        """The event in force (`bot.services.event_state`)."""
        return self.events.current

    def is_open(self) -> bool:
        return self.event.registration_open(self.clock())

    async def current(self, user_id: int) -> Registration | None:
        return await self.repo.live(user_id)

    async def position(self, registration: Registration) -> int | None:
        if registration.status != "waiting":
            return None
        return await self.repo.waiting_position(registration)

    async def register(self, user_id: int, data: RegistrationData, language: str) -> SignUp:
        """Store a registration, or return the live one the user already has."""
        if not self.is_open():
            raise RegistrationClosed
        await self.users.ensure(user_id, language)
        user = await self.users.get(user_id)
        registration, created = await self.repo.create(
            user_id, data, language, user.source if user else None, self.event.capacity
        )
        if created and user is not None and user.timezone is None:
            # The country's zone, when all its clocks agree at the session (Senegal, Argentina).
            zone = default_zone(data.country, self.event.start)
            if zone is not None:
                await self.users.set_timezone(user_id, zone)
        return SignUp(registration, created, await self.position(registration))

    async def cancel(self, user_id: int) -> Cancellation:
        """Cancel; the first on the waiting list takes the freed seat (same transaction)."""
        cancelled, promoted = await self.repo.cancel(user_id, self.event.capacity)
        return Cancellation(cancelled, promoted)

    async def counts(self) -> tuple[int, int]:
        """(active, waiting) registrations now."""
        return await self.repo.counts()

    async def fill_free_seats(self) -> list[Registration]:
        """Promote waiting registrants into free seats: after `capacity` was raised, or a seat
        was freed otherwise than by `cancel` (erased data). Nothing once the event has ended."""
        if self.event.has_ended(self.clock()):
            return []
        return await self.repo.fill(self.event.capacity)

    async def country(self, user_id: int) -> str | None:
        """The country of the user's live registration, else of their latest one."""
        live = await self.repo.live(user_id)
        if live is not None:
            return live.data.country
        history = await self.repo.all_for_user(user_id)
        return history[-1].data.country if history else None
