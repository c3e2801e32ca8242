"""``run_bot.py`` with the bot's own pacing lifted, to measure what the bot can process.

The bot keeps every request that targets a chat under 30/s (bot.ratelimit), as Telegram
requires; against a local server without limits that cap, not the bot's work, would be the
throughput. This runs exactly ``run_bot.main()`` with the limiter's rate raised to 10^6/s, so
the limiter still runs (its cost is measured) but never makes a request wait.

    python bench/unthrottled_bot.py [UPDATE_CONCURRENCY]

An argument sets UPDATE_CONCURRENCY (bench.throughput runs it with 1 to compare).
"""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import bot.app
import run_bot
from bot.ratelimit import PriorityRateLimiter

if __name__ == "__main__":
    if len(sys.argv) > 1:
        os.environ["UPDATE_CONCURRENCY"] = sys.argv[1]
    bot.app.PriorityRateLimiter = functools.partial(PriorityRateLimiter, rate=1_000_000)  # type: ignore[misc]
    sys.exit(run_bot.main([]))
