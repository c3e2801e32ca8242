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
from bot.i18n import I18n, format_duration, format_number, format_offset
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
        "Début : 15:30 (UTC+02:00) ; nº 3 « oui »",
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
        .replace("nº ", "nº\u00a0")
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
        "nº 3",
        "n°\u00a03",  # a degree sign is not the o of numéro
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
    """Back from "UTC−02:30" (fr: U+2212) / "GMT-02:30" / "GMT+05:45" to a timedelta."""
    body = text.removeprefix("UTC").removeprefix("GMT")
    assert body[0] in "+-\u2212", text
    sign = -1 if body[0] in "-\u2212" else 1
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
    # CLDR's French hourFormat is "+HH:mm;−HH:mm": a true minus sign (U+2212).
    assert t.utc_offset(summer, st_johns) == "UTC\u221202:30"
    assert t.utc_offset(winter, st_johns) == "UTC\u221203:30"
    assert t.utc_offset(summer, zoneinfo.ZoneInfo("Pacific/Marquesas")) == "UTC\u221209:30"
    assert t.utc_offset(summer, zoneinfo.ZoneInfo("Asia/Kathmandu")) == "UTC+05:45"
    assert format_offset(timedelta(0), "es") == "GMT+00:00"
    # English and Spanish hourFormats use the hyphen-minus.
    assert format_offset(-timedelta(hours=2, minutes=30), "es") == "GMT-02:30"
    assert format_offset(-timedelta(minutes=19, seconds=32), "en") == "GMT-00:19:32"


def test_durations_numbers_and_times_as_each_language_writes_them():
    """A reminder a day ahead says "24 hours", true in every zone ("1 day" reads "tomorrow");
    Spanish writes 1000 without a separator; single times follow CLDR's Hm like ranges."""
    cases = {
        timedelta(days=1): ("24 hours", "24\u00a0heures", "24 horas"),
        timedelta(hours=23, minutes=59, seconds=50): ("24 hours", "24\u00a0heures", "24 horas"),
        timedelta(hours=1): ("1 hour", "1\u00a0heure", "1 hora"),
        timedelta(minutes=59, seconds=40): ("1 hour", "1\u00a0heure", "1 hora"),
        timedelta(minutes=15): ("15 minutes", "15 minutes", "15 minutos"),
        timedelta(days=7): ("7 days", "7\u00a0jours", "7 días"),
    }
    for delta, expected in cases.items():
        assert tuple(format_duration(delta, lang) for lang in ("en", "fr", "es")) == expected
    assert format_number(1000, "es") == "1000" and format_number(12000, "es") == "12.000"
    assert format_number(1000, "en") == "1,000" and format_number(1000, "fr") == "1\u202f000"
    i18n = I18n()
    zurich = zoneinfo.ZoneInfo("Europe/Zurich")
    start = datetime(2030, 6, 13, 5, 30, tzinfo=UTC)
    for lang, single in (("en", "07:30"), ("fr", "07:30"), ("es", "7:30")):
        t = i18n(lang)
        assert t.time(start, zurich) == single
        assert t.time_range(start, start + timedelta(hours=1), zurich).startswith(single)


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
    # Shown back by /questions: written as a native would, so that the check is on the bot.
    question = {"fr": "Et les migrants\u202f?", "es": "¿Y los trabajadores migrantes?"}
    await user.say(question[lang])
    await user.say("/timezone")
    await user.say("Xyzzyville")  # not found: an example from the registrant's country
    await user.say("/cancel")
    await user.say("Merci")  # free text from a registered participant
    registered = t._("To see your registration, send /myregistration. For everything else, /help.")
    await api.wait_for(lambda m: m.chat_id == ADMIN and m.text == registered)
    await user.say("/questions")
    await api.wait_for(lambda m: m.chat_id == ADMIN and (m.filename or "").endswith(".csv"))
    api.drain(ADMIN)  # the earlier answers, read or not: the transcript keeps them all
    menu = await user.say("/edit")
    await user.tap(menu, t._("Capacity"))
    await user.say(t._("none"))  # no limit already: nothing changes
    menu = await user.say("/edit")
    await user.tap(menu, t._("Date and time"))
    await user.say("demain")  # not a date: the reason and a new try
    await user.say("/cancel")
    menu = await user.say("/edit")
    await user.tap(menu, t._("Registration deadline"))
    await user.say("/cancel")
    menu = await user.say("/broadcast")
    await user.tap(menu, t._("Cancel"))
    await user.say("/stats")
    await api.wait_for(lambda m: m.chat_id == ADMIN and m.method == "sendPhoto")
    return user


