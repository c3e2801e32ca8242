"""The local Bot API fake, exercised through the real python-telegram-bot."""

from __future__ import annotations

import asyncio
import datetime as dtm
import json
import signal
import sys
import time
from pathlib import Path

import httpx
import pytest
import tornado.web
from telegram import (
    Bot,
    BotCommand,
    BotCommandScopeAllPrivateChats,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    MenuButtonCommands,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
    ReplyParameters,
    Update,
)
from telegram.error import BadRequest, Conflict, Forbidden, InvalidToken, NetworkError, RetryAfter
from telegram.ext import ApplicationBuilder, CallbackQueryHandler, CommandHandler, ContextTypes
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

from bot.localapi import LocalBotApi, SentMessage

TOKEN = "123456:TEST-TOKEN"
ROOT = Path(__file__).resolve().parents[1]


# These override conftest's `api`/`bot`: here `bot` is a bare telegram.Bot client of the server.
@pytest.fixture
async def api():
    async with LocalBotApi(token=TOKEN) as server:
        yield server


@pytest.fixture
async def bot(api):
    async with Bot(TOKEN, base_url=api.base_url) as client:
        yield client


def keyboard(*labels: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(label, callback_data=f"cb:{label}")] for label in labels]
    )


# -- basics -----------------------------------------------------------------------------------


async def test_get_me_base_url_and_auth(api, bot):
    assert api.base_url == f"http://127.0.0.1:{api.port}/bot"
    assert bot.username == "ilo_webinar_bot"
    assert bot.id == 123456
    wrong = Bot("999:WRONG", base_url=api.base_url)
    try:
        with pytest.raises(InvalidToken, match="rejected"):
            await wrong.initialize()
    finally:
        await wrong.shutdown()
    assert api.calls[-1] == ("getMe", {}, 401)
    async with httpx.AsyncClient(trust_env=False) as client:
        unknown = await client.post(f"{api.base_url}{TOKEN}/sendUnicorn")
        elsewhere = await client.get(f"http://127.0.0.1:{api.port}/nothing")
    assert unknown.status_code == 404
    assert unknown.json() == {"ok": False, "error_code": 404, "description": "Not Found"}
    assert elsewhere.status_code == 404


async def test_form_json_and_get_requests(api):
    url = f"{api.base_url}{TOKEN}"
    markup = {"inline_keyboard": [[{"text": "Yes", "callback_data": "y"}]]}
    async with httpx.AsyncClient(trust_env=False) as client:
        as_json = await client.post(
            f"{url}/sendMessage", json={"chat_id": 5, "text": "42", "reply_markup": markup}
        )
        as_form = await client.post(
            f"{url}/sendmessage",
            data={"chat_id": "5", "text": "7", "reply_markup": json.dumps(markup)},
        )
        as_get = await client.get(f"{url}/getMe")
    assert as_json.json()["result"]["reply_markup"] == markup
    assert as_form.json()["result"]["message_id"] == 2
    assert as_get.json()["result"]["username"] == "ilo_webinar_bot"
    assert [(m.text, m.reply_markup) for m in api.messages_to(5)] == [
        ("42", markup),
        ("7", markup),
    ]
    assert api.calls[1].method == "sendMessage"  # canonical name for "sendmessage"


