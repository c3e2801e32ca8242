"""`python run_bot.py --console` driven through pipes, as a person at a terminal would."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from pathlib import Path

from bot.event import load_event
from bot.i18n import I18n
from bot.storage import Database, RegistrationRepo
from tests.conftest import ROOT

T = I18n()
DEMO = load_event(ROOT / "data" / "demo-event.toml")


class ConsoleProcess:
    """The simulator as a child process: write lines, read its output line by line."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.transcript: list[str] = []

    @classmethod
    async def start(cls, folder: Path, *args: str) -> ConsoleProcess:
        env = {**os.environ, "EVENT_FILE": "", "ADMIN_IDS": "", "LOG_LEVEL": "INFO"}
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            str(ROOT / "run_bot.py"),
            "--console",
            "--dir",
            str(folder),
            *args,
            cwd=ROOT,
            env=env,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        return cls(proc)

    async def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line.encode() + b"\n")
        await self.proc.stdin.drain()

    async def expect(self, pattern: str, timeout: float = 30.0) -> re.Match[str]:
        """Read lines until one matches the regular expression `pattern`."""
        assert self.proc.stdout is not None
        regex = re.compile(pattern)
        try:
            async with asyncio.timeout(timeout):
                while True:
                    raw = await self.proc.stdout.readline()
                    if not raw:
                        raise AssertionError(f"console ended before {pattern!r}")
                    line = raw.decode().rstrip("\n")
                    self.transcript.append(line)
                    if match := regex.search(line):
                        return match
        except TimeoutError:
            raise AssertionError(
                f"no line matching {pattern!r}; output so far:\n" + "\n".join(self.transcript)
            ) from None

    async def text(self, text: str) -> None:
        await self.expect(re.escape(text))

    async def button(self, label: str) -> str:
        """The number the console shows for the button labelled `label`."""
        match = await self.expect(r"\[(\d+)\] " + re.escape(label) + r"(\s{3}|$)")
        return match[1]

    async def tap(self, label: str) -> None:
        await self.send(await self.button(label))

    async def close(self) -> tuple[int, str]:
        await self.send("/quit")
        await self.text("Bye.")
        assert self.proc.stderr is not None
        stderr = (await self.proc.stderr.read()).decode()
        return await asyncio.wait_for(self.proc.wait(), 20), stderr


async def test_console_start_language_event_and_full_registration(tmp_path):
    en, fr = T("en"), T("fr")
    console = await ConsoleProcess.start(tmp_path)
    try:
        await console.text("demo-event.toml (DEMO")
        await console.text("Start with /start.")

        await console.send("/start")
        await console.tap("🌐 " + en._("Language"))
        await console.tap("Français")
        await console.text(fr._("Choose below, or send /help to see everything I can do."))

        await console.send("/event")
        await console.text(DEMO.text("fr").title)

        await console.send("/register")
        await console.text(fr._("Step {step} of {total}").format(step=1, total=8))
        await console.send("Zoé Console")
        await console.text(fr._("Step {step} of {total}").format(step=2, total=8))
        await console.send("zoe@example.org")
        await console.text(fr._("Step {step} of {total}").format(step=3, total=8))
        await console.send("Sénégal")
        await console.tap(fr._("Skip this question"))
        await console.tap("1. " + fr._("Public Employment Service"))
        await console.tap("2. " + fr._("French (interpretation)"))
        await console.tap(fr._("Yes, I agree"))
        await console.text(fr._("Please check your details:"))
        await console.tap(fr._("Confirm"))
        await console.text(fr._("You are registered."))
        saved = await console.expect(r"saved to (\S+\.ics)$")
        assert Path(saved[1]).read_text().startswith("BEGIN:VCALENDAR")

        await console.send("!text 7")  # a number sent as text, not as a button press
        await console.text(  # registered: where to see the registration
            fr._("To see your registration, send /myregistration. For everything else, /help.")
        )
        code, stderr = await console.close()
    finally:
        if console.proc.returncode is None:
            console.proc.kill()
            await console.proc.wait()
    assert code == 0
    assert stderr == ""  # logs go to the session's console.log, not into the chat
    assert "Application started" in (tmp_path / "console.log").read_text()

    db = Database(tmp_path / "console.sqlite3")
    await db.open()
    try:
        stored = await RegistrationRepo(db).live(100001)
    finally:
        await db.close()
    assert stored is not None and stored.status == "active"
    assert (stored.data.full_name, stored.data.country, stored.language) == (
        "Zoé Console",
        "SN",
        "fr",
    )


async def test_console_admin_user_buttons_and_end_of_input(tmp_path):
    console = await ConsoleProcess.start(tmp_path, "--lang", "es", "--user-id", "42", "--admin")
    try:
        await console.text("Telegram user 42, app language 'es' (Spanish), an admin")
        await console.send("/start")
        await console.button("🌐 " + T("es")._("Language"))
        await console.send("9")
        await console.text("there is no button 9")
        await console.send("!sticker")
        await console.text(
            T("es")._("To register for the webinar, send /register. For everything else, /help.")
        )
        await console.send("!user 43 fr")
        await console.text("Telegram user 43, app language 'fr' (French), not an admin")
        assert console.proc.stdin is not None
        console.proc.stdin.close()  # Ctrl-D
        await console.text("Bye.")
        assert await asyncio.wait_for(console.proc.wait(), 20) == 0
    finally:
        if console.proc.returncode is None:
            console.proc.kill()
            await console.proc.wait()
