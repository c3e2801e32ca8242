"""The rate limiter and the fan-out sender: pacing with a fake clock, priority, 429s, outcomes."""

from __future__ import annotations

import asyncio
import heapq
import random
from bisect import bisect_right
from datetime import UTC, datetime, timedelta

import pytest
from telegram.error import NetworkError, RetryAfter

from bot.ratelimit import BULK, Pacer, PriorityRateLimiter, bulk_args
from bot.sending import deliver, refused
from bot.services.fanout import Claim, Unclaimed, claim_for
from bot.storage import Database, UserRepo
from bot.storage.deliveries import DeliveryRepo, DeliveryStatus
from bot.transport import AnswerTimedOut, ConnectTimedOut, NoAnswer, NotSent
from tests.conftest import direct_bot

# --- Pacer: decisions on a fake clock ---------------------------------------------------------


def test_window_counts_a_slot_until_a_period_after_the_answer():
    pacer = Pacer(rate=3, period=1.0)
    for chat in (1, 2, 3):
        assert pacer.room_in(0.0) == 0
        pacer.start(0.0, chat)
    assert pacer.room_in(0.0) == float("inf")  # all in flight: wait for an answer
    pacer.finish(0.2, 1)
    assert pacer.room_in(0.2) == pytest.approx(1.0)  # free at 1.2, not at 1.0
    assert pacer.room_in(1.2) == 0


def test_bulk_waits_for_a_pause_and_for_the_chat_but_the_window_does_not():
    pacer = Pacer(rate=30, period=1.0, chat_interval=1.0)
    pacer.start(0.0, 7)
    assert pacer.bulk_wait(0.1, 7) == float("inf")  # a request to chat 7 is in flight
    pacer.finish(0.1, 7)
    assert pacer.bulk_wait(0.6, 7) == pytest.approx(0.5)
    assert pacer.bulk_wait(0.6, 8) == 0
    pacer.pause_bulk(0.6, 5)
    assert pacer.bulk_wait(0.6, 8) == pytest.approx(5)
    assert pacer.room_in(0.6) == 0  # interactive requests only look at the window


def simulate(rate: int, seconds: float, jitter: float, workers: int = 16, seed: int = 1):
    """Workers sending bulk, each request to a new chat, through a Pacer; the network delays
    each request and each answer by up to `jitter` seconds. Returns the instants at which
    the server saw the requests."""
    rng = random.Random(seed)
    pacer = Pacer(rate=rate, period=1.0)
    events: list[tuple[float, int, str, int, int]] = []
    seq = 0
    blocked: list[int] = []
    server: list[float] = []
    chats = list(range(workers))  # the chat each worker sends to next

    def push(at: float, kind: str, worker: int, chat: int = 0) -> None:
        nonlocal seq
        seq += 1
        heapq.heappush(events, (at, seq, kind, worker, chat))

    for w in range(workers):
        push(0.0, "try", w)
    while events:
        now, _, kind, worker, chat = heapq.heappop(events)
        if now > seconds:
            break
        if kind == "done":
            pacer.finish(now, chat)
            for w in [worker, *blocked]:
                push(now, "try", w)
            blocked.clear()
            continue
        wait = pacer.bulk_wait(now, chats[worker])
        if wait == float("inf"):
            blocked.append(worker)
        elif wait > 0:
            push(now + wait, "try", worker)
        else:
            pacer.start(now, chats[worker], bulk=True)
            seen = now + rng.uniform(0.0005, jitter)
            server.append(seen)
            push(seen + rng.uniform(0.0005, jitter), "done", worker, chats[worker])
            chats[worker] += workers
    return sorted(server)


def busiest_second(times: list[float]) -> int:
    """The most requests the server saw within any sliding window of one second."""
    return max(i + 1 - bisect_right(times, t - 1.0) for i, t in enumerate(times))


@pytest.mark.parametrize(("jitter", "at_least"), [(0.01, 29.0), (0.05, 27.0), (0.3, 20.0)])
def test_never_more_than_the_rate_within_a_second_whatever_the_jitter(jitter, at_least):
    times = simulate(rate=30, seconds=30.0, jitter=jitter)
    assert busiest_second(times) <= 30
    steady = [t for t in times if 5.0 <= t < 25.0]
    assert len(steady) / 20.0 >= at_least


