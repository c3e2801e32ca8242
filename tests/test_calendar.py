"""The .ics file: built with icalendar and read back; sent by /calendar and on confirmation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import icalendar
import pytest

from bot.event import load_event
from bot.i18n import I18n
from bot.services.calendar import FILENAME, ics, uid
from tests.conftest import ROOT, Participant, write_event

SHIPPED = ROOT / "data" / "event.toml"
T = I18n()
NOW = datetime(2023, 6, 1, 8, 0, tzinfo=UTC)


def parse(data: bytes) -> tuple[icalendar.Calendar, icalendar.Event]:
    calendar = icalendar.Calendar.from_ical(data)
    events = calendar.walk("VEVENT")
    assert len(events) == 1
    return calendar, events[0]


@pytest.mark.parametrize("lang", ["en", "fr", "es"])
def test_shipped_event_has_the_right_instant_zone_and_title(lang):
    event = load_event(SHIPPED)
    calendar, vevent = parse(ics(T(lang), event, 42, "active", NOW))
    start, end = vevent.decoded("DTSTART"), vevent.decoded("DTEND")
    # 15:30 in Geneva on 15 June 2023 is summer time: 13:30 UTC, not 14:30.
    assert start.astimezone(UTC) == datetime(2023, 6, 15, 13, 30, tzinfo=UTC)
    assert end.astimezone(UTC) == datetime(2023, 6, 15, 15, 0, tzinfo=UTC)
    assert vevent["DTSTART"].params["TZID"] == "Europe/Zurich"
    assert [tz["TZID"] for tz in calendar.walk("VTIMEZONE")] == ["Europe/Zurich"]
    assert calendar.get_missing_tzids() == set()
    assert str(vevent["SUMMARY"]) == event.text(lang).title
    assert str(vevent["LOCATION"]) == T(lang)._("Online")
    assert event.text(lang).summary[0] in str(vevent["DESCRIPTION"])
    assert vevent.decoded("DTSTAMP") == NOW
    assert str(calendar["VERSION"]) == "2.0" and calendar["PRODID"]


def test_alarms_match_the_reminders():
    event = load_event(SHIPPED)
    _, vevent = parse(ics(T("en"), event, 42, "active", NOW))
    alarms = vevent.walk("VALARM")
    assert [a.decoded("TRIGGER") for a in alarms] == [-timedelta(days=1), -timedelta(hours=1)]
    assert all(str(a["ACTION"]) == "DISPLAY" and a["DESCRIPTION"] for a in alarms)


def test_the_file_is_valid_rfc_5545_text():
    event = load_event(SHIPPED)
    data = ics(T("fr"), event, 42, "active", NOW)  # accents: folding must count octets
    assert data.startswith(b"BEGIN:VCALENDAR\r\n") and data.endswith(b"END:VCALENDAR\r\n")
    lines = data.split(b"\r\n")
    assert b"\n" not in data.replace(b"\r\n", b"")
    assert max(len(line) for line in lines) <= 75
    data.decode("utf-8")  # folding never splits a character


def test_access_link_only_for_an_active_registration(tmp_path):
    url = "https://ilo.zoom.us/j/123?pwd=a&b"
    start = datetime.now(UTC) + timedelta(days=10)
    event = load_event(write_event(tmp_path, start, join_url=url, reminders=("2d", "30m")))
    _, active = parse(ics(T("es"), event, 7, "active", NOW))
    assert str(active["URL"]) == url
    assert T("es")._("Access link: {url}").format(url=url) in str(active["DESCRIPTION"])
    assert [a.decoded("TRIGGER") for a in active.walk("VALARM")] == [
        -timedelta(days=2),
        -timedelta(minutes=30),
    ]
    for status in ("waiting", None):
        data = ics(T("es"), event, 7, status, NOW)
        _, vevent = parse(data)
        assert "URL" not in vevent and url.encode() not in data


def test_uid_is_stable_per_user_and_hides_the_id():
    event = load_event(SHIPPED)
    first = parse(ics(T("en"), event, 4242, "active", NOW))[1]
    later = parse(ics(T("fr"), event, 4242, None, NOW + timedelta(days=3)))[1]
    assert str(first["UID"]) == str(later["UID"]) == uid(event, 4242)
    assert uid(event, 4243) != uid(event, 4242)
    assert "4242" not in uid(event, 4242)


def test_files_built_from_the_cached_template_differ_only_by_user_and_time():
    event = load_event(SHIPPED)
    geneva = NOW.astimezone(event.start.tzinfo) + timedelta(minutes=7, microseconds=5)
    files = [ics(T("fr"), event, user, "active", now) for user, now in [(1, NOW), (2, geneva)]]
    (_, one), (_, two) = parse(files[0]), parse(files[1])
    assert (str(one["UID"]), one.decoded("DTSTAMP")) == (uid(event, 1), NOW)
    assert str(two["UID"]) == uid(event, 2)
    assert two.decoded("DTSTAMP") == NOW + timedelta(minutes=7)  # in UTC, whole seconds
    differing = set(files[0].split(b"\r\n")) ^ set(files[1].split(b"\r\n"))
    assert {line.split(b":")[0] for line in differing} == {b"UID", b"DTSTAMP"}


# --- end to end -------------------------------------------------------------------------------


async def test_calendar_command_sends_the_file_in_the_users_language(api, bot):
    user = Participant(api, 1100, "fr")
    document = await user.say("/calendar")
    assert document.method == "sendDocument"
    assert document.filename == FILENAME and document.mime_type == "text/calendar"
    assert document.document is not None
    _, vevent = parse(document.document)
    assert str(vevent["SUMMARY"]) == bot.event.text("fr").title
    assert vevent.decoded("DTSTART").astimezone(UTC) == bot.event.start.astimezone(UTC)
    assert T("fr")._("You are not registered yet: send /register.") in document.caption
    # The file the server recorded is also in its list of everything sent.
    assert any(sent.document == document.document for sent in api.sent)


async def test_calendar_still_works_after_the_event(api, bots):
    await bots.start(SHIPPED)
    user = Participant(api, 1101, "es")
    document = await user.say("/calendar")
    assert document.caption == T("es")._(
        "This webinar has taken place; here is its calendar entry."
    )
    _, vevent = parse(document.document)
    assert vevent.decoded("DTSTART").astimezone(UTC) == datetime(2023, 6, 15, 13, 30, tzinfo=UTC)


async def test_confirmation_is_followed_by_the_calendar_file(api, bots, tmp_path):
    url = "https://ilo.zoom.us/j/999"
    start = (datetime.now(UTC) + timedelta(days=5)).replace(second=0, microsecond=0)
    bot = await bots.start(write_event(tmp_path, start, join_url=url))
    t = T("es")
    user = Participant(api, 1102, "es")
    await user.say("/register")
    for answer in ("Lucía Pérez", "lucia@example.org", "Colombia", "-", "1", "3"):
        q = await user.say(answer)
    q = await user.answer(q, t._("Yes, I agree"))
    confirmation = await user.answer(q, t._("Confirm"))
    assert t._("You are registered.") in confirmation.plain_text
    document = await user.next()
    assert document.method == "sendDocument" and document.filename == FILENAME
    _, vevent = parse(document.document)
    assert str(vevent["URL"]) == url
    assert str(vevent["SUMMARY"]) == bot.event.text("es").title
    assert vevent.decoded("DTSTART").astimezone(UTC) == start
