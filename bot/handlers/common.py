"""What every handler module shares: the typed context, translators, keyboards."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update, User
from telegram.ext import CallbackContext, ExtBot

from bot.i18n import Translator
from bot.services import Services

SERVICES_KEY = "services"


class BotContext(CallbackContext[ExtBot[None], dict[Any, Any], dict[Any, Any], dict[Any, Any]]):
    """CallbackContext that hands the services to handlers."""

    @property
    def services(self) -> Services:
        return self.application.bot_data[SERVICES_KEY]


async def translator_for(ctx: BotContext, user: User | None) -> Translator:
    if user is None:
        return ctx.services.i18n(None)
    lang = await ctx.services.users.language(user.id, user.language_code)
    return ctx.services.i18n(lang)


async def tr(update: Update, ctx: BotContext) -> Translator:
    """The translator for the user behind an update."""
    return await translator_for(ctx, update.effective_user)


def keyboard(rows: Sequence[Sequence[tuple[str, str]]]) -> InlineKeyboardMarkup:
    """Inline keyboard from rows of (label, callback data)."""
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(text, callback_data=data) for text, data in row] for row in rows]
    )


async def reply(update: Update, text: str, markup: InlineKeyboardMarkup | None = None) -> int:
    """Send `text` to the chat of the update; returns the new message id."""
    chat = update.effective_chat
    assert chat is not None
    message = await chat.send_message(text, reply_markup=markup)
    return message.message_id


async def answer_expired(update: Update, ctx: BotContext) -> None:
    """Answer a stale or forged button press; changes nothing."""
    t = await tr(update, ctx)
    if update.callback_query:
        await update.callback_query.answer(
            t._("This button has expired. Please use the latest message."), show_alert=True
        )