# --- PriorityRateLimiter: ordering on the real loop (no timing asserted) ------------------------


class Gate:
    """A fake API call that records its order and can be held open."""

    def __init__(self) -> None:
        self.order: list[str] = []
        self.opened = asyncio.Event()
        self.entered = asyncio.Event()

    def call(self, name: str, *, hold: bool = False, fail_first: list[Exception] | None = None):
        async def callback(*_args, **_kwargs):
            self.order.append(name)
            if fail_first:
                raise fail_first.pop(0)
            if hold:
                self.entered.set()
                await self.opened.wait()
            return True

        return callback


async def request(limiter, callback, chat_id, bulk=False):
    return await limiter.process_request(
        callback, (), {}, "sendMessage", {"chat_id": chat_id}, BULK if bulk else None
    )


async def test_a_waiting_reply_to_a_user_goes_before_waiting_bulk():
    limiter = PriorityRateLimiter(rate=1, period=0.05)
    gate = Gate()
    first = asyncio.create_task(request(limiter, gate.call("bulk-1", hold=True), 1, bulk=True))
    await gate.entered.wait()
    bulk = asyncio.create_task(request(limiter, gate.call("bulk-2"), 2, bulk=True))
    await asyncio.sleep(0)  # let it queue first
    reply = asyncio.create_task(request(limiter, gate.call("reply"), 3))
    await asyncio.sleep(0)
    gate.opened.set()
    await asyncio.gather(first, bulk, reply)
    assert gate.order == ["bulk-1", "reply", "bulk-2"]
    assert limiter.stats.interactive == 1 and limiter.stats.bulk == 2


async def test_a_429_pauses_bulk_but_not_replies():
    limiter = PriorityRateLimiter(rate=100)
    gate = Gate()
    flood = [RetryAfter(timedelta(milliseconds=300))]
    bulk = asyncio.create_task(request(limiter, gate.call("bulk", fail_first=flood), 1, bulk=True))
    while not gate.order:
        await asyncio.sleep(0)
    other_bulk = asyncio.create_task(request(limiter, gate.call("bulk-other"), 2, bulk=True))
    reply = asyncio.create_task(request(limiter, gate.call("reply"), 3))
    assert await reply is True
    assert gate.order == ["bulk", "reply"]  # the pause holds bulk only
    await asyncio.gather(bulk, other_bulk)
    assert sorted(gate.order[2:]) == ["bulk", "bulk-other"]
    assert limiter.stats.retry_after == 1


async def test_before_send_runs_only_once_the_request_has_its_slot():
    limiter = PriorityRateLimiter(rate=1, period=0.05)
    gate = Gate()
    claims: list[list[str]] = []

    async def claim() -> None:
        claims.append(list(gate.order))  # what had been sent when it ran

    first = asyncio.create_task(request(limiter, gate.call("held", hold=True), 1, bulk=True))
    await gate.entered.wait()
    second = asyncio.create_task(
        limiter.process_request(
            gate.call("second"), (), {}, "sendMessage", {"chat_id": 2}, bulk_args(claim)
        )
    )
    await asyncio.sleep(0)  # let it queue
    assert claims == []  # waiting for its slot: nothing recorded yet
    gate.opened.set()
    await asyncio.gather(first, second)
    assert claims == [["held"]] and gate.order == ["held", "second"]


async def test_a_request_withdrawn_by_before_send_is_not_sent_and_frees_its_slot():
    limiter = PriorityRateLimiter(rate=1, period=60, chat_interval=60)
    gate = Gate()

    async def refuse() -> None:
        raise Unclaimed

    with pytest.raises(Unclaimed):
        await limiter.process_request(
            gate.call("withdrawn"), (), {}, "sendMessage", {"chat_id": 1}, bulk_args(refuse)
        )
    # Had the slot been used, this would wait a minute (the window, and the chat's interval).
    assert await request(limiter, gate.call("next"), 1, bulk=True) is True
    assert gate.order == ["next"]


