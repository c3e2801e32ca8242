"""Logging set-up: levels from settings, the token never written."""

from __future__ import annotations

import logging
import re
import sys
from pathlib import Path

TOKEN_PATTERN = re.compile(r"\d{3,15}:[A-Za-z0-9_-]{5,100}")


class RedactTokens(logging.Filter):
    """Replace anything shaped like a bot token, in the message and in exception text."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if TOKEN_PATTERN.search(message):
            record.msg = TOKEN_PATTERN.sub("<token>", message)
            record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            text = logging.Formatter().formatException(record.exc_info)
            if TOKEN_PATTERN.search(text):
                record.exc_text = TOKEN_PATTERN.sub("<token>", text)
        return True


def setup_logging(level: int, path: Path | None = None) -> None:
    """Log to stderr, or to the file `path` (the console simulator keeps the chat clean)."""
    handler: logging.Handler = (
        logging.StreamHandler(sys.stderr)
        if path is None
        else logging.FileHandler(path, "a", encoding="utf-8")
    )
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactTokens())
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
