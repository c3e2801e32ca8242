"""Fan-out pace: a broadcast and a reminder to N registrants under Telegram's 30 msg/s.

    python -m bench.fanout [--registrants 10000] [--what both|broadcast|reminder|followup]
                           [--chatters 5] [--rate 30]

N registrants are written through the bot's repositories before it starts. The event starts
in one hour plus ``--reminder-in`` seconds and has a single reminder "1h", so the reminder
job fires while the bot runs (the scheduled path, not the catch-up at start-up). As soon as
the bot polls, an admin sends /broadcast and goes through audience "all", one text, preview
and "Send now", exactly as through Telegram. With ``--what both`` the two run together and
share the budget: 2N bulk messages. ``--what followup`` instead ends the session
``--reminder-in`` seconds after start-up with ``follow_up_after = "1s"``: the follow-up after
the session (thanks, resources, five rating buttons) goes to the N registrants, again by its
scheduled job; the chatters then only chat (registration has closed).

The local server enforces ``--rate`` messages/s overall with real 429s (``retry_after``).
Meanwhile ``--chatters`` users register (answering about once a second) and then send
/help, /myregistration and /start until the fan-out is over: their reply latency is the
interactive figure. Printed: messages/s sustained (every send and edit the server accepted,
and the bulk ones alone), 429s, interactive latency p50/p95, and per recipient how many
copies of each message arrived (duplicates and gaps). Figures only; nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.common import (
    LANGS,
    BotProcess,
    CpuMeter,
    Replies,
    User,
    bot_env,
    header,
    latency_line,
    percentile,
    register,
    start_server,
    verdict,
    wait_polling,
    write_event,
)
from bench.seed import seed_with_repos
from bot.event import write_rescheduled
from bot.localapi import SentMessage

ADMIN = 42
FIRST_RECIPIENT = 10_000_000
MARK = "BENCH-BROADCAST"
REMINDER_MARK = "⏰"
FOLLOW_UP_MARK = "🙏"


async def broadcast(admin: User, replies: Replies, text: str) -> float:
    """The admin's /broadcast dialogue up to "Send now"; returns when it was pressed."""
    question = await admin.say("/broadcast")
    mode = await admin.tap(question, "bc:aud:all")
    await admin.tap(mode, "bc:mode:one")
    index = replies.mark(admin.id)
    await admin.say(text)  # then a preview heading, the text, and the summary with buttons
    summary = await replies.after(admin.id, index + 2)
    pressed = time.monotonic()
    await admin.press(summary, "bc:send")
    return pressed


async def chat(user: User, replies: Replies, done: asyncio.Event, sign_up: bool = True) -> None:
    """Register (when `sign_up`), then keep chatting until the fan-out is over."""
    if sign_up:
        confirmation = await register(user)
        if confirmation.method != "sendDocument":  # the calendar file follows the confirmation
            index = replies.answers_by_chat[user.id].index(confirmation)
            with contextlib.suppress(TimeoutError):
                await replies.after(user.id, index + 1, timeout=10, answers=True)
    commands = ("/help", "/myregistration", "/start")
    step = 0
    while not done.is_set():
        await user.say(commands[step % len(commands)])
        step += 1


