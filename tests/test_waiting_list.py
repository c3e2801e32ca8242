"""Capacity and the waiting list: concurrent sign-ups and cancellations, promotion, notice."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import icalendar
import pytest

from bot.event import load_event
from bot.i18n import I18n
from bot.ratelimit import PriorityRateLimiter
from bot.services.event_state import FixedEvent
from bot.services.promotions import EVENT_ENDED, PromotionService, notice_kind
from bot.services.registration import RegistrationService
from bot.storage import Database, RegistrationData, RegistrationRepo, UserRepo
from bot.storage.broadcasts import BroadcastRepo
from bot.storage.deliveries import DeliveryRepo, DeliveryStatus
from tests.conftest import BotProcess, Participant, bot_env, write_event

T = I18n()
START = (datetime.now(UTC) + timedelta(days=15)).replace(minute=0, second=0, microsecond=0)
DATA = RegistrationData("Kofi Mensah", "kofi@example.org", "GH", None, "pes", "en")


def text_of(message) -> str:
    return message.plain_text or message.text or message.caption or ""


@pytest.fixture
async def db(tmp_path: Path):
    database = Database(tmp_path / "waiting.sqlite3")
    await database.open()
    yield database
    await database.close()


def service(db: Database, tmp_path: Path, capacity: int, **kwargs) -> RegistrationService:
    event = load_event(write_event(tmp_path, START, capacity=capacity, name=f"e{capacity}.toml"))
    return RegistrationService(RegistrationRepo(db), UserRepo(db), FixedEvent(event), **kwargs)


async def replay(db: Database, capacity: int) -> dict[str, int]:
    """Check the whole history against the rules; returns the count of each event kind.

    Transactions are serialised, so the log in id order is the order things happened: a seat
    is never over-filled, newcomers never pass the waiting, every cancellation of an active
    registration with someone waiting is followed by the promotion of the first waiting.
    """
    rows = await db.fetchall("SELECT registration_id, kind FROM registration_events ORDER BY id")
    active: set[int] = set()
    waiting: list[int] = []
    expect_promotion = False
    kinds: dict[str, int] = {}
    for reg, kind in rows:
        kinds[kind] = kinds.get(kind, 0) + 1
        if expect_promotion:
            assert kind == "promoted" and reg == waiting[0], (reg, kind, waiting)
            expect_promotion = False
        if kind == "registered":
            assert not waiting and len(active) < capacity
            active.add(reg)
        elif kind == "waitlisted":
            assert waiting or len(active) >= capacity
            waiting.append(reg)
        elif kind == "promoted":
            assert reg == waiting.pop(0) and len(active) < capacity
            active.add(reg)
        elif kind == "cancelled":
            if reg in active:
                active.remove(reg)
                expect_promotion = bool(waiting)
            else:
                waiting.remove(reg)
    assert not expect_promotion
    live = await db.fetchall(
        "SELECT id, status FROM registrations WHERE status != 'cancelled' ORDER BY id"
    )
    assert {r for r, s in live if s == "active"} == active
    assert [r for r, s in live if s == "waiting"] == waiting
    return kinds


async def test_concurrent_sign_ups_and_cancellations_never_overfill(db, tmp_path):
    capacity = 5
    registrations = service(db, tmp_path, capacity)
    signups = await asyncio.gather(*(registrations.register(u, DATA, "en") for u in range(1, 31)))
    statuses = [s.registration.status for s in signups]
    assert statuses.count("active") == capacity and statuses.count("waiting") == 25
    positions = sorted(s.position for s in signups if s.position is not None)
    assert positions == list(range(1, 26))
    assert all(s.created for s in signups)

    # Cancel 4 active and 6 waiting, while 8 newcomers and 3 duplicates arrive, all at once.
    rng = random.Random(3)
    active = [s.registration.user_id for s in signups if s.registration.status == "active"]
    waiting = [s.registration.user_id for s in signups if s.registration.status == "waiting"]
    leaving = rng.sample(active, 4) + rng.sample(waiting, 6)
    calls = [registrations.cancel(u) for u in leaving]
    calls += [registrations.register(u, DATA, "fr") for u in range(100, 108)]
    staying = [u for u in active + waiting if u not in leaving]
    calls += [registrations.register(u, DATA, "es") for u in staying[:3]]
    rng.shuffle(calls)
    await asyncio.gather(*calls)

    kinds = await replay(db, capacity)
    # At least the 4 seats freed; more when someone promoted meanwhile then cancelled too.
    assert kinds["promoted"] >= 4
    assert kinds["cancelled"] == 10
    count = await db.fetchone(
        "SELECT SUM(status = 'active'), SUM(status = 'waiting') FROM registrations"
    )
    assert tuple(count) == (capacity, 30 - 10 + 8 - capacity)

    # A second storm: everyone still live cancels, concurrently, in random order.
    live = [
        r[0]
        for r in await db.fetchall("SELECT user_id FROM registrations WHERE status != 'cancelled'")
    ]
    rng.shuffle(live)
    outcomes = await asyncio.gather(*(registrations.cancel(u) for u in live))
    kinds2 = await replay(db, capacity)
    promoted = [o.promoted.user_id for o in outcomes if o.promoted is not None]
    # What each cancel reported matches the log, and nobody was promoted twice.
    assert len(promoted) == len(set(promoted)) == kinds2["promoted"] - kinds["promoted"]
    left = await db.fetchone("SELECT COUNT(*) FROM registrations WHERE status != 'cancelled'")
    assert tuple(left) == (0,)


async def test_cancelling_twice_at_once_promotes_once(db, tmp_path):
    registrations = service(db, tmp_path, 1)
    for user_id in (1, 2, 3):
        await registrations.register(user_id, DATA, "en")
    first, second = await asyncio.gather(registrations.cancel(1), registrations.cancel(1))
    assert [o.cancelled is not None for o in (first, second)].count(True) == 1
    promoted = [o.promoted.user_id for o in (first, second) if o.promoted]
    assert promoted == [2]
    waiting = await registrations.current(3)
    assert waiting is not None and await registrations.position(waiting) == 1
    await replay(db, 1)


async def test_raised_capacity_fills_seats_and_lowered_capacity_holds_them(db, tmp_path):
    small = service(db, tmp_path, 2)
    for user_id in range(1, 6):
        await small.register(user_id, DATA, "en")
    bigger = service(db, tmp_path, 4)
    assert [r.user_id for r in await bigger.fill_free_seats()] == [3, 4]
    assert await bigger.fill_free_seats() == []
    newcomer = await bigger.register(6, DATA, "en")  # behind user 5, who still waits
    assert newcomer.registration.status == "waiting" and newcomer.position == 2
    lower = service(db, tmp_path, 3)
    outcome = await lower.cancel(1)  # 3 active left, the new capacity: no promotion
    assert outcome.cancelled is not None and outcome.promoted is None
    outcome = await lower.cancel(2)  # 2 active < 3: the first waiting gets the seat
    assert outcome.promoted is not None and outcome.promoted.user_id == 5


async def test_nothing_is_promoted_after_the_event(db, tmp_path):
    registrations = service(db, tmp_path, 1)
    await registrations.register(1, DATA, "en")
    await registrations.register(2, DATA, "en")
    after = service(db, tmp_path, 2, clock=lambda: START + timedelta(days=1))
    assert await after.fill_free_seats() == []


# --- end to end -------------------------------------------------------------------------------


async def sign_up(user: Participant, lang: str, country: str):
    t = T(lang)
    await user.say("/register")
    for answer in ("Awa Diop", "awa@example.org", country, "-", "1", "1"):
        q = await user.say(answer)
    q = await user.answer(q, t._("Yes, I agree"))
    return await user.answer(q, t._("Confirm"))


async def test_third_registrant_waits_and_is_promoted_in_their_language(api, bots, tmp_path):
    url = "https://ilo.zoom.us/j/777"
    bot = await bots.start(write_event(tmp_path, START, capacity=2, join_url=url))
    ana, bea, carlos = (
        Participant(api, 1401, "en"),
        Participant(api, 1402, "fr"),
        Participant(api, 1403, "es"),
    )
    for user, lang, country in ((ana, "en", "Ghana"), (bea, "fr", "Sénégal")):
        assert T(lang)._("You are registered.") in text_of(await sign_up(user, lang, country))
        assert (await user.next()).method == "sendDocument"
    t = T("es")
    waiting = await sign_up(carlos, "es", "Colombia")
    expected = t._(
        "The session is full: you are number {position} on the waiting list. "
        "We will tell you here as soon as a place frees up."
    ).format(position=1)
    assert expected in text_of(waiting) and url not in text_of(waiting)
    mine = await carlos.say("/myregistration")  # no calendar file came before it
    assert expected in text_of(mine)

    ask = await ana.say("/unregister")
    await ana.tap(ask, T("en")._("Yes, cancel my registration"))
    notice = await carlos.next()
    body = text_of(notice)
    assert t._("Good news: a place has freed up and you are now registered for the webinar.") in (
        body
    )
    assert bot.event.text("es").title in body and t.date(START, bot.event.tz) in body
    assert "Bogotá" in body and url in body
    document = await carlos.next()
    assert document.method == "sendDocument"
    vevent = icalendar.Calendar.from_ical(document.document).walk("VEVENT")[0]
    assert str(vevent["URL"]) == url and str(vevent["SUMMARY"]) == bot.event.text("es").title
    repo = RegistrationRepo(bot.db)
    promoted = await repo.live(1403)
    assert promoted is not None and promoted.status == "active"
    assert await repo.history(promoted.id) == ["waitlisted", "promoted"]
    assert T("es")._("You are registered.") in text_of(await carlos.say("/myregistration"))


async def test_a_blocked_promoted_user_does_not_trouble_the_canceller(api, bots, tmp_path):
    bot = await bots.start(write_event(tmp_path, START, capacity=1))
    first, second = Participant(api, 1501, "en"), Participant(api, 1502, "fr")
    await sign_up(first, "en", "Ghana")
    await first.next()  # the calendar file
    await sign_up(second, "fr", "Sénégal")
    api.block(1502)
    ask = await first.say("/unregister")
    done = await first.tap(ask, T("en")._("Yes, cancel my registration"))
    assert T("en")._(
        "Your registration has been cancelled. You can register again at any time with /register."
    ) in text_of(done)
    promoted = await RegistrationRepo(bot.db).live(1502)
    assert promoted is not None and promoted.status == "active"
    reply = await first.say("/help")  # nothing else (no error message) came in between
    assert T("en")._("Here is what I can do:") in text_of(reply)
    row = await bot.db.fetchone(
        "SELECT status FROM deliveries WHERE user_id = ? AND kind = ?",
        (1502, f"promoted:{promoted.id}"),
    )
    assert row is not None and row[0] == "blocked"  # the notice is recorded like a reminder


async def test_seats_added_while_stopped_go_to_the_waiting_list_at_start(api, bots, tmp_path):
    one = write_event(tmp_path, START, capacity=1, name="one.toml")
    bot = await bots.start(one)
    first, second = Participant(api, 1601, "en"), Participant(api, 1602, "es")
    await sign_up(first, "en", "Ghana")
    await sign_up(second, "es", "Colombia")
    await bot.close()
    await bots.start(write_event(tmp_path, START, capacity=2, name="two.toml"))
    notice = await second.next()
    assert T("es")._(
        "Good news: a place has freed up and you are now registered for the webinar."
    ) in text_of(notice)


# --- promotion notices across a kill -9 -------------------------------------------------------

GOOD_NEWS = T("en")._(
    "Good news: a place has freed up and you are now registered for the webinar."
)


async def seed_list(path: Path, user_ids: list[int], capacity: int = 1) -> None:
    """Registrants in this order, straight into the database: the first `capacity` active."""
    db = Database(path)
    await db.open()
    try:
        for user_id in user_ids:
            await UserRepo(db).ensure(user_id, "en")
            await RegistrationRepo(db).create(user_id, DATA, "en", None, capacity)
    finally:
        await db.close()


async def notice_rows(path: Path, user_id: int) -> dict[str, tuple[str, str | None]]:
    """The user's delivery rows: kind → (status, error)."""
    db = Database(path)
    await db.open()
    try:
        rows = await db.fetchall(
            "SELECT kind, status, error FROM deliveries WHERE user_id = ?", (user_id,)
        )
    finally:
        await db.close()
    return {kind: (status, error) for kind, status, error in rows}


