"""What a resident's channel hands the conversation, and what the conversation hands back.

Nothing here knows Telegram (or Zalo): a channel adapter turns its updates into these
*inbound events*, gives the core a :class:`Chat` to answer through, and renders the *outbound
messages* its own way (Telegram: inline buttons; a list channel: "Trả lời 1, 2 hoặc 3").
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from bot.domain.sealing import ReplyAddress

# --- references and choices ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MessageRef:
    """A message in the resident's chat, as its channel names it (Telegram: the message id).
    The core keeps it only to edit a prompt it sent."""

    id: str


@dataclass(frozen=True, slots=True)
class Choice:
    """One answer the resident may pick. ``id`` comes back in :class:`ChoicePressed` and is
    re-checked by the core, never trusted; ``label`` is what the resident reads."""

    id: str
    label: str


Choices = tuple[tuple[Choice, ...], ...]  # rows (inline buttons); a list renders them in order


def rows(*lines: Sequence[Choice]) -> Choices:
    return tuple(tuple(line) for line in lines if line)


def flat(choices: Choices) -> list[Choice]:
    return [choice for line in choices for choice in line]


# --- inbound ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Resident:
    """Who speaks: a pseudonym (never the platform id), the app's language, and where the
    receipt's safety net may reach them (sealed by the domain)."""

    pseudonym: str
    platform_language: str | None
    address: ReplyAddress
    channel: str


@dataclass(frozen=True, slots=True)
class TextIn:
    text: str
    reply_to: MessageRef | None = None


@dataclass(frozen=True, slots=True)
class CommandIn:
    name: str  # without the slash: "start", "status"
    args: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ChoicePressed:
    choice_id: str
    message: MessageRef  # the message that carried the choice


Fetch = Callable[[], Awaitable[bytes]]


@dataclass(frozen=True, slots=True)
class PictureIn:
    """A picture: its bytes are fetched only after the size and count checks pass."""

    fetch: Fetch
    size: int | None = None  # as the channel announces it, if it does
    caption: str | None = None
    order: int = 0  # the channel's message order (pictures of one album arrive at once)
    album: str | None = None
    reply_to: MessageRef | None = None

    @staticmethod
    def of_bytes(data: bytes, **kwargs: object) -> PictureIn:
        async def fetch() -> bytes:
            return data
        return PictureIn(fetch, len(data), **kwargs)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class LocationIn:
    latitude: float
    longitude: float


@dataclass(frozen=True, slots=True)
class FileIn:
    """A file that is not a picture."""


@dataclass(frozen=True, slots=True)
class OtherIn:
    """Stickers, voice, video...: refused politely."""


Event = TextIn | CommandIn | ChoicePressed | PictureIn | LocationIn | FileIn | OtherIn


# --- outbound -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Say:
    text: str
    choices: Choices = ()
    html: bool = False  # text is HTML (Telegram's subset); else plain


@dataclass(frozen=True, slots=True)
class Edit:
    """Replace the text and choices of a message the core sent (``text`` None: keep the
    text, only the choices change)."""

    message: MessageRef
    text: str | None = None
    choices: Choices = ()
    html: bool = False


@dataclass(frozen=True, slots=True)
class PictureOut:
    data: bytes
    caption: str | None = None


Outbound = Say | Edit | PictureOut


@dataclass(frozen=True, slots=True)
class Undelivered:
    """Why a message did not go out (the receipt's safety net takes over)."""

    error_type: str
    retry_after: float | None = None


class Chat(Protocol):
    """The resident's chat as the core sees it; one per event, given by the adapter."""

    async def send(self, message: Say | PictureOut) -> MessageRef | None:
        """Send now; channel errors propagate."""

    async def deliver(self, message: Say) -> Undelivered | None:
        """Send now and never raise: None when it went out."""

    async def edit(self, edit: Edit) -> None:
        """Best effort: an old or unchanged message is left as it is."""

    async def acknowledge(self, alert: str | None = None) -> None:
        """Answer the pressed choice (Telegram: the callback query; an alert pops up).
        Called at most once per :class:`ChoicePressed`; a list channel sends the alert as
        text."""


@dataclass
class RecordingChat:
    """A chat that keeps what it was given: the core's own tests and dry runs."""

    sent: list[Say | PictureOut] = field(default_factory=list)
    edits: list[Edit] = field(default_factory=list)
    alerts: list[str | None] = field(default_factory=list)
    next_id: int = 1

    async def send(self, message: Say | PictureOut) -> MessageRef | None:
        self.sent.append(message)
        self.next_id += 1
        return MessageRef(str(self.next_id - 1))

    async def deliver(self, message: Say) -> Undelivered | None:
        await self.send(message)
        return None

    async def edit(self, edit: Edit) -> None:
        self.edits.append(edit)

    async def acknowledge(self, alert: str | None = None) -> None:
        self.alerts.append(alert)
