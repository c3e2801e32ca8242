"""No user message is lost, or answered twice, when the bot process is killed."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path

from bot.i18n import I18n
from bot.polling import LAST_UPDATE_KEY
from bot.storage import Database, MetaRepo
from bot.storage.meta import HandledUpdateRepo
from tests.conftest import BotProcess, Participant, bot_env

T = I18n()("en")
STEP_2 = T._("Step {step} of {total}").format(step=2, total=8)
STEP_1 = T._("Step {step} of {total}").format(step=1, total=8)


def text_of(message) -> str:
    return message.plain_text or message.text or ""


async def test_kill_9_in_the_middle_of_a_burst_loses_nothing(api, tmp_path, future_event_file):
    # One update at a time, so that the kill comes at a known point: 7 answered and
    # committed, the 8th in flight.
    env = bot_env(api, tmp_path, future_event_file, UPDATE_CONCURRENCY="1")
    process = BotProcess(env, tmp_path / "bot.log")
    users = [Participant(api, 1000 + i, "en") for i in range(20)]
    try:
        # The 8th answer held in flight: the bot has fetched the whole burst, answered 7,
        # and is waiting for Telegram when it is killed.
        hold = await names_with_the_8th_answer_held(api, process, users)
        process.kill()
        hold.release()
        assert answered_with(api, STEP_2) == 7

        process.start()
        replies = await asyncio.gather(*(u.next(timeout=30) for u in users))
        assert all(STEP_2 in text_of(m) for m in replies), [text_of(m)[:40] for m in replies]
        assert await process.terminate() == 0
    finally:
        process.kill_if_running()

    for user in users:
        step_2 = [m for m in api.messages_to(user.id) if STEP_2 in text_of(m)]
        assert len(step_2) == 1, f"user {user.id} got the email question {len(step_2)} times"


async def test_kill_9_while_users_are_handled_side_by_side(api, tmp_path, future_event_file):
    """Four users at a time; one answer held, the others go on and commit past it. After the
    kill only the updates not committed are handled again: at most one repeated reply per
    update that was in flight, none for those committed beyond the held one."""
    concurrency = 4
    env = bot_env(api, tmp_path, future_event_file, UPDATE_CONCURRENCY=str(concurrency))
    process = BotProcess(env, tmp_path / "bot.log")
    users = [Participant(api, 1100 + i, "en") for i in range(20)]
    try:
        hold = await names_with_the_8th_answer_held(api, process, users)
        # The 12th answer needs a slot that a later update freed by committing.
        answers = itertools.count(1)
        await api.wait_for(lambda m: STEP_2 in text_of(m) and next(answers) == 12, timeout=30)
        process.kill()
        hold.release()
        answered = answered_with(api, STEP_2)
        assert 12 <= answered < len(users)
        last, above = await handled_record(tmp_path / "bot.sqlite3")
        assert above and min(above) > last + 1, (last, above)

        process.start()
        for user in users:
            await api.wait_for(lambda m: STEP_2 in text_of(m), chat_id=user.id, timeout=30)
        assert await process.terminate() == 0
    finally:
        process.kill_if_running()

    counts = [sum(1 for m in api.messages_to(user.id) if STEP_2 in text_of(m)) for user in users]
    assert sum(counts) - len(users) <= concurrency - 1, counts  # the held one was never sent
    assert max(counts) <= 2, counts
    assert api.pending_updates == 0


async def handled_record(path: Path) -> tuple[int, list[int]]:
    """What a killed bot had committed as handled: last id with all before it, ids above."""
    db = Database(path)
    await db.open()
    try:
        last = int(await MetaRepo(db).get(LAST_UPDATE_KEY) or -1)
        handled = await HandledUpdateRepo(db).since(0)
        return last, sorted(i for i in handled if i > last)
    finally:
        await db.close()


async def names_with_the_8th_answer_held(api, process: BotProcess, users: list[Participant]):
    """Start the bot, let every user reach step 1, then send every name with the bot's 8th
    answer held unanswered; returns the hold once the bot is waiting on it."""
    process.start()
    first = await asyncio.gather(*(u.say("/register", timeout=30) for u in users))
    assert all(STEP_1 in text_of(m) for m in first), process.log()
    hold = api.hold("sendMessage", after=7)
    for user in users:
        await api.send_text(user.id, f"Participant {user.id}")
    await asyncio.wait_for(hold.reached.wait(), timeout=30)
    return hold


def answered_with(api, text: str) -> int:
    return sum(1 for m in api.sent if m.method == "sendMessage" and text in text_of(m))