async def promoted_notice_kind(path: Path, user_id: int) -> str:
    """The delivery kind of the promotion notice of `user_id`, checked to be promoted."""
    db = Database(path)
    await db.open()
    try:
        promoted = await RegistrationRepo(db).live(user_id)
    finally:
        await db.close()
    assert promoted is not None and promoted.status == "active"
    return notice_kind(promoted.id)


def notices(api, user_id: int) -> int:
    return sum(GOOD_NEWS in text_of(m) for m in api.messages_to(user_id))


async def cancel(user: Participant) -> None:
    ask = await user.say("/unregister", timeout=30)
    done = await user.tap(ask, T("en")._("Yes, cancel my registration"))
    assert T("en")._(
        "Your registration has been cancelled. You can register again at any time with /register."
    ) in text_of(done)


class WatchedLimiter(PriorityRateLimiter):
    """The bot's limiter, telling when a bulk request to `chat` starts waiting for its slot."""

    def __init__(self, chat: int) -> None:
        super().__init__()
        self.chat = chat
        self.queued = asyncio.Event()

    async def acquire(self, bulk: bool, chat: int | str) -> None:
        if bulk and chat == self.chat:
            self.queued.set()
        await super().acquire(bulk, chat)


async def test_a_notice_is_claimed_only_when_its_turn_comes(api, bots, tmp_path):
    """While the notice waits for the rate limiter it has no delivery row, so a kill then
    leaves it to the next start."""
    await seed_list(tmp_path / "bot.sqlite3", [1651, 1652])
    leaving, waiting = Participant(api, 1651, "en"), Participant(api, 1652, "en")
    limiter = WatchedLimiter(waiting.id)
    bot = await bots.start(write_event(tmp_path, START, capacity=1), rate_limiter=limiter)
    await limiter.acquire(False, waiting.id)  # a message to that chat under way: the notice waits
    await cancel(leaving)
    await limiter.queued.wait()
    promoted = await RegistrationRepo(bot.db).live(waiting.id)
    assert promoted is not None and promoted.status == "active"
    kind = notice_kind(promoted.id)
    deliveries = DeliveryRepo(bot.db)
    assert await deliveries.statuses(kind) == {}  # a kill now: nothing claimed, sent on restart
    limiter.release(waiting.id, sent=False)
    await api.wait_for(lambda m: m.method == "sendDocument", chat_id=waiting.id)
    assert await deliveries.statuses(kind) == {waiting.id: (DeliveryStatus.SENT, None)}
    assert notices(api, waiting.id) == 1


