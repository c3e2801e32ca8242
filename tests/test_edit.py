"""/edit end to end: organisers change the event from Telegram; everyone is told once."""

from __future__ import annotations

import asyncio
import io
import logging
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import icalendar

from bot import views
from bot.app import build_application
from bot.config import settings_from
from bot.event import load_event
from bot.i18n import I18n
from bot.ops import check
from bot.runner import run_polling
from bot.services.calendar import FILENAME
from bot.services.change_notices import (
    NOT_REGISTERED,
    SESSION_STARTED,
    SUPERSEDED,
    ChangeNotices,
)
from bot.services.event_state import EventState, Field, value_of
from bot.storage import AuditRepo, Database, RegistrationData, RegistrationRepo, UserRepo
from bot.storage.deliveries import DeliveryRepo, DeliveryStatus
from bot.storage.event_changes import EventChangeRepo, StoredChange
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
    old_shown = views.moment(en, bot.event.start, bot.event.end, tz.key)
    assert old_shown in text_of(preview) and "→" in text_of(preview)
    assert "Geneva time" in old_shown and "Europe/Zurich" not in text_of(preview)
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
    when = views.moment(fr, start0, start0 + timedelta(minutes=90), dakar.key)
    assert fr.time_range(start0, start0 + timedelta(minutes=90), dakar) in when
    assert "heure de Dakar" in when and fr.utc_offset(start0, dakar) in when  # whose time
    before = fr._("Previously: {when}").format(when=when)
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


async def seeded_process(api, tmp_path: Path) -> tuple[datetime, Path, BotProcess]:
    """The bot as a child process (kill tests) over PEOPLE, with 2 seats; started."""
    start0 = future_start()
    event_file = write_event(tmp_path, start0, capacity=2)
    await seed(tmp_path / "bot.sqlite3")
    process = BotProcess(
        bot_env(api, tmp_path, event_file, ADMIN_IDS=str(ADMIN)), tmp_path / "bot.log"
    )
    process.start()
    return start0, event_file, process


async def test_kill_9_just_after_confirm_tells_everyone_once_after_restart(api, tmp_path):
    start0, event_file, process = await seeded_process(api, tmp_path)
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
        # The Confirm was not acknowledged: handled again, it saves nothing a second time.
        await api.wait_for(
            lambda m: text_of(m) == T("en")._("This change is saved already."), chat_id=ADMIN
        )
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


# --- the calendar file after the notice ------------------------------------------------------


async def delivery_rows(path: Path, kind: str) -> dict[int, tuple[DeliveryStatus, str | None]]:
    db = Database(path)
    await db.open()
    try:
        return await DeliveryRepo(db).statuses(kind)
    finally:
        await db.close()


async def test_calendar_files_on_the_wire_at_a_kill_are_sent_again(api, tmp_path):
    """The file after the notice of a new time is recorded like it: held unanswered when the
    bot is killed (its row 'pending'), it is sent again after the restart; the notice is not."""
    start0, event_file, process = await seeded_process(api, tmp_path)
    db_path = tmp_path / "bot.sqlite3"
    try:
        people = [Participant(api, user_id, lang) for user_id, lang, _ in PEOPLE]
        firsts = await first_files(people)
        admin = Participant(api, ADMIN, "en")
        typed, new_start, _ = new_time(start0, load_event(event_file).tz)
        preview = await edit_to_preview(admin, T("en")._("Date and time"), typed, timeout=30)
        holds = [api.hold("sendDocument", chat_id=p.id) for p in people]
        await admin.tap(preview, T("en")._("Confirm"), timeout=30)
        for hold in holds:  # each notice answered, each file on the wire
            await asyncio.wait_for(hold.reached.wait(), timeout=30)
        process.kill()
        for hold in holds:
            hold.release()  # a 500: not delivered
        at_kill = await delivery_rows(db_path, "event-change:1:calendar")
        notices_at_kill = await delivery_rows(db_path, "event-change:1")

        process.start()
        await notices(api, people)
        await api.wait_for(lambda m: "Change #1" in text_of(m), chat_id=ADMIN, timeout=30)
        assert await process.terminate() == 0
    finally:
        process.kill_if_running()
    pending = (DeliveryStatus.PENDING, None)
    assert at_kill == dict.fromkeys((p.id for p in people), pending), process.log()
    assert notices_at_kill == dict.fromkeys((p.id for p in people), (DeliveryStatus.SENT, None))
    received = {p.id: api.messages_to(p.id)[1:] for p in people}  # after the first file
    check_notices(received, firsts, new_start, {u: lang for u, lang, _ in PEOPLE})
    sent = dict.fromkeys((p.id for p in people), (DeliveryStatus.SENT, None))
    assert await delivery_rows(db_path, "event-change:1") == sent
    assert await delivery_rows(db_path, "event-change:1:calendar") == sent


