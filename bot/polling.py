"""Long polling that never loses an update, handling different users' updates concurrently.

PTB's Updater confirms updates to Telegram as soon as it fetches them, so a crash loses every
update fetched but not yet handled. Here an update is confirmed only after it has been handled:
Telegram keeps it until the next `getUpdates` with a higher offset, and which updates were
handled is committed in the same transaction as the conversation states they produced. After a
kill -9 the next start fetches again from the last confirmed offset and skips what was already
handled, so every pending message is answered once.

Concurrency: the updates of one fetched batch are grouped by user. Each user's updates run in
their order, one at a time; different users' run side by side (at most `concurrency` at once),
so within a batch one slow reply (a chat held back by the rate limiter, an upload) does not
hold up the others, and the bot works while it waits for the Bot API. The next batch is fetched
once this one is finished, since Telegram's offset can only confirm a prefix of the updates:
what arrives meanwhile waits for the batch's slowest update.

Commits: when an update has been handled, its user's conversation state and draft are written
together with the record of handled updates, in one transaction. Commits are grouped: updates
that finish while a commit is running are committed together by the next one. The record is the
id of the last update up to which all are handled (`last_update_id`) plus, when a kill comes in
the middle of a batch, the ids above it already handled (`handled_update_ids`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque

from telegram import Update
from telegram.error import Conflict, NetworkError, RetryAfter, TimedOut
from telegram.ext import Application

from bot.config import DEFAULT_UPDATE_CONCURRENCY
from bot.storage import Database, MetaRepo
from bot.tg import retry_after_seconds

log = logging.getLogger(__name__)

LAST_UPDATE_KEY = "last_update_id"
HANDLED_ABOVE_KEY = "handled_update_ids"


class DurablePoller:
    def __init__(
        self,
        app: Application,
        db: Database,
        concurrency: int = DEFAULT_UPDATE_CONCURRENCY,
        poll_timeout: int = 10,
    ) -> None:
        self.app = app
        self.db = db
        self.meta = MetaRepo(db)
        self.poll_timeout = poll_timeout
        self.concurrency = max(1, concurrency)
        self.handled = 0
        self._last = -1  # every update up to this id is handled and committed
        self._above: set[int] = set()  # committed ids above _last (a batch in progress)
        self._pending: deque[int] = deque()  # ids above _last in the order Telegram sent them
        self._uncommitted: set[int] = set()  # handled, waiting for a commit
        self._commit_lock = asyncio.Lock()

    async def last_handled(self) -> int:
        value = await self.meta.get(LAST_UPDATE_KEY)
        return int(value) if value is not None else -1

    async def load(self) -> None:
        """Read what was handled before the last stop or crash."""
        self._last = await self.last_handled()
        above = await self.meta.get(HANDLED_ABOVE_KEY)
        self._above = {i for i in json.loads(above or "[]") if i > self._last}

    async def handle(self, update: Update) -> None:
        """Process one update, then persist its effects and mark it handled, atomically."""
        if not self._pending or self._pending[-1] < update.update_id:
            self._pending.append(update.update_id)  # one update at a time (webhook mode)
        await self.app.process_update(update)
        # No await between the handler's return and this line: a commit that collects this
        # user's state also records the update as handled.
        self._uncommitted.add(update.update_id)
        await self._commit(update.update_id)
        self.handled += 1

    async def _commit(self, update_id: int) -> None:
        async with self._commit_lock:
            if update_id not in self._uncommitted:
                return  # the commit before this one took it along
            done: set[int] = set()
            try:
                async with self.db.transaction():
                    done, self._uncommitted = self._uncommitted, set()
                    # PTB collects the states to write before its first await (a test holds it
                    # to that), so they are exactly those of the updates in `done`.
                    await self.app.update_persistence()
                    last, above = self._advanced(done)
                    if last != self._last:
                        await self.meta.set(LAST_UPDATE_KEY, str(last))
                    if above != self._above:
                        await self.meta.set(HANDLED_ABOVE_KEY, json.dumps(sorted(above)))
            except BaseException:
                self._uncommitted |= done  # not committed: nobody may take them as committed
                raise
            self._last, self._above = last, above
            while self._pending and self._pending[0] <= last:
                self._pending.popleft()

    def _advanced(self, done: set[int]) -> tuple[int, set[int]]:
        """The record once `done` is committed too: the last id with all before it handled,
        and the handled ids above it."""
        above = self._above | done
        last = self._last
        for update_id in self._pending:
            if update_id not in above:
                break
            last = update_id
        return last, {i for i in above if i > last}

    async def handle_batch(self, updates: list[Update], stop: asyncio.Event) -> None:
        """Handle the updates not handled yet, each user's in order, users side by side."""
        by_user: dict[int | str, list[Update]] = {}
        for update in updates:
            if update.update_id <= self._last:
                continue  # handled before a crash, confirmed only now
            self._pending.append(update.update_id)
            if update.update_id in self._above:
                continue
            by_user.setdefault(_user_key(update), []).append(update)
        slots = asyncio.Semaphore(self.concurrency)

        async def in_order(chain: list[Update]) -> None:
            for update in chain:
                async with slots:
                    if stop.is_set():
                        return
                    await self.handle(update)

        async with asyncio.TaskGroup() as group:
            for chain in by_user.values():
                group.create_task(in_order(chain))
        if not stop.is_set():
            # Skipped ids at the end of the batch are confirmed by the next offset.
            self._last = max(self._last, updates[-1].update_id)
            self._pending.clear()

    async def run(self, stop: asyncio.Event) -> None:
        """Poll and handle until `stop` is set; the updates in hand are always finished."""
        bot = self.app.bot
        await bot.delete_webhook(drop_pending_updates=False)
        await self.load()
        log.info("Polling; up to %d users' updates are handled at a time", self.concurrency)
        backoff = 1.0
        stopping = asyncio.ensure_future(stop.wait())
        try:
            while not stop.is_set():
                fetch = asyncio.ensure_future(
                    bot.get_updates(
                        offset=self._offset(),
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
                if updates:
                    await self.handle_batch(list(updates), stop)
        finally:
            stopping.cancel()
        # Confirm what was handled, so Telegram does not send it again after a clean stop.
        if (offset := self._offset()) is not None:
            with contextlib.suppress(TimedOut, NetworkError):
                await bot.get_updates(offset=offset, timeout=0, limit=1)

    def _offset(self) -> int | None:
        return self._last + 1 if self._last >= 0 else None

    @staticmethod
    async def _pause(stop: asyncio.Event, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=seconds)


def _user_key(update: Update) -> int | str:
    """Whose turn an update takes: its user's, else its chat's, else its own."""
    if (user := update.effective_user) is not None:
        return user.id
    if (chat := update.effective_chat) is not None:
        return f"chat:{chat.id}"
    return f"update:{update.update_id}"