async def test_a_notice_on_the_wire_at_a_kill_is_sent_again_with_its_file(api, tmp_path):
    """Claimed and on the wire at the kill, so maybe delivered, maybe not: the next start sends
    it again (here it had not arrived), then its calendar file."""
    db_path = tmp_path / "bot.sqlite3"
    await seed_list(db_path, [1701, 1702])
    process = BotProcess(
        bot_env(api, tmp_path, write_event(tmp_path, START, capacity=1)), tmp_path / "bot.log"
    )
    leaving, waiting = Participant(api, 1701, "en"), Participant(api, 1702, "en")
    hold = api.hold("sendMessage", chat_id=waiting.id)  # the notice, once it has its slot
    process.start()
    try:
        await cancel(leaving)
        await asyncio.wait_for(hold.reached.wait(), timeout=30)
        process.kill()
        hold.release()  # a 500: not delivered
        at_kill = await notice_rows(db_path, waiting.id)

        process.start()
        await api.wait_for(lambda m: m.method == "sendDocument", chat_id=waiting.id, timeout=30)
        assert await process.terminate() == 0
    finally:
        process.kill_if_running()

    kind = await promoted_notice_kind(db_path, waiting.id)
    assert at_kill == {kind: ("pending", None)}, process.log()
    assert await notice_rows(db_path, waiting.id) == {
        kind: ("sent", None),
        kind + ":calendar": ("sent", None),
    }
    assert notices(api, waiting.id) == 1
    assert "1 promotion message(s) on the wire at a crash: sent again" in process.log()


