"""The follow-up after the session and the feedback it asks for; /feedback for admins.

The follow-up is one JobQueue job, rebuilt at every start (see `bot.services.followup` for
what a restart means). Its 1–5 buttons and the Skip button under the comment prompt are
answered in an early handler group, so that no conversation in group 0 takes them. Typed
answers (a digit for the rating, then the comment) are looked for in the /ask prompt's group,
after it: only once the follow-up has gone out, only from someone it was sent to (a lone
digit 1–5 is their rating, the next text after a rating is the comment), and never in the
middle of the registration form or the /timezone prompt. Whether a comment is awaited is
stored in the database, not in memory, so a restart keeps it.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta
from html import escape

from babel.dates import format_skeleton
from telegram import InlineKeyboardMarkup, Update
from telegram.ext import (
    Application,
    ApplicationHandlerStop,
    CallbackQueryHandler,
    CommandHandler,
    MessageHandler,
    filters,
)

from bot import views
from bot.handlers import schedule
from bot.handlers.admin import in_background, send_csv, stamp
from bot.handlers.common import (
    SERVICES_KEY,
    BotContext,
    acknowledge,
    admin_only,
    answer_expired,
    keyboard,
    reply,
    tr,
)
from bot.handlers.questions import pages
from bot.handlers.registration import DRAFT
from bot.handlers.reminders import JOB_KWARGS
from bot.i18n import Translator
from bot.sending import deliver
from bot.services import Services
from bot.services.fanout import Claim, Delivery
from bot.services.followup import (
    COMMENT_MAX,
    KIND,
    RATINGS,
    Action,
    CommentTooLong,
    EmptyComment,
    NotReceived,
)
from bot.storage.deliveries import Recipient
from bot.storage.feedback import Comment

log = logging.getLogger(__name__)

RATE_PREFIX = "fb:rate:"
SKIP = "fb:skip"
TYPED_RATING = re.compile(r"\s*([1-5])\s*")
PAGE = 20  # comments shown in the chat; the CSV file has them all
SHOWN_MAX = 300  # characters of each comment shown in the chat


def rating_keyboard() -> InlineKeyboardMarkup:
    return keyboard([[(str(r), f"{RATE_PREFIX}{r}") for r in RATINGS]])


# --- the follow-up ----------------------------------------------------------------------------


async def send_follow_up(ctx: BotContext) -> None:
    """Job: the follow-up to every active registrant who has not had it."""
    services = ctx.services
    app = ctx.application
    texts: dict[str, str] = {}  # the same text for everyone of a language
    markup = rating_keyboard()

    async def send(recipient: Recipient, claim: Claim) -> Delivery:
        t = services.i18n(recipient.language)
        if t.lang not in texts:
            texts[t.lang] = views.follow_up(t, services.event)
        return await deliver(
            ctx.bot, recipient.user_id, texts[t.lang], claim=claim, reply_markup=markup
        )

    await services.followup.run(send, should_stop=lambda: not app.running)


async def schedule_follow_up(app: Application) -> None:
    """At start-up (post_init): the follow-up's job, at its time or at once if it is late."""
    services: Services = app.bot_data[SERVICES_KEY]
    place_follow_up(app, await services.followup.recover())


def place_follow_up(app: Application, action: Action | None = None) -> None:
    """(Re)place the follow-up's job for the session in force: at start-up, and when /edit
    has moved the session (`action` None: worked out from the time in force)."""
    services: Services = app.bot_data[SERVICES_KEY]
    job_queue = app.job_queue
    assert job_queue is not None, "python-telegram-bot[job-queue] is required"
    for job in job_queue.get_jobs_by_name(KIND):
        job.schedule_removal()
    action = action if action is not None else services.followup.action()
    due = services.followup.due
    if action is Action.SCHEDULE and due is not None:
        delay = max(due - services.clock(), timedelta(0))
    elif action is Action.NOW:
        log.info("The follow-up fell due while the bot was down: sending it now")
        delay = timedelta(0)
    else:
        return
    job_queue.run_once(send_follow_up, when=delay, name=KIND, job_kwargs=JOB_KWARGS)


