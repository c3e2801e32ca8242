"""One person floods the bot: how long does everyone else wait for an answer?

    python -m bench.flood [--flood 200] [--flood-rate 0] [--others 20] [--spread 2]
                          [--rounds 3] [--rate 30] [--bot-root PATH]

Each round a new person sends ``--flood`` plain texts, all at once (``--flood-rate 0``) or
``--flood-rate`` a second; meanwhile ``--others`` other people each send /help, evenly spread
over ``--spread`` seconds from the flood's first message (or over the flood, if longer). The
figure is the others' reply latency (queued at the server → the bot's answer recorded there),
p50/p95/max over all rounds; the target is p95 under 1 s. The server enforces ``--rate``
messages/s overall, as Telegram does (about 30), and the bot is ``run_bot.py`` as shipped, with
its limiter. A round ends when the server holds no update and the bot polls again.

``--bot-root`` runs another checkout's ``run_bot.py`` (e.g. the main branch, for a before/after
comparison). Figures only; nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

from bench.common import (
    BotProcess,
    Replies,
    User,
    bot_env,
    header,
    latency_line,
    percentile,
    start_server,
    verdict,
    wait_polling,
    write_event,
)
from bot.localapi import LocalBotApi


async def flood(api: LocalBotApi, user_id: int, count: int, rate: float) -> None:
    """Queue `count` texts from `user_id`, at once or `rate` a second."""
    started = time.monotonic()
    for i in range(count):
        if rate > 0:
            await asyncio.sleep(max(0.0, started + i / rate - time.monotonic()))
        await api.send_text(user_id, f"message {i + 1}")


async def other(user: User, delay: float, errors: list[BaseException]) -> None:
    await asyncio.sleep(delay)
    try:
        await user.say("/help")
    except TimeoutError as exc:
        errors.append(exc)


async def drained(api: LocalBotApi) -> None:
    """Until the server holds no update (the bot confirmed them all) and the bot polls."""
    while api.pending_updates:
        await asyncio.sleep(0.05)  # a benchmark's pacing, not a test's wait
    await api.wait_until_polling(60)


async def main_async(args: argparse.Namespace) -> None:
    root = f" --bot-root {args.bot_root}" if args.bot_root else ""
    header(
        "one person floods the bot",
        f"python -m bench.flood --flood {args.flood} --flood-rate {args.flood_rate:g} "
        f"--others {args.others} --spread {args.spread:g} --rounds {args.rounds} "
        f"--rate {args.rate:g}{root}",
    )
    script = str(Path(args.bot_root).resolve() / "run_bot.py") if args.bot_root else "run_bot.py"
    print(f"bot: {script}")
    errors: list[BaseException] = []
    others: list[User] = []
    flood_replies: list[int] = []
    drain_times: list[float] = []
    with tempfile.TemporaryDirectory(prefix="bench-flood-") as tmp:
        folder = Path(tmp)
        api = await start_server(rate_limit=args.rate)
        replies = Replies(api)
        bot = BotProcess(bot_env(api, folder, write_event(folder)), folder / "bot.log", script)
        bot.start()
        try:
            await wait_polling(api, bot)
            duration = args.flood / args.flood_rate if args.flood_rate > 0 else 0.0
            spread = max(args.spread, duration)
            for round_ in range(args.rounds):
                flooder = 1_000_000 + round_
                api.add_user(flooder, first_name="Flooder", language_code="en")
                users = [
                    User(api, replies, 2_000_000 + round_ * 1000 + i, "en")
                    for i in range(args.others)
                ]
                others += users
                started = time.monotonic()
                await asyncio.gather(
                    flood(api, flooder, args.flood, args.flood_rate),
                    *(
                        other(u, i * spread / max(1, args.others - 1), errors)
                        for i, u in enumerate(users)
                    ),
                )
                await drained(api)
                drain_times.append(time.monotonic() - started)
                flood_replies.append(len(replies.by_chat[flooder]))
        finally:
            code = await bot.terminate()
            await api.stop()
        for error in errors[:3]:
            print(f"  ! {error!r}", file=sys.stderr)
        if code not in (0, None):
            print(f"  ! the bot exited with {code}:\n{bot.log_tail()}", file=sys.stderr)

    latencies = [s.latency for u in others for s in u.samples]
    p95 = percentile(latencies, 95) if latencies else float("nan")
    print(
        f"rounds: {args.rounds}; each: {args.flood} texts from one person "
        f"({'at once' if args.flood_rate <= 0 else f'{args.flood_rate:g}/s'}), "
        f"/help from {args.others} others over {max(args.spread, duration):g} s"
    )
    print(f"others' reply latency: {latency_line(latencies, (50, 95, 99))}")
    print(f"others' p95 < 1 s: {verdict(p95 < 1.0)}; unanswered: {len(errors)}")
    print(f"messages the flooder got back per round: {flood_replies}")
    print(f"round until the server held nothing: {', '.join(f'{t:.1f} s' for t in drain_times)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--flood", type=int, default=200, help="texts from the flooder")
    parser.add_argument("--flood-rate", type=float, default=0, help="texts/s; 0: all at once")
    parser.add_argument("--others", type=int, default=20, help="other people sending /help")
    parser.add_argument("--spread", type=float, default=2.0, help="seconds the others span")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rate", type=float, default=30, help="server limit, messages/s")
    parser.add_argument("--bot-root", default=None, help="checkout whose run_bot.py to run")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
