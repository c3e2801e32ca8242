"""Webhook mode: the local Bot API server POSTs updates; the bot answers once they are handled."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from tornado.netutil import bind_sockets

from bot.app import build_application
from bot.config import settings_from
from bot.event import load_event
from bot.i18n import I18n
from bot.localapi import LocalBotApi
from bot.storage import Database, UserRepo
from bot.storage.meta import HandledUpdateRepo
from bot.webhook import SECRET_HEADER, run_webhook
from tests.conftest import BotProcess, Participant, bot_env

T = I18n()("en")
SECRET = "webhook-Secret_42"
WELCOME = T._("Choose below, or send /help to see everything I can do.")
HELP = T._("Here is what I can do:")


def text_of(message) -> str:
    return message.plain_text or message.text or ""


@dataclass
class WebhookBot:
    url: str
    db: Database
    stop: asyncio.Event
    task: asyncio.Task[None]

    async def close(self) -> None:
        self.stop.set()
        await asyncio.wait_for(self.task, timeout=15)


@pytest.fixture
async def webhook_bot(api: LocalBotApi, tmp_path: Path, future_event_file) -> AsyncIterator:
    sockets = bind_sockets(0, "127.0.0.1")
    port = sockets[0].getsockname()[1]
    url = f"http://127.0.0.1:{port}/telegram/updates"
    env = bot_env(
        api,
        tmp_path,
        future_event_file,
        WEBHOOK_URL=url,
        WEBHOOK_SECRET=SECRET,
        WEBHOOK_PORT=str(port),
    )
    settings = settings_from(env)
    app = build_application(settings, load_event(settings.event_file))
    stop = asyncio.Event()
    task = asyncio.create_task(
        run_webhook(app, settings, stop, handle_signals=False, sockets=sockets)
    )
    await api.wait_for_call(lambda c: c.method == "setWebhook" and c.status == 200)
    bot = WebhookBot(url, app.bot_data["services"].db, stop, task)
    yield bot
    if not task.done():
        await bot.close()


def fake_update(update_id: int, user_id: int, text: str) -> dict:
    user = {"id": user_id, "is_bot": False, "first_name": "Eve", "language_code": "en"}
    return {
        "update_id": update_id,
        "message": {
            "message_id": 1,
            "from": user,
            "chat": {"id": user_id, "type": "private", "first_name": "Eve"},
            "date": int(time.time()),
            "text": text,
            "entities": [{"type": "bot_command", "offset": 0, "length": len(text)}],
        },
    }


async def handled_ids(db: Database) -> list[int]:
    """The update ids recorded as handled."""
    return sorted(await HandledUpdateRepo(db).since(0))


async def acknowledged(api: LocalBotApi) -> int:
    """Wait until the latest queued update has been answered 200; returns its id."""
    update_id = api.pending()[-1]["update_id"] if api.pending() else api.webhook_deliveries[-1][0]
    await api.wait_for_delivery(lambda d: d.update_id == update_id and d.status == 200)
    return update_id


async def test_updates_delivered_with_the_secret_are_handled(api, webhook_bot):
    info = api.webhook
    assert info.url == webhook_bot.url and info.secret_token == SECRET
    assert info.max_connections == 1
    assert info.allowed_updates is not None and "callback_query" in info.allowed_updates

    user = Participant(api, 10, "en")
    welcome = await user.say("/start")
    assert WELCOME in text_of(welcome)
    choose = await user.tap(welcome, "🌐 " + T._("Language"))
    assert T._("Choose your language:") in text_of(choose)
    last = await acknowledged(api)

    assert [d.status for d in api.webhook_deliveries] == [200, 200]
    assert api.pending_updates == 0
    assert await handled_ids(webhook_bot.db) == [last - 1, last]
    await webhook_bot.close()


async def test_a_missing_or_wrong_secret_gets_403_and_changes_nothing(api, webhook_bot):
    user = Participant(api, 20, "en")
    await user.say("/start")
    before = await acknowledged(api)
    assert await handled_ids(webhook_bot.db) == [before]

    forged = json.dumps(fake_update(99, 666, "/start"))
    async with httpx.AsyncClient(trust_env=False) as client:
        for headers in ({}, {SECRET_HEADER: "guess"}, {SECRET_HEADER: SECRET + "x"}):
            response = await client.post(webhook_bot.url, content=forged, headers=headers)
            assert response.status_code == 403
        # With the secret, a malformed body is refused too, and other methods do not exist.
        response = await client.post(
            webhook_bot.url, content=b"{", headers={SECRET_HEADER: SECRET}
        )
        assert response.status_code == 400
        assert (await client.get(webhook_bot.url)).status_code == 405

    # The bot still works, and the forged update left no trace.
    await user.say("/help")
    assert await acknowledged(api) == before + 1
    assert api.messages_to(666) == []
    assert await UserRepo(webhook_bot.db).get(666) is None
    assert await handled_ids(webhook_bot.db) == [before, before + 1]


async def post(url: str, body: str) -> int:
    async with httpx.AsyncClient(trust_env=False) as client:
        response = await client.post(url, content=body, headers={SECRET_HEADER: SECRET})
    return response.status_code


def helps_to(api: LocalBotApi, chat_id: int) -> int:
    return sum(1 for m in api.messages_to(chat_id) if HELP in text_of(m))


async def test_a_redelivered_update_is_acknowledged_but_not_handled_twice(api, webhook_bot):
    Participant(api, 30, "en")
    content = fake_update(0, 30, "/help")
    del content["update_id"]
    handled_id = api.queue_update(content)
    await api.wait_for_delivery(lambda d: d.update_id == handled_id and d.status == 200)
    assert helps_to(api, 30) == 1

    # Telegram sends the same update again (our 200 lost): acknowledged, not handled again.
    assert await post(webhook_bot.url, json.dumps({"update_id": handled_id, **content})) == 200
    assert helps_to(api, 30) == 1
    # Another update with that id (ids restarted after a quiet week) is a new update.
    reused = fake_update(handled_id, 30, "/help")
    reused["message"]["message_id"] = 2
    assert await post(webhook_bot.url, json.dumps(reused)) == 200
    assert helps_to(api, 30) == 2
    assert await handled_ids(webhook_bot.db) == [handled_id]


async def test_updates_out_of_id_order_are_all_handled(api, webhook_bot):
    """Telegram's webhook serves each chat's updates from its own queue, in turn, and retries
    a failed one later: a lower id can come after a higher one, and is new all the same."""
    user, later = Participant(api, 36, "en"), Participant(api, 37, "en")
    assert await post(webhook_bot.url, json.dumps(fake_update(51, later.id, "/help"))) == 200
    assert await post(webhook_bot.url, json.dumps(fake_update(50, user.id, "/help"))) == 200
    assert helps_to(api, user.id) == 1 and helps_to(api, later.id) == 1
    assert await handled_ids(webhook_bot.db) == [50, 51]


async def test_an_update_id_that_is_not_an_integer_gets_400_and_a_log_line(
    api, webhook_bot, caplog
):
    user = Participant(api, 35, "en")
    update = fake_update(7, 35, "/help")
    bodies = [
        {**update, "update_id": "7"},
        {**update, "update_id": 7.0},
        {**update, "update_id": True},
        {key: value for key, value in update.items() if key != "update_id"},
        {**update, "update_id": None},
    ]
    for body in bodies:
        assert await post(webhook_bot.url, json.dumps(body)) == 400, body
    refused = [r for r in caplog.records if "update_id is not an integer" in r.getMessage()]
    assert len(refused) == len(bodies)
    assert helps_to(api, 35) == 0
    assert HELP in text_of(await user.say("/help"))  # and the bot goes on


async def test_ids_that_restart_lower_are_handled(api, webhook_bot):
    """After a quiet week Telegram numbers updates again from a random id, maybe lower: here
    from 1 again, reusing ids handled seconds before."""
    first, second = Participant(api, 60, "en"), Participant(api, 61, "en")
    assert WELCOME in text_of(await first.say("/start"))
    assert HELP in text_of(await first.say("/help"))
    old = await acknowledged(api)
    assert old == 2

    api.restart_update_ids(1)
    assert WELCOME in text_of(await second.say("/start"))
    assert HELP in text_of(await first.say("/help"))
    assert HELP in text_of(await second.say("/help"))
    assert await acknowledged(api) == 3
    assert [d.update_id for d in api.webhook_deliveries] == [1, 2, 1, 2, 3]
    assert all(d.status == 200 for d in api.webhook_deliveries)
    assert helps_to(api, 60) == 2 and helps_to(api, 61) == 1
    assert await handled_ids(webhook_bot.db) == [1, 2, 3]


def free_port() -> int:
    # A subprocess must know its port before it starts; the tiny race is acceptable here.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def webhook_process(api, tmp_path: Path, event_file: Path) -> BotProcess:
    """`python run_bot.py` in webhook mode on a free local port (not started)."""
    port = free_port()
    env = bot_env(
        api,
        tmp_path,
        event_file,
        WEBHOOK_URL=f"http://127.0.0.1:{port}/hook",
        WEBHOOK_SECRET=SECRET,
        WEBHOOK_PORT=str(port),
    )
    return BotProcess(env, tmp_path / "bot.log")


async def test_run_bot_uses_the_webhook_when_webhook_url_is_set(api, tmp_path, future_event_file):
    process = webhook_process(api, tmp_path, future_event_file)
    process.start()
    try:
        await api.wait_for_call(lambda c: c.method == "setWebhook", timeout=30)
        reply = await Participant(api, 40, "en").say("/start", timeout=30)
        assert WELCOME in text_of(reply)
        assert await process.terminate() == 0, process.log()
    finally:
        process.kill_if_running()
    assert "started (webhook" in process.log()
    assert SECRET not in process.log()
    assert api.stats["getUpdates"] == 0


async def test_a_kill_while_the_first_restarted_id_is_handled_loses_nothing(
    api, tmp_path, future_event_file
):
    """Webhook mode, ids 1-2 handled, then Telegram restarts at 1; the bot is killed -9 while
    it answers the new update 1 (reusing an id handled seconds before), before its commit.
    Telegram delivers it again to the restarted bot: answered once, and so is update 2."""
    process = webhook_process(api, tmp_path, future_event_file)
    first, second = Participant(api, 95, "en"), Participant(api, 96, "en")
    try:
        process.start()
        await api.wait_for_call(lambda c: c.method == "setWebhook", timeout=30)
        assert WELCOME in text_of(await first.say("/start", timeout=30))
        assert HELP in text_of(await first.say("/help"))
        await acknowledged(api)

        api.restart_update_ids(1)
        hold = api.hold("sendMessage")
        await api.send_text(second.id, "/help")
        await asyncio.wait_for(hold.reached.wait(), timeout=30)
        await api.send_text(first.id, "/help")
        process.kill()
        hold.release()
        assert helps_to(api, second.id) == 0

        since = len(api.webhook_deliveries)
        process.start()
        await api.wait_for(lambda m: HELP in text_of(m), chat_id=second.id, timeout=30)
        await api.wait_for_delivery(
            lambda d: d.update_id == 2 and d.status == 200 and d in api.webhook_deliveries[since:],
            timeout=30,
        )
        assert await process.terminate() == 0, process.log()
    finally:
        process.kill_if_running()
    assert helps_to(api, second.id) == 1 and helps_to(api, first.id) == 2
    assert api.pending_updates == 0
