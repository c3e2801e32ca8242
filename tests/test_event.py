import re
from dataclasses import FrozenInstanceError
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.event import (
    LANGUAGES,
    Event,
    EventFileError,
    format_offset,
    load_event,
    parse_offset,
)

DATA = Path(__file__).resolve().parents[1] / "data"
EVENT_FILE = DATA / "event.toml"
DEMO_FILE = DATA / "demo-event.toml"
SHIPPED = EVENT_FILE.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def event() -> Event:
    return load_event(EVENT_FILE)


def test_shipped_event_times(event):
    assert event.start == datetime(2023, 6, 15, 13, 30, tzinfo=UTC)
    assert event.end == datetime(2023, 6, 15, 15, 0, tzinfo=UTC)
    assert event.start.utcoffset() == timedelta(hours=2)  # CEST, despite the "CET" label
    assert event.tz.key == "Europe/Zurich"
    assert event.start.tzinfo is event.tz
    assert event.reminders_before == (timedelta(days=1), timedelta(hours=1))
    assert event.registration_closes == event.end
    assert event.capacity is None
    assert event.join_url is None


def test_shipped_event_is_in_the_past(event):
    now = datetime.now(UTC)
    assert event.has_started(now)
    assert event.has_ended(now)
    assert not event.registration_open(now)


def test_event_state_around_the_session(event):
    before = datetime(2023, 6, 15, 13, 29, tzinfo=UTC)
    during = datetime(2023, 6, 15, 14, 0, tzinfo=UTC)
    assert event.registration_open(before) and not event.has_started(before)
    assert event.has_started(during) and not event.has_ended(during)
    assert event.registration_open(during)  # registration_closes defaults to end
    assert event.has_ended(event.end) and not event.registration_open(event.end)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_language_is_complete(event, lang):
    text = event.text(lang)
    assert text.title and text.hosts and text.working_languages
    assert text.interpretation and text.questions
    assert len(text.summary) >= 3
    assert len(text.topics) == 4
    assert len(text.moderators) == 2
    assert [s.country for s in text.speakers] == ["MA", "SE", "TN", "DE"]
    assert all(s.name and s.role for s in (*text.moderators, *text.speakers, *text.closing))
    assert len(text.closing) == 1
    assert len(text.resources) == 2
    assert all(r.url is None for r in text.resources)  # the announcement gives no URLs


def test_texts_are_translated(event):
    en, fr, es = (event.text(lang) for lang in ("en", "fr", "es"))
    assert len({en.title, fr.title, es.title}) == 3
    assert "ANAPEC" in en.speakers[0].role and "Agency" in en.speakers[0].role
    assert fr.speakers[0].role.startswith("Agence nationale de promotion de l’emploi")
    assert fr.speakers[1].name == "M. Jon Stråth"
    assert es.speakers[0].name == "Sra. Naima Barri"
    assert "AMSEP" in fr.speakers[3].role and "AMSPE" in es.speakers[3].role
    assert "CIF-OIT" in fr.moderators[0].role and "CIF-OIT" in es.moderators[0].role
    assert "Panel peakers" not in SHIPPED


def test_text_falls_back_to_english(event):
    assert event.text("de") is event.text("en")
    assert event.text("fr-CA") is event.text("fr")
    assert event.text("es_419") is event.text("es")


def test_event_is_immutable(event):
    with pytest.raises(FrozenInstanceError):
        event.capacity = 3  # type: ignore[misc]
    with pytest.raises(TypeError):
        event.texts["de"] = event.text("en")  # type: ignore[index]


def test_demo_file_is_in_the_future():
    demo = load_event(DEMO_FILE)
    now = datetime.now(UTC)
    assert demo.start > now + timedelta(days=365)
    assert demo.registration_open(now)
    assert demo.start.utcoffset() == timedelta(hours=2)
    assert demo.join_url == "https://example.org/demo-webinar"
    assert demo.capacity is None
    assert demo.texts == load_event(EVENT_FILE).texts


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1d", timedelta(days=1)),
        ("1h", timedelta(hours=1)),
        ("30m", timedelta(minutes=30)),
        ("40s", timedelta(seconds=40)),
        ("90m", timedelta(minutes=90)),
        (" 2h ", timedelta(hours=2)),
    ],
)
def test_parse_offset(value, expected):
    assert parse_offset(value) == expected


@pytest.mark.parametrize("value", ["", "1w", "0h", "-1h", "1.5h", "h", "1", "1 h", "1H", "1d1h"])
def test_parse_offset_rejects(value):
    with pytest.raises(ValueError):
        parse_offset(value)


@pytest.mark.parametrize("text", ["1d", "1h", "30m", "40s", "90m", "2d", "25h"])
def test_format_offset_round_trips(text):
    assert format_offset(parse_offset(text)) == text


@pytest.mark.parametrize("td", [timedelta(0), timedelta(hours=-1), timedelta(milliseconds=5)])
def test_format_offset_rejects(td):
    with pytest.raises(ValueError):
        format_offset(td)


def _replace(old: str, new: str) -> str:
    assert old in SHIPPED, old
    return SHIPPED.replace(old, new, 1)


TZ_LINE = 'timezone = "Europe/Zurich"\n'

