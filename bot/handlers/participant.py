"""Participant commands outside the registration conversation."""

from __future__ import annotations

import contextlib
from html import escape

from telegram import (
    BotCommand,
    BotCommandScopeChat,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Update,
)
from telegram.constants import ChatType
from telegram.error import BadRequest
from telegram.ext import (
    Application,
    ApplicationHandlerStop,
    CallbackQueryHandler,
    CommandHandler,
    MessageHandler,
    filters,
)

from bot import views
from bot.handlers.admin import ADMIN_COMMANDS
from bot.handlers.common import (
    BotContext,
    acknowledge,
    answer_expired,
    is_admin,
    keyboard,
    reply,
    tr,
    unknown_command,
)
from bot.i18n import LANGUAGE_NAMES, LANGUAGES, N_, Translator

# (command, description msgid): the menu Telegram shows, in each language.
PARTICIPANT_COMMANDS: tuple[tuple[str, str], ...] = (
    ("start", N_("Welcome and main menu")),
    ("event", N_("Webinar details: date, time, speakers")),
    ("register", N_("Register for the webinar")),
    ("myregistration", N_("See or cancel your registration")),
    ("unregister", N_("Cancel your registration")),
    ("language", N_("Change the language")),
    ("timezone", N_("Set your time zone")),
    ("calendar", N_("Get the calendar file")),
    ("ask", N_("Send a question to the panel")),
    ("cancel", N_("Stop the current step")),
    ("deletemydata", N_("Erase all your data")),
    ("help", N_("What this bot can do")),
)


def bot_commands(t: Translator, *, admin: bool = False) -> list[BotCommand]:
    listed = PARTICIPANT_COMMANDS + (ADMIN_COMMANDS if admin else ())
    return [BotCommand(name, t._(description)) for name, description in listed]


def welcome_keyboard(t: Translator) -> InlineKeyboardMarkup:
    return keyboard(
        [
            [(t._("Register"), "menu:register")],
            [(t._("Event details"), "menu:event")],
            [("🌐 " + t._("Language"), "menu:language")],
        ]
    )


async def start(update: Update, ctx: BotContext) -> None:
    """Greet the user, record a deep-link source, show the main menu."""
    user = update.effective_user
    assert user is not None
    source = ctx.args[0] if ctx.args else None
    lang = await ctx.services.users.start(user.id, user.language_code, source)
    t = ctx.services.i18n(lang)
    event = ctx.services.event
    title = event.text(lang).title
    record = await ctx.services.users.get(user.id)
    lines = [
        t._("Welcome! I can register you for this ILO webinar:") + f"\n<b>{escape(title)}</b>",
        "\n".join(
            views.when_lines(
                t, event, record.timezone if record else None, record.place if record else None
            )
        ),
    ]
    if not ctx.services.registrations.is_open():
        lines.append(views.closed(t, event, ctx.services.clock()))
    lines.append(t._("Choose below, or send /help to see everything I can do."))
    await reply(update, "\n\n".join(lines), welcome_keyboard(t))


async def help_command(update: Update, ctx: BotContext) -> None:
    """List the commands in the user's language."""
    t = await tr(update, ctx)
    lines = [t._("Here is what I can do:")]
    lines += [f"/{name} — {t._(description)}" for name, description in PARTICIPANT_COMMANDS]
    if is_admin(ctx, update.effective_user):
        lines += ["", t._("For organisers:")]
        lines += [f"/{name} — {t._(description)}" for name, description in ADMIN_COMMANDS]
    await reply(update, "\n".join(lines))


async def event_details(update: Update, ctx: BotContext) -> None:
    """Show the webinar details."""
    if update.callback_query:
        await acknowledge(update.callback_query)
    t = await tr(update, ctx)
    user = update.effective_user
    record = await ctx.services.users.get(user.id) if user else None
    overview, programme = views.event_details(
        t,
        ctx.services.event,
        ctx.services.clock(),
        record.timezone if record else None,
        record.place if record else None,
    )
    await reply(update, overview)
    await reply(update, programme)


def language_keyboard() -> InlineKeyboardMarkup:
    return keyboard([[(LANGUAGE_NAMES[lang], f"lang:{lang}")] for lang in LANGUAGES])


async def language(update: Update, ctx: BotContext) -> None:
    """Offer the three languages."""
    if update.callback_query:
        await acknowledge(update.callback_query)
    t = await tr(update, ctx)
    await reply(update, t._("Choose your language:"), language_keyboard())


