"""Running the Application: long polling with durable acknowledgement, clean stop on signals."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from telegram.ext import Application

from bot.handlers.common import SERVICES_KEY
from bot.polling import DurablePoller
from bot.storage import Database

log = logging.getLogger(__name__)


@asynccontextmanager
async def started(app: Application) -> AsyncIterator[Application]:
    """Initialise and start the Application with its post_* hooks, as PTB's run_* would."""
    try:
        await app.initialize()
    except BaseException:
        # getMe failed (Bot API unreachable, token rejected) after the HTTP sessions were
        # opened, and app.shutdown() does nothing for an Application that is not initialised.
        await app.bot.shutdown()
        if app.post_shutdown:
            await app.post_shutdown(app)
        raise
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
    app: Application,
    stop: asyncio.Event | None = None,
    *,
    handle_signals: bool = True,
    poller: Callable[[Application, Database, int], DurablePoller] = DurablePoller,
) -> None:
    """Poll until SIGTERM/SIGINT (or `stop`), finishing the update in hand, then shut down.

    `poller` builds the DurablePoller (the console simulator passes one that reports progress).
    """
    stop = stop or asyncio.Event()
    signals = stop_on_signals(stop) if handle_signals else ()
    try:
        async with started(app):
            log.info("Bot @%s started (long polling)", app.bot.username)
            services = app.bot_data[SERVICES_KEY]
            durable = poller(app, services.db, services.settings.update_concurrency)
            await durable.run(stop)
            log.info("Bot stopped after handling %d updates", durable.handled)
    finally:
        remove_signal_handlers(signals)


def stop_on_signals(stop: asyncio.Event) -> tuple[signal.Signals, ...]:
    """Set `stop` on SIGTERM and SIGINT; returns the signals for `remove_signal_handlers`."""
    loop = asyncio.get_running_loop()
    signals = (signal.SIGTERM, signal.SIGINT)
    for sig in signals:
        loop.add_signal_handler(sig, stop.set)
    return signals


def remove_signal_handlers(signals: tuple[signal.Signals, ...]) -> None:
    loop = asyncio.get_running_loop()
    for sig in signals:
        loop.remove_signal_handler(sig)
