"""/edit for admins: change the event from Telegram (time, links, capacity, deadline).

Every command and button here goes through `admin_only`. The steps: a field (buttons), its
new value (typed; a bad value gets its reason and a new try), a preview (old → new in the
event's zone, and who will be told), Confirm or Cancel. Confirm stores the change through
`EventState` (with its audit row and its pending notice, in one transaction), then does what
follows: reminders rebuilt for a new time, the notice sent in the background (resumed at
start-up after a crash), seats filled from the waiting list for a higher capacity.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import replace
from datetime import datetime
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

from bot import views
from bot.event import Event
from bot.handlers import feedback, my_registration, reminders
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
from bot.i18n import N_, Translator
from bot.sending import Outbox
from bot.services import Services
from bot.services.calendar import FILENAME, ics
from bot.services.change_notices import SendFile
from bot.services.event_state import (
    BadValue,
    Field,
    Problem,
    parse_capacity,
    parse_deadline,
    parse_schedule,
    parse_url,
    schedule_of,
    unchanged,
    value_of,
)
from bot.services.fanout import Claim, Delivery, Document
from bot.services.timezone import city
from bot.storage.deliveries import DeliveryStatus, Recipient
from bot.storage.event_changes import StoredChange

log = logging.getLogger(__name__)

DRAFT = "edit"
JOB_KWARGS = {"misfire_grace_time": None}

# TRANSLATORS: the word an organiser types for "no limit" on the number of places; one word,
# lower case, as in "Send the number of places, or “none” for no limit." Any language's word
# is accepted.
NO_LIMIT_WORD = N_("none")
# TRANSLATORS: the word an organiser types to keep registration open until the session ends;
# one word, lower case. Any language's word is accepted.
UNTIL_END_WORD = N_("end")

FIELD_LABELS: dict[Field, str] = {
    Field.SCHEDULE: N_("Date and time"),
    Field.JOIN_URL: N_("Access link"),
    Field.RECORDING_URL: N_("Recording link"),
    Field.CAPACITY: N_("Capacity"),
    Field.DEADLINE: N_("Registration deadline"),
}


class Step(IntEnum):
    FIELD = 1
    VALUE = 2
    CONFIRM = 3


# --- words ---------------------------------------------------------------------------------


def shown(t: Translator, event: Event, field: Field, value: Any) -> str:
    """A stored value of `field` as the admin reads it, in the event's zone."""
    zone = event.tz.key
    if field is Field.SCHEDULE:
        start, end = schedule_of(value, event)
        return views.moment(t, start, end, zone)
    if field is Field.CAPACITY:
        return t._("no limit") if value is None else str(value)
    if field is Field.DEADLINE:
        if value is None:
            return t._("when the session ends")
        return views.moment(t, datetime.fromisoformat(value), None, zone)
    return escape(value) if value else t._("not set")


def example(event: Event, field: Field) -> str:
    """The value in force written as the admin should type it."""
    local = event.start.astimezone(event.tz)
    if field is Field.SCHEDULE:
        end = event.end.astimezone(event.tz)
        return f"{local:%Y-%m-%d %H:%M}-{end:%H:%M}"
    closes = event.registration_closes.astimezone(event.tz)
    return f"{closes:%Y-%m-%d %H:%M}"


