"""Organisers' tools end to end: who may use them, /stats with its chart, /export."""

from __future__ import annotations

import csv
import io
import logging
import sys
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from babel.dates import format_skeleton
from babel.numbers import format_percent

from bot.countries import country_name
from bot.i18n import I18n
from bot.services import chart
from bot.services.chart import ChartError, ChartLabels, draw_signups, render_signups
from bot.services.reports import (
    REGISTRATION_COLUMNS,
    StoredTimes,
    days_from_hours,
    spreadsheet_safe,
    utc_iso,
)
from bot.storage import Database, to_db
from bot.storage.stats import stats_queries
from tests.conftest import Participant, write_event
from tests.typography import assert_french

T = I18n()
ADMIN, ADMIN_FR, USER = 42, 43, 7
EVENT_START = datetime(2023, 6, 15, 13, 30, tzinfo=UTC)  # 15:30 in Geneva
NOW = datetime(2023, 6, 10, 12, 0, tzinfo=UTC)
PNG = b"\x89PNG\r\n\x1a\n"
BOM = b"\xef\xbb\xbf"


def text_of(message) -> str:
    return message.plain_text or message.text or ""


@dataclass
class Seed:
    user_id: int
    name: str
    country: str
    status: str = "active"
    language: str = "en"
    affiliation: str = "pes"
    session_language: str = "en"
    source: str | None = None
    at: datetime = NOW - timedelta(days=3)
    organisation: str | None = None
    email: str = ""


async def seed(db: Database, rows: list[Seed]) -> None:
    """Registrations written straight to the database, with chosen times."""
    async with db.transaction() as conn:
        for r in rows:
            at = r.at.isoformat(timespec="microseconds")
            await conn.execute(
                "INSERT INTO users (user_id, language, source, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (r.user_id, r.language, r.source, at, at),
            )
            cancelled = (
                (r.at + timedelta(hours=5)).isoformat() if r.status == "cancelled" else None
            )
            await conn.execute(
                "INSERT INTO registrations (user_id, status, full_name, email, country, "
                "organisation, affiliation, session_language, language, source, created_at, "
                "updated_at, cancelled_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    r.user_id,
                    r.status,
                    r.name,
                    r.email or f"user{r.user_id}@example.org",
                    r.country,
                    r.organisation,
                    r.affiliation,
                    r.session_language,
                    r.language,
                    r.source,
                    at,
                    at,
                    cancelled,
                ),
            )


SEEDS = [
    Seed(1001, "Zoë Ñúñez", "SN", source="eures", at=datetime(2023, 6, 1, 10, tzinfo=UTC)),
    # 23:30 UTC is already 2 June in Geneva.
    Seed(
        1002,
        "محمد",
        "SN",
        language="fr",
        affiliation="union",
        session_language="fr",
        source="eures",
        at=datetime(2023, 6, 1, 23, 30, tzinfo=UTC),
        organisation='=HYPERLINK("http://x")',
    ),
    Seed(
        1003,
        "张伟",
        "AR",
        language="es",
        session_language="es",
        at=datetime(2023, 6, 3, 9, tzinfo=UTC),
        organisation="Ministerio de Trabajo",
    ),
    Seed(
        1004,
        "Jean O'Brien",
        "MA",
        status="waiting",
        affiliation="academia",
        at=datetime(2023, 6, 3, 10, tzinfo=UTC),
    ),
    Seed(
        1005,
        'Ana, "la" López\nSegunda',
        "FR",
        status="cancelled",
        language="fr",
        affiliation="other",
        source="newsletter",
        at=datetime(2023, 6, 2, 8, tzinfo=UTC),
    ),
]


@pytest.fixture
def event_file(tmp_path: Path) -> Path:
    return write_event(tmp_path, EVENT_START)


@pytest.fixture
async def admin_bot(api, bots, event_file):
    running = await bots.start(event_file, clock=lambda: NOW, ADMIN_IDS=f"{ADMIN},{ADMIN_FR}")
    await api.wait_until_polling()  # services are open
    return running


async def count(db: Database, table: str) -> int:
    row = await db.fetchone(f"SELECT COUNT(*) FROM {table}")
    return int(row[0]) if row else 0


# --- authorization ----------------------------------------------------------------------------


