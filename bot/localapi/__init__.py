"""A local fake of the Telegram Bot API over real HTTP, for tests, simulation and benchmarks.

Run the real python-telegram-bot Application against it::

    async with LocalBotApi() as api:
        app = ApplicationBuilder().token(api.token).base_url(api.base_url).build()
        ...
        await api.send_text(42, "/start")          # a user writes (queues an update)
        reply = await api.next_message(42)         # what the bot sent to that chat next

or standalone: ``python -m bot.localapi --port 8081`` and run the bot with
``TELEGRAM_API_BASE_URL=http://127.0.0.1:8081/bot``.

* users: ``add_user``, ``send_text``/``send_sticker``/``send_photo``/``send_user_message``,
  ``edit_user_message``,
  ``press_button``/``press_button_by_text`` (coroutines), ``queue_update`` (sync);
* records: ``sent``, ``calls``, ``callback_answers``, ``webhook_deliveries``, ``stats``,
  ``messages_to``, ``message`` (current state), ``commands``;
* waiting (never sleeps): ``wait_for``, ``next_message``, ``wait_for_call``,
  ``wait_for_delivery``, ``wait_until_polling``;
* faults: ``block``, ``inject``, ``hold``, ``delay``, ``rate_limit``/``per_chat_rate``,
  ``flood`` (a rate with 429s, a share of 5xx, a share of users who blocked the bot);
* Telegram's quirks: ``restart_update_ids`` (ids restarting lower after a quiet week).

Telegram's validation is mimicked where bots commonly trip: HTML parse errors, empty or
too long texts, "message is not modified", unknown messages, callback_data > 64 bytes,
invalid commands, answering a callback query twice.
"""

from .server import LocalBotApi
from .state import (
    ApiCall,
    ApiError,
    Delay,
    Flood,
    Hold,
    Injection,
    SentMessage,
    UserInfo,
    WebhookDelivery,
)

__all__ = [
    "ApiCall",
    "ApiError",
    "Delay",
    "Flood",
    "Hold",
    "Injection",
    "LocalBotApi",
    "SentMessage",
    "UserInfo",
    "WebhookDelivery",
]
