"""What services need to send one message to many people, without touching Telegram.

A delivery is claimed (its 'pending' row written, see `bot.storage.deliveries`) by the
`Claim` handed to `Sender.send`, which takes it only once the rate limiter lets the message
go, and gives it back when Telegram's answer proves the message was not delivered (a 429,
a 5xx), before waiting to try again. Deliveries waiting for their turn, or waiting out a
refusal, when the bot is killed are therefore not claimed, and are sent after the restart;
only the messages on the wire at the kill are ambiguous (they are sent again too).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, TypeVar

from bot.storage.deliveries import DeliveryRepo, DeliveryStatus

T = TypeVar("T")

#: Deliveries under way at once, most of them waiting for their slot in the rate limiter
#: (which does the pacing). Telegram answers in ~0.1–0.3 s, so 16 keep 30/s busy.
CONCURRENCY = 16


class Unclaimed(Exception):
    """Not sent: another run has this delivery already, or the recipient erased their data."""


@dataclass(eq=False)
class Claim:
    """The right to send delivery `kind` to `user_id`: held from just before its message
    leaves until the outcome is recorded, or until an answer proves it was not delivered."""

    deliveries: DeliveryRepo
    user_id: int
    kind: str
    clock: Callable[[], datetime]
    held: bool = False

    async def take(self) -> None:
        """Write the 'pending' row (no-op when held); `Unclaimed` when the delivery is
        someone else's, or the recipient is gone."""
        if self.held:
            return
        if not await self.deliveries.claim(self.user_id, self.kind, self.clock()):
            raise Unclaimed
        self.held = True

    async def release(self) -> None:
        """Telegram refused the message: delete the 'pending' row, the delivery is to do."""
        if self.held:
            await self.deliveries.release(self.user_id, self.kind)
            self.held = False


def claim_for(
    deliveries: DeliveryRepo, user_id: int, kind: str, clock: Callable[[], datetime]
) -> Claim:
    """The `Claim` of delivery `kind` to `user_id`, for `Sender.send` to take at its turn."""
    return Claim(deliveries, user_id, kind, clock)


@dataclass(frozen=True, slots=True)
class Document:
    """A file to send (the calendar file), with its caption (HTML)."""

    data: bytes
    filename: str
    caption: str


@dataclass(frozen=True, slots=True)
class Delivery:
    """What happened to one message: sent, blocked (user unreachable) or failed."""

    status: DeliveryStatus
    error: str | None = None
    message_id: int | None = None


class Sender(Protocol):
    """Sends on the bot's behalf (implemented by `bot.sending.Outbox`)."""

    async def send(self, chat_id: int, text: str, claim: Claim | None = None) -> Delivery:
        """Send `text` to `chat_id`; `claim` is taken just before the message leaves and given
        back when Telegram refuses it (its `Unclaimed` propagates, and nothing is sent)."""
        ...

    async def send_document(
        self, chat_id: int, document: Document, claim: Claim | None = None
    ) -> Delivery:
        """Like `send`, for a file."""
        ...

    async def edit(self, chat_id: int, message_id: int, text: str) -> bool: ...


@dataclass
class Tally:
    """Outcomes of one run over recipients."""

    counts: dict[DeliveryStatus, int] = field(
        default_factory=lambda: dict.fromkeys(DeliveryStatus, 0)
    )
    completed: bool = True  # False when the run stopped early (the bot is shutting down)

    def add(self, status: DeliveryStatus) -> None:
        self.counts[status] += 1


async def fan_out(
    items: Iterable[T],
    work: Callable[[T], Awaitable[None]],
    *,
    should_stop: Callable[[], bool] = lambda: False,
    concurrency: int = CONCURRENCY,
) -> bool:
    """`work(item)` for every item, at most `concurrency` at a time; no new item is started
    once `should_stop()` is true. Returns whether every item was done."""
    iterator = iter(items)
    stopped = False

    async def worker() -> None:
        nonlocal stopped
        for item in iterator:  # shared: each item goes to exactly one worker
            if should_stop():
                stopped = True
                return
            await work(item)

    async with asyncio.TaskGroup() as group:
        for _ in range(max(1, concurrency)):
            group.create_task(worker())
    return not stopped
