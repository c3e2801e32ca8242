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

from bot.polling import (
    REPLAY_WINDOW,
    DurablePoller,
    FloodGate,
    HandledRecord,
    update_digest,
)
from bot.storage import Database, MetaRepo
from tests.conftest import TOKEN

DAY = 24 * 3600


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
    ("last", "pending", "settled", "done", "expected"),
    [
        (9, [10, 11, 12], set(), {10}, (10, 1)),
        (9, [10, 11, 12], set(), {11}, (9, 0)),  # 10 still in flight
        (9, [10, 11, 12], {11}, {10}, (11, 2)),
        (9, [10, 13, 20], {20}, {10, 13}, (20, 3)),  # ids need not be consecutive
        (9, [10, 11, 12], set(), {10, 12}, (10, 1)),
        # Ids restarted lower after a quiet week: the offset goes down with the first commit.
        (900, [5, 6, 7], set(), {5}, (5, 1)),
        (900, [5, 6, 7], set(), {6}, (900, 0)),
        (900, [5, 6, 7], {5}, {6, 7}, (7, 3)),  # 5: a replay, skipped
    ],
)
def test_the_offset_follows_the_handled_prefix_of_the_batch(
    last, pending, settled, done, expected
):
    poller = DurablePoller(app=None, db=None)  # type: ignore[arg-type]
    poller._last, poller._pending, poller._settled = last, deque(pending), settled
    assert poller._advanced(dict.fromkeys(done, "d")) == expected


NOW = 1_800_000_000


def test_a_replay_is_the_same_update_again_not_a_reused_id():
    record = HandledRecord({10: ("aaa", NOW - 60), 11: ("", NOW - 60), 12: ("ccc", NOW - 3 * DAY)})
    assert record.is_replay(10, "aaa", NOW)
    assert not record.is_replay(10, "bbb", NOW)  # a restarted sequence reused id 10
    assert record.is_replay(11, "anything", NOW)  # recorded before digests: the id counts
    assert not record.is_replay(12, "ccc", NOW)  # older than Telegram keeps any update
    assert not record.is_replay(13, "aaa", NOW)
    record.add({13: "ddd"}, NOW)
    record.forget_before(NOW - REPLAY_WINDOW)
    assert sorted(record.entries) == [10, 11, 13]


def test_the_digest_tells_a_new_update_from_a_replay():
    first = command(7, 501, "/go", None)
    assert update_digest(first) == update_digest(command(7, 501, "/go", None))
    assert update_digest(first) != update_digest(command(7, 501, "/help", None))
    assert update_digest(first) != update_digest(command(7, 502, "/go", None))


def test_the_flood_gate_cuts_a_backlog_sent_faster_than_a_person_types():
    gate = FloodGate(backlog=2, burst=3, window=3, notice_every=60)  # 3 at once, then 1 a second
    far = 99  # far behind the person's own updates in the batch
    assert [gate.admit(1, NOW, far) for _ in range(5)] == [True, True, True, False, False]
    assert gate.admit(2, NOW, far)  # someone else is not held up
    assert not gate.admit(1, NOW + 0.9, far)
    assert gate.admit(1, NOW + 1.0, far)
    assert not gate.admit(1, NOW + 1.5, far)
    assert [gate.admit(1, NOW + 10 + i / 10, far) for i in range(4)] == [True] * 3 + [False]
    assert not gate.admit(1, NOW + 9, far)  # a time out of order refills nothing
    # Near the head of their updates in the batch a person holds nobody up: always handled,
    # like a quick client that waits for each answer (one update per batch).
    assert all(gate.admit(1, NOW + 11, ahead) for ahead in (0, 1, 0, 1))
    assert not gate.admit(1, NOW + 11, 2)
    # One a second is never a flood, nor messages that piled up while the bot was down.
    steady = FloodGate(backlog=2, burst=3, window=3)
    assert all(steady.admit(1, NOW + i, far) for i in range(100))
    assert all(steady.admit(2, NOW + 60 * i, i) for i in range(10))
    assert gate.notice_due(1, NOW) and not gate.notice_due(1, NOW + 59)
    assert gate.notice_due(1, NOW + 60) and gate.notice_due(2, NOW + 1)


async def test_schema_6_keeps_the_ids_handled_above_the_last_one_before_an_upgrade(tmp_path):
    db = Database(tmp_path / "bot.sqlite3")
    await db.open()
    try:
        # A database of schema 3 left by a kill in the middle of a batch.
        await db.conn.executescript(
            "DROP TABLE handled_updates; ALTER TABLE users DROP COLUMN timezone_place;"
            " PRAGMA user_version = 3;"
            "INSERT INTO meta (key, value) VALUES ('last_update_id', '4'),"
            " ('handled_update_ids', '[5, 7]');"
        )
        await db.close()
        await db.open()
        poller = DurablePoller(app=None, db=db)  # type: ignore[arg-type]
        await poller.load()
        assert poller._last == 4
        assert poller.already_handled(command(5, 501, "/go", None))
        assert not poller.already_handled(command(6, 501, "/go", None))
        assert poller.already_handled(command(7, 502, "/help", None))
        assert await MetaRepo(db).get("handled_update_ids") is None
    finally:
        await db.close()
