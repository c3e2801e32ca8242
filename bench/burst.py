"""A burst under Telegram's limit: 100 people start registering at the same instant.

    python -m bench.burst [--users 100] [--variant both] [--rate 30] [--bot-root PATH]

The local server enforces ``--rate`` messages/s overall (sends and edits; more get a real
429 with ``retry_after``). Each user sends /register, then answers each question as soon as it
arrives, through the whole form: eight steps and the confirmation, nine updates, until the
calendar file. ``--variant tapped``: the choices are tapped (organisation skipped, affiliation,
consent, confirm; the session language is typed, as in the tests); ``typed``: every answer is
typed; ``both`` runs one then the other, each with a fresh bot and server. ``--steps`` stops
each user after that many updates.

Printed per variant: registrations completed per second (users / time from the first update to
the last calendar file), per-step latency p50/p95 (from an update to the bot's answer, a new
message or the question edited into the next one; queueing behind the limit included), the
chat-bound requests per registration (sends and edits; answerCallbackQuery apart), and the
429s. ``--bot-root`` runs ``run_bot.py`` of another checkout (e.g. a copy of an older commit)
to measure it with the same users. Figures only; nothing is asserted.
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
    TAPPED,
    TYPED,
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

VARIANTS = {"tapped": TAPPED, "typed": TYPED}


async def finish(
    user: User, replies: Replies, steps: int, actions: list[tuple[str, str]]
) -> float:
    """One user's form; returns when its last answer (the calendar file) arrived."""
    last = await register(user, steps, actions)
    if steps < REGISTRATION_UPDATES:
        return last.at
    index = replies.answers_by_chat[user.id].index(last)
    document = await replies.after(user.id, index + 1, answers=True)
    if document.method != "sendDocument":
        raise RuntimeError(f"user {user.id}: {document.summary()} instead of the calendar file")
    return document.at


async def run_variant(args: argparse.Namespace, variant: str) -> None:
    actions = VARIANTS[variant]
    flow = [value.format(id="N", country="Senegal") for _, value in actions[: args.steps]]
    print(f"\n-- {variant}: {', '.join(flow)}")
    with tempfile.TemporaryDirectory(prefix="bench-burst-") as tmp:
        folder = Path(tmp)
        api = await start_server(rate_limit=args.rate)
        replies = Replies(api)
        # Another checkout's run_bot.py imports its own `bot` package (its folder comes first).
        script = str(Path(args.bot_root, "run_bot.py")) if args.bot_root else "run_bot.py"
        bot = BotProcess(bot_env(api, folder, write_event(folder)), folder / "bot.log", script)
        bot.start()
        try:
            await wait_polling(api, bot)
            users = [User(api, replies, 1_000_000 + i, LANGS[i % 3]) for i in range(args.users)]
            ids = {u.id for u in users}
            before = api.stats
            sent_before = len(api.sent)
            started = time.monotonic()
            results = await asyncio.gather(
                *(finish(u, replies, args.steps, actions) for u in users), return_exceptions=True
            )
            after = api.stats
            chat_bound = sum(1 for record in api.sent[sent_before:] if record.chat_id in ids)
        finally:
            code = await bot.terminate()
            await api.stop()
        failures = [r for r in results if isinstance(r, BaseException)]
        for failure in failures[:3]:
            print(f"  ! {failure!r}", file=sys.stderr)
        if code not in (0, None):
            print(f"  ! the bot exited with {code}:\n{bot.log_tail()}", file=sys.stderr)

    done = [r for r in results if isinstance(r, float)]
    finished = max(done) - started if done else float("nan")
    answered = after["methods"].get("answerCallbackQuery", 0) - before["methods"].get(
        "answerCallbackQuery", 0
    )
    too_many = after["429"] - before["429"]
    per_user = chat_bound / args.users
    # A sliding window lets the first `rate` requests out at once: the strict minimum.
    floor = max(0.0, chat_bound - args.rate) / args.rate
    print(f"users: {args.users}, completed: {len(done)}, failed: {len(failures)}")
    print(
        f"requests per registration: {per_user:.2f} chat-bound (sends and edits) "
        f"+ {answered / args.users:.2f} answerCallbackQuery; "
        f"at most 10: {verdict(per_user <= 10)}"
    )
    print(
        f"registrations completed per second: {len(done) / finished:.2f} "
        f"(all {len(done)} in {finished:.1f} s; the rate limit allows no less than {floor:.1f} s)"
    )
    print(f"per-step latency: {latency_line([s.latency for u in users for s in u.samples])}")
    print(f"429 answered by the server: {too_many} (target 0: {verdict(too_many == 0)})")


async def main_async(args: argparse.Namespace) -> None:
    command = (
        f"python -m bench.burst --users {args.users} --variant {args.variant} "
        f"--rate {args.rate:g}"
        + (f" --steps {args.steps}" if args.steps != REGISTRATION_UPDATES else "")
        + (f" --bot-root {args.bot_root}" if args.bot_root else "")
    )
    header("burst of registrations under the rate limit", command)
    for variant in VARIANTS if args.variant == "both" else [args.variant]:
        await run_variant(args, variant)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--variant", choices=["tapped", "typed", "both"], default="both")
    parser.add_argument(
        "--steps",
        type=int,
        default=REGISTRATION_UPDATES,
        choices=range(1, REGISTRATION_UPDATES + 1),
    )
    parser.add_argument("--rate", type=float, default=30, help="server limit, messages/s")
    parser.add_argument("--bot-root", help="checkout whose run_bot.py to run (default: this one)")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
