"""Counts for /stats and the rows of /export.

Every count is one GROUP BY over a covering index of `registrations` (see schema.py), so the
database does the work and Python only sees one row per group, never one per registration.
`tests/test_admin.py` checks the query plans.
"""

from __future__ import annotations

from bot.storage.db import Database

# Current registrations: the breakdowns leave out the cancelled ones. Grouping by status first
# follows the order of the (status, column) indexes, so SQLite counts while it reads them; the
# two statuses are added up in Python, one row per value.
_LIVE = "status IN ('active', 'waiting')"
BREAKDOWN_COLUMNS: tuple[str, ...] = (
    "language",
    "affiliation",
    "country",
    "session_language",
    "source",
)

STATUS_SQL = "SELECT status, COUNT(*) FROM registrations GROUP BY status"
BREAKDOWN_SQL = (
    "SELECT {column}, COUNT(*) FROM registrations WHERE " + _LIVE + " GROUP BY status, {column}"
)
# Stored times are UTC ISO 8601 text, so the first 13 characters are the UTC hour
# ("2023-06-01T14"); hours are turned into days of the event's zone in the service.
BY_HOUR_SQL = (
    "SELECT substr(created_at, 1, 13), COUNT(*) FROM registrations WHERE "
    + _LIVE
    + " GROUP BY status, substr(created_at, 1, 13)"
)
# The export reads plain tuples in this order; times are the stored UTC text (see db.to_db).
EXPORT_COLUMNS: tuple[str, ...] = (
    "id",
    "status",
    "full_name",
    "email",
    "country",
    "organisation",
    "affiliation",
    "session_language",
    "language",
    "source",
    "created_at",
    "cancelled_at",
)
EXPORT_SQL = (
    "SELECT " + ", ".join(EXPORT_COLUMNS) + " FROM registrations WHERE id > ? ORDER BY id LIMIT ?"
)
ExportRow = tuple[int, str, str, str, str, str | None, str, str, str, str | None, str, str | None]


def stats_queries() -> dict[str, str]:
    """Every statistics query by name, for checking their plans."""
    queries = {"status": STATUS_SQL, "by_hour": BY_HOUR_SQL}
    for column in BREAKDOWN_COLUMNS:
        queries[column] = BREAKDOWN_SQL.format(column=column)
    queries["export"] = EXPORT_SQL
    return queries


class StatsRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def status_counts(self) -> dict[str, int]:
        rows = await self.db.fetchall(STATUS_SQL)
        return {r[0]: int(r[1]) for r in rows}

    async def _summed(self, sql: str) -> dict[str | None, int]:
        totals: dict[str | None, int] = {}
        for value, count in await self.db.fetchall(sql):
            totals[value] = totals.get(value, 0) + int(count)
        return totals

    async def breakdown(self, column: str) -> list[tuple[str | None, int]]:
        """Current registrations per value of `column`, largest first."""
        if column not in BREAKDOWN_COLUMNS:
            raise ValueError(column)
        totals = await self._summed(BREAKDOWN_SQL.format(column=column))
        return sorted(totals.items(), key=lambda item: (-item[1], item[0] or ""))

    async def by_hour(self) -> list[tuple[str, int]]:
        """Current registrations per UTC hour of sign-up ("2023-06-01T14"), oldest first."""
        totals = await self._summed(BY_HOUR_SQL)
        return sorted((hour, n) for hour, n in totals.items() if hour is not None)

    async def export_rows(self, after_id: int, limit: int) -> list[ExportRow]:
        """One chunk of all registrations (any status) after `after_id`, by id, as plain
        tuples in `EXPORT_COLUMNS` order, for a streaming export.

        Keyset pages rather than one long-lived cursor: the shared connection stays free for
        the writes of other tasks between chunks. Tuples, not `Registration`s or `sqlite3.Row`s:
        100,000 of those cost the bot a second of CPU for values that are only written out.
        """
        cursor = await self.db.conn.cursor()
        try:
            cursor.row_factory = None  # this cursor only; the connection's stays sqlite3.Row
            await cursor.execute(EXPORT_SQL, (after_id, limit))
            return list(await cursor.fetchall())  # type: ignore[arg-type]
        finally:
            await cursor.close()
