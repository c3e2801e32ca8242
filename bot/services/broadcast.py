"""Broadcasts by the organisers: audiences, one at a time, sent and recorded recipient by
recipient so that a restart resumes where it stopped: nobody is missed, and only a message
on the wire at a crash can arrive twice (see `bot.storage.deliveries`).

The recipients are read when sending starts (and again when it resumes): whoever is in the
audience then and has no delivery row for this broadcast yet. Someone who registers while it
runs may therefore get it too; someone who cancels before their turn does not.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from bot.i18n import DEFAULT_LANGUAGE, LANGUAGES
from bot.services.fanout import CONCURRENCY, Sender, Unclaimed, claim_for, fan_out
from bot.storage import UserRepo
from bot.storage.broadcasts import Broadcast, BroadcastRepo
from bot.storage.deliveries import DeliveryRepo, DeliveryStatus, Recipient

log = logging.getLogger(__name__)

KIND_PREFIX = "broadcast:"
ONE_TEXT = "*"  # key of `Broadcast.texts` when everyone gets the same text
BLOCKED_EARLIER = "blocked the bot earlier"
AUDIENCES = ("all", *(f"lang:{lang}" for lang in LANGUAGES), "waiting")

#: Seconds between two edits of the progress message.
PROGRESS_EVERY = 3.0


@dataclass(frozen=True, slots=True)
class Progress:
    broadcast: Broadcast
    total: int
    sent: int
    blocked: int
    failed: int
    finished: bool = False

    @property
    def done(self) -> int:
        return self.sent + self.blocked + self.failed


OnProgress = Callable[[Progress], Awaitable[None]]


class AlreadyRunning(Exception):
    """Another broadcast is being sent; one at a time."""


def text_for(broadcast: Broadcast, language: str) -> str:
    """The text a recipient reading `language` gets (English, then any, when missing)."""
    texts = broadcast.texts
    for key in (ONE_TEXT, language, DEFAULT_LANGUAGE):
        if key in texts:
            return texts[key]
    return next(iter(texts.values()))


class BroadcastService:
    def __init__(
        self,
        repo: BroadcastRepo,
        deliveries: DeliveryRepo,
        users: UserRepo,
        clock: Callable[[], datetime],
    ) -> None:
        self.repo = repo
        self.deliveries = deliveries
        self.users = users
        self.clock = clock

    async def running(self) -> Broadcast | None:
        return await self.repo.running()

    async def get(self, broadcast_id: int) -> Broadcast | None:
        return await self.repo.get(broadcast_id)

    async def audience_sizes(self) -> dict[str, int]:
        """Recipients of each audience now."""
        return {audience: len(await self.deliveries.audience(audience)) for audience in AUDIENCES}

    async def languages(self, audience: str) -> Counter[str]:
        """Recipients of `audience` by language."""
        return Counter(r.language for r in await self.deliveries.audience(audience))

    async def create(self, admin_id: int, audience: str, texts: dict[str, str]) -> Broadcast:
        if audience not in AUDIENCES:
            raise ValueError(audience)
        broadcast = await self.repo.create(admin_id, audience, texts, self.clock())
        if broadcast is None:
            raise AlreadyRunning
        log.info("Broadcast %d created for audience %s", broadcast.id, audience)
        return broadcast

    async def set_progress_message(self, broadcast_id: int, chat_id: int, message_id: int) -> None:
        await self.repo.set_progress_message(broadcast_id, chat_id, message_id)

    async def recover(self) -> Broadcast | None:
        """At start-up: reopen the deliveries a crash caught on the wire (they are sent again);
        the broadcast to resume, if any."""
        interrupted = await self.deliveries.reopen_interrupted(KIND_PREFIX)
        if interrupted:
            log.warning(
                "%d broadcast message(s) on the wire at a crash: sent again (may arrive twice)",
                interrupted,
            )
        return await self.repo.running()

    async def progress(self, broadcast: Broadcast, remaining: int, finished: bool) -> Progress:
        counts = await self.deliveries.counts(broadcast.kind)
        recorded = sum(counts.values())
        return Progress(
            broadcast,
            total=recorded + remaining,
            sent=counts[DeliveryStatus.SENT],
            blocked=counts[DeliveryStatus.BLOCKED],
            failed=counts[DeliveryStatus.FAILED],
            finished=finished,
        )

    async def run(
        self,
        broadcast_id: int,
        sender: Sender,
        on_progress: OnProgress,
        *,
        should_stop: Callable[[], bool] = lambda: False,
        concurrency: int = CONCURRENCY,
        progress_every: float = PROGRESS_EVERY,
    ) -> Progress | None:
        """Send broadcast `broadcast_id` to whoever has not had it; the final progress, or
        None when it stopped early (it resumes at the next start) or is not running."""
        broadcast = await self.repo.get(broadcast_id)
        if broadcast is None or broadcast.status != "running":
            return None
        recipients = await self.deliveries.audience(broadcast.audience, broadcast.kind)
        remaining = len(recipients)
        log.info("Broadcast %d: sending to %d recipient(s)", broadcast.id, remaining)
        last_report = time.monotonic()

        async def one(recipient: Recipient) -> None:
            nonlocal remaining, last_report
            await self._deliver(broadcast, recipient, sender)
            remaining -= 1
            if time.monotonic() - last_report >= progress_every:
                last_report = time.monotonic()
                await on_progress(await self.progress(broadcast, remaining, False))

        completed = await fan_out(
            recipients, one, should_stop=should_stop, concurrency=concurrency
        )
        if not completed:
            log.info(
                "Broadcast %d paused for shutdown; it resumes at the next start", broadcast.id
            )
            return None
        await self.repo.finish(broadcast.id, "done", self.clock())
        final = await self.progress(broadcast, 0, True)
        log.info(
            "Broadcast %d done: sent %d, blocked %d, failed %d",
            broadcast.id,
            final.sent,
            final.blocked,
            final.failed,
        )
        await on_progress(final)
        return final

    async def _deliver(self, broadcast: Broadcast, recipient: Recipient, sender: Sender) -> None:
        kind = broadcast.kind
        if recipient.blocked:
            await self.deliveries.record(
                recipient.user_id, kind, DeliveryStatus.BLOCKED, self.clock(), BLOCKED_EARLIER
            )
            return
        text = text_for(broadcast, recipient.language)
        claim = claim_for(self.deliveries, recipient.user_id, kind, self.clock)
        try:
            delivery = await sender.send(recipient.user_id, text, claim)
        except Unclaimed:
            return  # done by another run, or the user erased their data
        await self.deliveries.finish(
            recipient.user_id, kind, delivery.status, self.clock(), delivery.error
        )
        if delivery.status is DeliveryStatus.BLOCKED:
            await self.users.mark_blocked(recipient.user_id)
