"""The registration form's cost in requests, its buttons edited in place, and edited answers."""

from __future__ import annotations

import pytest
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, ReplyKeyboardMarkup
from telegram.error import BadRequest

from bot.i18n import I18n
from bot.localapi.methods import NOT_MODIFIED
from bot.storage import RegistrationRepo
from tests.conftest import Participant, direct_bot
from tests.test_broadcast import ADMIN, button, seed

T = I18n()
ERROR = "Sorry, something went wrong on our side. Please try again in a moment."
#: Every request that targets the person's chat counts (answerCallbackQuery does not).
BUDGET = 10


def text_of(message) -> str:
    return message.plain_text or message.text or ""


def chat_requests(api, chat_id: int) -> list[str]:
    """Methods of the requests Telegram accepted for `chat_id`, in order."""
    return [
        c.method
        for c in api.calls
        if c.status == 200 and str(c.params.get("chat_id")) == str(chat_id)
    ]


def no_error(api, chat_id: int) -> bool:
    return all(ERROR not in text_of(m) for m in api.messages_to(chat_id))


async def tapped_registration(user: Participant) -> None:
    t = T("en")
    await user.say("/register")
    await user.say("Awa Diop")
    await user.say("awa@example.org")
    q = await user.say("Senegal")  # a country is typed; a misspelt one offers buttons
    q = await user.answer(q, t._("Skip this question"))
    q = await user.answer(q, "1. " + t._("Public Employment Service"))
    q = await user.answer(q, "2. " + t._("French (interpretation)"))
    q = await user.answer(q, t._("Yes, I agree"))
    confirmation = await user.answer(q, t._("Confirm"))
    assert t._("You are registered.") in text_of(confirmation)
    assert (await user.next()).method == "sendDocument"


async def typed_registration(user: Participant) -> None:
    t = T("en")
    for answer in ("/register", "Awa Diop", "awa@example.org", "Senegal", "-", "1", "2", "yes"):
        await user.say(answer)
    confirmation = await user.say("1")  # Confirm, typed as its number
    assert t._("You are registered.") in text_of(confirmation)
    assert (await user.next()).method == "sendDocument"


@pytest.mark.parametrize("variant", ["tapped", "typed"])
async def test_a_registration_costs_at_most_ten_requests(api, bot, variant):
    user = Participant(api, 1500, "en")
    await (tapped_registration if variant == "tapped" else typed_registration)(user)
    requests = chat_requests(api, 1500)
    # 9 answers (8 questions and the confirmation) and the calendar file: one request each.
    assert len(requests) <= BUDGET, requests
    assert requests[-1] == "sendDocument"
    assert "editMessageReplyMarkup" not in requests
    pressed = 5 if variant == "tapped" else 0
    assert len(api.callback_answers) == pressed
    assert requests.count("editMessageText") == pressed
    stored = await RegistrationRepo(bot.db).live(1500)
    assert stored is not None and stored.data.session_language == "fr"


async def test_old_and_replayed_buttons_are_refused_and_change_nothing(api, bot):
    t = T("en")
    user = Participant(api, 1501, "en")
    for answer in ("/register", "Awa Diop", "awa@example.org"):
        await user.say(answer)
    question = await user.say("Senegal")
    q = await user.answer(question, t._("Skip this question"))  # the same message, step 5
    # A replay of the press that was just handled: that button is no longer on the message.
    replayed = await api.press_button(1501, question.message_id, "reg:org:skip", check=False)
    await api.wait_for_call(lambda c: c.method == "answerCallbackQuery" and c.status == 200)
    q = await user.answer(q, "3. " + t._("Employers' organisation or employer"))
    # The same affiliation button pressed twice: the second press is late, the step has moved.
    late = await api.press_button(1501, question.message_id, "reg:aff:pes", check=False)
    # A typed answer leaves the old keyboard in place (no request for it): pressing it is refused.
    consent = await user.say("English")
    old = await api.press_button(1501, q.message_id, q.callback_data("1. " + t._("English")))
    summary = await user.answer(consent, t._("Yes, I agree"))
    for update_id in (replayed, late, old):
        answer = await api.wait_for_call(
            lambda c, q=f"cq{update_id}": c.params.get("callback_query_id") == q
        )
        assert "expired" in answer.params.get("text", ""), answer
    # The summary shows the answers given, none of the stale presses.
    assert t._("Please check your details:") in text_of(summary)
    assert t.label(t._("Affiliation"), t._("Employers' organisation or employer")) in (
        text_of(summary)
    )
    assert t.label(t._("Session language"), t._("English")) in text_of(summary)
    assert no_error(api, 1501)


