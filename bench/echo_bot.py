"""The baseline: a bare python-telegram-bot echo bot, standard ``Application.run_polling``.

``python bench/echo_bot.py [--concurrent N]`` with TELEGRAM_BOT_TOKEN and
TELEGRAM_API_BASE_URL set; N > 0 turns on ``concurrent_updates(N)``. No persistence, no rate
limiter, no database: what PTB itself costs per update.
"""

from __future__ import annotations

import argparse
import logging
import os

from telegram import Update
from telegram.ext import Application, ApplicationBuilder, ContextTypes, MessageHandler, filters


async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Send the text back."""
    assert update.message is not None and update.message.text is not None
    await update.message.reply_text(update.message.text)


def build(concurrent: int) -> Application:
    builder = ApplicationBuilder().token(os.environ["TELEGRAM_BOT_TOKEN"])
    if base_url := os.environ.get("TELEGRAM_API_BASE_URL"):
        builder = builder.base_url(base_url)
    builder = builder.concurrent_updates(concurrent if concurrent > 0 else False)
    app = builder.build()
    app.add_handler(MessageHandler(filters.TEXT, echo))
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--concurrent", type=int, default=0, help="concurrent_updates (0: off)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    build(args.concurrent).run_polling(allowed_updates=Update.ALL_TYPES)


if __name__ == "__main__":
    main()