async def test_send_edit_delete_with_keyboards(api, bot):
    api.add_user(42, first_name="Ana", language_code="es", username="ana")
    sent = await bot.send_message(
        42, "Hello <b>Ana</b> &amp; co", parse_mode="HTML", reply_markup=keyboard("EN", "FR")
    )
    assert sent.text == "Hello Ana & co"
    assert sent.entities[0].type == "bold"
    assert sent.chat.type == "private" and sent.chat.username == "ana"
    assert sent.from_user.is_bot and sent.reply_markup == keyboard("EN", "FR")
    record = api.sent[-1]
    assert record.method == "sendMessage" and record.text == "Hello <b>Ana</b> &amp; co"
    assert record.plain_text == "Hello Ana & co" and record.parse_mode == "HTML"
    assert record.button_labels == ["EN", "FR"] and record.callback_data("FR") == "cb:FR"

    edited = await bot.edit_message_text("Choose", chat_id=42, message_id=sent.message_id)
    assert edited.text == "Choose" and edited.reply_markup is None  # keyboard removed
    with pytest.raises(BadRequest, match=r"(?i)message is not modified"):
        await bot.edit_message_text("Choose", chat_id=42, message_id=sent.message_id)
    await bot.edit_message_reply_markup(42, sent.message_id, reply_markup=keyboard("ES"))
    assert api.message(42, sent.message_id)["reply_markup"] == keyboard("ES").to_dict()
    assert [r.method for r in api.messages_to(42)] == [
        "sendMessage",
        "editMessageText",
        "editMessageReplyMarkup",
    ]

    second = await bot.send_message(42, "Bye")
    assert second.message_id == sent.message_id + 1
    assert await bot.delete_message(42, second.message_id)
    assert api.message(42, second.message_id) is None and api.deleted == [(42, 2)]
    with pytest.raises(BadRequest, match=r"(?i)message to delete not found"):
        await bot.delete_message(42, second.message_id)
    with pytest.raises(BadRequest, match=r"(?i)message to edit not found"):
        await bot.edit_message_text("x", chat_id=42, message_id=99)
    with pytest.raises(BadRequest, match=r"(?i)can't parse entities"):
        await bot.send_message(42, "1 <br> 2", parse_mode="HTML")
    with pytest.raises(BadRequest, match=r"(?i)text is empty"):
        await bot.send_message(42, "")
    await bot.send_chat_action(42, "typing")
    reply = await bot.send_message(42, "Re", reply_parameters=ReplyParameters(sent.message_id))
    assert reply.reply_to_message.message_id == sent.message_id
    with pytest.raises(BadRequest, match=r"(?i)message to be replied not found"):
        await bot.send_message(42, "Re", reply_parameters=ReplyParameters(999))
    group = await bot.send_message(-100, "Hi group")
    assert group.chat.type == "group" and group.message_id == 1


async def test_reply_keyboard_tracking(api, bot):
    await bot.send_message(9, "Pick", reply_markup=ReplyKeyboardMarkup([["English", "Español"]]))
    assert api.reply_keyboard(9)["keyboard"] == [[{"text": "English"}, {"text": "Español"}]]
    assert api.last_message(9).button_labels == ["English", "Español"]
    await bot.send_message(9, "Thanks", reply_markup=ReplyKeyboardRemove())
    assert api.reply_keyboard(9) is None


async def test_send_document_and_photo(api, bot):
    message = await bot.send_document(
        42, b"BEGIN:VCALENDAR", filename="webinar.ics", caption="<i>Save</i>", parse_mode="HTML"
    )
    assert message.document.file_name == "webinar.ics"
    assert message.caption == "Save"
    record = api.sent[-1]
    assert record.method == "sendDocument"
    assert (record.document, record.filename) == (b"BEGIN:VCALENDAR", "webinar.ics")
    assert record.mime_type == "text/calendar" and record.caption == "<i>Save</i>"
    again = await bot.send_document(42, message.document.file_id)
    assert api.sent[-1].document == b"BEGIN:VCALENDAR" and again.document.file_name
    photo = await bot.send_photo(42, b"\x89PNG fake", filename="p.png")
    assert photo.photo[-1].width == 320 and api.sent[-1].method == "sendPhoto"
    with pytest.raises(BadRequest, match=r"(?i)wrong file identifier"):
        await bot.send_document(42, "no-such-file-id")


async def test_commands_descriptions_menu(api, bot):
    await bot.set_my_commands([BotCommand("start", "Start")])
    await bot.set_my_commands(
        [BotCommand("start", "Commencer"), BotCommand("aide", "Aide")], language_code="fr"
    )
    scope = BotCommandScopeAllPrivateChats()
    await bot.set_my_commands([BotCommand("cancel", "Cancel")], scope=scope)
    assert api.commands(language_code="fr") == [
        {"command": "start", "description": "Commencer"},
        {"command": "aide", "description": "Aide"},
    ]
    assert api.commands() == [{"command": "start", "description": "Start"}]
    assert api.commands(scope)[0]["command"] == "cancel"
    assert api.commands({"type": "all_private_chats"}) == api.commands(scope)
    fetched = await bot.get_my_commands(language_code="fr")
    assert [c.command for c in fetched] == ["start", "aide"]
    await bot.delete_my_commands(language_code="fr")
    assert api.commands(language_code="fr") == []
    with pytest.raises(BadRequest, match=r"(?i)BOT_COMMAND_INVALID"):
        await bot.set_my_commands([BotCommand("Start", "Upper case")])
    await bot.set_my_description("Registers you", language_code="en")
    await bot.set_my_short_description("ILO webinar")
    await bot.set_chat_menu_button(menu_button=MenuButtonCommands())
    assert api.descriptions == {"en": "Registers you"}
    assert api.short_descriptions == {"": "ILO webinar"}
    assert api.menu_buttons == {None: {"type": "commands"}}
    assert (await bot.get_my_description("en")).description == "Registers you"


# -- updates ----------------------------------------------------------------------------------


