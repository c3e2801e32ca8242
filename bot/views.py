"""Messages built from plain values: the words come from the catalogs and the event file.

Everything returned is Telegram HTML; values from users and files are escaped here.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from html import escape
from zoneinfo import ZoneInfo

from babel import Locale
from babel.numbers import format_decimal, format_percent

from bot.countries import country_name
from bot.event import Event, Person, Resource
from bot.i18n import Translator
from bot.services.choices import AFFILIATIONS, SESSION_LANGUAGES, label
from bot.services.followup import FeedbackSummary
from bot.services.timezone import city
from bot.storage import Registration, RegistrationData


def when_lines(
    t: Translator, event: Event, user_zone: str | None, place: str | None = None
) -> list[str]:
    """The date and time in the event's zone with its real offset, then in the user's (`place`:
    the city they typed for it, if any).

    Until the user's zone is known (or when it is the event's), the last line gives the start
    in the event's city, named, inside a `date_time` entity: apps that support it show that
    instant in the reader's own clock, the others show the text, which must therefore say
    whose time it is rather than pass Geneva's time for the reader's."""
    start, end, tz = event.start, event.end, event.tz
    lines = [
        "📅 " + t.date(start, tz),
        "🕒 "
        + t._("{time} {zone} ({offset})").format(
            time=t.time_range(start, end, tz),
            zone=t.zone_name(start, tz),
            offset=t.utc_offset(start, tz),
        ),
    ]
    if user_zone is None or user_zone == tz.key:
        there = t._("{time}, {city} time ({offset})").format(
            time=t.time(start, tz), city=escape(city(t, tz.key)), offset=t.utc_offset(start, tz)
        )
        lines.append(
            "🌍 "
            + t._("Start: {time}").format(
                time=f'<tg-time unix="{int(start.timestamp())}" format="wDt">{there}</tg-time>'
            )
        )
        if user_zone is None:
            lines.append(t._("To see the times in your own time zone, send /timezone."))
    else:
        mine = ZoneInfo(user_zone)
        same_day = start.astimezone(mine).date() == start.astimezone(tz).date()
        when = t.time_range(start, end, mine)
        if not same_day:
            when = t._("{date}, {time}").format(date=t.date(start, mine), time=when)
        lines.append(
            "🏠 "
            + t._("Your time ({city}): {time} ({offset})").format(
                city=escape(city(t, user_zone, place)),
                time=when,
                offset=t.utc_offset(start, mine),
            )
        )
    return lines


def _person(t: Translator, person: Person) -> str:
    name = f"<b>{escape(person.name)}</b>"
    if person.country:
        name += f" ({escape(country_name(person.country, t.lang))})"
    return f"• {name}, {escape(person.role)}"


def event_details(
    t: Translator, event: Event, now: datetime, user_zone: str | None, place: str | None = None
) -> tuple[str, str]:
    """Two messages: the overview, then the programme (one would pass Telegram's 4096)."""
    text = event.text(t.lang)
    parts = [f"<b>{escape(text.title)}</b>", "\n".join(when_lines(t, event, user_zone, place))]
    if event.has_ended(now):
        parts.append(t._("This webinar has taken place. The resources below remain available."))
    parts.append(escape(text.hosts))
    parts.extend(escape(p) for p in text.summary)
    programme: list[str] = []
    sections: list[tuple[str, list[str]]] = [
        (t._("Discussion topics"), [f"• {escape(topic)}" for topic in text.topics]),
        (t._("Moderators"), [_person(t, p) for p in text.moderators]),
        (t._("Panel speakers"), [_person(t, p) for p in text.speakers]),
        (t._("Closing remarks"), [_person(t, p) for p in text.closing]),
        (
            t._("Working languages"),
            [escape(text.working_languages), escape(text.interpretation)],
        ),
    ]
    if text.resources:
        sections.append((t._("Further resources"), resource_lines(text.resources)))
    for heading, lines in sections:
        programme.append(f"<b>{escape(heading)}</b>\n" + "\n".join(lines))
    programme.append(escape(text.questions))
    return "\n\n".join(parts), "\n\n".join(programme)


def resource_lines(resources: Iterable[Resource]) -> list[str]:
    """One bullet per resource, linked when it has a URL."""
    return [
        f'• <a href="{escape(r.url)}">{escape(r.title)}</a>' if r.url else f"• {escape(r.title)}"
        for r in resources
    ]


def registration_summary(t: Translator, data: RegistrationData) -> str:
    rows = [
        (t._("Full name"), data.full_name),
        (t._("Email"), data.email),
        (t._("Country"), country_name(data.country, t.lang)),
        (t._("Organisation"), data.organisation or "—"),
        (t._("Affiliation"), t._(label(AFFILIATIONS, data.affiliation))),
        (t._("Session language"), t._(label(SESSION_LANGUAGES, data.session_language))),
    ]
    return "\n".join(t.label(f"<b>{escape(k)}</b>", escape(v)) for k, v in rows)


def access_line(t: Translator, event: Event) -> str:
    if event.join_url:
        return t._("Access link: {url}").format(url=escape(event.join_url))
    return t._("The access link will be sent to you here before the session.")


def registration_status(t: Translator, registration: Registration, position: int | None) -> str:
    if registration.status == "waiting":
        return t._(
            "The session is full: you are number {position} on the waiting list. "
            "We will tell you here as soon as a place frees up."
        ).format(position=position or "?")
    return t._("You are registered.")


def confirmation(
    t: Translator,
    event: Event,
    registration: Registration,
    position: int | None,
    user_zone: str | None,
    place: str | None = None,
) -> str:
    text = event.text(t.lang)
    parts = [
        ("✅ " if registration.status == "active" else "⏳ ")
        + registration_status(t, registration, position),
        f"<b>{escape(text.title)}</b>\n" + "\n".join(when_lines(t, event, user_zone, place)),
    ]
    if registration.status == "active":
        parts.append(access_line(t, event))
    parts.append(registration_summary(t, registration.data))
    parts.append(t._("See your registration with /myregistration. Questions for the panel: /ask."))
    return "\n\n".join(parts)


def closed(t: Translator, event: Event, now: datetime) -> str:
    if event.has_ended(now):
        return (
            t._(
                "Registration is closed: the webinar took place on {date}, {time} ({offset})."
            ).format(
                date=t.date(event.start, event.tz),
                time=t.time_range(event.start, event.end, event.tz),
                offset=t.utc_offset(event.start, event.tz),
            )
            + "\n\n"
            + t._("The details and resources remain available with /event.")
        )
    return t._(
        "Registration is closed. The webinar takes place on {date}, {time} ({offset})."
    ).format(
        date=t.date(event.start, event.tz),
        time=t.time_range(event.start, event.end, event.tz),
        offset=t.utc_offset(event.start, event.tz),
    )


def interpretation_hint(t: Translator, session_language: str) -> str:
    """How to hear the interpretation; the announcement does not name the meeting tool."""
    language = Locale.parse(t.lang).languages.get(session_language, session_language)
    return "🎧 " + t._(
        "Interpretation into {language}: once the session has started, click the "
        "Interpretation button (a globe icon) in the meeting window and choose {language}."
    ).format(language=escape(language))


def reminder(
    t: Translator,
    event: Event,
    now: datetime,
    user_zone: str | None,
    session_language: str | None,
    last: bool,
    place: str | None = None,
) -> str:
    """A reminder before the session; the last one also explains the interpretation."""
    text = event.text(t.lang)
    # "in 24 hours" rather than "in 1 day", which reads as "tomorrow" and is not, for every
    # reader, when the reminder is sent late in their evening.
    starts = t.duration(max(event.start - now, timedelta(minutes=1)))
    parts = [
        "⏰ " + t._("Reminder: the webinar starts in {duration}.").format(duration=escape(starts)),
        f"<b>{escape(text.title)}</b>\n" + "\n".join(when_lines(t, event, user_zone, place)),
        access_line(t, event),
    ]
    if last and session_language in ("fr", "es"):
        parts.append(interpretation_hint(t, session_language))
    parts.append(
        t._("Can no longer attend? Send /unregister so that someone else can take your place.")
    )
    return "\n\n".join(parts)


# --- changes of the event (/edit) ------------------------------------------------------------


def moment(
    t: Translator, start: datetime, end: datetime | None, zone: str, place: str | None = None
) -> str:
    """ "Thursday 13 June 2030, 16:00–17:30, Geneva time (UTC+02:00)" in `zone` (an IANA
    name), whose city is named (`place`: the one the reader typed for it, if any)."""
    tz = ZoneInfo(zone)
    time = t.time(start, tz) if end is None else t.time_range(start, end, tz)
    there = t._("{time}, {city} time ({offset})").format(
        time=time, city=escape(city(t, zone, place)), offset=t.utc_offset(start, tz)
    )
    return t._("{date}, {time}").format(date=t.date(start, tz), time=there)


def moved(
    t: Translator, before: Event, event: Event, user_zone: str | None, place: str | None = None
) -> str:
    """The notice of a new date or time: the new one, then the old one, in the reader's zone
    when known (else the event's)."""
    title = escape(event.text(t.lang).title)
    zone = user_zone or event.tz.key
    return "\n\n".join(
        [
            "📅 " + t._("The webinar has been moved to a new date and time."),
            f"<b>{title}</b>\n" + "\n".join(when_lines(t, event, user_zone, place)),
            t._("Previously: {when}").format(
                when=moment(t, before.start, before.end, zone, place if user_zone else None)
            ),
            t._(
                "The calendar file below replaces the previous entry: open it to update your "
                "calendar."
            ),
        ]
    )


def new_link(
    t: Translator, event: Event, user_zone: str | None, place: str | None, replaced: bool
) -> str:
    """The notice of an access link to registrants with a place: a first one, or one that
    `replaced` an earlier link (which then no longer works)."""
    title = escape(event.text(t.lang).title)
    head = (
        t._("The access link for the webinar has changed: please use the new link below.")
        if replaced
        else t._("The access link for the webinar is ready.")
    )
    return "\n\n".join(
        [
            "🔗 " + head,
            f"<b>{title}</b>\n" + "\n".join(when_lines(t, event, user_zone, place)),
            access_line(t, event),
        ]
    )
# --- after the session ----------------------------------------------------------------------


def follow_up(t: Translator, event: Event) -> str:
    """The follow-up after the session: thanks, recording, resources, the rating question
    (its 1–5 buttons are added by the handler)."""
    text = event.text(t.lang)
    parts = [
        "🙏 " + t._("Thank you for taking part in the webinar!") + f"\n<b>{escape(text.title)}</b>"
    ]
    if event.recording_url:
        url = escape(event.recording_url)
        parts.append(
            "🎬 "
            + t._("The recording is available here: {url}").format(
                url=f'<a href="{url}">{url}</a>'
            )
        )
    if text.resources:
        parts.append(
            f"<b>{escape(t._('Further resources'))}</b>\n"
            + "\n".join(resource_lines(text.resources))
        )
    parts.append(
        "<b>"
        + t._("How useful was this webinar for your work?")
        + "</b>\n"
        + t._("Tap a number from 1 (not useful) to 5 (very useful), or type it.")
    )
    return "\n\n".join(parts)


def feedback_stats(t: Translator, summary: FeedbackSummary) -> str:
    """The feedback section of /stats: responses, average, the 1–5 distribution, comments."""
    lines = ["⭐ <b>" + t._("Feedback") + "</b>"]
    if summary.average is None:
        lines.append(t._("No feedback yet."))
        return "\n".join(lines)
    n = summary.responses
    lines.append(
        t.n_(
            "{count} response, average {average} out of 5",
            "{count} responses, average {average} out of 5",
            n,
        ).format(count=t.number(n), average=rating_average(t, summary))
    )
    for rating in range(5, 0, -1):
        count = summary.by_rating.get(rating, 0)
        lines.append(
            t._("Rated {rating}: {count} ({share})").format(
                rating=rating,
                count=t.number(count),
                share=format_percent(count / n, locale=t.lang),
            )
        )
    lines.append(
        t._("Comments: {count}").format(count=t.number(summary.comments))
    )
    return "\n".join(lines)


def rating_average(t: Translator, summary: FeedbackSummary) -> str:
    """The average rating with one decimal in the reader's language: 4.5, 4,5."""
    return format_decimal(summary.average or 0, format="0.0", locale=t.lang)
