"""Crash drill: SIGKILL the bot at random moments while users register and while a broadcast
runs; restart it each time; count what was lost, duplicated or stuck.

    python -m bench.crash_drill [--kills 20] [--recipients 1000] [--seed 1]
        [--flood-recipients 1000 --flood-kills 20 --flood-rate 3] [--phases register,...]

Half the kills (rounded down) land while participants register, the rest while a broadcast
is being sent. Kill moments are drawn (seeded) between 0.2 and 2.5 s after the bot is back
up (after 3 s of sending for the first broadcast kill), so they fall while updates are
being handled and messages are in flight. After each kill the bot is started again at once.
The local server enforces 30 messages/s, as Telegram does.

*Registration phase*: a new participant starts the eight-step form every ``--arrival``
seconds (in en, fr, es) as long as kills remain; each answers the question it receives after
a short pause. A participant who pressed a button on a copy of a question that a restarted bot
sent again gets "this button has expired" and presses the button on the newest copy, as a
person would. Counted:

* unanswered: an update of a participant that never got its answer;
* stuck: a participant who could not finish the form (a conversation not resumable);
* registrations lost (confirmed, not in the database) and duplicated (two live rows);
* duplicates: an answer sent twice (the same message again), and confirmations answered
  "you are already registered" because the registration was stored before the kill but the
  update was not yet marked handled.

*Broadcast phase*: ``--recipients`` registrants (seeded before the bot starts) get a broadcast
an admin starts with /broadcast; counted per recipient: copies received (0, 1, 2+), and the
database's record for each. A delivery is claimed only while its request is on the wire; the
bot cannot know whether one on the wire at a kill arrived, so it sends it again after the
restart: at most that many recipients can get a second copy, and nobody is missed.

*Flood phase*: Telegram in a flood, on a fresh server, database and bot: ``--flood-rate``
messages a second overall (more get a 429 with ``retry_after``), ``--flood-errors`` of the
requests answered with a 5xx, ``--flood-blocked`` of the recipients having blocked the bot
(403), while a broadcast to ``--flood-recipients`` registrants runs through
``--flood-kills`` kills spread over its expected length. Counted: missed (neither received
nor recorded blocked or refused), received twice, and the requests on the wire at the kills
(the 'pending' rows a kill left, which are sent again), which bound the second copies.

The design can answer an update twice only if the kill lands after Telegram accepted a reply
and before the update's handled id is committed: those are counted, not hidden.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import re
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import (
    COUNTRY,
    LANGS,
    BotProcess,
    Replies,
    User,
    bot_env,
    header,
    start_server,
    write_event,
)
from bench.seed import seed_with_repos
from bot.i18n import I18n
from bot.localapi import ApiCall, LocalBotApi, SentMessage
from bot.storage import Database, RegistrationRepo
from bot.storage.deliveries import DeliveryRepo, DeliveryStatus

ADMIN = 42
FIRST_RECIPIENT = 10_000_000
MARK = "DRILL-BROADCAST"
FLOOD_MARK = "DRILL-FLOOD"
REPLY_TIMEOUT = 60.0
MAX_RETAPS = 3
I18N = I18n()


def text(message: SentMessage) -> str:
    return message.plain_text or message.text or message.caption or ""


def fingerprint(message: SentMessage) -> tuple[str, str, str]:
    return (message.method, text(message), message.filename or "")


def nth_call(method: str, n: int) -> Callable[[ApiCall], bool]:
    """A predicate true at the n-th call of ``method`` (``wait_for_call`` scans in order)."""
    seen = 0

    def match(call: ApiCall) -> bool:
        nonlocal seen
        if call.method == method:
            seen += 1
        return seen >= n

    return match


@dataclass
class Drill:
    api: LocalBotApi
    replies: Replies
    bot: BotProcess
    rng: random.Random
    starts: int = 0
    kill_times: list[float] = field(default_factory=list)
    in_form_at_kills: int = 0
    active: set[int] = field(default_factory=set)

    async def start(self) -> float:
        """Start the bot; returns once it polls (its deleteWebhook call), with the time."""
        self.starts += 1
        self.bot.start()
        try:
            await self.api.wait_for_call(nth_call("deleteWebhook", self.starts), timeout=60)
        except TimeoutError:
            raise SystemExit(f"the bot did not come up; its log:\n{self.bot.log_tail()}") from None
        return time.monotonic()

    async def kill_after(self, low: float, high: float) -> None:
        await asyncio.sleep(self.rng.uniform(low, high))
        self.bot.kill()
        self.kill_times.append(time.monotonic())
        self.in_form_at_kills += len(self.active)
        await self.start()


@dataclass
class Participant:
    """A participant going through the form, checking each answer and counting anomalies."""

    user: User
    drill: Drill
    unanswered: int = 0
    retaps: int = 0
    finished: str = ""  # "confirmed", "already registered", or "" (stuck)
    waiting_for: str = ""  # what it waited for in vain, when stuck

    @property
    def t(self):  # noqa: ANN201 - a Translator
        return I18N(self.user.lang)

    def step(self, k: int) -> str:
        return self.t._("Step {step} of {total}").format(step=k, total=8)

    async def _reply(self, index: int, expected: Callable[[SentMessage], bool]) -> SentMessage:
        """The first message from ``index`` on that is the expected answer."""
        self.waiting_for = getattr(expected, "marker", "?")
        while True:
            message = await self.drill.replies.after(
                self.user.id, index, REPLY_TIMEOUT, answers=True
            )
            index += 1
            if expected(message):
                return message

    async def say(self, value: str, expected: Callable[[SentMessage], bool]) -> SentMessage:
        await self.user.think()  # type: ignore[misc]
        index = self.drill.replies.mark(self.user.id, answers=True)
        await self.drill.api.send_text(self.user.id, value)
        return await self._reply(index, expected)

    async def tap(
        self, question: SentMessage, prefix: str, expected: Callable[[SentMessage], bool]
    ) -> SentMessage:
        """Press the button; on "expired" press it again on the newest copy of the question."""
        await self.user.think()  # type: ignore[misc]
        api = self.drill.api
        tries = 0
        while True:
            index = self.drill.replies.mark(self.user.id, answers=True)
            update_id = await api.press_button(
                self.user.id, question.message_id, self.user.button(question, prefix)
            )
            reply = asyncio.ensure_future(self._reply(index, expected))
            answered = asyncio.ensure_future(
                api.wait_for_call(
                    lambda c, q=f"cq{update_id}": (
                        c.method == "answerCallbackQuery"
                        and c.params.get("callback_query_id") == q
                        and c.params.get("show_alert") is True
                    ),
                    timeout=REPLY_TIMEOUT,
                )
            )
            await asyncio.wait({reply, answered}, return_when=asyncio.FIRST_COMPLETED)
            if reply.done():
                answered.cancel()
                with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                    await answered
                return reply.result()
            reply.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reply
            answered.result()  # raises TimeoutError when neither came
            self.retaps += 1
            tries += 1
            if tries > MAX_RETAPS:
                self.waiting_for += f" (button still 'expired' after {MAX_RETAPS} presses)"
                raise TimeoutError
            question = next(
                m
                for m in reversed(self.drill.replies.answers_by_chat[self.user.id])
                if any(str(b.get("callback_data", "")).startswith(prefix) for b in m.buttons)
            )

    async def register(self) -> None:
        t, uid = self.t, self.user.id
        self.drill.active.add(uid)
        try:

            def has(marker: str) -> Callable[[SentMessage], bool]:
                def match(message: SentMessage) -> bool:
                    return marker in text(message)

                match.marker = marker  # type: ignore[attr-defined]
                return match

            done_texts = (
                t._("You are registered."),
                t._("You are already registered for this webinar."),
            )
            q = await self.say("/register", has(self.step(1)))
            q = await self.say(f"Participant {uid}", has(self.step(2)))
            q = await self.say(f"p{uid}@example.org", has(self.step(3)))
            q = await self.say(COUNTRY[self.user.lang], has(self.step(4)))
            q = await self.tap(q, "reg:org:skip", has(self.step(5)))
            q = await self.tap(q, "reg:aff:pes", has(self.step(6)))
            q = await self.say("2", has(self.step(7)))
            q = await self.tap(q, "reg:consent:yes", has(self.step(8)))
            q = await self.tap(
                q, "reg:confirm:yes", lambda m: any(d in text(m) for d in done_texts)
            )
            self.finished = "confirmed" if done_texts[0] in text(q) else "already registered"
        except TimeoutError:
            self.unanswered += 1
        finally:
            self.drill.active.discard(uid)

    def duplicates(self) -> int:
        """Messages to this participant identical to an earlier one (an answer sent twice)."""
        seen: Counter[tuple[str, str, str]] = Counter(
            fingerprint(m) for m in self.drill.replies.by_chat[self.user.id]
        )
        return sum(n - 1 for n in seen.values())


async def registration_phase(drill: Drill, kills: int, arrival: float) -> list[Participant]:
    participants: list[Participant] = []
    tasks: list[asyncio.Task[None]] = []

    async def pause() -> None:
        await asyncio.sleep(drill.rng.uniform(0.0, 0.5))

    async def arrive(stop: asyncio.Event) -> None:
        number = 0
        while not stop.is_set():
            user = User(drill.api, drill.replies, 100_000 + number, LANGS[number % 3], think=pause)
            participant = Participant(user, drill)
            participants.append(participant)
            tasks.append(asyncio.create_task(participant.register()))
            number += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), arrival)

    stop = asyncio.Event()
    arrivals = asyncio.create_task(arrive(stop))
    for _ in range(kills):
        await drill.kill_after(0.2, 2.5)
    stop.set()
    await arrivals
    await asyncio.gather(*tasks)
    return participants


async def start_broadcast(drill: Drill, mark: str, timeout: float) -> asyncio.Future[SentMessage]:
    """Start a broadcast to all as the admin; the future of its final report."""
    api, replies = drill.api, drill.replies
    admin = User(api, replies, ADMIN, "en")
    question = await admin.say("/broadcast")
    mode = await admin.tap(question, "bc:aud:all")
    await admin.tap(mode, "bc:mode:one")
    index = replies.mark(ADMIN)
    await admin.say(f"<b>{mark}</b> See you at the webinar.")
    summary = await replies.after(ADMIN, index + 2)
    report_at = replies.mark(ADMIN)
    await admin.press(summary, "bc:send")
    finished = I18N("en")._("Finished: {done} of {total} recipients.").split("{")[0]
    return asyncio.ensure_future(_wait_text(replies, ADMIN, report_at, finished, timeout))


async def broadcast_phase(drill: Drill, kills: int, recipients: int) -> tuple[bool, int]:
    """Start a broadcast as the admin, kill during it; returns (report received, kills)."""
    report = await start_broadcast(drill, MARK, timeout=recipients / 10 + 300)
    done_kills = 0
    low = min(3.0, recipients / 60)  # let the first kill find messages in flight
    while done_kills < kills and not report.done():
        await drill.kill_after(low, low + 2.3)
        low = 0.2
        done_kills += 1
    try:
        await report
    except TimeoutError:
        return False, done_kills
    return True, done_kills


async def _wait_text(
    replies: Replies, chat_id: int, index: int, marker: str, timeout: float
) -> SentMessage:
    async with asyncio.timeout(timeout):
        while True:
            message = await replies.after(chat_id, index, timeout)
            index += 1
            if marker in text(message):
                return message


async def check_database(
    path: Path, participants: list[Participant], recipients: range
) -> tuple[Counter[str], dict[int, str]]:
    """Registrations counted; each recipient's delivery record ("sent", "failed (…)", …)."""
    db = Database(path)
    await db.open()
    try:
        repo = RegistrationRepo(db)
        registrations: Counter[str] = Counter()
        for p in participants:
            live = [r for r in await repo.all_for_user(p.user.id) if r.status != "cancelled"]
            if p.finished and not live:
                registrations["lost"] += 1
            elif len(live) > 1:
                registrations["duplicated"] += 1
            elif live:
                registrations["stored"] += 1
        statuses = await DeliveryRepo(db).statuses("broadcast:1")
        deliveries: dict[int, str] = {}
        for user_id in recipients:
            status, error = statuses.get(user_id, (None, None))
            name = "none" if status is None else status.value
            deliveries[user_id] = f"{name} ({error})" if error else name
        return registrations, deliveries
    finally:
        await db.close()


