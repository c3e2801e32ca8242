"""Wiring: build the Application and open its services. No logic lives here."""

from __future__ import annotations

import gc
import logging
import threading
from collections.abc import Callable, Iterable
from datetime import datetime

from telegram import BotCommandScopeChat, BotCommandScopeDefault, LinkPreviewOptions
from telegram.constants import ParseMode
from telegram.error import TelegramError
from telegram.ext import Application, ApplicationBuilder, BaseRateLimiter, ContextTypes, Defaults

from bot import timezones
from bot.config import Settings
from bot.event import Event
from bot.handlers import (
    admin,
    broadcast,
    edit,
    errors,
    feedback,
    my_registration,
    participant,
    privacy,
    questions,
    registration,
    reminders,
    schedule,
)
from bot.handlers.common import SERVICES_KEY, BotContext
from bot.i18n import LANGUAGES, I18n
from bot.ratelimit import PriorityRateLimiter
from bot.services import Services
from bot.services.broadcast import BroadcastService
from bot.services.change_notices import ChangeNotices
from bot.services.event_state import EventState
from bot.services.followup import FollowUpService
from bot.services.promotions import PromotionService
from bot.services.questions import QuestionService
from bot.services.registration import RegistrationService
from bot.services.reminders import ReminderService
from bot.services.reports import ReportService
from bot.services.users import UserService
from bot.storage import AuditRepo, Database, RegistrationRepo, UserRepo, utcnow
from bot.storage.broadcasts import BroadcastRepo
from bot.storage.deliveries import DeliveryRepo
from bot.storage.event_changes import EventChangeRepo
from bot.storage.feedback import FeedbackRepo
from bot.storage.persistence import SQLitePersistence
from bot.storage.questions import QuestionRepo
from bot.storage.stats import StatsRepo
from bot.transport import AiohttpRequest

log = logging.getLogger(__name__)


def build_application(
    settings: Settings,
    event: Event,
    *,
    i18n: I18n | None = None,
    clock: Callable[[], datetime] = utcnow,
    rate_limiter: BaseRateLimiter | None = None,
) -> Application:
    """The Application with every handler; services open in `post_init`.

    `rate_limiter` defaults to 30 requests/s with replies to users served first (bot.ratelimit).
    """
    db = Database(settings.database_path)
    i18n = i18n or I18n()

    async def post_init(app: Application) -> None:
        await db.open()
        user_repo = UserRepo(db)
        registration_repo = RegistrationRepo(db)
        delivery_repo = DeliveryRepo(db)
        change_repo = EventChangeRepo(db)
        events = EventState(event, change_repo, clock)
        await events.load()
        app.bot_data[SERVICES_KEY] = Services(
            settings=settings,
            events=events,
            i18n=i18n,
            db=db,
            users=UserService(user_repo),
            registrations=RegistrationService(registration_repo, user_repo, events, clock),
            promotions=PromotionService(registration_repo, delivery_repo, events, clock),
            clock=clock,
            audit=AuditRepo(db),
            reminders=ReminderService(events, delivery_repo, user_repo, clock),
            broadcasts=BroadcastService(BroadcastRepo(db), delivery_repo, user_repo, clock),
            reports=ReportService(StatsRepo(db), events, clock),
            questions=QuestionService(QuestionRepo(db), user_repo, events),
            notices=ChangeNotices(
                events, change_repo, delivery_repo, user_repo, registration_repo, clock
            ),
            followup=FollowUpService(events, delivery_repo, FeedbackRepo(db), user_repo, clock),
        )
        threading.Thread(target=_warm_up, name="warm-up", daemon=True).start()
        await set_commands(app, i18n)
        await reminders.schedule(app)
        await feedback.schedule_follow_up(app)
        await broadcast.resume(app)
        await edit.resume(app)
        await set_admin_commands(app, i18n, settings.admin_ids)
        await my_registration.promote_into_free_seats(app.bot, app.bot_data[SERVICES_KEY])

    async def post_shutdown(app: Application) -> None:
        await db.close()

    builder = (
        ApplicationBuilder()
        .token(settings.token)
        .defaults(
            Defaults(
                parse_mode=ParseMode.HTML,
                link_preview_options=LinkPreviewOptions(is_disabled=True),
            )
        )
        .context_types(ContextTypes(context=BotContext))
        .persistence(SQLitePersistence(db))
        .rate_limiter(rate_limiter or PriorityRateLimiter())
        .request(AiohttpRequest(256))
        .get_updates_request(AiohttpRequest(1))
        .updater(None)
        .post_init(post_init)
        .post_shutdown(post_shutdown)
    )
    if settings.api_base_url:
        builder = builder.base_url(settings.api_base_url)
    app = builder.build()

    # Handler order (group 0 takes the first match): the registration conversation first, so
    # that while it runs it sees answers before anything else; then the other participant
    # commands; the catch-alls last. Group -3 comes first: a button pressed outside a private
    # chat is answered there and goes no further. Group -1 answers commands in groups and stops
    # there, and drops a waiting /timezone prompt on any command. Group -2 comes before it: the
    # /ask prompt (it takes its answer even in the middle of the form) and
    # admin commands sent in a group (refused to admins; anyone else gets group -1's answer),
    # then typed answers to the follow-up (a rating, a comment). The follow-up's buttons come
    # in group -1, before the conversations of group 0.
    registration.register(app, fallbacks=privacy.form_fallbacks())
    my_registration.register(app)
    broadcast.register(app)
    edit.register(app)
    participant.register(app)
    schedule.register(app)
    admin.register(app, early_group=-2)
    questions.register(app, early_group=-2)
    feedback.register(app, early_group=-2, button_group=-1)
    privacy.register(app)
    participant.register_catch_alls(app)
    app.add_error_handler(errors.on_error)
    return app


def _warm_up() -> None:
    """Build the country and city indexes (~0.4 s) off the start-up path, so that neither the
    first update nor the first country typed waits for them; then freeze what start-up built.

    Those indexes, the catalogs and PTB's handlers live as long as the process. Frozen, the
    garbage collector stops walking them: its full collections went from up to 200 ms, a
    stall for every user waiting at that moment, to a few ms (README, "Benchmarks").
    """
    timezones.preload()
    gc.freeze()


async def set_commands(app: Application, i18n: I18n) -> None:
    """The command menu in each language, and English for everyone else."""
    for lang in LANGUAGES:
        commands = participant.bot_commands(i18n(lang))
        await app.bot.set_my_commands(commands, scope=BotCommandScopeDefault(), language_code=lang)
    await app.bot.set_my_commands(participant.bot_commands(i18n("en")))


async def set_admin_commands(app: Application, i18n: I18n, admin_ids: Iterable[int]) -> None:
    """Admins see the admin commands too, in their chat only. A chat Telegram does not know yet
    (an admin who never wrote to the bot) is skipped with a warning."""
    for admin_id in admin_ids:
        scope = BotCommandScopeChat(admin_id)
        try:
            for lang in LANGUAGES:
                commands = participant.bot_commands(i18n(lang), admin=True)
                await app.bot.set_my_commands(commands, scope=scope, language_code=lang)
            await app.bot.set_my_commands(participant.bot_commands(i18n("en"), admin=True), scope)
        except TelegramError as exc:
            log.warning("Could not set the admin command menu for an admin: %s", exc)