def prompt(t: Translator, event: Event, field: Field) -> str:
    zone = escape(city(t, event.tz.key))
    if field is Field.SCHEDULE:
        # TRANSLATORS: {zone} is the city the event's time zone is known by (Geneva).
        ask = t._(
            "Send the new date and time in the event's time zone ({zone}) as "
            "YYYY-MM-DD HH:MM-HH:MM, for example: {example}"
        ).format(zone=zone, example=example(event, field))
    elif field in (Field.JOIN_URL, Field.RECORDING_URL):
        ask = t._("Send the new link. It must start with https://.")
    elif field is Field.CAPACITY:
        ask = t._("Send the number of places, or “{none}” for no limit.").format(
            none=t._(NO_LIMIT_WORD)
        )
    else:
        # TRANSLATORS: {zone} is the city the event's time zone is known by (Geneva).
        ask = t._(
            "Send the date and time registration closes, in the event's time zone ({zone}), "
            "as YYYY-MM-DD HH:MM (for example: {example}), or “{end}” to keep it open until "
            "the session ends."
        ).format(zone=zone, example=example(event, field), end=t._(UNTIL_END_WORD))
    now = t._("{label}: {value}").format(
        label=t._(FIELD_LABELS[field]), value=shown(t, event, field, value_of(event, field))
    )
    return "\n\n".join([now, ask, t._("Send /cancel to stop.")])


def problem_text(t: Translator, event: Event, field: Field, problem: Problem) -> str:
    if problem is Problem.NO_SUCH_TIME:
        # TRANSLATORS: {zone} is the city the event's time zone is known by (Geneva).
        text = t._("This time does not exist in {zone}: the clocks change then.").format(
            zone=escape(city(t, event.tz.key))
        )
    elif problem is Problem.PAST:
        text = t._("This moment has already passed. Please send a time in the future.")
    elif problem is Problem.END_BEFORE_START:
        text = t._("The end must be after the start.")
    elif problem is Problem.NOT_HTTPS:
        text = t._("The link must start with https://.")
    elif problem is Problem.NOT_NUMBER:
        text = t._("Please send a whole number greater than zero, or “{none}”.").format(
            none=t._(NO_LIMIT_WORD)
        )
    elif problem is Problem.AFTER_END:
        text = t._("Registration cannot close after the session ends ({end}).").format(
            end=views.moment(t, event.start, event.end, event.tz.key)
        )
    elif field in (Field.JOIN_URL, Field.RECORDING_URL):
        text = t._("This is not a valid link.")
    else:
        text = (
            t._("I could not read this. Please write it as in the example.")
            + "\n"
            + (example(event, field))
        )
    return "⚠️ " + text + "\n\n" + t._("Please try again, or send /cancel.")


def _draft(ctx: BotContext) -> dict[str, Any]:
    assert ctx.user_data is not None
    return ctx.user_data.setdefault(DRAFT, {})


def _parse(field: Field, text: str, event: Event, services: Services) -> Any:
    now = services.clock()
    if field is Field.SCHEDULE:
        return parse_schedule(text, event, now)
    if field in (Field.JOIN_URL, Field.RECORDING_URL):
        return parse_url(text)
    words = services.i18n.everywhere
    if field is Field.CAPACITY:
        return parse_capacity(text, words(NO_LIMIT_WORD))
    return parse_deadline(text, event, now, words(UNTIL_END_WORD))


# --- the conversation ----------------------------------------------------------------------


@admin_only
async def begin(update: Update, ctx: BotContext) -> int:
    """/edit: which value to change."""
    t = await tr(update, ctx)
    ctx.user_data[DRAFT] = {}  # type: ignore[index]
    rows = [[(t._(label), f"ed:f:{field.value}")] for field, label in FIELD_LABELS.items()]
    rows.append([(t._("Cancel"), "ed:cancel")])
    await reply(update, t._("What do you want to change?"), keyboard(rows))
    return Step.FIELD


@admin_only
async def got_field(update: Update, ctx: BotContext) -> int | None:
    query = update.callback_query
    assert query is not None and query.data is not None
    try:
        field = Field(query.data.removeprefix("ed:f:"))
    except ValueError:
        await answer_expired(update, ctx)
        return None
    await acknowledge(query, remove_keyboard=True)
    _draft(ctx).update(field=field.value)
    t = await tr(update, ctx)
    await reply(update, prompt(t, ctx.services.event, field))
    return Step.VALUE


