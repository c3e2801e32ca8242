"""The console simulator: chat with the real bot in a terminal, no token needed.

`python run_bot.py --console` starts the local Bot API server (`bot.localapi`) and the real bot
(`build_application` and `run_polling`, as in production) against it in this process, then
plays one Telegram user. Each line typed is sent as that user's message or command; a bare
number presses that button of the latest message with buttons. Everything the bot sends is
printed as the user would read it (plain text, buttons numbered, edits marked); documents and
photos are saved to files.

After each line it waits until the bot has handled the update (the poller reports it), never
for a fixed time, so it behaves the same through a pipe: tests drive it that way.

Each session starts with an empty database in its own folder (a new temporary folder unless
`--dir` is given), so the production database is never touched; the session's log
(`console.log`) and the files the bot sent stay in that folder. Without EVENT_FILE the demo
event file (`data/demo-event.toml`, dated in the future) is used, so registration is open.
The console's own texts are for the person testing, in English; the bot's are translated.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import io
import os
import re
import sys
import tempfile
import threading
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import parse_qs, urlparse

from babel import Locale
from telegram import Update
from telegram.ext import Application

from bot.app import build_application
from bot.config import ROOT, Settings, settings_from
from bot.event import Event, load_event
from bot.handlers.common import SERVICES_KEY
from bot.i18n import negotiate
from bot.localapi import LocalBotApi, SentMessage
from bot.logs import setup_logging
from bot.ops import event_lines, format_table
from bot.polling import DurablePoller
from bot.runner import remove_signal_handlers, run_polling, stop_on_signals
from bot.storage import Database, utcnow

DEMO_EVENT_FILE = ROOT / "data" / "demo-event.toml"
DEFAULT_USER_ID = 100001
#: The local server's token. No real token is ever used or needed.
TOKEN = "1000000:console-simulator"
#: How long to wait for the bot to handle one input before saying so and going on.
HANDLING_TIMEOUT = 60.0
PROMPT = "you › "
INDENT = " " * 6
QUIT = frozenset({"/quit", "/exit", "!quit", "!exit"})

HELP = """\
Console commands:
  !help            this help
  !text TEXT       send TEXT as typed, even a bare number
  !sticker         send a sticker (the bot expects text: see how it answers)
  !photo           send a photo
  !user N [LANG]   act as Telegram user N from now on (LANG: the app language of a new user)
  /quit or !quit   leave (Ctrl-D too)
