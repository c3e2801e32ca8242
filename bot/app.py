"""Wiring: build the Application and open its services. No logic lives here."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from telegram import BotCommandScopeDefault, LinkPreviewOptions
from telegram.constants import ParseMode
from telegram.ext import AIORateLimiter, Application, ApplicationBuilder, ContextTypes, Defaults

from bot.config import Settings
from bot.event import Event
from bot.handlers import errors, participant, registration
from bot.handlers.common import SERVICES_KEY, BotContext
from bot.i18n import LANGUAGES, I18n
from bot.services import Services
from bot.services.registration import RegistrationService
from bot.services.users import UserService
from bot.storage import AuditRepo, Database, RegistrationRepo, UserRepo, utcnow
from bot.storage.persistence import SQLitePersistence

log = logging.getLogger(__name__)


def build_application(
    settings: Settings,
    event: Event,
    *,
    i18n: I18n | None = None,
    clock: Callable[[], datetime] = utcnow,
) -> Application:
    """The Application with every handler; services open in `post_init`."""
    db = Database(settings.database_path)
    i18n = i18n or I18n()

    async def post_init(app: Application) -> None:
        await db.open()
        user_repo = UserRepo(db)
        app.bot_data[SERVICES_KEY] = Services(
            settings=settings,
            event=event,
            i18n=i18n,
            db=db,
            users=UserService(user_repo),
            registrations=RegistrationService(RegistrationRepo(db), user_repo, event, clock),
            clock=clock,
            audit=AuditRepo(db),
        )
        await set_commands(app, i18n)

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
        .rate_limiter(AIORateLimiter(max_retries=2))
        .updater(None)
        .post_init(post_init)
        .post_shutdown(post_shutdown)
    )
    if settings.api_base_url:
        builder = builder.base_url(settings.api_base_url)
    app = builder.build()
    app.bot_data["db"] = db

    # Handler order (group 0 takes the first match): the registration conversation first, so
    # that while it runs it sees answers before anything else; then the other participant
    # commands; the catch-alls last. Group -1 answers commands in groups and stops there.
    registration.register(app)
    participant.register(app)
    participant.register_catch_alls(app)
    app.add_error_handler(errors.on_error)
    return app


async def set_commands(app: Application, i18n: I18n) -> None:
    """The command menu in each language, and English for everyone else."""
    for lang in LANGUAGES:
        commands = participant.bot_commands(i18n(lang))
        await app.bot.set_my_commands(commands, scope=BotCommandScopeDefault(), language_code=lang)
    await app.bot.set_my_commands(participant.bot_commands(i18n("en")))
