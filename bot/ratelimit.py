"""Pacing of every request to Telegram: one overall budget, replies to users first.

Telegram allows about 30 messages a second overall and one a second per chat. PTB's
AIORateLimiter would keep the bot under that, but on a 429 it pauses *every* request, so a
participant typing /start during a broadcast would wait behind it. This limiter:

* keeps all requests that target a chat within `rate` per `period` (a sliding window), bulk
  ones evenly spaced (`period`/`rate` apart) rather than in bursts;
* serves interactive requests (anything without the bulk marker) before bulk ones: bulk
  requests take a slot only when no interactive request is waiting for it;
* on a 429 pauses bulk requests for `retry_after` and retries them, while interactive requests
  keep flowing (an interactive request that got the 429 itself waits it out and retries);
* never lets a bulk request reach a chat less than `chat_interval` after the previous request
  to that chat has completed;
* lets requests without a chat (getMe, answerCallbackQuery, …) through untouched.

Mark a request as bulk with ``rate_limit_args=BULK`` (see :mod:`bot.sending`). A request may
also carry a ``before_send`` coroutine function (``bulk_args(before_send=f)``), awaited once
the request has its slot, just before it leaves: the sender records "being sent" there rather
than before the request started waiting, which can take seconds (see `BeforeSend`). With
``"max_retries": 0`` a 429 comes back to the caller at once (bulk requests are paused all the
same): `bot.sending` gives back its claim before the next slot, which waits out the pause.

A slot in the window is held from the moment it is granted (just before the request leaves)
until `period` after its answer came back, not after it left. Telegram sees a request
somewhere between those two instants, so counting this way keeps its sliding window under
`rate` whatever the network jitter, at the cost of the round trip (about 29.5/s at 30/s on a
local network).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from telegram.error import RetryAfter
from telegram.ext import BaseRateLimiter

from bot.tg import retry_after_seconds

log = logging.getLogger(__name__)

RateLimitArgs = dict[str, Any]

#: Awaited each time a request gets its slot (again after a 429), just before it leaves. If it
#: raises, the request is not sent: its slot is freed at once and the exception propagates.
BeforeSend = Callable[[], Awaitable[object]]

#: ``rate_limit_args`` of a bulk request (reminders, broadcasts, their progress messages).
BULK: RateLimitArgs = {"bulk": True}


def bulk_args(before_send: BeforeSend | None = None) -> RateLimitArgs:
    """``rate_limit_args`` of a bulk request, with `before_send` if given."""
    return BULK if before_send is None else {**BULK, "before_send": before_send}


def is_bulk(rate_limit_args: RateLimitArgs | None) -> bool:
    return bool(rate_limit_args and rate_limit_args.get("bulk"))


def chat_of(data: dict[str, Any]) -> int | str | None:
    """The chat a request targets, if any (ints may come as strings)."""
    chat_id = data.get("chat_id")
    if isinstance(chat_id, str):
        with contextlib.suppress(ValueError):
            return int(chat_id)
    return chat_id


class Pacer:
    """The limiter's bookkeeping, without any waiting: who may go at `now`, and when.

    Times are seconds on any monotonic clock passed in by the caller.
    """

    def __init__(self, rate: float = 30, period: float = 1.0, chat_interval: float = 1.0) -> None:
        if rate <= 0 or period <= 0:
            raise ValueError("rate and period must be positive")
        self.capacity = max(1, math.floor(rate * period + 1e-9))
        self.period = period
        self.chat_interval = chat_interval
        self.in_flight = 0
        self.bulk_paused_until = -math.inf
        # Bulk requests leave evenly spaced rather than in bursts of `capacity`: a reply to a
        # user then never finds the whole window taken for most of a second.
        self.bulk_spacing = period / self.capacity
        self._next_bulk = -math.inf
        self._frees: deque[float] = deque()  # when completed requests leave the window
        self._chat_in_flight: dict[int | str, int] = {}
        self._chat_free: dict[int | str, float] = {}  # when a chat may get bulk again

    def used(self, now: float) -> int:
        while self._frees and self._frees[0] <= now:
            self._frees.popleft()
        return self.in_flight + len(self._frees)

    def room_in(self, now: float) -> float:
        """Seconds until a slot is free: 0 now, inf until a request in flight completes."""
        excess = self.used(now) - self.capacity
        if excess < 0:
            return 0.0
        if excess < len(self._frees):  # the (excess+1)-th completed request to leave
            return self._frees[excess] - now
        return math.inf

    def chat_free_in(self, now: float, chat: int | str) -> float:
        if self._chat_in_flight.get(chat):
            return math.inf
        return max(0.0, self._chat_free.get(chat, -math.inf) - now)

    def bulk_wait(self, now: float, chat: int | str) -> float:
        """Seconds a bulk request to `chat` must wait (inf: until something completes)."""
        return max(
            self.room_in(now),
            self.bulk_paused_until - now,
            self._next_bulk - now,
            self.chat_free_in(now, chat),
            0.0,
        )

    def start(self, now: float, chat: int | str, bulk: bool = False) -> None:
        self.in_flight += 1
        if bulk:
            self._next_bulk = now + self.bulk_spacing
        self._chat_in_flight[chat] = self._chat_in_flight.get(chat, 0) + 1

    def finish(self, now: float, chat: int | str) -> None:
        self.withdraw(chat)
        self._frees.append(now + self.period)
        self._chat_free[chat] = now + self.chat_interval
        if len(self._chat_free) > 4096:  # forget chats that are free again
            self._chat_free = {c: t for c, t in self._chat_free.items() if t > now}

    def withdraw(self, chat: int | str) -> None:
        """A started request that never left: its slot is free again at once."""
        self.in_flight -= 1
        left = self._chat_in_flight.get(chat, 1) - 1
        if left:
            self._chat_in_flight[chat] = left
        else:
            self._chat_in_flight.pop(chat, None)

    def pause_bulk(self, now: float, seconds: float) -> None:
        self.bulk_paused_until = max(self.bulk_paused_until, now + seconds)


@dataclass(eq=False)
class _Ticket:
    bulk: bool
    chat: int | str
    queued_at: float = field(default=0.0)


@dataclass
class LimiterStats:
    interactive: int = 0
    bulk: int = 0
    unlimited: int = 0
    retry_after: int = 0  # 429s received
    max_interactive_wait: float = 0.0  # seconds an interactive request waited for its slot


class PriorityRateLimiter(BaseRateLimiter[RateLimitArgs]):
    """See the module docstring. ``rate_limit_args``: ``{"bulk": True}`` marks bulk requests;
    ``{"max_retries": n}`` overrides how often a request is retried after a 429;
    ``{"before_send": f}`` runs ``f`` (a `BeforeSend`) when the request is about to leave."""

    def __init__(
        self,
        rate: float = 30,
        period: float = 1.0,
        chat_interval: float = 1.0,
        max_retries: int = 3,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.pacer = Pacer(rate, period, chat_interval)
        self.max_retries = max_retries
        self.clock = clock
        self.stats = LimiterStats()
        self._interactive: deque[_Ticket] = deque()
        self._bulk: deque[_Ticket] = deque()
        self._changed = asyncio.Event()

    async def initialize(self) -> None:
        pass

    async def shutdown(self) -> None:
        pass

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, bool | dict[str, Any] | list[dict[str, Any]]]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: RateLimitArgs | None,
    ) -> bool | dict[str, Any] | list[dict[str, Any]]:
        chat = chat_of(data)
        options = rate_limit_args or {}
        before_send: BeforeSend | None = options.get("before_send")
        if chat is None:
            self.stats.unlimited += 1
            if before_send is not None:
                await before_send()
            return await callback(*args, **kwargs)
        bulk = is_bulk(options)
        retries = options.get("max_retries", self.max_retries)
        attempt = 0
        while True:
            await self.acquire(bulk, chat)
            sent = False
            try:
                if before_send is not None:
                    await before_send()
                sent = True
                return await callback(*args, **kwargs)
            except RetryAfter as exc:
                wait = retry_after_seconds(exc)
                self.stats.retry_after += 1
                # Any 429 means the bot as a whole went too fast: bulk sending pauses.
                self.pacer.pause_bulk(self.clock(), wait)
                log.info(
                    "429 on %s (%s): bulk sending paused for %.0f s",
                    endpoint,
                    "bulk" if bulk else "interactive",
                    wait,
                )
                if attempt >= retries:
                    raise
            finally:
                self.release(chat, sent)
            attempt += 1
            if not bulk:  # bulk requests wait for the pause in `acquire`
                await asyncio.sleep(wait)

    # -- slots ---------------------------------------------------------------------------

    async def acquire(self, bulk: bool, chat: int | str) -> None:
        """Wait for a slot for one request to `chat`; call `release` once it completed (or
        was given up before it left)."""
        ticket = _Ticket(bulk, chat, self.clock())
        queue = self._bulk if bulk else self._interactive
        queue.append(ticket)
        try:
            while (wait := self._wait(ticket)) > 0:
                changed = self._changed
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(None if math.isinf(wait) else wait):
                        await changed.wait()
        except BaseException:
            queue.remove(ticket)
            self._notify()
            raise
        queue.remove(ticket)
        now = self.clock()
        self.pacer.start(now, chat, bulk)
        if bulk:
            self.stats.bulk += 1
        else:
            self.stats.interactive += 1
            self.stats.max_interactive_wait = max(
                self.stats.max_interactive_wait, now - ticket.queued_at
            )
        self._notify()

    def release(self, chat: int | str, sent: bool = True) -> None:
        """Give back the slot of a request to `chat` that completed, or that never left."""
        if sent:
            self.pacer.finish(self.clock(), chat)
        else:
            self.pacer.withdraw(chat)
        self._notify()

    def _wait(self, ticket: _Ticket) -> float:
        """0 when `ticket` may go now, else how long to wait before checking again."""
        now = self.clock()
        if not ticket.bulk:
            if self._interactive[0] is not ticket:
                return math.inf  # first come, first served
            return self.pacer.room_in(now)
        if self._interactive:
            return math.inf  # replies to users first
        for earlier in self._bulk:
            if earlier is ticket:
                break
            if self.pacer.bulk_wait(now, earlier.chat) <= 0:
                return math.inf  # an older bulk request can go: it goes first
        return self.pacer.bulk_wait(now, ticket.chat)

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()
