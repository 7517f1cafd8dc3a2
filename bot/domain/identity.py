"""Keyed pseudonyms: how the tip-line knows a resident without storing who they are.

A pseudonym is HMAC-SHA256 over the platform and the platform user id, under a sub-key
derived from ``TIPLINE_SECRET_KEY``. The same person always maps to the same pseudonym (so
limits, bans and "my tips" work), but the id cannot be recovered from it without the key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


def derive_key(secret: bytes, purpose: str, length: int = 32) -> bytes:
    """A separate key per purpose (pseudonyms, chat-link encryption, ...) from one secret."""
    return HKDF(
        algorithm=hashes.SHA256(), length=length, salt=b"tipline-v1", info=purpose.encode()
    ).derive(secret)


class Pseudonymizer:
    """Turns a platform identity into a stable, non-reversible pseudonym."""

    def __init__(self, secret: bytes) -> None:
        self._key = derive_key(secret, "resident-pseudonym")

    def resident(self, platform: str, user_id: int | str) -> str:
        digest = hmac.new(self._key, f"{platform}:{user_id}".encode(), hashlib.sha256).digest()
        return base64.b32encode(digest[:20]).decode().rstrip("=").lower()