async def test_non_admins_get_exactly_the_unknown_command_answer(api, admin_bot):
    user = Participant(api, USER, "fr")
    unknown = text_of(await user.say("/nosuchcommand"))
    assert unknown == T("fr")._(
        "Sorry, I do not know this command. Send /help to see what I can do."
    )
    for command in ("/stats", "/export", "/questions", "/broadcast", "/stats@bot", "/export all"):
        assert text_of(await user.say(command)) == unknown, command
    help_text = text_of(await user.say("/help"))
    assert "/stats" not in help_text and "/export" not in help_text

    # Forged admin buttons get the same answer as any stale button.
    answers = []
    for data in ("adm:stats", "adm:export", "nonsense"):
        update_id = await api.press_button(USER, 1, data, check=False)
        call = await api.wait_for_call(
            lambda c, u=update_id: (
                c.method == "answerCallbackQuery" and c.params.get("callback_query_id") == f"cq{u}"
            )
        )
        answers.append((call.params.get("text"), call.params.get("show_alert")))
    expired = T("fr")._("This button has expired. Please use the latest message.")
    assert answers == [(expired, True)] * 3

    # Nothing was sent but plain messages, nothing was recorded.
    assert {m.method for m in api.messages_to(USER)} == {"sendMessage"}
    assert await count(admin_bot.db, "audit_log") == 0
    assert api.commands(scope={"type": "chat", "chat_id": USER}) == []


async def test_admin_commands_in_a_group(api, admin_bot):
    Participant(api, USER, "en")
    Participant(api, ADMIN, "en")
    group = -100500
    await api.send_text(USER, "/nosuchcommand", chat_id=group, chat_type="group")
    generic = text_of(await api.next_message(group))
    await api.send_text(USER, "/export", chat_id=group, chat_type="group")
    assert text_of(await api.next_message(group)) == generic  # nothing reveals the command

    await api.send_text(ADMIN, "/export", chat_id=group, chat_type="group")
    refusal = await api.next_message(group)
    assert text_of(refusal) == T("en")._(
        "For the participants' privacy, I send the export only in a private chat with me."
    )
    await api.send_text(ADMIN, "/stats@ilo_webinar_bot", chat_id=group, chat_type="group")
    refusal = await api.next_message(group)
    assert text_of(refusal) == T("en")._("Admin commands work only in a private chat with me.")
    await api.send_text(ADMIN, "/broadcast", chat_id=group, chat_type="group")
    assert text_of(await api.next_message(group)) == text_of(refusal)
    assert not [m for m in api.sent if m.method in ("sendDocument", "sendPhoto")]
    audit = await admin_bot.db.fetchall("SELECT admin_id, action, detail FROM audit_log")
    assert [tuple(r) for r in audit] == [
        (ADMIN, "/export", "refused: group chat"),
        (ADMIN, "/stats", "refused: group chat"),
        (ADMIN, "/broadcast", "refused: group chat"),
    ]


async def test_admins_see_their_commands_in_the_menu_and_help(api, admin_bot):
    admin = Participant(api, ADMIN_FR, "fr")
    help_text = text_of(await admin.say("/help"))
    assert T("fr")._("For organisers:") in help_text and "/export" in help_text
    for lang in ("en", "fr", "es"):
        scope = {"type": "chat", "chat_id": ADMIN_FR}
        commands = [c["command"] for c in api.commands(scope=scope, language_code=lang)]
        assert commands[0] == "start" and {"stats", "export", "questions"} <= set(commands)
    assert api.commands(scope={"type": "chat", "chat_id": ADMIN})  # without a language too
    assert "stats" not in [c["command"] for c in api.commands(language_code="fr")]


# --- /stats -------------------------------------------------------------------------------------


