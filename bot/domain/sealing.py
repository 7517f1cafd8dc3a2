"""Sealing the way back to a reporter: the chat to reply to is stored encrypted (Fernet,
AES-128-CBC + HMAC-SHA256) under a key derived from TIPLINE_SECRET_KEY, apart from the tip."""

from __future__ import annotations

import base64
from dataclasses import dataclass

from cryptography.fernet import Fernet, InvalidToken

from bot.domain.identity import derive_key


class SealBroken(Exception):
    """The sealed value cannot be opened (wrong key or tampered)."""


@dataclass(frozen=True, slots=True)
class ReplyAddress:
    platform: str  # "tg" | "zalo"
    chat_id: str


class ChatSealer:
    def __init__(self, secret: bytes) -> None:
        key = base64.urlsafe_b64encode(derive_key(secret, "reporter-chat-seal"))
        self._fernet = Fernet(key)

    def seal(self, address: ReplyAddress) -> str:
        return self._fernet.encrypt(f"{address.platform}:{address.chat_id}".encode()).decode()

    def open(self, sealed: str) -> ReplyAddress:
        try:
            platform, chat_id = self._fernet.decrypt(sealed.encode()).decode().split(":", 1)
        except (InvalidToken, ValueError) as exc:
            raise SealBroken("sealed reply address cannot be opened") from exc
        return ReplyAddress(platform, chat_id)
