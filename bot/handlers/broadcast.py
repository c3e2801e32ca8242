"""/broadcast for admins: audience, text(s), preview, confirm; then sending in the background.

Every command and button here goes through `admin_only`. The conversation is persistent, so
a restart in the middle of writing keeps the draft; a broadcast being sent resumes at start-up.
"""

from __future__ import annotations

import logging
from enum import IntEnum
from html import escape
from typing import Any

from telegram import Update
from telegram.error import TelegramError
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ConversationHandler,
    MessageHandler,
    filters,
)

from bot.handlers.common import (
    SERVICES_KEY,
    BotContext,
    acknowledge,
    add_conversation,
    admin_only,
    answer_expired,
    keyboard,
    reply,
    tr,
)
from bot.i18n import LANGUAGES, Translator
from bot.sending import Outbox
from bot.services import Services
from bot.services.broadcast import AUDIENCES, ONE_TEXT, AlreadyRunning, Progress

log = logging.getLogger(__name__)

DRAFT = "broadcast"
JOB_KWARGS = {"misfire_grace_time": None}


class Step(IntEnum):
    AUDIENCE = 1
    MODE = 2
    TEXT = 3
    CONFIRM = 4


# --- words ---------------------------------------------------------------------------------


def audience_label(t: Translator, audience: str) -> str:
    if audience == "all":
        return t._("All registrants")
    if audience == "waiting":
        return t._("Waiting list")
    return t._("Registrants reading {language}").format(
        language=t.language_name(audience.removeprefix("lang:"))
    )


def progress_text(t: Translator, progress: Progress) -> str:
    b = progress.broadcast
    head = t._("Broadcast #{id} to: {audience}").format(
        id=b.id, audience=escape(audience_label(t, b.audience))
    )
    counts = "\n".join(
        [
            t._("Delivered: {n}").format(n=progress.sent),
            t._("Blocked the bot: {n}").format(n=progress.blocked),
            t._("Failed: {n}").format(n=progress.failed),
        ]
    )
    if progress.finished:
        status = "✅ " + t.n_(
            "Finished: {done} of {total} recipient.",
            "Finished: {done} of {total} recipients.",
            progress.total,
        ).format(done=progress.done, total=progress.total)
    else:
        status = "⏳ " + t.n_(
            "Sending… {done} of {total} recipient.",
            "Sending… {done} of {total} recipients.",
            progress.total,
        ).format(done=progress.done, total=progress.total)
    return f"📣 <b>{head}</b>\n{status}\n\n{counts}"


def _draft(ctx: BotContext) -> dict[str, Any]:
    assert ctx.user_data is not None
    return ctx.user_data.setdefault(DRAFT, {})


def _text_prompt(t: Translator, key: str) -> str:
    if key == ONE_TEXT:
        body = t._("Send the text of the message, as the recipients should read it.")
    else:
        body = t._("Send the text for the recipients who read {language}.").format(
            language=t.language_name(key)
        )
    return body + "\n\n" + t._("Send /cancel to stop.")


# --- the conversation ----------------------------------------------------------------------


@admin_only
async def begin(update: Update, ctx: BotContext) -> int:
    """/broadcast: refuse while one is being sent; else offer the audiences."""
    t = await tr(update, ctx)
    services = ctx.services
    running = await services.broadcasts.running()
    if running is not None:
        await reply(
            update,
            t._(
                "Broadcast #{id} is still being sent. Wait for its report before starting "
                "another one."
            ).format(id=running.id),
        )
        return ConversationHandler.END
    ctx.user_data[DRAFT] = {}  # type: ignore[index]
    sizes = await services.broadcasts.audience_sizes()
    rows = [
        [(f"{audience_label(t, audience)} ({sizes[audience]})", f"bc:aud:{audience}")]
        for audience in AUDIENCES
    ]
    rows.append([(t._("Cancel"), "bc:cancel")])
    await reply(update, t._("Who should receive this broadcast?"), keyboard(rows))
    return Step.AUDIENCE


