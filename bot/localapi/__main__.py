"""``python -m bot.localapi``: run the local Bot API standalone until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal

from .server import LocalBotApi
from .state import SentMessage


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command line options."""
    parser = argparse.ArgumentParser(
        prog="python -m bot.localapi", description="Local fake of the Telegram Bot API."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081, help="0 picks a free port")
    parser.add_argument("--token", default="123456:TEST-TOKEN")
    parser.add_argument("--bot-username", default="ilo_webinar_bot")
    parser.add_argument(
        "--rate-limit", type=float, default=None, help="max send-type calls per second overall"
    )
    parser.add_argument(
        "--per-chat-rate", type=float, default=None, help="max send-type calls per second per chat"
    )
    parser.add_argument(
        "--error-share", type=float, default=0.0, help="share of send-type calls answered 5xx"
    )
    parser.add_argument(
        "--blocked-share", type=float, default=0.0, help="share of users who blocked the bot"
    )
    parser.add_argument("--seed", type=int, default=None, help="seed of the shares above")
    parser.add_argument("--echo", action="store_true", help="print every message the bot sends")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every request")
    return parser.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    """Run the server until SIGINT or SIGTERM."""
    api = LocalBotApi(
        token=args.token,
        host=args.host,
        port=args.port,
        rate_limit=args.rate_limit,
        per_chat_rate=args.per_chat_rate,
        bot_username=args.bot_username,
    )
    if args.error_share or args.blocked_share:
        api.flood(args.rate_limit, args.error_share, args.blocked_share, args.seed)
    if args.echo:

        def echo(record: SentMessage) -> None:
            print(f"<< {record.summary()}", flush=True)

        api.add_listener(echo)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with api:
        print(api.base_url, flush=True)
        await stop.wait()
    print(f"stopped; stats: {api.stats}", flush=True)


def main(argv: list[str] | None = None) -> None:
    """Entry point."""
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not args.verbose:
        logging.getLogger("httpx").setLevel(logging.WARNING)
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()