async def test_long_polling_delivers_user_text(api, bot):
    api.add_user(7, first_name="Ana", language_code="fr")
    poll = asyncio.create_task(bot.get_updates(timeout=5))
    await api.wait_until_polling()
    assert not poll.done()
    update_id = await api.send_text(7, "/start eures")
    (update,) = await poll
    assert isinstance(update, Update) and update.update_id == update_id == 1
    message = update.message
    assert message.text == "/start eures" and message.chat.id == 7
    assert message.from_user.first_name == "Ana" and message.from_user.language_code == "fr"
    assert message.entities[0].type == "bot_command" and message.entities[0].length == 6
    assert message.parse_entities(["bot_command"]) == {message.entities[0]: "/start"}

    started = time.monotonic()
    assert await bot.get_updates(offset=update_id + 1, timeout=0.2) == ()
    assert time.monotonic() - started >= 0.15


async def test_offset_confirmation_and_limit(api, bot):
    first = await api.send_text(1, "hello")
    await api.send_sticker(1)
    last = await api.send_photo(1, caption="me")
    assert api.pending_updates == 3
    again = await bot.get_updates(limit=2)
    assert [u.update_id for u in again] == [first, first + 1]
    assert again[1].message.sticker and again[1].message.text is None
    everything = await bot.get_updates()
    assert len(everything) == 3 and everything[2].message.photo
    assert api.pending_updates == 3  # nothing confirmed yet
    assert await bot.get_updates(offset=last + 1) == ()
    assert api.confirmed_offset == last + 1 and api.pending_updates == 0
    assert await bot.get_updates(offset=first) == ()  # confirmed updates are gone forever
    raw = api.queue_update(
        {
            "message": {
                "message_id": 50,
                "date": 0,
                "chat": {"id": 1, "type": "private"},
                "text": "raw",
            }
        }
    )
    assert raw == last + 1
    assert (await bot.get_updates())[0].message.text == "raw"
    group = await api.send_text(2, "/help@ilo_webinar_bot", chat_id=-500)
    (update,) = await bot.get_updates(offset=group)
    assert update.effective_chat.type == "group" and update.message.entities[0].length == 21


async def test_callback_query_round_trip(api, bot):
    sent = await bot.send_message(3, "Language?", reply_markup=keyboard("English", "Français"))
    update_id = await api.press_button(3, sent.message_id, "cb:English")
    (update,) = await bot.get_updates()
    query = update.callback_query
    assert query.data == "cb:English" and query.from_user.id == 3
    assert query.message.message_id == sent.message_id and query.message.text == "Language?"
    assert await query.answer("Saved")
    assert api.callback_answers[-1]["text"] == "Saved"
    assert api.callback_answer(update_id)["callback_query_id"] == query.id
    with pytest.raises(BadRequest, match=r"(?i)query is too old"):
        await bot.answer_callback_query(query.id)
    with pytest.raises(ValueError, match="no button"):
        await api.press_button(3, sent.message_id, "cb:Deutsch")
    with pytest.raises(LookupError):
        await api.press_button(3, 999, "x")
    by_label = await api.press_button_by_text(3, "franç")
    (update,) = await bot.get_updates(offset=by_label)
    assert update.callback_query.data == "cb:Français"
    await api.press_button(3, 999, "stale", check=False)
    (update,) = await bot.get_updates(offset=by_label + 1)
    assert update.callback_query.message.is_accessible is False


async def test_concurrent_get_updates_conflict(api):
    url = f"{api.base_url}{TOKEN}/getUpdates"
    async with (
        httpx.AsyncClient(trust_env=False) as first,
        httpx.AsyncClient(trust_env=False) as second,
    ):
        old = asyncio.create_task(first.post(url, data={"timeout": "5"}))
        await api.wait_until_polling()
        newer = await second.post(url, data={"timeout": "0"})
        assert newer.json() == {"ok": True, "result": []}
        response = await old
    assert response.status_code == 409
    assert "terminated by other getUpdates request" in response.json()["description"]


# -- faults -----------------------------------------------------------------------------------


async def test_blocked_user_gets_403(api, bot):
    api.block(11)
    with pytest.raises(Forbidden, match="bot was blocked by the user"):
        await bot.send_message(11, "hi")
    with pytest.raises(Forbidden):
        await bot.send_chat_action(11, "typing")
    assert api.sent == [] and api.stats["403"] == 2
    await api.send_text(11, "/start")  # writing to the bot unblocks it
    await bot.send_message(11, "welcome back")
    assert api.messages_to(11)[0].text == "welcome back"