async def test_stats_counts_and_chart(api, admin_bot):
    await seed(admin_bot.db, SEEDS)
    admin = Participant(api, ADMIN, "en")
    t = T("en")
    message = await admin.say("/stats")
    text = text_of(message)

    def share(n: int) -> str:
        return f"{n} ({format_percent(n / 4, locale='en')})"

    for line in (
        t._("Registered: {count}").format(count=3),
        t._("Waiting list: {count}").format(count=1),
        t._("Cancelled: {count}").format(count=1),
        f"English: {share(2)}",
        f"French: {share(1)}",
        f"Senegal: {share(2)}",
        f"Argentina: {share(1)}",
        f"Morocco: {share(1)}",
        f"{t._('Public Employment Service')}: {share(2)}",
        f"{t._('Academia or research')}: {share(1)}",
        f"{t._('Spanish (interpretation)')}: {share(1)}",
        f"eures: {share(2)}",
        f"{t._('no link')}: {share(2)}",
    ):
        assert line in text.splitlines(), (line, text)
    assert "France" not in text and "newsletter" not in text  # cancelled: not counted
    days = {
        format_skeleton("MMMEd", date(2023, 6, d), locale="en"): n
        for d, n in ((1, 1), (2, 1), (3, 2), (4, 0), (10, 0))
    }
    for day, n in days.items():
        assert f"{day}: {n}" in text.splitlines()
    assert message.callback_data(t._("Refresh")) == "adm:stats"

    photo = await admin.next()
    assert photo.method == "sendPhoto" and photo.document is not None
    assert photo.document.startswith(PNG)
    assert t._("Current registrations: {count}").format(count=4) in text_of(photo)

    stats = await admin_bot.app.bot_data["services"].reports.stats()
    assert stats.per_day[:4] == [
        (date(2023, 6, 1), 1),
        (date(2023, 6, 2), 1),
        (date(2023, 6, 3), 2),
        (date(2023, 6, 4), 0),
    ]
    assert stats.per_day[-1] == (date(2023, 6, 10), 0)  # up to today
    audit = await admin_bot.db.fetchall("SELECT admin_id, action FROM audit_log")
    assert [tuple(r) for r in audit] == [(ADMIN, "/stats")]

    # The Refresh button: audited and answered with fresh figures.
    await api.press_button(ADMIN, message.message_id, "adm:stats")
    again = await admin.next()
    assert t._("Registered: {count}").format(count=3) in text_of(again)
    assert (await admin.next()).method == "sendPhoto"
    audit = await admin_bot.db.fetchall("SELECT action FROM audit_log ORDER BY id")
    assert [r[0] for r in audit] == ["/stats", "button adm:stats"]


async def test_stats_in_french_and_when_empty(api, admin_bot):
    admin = Participant(api, ADMIN_FR, "fr")
    empty = await admin.say("/stats")
    assert T("fr")._("No current registrations yet.") in text_of(empty)
    await seed(admin_bot.db, SEEDS)
    text = text_of(await admin.say("/stats"))
    # French punctuation from the catalog: a no-break space before the colon, in every row.
    assert f"{country_name('SN', 'fr')}\u00a0: 2" in text and "Maroc" in text
    assert format_skeleton("MMMEd", date(2023, 6, 3), locale="fr") + "\u00a0: 2" in text
    assert_french(text)
    # The organisers' city, not the zone's exemplar city (Europe/Zurich).
    assert "heure de Genève" in text and "Zurich" not in text
    assert (await admin.next()).document.startswith(PNG)


async def test_a_failing_chart_process_gets_the_error_answer_and_is_logged(
    api, admin_bot, monkeypatch, caplog
):
    await seed(admin_bot.db, SEEDS)
    failing = (sys.executable, "-c", "import sys; sys.exit('matplotlib is missing')")
    monkeypatch.setattr(chart, "CHART_COMMAND", failing)
    admin = Participant(api, ADMIN, "en")
    with caplog.at_level(logging.ERROR):
        text = await admin.say("/stats")
        assert T("en")._("Registered: {count}").format(count=3) in text_of(text)
        sorry = await admin.next()
    assert sorry.method == "sendMessage"
    assert text_of(sorry) == T("en")._(
        "Sorry, something went wrong on our side. Please try again in a moment."
    )
    errors = [r for r in caplog.records if r.exc_info and r.exc_info[0] is ChartError]
    assert errors and "matplotlib is missing" in str(errors[0].exc_info[1])
    # Still answering.
    assert T("en")._("Registered: {count}").format(count=3) in text_of(await admin.say("/stats"))


async def test_a_chart_process_that_hangs_is_killed(monkeypatch):
    monkeypatch.setattr(
        chart, "CHART_COMMAND", (sys.executable, "-c", "import time; time.sleep(60)")
    )
    labels = ChartLabels("Sign-ups", "New", "Total")
    began = datetime.now(UTC)
    with pytest.raises(ChartError, match=r"no chart after 0\.5 s"):
        await draw_signups([(date(2023, 6, 1), 1)], labels, "en", timeout=0.5)
    assert datetime.now(UTC) - began < timedelta(seconds=10)


async def test_the_chart_process_draws_a_png():
    png = await draw_signups(
        [(date(2023, 6, 1), 3), (date(2023, 6, 2), 0)],
        ChartLabels("Sign-ups", "New", "Total"),
        "es",
    )
    assert png.startswith(PNG)


# --- /export ------------------------------------------------------------------------------------


