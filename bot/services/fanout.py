"""What services need to send one message to many people, without touching Telegram."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from bot.storage.deliveries import DeliveryStatus

T = TypeVar("T")

#: Messages in flight at once. Telegram answers in ~0.1–0.3 s, so 16 keep 30/s busy; the rate
#: limiter does the pacing.
CONCURRENCY = 16


@dataclass(frozen=True, slots=True)
class Delivery:
    """What happened to one message: sent, blocked (user unreachable) or failed."""

    status: DeliveryStatus
    error: str | None = None
    message_id: int | None = None


class Sender(Protocol):
    """Sends on the bot's behalf (implemented by `bot.sending.Outbox`)."""

    async def send(self, chat_id: int, text: str) -> Delivery: ...

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
