"""Operator commands: `run_bot.py --check` and `run_bot.py --backup PATH`.

Their output is for the person running the bot, in English, on stdout; problems are one line
on stderr with exit status 2 (a setting or a path) or 1 (the operation failed).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TextIO
from urllib.parse import urlparse

from bot.config import Settings
from bot.event import Event, format_offset
from bot.i18n import LANGUAGES, CatalogError, I18n
from bot.services.event_state import apply
from bot.storage import utcnow
from bot.storage.maintenance import BackupError, inspect, online_backup


def _when(moment: datetime) -> str:
    return moment.isoformat(" ", "minutes")


def event_lines(event: Event, now: datetime) -> list[tuple[str, str]]:
    """(label, value) lines describing the event and whether registration is open."""
    if event.registration_open(now):
        status = f"open until {_when(event.registration_closes)}"
    elif event.has_ended(now):
        status = f"closed (the event ended on {_when(event.end)})"
    else:
        status = f"closed since {_when(event.registration_closes)}"
    reminders = ", ".join(format_offset(r) for r in event.reminders_before) or "none"
    return [
        ("Event", event.text("en").title),
        ("Starts", f"{_when(event.start)} ({event.tz.key}), ends {event.end:%H:%M}"),
        ("Registration", status),
        ("Reminders", f"{reminders} before the start"),
        ("Capacity", "no limit" if event.capacity is None else str(event.capacity)),
        ("Access link", "set" if event.join_url else "not set (sent later)"),
        ("Follow-up", _follow_up(event)),
        ("Recording", "link set" if event.recording_url else "no link"),
    ]


def _follow_up(event: Event) -> str:
    if event.follow_up_after is None:
        return "off"
    due = event.end + event.follow_up_after
    return f"{format_offset(event.follow_up_after)} after the end ({_when(due)})"


def format_table(lines: list[tuple[str, str]]) -> str:
    width = max(len(label) for label, _ in lines) + 1
    return "\n".join(f"  {label + ':':<{width}} {value}" for label, value in lines)


def check(
    settings: Settings,
    event: Event,
    *,
    out: TextIO | None = None,
    err: TextIO | None = None,
    clock: Callable[[], datetime] = utcnow,
) -> int:
    """Settings and event file are already valid here; check catalogs and the database."""
    out, err = out or sys.stdout, err or sys.stderr
    try:
        I18n()
    except CatalogError as exc:
        print(f"Configuration error: {exc}", file=err)
        return 2
    database = settings.database_path
    changes_line = "none"
    if database.exists():
        try:
            info = inspect(database)
        except Exception as exc:  # any sqlite error: not a database, unreadable
            print(f"Configuration error: DATABASE_PATH: cannot read {database}: {exc}", file=err)
            return 2
        if info.schema_version > info.current_version:
            print(
                f"Configuration error: DATABASE_PATH: {database} has schema version "
                f"{info.schema_version}, newer than this bot ({info.current_version})",
                file=err,
            )
            return 2
        if info.event_changes:  # the values in force, as the bot will use them
            event = apply(event, info.event_changes)
            changed = ", ".join(sorted({c.field for c in info.event_changes}))
            changes_line = f"{len(info.event_changes)} made with /edit ({changed}), shown above"
        active = info.registrations.get("active", 0)
        waiting = info.registrations.get("waiting", 0)
        migrate = "" if info.schema_version == info.current_version else ", migrated at start"
        db_line = (
            f"{database} (schema {info.schema_version}{migrate}; "
            f"{active} active registrations, {waiting} waiting)"
        )
    elif not database.parent.exists() or _writable_dir(database.parent):
        db_line = f"{database} (created at start-up)"
    else:
        print(f"Configuration error: DATABASE_PATH: cannot create {database}", file=err)
        return 2
    if settings.webhook:
        url = urlparse(settings.webhook_url or "")
        mode = (
            f"webhook {url.scheme}://{url.netloc}{url.path or '/'}, listening on "
            f"{settings.webhook_listen}:{settings.webhook_port}"
        )
    else:
        mode = "long polling"
    api = urlparse(settings.api_base_url).netloc if settings.api_base_url else "api.telegram.org"
    lines = [
        *event_lines(event, clock()),
        ("Event file", str(settings.event_file)),
        ("Changes", changes_line),
        ("Database", db_line),
        ("Mode", f"{mode} (Bot API: {api})"),
        ("Admins", f"{len(settings.admin_ids)} user id(s)"),
        ("Languages", ", ".join(LANGUAGES) + " (catalogs loaded)"),
    ]
    print("OK: configuration, event file and catalogs are valid.", file=out)
    print(format_table(lines), file=out)
    return 0


def _writable_dir(path: Path) -> bool:
    return os.access(path, os.W_OK | os.X_OK)


def backup(
    database: Path, target: Path, *, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    """Online backup of `database` to `target` (a new file)."""
    out, err = out or sys.stdout, err or sys.stderr
    if not database.is_file():
        print(f"Backup error: DATABASE_PATH: {database} does not exist", file=err)
        return 2
    if target.exists():
        print(f"Backup error: {target} already exists; choose a new file name", file=err)
        return 2
    if not target.parent.is_dir():
        print(f"Backup error: the folder {target.parent} does not exist", file=err)
        return 2
    try:
        info = online_backup(database, target)
    except BackupError as exc:
        print(f"Backup error: {exc}", file=err)
        return 1
    counts = ", ".join(f"{n} {status}" for status, n in sorted(info.registrations.items()))
    print(
        f"Backup of {database} written to {target} (schema {info.schema_version}; "
        f"registrations: {counts or 'none'}; integrity check ok).",
        file=out,
    )
    return 0
