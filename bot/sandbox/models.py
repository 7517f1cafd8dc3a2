"""Plain data the sandbox keeps: people, chats, stored messages, files and rate-limit settings.

The public dataclasses (`RateLimits`, `SandboxUser`, `SandboxChat`) are what tests and the demo
mode handle; `ChatState`, `StoredMessage` and `StoredFile` are the sandbox's internal records.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

JSON = dict[str, Any]

PRIVATE = "private"
GROUP = "group"
SUPERGROUP = "supergroup"


@dataclass
class RateLimits:
    """Flood limits of the Bot FAQ, applied to messages the bot sends.

    Telegram: ~30 messages/s overall, 20 messages/min per group, about one message per second
    per private chat with short bursts tolerated. `retry_after=None` answers with the seconds
    until the window frees up (at least 1); an int forces that value.
    """

    enabled: bool = True
    global_per_second: int = 30
    group_per_minute: int = 20
    private_burst: int = 5
    private_window_seconds: float = 5.0
    retry_after: int | None = None


@dataclass(frozen=True)
class FloodCounts:
    """What the flood limits saw of the bot's sends (`BotApiSandbox.flood_counts`)."""

    sent: int  # sends accepted (an album counts once per item)
    refused: int  # sends answered 429 by the flood limits (injected errors are not counted)
    busiest_second: int  # the most sends accepted within any one second


@dataclass
class SandboxUser:
    """A Telegram account in the sandbox (a resident, an officer, or the bot itself)."""

    id: int
    first_name: str
    last_name: str | None = None
    username: str | None = None
    language_code: str | None = "vi"
    phone_number: str | None = None
    is_bot: bool = False

    def to_json(self) -> JSON:
        """The Telegram `User` object (the phone number is never part of it)."""
        data: JSON = {"id": self.id, "is_bot": self.is_bot, "first_name": self.first_name}
        if self.last_name is not None:
            data["last_name"] = self.last_name
        if self.username is not None:
            data["username"] = self.username
        if self.language_code is not None and not self.is_bot:
            data["language_code"] = self.language_code
        return data

    @property
    def full_name(self) -> str:
        """First and last name joined, as Telegram clients show it."""
        return " ".join(part for part in (self.first_name, self.last_name) if part)


@dataclass
class SandboxChat:
    """A chat as the Bot API describes it: a private chat, a basic group or a supergroup."""

    id: int
    type: str
    title: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    username: str | None = None

    def to_json(self) -> JSON:
        """The Telegram `Chat` object."""
        data: JSON = {"id": self.id, "type": self.type}
        for key in ("title", "username", "first_name", "last_name"):
            value = getattr(self, key)
            if value is not None:
                data[key] = value
        return data

    @property
    def is_group(self) -> bool:
        """True for basic groups and supergroups."""
        return self.type in (GROUP, SUPERGROUP)


@dataclass
class StoredMessage:
    """One message in a chat: its current Telegram JSON plus what the JSON does not show."""

    data: JSON
    from_bot: bool
    markup: JSON | None = None
    deleted: bool = False

    @property
    def message_id(self) -> int:
        """The id of the message inside its chat."""
        return int(self.data["message_id"])

    @property
    def chat_id(self) -> int:
        """The id of the chat the message lives in."""
        return int(self.data["chat"]["id"])


@dataclass
class ChatState:
    """Everything the sandbox knows about one chat."""

    chat: SandboxChat
    members: dict[int, str] = field(default_factory=dict)
    bot_status: str = "member"
    messages: dict[int, StoredMessage] = field(default_factory=dict)
    next_message_id: int = 1
    migrated_to: int | None = None
    reply_keyboard: JSON | None = None
    last_action: str | None = None
    last_action_at: float = 0.0

    @property
    def id(self) -> int:
        """The chat id."""
        return self.chat.id

    def allocate_message_id(self) -> int:
        """The next message id of this chat (ids only grow)."""
        message_id = self.next_message_id
        self.next_message_id += 1
        return message_id

    def live_message(self, message_id: int) -> StoredMessage | None:
        """The message with that id unless it does not exist or was deleted."""
        stored = self.messages.get(message_id)
        if stored is None or stored.deleted:
            return None
        return stored


@dataclass
class StoredFile:
    """Bytes of one file together with its Telegram identifiers."""

    file_id: str
    file_unique_id: str
    kind: str
    data: bytes
    file_path: str
    mime_type: str | None = None
    file_name: str | None = None
    width: int | None = None
    height: int | None = None

    @property
    def size(self) -> int:
        """Size in bytes."""
        return len(self.data)