MALFORMED = {
    "missing start": (_replace("start = 2023-06-15T15:30:00\n", ""), "[event].start"),
    "missing event": (_replace("[event]\n", "[other]\n"), "[event]"),
    "unknown zone": (_replace(TZ_LINE, 'timezone = "Europe/Geneva"\n'), "[event].timezone"),
    "fixed offset": (_replace(TZ_LINE, 'timezone = "UTC+1"\n'), "[event].timezone"),
    "Etc offset": (_replace(TZ_LINE, 'timezone = "Etc/GMT-1"\n'), "[event].timezone"),
    "end before start": (
        _replace("end = 2023-06-15T17:00:00", "end = 2023-06-15T15:00:00"),
        "[event].end",
    ),
    "start is a string": (
        _replace("start = 2023-06-15T15:30:00", 'start = "2023-13-01"'),
        "[event].start",
    ),
    "start with offset": (
        _replace("start = 2023-06-15T15:30:00", "start = 2023-06-15T15:30:00+01:00"),
        "[event].start",
    ),
    "start in DST gap": (
        _replace(
            "start = 2023-06-15T15:30:00\nend = 2023-06-15T17:00:00",
            "start = 2023-03-26T02:30:00\nend = 2023-03-26T04:00:00",
        ),
        "[event].start",
    ),
    "reminder 1w": (
        _replace('reminders_before = ["1d", "1h"]', 'reminders_before = ["1d", "1w"]'),
        "[event].reminders_before[2]",
    ),
    "duplicate reminder": (
        _replace('reminders_before = ["1d", "1h"]', 'reminders_before = ["1h", "60m"]'),
        "[event].reminders_before[2]",
    ),
    "capacity 0": (_replace(TZ_LINE, TZ_LINE + "capacity = 0\n"), "[event].capacity"),
    "capacity text": (_replace(TZ_LINE, TZ_LINE + 'capacity = "100"\n'), "[event].capacity"),
    "closes after end": (
        _replace(TZ_LINE, TZ_LINE + "registration_closes = 2023-06-15T18:00:00\n"),
        "[event].registration_closes",
    ),
    "join_url not http": (
        _replace(TZ_LINE, TZ_LINE + 'join_url = "ftp://example.org/x"\n'),
        "[event].join_url",
    ),
    "misspelt key": (_replace(TZ_LINE, TZ_LINE + "capasity = 10\n"), "[event].capasity"),
    "missing fr title": (
        _replace('title = "Webinaire de l’OIT', '# title = "Webinaire de l’OIT'),
        "[text.fr].title",
    ),
    "empty es questions": (
        re.sub(r'(?m)^questions = "Se invitará.*$', 'questions = "  "', SHIPPED),
        "[text.es].questions",
    ),
    "bad country": (_replace('country = "TN"', 'country = "XX"'), "[text.en].speakers[3].country"),
    "lowercase country": (_replace('country = "MA"', 'country = "ma"'), "[text.en].speakers[1]"),
    "missing language": (
        SHIPPED[: SHIPPED.index("[text.es]")],
        "[text.es]",
    ),
    "unsupported language": (SHIPPED + '\n[text.de]\ntitle = "x"\n', "[text.de]"),
    "TOML syntax error": (_replace(TZ_LINE, 'timezone = "Europe/Zurich\n'), "line 17"),
}


@pytest.mark.parametrize(("content", "key"), MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_files(tmp_path, content, key):
    path = tmp_path / "event.toml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(EventFileError) as info:
        load_event(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ")
    assert key in message
    assert "\n" not in message


def test_nonexistent_file(tmp_path):
    path = tmp_path / "nope.toml"
    with pytest.raises(EventFileError, match=r"nope\.toml: file not found"):
        load_event(path)


def test_speaker_countries_must_agree_across_languages(tmp_path):
    path = tmp_path / "event.toml"
    es_part = SHIPPED.index("[text.es]")
    content = SHIPPED[:es_part] + SHIPPED[es_part:].replace('country = "SE"', 'country = "NO"')
    path.write_text(content, encoding="utf-8")
    with pytest.raises(EventFileError, match=r"\[text\.es\]\.speakers\[2\]\.country"):
        load_event(path)


def test_include_takes_texts_only(tmp_path):
    (tmp_path / "base.toml").write_text(SHIPPED, encoding="utf-8")
    demo = tmp_path / "demo.toml"
    demo.write_text(
        'include = "base.toml"\n[event]\nstart = 2031-01-10T10:00:00\n'
        'end = 2031-01-10T11:00:00\ntimezone = "America/Bogota"\nreminders_before = []\n',
        encoding="utf-8",
    )
    event = load_event(demo)
    assert event.start == datetime(2031, 1, 10, 15, 0, tzinfo=UTC)
    assert event.reminders_before == ()
    assert event.text("fr").title.startswith("Webinaire")


def test_include_errors_name_the_right_file(tmp_path):
    base = tmp_path / "base.toml"
    base.write_text(_replace('country = "TN"', 'country = "XX"'), encoding="utf-8")
    demo = tmp_path / "demo.toml"
    demo.write_text(
        'include = "base.toml"\n[event]\nstart = 2031-01-10T10:00:00\n'
        'end = 2031-01-10T11:00:00\ntimezone = "UTC"\nreminders_before = ["1h"]\n',
        encoding="utf-8",
    )
    with pytest.raises(EventFileError, match=r"base\.toml: \[text\.en\]\.speakers\[3\]"):
        load_event(demo)
    base.unlink()
    with pytest.raises(EventFileError, match=r"base\.toml: file not found"):
        load_event(demo)
