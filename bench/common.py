"""What the benchmark scripts share: the bot as a child process, users, replies, figures.

Everything runs on 127.0.0.1. The local Bot API server runs inside the script's own process
(its simulated users are plain method calls, so the users cost no HTTP); the bot under test
is always a separate process, ``python run_bot.py``, exactly as deployed.

Profiling: with ``BENCH_PYSPY=/tmp/prof`` every bot process runs under ``py-spy record``
(installed beside the interpreter) and leaves ``/tmp/prof-<script>-<n>.txt`` (collapsed stacks;
``BENCH_PYSPY_IDLE=1`` also samples idle threads).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import os
import platform
import random
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.event import write_rescheduled
from bot.localapi import LocalBotApi, SentMessage

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "123456:BENCH-token-for-local-api"
#: A text needs one reply from the bot; a generous bound so that a stall shows as an error.
REPLY_TIMEOUT = 60.0
_PROFILES = itertools.count(1)


# -- the machine and the figures --------------------------------------------------------------


def machine() -> str:
    """One line naming the machine, for the README."""
    model = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"{os.cpu_count()} cores ({model}), Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}; load average {load}"
    )


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (nearest rank) of ``values``; NaN when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def latency_line(samples: Sequence[float], qs: Iterable[float] = (50, 95, 99)) -> str:
    """``p50 3.1 ms, p95 …, max …`` from samples in seconds."""
    if not samples:
        return "no samples"
    parts = [f"p{q:g} {1000 * percentile(samples, q):.1f} ms" for q in qs]
    parts.append(f"max {1000 * max(samples):.1f} ms")
    return ", ".join(parts) + f" (n={len(samples)})"


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def header(title: str, command: str) -> None:
    print(f"== {title}")
    print(f"machine: {machine()}")
    print(f"command: {command}")


# -- the event file -----------------------------------------------------------------------------


def write_event(
    folder: Path,
    start: datetime | None = None,
    *,
    reminders: tuple[str, ...] = ("1d", "1h"),
    join_url: str | None = "https://example.org/join",
) -> Path:
    """A copy of the shipped event moved into the future (texts by ``include``)."""
    if start is None:
        start = (datetime.now(UTC) + timedelta(days=30)).replace(second=0, microsecond=0)
    return write_rescheduled(folder, start, reminders=reminders, join_url=join_url)


def bot_env(api: LocalBotApi, folder: Path, event_file: Path, **extra: str) -> dict[str, str]:
    return {
        "TELEGRAM_BOT_TOKEN": api.token,
        "TELEGRAM_API_BASE_URL": api.base_url,
        "DATABASE_PATH": str(folder / "bot.sqlite3"),
        "EVENT_FILE": str(event_file),
        "LOG_LEVEL": "WARNING",
        "PTB_TIMEDELTA": "1",
        **extra,
    }


# -- the bot process ----------------------------------------------------------------------------


class BotProcess:
    """A bot (``run_bot.py`` or another script) as a child process, with its resource use."""

    def __init__(self, env: dict[str, str], log_path: Path, script: str = "run_bot.py") -> None:
        self.env = {**os.environ, **env, "PYTHONUNBUFFERED": "1"}
        self.log_path = log_path
        self.script = script
        self.proc: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0

    def start(self, *args: str) -> None:
        command = [sys.executable, str(ROOT / self.script), *args]
        if profile := os.environ.get("BENCH_PYSPY"):  # e.g. /tmp/prof: py-spy record, raw
            output = f"{profile}-{Path(self.script).stem}-{next(_PROFILES)}.txt"
            spy = Path(sys.executable).with_name("py-spy")
            idle = ["--idle"] if os.environ.get("BENCH_PYSPY_IDLE") == "1" else []
            spying = [str(spy), "record", "-r", "250", "--format", "raw", "-o", output, *idle]
            command = [*spying, "--", *command]
        with self.log_path.open("ab") as log:
            self.started_at = time.monotonic()
            self.proc = subprocess.Popen(
                command,
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    @property
    def pid(self) -> int:
        """The bot's pid (under py-spy, the profiled child's)."""
        assert self.proc is not None
        if self.proc.args[0] == sys.executable:
            return self.proc.pid
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        with contextlib.suppress(OSError, ValueError, IndexError):
            return int(children.read_text().split()[0])
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _status(self, key: str) -> float:
        """A ``VmHWM``/``VmRSS`` value of /proc/<pid>/status, in MB (NaN once gone)."""
        try:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith(key + ":"):
                    return int(line.split()[1]) / 1024
        except OSError:
            pass
        return math.nan

    def peak_rss_mb(self) -> float:
        return self._status("VmHWM")

    def rss_mb(self) -> float:
        return self._status("VmRSS")

    def cpu_seconds(self) -> float:
        """User + system CPU time of the process so far."""
        try:
            fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return math.nan
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def kill(self) -> None:
        """SIGKILL, and reap."""
        if self.alive():
            assert self.proc is not None
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    async def terminate(self, timeout: float = 30) -> int | None:
        """SIGTERM and wait for a clean exit (SIGKILL after ``timeout``)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            os.kill(self.pid, signal.SIGTERM)  # the bot itself, also under py-spy
            try:
                return await asyncio.to_thread(self.proc.wait, timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.proc.returncode

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


class CpuMeter:
    """CPU used by this process (the server and the simulated users) and by the bot."""

    def __init__(self, bot: BotProcess) -> None:
        self.bot = bot
        self.wall = time.monotonic()
        self.own = time.process_time()
        self.bots = bot.cpu_seconds()

    def line(self) -> str:
        wall = time.monotonic() - self.wall
        own = (time.process_time() - self.own) / wall
        bot = (self.bot.cpu_seconds() - self.bots) / wall
        return f"CPU use over {wall:.1f} s: bot {100 * bot:.0f}%, server+users {100 * own:.0f}%"


# -- replies and users ------------------------------------------------------------------------


class Replies:
    """What the bot sent per chat, with O(1) waiting on the next one: ``by_chat`` holds the new
    messages (sends, not edits); ``answers_by_chat`` also the edits that change a message's
    text (a form question turned into the next one), not those that only change buttons.

    The server's own ``next_message`` wakes every waiter on every message; with hundreds of
    simulated users that would make the load generator the bottleneck.
    """

    def __init__(self, api: LocalBotApi) -> None:
        self.by_chat: dict[int, list[SentMessage]] = defaultdict(list)
        self.answers_by_chat: dict[int, list[SentMessage]] = defaultdict(list)
        self._waiters: dict[tuple[int, bool], tuple[int, asyncio.Future[SentMessage]]] = {}
        api.add_listener(self._on_sent)

    def _on_sent(self, record: SentMessage) -> None:
        if record.chat_id is None or record.method == "editMessageReplyMarkup":
            return
        streams = [True] if record.is_edit else [False, True]
        for answers in streams:
            messages = self._stream(record.chat_id, answers)
            messages.append(record)
            waiter = self._waiters.get((record.chat_id, answers))
            if waiter is not None and len(messages) > waiter[0] and not waiter[1].done():
                waiter[1].set_result(messages[waiter[0]])

    def _stream(self, chat_id: int, answers: bool) -> list[SentMessage]:
        return (self.answers_by_chat if answers else self.by_chat)[chat_id]

    def mark(self, chat_id: int, *, answers: bool = False) -> int:
        return len(self._stream(chat_id, answers))

    async def after(
        self,
        chat_id: int,
        index: int,
        timeout: float = REPLY_TIMEOUT,
        *,
        answers: bool = False,
    ) -> SentMessage:
        """The ``index``-th new message (with ``answers``: or text edit) to ``chat_id``
        (counting from 0), once it exists."""
        messages = self._stream(chat_id, answers)
        if len(messages) > index:
            return messages[index]
        future: asyncio.Future[SentMessage] = asyncio.get_running_loop().create_future()
        self._waiters[(chat_id, answers)] = (index, future)
        try:
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            raise TimeoutError(f"chat {chat_id}: no reply within {timeout:.0f} s") from None
        finally:
            self._waiters.pop((chat_id, answers), None)


@dataclass
class Sample:
    """One user action and the bot's answer (times from ``time.monotonic``)."""

    user_id: int
    sent_at: float
    replied_at: float

    @property
    def latency(self) -> float:
        return self.replied_at - self.sent_at


@dataclass
class User:
    """A simulated user acting through the local server and timing each reply."""

    api: LocalBotApi
    replies: Replies
    id: int
    lang: str = "en"
    samples: list[Sample] = field(default_factory=list)
    think: Callable[[], Awaitable[None]] | None = None

    def __post_init__(self) -> None:
        self.api.add_user(self.id, first_name=f"User{self.id}", language_code=self.lang)

    async def _act(
        self, action: Callable[[], Awaitable[int]], answers: bool = False
    ) -> SentMessage:
        if self.think is not None:
            await self.think()
        index = self.replies.mark(self.id, answers=answers)
        sent_at = time.monotonic()
        await action()
        reply = await self.replies.after(self.id, index, answers=answers)
        self.samples.append(Sample(self.id, sent_at, reply.at))
        return reply

    async def say(self, text: str, *, answers: bool = False) -> SentMessage:
        """Send ``text``; returns the next new message (``answers``: or text edit)."""
        return await self._act(lambda: self.api.send_text(self.id, text), answers)

    def button(self, message: SentMessage, data_prefix: str) -> str:
        """The callback data of the first button of ``message`` starting with the prefix."""
        for button in message.buttons:
            data = str(button.get("callback_data", ""))
            if data.startswith(data_prefix):
                return data
        raise LookupError(f"user {self.id}: no button {data_prefix!r} on {message.summary()}")

    async def tap(
        self, message: SentMessage, data_prefix: str, *, answers: bool = False
    ) -> SentMessage:
        """Press a button; returns the next new message (``answers``: or text edit, such as the
        tapped question turned into the next one)."""
        data = self.button(message, data_prefix)
        return await self._act(
            lambda: self.api.press_button(self.id, message.message_id, data), answers
        )

    async def press(self, message: SentMessage, data_prefix: str) -> None:
        """Press a button without waiting for a new message (the bot may only edit)."""
        data = self.button(message, data_prefix)
        await self.api.press_button(self.id, message.message_id, data)


COUNTRY = {"en": "Senegal", "fr": "Sénégal", "es": "Senegal"}
LANGS = ("en", "fr", "es")
#: Updates one registration takes (as in tests/test_participant.py register()).
REGISTRATION_UPDATES = 9


TAPPED: list[tuple[str, str]] = [
    ("say", "/register"),
    ("say", "Participant {id}"),
    ("say", "p{id}@example.org"),
    ("say", "{country}"),
    ("tap", "reg:org:skip"),
    ("tap", "reg:aff:pes"),
    ("say", "2"),  # French (interpretation), typed as a number
    ("tap", "reg:consent:yes"),
    ("tap", "reg:confirm:yes"),
]
#: The same answers, every one typed (the choices by number or word).
TYPED: list[tuple[str, str]] = [
    *TAPPED[:4],
    ("say", "-"),
    ("say", "1"),
    ("say", "2"),
    ("say", "yes"),
    ("say", "1"),
]


async def register(
    user: User, steps: int = REGISTRATION_UPDATES, actions: list[tuple[str, str]] = TAPPED
) -> SentMessage:
    """The eight-step form (by default 5 typed answers and 4 button presses), or its first
    ``steps`` updates; returns the last answer (the confirmation after all nine).

    A tapped answer may come back as a new message or as the tapped question edited into the
    next one: both count as the answer."""
    reply: SentMessage | None = None
    for kind, value in actions[:steps]:
        if kind == "say":
            text = value.format(id=user.id, country=COUNTRY[user.lang])
            reply = await user.say(text, answers=True)
        else:
            assert reply is not None
            reply = await user.tap(reply, value, answers=True)
    assert reply is not None
    return reply


class Pacer:
    """Open-loop load: Poisson arrivals at ``rate`` per second, each one the next action of a
    random user who is ready (has had the previous reply). ``missed`` counts arrivals that
    found nobody ready, so the offered rate really was ``rate`` when it is 0."""

    def __init__(self, rate: float, rng: random.Random) -> None:
        self.rate = rate
        self.rng = rng
        self.missed = 0
        self.sent = 0
        self._ready: list[asyncio.Future[None]] = []

    async def permit(self) -> None:
        """A user's pause before acting: wait to be picked."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._ready.append(future)
        await future

    async def run(self, until: asyncio.Future[object]) -> None:
        """Release actions until ``until`` is done (every user finished)."""
        loop = asyncio.get_running_loop()
        due = loop.time()
        while not until.done():
            due += self.rng.expovariate(self.rate)
            delay = due - loop.time()
            if delay > 0:
                await asyncio.wait({until}, timeout=delay)
            if self._ready:
                future = self._ready.pop(self.rng.randrange(len(self._ready)))
                future.set_result(None)
                self.sent += 1
            elif not until.done():
                self.missed += 1


async def start_server(**kwargs: float | None) -> LocalBotApi:
    api = LocalBotApi(token=TOKEN, **kwargs)  # type: ignore[arg-type]
    await api.start()
    return api


async def wait_polling(api: LocalBotApi, bot: BotProcess, timeout: float = 30) -> None:
    """Until the bot's long poll is waiting at the server (its start-up is over)."""
    try:
        await api.wait_until_polling(timeout)
    except TimeoutError:
        raise SystemExit(f"the bot did not start polling; its log:\n{bot.log_tail()}") from None
