"""What the bot did: recorded calls and messages, and waiting for them without sleeping."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable
from typing import Any

from .state import JSON, ApiCall, Pulse, SentMessage, WebhookDelivery

_LOG = logging.getLogger("bot.localapi")


class Records:
    """Mixin holding the records of :class:`~bot.localapi.LocalBotApi`."""

    sent: list[SentMessage]
    calls: list[ApiCall]
    callback_answers: list[JSON]
    webhook_deliveries: list[WebhookDelivery]
    internal_errors: list[BaseException]

    def _init_records(self) -> None:
        self.sent = []
        self.calls = []
        self.callback_answers = []
        self.webhook_deliveries = []
        self.internal_errors = []
        self._sent_pulse = Pulse()
        self._call_pulse = Pulse()
        self._delivery_pulse = Pulse()
        self._by_chat: dict[int | None, list[SentMessage]] = {}
        self._cursors: dict[int | None, int] = {}  # next_message position in _by_chat[chat]
        self._listeners: list[Callable[[SentMessage], Any]] = []
        self._counts: Counter[str] = Counter()

    # -- recording -------------------------------------------------------------------------

    def _record_sent(self, record: SentMessage) -> None:
        self.sent.append(record)
        self._by_chat.setdefault(record.chat_id, []).append(record)
        self._sent_pulse.notify()
        for listener in list(self._listeners):
            try:
                listener(record)
            except Exception as exc:  # a broken listener must not break the API
                _LOG.exception("listener failed")
                self.internal_errors.append(exc)

    def _record_call(self, method: str, params: JSON, status: int) -> None:
        self.calls.append(ApiCall(method, params, status))
        self._counts[method] += 1
        if status == 403:
            self._counts[" 403"] += 1
        elif status == 429:
            self._counts[" 429"] += 1
        elif status >= 500:
            self._counts[" 5xx"] += 1
        self._call_pulse.notify()

    def add_listener(self, callback: Callable[[SentMessage], Any]) -> None:
        """Call ``callback(record)`` synchronously for every new :class:`SentMessage`."""
        self._listeners.append(callback)

    # -- queries ---------------------------------------------------------------------------

    def messages_to(self, chat_id: int) -> list[SentMessage]:
        """All sends and edits to ``chat_id``, in order."""
        return list(self._by_chat.get(chat_id, ()))

    def last_message(self, chat_id: int) -> SentMessage | None:
        """The latest send or edit to ``chat_id``."""
        records = self.messages_to(chat_id)
        return records[-1] if records else None

    @property
    def stats(self) -> JSON:
        """Counters: ``calls``, ``methods`` (per method), ``sent``, ``429`` (all 429s),
        ``rate_limited`` (429s from the rate limiter), ``5xx``, ``403``, ``getUpdates``,
        ``webhook_deliveries`` and ``internal_errors``."""
        methods = {k: v for k, v in self._counts.items() if not k.startswith(" ")}
        return {
            "calls": len(self.calls),
            "methods": methods,
            "sent": len(self.sent),
            "429": self._counts[" 429"],
            "rate_limited": self._counts[" rate_limited"],
            "5xx": self._counts[" 5xx"],
            "403": self._counts[" 403"],
            "getUpdates": methods.get("getUpdates", 0),
            "webhook_deliveries": len(self.webhook_deliveries),
            "internal_errors": len(self.internal_errors),
        }

    def summary(self, chat_id: int | None = None, last: int = 15) -> str:
        """Readable list of the latest records (to ``chat_id`` when given)."""
        records = self.sent if chat_id is None else self.messages_to(chat_id)
        where = "in total" if chat_id is None else f"to chat {chat_id}"
        lines = [f"{len(records)} message(s) sent {where}" + (":" if records else ".")]
        start = max(0, len(records) - last)
        if start:
            lines.append(f"  … {start} earlier")
        lines += [f"  [{start + i}] {r.summary()}" for i, r in enumerate(records[start:])]
        return "\n".join(lines)

    # -- waiting ---------------------------------------------------------------------------

    @staticmethod
    async def _scan(
        items: list[Any], pulse: Pulse, start: int, predicate: Callable[[Any], bool]
    ) -> tuple[int, Any]:
        """Wait (without timeout) for the first item from ``start`` matching ``predicate``."""
        index = start
        while True:
            while index < len(items):
                item = items[index]
                index += 1
                if predicate(item):
                    return index, item
            await pulse.wait()

    async def wait_for(
        self,
        predicate: Callable[[SentMessage], bool],
        timeout: float = 10.0,
        *,
        chat_id: int | None = None,
    ) -> SentMessage:
        """The first record (already sent or future) matching ``predicate`` (and ``chat_id``).

        Raises TimeoutError with a summary of what was sent (to ``chat_id``).
        """

        records = self.sent if chat_id is None else self._by_chat.setdefault(chat_id, [])
        try:
            async with asyncio.timeout(timeout):
                return (await self._scan(records, self._sent_pulse, 0, predicate))[1]
        except TimeoutError:
            raise TimeoutError(
                f"no matching message within {timeout}s; {self.summary(chat_id)}"
            ) from None

    async def next_message(
        self,
        chat_id: int,
        timeout: float = 10.0,
        *,
        predicate: Callable[[SentMessage], bool] | None = None,
    ) -> SentMessage:
        """The next send/edit to ``chat_id`` after the one this returned last time.

        Each chat has its own cursor, starting before the first message. With ``predicate``,
        non-matching records are skipped (the cursor moves past them).
        """

        records = self._by_chat.setdefault(chat_id, [])
        start = self._cursors.get(chat_id, 0)
        try:
            async with asyncio.timeout(timeout):
                index, record = await self._scan(
                    records, self._sent_pulse, start, predicate or (lambda _: True)
                )
        except TimeoutError:
            raise TimeoutError(
                f"no new message to chat {chat_id} within {timeout}s "
                f"({start} already returned); {self.summary(chat_id)}"
            ) from None
        self._cursors[chat_id] = index
        return record

    def drain(self, chat_id: int) -> list[SentMessage]:
        """Records to ``chat_id`` not yet returned by :meth:`next_message`; moves the cursor."""
        records = self._by_chat.get(chat_id, [])
        start = self._cursors.get(chat_id, 0)
        self._cursors[chat_id] = len(records)
        return records[start:]

    async def wait_for_call(
        self, predicate: Callable[[ApiCall], bool], timeout: float = 10.0
    ) -> ApiCall:
        """The first answered request (past or future) matching ``predicate``."""
        try:
            async with asyncio.timeout(timeout):
                return (await self._scan(self.calls, self._call_pulse, 0, predicate))[1]
        except TimeoutError:
            recent = ", ".join(f"{c.method}:{c.status}" for c in self.calls[-15:])
            raise TimeoutError(
                f"no matching call within {timeout}s; last calls: {recent or 'none'}"
            ) from None

    async def wait_for_delivery(
        self, predicate: Callable[[WebhookDelivery], bool], timeout: float = 10.0
    ) -> WebhookDelivery:
        """The first webhook delivery attempt (past or future) matching ``predicate``."""
        try:
            async with asyncio.timeout(timeout):
                pulse = self._delivery_pulse
                return (await self._scan(self.webhook_deliveries, pulse, 0, predicate))[1]
        except TimeoutError:
            raise TimeoutError(
                f"no matching webhook delivery within {timeout}s; "
                f"attempts: {self.webhook_deliveries[-15:]}"
            ) from None
