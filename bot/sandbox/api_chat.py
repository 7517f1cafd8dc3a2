"""Bot API methods about chats and the bot's profile.

getChat, getChatMember, getChatAdministrators, getChatMemberCount, leaveChat, pin/unpin,
set/get/deleteMyCommands, set/getChatMenuButton, and the bot's name and descriptions.
"""

from __future__ import annotations

import json
import re
from typing import Any

from . import members
from .compose import chat_ref, required_int
from .errors import bad_request
from .models import JSON, PRIVATE, ChatState
from .params import Params
from .registry import method
from .world import World

_COMMAND = re.compile(r"[a-z0-9_]{1,32}")
_SCOPES = frozenset(
    {
        "default",
        "all_private_chats",
        "all_group_chats",
        "all_chat_administrators",
        "chat",
        "chat_administrators",
        "chat_member",
    }
)
_NO_GIFTS = {
    "unlimited_gifts": False,
    "limited_gifts": False,
    "unique_gifts": False,
    "premium_subscription": False,
    "gifts_from_channels": False,
}


@method("getChat")
async def get_chat(world: World, p: Params) -> Any:
    """The `ChatFullInfo` of a chat the bot knows."""
    state = world.lookup_chat(chat_ref(p))
    data = state.chat.to_json()
    data.update(accent_color_id=0, max_reaction_count=11, accepted_gift_types=dict(_NO_GIFTS))
    return data


def status_of(world: World, state: ChatState, user_id: int) -> str:
    """A user's status in a chat (`left` for known users who are not in it)."""
    if user_id == world.bot.id:
        return state.bot_status
    if user_id not in world.users:
        raise bad_request("user not found")
    return state.members.get(user_id, members.LEFT)


@method("getChatMember")
async def get_chat_member(world: World, p: Params) -> Any:
    """The `ChatMember` of a user: creator/administrator/member/left/kicked."""
    state = world.lookup_chat(chat_ref(p))
    user_id = required_int(p, "user_id", "user not found")
    status = status_of(world, state, user_id)
    return members.member_json(world.users[user_id], status)


@method("getChatAdministrators")
async def get_chat_administrators(world: World, p: Params) -> Any:
    """The administrators of a group, the bot included when it is one."""
    state = world.lookup_chat(chat_ref(p))
    if state.chat.type == PRIVATE:
        raise bad_request("there are no administrators in the private chat")
    admins = [
        members.member_json(world.users[user_id], status)
        for user_id, status in state.members.items()
        if status in (members.ADMINISTRATOR, members.CREATOR)
    ]
    if world.bot_is_admin(state):
        admins.append(members.member_json(world.bot, state.bot_status))
    return admins


@method("getChatMemberCount")
async def get_chat_member_count(world: World, p: Params) -> Any:
    """How many people (and bots) are in a chat."""
    state = world.lookup_chat(chat_ref(p))
    people = sum(status in members.PRESENT for status in state.members.values())
    return people + (state.bot_status in members.PRESENT)


@method("leaveChat")
async def leave_chat(world: World, p: Params) -> Any:
    """The bot leaves a group (a `my_chat_member` update follows, as on Telegram)."""
    state = world.lookup_chat(chat_ref(p))
    if state.chat.type == PRIVATE:
        raise bad_request("chat member status can't be changed in private chats")
    world.emit_bot_status(state, world.bot, members.LEFT)
    return True


@method("pinChatMessage")
async def pin_chat_message(world: World, p: Params) -> Any:
    """Pinning is accepted for existing messages."""
    state = world.lookup_chat(chat_ref(p))
    if state.live_message(required_int(p, "message_id", "message to pin not found")) is None:
        raise bad_request("message to pin not found")
    return True


@method("unpinChatMessage")
async def unpin_chat_message(world: World, p: Params) -> Any:
    """Unpinning is accepted."""
    world.lookup_chat(chat_ref(p))
    return True


@method("getUserProfilePhotos")
async def get_user_profile_photos(world: World, p: Params) -> Any:
    """Sandbox accounts have no profile photos."""
    if required_int(p, "user_id", "user not found") not in world.users:
        raise bad_request("user not found")
    return {"total_count": 0, "photos": []}


