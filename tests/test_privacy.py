"""/deletemydata end to end: nothing about the user is left in any table."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.i18n import I18n
from bot.storage import Database, RegistrationData, to_db
from tests.conftest import Participant, write_event

T = I18n()
ERASED, WAITING, OTHER = 987654321, 987654322, 987654323

DATA = RegistrationData("Zoë Ñúñez", "zoe@example.org", "SN", "ANPE", "pes", "fr")

ERASED_MSGID = (
    "Done: everything I stored about you has been erased. If you write to me again, "
    "I will start afresh."
)


def text_of(message) -> str:
    return message.plain_text or message.text or ""


async def rows_mentioning(db: Database, user_id: int) -> dict[str, list[tuple]]:
    """Every row of every table with a value equal to, or text containing, the id."""
    tables = [
        r[0]
        for r in await db.fetchall(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )
    ]
    assert {"users", "registrations", "registration_events", "questions", "deliveries"} <= set(
        tables
    )
    found: dict[str, list[tuple]] = {}
    for table in tables:
        for row in await db.fetchall(f"SELECT * FROM {table}"):
            if any(
                value == user_id or (isinstance(value, str) and str(user_id) in value)
                for value in tuple(row)
            ):
                found.setdefault(table, []).append(tuple(row))
    return found


@pytest.fixture
def full_event(tmp_path: Path) -> Path:
    start = (datetime.now(UTC) + timedelta(days=30)).replace(minute=30, second=0, microsecond=0)
    return write_event(tmp_path, start, capacity=1)


@pytest.fixture
async def running(api, bots, full_event):
    bot = await bots.start(full_event)
    await api.wait_until_polling()
    return bot


async def test_erasure_leaves_nothing_and_promotes_the_waiting_list(api, running):
    services = running.app.bot_data["services"]
    t = T("fr")
    user = Participant(api, ERASED, "fr")
    waiting = Participant(api, WAITING, "es")
    await user.say("/start eures")
    await services.registrations.register(ERASED, DATA, "fr")
    await services.registrations.register(WAITING, DATA, "es")
    await user.say("/ask Une question pour le panel ?")
    await services.users.set_timezone(ERASED, "Africa/Dakar")
    async with running.db.transaction() as conn:
        now = to_db(datetime.now(UTC))
        await conn.execute(
            "INSERT INTO deliveries (user_id, kind, status, at) VALUES (?, 'reminder:1d', "
            "'sent', ?)",
            (ERASED, now),
        )
        # A conversation state left from an earlier version of a form.
        await conn.execute(
            "INSERT INTO conversations (name, key, state) VALUES ('registration', ?, '3')",
            (f"[{ERASED}, {ERASED}]",),
        )
    before = await services.reports.stats()
    assert (before.active, before.waiting) == (1, 1)

    confirm = await user.say("/deletemydata")
    assert t._("Erase all your data?") in text_of(confirm)
    assert await rows_mentioning(running.db, ERASED)  # the prompt itself is in user_data
    done = await user.tap(confirm, t._("Yes, erase my data"))
    assert t._(ERASED_MSGID) in text_of(done)
    assert ERASED not in services.users._languages  # the language cache forgot them too

    promoted = await waiting.next()
    assert "🎉" in text_of(promoted)
    assert (await services.registrations.current(WAITING)).status == "active"

    # The bot persists PTB's data after each update; wait until that one is handled.
    await user.say("/help")
    assert await rows_mentioning(running.db, ERASED) == {}
    assert not running.app.user_data.get(ERASED)
    after = await services.reports.stats()
    assert (after.active, after.waiting, after.cancelled) == (1, 0, 0)
    assert after.sources == [(None, 1)]


async def test_the_warning_about_the_place_only_for_someone_who_has_one(api, running):
    services = running.app.bot_data["services"]
    t = T("fr")
    user = Participant(api, ERASED, "fr")
    await services.registrations.register(ERASED, DATA, "fr")
    lose = "vous perdrez votre place"
    assert lose in text_of(await user.say("/deletemydata"))
    await services.registrations.cancel(ERASED)
    after = text_of(await user.say("/deletemydata"))
    assert t._("Erase all your data?") in after and lose not in after
    assert "l’historique de vos éventuelles inscriptions" in after
    never = text_of(await Participant(api, OTHER, "es").say("/deletemydata"))
    assert "perderá su plaza" not in never and "su inscripción y su historial" not in never


async def test_no_keeps_everything_and_stale_or_forged_buttons_expire(api, running):
    services = running.app.bot_data["services"]
    t = T("en")
    user = Participant(api, ERASED, "en")
    await services.registrations.register(ERASED, DATA, "en")
    first = await user.say("/deletemydata")
    second = await user.say("/deletemydata")
    expired = t._("This button has expired. Please use the latest message.")

    async def press(user_id: int, message_id: int, data: str) -> dict:
        update_id = await api.press_button(user_id, message_id, data, check=False)
        call = await api.wait_for_call(
            lambda c: (
                c.method == "answerCallbackQuery"
                and c.params.get("callback_query_id") == f"cq{update_id}"
            )
        )
        return call.params

    assert (await press(ERASED, first.message_id, "erase:yes")).get("text") == expired
    assert (await press(ERASED, second.message_id, "erase:maybe")).get("text") == expired
    Participant(api, OTHER, "en")
    assert (await press(OTHER, second.message_id, "erase:yes")).get("text") == expired
    assert await services.registrations.current(ERASED) is not None

    kept = await user.tap(second, t._("No, keep my data"))
    assert text_of(kept) == t._("Nothing has been erased.")
    assert (await press(ERASED, second.message_id, "erase:yes")).get("text") == expired
    assert await services.registrations.current(ERASED) is not None


async def test_in_the_middle_of_the_form_the_erasure_ends_it(api, running):
    services = running.app.bot_data["services"]
    t = T("en")
    user = Participant(api, ERASED, "en")
    await user.say("/register")
    await user.say("Mid Form Person")
    country = await user.say("midform@example.org")
    assert t._("Step {step} of {total}").format(step=3, total=8) in text_of(country)

    confirm = await user.say("/deletemydata")
    assert t._("Erase all your data?") in text_of(confirm)
    kept = await user.tap(confirm, t._("No, keep my data"))
    assert text_of(kept) == t._("Nothing has been erased.")
    organisation = await user.say("Senegal")  # the form goes on where it was
    assert t._("Step {step} of {total}").format(step=4, total=8) in text_of(organisation)

    confirm = await user.say("/deletemydata")
    done = await user.tap(confirm, t._("Yes, erase my data"))
    assert t._(ERASED_MSGID) in text_of(done)
    after = await user.say("ANPE")  # no longer an answer to the form
    assert text_of(after) == t._(
        "To register for the webinar, send /register. For everything else, /help."
    )
    assert await rows_mentioning(running.db, ERASED) == {}
    assert await services.users.get(ERASED) is None
    first = await user.say("/register")  # a new form, from the first question
    assert t._("Step {step} of {total}").format(step=1, total=8) in text_of(first)


async def test_a_prompt_from_before_the_form_erases_and_ends_it(api, running):
    t = T("en")
    user = Participant(api, ERASED, "en")
    confirm = await user.say("/deletemydata")
    await user.say("/register")
    await user.say("Early Prompt Person")
    done = await user.tap(confirm, t._("Yes, erase my data"))
    assert t._(ERASED_MSGID) in text_of(done)
    after = await user.say("someone@example.org")
    assert "/register" in text_of(after)
    assert await rows_mentioning(running.db, ERASED) == {}


async def until(api, user_id: int, text: str, send: str | None = None):
    """The next message to the user that contains `text` (after sending `send`)."""
    if send is not None:
        await api.send_text(user_id, send)
    return await api.next_message(user_id, predicate=lambda m: text in text_of(m))


def file_bytes(db_path: Path) -> bytes:
    """The database file and its WAL, as a thief with the disk (or a backup of it) reads them."""
    wal = db_path.with_name(db_path.name + "-wal")
    return db_path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")


async def test_erased_data_are_not_left_readable_in_the_database_files(api, running):
    t = T("fr")
    user = Participant(api, ERASED, "fr")
    secrets = ["Quillfeather Zéphyrine", "zephyrine.quill@example.org", "Quokka-question ?"]
    q = await user.say("/register")
    await user.say(secrets[0])
    await user.say("Zephyrine Quillfeather")  # not a valid email: asked again
    q = await user.say(secrets[1])
    q = await user.say("Sénégal")
    q = await user.say("Agence Quillfeather")
    q = await user.answer(q, "1. " + t._("Public Employment Service"))
    q = await user.answer(q, "1. " + t._("English"))
    q = await user.answer(q, t._("Yes, I agree"))
    await api.press_button(ERASED, q.message_id, q.callback_data(t._("Confirm")))
    await api.send_text(ERASED, "/ask " + secrets[2])
    await until(api, ERASED, t._("Here is what I can do:"), send="/help")  # all committed
    path = running.settings.database_path
    before = file_bytes(path)
    for secret in [*secrets, "Agence Quillfeather"]:
        assert secret.encode() in before, secret

    confirm = await until(api, ERASED, t._("Erase all your data?"), send="/deletemydata")
    await api.press_button(ERASED, confirm.message_id, "erase:yes")
    await until(api, ERASED, t._(ERASED_MSGID))
    await until(api, ERASED, t._("Here is what I can do:"), send="/help")
    after = file_bytes(path)
    for secret in [*secrets, "Agence Quillfeather", "Quillfeather", "zephyrine.quill"]:
        assert secret.encode() not in after, secret


# -- buttons pressed outside a private chat ----------------------------------------------------

GROUP = -1001234


async def test_buttons_pressed_in_a_group_are_refused_like_commands(api, bots, full_event):
    bot = await bots.start(full_event, ADMIN_IDS=str(OTHER))
    await api.wait_until_polling()
    services = bot.app.bot_data["services"]
    t = T("en")
    member, admin = Participant(api, ERASED, "en"), Participant(api, OTHER, "en")
    await services.registrations.register(ERASED, DATA, "en")
    await api.send_text(ERASED, "/start", chat_id=GROUP)
    answer = await api.next_message(GROUP)
    assert text_of(answer) == t._("I register participants in a private chat.")
    refusal = t._("I register participants in a private chat.")

    async def press(user: Participant, data: str) -> dict:
        update_id = await api.press_button(user.id, answer.message_id, data, GROUP, check=False)
        call = await api.wait_for_call(
            lambda c: (
                c.method == "answerCallbackQuery"
                and c.params.get("callback_query_id") == f"cq{update_id}"
            )
        )
        return call.params

    for user, data in [
        (member, "menu:register"),
        (member, "menu:event"),
        (member, "lang:fr"),
        (member, f"unreg:ask:{(await services.registrations.current(ERASED)).id}"),
        (member, "erase:yes"),
        (admin, "adm:stats"),
        (admin, "adm:export"),
        (admin, "bc:aud:all"),
    ]:
        params = await press(user, data)
        assert params.get("text") == refusal and params.get("show_alert"), data

    await member.say("/help")  # every press above has been handled
    assert [text_of(m) for m in api.messages_to(GROUP)] == [refusal]
    assert [m.method for m in api.sent if m.chat_id == GROUP] == ["sendMessage"]
    assert await services.users.language(ERASED) == "en"
    assert (await services.registrations.current(ERASED)).status == "active"
    assert await services.audit.recent() == []
    assert not bot.app.user_data.get(ERASED)  # no form, no erasure prompt

    # The same presses in private still work.
    menu = await member.say("/start")
    form = await member.tap(menu, t._("Register"))
    assert t._("You are already registered for this webinar.") in text_of(form)