@admin_only
async def got_audience(update: Update, ctx: BotContext) -> int | None:
    query = update.callback_query
    assert query is not None and query.data is not None
    audience = query.data.removeprefix("bc:aud:")
    if audience not in AUDIENCES:
        await answer_expired(update, ctx)
        return None
    t = await tr(update, ctx)
    languages = await ctx.services.broadcasts.languages(audience)
    if not languages:
        await query.answer(t._("Nobody is in this audience."), show_alert=True)
        return None
    await acknowledge(query)
    await query.edit_message_text(
        t.n_(
            "Audience: {audience} ({n} recipient).",
            "Audience: {audience} ({n} recipients).",
            languages.total(),
        ).format(audience=escape(audience_label(t, audience)), n=languages.total())
    )
    draft = _draft(ctx)
    draft.update(audience=audience, texts={})
    if audience.startswith("lang:"):
        draft["keys"] = [ONE_TEXT]
        await reply(update, _text_prompt(t, ONE_TEXT))
        return Step.TEXT
    markup = keyboard(
        [
            [(t._("One text for everyone"), "bc:mode:one")],
            [(t._("One text per language"), "bc:mode:each")],
            [(t._("Cancel"), "bc:cancel")],
        ]
    )
    await reply(update, t._("One text for everyone, or one text per language?"), markup)
    return Step.MODE


@admin_only
async def got_mode(update: Update, ctx: BotContext) -> int | None:
    query = update.callback_query
    assert query is not None and query.data is not None
    draft = _draft(ctx)
    if "audience" not in draft or query.data not in ("bc:mode:one", "bc:mode:each"):
        await answer_expired(update, ctx)
        return None
    await acknowledge(query, remove_keyboard=True)
    if query.data == "bc:mode:one":
        draft["keys"] = [ONE_TEXT]
    else:
        present = await ctx.services.broadcasts.languages(draft["audience"])
        draft["keys"] = [lang for lang in LANGUAGES if present[lang]] or list(LANGUAGES)
    t = await tr(update, ctx)
    await reply(update, _text_prompt(t, draft["keys"][0]))
    return Step.TEXT


@admin_only
async def got_text(update: Update, ctx: BotContext) -> int:
    message = update.effective_message
    assert message is not None
    draft = _draft(ctx)
    t = await tr(update, ctx)
    if "keys" not in draft:
        await reply(update, t._("This broadcast draft was lost. Send /broadcast to start again."))
        return ConversationHandler.END
    texts: dict[str, str] = draft["texts"]
    missing = [key for key in draft["keys"] if key not in texts]
    texts[missing[0]] = message.text_html  # the admin's formatting, everything else escaped
    if len(missing) > 1:
        await reply(update, _text_prompt(t, missing[1]))
        return Step.TEXT
    await preview(update, ctx, t, draft)
    return Step.CONFIRM


async def preview(update: Update, ctx: BotContext, t: Translator, draft: dict[str, Any]) -> None:
    """Each group's text exactly as they will get it, then the totals and the buttons."""
    languages = await ctx.services.broadcasts.languages(draft["audience"])
    texts: dict[str, str] = draft["texts"]
    for key, text in texts.items():
        if key == ONE_TEXT:
            head = t._("Preview: every recipient ({n}) will get the next message.").format(
                n=languages.total()
            )
        else:
            head = t._("Preview for the recipients who read {language} ({n}):").format(
                language=t.language_name(key), n=languages[key]
            )
        await reply(update, f"<i>{escape(head)}</i>")
        await reply(update, text)
    breakdown = ", ".join(
        t.label(t.language_name(lang), str(languages[lang]))
        for lang in LANGUAGES
        if languages[lang]
    )
    summary = t.n_(
        "Send this broadcast to {n} recipient ({breakdown})?",
        "Send this broadcast to {n} recipients ({breakdown})?",
        languages.total(),
    ).format(n=languages.total(), breakdown=breakdown)
    markup = keyboard([[(t._("Send now"), "bc:send")], [(t._("Cancel"), "bc:cancel")]])
    await reply(update, summary, markup)


@admin_only
async def send_now(update: Update, ctx: BotContext) -> int | None:
    """Confirm: record the broadcast, turn this message into its progress report, send."""
    query = update.callback_query
    assert query is not None and update.effective_user is not None
    draft = _draft(ctx)
    if not draft.get("texts") or any(key not in draft["texts"] for key in draft.get("keys", ())):
        await answer_expired(update, ctx)
        return None
    t = await tr(update, ctx)
    services = ctx.services
    admin_id = update.effective_user.id
    languages = await services.broadcasts.languages(draft["audience"])
    try:
        broadcast = await services.broadcasts.create(admin_id, draft["audience"], draft["texts"])
    except AlreadyRunning:
        await acknowledge(query)
        await reply(
            update,
            t._("Another broadcast is being sent. Wait for its report, then start again."),
        )
        return ConversationHandler.END
    await services.audit.record(admin_id, "broadcast", f"#{broadcast.id} {broadcast.audience}")
    await acknowledge(query)
    ctx.user_data.pop(DRAFT, None)  # type: ignore[union-attr]
    progress = await services.broadcasts.progress(broadcast, languages.total(), False)
    message = await query.edit_message_text(progress_text(t, progress))
    if not isinstance(message, bool):
        await services.broadcasts.set_progress_message(
            broadcast.id, message.chat_id, message.message_id
        )
    ctx.application.create_task(
        run_broadcast(ctx.application, broadcast.id), name=f"broadcast:{broadcast.id}"
    )
    return ConversationHandler.END


