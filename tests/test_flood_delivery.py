"""Sending in a flood: Telegram allows 3 messages a second (429 with retry_after), answers some
requests with a 5xx, and some people blocked the bot. A kill -9 mid-way then a restart must
leave each reachable person with exactly one copy: messages waiting out a refusal are not
claimed, and the one on the wire at the kill is sent again."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

from telegram.error import Forbidden, NetworkError, RetryAfter

from bot.i18n import I18n
from bot.ratelimit import PriorityRateLimiter
from bot.services.promotions import calendar_kind, notice_kind
from bot.storage import Database, RegistrationRepo
from bot.storage.db import to_db
from bot.storage.deliveries import DeliveryRepo, DeliveryStatus
from bot.tg import retry_after_seconds
from tests.conftest import BotProcess, Participant, bot_env, direct_bot, write_event
from tests.test_broadcast import ADMIN, compose, is_report, received, report_counts, seed
from tests.test_waiting_list import GOOD_NEWS, cancel, notices, seed_list

T = I18n()("en")
IDS = list(range(60_001, 60_013))  # 12 registrants
BLOCKED = IDS[7]  # one of them blocked the bot: 11 reachable
SENT = (DeliveryStatus.SENT, None)


def flood(api, seed: int = 7) -> None:
    """Telegram in a flood: 3 messages a second, a tenth of the requests answered 5xx."""
    api.flood(rate=3, error_share=0.1, seed=seed, spare=(ADMIN,))


def refused_without_success(api) -> set[int]:
    """Chats that got a 429 or a 5xx so far, and no message yet: waiting to try again."""
    refused = {c.params.get("chat_id") for c in api.calls if c.status == 429 or c.status >= 500}
    return {chat for chat in refused if chat in IDS and not received(api, chat)}


async def kill_when_a_refused_message_is_tried_again(
    api, process: BotProcess
) -> tuple[int, set[int]]:
    """Kill the bot at a known point: once a 429 is answered, the next request to every
    recipient is held unanswered; the kill comes when the refused message is tried again,
    after its flood wait (every answer read by then is recorded). The held requests are then
    answered 502 (never delivered). Returns the refused recipient, and all those whose
    request was on the wire."""
    refusal = await api.wait_for_call(
        lambda c: c.status == 429 and c.params.get("chat_id") in IDS, timeout=30
    )
    refused = refusal.params["chat_id"]
    holds = {chat: api.hold("sendMessage", chat_id=chat) for chat in IDS}
    await asyncio.wait_for(holds[refused].reached.wait(), timeout=30)
    process.kill()
    for hold in holds.values():
        hold.status = 502
    api.clear_faults()  # answers the held requests, drops the other holds and the flood
    return refused, {chat for chat, hold in holds.items() if hold.reached.is_set()}


async def statuses(path: Path, kind: str) -> dict[int, tuple[DeliveryStatus, str | None]]:
    db = Database(path)
    await db.open()
    try:
        return await DeliveryRepo(db).statuses(kind)
    finally:
        await db.close()


def pending(rows) -> set[int]:
    return {user_id for user_id, (status, _) in rows.items() if status is DeliveryStatus.PENDING}


def assert_one_copy_each(api, rows) -> None:
    for user_id in IDS:
        if user_id == BLOCKED:
            assert received(api, user_id) == []
            assert rows[user_id][0] is DeliveryStatus.BLOCKED
        else:
            assert len(received(api, user_id)) == 1, (user_id, received(api, user_id))
            assert rows[user_id] == SENT, user_id


async def test_a_broadcast_killed_in_a_flood_reaches_each_reachable_person_once(
    api, tmp_path, future_event_file
):
    db_path = tmp_path / "bot.sqlite3"
    await seed(db_path, IDS)
    api.block(BLOCKED)
    process = BotProcess(
        bot_env(api, tmp_path, future_event_file, ADMIN_IDS=str(ADMIN)), tmp_path / "bot.log"
    )
    process.start()
    try:
        admin = Participant(api, ADMIN, "en")
        _, summary = await compose(admin, T._("All registrants"), "Room changed", timeout=30)
        flood(api)
        await api.press_button(ADMIN, summary.message_id, summary.callback_data(T._("Send now")))
        refused, on_the_wire = await kill_when_a_refused_message_is_tried_again(api, process)
        waiting = refused_without_success(api) - on_the_wire
        at_kill = await statuses(db_path, "broadcast:1")
        flood(api)

        process.start()
        report = await api.wait_for(is_report, chat_id=ADMIN, timeout=90)
        assert await process.terminate() == 0
    finally:
        process.kill_if_running()

    # At the kill only requests on the wire were claimed, not those waiting out a refusal.
    assert refused in pending(at_kill), (at_kill, process.log())
    assert pending(at_kill) <= on_the_wire, (at_kill, on_the_wire)
    assert not waiting & set(at_kill)
    rows = await statuses(db_path, "broadcast:1")
    assert_one_copy_each(api, rows)
    assert report_counts(report) == {"sent": 11, "blocked": 1, "failed": 0}
    assert api.stats["429"] > 0


async def test_reminders_killed_in_a_flood_reach_each_reachable_person_once(api, tmp_path):
    """The 1 h reminder fell due while the bot was down: it goes out at start-up, in a flood;
    killed mid-way, it is resumed at the next start."""
    db_path = tmp_path / "bot.sqlite3"
    start = (datetime.now(UTC) + timedelta(minutes=30)).replace(second=0, microsecond=0)
    await seed(db_path, IDS)
    db = Database(db_path)
    await db.open()
    try:  # registered before the reminder was due
        await db.execute(
            "UPDATE registrations SET created_at = ?",
            (to_db(start - timedelta(hours=2)),),
        )
    finally:
        await db.close()
    api.block(BLOCKED)
    flood(api, seed=11)
    event_file = write_event(tmp_path, start, reminders=("1h",))
    process = BotProcess(bot_env(api, tmp_path, event_file), tmp_path / "bot.log")
    process.start()
    try:
        refused, on_the_wire = await kill_when_a_refused_message_is_tried_again(api, process)
        waiting = refused_without_success(api) - on_the_wire
        at_kill = await statuses(db_path, "reminder:1h")
        flood(api, seed=11)

        process.start()
        for user_id in IDS:
            if user_id != BLOCKED:
                await api.wait_for(
                    lambda m: m.method == "sendMessage", chat_id=user_id, timeout=60
                )
        assert await process.terminate() == 0
    finally:
        process.kill_if_running()

    assert refused in pending(at_kill), (at_kill, process.log())
    assert pending(at_kill) <= on_the_wire, (at_kill, on_the_wire)
    assert not waiting & set(at_kill)
    assert_one_copy_each(api, await statuses(db_path, "reminder:1h"))
    assert f"{len(pending(at_kill))} reminder(s) on the wire at a crash: sent again" in (
        process.log()
    )


class RowWatcher(PriorityRateLimiter):
    """The bot's limiter, noting at each bulk request's arrival whether its recipient's
    delivery row exists (it must not: a refused message waits unclaimed)."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self.deliveries: DeliveryRepo | None = None
        self.seen: list[tuple[int, DeliveryStatus | None]] = []

    async def acquire(self, bulk: bool, chat: int | str) -> None:
        if bulk and self.deliveries is not None and chat in IDS:
            assert isinstance(chat, int)
            self.seen.append((chat, await self.deliveries.status(chat, self.kind)))
        await super().acquire(bulk, chat)


