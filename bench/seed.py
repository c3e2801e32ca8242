"""Synthetic registrants for the fan-out and scale benchmarks.

Two ways: through the bot's own repositories (every row exactly as the bot writes it, one
transaction per registrant: fine for 10,000), or a bulk load with ``executemany`` in one
transaction (100,000 in a few seconds). Both create the schema with the bot's migrations.
"""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.services.choices import AFFILIATIONS, SESSION_LANGUAGES
from bot.storage import Database, RegistrationData, RegistrationRepo, UserRepo, to_db

LANGS = ("en", "fr", "es")
COUNTRIES = ("SN", "MA", "FR", "ES", "CO", "MX", "CI", "CM", "BE", "CH", "KE", "PH", "IN", "US")
SOURCES = (None, None, "eures", "wapes", "ilo_site")


def _data(user_id: int, rng: random.Random) -> RegistrationData:
    return RegistrationData(
        full_name=f"Participant {user_id}",
        email=f"p{user_id}@example.org",
        country=rng.choice(COUNTRIES),
        organisation=rng.choice((None, f"Organisation {user_id % 997}")),
        affiliation=rng.choice(AFFILIATIONS)[0],
        session_language=rng.choice(SESSION_LANGUAGES)[0],
    )


async def seed_with_repos(path: Path, user_ids: range, seed: int = 1) -> None:
    """One registrant per id, through UserRepo and RegistrationRepo."""
    rng = random.Random(seed)
    db = Database(path)
    await db.open()
    try:
        users, registrations = UserRepo(db), RegistrationRepo(db)
        for user_id in user_ids:
            lang = LANGS[user_id % 3]
            await users.ensure(user_id, lang, rng.choice(SOURCES))
            await registrations.create(user_id, _data(user_id, rng), lang, None, None)
    finally:
        await db.close()


def _rows(
    user_ids: range, rng: random.Random, now: datetime, days: int
) -> Iterator[tuple[tuple[object, ...], tuple[object, ...]]]:
    for user_id in user_ids:
        lang = LANGS[user_id % 3]
        at = to_db(now - timedelta(seconds=rng.uniform(60, days * 86400)))
        data = _data(user_id, rng)
        status = "cancelled" if rng.random() < 0.05 else "active"
        source = rng.choice(SOURCES)
        user = (user_id, lang, source, at, at)
        registration = (
            user_id,
            user_id,
            status,
            data.full_name,
            data.email,
            data.country,
            data.organisation,
            data.affiliation,
            data.session_language,
            lang,
            source,
            at,
            at,
            at if status == "cancelled" else None,
        )
        yield user, registration


async def seed_bulk(path: Path, user_ids: range, seed: int = 1, days: int = 30) -> None:
    """Registrants spread over the last ``days`` days (5% cancelled), in one transaction."""
    db = Database(path)
    await db.open()  # the bot's schema, migrated
    await db.close()
    rng = random.Random(seed)
    rows = list(_rows(user_ids, rng, datetime.now(UTC), days))
    conn = sqlite3.connect(path)
    try:
        with conn:
            conn.executemany(
                "INSERT INTO users (user_id, language, source, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (user for user, _ in rows),
            )
            conn.executemany(
                "INSERT INTO registrations (id, user_id, status, full_name, email, country, "
                "organisation, affiliation, session_language, language, source, created_at, "
                "updated_at, cancelled_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (registration for _, registration in rows),
            )
            conn.executemany(
                "INSERT INTO registration_events (registration_id, kind, at) VALUES (?, ?, ?)",
                ((r[0], "registered", r[11]) for _, r in rows),
            )
        conn.execute("PRAGMA optimize")
    finally:
        conn.close()
