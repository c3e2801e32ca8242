"""Leaks and hygiene: forged button values, spreadsheet formulas, invisible characters, the
audit log, buttons on messages Telegram no longer lets the bot edit."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import pytest

from bot.i18n import I18n
from bot.services.reports import REGISTRATION_COLUMNS, defused
from bot.services.validation import clean_text
from bot.storage import RegistrationData, to_db
from tests.conftest import Participant

T = I18n()
ADMIN, USER = 4242, 4343
FORMULAS = ("=", "+", "-", "@", "\t", "\r")


def text_of(message) -> str:
    return message.plain_text or message.text or ""


@pytest.fixture
async def admin_bot(bots, future_event_file):
    bot = await bots.start(future_event_file, ADMIN_IDS=str(ADMIN))
    await bots.api.wait_until_polling()
    return bot


async def answer_to_press(api, user_id: int, message_id: int, data: str) -> dict:
    update_id = await api.press_button(user_id, message_id, data, check=False)
    call = await api.wait_for_call(
        lambda c: (
            c.method == "answerCallbackQuery"
            and c.params.get("callback_query_id") == f"cq{update_id}"
        )
    )
    return call.params


# -- forged button values ----------------------------------------------------------------------


async def test_a_forged_country_button_is_refused_and_an_offered_one_taken(api, admin_bot):
    t = T("en")
    user = Participant(api, USER, "en")
    await user.say("/register")
    await user.say("Ada Lovelace")
    await user.say("ada@example.org")
    suggestions = await user.say("Marocco")
    assert "Morocco" in suggestions.button_labels
    expired = t._("This button has expired. Please use the latest message.")
    for forged in ('=HYPERLINK("https://evil.example","x")', "ZZ", "FR", ""):
        params = await answer_to_press(api, USER, suggestions.message_id, f"reg:country:{forged}")
        assert params.get("text") == expired, forged
    assert "country" not in admin_bot.app.user_data[USER]["registration"]
    organisation = await user.answer(suggestions, "Morocco")
    assert t._("Step {step} of {total}").format(step=4, total=8) in text_of(organisation)
    assert admin_bot.app.user_data[USER]["registration"]["country"] == "MA"


# -- CSV export ----------------------------------------------------------------------------------


def test_defused_prefixes_every_cell_that_a_spreadsheet_would_run():
    row = ["1", "=1+1", "+33", "-2", "@SUM(A1)", "\tx", "\ry", "Zoë", "", "a=b"]
    assert defused(row) == [
        "1",
        "'=1+1",
        "'+33",
        "'-2",
        "'@SUM(A1)",
        "'\tx",
        "'\ry",
        "Zoë",
        "",
        "a=b",
    ]
    plain = ["1", "active", "Zoë", "2023-06-01T12:00:00+02:00"]
    assert defused(plain) is plain  # nothing to defuse: the row as it was


async def test_every_column_of_the_export_is_defused(api, admin_bot):
    """Values that should never be there (an old bot, a hand-edited database, a bug): the
    export defuses them in every column, not only in the typed ones."""
    now = to_db(datetime(2030, 1, 1, 12, tzinfo=UTC))
    async with admin_bot.db.transaction() as conn:
        await conn.execute(
            "INSERT INTO users (user_id, language, source, created_at, updated_at) "
            "VALUES (?, 'en', ?, ?, ?)",
            (USER, "-src", now, now),
        )
        await conn.execute(
            "INSERT INTO registrations (user_id, status, full_name, email, country, "
            "organisation, affiliation, session_language, language, source, created_at, "
            "updated_at) VALUES (?, 'active', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                USER,
                "=cmd|' /C calc'!A0",
                "+mail@example.org",
                '=HYPERLINK("https://evil.example")',
                "@org",
                "-aff",
                "=slang",
                "+lang",
                "-1+2",
                now,
                now,
            ),
        )
    Participant(api, ADMIN, "en")
    await api.send_text(ADMIN, "/export")
    document = await api.next_message(ADMIN, predicate=lambda m: m.method == "sendDocument")
    assert document.document is not None
    rows = list(csv.reader(io.StringIO(document.document.decode("utf-8-sig"))))
    assert rows[0] == list(REGISTRATION_COLUMNS)
    (row,) = rows[1:]
    cells = dict(zip(REGISTRATION_COLUMNS, row, strict=True))
    assert not [name for name, cell in cells.items() if cell.startswith(FORMULAS)], cells
    assert cells["country"] == cells["country_name"] == "'" + '=HYPERLINK("https://evil.example")'
    assert cells["full_name"] == "'=cmd|' /C calc'!A0"
    assert cells["affiliation"] == cells["affiliation_label"] == "'-aff"
    assert cells["source"] == "'-1+2"
    assert cells["session_language"] == "'=slang" and cells["language"] == "'+lang"


# -- invisible and direction-changing characters ------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "kept"),
    [
        ("Zoë\u200b Ñúñez", "Zoë Ñúñez"),  # zero-width space
        ("\u202eevil\u202c name", "evil name"),  # right-to-left override, pop
        ("\u2066Ana\u2069 \u200eLópez\u200f", "Ana López"),  # isolates, direction marks
        ("Ada\U000e0041\U000e0042\U000e007f Byron", "Ada Byron"),  # tag characters
        ("Jean\x00 Dupont\x07\ufeff", "Jean Dupont"),  # controls, BOM
        ("Li\ue000 Wei\u00ad", "Li Wei"),  # private use, soft hyphen
        ("a\u200db\u200cc", "abc"),  # joiners between Latin letters do nothing visible
        ("\u200d👍", "👍"),
        # Kept: emoji sequences, the joiners of Persian and Devanagari, any script.
        ("Dev 👩🏽\u200d💻", "Dev 👩🏽\u200d💻"),
        ("👨\u200d👩\u200d👧 family", "👨\u200d👩\u200d👧 family"),
        ("👁️\u200d🗨️", "👁️\u200d🗨️"),
        ("علی\u200cرضا", "علی\u200cرضا"),
        ("क्\u200dष", "क्\u200dष"),
        ("محمد 张伟 Zoë", "محمد 张伟 Zoë"),
        # Nothing visible at all.
        ("\u200b\u200d\u2060\u3164\u115f\u2800 \u202e", ""),
    ],
)
def test_clean_text_keeps_only_what_shows(typed, kept):
    assert clean_text(typed) == kept


async def test_a_name_of_invisible_characters_is_asked_again(api, admin_bot):
    t = T("en")
    user = Participant(api, USER, "en")
    await user.say("/register")
    again = await user.say("\u200b\u3164\u200d\u202e")
    assert t._("Please type your name.") in text_of(again)
    email = await user.say("\u202eAda\u200b Lovelace")
    assert t._("What is your email address?") in text_of(email)
    assert admin_bot.app.user_data[USER]["registration"]["name"] == "Ada Lovelace"


# -- the audit log -----------------------------------------------------------------------------


async def test_a_broadcast_text_is_audited_as_a_detail_not_as_an_action(api, admin_bot):
    services = admin_bot.app.bot_data["services"]
    await services.registrations.register(
        USER, RegistrationData("P", "p@example.org", "SN", None, "pes", "en"), "en"
    )
    t = T("en")
    admin = Participant(api, ADMIN, "en")
    menu = await admin.say("/broadcast")
    label = next(b for b in menu.button_labels if b.startswith(t._("All registrants")))
    mode = await admin.tap(menu, label)
    await admin.tap(mode, t._("One text for everyone"))
    await admin.say("Dear participants, the room has changed.")
    summary = await api.next_message(ADMIN, predicate=lambda m: bool(m.button_labels))
    await api.press_button(ADMIN, summary.message_id, summary.callback_data(t._("Cancel")))
    await admin.next()
    audit = [(action, detail) for _, action, detail, _ in await services.audit.recent()]
    assert audit[::-1] == [
        ("/broadcast", None),
        ("button bc:aud:all", None),
        ("button bc:mode:one", None),
        ("broadcast.got_text", "Dear participants, the room has changed."),
        ("button bc:cancel", None),
    ]


# -- buttons on inaccessible messages -----------------------------------------------------------


async def test_a_language_button_on_an_inaccessible_message_switches_and_says_so(api, admin_bot):
    user = Participant(api, USER, "en")
    await user.say("/start")
    # A message Telegram reports as inaccessible (date 0), e.g. one too old to be edited.
    update_id = await api.press_button(USER, 999_999, "lang:fr", check=False)
    done = await user.next()
    assert text_of(done) == T("fr")._("Language set to English.")
    menu = await user.next()
    assert text_of(menu) == T("fr")._("Choose below, or send /help to see everything I can do.")
    assert api.callback_answer(update_id) is not None  # the press was answered, no alert
    assert not api.callback_answer(update_id).get("text")
    assert await admin_bot.app.bot_data["services"].users.language(USER) == "fr"
    assert not [m for m in api.messages_to(USER) if "went wrong" in text_of(m)]
    assert not [c for c in api.calls if c.method.startswith("edit")]


async def test_the_same_language_twice_is_no_error(api, admin_bot):
    user = Participant(api, USER, "en")
    await user.say("/start")
    choose = await user.say("/language")
    await user.tap(choose, "Français")  # the prompt becomes "Langue : français."
    await api.press_button(USER, choose.message_id, "lang:fr", check=False)
    menu = await user.next()
    assert text_of(menu) == T("fr")._("Choose below, or send /help to see everything I can do.")
    assert not [m for m in api.messages_to(USER) if "went wrong" in text_of(m)]
