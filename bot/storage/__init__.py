"""The only package with SQL. Repositories take and return plain values, never Telegram objects."""

from bot.storage.audit import AuditRepo
from bot.storage.db import Database, from_db, to_db, utcnow
from bot.storage.meta import MetaRepo
from bot.storage.registrations import Registration, RegistrationData, RegistrationRepo
from bot.storage.users import User, UserRepo

__all__ = [
    "AuditRepo",
    "Database",
    "MetaRepo",
    "Registration",
    "RegistrationData",
    "RegistrationRepo",
    "User",
    "UserRepo",
    "from_db",
    "to_db",
    "utcnow",
]