@admin_only
async def cancel(update: Update, ctx: BotContext) -> int:
    t = await tr(update, ctx)
    if update.callback_query:
        await acknowledge(update.callback_query, remove_keyboard=True)
    ctx.user_data.pop(DRAFT, None)  # type: ignore[union-attr]
    await reply(update, t._("Broadcast cancelled. Nothing was sent."))
    return ConversationHandler.END


@admin_only
async def edited(update: Update, ctx: BotContext) -> None:
    """An edited message while writing a broadcast: not read, since it may be a text already
    taken (an edit must not become the next language's text)."""
    t = await tr(update, ctx)
    await reply(
        update,
        t._(
            "An edited message changes nothing here. To correct a text, send /cancel and start "
            "the broadcast again."
        ),
    )


@admin_only
async def unexpected(update: Update, ctx: BotContext) -> None:
    """Anything else while writing a broadcast: say what is expected."""
    t = await tr(update, ctx)
    await reply(
        update, t._("Please finish the broadcast with the buttons above, or send /cancel.")
    )


@admin_only
async def stale_button(update: Update, ctx: BotContext) -> None:
    await answer_expired(update, ctx)


# --- sending -------------------------------------------------------------------------------


async def run_broadcast(app: Application, broadcast_id: int) -> None:
    """Send a broadcast, editing the admin's progress message; resumable."""
    services: Services = app.bot_data[SERVICES_KEY]
    outbox = Outbox(app.bot)
    broadcast = await services.broadcasts.get(broadcast_id)
    if broadcast is None:
        return
    t = services.i18n(await services.users.language(broadcast.admin_id))
    last_text: str | None = None

    async def on_progress(progress: Progress) -> None:
        nonlocal last_text
        text = progress_text(t, progress)
        b = await services.broadcasts.get(broadcast_id)
        if b and b.progress_chat_id and b.progress_message_id and text != last_text:
            last_text = text
            await outbox.edit(b.progress_chat_id, b.progress_message_id, text)
        if progress.finished:  # a new message, so that the admin is notified
            try:  # an answer to the admin, not bulk: it need not wait behind anything
                await app.bot.send_message(broadcast.admin_id, text)
            except TelegramError as exc:
                log.warning("Could not send the broadcast report: %s", exc)

    await services.broadcasts.run(
        broadcast_id, outbox, on_progress, should_stop=lambda: not app.running
    )


async def _resume_job(ctx: BotContext) -> None:
    assert ctx.job is not None
    await run_broadcast(ctx.application, ctx.job.data)


async def resume(app: Application) -> None:
    """At start-up (post_init): resume the broadcast a stop or a crash interrupted."""
    services: Services = app.bot_data[SERVICES_KEY]
    broadcast = await services.broadcasts.recover()
    if broadcast is None:
        return
    log.info("Resuming broadcast %d", broadcast.id)
    assert app.job_queue is not None
    # A job, so that it starts once the Application runs (and stops when it stops).
    app.job_queue.run_once(
        _resume_job, when=0, data=broadcast.id, name=broadcast.kind, job_kwargs=JOB_KWARGS
    )


def _conversation() -> ConversationHandler:
    private = filters.ChatType.PRIVATE
    return ConversationHandler(
        entry_points=[CommandHandler("broadcast", begin, private)],
        states={
            Step.AUDIENCE: [CallbackQueryHandler(got_audience, pattern=r"^bc:aud:")],
            Step.MODE: [CallbackQueryHandler(got_mode, pattern=r"^bc:mode:")],
            Step.TEXT: [
                MessageHandler(
                    filters.UpdateType.MESSAGE & filters.TEXT & ~filters.COMMAND, got_text
                )
            ],
            Step.CONFIRM: [CallbackQueryHandler(send_now, pattern=r"^bc:send$")],
        },
        fallbacks=[
            MessageHandler(filters.UpdateType.EDITED_MESSAGE, edited),
            CommandHandler("cancel", cancel),
            CallbackQueryHandler(cancel, pattern=r"^bc:cancel$"),
            CallbackQueryHandler(stale_button, pattern=r"^bc:"),
            MessageHandler(filters.ALL, unexpected),
        ],
        name="broadcast",
        persistent=True,
    )


def register(app: Application) -> None:
    add_conversation(app, _conversation)
