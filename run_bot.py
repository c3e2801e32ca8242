"""Start the bot. See README.md for the settings and modes."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from bot.config import ConfigError, load_environ, settings_from
from bot.event import EventFileError, load_event
from bot.logs import setup_logging


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    parse_args(sys.argv[1:] if argv is None else argv)
    try:
        settings = settings_from(load_environ(os.environ))
        event = load_event(settings.event_file)
    except (ConfigError, EventFileError) as exc:
        print(f"Configuration error: {exc}", file=sys.stderr)
        return 2
    setup_logging(settings.log_level)

    from bot.app import build_application
    from bot.runner import run_polling

    app = build_application(settings, event)
    asyncio.run(run_polling(app))
    return 0


if __name__ == "__main__":
    sys.exit(main())