async def told_without_files(path: Path, event_file: Path) -> tuple[datetime, StoredChange]:
    """What a kill right after the notices' outcomes were recorded leaves: a new time stored,
    its notice sent to everyone, no row for the files. Returns the new start and the change."""
    event = load_event(event_file)
    _, new_start, new_end = new_time(event.start, event.tz)
    moved = replace(event, start=new_start, end=new_end)
    db = Database(path)
    await db.open()
    try:
        now = datetime.now(UTC)
        change = await EventChangeRepo(db).add(
            "k1",
            Field.SCHEDULE,
            value_of(moved, Field.SCHEDULE),
            value_of(event, Field.SCHEDULE),
            value_of(event, Field.SCHEDULE),
            ADMIN,
            True,
            now,
        )
        assert change is not None
        deliveries = DeliveryRepo(db)
        for user_id, _, _ in PEOPLE:
            assert await deliveries.claim(user_id, change.kind, now)
            await deliveries.finish(user_id, change.kind, DeliveryStatus.SENT, now)
    finally:
        await db.close()
    return new_start, change


async def test_a_notice_sent_before_a_kill_gets_its_calendar_file_at_the_next_start(
    api, bots, tmp_path
):
    """Notices sent, no file rows (a kill between the two): the next start sends each file,
    once, and no notice again; the start after that sends nothing."""
    event_file = write_event(tmp_path, future_start(), capacity=2)
    db_path = tmp_path / "bot.sqlite3"
    await seed(db_path)
    new_start, change = await told_without_files(db_path, event_file)

    bot = await bots.start(event_file, ADMIN_IDS=str(ADMIN))
    people = [Participant(api, user_id, lang) for user_id, lang, _ in PEOPLE]
    received = await notices(api, people)
    report = await api.wait_for(lambda m: "Change #1" in text_of(m), chat_id=ADMIN)
    assert "Delivered: 0" in text_of(report)  # nobody was left to tell
    await bot.close()
    await bots.start(event_file, ADMIN_IDS=str(ADMIN))
    await Participant(api, ADMIN, "en").say("/myid")  # the bot is up and idle
    for user_id, lang, _ in PEOPLE:
        messages = api.messages_to(user_id)
        assert messages == received[user_id]
        assert [m.method for m in messages] == ["sendDocument"], user_id
        vevent = vevent_of(messages[0])
        assert vevent.decoded("DTSTART").astimezone(UTC) == new_start.astimezone(UTC)
        assert sequence(vevent) > 0
        assert messages[0].caption == T(lang)._(UPDATED)
    sent = {u: (DeliveryStatus.SENT, None) for u, _, _ in PEOPLE}
    assert await delivery_rows(db_path, change.calendar_kind) == sent
    assert await delivery_rows(db_path, change.kind) == sent