async def test_injected_errors(api, bot):
    injection = api.inject("sendMessage", 500, count=2)
    for _ in range(2):
        with pytest.raises(NetworkError):
            await bot.send_message(1, "x")
    await bot.send_message(1, "third time lucky")
    assert injection.fired == 2 and [r.text for r in api.sent] == ["third time lucky"]
    api.inject("sendMessage", 502, chat_id=2)
    await bot.send_message(1, "other chat unaffected")
    with pytest.raises(NetworkError, match="Bad Gateway"):
        await bot.send_message(2, "x")
    api.inject("editMessageText", 400, description="Bad Request: message can't be edited")
    with pytest.raises(BadRequest, match=r"(?i)can't be edited"):
        await bot.edit_message_text("x", chat_id=1, message_id=1)
    api.inject(None, 403, description="Forbidden: user is deactivated")
    with pytest.raises(Forbidden, match="deactivated"):
        await bot.get_me()
    assert api.stats["5xx"] == 3 and api.stats["403"] == 1
    assert [c.status for c in api.calls if c.method == "sendMessage"] == [500, 500, 200, 200, 502]


async def test_probabilistic_injection_is_seeded(api, bot):
    outcomes = []
    for _ in range(2):
        injection = api.inject("getMe", 500, probability=0.5, seed=7)
        run = []
        for _ in range(8):
            try:
                await bot.get_me()
                run.append(True)
            except NetworkError:
                run.append(False)
        injection.cancel()
        outcomes.append(run)
    assert outcomes[0] == outcomes[1] and True in outcomes[0] and False in outcomes[0]


async def test_injected_429_raises_retry_after(api, bot, monkeypatch):
    monkeypatch.setenv("PTB_TIMEDELTA", "1")
    api.inject("sendMessage", 429, retry_after=3)
    with pytest.raises(RetryAfter) as caught:
        await bot.send_message(1, "x")
    assert caught.value.retry_after == dtm.timedelta(seconds=3)
    assert api.calls[-1].status == 429 and api.stats["429"] == 1


async def test_rate_limits_answer_429(monkeypatch):
    monkeypatch.setenv("PTB_TIMEDELTA", "1")
    async with (
        LocalBotApi(token=TOKEN, rate_limit=3, per_chat_rate=2) as api,
        Bot(TOKEN, base_url=api.base_url) as bot,
    ):
        await bot.send_message(1, "a")
        await bot.send_message(1, "b")
        with pytest.raises(RetryAfter) as per_chat:
            await bot.send_message(1, "c")
        await bot.send_message(2, "d")
        with pytest.raises(RetryAfter) as overall:
            await bot.send_message(3, "e")
        await bot.get_me()  # not a send-type call
        assert per_chat.value.retry_after >= dtm.timedelta(seconds=1)
        assert overall.value.retry_after >= dtm.timedelta(seconds=1)
        assert [r.text for r in api.sent] == ["a", "b", "d"]
        assert api.stats["429"] == api.stats["rate_limited"] == 2
        body = [c for c in api.calls if c.status == 429]
        assert len(body) == 2


async def test_hold_keeps_request_in_flight(api, bot):
    hold = api.hold("sendMessage", after=1)
    await bot.send_message(1, "first passes")
    task = asyncio.create_task(bot.send_message(1, "held"))
    await hold.reached.wait()
    assert hold.params["text"] == "held" and not task.done()
    assert [r.text for r in api.sent] == ["first passes"]
    hold.release()
    with pytest.raises(NetworkError):
        await task
    assert [r.text for r in api.sent] == ["first passes"]
    await bot.send_message(1, "after")
    assert api.calls[-2].status == 500 and api.sent[-1].text == "after"


async def test_delay_and_wait_for_timeout_summary(api, bot):
    api.delay("sendMessage", 0.2, count=1)
    started = time.monotonic()
    await bot.send_message(4, "slow")
    assert time.monotonic() - started >= 0.15
    with pytest.raises(TimeoutError, match=r"sendMessage chat=4 id=1 'slow'"):
        await api.wait_for(lambda m: m.text == "never", timeout=0.05, chat_id=4)
    with pytest.raises(TimeoutError, match="no new message to chat 4"):
        await api.next_message(4, timeout=0.01, predicate=lambda m: False)


# -- records ----------------------------------------------------------------------------------


