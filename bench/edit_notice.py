"""Telling N registrants of a new time (/edit): pace, copies, and replies meanwhile.

    python -m bench.edit_notice [--registrants 1000] [--chatters 3] [--rate 30]

N registrants are written through the bot's repositories before it starts. As soon as the
bot polls, an admin moves the session a day later through /edit ("Date and time", the new
time typed, Confirm), exactly as through Telegram. Each registrant gets two bulk messages: the
notice and the new calendar file. Meanwhile ``--chatters`` users send /help about once a
second: their reply latency is the interactive figure. Printed: the time from Confirm to the
last file, bulk messages/s, 429s, interactive latency, and per recipient how many notices and
files arrived. Figures only; nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from bench.common import (
    LANGS,
    BotProcess,
    Replies,
    User,
    bot_env,
    header,
    latency_line,
    start_server,
    wait_polling,
    write_event,
)
from bench.seed import seed_with_repos
from bot.localapi import SentMessage

ADMIN = 42
FIRST_RECIPIENT = 10_000_000


async def move(admin: User, replies: Replies, typed: str) -> float:
    """/edit → Date and time → the new time → Confirm; returns when Confirm was pressed."""
    menu = await admin.say("/edit")
    await admin.tap(menu, "ed:f:schedule")
    preview = await admin.say(typed)
    pressed = time.monotonic()
    await admin.press(preview, "ed:ok:")
    return pressed


async def chat(user: User, done: asyncio.Event) -> None:
    """/help about once a second (a person reading the answers) until the notice is out."""
    while not done.is_set():
        await user.say("/help")
        await asyncio.sleep(1.0)


async def main_async(args: argparse.Namespace) -> None:
    n = args.registrants
    header(
        "change notice pace",
        f"python -m bench.edit_notice --registrants {n} --chatters {args.chatters} "
        f"--rate {args.rate:g}",
    )
    recipients = range(FIRST_RECIPIENT, FIRST_RECIPIENT + n)
    with tempfile.TemporaryDirectory(prefix="bench-edit-") as tmp:
        folder = Path(tmp)
        await seed_with_repos(folder / "bot.sqlite3", recipients, 1)
        api = await start_server(rate_limit=args.rate)
        replies = Replies(api)
        copies: Counter[tuple[int, str]] = Counter()
        last_file = 0.0
        reached = asyncio.Event()

        def on_sent(record: SentMessage) -> None:
            nonlocal last_file
            chat_id = record.chat_id or 0
            if FIRST_RECIPIENT <= chat_id < FIRST_RECIPIENT + n and not record.is_edit:
                kind = "file" if record.method == "sendDocument" else "notice"
                copies[(chat_id, kind)] += 1
                if kind == "file":
                    last_file = record.at
                if sum(copies.values()) >= 2 * n:
                    reached.set()

        api.add_listener(on_sent)
        start = (datetime.now(UTC) + timedelta(days=30)).replace(
            hour=12, minute=0, second=0, microsecond=0
        )
        event_file = write_event(folder, start)
        day = (start.astimezone(ZoneInfo("Europe/Zurich")) + timedelta(days=1)).date()
        env = bot_env(api, folder, event_file, ADMIN_IDS=str(ADMIN))
        bot = BotProcess(env, folder / "bot.log")
        done = asyncio.Event()
        before = api.stats
        chatters = [User(api, replies, 500 + i, LANGS[i % 3]) for i in range(args.chatters)]
        try:
            bot.start()
            await wait_polling(api, bot)
            admin = User(api, replies, ADMIN, "en")
            pressed = await move(admin, replies, f"{day:%Y-%m-%d} 16:00-17:30")
            chatting = [asyncio.create_task(chat(u, done)) for u in chatters]
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(reached.wait(), 2 * n / (0.8 * args.rate) + 120)
            done.set()
            await asyncio.gather(*chatting, return_exceptions=True)
        finally:
            done.set()
            code = await bot.terminate()
            await api.stop()
        after = api.stats
        if code not in (0, None):
            print(f"  ! the bot exited with {code}:\n{bot.log_tail()}", file=sys.stderr)

    elapsed = last_file - pressed
    bulk = sum(copies.values())
    print(f"bulk messages delivered: {bulk} of {2 * n} (a notice and a calendar file each)")
    print(f"Confirm to the last calendar file: {elapsed:.1f} s ({bulk / elapsed:.2f} bulk/s)")
    print(f"429 answered by the server: {after['429'] - before['429']}")
    interactive = [s.latency for u in chatters for s in u.samples]
    print(f"/help reply latency meanwhile: {latency_line(interactive, (50, 95))}")
    for kind in ("notice", "file"):
        per_user = Counter(copies[(user_id, kind)] for user_id in recipients)
        print(
            f"{kind}: recipients by copies received: "
            + ", ".join(f"{k} copies: {v}" for k, v in sorted(per_user.items()))
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--registrants", type=int, default=1000)
    parser.add_argument("--chatters", type=int, default=3)
    parser.add_argument("--rate", type=float, default=30, help="server limit, messages/s")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
