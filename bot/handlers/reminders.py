"""Reminder jobs: rebuilt from the event and the database at every start.

PTB's JobQueue keeps jobs in memory only and silently drops a job whose time has passed
(misfire_grace_time=1), so `schedule` decides itself what a restart means for each reminder
(see `bot.services.reminders`) and schedules what is left: one job per reminder, which reads
the database when it fires.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from telegram.ext import Application

from bot import views
from bot.handlers.common import SERVICES_KEY, BotContext
from bot.sending import Outbox
from bot.services import Services
from bot.services.fanout import Claim, Delivery
from bot.services.reminders import KIND_PREFIX, Action, ReminderInfo
from bot.storage.deliveries import Recipient

log = logging.getLogger(__name__)

#: APScheduler must run a job even when the event loop was busy at its time.
JOB_KWARGS = {"misfire_grace_time": None}


async def send_reminder(ctx: BotContext) -> None:
    """Job: the reminder `ctx.job.data` (a timedelta before the start) to everyone due."""
    assert ctx.job is not None
    offset: timedelta = ctx.job.data
    services = ctx.services
    app = ctx.application
    outbox = Outbox(ctx.bot)

    async def send(recipient: Recipient, info: ReminderInfo, claim: Claim) -> Delivery:
        t = services.i18n(recipient.language)
        text = views.reminder(
            t,
            services.event,
            services.clock(),
            recipient.timezone,
            recipient.session_language,
            info.last,
            recipient.place,
        )
        return await outbox.send(recipient.user_id, text, claim)

    await services.reminders.run(offset, send, should_stop=lambda: not app.running)


async def schedule(app: Application, *, moved: bool = False) -> None:
    """At start-up (post_init), and when the session is `moved` (then the deliveries under way
    are not touched): one job per reminder still to send for the time in force; late ones run
    at once."""
    services: Services = app.bot_data[SERVICES_KEY]
    job_queue = app.job_queue
    assert job_queue is not None, "python-telegram-bot[job-queue] is required"
    for job in job_queue.jobs():  # all of them: a moved session has other kinds
        if job.name and job.name.startswith(KIND_PREFIX):
            job.schedule_removal()
    settled = services.reminders.settle() if moved else services.reminders.recover()
    for plan in await settled:
        if plan.action is Action.SKIP:
            continue
        delay = timedelta(0)
        if plan.action is Action.SCHEDULE:
            delay = max(plan.due - services.clock(), timedelta(0))
        else:
            log.info("Reminder %s is already due: sending it now", plan.kind)
        job_queue.run_once(
            send_reminder, when=delay, data=plan.offset, name=plan.kind, job_kwargs=JOB_KWARGS
        )
