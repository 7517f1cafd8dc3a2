"""The sandbox's in-memory Telegram: accounts, chats, messages, files, and the bot's view.

`World` is shared by the Bot API side (the bot calls methods) and the people side (tests and
the web page act as residents and officers). It owns id allocation, message storage, update
emission (respecting group privacy mode) and the checks Telegram makes before the bot may
write to a chat.
"""

from __future__ import annotations

import copy
import re
import time
from collections import deque
from dataclasses import dataclass

from . import members
from .errors import ApiError, chat_not_found, forbidden
from .files import FileStore
from .models import (
    GROUP,
    JSON,
    PRIVATE,
    SUPERGROUP,
    ChatState,
    RateLimits,
    SandboxChat,
    SandboxUser,
    StoredMessage,
)
from .ratelimit import FloodControl
from .signals import Signal
from .text import command_of
from .updates import UpdateHub

FIRST_USER_ID = 7_000_000_001
FIRST_GROUP_ID = -5_000_000_001
FIRST_SUPERGROUP_ID = -1_002_000_000_001
SERVICE_KEYS = frozenset(
    {
        "new_chat_members",
        "left_chat_member",
        "migrate_to_chat_id",
        "migrate_from_chat_id",
        "group_chat_created",
        "new_chat_title",
        "pinned_message",
    }
)


@dataclass
class CallbackQuery:
    """A button press waiting for (or having got) `answerCallbackQuery`."""

    id: str
    user_id: int
    chat_id: int
    message_id: int
    data: str
    created: float
    answer: JSON | None = None


def _mentioned_id(item: JSON) -> int | None:
    if item.get("type") == "text_mention" and isinstance(item.get("user"), dict):
        return int(item["user"].get("id", 0))
    url = str(item.get("url", "")) if item.get("type") == "text_link" else ""
    match = re.fullmatch(r"tg://user\?id=(\d+)", url)
    return int(match.group(1)) if match else None


def now() -> int:
    """Telegram dates are whole Unix seconds."""
    return int(time.time())


