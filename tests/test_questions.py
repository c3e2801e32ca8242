"""/ask for participants and /questions for organisers, end to end."""

from __future__ import annotations

import csv
import io

from babel.numbers import format_decimal

from bot.i18n import I18n
from bot.services.validation import QUESTION_MAX
from tests.conftest import Participant

T = I18n()
ADMIN = 42


def text_of(message) -> str:
    return message.plain_text or message.text or ""


async def stored(bot) -> list[tuple[int, str, str]]:
    rows = await bot.db.fetchall("SELECT user_id, language, text FROM questions ORDER BY id")
    return [tuple(r) for r in rows]


def thanks(lang: str) -> str:
    return T(lang)._(
        "Thank you! Your message has been passed on to the panel. "
        "You can send another one with /ask."
    )


def prompt(lang: str) -> str:
    return (
        T(lang)
        ._(
            "What would you like to ask or tell the panel? Send it in one message "
            "(up to {max} characters), or /cancel."
        )
        .format(max=format_decimal(QUESTION_MAX, locale=lang))
    )


async def test_ask_inline_and_as_the_next_message(api, bot):
    user = Participant(api, 301, "fr")
    assert text_of(await user.say("/ask Comment les SPE protègent-ils les migrants ?")) == thanks(
        "fr"
    )
    assert text_of(await user.say("/ask")) == prompt("fr")
    assert text_of(await user.say("Deuxième question\nsur deux lignes 🙂")) == thanks("fr")
    # Once answered, the prompt is over: chatter is not taken for a question.
    reply = await user.say("merci")
    assert text_of(reply) != thanks("fr")
    assert await stored(bot) == [
        (301, "fr", "Comment les SPE protègent-ils les migrants ?"),
        (301, "fr", "Deuxième question\nsur deux lignes 🙂"),
    ]


async def test_too_long_empty_and_non_text_store_nothing(api, bot):
    t = T("en")
    user = Participant(api, 302, "en")
    await user.say("/ask")
    too_long = "x" * (QUESTION_MAX + 1)
    reply = text_of(await user.say(too_long))
    assert "1,001" in reply and "1,000" in reply and "Nothing has been sent" in reply
    await api.send_sticker(302)
    assert text_of(await user.next()) == t._("Please send your question as text, or /cancel.")
    assert text_of(await user.say("\x00\x07")) == prompt("en")  # nothing readable
    assert await stored(bot) == []
    # Still waiting: a shorter version is taken.
    assert text_of(await user.say("y" * QUESTION_MAX)) == thanks("en")
    assert text_of(await user.say("/ask " + too_long)).startswith("This message is too long")
    assert text_of(await user.say("/cancel")) == t._("All right, nothing has been sent.")
    assert [len(text) for _, _, text in await stored(bot)] == [QUESTION_MAX]


async def test_another_command_leaves_the_prompt(api, bot):
    user = Participant(api, 303, "es")
    await user.say("/ask")
    help_text = text_of(await user.say("/help"))
    assert T("es")._("Here is what I can do:") in help_text
    reply = await user.say("hola")  # no longer read as a question
    assert text_of(reply) != thanks("es")
    assert await stored(bot) == []


async def test_ask_works_in_the_middle_of_the_registration_form(api, bot):
    t = T("en")
    user = Participant(api, 304, "en")
    await user.say("/register")
    assert text_of(await user.say("/ask Is there a recording?")) == thanks("en")
    email_question = await user.say("Ana López")  # the form goes on where it was
    assert t._("What is your email address?") in text_of(email_question)
    assert await stored(bot) == [(304, "en", "Is there a recording?")]


async def test_the_prompt_survives_a_restart(api, bots, future_event_file):
    first = await bots.start(future_event_file)
    user = Participant(api, 305, "en")
    await user.say("/ask")
    await first.close()
    second = await bots.start(future_event_file)
    assert text_of(await user.say("After the restart")) == thanks("en")
    assert await stored(second) == [(305, "en", "After the restart")]


async def test_questions_for_admins_newest_first_with_a_csv(api, bots, future_event_file):
    bot = await bots.start(future_event_file, ADMIN_IDS=str(ADMIN))
    admin = Participant(api, ADMIN, "en")
    assert text_of(await admin.say("/questions")) == T("en")._("No questions yet.")
    asked = [
        (401, "en", "First: how do PES & agencies <cooperate>?"),
        (402, "fr", "Zoë Ñúñez demande : et les frais ?"),
        (403, "es", "محمد: ¿y los migrantes?"),
        (404, "en", "张伟: =1+1 " + "long " * 100),
    ]
    for user_id, lang, text in asked:
        user = Participant(api, user_id, lang)
        assert text_of(await user.say("/ask " + text)) == thanks(lang)

    page = text_of(await admin.say("/questions"))
    assert "4 questions in total, newest first." in page
    positions = [page.index(text[:20]) for _, _, text in asked]
    assert positions == sorted(positions, reverse=True)  # newest first
    assert "<cooperate>" in page and " · FR · " in page
    assert "…" in page and "long " * 100 not in page  # long ones are shortened in the chat

    document = await api.next_message(ADMIN, predicate=lambda m: m.method == "sendDocument")
    assert document.filename.startswith("questions-") and document.filename.endswith(".csv")
    assert document.document.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(document.document.decode("utf-8-sig"))))
    assert [r["language"] for r in rows] == ["en", "es", "fr", "en"]
    assert [r["text"] for r in rows[1:]] == [text for _, _, text in reversed(asked[:3])]
    assert rows[0]["text"] == asked[3][2].strip()
    assert rows[0]["asked_at_utc"].endswith("Z") and "+0" in rows[0]["asked_at_event_tz"]
    audit = await bot.db.fetchall("SELECT action FROM audit_log ORDER BY id")
    assert [r[0] for r in audit] == ["/questions", "/questions"]
