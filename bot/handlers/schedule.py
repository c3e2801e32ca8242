"""/timezone and /calendar: when the webinar is, in the participant's own clock and calendar.

/timezone is a one-shot prompt rather than a ConversationHandler: it offers buttons and, until
the next command, reads a typed city. Any command drops the prompt (so later chatter is not
taken for a city); /cancel drops it with a word. The flag lives in `user_data`, which the
persistence stores with each update, so a restart keeps it.
"""

from __future__ import annotations

import contextlib
from html import escape

from telegram import Bot, Message, Update
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
from bot.handlers.common import BotContext, acknowledge, answer_expired, keyboard, reply, tr
from bot.i18n import Translator
from bot.services import Services
from bot.services.calendar import FILENAME, ics
from bot.services.fanout import Document
from bot.services.timezone import city, example_zone, valid_zone, zone_choices, zone_label
from bot.services.validation import clean_text
from bot.timezones import match_zone

PROMPT = "tz_prompt"  # user_data key: the /timezone prompt waits for a typed city
SET = "tz:set:"  # callback data prefix; the rest is an IANA zone name


class _AwaitingCity(filters.UpdateFilter):
    """Updates from users whose /timezone prompt is waiting for a typed city."""

    def __init__(self, app: Application) -> None:
        super().__init__(name="awaiting_city")
        self.app = app

    def filter(self, update: Update) -> bool:
        user = update.effective_user
        return user is not None and PROMPT in self.app.user_data.get(user.id, {})


# --- /timezone ----------------------------------------------------------------------------


async def offer_zones(update: Update, ctx: BotContext, t: Translator, intro: str) -> None:
    """Send `intro` with city buttons for the user's country and the event's zone, and wait
    for a typed city."""
    services = ctx.services
    user = update.effective_user
    assert user is not None and ctx.user_data is not None
    event = services.event
    country = await services.registrations.country(user.id)
    rows = [
        [(zone_label(t, zone, event.start), SET + zone)]
        for zone in zone_choices(country, event.start)
    ]
    rows.append(
        [
            (
                t._("Use the event's time zone ({city})").format(city=city(t, event.tz.key)),
                SET + event.tz.key,
            )
        ]
    )
    hint = t._(
        "Tap a button, or type the name of your city or time zone "
        "(for example: Dakar, Bogotá, America/New_York)."
    )
    ctx.user_data[PROMPT] = True
    await reply(update, f"{intro}\n\n{hint}", keyboard(rows))


async def timezone_command(update: Update, ctx: BotContext) -> None:
    """/timezone: show the current zone and offer to change it."""
    t = await tr(update, ctx)
    user = update.effective_user
    assert user is not None
    services = ctx.services
    await services.users.start(user.id, user.language_code, None)
    record = await services.users.get(user.id)
    current = record.timezone if record else None
    event = services.event
    if current and current != event.tz.key:
        intro = t._("I show the webinar times in the event's time zone and in yours: {zone}.")
        place = record.place if record else None
        intro = intro.format(zone=escape(zone_label(t, current, event.start, place)))
    else:
        intro = t._("I show the webinar times in the event's time zone: {zone}.").format(
            zone=escape(zone_label(t, event.tz.key, event.start))
        )
    await offer_zones(update, ctx, t, intro)


async def zone_button(update: Update, ctx: BotContext) -> None:
    """A city button: set that zone. Forged or unknown zones change nothing."""
    query = update.callback_query
    assert query is not None and query.data is not None
    zone = valid_zone(query.data.removeprefix(SET))
    if zone is None:
        await answer_expired(update, ctx)
        return
    await acknowledge(query)
    if isinstance(query.message, Message):
        with contextlib.suppress(BadRequest):  # too old to edit, or already bare: no matter
            await query.edit_message_reply_markup(None)
    await _set_zone(update, ctx, zone)


