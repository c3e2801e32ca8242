"""Start the bot. See README.md for the settings and modes.

python run_bot.py                the bot: long polling, or webhook mode when WEBHOOK_URL is set
python run_bot.py --console      chat with the real bot in this terminal (no token needed)
python run_bot.py --check        validate the settings, event file and catalogs, then exit
python run_bot.py --backup PATH  online backup of the database to the new file PATH
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import re
import sys
from pathlib import Path
from urllib.parse import urlsplit

from bot.config import ConfigError, Settings, load_environ, settings_from
from bot.event import Event, EventFileError, load_event
from bot.logs import Redactor, redacted_output, setup_logging

# Settings whose values never appear in the output, whatever quotes them.
SECRET_SETTINGS = ("TELEGRAM_BOT_TOKEN", "WEBHOOK_SECRET")
DEFAULT_API = "https://api.telegram.org"
LANGUAGE_CODE = re.compile(r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{1,8})*$")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--console", action="store_true", help="run the console simulator")
    mode.add_argument("--check", action="store_true", help="validate the configuration and exit")
    mode.add_argument("--backup", type=Path, metavar="PATH", help="back up the database to PATH")
    console = parser.add_argument_group("console simulator (with --console)")
    console.add_argument(
        "--lang", metavar="CODE", help="the simulated user's Telegram language: en, fr, es …"
    )
    console.add_argument(
        "--user-id", type=int, metavar="N", help="act as Telegram user N (admin if in ADMIN_IDS)"
    )
    console.add_argument(
        "--admin", action="store_true", help="make the simulated user an admin for this session"
    )
    console.add_argument(
        "--dir", type=Path, metavar="PATH", help="folder for the session's files (default: temp)"
    )
    args = parser.parse_args(argv)
    if not args.console and (args.lang or args.user_id is not None or args.admin or args.dir):
        parser.error("--lang, --user-id, --admin and --dir go with --console")
    if args.lang and not LANGUAGE_CODE.match(args.lang):
        parser.error(f"--lang: expected a language code such as en, fr or es, got {args.lang!r}")
    if args.user_id is not None and args.user_id <= 0:
        parser.error("--user-id: expected a positive Telegram user id")
    return args


def main(argv: list[str] | None = None) -> int:
    # 1. Options, then settings from the environment and .env (errors: one line, exit 2).
    args = parse_args(sys.argv[1:] if argv is None else argv)
    environ = load_environ(os.environ)
    if args.console:  # its own server and token; what it prints is the simulated chat
        return _main(args, environ, Redactor())
    # Whatever reaches stdout or stderr from here on, print() included, hides the secrets.
    secrets = Redactor(environ.get(name) for name in SECRET_SETTINGS)
    with redacted_output(secrets):
        return _main(args, environ, secrets)


def _main(args: argparse.Namespace, environ: dict[str, str], secrets: Redactor) -> int:
    try:
        # 2. Operator commands that need no token or no event.
        if args.console:
            from bot.console import ConsoleOptions, run_console

            options = ConsoleOptions(args.lang or "en", args.user_id, args.admin, args.dir)
            return run_console(environ, options)
        if args.backup is not None:
            from bot.ops import backup

            return backup(settings_from(environ, require_token=False).database_path, args.backup)
        # 3. The bot's own settings and event file.
        settings = settings_from(environ)
        event = load_event(settings.event_file)
        if args.check:
            from bot.ops import check

            return check(settings, event)
        # 4. Logging, then the bot until SIGTERM/SIGINT.
        setup_logging(settings.log_level, redactor=secrets)
        return run(settings, event)
    except (ConfigError, EventFileError) as exc:
        print(f"Configuration error: {exc}", file=sys.stderr)
        return 2
    except BotApiUnreachable as exc:
        print(f"Start-up error: {exc}", file=sys.stderr)
        return 3


class BotApiUnreachable(Exception):
    """The Bot API did not answer at start-up (network down, wrong TELEGRAM_API_BASE_URL)."""


def run(settings: Settings, event: Event) -> int:
    """Polling or webhook; start-up problems become one line, crashes a redacted log."""
    from telegram.error import InvalidToken, NetworkError

    from bot.app import build_application
    from bot.runner import run_polling
    from bot.storage.db import SchemaTooNew
    from bot.webhook import run_webhook

    app = build_application(settings, event)
    try:
        asyncio.run(run_webhook(app, settings) if settings.webhook else run_polling(app))
    except InvalidToken:
        raise ConfigError("TELEGRAM_BOT_TOKEN was rejected by Telegram (revoked?)") from None
    except SchemaTooNew as exc:
        raise ConfigError(f"DATABASE_PATH: {exc}") from None
    except ConfigError:
        raise
    except NetworkError as exc:  # TimedOut too; the poller itself rides out later outages
        api = urlsplit(settings.api_base_url or DEFAULT_API).netloc
        raise BotApiUnreachable(f"cannot reach the Telegram Bot API at {api}: {exc}") from None
    except Exception:
        # Through logging, whose filter redacts the token, not a raw traceback on stderr.
        logging.getLogger("run_bot").critical("The bot stopped on an error", exc_info=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
