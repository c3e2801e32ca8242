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
from bot.polling import LAST_UPDATE_KEY
from bot.storage import Database, MetaRepo, UserRepo
from bot.webhook import SECRET_HEADER, run_webhook
from tests.conftest import BotProcess, Participant, bot_env

T = I18n()("en")
SECRET = "webhook-Secret_42"
WELCOME = T._("Choose below, or send /help to see everything I can do.")


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


async def last_handled(db: Database) -> str | None:
    return await MetaRepo(db).get(LAST_UPDATE_KEY)


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
    assert await last_handled(webhook_bot.db) == str(last)
    await webhook_bot.close()


async def test_a_missing_or_wrong_secret_gets_403_and_changes_nothing(api, webhook_bot):
    user = Participant(api, 20, "en")
    await user.say("/start")
    before = await acknowledged(api)
    assert await last_handled(webhook_bot.db) == str(before)

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
    assert await last_handled(webhook_bot.db) == str(before + 1)


async def test_a_redelivered_update_is_acknowledged_but_not_handled_twice(api, webhook_bot):
    user = Participant(api, 30, "en")
    await user.say("/start")
    handled_id = await acknowledged(api)
    again = json.dumps(fake_update(handled_id, 30, "/help"))
    async with httpx.AsyncClient(trust_env=False) as client:
        response = await client.post(
            webhook_bot.url, content=again, headers={SECRET_HEADER: SECRET}
        )
    assert response.status_code == 200
    reply = await user.say("/event")  # the next update is answered; /help never was
    assert T._("Here is what I can do:") not in text_of(reply)
    assert not any(T._("Here is what I can do:") in text_of(m) for m in api.messages_to(30))


def free_port() -> int:
    # A subprocess must know its port before it starts; the tiny race is acceptable here.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def test_run_bot_uses_the_webhook_when_webhook_url_is_set(api, tmp_path, future_event_file):
    port = free_port()
    env = bot_env(
        api,
        tmp_path,
        future_event_file,
        WEBHOOK_URL=f"http://127.0.0.1:{port}/hook",
        WEBHOOK_SECRET=SECRET,
        WEBHOOK_PORT=str(port),
    )
    process = BotProcess(env, tmp_path / "bot.log")
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