async def test_a_notice_waiting_for_its_turn_at_a_kill_is_sent_once_after_restart(api, tmp_path):
    """A notice that has not had its slot at the kill was not claimed: the next start sends
    it, once. (It cannot have had its slot here; whether it was already waiting for it or
    about to ask makes no difference: see `test_a_notice_is_claimed_only_when_its_turn_comes`.)
    """
    db_path = tmp_path / "bot.sqlite3"
    await seed_list(db_path, [1801, 1802])
    admin = Participant(api, 900, "en")
    db = Database(db_path)
    await db.open()
    try:  # a broadcast to the waiting list, to be resumed at start-up
        broadcast = await BroadcastRepo(db).create(
            admin.id, "waiting", {"*": "Still waiting"}, datetime.now(UTC)
        )
    finally:
        await db.close()
    assert broadcast is not None
    process = BotProcess(
        bot_env(api, tmp_path, write_event(tmp_path, START, capacity=1)), tmp_path / "bot.log"
    )
    leaving, waiting = Participant(api, 1801, "en"), Participant(api, 1802, "en")
    # The broadcast message to the waiting registrant stays in flight: a bulk message to that
    # chat (the promotion notice) waits for it to complete, and so never gets its slot.
    hold = api.hold("sendMessage", chat_id=waiting.id)
    process.start()
    try:
        await asyncio.wait_for(hold.reached.wait(), timeout=30)
        await cancel(leaving)  # the promotion is committed before this answer
        process.kill()
        hold.release()
        at_kill = await notice_rows(db_path, waiting.id)

        process.start()
        notice = await api.wait_for(
            lambda m: GOOD_NEWS in text_of(m), chat_id=waiting.id, timeout=30
        )
        calendar = await api.wait_for(
            lambda m: m.method == "sendDocument", chat_id=waiting.id, timeout=30
        )
        assert await process.terminate() == 0
    finally:
        process.kill_if_running()

    kind = await promoted_notice_kind(db_path, waiting.id)
    assert at_kill == {broadcast.kind: ("pending", None)}, process.log()  # no notice claimed
    # The broadcast message on the wire at the kill is to do again, but its recipient has
    # left its audience (the waiting list) since: it is not sent.
    assert await notice_rows(db_path, waiting.id) == {
        kind: ("sent", None),
        kind + ":calendar": ("sent", None),
    }
    assert notices(api, waiting.id) == 1 and notice.message_id < calendar.message_id
    assert "1 promotion notice(s) and 0 calendar file(s) not sent before a restart" in (
        process.log()
    )


