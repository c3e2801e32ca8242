"""Reminders end to end: the real Application, the local Bot API server, an injected clock."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from bot.app import build_application
from bot.config import settings_from
from bot.event import Event, load_event
from bot.i18n import I18n
from bot.runner import run_polling
from bot.storage import Database, RegistrationData, RegistrationRepo, UserRepo
from bot.storage.deliveries import DeliveryRepo, DeliveryStatus
from tests.conftest import RunningBot, bot_env, write_event

T = I18n()
JOIN_URL = "https://meet.example.org/j/ilo-pes"
# (user id, Telegram language, time zone, session language)
PEOPLE = [
    (11, "en", None, "en"),
    (12, "fr", "America/Toronto", "fr"),
    (13, "es", "America/Bogota", "es"),
]


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def text_of(message) -> str:
    return message.plain_text or message.text or ""


async def seed(path: Path, people) -> dict[int, datetime]:
    """Registrations written straight into the database; returns when each was made."""
    db = Database(path)
    await db.open()
    made = {}
    try:
        users, registrations = UserRepo(db), RegistrationRepo(db)
        for user_id, lang, zone, session in people:
            await users.ensure(user_id, lang)
            if zone:
                await users.set_timezone(user_id, zone)
            data = RegistrationData(
                f"Person {user_id}", f"p{user_id}@example.org", "SN", None, "pes", session
            )
            registration, _ = await registrations.create(user_id, data, lang, None, None)
            made[user_id] = registration.created_at
    finally:
        await db.close()
    return made


def at(event: Event, start: datetime) -> Event:
    """The event moved to `start` (any precision), same length."""
    start = start.astimezone(event.tz)
    end = start + (event.end - event.start)
    return dataclasses.replace(event, start=start, end=end, registration_closes=end)


async def start(bots, event_file: Path, event: Event, clock) -> RunningBot:
    settings = settings_from(bot_env(bots.api, bots.tmp_path, event_file))
    app = build_application(settings, event, clock=clock)
    stop = asyncio.Event()
    task = asyncio.create_task(run_polling(app, stop, handle_signals=False))
    bot = RunningBot(app, settings, event, stop, task)
    bots.running.append(bot)
    await bots.api.wait_until_polling()
    return bot


async def fire(bot: RunningBot, kind: str) -> None:
    jobs = bot.app.job_queue.get_jobs_by_name(kind)
    assert jobs, f"no job {kind}"
    await jobs[0].run(bot.app)


async def statuses(bot: RunningBot, kind: str):
    return await DeliveryRepo(bot.db).statuses(kind)


def sent_to(api, user_id: int) -> list:
    return [m for m in api.messages_to(user_id) if m.method == "sendMessage"]


async def test_each_registrant_gets_each_reminder_once_in_their_language(api, bots, tmp_path):
    base = datetime.now(UTC) + timedelta(days=30)
    file = write_event(tmp_path, base, reminders=("2h", "1h"), join_url=JOIN_URL)
    made = await seed(tmp_path / "bot.sqlite3", PEOPLE)
    late = await seed(tmp_path / "bot.sqlite3", [(14, "en", None, "fr")])
    # The 2h reminder falls between the first three sign-ups and the fourth.
    first_due = max(made.values()) + (late[14] - max(made.values())) / 2
    event = at(load_event(file), first_due + timedelta(hours=2))
    clock = Clock(event.start - timedelta(hours=3))
    bot = await start(bots, file, event, clock)

    clock.now = event.start - timedelta(hours=2)
    await fire(bot, "reminder:2h")
    for user_id, lang, zone, _ in PEOPLE:
        t = T(lang)
        body = text_of(await api.next_message(user_id))
        assert t.date(event.start, event.tz) in body  # "jeudi …", "jueves …"
        assert t.time_range(event.start, event.end, event.tz) in body
        assert t.utc_offset(event.start, event.tz) in body
        assert JOIN_URL in body
        assert "🎧" not in body  # the interpretation hint comes with the last one
        if zone:
            assert t.time_range(event.start, event.end, ZoneInfo(zone)) in body
            assert t.utc_offset(event.start, ZoneInfo(zone)) in body
        starts = {
            "en": "the webinar starts in 2 hours.",
            "fr": "le webinaire commence dans 2\u00a0heures.",
            "es": "el seminario web comienza en 2 horas.",
        }
        assert starts[lang] in body
    assert sent_to(api, 14) == []  # registered after the 2h reminder's time

    clock.now = event.start - timedelta(hours=1)
    await fire(bot, "reminder:1h")
    hints = {11: None, 12: "français", 13: "español", 14: "French"}
    for user_id, hint in hints.items():
        body = text_of(await api.next_message(user_id))
        assert JOIN_URL in body
        if hint is None:
            assert "🎧" not in body
        else:
            assert "🎧" in body and hint in body

    await fire(bot, "reminder:1h")  # once more: nobody gets it twice
    await bot.close()
    assert {u: len(sent_to(api, u)) for u in hints} == {11: 2, 12: 2, 13: 2, 14: 1}
    db = Database(tmp_path / "bot.sqlite3")
    await db.open()
    try:
        repo = DeliveryRepo(db)
        assert set((await repo.statuses("reminder:2h")).values()) == {(DeliveryStatus.SENT, None)}
        assert len(await repo.statuses("reminder:2h")) == 3
        assert len(await repo.statuses("reminder:1h")) == 4
    finally:
        await db.close()


async def test_a_reminder_due_while_the_bot_was_down_is_sent_once_on_return(api, bots, tmp_path):
    file = write_event(tmp_path, datetime.now(UTC) + timedelta(days=30), reminders=("2h", "1h"))
    event = load_event(file)
    await seed(tmp_path / "bot.sqlite3", PEOPLE)
    clock = Clock(event.start - timedelta(hours=3))
    bot = await start(bots, file, event, clock)
    await bot.close()  # stopped before any reminder is due

    clock.now = event.start - timedelta(minutes=30)  # both passed: only the latest is sent
    bot = await start(bots, file, event, clock)
    for user_id, lang, _, _ in PEOPLE:
        body = text_of(await api.next_message(user_id))
        assert T(lang).date(event.start, event.tz) in body
        assert T(lang)._("The access link will be sent to you here before the session.") in body
    assert all(
        s == (DeliveryStatus.SKIPPED, "a later reminder was due")
        for s in (await statuses(bot, "reminder:2h")).values()
    )
    await bot.close()

    bot = await start(bots, file, event, clock)  # and once more: nothing is sent again
    for job in bot.app.job_queue.get_jobs_by_name("reminder:1h"):
        await job.run(bot.app)
    sent = await statuses(bot, "reminder:1h")
    await bot.close()
    assert {u: len(sent_to(api, u)) for u, *_ in PEOPLE} == {11: 1, 12: 1, 13: 1}
    assert set(sent.values()) == {(DeliveryStatus.SENT, None)} and len(sent) == 3


async def test_reminders_due_after_the_start_are_skipped(api, bots, tmp_path):
    file = write_event(tmp_path, datetime.now(UTC) + timedelta(days=30), reminders=("1d", "1h"))
    event = load_event(file)
    await seed(tmp_path / "bot.sqlite3", PEOPLE)
    clock = Clock(event.start - timedelta(days=2))
    bot = await start(bots, file, event, clock)
    await bot.close()

    clock.now = event.start + timedelta(minutes=10)
    bot = await start(bots, file, event, clock)
    assert [job.name for job in bot.app.job_queue.jobs()] == ["followup"]  # after the end
    for kind in ("reminder:1d", "reminder:1h"):
        assert set((await statuses(bot, kind)).values()) == {
            (DeliveryStatus.SKIPPED, "session started")
        }
    await bot.close()
    assert all(sent_to(api, u) == [] for u, *_ in PEOPLE)


async def test_blocked_users_errors_and_floods(api, bots, tmp_path):
    file = write_event(tmp_path, datetime.now(UTC) + timedelta(days=30), reminders=("2h", "1h"))
    event = load_event(file)
    people = [(50 + i, "en", None, "en") for i in range(1, 6)]
    await seed(tmp_path / "bot.sqlite3", people)
    clock = Clock(event.start - timedelta(hours=3))
    bot = await start(bots, file, event, clock)
    clock.now = event.start - timedelta(hours=2)
    api.block(52)
    api.inject("sendMessage", 429, count=1, retry_after=1)
    api.inject("sendMessage", 500, count=1, chat_id=53)
    api.inject("sendMessage", 503, count=1, chat_id=55)
    # Refused for good (retrying 5xx until the attempts run out is in test_ratelimit).
    api.inject("sendMessage", 400, chat_id=54, description="Bad Request: message is too long")
    await fire(bot, "reminder:2h")
    first = await statuses(bot, "reminder:2h")
    assert first[51] == first[53] == first[55] == (DeliveryStatus.SENT, None)
    assert first[52][0] is DeliveryStatus.BLOCKED
    assert first[54][0] is DeliveryStatus.FAILED
    assert (await UserRepo(bot.db).get(52)).blocked

    clock.now = event.start - timedelta(hours=1)
    await fire(bot, "reminder:1h")
    second = await statuses(bot, "reminder:1h")
    await bot.close()
    assert second[52] == (DeliveryStatus.BLOCKED, "blocked the bot earlier")
    assert {u: s for u, (s, _) in second.items() if u != 52} == dict.fromkeys(
        (51, 53, 54, 55), DeliveryStatus.SENT
    )
    assert {u: len(sent_to(api, u)) for u, *_ in people} == {51: 2, 52: 0, 53: 2, 54: 1, 55: 2}
    tried_52 = [c for c in api.calls if c.method == "sendMessage" and c.params["chat_id"] == 52]
    assert len(tried_52) == 1  # not tried again after the 403
    assert api.stats["429"] == 1 and api.stats["5xx"] == 2


async def test_the_job_queue_really_fires_the_reminders(api, bots, tmp_path):
    """The one test in real time: a session in ~7 s with reminders 4 s and 2 s before."""
    begins = (datetime.now(UTC) + timedelta(seconds=8)).replace(microsecond=0)
    file = write_event(tmp_path, begins, reminders=("4s", "2s"), join_url=JOIN_URL)
    await seed(tmp_path / "bot.sqlite3", [(21, "es", None, "es")])
    await bots.start(file)
    first = text_of(await api.next_message(21, timeout=15))
    second = text_of(await api.next_message(21, timeout=15))
    assert "🎧" not in first and "🎧" in second and "español" in second
    assert JOIN_URL in first and JOIN_URL in second
