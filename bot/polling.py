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
what arrives meanwhile waits for the batch's slowest update. So that one person cannot make
that wait long, their updates that pile up in the batch faster than anyone types (`FloodGate`)
are not handled: the person gets one short notice, and the rest is recorded as handled.

The record, one for polling and the webhook (`bot.webhook`), has two parts:

* `last_update_id`: the offset to send, minus one; every update up to it in Telegram's current
  sequence is handled. It follows the batches Telegram returns, not the largest id ever seen:
  after a week without updates Telegram picks the next id at random, possibly far below the
  last one, and it then answers an offset "in the future" with its queue from the start,
  forgetting nothing (tdlib's TQueue refuses such an offset; go-telegram-bot-api issue 156
  shows offset 727334708 answered with update 117314199). The lower offset is written by the
  commit that settles the batch's first update, in the same transaction: a kill before it
  leaves the old offset, and Telegram sends the low ids again (those handled meanwhile are
  replays by the rule below). No other offset needs storing: the poller always sends this
  one, so Telegram can only send again the ids from it on, or a restarted sequence.
* `handled_updates`: each update handled in the last `REPLAY_WINDOW`, by id with a digest of its
  content. An update is a replay, skipped, when its id is recorded with the same digest: Telegram
  resends an update unchanged (polling: fetched again after a crash before its confirmation; a
  webhook: our 200 lost), while an id reused by a restarted sequence comes with another update.
  Telegram keeps no update longer than 24 hours, so older entries can go.

Commits: when an update has been handled, its user's conversation state and draft are written
together with its entry in the record, in one transaction. Commits are grouped: updates that
finish while a commit is running are committed together by the next one.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable

from telegram import Update
from telegram.error import Conflict, NetworkError, RetryAfter, TelegramError, TimedOut
from telegram.ext import Application

from bot.config import DEFAULT_UPDATE_CONCURRENCY
from bot.handlers.flood import flood_notice
from bot.storage import Database, MetaRepo
from bot.storage.meta import HandledUpdateRepo
from bot.tg import retry_after_seconds

log = logging.getLogger(__name__)

LAST_UPDATE_KEY = "last_update_id"
#: Seconds a handled update stays in the record. Telegram keeps an update at most 24 hours
#: (Bot API, "Getting updates"); a day more for clocks that disagree.
REPLAY_WINDOW = 2 * 24 * 3600
#: A flood: a person's update behind `FLOOD_BACKLOG` of their own in the batch (they hold the
#: batch up), while their token bucket is empty: `FLOOD_BURST` updates at once, then one every
#: `FLOOD_WINDOW`/`FLOOD_BURST` seconds, by the times they sent them.
FLOOD_BACKLOG = 3
FLOOD_BURST = 10
FLOOD_WINDOW = 10.0
#: Seconds between two flood notices to one person.
FLOOD_NOTICE_EVERY = 60.0

Notice = Callable[[Application, Update], Awaitable[None]]