async def main_async(args: argparse.Namespace) -> None:
    n = args.registrants
    header(
        "fan-out pace",
        f"python -m bench.fanout --registrants {n} --what {args.what} "
        f"--chatters {args.chatters} --rate {args.rate:g}",
    )
    rng = random.Random(args.seed)
    recipients = range(FIRST_RECIPIENT, FIRST_RECIPIENT + n)
    with tempfile.TemporaryDirectory(prefix="bench-fanout-") as tmp:
        folder = Path(tmp)
        seeding = time.monotonic()
        await seed_with_repos(folder / "bot.sqlite3", recipients, args.seed)
        print(
            f"seeded {n} registrants through the repositories in "
            f"{time.monotonic() - seeding:.1f} s"
        )

        api = await start_server(rate_limit=args.rate)
        replies = Replies(api)
        bulk_times: list[float] = []
        copies: Counter[tuple[int, str]] = Counter()

        def on_sent(record: SentMessage) -> None:
            chat_id = record.chat_id or 0
            if FIRST_RECIPIENT <= chat_id < FIRST_RECIPIENT + n and not record.is_edit:
                bulk_times.append(record.at)
                text = record.plain_text or record.text or ""
                kind = (
                    "broadcast"
                    if MARK in text
                    else "reminder"
                    if REMINDER_MARK in text
                    else "followup"
                    if FOLLOW_UP_MARK in text
                    else "?"
                )
                copies[(chat_id, kind)] += 1
                if len(bulk_times) >= expected:
                    reached.set()

        expected = n * (2 if args.what == "both" else 1)
        reached = asyncio.Event()
        api.add_listener(on_sent)
        reminders = ("1h",) if args.what in ("both", "reminder") else ()
        start = datetime.now(UTC) + timedelta(hours=1, seconds=args.reminder_in)
        if args.what == "followup":  # ends so that the follow-up is due --reminder-in s from now
            end = datetime.now(UTC) + timedelta(seconds=args.reminder_in - 1)
            event_file = write_rescheduled(
                folder, end - timedelta(minutes=90), reminders=(), follow_up_after="1s"
            )
        else:
            event_file = write_event(folder, start, reminders=reminders)
        env = bot_env(api, folder, event_file, ADMIN_IDS=str(ADMIN))
        bot = BotProcess(env, folder / "bot.log")
        done = asyncio.Event()
        chatters: list[User] = []
        before = api.stats
        try:
            bot.start()
            await wait_polling(api, bot)
            meter = CpuMeter(bot)
            began = time.monotonic()

            async def pause() -> None:
                await asyncio.sleep(rng.uniform(0.5, 1.5))

            chatters = [
                User(api, replies, 500 + i, LANGS[i % 3], think=pause)
                for i in range(args.chatters)
            ]
            sign_up = args.what != "followup"
            chatting = [asyncio.create_task(chat(u, replies, done, sign_up)) for u in chatters]
            if args.what in ("both", "broadcast"):
                admin = User(api, replies, ADMIN, "en")
                await broadcast(admin, replies, f"<b>{MARK}</b> The session starts soon.")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(reached.wait(), expected / (0.8 * args.rate) + 120)
            done.set()
            for task in chatting:  # a chatter may be mid-form: what it measured is enough
                task.cancel()
            results = await asyncio.gather(*chatting, return_exceptions=True)
            cpu = meter.line()
            elapsed = time.monotonic() - began
            peak = bot.peak_rss_mb()
        finally:
            done.set()
            code = await bot.terminate()
            await api.stop()
        after = api.stats
        if code not in (0, None):
            print(f"  ! the bot exited with {code}:\n{bot.log_tail()}", file=sys.stderr)
        errors = [r for r in results if not isinstance(r, asyncio.CancelledError | None)]
        for failure in errors[:3]:
            print(f"  ! chatter: {failure!r}", file=sys.stderr)

    first, last = (bulk_times[0], bulk_times[-1]) if bulk_times else (0.0, 0.0)
    window = last - first
    all_in_window = [m for m in api.sent if first <= m.at <= last]
    bulk_rate = (len(bulk_times) - 1) / window if window > 0 else float("nan")
    all_rate = (len(all_in_window) - 1) / window if window > 0 else float("nan")
    # Steady state: the middle 80% of the window (no ramp-up, no tail).
    lo, hi = first + 0.1 * window, last - 0.1 * window
    steady = sum(1 for m in api.sent if lo <= m.at <= hi) / (hi - lo) if window > 0 else 0.0
    interactive = [s.latency for u in chatters for s in u.samples if first <= s.sent_at <= last]
    too_many = after["429"] - before["429"]
    kinds = ("broadcast", "reminder") if args.what == "both" else (args.what,)
    print(
        f"bulk messages delivered: {len(bulk_times)} of {expected} "
        f"(run {elapsed:.0f} s, bot peak RSS {peak:.1f} MB; {cpu})"
    )
    print(f"fan-out window: {window:.1f} s from the first to the last bulk message")
    print(
        f"messages/s, every send and edit: {all_rate:.2f} over the window, "
        f"{steady:.2f} in its middle 80% (target >= 29: {verdict(all_rate >= 29)})"
    )
    print(f"messages/s, bulk alone: {bulk_rate:.2f}")
    print(f"429 answered by the server: {too_many} (target 0: {verdict(too_many == 0)})")
    p95 = percentile(interactive, 95)
    print(
        f"interactive reply latency during the fan-out: {latency_line(interactive, (50, 95))}"
        f" (target p95 < 1 s: {verdict(p95 < 1.0)})"
    )
    for kind in kinds:
        per_user = Counter(copies[(user_id, kind)] for user_id in recipients)
        print(
            f"{kind}: recipients by copies received: "
            + ", ".join(f"{k} copies: {v}" for k, v in sorted(per_user.items()))
        )
    if copies.get((0, "?")) or any(kind == "?" for _, kind in copies):
        print("  ! some bulk messages were neither the broadcast, a reminder nor the follow-up")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--registrants", type=int, default=10_000)
    parser.add_argument(
        "--what", choices=("both", "broadcast", "reminder", "followup"), default="both"
    )
    parser.add_argument("--chatters", type=int, default=5)
    parser.add_argument("--rate", type=float, default=30, help="server limit, messages/s")
    parser.add_argument(
        "--reminder-in", type=float, default=5, help="seconds after start-up the reminder fires"
    )
    parser.add_argument("--seed", type=int, default=1)
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
