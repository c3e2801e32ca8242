"""After registering: /myregistration, /unregister and promotions from the waiting list."""

from __future__ import annotations

import logging
from html import escape

from telegram import Bot, Update
from telegram.ext import Application, CallbackQueryHandler, CommandHandler, filters

from bot import views
from bot.handlers import schedule
from bot.handlers.common import BotContext, acknowledge, answer_expired, keyboard, reply, tr
from bot.i18n import Translator
from bot.sending import Outbox
from bot.services import Services
from bot.storage import Registration
from bot.storage.deliveries import DeliveryStatus

log = logging.getLogger(__name__)


def not_registered(ctx: BotContext, t: Translator) -> str:
    """No live registration: invite to register, or say registration is closed."""
    services = ctx.services
    if services.registrations.is_open():
        return t._("You are not registered. Send /register to sign up.")
    return (
        t._("You are not registered.") + "\n\n" + views.closed(t, services.event, services.clock())
    )


async def show_registration(
    update: Update, ctx: BotContext, t: Translator, existing_note: bool = False
) -> None:
    user = update.effective_user
    assert user is not None
    registration = await ctx.services.registrations.current(user.id)
    if registration is None:
        await reply(update, not_registered(ctx, t))
        return
    position = await ctx.services.registrations.position(registration)
    record = await ctx.services.users.get(user.id)
    event = ctx.services.event
    parts = []
    if existing_note:
        parts.append(t._("You are already registered for this webinar."))
    parts.append(views.registration_status(t, registration, position))
    parts.append(
        f"<b>{escape(event.text(t.lang).title)}</b>\n"
        + "\n".join(
            views.when_lines(
                t, event, record.timezone if record else None, record.place if record else None
            )
        )
    )
    if registration.status == "active":  # the link in force, as the confirmation gives it
        parts.append(views.access_line(t, event))
    parts.append(views.registration_summary(t, registration.data))
    markup = keyboard([[(t._("Cancel my registration"), f"unreg:ask:{registration.id}")]])
    await reply(update, "\n\n".join(parts), markup)


async def my_registration(update: Update, ctx: BotContext) -> None:
    """/myregistration: what the user gave, with a cancel button."""
    await show_registration(update, ctx, await tr(update, ctx))


async def unregister(update: Update, ctx: BotContext) -> None:
    """/unregister or the cancel button: ask for confirmation."""
    t = await tr(update, ctx)
    user = update.effective_user
    assert user is not None
    registration = await ctx.services.registrations.current(user.id)
    query = update.callback_query
    if query is not None:
        assert query.data is not None
        if registration is None or query.data != f"unreg:ask:{registration.id}":
            await answer_expired(update, ctx)
            return
        await acknowledge(query)
    if registration is None:
        await reply(update, not_registered(ctx, t))
        return
    markup = keyboard(
        [
            [(t._("Yes, cancel my registration"), f"unreg:yes:{registration.id}")],
            [(t._("No, keep it"), f"unreg:no:{registration.id}")],
        ]
    )
    await reply(update, t._("Do you really want to cancel your registration?"), markup)


async def unregister_answer(update: Update, ctx: BotContext) -> None:
    query = update.callback_query
    assert query is not None and query.data is not None
    user = update.effective_user
    assert user is not None
    t = await tr(update, ctx)
    _, answer, reg_id = query.data.split(":", 2)
    registration = await ctx.services.registrations.current(user.id)
    if registration is None or str(registration.id) != reg_id:
        await answer_expired(update, ctx)
        return
    await acknowledge(query, remove_keyboard=True)
    if answer != "yes":
        await reply(update, t._("Good, your registration is kept."))
        return
    outcome = await ctx.services.registrations.cancel(user.id)
    await reply(
        update,
        t._(
            "Your registration has been cancelled. You can register again at "
            "any time with /register."
        ),
    )
    if outcome.promoted is not None:
        await notify_promoted(ctx.bot, ctx.services, outcome.promoted)


async def notify_promoted(bot: Bot, services: Services, registration: Registration) -> None:
    """Tell someone promoted from the waiting list, in their language: the time in their zone,
    the access link and the calendar file. Never raises: the cancellation that freed the seat
    is done and its author must not see an error."""
    user_id = registration.user_id
    t = services.i18n(await services.users.language(user_id))
    record = await services.users.get(user_id)
    event = services.event
    text = "\n\n".join(
        [
            "🎉 "
            + t._("Good news: a place has freed up and you are now registered for the webinar."),
            f"<b>{escape(event.text(t.lang).title)}</b>\n"
            + "\n".join(
                views.when_lines(
                    t, event, record.timezone if record else None, record.place if record else None
                )
            ),
            views.access_line(t, event),
        ]
    )
    calendar = schedule.calendar_file(services, t, user_id, registration.status)
    # Recorded like reminders, claimed while on the wire: the file follows the notice.
    result = await services.promotions.notify(registration, text, calendar, Outbox(bot))
    if result is not None and result.status is not DeliveryStatus.SENT:
        log.warning(
            "Could not tell registration %d about its promotion: %s", registration.id, result.error
        )


async def promote_into_free_seats(bot: Bot, services: Services) -> None:
    """At start-up: seats freed by a raised `capacity` go to the waiting list; then everyone
    promoted and not told yet (these, and those a kill caught before their notice or its
    calendar file was answered) is told."""
    promoted = await services.registrations.fill_free_seats()
    if promoted:
        log.info("Promoted %d registrations from the waiting list into free seats", len(promoted))
    for registration in await services.promotions.recover():
        await notify_promoted(bot, services, registration)


def register(app: Application) -> None:
    private = filters.ChatType.PRIVATE
    app.add_handler(CommandHandler("myregistration", my_registration, private))
    app.add_handler(CommandHandler("unregister", unregister, private))
    app.add_handler(CallbackQueryHandler(unregister, pattern=r"^unreg:ask:"))
    app.add_handler(CallbackQueryHandler(unregister_answer, pattern=r"^unreg:(yes|no):"))
