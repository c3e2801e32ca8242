"""Messages built from plain values: the words come from the catalogs and the event file.

Everything returned is Telegram HTML; values from users and files are escaped here.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from html import escape
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_timedelta
from babel.numbers import format_decimal, format_percent

from bot.countries import country_name
from bot.event import Event, Person, Resource
from bot.i18n import Translator
from bot.services.choices import AFFILIATIONS, SESSION_LANGUAGES, label
from bot.services.followup import FeedbackSummary
from bot.storage import Registration, RegistrationData
from bot.timezones import zone_city


def when_lines(t: Translator, event: Event, user_zone: str | None) -> list[str]:
    """The date and time in the event's zone with its real offset, then in the user's."""
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
    if user_zone and user_zone != tz.key:
        mine = ZoneInfo(user_zone)
        same_day = start.astimezone(mine).date() == start.astimezone(tz).date()
        when = t.time_range(start, end, mine)
        if not same_day:
            when = t.date(start, mine) + ", " + when
        lines.append(
            "🏠 "
            + t._("Your time ({city}): {time} ({offset})").format(
                city=escape(zone_city(user_zone, t.lang)),
                time=when,
                offset=t.utc_offset(start, mine),
            )
        )
    else:
        # Telegram clients that support it show this instant in the reader's own clock.
        lines.append(
            "🏠 "
            + t._("In your time zone: {time}").format(
                time=f'<tg-time unix="{int(start.timestamp())}" format="wDt">'
                f"{t.time(start, tz)} {t.utc_offset(start, tz)}</tg-time>"
            )
        )
    return lines


def _person(t: Translator, person: Person) -> str:
    name = f"<b>{escape(person.name)}</b>"
    if person.country:
        name += f" ({escape(country_name(person.country, t.lang))})"
    return f"• {name}, {escape(person.role)}"


def event_details(
    t: Translator, event: Event, now: datetime, user_zone: str | None
) -> tuple[str, str]:
    """Two messages: the overview, then the programme (one would pass Telegram's 4096)."""
    text = event.text(t.lang)
    parts = [f"<b>{escape(text.title)}</b>", "\n".join(when_lines(t, event, user_zone))]
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
) -> str:
    text = event.text(t.lang)
    parts = [
        ("✅ " if registration.status == "active" else "⏳ ")
        + registration_status(t, registration, position),
        f"<b>{escape(text.title)}</b>\n" + "\n".join(when_lines(t, event, user_zone)),
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
) -> str:
    """A reminder before the session; the last one also explains the interpretation."""
    text = event.text(t.lang)
    starts = format_timedelta(
        max(event.start - now, timedelta(seconds=1)), add_direction=True, locale=t.lang
    )
    parts = [
        "⏰ " + t._("Reminder: the webinar starts {when}.").format(when=escape(starts)),
        f"<b>{escape(text.title)}</b>\n" + "\n".join(when_lines(t, event, user_zone)),
        access_line(t, event),
    ]
    if last and session_language in ("fr", "es"):
        parts.append(interpretation_hint(t, session_language))
    parts.append(
        t._("Can no longer attend? Send /unregister so that someone else can take your place.")
    )
    return "\n\n".join(parts)


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
        ).format(count=format_decimal(n, locale=t.lang), average=rating_average(t, summary))
    )
    for rating in range(5, 0, -1):
        count = summary.by_rating.get(rating, 0)
        lines.append(
            t._("Rated {rating}: {count} ({share})").format(
                rating=rating,
                count=format_decimal(count, locale=t.lang),
                share=format_percent(count / n, locale=t.lang),
            )
        )
    lines.append(
        t._("Comments: {count}").format(count=format_decimal(summary.comments, locale=t.lang))
    )
    return "\n".join(lines)


def rating_average(t: Translator, summary: FeedbackSummary) -> str:
    """The average rating with one decimal in the reader's language: 4.5, 4,5."""
    return format_decimal(summary.average or 0, format="0.0", locale=t.lang)
