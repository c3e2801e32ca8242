"""Users, chats and the messages stored in them."""

from __future__ import annotations

import copy
import time

from .records import Records
from .state import JSON, ApiError, UserInfo


class ChatStore(Records):
    """Mixin: simulated users and chats and every message in them (bot's and users')."""

    bot_id: int
    bot_username: str
    bot_name: str
    deleted: list[tuple[int, int]]

    def _init_chats(self, token: str, bot_username: str, bot_name: str) -> None:
        prefix = token.split(":", 1)[0]
        self.bot_id = int(prefix) if prefix.isdigit() else 1
        self.bot_username = bot_username
        self.bot_name = bot_name
        self.deleted = []
        self._users: dict[int, UserInfo] = {}
        self._chat_types: dict[int, str] = {}
        self._chat_titles: dict[int, str] = {}
        self._messages: dict[int, dict[int, JSON]] = {}
        self._last_message_id: dict[int, int] = {}
        self._blocked: set[int] = set()
        self._reply_keyboards: dict[int, JSON] = {}
        self._open_callbacks: set[str] = set()

    # -- users and chats -------------------------------------------------------------------

    def bot_user(self) -> JSON:
        """The bot's ``User`` object."""
        return {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": self.bot_name,
            "username": self.bot_username,
        }

    def add_user(
        self,
        user_id: int,
        first_name: str = "Ana",
        language_code: str | None = "en",
        username: str | None = None,
        last_name: str | None = None,
    ) -> UserInfo:
        """Register (or replace) a simulated user."""
        info = UserInfo(user_id, first_name, language_code, username, last_name)
        self._users[user_id] = info
        return info

    def user(self, user_id: int) -> UserInfo:
        """The user with that id; unknown ids get a default user ("User <id>", English)."""
        if user_id not in self._users:
            self._users[user_id] = UserInfo(user_id, f"User {user_id}", "en")
        return self._users[user_id]

    def add_chat(self, chat_id: int, title: str | None = None, chat_type: str = "group") -> None:
        """Declare a group/supergroup/channel chat (negative ids default to groups anyway)."""
        self._chat_types[chat_id] = chat_type
        if title is not None:
            self._chat_titles[chat_id] = title

    def chat_type(self, chat_id: int) -> str:
        """``private`` for positive ids unless declared otherwise, else ``group``."""
        return self._chat_types.get(chat_id) or ("private" if chat_id > 0 else "group")

    def chat_object(self, chat_id: int) -> JSON:
        """The ``Chat`` object of ``chat_id``."""
        kind = self.chat_type(chat_id)
        if kind != "private":
            title = self._chat_titles.get(chat_id, f"Group {chat_id}")
            return {"id": chat_id, "type": kind, "title": title}
        data = self.user(chat_id).to_dict()
        chat: JSON = {"id": chat_id, "type": "private", "first_name": data["first_name"]}
        for key in ("last_name", "username"):
            if key in data:
                chat[key] = data[key]
        return chat

    def block(self, user_id: int) -> None:
        """The user blocks the bot: sends to that chat fail with 403 until unblocked."""
        self._blocked.add(user_id)

    def unblock(self, user_id: int) -> None:
        """Undo :meth:`block` (any message from the user also unblocks, like Telegram)."""
        self._blocked.discard(user_id)

    def is_blocked(self, chat_id: int) -> bool:
        """Whether sends to ``chat_id`` currently fail with 403."""
        return chat_id in self._blocked

    # -- messages --------------------------------------------------------------------------

    def message(self, chat_id: int, message_id: int) -> JSON | None:
        """Current state of a stored message (after edits), None if unknown or deleted."""
        stored = self._messages.get(chat_id, {}).get(message_id)
        return copy.deepcopy(stored) if stored is not None else None

    def chat_messages(self, chat_id: int) -> list[JSON]:
        """Current state of all messages in a chat (bot's and users'), oldest first."""
        return [copy.deepcopy(m) for _, m in sorted(self._messages.get(chat_id, {}).items())]

    def reply_keyboard(self, chat_id: int) -> JSON | None:
        """The reply keyboard the bot last showed in ``chat_id`` (None once removed)."""
        return copy.deepcopy(self._reply_keyboards.get(chat_id))

    def _store_message(self, chat_id: int, sender: JSON, content: JSON) -> JSON:
        message_id = self._last_message_id.get(chat_id, 0) + 1
        self._last_message_id[chat_id] = message_id
        message: JSON = {
            "message_id": message_id,
            "from": sender,
            "chat": self.chat_object(chat_id),
            "date": int(time.time()),
            **content,
        }
        self._messages.setdefault(chat_id, {})[message_id] = message
        return message

    def _stored(self, chat_id: int, message_id: int, missing: str) -> JSON:
        message = self._messages.get(chat_id, {}).get(message_id)
        if message is None:
            raise ApiError(400, f"Bad Request: {missing}")
        return message

    def _latest_with_button(self, chat_id: int, label: str) -> tuple[JSON, JSON] | None:
        """The newest bot message in the chat with an inline button labelled ``label``."""
        folded = label.casefold()
        for exact in (True, False):
            for _, message in sorted(self._messages.get(chat_id, {}).items(), reverse=True):
                rows = (message.get("reply_markup") or {}).get("inline_keyboard") or []
                for button in (b for row in rows for b in row):
                    text = str(button.get("text", ""))
                    if (text == label) if exact else (folded in text.casefold()):
                        return message, button
        return None
