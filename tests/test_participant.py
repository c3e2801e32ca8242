"""The participant journey end to end: the real Application against the local Bot API server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.i18n import I18n
from bot.storage import RegistrationRepo
from tests.conftest import ROOT, Participant, write_event

SHIPPED = ROOT / "data" / "event.toml"
T = I18n()


def text_of(message) -> str:
    return message.plain_text or message.text or ""


@pytest.mark.parametrize(
    ("code", "date", "offset"),
    [
        ("fr", "jeudi 15 juin 2023", "UTC+02:00"),
        ("es-419", "jueves, 15 de junio de 2023", "GMT+02:00"),
        ("en-GB", "Thursday, June 15, 2023", "GMT+02:00"),
    ],
)
async def test_start_and_event_in_the_users_language(api, bots, code, date, offset):
    await bots.start(SHIPPED)
    user = Participant(api, 101, code)
    lang = code[:2]
    welcome = await user.say("/start")
    assert date in text_of(welcome) and offset in text_of(welcome)
    assert T(lang)._("Register") in welcome.button_labels
    details = await user.say("/event")
    body = text_of(details)
    assert date in body and offset in body and "15:30" in body
    programme = text_of(await user.next())
    wapes = {"fr": "AMSEP", "es": "AMSPE", "en": "WAPES"}[lang]
    assert "ANAPEC" in programme and wapes in programme
    # Country names of speakers are localised by Babel.
    assert {"fr": "Maroc", "es": "Marruecos", "en": "Morocco"}[lang] in programme


async def test_shipped_event_says_registration_closed(api, bots):
    await bots.start(SHIPPED)
    user = Participant(api, 102, "fr")
    reply = await user.say("/register")
    assert "15 juin 2023" in text_of(reply)
    assert T("fr")._("The details and resources remain available with /event.") in text_of(reply)


async def register(user: Participant, lang: str, *, name: str = "Ana María López") -> object:
    t = T(lang)
    q = await user.say("/register")
    assert t._("Step {step} of {total}").format(step=1, total=8) in text_of(q)
    q = await user.say(name)
    q = await user.say("ana@example.org")
    q = await user.say({"en": "Senegal", "fr": "Sénégal", "es": "Senegal"}[lang])
    q = await user.answer(q, t._("Skip this question"))
    q = await user.answer(q, "1. " + t._("Public Employment Service"))
    q = await user.say("2")  # French (interpretation), typed as a number
    q = await user.answer(q, t._("Yes, I agree"))
    assert t._("Please check your details:") in text_of(q)
    confirmation = await user.answer(q, t._("Confirm"))
    assert (await user.next()).method == "sendDocument"  # the calendar file follows
    return confirmation


@pytest.mark.parametrize(("code", "lang"), [("en", "en"), ("fr-CA", "fr"), ("es-419", "es")])
async def test_full_registration_in_each_language(api, bot, code, lang):
    t = T(lang)
    user = Participant(api, 200, code)
    confirmation = await register(user, lang)
    assert t._("You are registered.") in text_of(confirmation)
    assert t._("The access link will be sent to you here before the session.") in text_of(
        confirmation
    )
    # Each of the four buttons tapped was answered, and its message turned into what came next
    # (one edit, no extra message), with the choice kept on top; the summary at step 8 became
    # the confirmation, which repeats every answer. No keyboard is left on that message.
    edits = [m for m in api.messages_to(200) if m.is_edit]
    assert [m.method for m in edits] == ["editMessageText"] * 4
    assert text_of(edits[0]).startswith("✓ " + t.label(t._("Organisation"), "—"))
    label = t._("Public Employment Service")
    assert text_of(edits[1]).startswith("✓ " + t.label(t._("Affiliation"), label))
    assert text_of(edits[2]).startswith("✓ " + t._("Yes, I agree"))
    assert t._("Please check your details:") in text_of(edits[2])
    assert edits[3] is confirmation
    assert "reply_markup" not in api.message(200, confirmation.message_id)
    assert len(api.callback_answers) == 4
    stored = await RegistrationRepo(bot.db).live(200)
    assert stored is not None and stored.status == "active"
    assert stored.data.full_name == "Ana María López"
    assert stored.data.email == "ana@example.org"
    assert stored.data.country == "SN"
    assert stored.data.organisation is None
    assert (stored.data.affiliation, stored.data.session_language) == ("pes", "fr")
    assert stored.language == lang

    mine = await user.say("/myregistration")
    assert "Ana María López" in text_of(mine) and "ana@example.org" in text_of(mine)
    again = await user.say("/register")
    assert t._("You are already registered for this webinar.") in text_of(again)

    ask = await user.say("/unregister")
    done = await user.tap(ask, t._("Yes, cancel my registration"))
    assert t._(
        "Your registration has been cancelled. You can register again at any time with /register."
    ) in text_of(done)
    assert await RegistrationRepo(bot.db).live(200) is None
    confirmation = await register(user, lang, name="Ana López")
    assert t._("You are registered.") in text_of(confirmation)
    history = await RegistrationRepo(bot.db).all_for_user(200)
    assert [r.status for r in history] == ["cancelled", "active"]


async def test_an_expired_press_telegram_will_not_answer_is_no_error(api, bot):
    # Handled again after a crash, a press is too old to answer: that must not alarm the user.
    t = T("en")
    user = Participant(api, 305, "en")
    await user.say("/start")
    api.inject(
        "answerCallbackQuery",
        400,
        description="Bad Request: query is too old and response timeout expired or query ID is "
        "invalid",
    )
    await api.press_button(305, 999, "reg:aff:pes", check=False)
    await api.wait_for_call(lambda c: c.method == "answerCallbackQuery")
    q = await user.say("/help")
    assert t._("Sorry, something went wrong on our side. Please try again in a moment.") not in (
        text_of(q)
    )
    assert "/register" in text_of(q)


async def test_bad_input_gets_a_clear_message_and_nothing_wrong_is_stored(api, bot):
    t = T("en")
    user = Participant(api, 300, "en")
    await user.say("/register")
    q = await user.say("x" * 5000)
    assert t._("This name is too long: {max} characters at most.").format(max=100) in text_of(q)
    await api.send_sticker(300)
    q = await user.next()
    assert t._("I can only read text here. Please answer the question below.") in text_of(q)
    q = await user.say("/help")  # still answered in the middle of the form
    q = await user.say("Jean\x00 Dupont\x07")
    q = await user.say("jean@")
    assert "valid email" in text_of(q)
    q = await user.say("jean.dupont@example.org")
    q = await user.say("Atlantis")
    assert t._(
        "I could not find this country. Please type its full name, for example: {example}"
    ).split("{")[0] in text_of(q)
    q = await user.say("Marocco")  # misspelt: suggested
    assert "Morocco" in q.button_labels
    org_question = await user.answer(q, "Morocco")
    q = await user.say("ANAPEC")
    q = await user.say("42")
    assert t._("Please tap one of the buttons or type its number (1 to {n}).").format(n=9) in (
        text_of(q)
    )
    # A stale button from an earlier message is refused and changes nothing.
    await api.press_button(300, org_question.message_id, "reg:org:skip")
    q = await user.say("Jobseeker")
    await api.press_button(300, q.message_id, "reg:slang:xx", check=False)  # forged choice
    q = await api.next_message(300, predicate=lambda m: m.message_id == q.message_id)
    assert t._("Please tap one of the buttons or type its number (1 to {n}).").format(n=3) in (
        text_of(q)
    )
    q = await user.say("es")
    q = await user.say("Spanish (interpretation)")
    q = await user.answer(q, t._("No"))
    assert "nothing has been stored" in text_of(q)
    assert await RegistrationRepo(bot.db).all_for_user(300) == []
    expired = [a for a in api.callback_answers if "expired" in (a.get("text") or "")]
    assert expired, "the stale button was not answered"


async def test_restart_between_two_answers_resumes_the_same_question(api, bots, future_event_file):
    t = T("es")
    user = Participant(api, 400, "es")
    first = await bots.start(future_event_file)
    await user.say("/register")
    await user.say("Lucía Pérez")
    await first.close()
    await bots.start(future_event_file)
    q = await user.say("lucia@example.org")
    assert t._("Step {step} of {total}").format(step=3, total=8) in text_of(q)


async def test_registration_opens_and_closes_with_the_clock(api, bots, tmp_path: Path):
    start = datetime.now(UTC) + timedelta(days=2)
    event_file = write_event(tmp_path, start, closes=start - timedelta(days=1))
    await bots.start(event_file, clock=lambda: start - timedelta(hours=12))
    user = Participant(api, 500, "en")
    reply = await user.say("/register")
    assert "Registration is closed." in text_of(reply)


async def test_deep_link_source_is_recorded_once(api, bot):
    user = Participant(api, 600, "en")
    await user.say("/start eures")
    await user.say("/start newsletter")  # the first source is kept
    await user.say("/start bad source!")
    record = await bot.app.bot_data["services"].users.get(600)
    assert record is not None and record.source == "eures"


async def test_group_chat_points_to_a_private_chat(api, bot):
    Participant(api, 700, "fr")
    await api.send_text(700, "/register", chat_id=-100700, chat_type="group")
    message = await api.next_message(-100700)
    assert T("fr")._("I register participants in a private chat.") in text_of(message)
    assert message.buttons[0]["url"].endswith("?start=group")
    assert await RegistrationRepo(bot.db).all_for_user(700) == []


async def test_language_can_be_changed(api, bot):
    user = Participant(api, 800, "en")
    welcome = await user.say("/start")
    choose = await user.tap(welcome, "🌐 " + T("en")._("Language"))
    await api.press_button(800, choose.message_id, choose.callback_data("Español"))
    menu = await user.next()
    assert T("es")._("Choose below, or send /help to see everything I can do.") in text_of(menu)
    help_text = text_of(await user.say("/help"))
    assert T("es")._("Here is what I can do:") in help_text
    scoped = api.commands(scope={"type": "chat", "chat_id": 800})
    assert scoped and scoped[0]["description"] == T("es")._("Welcome and main menu")


async def test_menus_are_registered_per_language(api, bot):
    await Participant(api, 900, "en").say("/help")
    for lang in ("en", "fr", "es"):
        commands = api.commands(language_code=lang)
        assert [c["command"] for c in commands][:3] == ["start", "event", "register"]
        assert commands[0]["description"] == T(lang)._("Welcome and main menu")