async def city_typed(update: Update, ctx: BotContext) -> None:
    """Text while the prompt waits: a city, a zone name, or a country with one zone."""
    message = update.effective_message
    assert message is not None and message.text is not None
    t = await tr(update, ctx)
    user = update.effective_user
    assert user is not None
    country = await ctx.services.registrations.country(user.id)
    found = match_zone(clean_text(message.text), t.lang, country)
    if found.zone is not None:
        await _set_zone(update, ctx, found.zone, found.place)
        return
    at = ctx.services.event.start
    if found.suggestions:
        rows = [[(zone_label(t, zone, at), SET + zone)] for zone in found.suggestions]
        text = t.n_(
            "Did you mean this place? Tap it, or type the name again.",
            "Did you mean one of these places? Tap the right one, or type the name again.",
            len(found.suggestions),
        )
        await reply(update, text, keyboard(rows))
        return
    await reply(
        update,
        t._(
            "I could not find this place. Please type the name of a large city near you, "
            "for example: {example}, or send /cancel."
        ).format(example=escape(city(t, example_zone(country, at)))),
    )


async def _set_zone(update: Update, ctx: BotContext, zone: str, place: str | None = None) -> None:
    user = update.effective_user
    assert user is not None and ctx.user_data is not None
    services = ctx.services
    await services.users.start(user.id, user.language_code, None)
    await services.users.set_timezone(user.id, zone, place)
    ctx.user_data.pop(PROMPT, None)
    t = await tr(update, ctx)
    event = services.event
    if zone == event.tz.key:
        head = t._("Done. I will show the times in the event's time zone: {zone}.")
    else:
        head = t._("Done. I will also show the times in your time zone: {zone}.")
    head = head.format(zone=escape(zone_label(t, zone, event.start, place)))
    title = f"<b>{escape(event.text(t.lang).title)}</b>"
    lines = views.when_lines(t, event, zone, place)
    await reply(update, f"{head}\n\n{title}\n" + "\n".join(lines))


async def drop_prompt(update: Update, ctx: BotContext) -> None:
    """Any command ends a waiting prompt; /cancel ends it with a word and goes no further."""
    assert ctx.user_data is not None
    ctx.user_data.pop(PROMPT, None)
    message = update.effective_message
    command = (message.text or "").split(maxsplit=1)[0] if message else ""
    if command.split("@", 1)[0] == "/cancel":
        t = await tr(update, ctx)
        await reply(update, t._("All right, your time zone is unchanged."))
        raise ApplicationHandlerStop


# --- /calendar ------------------------------------------------------------------------------


def calendar_file(services: Services, t: Translator, user_id: int, status: str | None) -> Document:
    """The .ics document for `user_id` (registration `status`, None if not registered)."""
    event = services.event
    now = services.clock()
    data = ics(t, event, user_id, status, now)
    caption = t._("Open this file to add the webinar to your calendar, with its reminders.")
    if event.has_ended(now):
        caption = t._("This webinar has taken place; here is its calendar entry.")
    elif status is None and services.registrations.is_open():
        caption += "\n" + t._("You are not registered yet: send /register.")
    return Document(data, FILENAME, caption)


async def send_calendar(
    bot: Bot, services: Services, t: Translator, user_id: int, status: str | None
) -> None:
    """Send `calendar_file` as an answer to the user."""
    calendar = calendar_file(services, t, user_id, status)
    # PTB names the upload's type from the file name: text/calendar for ".ics".
    await bot.send_document(
        user_id, document=calendar.data, filename=calendar.filename, caption=calendar.caption
    )


async def calendar_command(update: Update, ctx: BotContext) -> None:
    """/calendar: the .ics file, in the user's language."""
    t = await tr(update, ctx)
    user = update.effective_user
    assert user is not None
    registration = await ctx.services.registrations.current(user.id)
    await send_calendar(
        ctx.bot, ctx.services, t, user.id, registration.status if registration else None
    )


def register(app: Application) -> None:
    """Handlers of this module; groups are documented in `bot.app`."""
    private = filters.ChatType.PRIVATE
    awaiting = _AwaitingCity(app)
    app.add_handler(MessageHandler(private & filters.COMMAND & awaiting, drop_prompt), group=-1)
    app.add_handler(CommandHandler("timezone", timezone_command, private))
    app.add_handler(CallbackQueryHandler(zone_button, pattern=rf"^{SET}"))
    app.add_handler(CommandHandler("calendar", calendar_command, private))
    app.add_handler(
        MessageHandler(private & filters.TEXT & ~filters.COMMAND & awaiting, city_typed)
    )
