"""Running the Application: long polling with durable acknowledgement, clean stop on signals."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from telegram.ext import Application

from bot.handlers.common import SERVICES_KEY
from bot.polling import DurablePoller

log = logging.getLogger(__name__)


@asynccontextmanager
async def started(app: Application) -> AsyncIterator[Application]:
    """Initialise and start the Application with its post_* hooks, as PTB's run_* would."""
    await app.initialize()
    try:
        if app.post_init:
            await app.post_init(app)
        await app.start()
        try:
            yield app
        finally:
            if app.running:
                await app.stop()
            if app.post_stop:
                await app.post_stop(app)
    finally:
        await app.shutdown()
        if app.post_shutdown:
            await app.post_shutdown(app)


async def run_polling(
    app: Application, stop: asyncio.Event | None = None, *, handle_signals: bool = True
) -> None:
    """Poll until SIGTERM/SIGINT (or `stop`), finishing the update in hand, then shut down."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = (signal.SIGTERM, signal.SIGINT) if handle_signals else ()
    for sig in signals:
        loop.add_signal_handler(sig, stop.set)
    try:
        async with started(app):
            log.info("Bot @%s started (long polling)", app.bot.username)
            poller = DurablePoller(app, app.bot_data[SERVICES_KEY].db)
            await poller.run(stop)
            log.info("Bot stopped after handling %d updates", poller.handled)
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)
