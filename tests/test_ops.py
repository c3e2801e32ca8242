"""Operations: --check, --backup while the bot writes, logs without secrets, SIGTERM."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import aiohttp
import pytest

import run_bot
from bot.i18n import I18n
from bot.localapi import LocalBotApi
from bot.logs import Redactor
from bot.storage import Database, RegistrationRepo
from tests.conftest import ROOT, TOKEN, BotProcess, Participant, bot_env
from tests.test_webhook import free_port

T = I18n()("en")
SHIPPED = ROOT / "data" / "event.toml"
REGISTERED = T._("You are registered.")
HELP = T._("Here is what I can do:")


def text_of(message) -> str:
    return message.plain_text or message.text or ""


async def register(api: LocalBotApi, user_id: int, name: str, email: str) -> None:
    """The whole form in English; returns once the confirmation has been sent."""
    user = Participant(api, user_id, "en")
    await user.say("/register", timeout=30)
    await user.say(name, timeout=30)
    await user.say(email, timeout=30)
    q = await user.say("Senegal", timeout=30)
    q = await user.answer(q, T._("Skip this question"), timeout=30)
    q = await user.answer(q, "1. " + T._("Public Employment Service"), timeout=30)
    q = await user.answer(q, "1. " + T._("English"), timeout=30)
    q = await user.answer(q, T._("Yes, I agree"), timeout=30)
    await api.press_button(user_id, q.message_id, q.callback_data(T._("Confirm")))
    await api.wait_for(lambda m: REGISTERED in text_of(m), chat_id=user_id, timeout=30)


# -- --check ---------------------------------------------------------------------------------


@pytest.fixture
def environ(monkeypatch, tmp_path):
    """Every contract variable set explicitly, so a developer's .env cannot interfere."""
    values = {
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "TELEGRAM_API_BASE_URL": "",
        "ADMIN_IDS": "1,2",
        "DATABASE_PATH": str(tmp_path / "bot.sqlite3"),
        "EVENT_FILE": str(SHIPPED),
        "LOG_LEVEL": "INFO",
        "WEBHOOK_URL": "",
        "WEBHOOK_SECRET": "",
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return monkeypatch


def test_check_summarises_a_valid_configuration(environ, capsys, tmp_path):
    assert run_bot.main(["--check"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("OK")
    assert "The role of Public Employment Services" in out
    assert "2023-06-15 15:30+02:00 (Europe/Zurich)" in out
    assert "closed (the event ended on 2023-06-15 17:00+02:00)" in out
    assert "Follow-up:    1h after the end (2023-06-15 18:00+02:00)" in out
    assert "Recording:    no link" in out
    assert f"{tmp_path / 'bot.sqlite3'} (created at start-up)" in out
    assert "long polling" in out and "2 user id(s)" in out
    assert TOKEN not in out

    environ.setenv("EVENT_FILE", str(ROOT / "data" / "demo-event.toml"))
    environ.setenv("WEBHOOK_URL", "https://bot.example.org/telegram")
    environ.setenv("WEBHOOK_SECRET", "s3cret")
    assert run_bot.main(["--check"]) == 0
    out = capsys.readouterr().out
    assert "Registration: open until 2030-06-13 17:00+02:00" in out
    assert "webhook https://bot.example.org/telegram, listening on 127.0.0.1:8443" in out
    assert "s3cret" not in out


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("TELEGRAM_BOT_TOKEN", "", "TELEGRAM_BOT_TOKEN is not set"),
        ("EVENT_FILE", "missing.toml", "missing.toml"),
        ("WEBHOOK_URL", "https://bot.example.org/hook", "WEBHOOK_SECRET is required"),
        ("DATABASE_PATH", "too-new.sqlite3", "newer than this bot"),
        ("DATABASE_PATH", "not-a-database.sqlite3", "DATABASE_PATH: cannot read"),
    ],
)
def test_check_reports_a_problem_in_one_line(environ, capsys, tmp_path, variable, value, message):
    if value.endswith(".sqlite3"):
        path = tmp_path / value
        if value.startswith("too-new"):
            with closing(sqlite3.connect(path)) as conn:
                conn.execute("PRAGMA user_version = 999")
        else:
            path.write_text("hello")
        value = str(path)
    environ.setenv(variable, value)
    assert run_bot.main(["--check"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert message in captured.err
    assert captured.err.count("\n") == 1 and "Traceback" not in captured.err


def test_console_options_need_console(capsys):
    with pytest.raises(SystemExit) as info:
        run_bot.main(["--lang", "fr"])
    assert info.value.code == 2
    assert "go with --console" in capsys.readouterr().err


# -- --backup ----------------------------------------------------------------------------------


def backup_process(database: Path, target: Path) -> subprocess.CompletedProcess[str]:
    env = {"DATABASE_PATH": str(database), "TELEGRAM_BOT_TOKEN": "", "PATH": "/usr/bin:/bin"}
    return subprocess.run(
        [sys.executable, str(ROOT / "run_bot.py"), "--backup", str(target)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_backup_while_the_bot_is_registering(api, bot, tmp_path):
    await asyncio.gather(
        *(register(api, 2000 + i, f"First {i}", f"first{i}@example.org") for i in range(2))
    )
    api.delay("sendMessage", 0.03)  # the next burst keeps the bot writing for a few seconds
    burst = asyncio.gather(
        *(register(api, 3000 + i, f"Second {i}", f"second{i}@example.org") for i in range(4))
    )
    step_3 = T._("Step {step} of {total}").format(step=3, total=8)
    await api.wait_for(lambda m: step_3 in text_of(m), chat_id=3000, timeout=30)
    repo = RegistrationRepo(bot.db)
    committed = {uid for uid in range(3000, 3004) if await repo.live(uid)}

    target = tmp_path / "backups" / "bot-backup.sqlite3"
    target.parent.mkdir()
    result = await asyncio.to_thread(backup_process, bot.settings.database_path, target)
    await burst
    assert result.returncode == 0, result.stderr
    assert f"written to {target}" in result.stdout and "integrity check ok" in result.stdout

    with closing(sqlite3.connect(target)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    copy = Database(target)
    await copy.open()
    try:
        saved = RegistrationRepo(copy)
        for uid in [*range(2000, 2002), *committed]:
            assert await saved.live(uid) == await repo.live(uid), uid
        for uid in range(3000, 3004):  # later ones may be missing, never different
            found = await saved.live(uid)
            assert found is None or found == await repo.live(uid)
    finally:
        await copy.close()
    assert list(target.parent.iterdir()) == [target]  # no partial file left behind


def test_backup_refuses_a_missing_database_or_an_existing_target(tmp_path):
    result = backup_process(tmp_path / "none.sqlite3", tmp_path / "out.sqlite3")
    assert result.returncode == 2 and "does not exist" in result.stderr
    existing = tmp_path / "db.sqlite3"
    sqlite3.connect(existing).close()
    result = backup_process(existing, existing)
    assert result.returncode == 2 and "already exists" in result.stderr
    assert "Traceback" not in result.stderr


# -- logs ----------------------------------------------------------------------------------------

# Made up, but shaped like a real token; built in parts so that secret scanners stay quiet.
REAL_LOOKING = "7012345678:" + "AAHk3xZ9vQeLmN0pR2sT4u" + "VwXyZ-aBcDeFg"
SECRET_PART = REAL_LOOKING.split(":")[1]


@pytest.mark.parametrize("level", ["DEBUG", "INFO"])
async def test_logs_never_show_the_token_nor_personal_data_at_info(
    tmp_path, future_event_file, level
):
    async with LocalBotApi(token=REAL_LOOKING) as api:
        env = bot_env(
            api, tmp_path, future_event_file, TELEGRAM_BOT_TOKEN=REAL_LOOKING, LOG_LEVEL=level
        )
        process = BotProcess(env, tmp_path / "bot.log")
        process.start()
        try:
            user = Participant(api, 77, "en")
            await user.say("/start", timeout=30)
            api.inject("sendMessage", 500, chat_id=77)  # the answer to /help fails
            sorry = await user.say("/help")
            assert "something went wrong" in text_of(sorry)
            api.inject("getUpdates", 502)  # and so does one poll
            await register(api, 77, "Zoé Secretname", "zoe.private@example.org")
            assert await process.terminate() == 0
        finally:
            process.kill_if_running()
    log = process.log()
    assert "Telegram request failed" in log and "getUpdates failed" in log  # errors logged
    assert REAL_LOOKING not in log and SECRET_PART not in log
    if level == "INFO":
        assert "Secretname" not in log and "zoe.private" not in log


async def test_a_rejected_token_stops_with_one_line(tmp_path, future_event_file):
    async with LocalBotApi(token=TOKEN) as api:
        env = bot_env(api, tmp_path, future_event_file, TELEGRAM_BOT_TOKEN=REAL_LOOKING)
        process = BotProcess(env, tmp_path / "bot.log")
        process.start()
        assert process.proc is not None
        code = await asyncio.to_thread(process.proc.wait, 30)
    log = process.log()
    assert code == 2
    assert "TELEGRAM_BOT_TOKEN was rejected" in log and "Traceback" not in log
    assert SECRET_PART not in log


# -- what the bot prints ----------------------------------------------------------------------

HOOK_SECRET = "hook-secret_" + "0123456789abcdef"


class BrokenProxy:
    """A proxy to the local Bot API that answers one method with a malformed HTTP response,
    as a misbehaving proxy or load balancer would; the HTTP client's error quotes the URL."""

    def __init__(self, upstream: str, broken: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.broken = f"/{broken} ".encode()
        self.served_broken = 0
        self.server: asyncio.Server | None = None

    @property
    def base_url(self) -> str:
        assert self.server is not None
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/bot"

    async def __aenter__(self) -> BrokenProxy:
        self.session = aiohttp.ClientSession()
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()
        await self.session.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
                request_line, *lines = head.split("\r\n")
                headers = dict(line.split(": ", 1) for line in lines if ": " in line)
                headers = {k.lower(): v for k, v in headers.items()}
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                method, target, _ = request_line.split(" ")
                if self.broken in f"{target} ".encode():
                    self.served_broken += 1
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: nope\r\n\r\n")
                    await writer.drain()
                    return
                path = target.removeprefix("/bot")  # /bot<token>/getMe -> <token>/getMe
                content_type = headers.get("content-type", "application/json")
                async with self.session.request(
                    method,
                    f"{self.upstream}{path}",
                    data=body,
                    headers={"Content-Type": content_type},
                ) as response:
                    data = await response.read()
                writer.write(
                    f"HTTP/1.1 {response.status} X\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(data)}\r\n\r\n".encode()
                    + data
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


async def test_a_webhook_error_quoting_the_url_is_one_line_without_secrets(
    api, tmp_path, future_event_file
):
    port = free_port()
    async with BrokenProxy(api.base_url, "setWebhook") as proxy:
        env = bot_env(
            api,
            tmp_path,
            future_event_file,
            TELEGRAM_API_BASE_URL=proxy.base_url,
            WEBHOOK_URL=f"https://bot.example.org/hook/{HOOK_SECRET}",
            WEBHOOK_SECRET=HOOK_SECRET,
            WEBHOOK_PORT=str(port),
            LOG_LEVEL="DEBUG",  # PTB logs setWebhook's parameters, the secret among them
        )
        process = BotProcess(env, tmp_path / "bot.log")
        process.start()
        assert process.proc is not None
        code = await asyncio.to_thread(process.proc.wait, 60)
        assert proxy.served_broken == 1
    log = process.log()
    assert code == 2, log
    methods = api.stats["methods"]  # everything but setWebhook went through the proxy
    assert methods["getMe"] == 1 and methods["setMyCommands"] > 0 and "setWebhook" not in methods
    assert "Calling Bot API endpoint `setWebhook`" in log  # the DEBUG line with parameters
    errors = [line for line in log.splitlines() if line.startswith("Configuration error:")]
    assert len(errors) == 1 and "WEBHOOK_URL: could not set the webhook" in errors[0]
    assert "Traceback" not in log and "Unclosed" not in log
    assert TOKEN not in log and TOKEN.split(":")[1] not in log
    assert HOOK_SECRET not in log


def test_whatever_is_printed_hides_the_token_and_the_webhook_secret(environ, capsys, monkeypatch):
    environ.setenv("TELEGRAM_BOT_TOKEN", REAL_LOOKING)
    environ.setenv("WEBHOOK_URL", "https://bot.example.org/hook")
    environ.setenv("WEBHOOK_SECRET", HOOK_SECRET)

    def failing_run(settings, event):
        print(f"a library printing {settings.token} and {settings.webhook_secret}")
        print(f"to stderr {settings.token}", file=sys.stderr)
        raise run_bot.ConfigError(f"quoting https://x/bot{settings.token}/m {HOOK_SECRET}")

    monkeypatch.setattr(run_bot, "run", failing_run)
    assert run_bot.main([]) == 2
    captured = capsys.readouterr()
    assert captured.out == "a library printing <secret> and <secret>\n"
    assert captured.err.splitlines() == [
        "to stderr <secret>",
        "Configuration error: quoting https://x/bot<secret>/m <secret>",
    ]
    assert sys.stderr is not None and "Redacting" not in type(sys.stderr).__name__


def test_the_redactor_hides_tokens_by_shape_and_secrets_by_value_or_name():
    redact = Redactor([REAL_LOOKING, "abc", HOOK_SECRET, None])
    assert redact(f"x {REAL_LOOKING} y") == "x <secret> y"
    assert redact("another 123456:ABCdef-token") == "another <token>"
    assert redact(f"url=/hook/{HOOK_SECRET}?q") == "url=/hook/<secret>?q"
    # A secret too short to replace everywhere is still hidden where it is named.
    assert redact("abc {'secret_token': 'abc', 'url': 'u'}") == (
        "abc {'secret_token': '<secret>', 'url': 'u'}"
    )
    assert redact("X-Telegram-Bot-Api-Secret-Token: abc") == (
        "X-Telegram-Bot-Api-Secret-Token: <secret>"
    )


async def test_an_unreachable_bot_api_stops_with_one_line(tmp_path, future_event_file):
    env = {
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "TELEGRAM_API_BASE_URL": f"http://127.0.0.1:{free_port()}/bot",  # nothing listens
        "DATABASE_PATH": str(tmp_path / "bot.sqlite3"),
        "EVENT_FILE": str(future_event_file),
        "LOG_LEVEL": "INFO",
    }
    process = BotProcess(env, tmp_path / "bot.log")
    process.start()
    assert process.proc is not None
    code = await asyncio.to_thread(process.proc.wait, 60)
    log = process.log()
    assert code == 3, log
    assert log.count("\n") == 1, log
    assert log.startswith("Start-up error: cannot reach the Telegram Bot API at 127.0.0.1:")
    assert TOKEN not in log


# -- SIGTERM -------------------------------------------------------------------------------------


async def test_sigterm_in_a_burst_exits_0_and_loses_nothing(api, tmp_path, future_event_file):
    # Two users at a time, so that the burst is still running when SIGTERM comes.
    env = bot_env(api, tmp_path, future_event_file, UPDATE_CONCURRENCY="2")
    process = BotProcess(env, tmp_path / "bot.log")
    process.start()
    users = [Participant(api, 5000 + i, "en") for i in range(12)]
    try:
        await users[0].say("/start", timeout=30)
        api.delay("sendMessage", 0.1)  # a burst of 12 answers takes over half a second
        for user in users:
            await api.send_text(user.id, "/help")
        await api.wait_for(lambda m: HELP in text_of(m), chat_id=users[2].id, timeout=30)
        assert await process.terminate() == 0, process.log()
        answered = [u for u in users if any(HELP in text_of(m) for m in api.messages_to(u.id))]
        assert len(answered) < len(users), "SIGTERM came after the burst"

        process.start()
        for user in users:
            await api.wait_for(lambda m: HELP in text_of(m), chat_id=user.id, timeout=30)
        assert await process.terminate() == 0, process.log()
    finally:
        process.kill_if_running()
    for user in users:
        helps = [m for m in api.messages_to(user.id) if HELP in text_of(m)]
        assert len(helps) == 1, f"user {user.id} got /help answered {len(helps)} times"
    assert api.pending_updates == 0
