"""The HTTP layer: a tornado server answering Bot API requests, with faults and rate limits."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from types import TracebackType
from typing import Any

import tornado.web
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

from .config import BotConfig
from .methods import BotMethods
from .state import (
    DEFAULT_DESCRIPTIONS,
    JSON,
    METHODS,
    ApiError,
    Delay,
    Flood,
    Hold,
    Injection,
    MethodSpec,
    Req,
    SlidingWindow,
    UploadedFile,
    too_many_requests,
)
from .webhook import Webhooks

_LOG = logging.getLogger("bot.localapi")

#: Parameters that stay strings even when they look like JSON (e.g. a text "42").
STRING_PARAMS = frozenset(
    {
        "text", "caption", "description", "short_description", "url", "secret_token",
        "callback_query_id", "parse_mode", "language_code", "ip_address", "inline_message_id",
        "business_connection_id", "message_effect_id", "title", "emoji", "action", "name",
        "document", "photo", "sticker", "first_name", "last_name", "phone_number", "query",
    }
)  # fmt: skip


def decode_params(raw: JSON) -> JSON:
    """Decode form values the way the Bot API does: JSON where it parses, else strings."""
    params: JSON = {}
    for key, value in raw.items():
        if isinstance(value, str) and key not in STRING_PARAMS:
            with contextlib.suppress(ValueError):
                value = json.loads(value)
        params[key] = value
    return params


def _chat_of(params: JSON) -> int | None:
    value = params.get("chat_id")
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.lstrip("-").isdigit():
        return int(value)
    return None


class _ApiHandler(tornado.web.RequestHandler):
    """``/bot<token>/<method>`` with GET or POST; form, multipart or JSON parameters."""

    def initialize(self, api: LocalBotApi) -> None:
        self.api = api
        self.closed = asyncio.Event()

    def _read(self) -> tuple[JSON, dict[str, UploadedFile]]:
        request = self.request
        raw: JSON = {}
        for source in (request.query_arguments, request.body_arguments):
            for key, values in source.items():
                if values:
                    raw[key] = values[-1].decode("utf-8", "replace")
        content_type = request.headers.get("Content-Type", "")
        if content_type.startswith("application/json") and request.body.strip():
            try:
                body = json.loads(request.body)
            except ValueError:
                raise ApiError(400, "Bad Request: can't parse JSON object") from None
            if not isinstance(body, dict):
                raise ApiError(400, "Bad Request: can't parse JSON object")
            raw.update(body)
        files = {
            name: UploadedFile(parts[0].filename or None, parts[0].body, parts[0].content_type)
            for name, parts in request.files.items()
            if parts
        }
        params = decode_params(raw)
        for name, upload in files.items():
            params.setdefault(name, f"<file {upload.filename!r}, {len(upload.body)} bytes>")
        return params, files

    async def post(self, token: str, method: str) -> None:
        """Answer one API call."""
        try:
            params, files = self._read()
        except ApiError as exc:
            status, body = exc.status, exc.payload()
            self.api._record_call(method, {}, status)
        else:
            status, body = await self.api._handle(token, method, Req(params, files, self.closed))
        if self.closed.is_set():
            return
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(body, ensure_ascii=False))

    async def get(self, token: str, method: str) -> None:
        """Telegram accepts GET too."""
        await self.post(token, method)

    def on_connection_close(self) -> None:
        """The client went away: abort a pending long poll."""
        self.closed.set()
        self.api._poll_wake.notify()


class _NotFoundHandler(tornado.web.RequestHandler):
    def prepare(self) -> None:
        self.set_status(404)
        self.finish(ApiError(404, "Not Found").payload())


def _log_request(handler: tornado.web.RequestHandler) -> None:
    request = handler.request
    _LOG.debug(
        "%d %s %s %.1fms",
        handler.get_status(),
        request.method,
        request.uri,
        1000 * request.request_time(),
    )


class LocalBotApi(Webhooks, BotMethods, BotConfig):
    """A local fake of the Telegram Bot API, served over HTTP on ``host:port``.

    Point PTB at :attr:`base_url`. User actions (``send_text``, ``press_button`` …) are
    coroutines that only queue updates; records (``sent``, ``calls``) and waits
    (``wait_for``, ``next_message``) never sleep.
    """

    def __init__(
        self,
        token: str = "123456:TEST-TOKEN",
        host: str = "127.0.0.1",
        port: int = 0,
        rate_limit: float | None = None,
        per_chat_rate: float | None = None,
        bot_username: str = "ilo_webinar_bot",
        bot_name: str = "ILO Webinar Bot",
    ) -> None:
        self.token = token
        self.host = host
        self.port = port
        self._init_records()
        self._init_chats(token, bot_username, bot_name)
        self._init_methods()
        self._init_config()
        self._init_updates()
        self._init_webhooks()
        self.set_rate_limits(rate_limit, per_chat_rate)
        self._injections: list[Injection] = []
        self._holds: list[Hold] = []
        self._delays: list[Delay] = []
        self._flood: Flood | None = None
        self._server: HTTPServer | None = None
        self._stop_event = asyncio.Event()
        self._active = 0
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def base_url(self) -> str:
        """``http://host:port/bot`` — PTB appends ``<token>/<method>``."""
        return f"http://{self.host}:{self.port}/bot"

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Listen (port 0 picks a free port, stored in :attr:`port`)."""
        if self._server is not None:
            raise RuntimeError("LocalBotApi already started")
        app = tornado.web.Application(
            [(r"/bot([^/]*)/([^/]+)", _ApiHandler, {"api": self})],
            default_handler_class=_NotFoundHandler,
            log_function=_log_request,
        )
        sockets = bind_sockets(self.port, self.host)
        self._server = HTTPServer(app)
        self._server.add_sockets(sockets)
        self.port = sockets[0].getsockname()[1]
        self._stopping = False
        self._stop_event = asyncio.Event()
        self._running = True
        await self._restart_delivery()
        _LOG.info("local Bot API listening on %s", self.base_url)

    async def stop(self) -> None:
        """Answer pending long polls and holds, stop webhook delivery, close connections."""
        if self._server is None:
            return
        server, self._server = self._server, None
        self._stopping = True
        self._running = False
        self._stop_event.set()
        self._poll_wake.notify()
        for hold in self._holds:
            hold.release(hold.status)
        await self._restart_delivery()
        server.stop()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5):
                await self._idle.wait()
        await server.close_all_connections()

    async def __aenter__(self) -> LocalBotApi:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # -- faults ----------------------------------------------------------------------------

    def set_rate_limits(self, rate_limit: float | None, per_chat_rate: float | None) -> None:
        """(Re)configure rate limiting of send-type calls (None: unlimited); resets windows."""
        self.rate_limit = rate_limit
        self.per_chat_rate = per_chat_rate
        self._global_window = SlidingWindow(rate_limit) if rate_limit else None
        self._chat_windows: dict[int, SlidingWindow] = {}

    def flood(
        self,
        rate: float | None = 30,
        error_share: float = 0.0,
        blocked_share: float = 0.0,
        seed: int | None = None,
        spare: tuple[int, ...] = (),
    ) -> Flood:
        """Behave like Telegram in a flood: at most ``rate`` send-type calls a second overall
        (more get a 429 with ``retry_after``), ``error_share`` of them answered with a 5xx,
        ``blocked_share`` of the private chats having blocked the bot (403); see `Flood`.
        ``spare`` chats (an admin) get no 5xx and never block the bot."""
        self.set_rate_limits(rate, self.per_chat_rate)
        self._flood = Flood(error_share, blocked_share, seed, frozenset(spare))
        return self._flood

    def inject(
        self,
        method: str | None = "sendMessage",
        status: int = 500,
        count: int | None = None,
        chat_id: int | None = None,
        probability: float | None = None,
        retry_after: int | None = None,
        description: str | None = None,
        seed: int | None = None,
    ) -> Injection:
        """Fail matching calls (``method`` None: any) with ``status``.

        Without ``probability`` the next ``count`` (default 1) matching calls fail; with it
        each matching call fails with that probability (seeded RNG), at most ``count`` times
        (default unlimited). 429s carry ``parameters.retry_after`` (default 1).
        """
        if count is None and probability is None:
            count = 1
        injection = Injection(
            method, status, count, chat_id, probability, retry_after, description, seed
        )
        self._injections.append(injection)
        return injection

    def hold(
        self, method: str | None = "sendMessage", after: int = 0, chat_id: int | None = None
    ) -> Hold:
        """Hold the ``after+1``-th matching call from now unanswered until released.

        ``await hold.reached.wait()``; ``hold.release()`` answers 500. Never recorded as sent.
        """
        hold = Hold(method, after, chat_id)
        self._holds.append(hold)
        return hold

    def delay(
        self,
        method: str | None,
        seconds: float,
        count: int | None = None,
        chat_id: int | None = None,
    ) -> Delay:
        """Answer matching calls ``seconds`` late (``count`` None: all of them)."""
        delay = Delay(method, seconds, count, chat_id)
        self._delays.append(delay)
        return delay

    def clear_faults(self) -> None:
        """Drop injections and delays; release held calls (500)."""
        for hold in self._holds:
            hold.release(hold.status)
        self._injections.clear()
        self._holds.clear()
        self._delays.clear()
        self._flood = None

    def _fault(self, spec: MethodSpec, chat_id: int | None) -> ApiError | None:
        for injection in self._injections:
            if error := injection.trigger(spec.name, chat_id):
                return error
        flood = self._flood if spec.sends and chat_id is not None else None
        if (
            flood is not None
            and chat_id is not None
            and self.chat_type(chat_id) == "private"
            and flood.blocks(chat_id)
        ):
            self.block(chat_id)  # for good, as a person does
        if spec.to_chat and chat_id is not None and self.is_blocked(chat_id):
            if self.chat_type(chat_id) == "private":
                return ApiError(403, DEFAULT_DESCRIPTIONS[403])
            return ApiError(403, "Forbidden: bot was kicked from the group chat")
        if not spec.sends:
            return None
        if flood is not None and (error := flood.error(chat_id)):
            return error
        now = time.monotonic()
        windows = [self._global_window] if self._global_window else []
        if self.per_chat_rate and chat_id is not None:
            window = self._chat_windows.get(chat_id)
            if window is None:
                window = self._chat_windows[chat_id] = SlidingWindow(self.per_chat_rate)
            windows.append(window)
        waits = [wait for window in windows if (wait := window.retry_after(now)) is not None]
        if waits:
            self._counts[" rate_limited"] += 1
            return too_many_requests(max(waits))
        for window in windows:
            window.take(now)
        return None

    # -- dispatch --------------------------------------------------------------------------

    async def _handle(self, token: str, name: str, req: Req) -> tuple[int, JSON]:
        self._active += 1
        self._idle.clear()
        try:
            return await self._answer(token, name, req)
        finally:
            self._active -= 1
            if not self._active:
                self._idle.set()

    async def _answer(self, token: str, name: str, req: Req) -> tuple[int, JSON]:
        spec = METHODS.get(name.lower())
        method = spec.name if spec else name
        if token != self.token or spec is None:
            error = ApiError(401, "Unauthorized") if token != self.token else None
            error = error or ApiError(404, "Not Found")
            self._record_call(method, req.params, error.status)
            return error.status, error.payload()
        chat_id = _chat_of(req.params)
        hold = next((h for h in self._holds if h.claims(method, chat_id)), None)
        if hold is not None:
            hold.params = req.params
            hold.reached.set()
            if not self._stopping:
                await hold.wait_released()
            error = ApiError(hold.status, DEFAULT_DESCRIPTIONS.get(hold.status, "Error"))
            self._record_call(method, req.params, error.status)
            return error.status, error.payload()
        for delay in self._delays:
            if delay.applies(method, chat_id):
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay.seconds):
                        await self._stop_event.wait()
        try:
            if error := self._fault(spec, chat_id):
                raise error
            result: Any = await spec.impl(self, req)
        except ApiError as exc:
            status, body = exc.status, exc.payload()
        except Exception as exc:  # a bug here must surface in tests, not hang the bot
            _LOG.exception("local Bot API failed on %s", method)
            self.internal_errors.append(exc)
            status, body = 500, ApiError(500, f"Internal Server Error: {exc!r}").payload()
        else:
            status, body = 200, {"ok": True, "result": result}
        self._record_call(method, req.params, status)
        return status, body
