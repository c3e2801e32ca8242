"""Settings from the environment, then from a `.env` file beside run_bot.py.

Every problem is reported as one `ConfigError` line that names the variable, so start-up can
stop with a clear message instead of a traceback.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from dotenv import dotenv_values

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE = ROOT / "data" / "bot.sqlite3"
DEFAULT_EVENT_FILE = ROOT / "data" / "event.toml"
TOKEN_RE = re.compile(r"^\d{3,15}:[A-Za-z0-9_-]{5,100}$")
SECRET_RE = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
#: Users whose updates are handled at the same time (bot.polling); 1: strictly one by one.
DEFAULT_UPDATE_CONCURRENCY = 4


class ConfigError(Exception):
    """A missing or malformed setting; the message names it."""


@dataclass(frozen=True, slots=True)
class Settings:
    token: str
    api_base_url: str | None
    admin_ids: frozenset[int]
    database_path: Path
    event_file: Path
    log_level: int
    webhook_url: str | None
    webhook_listen: str
    webhook_port: int
    webhook_secret: str | None
    update_concurrency: int = DEFAULT_UPDATE_CONCURRENCY

    @property
    def webhook(self) -> bool:
        return self.webhook_url is not None


def load_environ(
    environ: Mapping[str, str], env_file: Path | None = ROOT / ".env"
) -> dict[str, str]:
    """Merge a `.env` file under the real environment (the environment wins)."""
    merged: dict[str, str] = {}
    if env_file is not None and env_file.is_file():
        merged.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
    merged.update(environ)
    return merged


def _path(value: str) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else ROOT / path


def _url(name: str, value: str) -> str:
    parsed = urlparse(value)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ConfigError(f"{name}: expected an http(s) URL, got {value!r}")
    return value


def settings_from(env: Mapping[str, str], *, require_token: bool = True) -> Settings:
    """Build and validate settings from a mapping of variables."""

    def get(name: str) -> str | None:
        value = env.get(name, "").strip()
        return value or None

    token = get("TELEGRAM_BOT_TOKEN")
    if token is None:
        if require_token:
            raise ConfigError("TELEGRAM_BOT_TOKEN is not set (put it in the environment or .env)")
        token = "0:console"
    elif not TOKEN_RE.match(token):
        # Never echo the token itself: it may be a real one with a typo.
        raise ConfigError("TELEGRAM_BOT_TOKEN is malformed (expected <digits>:<letters>)")

    base_url = get("TELEGRAM_API_BASE_URL")
    if base_url is not None:
        _url("TELEGRAM_API_BASE_URL", base_url)

    admin_ids: set[int] = set()
    for part in (get("ADMIN_IDS") or "").split(","):
        part = part.strip()
        if not part:
            continue
        if not part.lstrip("-").isdigit():
            raise ConfigError(f"ADMIN_IDS: {part!r} is not a Telegram user id")
        admin_ids.add(int(part))

    level_name = (get("LOG_LEVEL") or "INFO").upper()
    level = logging.getLevelNamesMapping().get(level_name)
    if level is None:
        raise ConfigError(f"LOG_LEVEL: unknown level {level_name!r} (DEBUG, INFO, WARNING, ERROR)")

    webhook_url = get("WEBHOOK_URL")
    if webhook_url is not None:
        _url("WEBHOOK_URL", webhook_url)
    port_text = get("WEBHOOK_PORT") or "8443"
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ConfigError(f"WEBHOOK_PORT: expected a port number, got {port_text!r}")
    secret = get("WEBHOOK_SECRET")
    if secret is not None and not SECRET_RE.match(secret):
        raise ConfigError("WEBHOOK_SECRET: 1-256 characters of A-Z, a-z, 0-9, _ and - only")
    if webhook_url is not None and secret is None:
        # Without it anyone who finds the URL could post forged updates to the bot.
        raise ConfigError("WEBHOOK_SECRET is required when WEBHOOK_URL is set")

    concurrency_text = get("UPDATE_CONCURRENCY") or str(DEFAULT_UPDATE_CONCURRENCY)
    if not concurrency_text.isdigit() or not 1 <= int(concurrency_text) <= 100:
        raise ConfigError(
            f"UPDATE_CONCURRENCY: expected a number from 1 to 100, got {concurrency_text!r}"
        )

    return Settings(
        token=token,
        api_base_url=base_url,
        admin_ids=frozenset(admin_ids),
        database_path=_path(get("DATABASE_PATH") or str(DEFAULT_DATABASE)),
        event_file=_path(get("EVENT_FILE") or str(DEFAULT_EVENT_FILE)),
        log_level=level,
        webhook_url=webhook_url,
        webhook_listen=get("WEBHOOK_LISTEN") or "127.0.0.1",
        webhook_port=int(port_text),
        webhook_secret=secret,
        update_concurrency=int(concurrency_text),
    )
