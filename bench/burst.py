"""A burst under Telegram's limit: 100 users start registering at the same instant.

    python -m bench.burst [--users 100] [--steps 3] [--rate 30]

The local server enforces ``--rate`` messages/s overall (sends and edits; more get a real
429 with ``retry_after``). Each user sends /register, then answers as soon as the question
arrives: with ``--steps 3`` that is /register, the name and the email (three typed updates,
one reply each), like the three-step peers the issue cites. The floor is the number of
messages the bot had to send divided by the rate: no bot can finish sooner without a 429.
Printed: completion time (first update queued → last reply recorded) against that floor,
reply latency p50/p95 (queueing behind the limit included), and the 429s the server
answered. Figures only; nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

from bench.common import (
    LANGS,
    REGISTRATION_UPDATES,
    BotProcess,
    Replies,
    User,
    bot_env,
    header,
    latency_line,
    register,
    start_server,
    verdict,
    wait_polling,
    write_event,
)


async def main_async(args: argparse.Namespace) -> None:
    header(
        "burst under the rate limit",
        f"python -m bench.burst --users {args.users} --steps {args.steps} --rate {args.rate:g}",
    )
    flow = ["/register", "name", "email", "country", "skip (button)", "affiliation (button)"]
    flow += ["session language", "consent (button)", "confirm (button)"]
    print(f"flow per user: {', '.join(flow[: args.steps])}")
    with tempfile.TemporaryDirectory(prefix="bench-burst-") as tmp:
        folder = Path(tmp)
        api = await start_server(rate_limit=args.rate)
        replies = Replies(api)
        bot = BotProcess(bot_env(api, folder, write_event(folder)), folder / "bot.log")
        bot.start()
        try:
            await wait_polling(api, bot)
            users = [User(api, replies, 1_000_000 + i, LANGS[i % 3]) for i in range(args.users)]
            before = api.stats
            started = time.monotonic()
            results = await asyncio.gather(
                *(register(u, args.steps) for u in users), return_exceptions=True
            )
            after = api.stats
        finally:
            code = await bot.terminate()
            await api.stop()
        failures = [r for r in results if isinstance(r, BaseException)]
        for failure in failures[:3]:
            print(f"  ! {failure!r}", file=sys.stderr)
        if code not in (0, None):
            print(f"  ! the bot exited with {code}:\n{bot.log_tail()}", file=sys.stderr)

    samples = [s for u in users for s in u.samples]
    latencies = [s.latency for s in samples]
    finished = max(s.replied_at for s in samples) - started if samples else float("nan")
    messages = after["sent"] - before["sent"]
    floor = messages / args.rate
    ratio = finished / floor if floor else float("nan")
    too_many = after["429"] - before["429"]
    print(f"users: {args.users}, failed: {len(failures)}")
    print(
        f"messages the bot sent (sends and edits): {messages} "
        f"(the flow needs {args.users * args.steps} replies)"
    )
    print(f"floor: {messages} / {args.rate:g} per s = {floor:.2f} s")
    # A sliding window lets the first `rate` messages out at once: the strict minimum.
    strict = max(0.0, messages - args.rate) / args.rate
    print(
        f"completion: {finished:.2f} s = {ratio:.3f} x the floor "
        f"(target <= 1.1: {verdict(ratio <= 1.1)}); "
        f"{finished / strict if strict else float('nan'):.3f} x the strict minimum "
        f"({strict:.2f} s: the first {args.rate:g} go out at once)"
    )
    print(f"reply latency: {latency_line(latencies, (50, 95))}")
    print(f"429 answered by the server: {too_many} (target 0: {verdict(too_many == 0)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--steps", type=int, default=3, choices=range(1, REGISTRATION_UPDATES + 1))
    parser.add_argument("--rate", type=float, default=30, help="server limit, messages/s")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
