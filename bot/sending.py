"""Sending on the bot's own initiative (reminders, broadcasts, notices): one message, one
outcome, and a delivery claimed only while its request is on the wire.

Every call here carries the bulk marker, so the rate limiter (`bot.ratelimit`, which the bot
must have) serves replies to users first. A message can wait there for seconds (behind a
broadcast, or a flood wait), so its `Claim` is taken only when its turn has come: `deliver`
hands `Claim.take` to the limiter, which runs it just before the request leaves. When the
answer proves the message was not delivered (a 429, a 5xx, no connection at all), the claim
is given back before the wait, and the next turn takes it again; so a kill during a flood
wait or a back-off leaves no claim, only the requests on the wire at that instant.
`deliver` never raises for a Telegram error: it returns what happened, for the caller to
record.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from telegram import InlineKeyboardMarkup, Message
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError, TimedOut
from telegram.ext import ExtBot

from bot.ratelimit import BULK, PriorityRateLimiter, RateLimitArgs, bulk_args
from bot.services.fanout import Claim, Delivery, Document
from bot.storage.deliveries import DeliveryStatus
from bot.transport import NoAnswer, NotSent

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]
Bot = ExtBot[Any]  # with a rate limiter that understands BULK (bot.ratelimit)
#: Makes the request, with the `rate_limit_args` given.
Request = Callable[[RateLimitArgs], Awaitable[Message]]

#: BadRequest messages meaning the user cannot be reached any more (like a 403).
UNREACHABLE = ("chat not found", "user is deactivated", "peer_id_invalid", "bot was blocked")


def refused(exc: NetworkError) -> bool:
    """Whether a network error proves the request was not acted on: an error answer from the
    server (PTB raises 5xx without a transport cause), or no connection at all. A connection
    lost or timed out once the request may have left (`NoAnswer`, `AnswerTimedOut`) is not."""
    if isinstance(exc, NotSent):
        return True
    if isinstance(exc, TimedOut | NoAnswer):
        return False
    return exc.__cause__ is None or isinstance(exc.__cause__, TelegramError)


async def deliver(
    bot: Bot,
    chat_id: int,
    text: str,
    *,
    claim: Claim | None = None,
    reply_markup: InlineKeyboardMarkup | None = None,
    attempts: int = 4,
    backoff: float = 1.0,
    max_retry_after: int = 10,
    sleep: Sleep = asyncio.sleep,
) -> Delivery:
    """Send `text` (HTML) to `chat_id` as a bulk message.

    5xx and network errors are retried up to `attempts` times in all, waiting `backoff`,
    2×`backoff`, 4×`backoff`…; a 429 is waited out (the rate limiter pauses bulk requests for
    its `retry_after`; at most `max_retry_after` times) without using an attempt. A read
    timeout is not retried: the message may have arrived, and a duplicate is worse than a gap.

    `claim` is taken when the rate limiter lets the message go, and given back when the
    answer proves it was not delivered, before waiting to try again; if taking it raises
    (`Unclaimed`: the delivery is someone else's), nothing is sent and the exception
    propagates.
    """

    async def request(rate_limit_args: RateLimitArgs) -> Message:
        return await bot.send_message(
            chat_id, text, reply_markup=reply_markup, rate_limit_args=rate_limit_args
        )

    return await _deliver(
        bot, request, claim, attempts, backoff, max_retry_after=max_retry_after, sleep=sleep
    )


async def deliver_document(
    bot: Bot,
    chat_id: int,
    document: Document,
    *,
    claim: Claim | None = None,
    attempts: int = 4,
    backoff: float = 1.0,
    sleep: Sleep = asyncio.sleep,
) -> Delivery:
    """Like `deliver`, for a file (PTB names its type from the file name: text/calendar for
    ".ics")."""

    async def request(rate_limit_args: RateLimitArgs) -> Message:
        return await bot.send_document(
            chat_id,
            document=document.data,
            filename=document.filename,
            caption=document.caption,
            rate_limit_args=rate_limit_args,
        )

    return await _deliver(bot, request, claim, attempts, backoff, sleep=sleep)


async def _deliver(
    bot: Bot,
    request: Request,
    claim: Claim | None,
    attempts: int,
    backoff: float,
    *,
    max_retry_after: int = 10,
    sleep: Sleep = asyncio.sleep,
) -> Delivery:
    if not isinstance(bot.rate_limiter, PriorityRateLimiter):  # it paces, claims, waits out 429s
        raise TypeError("sending in bulk needs bot.ratelimit.PriorityRateLimiter")
    # The limiter does not retry a 429 itself: the claim must be given back first.
    rate_limit_args: RateLimitArgs = {
        **bulk_args(claim.take if claim is not None else None),
        "max_retries": 0,
    }
    tries = 0
    waits = 0
    while True:
        try:
            message = await request(rate_limit_args)
            return Delivery(DeliveryStatus.SENT, message_id=message.message_id)
        except Forbidden as exc:
            return Delivery(DeliveryStatus.BLOCKED, exc.message)
        except BadRequest as exc:
            if any(marker in exc.message.lower() for marker in UNREACHABLE):
                return Delivery(DeliveryStatus.BLOCKED, exc.message)
            log.warning("Message to a user refused: %s", exc.message)
            return Delivery(DeliveryStatus.FAILED, exc.message)
        except RetryAfter as exc:
            waits += 1
            if waits > max_retry_after:
                return Delivery(DeliveryStatus.FAILED, str(exc))
            if claim is not None:
                await claim.release()
            continue  # the limiter holds bulk requests back for `retry_after`
        except TimedOut as exc:
            if not refused(exc):  # it may have arrived: never sent again
                return Delivery(DeliveryStatus.FAILED, "timed out (may have been delivered)")
            error: TelegramError = exc
        except NetworkError as exc:
            error = exc
        except TelegramError as exc:  # anything else Telegram refuses: not worth retrying
            return Delivery(DeliveryStatus.FAILED, exc.message)
        tries += 1
        if tries >= attempts:
            return Delivery(DeliveryStatus.FAILED, error.message)
        if claim is not None and refused(error):
            await claim.release()
        await sleep(backoff * 2 ** (tries - 1))


async def edit(bot: Bot, chat_id: int, message_id: int, text: str) -> bool:
    """Replace the text of a message the bot sent (a progress report); False if that failed."""
    try:
        await bot.edit_message_text(text, chat_id, message_id, rate_limit_args=BULK)
    except BadRequest as exc:
        if "not modified" in exc.message:
            return True
        log.warning("Could not edit a progress message: %s", exc.message)
        return False
    except TelegramError as exc:
        log.warning("Could not edit a progress message: %s", exc)
        return False
    return True


@dataclass(frozen=True, slots=True)
class Outbox:
    """`deliver` and `edit` bound to a bot: what services receive to send messages, so they
    never touch Telegram objects themselves."""

    bot: Bot
    attempts: int = 4
    backoff: float = 1.0

    async def send(self, chat_id: int, text: str, claim: Claim | None = None) -> Delivery:
        return await deliver(
            self.bot, chat_id, text, claim=claim, attempts=self.attempts, backoff=self.backoff
        )

    async def send_document(
        self, chat_id: int, document: Document, claim: Claim | None = None
    ) -> Delivery:
        return await deliver_document(
            self.bot, chat_id, document, claim=claim, attempts=self.attempts, backoff=self.backoff
        )

    async def edit(self, chat_id: int, message_id: int, text: str) -> bool:
        return await edit(self.bot, chat_id, message_id, text)