async def test_once_the_session_started_a_missing_file_is_recorded_skipped(tmp_path):
    """After the start (or for a change a later one superseded, or someone who cancelled) the
    file a crash kept back is recorded as skipped, not sent."""
    event_file = write_event(tmp_path, future_start(), capacity=2)
    db_path = tmp_path / "bot.sqlite3"
    await seed(db_path)
    _, change = await told_without_files(db_path, event_file)
    db = Database(db_path)
    await db.open()
    try:
        registrations, deliveries = RegistrationRepo(db), DeliveryRepo(db)
        changes = EventChangeRepo(db)
        events = EventState(load_event(event_file), changes, lambda: datetime.now(UTC))
        await events.load()

        def notices_at(now: datetime) -> ChangeNotices:
            return ChangeNotices(
                events, changes, deliveries, UserRepo(db), registrations, lambda: now
            )

        await registrations.cancel(503, 2)
        recovered = await notices_at(datetime.now(UTC)).recover()
        assert [(f.change.id, f.user_id, f.language) for f in recovered.files] == [
            (change.id, 501, "en"),
            (change.id, 502, "fr"),
        ]
        assert [c.id for c in recovered.changes] == [change.id]
        assert await deliveries.statuses(change.calendar_kind) == {
            503: (DeliveryStatus.SKIPPED, NOT_REGISTERED)
        }

        after = notices_at(events.current.start + timedelta(minutes=1))
        assert (await after.recover()).files == []
        assert await deliveries.statuses(change.calendar_kind) == {
            501: (DeliveryStatus.SKIPPED, SESSION_STARTED),
            502: (DeliveryStatus.SKIPPED, SESSION_STARTED),
            503: (DeliveryStatus.SKIPPED, NOT_REGISTERED),
        }
    finally:
        await db.close()


async def test_a_superseded_change_sends_no_missing_file(tmp_path):
    event_file = write_event(tmp_path, future_start(), capacity=2)
    db_path = tmp_path / "bot.sqlite3"
    await seed(db_path)
    _, change = await told_without_files(db_path, event_file)
    db = Database(db_path)
    await db.open()
    try:
        changes, deliveries = EventChangeRepo(db), DeliveryRepo(db)
        later = await changes.add(
            "k2",
            Field.SCHEDULE,
            change.value,
            change.value,
            change.previous,
            ADMIN,
            True,
            datetime.now(UTC),
        )
        assert later is not None
        events = EventState(load_event(event_file), changes, lambda: datetime.now(UTC))
        await events.load()
        notices_now = ChangeNotices(
            events,
            changes,
            deliveries,
            UserRepo(db),
            RegistrationRepo(db),
            lambda: datetime.now(UTC),
        )
        recovered = await notices_now.recover()
        assert recovered.files == [] and [c.id for c in recovered.changes] == [later.id]
        assert set((await deliveries.statuses(change.calendar_kind)).values()) == {
            (DeliveryStatus.SKIPPED, SUPERSEDED)
        }
    finally:
        await db.close()


async def test_calendar_files_of_changes_sent_before_they_were_recorded_are_not_sent_again(
    tmp_path,
):
    """Schema 9 records the files that followed the notices of a new time sent by an older bot
    (which sent them unrecorded); a new link's notice gets no file row."""
    event_file = write_event(tmp_path, future_start(), capacity=2)
    db_path = tmp_path / "bot.sqlite3"
    await seed(db_path)
    _, change = await told_without_files(db_path, event_file)
    db = Database(db_path)
    await db.open()
    try:
        link = await EventChangeRepo(db).add(
            "k2",
            Field.JOIN_URL,
            "https://example.org/new",
            None,
            None,
            ADMIN,
            True,
            datetime.now(UTC),
        )
        assert link is not None
        deliveries = DeliveryRepo(db)
        now = datetime.now(UTC)
        assert await deliveries.claim(501, link.kind, now)
        await deliveries.finish(501, link.kind, DeliveryStatus.SENT, now)
        await db.conn.execute("PRAGMA user_version = 8")  # written by a bot before schema 9
        await db.close()
        await db.open()
        old = (DeliveryStatus.SKIPPED, "not recorded before schema 9")
        assert await deliveries.statuses(change.calendar_kind) == {501: old, 502: old, 503: old}
        assert await deliveries.statuses(link.calendar_kind) == {}
        assert await deliveries.sent_without("event-change:", ":calendar") == [(501, link.kind)]
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
    # The follow-up follows the new end (one hour after it by default), in one job.
    [follow_up] = bot.app.job_queue.get_jobs_by_name("followup")
    delay = follow_up.next_t - datetime.now(UTC)
    expected = new_end + timedelta(hours=1) - clock.now
    assert abs(delay - expected) < timedelta(minutes=1), (delay, expected)

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


