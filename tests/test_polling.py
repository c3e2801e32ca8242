"""The durable poller's bookkeeping, and the PTB behaviour its commits rely on."""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

import pytest
from telegram import Update
from telegram.ext import (
    Application,
    BasePersistence,
    CommandHandler,
    ContextTypes,
    ConversationHandler,
    PersistenceInput,
)

from bot.polling import DurablePoller
from tests.conftest import TOKEN


class RecordingPersistence(BasePersistence[dict[str, Any], dict[str, Any], dict[str, Any]]):
    """Records each write at the moment PTB asks for it, not when the write runs."""

    def __init__(self) -> None:
        super().__init__(
            store_data=PersistenceInput(
                bot_data=False, chat_data=False, user_data=True, callback_data=False
            ),
            update_interval=3600,
        )
        self.asked: list[tuple[str, object]] = []

    def update_user_data(self, user_id: int, data: dict[str, Any]) -> Any:  # type: ignore[override]
        self.asked.append(("user_data", user_id))
        return _nothing()

    def update_conversation(self, name: str, key: Any, new_state: object | None) -> Any:  # type: ignore[override]
        self.asked.append(("conversation", key))
        return _nothing()

    async def get_user_data(self) -> dict[int, dict[str, Any]]:
        return {}

    async def get_conversations(self, name: str) -> dict[Any, object]:
        return {}

    async def get_chat_data(self) -> dict[int, dict[str, Any]]:
        return {}

    async def get_bot_data(self) -> dict[str, Any]:
        return {}

    async def get_callback_data(self) -> None:
        return None

    async def update_chat_data(self, chat_id: int, data: dict[str, Any]) -> None:
        pass

    async def update_bot_data(self, data: dict[str, Any]) -> None:
        pass

    async def update_callback_data(self, data: Any) -> None:
        pass

    async def drop_chat_data(self, chat_id: int) -> None:
        pass

    async def drop_user_data(self, user_id: int) -> None:
        pass

    async def refresh_user_data(self, user_id: int, user_data: dict[str, Any]) -> None:
        pass

    async def refresh_chat_data(self, chat_id: int, chat_data: dict[str, Any]) -> None:
        pass

    async def refresh_bot_data(self, bot_data: dict[str, Any]) -> None:
        pass

    async def flush(self) -> None:
        pass


async def _nothing() -> None:
    pass


async def _go(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    context.user_data["went"] = True  # type: ignore[index]
    return 1


def command(update_id: int, user_id: int, text: str, bot: Any) -> Update:
    user = {"id": user_id, "is_bot": False, "first_name": "P"}
    message = {
        "message_id": update_id,
        "date": 0,
        "chat": {"id": user_id, "type": "private"},
        "from": user,
        "text": text,
        "entities": [{"type": "bot_command", "offset": 0, "length": len(text)}],
    }
    return Update.de_json({"update_id": update_id, "message": message}, bot)


async def test_ptb_collects_what_to_persist_before_its_first_await(api):
    """DurablePoller records updates as handled in the commit that writes their states,
    taking the list just before `update_persistence()`. That is exact only if PTB gathers
    what to write before it first yields to the event loop: another user's handler that
    finishes afterwards must not have its state written under this commit."""
    persistence = RecordingPersistence()
    app = (
        Application.builder().token(TOKEN).base_url(api.base_url).persistence(persistence).build()
    )
    app.add_handler(
        ConversationHandler(
            entry_points=[CommandHandler("go", _go)],
            states={1: [CommandHandler("go", _go)]},
            fallbacks=[],
            name="flow",
            persistent=True,
        )
    )
    async with app:
        await app.process_update(command(1, 501, "/go", app.bot))

        writing = app.update_persistence()
        suspended_on = writing.send(None)  # run it up to its first await, as a task would
        asked_before_yielding = list(persistence.asked)
        await app.process_update(command(2, 502, "/go", app.bot))  # finishes meanwhile
        await asyncio.wait({suspended_on})  # as the task would: on a callback, not `await`
        with pytest.raises(StopIteration):
            writing.send(None)

        assert sorted(asked_before_yielding, key=str) == [
            ("conversation", (501, 501)),
            ("user_data", 501),
        ]
        assert persistence.asked == asked_before_yielding  # 502 waits for the next commit
        await app.update_persistence()
        assert sorted(persistence.asked[2:], key=str) == [
            ("conversation", (502, 502)),
            ("user_data", 502),
        ]


@pytest.mark.parametrize(
    ("pending", "above", "done", "last", "left_above"),
    [
        ([10, 11, 12], set(), {10}, 10, set()),
        ([10, 11, 12], set(), {11}, 9, {11}),  # 10 still in flight
        ([10, 11, 12], {11}, {10}, 11, set()),
        ([10, 13, 20], {20}, {10, 13}, 20, set()),  # ids need not be consecutive
        ([10, 11, 12], set(), {10, 12}, 10, {12}),
    ],
)
def test_the_record_of_handled_updates(pending, above, done, last, left_above):
    poller = DurablePoller(app=None, db=None)  # type: ignore[arg-type]
    poller._last, poller._above, poller._pending = 9, above, deque(pending)
    assert poller._advanced(done) == (last, left_above)
