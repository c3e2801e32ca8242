"""French and Spanish as a native professional writes them: typography, names, offsets.

Catalogs and the event file are checked here; the messages the bot really sends are checked
end to end in the French and Spanish flows below, through the local Bot API server.
"""

from __future__ import annotations

import os
import zoneinfo
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from bot.event import load_event
from bot.i18n import I18n, format_offset
from bot.services.timezone import zone_label
from bot.timezones import is_zone
from tests.conftest import Participant
from tests.typography import french_problems, spanish_problems

ROOT = Path(__file__).resolve().parents[1]
LOCALES = ROOT / "locales"
EVENT_FILE = ROOT / "data" / "event.toml"


def catalog_texts(lang: str) -> list[tuple[str, str]]:
    """(msgid, translation) for every translated string of `lang`, plural forms included."""
    with (LOCALES / lang / "LC_MESSAGES" / "messages.po").open("rb") as f:
        catalog = read_po(f)
    texts = []
    for m in catalog:
        if not m.id:
            continue
        msgid = m.id if isinstance(m.id, str) else m.id[0]
        strings = m.string if isinstance(m.string, tuple) else (m.string,)
        texts += [(msgid, s) for s in strings if s]
    return texts


def event_texts(lang: str) -> list[tuple[str, str]]:
    """(field, text) for every text of the event file in `lang`."""
    text = load_event(EVENT_FILE).text(lang)
    items = [
        ("title", text.title),
        ("hosts", text.hosts),
        ("working_languages", text.working_languages),
        ("interpretation", text.interpretation),
        ("questions", text.questions),
    ]
    items += [("summary", s) for s in text.summary]
    items += [("topics", s) for s in text.topics]
    for kind, people in (
        ("moderators", text.moderators),
        ("speakers", text.speakers),
        ("closing", text.closing),
    ):
        items += [(kind, f"{p.name}, {p.role}") for p in people]
    items += [("resources", r.title) for r in text.resources]
    return items


# --- the checker itself --------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "Bienvenue ! Lien : https://example.org/a?b=1;c",
        "Début : 15:30 (UTC+02:00) ; n° 3 « oui »",
        '<a href="https://x.org/?a=1">lien</a> &amp; <b>gras</b>',
        "Exemple : nom@example.org",
        "Vraiment ?!",
    ],
)
def test_french_checker_accepts_right_text_urls_times_and_markup(text):
    text = (
        text.replace(" !", "\u202f!")
        .replace(" ?", "\u202f?")
        .replace(" ;", "\u202f;")
        .replace(" :", "\u00a0:")
        .replace("« ", "«\u00a0")
        .replace(" »", "\u00a0»")
        .replace("n° ", "n°\u00a0")
    )
    assert french_problems(text) == []


@pytest.mark.parametrize(
    "text",
    [
        "Bienvenue !",
        "Bienvenue!",
        "Lien : x",
        "Lien: x",
        "Bonjour ; au revoir",
        "« oui\u00a0»",
        "«\u00a0oui »",
        "n° 3",
        "Vraiment\u00a0?",  # a wide no-break space is not the narrow one
        "<b>Pays</b>: Sénégal",
    ],
)
def test_french_checker_rejects_plain_or_missing_spaces(text):
    assert french_problems(text)


def test_spanish_checker():
    assert spanish_problems("¿Enviar a {n} destinatarios ({breakdown})? ¡Gracias!") == []
    assert spanish_problems("Aviso: ¿Acepta? Sí.") == []
    assert spanish_problems("Enviar?")
    assert spanish_problems("¿Seguro? Gracias!")
    assert spanish_problems("Nota: Acepta?")


# --- catalogs and the event file -------------------------------------------------------------


def test_french_catalog_typography():
    problems = [
        f"{msgid!r}: {p}" for msgid, text in catalog_texts("fr") for p in french_problems(text)
    ]
    assert not problems, "\n".join(problems)


def test_spanish_catalog_opening_marks():
    problems = [
        f"{msgid!r}: {p}" for msgid, text in catalog_texts("es") for p in spanish_problems(text)
    ]
    assert not problems, "\n".join(problems)