async def test_a_message_waiting_out_a_refusal_has_no_delivery_row(
    api, bots, tmp_path, future_event_file
):
    await seed(tmp_path / "bot.sqlite3", IDS)
    api.block(BLOCKED)
    limiter = RowWatcher("broadcast:1")
    bot = await bots.start(future_event_file, rate_limiter=limiter, ADMIN_IDS=str(ADMIN))
    admin = Participant(api, ADMIN, "en")
    _, summary = await compose(admin, T._("All registrants"), "Room changed")
    limiter.deliveries = DeliveryRepo(bot.db)
    flood(api, seed=3)
    await api.press_button(ADMIN, summary.message_id, summary.callback_data(T._("Send now")))
    report = await api.wait_for(is_report, chat_id=ADMIN, timeout=60)
    assert report_counts(report) == {"sent": 11, "blocked": 1, "failed": 0}
    tries = [chat for chat, _ in limiter.seen]
    assert len(tries) > len(IDS)  # some were refused and tried again
    assert {status for _, status in limiter.seen} == {None}
    assert_one_copy_each(api, await DeliveryRepo(bot.db).statuses("broadcast:1"))


# --- the promotion's calendar file ------------------------------------------------------------

START = datetime(2030, 6, 13, 14, 0, tzinfo=UTC)


async def test_the_calendar_file_on_the_wire_at_a_kill_is_sent_again(api, tmp_path):
    """The file that follows the promotion notice is recorded like it: on the wire at a kill,
    it is sent again at the next start, and the notice is not."""
    db_path = tmp_path / "bot.sqlite3"
    await seed_list(db_path, [1901, 1902])
    process = BotProcess(
        bot_env(api, tmp_path, write_event(tmp_path, START, capacity=1)), tmp_path / "bot.log"
    )
    leaving, waiting = Participant(api, 1901, "en"), Participant(api, 1902, "en")
    hold = api.hold("sendDocument", chat_id=waiting.id)
    process.start()
    try:
        await cancel(leaving)
        await asyncio.wait_for(hold.reached.wait(), timeout=30)
        process.kill()
        hold.release()  # a 500: not delivered
        db = Database(db_path)
        await db.open()
        try:
            promoted = await RegistrationRepo(db).live(waiting.id)
            assert promoted is not None
            at_kill = await DeliveryRepo(db).statuses(calendar_kind(promoted.id))
        finally:
            await db.close()

        process.start()
        document = await api.wait_for(
            lambda m: m.method == "sendDocument", chat_id=waiting.id, timeout=30
        )
        assert await process.terminate() == 0
    finally:
        process.kill_if_running()

    assert at_kill == {waiting.id: (DeliveryStatus.PENDING, None)}, process.log()
    assert document.filename and document.filename.endswith(".ics")
    assert notices(api, waiting.id) == 1
    assert [m.method for m in api.messages_to(waiting.id)] == ["sendMessage", "sendDocument"]
    assert await statuses(db_path, notice_kind(promoted.id)) == {waiting.id: SENT}
    assert await statuses(db_path, calendar_kind(promoted.id)) == {waiting.id: SENT}