@admin_only
async def got_value(update: Update, ctx: BotContext) -> int:
    message = update.effective_message
    assert message is not None and message.text is not None
    draft = _draft(ctx)
    t = await tr(update, ctx)
    if "field" not in draft:
        await reply(update, t._("This change was lost. Send /edit to start again."))
        return ConversationHandler.END
    field = Field(draft["field"])
    services = ctx.services
    event = services.event
    try:
        value = _parse(field, message.text, event, services)
    except BadValue as exc:
        await reply(update, problem_text(t, event, field, exc.problem))
        return Step.VALUE
    if unchanged(event, field, value):
        ctx.user_data.pop(DRAFT, None)  # type: ignore[union-attr]
        await reply(update, t._("This is already the value in force. Nothing was changed."))
        return ConversationHandler.END
    token = secrets.token_hex(8)
    draft.update(value=value, token=token)
    await preview(update, ctx, t, field, value, token)
    return Step.CONFIRM


async def preview(
    update: Update, ctx: BotContext, t: Translator, field: Field, value: Any, token: str
) -> None:
    """Old → new, who will be told, and the buttons."""
    services = ctx.services
    event = services.event
    label = t._(FIELD_LABELS[field])
    old = shown(t, event, field, value_of(event, field))
    lines = [
        "<b>" + t._("Please check this change:") + "</b>",
        t._("{label}: {old} → {new}").format(
            label=label, old=old, new=shown(t, event, field, value)
        ),
    ]
    buttons = [[(t._("Confirm"), f"ed:ok:{token}")]]
    if field is Field.SCHEDULE:
        n = await services.notices.to_tell(field)
        lines.append(
            t.n_(
                "{n} registrant (waiting list included) will be told, with a new calendar "
                "file. The reminders will follow the new time.",
                "{n} registrants (waiting list included) will be told, with a new calendar "
                "file. The reminders will follow the new time.",
                n,
            ).format(n=n)
        )
    elif field is Field.JOIN_URL:
        n = await services.notices.to_tell(field)
        lines.append(
            t.n_(
                "Send the link now to {n} registered participant, or only with the reminders?",
                "Send the link now to the {n} registered participants, or only with the "
                "reminders?",
                n,
            ).format(n=n)
        )
        buttons = [
            [(t._("Confirm and send it now"), f"ed:ok:{token}:now")],
            [(t._("Confirm, send it with the reminders"), f"ed:ok:{token}")],
        ]
    elif field is Field.CAPACITY:
        active, waiting = await services.registrations.counts()
        if value is not None and active > value:
            lines.append(
                t.n_(
                    "{n} person has a confirmed place, more than the new capacity: nobody "
                    "will lose their place, and new registrants will join the waiting list.",
                    "{n} people have a confirmed place, more than the new capacity: nobody "
                    "will lose their place, and new registrants will join the waiting list.",
                    active,
                ).format(n=active)
            )
        else:
            moving = waiting if value is None else max(0, min(waiting, value - active))
            lines.append(
                t.n_(
                    "{n} person will move from the waiting list to a confirmed place, and be "
                    "told.",
                    "{n} people will move from the waiting list to a confirmed place, and be "
                    "told.",
                    moving,
                ).format(n=moving)
            )
    else:
        lines.append(t._("Nobody will be sent a message about this change."))
    buttons.append([(t._("Cancel"), "ed:cancel")])
    await reply(update, "\n\n".join(lines), keyboard(buttons))


