"""What services need to send one message to many people, without touching Telegram.

A delivery is claimed (its 'pending' row written, see `bot.storage.deliveries`) by the
`Claim` handed to `Sender.send`, which runs it only once the rate limiter lets the message
go. Deliveries still waiting for their turn when the bot is killed are therefore not claimed
yet, and are sent after the restart; only the messages really under way become ambiguous.
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

#: Records a delivery as being sent, just before its message leaves; raises `Unclaimed` when
#: it must not be sent.
Claim = Callable[[], Awaitable[None]]


class Unclaimed(Exception):
    """Not sent: another run has this delivery already, or the recipient erased their data."""


def claim_for(
    deliveries: DeliveryRepo, user_id: int, kind: str, clock: Callable[[], datetime]
) -> Claim:
    """The `Claim` of delivery `kind` to `user_id`: its 'pending' row, written when it runs."""

    async def write() -> None:
        if not await deliveries.claim(user_id, kind, clock()):
            raise Unclaimed

    return write


@dataclass(frozen=True, slots=True)
class Delivery:
    """What happened to one message: sent, blocked (user unreachable) or failed."""

    status: DeliveryStatus
    error: str | None = None
    message_id: int | None = None


class Sender(Protocol):
    """Sends on the bot's behalf (implemented by `bot.sending.Outbox`)."""

    async def send(self, chat_id: int, text: str, claim: Claim | None = None) -> Delivery:
        """Send `text` to `chat_id`; `claim` runs once, just before the message leaves (its
        `Unclaimed` propagates, and nothing is sent)."""
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
