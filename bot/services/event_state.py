"""The event in force: the event file with the organisers' stored changes applied in order.

This is the one home of the event while the bot runs. `EventState.current` is an immutable
`Event`, replaced whole on each change, so a reader never sees half an edit; nothing else
re-reads the file or the changes. A change is stored with its audit row, and with its notice
to registrants marked as pending, in one transaction (`EventChangeRepo.add`).

What each field's stored value is (JSON):

- ``schedule``: ``{"start": ISO, "end": ISO}``, aware instants;
- ``join_url``, ``recording_url``: an https URL;
- ``capacity``: a positive whole number, or null for no limit;
- ``registration_closes``: an aware ISO instant, or null for "when the session ends".
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol
from urllib.parse import urlsplit

from bot.event import Event
from bot.storage.event_changes import EventChangeRepo, StoredChange

log = logging.getLogger(__name__)


class Field(StrEnum):
    SCHEDULE = "schedule"
    JOIN_URL = "join_url"
    RECORDING_URL = "recording_url"
    CAPACITY = "capacity"
    DEADLINE = "registration_closes"


#: Changes that alter the calendar entry, so its SEQUENCE goes up.
CALENDAR_FIELDS = (Field.SCHEDULE, Field.JOIN_URL)


class EventSource(Protocol):
    """Where services read the event: `current` in force, `base` as the file has it."""

    @property
    def current(self) -> Event: ...

    @property
    def base(self) -> Event: ...


@dataclass(frozen=True, slots=True)
class FixedEvent:
    """An event that never changes (tests, tools): both `current` and `base`."""

    current: Event

    @property
    def base(self) -> Event:
        return self.current


# --- values ---------------------------------------------------------------------------------


def value_of(event: Event, field: Field) -> Any:
    """The stored (JSON) form of `field` as `event` has it."""
    if field is Field.SCHEDULE:
        return {"start": event.start.isoformat(), "end": event.end.isoformat()}
    if field is Field.JOIN_URL:
        return event.join_url
    if field is Field.RECORDING_URL:
        return event.recording_url
    if field is Field.CAPACITY:
        return event.capacity
    if event.registration_closes == event.end:
        return None
    return event.registration_closes.isoformat()


def schedule_of(value: dict[str, str], event: Event) -> tuple[datetime, datetime]:
    """A stored schedule as aware datetimes in the event's zone."""
    return (
        datetime.fromisoformat(value["start"]).astimezone(event.tz),
        datetime.fromisoformat(value["end"]).astimezone(event.tz),
    )


def apply(base: Event, changes: Iterable[StoredChange]) -> Event:
    """`base` with `changes` applied in order (unknown fields are ignored)."""
    start, end = base.start, base.end
    closes: datetime | None = (
        None if base.registration_closes == base.end else (base.registration_closes)
    )
    values: dict[str, Any] = {
        "join_url": base.join_url,
        "recording_url": base.recording_url,
        "capacity": base.capacity,
    }
    sequence = base.sequence
    for change in changes:
        if change.field == Field.SCHEDULE:
            start, end = schedule_of(change.value, base)
        elif change.field == Field.DEADLINE:
            closes = (
                None
                if change.value is None
                else datetime.fromisoformat(change.value).astimezone(base.tz)
            )
        elif change.field in values:
            values[change.field] = change.value
        else:
            continue
        if change.field in CALENDAR_FIELDS:
            sequence += 1
    return replace(
        base,
        start=start,
        end=end,
        registration_closes=end if closes is None else min(closes, end),
        sequence=sequence,
        **values,
    )


# --- parsing what an organiser types ---------------------------------------------------------


class Problem(StrEnum):
    """Why a typed value was refused (the handler words it)."""

    FORMAT = "format"
    NO_SUCH_TIME = "no such time"  # skipped by a clock change
    PAST = "past"
    END_BEFORE_START = "end before start"
    NOT_HTTPS = "not https"
    NOT_NUMBER = "not a number"
    AFTER_END = "after end"


class BadValue(Exception):
    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.value)
        self.problem = problem


_SCHEDULE = re.compile(r"(\d{4})-(\d{2})-(\d{2})\s+(\d{1,2}):(\d{2})\s*[-–—]\s*(\d{1,2}):(\d{2})")
_MOMENT = re.compile(r"(\d{4})-(\d{2})-(\d{2})[\sT]+(\d{1,2}):(\d{2})")


def _local(event: Event, *parts: str) -> datetime:
    """Wall-clock time in the event's zone; BadValue if it does not exist there."""
    try:
        naive = datetime(*(int(p) for p in parts))  # type: ignore[misc]
    except ValueError:
        raise BadValue(Problem.FORMAT) from None
    aware = naive.replace(tzinfo=event.tz, fold=0)
    if aware.astimezone(UTC).astimezone(event.tz).replace(tzinfo=None) != naive:
        raise BadValue(Problem.NO_SUCH_TIME)
    return aware