@admin_only
async def confirm(update: Update, ctx: BotContext) -> int | None:
    """Confirm: store the change, then what follows from it."""
    query = update.callback_query
    assert query is not None and query.data is not None and update.effective_user is not None
    _, _, token, *rest = [*query.data.split(":"), ""]
    send_now = rest[0] == "now"
    draft = _draft(ctx)
    services = ctx.services
    t = await tr(update, ctx)
    if draft.get("token") != token or "value" not in draft:
        if token and await services.events.saved(token):
            await acknowledge(query, remove_keyboard=True)
            await reply(update, t._("This change is saved already."))
            return ConversationHandler.END
        await answer_expired(update, ctx)
        return None
    field = Field(draft["field"])
    announce = field is Field.SCHEDULE or (field is Field.JOIN_URL and send_now)
    change = await services.events.change(
        update.effective_user.id, token, field, draft["value"], announce
    )
    await acknowledge(query, remove_keyboard=True)
    ctx.user_data.pop(DRAFT, None)  # type: ignore[union-attr]
    if change is None:
        await reply(update, t._("This change is saved already."))
        return ConversationHandler.END
    app = ctx.application
    lines = ["✅ " + t._("Saved. It is in force from now on.")]
    if change.announce == "pending":
        lines.append(t._("Telling the registrants now; I will report here when it is done."))
    await reply(update, "\n".join(lines))
    await follow_up(app, change)
    return ConversationHandler.END


async def follow_up(app: Application, change: StoredChange) -> None:
    """What a stored change calls for, after it is in force."""
    if change.field == Field.SCHEDULE:
        await reminders.schedule(app, moved=True)
        feedback.place_follow_up(app)  # the follow-up follows the new end
    if change.field == Field.CAPACITY:
        app.create_task(_fill_seats(app), name=f"event-change:{change.id}:seats")
    if change.announce == "pending":
        start_notice(app, change.id)


async def _fill_seats(app: Application) -> None:
    """Seats freed by a higher capacity go to the waiting list, in order, each told as usual
    (a crash in between: start-up tells whoever was promoted and not told)."""
    services: Services = app.bot_data[SERVICES_KEY]
    for registration in await services.registrations.fill_free_seats():
        await my_registration.notify_promoted(app.bot, services, registration)


@admin_only
async def cancel(update: Update, ctx: BotContext) -> int:
    t = await tr(update, ctx)
    if update.callback_query:
        await acknowledge(update.callback_query, remove_keyboard=True)
    ctx.user_data.pop(DRAFT, None)  # type: ignore[union-attr]
    await reply(update, t._("Nothing was changed."))
    return ConversationHandler.END


@admin_only
async def unexpected(update: Update, ctx: BotContext) -> None:
    t = await tr(update, ctx)
    await reply(update, t._("Please finish the change with the buttons above, or send /cancel."))


@admin_only
async def stale_button(update: Update, ctx: BotContext) -> None:
    await answer_expired(update, ctx)


# --- telling the registrants ---------------------------------------------------------------


def start_notice(app: Application, change_id: int) -> None:
    """Send the notice of a change in the background (a job: it starts once the Application
    runs, and stops when it stops)."""
    assert app.job_queue is not None
    app.job_queue.run_once(
        _notice_job,
        when=0,
        data=change_id,
        name=f"event-change:{change_id}",
        job_kwargs=JOB_KWARGS,
    )


async def _notice_job(ctx: BotContext) -> None:
    assert ctx.job is not None
    await run_notice(ctx.application, ctx.job.data)


async def run_notice(app: Application, change_id: int) -> None:
    """Tell every registrant concerned of change `change_id`; report to its admin."""
    services: Services = app.bot_data[SERVICES_KEY]
    outbox = Outbox(app.bot)

    async def send(change: StoredChange, recipient: Recipient, claim: Claim) -> Delivery:
        t = services.i18n(recipient.language)
        event = services.event
        zone, place = recipient.timezone, recipient.place
        if change.field == Field.SCHEDULE:
            start, end = schedule_of(change.previous, event)
            text = views.moved(t, replace(event, start=start, end=end), event, zone, place)
        else:
            text = views.new_link(t, event, zone, place, replaced=bool(change.previous))
        return await outbox.send(recipient.user_id, text, claim)

    tally = await services.notices.run(
        change_id, send, send_calendar(app), should_stop=lambda: not app.running
    )
    if tally is None or not tally.completed:
        return
    change = await services.events.repo.get(change_id)
    if change is None:
        return
    t = services.i18n(await services.users.language(change.admin_id))
    counts = tally.counts
    text = t._(
        "Change #{id}: the registrants were told. Delivered: {sent}, blocked the bot: "
        "{blocked}, failed: {failed}."
    ).format(
        id=change.id,
        sent=counts[DeliveryStatus.SENT],
        blocked=counts[DeliveryStatus.BLOCKED],
        failed=counts[DeliveryStatus.FAILED],
    )
    try:
        await app.bot.send_message(change.admin_id, text)
    except TelegramError as exc:
        log.warning("Could not send the change report: %s", exc)


