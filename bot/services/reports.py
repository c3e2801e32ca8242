"""Statistics and CSV exports for organisers.

CSV files are written chunk by chunk to a temporary file (never one big string), UTF-8 with a
BOM so that spreadsheets detect the encoding; the caller sends the file and deletes it.
"""

from __future__ import annotations

import asyncio
import csv
import os
import re
import tempfile
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from pathlib import Path
from typing import TypeVar

from bot.countries import country_name
from bot.event import Event
from bot.i18n import Translator
from bot.services.choices import AFFILIATIONS, label
from bot.services.event_state import EventSource
from bot.storage import from_db, utcnow
from bot.storage.stats import ExportRow, StatsRepo

TOP_COUNTRIES = 10
TOP_SOURCES = 10  # deep-link sources are free text: only the largest are listed
Item = TypeVar("Item")
CHUNK = 2000  # rows per query and per write in the worker thread (~1.7 MB of tuples)

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
# such values get a leading apostrophe, as OWASP recommends. `write_csv` does it to every cell
# of every file, whatever the column: a value the bot did not expect there is defused too.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# A quick test of a whole row, joined with NULs (cleaned input holds none; a false alarm only
# costs the exact test below): most rows have nothing to defuse.
_FORMULA_IN_ROW = re.compile("\x00[=+\\-@\t\r]")


def spreadsheet_safe(value: str) -> str:
    return "'" + value if value.startswith(_FORMULA_START) else value


def defused(row: list[str]) -> list[str]:
    """The row with every cell `spreadsheet_safe`."""
    if _FORMULA_IN_ROW.search("\x00" + "\x00".join(row)) is None:
        return row
    return [spreadsheet_safe(cell) for cell in row]


def utc_iso(when: datetime) -> str:
    """UTC in ISO 8601 with a Z: 2023-06-01T12:00:00Z."""
    return when.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="seconds") + "Z"


def zone_iso(when: datetime, event: Event) -> str:
    """The event's zone with the offset it has that day: 2023-06-01T14:00:00+02:00."""
    return when.astimezone(event.tz).isoformat(timespec="seconds")


class StoredTimes:
    """Stored UTC text (db.to_db: "2023-06-01T12:00:00.123456+00:00") → the pair
    (`utc_iso`, `zone_iso`) of it, for the export's 100,000 rows.

    The UTC column is the stored text cut at the seconds. The zone's offset is looked up once
    per UTC hour, and only used for hours that hold no change of offset (rows in the others,
    and text in another shape, take the datetime path). With a whole-hour offset, the local
    time is the stored text under another hour: the same strings, several times faster.
    """

    def __init__(self, tz: tzinfo) -> None:
        self.tz = tz
        # UTC hour → (offset, local hour "2023-06-01T14" if the offset is whole hours, suffix)
        self._hours: dict[str, tuple[timedelta, str | None, str] | None] = {}

    def _hour(self, hour: str) -> tuple[timedelta, str | None, str] | None:
        start = datetime.fromisoformat(hour + ":00:00+00:00")
        first = start.astimezone(self.tz)
        offset = first.utcoffset()
        if (
            offset is None
            or (start + timedelta(seconds=3599)).astimezone(self.tz).utcoffset() != offset
        ):
            return None
        whole = offset % timedelta(hours=1) == timedelta(0)
        local = first.isoformat(timespec="seconds")
        return offset, local[:13] if whole else None, local[19:]

    def __call__(self, stored: str) -> tuple[str, str]:
        # to_db's shape, with or without the microseconds; anything else is parsed.
        if len(stored) in (25, 32) and stored.endswith("+00:00") and stored[10] == "T":
            hour = stored[:13]
            if hour not in self._hours:
                self._hours[hour] = self._hour(hour)
            cached = self._hours[hour]
            if cached is not None:
                offset, local_hour, suffix = cached
                utc = stored[:19]
                if local_hour is not None:
                    return utc + "Z", local_hour + stored[13:19] + suffix
                return utc + "Z", (datetime.fromisoformat(utc) + offset).isoformat() + suffix
        when = from_db(stored)
        return utc_iso(when), when.astimezone(self.tz).isoformat(timespec="seconds")


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
    (path, rows). Rows are formatted, defused and written in a worker thread, batch by batch,
    so that a large file never holds up the bot."""
    fd, name = tempfile.mkstemp(prefix=prefix, suffix=".csv")
    os.close(fd)
    path = Path(name)
    count = 0
    try:
        with path.open("w", encoding="utf-8-sig", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(header)
            async for batch in batches:
                rows = (defused(to_row(item)) for item in batch)
                await asyncio.to_thread(writer.writerows, rows)
                count += len(batch)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path, count


class ReportService:
    def __init__(
        self, repo: StatsRepo, events: EventSource, clock: Callable[[], datetime] = utcnow
    ) -> None:
        self.repo = repo
        self.events = events
        self.clock = clock

    @property
    def event(self) -> Event:
        """The event in force (`bot.services.event_state`)."""
        return self.events.current

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
        times = StoredTimes(self.event.tz)

        def to_row(row: ExportRow) -> list[str]:
            (
                registration_id,
                status,
                full_name,
                email,
                country,
                organisation,
                affiliation,
                session_language,
                language,
                source,
                created_at,
                cancelled_at,
            ) = row
            if country not in countries:
                countries[country] = country_name(country, t.lang)
            if affiliation not in affiliations:
                affiliations[affiliation] = t._(label(AFFILIATIONS, affiliation))
            created_utc, created_zone = times(created_at)
            cancelled_utc, cancelled_zone = times(cancelled_at) if cancelled_at else ("", "")
            return [
                str(registration_id),
                status,
                full_name,
                email,
                country,
                countries[country],
                organisation or "",
                affiliation,
                affiliations[affiliation],
                session_language,
                language,
                source or "",
                created_utc,
                created_zone,
                cancelled_utc,
                cancelled_zone,
            ]

        async def batches() -> AsyncIterator[list[ExportRow]]:
            after = 0
            while batch := await self.repo.export_rows(after, CHUNK):
                after = batch[-1][0]
                yield batch

        return await write_csv(REGISTRATION_COLUMNS, batches(), to_row, "registrations-")
