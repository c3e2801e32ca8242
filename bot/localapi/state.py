"""Records, users, faults and small helpers shared by the local Bot API fake."""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

JSON = dict[str, Any]

#: Default descriptions of error responses, keyed by HTTP status.
DEFAULT_DESCRIPTIONS = {
    400: "Bad Request: injected error",
    401: "Unauthorized",
    403: "Forbidden: bot was blocked by the user",
    404: "Not Found",
    409: "Conflict: terminated by other getUpdates request; "
    "make sure that only one bot instance is running",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


class ApiError(Exception):
    """A Telegram-shaped error response."""

    def __init__(self, status: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.retry_after = retry_after

    def payload(self) -> JSON:
        """The JSON body Telegram would answer with."""
        body: JSON = {"ok": False, "error_code": self.status, "description": self.description}
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        return body


def too_many_requests(retry_after: int) -> ApiError:
    """A 429 error exactly as Telegram phrases it."""
    return ApiError(429, f"Too Many Requests: retry after {retry_after}", retry_after)


def utf16_len(text: str) -> int:
    """Length of ``text`` in UTF-16 code units, the unit of Telegram entity offsets."""
    return len(text.encode("utf-16-le")) // 2


class UploadedFile(NamedTuple):
    """A file part of a multipart request."""

    filename: str | None
    body: bytes
    content_type: str | None


@dataclass
class Req:
    """One API request as seen by a method implementation."""

    params: JSON
    files: dict[str, UploadedFile] = field(default_factory=dict)
    closed: asyncio.Event = field(default_factory=asyncio.Event)

    def get(self, name: str, default: Any = None) -> Any:
        """A parameter, or ``default`` when missing or null."""
        value = self.params.get(name)
        return default if value is None else value

    def get_int(self, name: str, default: int | None = None) -> int:
        """An integer parameter; 400 when missing (without default) or malformed."""
        value = self.params.get(name)
        if value is None or value == "":
            if default is None:
                raise ApiError(400, f"Bad Request: {name} is empty")
            return default
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise ApiError(400, f"Bad Request: invalid {name} specified")
        try:
            return int(value)
        except ValueError:
            raise ApiError(400, f"Bad Request: invalid {name} specified") from None

    def chat_id(self) -> int:
        """The ``chat_id`` parameter; usernames (``@name``) are unknown chats."""
        value = self.params.get("chat_id")
        if isinstance(value, str) and value.startswith("@"):
            raise ApiError(400, "Bad Request: chat not found")
        return self.get_int("chat_id")

    def file(self, name: str) -> UploadedFile | None:
        """The uploaded file for ``name`` (directly or via ``attach://``), if any."""
        if name in self.files:
            return self.files[name]
        value = self.params.get(name)
        if isinstance(value, str) and value.startswith("attach://"):
            return self.files.get(value.removeprefix("attach://"))
        return None


MethodImpl = Callable[[Any, Req], Awaitable[Any]]


@dataclass(frozen=True)
class MethodSpec:
    """A registered Bot API method.

    ``sends``: sends or edits a message (rate limited, recorded in ``sent``);
    ``to_chat``: targets a chat and fails with 403 when that chat blocked the bot.
    """

    name: str
    impl: MethodImpl
    sends: bool = False
    to_chat: bool = False


#: Registry of implemented methods keyed by lower-case name (the Bot API is case-insensitive).
METHODS: dict[str, MethodSpec] = {}


def api_method(
    *names: str, sends: bool = False, to_chat: bool = False
) -> Callable[[MethodImpl], MethodImpl]:
    """Register the decorated coroutine function as the implementation of ``names``."""

    def register(impl: MethodImpl) -> MethodImpl:
        for name in names:
            METHODS[name.lower()] = MethodSpec(name, impl, sends, to_chat or sends)
        return impl

    return register


@dataclass
class SentMessage:
    """One successful send-type call (send or edit) made by the bot."""

    method: str
    chat_id: int | None
    text: str | None = None
    caption: str | None = None
    reply_markup: JSON | None = None
    message_id: int | None = None
    parse_mode: str | None = None
    entities: list[JSON] | None = None
    document: bytes | None = None  # uploaded bytes of sendDocument / sendPhoto
    filename: str | None = None
    mime_type: str | None = None
    params: JSON = field(default_factory=dict)
    at: float = field(default_factory=time.monotonic)
    plain_text: str | None = None  # text or caption as the user sees it (HTML parsed)
    file_ref: str | None = None  # file_id / URL when a file was sent by reference
    message: JSON | None = None  # the resulting Telegram Message object

    @property
    def is_edit(self) -> bool:
        """Whether this record is an edit of an earlier message."""
        return self.method.startswith("edit")

    @property
    def buttons(self) -> list[JSON]:
        """Inline keyboard buttons of ``reply_markup``, row by row, flattened."""
        rows = (self.reply_markup or {}).get("inline_keyboard") or []
        return [button for row in rows for button in row]

    @property
    def button_labels(self) -> list[str]:
        """Labels of the inline keyboard buttons (or reply keyboard buttons)."""
        if self.buttons:
            return [button["text"] for button in self.buttons]
        rows = (self.reply_markup or {}).get("keyboard") or []
        return [b if isinstance(b, str) else b["text"] for row in rows for b in row]

    def callback_data(self, label: str) -> str:
        """The callback_data of the inline button labelled ``label``."""
        for button in self.buttons:
            if button.get("text") == label and "callback_data" in button:
                return str(button["callback_data"])
        raise LookupError(f"no callback button {label!r}; buttons: {self.button_labels}")

    def summary(self) -> str:
        """A one-line human readable description."""
        shown = self.plain_text if self.plain_text is not None else (self.text or self.caption)
        line = f"{self.method} chat={self.chat_id} id={self.message_id}"
        if shown is not None:
            line += f" {shown[:80]!r}"
        if self.filename or self.file_ref:
            line += f" file={self.filename or self.file_ref!r}"
        if self.button_labels:
            line += f" buttons={self.button_labels}"
        return line


class ApiCall(NamedTuple):
    """Every request the server answered: method, decoded params and HTTP status."""

    method: str
    params: JSON
    status: int


class WebhookDelivery(NamedTuple):
    """One webhook POST attempt; status 0 means a connection error."""

    update_id: int
    status: int


@dataclass
class UserInfo:
    """A simulated Telegram user."""

    id: int
    first_name: str = "Ana"
    language_code: str | None = "en"
    username: str | None = None
    last_name: str | None = None
    is_bot: bool = False

    def to_dict(self) -> JSON:
        """The Telegram ``User`` object."""
        data: JSON = {"id": self.id, "is_bot": self.is_bot, "first_name": self.first_name}
        for key in ("last_name", "username", "language_code"):
            if getattr(self, key) is not None:
                data[key] = getattr(self, key)
        return data


def _method_matches(wanted: str | None, method: str) -> bool:
    return wanted is None or wanted.lower() == method.lower()


@dataclass
class Injection:
    """An injected failure; see :meth:`LocalBotApi.inject`."""

    method: str | None
    status: int
    count: int | None = 1
    chat_id: int | None = None
    probability: float | None = None
    retry_after: int | None = None
    description: str | None = None
    seed: int | None = None
    fired: int = 0
    cancelled: bool = False
    _rng: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    @property
    def exhausted(self) -> bool:
        """Whether this injection will never fire again."""
        return self.cancelled or (self.count is not None and self.fired >= self.count)

    def cancel(self) -> None:
        """Stop injecting."""
        self.cancelled = True

    def trigger(self, method: str, chat_id: int | None) -> ApiError | None:
        """The error for this call if the injection fires, else None."""
        if self.exhausted or not _method_matches(self.method, method):
            return None
        if self.chat_id is not None and chat_id != self.chat_id:
            return None
        if self.probability is not None and self._rng.random() >= self.probability:
            return None
        self.fired += 1
        if self.status == 429:
            retry_after = self.retry_after or 1
            if self.description is None:
                return too_many_requests(retry_after)
            return ApiError(429, self.description, retry_after)
        description = self.description or DEFAULT_DESCRIPTIONS.get(self.status, "Injected error")
        return ApiError(self.status, description, self.retry_after)


@dataclass
class Flood:
    """Telegram under load, for send-type calls; see :meth:`LocalBotApi.flood`.

    ``error_share`` of the calls are answered with a 5xx (one of ``statuses``), never acted
    on; ``blocked_share`` of the private chats have blocked the bot, decided once per chat
    (a person who blocks a bot does so for good), so every call to them gets a 403. Chats in
    ``spare`` get neither. Seeded: the same chats are blocked in every run.
    """

    error_share: float = 0.0
    blocked_share: float = 0.0
    seed: int | None = None
    spare: frozenset[int] = frozenset()
    statuses: tuple[int, ...] = (500, 502, 503)
    errors: int = 0
    _decided: dict[int, bool] = field(default_factory=dict, repr=False)
    _rng: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def blocks(self, chat_id: int) -> bool:
        """Whether ``chat_id`` is one of the share that blocked the bot."""
        if chat_id in self.spare or self.blocked_share <= 0:
            return False
        decided = self._decided.get(chat_id)
        if decided is None:
            draw = random.Random(f"{self.seed}:{chat_id}").random()
            decided = self._decided[chat_id] = draw < self.blocked_share
        return decided

    def error(self, chat_id: int | None) -> ApiError | None:
        """A 5xx for this call, or None."""
        if chat_id in self.spare or self._rng.random() >= self.error_share:
            return None
        self.errors += 1
        status = self._rng.choice(self.statuses)
        return ApiError(status, DEFAULT_DESCRIPTIONS[status])


@dataclass
class Hold:
    """A request held unanswered; see :meth:`LocalBotApi.hold`."""

    method: str | None
    after: int = 0
    chat_id: int | None = None
    reached: asyncio.Event = field(default_factory=asyncio.Event)
    params: JSON | None = None  # params of the held request once reached
    status: int = 500
    _released: asyncio.Event = field(default_factory=asyncio.Event, repr=False)
    _passed: int = field(default=0, repr=False)

    def claims(self, method: str, chat_id: int | None) -> bool:
        """Whether this call is the one to hold (counts the calls let through before it)."""
        if self.params is not None or not _method_matches(self.method, method):
            return False
        if self.chat_id is not None and chat_id != self.chat_id:
            return False
        self._passed += 1
        return self._passed > self.after

    def release(self, status: int = 500) -> None:
        """Answer the held request with ``status`` (it is never recorded as sent)."""
        self.status = status
        self._released.set()

    async def wait_released(self) -> None:
        """Wait until :meth:`release` is called."""
        await self._released.wait()


@dataclass
class Delay:
    """Slow answers for matching calls; see :meth:`LocalBotApi.delay`."""

    method: str | None
    seconds: float
    count: int | None = None
    chat_id: int | None = None
    used: int = 0

    def applies(self, method: str, chat_id: int | None) -> bool:
        """Whether this call should be delayed (consumes one use)."""
        if self.count is not None and self.used >= self.count:
            return False
        if not _method_matches(self.method, method):
            return False
        if self.chat_id is not None and chat_id != self.chat_id:
            return False
        self.used += 1
        return True


class SlidingWindow:
    """At most ``rate`` events per second, checked over a sliding window.

    Rates below 1/s become one event per ``1/rate`` seconds.
    """

    def __init__(self, rate: float) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.capacity = max(1, int(rate))
        self.window = 1.0 if rate >= 1 else 1.0 / rate
        self._times: deque[float] = deque()

    def retry_after(self, now: float) -> int | None:
        """None when a slot is free, else the seconds (an integer ≥ 1) until one frees up."""
        while self._times and self._times[0] <= now - self.window:
            self._times.popleft()
        if len(self._times) >= self.capacity:
            return max(1, math.ceil(self._times[0] + self.window - now))
        return None

    def take(self, now: float) -> None:
        """Use a slot (call after :meth:`retry_after` returned None)."""
        self._times.append(now)


class Pulse:
    """A broadcast wake-up: ``wait()`` returns at the next ``notify()``."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self) -> None:
        """Wake every current waiter."""
        self._event.set()
        self._event = asyncio.Event()

    async def wait(self) -> None:
        """Wait for the next notification."""
        await self._event.wait()
