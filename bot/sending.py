"""Sending on the bot's own initiative (reminders, broadcasts): one message, one outcome.

Every call here carries the bulk marker, so the rate limiter (`bot.ratelimit`, which the bot
must have) serves replies to users first. A message can wait there for seconds (behind a
broadcast, or a flood wait), so the delivery is claimed only when its turn has come: `deliver`
hands its `claim` to the limiter, which runs it just before the request leaves.
`deliver` never raises for a Telegram error: it returns what happened, for the caller to
record.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from telegram import InlineKeyboardMarkup
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError, TimedOut
from telegram.ext import ExtBot

from bot.ratelimit import BULK, PriorityRateLimiter, bulk_args
from bot.services.fanout import Claim, Delivery
from bot.storage.deliveries import DeliveryStatus
from bot.tg import retry_after_seconds
from bot.transport import AnswerTimedOut

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]
Bot = ExtBot[Any]  # with a rate limiter that understands BULK (bot.ratelimit)

#: BadRequest messages meaning the user cannot be reached any more (like a 403).
UNREACHABLE = ("chat not found", "user is deactivated", "peer_id_invalid", "bot was blocked")


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
    2×`backoff`, 4×`backoff`…; a 429 that the rate limiter could not absorb is waited out
    (at most `max_retry_after` times) without using an attempt. A read timeout is not retried:
    the message may have arrived, and a duplicate is worse than a gap.

    `claim` runs once, when the rate limiter first lets the message go; if it raises (it
    raises `Unclaimed` when the delivery is someone else's), nothing is sent and the
    exception propagates.
    """
    claimed = False

    async def claim_once() -> None:  # the limiter calls it again after a 429, we on a 5xx
        nonlocal claimed
        if claim is not None and not claimed:
            await claim()
            claimed = True

    if not isinstance(bot.rate_limiter, PriorityRateLimiter):
        await claim_once()  # a limiter that would ignore `before_send`: claim before waiting
    rate_limit_args = bulk_args(claim_once if claim is not None else None)
    tries = 0
    waits = 0
    while True:
        try:
            message = await bot.send_message(
                chat_id, text, reply_markup=reply_markup, rate_limit_args=rate_limit_args
            )
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
            await sleep(retry_after_seconds(exc))
            continue
        except TimedOut as exc:
            if isinstance(exc, AnswerTimedOut):  # it may have arrived: never sent again
                return Delivery(DeliveryStatus.FAILED, "timed out (may have been delivered)")
            error: TelegramError = exc
        except NetworkError as exc:
            error = exc
        except TelegramError as exc:  # anything else Telegram refuses: not worth retrying
            return Delivery(DeliveryStatus.FAILED, exc.message)
        tries += 1
        if tries >= attempts:
            return Delivery(DeliveryStatus.FAILED, error.message)
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

    async def edit(self, chat_id: int, message_id: int, text: str) -> bool:
        return await edit(self.bot, chat_id, message_id, text)
