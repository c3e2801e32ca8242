"""Logging set-up, and the redaction of secrets from everything the bot writes out.

One `Redactor` serves the log handler and the bot's own stdout and stderr (`redacted_output`),
so a line printed with `print()` (a start-up error that quotes a URL) is cleaned like a log.
"""

from __future__ import annotations

import io
import logging
import re
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

TOKEN_PATTERN = re.compile(r"\d{3,15}:[A-Za-z0-9_-]{5,100}")
# The webhook secret where it is named: PTB logs setWebhook's parameters at DEBUG
# ({'secret_token': '…'}), and a dump of request headers names it too.
SECRET_PARAMETER = re.compile(
    r"""(secret[_-]token['"]?\s*[:=]\s*['"]?)[A-Za-z0-9_-]+""", re.IGNORECASE
)
# Shorter configured secrets are only hidden where named: replacing every "abc" would make
# the logs unreadable (and such a secret protects nothing anyway).
LITERAL_MIN = 4


class Redactor:
    """Hides bot tokens (by their shape) and the configured secrets (by value)."""

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        kept = {secret for secret in secrets if secret and len(secret) >= LITERAL_MIN}
        self.secrets = sorted(kept, key=len, reverse=True)  # a secret inside another: longest

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "<secret>")
        text = TOKEN_PATTERN.sub("<token>", text)
        return SECRET_PARAMETER.sub(r"\1<secret>", text)


redact = Redactor()  # tokens only: for text built before the settings are known


class RedactTokens(logging.Filter):
    """Redact the message and the exception text of every record."""

    def __init__(self, redactor: Redactor = redact) -> None:
        super().__init__()
        self.redact = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = self.redact(message)
        if cleaned != message:
            record.msg = cleaned
            record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            text = logging.Formatter().formatException(record.exc_info)
            cleaned = self.redact(text)
            if cleaned != text:
                record.exc_text = cleaned
        return True


class _RedactingStream(io.TextIOBase):
    """A text stream that writes through to `target` after redaction."""

    def __init__(self, target: TextIO, redactor: Redactor) -> None:
        super().__init__()
        self.target = target
        self.redact = redactor

    def write(self, text: str) -> int:
        self.target.write(self.redact(text))
        return len(text)

    def flush(self) -> None:
        self.target.flush()

    def isatty(self) -> bool:
        return self.target.isatty()

    def fileno(self) -> int:
        return self.target.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return self.target.encoding


@contextmanager
def redacted_output(redactor: Redactor) -> Iterator[None]:
    """Redact what is written to sys.stdout and sys.stderr meanwhile: print(), a traceback
    printed by Python itself, a library writing to stderr."""
    saved = sys.stdout, sys.stderr
    sys.stdout = _RedactingStream(saved[0], redactor)  # type: ignore[assignment]
    sys.stderr = _RedactingStream(saved[1], redactor)  # type: ignore[assignment]
    try:
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        sys.stdout, sys.stderr = saved


def setup_logging(level: int, path: Path | None = None, redactor: Redactor = redact) -> None:
    """Log to stderr, or to the file `path` (the console simulator keeps the chat clean)."""
    handler: logging.Handler = (
        logging.StreamHandler(sys.stderr)
        if path is None
        else logging.FileHandler(path, "a", encoding="utf-8")
    )
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactTokens(redactor))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Warnings (PTB's among them) go through the same redacting handler, not straight to stderr.
    logging.captureWarnings(True)
    # httpx logs every request URL, and the URL carries the token.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)
    # aiosqlite logs every statement twice at DEBUG, with its parameters (personal data).
    logging.getLogger("aiosqlite").setLevel(max(level, logging.INFO))
    # APScheduler reports every job run at INFO.
    logging.getLogger("apscheduler").setLevel(max(level, logging.WARNING))
