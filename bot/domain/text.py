"""Text helpers for Vietnamese input (pure, no I/O).

People type place names with or without diacritics, in any case and with stray punctuation
("Xã Phúc Khánh, Lào Cai", "xa phuc khanh lao cai", "PHÚC KHÁNH"). :func:`fold` maps all of
these to one comparable key.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["echo", "fold"]

# đ/Đ is a separate letter, not d + a combining mark, so NFD does not decompose it.
_D_MAP = str.maketrans({"đ": "d", "Đ": "d"})
# Anything that is not a letter or a digit (punctuation, whitespace, symbols, "_").
_SEPARATORS = re.compile(r"[\W_]+")


def fold(text: str) -> str:
    """Return an accent-insensitive, lower-case search key for ``text``.

    NFD-decomposes, drops combining marks (so "ặ" -> "a", "ư" -> "u"), maps đ/Đ to "d",
    lower-cases, turns every run of whitespace/punctuation into a single space and strips.

    >>> fold("  Đặc khu   Phú Quốc! ")
    'dac khu phu quoc'
    >>> fold("Xã Phúc Khánh, Lào Cai")
    'xa phuc khanh lao cai'
    """
    decomposed = unicodedata.normalize("NFD", text.translate(_D_MAP).lower())
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return _SEPARATORS.sub(" ", stripped).strip()


ECHO_LIMIT = 80  # characters of a person's input repeated back in a reply
_WHITESPACE = re.compile(r"\s+")


def echo(text: str, limit: int = ECHO_LIMIT) -> str:
    """A person's input as it may be repeated back to them ("No commune matches “…”"):
    whitespace runs collapsed to one space, at most ``limit`` characters, "…" when cut.
    Replies must never grow with the input (Telegram refuses texts over 4,096 characters).

    >>> echo("  phuc \t\t khanh ")
    'phuc khanh'
    >>> echo("x" * 100, limit=5)
    'xxxx…'
    """
    flat = _WHITESPACE.sub(" ", text).strip()
    return flat if len(flat) <= limit else flat[: max(0, limit - 1)] + "…"