async def test_requests_without_a_chat_are_not_limited():
    limiter = PriorityRateLimiter(rate=1, period=60)
    gate = Gate()
    await request(limiter, gate.call("first"), 1)
    # The window is now full for a minute; getMe and answerCallbackQuery still pass.
    result = await limiter.process_request(gate.call("getMe"), (), {}, "getMe", {}, None)
    assert result is True and limiter.stats.unlimited == 1


async def test_a_cancelled_waiter_leaves_the_queue():
    limiter = PriorityRateLimiter(rate=1, period=0.05)
    gate = Gate()
    held = asyncio.create_task(request(limiter, gate.call("held", hold=True), 1))
    await gate.entered.wait()
    waiting = asyncio.create_task(request(limiter, gate.call("gone"), 2))
    await asyncio.sleep(0)
    waiting.cancel()
    gate.opened.set()
    await held
    assert await request(limiter, gate.call("next"), 3) is True
    assert gate.order == ["held", "next"]


# --- against the local Bot API server ---------------------------------------------------------


async def test_bulk_stays_under_the_servers_limit_and_replies_overtake(api):
    api.set_rate_limits(100, None)
    bot = await direct_bot(api, PriorityRateLimiter(rate=100))
    try:
        outcomes = []

        async def fan(chats):
            for chat in chats:
                outcomes.append(await deliver(bot, chat, "news"))

        workers = [asyncio.create_task(fan(range(1000 + w, 1200, 16))) for w in range(16)]
        await api.wait_for(lambda m: m.chat_id is not None and m.chat_id >= 1000, timeout=10)
        reply = await bot.send_message(42, "hello")
        await asyncio.gather(*workers)
    finally:
        await bot.shutdown()
    assert [o.status for o in outcomes] == [DeliveryStatus.SENT] * 200
    assert api.stats["rate_limited"] == 0 and api.stats["429"] == 0
    order = [m.chat_id for m in api.sent]
    assert order.index(42) < len(order) - 1  # not left until the end
    assert reply.message_id


class WatchedClaim(Claim):
    """A real claim on a real database, noting each take and release: how many requests the
    server had seen for the chat then, and the delivery's row right after."""

    def __init__(self, deliveries: DeliveryRepo, user_id: int, api) -> None:
        super().__init__(deliveries, user_id, "broadcast:1", lambda: datetime.now(UTC))
        self.api = api
        self.events: list[tuple[str, int, DeliveryStatus | None]] = []

    async def _note(self, what: str) -> None:
        calls = sum(1 for c in self.api.calls if c.params.get("chat_id") == self.user_id)
        self.events.append((what, calls, await self.deliveries.status(self.user_id, self.kind)))

    async def take(self) -> None:
        await super().take()
        await self._note("take")

    async def release(self) -> None:
        await super().release()
        await self._note("release")


@pytest.fixture
async def deliveries(tmp_path):
    db = Database(tmp_path / "bot.sqlite3")
    await db.open()
    for user_id in (4, 5, 6):
        await UserRepo(db).ensure(user_id, "en")
    yield DeliveryRepo(db)
    await db.close()


async def test_deliver_holds_its_claim_only_while_the_request_is_on_the_wire(api, deliveries):
    """Taken at each turn the limiter grants; a 429 or a 5xx proves the message was not
    delivered, so the claim is given back before the wait (a kill then leaves no row)."""
    bot = await direct_bot(api, PriorityRateLimiter(rate=1000, chat_interval=0.01))
    claim = WatchedClaim(deliveries, 4, api)
    try:
        api.inject("sendMessage", 429, count=1, chat_id=4, retry_after=1)
        api.inject("sendMessage", 502, count=2, chat_id=4)
        outcome = await deliver(bot, 4, "hi", claim=claim, backoff=0.01)
        with pytest.raises(Unclaimed):  # the row is there now: nobody else may send it
            await deliver(bot, 4, "hi", claim=claim_for(deliveries, 4, claim.kind, datetime.now))
    finally:
        await bot.shutdown()
    assert outcome.status is DeliveryStatus.SENT
    pending = DeliveryStatus.PENDING
    assert claim.events == [
        ("take", 0, pending),
        ("release", 1, None),  # the 429
        ("take", 1, pending),
        ("release", 2, None),  # a 502
        ("take", 2, pending),
        ("release", 3, None),
        ("take", 3, pending),  # sent; the caller records the outcome
    ]
    assert claim.held and await deliveries.status(4, claim.kind) is pending