def send_calendar(app: Application) -> SendFile:
    """Sends the new .ics (same UID, higher SEQUENCE) that follows the notice of a new time,
    in bulk like the notice, with its claim (see `bot.services.change_notices`)."""
    services: Services = app.bot_data[SERVICES_KEY]
    outbox = Outbox(app.bot)

    async def send(user_id: int, language: str, claim: Claim) -> Delivery:
        t = services.i18n(language)
        registration = await services.registrations.current(user_id)
        status = registration.status if registration else None
        data = ics(t, services.event, user_id, status, services.clock())
        caption = t._("Open this file to update the webinar in your calendar.")
        return await outbox.send_document(user_id, Document(data, FILENAME, caption), claim)

    return send


async def resume(app: Application) -> None:
    """At start-up (post_init): notices a stop or a crash interrupted go on, and the calendar
    files that did not follow a notice sent are sent."""
    services: Services = app.bot_data[SERVICES_KEY]
    recovered = await services.notices.recover()
    for change in recovered.changes:
        log.info("Resuming the notice of change #%d", change.id)
        start_notice(app, change.id)
    if recovered.files:
        assert app.job_queue is not None
        app.job_queue.run_once(
            _files_job,
            when=0,
            data=recovered.files,
            name="event-change:files",
            job_kwargs=JOB_KWARGS,
        )


async def _files_job(ctx: BotContext) -> None:
    assert ctx.job is not None
    app = ctx.application
    services: Services = app.bot_data[SERVICES_KEY]
    await services.notices.send_files(
        ctx.job.data, send_calendar(app), should_stop=lambda: not app.running
    )


def _conversation() -> ConversationHandler:
    private = filters.ChatType.PRIVATE
    return ConversationHandler(
        entry_points=[CommandHandler("edit", begin, private)],
        states={
            Step.FIELD: [CallbackQueryHandler(got_field, pattern=r"^ed:f:")],
            Step.VALUE: [MessageHandler(filters.TEXT & ~filters.COMMAND, got_value)],
            Step.CONFIRM: [CallbackQueryHandler(confirm, pattern=r"^ed:ok:")],
        },
        fallbacks=[
            CommandHandler("cancel", cancel),
            CallbackQueryHandler(cancel, pattern=r"^ed:cancel$"),
            CallbackQueryHandler(confirm, pattern=r"^ed:ok:"),
            CallbackQueryHandler(stale_button, pattern=r"^ed:"),
            MessageHandler(filters.ALL, unexpected),
        ],
        name="edit",
        persistent=True,
    )


async def my_id(update: Update, ctx: BotContext) -> None:
    """/myid: the sender's numeric Telegram id, and nothing else (for ADMIN_IDS)."""
    user = update.effective_user
    assert user is not None
    await reply(update, f"<code>{user.id}</code>")


def register(app: Application) -> None:
    add_conversation(app, _conversation)
    # Presses outside the conversation: a Confirm handled again after a restart, old buttons.
    app.add_handler(CallbackQueryHandler(confirm, pattern=r"^ed:ok:"))
    app.add_handler(CallbackQueryHandler(stale_button, pattern=r"^ed:"))
    app.add_handler(CommandHandler("myid", my_id, filters.ChatType.PRIVATE))