async def test_non_admins_and_groups_are_refused(api, bots, tmp_path):
    bot = await bots.start(write_event(tmp_path, future_start()), ADMIN_IDS=str(ADMIN))
    user = Participant(api, 77, "en")
    answer = await user.say("/edit")
    assert text_of(answer) == T("en")._(UNKNOWN)
    for data in ("ed:f:capacity", "ed:ok:abc", "ed:cancel"):
        update_id = await api.press_button(77, answer.message_id, data, check=False)
        call = await api.wait_for_call(
            lambda c, u=update_id: (
                c.method == "answerCallbackQuery" and c.params.get("callback_query_id") == f"cq{u}"
            )
        )
        assert call.params.get("text") == T("en")._(
            "This button has expired. Please use the latest message."
        )
    group = -100600
    await api.send_text(77, "/nosuchcommand", chat_id=group, chat_type="group")
    generic = text_of(await api.next_message(group))
    await api.send_text(77, "/edit", chat_id=group, chat_type="group")
    assert text_of(await api.next_message(group)) == generic
    await api.send_text(ADMIN, "/edit", chat_id=group, chat_type="group")
    assert text_of(await api.next_message(group)) == T("en")._(
        "Admin commands work only in a private chat with me."
    )
    assert bot.app.bot_data["services"].event.capacity is None
    assert [c for c in await EventChangeRepo(bot.db).all()] == []


async def test_bad_values_get_a_reason_and_a_new_try(api, bots, tmp_path):
    start0 = future_start()
    bot = await bots.start(write_event(tmp_path, start0), ADMIN_IDS=str(ADMIN))
    admin = Participant(api, ADMIN, "en")
    en = T("en")
    tz = bot.event.tz
    past = datetime.now(tz) - timedelta(days=1)
    retry = en._("Please try again, or send /cancel.")
    cases = {
        en._("Date and time"): [
            (f"{past:%Y-%m-%d} 16:00-17:30", "This moment has already passed."),
            (f"{start0:%Y-%m-%d} 16:00-15:00", en._("The end must be after the start.")),
            (
                "tomorrow at four",
                en._("I could not read this. Please write it as in the example."),
            ),
        ],
        en._("Access link"): [
            ("http://zoom.example.org/j/1", en._("The link must start with https://.")),
            ("https:// nope", en._("This is not a valid link.")),
        ],
        en._("Capacity"): [
            ("fifty", "Please send a whole number greater than zero, or “none”."),
            ("0", "Please send a whole number greater than zero, or “none”."),
        ],
        en._("Registration deadline"): [
            (f"{start0 + timedelta(days=2):%Y-%m-%d %H:%M}", "cannot close after the session"),
        ],
    }
    for label, tries in cases.items():
        api.drain(ADMIN)
        menu = await admin.say("/edit")
        await admin.tap(menu, label)
        for typed, reason in tries:
            answer = text_of(await admin.say(typed))
            assert reason in answer and retry in answer, (typed, answer)
        assert text_of(await admin.say("/cancel")) == en._("Nothing was changed.")
    assert await EventChangeRepo(bot.db).all() == []
    # After a bad value, a good one is taken.
    preview = await edit_to_preview(admin, en._("Capacity"), "many")
    preview = await admin.say("40")
    assert "Capacity: no limit → 40" in text_of(preview)
    await admin.tap(preview, en._("Confirm"))
    assert bot.app.bot_data["services"].event.capacity == 40


NOTHING = "This is already the value in force. Nothing was changed."


async def test_a_value_equal_to_the_one_in_force_changes_nothing(api, bots, tmp_path):
    """No limit → "none", open until the end → "end", the same time or link typed again:
    no preview, no change stored, nobody told."""
    start0 = future_start()
    url = "https://ilo.zoom.us/j/1"
    event_file = write_event(tmp_path, start0, join_url=url)
    await seed(tmp_path / "bot.sqlite3", capacity=None)
    bot = await bots.start(event_file, ADMIN_IDS=str(ADMIN))
    admin = Participant(api, ADMIN, "es")
    es = T("es")
    tz = bot.event.tz
    same_time = f"{start0.astimezone(tz):%Y-%m-%d %H:%M}-{bot.event.end.astimezone(tz):%H:%M}"
    end_of_session = f"{bot.event.end.astimezone(tz):%Y-%m-%d %H:%M}"
    for label, typed in [
        ("Capacity", "none"),
        ("Capacity", "ninguno"),
        ("Registration deadline", "fin"),
        ("Registration deadline", end_of_session),  # the session's end: what "fin" means
        ("Date and time", same_time),
        ("Access link", f"  {url} "),
    ]:
        answer = await edit_to_preview(admin, es._(label), typed)
        assert text_of(answer) == es._(NOTHING), (label, typed, text_of(answer))
        assert answer.reply_markup is None
        assert es._(NOTHING) == "Ese ya es el valor vigente. No se ha cambiado nada."
    assert await EventChangeRepo(bot.db).all() == []
    assert not any(api.messages_to(user_id) for user_id, _, _ in PEOPLE)
    # The conversation is over: the next text is not taken for a value.
    assert es._(NOTHING) not in text_of(await admin.say("40"))