@pytest.mark.parametrize(
    ("description", "new_message"),
    [
        (NOT_MODIFIED, False),  # handled again after a crash: the message already shows it
        ("Bad Request: message to edit not found", True),  # deleted by the person meanwhile
    ],
)
async def test_an_edit_telegram_refuses_still_moves_on(api, bot, description, new_message):
    t = T("en")
    user = Participant(api, 1502, "en")
    for answer in ("/register", "Awa Diop", "awa@example.org"):
        await user.say(answer)
    question = await user.say("Senegal")
    api.inject("editMessageText", 400, description=description)
    await api.press_button(
        1502, question.message_id, question.callback_data(t._("Skip this question"))
    )
    if new_message:
        q = await user.next()
        assert t._("Step {step} of {total}").format(step=5, total=8) in text_of(q)
    else:
        await api.wait_for_call(lambda c: c.method == "answerCallbackQuery")
        q = await user.say("2")  # the step did move on: this answers step 5
        assert t._("Step {step} of {total}").format(step=6, total=8) in text_of(q)
    assert bot.app.user_data[1502]["registration"]["org"] is None
    assert no_error(api, 1502)


# --- edited messages ------------------------------------------------------------------------


def hint(lang: str) -> str:
    t = T(lang)
    return t._(
        "Editing a message you have already sent does not change your answer. You will see "
        "all your answers at the last step, where “{button}” lets you correct them."
    ).format(button=t._("Start over"))


@pytest.mark.parametrize("lang", ["en", "fr", "es"])
async def test_an_edited_earlier_answer_gets_a_hint_never_an_error(api, bot, lang):
    t = T(lang)
    user = Participant(api, 1510, lang)
    await user.say("/register")
    q = await user.say("Ana Mria")
    name_message = user.last_said()
    assert t._("Step {step} of {total}").format(step=2, total=8) in text_of(q)
    # The bot has moved on to the email: the name answered an earlier step.
    reply = await user.edit(name_message, "Ana María")
    assert text_of(reply) == hint(lang)
    q = await user.say("ana@example.org")  # the form goes on where it was
    assert t._("Step {step} of {total}").format(step=3, total=8) in text_of(q)
    assert bot.app.user_data[1510]["registration"]["name"] == "Ana Mria"
    assert no_error(api, 1510)


async def test_an_edited_refused_answer_is_the_answer_to_the_current_question(api, bot):
    t = T("en")
    user = Participant(api, 1511, "en")
    for answer in ("/register", "Awa Diop"):
        await user.say(answer)
    refused = await user.say("awa@")
    assert "valid email" in text_of(refused)
    typo = user.last_said()
    # Still invalid after the edit: asked again, and the message stays an answer to this step.
    again = await user.edit(typo, "awa@example")
    assert "valid email" in text_of(again)
    q = await user.edit(typo, "awa@example.org")
    assert t._("Step {step} of {total}").format(step=3, total=8) in text_of(q)
    # At a step with buttons too: a refused typed choice, corrected by editing it.
    await user.say("Senegal")
    await user.say("-")
    refused = await user.say("42")
    assert "(1 to 9)" in text_of(refused)
    q = await user.edit(user.last_said(), "2")
    assert t._("Step {step} of {total}").format(step=6, total=8) in text_of(q)
    # Once the step moved on, editing that message again is an older answer: the hint.
    assert text_of(await user.edit(user.last_said() - 2, "3")) == hint("en")
    draft = bot.app.user_data[1511]["registration"]
    assert (draft["email"], draft["aff"]) == ("awa@example.org", "prea")
    assert no_error(api, 1511)