def parse_schedule(text: str, event: Event, now: datetime) -> dict[str, str]:
    """``YYYY-MM-DD HH:MM-HH:MM`` in the event's zone → the stored schedule value."""
    match = _SCHEDULE.fullmatch(text.strip())
    if not match:
        raise BadValue(Problem.FORMAT)
    y, mo, d, h1, m1, h2, m2 = match.groups()
    start = _local(event, y, mo, d, h1, m1)
    end = _local(event, y, mo, d, h2, m2)
    if end <= start:
        raise BadValue(Problem.END_BEFORE_START)
    if start <= now:
        raise BadValue(Problem.PAST)
    return {"start": start.isoformat(), "end": end.isoformat()}


def parse_url(text: str) -> str:
    """An https:// link, as typed (trimmed)."""
    value = text.strip()
    parts = urlsplit(value)
    if parts.scheme.lower() != "https":
        raise BadValue(Problem.NOT_HTTPS)
    if not parts.netloc or any(c.isspace() for c in value):
        raise BadValue(Problem.FORMAT)
    return value


#: What the organiser types for "no capacity limit" and for "registration open until the
#: session ends"; the handler adds these words in every language of the catalogs.
NO_LIMIT: frozenset[str] = frozenset({"none"})
UNTIL_END: frozenset[str] = frozenset({"end"})


def _word(text: str) -> str:
    """A typed word as compared with `NO_LIMIT`/`UNTIL_END`: trimmed, case-folded, without the
    quotes the prompt shows it in (« aucune », «ninguno», “none”)."""
    return text.strip().strip("«»“”\"'‘’ \u00a0\u202f").casefold()


def parse_capacity(text: str, no_limit: Collection[str] = NO_LIMIT) -> int | None:
    """A positive whole number, or one of the `no_limit` words (case-folded) for no limit."""
    value = text.strip()
    if _word(value) in no_limit:
        return None
    if not value.isascii() or not value.isdigit() or int(value) <= 0:
        raise BadValue(Problem.NOT_NUMBER)
    return int(value)


def parse_deadline(
    text: str, event: Event, now: datetime, until_end: Collection[str] = UNTIL_END
) -> str | None:
    """``YYYY-MM-DD HH:MM`` in the event's zone, or one of the `until_end` words (case-folded;
    None: when the session ends)."""
    value = text.strip()
    if _word(value) in until_end:
        return None
    match = _MOMENT.fullmatch(value)
    if not match:
        raise BadValue(Problem.FORMAT)
    closes = _local(event, *match.groups())
    if closes > event.end:
        raise BadValue(Problem.AFTER_END)
    if closes <= now:
        raise BadValue(Problem.PAST)
    return closes.isoformat()


def unchanged(event: Event, field: Field, value: Any) -> bool:
    """Whether `value` (a parsed, stored form) is what `event` has in force already: storing it
    would change nothing (the same instants written in another way included)."""
    current = value_of(event, field)
    if field is Field.SCHEDULE:
        return schedule_of(value, event) == schedule_of(current, event)
    if field is Field.DEADLINE:

        def closes(stored: str | None) -> datetime:
            return event.end if stored is None else min(datetime.fromisoformat(stored), event.end)

        return closes(value) == closes(current)
    return bool(value == current)


# --- the state --------------------------------------------------------------------------------


class EventState:
    """The event in force (see the module docstring)."""

    def __init__(self, base: Event, repo: EventChangeRepo, clock: Callable[[], datetime]) -> None:
        self._base = base
        self._current = base
        self.repo = repo
        self.clock = clock

    @property
    def base(self) -> Event:
        return self._base

    @property
    def current(self) -> Event:
        return self._current

    async def load(self) -> None:
        """At start-up: apply the stored changes; log which of them override the file."""
        changes = await self.repo.all()
        self._current = apply(self._base, changes)
        latest = {change.field: change for change in changes}
        for field, change in latest.items():
            if field not in tuple(Field):
                continue
            in_file = value_of(self._base, Field(field))
            if change.file_value != in_file:
                log.warning(
                    "The event file's %s was edited after stored change #%d (%s): the file "
                    "says %s, the stored change keeps %s in force",
                    field,
                    change.id,
                    change.at.isoformat(timespec="minutes"),
                    in_file,
                    change.value,
                )
            elif change.value != in_file:
                log.info(
                    "Stored change #%d overrides the event file's %s: %s (file: %s)",
                    change.id,
                    field,
                    change.value,
                    in_file,
                )

    async def saved(self, token: str) -> bool:
        """Whether the draft `token` was saved (a Confirm handled again after a restart)."""
        return await self.repo.saved(token)

    async def change(
        self, admin_id: int, token: str, field: Field, value: Any, announce: bool
    ) -> StoredChange | None:
        """Store a change (its audit row and its pending notice with it) and put it in force;
        None when this draft was saved already."""
        stored = await self.repo.add(
            token,
            field.value,
            value,
            value_of(self._current, field),
            value_of(self._base, field),
            admin_id,
            announce,
            self.clock(),
        )
        if stored is None:
            return None
        self._current = apply(self._current, [stored])
        log.info("Event change #%d: %s", stored.id, field.value)
        return stored
