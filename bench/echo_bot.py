"""The baseline: a bare python-telegram-bot echo bot, standard ``Application.run_polling``.

``python bench/echo_bot.py [--concurrent N] [--aiohttp]`` with TELEGRAM_BOT_TOKEN and
TELEGRAM_API_BASE_URL set; N > 0 turns on ``concurrent_updates(N)``; ``--aiohttp`` swaps PTB's
httpx transport for the one the real bot uses (bot/transport.py), to compare like with like.
No persistence, no rate limiter, no database: what PTB itself costs per update.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from telegram import Update
from telegram.ext import Application, ApplicationBuilder, ContextTypes, MessageHandler, filters


async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Send the text back."""
    assert update.message is not None and update.message.text is not None
    await update.message.reply_text(update.message.text)


def build(concurrent: int, aiohttp: bool = False) -> Application:
    builder = ApplicationBuilder().token(os.environ["TELEGRAM_BOT_TOKEN"])
    if aiohttp:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        from bot.transport import AiohttpRequest

        builder = builder.request(AiohttpRequest(256)).get_updates_request(AiohttpRequest(1))
    if base_url := os.environ.get("TELEGRAM_API_BASE_URL"):
        builder = builder.base_url(base_url)
    builder = builder.concurrent_updates(concurrent if concurrent > 0 else False)
    app = builder.build()
    app.add_handler(MessageHandler(filters.TEXT, echo))
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--concurrent", type=int, default=0, help="concurrent_updates (0: off)")
    parser.add_argument("--aiohttp", action="store_true", help="the real bot's transport")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    build(args.concurrent, args.aiohttp).run_polling(allowed_updates=Update.ALL_TYPES)


if __name__ == "__main__":
    main()