async def checked_journey(api, bots, event_file, lang: str, country: str, city: str) -> str:
    """The journey through the real bot in `lang`; fails on any typography problem in what
    it showed, and returns all of it as one text."""
    await bots.start(event_file, ADMIN_IDS=str(ADMIN))
    await participant_and_admin_flow(api, lang, country, city)
    shown = transcript(api, ADMIN)
    if DUMP:
        print("\n\n".join(f"[{where}] {text}" for where, text in shown))
    assert len(shown) > 40
    check = french_problems if lang == "fr" else spanish_problems
    problems = [f"{where}: {p}" for where, text in shown for p in check(text)]
    assert not problems, "\n".join(problems)
    return "\n".join(text for _, text in shown)


async def test_french_messages_end_to_end(api, bots, future_event_file):
    texts = await checked_journey(api, bots, future_event_file, "fr", "Canada", "Montréal")
    # The typed city names the zone; St. John's offset is the zone's real one.
    assert "Montréal (UTC\u221205:00)" in texts and "Votre heure locale (Montréal)" in texts
    assert "(Toronto)" not in texts
    start = load_event(future_event_file).start
    st_johns = start.astimezone(zoneinfo.ZoneInfo("America/St_Johns")).utcoffset()
    assert format_offset(st_johns, "fr") in texts
    assert "heure de Genève" in texts and "Zurich" not in texts
    for sent in (
        "Pour consulter votre inscription, envoyez /myregistration.",
        "C’est déjà la valeur en vigueur. Rien n’a été modifié.",
        "Questions aux panélistes (heure de Genève)",
        "par exemple\u00a0: Halifax,",  # Canada's best-known zone, not Dakar
        "ou «\u00a0aucune\u00a0» pour ne fixer aucune limite",
        "ou «\u00a0fin\u00a0» pour les laisser ouvertes",
        "1 question au total. Elle figure aussi dans le fichier CSV ci-dessous.",
        "Vouliez-vous dire le pays suivant\u202f? Appuyez sur le bouton",  # one suggestion
        "dans le fuseau horaire de l’événement (heure de Genève)",
    ):
        assert sent in texts, sent


async def test_spanish_messages_end_to_end(api, bots, future_event_file):
    texts = await checked_journey(
        api, bots, future_event_file, "es", "México", "Ciudad de México"
    )
    assert "Ciudad de México (GMT-06:00)" in texts
    assert "hora de Ginebra" in texts and "Zúrich" not in texts
    for sent in (
        "Para consultar su inscripción, envíe /myregistration.",
        "Ese ya es el valor vigente. No se ha cambiado nada.",
        "Preguntas para los panelistas (hora de Ginebra)",
        "máximo 1000 caracteres",
        "(por ejemplo, Ciudad de México) o envíe /cancel",
        "o «ninguno» para no fijar ningún límite",
        "o «fin» para mantenerlas abiertas",
        "1 pregunta en total. También figura en el archivo CSV adjunto.",
        "No encuentro este país. ¿Quería decir el siguiente? Tóquelo",  # one suggestion
        "en la zona horaria del evento (hora de Ginebra)",
    ):
        assert sent in texts, sent
    assert "Europe/Zurich" not in texts