# --- answers ----------------------------------------------------------------------------------


def _comment_prompt(t: Translator) -> str:
    return t._(
        "Is there anything you would like to tell the organisers? Send it in one message "
        "(up to {max} characters), or tap Skip."
    ).format(max=t.number(COMMENT_MAX))


def _skip_keyboard(t: Translator) -> InlineKeyboardMarkup:
    return keyboard([[(t._("Skip"), SKIP)]])


async def _rate(
    update: Update, ctx: BotContext, rating: int
) -> tuple[str, InlineKeyboardMarkup | None] | None:
    """Record the rating; returns the answer, which asks for a comment unless one was given
    before. None when the person may not rate (the follow-up was not sent to them, or they
    erased their data since)."""
    user = update.effective_user
    assert user is not None
    service = ctx.services.followup
    before = await service.state(user.id)
    try:
        await service.rate(user.id, rating)
    except NotReceived:
        return None
    t = await tr(update, ctx)
    if before.has_comment:  # a change of mind: no second comment asked for
        await service.skip_comment(user.id)
        return t._("Thank you! Your rating is now {rating} out of 5.").format(rating=rating), None
    thanks = t._("Thank you! You rated the webinar {rating} out of 5.").format(rating=rating)
    return f"{thanks}\n\n{_comment_prompt(t)}", _skip_keyboard(t)


async def rating_pressed(update: Update, ctx: BotContext) -> None:
    """A 1–5 button under the follow-up (kept, so that a later press changes the rating)."""
    query = update.callback_query
    assert query is not None and query.data is not None
    answer = await _rate(update, ctx, int(query.data.removeprefix(RATE_PREFIX)))
    if answer is None:
        await answer_expired(update, ctx)
        raise ApplicationHandlerStop
    await acknowledge(query)
    await reply(update, *answer)
    raise ApplicationHandlerStop


async def skip_pressed(update: Update, ctx: BotContext) -> None:
    """Skip under the comment prompt: no comment. Expired once a comment was sent."""
    query = update.callback_query
    user = update.effective_user
    assert query is not None and user is not None
    if not await ctx.services.followup.skip_comment(user.id):
        await answer_expired(update, ctx)
        raise ApplicationHandlerStop
    await acknowledge(query, remove_keyboard=True)
    t = await tr(update, ctx)
    await reply(update, t._("Thank you for your feedback!"))
    raise ApplicationHandlerStop


def _busy_elsewhere(ctx: BotContext) -> bool:
    """In the registration form or the /timezone prompt: typed text is theirs."""
    data = ctx.user_data or {}
    return DRAFT in data or schedule.PROMPT in data


async def typed(update: Update, ctx: BotContext) -> None:
    """Any private message once the follow-up has gone out: a typed rating, the comment, or
    /cancel of the comment; anything else goes on to its usual handler."""
    services = ctx.services
    message = update.effective_message
    user = update.effective_user
    if message is None or user is None or not services.followup.has_gone_out():
        return
    if _busy_elsewhere(ctx):
        return
    text = message.text or ""
    is_command = text.startswith("/")
    state = await services.followup.state(user.id)
    if not state.received:
        return
    digit = TYPED_RATING.fullmatch(text)
    if is_command:
        if state.awaiting_comment:
            await services.followup.skip_comment(user.id)
            if text.split(maxsplit=1)[0].split("@", 1)[0] == "/cancel":
                t = await tr(update, ctx)
                await reply(update, t._("All right, no comment. Thank you for your rating!"))
                raise ApplicationHandlerStop
        return  # any other command leaves the comment prompt and is handled as usual
    if digit:  # a rating typed instead of tapped, a first one or a change
        answer = await _rate(update, ctx, int(digit[1]))
        if answer is not None:
            await reply(update, *answer)
            raise ApplicationHandlerStop
        return
    if not state.awaiting_comment:
        return
    t = await tr(update, ctx)
    if message.text is None:
        await reply(
            update, t._("Please send your comment as text, or tap Skip."), _skip_keyboard(t)
        )
        raise ApplicationHandlerStop
    try:
        await services.followup.comment(user.id, message.text)
    except CommentTooLong as exc:
        await reply(
            update,
            t._(
                "This comment is too long: {length} characters, {max} at most. Nothing has "
                "been sent. Please shorten it and send it again, or tap Skip."
            ).format(
                length=t.number(exc.length),
                max=t.number(COMMENT_MAX),
            ),
            _skip_keyboard(t),
        )
        raise ApplicationHandlerStop from None
    except EmptyComment:
        await reply(update, _comment_prompt(t), _skip_keyboard(t))
        raise ApplicationHandlerStop from None
    await reply(update, t._("Thank you! Your comment has been passed on to the organisers."))
    raise ApplicationHandlerStop


