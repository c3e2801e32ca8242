"""The bot's HTTP transport (bot.transport) against the local Bot API server."""

from __future__ import annotations

import asyncio
import io
import socket

import pytest
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, InputFile
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TimedOut

from bot.ratelimit import PriorityRateLimiter
from bot.transport import AiohttpRequest, AnswerTimedOut, proxy_for
from tests.conftest import TOKEN, direct_bot


def limiter() -> PriorityRateLimiter:
    return PriorityRateLimiter(rate=1000, chat_interval=0.01)


async def test_messages_buttons_and_files_arrive_as_sent(api):
    bot = await direct_bot(api, limiter())
    try:
        markup = InlineKeyboardMarkup(
            [[InlineKeyboardButton("Oui, j’accepte", callback_data="a:1")]]
        )
        message = await bot.send_message(
            7, "<b>Étape</b> 1 &amp; 2 · ¿Está?", parse_mode="HTML", reply_markup=markup
        )
        upload = InputFile(io.BytesIO(b"BEGIN:VCALENDAR\r\n" * 1000), filename="webinar.ics")
        document = await bot.send_document(7, upload, caption="Calendrier")
    finally:
        await bot.shutdown()
    text, file = api.sent
    assert message.message_id == text.message_id and text.plain_text == "Étape 1 & 2 · ¿Está?"
    assert text.reply_markup == {
        "inline_keyboard": [[{"text": "Oui, j’accepte", "callback_data": "a:1"}]]
    }
    assert document.message_id == file.message_id
    assert file.filename == "webinar.ics" and file.document == b"BEGIN:VCALENDAR\r\n" * 1000
    assert file.plain_text == "Calendrier"


async def test_telegram_errors_come_through_as_ptb_errors(api):
    bot = await direct_bot(api, None)
    try:
        api.block(2)
        with pytest.raises(Forbidden):
            await bot.send_message(2, "hi")
        api.inject("sendMessage", 400, chat_id=3, description="Bad Request: chat not found")
        with pytest.raises(BadRequest, match="Chat not found"):
            await bot.send_message(3, "hi")
        api.inject("sendMessage", 429, chat_id=4, retry_after=3)
        with pytest.raises(RetryAfter):
            await bot.send_message(4, "hi")
        api.inject("sendMessage", 502, chat_id=5)
        with pytest.raises(NetworkError):
            await bot.send_message(5, "hi")
    finally:
        await bot.shutdown()


async def test_an_answer_that_never_comes_is_an_answer_timeout(api):
    bot = await direct_bot(api, limiter(), read_timeout=0.3)
    try:
        hold = api.hold("sendMessage", chat_id=8)
        with pytest.raises(AnswerTimedOut):
            await bot.send_message(8, "hi")
        assert hold.reached.is_set()  # it went out: Telegram may have acted on it
        hold.release()
    finally:
        await bot.shutdown()
    # `deliver` never sends such a message again: test_ratelimit.py::test_deliver_outcomes.


async def test_a_full_pool_times_out_without_sending(api):
    # One connection: the held request occupies it.
    bot = await direct_bot(api, limiter(), pool=1, pool_timeout=0.2, connect_timeout=0.1)
    try:
        hold = api.hold("sendMessage", chat_id=10)
        first = asyncio.create_task(bot.send_message(10, "first"))
        await hold.reached.wait()
        with pytest.raises(TimedOut) as caught:
            await bot.send_message(11, "second")
        assert not isinstance(caught.value, AnswerTimedOut)
        hold.release(200)
        await asyncio.gather(first, return_exceptions=True)
    finally:
        await bot.shutdown()
    assert not any(c.params.get("chat_id") == 11 for c in api.calls)


async def test_nobody_listening_is_a_network_error():
    with socket.socket() as probe:  # a free port that nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    request = AiohttpRequest(1)
    await request.initialize()
    try:
        with pytest.raises(NetworkError) as caught:
            await request.post(f"http://127.0.0.1:{port}/bot{TOKEN}/getMe")
        assert not isinstance(caught.value, TimedOut)
    finally:
        await request.shutdown()


async def test_used_before_initialize_or_after_shutdown_is_refused():
    request = AiohttpRequest(1)
    with pytest.raises(NetworkError, match="not initialized"):
        await request.post("http://127.0.0.1:9/botX/getMe")
    await request.initialize()
    await request.shutdown()
    await request.shutdown()  # twice is harmless
    await request.initialize()  # and it can start again, as PTB's Application may ask
    await request.shutdown()


def test_proxies_come_from_the_environment_once_per_host(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    proxy_for.cache_clear()
    try:
        assert proxy_for("https", "api.telegram.org") == "http://proxy.example:3128"
        assert proxy_for("http", "127.0.0.1") is None
        assert proxy_for("https", "localhost") is None
        monkeypatch.delenv("HTTPS_PROXY")
        assert proxy_for("https", "api.telegram.org") == "http://proxy.example:3128"  # cached
    finally:
        proxy_for.cache_clear()
