"""python-telegram-bot's HTTP layer on aiohttp (already our web server's library).

PTB's default, ``HTTPXRequest``, costs ~2.5 ms of event-loop CPU per Bot API call here
(httpcore's pool scans every connection through anyio on each request; see
docs/benchmarks.md); a bot that answers a button, sends a receipt and posts a card makes
three or four calls per tip, so this is a large share of a tip's cost. aiohttp's client
does the same calls for a fraction of it. Behaviour follows ``HTTPXRequest``: form
fields (or multipart with files), the four timeouts, ``TimedOut``/``NetworkError``.
Only PTB's public request API is used (``BaseRequest``, ``RequestData``,
``BaseRequest.DEFAULT_NONE``).

``proxy_url``: every call and file download goes through this HTTP proxy (police networks
often sit behind one); credentials in it (``http://user:pass@host:3128``) are sent as
``Proxy-Authorization``. An ``https://`` Bot API URL is tunnelled through it (CONNECT). The
proxy's URL is never put in an error text (it may hold a password).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import aiohttp
from telegram.error import NetworkError, TelegramError, TimedOut
from telegram.request import BaseRequest, RequestData
from yarl import URL

DEFAULT_TIMEOUTS = {"connect": 5.0, "read": 5.0, "write": 5.0, "pool": 1.0}
MEDIA_WRITE_TIMEOUT = 20.0
DOWNLOAD_READ_TIMEOUT = 20.0  # between two reads of a file download
DOWNLOAD_TOTAL_TIMEOUT = 180.0  # seconds for a whole file (20 MB at ~1 Mbit/s)
FORM_HEADERS = {"Content-Type": "application/x-www-form-urlencoded"}
# what PTB passes for a timeout: seconds, None (no limit) or BaseRequest.DEFAULT_NONE ("not
# given": ours applies)
Timeout = Any


class AiohttpRequest(BaseRequest):
    """One ``aiohttp.ClientSession`` with a bounded connection pool."""

    def __init__(
        self, *, connection_pool_size: int = 256, read_timeout: float | None = 5.0,
        proxy_url: str | None = None,
    ) -> None:
        self._pool_size = connection_pool_size
        self._read_timeout = read_timeout
        # aiohttp sends the URL's credentials as Proxy-Authorization (plain requests) or
        # with the CONNECT (https:// targets)
        self._proxy = URL(proxy_url) if proxy_url else None
        self._session: aiohttp.ClientSession | None = None

    @property
    def read_timeout(self) -> float | None:
        return self._read_timeout

    async def initialize(self) -> None:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._pool_size, ttl_dns_cache=300),
                headers={"User-Agent": self.USER_AGENT},
                # the timeouts are per call; the pool wait is bounded by the connector
                timeout=aiohttp.ClientTimeout(total=None),
                raise_for_status=False,
                auto_decompress=True,
            )

    async def shutdown(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: Timeout = BaseRequest.DEFAULT_NONE,
        write_timeout: Timeout = BaseRequest.DEFAULT_NONE,
        connect_timeout: Timeout = BaseRequest.DEFAULT_NONE,
        pool_timeout: Timeout = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        if self._session is None or self._session.closed:
            raise RuntimeError("This AiohttpRequest is not initialized!")
        files = request_data.multipart_data if request_data else None
        fields = request_data.json_parameters if request_data else None
        read = _value(read_timeout, self._read_timeout)
        write = _value(write_timeout, MEDIA_WRITE_TIMEOUT if files else DEFAULT_TIMEOUTS["write"])
        connect = _value(connect_timeout, DEFAULT_TIMEOUTS["connect"])
        pool = _value(pool_timeout, DEFAULT_TIMEOUTS["pool"])
        timeout = aiohttp.ClientTimeout(
            total=None, connect=_add(connect, pool), sock_connect=connect,
            # aiohttp has no separate write timeout: sending the body counts towards the read
            sock_read=_add(read, write),
        )
        # plain form fields as ready bytes: aiohttp's own dict -> FormData path costs more
        # than the rest of the call
        body: aiohttp.FormData | bytes | None = urlencode(fields).encode() if fields else None
        headers = FORM_HEADERS if body is not None else None
        if files:
            form = aiohttp.FormData()
            for name, value in (fields or {}).items():
                form.add_field(name, value)
            for name, (filename, content, mime) in files.items():  # PTB's (name, bytes|IO, type)
                form.add_field(name, content, filename=filename, content_type=mime)
            body, headers = form, None
        try:
            async with self._session.request(
                method, url, data=body, headers=headers, timeout=timeout, proxy=self._proxy,
            ) as response:
                return response.status, await response.read()
        # the errors' texts can hold the request URL, which holds the bot token: not kept
        except (TimeoutError, aiohttp.ServerTimeoutError):
            raise TimedOut from None
        except aiohttp.ClientError as error:
            raise NetworkError(f"aiohttp.{type(error).__name__}") from None


    @staticmethod
    def parse_json_payload(payload: bytes) -> dict[str, Any]:
        """As PTB's, but a reply that is not JSON (a web page from a wrong
        TIPLINE_BOT_API_URL, a proxy's error page) is not logged with its text and a
        traceback: the text could hold anything, and the caller says what went wrong."""
        try:
            parsed = json.loads(payload.decode("utf-8", "replace"))
        except ValueError:
            raise TelegramError("Invalid server response") from None
        if not isinstance(parsed, dict):
            raise TelegramError("Invalid server response")
        return parsed

    async def download(self, url: str, max_bytes: int) -> bytes:
        """GET a file's bytes, reading no more than ``max_bytes``: :class:`DownloadTooLarge`
        when its Content-Length or the bytes received go past it (PTB's ``File.download_*``
        read the whole body whatever its size)."""
        if self._session is None or self._session.closed:
            raise RuntimeError("This AiohttpRequest is not initialized!")
        timeout = aiohttp.ClientTimeout(
            # a trickling server must not hold a picture turn for ever: 20 MB at 1 Mbit/s
            total=DOWNLOAD_TOTAL_TIMEOUT,
            connect=DEFAULT_TIMEOUTS["connect"] + DEFAULT_TIMEOUTS["pool"],
            sock_connect=DEFAULT_TIMEOUTS["connect"], sock_read=DOWNLOAD_READ_TIMEOUT,
        )
        try:
            async with self._session.get(
                url, timeout=timeout, proxy=self._proxy
            ) as response:
                if response.status != 200:
                    raise NetworkError(f"file download failed: HTTP {response.status}")
                if (response.content_length or 0) > max_bytes:
                    raise DownloadTooLarge(response.content_length)
                chunks, received = [], 0
                async for chunk in response.content.iter_chunked(64 * 1024):
                    received += len(chunk)
                    if received > max_bytes:
                        raise DownloadTooLarge(received)
                    chunks.append(chunk)
                return b"".join(chunks)
        except (TimeoutError, aiohttp.ServerTimeoutError):
            raise TimedOut from None
        except aiohttp.ClientError as error:
            raise NetworkError(f"aiohttp.{type(error).__name__}") from None


class DownloadTooLarge(Exception):
    """A download went past its byte limit (the argument: bytes announced or received)."""


def _value(given: Timeout, default: float | None) -> float | None:
    """A timeout PTB passed (seconds or None: no limit), else ``default`` (PTB's
    ``BaseRequest.DEFAULT_NONE`` or any other "not given" marker)."""
    return float(given) if isinstance(given, int | float) else None if given is None else default


def _add(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a + b