async def test_admins_type_the_words_of_their_language_and_read_the_events_city(
    api, bots, tmp_path
):
    """« aucune », «ninguno» or "none" (and "fin"/"end") are taken in any admin language; the
    prompts name the event's city as participants read it, never its zone id."""
    start0 = future_start()
    bot = await bots.start(write_event(tmp_path, start0, capacity=50), ADMIN_IDS=str(ADMIN))
    await api.wait_until_polling()
    services = bot.app.bot_data["services"]
    fr = T("fr")
    admin = Participant(api, ADMIN, "fr")
    api.drain(ADMIN)
    menu = await admin.say("/edit")
    asked = text_of(await admin.tap(menu, fr._("Capacity")))
    assert "« aucune »" in asked.replace("\u00a0", " ") and "none" not in asked
    preview = await admin.say("Aucune")
    assert "Nombre de places\u00a0: 50 → sans limite" in text_of(preview)
    await admin.tap(preview, fr._("Confirm"))
    assert services.event.capacity is None

    menu = await admin.say("/edit")
    asked = text_of(await admin.tap(menu, fr._("Date and time")))
    assert "heure de Genève" in asked and "Europe/Zurich" not in asked
    await admin.say("/cancel")
    closes = start0 - timedelta(days=1)
    for typed in (f"{closes.astimezone(bot.event.tz):%Y-%m-%d %H:%M}", "ninguno"):
        menu = await admin.say("/edit")
        asked = text_of(await admin.tap(menu, fr._("Registration deadline")))
        assert "heure de Genève" in asked and "« fin »" in asked.replace("\u00a0", " ")
        preview = await admin.say(typed)
        if typed == "ninguno":  # a word for another field is no deadline
            assert fr._("I could not read this. Please write it as in the example.") in (
                text_of(preview)
            )
            await admin.say("/cancel")
            continue
        await admin.tap(preview, fr._("Confirm"))
    assert services.event.registration_closes == closes
    # "fin" (French and Spanish) or "END" (English): all the same.
    for typed in ("fin", "END"):
        menu = await admin.say("/edit")
        await admin.tap(menu, fr._("Registration deadline"))
        preview = await admin.say(typed)
        if typed == "fin":
            assert fr._("when the session ends") in text_of(preview)
            await admin.tap(preview, fr._("Confirm"))
        else:
            assert text_of(preview) == fr._(NOTHING)
    assert services.event.registration_closes == services.event.end


async def test_a_changed_link_says_the_old_one_no_longer_works(api, bots, tmp_path):
    start0 = future_start()
    old = "https://ilo.zoom.us/j/1"
    event_file = write_event(tmp_path, start0, join_url=old, capacity=2)
    people = [(701, "fr", None), (702, "es", "America/Mexico_City"), (703, "en", None)]
    await seed(tmp_path / "bot.sqlite3", people, capacity=2)  # 703 waits
    bot = await bots.start(event_file, ADMIN_IDS=str(ADMIN))
    await api.wait_until_polling()
    admin = Participant(api, ADMIN, "en")
    new = "https://ilo.zoom.us/j/2"
    preview = await edit_to_preview(admin, T("en")._("Access link"), new)
    assert "Send the link now to the 2 registered participants, or only" in text_of(preview)
    await admin.tap(preview, T("en")._("Confirm and send it now"))
    changed = "The access link for the webinar has changed: please use the new link below."
    for user_id, lang, _ in people[:2]:
        t = T(lang)
        said = t._(changed)
        notice = await api.wait_for(lambda m, c=said: c in text_of(m), chat_id=user_id)
        assert new in text_of(notice) and old not in text_of(notice)
        assert t._("The access link for the webinar is ready.") not in text_of(notice)
    assert "Ciudad de México" in text_of(api.messages_to(702)[-1])  # in the reader's zone
    await api.wait_for(lambda m: "Change #1" in text_of(m), chat_id=ADMIN)
    assert not api.messages_to(703)
    # /myregistration gives the link in force to those with a place, not to the waiting list.
    assert new in text_of(await Participant(api, 701, "fr").say("/myregistration"))
    waiting = text_of(await Participant(api, 703, "en").say("/myregistration"))
    assert new not in waiting and "waiting list" in waiting
    assert bot.app.bot_data["services"].event.join_url == new


