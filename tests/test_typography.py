"""French and Spanish as a native professional writes them: typography, names, offsets.

Catalogs and the event file are checked here; the messages the bot really sends are checked
end to end in the French and Spanish flows below, through the local Bot API server.
"""

from __future__ import annotations

import zoneinfo
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from bot.event import load_event
from bot.i18n import I18n, format_offset
from bot.timezones import is_zone
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
            if _parse_offset(shown) != when.astimezone(zone).utcoffset():
                wrong.append(f"{name} {when:%Y-%m-%d}: {shown}")
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