async def language_chosen(update: Update, ctx: BotContext) -> None:
    """Switch the user's language."""
    query = update.callback_query
    assert query is not None and query.data is not None
    lang = query.data.split(":", 1)[1]
    if lang not in LANGUAGES:
        await answer_expired(update, ctx)
        return
    user = update.effective_user
    assert user is not None
    await ctx.services.users.set_language(user.id, lang)
    t = ctx.services.i18n(lang)
    await acknowledge(query)
    done = t._("Language set to English.")
    if query.message is not None and query.message.is_accessible:
        with contextlib.suppress(BadRequest):  # the same language again: "not modified"
            await query.edit_message_text(done)
    else:  # a message Telegram no longer lets the bot edit (date 0): say it anew
        await reply(update, done)
    commands = bot_commands(t, admin=is_admin(ctx, user))
    await ctx.bot.set_my_commands(commands, scope=BotCommandScopeChat(user.id))
    await reply(
        update, t._("Choose below, or send /help to see everything I can do."), welcome_keyboard(t)
    )


async def group_chat(update: Update, ctx: BotContext) -> None:
    """In groups, point to a private chat instead of running conversations."""
    t = await tr(update, ctx)
    url = f"https://t.me/{ctx.bot.username}?start=group"
    markup = InlineKeyboardMarkup([[InlineKeyboardButton(t._("Talk to me in private"), url=url)]])
    await reply(update, t._("I register participants in a private chat."), markup)


async def button_outside_private(update: Update, ctx: BotContext) -> None:
    """Every button press passes here first: outside a private chat (a group, or a message
    with no chat) it is answered like a command there and goes no further, so nothing
    personal (a registration, the statistics) is posted where others read it."""
    chat = update.effective_chat
    if chat is not None and chat.type == ChatType.PRIVATE:
        return
    query = update.callback_query
    assert query is not None
    t = await tr(update, ctx)
    with contextlib.suppress(BadRequest):  # a press handled again after a crash: too old
        await query.answer(t._("I register participants in a private chat."), show_alert=True)
    raise ApplicationHandlerStop


async def plain_text(update: Update, ctx: BotContext) -> None:
    """A message outside any conversation: where to go next, registered or not."""
    t = await tr(update, ctx)
    user = update.effective_user
    registered = user is not None and await ctx.services.registrations.current(user.id)
    if registered:
        text = t._("To see your registration, send /myregistration. For everything else, /help.")
    else:
        text = t._("To register for the webinar, send /register. For everything else, /help.")
    await reply(update, text)


async def edited_elsewhere(update: Update, ctx: BotContext) -> None:
    """A message edited outside any conversation: nothing reads it again, so say so (the
    registration form handles its own edits)."""
    t = await tr(update, ctx)
    await reply(
        update,
        t._(
            "Editing a message you have already sent changes nothing. To see your registration, "
            "send /myregistration; for everything else, /help."
        ),
    )


async def nothing_to_cancel(update: Update, ctx: BotContext) -> None:
    t = await tr(update, ctx)
    await reply(update, t._("There is nothing to cancel."))


def register(app: Application) -> None:
    """Handlers of this module; groups are documented in `bot.app`."""
    private = filters.ChatType.PRIVATE
    app.add_handler(
        MessageHandler(filters.ChatType.GROUPS & filters.COMMAND, group_chat), group=-1
    )
    # A group of its own, before all others: it matches every press, and in its group it
    # would hide the other buttons of group -1 (one handler per group runs).
    app.add_handler(CallbackQueryHandler(button_outside_private), group=-3)
    app.add_handler(CommandHandler("start", start, private))
    app.add_handler(CommandHandler("help", help_command, private))
    app.add_handler(CommandHandler("event", event_details, private))
    app.add_handler(CallbackQueryHandler(event_details, pattern=r"^menu:event$"))
    app.add_handler(CommandHandler("language", language, private))
    app.add_handler(CallbackQueryHandler(language, pattern=r"^menu:language$"))
    app.add_handler(CallbackQueryHandler(language_chosen, pattern=r"^lang:"))
    app.add_handler(CommandHandler("cancel", nothing_to_cancel, private))


def register_catch_alls(app: Application) -> None:
    """Last handlers: anything no feature took."""
    private = filters.ChatType.PRIVATE
    app.add_handler(MessageHandler(private & filters.UpdateType.EDITED_MESSAGE, edited_elsewhere))
    app.add_handler(MessageHandler(private & filters.COMMAND, unknown_command))
    app.add_handler(MessageHandler(private & ~filters.COMMAND, plain_text))
    app.add_handler(CallbackQueryHandler(answer_expired))