async def test_next_message_cursor_and_wait_for(api, bot):
    waiter = asyncio.create_task(api.wait_for(lambda m: m.text == "two"))
    await bot.send_message(5, "one")
    await bot.send_message(6, "other chat")
    await bot.send_message(5, "two")
    assert (await waiter).chat_id == 5
    assert (await api.next_message(5)).text == "one"
    assert (await api.next_message(5)).text == "two"
    pending = asyncio.create_task(api.next_message(5))
    await bot.send_message(5, "three")
    assert (await pending).text == "three"
    assert api.drain(5) == [] and [m.text for m in api.drain(6)] == ["other chat"]
    seen: list[SentMessage] = []
    api.add_listener(seen.append)
    await bot.send_message(5, "four")
    assert [m.text for m in seen] == ["four"]
    stats = api.stats
    assert stats["sent"] == 5 and stats["methods"]["sendMessage"] == 5
    call = await api.wait_for_call(lambda c: c.method == "getMe")
    assert call.status == 200


# -- webhook ----------------------------------------------------------------------------------


class _Receiver(tornado.web.RequestHandler):
    def initialize(self, inbox: asyncio.Queue, statuses: list[int]) -> None:
        self.inbox = inbox
        self.statuses = statuses

    def post(self) -> None:
        status = self.statuses.pop(0) if self.statuses else 200
        secret = self.request.headers.get("X-Telegram-Bot-Api-Secret-Token")
        self.inbox.put_nowait((json.loads(self.request.body), secret, status))
        self.set_status(status)
        self.finish("")


async def test_webhook_delivery_with_secret_and_retry(api, bot):
    inbox: asyncio.Queue = asyncio.Queue()
    app = tornado.web.Application([("/hook", _Receiver, {"inbox": inbox, "statuses": [500]})])
    sockets = bind_sockets(0, "127.0.0.1")
    receiver = HTTPServer(app)
    receiver.add_sockets(sockets)
    url = f"http://127.0.0.1:{sockets[0].getsockname()[1]}/hook"
    try:
        early = await api.send_text(8, "queued before the webhook")
        assert await bot.set_webhook(url, secret_token="s3cr3t")
        with pytest.raises(Conflict, match="webhook is active"):
            await bot.get_updates()
        failed = await asyncio.wait_for(inbox.get(), 5)
        delivered = await asyncio.wait_for(inbox.get(), 5)
        assert failed == (delivered[0], "s3cr3t", 500)  # retried after the 500
        assert delivered[0]["update_id"] == early and delivered[2] == 200
        later = await api.send_text(8, "/start")
        payload, _, _ = await asyncio.wait_for(inbox.get(), 5)
        assert Update.de_json(payload, bot).message.text == "/start"
        await api.wait_for_delivery(lambda d: d.update_id == later and d.status == 200)
        assert api.webhook_deliveries == [(early, 500), (early, 200), (later, 200)]
        assert api.pending_updates == 0
        info = await bot.get_webhook_info()
        assert info.url == url and info.pending_update_count == 0 and info.last_error_message
        assert await bot.delete_webhook()
        assert await bot.get_updates() == ()
    finally:
        receiver.stop()
        await receiver.close_all_connections()


# -- the real Application ---------------------------------------------------------------------


async def test_application_polling_answers_start(api):
    async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        name = update.effective_user.first_name
        await update.message.reply_text(
            f"Welcome {name}! {context.args}", reply_markup=keyboard("OK")
        )

    async def pressed(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await update.callback_query.answer()
        await update.callback_query.edit_message_text("Done")

    app = ApplicationBuilder().token(TOKEN).base_url(api.base_url).build()
    app.add_handler(CommandHandler("start", start))
    app.add_handler(CallbackQueryHandler(pressed))
    api.add_user(77, first_name="Ana", language_code="es")
    async with app:
        await app.start()
        await app.updater.start_polling(timeout=dtm.timedelta(seconds=5))
        await api.send_text(77, "/start eures")
        welcome = await api.next_message(77)
        await api.press_button_by_text(77, "OK")
        done = await api.next_message(77)
        await app.updater.stop()
        await app.stop()
    assert welcome.text == "Welcome Ana! ['eures']"
    assert done.method == "editMessageText" and done.text == "Done"
    assert len(api.callback_answers) == 1
    assert api.pending_updates == 0 and api.stats["internal_errors"] == 0


# -- CLI --------------------------------------------------------------------------------------


async def test_cli_serves_until_sigterm():
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.localapi",
        "--port",
        "0",
        "--token",
        TOKEN,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        base_url = (await asyncio.wait_for(process.stdout.readline(), 10)).decode().strip()
        assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/bot")
        async with httpx.AsyncClient(trust_env=False) as client:
            response = await client.post(f"{base_url}{TOKEN}/getMe")
        assert response.json()["result"]["username"] == "ilo_webinar_bot"
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        out, _ = await asyncio.wait_for(process.communicate(), 10)
    assert process.returncode == 0
    assert b"stopped" in out
