"""Registration throughput: N users registering at once, the real bot against a bare echo bot.

    python -m bench.throughput [--users 500] [--rate 50] [--concurrency 256]
                               [--bots unthrottled,unthrottled-sequential,echo,...]

Bots (each a child process polling a fresh instance of the local server):

* ``unthrottled``: ``run_bot.py`` with its own 30 requests/s limiter lifted
  (bench/unthrottled_bot.py): what the bot can process, the figure to compare with the echo
  bot, since the local server here has no rate limit;
* ``unthrottled-sequential``: the same with ``UPDATE_CONCURRENCY=1``: one update at a time,
  as the bot handled them before it handled different users side by side (bot/polling.py);
* ``real``: ``run_bot.py`` as shipped; its limiter keeps every request to a chat under 30/s,
  as Telegram requires, so it is capped there (about 19 updates/s for this flow);
* ``echo`` and ``echo-concurrent``: bench/echo_bot.py, a bare python-telegram-bot echo bot
  (``Application.run_polling``), with ``concurrent_updates`` off and on;
* ``echo-aiohttp``: the same echo bot on the real bot's HTTP transport (bot/transport.py), so
  that the ratio can also be read like for like.

For each bot two phases:

* **saturated**: all N users at once, each answering the moment the bot replies (closed loop,
  no pause): updates/s is the bot's capacity; reply latency there is mostly queueing (a user
  waits behind everyone who wrote before), so it grows with N whatever the bot does;
* **paced**: N fresh users again, but their actions are released as a Poisson process of
  ``--rate`` updates/s (each arrival is the next answer of a random user who has had the
  previous reply), about one action every 10 s per user for 500 users at 50/s: reply latency
  at a given load below saturation, the figure the p99 < 50 ms target is about.

The real bot does the full eight-step registration (9 updates, 5 typed answers and 4 button
presses, as tests/test_participant.py does: 14 Bot API requests per registration, 10 to the
chat and 4 answerCallbackQuery); the echo bot gets 9 texts per user (9 requests). Reply
latency is from the moment an update is queued at the server to the moment the server
records the bot's answer in that chat: a new message, or the tapped question edited into the
next one (edits of buttons only and callback answers do not count). Peak RSS is the bot
process's VmHWM. CPU shares are of one core over the phase. Figures only; nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from bench.common import (
    LANGS,
    REGISTRATION_UPDATES,
    BotProcess,
    CpuMeter,
    Pacer,
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
from bot.i18n import I18n

Flow = Callable[[User], Awaitable[object]]


@dataclass
class Phase:
    name: str
    updates: int
    seconds: float
    latencies: list[float]
    failures: int
    cpu: str

    @property
    def rate(self) -> float:
        return self.updates / self.seconds if self.seconds else 0.0

    def line(self) -> str:
        failed = f", {self.failures} users FAILED" if self.failures else ""
        return (
            f"  {self.name:9} {self.updates} updates in {self.seconds:.2f} s = "
            f"{self.rate:.0f} updates/s{failed}\n"
            f"            reply latency {latency_line(self.latencies)}\n            {self.cpu}"
        )


@dataclass
class BotResult:
    label: str
    phases: dict[str, Phase]
    peak_rss_mb: float
    registered: int | None = None
    steps: str = ""  # paced reply latency per step of the form


STEPS = ("/register", "name", "email", "country", "skip", "affiliation", "language")
STEPS += ("consent", "confirm")


def per_step(users: list[User]) -> str:
    """p50/p95 of the paced reply latency for each update of the registration form."""
    parts = []
    for index, name in enumerate(STEPS):
        values = [u.samples[index].latency for u in users if len(u.samples) > index]
        if values:
            parts.append(
                f"{name} {1000 * percentile(values, 50):.0f}/{1000 * percentile(values, 95):.0f}"
            )
    return "p50/p95 ms by step: " + ", ".join(parts)


async def echo_flow(user: User) -> object:
    reply = None
    for step in range(REGISTRATION_UPDATES):
        reply = await user.say(f"message {step} from {user.id}")
    return reply


async def run_phase(
    name: str,
    users: list[User],
    flow: Flow,
    bot: BotProcess,
    pacer: Pacer | None = None,
) -> tuple[Phase, list[object]]:
    meter = CpuMeter(bot)
    everyone = asyncio.gather(*(flow(u) for u in users), return_exceptions=True)
    if pacer is not None:
        await pacer.run(everyone)
    results = await everyone
    failures = [r for r in results if isinstance(r, BaseException)]
    for failure in failures[:3]:
        print(f"  ! {name}: {failure!r}", file=sys.stderr)
    samples = [s for u in users for s in u.samples]
    # From the first update sent to the last reply seen.
    seconds = 0.0
    if samples:
        seconds = max(s.replied_at for s in samples) - min(s.sent_at for s in samples)
    cpu = meter.line()
    if pacer is not None and pacer.missed:
        cpu += f"; {pacer.missed} arrivals found no user ready"
    phase = Phase(name, len(samples), seconds, [s.latency for s in samples], len(failures), cpu)
    return phase, list(results)


async def measure(
    label: str,
    script: str,
    args: list[str],
    flow: Flow,
    users: int,
    rate: float,
    folder: Path,
    seed: int,
) -> BotResult:
    api = await start_server()
    replies = Replies(api)
    event_file = write_event(folder)
    env = bot_env(api, folder, event_file)
    bot = BotProcess(env, folder / "bot.log", script)
    bot.start(*args)
    try:
        await wait_polling(api, bot)
        rng = random.Random(seed)
        # Warm-up, not measured: first calls load catalogs, compile regexes, open connections.
        warm = [User(api, replies, 9_000_000 + i, LANGS[i % 3]) for i in range(5)]
        await asyncio.gather(*(u.say("/start") for u in warm))

        crowd = [User(api, replies, 1_000_000 + i, LANGS[i % 3]) for i in range(users)]
        saturated, finals = await run_phase("saturated", crowd, flow, bot)

        pacer = Pacer(rate, rng)
        paced_users = [
            User(api, replies, 2_000_000 + i, LANGS[i % 3], think=pacer.permit)
            for i in range(users)
        ]
        paced, paced_finals = await run_phase(f"paced@{rate:g}/s", paced_users, flow, bot, pacer)
        peak = bot.peak_rss_mb()
    finally:
        code = await bot.terminate()
        await api.stop()
    if code not in (0, None):
        print(f"  ! {label} exited with {code}:\n{bot.log_tail()}", file=sys.stderr)
    registered, steps = None, ""
    if script != "bench/echo_bot.py":
        steps = per_step(paced_users)
        done = I18n()
        registered = sum(
            1
            for user, final in zip(crowd + paced_users, finals + paced_finals, strict=True)
            if not isinstance(final, BaseException)
            and done(user.lang)._("You are registered.") in (final.plain_text or "")  # type: ignore[attr-defined]
        )
    return BotResult(label, {"saturated": saturated, "paced": paced}, peak, registered, steps)


BOTS = {
    # name: (label, script, arguments, flow)
    "unthrottled": ("real bot, own 30/s limit lifted", "bench/unthrottled_bot.py", [], register),
    "unthrottled-sequential": (
        "real bot, own 30/s limit lifted, one update at a time (UPDATE_CONCURRENCY=1)",
        "bench/unthrottled_bot.py",
        ["1"],
        register,
    ),
    "real": ("real bot, as shipped (30 msg/s limit)", "run_bot.py", [], register),
    "echo": ("echo bot, sequential", "bench/echo_bot.py", [], echo_flow),
    "echo-concurrent": ("echo bot, concurrent_updates", "bench/echo_bot.py", None, echo_flow),
    "echo-aiohttp": (
        "echo bot, sequential, the real bot's transport",
        "bench/echo_bot.py",
        ["--aiohttp"],
        echo_flow,
    ),
}
DEFAULT_BOTS = "unthrottled,unthrottled-sequential,echo,echo-aiohttp,echo-concurrent"


async def main_async(args: argparse.Namespace) -> None:
    header(
        "registration throughput",
        f"python -m bench.throughput --users {args.users} --rate {args.rate:g} "
        f"--concurrency {args.concurrency} --bots {args.bots}",
    )
    print(
        "local server: in this process (a fresh one per bot; its simulated users are method "
        "calls); each bot: a child process"
    )
    results: dict[str, BotResult] = {}
    with tempfile.TemporaryDirectory(prefix="bench-throughput-") as tmp:
        for index, name in enumerate(args.bots.split(",")):
            label, script, extra, flow = BOTS[name]
            if extra is None:
                extra = ["--concurrent", str(args.concurrency)]
                label += f"({args.concurrency})"
            folder = Path(tmp) / str(index)
            folder.mkdir()
            result = await measure(
                label, script, extra, flow, args.users, args.rate, folder, args.seed
            )
            results[name] = result
            print(f"{label}: peak RSS {result.peak_rss_mb:.1f} MB")
            if result.registered is not None:
                print(f"  registrations confirmed: {result.registered} of {2 * args.users}")
            for phase in result.phases.values():
                print(phase.line())
            if result.steps:
                print(f"  paced, {result.steps}")
            sys.stdout.flush()

    print("summary:")
    echo = results.get("echo")
    for name in ("unthrottled", "unthrottled-sequential", "real"):
        if name not in results:
            continue
        real = results[name]
        sat, paced = real.phases["saturated"], real.phases["paced"]
        p99 = percentile(paced.latencies, 99)
        print(
            f"  {real.label}: {sat.rate:.0f} updates/s saturated; reply latency at "
            f"{args.rate:g} updates/s p99 {1000 * p99:.1f} ms (target < 50 ms: "
            f"{verdict(p99 < 0.05)}); peak RSS {real.peak_rss_mb:.1f} MB"
        )
        if echo is not None and echo.phases["saturated"].rate:
            ratio = sat.rate / echo.phases["saturated"].rate
            print(
                f"  {real.label} / echo bot (sequential) = {ratio:.2f} "
                f"(target >= 0.7: {verdict(ratio >= 0.7)})"
            )
        like = results.get("echo-aiohttp")
        if like is not None and like.phases["saturated"].rate:
            ratio = sat.rate / like.phases["saturated"].rate
            print(f"  {real.label} / echo bot on the same transport = {ratio:.2f}")
    concurrent = results.get("echo-concurrent")
    if echo is not None and concurrent is not None:
        seq, conc = echo.phases, concurrent.phases
        print(
            f"  echo bot, concurrent_updates({args.concurrency}) vs sequential: saturated "
            f"{conc['saturated'].rate:.0f} vs {seq['saturated'].rate:.0f} updates/s; paced p99 "
            f"{1000 * percentile(conc['paced'].latencies, 99):.1f} vs "
            f"{1000 * percentile(seq['paced'].latencies, 99):.1f} ms"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=500)
    parser.add_argument(
        "--rate", type=float, default=50, help="offered updates/s in the paced phase"
    )
    parser.add_argument("--concurrency", type=int, default=256, help="for the echo bot")
    parser.add_argument(
        "--bots",
        default=DEFAULT_BOTS,
        help=f"comma-separated, in order, from {', '.join(BOTS)} (default: {DEFAULT_BOTS})",
    )
    parser.add_argument("--seed", type=int, default=1)
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
