"""Update ids that restart lower after a quiet week: the bot follows them, in polling mode and
across a kill -9 in the middle of the switch, and answers nothing twice."""

from __future__ import annotations

import asyncio

import pytest

from bot.i18n import I18n
from bot.localapi import LocalBotApi
from bot.polling import LAST_UPDATE_KEY
from bot.storage import MetaRepo
from tests.conftest import BotProcess, Participant, bot_env
from tests.test_crash import STEP_1, STEP_2, answered_with, handled_record, text_of

T = I18n()("en")
HELP = T._("Here is what I can do:")
WELCOME = T._("Choose below, or send /help to see everything I can do.")


def count(api: LocalBotApi, chat_id: int, text: str) -> int:
    return sum(1 for m in api.messages_to(chat_id) if text in text_of(m))


async def test_the_local_server_answers_an_offset_from_before_the_restart_like_telegram(api):
    first = await api.send_text(1, "/start")
    api.queue_update({"update_id": 40, "message": {"text": "filler"}})
    assert api.confirmed_offset == 0 and first == 1
    with pytest.raises(RuntimeError):  # Telegram's queue is empty after a quiet week
        api.restart_update_ids(3)
    api._confirm(41)
    api.restart_update_ids(3)
    ids = [await api.send_text(1, "/help") for _ in range(3)]
    assert ids == [3, 4, 5]
    api._confirm(41)  # "in the future" for the new queue: served from its head, kept
    assert [u["update_id"] for u in api.pending()] == [3, 4, 5]
    api._confirm(5)
    assert [u["update_id"] for u in api.pending()] == [5]


async def test_polling_follows_ids_that_restart_lower(api, bots, future_event_file):
    """Ids 1-30, then Telegram starts again at 2: the new updates reuse ids handled seconds
    before, far below the offset the bot confirmed."""
    bot = await bots.start(future_event_file)
    users = [Participant(api, 70 + i, "en") for i in range(6)]
    for _ in range(5):
        replies = await asyncio.gather(*(u.say("/help") for u in users))
        assert all(HELP in text_of(m) for m in replies)
    await api.wait_until_polling()
    assert api.pending_updates == 0 and api.confirmed_offset == 31

    api.restart_update_ids(2)
    newcomer = Participant(api, 90, "en")
    assert WELCOME in text_of(await newcomer.say("/start"))  # update 2
    assert HELP in text_of(await users[0].say("/help"))  # update 3
    replies = await asyncio.gather(*(u.say("/help") for u in users))  # updates 4 to 9
    assert all(HELP in text_of(m) for m in replies)
    await api.wait_until_polling()
    assert api.pending_updates == 0 and api.confirmed_offset == 10
    assert await MetaRepo(bot.db).get(LAST_UPDATE_KEY) == "9"

    assert [count(api, u.id, HELP) for u in users] == [7, 6, 6, 6, 6, 6]
    assert count(api, newcomer.id, WELCOME) == 1
    await bot.close()


@pytest.mark.parametrize(
    "held",
    [
        pytest.param(0, id="killed-before-the-first-commit-of-the-new-ids"),
        pytest.param(7, id="killed-after-the-new-offset-was-committed"),
    ],
)
async def test_a_kill_in_the_middle_of_the_switch_loses_nothing(
    api, tmp_path, future_event_file, held
):
    """20 people register (ids 1-40); Telegram restarts its ids at 5; their names come as
    updates 5-24 and the bot is killed -9 while it waits for its (held+1)-th answer, one
    update at a time. Restarted, it answers every name exactly once."""
    env = bot_env(api, tmp_path, future_event_file, UPDATE_CONCURRENCY="1")
    process = BotProcess(env, tmp_path / "bot.log")
    users = [Participant(api, 2000 + i, "en") for i in range(20)]
    try:
        process.start()
        await asyncio.gather(*(u.say("/start", timeout=30) for u in users))
        steps = await asyncio.gather(*(u.say("/register", timeout=30) for u in users))
        assert all(STEP_1 in text_of(m) for m in steps), process.log()
        await api.wait_until_polling()
        assert api.confirmed_offset == 41

        api.restart_update_ids(5)
        hold = api.hold("sendMessage", after=held)
        for user in users:
            await api.send_text(user.id, f"Participant {user.id}")
        await asyncio.wait_for(hold.reached.wait(), timeout=30)
        process.kill()
        hold.release()
        assert answered_with(api, STEP_2) == held
        last, above = await handled_record(tmp_path / "bot.sqlite3")
        # Before the first commit the old offset stays, and Telegram sends the low ids again;
        # after it the stored offset is in the new sequence.
        assert last == (40 if held == 0 else 4 + held), (last, above)

        process.start()
        for user in users:
            await api.wait_for(lambda m: STEP_2 in text_of(m), chat_id=user.id, timeout=30)
        await api.wait_until_polling()
        assert await process.terminate() == 0, process.log()
    finally:
        process.kill_if_running()

    assert [count(api, u.id, STEP_2) for u in users] == [1] * len(users)
    assert api.pending_updates == 0
    assert "restarted its update ids lower" in process.log()
