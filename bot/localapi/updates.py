"""The update queue, users acting on the bot, and getUpdates long polling."""

from __future__ import annotations

import asyncio
import copy
import time
from dataclasses import dataclass
from typing import Any

from .chats import ChatStore
from .formatting import command_entities
from .state import JSON, ApiError, Pulse, Req, api_method

#: Update types Telegram only sends when explicitly listed in ``allowed_updates``.
DEFAULT_EXCLUDED = frozenset({"chat_member", "message_reaction", "message_reaction_count"})
CONFLICT_WEBHOOK = (
    "Conflict: can't use getUpdates method while webhook is active; "
    "use deleteWebhook to delete the webhook first"
)
CONFLICT_POLLING = (
    "Conflict: terminated by other getUpdates request; "
    "make sure that only one bot instance is running"
)
#: tdlib's TQueue refuses an offset more than this above the next update id ("Specified from_id
#: is in the future"); the Bot API then serves the queue from its head and confirms nothing.
FUTURE_OFFSET_SLACK = 10


@dataclass
class WebhookConfig:
    """The webhook as set by setWebhook (``url`` empty: no webhook)."""

    url: str = ""
    secret_token: str | None = None
    max_connections: int = 40
    allowed_updates: list[str] | None = None
    ip_address: str | None = None
    last_error_date: int | None = None
    last_error_message: str | None = None


def update_type(update: JSON) -> str:
    """The kind of an update, e.g. ``message`` or ``callback_query``."""
    return next((key for key in update if key != "update_id"), "")


