"""The one notice a person gets when the poller skips part of their flood (bot.polling)."""

from __future__ import annotations

from telegram import Update
from telegram.constants import ChatType
from telegram.ext import Application

from bot.handlers.common import SERVICES_KEY


async def flood_notice(app: Application, update: Update) -> None:
    """Tell the person, in a private chat, that messages sent too fast were skipped."""
    chat, user = update.effective_chat, update.effective_user
    if chat is None or user is None or chat.type != ChatType.PRIVATE:
        return  # in a group the bot stays silent, as for anything but its commands
    services = app.bot_data[SERVICES_KEY]
    t = services.i18n(await services.users.language(user.id, user.language_code))
    await app.bot.send_message(
        chat.id,
        t._(
            "You are sending messages faster than I can read them, so I skipped some. "
            "Please wait a moment, then send your message again."
        ),
    )