async def test_export_is_a_csv_that_matches_the_database(api, admin_bot):
    await seed(admin_bot.db, SEEDS)
    admin = Participant(api, ADMIN, "en")
    await api.send_text(ADMIN, "/export")
    document = await api.next_message(ADMIN, predicate=lambda m: m.method == "sendDocument")
    assert document.filename == "registrations-20230610-1400.csv"
    assert document.document is not None and document.document.startswith(BOM)
    assert "5 registrations" in text_of(document)
    rows = list(csv.DictReader(io.StringIO(document.document.decode("utf-8-sig"))))
    assert list(rows[0]) == list(REGISTRATION_COLUMNS)

    stored = await admin_bot.db.fetchall(
        "SELECT id, status, full_name, email, country, organisation, affiliation, "
        "session_language, language, source FROM registrations ORDER BY id"
    )
    assert len(rows) == len(stored) == 5
    for row, db_row in zip(rows, stored, strict=True):
        assert row["id"] == str(db_row["id"])
        assert row["status"] == db_row["status"]
        assert row["full_name"] == db_row["full_name"]
        assert row["email"] == db_row["email"]
        assert row["country"] == db_row["country"]
        assert row["country_name"] == country_name(db_row["country"], "en")
        assert row["organisation"] == spreadsheet_safe(db_row["organisation"] or "")
        assert row["affiliation"] == db_row["affiliation"]
        assert row["session_language"] == db_row["session_language"]
        assert row["language"] == db_row["language"]
        assert row["source"] == (db_row["source"] or "")
    by_name = {r["full_name"]: r for r in rows}
    assert {"Zoë Ñúñez", "محمد", "张伟", 'Ana, "la" López\nSegunda'} <= set(by_name)
    zoe = by_name["Zoë Ñúñez"]
    assert zoe["registered_at_utc"] == "2023-06-01T10:00:00Z"
    assert zoe["registered_at_event_tz"] == "2023-06-01T12:00:00+02:00"
    assert zoe["cancelled_at_utc"] == ""
    assert zoe["affiliation_label"] == "Public Employment Service"
    ana = by_name['Ana, "la" López\nSegunda']
    assert ana["status"] == "cancelled" and ana["cancelled_at_utc"] == "2023-06-02T13:00:00Z"
    assert by_name["Jean O'Brien"]["status"] == "waiting"
    # A value that a spreadsheet would run as a formula is defused.
    assert by_name["محمد"]["organisation"] == '\'=HYPERLINK("http://x")'
    assert admin.id == ADMIN


async def test_export_of_many_rows_is_written_in_chunks(api, admin_bot):
    rows = [
        Seed(5000 + i, f"Participant {i} Ñ", "SN", at=NOW - timedelta(minutes=i))
        for i in range(2500)
    ]
    await seed(admin_bot.db, rows)
    Participant(api, ADMIN, "en")
    await api.send_text(ADMIN, "/export")
    document = await api.next_message(ADMIN, predicate=lambda m: m.method == "sendDocument")
    parsed = list(csv.reader(io.StringIO(document.document.decode("utf-8-sig"))))
    assert len(parsed) == 2501
    assert [int(r[0]) for r in parsed[1:]] == sorted(int(r[0]) for r in parsed[1:])


async def test_export_is_uploaded_whole_again_after_a_flood_wait(api, admin_bot):
    """The CSV is streamed from its file while uploading: a retry must send it all again."""
    await seed(admin_bot.db, SEEDS)
    Participant(api, ADMIN, "en")
    api.inject("sendDocument", 429, retry_after=1)
    await api.send_text(ADMIN, "/export")
    document = await api.next_message(
        ADMIN, predicate=lambda m: m.method == "sendDocument", timeout=20
    )
    assert document.document is not None and document.document.startswith(BOM)
    parsed = list(csv.reader(io.StringIO(document.document.decode("utf-8-sig"))))
    assert len(parsed) == 1 + len(SEEDS) and parsed[0] == list(REGISTRATION_COLUMNS)


# --- units --------------------------------------------------------------------------------------


async def test_statistics_queries_use_indexes(tmp_path):
    db = Database(tmp_path / "plan.sqlite3")
    await db.open()
    try:
        for name, sql in stats_queries().items():
            params = (0, 10) if "id > ?" in sql else (10,) if "?" in sql else ()
            plan = [r[3] for r in await db.fetchall("EXPLAIN QUERY PLAN " + sql, params)]
            reads = [step for step in plan if "registrations" in step]
            assert reads, (name, plan)
            for step in reads:
                # An index on every read (by_hour's is an expression index, not covering)
                assert "INDEX" in step or "INTEGER PRIMARY KEY" in step, (name, plan)
            assert not any("TEMP B-TREE" in step for step in plan), (name, plan)
    finally:
        await db.close()


