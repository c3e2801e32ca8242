"""Services: plain values in and out, never a Telegram object."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from bot.config import Settings
from bot.event import Event
from bot.i18n import I18n
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
from bot.storage import AuditRepo, Database


@dataclass(slots=True)
class Services:
    """Everything handlers need, opened in `post_init` and handed over through bot_data."""

    settings: Settings
    events: EventState
    i18n: I18n
    db: Database
    users: UserService
    registrations: RegistrationService
    promotions: PromotionService
    clock: Callable[[], datetime]
    audit: AuditRepo
    reminders: ReminderService
    broadcasts: BroadcastService
    reports: ReportService
    questions: QuestionService
    notices: ChangeNotices

    @property
    def event(self) -> Event:
        """The event in force: the file with the organisers' changes (`EventState`)."""
        return self.events.current
    followup: FollowUpService
