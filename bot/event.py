"""The webinar described by the event file (TOML): loading, validation, time helpers.

File layout (see data/event.toml):

- ``[event]``: start, end (local times in ``timezone``), timezone (an IANA zone),
  reminders_before, and optionally registration_closes, capacity, join_url,
  follow_up_after (an offset after the end, or "off"; default "1h"), recording_url.
- ``[text.<lang>]`` for every language in LANGUAGES: title, hosts, summary, topics,
  working_languages, interpretation, questions, and the arrays of tables
  ``[[text.<lang>.moderators]]``, ``speakers``, ``closing`` (name, role, country?) and
  ``resources`` (title, url?).
- optional top-level ``include = "other.toml"`` (relative to this file): languages that this
  file does not define are taken from the other file's ``[text.*]`` tables. Its ``[event]``
  table is never used, so a file with ``include`` always states all its own settings.

Unknown keys are errors, so a misspelt optional key cannot be silently ignored. Entries of
arrays are numbered from 1 in error messages.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import Locale

LANGUAGES = ("en", "fr", "es")
DEFAULT_LANGUAGE = "en"


class EventFileError(Exception):
    """A problem with the event file, as one line: ``<file>: <key>: <problem>``."""

    def __init__(self, path: str | Path, key: str | None, problem: str) -> None:
        self.path = str(path)
        self.key = key
        self.problem = problem
        where = f"{self.path}: {key}" if key else self.path
        super().__init__(f"{where}: {problem}".replace("\n", " "))


@dataclass(frozen=True, slots=True)
class Person:
    name: str
    role: str  # function and/or organisation, in the text's language
    country: str | None = None  # ISO 3166-1 alpha-2, localised with Babel when shown


@dataclass(frozen=True, slots=True)
class Resource:
    title: str
    url: str | None = None


@dataclass(frozen=True, slots=True)
class EventText:
    title: str
    summary: tuple[str, ...]
    hosts: str
    topics: tuple[str, ...]
    moderators: tuple[Person, ...]
    speakers: tuple[Person, ...]
    closing: tuple[Person, ...]
    working_languages: str
    interpretation: str
    questions: str
    resources: tuple[Resource, ...]


@dataclass(frozen=True, slots=True)
class Event:
    start: datetime  # aware, in tz
    end: datetime  # aware, in tz
    tz: ZoneInfo
    reminders_before: tuple[timedelta, ...]  # descending: the earliest reminder first
    registration_closes: datetime  # aware, in tz
    capacity: int | None
    join_url: str | None
    texts: Mapping[str, EventText] = field(hash=False)
    #: The follow-up (thanks, recording, feedback) goes out this long after the end; None: off.
    follow_up_after: timedelta | None = timedelta(hours=1)
    recording_url: str | None = None  # https only
    sequence: int = 0  # revisions of the calendar entry (changes from /edit): its SEQUENCE

    def text(self, lang: str) -> EventText:
        """The texts in ``lang`` ("fr", also "fr-CA"/"fr_CA"); English when unknown."""
        if lang in self.texts:
            return self.texts[lang]
        primary = lang.replace("_", "-").split("-")[0].lower()
        return self.texts.get(primary, self.texts[DEFAULT_LANGUAGE])

    def registration_open(self, now: datetime) -> bool:
        return now < self.registration_closes and now < self.end

    def has_started(self, now: datetime) -> bool:
        return now >= self.start

    def has_ended(self, now: datetime) -> bool:
        return now >= self.end


# --- reminder offsets ---------------------------------------------------------------------

_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}
_OFFSET_RE = re.compile(r"(\d+)([dhms])")


def parse_offset(value: str) -> timedelta:
    """``"1d"``, ``"1h"``, ``"30m"``, ``"40s"`` → timedelta; ValueError for anything else."""
    match = _OFFSET_RE.fullmatch(value.strip()) if isinstance(value, str) else None
    if not match or int(match[1]) == 0:
        raise ValueError(
            f"expected a positive whole number and a unit d, h, m or s (e.g. '1d'), got {value!r}"
        )
    return timedelta(seconds=int(match[1]) * _UNITS[match[2]])


def format_offset(td: timedelta) -> str:
    """The shortest exact form for :func:`parse_offset`: 1 day → ``"1d"``, 90 min → ``"90m"``."""
    if td <= timedelta(0) or td.microseconds:
        raise ValueError(f"expected a positive whole number of seconds, got {td!r}")
    seconds = int(td.total_seconds())
    for unit, size in _UNITS.items():
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    raise AssertionError("unreachable: every whole number of seconds is a multiple of 1")


# --- loading --------------------------------------------------------------------------------

_EVENT_REQUIRED = ("start", "end", "timezone", "reminders_before")
_EVENT_OPTIONAL = (
    "registration_closes",
    "capacity",
    "join_url",
    "follow_up_after",
    "recording_url",
)
#: The follow-up is still sent this long after the end (a bot down that long sends none).
FOLLOW_UP_WINDOW = timedelta(days=7)
_TEXT_STRINGS = ("title", "hosts", "working_languages", "interpretation", "questions")
_TEXT_STRING_LISTS = ("summary", "topics")
_TEXT_PERSONS = ("moderators", "speakers", "closing")
_TEXT_KEYS = (*_TEXT_STRINGS, *_TEXT_STRING_LISTS, *_TEXT_PERSONS, "resources")
_FIXED_OFFSET_ZONE = re.compile(r"(Etc/)?(GMT|UTC|UCT)[+-]\d+|EST|MST|HST")
# CLDR's two-letter territories, less its groupings and "unknown" (EU, UN, ZZ, ...).
_COUNTRY_CODES: frozenset[str] = frozenset(
    code
    for code in Locale("en").territories
    if re.fullmatch(r"[A-Z]{2}", code) and code not in {"EU", "EZ", "QO", "UN", "XA", "XB", "ZZ"}
)


def load_event(path: str | Path) -> Event:
    """Read and validate the event file; any problem raises :class:`EventFileError`."""
    path = Path(path)
    data = _read_toml(path)
    _check_keys(path, "top level", data, required=("event",), optional=("text", "include"))

    text_tables: dict[str, tuple[Path, Any]] = {}
    if "include" in data:
        base_path = _include_path(path, data["include"])
        base = _read_toml(base_path)
        if "include" in base:
            raise EventFileError(base_path, "include", "an included file cannot include another")
        for lang, table in _text_root(base_path, base).items():
            text_tables[lang] = (base_path, table)
    for lang, table in _text_root(path, data).items():
        text_tables[lang] = (path, table)

    return _build_event(path, data["event"], text_tables)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as file:
            return tomllib.load(file)
    except FileNotFoundError:
        raise EventFileError(path, None, "file not found") from None
    except tomllib.TOMLDecodeError as exc:  # the message carries "(at line N, column M)"
        raise EventFileError(path, None, f"invalid TOML: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise EventFileError(path, None, f"cannot read the file: {exc}") from None


def _include_path(path: Path, value: Any) -> Path:
    if not isinstance(value, str) or not value.strip():
        raise EventFileError(path, "include", f"expected a file name, got {_show(value)}")
    return path.parent / value


def _text_root(path: Path, data: dict[str, Any]) -> dict[str, Any]:
    root = data.get("text", {})
    if not isinstance(root, dict):
        raise EventFileError(path, "[text]", f"expected a table, got {_show(root)}")
    for lang in root:
        if lang not in LANGUAGES:
            raise EventFileError(
                path, f"[text.{lang}]", f"unsupported language; expected {', '.join(LANGUAGES)}"
            )
    return root


def _build_event(path: Path, table: Any, text_tables: dict[str, tuple[Path, Any]]) -> Event:
    if not isinstance(table, dict):
        raise EventFileError(path, "[event]", f"expected a table, got {_show(table)}")
    _check_keys(path, "[event]", table, required=_EVENT_REQUIRED, optional=_EVENT_OPTIONAL)

    tz = _zone(path, table["timezone"])
    start = _local_datetime(path, "[event].start", table["start"], tz)
    end = _local_datetime(path, "[event].end", table["end"], tz)
    if end <= start:
        raise EventFileError(path, "[event].end", f"must be after start ({_show(table['start'])})")

    closes = end
    if "registration_closes" in table:
        closes = _local_datetime(
            path, "[event].registration_closes", table["registration_closes"], tz
        )
        if closes > end:
            raise EventFileError(path, "[event].registration_closes", "must not be after end")

    capacity = table.get("capacity")
    if capacity is not None and (
        not isinstance(capacity, int) or isinstance(capacity, bool) or capacity <= 0
    ):
        raise EventFileError(
            path, "[event].capacity", f"expected a positive whole number, got {_show(capacity)}"
        )

    join_url = table.get("join_url")
    if join_url is not None:
        join_url = _url(path, "[event].join_url", join_url)
    recording_url = table.get("recording_url")
    if recording_url is not None:
        recording_url = _url(path, "[event].recording_url", recording_url, https_only=True)

    texts = {lang: _event_text(src, lang, tbl) for lang, (src, tbl) in text_tables.items()}
    for lang in LANGUAGES:
        if lang not in texts:
            raise EventFileError(path, f"[text.{lang}]", "missing")
    _check_consistent(texts, {lang: src for lang, (src, _) in text_tables.items()})

    return Event(
        start=start,
        end=end,
        tz=tz,
        reminders_before=_reminders(path, table["reminders_before"]),
        registration_closes=closes,
        capacity=capacity,
        join_url=join_url,
        texts=MappingProxyType({lang: texts[lang] for lang in LANGUAGES}),
        follow_up_after=_follow_up_after(path, table.get("follow_up_after", "1h")),
        recording_url=recording_url,
    )


def _check_keys(
    path: Path,
    where: str,
    table: dict[str, Any],
    required: tuple[str, ...],
    optional: tuple[str, ...] = (),
) -> None:
    def name(key: str) -> str:
        if where != "top level":
            return f"{where}.{key}"
        return f"[{key}]" if key in ("event", "text") else key

    for key in required:
        if key not in table:
            raise EventFileError(path, name(key), "missing")
    for key in table:
        if key not in required and key not in optional:
            raise EventFileError(path, name(key), "unknown key")


def _zone(path: Path, value: Any) -> ZoneInfo:
    key = "[event].timezone"
    if not isinstance(value, str):
        raise EventFileError(path, key, f"expected an IANA time zone name, got {_show(value)}")
    if _FIXED_OFFSET_ZONE.fullmatch(value):
        raise EventFileError(
            path,
            key,
            f"{value!r} is a fixed offset; use the place's zone (e.g. 'Europe/Zurich') so "
            "summer time is right",
        )
    try:
        return ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise EventFileError(
            path, key, f"unknown time zone {value!r}; expected an IANA name like 'Europe/Zurich'"
        ) from None


def _local_datetime(path: Path, key: str, value: Any, tz: ZoneInfo) -> datetime:
    """A naive TOML local date-time, read as wall-clock time in ``tz`` (fold=0)."""
    if not isinstance(value, datetime):
        raise EventFileError(
            path, key, f"expected a date-time like 2023-06-15T15:30:00, got {_show(value)}"
        )
    if value.tzinfo is not None:
        raise EventFileError(
            path,
            key,
            f"write the local time without an offset ({_show(value)}); "
            "the zone is [event].timezone",
        )
    aware = value.replace(tzinfo=tz, fold=0)
    if aware.astimezone(UTC).astimezone(tz).replace(tzinfo=None) != value:
        raise EventFileError(
            path, key, f"{_show(value)} does not exist in {tz.key} (clocks skip it)"
        )
    return aware


def _reminders(path: Path, value: Any) -> tuple[timedelta, ...]:
    key = "[event].reminders_before"
    if not isinstance(value, list):
        raise EventFileError(path, key, f'expected a list like ["1d", "1h"], got {_show(value)}')
    offsets: list[timedelta] = []
    for i, item in enumerate(value, 1):
        try:
            offset = parse_offset(item)
        except ValueError as exc:
            raise EventFileError(path, f"{key}[{i}]", str(exc)) from None
        if offset in offsets:
            raise EventFileError(path, f"{key}[{i}]", f"duplicate reminder {item!r}")
        offsets.append(offset)
    return tuple(sorted(offsets, reverse=True))


def _follow_up_after(path: Path, value: Any) -> timedelta | None:
    key = "[event].follow_up_after"
    if value == "off":
        return None
    try:
        offset = parse_offset(value)
    except ValueError as exc:
        raise EventFileError(path, key, f"{exc}, or 'off'") from None
    if offset >= FOLLOW_UP_WINDOW:
        raise EventFileError(
            path, key, f"must be less than {format_offset(FOLLOW_UP_WINDOW)} after the end"
        )
    return offset


def _url(path: Path, key: str, value: Any, *, https_only: bool = False) -> str:
    schemes = ("https",) if https_only else ("http", "https")
    if isinstance(value, str):
        parts = urlsplit(value.strip())
        if parts.scheme in schemes and parts.netloc and " " not in value.strip():
            return value.strip()
    expected = "an https:// URL" if https_only else "an http(s) URL"
    raise EventFileError(path, key, f"expected {expected}, got {_show(value)}")


def _string(path: Path, key: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise EventFileError(path, key, f"expected a non-empty string, got {_show(value)}")
    return value.strip()


def _strings(path: Path, key: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise EventFileError(
            path, key, f"expected a non-empty list of strings, got {_show(value)}"
        )
    return tuple(_string(path, f"{key}[{i}]", item) for i, item in enumerate(value, 1))


def _tables(path: Path, key: str, value: Any, allow_empty: bool) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not (value or allow_empty):
        raise EventFileError(
            path, key, f"expected a non-empty array of tables, got {_show(value)}"
        )
    for i, item in enumerate(value, 1):
        if not isinstance(item, dict):
            raise EventFileError(path, f"{key}[{i}]", f"expected a table, got {_show(item)}")
    return value


def _person(path: Path, key: str, table: dict[str, Any]) -> Person:
    _check_keys(path, key, table, required=("name", "role"), optional=("country",))
    country = table.get("country")
    if country is not None and (not isinstance(country, str) or country not in _COUNTRY_CODES):
        raise EventFileError(
            path, f"{key}.country", f"expected an ISO 3166 code like 'MA', got {_show(country)}"
        )
    return Person(
        name=_string(path, f"{key}.name", table["name"]),
        role=_string(path, f"{key}.role", table["role"]),
        country=country,
    )


def _resource(path: Path, key: str, table: dict[str, Any]) -> Resource:
    _check_keys(path, key, table, required=("title",), optional=("url",))
    url = table.get("url")
    return Resource(
        title=_string(path, f"{key}.title", table["title"]),
        url=None if url is None else _url(path, f"{key}.url", url),
    )


def _event_text(path: Path, lang: str, table: Any) -> EventText:
    where = f"[text.{lang}]"
    if not isinstance(table, dict):
        raise EventFileError(path, where, f"expected a table, got {_show(table)}")
    _check_keys(path, where, table, required=_TEXT_KEYS)
    strings = {k: _string(path, f"{where}.{k}", table[k]) for k in _TEXT_STRINGS}
    lists = {k: _strings(path, f"{where}.{k}", table[k]) for k in _TEXT_STRING_LISTS}
    persons = {
        k: tuple(
            _person(path, f"{where}.{k}[{i}]", item)
            for i, item in enumerate(_tables(path, f"{where}.{k}", table[k], False), 1)
        )
        for k in _TEXT_PERSONS
    }
    resources = tuple(
        _resource(path, f"{where}.resources[{i}]", item)
        for i, item in enumerate(_tables(path, f"{where}.resources", table["resources"], True), 1)
    )
    return EventText(**strings, **lists, **persons, resources=resources)


def _check_consistent(texts: dict[str, EventText], sources: dict[str, Path]) -> None:
    """Every language lists the same programme: same topics, people and countries.

    Summaries and resources may differ (a translator may split a paragraph, a link may point
    to the page in that language).
    """
    ref = texts[DEFAULT_LANGUAGE]
    for lang, text in texts.items():
        for key in ("topics", *_TEXT_PERSONS):
            ours, theirs = getattr(text, key), getattr(ref, key)
            if len(ours) != len(theirs):
                raise EventFileError(
                    sources[lang],
                    f"[text.{lang}].{key}",
                    f"{len(ours)} entries, but [text.{DEFAULT_LANGUAGE}] has {len(theirs)}",
                )
        for key in _TEXT_PERSONS:
            for i, (ours, theirs) in enumerate(
                zip(getattr(text, key), getattr(ref, key), strict=True), 1
            ):
                if ours.country != theirs.country:
                    raise EventFileError(
                        sources[lang],
                        f"[text.{lang}].{key}[{i}].country",
                        f"{ours.country!r} differs from [text.{DEFAULT_LANGUAGE}] "
                        f"({theirs.country!r})",
                    )


def _show(value: Any) -> str:
    """A value as an error message shows it, close to how it is written in TOML."""
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, bool):
        return f"{str(value).lower()} (a boolean)"
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return f"{value.isoformat()} (a date)"
    if isinstance(value, time):
        return f"{value.isoformat()} (a time)"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a table"
    return str(value)


SHIPPED_EVENT_FILE = Path(__file__).resolve().parent.parent / "data" / "event.toml"


def write_rescheduled(
    folder: Path,
    start: datetime,
    *,
    duration: timedelta = timedelta(minutes=90),
    reminders: tuple[str, ...] = ("1d", "1h"),
    capacity: int | None = None,
    join_url: str | None = None,
    closes: datetime | None = None,
    follow_up_after: str | None = None,
    recording_url: str | None = None,
    name: str = "event.toml",
    zone: str = "Europe/Zurich",
) -> Path:
    """Write an event file with the shipped texts (by `include`) and another schedule.

    `start` and `closes` are aware; they are written as local times in `zone`. Used by the
    tests and the benchmarks to move the 2023 webinar into the future.
    """
    tz = ZoneInfo(zone)

    def local(when: datetime) -> str:
        return when.astimezone(tz).replace(tzinfo=None).isoformat(timespec="seconds")

    lines = [
        f'include = "{SHIPPED_EVENT_FILE.as_posix()}"',
        "[event]",
        f"start = {local(start)}",
        f"end = {local(start + duration)}",
        f'timezone = "{zone}"',
        "reminders_before = [" + ", ".join(f'"{r}"' for r in reminders) + "]",
    ]
    if capacity is not None:
        lines.append(f"capacity = {capacity}")
    if join_url is not None:
        lines.append(f'join_url = "{join_url}"')
    if closes is not None:
        lines.append(f"registration_closes = {local(closes)}")
    if follow_up_after is not None:
        lines.append(f'follow_up_after = "{follow_up_after}"')
    if recording_url is not None:
        lines.append(f'recording_url = "{recording_url}"')
    path = folder / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