class World:
    """All state of one sandbox."""

    def __init__(self, bot_user: SandboxUser, limits: RateLimits) -> None:
        self.bot = bot_user
        self.users: dict[int, SandboxUser] = {bot_user.id: bot_user}
        self.chats: dict[int, ChatState] = {}
        self.blocked: set[int] = set()
        self.hub = UpdateHub()
        self.files = FileStore()
        self.flood = FloodControl(limits)
        self.activity = Signal()
        self.callbacks: dict[str, CallbackQuery] = {}
        self.commands: dict[tuple[str, str], list[JSON]] = {}
        self.menu_buttons: dict[int | None, JSON] = {}
        self.bot_texts: dict[tuple[str, str], str] = {}
        self.calls: list[JSON] = []
        self.injected: dict[str, deque[ApiError]] = {}
        self.privacy_mode = True
        self.callback_timeout = 15.0
        self.clock = time.monotonic
        self._next_user_id = FIRST_USER_ID
        self._next_group_id = FIRST_GROUP_ID
        self._next_supergroup_id = FIRST_SUPERGROUP_ID
        self._next_callback_id = 4_380_000_000_000_000_001

    # ---- ids -------------------------------------------------------------------------------

    def allocate_user_id(self) -> int:
        """A fresh positive user id."""
        while self._next_user_id in self.users:
            self._next_user_id += 1
        return self._next_user_id

    def allocate_group_id(self, supergroup: bool) -> int:
        """A fresh negative chat id (`-100…` for supergroups)."""
        if supergroup:
            while self._next_supergroup_id in self.chats:
                self._next_supergroup_id -= 1
            return self._next_supergroup_id
        while self._next_group_id in self.chats:
            self._next_group_id -= 1
        return self._next_group_id

    def allocate_callback_id(self) -> str:
        """A fresh callback query id (Telegram's are long decimal strings)."""
        self._next_callback_id += 1
        return str(self._next_callback_id)

    # ---- lookups ---------------------------------------------------------------------------

    def user(self, user_id: int) -> SandboxUser:
        """A known user; ValueError for the people side if unknown."""
        try:
            return self.users[user_id]
        except KeyError:
            raise ValueError(f"no sandbox user with id {user_id}; create_user() first") from None

    def state(self, chat_id: int) -> ChatState:
        """A known chat; ValueError for the people side if unknown."""
        try:
            return self.chats[chat_id]
        except KeyError:
            raise ValueError(f"no sandbox chat with id {chat_id}") from None

    def private_state(self, user: SandboxUser) -> ChatState:
        """The private chat of `user` with the bot, created on first use."""
        state = self.chats.get(user.id)
        if state is None:
            chat = SandboxChat(
                id=user.id,
                type=PRIVATE,
                first_name=user.first_name,
                last_name=user.last_name,
                username=user.username,
            )
            state = ChatState(chat=chat, members={user.id: members.MEMBER})
            self.chats[user.id] = state
        return state

    def lookup_chat(self, chat_id: int | str | None) -> ChatState:
        """The chat a Bot API call names (no permission checks)."""
        if isinstance(chat_id, str):
            chat_id = self._chat_by_username(chat_id)
        state = self.chats.get(chat_id) if chat_id is not None else None
        if state is None:
            raise chat_not_found()
        if state.migrated_to is not None:
            raise ApiError(
                400,
                "Bad Request: group chat was upgraded to a supergroup chat",
                {"migrate_to_chat_id": state.migrated_to},
            )
        return state

    def _chat_by_username(self, name: str) -> int | None:
        wanted = name.removeprefix("@").lower()
        for state in self.chats.values():
            if state.chat.username and state.chat.username.lower() == wanted:
                return state.id
        return None

    def writable_chat(self, chat_id: int | str | None) -> ChatState:
        """The chat the bot wants to write to, or the 400/403 Telegram answers with."""
        if isinstance(chat_id, int) and chat_id not in self.chats and chat_id in self.users:
            if chat_id == self.bot.id or self.users[chat_id].is_bot:
                raise forbidden("bot can't send messages to bots")
            raise forbidden("bot can't initiate conversation with a user")
        state = self.lookup_chat(chat_id)
        if state.chat.type == PRIVATE:
            if state.id in self.blocked:
                raise forbidden("bot was blocked by the user")
            return state
        kind = "supergroup chat" if state.chat.type == SUPERGROUP else "group chat"
        if state.bot_status == members.KICKED:
            raise forbidden(f"bot was kicked from the {kind}")
        if state.bot_status not in members.PRESENT:
            raise forbidden(f"bot is not a member of the {kind}")
        return state

    def bot_is_admin(self, state: ChatState) -> bool:
        """True if the bot is an administrator of that group."""
        return state.bot_status in (members.ADMINISTRATOR, members.CREATOR)

    # ---- messages --------------------------------------------------------------------------

    def store_message(
        self,
        state: ChatState,
        sender: SandboxUser,
        content: JSON,
        *,
        markup: JSON | None = None,
        reply_to: StoredMessage | None = None,
    ) -> StoredMessage:
        """Append a message to a chat and return it."""
        data: JSON = {
            "message_id": state.allocate_message_id(),
            "from": sender.to_json(),
            "chat": state.chat.to_json(),
            "date": now(),
        }
        if reply_to is not None:
            data["reply_to_message"] = quoted(reply_to.data)
        data.update(content)
        self.resolve_mentions(data)
        if markup is not None and "inline_keyboard" in markup:
            data["reply_markup"] = markup
        stored = StoredMessage(data=data, from_bot=sender.id == self.bot.id, markup=markup)
        state.messages[stored.message_id] = stored
        if stored.from_bot:
            self._remember_keyboard(state, markup)
        self.activity.notify()
        return stored

    def resolve_mentions(self, data: JSON) -> None:
        """Turn `tg://user?id=N` links into `text_mention` entities carrying the full User."""
        for key in ("entities", "caption_entities"):
            for item in data.get(key) or []:
                user_id = _mentioned_id(item)
                if user_id is not None and user_id in self.users:
                    item.pop("url", None)
                    item["type"] = "text_mention"
                    item["user"] = self.users[user_id].to_json()

    @staticmethod
    def _remember_keyboard(state: ChatState, markup: JSON | None) -> None:
        if markup is None:
            return
        if "keyboard" in markup:
            state.reply_keyboard = markup
        elif markup.get("remove_keyboard"):
            state.reply_keyboard = None

    def bot_sees(self, state: ChatState, stored: StoredMessage) -> bool:
        """Whether Telegram hands this group message to a bot in privacy mode."""
        if state.chat.type == PRIVATE or not self.privacy_mode or self.bot_is_admin(state):
            return True
        data = stored.data
        if SERVICE_KEYS & data.keys():
            return True
        replied = data.get("reply_to_message")
        if replied and replied.get("from", {}).get("id") == self.bot.id:
            return True
        command = command_of(data.get("text") or data.get("caption") or "")
        if command is None:
            return False
        target = command[1]
        return target is None or target.lower() == (self.bot.username or "").lower()

    def deliver(self, state: ChatState, stored: StoredMessage) -> None:
        """Emit a `message` update for a message a person sent, if the bot may see it."""
        if state.chat.type != PRIVATE and state.bot_status not in members.PRESENT:
            return
        if self.bot_sees(state, stored):
            self.hub.emit("message", copy.deepcopy(stored.data))

    def message_view(self, stored: StoredMessage) -> JSON:
        """The transcript form of a message: its JSON plus `_deleted`."""
        view = copy.deepcopy(stored.data)
        view["_deleted"] = stored.deleted
        return view

    # ---- membership ------------------------------------------------------------------------

    def emit_bot_status(self, state: ChatState, actor: SandboxUser, new: str) -> None:
        """Change the bot's status in a chat and emit the `my_chat_member` update."""
        old, state.bot_status = state.bot_status, new
        if old != new:
            payload = members.my_chat_member(
                state.chat.to_json(), actor, self.bot, old, new, now()
            )
            self.hub.emit("my_chat_member", payload)

    def group_actor(self, state: ChatState) -> SandboxUser:
        """Who acts for a group in service events: its first admin, else its first member."""
        for wanted in (members.CREATOR, members.ADMINISTRATOR, members.MEMBER):
            for user_id, status in state.members.items():
                if status == wanted:
                    return self.users[user_id]
        raise ValueError(f"chat {state.id} has no members")

    def is_group(self, state: ChatState) -> bool:
        """True for basic groups and supergroups."""
        return state.chat.type in (GROUP, SUPERGROUP)


def origin_of(data: JSON) -> JSON:
    """Who wrote a message, as forwards and cross-chat replies show it (MessageOriginUser)."""
    if "forward_origin" in data:
        return copy.deepcopy(data["forward_origin"])
    return {"type": "user", "date": data["date"], "sender_user": copy.deepcopy(data["from"])}


EXTERNAL_MEDIA = ("photo", "document", "location", "contact", "venue", "sticker", "video",
                  "audio", "voice", "animation")


def external_reply(source: ChatState, data: JSON) -> JSON:
    """`ExternalReplyInfo` for a reply to a message of another chat: it names the author."""
    info: JSON = {"origin": origin_of(data)}
    if source.chat.type == SUPERGROUP:
        info["chat"] = source.chat.to_json()
        info["message_id"] = data["message_id"]
    for key in EXTERNAL_MEDIA:
        if key in data:
            info[key] = copy.deepcopy(data[key])
    return info


def quoted(data: JSON) -> JSON:
    """A message as it appears inside `reply_to_message` (one level deep)."""
    inner = copy.deepcopy(data)
    inner.pop("reply_to_message", None)
    return inner
