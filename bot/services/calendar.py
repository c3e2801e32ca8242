"""The webinar as an iCalendar (.ics) file, in the reader's language.

Built with the `icalendar` library: one VEVENT whose start and end carry the event's IANA zone
(TZID plus a generated VTIMEZONE, so calendar apps place it right whatever their own zone), and
one VALARM per reminder offset. Its UID stays the same when organisers change the event, and
its SEQUENCE counts those changes (`Event.sequence`). The library writes valid RFC 5545 (CRLF,
folded lines).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from functools import lru_cache

import icalendar

from bot.event import Event
from bot.i18n import Translator

FILENAME = "ilo-webinar.ics"
MIME_TYPE = "text/calendar"
PRODID = "-//ILO//Webinar registration bot//EN"
_YEAR = timedelta(days=366)
# Stand-ins for the two per-user lines of a cached file; both lines are too short to be folded.
_UID = "0" * 32 + "@ilo-webinar-bot"
_STAMP = datetime(2000, 1, 1, tzinfo=UTC)


def uid(event: Event, user_id: int) -> str:
    """Stable per event and user, so a re-imported file updates the entry instead of doubling
    it. Derived from the English title (not the time, which organisers may move) and hashed,
    so the file does not carry the Telegram id."""
    key = f"{event.text('en').title}|{user_id}".encode()
    return f"{hashlib.sha256(key).hexdigest()[:32]}@ilo-webinar-bot"


def access_text(t: Translator, event: Event, status: str | None) -> str:
    """The access line for a calendar entry (plain text), by registration status."""
    if status == "active":
        if event.join_url:
            return t._("Access link: {url}").format(url=event.join_url)
        return t._("The access link will be sent to you on Telegram before the session.")
    if status == "waiting":
        return t._(
            "You are on the waiting list: the access link will be sent to you on Telegram "
            "if a place frees up."
        )
    return t._("Register with the Telegram bot to receive the access link.")


def ics(t: Translator, event: Event, user_id: int, status: str | None, now: datetime) -> bytes:
    """The .ics file for `user_id`, whose registration has `status` (None: not registered).

    The join URL is only written for an active registration. The file is the same for everyone
    but for its UID and DTSTAMP lines, so it is built once per language and status (~3 ms:
    icalendar folds every line character by character) and those two lines filled in.
    """
    text = event.text(t.lang)
    description = "\n\n".join([access_text(t, event, status), *text.summary])
    url = event.join_url if status == "active" and event.join_url else None
    template = _calendar(
        text.title,
        description,
        t._("Online"),
        url,
        event.start,
        event.end,
        tuple(event.reminders_before),
        event.sequence,
    )
    return template.replace(_line("UID", _UID), _line("UID", uid(event, user_id)), 1).replace(
        _line("DTSTAMP", _STAMP), _line("DTSTAMP", now), 1
    )


def _line(name: str, value: str | datetime) -> bytes:
    if isinstance(value, datetime):
        value = icalendar.vDatetime(value.astimezone(UTC)).to_ical().decode()
    return f"\r\n{name}:{value}\r\n".encode()


@lru_cache(maxsize=32)
def _calendar(
    title: str,
    description: str,
    location: str,
    url: str | None,
    start: datetime,
    end: datetime,
    reminders_before: tuple[timedelta, ...],
    sequence: int,
) -> bytes:
    vevent = icalendar.Event.new(
        uid=_UID,
        stamp=_STAMP,
        start=start,
        end=end,
        summary=title,
        description=description,
        location=location,
        url=url,
    )
    # Raised by each change of the time or the link (/edit): with the same UID, calendar apps
    # replace the entry they have rather than adding a second one.
    vevent.add("sequence", sequence)
    for before in reminders_before:
        alarm = icalendar.Alarm.new(description=title)
        alarm.add("action", "DISPLAY")
        alarm.add("trigger", -before)
        vevent.add_component(alarm)
    calendar = icalendar.Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", "PUBLISH")
    calendar.add_component(vevent)
    # A VTIMEZONE covering a year around the event: small, and enough for every alarm.
    calendar.add_missing_timezones(
        first_date=(start - _YEAR).date(), last_date=(end + _YEAR).date()
    )
    return calendar.to_ical()