async def test_deliver_keeps_its_claim_on_the_last_failure_and_without_a_server(api, deliveries):
    """A connection refused proves nothing left: the claim is given back before each retry;
    after the last attempt it stays, for the caller to record the failure."""
    bot = await direct_bot(api, PriorityRateLimiter(rate=1000, chat_interval=0.01))
    claim = WatchedClaim(deliveries, 5, api)
    await api.stop()  # connections are refused from now on
    try:
        outcome = await deliver(bot, 5, "hi", claim=claim, attempts=3, backoff=0.01)
    finally:
        await bot.shutdown()
    assert outcome.status is DeliveryStatus.FAILED
    assert [what for what, _, _ in claim.events] == ["take", "release", "take", "release", "take"]
    assert claim.held and await deliveries.status(5, claim.kind) is DeliveryStatus.PENDING


def test_which_errors_prove_that_nothing_was_delivered():
    assert refused(NetworkError("Bad Gateway"))  # a 5xx answer: PTB raises it without a cause
    assert refused(NotSent("aiohttp.ClientConnectorError"))
    assert refused(ConnectTimedOut("Timed out while connecting; the request was not sent"))
    assert not refused(NoAnswer("aiohttp.ServerDisconnectedError"))
    assert not refused(AnswerTimedOut())
    try:  # any other failure of the transport, once the request may have left
        raise NetworkError("Unknown error in HTTP implementation") from RuntimeError("x")
    except NetworkError as exc:
        assert not refused(exc)


async def test_deliver_outcomes(api):
    limiter = PriorityRateLimiter(rate=1000, chat_interval=0.01)
    bot = await direct_bot(api, limiter, read_timeout=0.5)
    try:
        api.block(2)
        blocked = await deliver(bot, 2, "hi")
        api.inject("sendMessage", 400, chat_id=3, description="Bad Request: chat not found")
        gone = await deliver(bot, 3, "hi")
        api.inject("sendMessage", 500, count=2, chat_id=4)
        retried = await deliver(bot, 4, "hi", backoff=0.01)
        api.inject("sendMessage", 502, count=5, chat_id=5)
        failed = await deliver(bot, 5, "hi", attempts=3, backoff=0.01)
        api.inject("sendMessage", 429, count=1, chat_id=6, retry_after=1)  # waited out
        flood = await deliver(bot, 6, "hi")
        api.inject("sendMessage", 400, chat_id=7, description="Bad Request: message is too long")
        refused = await deliver(bot, 7, "hi")
        api.delay("sendMessage", 1.0, count=1, chat_id=8)
        timed_out = await deliver(bot, 8, "hi", backoff=0.01)
        await api.wait_for_call(lambda c: c.params.get("chat_id") == 8)
    finally:
        await bot.shutdown()
    assert blocked.status is DeliveryStatus.BLOCKED and "blocked" in (blocked.error or "")
    assert gone.status is DeliveryStatus.BLOCKED
    assert retried.status is DeliveryStatus.SENT and retried.message_id
    assert failed.status is DeliveryStatus.FAILED
    assert flood.status is DeliveryStatus.SENT
    assert refused.status is DeliveryStatus.FAILED
    # A read timeout may hide a delivered message: not retried, so never sent twice.
    assert timed_out.status is DeliveryStatus.FAILED
    calls = {chat: 0 for chat in range(2, 9)}
    for call in api.calls:
        if call.method == "sendMessage" and call.params.get("chat_id") in calls:
            calls[call.params["chat_id"]] += 1
    assert calls == {2: 1, 3: 1, 4: 3, 5: 3, 6: 2, 7: 1, 8: 1}
