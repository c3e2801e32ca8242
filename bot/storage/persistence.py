"""A python-telegram-bot persistence on the bot's own SQLite database.

Only conversation states and `user_data` (the registration draft) are stored. The app writes
them after every update (see `bot.polling`), so a restart resumes each conversation at the
question it had reached.

PTB's own periodic write is pushed out of reach (`update_interval`, one year): it would take
PTB's persistence lock and then wait for the database lock, while `DurablePoller.handle`
holds the database lock (its transaction) and waits for PTB's lock: a deadlock, measured
within a minute under load (bench/throughput.py); the bot then neither answers nor stops on
SIGTERM. PTB still writes once more at shutdown.
"""

from __future__ import annotations

import json
from typing import Any

from telegram.ext import BasePersistence, PersistenceInput
from telegram.ext._utils.types import CDCData, ConversationDict, ConversationKey

from bot.storage.db import Database

#: Seconds between PTB's periodic writes: never, in practice (see the module docstring).
NO_PERIODIC_WRITE = 365 * 24 * 3600.0


class SQLitePersistence(BasePersistence[dict[str, Any], dict[str, Any], dict[str, Any]]):
    def __init__(self, db: Database, update_interval: float = NO_PERIODIC_WRITE) -> None:
        super().__init__(
            store_data=PersistenceInput(
                bot_data=False, chat_data=False, user_data=True, callback_data=False
            ),
            update_interval=update_interval,
        )
        self.db = db

    async def get_user_data(self) -> dict[int, dict[str, Any]]:
        await self.db.open()
        rows = await self.db.fetchall("SELECT user_id, data FROM user_data")
        return {int(r[0]): json.loads(r[1]) for r in rows}

    async def update_user_data(self, user_id: int, data: dict[str, Any]) -> None:
        if not data:
            await self.drop_user_data(user_id)
            return
        await self.db.execute(
            "INSERT INTO user_data (user_id, data) VALUES (?, ?) "
            "ON CONFLICT (user_id) DO UPDATE SET data = excluded.data",
            (user_id, json.dumps(data, ensure_ascii=False)),
        )

    async def drop_user_data(self, user_id: int) -> None:
        await self.db.execute("DELETE FROM user_data WHERE user_id = ?", (user_id,))

    async def refresh_user_data(self, user_id: int, user_data: dict[str, Any]) -> None:
        pass

    async def get_conversations(self, name: str) -> ConversationDict:
        await self.db.open()
        rows = await self.db.fetchall(
            "SELECT key, state FROM conversations WHERE name = ?", (name,)
        )
        return {tuple(json.loads(r[0])): json.loads(r[1]) for r in rows}

    async def update_conversation(
        self, name: str, key: ConversationKey, new_state: object | None
    ) -> None:
        if new_state is None:
            await self.db.execute(
                "DELETE FROM conversations WHERE name = ? AND key = ?", (name, json.dumps(key))
            )
            return
        await self.db.execute(
            "INSERT INTO conversations (name, key, state) VALUES (?, ?, ?) "
            "ON CONFLICT (name, key) DO UPDATE SET state = excluded.state",
            (name, json.dumps(key), json.dumps(new_state)),
        )

    # Chat data, bot data and callback data are not stored (see store_data above).
    async def get_chat_data(self) -> dict[int, dict[str, Any]]:
        return {}

    async def update_chat_data(self, chat_id: int, data: dict[str, Any]) -> None:
        pass

    async def drop_chat_data(self, chat_id: int) -> None:
        pass

    async def refresh_chat_data(self, chat_id: int, chat_data: dict[str, Any]) -> None:
        pass

    async def get_bot_data(self) -> dict[str, Any]:
        return {}

    async def update_bot_data(self, data: dict[str, Any]) -> None:
        pass

    async def refresh_bot_data(self, bot_data: dict[str, Any]) -> None:
        pass

    async def get_callback_data(self) -> CDCData | None:
        return None

    async def update_callback_data(self, data: CDCData) -> None:
        pass

    async def flush(self) -> None:
        pass
