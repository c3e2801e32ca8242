"""Fixtures: the local Bot API server, event files, and the real bot running against them."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from telegram.ext import Application, BaseRateLimiter, ExtBot

from bot.app import build_application
from bot.config import Settings, settings_from
from bot.event import Event, load_event, write_rescheduled
from bot.localapi import LocalBotApi
from bot.runner import run_polling
from bot.storage import Database
from bot.transport import AiohttpRequest

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "123456:TEST-token-for-local-api"

# Reading RetryAfter.retry_after as an int is deprecated in PTB 22.2+; the bot asks for timedelta.
os.environ["PTB_TIMEDELTA"] = "1"


# An event file with the shipped texts and the given schedule (times are aware).
write_event = write_rescheduled


@pytest.fixture
def future_event_file(tmp_path: Path) -> Path:
    start = (datetime.now(UTC) + timedelta(days=30)).replace(minute=30, second=0, microsecond=0)
    return write_event(tmp_path, start)


async def direct_bot(
    api: LocalBotApi, limiter: BaseRateLimiter | None, pool: int = 64, **timeouts: float
) -> ExtBot:
    """An initialised ExtBot on the bot's own transport, talking to the local server without
    an Application (`limiter` None: no rate limiter). Shut it down at the end."""
    bot = ExtBot(
        TOKEN,
        base_url=api.base_url,
        request=AiohttpRequest(pool, **timeouts),
        get_updates_request=AiohttpRequest(1),
        rate_limiter=limiter,
    )
    await bot.initialize()
    return bot


@pytest.fixture
async def api() -> AsyncIterator[LocalBotApi]:
    async with LocalBotApi(token=TOKEN) as server:
        yield server


def bot_env(api: LocalBotApi, tmp_path: Path, event_file: Path, **extra: str) -> dict[str, str]:
    return {
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "TELEGRAM_API_BASE_URL": api.base_url,
        "DATABASE_PATH": str(tmp_path / "bot.sqlite3"),
        "EVENT_FILE": str(event_file),
        "LOG_LEVEL": "INFO",
        **extra,
    }


@dataclass
class RunningBot:
    """The real Application polling the local server inside the test's event loop."""

    app: Application
    settings: Settings
    event: Event
    stop: asyncio.Event
    task: asyncio.Task[None]

    @property
    def db(self) -> Database:
        return self.app.bot_data["services"].db

    async def close(self) -> None:
        self.stop.set()
        await asyncio.wait_for(self.task, timeout=15)


@dataclass
class BotFactory:
    api: LocalBotApi
    tmp_path: Path
    running: list[RunningBot] = field(default_factory=list)

    async def start(
        self,
        event_file: Path,
        clock: Callable[[], datetime] | None = None,
        rate_limiter: BaseRateLimiter | None = None,
        **extra: str,
    ) -> RunningBot:
        settings = settings_from(bot_env(self.api, self.tmp_path, event_file, **extra))
        event = load_event(settings.event_file)
        kwargs = {"clock": clock} if clock else {}
        app = build_application(settings, event, rate_limiter=rate_limiter, **kwargs)
        stop = asyncio.Event()
        task = asyncio.create_task(run_polling(app, stop, handle_signals=False))
        bot = RunningBot(app, settings, event, stop, task)
        self.running.append(bot)
        return bot


@pytest.fixture
async def bots(api: LocalBotApi, tmp_path: Path) -> AsyncIterator[BotFactory]:
    factory = BotFactory(api, tmp_path)
    yield factory
    for bot in factory.running:
        if not bot.task.done():
            await bot.close()


@pytest.fixture
async def bot(bots: BotFactory, future_event_file: Path) -> RunningBot:
    return await bots.start(future_event_file)


class BotProcess:
    """`python run_bot.py` as a child process, for restarts and kill -9."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.env = {**os.environ, **env, "PYTHONUNBUFFERED": "1"}
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, *args: str) -> None:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, str(ROOT / "run_bot.py"), *args],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def kill_if_running(self) -> None:
        """For a test's `finally`: kill the bot if the test left it running."""
        if self.proc is not None and self.proc.poll() is None:
            self.kill()

    async def terminate(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return await asyncio.to_thread(self.proc.wait, 20)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


class Participant:
    """A simulated Telegram user talking to the bot through the local server."""

    def __init__(self, api: LocalBotApi, user_id: int, language_code: str | None = "en") -> None:
        self.api = api
        self.id = user_id
        api.add_user(user_id, first_name=f"User{user_id}", language_code=language_code)

    async def next(self, timeout: float = 10.0):  # -> SentMessage
        """The next new message (not an edit) the bot sends to this user."""
        while True:
            message = await self.api.next_message(self.id, timeout=timeout)
            if not message.is_edit:
                return message

    async def say(self, text: str, timeout: float = 10.0):
        await self.api.send_text(self.id, text)
        return await self.next(timeout)

    async def tap(self, message, label: str, timeout: float = 10.0):
        await self.api.press_button(self.id, message.message_id, message.callback_data(label))
        return await self.next(timeout)

    async def answer(self, message, label: str, timeout: float = 10.0):
        """Tap a button of a form question; returns the bot's answer: the tapped message
        turned into the next one (editMessageText), or a new message."""
        await self.api.press_button(self.id, message.message_id, message.callback_data(label))
        return await self.api.next_message(
            self.id, timeout, predicate=lambda m: m.method != "editMessageReplyMarkup"
        )

    def last_said(self) -> int:
        """The id of the latest message this user sent to the bot."""
        mine = [m for m in self.api.chat_messages(self.id) if m["from"]["id"] == self.id]
        return mine[-1]["message_id"]

    async def edit(self, message_id: int, text: str, timeout: float = 10.0):
        """Edit a message this user sent; returns the bot's next new message."""
        await self.api.edit_user_message(self.id, message_id, text)
        return await self.next(timeout)