async def main_async(args: argparse.Namespace) -> None:
    header(
        "crash drill",
        f"python -m bench.crash_drill --kills {args.kills} --recipients {args.recipients} "
        f"--arrival {args.arrival:g} --seed {args.seed} --flood-recipients "
        f"{args.flood_recipients} --flood-kills {args.flood_kills} --flood-rate "
        f"{args.flood_rate:g} --flood-errors {args.flood_errors:g} --flood-blocked "
        f"{args.flood_blocked:g}",
    )
    if args.kills or args.recipients:
        await registration_and_broadcast(args)
    if args.flood_recipients:
        await flood_phase(args)


async def pending_rows(path: Path, kind: str) -> int:
    """Deliveries of `kind` claimed and not answered: on the wire when the bot died."""
    db = Database(path)
    await db.open()
    try:
        return (await DeliveryRepo(db).counts(kind))[DeliveryStatus.PENDING]
    finally:
        await db.close()


async def flood_phase(args: argparse.Namespace) -> None:
    """A broadcast while the server floods (see the module docstring), killed again and again."""
    rng = random.Random(args.seed + 1)
    recipients = range(FIRST_RECIPIENT, FIRST_RECIPIENT + args.flood_recipients)
    expected = len(recipients) / args.flood_rate  # seconds, without kills and retries
    with tempfile.TemporaryDirectory(prefix="bench-flood-") as tmp:
        folder = Path(tmp)
        db_path = folder / "bot.sqlite3"
        await seed_with_repos(db_path, recipients, args.seed)
        api = await start_server()
        replies = Replies(api)
        env = bot_env(api, folder, write_event(folder, reminders=()), ADMIN_IDS=str(ADMIN))
        bot = BotProcess(env, folder / "bot.log")
        drill = Drill(api, replies, bot, rng)
        flood = api.flood(
            args.flood_rate, args.flood_errors, args.flood_blocked, args.seed, spare=(ADMIN,)
        )
        on_the_wire: list[int] = []
        began = time.monotonic()
        reported = False
        try:
            await drill.start()
            report = await start_broadcast(drill, FLOOD_MARK, timeout=3 * expected + 300)
            sent_at = time.monotonic()
            mean = expected / (args.flood_kills + 1)
            while len(on_the_wire) < args.flood_kills:
                done, _ = await asyncio.wait({report}, timeout=rng.uniform(0.5, 1.5) * mean)
                if done:
                    break
                bot.kill()
                drill.kill_times.append(time.monotonic())
                on_the_wire.append(await pending_rows(db_path, "broadcast:1"))
                await drill.start()
            with contextlib.suppress(TimeoutError):
                await report
                reported = True
            seconds = time.monotonic() - sent_at
            code = await bot.terminate()
        finally:
            bot.kill()
            await api.stop()
        if code not in (0, None):
            print(f"  ! the bot's last run exited with {code}:\n{bot.log_tail()}", file=sys.stderr)
        db = Database(db_path)
        await db.open()
        try:
            statuses = await DeliveryRepo(db).statuses("broadcast:1")
        finally:
            await db.close()
        log = (folder / "bot.log").read_text(errors="replace")

    got = {u: sum(1 for m in replies.by_chat[u] if FLOOD_MARK in text(m)) for u in recipients}
    status = {u: statuses.get(u, (None, None))[0] for u in recipients}

    def refused(user_id: int) -> bool:
        """Recorded blocked, or failed on Telegram's refusal (not "interrupted" by a kill, as
        the bot recorded them before 2026-12-07, nor timed out)."""
        what, error = statuses.get(user_id, (None, None))
        return what is DeliveryStatus.BLOCKED or (
            what is DeliveryStatus.FAILED
            and error not in ("interrupted", "timed out (may have been delivered)")
        )

    missed = [u for u in recipients if not got[u] and not refused(u)]
    twice = sum(n - 1 for n in got.values() if n > 1)
    blocked = sum(1 for u in recipients if status[u] is DeliveryStatus.BLOCKED)
    failed = Counter(statuses[u][1] for u in recipients if status[u] is DeliveryStatus.FAILED)
    delivered = sum(1 for n in got.values() if n)
    print(
        f"flood phase: a broadcast to {len(recipients)}, the server at {args.flood_rate:g} "
        f"messages/s (429 with retry_after), {args.flood_errors:.0%} 5xx, "
        f"{args.flood_blocked:.0%} of the users blocked the bot; {len(on_the_wire)} kills, "
        f"{drill.starts} starts, report to the admin {'received' if reported else 'NOT received'}"
    )
    print(
        f"  {delivered} received in {seconds:.0f} s ({delivered / seconds:.2f}/s); the server "
        f"answered {api.stats['429']} × 429 and {flood.errors} × 5xx"
    )
    print(
        f"  missed (neither received nor recorded blocked or refused): {len(missed)}; "
        f"recorded blocked: {blocked}; recorded failed: {sum(failed.values())} {dict(failed)}"
    )
    print(
        f"  received twice: {twice}; requests on the wire at the kills: {sum(on_the_wire)} "
        f"(per kill: {on_the_wire})"
    )
    print(
        "  recipients by copies received: "
        + ", ".join(f"{k}: {v}" for k, v in sorted(Counter(got.values()).items()))
    )
    print(
        f"  bot log: {log.count('Traceback')} traceback(s), {log.count(' ERROR ')} ERROR "
        f"line(s); phase run {time.monotonic() - began:.0f} s"
    )