class Updates(ChatStore):
    """Mixin: pending updates, the simulated users producing them, and getUpdates."""

    confirmed_offset: int
    webhook: WebhookConfig

    def _init_updates(self) -> None:
        self.confirmed_offset = 0
        self.webhook = WebhookConfig()
        self._pending: list[JSON] = []
        self._last_update_id = 0
        self._allowed: list[str] | None = None
        self._poll_wake = Pulse()
        self._poll_generation = 0
        self._polling = 0
        self._polling_pulse = Pulse()
        self._stopping = False

    # -- the queue -------------------------------------------------------------------------

    @property
    def pending_updates(self) -> int:
        """Number of updates not yet confirmed (getUpdates offset or webhook 2xx)."""
        return len(self._pending)

    @property
    def polling(self) -> int:
        """Number of getUpdates long polls currently waiting for an update."""
        return self._polling

    async def wait_until_polling(self, timeout: float = 10.0) -> None:
        """Return once a getUpdates long poll is waiting (TimeoutError otherwise)."""
        try:
            async with asyncio.timeout(timeout):
                while not self._polling:
                    await self._polling_pulse.wait()
        except TimeoutError:
            raise TimeoutError(f"no getUpdates long poll within {timeout}s") from None

    def pending(self) -> list[JSON]:
        """Copies of the pending updates, oldest first."""
        return copy.deepcopy(self._pending)

    def queue_update(self, update: JSON) -> int:
        """Queue a raw update (``update_id`` is assigned when missing); returns its id."""
        update = copy.deepcopy(update)
        update_id = int(update.pop("update_id", None) or self._last_update_id + 1)
        in_order = update_id > self._last_update_id
        self._last_update_id = max(self._last_update_id, update_id)
        self._pending.append({"update_id": update_id, **update})
        if not in_order:
            self._pending.sort(key=lambda item: item["update_id"])
        self._poll_wake.notify()
        return update_id

    def _wanted(self, update: JSON) -> bool:
        kind = update_type(update)
        return kind not in DEFAULT_EXCLUDED if self._allowed is None else kind in self._allowed

    def _deliverable(self, limit: int) -> list[JSON]:
        wanted: list[JSON] = []
        for update in self._pending:
            if len(wanted) >= limit:
                break
            if self._wanted(update):
                wanted.append(update)
        return copy.deepcopy(wanted)

    def _confirm(self, offset: int) -> None:
        if offset > self._last_update_id + 1 + FUTURE_OFFSET_SLACK:
            return  # an offset from before the ids restarted lower: nothing is confirmed
        if offset > 0:
            self._pending = [u for u in self._pending if u["update_id"] >= offset]
            self.confirmed_offset = max(self.confirmed_offset, offset)
        elif offset < 0:
            self._pending = self._pending[offset:]

    def restart_update_ids(self, first_id: int) -> None:
        """Number the next updates from ``first_id`` on, as Telegram does after a week without
        updates (it picks the next id at random then, often far below the last one).

        The queue must be empty, as it is after a week (Telegram keeps updates 24 hours).
        Afterwards getUpdates with an offset from before answers with the new queue from its
        head, confirming nothing, and the webhook delivers the new ids.
        """
        if self._pending:
            raise RuntimeError(f"{len(self._pending)} updates pending; Telegram's queue was empty")
        if first_id < 1:
            raise ValueError("update ids are positive")
        self._last_update_id = first_id - 1
        self.confirmed_offset = 0

    # -- users acting (all coroutines; they only queue updates and never block) -------------

    async def send_user_message(
        self,
        user_id: int,
        content: JSON,
        chat_id: int | None = None,
        chat_type: str | None = None,
    ) -> int:
        """The user sends a message with ``content`` (e.g. ``{"contact": {...}}``).

        ``chat_id`` defaults to the private chat (== user_id); ``chat_type`` defaults to
        ``private`` there and ``group`` for negative ids. Returns the update_id.
        """
        chat = user_id if chat_id is None else chat_id
        if chat_type == "private" and chat != user_id:
            raise ValueError("a private chat's id must equal the user id")
        if chat_type is not None:
            self._chat_types[chat] = chat_type
        if chat == user_id:
            self.unblock(user_id)  # writing to the bot again unblocks it, as in Telegram
        sender = self.user(user_id).to_dict()
        message = self._store_message(chat, sender, copy.deepcopy(content))
        return self.queue_update({"message": copy.deepcopy(message)})

    async def send_text(
        self,
        user_id: int,
        text: str,
        chat_id: int | None = None,
        chat_type: str | None = None,
    ) -> int:
        """The user sends ``text``; a leading ``/command`` gets its bot_command entity."""
        content: JSON = {"text": text}
        if entities := command_entities(text):
            content["entities"] = entities
        return await self.send_user_message(user_id, content, chat_id, chat_type)

    async def edit_user_message(
        self, user_id: int, message_id: int, text: str, chat_id: int | None = None
    ) -> int:
        """The user edits the text of a message they sent: the stored message changes and an
        ``edited_message`` update (the whole message as it now is, with ``edit_date``) is
        queued. Returns the update_id.

        As in Telegram, only the sender may edit, only a text message, and only to a new text
        (LookupError/ValueError otherwise).
        """
        chat = user_id if chat_id is None else chat_id
        stored = self._messages.get(chat, {}).get(message_id)
        if stored is None or stored["from"].get("id") != user_id:
            raise LookupError(f"user {user_id} sent no message {message_id} in chat {chat}")
        if "text" not in stored:
            raise ValueError(f"message {message_id} in chat {chat} has no text to edit")
        if not text or text == stored["text"]:
            raise ValueError("the new text must be non-empty and differ from the current one")
        stored["text"] = text
        stored.pop("entities", None)
        if entities := command_entities(text):
            stored["entities"] = entities
        stored["edit_date"] = max(int(time.time()), stored["date"])
        return self.queue_update({"edited_message": copy.deepcopy(stored)})

    async def send_sticker(
        self, user_id: int, chat_id: int | None = None, emoji: str = "👍"
    ) -> int:
        """The user sends a sticker (no text)."""
        sticker = {
            "file_id": f"sticker-{user_id}",
            "file_unique_id": f"usticker-{user_id}",
            "type": "regular",
            "width": 512,
            "height": 512,
            "is_animated": False,
            "is_video": False,
            "emoji": emoji,
        }
        return await self.send_user_message(user_id, {"sticker": sticker}, chat_id)

    async def send_photo(
        self, user_id: int, chat_id: int | None = None, caption: str | None = None
    ) -> int:
        """The user sends a photo (no text; optional caption)."""
        sizes = [
            {
                "file_id": f"photo-{user_id}-{w}",
                "file_unique_id": f"uphoto-{user_id}-{w}",
                "width": w,
                "height": w,
                "file_size": w * 40,
            }
            for w in (90, 320)
        ]
        content: JSON = {"photo": sizes}
        if caption is not None:
            content["caption"] = caption
        return await self.send_user_message(user_id, content, chat_id)

    async def press_button(
        self,
        user_id: int,
        message_id: int,
        callback_data: str,
        chat_id: int | None = None,
        *,
        check: bool = True,
    ) -> int:
        """The user presses an inline button; queues a callback_query, returns its update_id.

        The query's ``message`` is the stored message (current state) and its id is
        ``f"cq{update_id}"``. With ``check`` (default) the message must exist and carry a
        button with that ``callback_data`` (LookupError/ValueError otherwise); without it an
        unknown message becomes an inaccessible message (date 0).
        """
        chat = user_id if chat_id is None else chat_id
        stored = self._messages.get(chat, {}).get(message_id)
        if stored is None:
            if check:
                raise LookupError(f"no message {message_id} in chat {chat}")
            message: JSON = {"message_id": message_id, "chat": self.chat_object(chat), "date": 0}
        else:
            rows = (stored.get("reply_markup") or {}).get("inline_keyboard") or []
            data = [button.get("callback_data") for row in rows for button in row]
            if check and callback_data not in data:
                raise ValueError(
                    f"message {message_id} in chat {chat} has no button {callback_data!r}; "
                    f"callback_data present: {data}"
                )
            message = copy.deepcopy(stored)
        update_id = self._last_update_id + 1
        query_id = f"cq{update_id}"
        self._open_callbacks.add(query_id)
        query = {
            "id": query_id,
            "from": self.user(user_id).to_dict(),
            "message": message,
            "chat_instance": str(abs(chat) * 7919 + self.bot_id),
            "data": callback_data,
        }
        return self.queue_update({"update_id": update_id, "callback_query": query})

    async def press_button_by_text(
        self, user_id: int, label: str, chat_id: int | None = None
    ) -> int:
        """Press the inline button labelled ``label`` on the newest message showing it.

        Exact label match first, then case-insensitive substring. Returns the update_id.
        """
        chat = user_id if chat_id is None else chat_id
        found = self._latest_with_button(chat, label)
        if found is None:
            labels = [
                button.get("text")
                for message in self._messages.get(chat, {}).values()
                for row in (message.get("reply_markup") or {}).get("inline_keyboard") or []
                for button in row
            ]
            raise LookupError(f"no inline button {label!r} in chat {chat}; buttons: {labels}")
        message, button = found
        if "callback_data" not in button:
            raise ValueError(f"button {label!r} has no callback_data: {button}")
        return await self.press_button(
            user_id, message["message_id"], button["callback_data"], chat
        )

    def callback_answer(self, update_id: int) -> JSON | None:
        """The answerCallbackQuery params for the query of that update, if answered."""
        query_id = f"cq{update_id}"
        return next(
            (a for a in self.callback_answers if a.get("callback_query_id") == query_id), None
        )

    # -- getUpdates ------------------------------------------------------------------------

    @api_method("getUpdates")
    async def _get_updates(self, req: Req) -> list[JSON]:
        if self.webhook.url:
            raise ApiError(409, CONFLICT_WEBHOOK)
        offset = req.get_int("offset", 0)
        limit = min(100, max(1, req.get_int("limit", 100)))
        try:
            timeout = float(req.get("timeout") or 0)
        except (TypeError, ValueError):
            raise ApiError(400, "Bad Request: invalid timeout specified") from None
        allowed: Any = req.get("allowed_updates")
        if isinstance(allowed, list):
            self._allowed = [str(kind) for kind in allowed] or None
        self._confirm(offset)
        self._poll_generation += 1
        generation = self._poll_generation
        self._poll_wake.notify()  # an older long poll now ends with 409, like Telegram
        batch = self._deliverable(limit)
        if batch or timeout <= 0 or self._stopping:
            return batch
        self._polling += 1
        self._polling_pulse.notify()
        try:
            async with asyncio.timeout(timeout):
                while True:
                    await self._poll_wake.wait()
                    if req.closed.is_set() or self._stopping:
                        return []
                    if self.webhook.url:
                        raise ApiError(409, CONFLICT_WEBHOOK)
                    if generation != self._poll_generation:
                        raise ApiError(409, CONFLICT_POLLING)
                    if batch := self._deliverable(limit):
                        return batch
        except TimeoutError:
            return []
        finally:
            self._polling -= 1