def test_days_are_the_event_zones_and_gaps_are_filled(event_file):
    from bot.event import load_event

    event = load_event(event_file)
    hours = [("2023-06-01T21", 2), ("2023-06-01T22", 1), ("2023-06-04T10", 3)]
    assert days_from_hours(hours, event) == [
        (date(2023, 6, 1), 2),
        (date(2023, 6, 2), 1),  # 22:00 UTC is midnight in Geneva
        (date(2023, 6, 3), 0),
        (date(2023, 6, 4), 3),
    ]
    # Filled up to today, but never past the event.
    assert days_from_hours(hours, event, date(2023, 6, 6))[-1] == (date(2023, 6, 6), 0)
    assert days_from_hours(hours, event, date(2024, 1, 1))[-1] == (date(2023, 6, 15), 0)
    assert days_from_hours([], event, date(2023, 6, 6)) == []


@pytest.mark.parametrize(
    "zone", ["Europe/Zurich", "Australia/Lord_Howe", "Pacific/Chatham", "America/St_Johns"]
)
def test_export_times_from_stored_text_match_the_datetime_ones(zone):
    """The export's shortcut from the stored text gives exactly `utc_iso` and `zone_iso`, also
    in the hours around changes of offset (half-hour ones included) and for other shapes."""
    tz = ZoneInfo(zone)
    times = StoredTimes(tz)

    def expected(when: datetime) -> tuple[str, str]:
        return utc_iso(when), when.astimezone(tz).isoformat(timespec="seconds")  # zone_iso

    changes = [
        hour
        for hour in (datetime(2023, 1, 1, tzinfo=UTC) + timedelta(hours=h) for h in range(8760))
        if (hour - timedelta(hours=1)).astimezone(tz).utcoffset()
        != hour.astimezone(tz).utcoffset()
    ]
    assert len(changes) == 2
    for change in changes:
        for seconds in range(-3 * 3600, 3 * 3600, 61):
            when = change + timedelta(seconds=seconds, microseconds=654321)
            for stored in (to_db(when), when.replace(microsecond=0).isoformat()):
                assert times(stored) == expected(when), stored
    old = datetime(1890, 3, 1, 12, 0, 7, tzinfo=UTC)  # local mean time, offsets in seconds
    assert times(to_db(old)) == expected(old)
    other = "2023-06-01T12:00:00+02:00"  # not the stored shape: the datetime path
    assert times(other)[0] == "2023-06-01T10:00:00Z"


def test_spreadsheet_formulas_are_defused():
    assert spreadsheet_safe("=1+1") == "'=1+1"
    assert spreadsheet_safe("+33 6") == "'+33 6"
    assert spreadsheet_safe("@sum") == "'@sum"
    assert spreadsheet_safe("Zoë") == "Zoë"
    assert spreadsheet_safe("") == ""


def test_chart_of_a_single_day_is_a_png():
    png = render_signups(
        [(date(2023, 6, 1), 1)], ChartLabels("Inscriptions", "Jour", "Total"), "fr"
    )
    assert png.startswith(PNG)


async def test_only_the_largest_sources_and_countries_are_listed(api, admin_bot):
    countries = ["SN", "FR", "MA", "AR", "ES", "CO", "MX", "BE", "CH", "CA", "US", "DE"]
    rows = [
        Seed(2000 + i * 100 + k, f"P{i}-{k}", code, source=f"src{i}")
        for i, code in enumerate(countries)
        for k in range(i + 1)  # src11 and DE the largest
    ]
    await seed(admin_bot.db, rows)
    stats = await admin_bot.app.bot_data["services"].reports.stats()
    assert stats.current == len(rows) == 78
    assert [code for code, _ in stats.countries][:2] == ["DE", "US"]
    assert len(stats.countries) == 10 and stats.other_countries == 1 + 2
    assert stats.sources[0] == ("src11", 12) and len(stats.sources) == 10
    assert stats.other_sources == 1 + 2
    text = text_of(await Participant(api, ADMIN, "en").say("/stats"))
    assert T("en")._("Others: {count}").format(count=3) in text
    assert len(text) < 4096