async def test_one_registered_participant_reads_a_singular(api, bots, tmp_path):
    await seed(tmp_path / "bot.sqlite3", [(801, "fr", None)])
    admins = {"fr": 901, "es": 902, "en": 903}
    await bots.start(
        write_event(tmp_path, future_start()), ADMIN_IDS=",".join(map(str, admins.values()))
    )
    for lang, expected in [
        ("fr", "Envoyer le lien maintenant à 1 personne inscrite, ou seulement avec les rappels"),
        ("es", "¿Enviar el enlace ahora a 1 persona inscrita o solo con los recordatorios?"),
        ("en", "Send the link now to 1 registered participant, or only with the reminders?"),
    ]:
        admin = Participant(api, admins[lang], lang)
        preview = await edit_to_preview(admin, T(lang)._("Access link"), "https://x.org/j/9")
        assert expected in text_of(preview), text_of(preview)


async def test_capacity_link_and_deadline(api, bots, tmp_path, caplog):
    start0 = future_start()
    event_file = write_event(tmp_path, start0, capacity=1)
    people = [(601, "en", None), (602, "fr", None), (603, "es", None), (604, "en", None)]
    await seed(tmp_path / "bot.sqlite3", people, capacity=1)  # 601 active, the rest waiting
    bot = await bots.start(event_file, ADMIN_IDS=str(ADMIN))
    await api.wait_until_polling()
    services = bot.app.bot_data["services"]
    admin = Participant(api, ADMIN, "en")
    en = T("en")

    # Raising the capacity promotes the first two on the waiting list, each told.
    preview = await edit_to_preview(admin, en._("Capacity"), "3")
    assert "2 people will move from the waiting list" in text_of(preview)
    await admin.tap(preview, en._("Confirm"))
    for user_id, lang in ((602, "fr"), (603, "es")):
        notice = await api.wait_for(lambda m: m.method == "sendMessage", chat_id=user_id)
        good_news = "Good news: a place has freed up and you are now registered for the webinar."
        assert T(lang)._(good_news) in text_of(notice)
    regs = RegistrationRepo(bot.db)
    assert [(await regs.live(u)).status for u in (601, 602, 603, 604)] == [
        "active",
        "active",
        "active",
        "waiting",
    ]
    # Lowering it below the confirmed count moves nobody.
    preview = await edit_to_preview(admin, en._("Capacity"), "1")
    assert "3 people have a confirmed place, more than the new capacity" in text_of(preview)
    await admin.tap(preview, en._("Confirm"))
    assert [(await regs.live(u)).status for u in (601, 602, 603, 604)] == [
        "active",
        "active",
        "active",
        "waiting",
    ]
    assert services.event.capacity == 1

    # A new access link, sent now to the registrants with a place (not the waiting list).
    url = "https://ilo.zoom.us/j/123"
    preview = await edit_to_preview(admin, en._("Access link"), url)
    assert "3 registered participants" in text_of(preview)
    await admin.tap(preview, en._("Confirm and send it now"))
    for user_id, lang in ((601, "en"), (602, "fr"), (603, "es")):
        ready = T(lang)._("The access link for the webinar is ready.")
        notice = await api.wait_for(lambda m, r=ready: r in text_of(m), chat_id=user_id)
        assert url in text_of(notice)
    await api.wait_for(lambda m: "Change #3" in text_of(m), chat_id=ADMIN)
    assert not any("access link" in text_of(m) for m in api.messages_to(604))
    my = await Participant(api, 601, "en").say("/myregistration")
    assert url in text_of(my)
    # Another one, only with the reminders: nobody is told now.
    later = "https://ilo.zoom.us/j/456"
    preview = await edit_to_preview(admin, en._("Access link"), later)
    sent_before = len(api.sent)
    done = await admin.tap(preview, en._("Confirm, send it with the reminders"))
    assert en._("Saved. It is in force from now on.") in text_of(done)
    assert services.event.join_url == later
    assert {m.chat_id for m in api.sent[sent_before:]} == {ADMIN}

    # The recording link and the deadline: stored, nobody told.
    rec = "https://ilo.org/recording"
    preview = await edit_to_preview(admin, en._("Recording link"), rec)
    assert en._("Nobody will be sent a message about this change.") in text_of(preview)
    await admin.tap(preview, en._("Confirm"))
    closes = start0 - timedelta(days=1)
    typed = f"{closes.astimezone(services.event.tz):%Y-%m-%d %H:%M}"
    preview = await edit_to_preview(admin, en._("Registration deadline"), typed)
    await admin.tap(preview, en._("Confirm"))
    assert services.event.recording_url == rec
    assert services.event.registration_closes == closes
    preview = await edit_to_preview(admin, en._("Registration deadline"), "end")
    assert en._("when the session ends") in text_of(preview)
    await admin.tap(preview, en._("Cancel"))
    assert services.event.registration_closes == closes

    actions = [action for _, action, _, _ in await AuditRepo(bot.db).recent()]
    for field in ("capacity", "join_url", "recording_url", "registration_closes"):
        assert f"edit {field}" in actions
    assert actions.count("edit capacity") == 2

    # Stored values stay in force after a restart, and the log says what overrides the file,
    # louder for a value edited by hand in the file since the change.
    await bot.close()
    write_event(tmp_path, start0, capacity=5)
    caplog.set_level(logging.INFO, logger="bot.services.event_state")
    again = await bots.start(event_file, ADMIN_IDS=str(ADMIN))
    await api.wait_until_polling()
    event = again.app.bot_data["services"].event
    assert (event.capacity, event.join_url, event.recording_url) == (1, later, rec)
    assert event.registration_closes == closes
    logged = {r.getMessage(): r.levelno for r in caplog.records}
    assert any(
        "capacity was edited after stored change #2" in m and level == logging.WARNING
        for m, level in logged.items()
    ), logged
    assert any("Stored change #4 overrides the event file's join_url" in m for m in logged)


