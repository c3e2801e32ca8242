"""/ask: questions and comments for the panel; /questions: the organisers read them.

The /ask prompt is a small persistent conversation in an early handler group, so that it works
even in the middle of the registration form: every update it takes stops there
(ApplicationHandlerStop), and any other command or button press leaves the prompt and goes on
to its usual handler.
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from html import escape
from typing import NoReturn

from babel.dates import format_skeleton
from telegram import Update
from telegram.ext import (
    Application,
    ApplicationHandlerStop,
    CallbackQueryHandler,
    CommandHandler,
    ConversationHandler,
    MessageHandler,
    filters,
)

from bot.handlers import schedule
from bot.handlers.admin import in_background, send_csv, stamp
from bot.handlers.common import BotContext, add_conversation, admin_only, reply, tr
from bot.i18n import Translator
from bot.services.questions import EmptyQuestion, QuestionTooLong
from bot.services.timezone import city
from bot.services.validation import QUESTION_MAX
from bot.storage.questions import Question

WAITING = 1
PAGE = 20  # questions shown in the chat; the CSV file has them all
SHOWN_MAX = 300  # characters of each question shown in the chat
MESSAGE_MAX = 3800  # below Telegram's 4,096, leaving room for HTML


def _prompt(t: Translator) -> str:
    return t._(
        "What would you like to ask or tell the panel? Send it in one message "
        "(up to {max} characters), or /cancel."
    ).format(max=t.number(QUESTION_MAX))


async def _store(update: Update, ctx: BotContext, t: Translator, text: str) -> NoReturn:
    user = update.effective_user
    assert user is not None
    try:
        await ctx.services.questions.ask(user.id, t.lang, text)
    except QuestionTooLong as exc:
        await reply(
            update,
            t._(
                "This message is too long: {length} characters, {max} at most. Nothing has "
                "been sent. Please shorten it and send it again, or /cancel."
            ).format(
                length=t.number(exc.length),
                max=t.number(QUESTION_MAX),
            ),
        )
        raise ApplicationHandlerStop(WAITING) from None
    except EmptyQuestion:
        await reply(update, _prompt(t))
        raise ApplicationHandlerStop(WAITING) from None
    await reply(
        update,
        t._(
            "Thank you! Your message has been passed on to the panel. "
            "You can send another one with /ask."
        ),
    )
    raise ApplicationHandlerStop(ConversationHandler.END)


async def ask(update: Update, ctx: BotContext) -> NoReturn:
    """/ask, with the question after the command or in the next message."""
    t = await tr(update, ctx)
    message = update.effective_message
    assert message is not None and message.text is not None and ctx.user_data is not None
    # Like any command, /ask ends a waiting /timezone prompt (which group -1 would drop).
    ctx.user_data.pop(schedule.PROMPT, None)
    parts = message.text.split(maxsplit=1)
    if len(parts) == 2:
        await _store(update, ctx, t, parts[1])
    await reply(update, _prompt(t))
    raise ApplicationHandlerStop(WAITING)


async def got_question(update: Update, ctx: BotContext) -> NoReturn:
    """The message after /ask."""
    t = await tr(update, ctx)
    assert update.message is not None and update.message.text is not None
    await _store(update, ctx, t, update.message.text)


async def not_text(update: Update, ctx: BotContext) -> NoReturn:
    """A sticker, photo… where the question was expected."""
    t = await tr(update, ctx)
    await reply(update, t._("Please send your question as text, or /cancel."))
    raise ApplicationHandlerStop(WAITING)


async def cancel(update: Update, ctx: BotContext) -> NoReturn:
    t = await tr(update, ctx)
    await reply(update, t._("All right, nothing has been sent."))
    raise ApplicationHandlerStop(ConversationHandler.END)


async def leave(update: Update, ctx: BotContext) -> int:
    """Another command or a button: the prompt ends and the update goes on to its handler."""
    return ConversationHandler.END


def conversation() -> ConversationHandler:
    private = filters.ChatType.PRIVATE
    new = filters.UpdateType.MESSAGE  # an edit of an earlier message is not an answer
    return ConversationHandler(
        entry_points=[CommandHandler("ask", ask, private)],
        states={
            WAITING: [
                MessageHandler(new & filters.TEXT & ~filters.COMMAND, got_question),
                MessageHandler(new & ~filters.COMMAND, not_text),
            ]
        },
        fallbacks=[
            CommandHandler("cancel", cancel),
            MessageHandler(filters.COMMAND, leave),
            CallbackQueryHandler(leave),
        ],
        allow_reentry=True,
        name="ask",
        persistent=True,
    )


# --- /questions (admins) -----------------------------------------------------------------------


def _when(t: Translator, when: datetime, tz: tzinfo) -> str:
    """The day and time in the event's zone, which the heading names."""
    day = format_skeleton("MMMd", when.astimezone(tz), locale=t.lang)
    return t._("{date}, {time}").format(date=day, time=t.time(when, tz))


def _entry(t: Translator, question: Question, tz: tzinfo) -> str:
    text = question.text
    if len(text) > SHOWN_MAX:
        text = text[:SHOWN_MAX].rstrip() + "…"
    head = t._("#{id} · {language} · {when}").format(
        id=question.id, language=question.language.upper(), when=_when(t, question.created_at, tz)
    )
    return f"<b>{head}</b>\n{escape(text)}"


def pages(header: str, entries: list[str], limit: int = MESSAGE_MAX) -> list[str]:
    """Entries packed into as few messages as fit, the header on the first."""
    messages: list[str] = []
    current = header
    for entry in entries:
        if len(current) + 2 + len(entry) > limit:
            messages.append(current)
            current = entry
        else:
            current = f"{current}\n\n{entry}"
    messages.append(current)
    return messages


@admin_only
async def questions(update: Update, ctx: BotContext) -> None:
    """/questions: the latest questions, newest first, and all of them as a CSV document."""
    in_background(update, ctx, _send_questions(update, ctx))


async def _send_questions(update: Update, ctx: BotContext) -> None:
    t = await tr(update, ctx)
    service = ctx.services.questions
    total = await service.count()
    if total == 0:
        await reply(update, t._("No questions yet."))
        return
    newest = await service.newest(PAGE)
    tz = ctx.services.event.tz
    heading = t._("Questions for the panel ({city} time)").format(city=escape(city(t, tz.key)))
    header = f"❓ <b>{heading}</b>\n"
    header += t.n_(
        "{count} question in total.",
        "{count} questions in total, newest first.",
        total,
    ).format(count=t.number(total))
    header += " " + t.n_(
        "It is also in the CSV file below.", "The CSV file below has them all.", total
    )
    for text in pages(header, [_entry(t, q, tz) for q in newest]):
        await reply(update, text)
    path, count = await service.export()
    caption = t.n_("{count} question", "{count} questions", count).format(count=t.number(count))
    await send_csv(update, ctx, path, f"questions-{stamp(ctx)}.csv", caption)


def register(app: Application, early_group: int) -> None:
    """The /ask prompt in `early_group` (see the module docstring), /questions in group 0."""
    # Leaving on any button needs a CallbackQueryHandler; no button is tracked per message.
    add_conversation(app, conversation, early_group)
    app.add_handler(CommandHandler("questions", questions, filters.ChatType.PRIVATE))
