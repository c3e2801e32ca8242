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
        sign-ups can never over-fill the session.
        """
        now = to_db(utcnow())
        async with self.db.transaction() as conn:
            existing = await self.live(user_id)
            if existing is not None:
                return existing, False
            status = "active"
            if capacity is not None:
                async with conn.execute(
                    "SELECT COUNT(*) FROM registrations WHERE status = 'active'"
                ) as cur:
                    (active,) = await cur.fetchone() or (0,)
                if active >= capacity:
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

    async def cancel(self, user_id: int) -> tuple[Registration | None, Registration | None]:
        """Cancel the user's live registration; promote the first waiting one if a seat freed.

        Returns (cancelled, promoted); both run in one transaction.
        """
        now = to_db(utcnow())
        async with self.db.transaction() as conn:
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
                row = await self.db.fetchone(
                    "SELECT id FROM registrations WHERE status = 'waiting' "
                    "ORDER BY created_at, id LIMIT 1"
                )
                if row is not None:
                    await conn.execute(
                        "UPDATE registrations SET status = 'active', updated_at = ? WHERE id = ?",
                        (now, row[0]),
                    )
                    await conn.execute(
                        "INSERT INTO registration_events (registration_id, kind, at) "
                        "VALUES (?, ?, ?)",
                        (row[0], "promoted", now),
                    )
                    promoted = await self.get(row[0])
            cancelled = await self.get(current.id)
        return cancelled, promoted

    async def waiting_position(self, registration: Registration) -> int:
        row = await self.db.fetchone(
            "SELECT COUNT(*) FROM registrations WHERE status = 'waiting' "
            "AND (created_at < ? OR (created_at = ? AND id <= ?))",
            (to_db(registration.created_at), to_db(registration.created_at), registration.id),
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
