"""`BotApiSandbox`: a local Telegram Bot API server for tests and the no-token demo mode.

    sandbox = BotApiSandbox()
    await sandbox.start()
    app = (ApplicationBuilder().token(sandbox.token)
           .base_url(sandbox.base_url).base_file_url(sandbox.base_file_url).build())
    alice = sandbox.create_user("Lan")
    await sandbox.send_text(alice.id, "/start")
    replies = await sandbox.wait_for_bot_messages(alice.id, 1)

The real python-telegram-bot talks to it over HTTP exactly as to api.telegram.org; tests (and
the web chat page at `url`) act as residents and officers through the control methods below.
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import time
from collections import deque
from collections.abc import Sequence
from functools import partial
from typing import Any

from aiohttp import web

from . import api_chat, api_core, api_edit, api_media, api_send, people  # noqa: F401
from .control import add_control_routes
from .errors import ApiError
from .models import JSON, FloodCounts, RateLimits, SandboxChat, SandboxUser
from .params import Params
from .registry import lookup
from .world import World

_LOG = logging.getLogger(__name__)
MAX_BODY = 60 * 1024 * 1024
MAX_LOGGED_CALLS = 20_000
_dumps = partial(json.dumps, ensure_ascii=False, separators=(",", ":"))


class BotApiSandbox:
    """An in-process fake of Telegram's Bot API, served over HTTP with aiohttp."""

    def __init__(
        self,
        *,
        token: str = "123456:SANDBOX-TOKEN",  # noqa: S107 - a fake token for a fake server
        bot_username: str = "tipline_sandbox_bot",
        bot_first_name: str = "Hòm thư an ninh",
        limits: RateLimits | None = None,
        time_zone: str = "Asia/Ho_Chi_Minh",
    ) -> None:
        """``time_zone``: the page shows message times in it, 24 h (as the bot's texts)."""
        self.token = token
        self.time_zone = time_zone
        bot_id = int(token.split(":", 1)[0]) if token.split(":", 1)[0].isdigit() else 123456
        self.bot_user = SandboxUser(
            bot_id, bot_first_name, username=bot_username, language_code=None, is_bot=True
        )
        self.limits = limits or RateLimits()
        self.world = World(self.bot_user, self.limits)
        self.url = ""
        self._runner: web.AppRunner | None = None
        self._inflight = 0
        self._last_call = 0.0

    # ---- server ----------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """For `ApplicationBuilder().base_url(...)`: PTB appends the token."""
        return f"{self.url}/bot"

    @property
    def base_file_url(self) -> str:
        """For `ApplicationBuilder().base_file_url(...)`."""
        return f"{self.url}/file/bot"

    def make_app(self) -> web.Application:
        """The aiohttp application (Bot API, file downloads, control API, web page)."""
        app = web.Application(client_max_size=MAX_BODY)
        app.router.add_route("*", "/bot{token}/{method}", self._handle_api)
        app.router.add_get("/file/bot{token}/{path:.+}", self._handle_file)
        add_control_routes(app, self)
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Serve on host:port (port 0 picks a free one); sets `url`."""
        runner = web.AppRunner(self.make_app(), shutdown_timeout=1.0, handler_cancellation=True)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        try:
            await site.start()
        except BaseException:  # e.g. the port is taken
            await runner.cleanup()
            raise
        self._runner = runner
        bound_port = runner.addresses[0][1] if runner.addresses else port
        self.url = f"http://{host}:{bound_port}"
        _LOG.info("Bot API sandbox listening on %s", self.url)

    async def stop(self) -> None:
        """Stop webhook delivery, end long polls and close the server."""
        await self.world.hub.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> BotApiSandbox:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # ---- Bot API routes --------------------------------------------------------------------

    async def _handle_api(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return _error_response(ApiError(401, "Unauthorized"))
        entry = lookup(request.match_info["method"])
        if entry is None:
            return _error_response(ApiError(404, "Not Found"))
        name, handler = entry
        polling = name == "getUpdates"
        if not polling:
            self._inflight += 1
        params = Params({})
        try:
            params = await Params.from_request(request)
            self._raise_injected(name, params)
            result = await handler(self.world, params)
        except ApiError as exc:
            self._log(name, params, exc, None)
            return _error_response(exc)
        finally:
            if not polling:
                self._inflight -= 1
                self._last_call = time.monotonic()
        if not (polling and not result):
            self._log(name, params, None, result)
        return web.json_response({"ok": True, "result": result}, dumps=_dumps)

    def _raise_injected(self, name: str, params: Params) -> None:
        for key in (f"{name.lower()}@{params.text('chat_id')}", name.lower()):
            queue = self.world.injected.get(key)
            if queue:
                raise queue.popleft()

    def _log(self, name: str, params: Params, error: ApiError | None, result: Any) -> None:
        entry: JSON = {"method": name, "params": params.logged(), "ok": error is None}
        if error is not None:
            entry["error_code"] = error.status
            entry["description"] = error.description
        else:
            entry["result"] = copy.deepcopy(result)
        self.world.calls.append(entry)
        if len(self.world.calls) > MAX_LOGGED_CALLS:
            del self.world.calls[: len(self.world.calls) - MAX_LOGGED_CALLS]

    async def _handle_file(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != self.token:
            return _error_response(ApiError(401, "Unauthorized"))
        stored = self.world.files.by_path(request.match_info["path"])
        if stored is None:
            return _error_response(ApiError(404, "Not Found"))
        mime = stored.mime_type or "application/octet-stream"
        return web.Response(body=stored.data, content_type=mime)

    # ---- people ----------------------------------------------------------------------------

    def create_user(
        self,
        first_name: str,
        *,
        last_name: str | None = None,
        username: str | None = None,
        language_code: str | None = "vi",
        phone_number: str | None = None,
        user_id: int | None = None,
    ) -> SandboxUser:
        """Register an account (it talks to the bot once it sends something)."""
        return people.create_user(
            self.world,
            first_name,
            last_name=last_name,
            username=username,
            language_code=language_code,
            phone_number=phone_number,
            user_id=user_id,
        )

    def create_group(
        self,
        title: str,
        *,
        members: Sequence[int] = (),
        admins: Sequence[int] = (),
        supergroup: bool = False,
        chat_id: int | None = None,
    ) -> SandboxChat:
        """A group with the bot in it (emits `my_chat_member` and a new_chat_members message)."""
        return people.create_group(
            self.world, title, members_=members, admins=admins, supergroup=supergroup,
            chat_id=chat_id,
        )

    def add_member(self, chat_id: int, user_id: int, *, admin: bool = False) -> None:
        """Add (or promote) a member; `bot_user.id` adds or promotes the bot."""
        people.add_member(self.world, chat_id, user_id, admin=admin)

    def remove_member(self, chat_id: int, user_id: int, *, kicked: bool = False) -> None:
        """A member leaves the group (status `left`) or is removed by an admin (`kicked`)."""
        people.remove_member(self.world, chat_id, user_id, kicked=kicked)

    async def edit_text(
        self, user_id: int, message_id: int, text: str, *, chat_id: int | None = None
    ) -> dict[str, Any]:
        """A person edits a text message they sent (an `edited_message` update)."""
        return people.edit_text(self.world, user_id, chat_id, message_id, text)

    async def send_text(
        self,
        user_id: int,
        text: str,
        *,
        chat_id: int | None = None,
        reply_to_message_id: int | None = None,
    ) -> dict[str, Any]:
        """A person writes text (None chat = their private chat with the bot)."""
        return people.post(
            self.world, user_id, chat_id, people.text_content(text), reply_to_message_id
        )

    async def send_photo(
        self,
        user_id: int,
        data: bytes,
        *,
        chat_id: int | None = None,
        caption: str | None = None,
        media_group_id: str | None = None,
        reply_to_message_id: int | None = None,
    ) -> dict[str, Any]:
        """A person sends an image "as photo" (recompressed, metadata stripped)."""
        renditions = await asyncio.to_thread(people.renditions_of, data)
        content = people.photo_content(self.world, renditions, caption, media_group_id)
        return people.post(self.world, user_id, chat_id, content, reply_to_message_id)

    async def send_document(
        self,
        user_id: int,
        data: bytes,
        *,
        file_name: str,
        mime_type: str,
        chat_id: int | None = None,
        caption: str | None = None,
        reply_to_message_id: int | None = None,
    ) -> dict[str, Any]:
        """A person sends a file (bytes kept exactly, EXIF included)."""
        content = people.document_content(self.world, data, file_name, mime_type, caption)
        return people.post(self.world, user_id, chat_id, content, reply_to_message_id)

    async def send_location(
        self, user_id: int, latitude: float, longitude: float, *, chat_id: int | None = None
    ) -> dict[str, Any]:
        """A person shares a location."""
        content = people.location_content(latitude, longitude)
        return people.post(self.world, user_id, chat_id, content)

    async def press_button(
        self, user_id: int, chat_id: int, message_id: int, callback_data: str, *,
        check: bool = True,
    ) -> str:
        """A person presses an inline button; returns the callback query id."""
        return people.press_button(
            self.world, user_id, chat_id, message_id, callback_data, check
        )

    def callback_answer(self, callback_query_id: str) -> dict[str, Any] | None:
        """How the bot answered a button press (`text`, `show_alert`), None if not yet."""
        query = self.world.callbacks.get(callback_query_id)
        return dict(query.answer) if query and query.answer is not None else None

    def block_bot(self, user_id: int) -> None:
        """The user blocks the bot: sends to them fail with 403."""
        people.set_blocked(self.world, user_id, True)

    def unblock_bot(self, user_id: int) -> None:
        """The user unblocks the bot."""
        people.set_blocked(self.world, user_id, False)

    def kick_bot(self, chat_id: int) -> None:
        """An admin removes the bot from a group: sends there fail with 403."""
        people.kick_bot(self.world, chat_id)

    async def migrate_to_supergroup(self, chat_id: int) -> int:
        """Upgrade a basic group; the old id then answers 400 with `migrate_to_chat_id`."""
        return people.migrate(self.world, chat_id)

    # ---- inspection ------------------------------------------------------------------------

    def user(self, user_id: int) -> SandboxUser:
        """A sandbox account by id."""
        return self.world.user(user_id)

    def chat(self, chat_id: int) -> SandboxChat:
        """A sandbox chat by id."""
        return self.world.state(chat_id).chat

    def transcript(self, chat_id: int) -> list[dict[str, Any]]:
        """Every message of a chat in order, current state, plus a `_deleted` flag."""
        state = self.world.chats.get(chat_id)
        if state is None:
            return []
        return [self.world.message_view(stored) for stored in state.messages.values()]

    def bot_messages(self, chat_id: int) -> list[dict[str, Any]]:
        """Messages the bot sent to a chat and has not deleted."""
        state = self.world.chats.get(chat_id)
        if state is None:
            return []
        return [
            copy.deepcopy(stored.data)
            for stored in state.messages.values()
            if stored.from_bot and not stored.deleted
        ]

    def file_bytes(self, file_id: str) -> bytes:
        """The bytes of a stored file (uploaded by the bot or sent by a person)."""
        stored = self.world.files.get(file_id)
        if stored is None:
            raise KeyError(f"no file with id {file_id!r}")
        return stored.data

    async def wait_for_bot_messages(
        self,
        chat_id: int,
        count: int,
        timeout: float = 5.0,  # noqa: ASYNC109 - the agreed test-facing signature
    ) -> list[dict[str, Any]]:
        """Wait until the bot has `count` (not deleted) messages in a chat; returns them all."""
        done = await self.world.activity.wait_until(
            lambda: len(self.bot_messages(chat_id)) >= count, timeout
        )
        if not done:
            got = [_summary(m) for m in self.bot_messages(chat_id)]
            errors = [c for c in self.world.calls[-10:] if not c["ok"]]
            raise TimeoutError(
                f"bot sent {len(got)} of {count} expected messages to chat {chat_id} within "
                f"{timeout}s: {got!r}; pending updates: {len(self.world.hub.pending)}; "
                f"recent failed calls: {errors!r}"
            )
        return self.bot_messages(chat_id)

    async def wait_idle(
        self,
        timeout: float = 5.0,  # noqa: ASYNC109 - the agreed test-facing signature
        *,
        settle: float = 0.1,
    ) -> None:
        """Wait until every update was confirmed and no bot call happened for `settle` s."""
        def idle() -> bool:
            quiet = time.monotonic() - self._last_call >= settle
            return not self.world.hub.pending and self._inflight == 0 and quiet

        hub = self.world.hub
        if not await hub.changed.wait_until(idle, timeout):
            raise TimeoutError(
                f"sandbox not idle after {timeout}s: {len(hub.pending)} updates pending "
                f"({[next(iter(k for k in u if k != 'update_id')) for u in hub.pending]}), "
                f"{self._inflight} Bot API calls in flight; is the bot polling?"
            )

    def inject_errors(
        self, method: str, errors: Sequence[tuple[int, str] | tuple[int, str, int]],
        *, chat_id: int | None = None,
    ) -> None:
        """Make the next calls of `method` fail with (status, description[, retry_after]);
        with `chat_id`, only the calls to that chat (e.g. a 502 on one resident's receipt)."""
        key = method.lower() if chat_id is None else f"{method.lower()}@{chat_id}"
        queue = self.world.injected.setdefault(key, deque())
        for error in errors:
            parameters = {"retry_after": int(error[2])} if len(error) > 2 else None
            queue.append(ApiError(int(error[0]), str(error[1]), parameters))

    def commands(
        self, *, scope_type: str = "default", language_code: str = "", chat_id: int | None = None
    ) -> list[dict[str, Any]]:
        """The command list the bot stored with setMyCommands for that scope and language."""
        for (scope_json, language), commands in self.world.commands.items():
            scope = json.loads(scope_json)
            if scope.get("type") != scope_type or language != language_code:
                continue
            if chat_id is None or scope.get("chat_id") == chat_id:
                return copy.deepcopy(commands)
        return []

    def method_calls(self, method: str | None = None) -> list[dict[str, Any]]:
        """The Bot API calls received (empty getUpdates polls are left out)."""
        calls = self.world.calls
        if method is not None:
            calls = [c for c in calls if c["method"].lower() == method.lower()]
        return copy.deepcopy(calls)

    def flood_counts(self) -> FloodCounts:
        """The bot's sends as the flood limits counted them: accepted, refused with 429,
        and the most accepted within any one second."""
        flood = self.world.flood
        return FloodCounts(len(flood.accepted), flood.refused, flood.busiest(1.0))

    @property
    def privacy_mode(self) -> bool:
        """Group privacy mode (default on, as for new Telegram bots)."""
        return self.world.privacy_mode

    @privacy_mode.setter
    def privacy_mode(self, enabled: bool) -> None:
        self.world.privacy_mode = enabled

    @property
    def updates(self) -> list[dict[str, Any]]:
        """Every update emitted so far (confirmed or not), oldest first."""
        return copy.deepcopy(self.world.hub.emitted)


def _summary(message: dict[str, Any]) -> str:
    for key in ("text", "caption"):
        if message.get(key):
            return str(message[key])
    for key in ("photo", "document", "location", "new_chat_members"):
        if key in message:
            return f"<{key}>"
    return "<message>"


def _error_response(error: ApiError) -> web.Response:
    return web.json_response(error.to_json(), status=error.status, dumps=_dumps)