def test_french_event_texts_typography():
    problems = [f"{k}: {p}" for k, text in event_texts("fr") for p in french_problems(text)]
    assert not problems, "\n".join(problems)


def test_spanish_event_texts_opening_marks():
    problems = [f"{k}: {p}" for k, text in event_texts("es") for p in spanish_problems(text)]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    ("lang", "wapes", "eures"),
    [
        ("en", "WAPES", "European Employment Services"),
        ("fr", "AMSEP", "services européens de l’emploi"),
        ("es", "AMSPE", "Servicios Europeos de Empleo"),
    ],
)
def test_event_names_wapes_and_eures_are_the_official_ones(lang, wapes, eures):
    texts = [text for _, text in event_texts(lang)]
    with_wapes = [t for t in texts if "WAPES" in t or "AMSEP" in t or "AMSPE" in t]
    assert with_wapes and all(f"({wapes})" in t for t in with_wapes), with_wapes
    with_eures = [t for t in texts if "EURES" in t]
    assert with_eures and all(eures.casefold() in t.casefold() for t in with_eures), with_eures
    assert not any("Network" in t or "réseau européen" in t.casefold() for t in with_eures)
    assert not any("Red Europea" in t for t in with_eures)


@pytest.mark.parametrize("lang", ["fr", "es"])
def test_event_job_titles_after_the_comma_are_lower_case(lang):
    text = load_event(EVENT_FILE).text(lang)
    for person in [*text.moderators, *text.closing]:
        assert person.role[:1].islower(), person.role


def test_spanish_title_is_lower_case_after_the_colon():
    title = load_event(EVENT_FILE).text("es").title
    assert title.startswith("Seminario web de la OIT: el papel")


# --- UTC offsets ---------------------------------------------------------------------------


def _parse_offset(text: str) -> timedelta:
    """Back from "UTC-02:30" / "GMT+05:45" to a timedelta."""
    body = text.removeprefix("UTC").removeprefix("GMT")
    sign = -1 if body[0] == "-" else 1
    parts = [int(p) for p in body[1:].split(":")]
    hours, minutes, seconds = [*parts, 0, 0][:3]
    return sign * timedelta(hours=hours, minutes=minutes, seconds=seconds)


ZONES = sorted(z for z in zoneinfo.available_timezones() if is_zone(z))
INSTANTS = [datetime(2023, 6, 15, 13, 30, tzinfo=UTC), datetime(2023, 12, 15, 13, 30, tzinfo=UTC)]


@pytest.mark.parametrize("lang", ["en", "fr", "es"])
def test_every_offset_shown_equals_the_zones_utcoffset(lang):
    """Every zone of tzdata, in June and in December: the offset shown is the real one
    (Babel 2.18 shows St. John's -02:30 as -03:30)."""
    t = I18n()(lang)
    wrong = []
    for name in ZONES:
        zone = zoneinfo.ZoneInfo(name)
        for when in INSTANTS:
            shown = t.utc_offset(when, zone)
            label = zone_label(t, name, when)  # the city buttons and /timezone answers
            if _parse_offset(shown) != when.astimezone(zone).utcoffset():
                wrong.append(f"{name} {when:%Y-%m-%d}: {shown}")
            if not label.endswith(f"({shown})"):
                wrong.append(f"{name} {when:%Y-%m-%d}: label {label}")
    assert len(ZONES) > 500
    assert not wrong, "\n".join(wrong)


def test_offsets_west_of_greenwich_with_minutes():
    summer, winter = INSTANTS
    t = I18n()("fr")
    st_johns = zoneinfo.ZoneInfo("America/St_Johns")
    assert t.utc_offset(summer, st_johns) == "UTC-02:30"
    assert t.utc_offset(winter, st_johns) == "UTC-03:30"
    assert t.utc_offset(summer, zoneinfo.ZoneInfo("Pacific/Marquesas")) == "UTC-09:30"
    assert t.utc_offset(summer, zoneinfo.ZoneInfo("Asia/Kathmandu")) == "UTC+05:45"
    assert format_offset(timedelta(0), "es") == "GMT+00:00"
    assert format_offset(-timedelta(minutes=19, seconds=32), "en") == "GMT-00:19:32"