async def test_edits_are_never_commands_in_the_form_and_never_errors_elsewhere(api, bot):
    user = Participant(api, 1512, "en")
    await user.say("/help")
    help_message = user.last_said()
    await user.say("/register")
    # An edit that now reads like a command is not run as one.
    assert text_of(await user.edit(help_message, "/cancel")) == hint("en")
    assert bot.app.user_data[1512]["registration"]["step"] == 1
    q = await user.say("Awa Diop")
    assert "Step 2 of 8" in text_of(q)
    # After the form, an edit is read by nobody: the person is told so.
    await user.say("/cancel")
    reply = await user.edit(user.last_said() - 2, "Awa Diop Ndiaye")
    assert text_of(reply) == T("en")._(
        "Editing a message you have already sent changes nothing. To see your registration, "
        "send /myregistration; for everything else, /help."
    )
    assert no_error(api, 1512)


async def test_edits_in_the_ask_and_timezone_prompts_are_no_error(api, bot):
    t = T("en")
    user = Participant(api, 1513, "en")
    await user.say("/ask")
    await user.say("What about migrant workers?")
    question = user.last_said()
    await user.edit(question, "What about migrant domestic workers?")
    await user.say("/timezone")
    nothing = await user.say("Xqzvbn")
    assert "could not find this place" in text_of(nothing)
    done = await user.edit(user.last_said(), "Nairobi")  # the prompt still waits: it counts
    assert "Nairobi" in text_of(done)
    assert t._("Step {step} of {total}").format(step=1, total=8) not in text_of(done)
    assert no_error(api, 1513)


async def test_an_edited_broadcast_text_is_not_taken_for_the_next_language(
    api, bots, future_event_file, tmp_path
):
    await seed(tmp_path / "bot.sqlite3", [301, 302, 303])  # one reader of each language
    await bots.start(future_event_file, ADMIN_IDS=str(ADMIN))
    t = T("en")
    admin = Participant(api, ADMIN, "en")
    menu = await admin.say("/broadcast")
    step = await admin.tap(menu, button(menu, t._("All registrants")))
    await admin.tap(step, t._("One text per language"))
    await admin.say("Notice in English")
    english = admin.last_said()
    reply = await admin.edit(english, "Notice in English, corrected")
    assert text_of(reply) == t._(
        "An edited message changes nothing here. To correct a text, send /cancel and start "
        "the broadcast again."
    )
    await admin.say("Avis en français")
    preview = [await admin.say("Aviso en español")]
    while not preview[-1].button_labels:
        preview.append(await admin.next())
    shown = [text_of(m) for m in preview]
    assert {"Notice in English", "Avis en français", "Aviso en español"} <= set(shown)
    assert no_error(api, ADMIN)


# --- the local server edits like Telegram -----------------------------------------------------


async def test_the_local_server_refuses_the_edits_telegram_refuses(api):
    bot = await direct_bot(api, None)
    try:
        api.add_user(7)
        markup = InlineKeyboardMarkup([[InlineKeyboardButton("A", callback_data="a")]])
        sent = await bot.send_message(7, "Question", reply_markup=markup)
        await api.send_text(7, "Answer")
        refusals = {
            "message is not modified": dict(text="Question", reply_markup=markup),
            "message is too long": dict(text="x" * 4097),
            "can't parse entities": dict(text="<b>open", parse_mode="HTML"),
            "inline keyboard expected": dict(
                text="Next", reply_markup=ReplyKeyboardMarkup([["A"]])
            ),
        }
        for description, kwargs in refusals.items():
            with pytest.raises(BadRequest, match=f"(?i){description}"):
                await bot.edit_message_text(chat_id=7, message_id=sent.message_id, **kwargs)
        with pytest.raises(BadRequest, match=r"(?i)message can't be edited"):  # the user's message
            await bot.edit_message_text("Changed", chat_id=7, message_id=sent.message_id + 1)
        document = await bot.send_document(7, b"BEGIN:VCALENDAR", filename="a.ics")
        with pytest.raises(BadRequest, match=r"(?i)there is no text in the message to edit"):
            await bot.edit_message_text("Text", chat_id=7, message_id=document.message_id)
        # Same text, other buttons: a real change. Entities count: bold is not plain.
        await bot.edit_message_text("Question", chat_id=7, message_id=sent.message_id)
        edited = await bot.edit_message_text(
            "<b>Question</b>", chat_id=7, message_id=sent.message_id, parse_mode="HTML"
        )
        assert edited.text == "Question" and edited.entities and edited.edit_date is not None
        assert "reply_markup" not in api.message(7, sent.message_id)
    finally:
        await bot.shutdown()