async def test_a_notice_sent_before_a_kill_gets_its_calendar_file_at_the_next_start(
    api, bots, tmp_path
):
    """What a kill right after the notice's outcome was recorded leaves: the notice sent, no
    row for its file. The next start sends the file alone, once."""
    db_path = tmp_path / "bot.sqlite3"
    await seed_list(db_path, [2001, 2002])
    db = Database(db_path)
    await db.open()
    try:
        registrations = RegistrationRepo(db)
        _, promoted = await registrations.cancel(2001, 1)
        assert promoted is not None and promoted.user_id == 2002
        deliveries = DeliveryRepo(db)
        now = datetime.now(UTC)
        assert await deliveries.claim(2002, notice_kind(promoted.id), now)
        await deliveries.finish(2002, notice_kind(promoted.id), DeliveryStatus.SENT, now)
    finally:
        await db.close()

    bot = await bots.start(write_event(tmp_path, START, capacity=1))
    document = await api.wait_for(lambda m: m.method == "sendDocument", chat_id=2002)
    assert document.filename and document.filename.endswith(".ics")
    await bot.close()
    await bots.start(write_event(tmp_path, START, capacity=1))  # and nothing more after that
    await Participant(api, 2001, "en").say("/help")
    assert [m.method for m in api.messages_to(2002)] == ["sendDocument"]
    assert not any(GOOD_NEWS in (m.plain_text or m.text or "") for m in api.messages_to(2002))
    assert await statuses(db_path, calendar_kind(promoted.id)) == {2002: SENT}


# --- the local server in a flood ----------------------------------------------------------------


async def test_the_local_server_floods_as_telegram_does(api):
    """A rate with 429 and retry_after, a share of 5xx never acted on, and a share of users who
    blocked the bot for good; spared chats get neither fault."""
    flood_state = api.flood(rate=3, error_share=0.2, blocked_share=0.1, seed=5, spare=(42,))
    bot = await direct_bot(api, None)
    answers: dict[int, list[str]] = {}
    try:
        for attempt in range(2):
            for chat in [*range(70_000, 70_100), 42]:
                try:
                    await bot.send_message(chat, f"try {attempt}")
                    answer = "ok"
                except RetryAfter as exc:
                    assert retry_after_seconds(exc) >= 1
                    answer = "429"
                except Forbidden:
                    answer = "403"
                except NetworkError:
                    answer = "5xx"
                answers.setdefault(chat, []).append(answer)
    finally:
        await bot.shutdown()
    blocked = {chat for chat, got in answers.items() if "403" in got}
    assert 3 <= len(blocked) <= 20
    assert all(got == ["403", "403"] for chat, got in answers.items() if chat in blocked)
    assert "403" not in answers[42] and "5xx" not in answers[42]
    seen = [a for got in answers.values() for a in got]
    assert seen.count("5xx") == flood_state.errors > 0
    assert seen.count("429") == api.stats["429"] > 0
    # The 5xx and the 429s were never acted on; only the answered ones were delivered.
    assert len([m for m in api.sent if m.method == "sendMessage"]) == seen.count("ok") > 0


async def test_calendar_files_sent_before_they_were_recorded_are_not_sent_again(tmp_path):
    """Schema 4 records the calendar files of notices sent by an older bot (which sent them
    unrecorded), so an upgraded bot does not send them again at start-up."""
    await seed_list(tmp_path / "old.sqlite3", [2101, 2102])
    db = Database(tmp_path / "old.sqlite3")
    await db.open()
    try:
        _, promoted = await RegistrationRepo(db).cancel(2101, 1)
        assert promoted is not None
        deliveries = DeliveryRepo(db)
        now = datetime.now(UTC)
        assert await deliveries.claim(2102, notice_kind(promoted.id), now)
        await deliveries.finish(2102, notice_kind(promoted.id), DeliveryStatus.SENT, now)
        await db.conn.execute("PRAGMA user_version = 7")  # written by a bot before schema 8
        await db.close()
        await db.open()
        assert await deliveries.statuses(calendar_kind(promoted.id)) == {
            2102: (DeliveryStatus.SKIPPED, "not recorded before schema 8")
        }
        assert await deliveries.sent_without("promoted:", ":calendar") == []
    finally:
        await db.close()
