"""/deletemydata: erase everything stored about the user, after confirmation."""

from __future__ import annotations

import logging
from typing import Any

from telegram import Update
from telegram.ext import (
    Application,
    BaseHandler,
    CallbackQueryHandler,
    CommandHandler,
    ConversationHandler,
    filters,
)

from bot.handlers.common import BotContext, acknowledge, answer_expired, keyboard, reply, tr
from bot.handlers.my_registration import notify_promoted

log = logging.getLogger(__name__)

PROMPT = "erase_prompt"  # user_data: the id of the confirmation message that is still valid


async def delete_my_data(update: Update, ctx: BotContext) -> None:
    """/deletemydata: say what will be erased and ask for confirmation."""
    t = await tr(update, ctx)
    user = update.effective_user
    assert user is not None
    if await ctx.services.registrations.current(user.id):
        what = t._(
            "I will erase everything I store about you: your registration and its history "
            "(your place is given up), your questions to the panel, your language and time "
            "zone, and the record of the messages I sent you. This cannot be undone."
        )
    else:  # nothing to give up: no place to lose (never registered, or cancelled)
        what = t._(
            "I will erase everything I store about you: any past registration, your questions "
            "to the panel, your language and time zone, and the record of the messages I sent "
            "you. This cannot be undone."
        )
    text = "\n\n".join(
        [
            "<b>" + t._("Erase all your data?") + "</b>",
            what,
            t._("The messages in this chat stay in your Telegram app; you can delete the chat."),
        ]
    )
    user = update.effective_user
    if user is not None and (await ctx.services.followup.state(user.id)).rating is not None:
        text += "\n\n" + t._("Your rating of the webinar and your comment will be erased too.")
    markup = keyboard(
        [[(t._("Yes, erase my data"), "erase:yes")], [(t._("No, keep my data"), "erase:no")]]
    )
    message_id = await reply(update, text, markup)
    assert ctx.user_data is not None
    ctx.user_data[PROMPT] = message_id


async def delete_answer(update: Update, ctx: BotContext) -> None:
    """Yes or No under the latest confirmation; any other press is answered as expired."""
    await _answer(update, ctx)


async def delete_answer_in_form(update: Update, ctx: BotContext) -> int | None:
    """The same in the middle of the registration form: erasing also ends the form."""
    return ConversationHandler.END if await _answer(update, ctx) else None


async def _answer(update: Update, ctx: BotContext) -> bool:
    """Handle the press; True when the data were erased."""
    query = update.callback_query
    user = update.effective_user
    assert query is not None and user is not None and ctx.user_data is not None
    message = query.message
    if (
        query.data not in ("erase:yes", "erase:no")
        or message is None
        or ctx.user_data.get(PROMPT) != message.message_id
    ):
        await answer_expired(update, ctx)
        return False
    t = await tr(update, ctx)
    if query.data == "erase:no":
        ctx.user_data.pop(PROMPT, None)
        await acknowledge(query, remove_keyboard=True)
        await reply(update, t._("Nothing has been erased."))
        return False
    await acknowledge(query, remove_keyboard=True)
    services = ctx.services
    # One transaction: the registration is cancelled (its seat goes to the first on the
    # waiting list, as with /unregister), then the user and everything that refers to them
    # (a registration form in progress included) is deleted.
    async with services.db.transaction():
        outcome = await services.registrations.cancel(user.id)
        await services.users.forget(user.id)
    ctx.application.drop_user_data(user.id)
    # Deleted rows are zeroed (secure_delete); the WAL still holds the pages as they were.
    if not await services.db.checkpoint():
        log.warning("Erased data stay in the WAL file until the next checkpoint (a reader)")
    log.info("A user erased their data")
    await reply(
        update,
        t._(
            "Done: everything I stored about you has been erased. If you write to me again, "
            "I will start afresh."
        ),
    )
    if outcome.promoted is not None:
        await notify_promoted(ctx.bot, services, outcome.promoted)
    return True


def form_fallbacks() -> list[BaseHandler[Update, BotContext, Any]]:
    """For the registration form (`registration.register`): /deletemydata and its answer work
    in the middle of it, so nobody has to learn /cancel first; erasing ends the form."""
    return [
        CommandHandler("deletemydata", delete_my_data),
        CallbackQueryHandler(delete_answer_in_form, pattern=r"^erase:"),
    ]


def register(app: Application) -> None:
    app.add_handler(CommandHandler("deletemydata", delete_my_data, filters.ChatType.PRIVATE))
    app.add_handler(CallbackQueryHandler(delete_answer, pattern=r"^erase:"))
