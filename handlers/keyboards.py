"""The conversation's choices as Telegram inline keyboards: one button per choice, its id
as the callback data (the guards check that a pressed message carries exactly that data)."""

from __future__ import annotations

from bot.conversation.model import Choices


def keyboard_json(choices: Choices) -> dict[str, object]:
    """``reply_markup`` for a Bot API call (an empty keyboard removes the buttons)."""
    return {"inline_keyboard": [
        [{"text": choice.label, "callback_data": choice.id} for choice in row]
        for row in choices
    ]}