# --- what the bot really sends, end to end ---------------------------------------------------

ADMIN = 900
DUMP = bool(os.environ.get("DUMP_TRANSCRIPT"))  # print what was sent, for a native read


def transcript(api, chat_id: int) -> list[tuple[str, str]]:
    """(where, text) for everything the bot showed this chat: texts and captions as sent
    (HTML), button labels, and callback answers."""
    shown = []
    for n, m in enumerate(api.messages_to(chat_id)):
        if m.text or m.caption:
            shown.append((f"#{n} {m.method}", m.text or m.caption or ""))
        shown += [(f"#{n} button", label) for label in m.button_labels]
    return shown


async def participant_and_admin_flow(api, lang: str, country: str, city: str) -> Participant:
    """The journey the issue names: /start, /help, /event, a registration (a country typed in
    the language, a misspelt one, choices typed and tapped), /myregistration, /register again,
    /timezone with a typed city and with St. John's, /calendar, /ask; then /stats as admin."""
    t = I18n()(lang)
    user = Participant(api, ADMIN, lang)
    await user.say("/start")
    await user.say("/help")
    await user.say("/event")
    await user.next()  # the programme
    q = await user.say("/register")
    q = await user.say("Aminata Diallo")
    q = await user.say("aminata@")  # invalid: explained, asked again
    q = await user.say("aminata@example.org")
    q = await user.say(country[:-2] + country[-1] + country[-2])  # misspelt: suggestions
    q = await user.say(country)
    q = await user.say("ANPE")
    q = await user.say("42")  # out of range: the hint
    q = await user.answer(q, "1. " + t._("Public Employment Service"))
    q = await user.say("2")
    q = await user.answer(q, t._("Yes, I agree"))
    done = await user.answer(q, t._("Confirm"))
    assert t._("You are registered.") in (done.plain_text or "")
    await api.wait_for(lambda m: m.chat_id == ADMIN and m.method == "sendDocument")
    await user.say("/myregistration")
    await user.say("/register")  # already registered
    await user.say("/timezone")
    await user.say(city)
    await user.say("/timezone")
    await user.say("St. John's")
    await user.say("/event")
    await user.next()
    await user.say("/calendar")
    await user.say("/ask")
    await user.say("¿Y los trabajadores migrantes ?")
    await user.say("/stats")
    await api.wait_for(lambda m: m.chat_id == ADMIN and m.method == "sendPhoto")
    return user


async def test_french_messages_end_to_end(api, bots, future_event_file):
    await bots.start(future_event_file, ADMIN_IDS=str(ADMIN))
    await participant_and_admin_flow(api, "fr", "Canada", "Montréal")
    shown = transcript(api, ADMIN)
    if DUMP:
        print("\n\n".join(f"[{where}] {text}" for where, text in shown))
    assert len(shown) > 40
    problems = [f"{where}: {p}" for where, text in shown for p in french_problems(text)]
    assert not problems, "\n".join(problems)
    texts = "\n".join(text for _, text in shown)
    # The typed city names the zone; St. John's offset is the zone's real one.
    assert "Montréal (UTC-05:00)" in texts and "Votre heure locale (Montréal)" in texts
    assert "(Toronto)" not in texts
    start = load_event(future_event_file).start
    st_johns = start.astimezone(zoneinfo.ZoneInfo("America/St_Johns")).utcoffset()
    assert format_offset(st_johns, "fr") in texts
    assert "heure de Genève" in texts and "Zurich" not in texts


async def test_spanish_messages_end_to_end(api, bots, future_event_file):
    await bots.start(future_event_file, ADMIN_IDS=str(ADMIN))
    await participant_and_admin_flow(api, "es", "México", "Ciudad de México")
    shown = transcript(api, ADMIN)
    if DUMP:
        print("\n\n".join(f"[{where}] {text}" for where, text in shown))
    assert len(shown) > 40
    problems = [f"{where}: {p}" for where, text in shown for p in spanish_problems(text)]
    assert not problems, "\n".join(problems)
    texts = "\n".join(text for _, text in shown)
    assert "Ciudad de México (GMT-06:00)" in texts
    assert "hora de Ginebra" in texts and "Zúrich" not in texts
