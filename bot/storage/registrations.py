"""Registrations and their history."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bot.storage.db import Database, from_db, to_db, utcnow

_COLUMNS = (
    "id, user_id, status, full_name, email, country, organisation, affiliation, "
    "session_language, language, source, created_at, cancelled_at"
)


@dataclass(frozen=True, slots=True)
class RegistrationData:
    """What a participant gives in the registration conversation."""

    full_name: str
    email: str
    country: str
    organisation: str | None
    affiliation: str
    session_language: str


@dataclass(frozen=True, slots=True)
class Registration:
    id: int
    user_id: int
    status: str
    data: RegistrationData
    language: str
    source: str | None
    created_at: datetime
    cancelled_at: datetime | None


def _row(row: tuple) -> Registration:
    return Registration(
        id=row[0],
        user_id=row[1],
        status=row[2],
        data=RegistrationData(row[3], row[4], row[5], row[6], row[7], row[8]),
        language=row[9],
        source=row[10],
        created_at=from_db(row[11]),
        cancelled_at=from_db(row[12]) if row[12] else None,
    )


class RegistrationRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def live(self, user_id: int) -> Registration | None:
        """The user's active or waiting registration."""
        row = await self.db.fetchone(
            f"SELECT {_COLUMNS} FROM registrations WHERE user_id = ? AND status != 'cancelled'",
            (user_id,),
        )
        return _row(tuple(row)) if row else None

    async def get(self, registration_id: int) -> Registration | None:
        row = await self.db.fetchone(
            f"SELECT {_COLUMNS} FROM registrations WHERE id = ?", (registration_id,)
        )
        return _row(tuple(row)) if row else None

    async def create(
        self,
        user_id: int,
        data: RegistrationData,
        language: str,
        source: str | None,
        capacity: int | None,
    ) -> tuple[Registration, bool]:
        """Insert a live registration; returns it and whether it was created.

        Capacity is checked inside the same write transaction as the insert, so concurrent
        sign-ups can never over-fill the session; a newcomer never passes people already
        waiting. The waiting list is in id order, the order of the inserts (the lock serialises
        them), which a wall clock that steps back cannot upset.
        """
        async with self.db.transaction() as conn:
            now = to_db(utcnow())
            existing = await self.live(user_id)
            if existing is not None:
                return existing, False
            status = "active"
            if capacity is not None:
                active, waiting = await self._counts()
                if active >= capacity or waiting:
                    status = "waiting"
            cursor = await conn.execute(
                "INSERT INTO registrations (user_id, status, full_name, email, country, "
                "organisation, affiliation, session_language, language, source, created_at, "
                "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    user_id,
                    status,
                    data.full_name,
                    data.email,
                    data.country,
                    data.organisation,
                    data.affiliation,
                    data.session_language,
                    language,
                    source,
                    now,
                    now,
                ),
            )
            registration_id = cursor.lastrowid
            await conn.execute(
                "INSERT INTO registration_events (registration_id, kind, at) VALUES (?, ?, ?)",
                (registration_id, "registered" if status == "active" else "waitlisted", now),
            )
            created = await self.get(registration_id or 0)
        assert created is not None
        return created, True

    async def cancel(
        self, user_id: int, capacity: int | None = None
    ) -> tuple[Registration | None, Registration | None]:
        """Cancel the user's live registration; promote the first waiting one if that frees a
        seat under `capacity` (None: no limit).

        Returns (cancelled, promoted); both happen in one transaction.
        """
        async with self.db.transaction() as conn:
            now = to_db(utcnow())
            current = await self.live(user_id)
            if current is None:
                return None, None
            await conn.execute(
                "UPDATE registrations SET status = 'cancelled', cancelled_at = ?, updated_at = ? "
                "WHERE id = ?",
                (now, now, current.id),
            )
            await conn.execute(
                "INSERT INTO registration_events (registration_id, kind, at) VALUES (?, ?, ?)",
                (current.id, "cancelled", now),
            )
            promoted = None
            if current.status == "active":
                found = await self._promote(now, capacity, limit=1)
                promoted = found[0] if found else None
            cancelled = await self.get(current.id)
        return cancelled, promoted

    async def fill(self, capacity: int | None) -> list[Registration]:
        """Promote waiting registrations into the free seats (after `capacity` was raised or a
        seat freed without a cancellation); returns them, first on the list first."""
        async with self.db.transaction():
            return await self._promote(to_db(utcnow()), capacity)

    async def counts(self) -> tuple[int, int]:
        """(active, waiting) registrations now."""
        return await self._counts()

    async def _counts(self) -> tuple[int, int]:
        """(active, waiting); call inside a transaction for a consistent answer."""
        row = await self.db.fetchone(
            "SELECT COALESCE(SUM(status = 'active'), 0), COALESCE(SUM(status = 'waiting'), 0) "
            "FROM registrations WHERE status != 'cancelled'"
        )
        return (int(row[0]), int(row[1])) if row else (0, 0)

    async def _promote(
        self, now: str, capacity: int | None, limit: int | None = None
    ) -> list[Registration]:
        """Inside a transaction: move the first waiting into the free seats."""
        active, waiting = await self._counts()
        free = waiting if capacity is None else max(0, min(waiting, capacity - active))
        if limit is not None:
            free = min(free, limit)
        if free == 0:
            return []
        rows = await self.db.fetchall(
            "SELECT id FROM registrations WHERE status = 'waiting' ORDER BY id LIMIT ?",
            (free,),
        )
        promoted = []
        for (registration_id,) in rows:
            await self.db.conn.execute(
                "UPDATE registrations SET status = 'active', updated_at = ? WHERE id = ?",
                (now, registration_id),
            )
            await self.db.conn.execute(
                "INSERT INTO registration_events (registration_id, kind, at) VALUES (?, ?, ?)",
                (registration_id, "promoted", now),
            )
            registration = await self.get(registration_id)
            assert registration is not None
            promoted.append(registration)
        return promoted

    async def promoted_without_delivery(self, kind_prefix: str) -> list[Registration]:
        """Active registrations promoted from the waiting list that have no delivery of kind
        `kind_prefix` followed by their id (their promotion notice), first promoted first."""
        # From the promoted few (partial index registration_events_promoted), not from all the
        # active registrations: "+status" keeps SQLite off the status index.
        rows = await self.db.fetchall(
            f"SELECT {_COLUMNS} FROM registrations r WHERE r.id IN "
            "(SELECT registration_id FROM registration_events WHERE kind = 'promoted') "
            "AND +r.status = 'active' AND NOT EXISTS "
            "(SELECT 1 FROM deliveries d WHERE d.user_id = r.user_id AND d.kind = ? || r.id) "
            "ORDER BY r.id",
            (kind_prefix,),
        )
        return [_row(tuple(r)) for r in rows]

    async def waiting_position(self, registration: Registration) -> int:
        """1 for the first on the waiting list (the list is in id order)."""
        row = await self.db.fetchone(
            "SELECT COUNT(*) FROM registrations WHERE status = 'waiting' AND id <= ?",
            (registration.id,),
        )
        return int(row[0]) if row else 0

    async def history(self, registration_id: int) -> list[str]:
        rows = await self.db.fetchall(
            "SELECT kind FROM registration_events WHERE registration_id = ? ORDER BY id",
            (registration_id,),
        )
        return [r[0] for r in rows]

    async def all_for_user(self, user_id: int) -> list[Registration]:
        rows = await self.db.fetchall(
            f"SELECT {_COLUMNS} FROM registrations WHERE user_id = ? ORDER BY id", (user_id,)
        )
        return [_row(tuple(r)) for r in rows]