async def registration_and_broadcast(args: argparse.Namespace) -> None:
    registration_kills = args.kills // 2 if args.recipients else args.kills
    broadcast_kills = args.kills - registration_kills
    rng = random.Random(args.seed)
    recipients = range(FIRST_RECIPIENT, FIRST_RECIPIENT + args.recipients)
    with tempfile.TemporaryDirectory(prefix="bench-crash-") as tmp:
        folder = Path(tmp)
        await seed_with_repos(folder / "bot.sqlite3", recipients, args.seed)
        api = await start_server(rate_limit=30)
        replies = Replies(api)
        env = bot_env(api, folder, write_event(folder, reminders=()), ADMIN_IDS=str(ADMIN))
        bot = BotProcess(env, folder / "bot.log")
        drill = Drill(api, replies, bot, rng)
        began = time.monotonic()
        try:
            await drill.start()
            participants = await registration_phase(drill, registration_kills, args.arrival)
            registration_seconds = time.monotonic() - began
            reported, done_kills = False, 0
            if args.recipients:
                reported, done_kills = await broadcast_phase(
                    drill, broadcast_kills, args.recipients
                )
            code = await bot.terminate()
            pending = api.pending_updates
        finally:
            bot.kill()
            await api.stop()
        if code not in (0, None):
            print(f"  ! the bot's last run exited with {code}:\n{bot.log_tail()}", file=sys.stderr)
        registrations, deliveries = await check_database(
            folder / "bot.sqlite3", participants, recipients
        )
        log = (folder / "bot.log").read_text(errors="replace")

    kills = len(drill.kill_times)
    finished = Counter(p.finished or "stuck" for p in participants)
    print(
        f"kills: {kills} (SIGKILL; {registration_kills} while registering, {done_kills} during "
        f"the broadcast), bot starts: {drill.starts}, run {time.monotonic() - began:.0f} s"
    )
    print(
        f"registration phase ({registration_seconds:.0f} s): {len(participants)} participants, "
        f"{drill.in_form_at_kills} of them mid-form at a kill (summed over kills)"
    )
    print(
        f"  unanswered updates: {sum(p.unanswered for p in participants)}; "
        f"updates still pending at the server at the end: {pending}"
    )
    print(
        f"  forms finished: {finished['confirmed']} confirmed, "
        f"{finished['already registered']} answered 'already registered' (stored before a "
        f"kill, answered after it), stuck: {finished['stuck']}"
    )
    print(
        f"  registrations in the database: {registrations['stored']} stored, "
        f"lost: {registrations['lost']}, duplicated: {registrations['duplicated']}"
    )
    duplicates = Counter(p.duplicates() for p in participants)
    print(
        f"  answers delivered twice: {sum(k * v for k, v in duplicates.items())} "
        f"(participants with one: {sum(v for k, v in duplicates.items() if k)}); "
        f"buttons pressed again after 'expired': {sum(p.retaps for p in participants)}"
    )
    got = {
        user_id: sum(1 for m in replies.by_chat[user_id] if MARK in text(m))
        for user_id in recipients
    }
    copies = Counter(got.values())
    if args.recipients:
        print(f"broadcast phase: report to the admin {'received' if reported else 'NOT received'}")
        print(
            "  recipients by copies received: "
            + ", ".join(f"{k}: {v}" for k, v in sorted(copies.items()))
        )
        print(
            "  recorded in the database: "
            + ", ".join(f"{k}: {v}" for k, v in sorted(Counter(deliveries.values()).items()))
        )
        resent = [
            int(n) for n in re.findall(r"(\d+) broadcast message\(s\) on the wire at a crash", log)
        ]
        print(
            f"  messages on the wire at the {done_kills} kill(s), sent again after the restart: "
            f"{sum(resent)}; recipients with 2+ copies: "
            f"{sum(v for k, v in copies.items() if k > 1)}"
        )
    for p in [p for p in participants if not p.finished][: args.show]:
        print(f"  stuck: user {p.user.id} ({p.user.lang}) waited for {p.waiting_for!r}; got:")
        for m in replies.by_chat[p.user.id][-4:]:
            print(f"    {m.summary()[:150]}")
    tracebacks = log.count("Traceback")
    print(f"bot log: {tracebacks} traceback(s), {log.count(' ERROR ')} ERROR line(s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--recipients", type=int, default=1000)
    parser.add_argument(
        "--arrival", type=float, default=0.3, help="seconds between two new participants"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--show", type=int, default=3, help="stuck participants to show")
    parser.add_argument(
        "--flood-recipients", type=int, default=1000, help="flood phase's broadcast (0: skip)"
    )
    parser.add_argument("--flood-kills", type=int, default=20)
    parser.add_argument(
        "--flood-rate", type=float, default=3, help="messages/s the server allows in the flood"
    )
    parser.add_argument("--flood-errors", type=float, default=0.1, help="share answered 5xx")
    parser.add_argument(
        "--flood-blocked", type=float, default=0.01, help="share of users who blocked the bot"
    )
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