def update_digest(update: Update) -> str:
    """What tells a replay from another update with the same id (see the module docstring)."""
    data = json.dumps(update.to_dict(), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(data.encode()).hexdigest()[:32]


class HandledRecord:
    """The updates handled lately: id -> (digest, handled at, Unix seconds)."""

    def __init__(self, entries: dict[int, tuple[str, int]] | None = None) -> None:
        self.entries = entries or {}

    def is_replay(self, update_id: int, digest: str, now: float) -> bool:
        """Handled already: the same update again. An id recorded before digests were (an
        empty digest, schema 6's upgrade) counts by itself."""
        entry = self.entries.get(update_id)
        return entry is not None and entry[1] >= now - REPLAY_WINDOW and entry[0] in ("", digest)

    def add(self, handled: dict[int, str], now: int) -> None:
        for update_id, digest in handled.items():
            self.entries[update_id] = (digest, now)

    def forget_before(self, when: float) -> None:
        self.entries = {i: entry for i, entry in self.entries.items() if entry[1] >= when}


class FloodGate:
    """Who floods: a person whose update waits behind `backlog` of their own in the batch in
    hand, and who sends faster than a person types (a token bucket per user: `burst` updates at
    once, then one every `window`/`burst` seconds).

    Both, so that neither a quick client that waits for each answer (never a backlog) nor
    someone whose messages piled up while the bot was down (sent over minutes: the bucket is
    full) loses a message. Times are when the person sent each update (Telegram's message
    date where there is one). Webhook mode hands updates over one at a time: no backlog, and
    Telegram itself serves the chats' queues in turn.
    """

    def __init__(
        self,
        backlog: int = FLOOD_BACKLOG,
        burst: int = FLOOD_BURST,
        window: float = FLOOD_WINDOW,
        notice_every: float = FLOOD_NOTICE_EVERY,
    ) -> None:
        self.backlog = backlog
        self.burst = burst
        self.rate = burst / window
        self.notice_every = notice_every
        self._buckets: dict[int | str, tuple[float, float]] = {}  # key -> (tokens, at)
        self._noticed: dict[int | str, float] = {}

    def admit(self, key: int | str, sent_at: float, ahead: int = 0) -> bool:
        """Whether to handle an update sent at `sent_at`, with `ahead` updates of the same
        person before it in the batch."""
        tokens, at = self._buckets.get(key, (float(self.burst), sent_at))
        tokens = min(float(self.burst), tokens + max(0.0, sent_at - at) * self.rate)
        if len(self._buckets) > 10_000:  # forget people whose bucket is full again
            full = self.burst / self.rate
            self._buckets = {k: v for k, v in self._buckets.items() if sent_at - v[1] < full}
        admitted = tokens >= 1.0 or ahead < self.backlog
        if admitted:
            tokens = max(0.0, tokens - 1.0)
        self._buckets[key] = (tokens, max(at, sent_at))
        return admitted

    def notice_due(self, key: int | str, now: float) -> bool:
        """Whether to tell this person now that part of their flood was skipped."""
        if now - self._noticed.get(key, float("-inf")) < self.notice_every:
            return False
        if len(self._noticed) > 10_000:
            self._noticed = {k: v for k, v in self._noticed.items() if now - v < self.notice_every}
        self._noticed[key] = now
        return True


class DurablePoller:
    def __init__(
        self,
        app: Application,
        db: Database,
        concurrency: int = DEFAULT_UPDATE_CONCURRENCY,
        poll_timeout: int = 10,
        *,
        flood: FloodGate | None = None,
        notice: Notice = flood_notice,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.app = app
        self.db = db
        self.meta = MetaRepo(db)
        self.handled_repo = HandledUpdateRepo(db)
        self.poll_timeout = poll_timeout
        self.concurrency = max(1, concurrency)
        self.flood = flood or FloodGate()
        self.notice = notice
        self.clock = clock
        self.handled = 0
        self.skipped = 0  # updates of a flood, recorded as handled without handlers
        self._last = -1  # the offset to send, minus one
        self.record = HandledRecord()  # committed
        self._pending: deque[int] = deque()  # the batch's ids not yet behind _last, in order
        self._settled: set[int] = set()  # ids in _pending committed or replayed
        self._uncommitted: dict[int, str] = {}  # handled, waiting for a commit: id -> digest
        self._commit_lock = asyncio.Lock()
        self._next_prune = 0.0

    async def last_handled(self) -> int:
        value = await self.meta.get(LAST_UPDATE_KEY)
        return int(value) if value is not None else -1

    async def load(self) -> None:
        """Read what was handled before the last stop or crash."""
        self._last = await self.last_handled()
        now = self.clock()
        self.record = HandledRecord(await self.handled_repo.since(int(now - REPLAY_WINDOW)))

    def already_handled(self, update: Update, digest: str | None = None) -> bool:
        """A replay of an update handled and committed before (see the module docstring)."""
        digest = digest or update_digest(update)
        return self.record.is_replay(update.update_id, digest, self.clock())

    async def handle(
        self,
        update: Update,
        digest: str | None = None,
        *,
        ahead: int = 0,
        commit_skipped: bool = True,
    ) -> None:
        """Process one update (or skip it, in a flood), then persist its effects and mark it
        handled, atomically. `ahead`: the person's updates before it in the batch. Without
        `commit_skipped` a skipped update is only marked: the caller commits it later (a batch,
        at its end: a flood costs no commit per update)."""
        digest = digest or update_digest(update)
        key = _user_key(update)
        admitted = self.flood.admit(key, _sent_at(update, self.clock()), ahead)
        if admitted:
            await self.app.process_update(update)
        else:
            self.skipped += 1
            if self.flood.notice_due(key, self.clock()):
                log.info("A user floods the bot; the excess is skipped, with one notice")
                try:
                    await self.notice(self.app, update)
                except TelegramError as exc:
                    log.warning("Flood notice not sent: %s", exc)
        # No await between the handler's return and this line: a commit that collects this
        # user's state also records the update as handled.
        self._uncommitted[update.update_id] = digest
        if admitted or commit_skipped:
            await self._commit(update.update_id)
        if admitted:
            self.handled += 1

    async def _commit(self, update_id: int) -> None:
        async with self._commit_lock:
            if update_id not in self._uncommitted:
                return  # the commit before this one took it along
            done: dict[int, str] = {}
            now = int(self.clock())
            try:
                async with self.db.transaction():
                    done, self._uncommitted = self._uncommitted, {}
                    # PTB collects the states to write before its first await (a test holds it
                    # to that), so they are exactly those of the updates in `done`.
                    await self.app.update_persistence()
                    last, settled = self._advanced(done)
                    await self.handled_repo.record(done.items(), now)
                    if last != self._last:
                        await self.meta.set(LAST_UPDATE_KEY, str(last))
                    if now >= self._next_prune:
                        await self.handled_repo.forget_before(now - REPLAY_WINDOW)
            except BaseException:
                # Not committed: nobody may take them as committed.
                self._uncommitted = {**done, **self._uncommitted}
                raise
            self.record.add(done, now)
            if now >= self._next_prune:
                self.record.forget_before(now - REPLAY_WINDOW)
                self._next_prune = now + 3600
            self._last = last
            self._settled |= done.keys()
            for _ in range(settled):
                self._settled.discard(self._pending.popleft())
            if not self._pending:  # webhook mode, or the batch's end: nothing to track
                self._settled.clear()

    def _advanced(self, done: dict[int, str]) -> tuple[int, int]:
        """The offset minus one once `done` is committed too (the last id of the batch's
        prefix handled), and how many of the batch's ids that prefix has."""
        last, settled = self._last, 0
        for update_id in self._pending:
            if update_id not in self._settled and update_id not in done:
                break
            last, settled = update_id, settled + 1
        return last, settled

    async def handle_batch(self, updates: list[Update], stop: asyncio.Event) -> None:
        """Handle the updates not handled yet, each user's in order, users side by side."""
        by_user: dict[int | str, list[tuple[Update, str]]] = {}
        for update in updates:
            self._pending.append(update.update_id)
            digest = update_digest(update)
            if self.already_handled(update, digest):
                self._settled.add(update.update_id)  # handled before a crash, confirmed now
                continue
            by_user.setdefault(_user_key(update), []).append((update, digest))
        if updates and self._last >= 0 and updates[0].update_id <= self._last:
            log.warning(
                "Telegram restarted its update ids lower (%d after %d); following them",
                updates[0].update_id,
                self._last,
            )
        slots = asyncio.Semaphore(self.concurrency)

        async def in_order(chain: list[tuple[Update, str]]) -> None:
            for ahead, (update, digest) in enumerate(chain):
                async with slots:
                    if stop.is_set():
                        return
                    await self.handle(update, digest, ahead=ahead, commit_skipped=False)

        async with asyncio.TaskGroup() as group:
            for chain in by_user.values():
                group.create_task(in_order(chain))
        if self._uncommitted:  # skipped updates of a flood
            await self._commit(next(iter(self._uncommitted)))
        if not stop.is_set():
            # Replays at the end of the batch are confirmed by the next offset, which follows
            # the batch even when it went down (a restarted sequence).
            self._last = updates[-1].update_id
            self._pending.clear()
            self._settled.clear()

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


def _sent_at(update: Update, now: float) -> float:
    """When the person sent the update: the message's date, else (buttons…) now."""
    message = update.message or update.edited_message
    if message is None:
        return now
    when = message.edit_date if update.edited_message and message.edit_date else message.date
    return when.timestamp()