async def test_promotions_from_before_notices_were_recorded_are_not_told_again(db, tmp_path):
    """Schema 3 records the notices of earlier promotions; later ones without a row (a kill
    before the notice left) are the ones start-up sends."""
    registrations = RegistrationRepo(db)
    for user_id in (1, 2, 3):
        await UserRepo(db).ensure(user_id, "en")
        await registrations.create(user_id, DATA, "en", None, 1)
    _, earlier = await registrations.cancel(1, 1)
    assert earlier is not None and earlier.user_id == 2
    # A database written before schema 3, by a bot that did not record promotion notices.
    await db.conn.execute("ALTER TABLE users DROP COLUMN timezone_place")  # added by schema 5
    await db.conn.execute("PRAGMA user_version = 2")
    await db.close()
    await db.open()
    kind = notice_kind(earlier.id)
    assert await DeliveryRepo(db).statuses(kind) == {
        2: (DeliveryStatus.SKIPPED, "not recorded before schema 3")
    }
    _, later = await registrations.cancel(2, 1)
    assert later is not None and later.user_id == 3
    event = load_event(write_event(tmp_path, START, capacity=1))
    promotions = PromotionService(registrations, DeliveryRepo(db), FixedEvent(event))
    assert [r.id for r in await promotions.recover()] == [later.id]


async def test_after_the_event_an_untold_promotion_is_recorded_skipped(db, tmp_path):
    registrations = RegistrationRepo(db)
    for user_id in (1, 2):
        await UserRepo(db).ensure(user_id, "en")
        await registrations.create(user_id, DATA, "en", None, 1)
    _, promoted = await registrations.cancel(1, 1)
    assert promoted is not None
    event = load_event(write_event(tmp_path, START, capacity=1))
    after = PromotionService(
        registrations,
        DeliveryRepo(db),
        FixedEvent(event),
        clock=lambda: event.end + timedelta(days=1),
    )
    assert await after.recover() == []
    assert await DeliveryRepo(db).statuses(notice_kind(promoted.id)) == {
        2: (DeliveryStatus.SKIPPED, EVENT_ENDED)
    }