@method("setMessageReaction")
async def set_message_reaction(world: World, p: Params) -> Any:
    """Reactions are accepted and ignored."""
    world.lookup_chat(chat_ref(p))
    return True


def scope_key(world: World, p: Params) -> tuple[str, str]:
    """The storage key of a command list: canonical scope JSON and language code."""
    scope = p.json("scope", "can't parse BotCommandScope JSON object") or {"type": "default"}
    if not isinstance(scope, dict) or scope.get("type") not in _SCOPES:
        raise bad_request("can't parse BotCommandScope JSON object")
    if "chat_id" in scope:
        world.lookup_chat(scope["chat_id"])
    language = p.text("language_code") or ""
    if language and not re.fullmatch(r"[a-z]{2}", language):
        raise bad_request("invalid language code specified")
    return json.dumps(scope, sort_keys=True), language


def _checked_commands(raw: Any) -> list[JSON]:
    if not isinstance(raw, list):
        raise bad_request("can't parse commands JSON object")
    if len(raw) > 100:
        raise bad_request("too many commands specified")
    commands: list[JSON] = []
    for item in raw:
        if not isinstance(item, dict):
            raise bad_request("can't parse BotCommand JSON object")
        command = str(item.get("command", "")).removeprefix("/")
        description = str(item.get("description", ""))
        if not _COMMAND.fullmatch(command):
            raise bad_request("BOT_COMMAND_INVALID")
        if not 1 <= len(description) <= 256:
            raise bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
        commands.append({"command": command, "description": description})
    return commands


@method("setMyCommands")
async def set_my_commands(world: World, p: Params) -> Any:
    """Store the command list for a scope and language."""
    commands = _checked_commands(p.json("commands", "can't parse commands JSON object"))
    world.commands[scope_key(world, p)] = commands
    return True


@method("getMyCommands")
async def get_my_commands(world: World, p: Params) -> Any:
    """The command list stored for exactly that scope and language."""
    return list(world.commands.get(scope_key(world, p), []))


@method("deleteMyCommands")
async def delete_my_commands(world: World, p: Params) -> Any:
    """Forget the command list of a scope and language."""
    world.commands.pop(scope_key(world, p), None)
    return True


@method("setChatMenuButton")
async def set_chat_menu_button(world: World, p: Params) -> Any:
    """Store the menu button (per chat, or the default one)."""
    chat_id = world.lookup_chat(chat_ref(p)).id if p.has("chat_id") else None
    button = p.json("menu_button", "can't parse menu button JSON object") or {"type": "default"}
    if not isinstance(button, dict) or button.get("type") not in ("default", "commands",
                                                                  "web_app"):
        raise bad_request("can't parse menu button JSON object")
    world.menu_buttons[chat_id] = button
    return True


@method("getChatMenuButton")
async def get_chat_menu_button(world: World, p: Params) -> Any:
    """The stored menu button, falling back to the bot's default one."""
    chat_id = world.lookup_chat(chat_ref(p)).id if p.has("chat_id") else None
    button = world.menu_buttons.get(chat_id) or world.menu_buttons.get(None)
    return button or {"type": "default"}


def _bot_text(kind: str, limit: int) -> tuple[Any, Any]:
    async def setter(world: World, p: Params) -> Any:
        value = p.text(kind) or ""
        if len(value) > limit:
            raise bad_request(f"{kind.replace('_', ' ')} is too long")
        world.bot_texts[(kind, p.text("language_code") or "")] = value
        return True

    async def getter(world: World, p: Params) -> Any:
        language = p.text("language_code") or ""
        value = world.bot_texts.get((kind, language)) or world.bot_texts.get((kind, ""))
        if kind == "name" and not value:
            value = world.bot.first_name
        return {kind: value or ""}

    return setter, getter


for _kind, _limit, _suffix in (
    ("name", 64, "Name"),
    ("description", 512, "Description"),
    ("short_description", 120, "ShortDescription"),
):
    _setter, _getter = _bot_text(_kind, _limit)
    method(f"setMy{_suffix}")(_setter)
    method(f"getMy{_suffix}")(_getter)
