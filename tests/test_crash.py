"""No user message is lost, or answered twice, when the bot process is killed."""

from __future__ import annotations

import asyncio

from bot.i18n import I18n
from tests.conftest import BotProcess, Participant, bot_env

T = I18n()("en")
STEP_2 = T._("Step {step} of {total}").format(step=2, total=8)
STEP_1 = T._("Step {step} of {total}").format(step=1, total=8)


def text_of(message) -> str:
    return message.plain_text or message.text or ""


async def test_kill_9_in_the_middle_of_a_burst_loses_nothing(api, tmp_path, future_event_file):
    env = bot_env(api, tmp_path, future_event_file)
    process = BotProcess(env, tmp_path / "bot.log")
    process.start()
    users = [Participant(api, 1000 + i, "en") for i in range(20)]
    try:
        first = await asyncio.gather(*(u.say("/register", timeout=30) for u in users))
        assert all(STEP_1 in text_of(m) for m in first), process.log()

        # Hold the 8th answer in flight: the bot has fetched the whole burst, answered 7,
        # and is waiting for Telegram when it is killed.
        hold = api.hold("sendMessage", after=7)
        for user in users:
            await api.send_text(user.id, f"Participant {user.id}")
        await asyncio.wait_for(hold.reached.wait(), timeout=30)
        process.kill()
        hold.release()
        answered_before_kill = sum(
            1 for m in api.sent if m.method == "sendMessage" and STEP_2 in text_of(m)
        )
        assert answered_before_kill == 7

        process.start()
        replies = await asyncio.gather(*(u.next(timeout=30) for u in users))
        assert all(STEP_2 in text_of(m) for m in replies), [text_of(m)[:40] for m in replies]
        assert await process.terminate() == 0
    finally:
        process.kill_if_running()

    for user in users:
        step_2 = [m for m in api.messages_to(user.id) if STEP_2 in text_of(m)]
        assert len(step_2) == 1, f"user {user.id} got the email question {len(step_2)} times"
