"""setWebhook / deleteWebhook / getWebhookInfo and delivering updates by HTTP POST."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time

import httpx

from .state import JSON, ApiError, Req, WebhookDelivery, api_method
from .updates import Updates, WebhookConfig

_LOG = logging.getLogger("bot.localapi")
_SECRET = re.compile(r"[A-Za-z0-9_-]{1,256}")
#: Backoff after a failed delivery: doubles from the first value up to the second (seconds).
RETRY_BACKOFF = (0.05, 1.0)


class Webhooks(Updates):
    """Mixin: webhook configuration and the delivery task."""

    _running: bool

    def _init_webhooks(self) -> None:
        self._running = False
        self._delivery_task: asyncio.Task[None] | None = None

    @api_method("setWebhook")
    async def _set_webhook(self, req: Req) -> bool:
        url = str(req.get("url") or "")
        if req.get("drop_pending_updates"):
            self._pending.clear()
        if not url:
            self.webhook = WebhookConfig()
            await self._restart_delivery()
            return True
        if not url.startswith(("http://", "https://")):
            raise ApiError(
                400, "Bad Request: bad webhook: An HTTPS URL must be provided for webhook"
            )
        secret = req.get("secret_token")
        if secret is not None and not _SECRET.fullmatch(str(secret)):
            raise ApiError(400, "Bad Request: secret token contains unallowed characters")
        allowed = req.get("allowed_updates")
        if isinstance(allowed, list):
            self._allowed = [str(kind) for kind in allowed] or None
        self.webhook = WebhookConfig(
            url=url,
            secret_token=None if secret is None else str(secret),
            max_connections=req.get_int("max_connections", 40),
            allowed_updates=self._allowed,
            ip_address=req.get("ip_address"),
        )
        self._poll_wake.notify()  # a running long poll ends with 409
        await self._restart_delivery()
        return True

    @api_method("deleteWebhook")
    async def _delete_webhook(self, req: Req) -> bool:
        if req.get("drop_pending_updates"):
            self._pending.clear()
        self.webhook = WebhookConfig()
        await self._restart_delivery()
        return True

    @api_method("getWebhookInfo")
    async def _get_webhook_info(self, req: Req) -> JSON:
        info: JSON = {
            "url": self.webhook.url,
            "has_custom_certificate": False,
            "pending_update_count": self.pending_updates,
        }
        if self.webhook.url:
            info["max_connections"] = self.webhook.max_connections
            for key in ("allowed_updates", "ip_address", "last_error_date", "last_error_message"):
                if getattr(self.webhook, key) is not None:
                    info[key] = getattr(self.webhook, key)
        return info

    async def _restart_delivery(self) -> None:
        """(Re)start the delivery task for the current webhook, or just stop it."""
        old, self._delivery_task = self._delivery_task, None
        if old is not None:
            old.cancel()
            await asyncio.gather(old, return_exceptions=True)
        if self.webhook.url and self._running:
            self._delivery_task = asyncio.create_task(
                self._webhook_loop(self.webhook), name="localapi-webhook"
            )

    async def _webhook_loop(self, config: WebhookConfig) -> None:
        """POST pending updates one at a time, in order; retry failures with backoff."""
        headers = {"Content-Type": "application/json"}
        if config.secret_token:
            headers["X-Telegram-Bot-Api-Secret-Token"] = config.secret_token
        failures = 0
        async with httpx.AsyncClient(timeout=10.0, trust_env=False) as client:
            while True:
                batch = self._deliverable(1)
                if not batch:
                    await self._poll_wake.wait()
                    continue
                update = batch[0]
                try:
                    response = await client.post(
                        config.url, content=json.dumps(update).encode(), headers=headers
                    )
                    status = response.status_code
                    error = f"Wrong response from the webhook: {status} {response.reason_phrase}"
                except httpx.HTTPError as exc:
                    status, error = 0, f"Connection error: {exc!r}"
                self.webhook_deliveries.append(WebhookDelivery(update["update_id"], status))
                self._delivery_pulse.notify()
                if 200 <= status < 300:
                    failures = 0
                    self._pending = [
                        u for u in self._pending if u["update_id"] > update["update_id"]
                    ]
                    continue
                _LOG.debug("webhook delivery of %s failed: %s", update["update_id"], error)
                config.last_error_date = int(time.time())
                config.last_error_message = error
                first, cap = RETRY_BACKOFF
                await asyncio.sleep(min(cap, first * 2**failures))
                failures += 1
