"""Long polling that never loses an update.

PTB's Updater confirms updates to Telegram as soon as it fetches them, so a crash loses every
update fetched but not yet handled. Here an update is confirmed only after it has been handled:
Telegram keeps it until the next `getUpdates` with a higher offset, and the id of the last
handled update is committed in the same transaction as the conversation states it produced.
After a kill -9 the next start fetches again from the last confirmed offset and skips what
was already handled, so every pending message is answered once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from telegram import Update
from telegram.error import Conflict, NetworkError, RetryAfter, TimedOut
from telegram.ext import Application

from bot.storage import Database, MetaRepo
from bot.tg import retry_after_seconds

log = logging.getLogger(__name__)

LAST_UPDATE_KEY = "last_update_id"


class DurablePoller:
    def __init__(self, app: Application, db: Database, poll_timeout: int = 10) -> None:
        self.app = app
        self.db = db
        self.meta = MetaRepo(db)
        self.poll_timeout = poll_timeout
        self.handled = 0

    async def last_handled(self) -> int:
        value = await self.meta.get(LAST_UPDATE_KEY)
        return int(value) if value is not None else -1

    async def handle(self, update: Update) -> None:
        """Process one update, then persist its effects and mark it handled, atomically."""
        await self.app.process_update(update)
        async with self.db.transaction():
            await self.app.update_persistence()
            await self.meta.set(LAST_UPDATE_KEY, str(update.update_id))
        self.handled += 1

    async def run(self, stop: asyncio.Event) -> None:
        """Poll and handle until `stop` is set; the update in hand is always finished."""
        bot = self.app.bot
        await bot.delete_webhook(drop_pending_updates=False)
        last = await self.last_handled()
        offset = last + 1 if last >= 0 else None
        backoff = 1.0
        stopping = asyncio.ensure_future(stop.wait())
        try:
            while not stop.is_set():
                fetch = asyncio.ensure_future(
                    bot.get_updates(
                        offset=offset,
                        timeout=self.poll_timeout,
                        read_timeout=self.poll_timeout + 10,
                        allowed_updates=Update.ALL_TYPES,
                    )
                )
                await asyncio.wait({fetch, stopping}, return_when=asyncio.FIRST_COMPLETED)
                if not fetch.done():
                    fetch.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await fetch
                    break
                try:
                    updates = fetch.result()
                except RetryAfter as exc:
                    await self._pause(stop, retry_after_seconds(exc))
                    continue
                except (TimedOut, NetworkError, Conflict) as exc:
                    log.warning(
                        "getUpdates failed (%s); retrying in %.0f s", type(exc).__name__, backoff
                    )
                    await self._pause(stop, backoff)
                    backoff = min(backoff * 2, 30.0)
                    continue
                backoff = 1.0
                for update in updates:
                    offset = update.update_id + 1
                    if update.update_id <= last:
                        continue  # handled before a crash, confirmed only now
                    await self.handle(update)
                    last = update.update_id
                    if stop.is_set():
                        break
        finally:
            stopping.cancel()
        # Confirm what was handled, so Telegram does not send it again after a clean stop.
        if offset is not None:
            with contextlib.suppress(TimedOut, NetworkError):
                await bot.get_updates(offset=offset, timeout=0, limit=1)

    @staticmethod
    async def _pause(stop: asyncio.Event, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=seconds)
