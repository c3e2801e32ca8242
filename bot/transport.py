"""How the bot talks HTTP to the Bot API: python-telegram-bot's `BaseRequest` over aiohttp.

PTB's own transport (httpx, with the pure-Python h11 parser) costs ~1 ms of CPU per request on
our machines; aiohttp, with its C parser, ~0.3 ms. A registration step makes one to three
requests, so this is most of what the bot spends per update (README, "Benchmarks").

Errors map as PTB's `HTTPXRequest` maps them: a timeout is `TimedOut`, any other transport
failure `NetworkError`. A timeout while waiting for the answer, when the request had gone out,
is `AnswerTimedOut`: Telegram may have acted on it, so it must not be repeated blindly. The
same holds for a connection lost before the answer (`NoAnswer`); a connection that could not
be made at all (`NotSent`) proves that Telegram never saw the request.
"""

from __future__ import annotations

import io
import json
import urllib.request
from functools import cache
from typing import IO, Any
from urllib.parse import urlsplit

import aiohttp
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData

from bot.logs import redact

JSON = "application/json"


class AnswerTimedOut(TimedOut):
    """The request was sent; its answer did not arrive in time."""


class NoAnswer(NetworkError):
    """The connection failed once the request may have left: Telegram may have acted on it."""


class NotSent(NetworkError):
    """No connection could be made: the request never reached Telegram."""


class ConnectTimedOut(NotSent, TimedOut):
    """Timed out waiting for a connection: the request never reached Telegram."""


def _seconds(value: Any, default: float | None) -> float | None:
    return default if value is BaseRequest.DEFAULT_NONE else value


@cache
def proxy_for(scheme: str, host: str) -> str | None:
    """The proxy from the environment (HTTPS_PROXY, NO_PROXY…) for `host`, as httpx (and so
    PTB's own transport) would use it. Looked up once per host: aiohttp's `trust_env` would
    read the environment and ~/.netrc again in a thread for every request."""
    proxies = urllib.request.getproxies_environment()
    if urllib.request.proxy_bypass_environment(host, proxies):
        return None
    return proxies.get(scheme)


class _CallersFile(io.RawIOBase):
    """A file handle PTB passes on (`InputFile(..., read_file_handle=False)`, e.g. a large
    CSV streamed from disk) as aiohttp reads it: from the start, and left open when aiohttp
    closes what it sent, since a retry after a 429 sends the same handle again (PTB's
    `HTTPXRequest` too rewinds it and leaves it to its owner)."""

    def __init__(self, handle: IO[bytes]) -> None:
        super().__init__()
        handle.seek(0)
        self._handle = handle

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        return self._handle.read(-1 if size is None else size)

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._handle.seek(offset, whence)

    def tell(self) -> int:
        return self._handle.tell()

    def fileno(self) -> int:  # aiohttp sizes the upload (Content-Length) with fstat
        return self._handle.fileno()


class AiohttpRequest(BaseRequest):
    """PTB's `BaseRequest` on one `aiohttp.ClientSession` (made in `initialize`, in the loop).

    Timeouts mean what they mean for `HTTPXRequest`: `pool` to wait for a free connection,
    `connect` to open one, `read` to wait for the answer; aiohttp has no write timeout, so an
    upload is bounded by `media_write` + `read` in all.
    """

    __slots__ = ("_connect", "_media_write", "_pool", "_pool_size", "_read", "_session", "_write")

    def __init__(
        self,
        connection_pool_size: int = 256,
        *,
        read_timeout: float | None = 5.0,
        write_timeout: float | None = 5.0,
        connect_timeout: float | None = 5.0,
        pool_timeout: float | None = 1.0,
        media_write_timeout: float | None = 20.0,
    ) -> None:
        self._pool_size = connection_pool_size
        self._read = read_timeout
        self._write = write_timeout
        self._connect = connect_timeout
        self._pool = pool_timeout
        self._media_write = media_write_timeout
        self._session: aiohttp.ClientSession | None = None

    @property
    def read_timeout(self) -> float | None:
        return self._read

    async def initialize(self) -> None:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._pool_size),
                skip_auto_headers=("Accept-Encoding",),
            )

    async def shutdown(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: Any = BaseRequest.DEFAULT_NONE,
        write_timeout: Any = BaseRequest.DEFAULT_NONE,
        connect_timeout: Any = BaseRequest.DEFAULT_NONE,
        pool_timeout: Any = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        if self._session is None or self._session.closed:
            raise RuntimeError("This AiohttpRequest is not initialized")
        read = _seconds(read_timeout, self._read)
        connect = _seconds(connect_timeout, self._connect)
        pool = _seconds(pool_timeout, self._pool)
        body: Any = None
        headers = {"User-Agent": self.USER_AGENT}
        total = None
        if request_data is not None and request_data.contains_files:
            body = aiohttp.FormData(request_data.json_parameters)
            for name, (filename, content, mime) in request_data.multipart_data.items():
                if not isinstance(content, bytes):
                    content = _CallersFile(content)
                body.add_field(name, content, filename=filename, content_type=mime)
            write = _seconds(write_timeout, self._media_write)
            if write is not None and read is not None:
                total = write + read
        elif request_data is not None:
            # JSON, which the Bot API accepts too: ~8x cheaper to encode than PTB's form fields.
            body = json.dumps(request_data.parameters)
            headers["Content-Type"] = JSON
        timeout = aiohttp.ClientTimeout(
            total=total,
            connect=None if pool is None or connect is None else pool + connect,
            sock_connect=connect,
            sock_read=read,
        )
        parts = urlsplit(url)
        proxy = proxy_for(parts.scheme, parts.hostname or "")
        try:
            async with self._session.request(
                method,
                url,
                data=body,
                headers=headers,
                timeout=timeout,
                proxy=proxy,
                allow_redirects=False,  # as PTB's httpx: the Bot API never redirects
            ) as response:
                return response.status, await response.read()
        except aiohttp.ConnectionTimeoutError as exc:
            raise ConnectTimedOut("Timed out while connecting; the request was not sent") from exc
        except aiohttp.SocketTimeoutError as exc:
            raise AnswerTimedOut("Timed out waiting for the answer") from exc
        except TimeoutError as exc:  # the total bound of an upload: it may have arrived
            raise AnswerTimedOut("Timed out sending or waiting for the answer") from exc
        except aiohttp.ClientConnectorError as exc:  # refused, unknown host: nothing left
            raise NotSent(f"aiohttp.{type(exc).__name__}: {exc}") from exc
        except aiohttp.ClientError as exc:
            # Some errors quote the request URL (a malformed answer: "400, message=…,
            # url=…/bot<token>/setWebhook"), and whoever shows this text would show the token.
            # One line: it may end up as the one line of a start-up error.
            text = " ".join(str(exc).replace(url, f"{parts.scheme}://{parts.netloc}/…").split())
            raise NoAnswer(f"aiohttp.{type(exc).__name__}: {redact(text)}") from exc
