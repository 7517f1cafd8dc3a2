"""HTTP control API (`/sandbox/api/...`) and the web chat page (`/`).

The page and any other client act as people: create accounts and groups, write, send photos
or files, share locations, press buttons, block the bot, and read transcripts. Errors are
answered as `{"error": "..."}` with status 400 (bad input, unknown ids) or 404 (no such
file).

    GET    /sandbox/api/state                         users, chats, change counter
    POST   /sandbox/api/users                         {first_name, last_name?, username?, ...}
    POST   /sandbox/api/users/{user_id}/block         {blocked: true|false}
    POST   /sandbox/api/groups                        {title, members?, admins?, supergroup?}
    POST   /sandbox/api/groups/{chat_id}/members      {user_id, admin?}
    DELETE /sandbox/api/groups/{chat_id}/members/{user_id}
    POST   /sandbox/api/groups/{chat_id}/kick_bot
    POST   /sandbox/api/groups/{chat_id}/migrate      -> {chat_id: new id}
    POST   /sandbox/api/messages/text                 {user_id, text, chat_id?,
                                                       reply_to_message_id?}
    POST   /sandbox/api/messages/photo|document       multipart: user_id, file, caption?, chat_id?,
                                                      as_file? (photo route), reply_to_message_id?
    POST   /sandbox/api/messages/location             {user_id, latitude, longitude, chat_id?}
    POST   /sandbox/api/buttons                       {user_id, chat_id, message_id, callback_data}
    GET    /sandbox/api/callbacks/{query_id}          the bot's answer, if any
    GET    /sandbox/api/chats/{chat_id}/transcript    ?since=<version>&wait=<s> long-polls
    GET    /sandbox/api/files/{file_id}               raw bytes
    GET    /sandbox/api/calls?method=...              Bot API call log
    GET    /sandbox/api/flood                         {sent, refused, busiest_second}
    GET    /sandbox/api/updates                       every update emitted
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from aiohttp import web
from aiohttp.web_request import FileField

from . import views
from .models import JSON, FloodCounts, SandboxChat, SandboxUser
from .world import World


class SandboxControls(Protocol):
    """What the control API uses of the sandbox (``server.BotApiSandbox``), so that this
    module does not import the server that mounts it."""

    world: World
    bot_user: SandboxUser
    time_zone: str

    def create_user(
        self, first_name: str, *, last_name: str | None = ..., username: str | None = ...,
        language_code: str | None = ..., phone_number: str | None = ...,
        user_id: int | None = ...,
    ) -> SandboxUser: ...
    def create_group(
        self, title: str, *, members: Sequence[int] = ..., admins: Sequence[int] = ...,
        supergroup: bool = ..., chat_id: int | None = ...,
    ) -> SandboxChat: ...
    def add_member(self, chat_id: int, user_id: int, *, admin: bool = ...) -> None: ...
    def remove_member(self, chat_id: int, user_id: int, *, kicked: bool = ...) -> None: ...
    async def send_text(
        self, user_id: int, text: str, *, chat_id: int | None = ...,
        reply_to_message_id: int | None = ...,
    ) -> dict[str, Any]: ...
    async def send_photo(
        self, user_id: int, data: bytes, *, chat_id: int | None = ...,
        caption: str | None = ..., media_group_id: str | None = ...,
        reply_to_message_id: int | None = ...,
    ) -> dict[str, Any]: ...
    async def send_document(
        self, user_id: int, data: bytes, *, file_name: str, mime_type: str,
        chat_id: int | None = ..., caption: str | None = ...,
        reply_to_message_id: int | None = ...,
    ) -> dict[str, Any]: ...
    async def send_location(
        self, user_id: int, latitude: float, longitude: float, *, chat_id: int | None = ...
    ) -> dict[str, Any]: ...
    async def press_button(
        self, user_id: int, chat_id: int, message_id: int, callback_data: str, *,
        check: bool = ...,
    ) -> str: ...
    def callback_answer(self, callback_query_id: str) -> dict[str, Any] | None: ...
    def block_bot(self, user_id: int) -> None: ...
    def unblock_bot(self, user_id: int) -> None: ...
    def kick_bot(self, chat_id: int) -> None: ...
    async def migrate_to_supergroup(self, chat_id: int) -> int: ...
    def method_calls(self, method: str | None = ...) -> list[dict[str, Any]]: ...
    def flood_counts(self) -> FloodCounts: ...
    @property
    def updates(self) -> list[dict[str, Any]]: ...

STATIC = Path(__file__).parent / "static"
_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css"}
View = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=lambda v: json.dumps(v, ensure_ascii=False))


def _guarded(view: View) -> View:
    async def handle(request: web.Request) -> web.StreamResponse:
        try:
            return await view(request)
        except KeyError as exc:
            return _json({"error": f"missing field {exc.args[0] if exc.args else exc}"}, 400)
        except (ValueError, TypeError) as exc:
            return _json({"error": str(exc)}, 400)

    return handle


async def _body(request: web.Request) -> JSON:
    if request.content_type == "application/json":
        data = await request.json()
        if not isinstance(data, dict):
            raise ValueError("expected a JSON object")
        return data
    form = await request.post()
    return dict(form)


def _opt_int(data: JSON, key: str) -> int | None:
    value = data.get(key)
    return None if value in (None, "") else int(value)


def _flag(data: JSON, key: str) -> bool:
    value = data.get(key)
    if isinstance(value, str):
        return value.lower() in ("1", "true", "yes", "on")
    return bool(value)


class ControlApi:
    """Handlers of the control API, bound to one sandbox."""

    def __init__(self, sandbox: SandboxControls) -> None:
        self.sb = sandbox

    @property
    def world(self) -> World:
        return self.sb.world

    async def state(self, request: web.Request) -> web.StreamResponse:
        view = views.state_view(self.world, self.sb.bot_user.to_json())
        return _json({**view, "time_zone": self.sb.time_zone})

    async def create_user(self, request: web.Request) -> web.StreamResponse:
        data = await _body(request)
        user = self.sb.create_user(
            str(data["first_name"]),
            last_name=data.get("last_name") or None,
            username=data.get("username") or None,
            language_code=data.get("language_code") or "vi",
            phone_number=data.get("phone_number") or None,
            user_id=_opt_int(data, "user_id"),
        )
        return _json(views.user_view(self.world, user.id))

    async def create_group(self, request: web.Request) -> web.StreamResponse:
        data = await _body(request)
        chat = self.sb.create_group(
            str(data["title"]),
            members=[int(v) for v in data.get("members", [])],
            admins=[int(v) for v in data.get("admins", [])],
            supergroup=_flag(data, "supergroup"),
            chat_id=_opt_int(data, "chat_id"),
        )
        return _json(chat.to_json())

    async def add_member(self, request: web.Request) -> web.StreamResponse:
        data = await _body(request)
        chat_id = int(request.match_info["chat_id"])
        self.sb.add_member(chat_id, int(data["user_id"]), admin=_flag(data, "admin"))
        return _json({"ok": True})

    async def remove_member(self, request: web.Request) -> web.StreamResponse:
        chat_id, user_id = int(request.match_info["chat_id"]), int(request.match_info["user_id"])
        self.sb.remove_member(chat_id, user_id)
        return _json({"ok": True})

    async def kick_bot(self, request: web.Request) -> web.StreamResponse:
        self.sb.kick_bot(int(request.match_info["chat_id"]))
        return _json({"ok": True})

    async def migrate(self, request: web.Request) -> web.StreamResponse:
        new_id = await self.sb.migrate_to_supergroup(int(request.match_info["chat_id"]))
        return _json({"chat_id": new_id})

    async def block(self, request: web.Request) -> web.StreamResponse:
        data = await _body(request)
        user_id = int(request.match_info["user_id"])
        if _flag(data, "blocked"):
            self.sb.block_bot(user_id)
        else:
            self.sb.unblock_bot(user_id)
        return _json(views.user_view(self.world, user_id))

    async def send_text(self, request: web.Request) -> web.StreamResponse:
        data = await _body(request)
        message = await self.sb.send_text(
            int(data["user_id"]),
            str(data["text"]),
            chat_id=_opt_int(data, "chat_id"),
            reply_to_message_id=_opt_int(data, "reply_to_message_id"),
        )
        return _json(message)

    async def send_media(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        upload = form.get("file")
        if not isinstance(upload, FileField):
            raise ValueError("multipart field 'file' is missing")
        data = upload.file.read()
        user_id, chat_id = int(str(form["user_id"])), _opt_int(dict(form), "chat_id")
        caption = str(form.get("caption") or "") or None
        reply_to = _opt_int(dict(form), "reply_to_message_id")
        as_file = request.match_info["kind"] == "document" or _flag(dict(form), "as_file")
        if as_file:
            message = await self.sb.send_document(
                user_id, data, file_name=upload.filename or "file",
                mime_type=upload.content_type or "application/octet-stream",
                chat_id=chat_id, caption=caption, reply_to_message_id=reply_to,
            )
        else:
            message = await self.sb.send_photo(
                user_id, data, chat_id=chat_id, caption=caption, reply_to_message_id=reply_to
            )
        return _json(message)

    async def send_location(self, request: web.Request) -> web.StreamResponse:
        data = await _body(request)
        message = await self.sb.send_location(
            int(data["user_id"]), float(data["latitude"]), float(data["longitude"]),
            chat_id=_opt_int(data, "chat_id"),
        )
        return _json(message)

    async def press(self, request: web.Request) -> web.StreamResponse:
        data = await _body(request)
        query_id = await self.sb.press_button(
            int(data["user_id"]), int(data["chat_id"]), int(data["message_id"]),
            str(data["callback_data"]), check=not _flag(data, "forge"),
        )
        return _json({"callback_query_id": query_id})

    async def callback(self, request: web.Request) -> web.StreamResponse:
        return _json({"answer": self.sb.callback_answer(request.match_info["query_id"])})

    async def transcript(self, request: web.Request) -> web.StreamResponse:
        chat_id = int(request.match_info["chat_id"])
        since = request.query.get("since")
        wait = min(float(request.query.get("wait", "0")), 30.0)
        if since is not None and wait > 0:
            await self.world.activity.wait_until(
                lambda: self.world.activity.version != int(since), wait
            )
        if chat_id not in self.world.chats and chat_id in self.world.users:
            return _json(views.empty_transcript(self.world, chat_id))
        return _json(views.transcript_view(self.world, self.world.state(chat_id)))

    async def file(self, request: web.Request) -> web.StreamResponse:
        stored = self.world.files.get(request.match_info["file_id"])
        if stored is None:
            return _json({"error": "no such file"}, 404)
        headers = {"Cache-Control": "max-age=3600"}
        if stored.file_name:
            headers["Content-Disposition"] = f'inline; filename="{stored.file_name}"'
        return web.Response(body=stored.data, headers=headers,
                            content_type=stored.mime_type or "application/octet-stream")

    async def calls(self, request: web.Request) -> web.StreamResponse:
        return _json(self.sb.method_calls(request.query.get("method")))

    async def updates(self, request: web.Request) -> web.StreamResponse:
        return _json(self.sb.updates)

    async def flood(self, request: web.Request) -> web.StreamResponse:
        return _json(dataclasses.asdict(self.sb.flood_counts()))


async def _page(request: web.Request) -> web.StreamResponse:
    return _static_file("index.html")


async def _static(request: web.Request) -> web.StreamResponse:
    return _static_file(request.match_info["name"])


def _static_file(name: str) -> web.StreamResponse:
    path = STATIC / name
    if path.suffix not in _TYPES or path.parent != STATIC or not path.is_file():
        raise web.HTTPNotFound()
    return web.Response(body=path.read_bytes(), content_type=_TYPES[path.suffix],
                        charset="utf-8", headers={"Cache-Control": "no-cache"})


def add_control_routes(app: web.Application, sandbox: SandboxControls) -> None:
    """Register `/`, `/static/*` and `/sandbox/api/*`."""
    api = ControlApi(sandbox)
    prefix = "/sandbox/api"
    routes: list[tuple[str, str, View]] = [
        ("GET", "/state", api.state),
        ("POST", "/users", api.create_user),
        ("POST", "/users/{user_id}/block", api.block),
        ("POST", "/groups", api.create_group),
        ("POST", "/groups/{chat_id}/members", api.add_member),
        ("DELETE", "/groups/{chat_id}/members/{user_id}", api.remove_member),
        ("POST", "/groups/{chat_id}/kick_bot", api.kick_bot),
        ("POST", "/groups/{chat_id}/migrate", api.migrate),
        ("POST", "/messages/text", api.send_text),
        ("POST", "/messages/{kind:photo|document}", api.send_media),
        ("POST", "/messages/location", api.send_location),
        ("POST", "/buttons", api.press),
        ("GET", "/callbacks/{query_id}", api.callback),
        ("GET", "/chats/{chat_id}/transcript", api.transcript),
        ("GET", "/files/{file_id}", api.file),
        ("GET", "/calls", api.calls),
        ("GET", "/updates", api.updates),
        ("GET", "/flood", api.flood),
    ]
    for verb, path, view in routes:
        app.router.add_route(verb, prefix + path, _guarded(view))
    app.router.add_get("/", _page)
    app.router.add_get("/static/{name}", _static)
