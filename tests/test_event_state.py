"""The event in force: parsing what organisers type, and applying stored changes in order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.event import Event, load_event
from bot.handlers.edit import NO_LIMIT_WORD, UNTIL_END_WORD
from bot.i18n import I18n
from bot.services.event_state import (
    BadValue,
    Field,
    Problem,
    apply,
    parse_capacity,
    parse_deadline,
    parse_schedule,
    parse_url,
    unchanged,
    value_of,
)
from bot.storage.event_changes import StoredChange
from tests.conftest import write_event

START = datetime(2030, 3, 28, 13, 0, tzinfo=UTC)  # Zurich: UTC+1 until the 31st
NOW = START - timedelta(days=10)


@pytest.fixture
def event(tmp_path: Path) -> Event:
    return load_event(write_event(tmp_path, START, capacity=10))


def change(n: int, field: Field, value) -> StoredChange:
    return StoredChange(n, f"t{n}", field.value, value, None, None, 1, "none", NOW)


def problem(call) -> Problem:
    with pytest.raises(BadValue) as caught:
        call()
    return caught.value.problem


def test_schedule_is_read_in_the_events_zone_across_a_clock_change(event):
    value = parse_schedule("2030-04-02 16:00-17:30", event, NOW)  # summer time by then
    assert value == {"start": "2030-04-02T16:00:00+02:00", "end": "2030-04-02T17:30:00+02:00"}
    assert parse_schedule(" 2030-03-29 9:05 – 10:00 ", event, NOW)["start"].startswith(
        "2030-03-29T09:05:00+01:00"
    )


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("2030-03-31 02:30-03:30", Problem.NO_SUCH_TIME),  # clocks skip 02:00–03:00
        ("2030-03-20 16:00-15:00", Problem.END_BEFORE_START),
        ("2030-03-20 16:00-16:00", Problem.END_BEFORE_START),
        ("2030-03-10 16:00-17:00", Problem.PAST),
        ("2030-02-30 16:00-17:00", Problem.FORMAT),
        ("20/03/2030 16:00-17:00", Problem.FORMAT),
        ("tomorrow", Problem.FORMAT),
    ],
)
def test_bad_schedules(event, typed, expected):
    assert problem(lambda: parse_schedule(typed, event, NOW)) is expected


def test_links_capacity_and_deadline(event):
    assert parse_url(" https://ilo.zoom.us/j/1?pwd=x ") == "https://ilo.zoom.us/j/1?pwd=x"
    assert problem(lambda: parse_url("http://ilo.zoom.us/j/1")) is Problem.NOT_HTTPS
    assert problem(lambda: parse_url("ilo.zoom.us")) is Problem.NOT_HTTPS
    assert problem(lambda: parse_url("https://")) is Problem.FORMAT
    assert problem(lambda: parse_url("https://a b")) is Problem.FORMAT
    assert parse_capacity(" 120 ") == 120 and parse_capacity("None") is None
    for typed in ("0", "-3", "12.5", "fifty", "١٢", ""):
        assert problem(lambda t=typed: parse_capacity(t)) is Problem.NOT_NUMBER
    assert parse_deadline("END", event, NOW) is None
    assert parse_deadline("2030-03-27 18:00", event, NOW) == "2030-03-27T18:00:00+01:00"
    assert problem(lambda: parse_deadline("2030-03-29 18:00", event, NOW)) is Problem.AFTER_END
    assert problem(lambda: parse_deadline("2030-03-01 18:00", event, NOW)) is Problem.PAST
    assert problem(lambda: parse_deadline("soon", event, NOW)) is Problem.FORMAT


def test_the_words_of_every_language_quoted_or_not():
    words = I18n()
    no_limit = words.everywhere(NO_LIMIT_WORD)
    until_end = words.everywhere(UNTIL_END_WORD)
    assert {"none", "aucune", "ninguno"} <= no_limit and {"end", "fin"} <= until_end
    for typed in ("aucune", "« aucune »", "Ninguno", "«ninguno»", "“none”", " NONE "):
        assert parse_capacity(typed, no_limit) is None, typed
    assert problem(lambda: parse_capacity("fin", no_limit)) is Problem.NOT_NUMBER


def test_deadline_words(event):
    until_end = I18n().everywhere(UNTIL_END_WORD)
    for typed in ("fin", "« fin »", "FIN", "end"):
        assert parse_deadline(typed, event, NOW, until_end) is None, typed
    assert problem(lambda: parse_deadline("aucune", event, NOW, until_end)) is Problem.FORMAT


def test_unchanged_values(event):
    assert unchanged(event, Field.CAPACITY, event.capacity)
    assert not unchanged(event, Field.CAPACITY, (event.capacity or 0) + 1)
    assert unchanged(event, Field.DEADLINE, value_of(event, Field.DEADLINE))
    # The same instants, written in another zone, change nothing.
    same = {k: datetime.fromisoformat(v).astimezone(UTC).isoformat() for k, v in
            value_of(event, Field.SCHEDULE).items()}  # fmt: skip
    assert unchanged(event, Field.SCHEDULE, same)
    moved = parse_schedule("2030-04-02 16:00-17:30", event, NOW)
    assert not unchanged(event, Field.SCHEDULE, moved)
    # Open until the end: "end" (None) and the session's end typed out are the same deadline.
    open_until_end = apply(event, [change(1, Field.DEADLINE, None)])
    assert unchanged(open_until_end, Field.DEADLINE, None)
    assert unchanged(open_until_end, Field.DEADLINE, open_until_end.end.isoformat())
    closes = parse_deadline("2030-03-27 18:00", event, NOW)
    assert not unchanged(open_until_end, Field.DEADLINE, closes)
    assert unchanged(apply(event, [change(1, Field.DEADLINE, closes)]), Field.DEADLINE, closes)
    assert unchanged(event, Field.JOIN_URL, event.join_url)
    assert not unchanged(event, Field.JOIN_URL, "https://ilo.zoom.us/j/2")


def test_changes_apply_in_order_and_count_calendar_revisions(event):
    moved = parse_schedule("2030-04-02 16:00-17:30", event, NOW)
    closes = parse_deadline("2030-03-27 18:00", event, NOW)
    changes = [
        change(1, Field.CAPACITY, 20),
        change(2, Field.DEADLINE, closes),
        change(3, Field.SCHEDULE, moved),
        change(4, Field.JOIN_URL, "https://ilo.zoom.us/j/1"),
        change(5, Field.CAPACITY, None),
        change(6, Field.RECORDING_URL, "https://ilo.org/r"),
    ]
    now = apply(event, changes)
    assert now.start == datetime(2030, 4, 2, 14, 0, tzinfo=UTC)
    assert now.end - now.start == timedelta(minutes=90)
    assert now.capacity is None and now.join_url == "https://ilo.zoom.us/j/1"
    assert now.recording_url == "https://ilo.org/r"
    assert now.registration_closes.isoformat() == closes
    assert (event.sequence, now.sequence) == (0, 2)  # the time and the link
    assert now.texts is event.texts and event.capacity == 10  # the file's event is untouched
    # "end" follows the session wherever it moves; a deadline after a new end is cut to it.
    assert apply(event, [change(1, Field.SCHEDULE, moved)]).registration_closes == now.end
    earlier = parse_schedule("2030-03-21 10:00-11:00", event, NOW)
    cut = apply(now, [change(7, Field.SCHEDULE, earlier)])
    assert cut.registration_closes == cut.end and cut.sequence == 3
    assert value_of(cut, Field.DEADLINE) is None and value_of(now, Field.SCHEDULE) == moved
