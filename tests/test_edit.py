"""/edit end to end: organisers change the event from Telegram; everyone is told once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import icalendar

from bot.app import build_application
from bot.config import settings_from
from bot.event import load_event
from bot.i18n import I18n
from bot.runner import run_polling
from bot.services.calendar import FILENAME
from bot.storage import AuditRepo, Database, RegistrationData, RegistrationRepo, UserRepo
from bot.storage.deliveries import DeliveryRepo, DeliveryStatus
from bot.storage.event_changes import EventChangeRepo
from tests.conftest import BotProcess, Participant, RunningBot, bot_env, write_event
from tests.test_reminders import Clock, fire

T = I18n()
ADMIN = 900
UNKNOWN = "Sorry, I do not know this command. Send /help to see what I can do."
# (user id, language, time zone): 503 joins the waiting list (capacity 2)
PEOPLE = [(501, "en", None), (502, "fr", "Africa/Dakar"), (503, "es", "America/Bogota")]


UPDATED = "Open this file to update the webinar in your calendar."


def text_of(message) -> str:
    return message.plain_text or message.text or ""


async def seed(path: Path, people=PEOPLE, capacity: int | None = 2) -> None:
    db = Database(path)
    await db.open()
    try:
        users, registrations = UserRepo(db), RegistrationRepo(db)
        for user_id, lang, zone in people:
            await users.ensure(user_id, lang)
            if zone:
                await users.set_timezone(user_id, zone)
            data = RegistrationData("P", f"p{user_id}@example.org", "SN", None, "pes", lang)
            await registrations.create(user_id, data, lang, None, capacity)
    finally:
        await db.close()


def vevent_of(document) -> icalendar.Event:
    assert document.method == "sendDocument" and document.filename == FILENAME
    return icalendar.Calendar.from_ical(document.document).walk("VEVENT")[0]


def sequence(vevent) -> int:
    return int(vevent.get("SEQUENCE", 0))


def future_start(days: int = 30) -> datetime:
    return (datetime.now(UTC) + timedelta(days=days)).replace(
        hour=12, minute=0, second=0, microsecond=0
    )


def new_time(start: datetime, tz) -> tuple[str, datetime, datetime]:
    """What the admin types for "a day later, 16:00–17:30", and the instants it means."""
    day = (start.astimezone(tz) + timedelta(days=1)).date()
    new_start = datetime(day.year, day.month, day.day, 16, 0, tzinfo=tz)
    return f"{day:%Y-%m-%d} 16:00-17:30", new_start, new_start + timedelta(minutes=90)


async def first_files(people: list[Participant]) -> dict[int, icalendar.Event]:
    return {p.id: vevent_of(await p.say("/calendar", timeout=30)) for p in people}


async def edit_to_preview(admin: Participant, label: str, value: str, timeout=10.0):
    admin.api.drain(admin.id)
    menu = await admin.say("/edit", timeout)
    await admin.tap(menu, label, timeout)
    return await admin.say(value, timeout)


async def notices(api, people: list[Participant], timeout=30.0) -> dict[int, list]:
    """Wait for the notice and the calendar file of each; return everything each received."""
    captions = {T(lang)._(UPDATED) for lang in ("en", "fr", "es")}
    for p in people:
        await api.wait_for(lambda m: m.caption in captions, chat_id=p.id, timeout=timeout)
    return {p.id: api.messages_to(p.id) for p in people}


def check_notices(received: dict[int, list], firsts, new_start: datetime, langs) -> None:
    for user_id, messages in received.items():
        t = T(langs[user_id])
        moved = [
            m
            for m in messages
            if t._("The webinar has been moved to a new date and time.") in text_of(m)
        ]
        files = [m for m in messages if m.method == "sendDocument"]
        assert len(moved) == 1 and len(files) == 1, (user_id, [text_of(m) for m in messages])
        vevent = vevent_of(files[0])
        assert vevent.decoded("DTSTART").astimezone(UTC) == new_start.astimezone(UTC)
        assert str(vevent["UID"]) == str(firsts[user_id]["UID"])
        assert sequence(vevent) > sequence(firsts[user_id])
        assert files[0].caption == t._(UPDATED)


async def test_moving_the_session_tells_each_registrant_once_in_their_language(
    api, bots, tmp_path
):
    start0 = future_start()
    event_file = write_event(tmp_path, start0, capacity=2)
    await seed(tmp_path / "bot.sqlite3")
    bot = await bots.start(event_file, ADMIN_IDS=str(ADMIN))
    people = [Participant(api, user_id, lang) for user_id, lang, _ in PEOPLE]
    firsts = await first_files(people)
    admin = Participant(api, ADMIN, "en")
    tz = bot.event.tz
    typed, new_start, new_end = new_time(start0, tz)

    preview = await edit_to_preview(admin, T("en")._("Date and time"), typed)
    en = T("en")
    old_shown = en._("{date}, {time} ({offset})").format(
        date=en.date(bot.event.start, tz),
        time=en.time_range(bot.event.start, bot.event.end, tz),
        offset=en.utc_offset(bot.event.start, tz),
    )
    assert old_shown in text_of(preview) and "→" in text_of(preview)
    assert en.time_range(new_start, new_end, tz) in text_of(preview)
    assert en.utc_offset(new_start, tz) in text_of(preview)
    assert "3 registrants (waiting list included) will be told" in text_of(preview)
    saved = await admin.tap(preview, en._("Confirm"))
    assert en._("Saved. It is in force from now on.") in text_of(saved)

    received = await notices(api, people)
    received = {user_id: messages[1:] for user_id, messages in received.items()}  # 1st file
    check_notices(received, firsts, new_start, {u: lang for u, lang, _ in PEOPLE})
    # The old time, in the reader's zone when known.
    fr, dakar = T("fr"), ZoneInfo("Africa/Dakar")
    before = fr._("Previously: {when}").format(
        when=fr._("{date}, {time} ({offset})").format(
            date=fr.date(start0, dakar),
            time=fr.time_range(start0, start0 + timedelta(minutes=90), dakar),
            offset=fr.utc_offset(start0, dakar),
        )
    )
    assert any(before in text_of(m) for m in received[502])
    report = await api.wait_for(lambda m: "Change #1" in text_of(m), chat_id=ADMIN)
    assert "Delivered: 3" in text_of(report)

    shown = await people[0].say("/event")
    assert en.date(new_start, tz) in text_of(shown)
    assert en.time_range(new_start, new_end, tz) in text_of(shown)
    actions = [(action, detail) for _, action, detail, _ in await AuditRepo(bot.db).recent()]
    assert any(a == "edit schedule" and d.startswith("#1:") for a, d in actions)

    # A restart keeps the values in force; the file is unchanged.
    await bot.close()
    again = await bots.start(event_file, ADMIN_IDS=str(ADMIN))
    await api.wait_until_polling()
    assert again.app.bot_data["services"].event.start == new_start
    assert load_event(event_file).start == start0
    shown = await people[1].say("/event")
    assert fr.time_range(new_start, new_end, tz) in text_of(shown)
    assert sum(m.method == "sendDocument" for m in api.messages_to(501)) == 2


async def test_kill_9_just_after_confirm_tells_everyone_once_after_restart(api, tmp_path):
    start0 = future_start()
    event_file = write_event(tmp_path, start0, capacity=2)
    await seed(tmp_path / "bot.sqlite3")
    process = BotProcess(
        bot_env(api, tmp_path, event_file, ADMIN_IDS=str(ADMIN)), tmp_path / "bot.log"
    )
    process.start()
    try:
        people = [Participant(api, user_id, lang) for user_id, lang, _ in PEOPLE]
        firsts = await first_files(people)
        admin = Participant(api, ADMIN, "en")
        tz = load_event(event_file).tz
        typed, new_start, _ = new_time(start0, tz)
        preview = await edit_to_preview(admin, T("en")._("Date and time"), typed, timeout=30)
        # The answer to Confirm is held: the change is committed, no notice has left.
        hold = api.hold("sendMessage", chat_id=ADMIN)
        await api.press_button(ADMIN, preview.message_id, preview.callback_data("Confirm"))
        await asyncio.wait_for(hold.reached.wait(), timeout=30)
        process.kill()
        hold.release()
        assert all(api.messages_to(p.id)[-1].method == "sendDocument" for p in people)
        assert [len(api.messages_to(p.id)) for p in people] == [1, 1, 1]

        process.start()
        received = await notices(api, people)
        await api.wait_for(lambda m: "Change #1" in text_of(m), chat_id=ADMIN, timeout=30)
        assert await process.terminate() == 0
    finally:
        process.kill_if_running()
    received = {p.id: api.messages_to(p.id)[1:] for p in people}  # after the first file
    check_notices(received, firsts, new_start, {u: lang for u, lang, _ in PEOPLE})
    db = Database(tmp_path / "bot.sqlite3")
    await db.open()
    try:
        changes = await EventChangeRepo(db).all()
        assert [(c.field, c.announce) for c in changes] == [("schedule", "done")]
        statuses = await DeliveryRepo(db).statuses("event-change:1")
        assert set(statuses.values()) == {(DeliveryStatus.SENT, None)} and len(statuses) == 3
    finally:
        await db.close()


async def start_with_clock(bots, event_file: Path, clock: Clock) -> RunningBot:
    settings = settings_from(bot_env(bots.api, bots.tmp_path, event_file, ADMIN_IDS=str(ADMIN)))
    event = load_event(event_file)
    app = build_application(settings, event, clock=clock)
    stop = asyncio.Event()
    task = asyncio.create_task(run_polling(app, stop, handle_signals=False))
    bot = RunningBot(app, settings, event, stop, task)
    bots.running.append(bot)
    await bots.api.wait_until_polling()
    return bot


async def test_reminders_follow_the_new_time_once(api, bots, tmp_path):
    start0 = future_start(days=3)
    event_file = write_event(tmp_path, start0, reminders=("1d", "1h"))
    await seed(tmp_path / "bot.sqlite3", PEOPLE[:2], capacity=None)
    clock = Clock(start0 - timedelta(days=2))
    bot = await start_with_clock(bots, event_file, clock)
    people = [Participant(api, user_id, lang) for user_id, lang, _ in PEOPLE[:2]]
    # "Tomorrow", for the old date, before the change.
    clock.now = start0 - timedelta(days=1) + timedelta(minutes=1)
    await fire(bot, "reminder:1d")
    assert [len(api.messages_to(p.id)) for p in people] == [1, 1]

    # The change comes after the old 1d reminder and before the old 1h one.
    clock.now = start0 - timedelta(hours=20)
    admin = Participant(api, ADMIN, "en")
    typed, new_start, new_end = new_time(start0, bot.event.tz)
    preview = await edit_to_preview(admin, T("en")._("Date and time"), typed)
    await admin.tap(preview, T("en")._("Confirm"))
    await notices(api, people)
    suffix = "@" + new_start.astimezone(UTC).strftime("%Y%m%dT%H%MZ")
    names = sorted(job.name for job in bot.app.job_queue.jobs() if job.name.startswith("rem"))
    assert names == [f"reminder:1d{suffix}", f"reminder:1h{suffix}"]  # none for the old time

    # The old 1h reminder's time passes with no job; the new 1d reminder fires once.
    clock.now = new_start - timedelta(days=1)
    await fire(bot, f"reminder:1d{suffix}")
    await fire(bot, f"reminder:1d{suffix}")
    for p, (_, lang, _) in zip(people, PEOPLE[:2], strict=True):
        t = T(lang)
        reminders = [m for m in api.messages_to(p.id) if text_of(m).startswith("⏰")]
        assert len(reminders) == 2, [text_of(m) for m in api.messages_to(p.id)]
        assert t.date(new_start, bot.event.tz) in text_of(reminders[1])
        assert t.time_range(new_start, new_end, bot.event.tz) in text_of(reminders[1])
    repo = DeliveryRepo(bot.db)
    assert await repo.statuses("reminder:1h") == {}
    assert len(await repo.statuses(f"reminder:1d{suffix}")) == 2
    assert len(await repo.statuses("reminder:1d")) == 2