# --- /feedback (admins) -----------------------------------------------------------------------


def _when(t: Translator, when: datetime, ctx: BotContext) -> str:
    tz = ctx.services.event.tz
    return f"{format_skeleton('MMMd', when.astimezone(tz), locale=t.lang)}, {t.time(when, tz)}"


def _entry(t: Translator, comment: Comment, ctx: BotContext) -> str:
    text = comment.comment
    if len(text) > SHOWN_MAX:
        text = text[:SHOWN_MAX].rstrip() + "…"
    when = _when(t, comment.commented_at, ctx)
    head = f"<b>{comment.rating}/5</b> · {comment.language.upper()} · {when}"
    return f"{head}\n{escape(text)}"


@admin_only
async def feedback(update: Update, ctx: BotContext) -> None:
    """/feedback: the latest comments, newest first, and every rating and comment as CSV."""
    in_background(update, ctx, _send_feedback(update, ctx))


async def _send_feedback(update: Update, ctx: BotContext) -> None:
    t = await tr(update, ctx)
    service = ctx.services.followup
    summary = await service.summary()
    if summary.responses == 0:
        await reply(update, t._("No feedback yet."))
        return
    n = summary.responses
    header = "💬 <b>" + t._("Feedback on the webinar") + "</b>\n"
    header += t.n_(
        "{count} response, average {average} out of 5",
        "{count} responses, average {average} out of 5",
        n,
    ).format(count=t.number(n), average=views.rating_average(t, summary))
    header += "\n"
    if summary.comments:
        header += t.n_(
            "{count} comment, newest first.", "{count} comments, newest first.", summary.comments
        ).format(count=t.number(summary.comments))
    else:
        header += t._("No comments yet.")
    header += " " + t._("The CSV file below has every rating and comment.")
    comments = await service.newest_comments(PAGE)
    for text in pages(header, [_entry(t, c, ctx) for c in comments]):
        await reply(update, text)
    path, count = await service.export(t)
    caption = t.n_("{count} response", "{count} responses", count).format(
        count=t.number(count)
    )
    await send_csv(update, ctx, path, f"feedback-{stamp(ctx)}.csv", caption)


def register(app: Application, early_group: int, button_group: int) -> None:
    """Typed answers in `early_group`, after the /ask prompt's; the buttons in `button_group`
    (before group 0's conversations); /feedback in group 0."""
    private = filters.ChatType.PRIVATE
    app.add_handler(MessageHandler(private & filters.UpdateType.MESSAGE, typed), early_group)
    app.add_handler(
        CallbackQueryHandler(rating_pressed, pattern=rf"^{RATE_PREFIX}[1-5]$"), button_group
    )
    app.add_handler(CallbackQueryHandler(skip_pressed, pattern=rf"^{SKIP}$"), button_group)
    app.add_handler(CommandHandler("feedback", feedback, private))
