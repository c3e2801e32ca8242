"""Scale: 100,000 registrations: /stats, /export, start-up time and memory.

    python -m bench.scale [--registrations 100000] [--repeat 5]

The registrations (5% cancelled, spread over 30 days, 14 countries, every affiliation) are
bulk-loaded with ``executemany`` in one transaction into the bot's migrated schema. Then:

* start-up: a /start is already waiting at the server when ``python run_bot.py`` is launched;
  the time from the launch to the server recording the answer (imports, settings, database
  open, reminder plan, command menus, first getUpdates, handling);
* /stats: from the admin's command to the text answer, and to the sign-up chart (a photo);
* /export: from the command to the CSV document recorded by the server (its rows counted);
  meanwhile a participant sends /help, to show the export does not hold up the others;
* RSS of the bot process after start-up, after /stats, after /export, and its peak (VmHWM);
  the chart is drawn by a short-lived child process of the bot (bot/services/chart.py), so its
  memory is not in those figures: one such child is run here, and its peak printed beside them.

Each report is asked ``--repeat`` times; the first (cold) and the median are printed.
Figures only; nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

from bench.common import (
    ROOT,
    BotProcess,
    Replies,
    User,
    bot_env,
    header,
    start_server,
    verdict,
    write_event,
)
from bench.seed import seed_bulk
from bot.localapi import SentMessage
from bot.services.chart import PNG_SIGNATURE, ChartLabels, chart_request

ADMIN = 42
BYSTANDER = 43


def _figures(label: str, seconds: list[float], target: float) -> str:
    median = statistics.median(seconds)
    return (
        f"{label}: first {1000 * seconds[0]:.0f} ms, median {1000 * median:.0f} ms, "
        f"max {1000 * max(seconds):.0f} ms over {len(seconds)} "
        f"(target < {1000 * target:.0f} ms: {verdict(max(seconds) < target)})"
    )


# What the bot's chart child runs (``python -m bot.services.chart``), then its own peak RSS
# written to stderr. VmHWM, not getrusage(): ru_maxrss survives exec, so a child of this process
# (which holds every CSV the server recorded) would report this process's size.
_MEASURED_CHART = (
    "import runpy, sys\n"
    "runpy.run_module('bot.services.chart', run_name='__main__', alter_sys=True)\n"
    "with open('/proc/self/status') as f:\n"
    "    status = f.read().splitlines()\n"
    "sys.stderr.write(next(line for line in status if line.startswith('VmHWM:')))\n"
)


def chart_child_peak_mb(days: int = 30) -> float:
    """Peak RSS (MB) of a chart child process like the one the bot starts for /stats."""
    start = date(2023, 6, 1)
    per_day = [(start + timedelta(n), 3000 + 10 * n) for n in range(days)]
    request = chart_request(per_day, ChartLabels("Sign-ups", "New per day", "Total"), "en")
    done = subprocess.run(
        [sys.executable, "-c", _MEASURED_CHART],
        input=request,
        capture_output=True,
        check=True,
        cwd=ROOT,
    )
    assert done.stdout.startswith(PNG_SIGNATURE), done.stderr
    return int(done.stderr.split()[-2]) / 1024


async def wait_new(
    replies: Replies, chat_id: int, index: int, method: str, timeout: float = 120
) -> SentMessage:
    """The first new message of ``method`` to ``chat_id`` at position ``index`` or later."""
    while True:
        message = await replies.after(chat_id, index, timeout)
        if message.method == method:
            return message
        index += 1


async def main_async(args: argparse.Namespace) -> None:
    n = args.registrations
    header("scale", f"python -m bench.scale --registrations {n} --repeat {args.repeat}")
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        folder = Path(tmp)
        began = time.monotonic()
        await seed_bulk(folder / "bot.sqlite3", range(1_000_000, 1_000_000 + n), args.seed)
        size = (folder / "bot.sqlite3").stat().st_size / 2**20
        print(
            f"seeded {n} registrations (executemany, one transaction) in "
            f"{time.monotonic() - began:.1f} s; database {size:.0f} MB"
        )
        api = await start_server()
        replies = Replies(api)
        env = bot_env(api, folder, write_event(folder), ADMIN_IDS=str(ADMIN))
        bot = BotProcess(env, folder / "bot.log")
        User(api, replies, ADMIN, "en")  # the admin's Telegram profile
        bystander = User(api, replies, BYSTANDER, "fr")
        stats_text: list[float] = []
        stats_chart: list[float] = []
        exports: list[float] = []
        waits: list[float] = []
        rows = 0
        try:
            queued = time.monotonic()
            await api.send_text(BYSTANDER, "/start")
            bot.start()
            first = await replies.after(BYSTANDER, 0, timeout=60)
            startup = first.at - bot.started_at
            rss_started = bot.rss_mb()
            print(
                f"start-up to the first handled update: {1000 * startup:.0f} ms "
                f"(target < 1500 ms: {verdict(startup < 1.5)}); "
                f"the /start waited {1000 * (first.at - queued):.0f} ms in all"
            )
            for _ in range(args.repeat):
                index = replies.mark(ADMIN)
                sent = time.monotonic()
                await api.send_text(ADMIN, "/stats")
                text = await wait_new(replies, ADMIN, index, "sendMessage")
                chart = await wait_new(replies, ADMIN, index, "sendPhoto")
                stats_text.append(text.at - sent)
                stats_chart.append(chart.at - sent)
            rss_stats = bot.rss_mb()
            for _ in range(args.repeat):
                index = replies.mark(ADMIN)
                sent = time.monotonic()
                await api.send_text(ADMIN, "/export")
                waits.append((await bystander.say("/help")).at - bystander.samples[-1].sent_at)
                document = await wait_new(replies, ADMIN, index, "sendDocument")
                exports.append(document.at - sent)
                rows = (document.document or b"").count(b"\n") - 1
            rss_after = bot.rss_mb()
            peak = bot.peak_rss_mb()
            chart_peak = await asyncio.to_thread(chart_child_peak_mb)
        finally:
            code = await bot.terminate()
            await api.stop()
        if code not in (0, None):
            print(f"  ! the bot exited with {code}:\n{bot.log_tail()}", file=sys.stderr)

    print(_figures("/stats, text answer", stats_text, 0.2))
    print(_figures("/stats, with the chart", stats_chart, 10))
    print(_figures("/export, CSV document", exports, 3.0) + f"; {rows} rows in the file")
    print(
        f"a participant's /help sent right after /export: median "
        f"{1000 * statistics.median(waits):.0f} ms, max {1000 * max(waits):.0f} ms"
    )
    print(
        f"RSS: {rss_started:.1f} MB after start-up, {rss_stats:.1f} MB after /stats (chart), "
        f"{rss_after:.1f} MB after /export, "
        f"peak {peak:.1f} MB (target < 120 MB: {verdict(peak < 120)}); "
        f"a chart child process peaks at {chart_peak:.1f} MB while it draws, then exits"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--registrations", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
