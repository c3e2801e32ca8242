"""The one error handler."""

from __future__ import annotations

import logging

from telegram import Update
from telegram.error import Forbidden, NetworkError, TelegramError

from bot.handlers.common import BotContext, translator_for

log = logging.getLogger(__name__)


async def on_error(update: object, ctx: BotContext) -> None:
    """Log the error; tell the user something went wrong, without details."""
    error = ctx.error
    if isinstance(error, Forbidden):
        log.info("A user has blocked the bot: %s", error.message)
        return
    if isinstance(error, NetworkError):
        log.warning("Telegram request failed: %s", error)
    else:
        log.error("Error while handling an update", exc_info=error)
    if not isinstance(update, Update) or update.effective_chat is None:
        return
    t = await translator_for(ctx, update.effective_user)
    try:
        await ctx.bot.send_message(
            update.effective_chat.id,
            t._("Sorry, something went wrong on our side. Please try again in a moment."),
        )
    except TelegramError as exc:
        log.warning("Could not tell the user about the error: %s", exc)