Anything else is sent to the bot as typed; a bare number presses that button of the latest
message with buttons."""


@dataclass(frozen=True, slots=True)
class ConsoleOptions:
    lang: str = "en"
    user_id: int | None = None
    admin: bool = False
    directory: Path | None = None


def run_console(environ: Mapping[str, str], options: ConsoleOptions) -> int:
    """Validate the settings, prepare the session folder, run the simulator; exit status."""
    settings = settings_from(environ, require_token=False)
    event_file = settings.event_file if environ.get("EVENT_FILE", "").strip() else DEMO_EVENT_FILE
    event = load_event(event_file)
    directory = options.directory or Path(tempfile.mkdtemp(prefix="ilo-webinar-console-"))
    directory = directory.resolve()
    directory.mkdir(parents=True, exist_ok=True)
    database = directory / "console.sqlite3"
    for suffix in ("", "-wal", "-shm", "-journal"):  # a fresh database for every session
        database.with_name(database.name + suffix).unlink(missing_ok=True)
    setup_logging(settings.log_level, directory / "console.log")
    user_id = options.user_id or DEFAULT_USER_ID
    settings = replace(
        settings,
        database_path=database,
        event_file=event_file,
        admin_ids=settings.admin_ids | {user_id} if options.admin else settings.admin_ids,
        webhook_url=None,
        webhook_secret=None,
    )
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(errors="replace")  # a terminal without UTF-8 still works
    console = Console(settings, event, directory, user_id, options.lang)
    return asyncio.run(console.run())


class Progress:
    """The id of the last update the bot handled, to wait on."""

    def __init__(self) -> None:
        self.last = -1
        self._changed = asyncio.Condition()

    def poller(self, app: Application, db: Database, concurrency: int) -> DurablePoller:
        return _ReportingPoller(app, db, self, concurrency)

    async def mark(self, update_id: int) -> None:
        async with self._changed:
            self.last = max(self.last, update_id)
            self._changed.notify_all()

    async def handled(self, update_id: int) -> None:
        async with self._changed:
            await self._changed.wait_for(lambda: self.last >= update_id)


class _ReportingPoller(DurablePoller):
    def __init__(
        self, app: Application, db: Database, progress: Progress, concurrency: int
    ) -> None:
        super().__init__(app, db, concurrency=concurrency)
        self.progress = progress

    async def handle(
        self,
        update: Update,
        digest: str | None = None,
        *,
        ahead: int = 0,
        commit_skipped: bool = True,
    ) -> None:
        await super().handle(update, digest, ahead=ahead, commit_skipped=commit_skipped)
        await self.progress.mark(update.update_id)


class LineReader:
    """Lines of a file descriptor, read by a daemon thread.

    Works the same for a terminal, a pipe or a file, and never blocks the event loop or the
    interpreter's exit (os.read holds no lock of sys.stdin's buffer).
    """

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.queue: asyncio.Queue[str | None] = asyncio.Queue()
        self._loop = asyncio.get_running_loop()

    def start(self) -> None:
        threading.Thread(target=self._read, name="console-input", daemon=True).start()

    def _read(self) -> None:
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        pending = ""
        while True:
            try:
                chunk = os.read(self.fd, 4096)
            except OSError:
                chunk = b""
            pending += decoder.decode(chunk, final=not chunk)
            *lines, pending = pending.split("\n")
            for line in lines:
                self._put(line.rstrip("\r"))
            if not chunk:
                break
        if pending:
            self._put(pending)
        self._put(None)

    def _put(self, item: str | None) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is already closed
            self._loop.call_soon_threadsafe(self.queue.put_nowait, item)


class Console:
    def __init__(
        self,
        settings: Settings,
        event: Event,
        directory: Path,
        user_id: int,
        lang: str,
        stdin_fd: int | None = None,
        out: TextIO | None = None,
    ) -> None:
        self.settings = settings
        self.event = event
        self.directory = directory
        self.files = directory / "files"
        self.user_id = user_id
        self.lang = lang
        self.stdin_fd = sys.stdin.fileno() if stdin_fd is None else stdin_fd
        self.out = out or sys.stdout
        self.interactive = os.isatty(self.stdin_fd)
        self.known_users: set[int] = set()
        self._answers_seen = 0
        self._prompting = False
        self._api: LocalBotApi | None = None

    @property
    def api(self) -> LocalBotApi:
        assert self._api is not None
        return self._api

    # -- the session -------------------------------------------------------------------------

    async def run(self) -> int:
        stop = asyncio.Event()
        signals = stop_on_signals(stop)  # Ctrl-C leaves cleanly
        try:
            async with LocalBotApi(token=TOKEN) as api:
                self._api = api
                return await self._session(stop)
        finally:
            remove_signal_handlers(signals)

    async def _session(self, stop: asyncio.Event) -> int:
        settings = replace(self.settings, token=self.api.token, api_base_url=self.api.base_url)
        app = build_application(settings, self.event)
        progress = Progress()
        bot = asyncio.create_task(
            run_polling(app, stop, handle_signals=False, poller=progress.poller)
        )
        self._become(self.user_id, self.lang)
        self.api.add_listener(self._show)
        try:
            if await self._until(self.api.wait_until_polling(timeout=60), bot, stop):
                self._banner(app.bot_data[SERVICES_KEY].event)  # the values in force
                await self._chat(progress, bot, stop)
        except TimeoutError:
            self._say(f"The bot did not start; details in {self.directory / 'console.log'}")
            return 1
        finally:
            stop.set()
            await asyncio.wait({bot})
        if bot.exception() is not None:
            self._say(f"The bot stopped on an error: {bot.exception()!r}")
            self._say(f"Details in {self.directory / 'console.log'}")
            return 1
        self._say("Bye.")
        return 0

    async def _chat(
        self, progress: Progress, bot: asyncio.Task[None], stop: asyncio.Event
    ) -> None:
        reader = LineReader(self.stdin_fd)
        reader.start()
        while True:
            line = await self._next_line(reader, bot, stop)
            if line is None or line.strip().lower() in QUIT:
                return
            update_id = await self._act(line.strip())
            if update_id is None:
                continue
            try:
                if not await self._until(
                    asyncio.wait_for(progress.handled(update_id), HANDLING_TIMEOUT), bot, stop
                ):
                    return
            except TimeoutError:
                self._say(f"(no answer after {HANDLING_TIMEOUT:.0f} s; see console.log)")
            self._show_popups()

    async def _next_line(
        self, reader: LineReader, bot: asyncio.Task[None], stop: asyncio.Event
    ) -> str | None:
        if self.interactive:
            self.out.write(PROMPT)
            self.out.flush()
        self._prompting = True
        get = asyncio.ensure_future(reader.queue.get())
        try:
            done = await self._until(get, bot, stop)
        finally:
            self._prompting = False
        line = get.result() if done else None
        if line is None:
            if self.interactive:
                self._say("")
        elif not self.interactive and line.strip():
            self._say(f"{PROMPT}{line}")  # a readable transcript when input comes from a pipe
        return line

    @staticmethod
    async def _until(work: Awaitable[Any], bot: asyncio.Task[None], stop: asyncio.Event) -> bool:
        """Await `work`; False if the bot stopped or a signal came first."""
        task = asyncio.ensure_future(work)
        stopping = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({task, bot, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            return False
        task.result()
        return True

    # -- what the user does ------------------------------------------------------------------

    async def _act(self, line: str) -> int | None:
        """Send what the line says; the update id to wait for, or None."""
        if not line:
            return None
        if line.startswith("!"):
            return await self._command(line)
        if line.isdigit() and (message := self._latest_with_buttons()) is not None:
            return await self._press(message, int(line))
        return await self.api.send_text(self.user_id, line)

    async def _command(self, line: str) -> int | None:
        name, _, rest = line.partition(" ")
        name = name.lower()
        if name == "!text" and rest:
            return await self.api.send_text(self.user_id, rest)
        if name == "!sticker":
            return await self.api.send_sticker(self.user_id)
        if name == "!photo":
            return await self.api.send_photo(self.user_id)
        if name == "!user":
            parts = rest.split()
            if parts and parts[0].isdigit() and int(parts[0]) > 0 and len(parts) <= 2:
                self._become(int(parts[0]), parts[1] if len(parts) == 2 else None)
                self._say(self._who())
                return None
        self._say(HELP)
        return None

    def _become(self, user_id: int, lang: str | None) -> None:
        if user_id not in self.known_users or lang is not None:
            self.api.add_user(user_id, first_name="Console", language_code=lang or self.lang)
            self.known_users.add(user_id)
        self.user_id = user_id

    def _latest_with_buttons(self) -> dict[str, Any] | None:
        """The newest bot message in the chat (as it is now, after edits) with inline buttons."""
        for message in reversed(self.api.chat_messages(self.user_id)):
            if message.get("from", {}).get("id") != self.api.bot_id:
                continue
            if (message.get("reply_markup") or {}).get("inline_keyboard"):
                return message
        return None

    async def _press(self, message: dict[str, Any], number: int) -> int | None:
        rows = message["reply_markup"]["inline_keyboard"]
        buttons = [button for row in rows for button in row]
        if not 1 <= number <= len(buttons):
            self._say(
                f"(there is no button {number}: the latest message with buttons has "
                f"{len(buttons)}. To send {number} as text, type: !text {number})"
            )
            return None
        button = buttons[number - 1]
        self._say(f"{INDENT}(pressed “{button['text']}”)")
        if "callback_data" in button:
            return await self.api.press_button(
                self.user_id, message["message_id"], str(button["callback_data"])
            )
        url = str(button.get("url") or "")
        start = self._deep_link(url)
        if start is not None:
            self._say(f"{INDENT}(it opens the chat with the bot: /start {start})")
            return await self.api.send_text(self.user_id, f"/start {start}".strip())
        if url:
            self._say(f"{INDENT}(it opens {url})")
        else:
            self._say(f"{INDENT}(this kind of button does nothing in the console)")
        return None

    def _deep_link(self, url: str) -> str | None:
        """The start parameter of a t.me link to this bot, or None."""
        parsed = urlparse(url)
        if parsed.netloc != "t.me" or parsed.path.strip("/") != self.api.bot_username:
            return None
        return (parse_qs(parsed.query).get("start") or [""])[0]

    # -- what the bot does -------------------------------------------------------------------

    def _show(self, record: SentMessage) -> None:
        """Listener of the local server: print each send or edit as it happens."""
        if record.chat_id is None:
            return
        lines = self._render(record)
        if self._prompting and self.interactive:
            lines = ["", *lines]  # a message arriving while the prompt waits (a reminder…)
        self._say("\n" + "\n".join(lines))
        if self._prompting and self.interactive:
            self.out.write(PROMPT)
            self.out.flush()

    def _render(self, record: SentMessage) -> list[str]:
        who = "bot" if record.chat_id == self.user_id else f"bot → chat {record.chat_id}"
        if record.is_edit:
            who += " (edited)"
        body: list[str] = []
        if record.method in ("sendDocument", "sendPhoto"):
            body.append(self._save(record))
        if record.plain_text:
            body += record.plain_text.split("\n")
        elif record.method == "editMessageReplyMarkup":
            body.append("(new buttons)" if record.buttons else "(buttons removed)")
        body += button_lines(record.reply_markup)
        first, *rest = body or ["(empty)"]
        return [f"{who} › {first}", *(f"{INDENT}{line}" if line else "" for line in rest)]

    def _save(self, record: SentMessage) -> str:
        kind = "photo" if record.method == "sendPhoto" else "document"
        if record.document is None:
            return f"📎 {kind} sent by reference ({record.file_ref}), nothing to save"
        self.files.mkdir(parents=True, exist_ok=True)
        name = record.filename or ("photo.jpg" if kind == "photo" else "document")
        safe = re.sub(r"[^\w.-]+", "_", Path(name).name).strip("._") or kind
        path = self.files / f"{record.message_id or 0:04d}-{safe}"
        path.write_bytes(record.document)
        return f"📎 {kind} “{name}” ({len(record.document)} bytes) saved to {path}"

    def _show_popups(self) -> None:
        answers = self.api.callback_answers
        for answer in answers[self._answers_seen :]:
            if answer.get("text"):
                kind = "pop-up" if answer.get("show_alert") else "notice"
                self._say(f"\nbot ({kind}) › {answer['text']}")
        self._answers_seen = len(answers)

    # -- the console's own texts -------------------------------------------------------------

    def _say(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def _who(self) -> str:
        code = negotiate(self.api.user(self.user_id).language_code)
        language = Locale.parse(code).get_display_name("en")
        admin = "an admin" if self.user_id in self.settings.admin_ids else "not an admin"
        lang = self.api.user(self.user_id).language_code
        return f"Telegram user {self.user_id}, app language {lang!r} ({language}), {admin}"

    def _banner(self, event: Event) -> None:
        file = self.settings.event_file
        shown = file.relative_to(ROOT) if file.is_relative_to(ROOT) else file
        demo = " (DEMO copy dated in the future; set EVENT_FILE for another)"
        lines = [
            ("Event file", f"{shown}{demo if file == DEMO_EVENT_FILE else ''}"),
            *event_lines(event, utcnow())[:3],
            ("You are", self._who()),
            ("Session", f"{self.directory} (fresh database, console.log, received files)"),
        ]
        self._say("ILO webinar bot: console simulator")
        self._say(format_table(lines))
        self._say(
            "Type a message or a /command and press Enter. A number presses that button of the\n"
            "latest message with buttons. !help lists the console's commands; /quit or Ctrl-D "
            "leaves.\nStart with /start."
        )


def button_lines(markup: dict[str, Any] | None) -> list[str]:
    """Inline buttons numbered row by row ([1] Register); a reply keyboard as its labels."""
    if not markup:
        return []
    if rows := markup.get("inline_keyboard"):
        lines, number = [], 0
        for row in rows:
            cells = []
            for button in row:
                number += 1
                link = " ↗" if "url" in button else ""
                cells.append(f"[{number}] {button.get('text', '')}{link}")
            lines.append("   ".join(cells))
        return lines
    if rows := markup.get("keyboard"):
        labels = [b if isinstance(b, str) else b.get("text", "") for row in rows for b in row]
        return ["keyboard: " + " | ".join(labels)]
    return []