async def test_myid_and_help(api, bots, tmp_path):
    await bots.start(write_event(tmp_path, future_start()), ADMIN_IDS=str(ADMIN))
    user = Participant(api, 4242, "fr")
    assert text_of(await user.say("/myid")) == "4242"
    assert "/edit" not in text_of(await user.say("/help"))
    admin = Participant(api, ADMIN, "es")
    help_text = text_of(await admin.say("/help"))
    assert "/edit — " + T("es")._("Change the date, links, capacity or deadline") in help_text


async def test_check_shows_the_values_in_force(api, tmp_path):
    start0 = future_start()
    event_file = write_event(tmp_path, start0, capacity=10)
    settings = settings_from(bot_env(api, tmp_path, event_file))
    db = Database(settings.database_path)
    await db.open()
    try:
        repo = EventChangeRepo(db)
        await repo.add("a", "capacity", 25, 10, 10, ADMIN, False, datetime.now(UTC))
        url = "https://ilo.zoom.us/j/9"
        await repo.add("b", "join_url", url, None, None, ADMIN, False, datetime.now(UTC))
        assert (
            await repo.add("b", "join_url", url, None, None, ADMIN, False, datetime.now(UTC))
            is None
        )
    finally:
        await db.close()
    out, err = io.StringIO(), io.StringIO()
    assert check(settings, load_event(event_file), out=out, err=err) == 0, err.getvalue()
    text = out.getvalue()
    assert re.search(r"Capacity: +25\n", text) and re.search(r"Access link: +set\n", text)
    assert "2 made with /edit (capacity, join_url)" in text
