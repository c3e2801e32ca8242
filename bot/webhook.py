"""Webhook mode: Telegram POSTs each update to WEBHOOK_URL; we answer once it is handled.

Why not PTB's `Application.run_webhook`: its handler puts the update on a queue and answers
Telegram 200 straight away, before any handler ran. Telegram never sends an update again once
it got a 2xx, so a crash, a kill or a SIGTERM loses whatever was queued: the very loss that
`bot.polling` prevents in polling mode. This small tornado server (tornado is what PTB's
webhooks extra installs) does the same job with the same guarantee:

* the `X-Telegram-Bot-Api-Secret-Token` header must equal WEBHOOK_SECRET, as in PTB:
  otherwise 403 and nothing is read;
* the update goes through `DurablePoller.handle`, the polling path (handlers, then the
  conversation states and the update's entry in the record of handled updates committed in one
  transaction), and only then is 200 answered. A failure answers 500, so Telegram delivers it
  again; a body whose `update_id` is not an integer gets 400 (a 500 would come back forever);
* a replay (our 200 lost: a crash between the commit and the answer) is acknowledged without
  being handled twice. The rule is the poller's, by id and content, never "not above the last
  id": Telegram's webhook sends each chat's updates from its own queue, so a retried update can
  come after later ones of other chats, and after a quiet week the ids restart, possibly lower;
* updates are handled one at a time (polling handles different users side by side, but
  Telegram does not promise one user's updates in order over several webhook connections),
  and setWebhook asks Telegram for `max_connections=1`, so it sends the next update only
  after our answer to the one in hand (not necessarily in id order: see above).
"""

from __future__ import annotations

import asyncio
import errno
import hmac
import json
import logging
import re
import socket
from urllib.parse import urlparse

import tornado.web
from telegram import Update
from telegram.error import TelegramError
from telegram.ext import Application
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

from bot.config import ConfigError, Settings
from bot.handlers.common import SERVICES_KEY
from bot.polling import DurablePoller
from bot.runner import remove_signal_handlers, started, stop_on_signals

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
MAX_BODY = 1 << 20  # updates are a few kB; Telegram's own limit for files is elsewhere


class WebhookReceiver:
    """Checks, de-duplicates and handles one POSTed update at a time."""

    def __init__(self, poller: DurablePoller, secret: str) -> None:
        self.poller = poller
        self.secret = secret.encode()
        self._lock = asyncio.Lock()
        self._loaded = False
        self._closing = False

    def authorised(self, header: str | None) -> bool:
        return header is not None and hmac.compare_digest(header.encode(), self.secret)

    async def receive(self, body: bytes) -> int:
        """Handle one update; returns the HTTP status to answer."""
        try:
            data = json.loads(body)
        except ValueError:  # malformed JSON: Telegram never sends it
            data = None
        if not isinstance(data, dict):
            log.warning("Webhook request refused: the body is not an update")
            return 400
        update_id = data.get("update_id")
        if not isinstance(update_id, int) or isinstance(update_id, bool):
            # 400, not 500: Telegram would deliver a 500 again and again.
            log.warning("Webhook request refused: its update_id is not an integer")
            return 400
        try:
            update = Update.de_json(data, self.poller.app.bot)
        except Exception:  # the fields of an update, malformed
            log.warning("Webhook request refused: the body is not an update")
            return 400
        async with self._lock:
            if self._closing:
                return 503  # Telegram delivers it again after the restart
            if not self._loaded:
                await self.poller.load()
                self._loaded = True
            if self.poller.already_handled(update):
                log.info("Update %d was already handled; acknowledged again", update_id)
                return 200
            try:
                await self.poller.handle(update)
            except Exception:
                log.exception("Update %d could not be handled; Telegram will retry", update_id)
                return 500
        return 200

    async def close(self) -> None:
        """Finish the update in hand; later requests get 503."""
        async with self._lock:
            self._closing = True


class _UpdateHandler(tornado.web.RequestHandler):
    def initialize(self, receiver: WebhookReceiver) -> None:
        self.receiver = receiver

    async def post(self) -> None:
        """One update from Telegram."""
        if not self.receiver.authorised(self.request.headers.get(SECRET_HEADER)):
            log.warning(
                "Webhook request from %s refused: missing or wrong secret token",
                self.request.remote_ip,
            )
            self.set_status(403)
            return
        self.set_status(await self.receiver.receive(self.request.body))


def _log_request(handler: tornado.web.RequestHandler) -> None:
    # Not tornado's access log at INFO: one line per update is noise, and paths are private.
    request = handler.request
    log.debug("%d %s %.1fms", handler.get_status(), request.method, 1000 * request.request_time())


def _bind(settings: Settings) -> list[socket.socket]:
    try:
        return bind_sockets(settings.webhook_port, settings.webhook_listen)
    except OSError as exc:
        reason = "address in use" if exc.errno == errno.EADDRINUSE else exc.strerror or str(exc)
        raise ConfigError(
            f"WEBHOOK_PORT: cannot listen on {settings.webhook_listen}:{settings.webhook_port} "
            f"({reason})"
        ) from None


async def run_webhook(
    app: Application,
    settings: Settings,
    stop: asyncio.Event | None = None,
    *,
    handle_signals: bool = True,
    sockets: list[socket.socket] | None = None,
) -> None:
    """Serve the webhook until SIGTERM/SIGINT (or `stop`), finishing the update in hand.

    `sockets`: already bound listening sockets (tests bind port 0 first to know the URL).
    """
    if settings.webhook_url is None or settings.webhook_secret is None:
        raise ConfigError("WEBHOOK_URL and WEBHOOK_SECRET are required in webhook mode")
    stop = stop or asyncio.Event()
    path = urlparse(settings.webhook_url).path or "/"
    sockets = sockets if sockets is not None else _bind(settings)
    signals = stop_on_signals(stop) if handle_signals else ()
    try:
        async with started(app):
            poller = DurablePoller(app, app.bot_data[SERVICES_KEY].db)
            receiver = WebhookReceiver(poller, settings.webhook_secret)
            server = HTTPServer(
                tornado.web.Application(
                    [(re.escape(path), _UpdateHandler, {"receiver": receiver})],
                    log_function=_log_request,
                ),
                max_body_size=MAX_BODY,
            )
            server.add_sockets(sockets)
            try:
                await app.bot.set_webhook(
                    url=settings.webhook_url,
                    secret_token=settings.webhook_secret,
                    allowed_updates=Update.ALL_TYPES,
                    max_connections=1,
                    drop_pending_updates=False,
                )
                host, port = sockets[0].getsockname()[:2]
                log.info(
                    "Bot @%s started (webhook, listening on %s:%d)", app.bot.username, host, port
                )
                await stop.wait()
            except TelegramError as exc:
                raise ConfigError(f"WEBHOOK_URL: could not set the webhook: {exc}") from None
            finally:
                server.stop()
                await receiver.close()
                await server.close_all_connections()
            # The webhook stays set: Telegram keeps new updates until the bot is back.
            log.info("Bot stopped after handling %d updates", poller.handled)
    finally:
        remove_signal_handlers(signals)
