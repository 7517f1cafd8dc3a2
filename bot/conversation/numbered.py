"""Choices as a numbered list, for channels without buttons (Zalo): the text gets
"1. …  2. …" lines and "Trả lời 1, 2 hoặc 3"; a reply "2" is read back as the second choice.

The adapter keeps the choices it last showed a chat (a :class:`NumberedMenu`) and asks it
whether a text is an answer to them: a number becomes a ``ChoicePressed`` with the choice's
id (and the reference of the message that listed it), anything else goes to the core as
text. A list channel cannot edit what it sent: an ``Edit`` that only takes choices away
just forgets the menu; one with an answer may be sent as a short confirmation or dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.conversation.model import Choice, Say, flat
from bot.i18n import Gettext

_NUMBER = re.compile(r"\s*(?:số\s*)?(\d{1,2})\s*[.)]?\s*", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class NumberedMenu:
    """The choices shown under one message, in the order they were numbered."""

    choices: tuple[Choice, ...]

    def pick(self, text: str) -> Choice | None:
        """The choice a reply names: "2", " 2. ", "số 2"; anything else is None."""
        match = _NUMBER.fullmatch(text)
        if match is None:
            return None
        number = int(match.group(1))
        return self.choices[number - 1] if 1 <= number <= len(self.choices) else None


def render(message: Say, _: Gettext) -> tuple[str, NumberedMenu | None]:
    """The text to send, and the menu to read replies against (None: no choices)."""
    choices = flat(message.choices)
    if not choices:
        return message.text, None
    lines = [message.text, ""]
    lines += [f"{number}. {choice.label}" for number, choice in enumerate(choices, 1)]
    lines += ["", reply_hint(len(choices), _)]
    return "\n".join(lines), NumberedMenu(tuple(choices))


def reply_hint(count: int, _: Gettext) -> str:
    """ "Reply 1" / "Reply 1 or 2" / "Reply 1, 2 or 3"."""
    numbers = [str(n) for n in range(1, count + 1)]
    if count == 1:
        return _("Reply {numbers}").format(numbers=numbers[0])
    return _("Reply {numbers} or {last}").format(
        numbers=", ".join(numbers[:-1]), last=numbers[-1])
