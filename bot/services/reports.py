"""Statistics and CSV exports for organisers.

CSV files are written chunk by chunk to a temporary file (never one big string), UTF-8 with a
BOM so that spreadsheets detect the encoding; the caller sends the file and deletes it.
"""

from __future__ import annotations

import asyncio
import csv
import os
import tempfile
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TypeVar

from bot.countries import country_name
from bot.event import Event
from bot.i18n import Translator
from bot.services.choices import AFFILIATIONS, label
from bot.storage import Registration, utcnow
from bot.storage.stats import StatsRepo

TOP_COUNTRIES = 10
TOP_SOURCES = 10  # deep-link sources are free text: only the largest are listed
Item = TypeVar("Item")
CHUNK = 1000

REGISTRATION_COLUMNS: tuple[str, ...] = (
    "id",
    "status",
    "full_name",
    "email",
    "country",
    "country_name",
    "organisation",
    "affiliation",
    "affiliation_label",
    "session_language",
    "language",
    "source",
    "registered_at_utc",
    "registered_at_event_tz",
    "cancelled_at_utc",
    "cancelled_at_event_tz",
)

# A cell starting with one of these is run as a formula by spreadsheets (CSV injection):
# such values typed by users get a leading apostrophe, as OWASP recommends.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: str) -> str:
    return "'" + value if value.startswith(_FORMULA_START) else value


def utc_iso(when: datetime) -> str:
    """UTC in ISO 8601 with a Z: 2023-06-01T12:00:00Z."""
    return when.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="seconds") + "Z"


def zone_iso(when: datetime, event: Event) -> str:
    """The event's zone with the offset it has that day: 2023-06-01T14:00:00+02:00."""
    return when.astimezone(event.tz).isoformat(timespec="seconds")


@dataclass(frozen=True, slots=True)
class Stats:
    active: int
    waiting: int
    cancelled: int
    languages: list[tuple[str | None, int]]
    affiliations: list[tuple[str | None, int]]
    countries: list[tuple[str, int]]  # the top ones
    other_countries: int  # current registrations from all the other countries
    session_languages: list[tuple[str | None, int]]
    sources: list[tuple[str | None, int]]  # the top ones
    other_sources: int
    per_day: list[tuple[date, int]]  # days in the event's zone, gaps filled with 0

    @property
    def current(self) -> int:
        """Active and waiting: the base of every breakdown."""
        return self.active + self.waiting


def days_from_hours(
    hours: Sequence[tuple[str, int]], event: Event, today: date | None = None
) -> list[tuple[date, int]]:
    """UTC hour buckets ("2023-06-01T22") → days in the event's zone, without gaps.

    The series runs from the first sign-up to the last one, or to `today` when that is later
    but still before the event (so a quiet week shows as a flat end, not as nothing).
    """
    totals: dict[date, int] = {}
    for hour, count in hours:
        start = datetime.strptime(hour, "%Y-%m-%dT%H").replace(tzinfo=UTC)
        day = start.astimezone(event.tz).date()
        totals[day] = totals.get(day, 0) + count
    if not totals:
        return []
    first, last = min(totals), max(totals)
    if today is not None:
        last = max(last, min(today, event.end.astimezone(event.tz).date()))
    days = (last - first).days + 1
    return [(d, totals.get(d, 0)) for d in (first + timedelta(n) for n in range(days))]


async def write_csv(
    header: Sequence[str],
    batches: AsyncIterator[list[Item]],
    to_row: Callable[[Item], list[str]],
    prefix: str,
) -> tuple[Path, int]:
    """Write `header` and a row per item of `batches` to a new temporary CSV file; returns
    (path, rows). Rows are formatted and written in a worker thread, batch by batch, so that
    a large file never holds up the bot."""
    fd, name = tempfile.mkstemp(prefix=prefix, suffix=".csv")
    os.close(fd)
    path = Path(name)
    count = 0
    try:
        with path.open("w", encoding="utf-8-sig", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(header)
            async for batch in batches:
                await asyncio.to_thread(writer.writerows, map(to_row, batch))
                count += len(batch)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path, count


class ReportService:
    def __init__(
        self, repo: StatsRepo, event: Event, clock: Callable[[], datetime] = utcnow
    ) -> None:
        self.repo = repo
        self.event = event
        self.clock = clock

    async def stats(self) -> Stats:
        statuses = await self.repo.status_counts()
        active, waiting = statuses.get("active", 0), statuses.get("waiting", 0)
        countries = await self.repo.breakdown("country")
        top = [(code or "", n) for code, n in countries[:TOP_COUNTRIES]]
        sources = await self.repo.breakdown("source")
        today = self.clock().astimezone(self.event.tz).date()
        return Stats(
            active=active,
            waiting=waiting,
            cancelled=statuses.get("cancelled", 0),
            languages=await self.repo.breakdown("language"),
            affiliations=await self.repo.breakdown("affiliation"),
            countries=top,
            other_countries=active + waiting - sum(n for _, n in top),
            session_languages=await self.repo.breakdown("session_language"),
            sources=sources[:TOP_SOURCES],
            other_sources=sum(n for _, n in sources[TOP_SOURCES:]),
            per_day=days_from_hours(await self.repo.by_hour(), self.event, today),
        )

    async def export_registrations(self, t: Translator) -> tuple[Path, int]:
        """Every registration (any status) as a CSV file; names of values in `t`'s language."""
        countries: dict[str, str] = {}
        affiliations: dict[str, str] = {}
        event = self.event

        def to_row(registration: Registration) -> list[str]:
            data = registration.data
            if data.country not in countries:
                countries[data.country] = country_name(data.country, t.lang)
            if data.affiliation not in affiliations:
                affiliations[data.affiliation] = t._(label(AFFILIATIONS, data.affiliation))
            cancelled = registration.cancelled_at
            return [
                str(registration.id),
                registration.status,
                spreadsheet_safe(data.full_name),
                spreadsheet_safe(data.email),
                data.country,
                countries[data.country],
                spreadsheet_safe(data.organisation or ""),
                data.affiliation,
                affiliations[data.affiliation],
                data.session_language,
                registration.language,
                registration.source or "",
                utc_iso(registration.created_at),
                zone_iso(registration.created_at, event),
                utc_iso(cancelled) if cancelled else "",
                zone_iso(cancelled, event) if cancelled else "",
            ]

        async def batches() -> AsyncIterator[list[Registration]]:
            after = 0
            while batch := await self.repo.registrations_after(after, CHUNK):
                after = batch[-1].id
                yield batch

        return await write_csv(REGISTRATION_COLUMNS, batches(), to_row, "registrations-")
